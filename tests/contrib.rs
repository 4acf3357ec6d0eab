//! What `contrib/` ships, checked against the real tools: the dashboard's
//! every query is valid PromQL (as recording rules, `promtool check rules`)
//! over metrics that real `--format prometheus` output has (through a real
//! node_exporter); the alert rules pass `promtool check rules` and `promtool
//! test rules`; the systemd units pass `systemd-analyze verify`; the service's
//! and the cron file's commands run with no capability and write a valid file.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn found(tool: &str, package: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "\n*** SKIP: {tool} not found (Debian package {package}; .ci/run installs it) ***\n"
        );
    }
    ok
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Every PromQL expression of the dashboard: each target's `expr`, and the
/// metric of each `label_values(METRIC, label)` variable, with Grafana's own
/// variables replaced by what they stand for.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("contrib/grafana/tw-inspect.json")).unwrap();
    let d: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    fn panels<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            panels(&p["panels"], out);
        }
    }
    let mut all = Vec::new();
    panels(&d["panels"], &mut all);
    for p in all {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("every target has an expr");
            let name = format!("panel {} ({}) {}", p["id"], p["title"], t["refId"]);
            out.push((name, expr.to_string()));
        }
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"].as_str().unwrap();
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .expect("variables use label_values(METRIC, LABEL)");
        let (metric, _label) = inner.split_once(',').unwrap();
        out.push((format!("variable {}", v["name"]), metric.trim().to_string()));
    }
    for (_, e) in &mut out {
        *e = e
            .replace("$__rate_interval", "5m")
            .replace("$__interval", "1m")
            .replace("$instance", ".*");
        assert!(!e.contains('$'), "an unknown Grafana variable in {e}");
    }
    out
}

/// Metric names in a PromQL expression: identifiers followed by `{`, `[`,
/// `)`, an operator or the end, that are not functions, keywords or labels.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_braces = 0;
    let mut in_string = false;
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            if c == '\\' {
                i += 1;
            } else if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => in_braces += 1,
            '}' => in_braces -= 1,
            c if (c.is_ascii_alphabetic() || c == '_') && in_braces == 0 => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                if word.starts_with("tw_inspect_") || word.starts_with("node_") {
                    assert_ne!(next, Some(&'('), "{word} called as a function");
                    names.insert(word);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// A recording rule per query, validated by `promtool check rules`.
fn check_as_recording_rules(queries: &[(String, String)]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard.rules.yml");
    let mut yaml = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        // A JSON string is a YAML string.
        yaml.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    std::fs::write(&file, &yaml).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "promtool check rules:\n{said}\n{yaml}"
    );
    assert!(
        said.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{said}"
    );
}

/// A free port on loopback (bound, then released for the child to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.contains(" 200 ").then_some(body)
}

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What node_exporter's textfile collector exposes for the files in `dir`.
fn node_exporter_scrape(dir: &Path) -> String {
    let port = free_port();
    let child = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(["--collector.disable-defaults", "--collector.textfile"])
        .arg(format!("--collector.textfile.directory={}", dir.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node_exporter");
    let _guard = Reaped(child);
    wait_for(20, "node_exporter to answer", || http_get(port, "/metrics"))
}

/// Sample lines' metric names in an exposition.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// Real output of `list` (with TIME_WAIT groups and port pressure) and, as
/// root, of `who` (with closes recorded), written where node_exporter's
/// textfile collector reads them; returns what node_exporter serves, or the
/// files themselves when node_exporter is not installed.
fn real_metrics(dir: &Path) -> BTreeSet<String> {
    let l = listen("127.0.0.1:0");
    make_time_wait(&l, 5);
    let list = dir.join("tw_inspect.prom");
    let out = run(&[
        "list",
        "--format",
        "prometheus",
        "--output",
        list.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let mut names = exposed(&std::fs::read_to_string(&list).unwrap());
    if is_root() {
        let who = dir.join("tw_who.prom");
        let mut rec = Command::new(bin())
            .args([
                "who",
                "--duration",
                "2s",
                "--format",
                "prometheus",
                "--output",
            ])
            .arg(&who)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closes made while it records.
        std::thread::sleep(Duration::from_millis(700));
        make_time_wait(&l, 5);
        let status = rec.wait().unwrap();
        let mut err = String::new();
        rec.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(status.success(), "who: {err}");
        names.extend(exposed(&std::fs::read_to_string(&who).unwrap()));
    } else {
        eprintln!("\n*** not root: `who` metrics are not produced, only list's are checked ***\n");
    }
    if !found("prometheus-node-exporter", "prometheus-node-exporter") {
        return names;
    }
    let scraped = node_exporter_scrape(dir);
    let served = exposed(&scraped);
    for n in &names {
        assert!(
            served.contains(n),
            "node_exporter does not serve {n}:\n{scraped}"
        );
    }
    let mtime = format!("node_textfile_mtime_seconds{{file=\"{}\"}}", list.display());
    assert!(scraped.contains(&mtime), "{mtime} not in:\n{scraped}");
    assert!(
        scraped.contains("node_textfile_scrape_error 0"),
        "{scraped}"
    );
    served
}

#[test]
fn dashboard_and_alerts_use_valid_promql_over_real_metrics() {
    if !private_netns(
        module_path!(),
        "dashboard_and_alerts_use_valid_promql_over_real_metrics",
    ) {
        return;
    }
    if !found("promtool", "prometheus") {
        return;
    }
    let queries = dashboard_queries();
    assert!(queries.len() >= 15, "{} queries", queries.len());
    check_as_recording_rules(&queries);

    let dir = tempfile::tempdir().unwrap();
    let real = real_metrics(dir.path());
    let rules = std::fs::read_to_string(repo("contrib/prometheus/tw-inspect.rules.yml")).unwrap();
    let alert_exprs: Vec<(String, String)> = rules
        .split("expr:")
        .skip(1)
        .map(|rest| {
            // The expression runs to the next key of the rule.
            let end = rest
                .find("\n        for:")
                .or(rest.find("\n        labels:"))
                .unwrap();
            (
                "alert rule".to_string(),
                rest[..end].trim().trim_start_matches('|').to_string(),
            )
        })
        .collect();
    assert_eq!(alert_exprs.len(), 4);
    let mut used = BTreeSet::new();
    for (what, expr) in queries.iter().chain(&alert_exprs) {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{what}: no metric in {expr}");
        for n in names {
            let known = real.contains(&n);
            // node_exporter's own series about the file are checked only
            // where node_exporter runs.
            let optional = n.starts_with("node_") && !real.iter().any(|r| r.starts_with("node_"));
            assert!(
                known || optional,
                "{what} uses {n}, which real output does not have: {expr}"
            );
            used.insert(n);
        }
    }
    eprintln!(
        "{} dashboard queries and {} alert expressions use {} metrics, all in real output: {used:?}",
        queries.len(),
        alert_exprs.len(),
        used.len()
    );
}

#[test]
fn metric_names_are_found_in_expressions() {
    assert_eq!(
        metric_names(
            r#"topk(10, sum by (peer) (tw_inspect_time_wait{peer!="other",instance=~".*"}))"#
        ),
        BTreeSet::from(["tw_inspect_time_wait".to_string()])
    );
    assert_eq!(
        metric_names(
            r#"tw_inspect_up == 0 or time() - node_textfile_mtime_seconds{file=~"x{tw_inspect_no}"} > 300"#
        ),
        BTreeSet::from([
            "node_textfile_mtime_seconds".to_string(),
            "tw_inspect_up".to_string()
        ])
    );
}

#[test]
fn alert_rules_pass_promtool_check_and_test() {
    if !found("promtool", "prometheus") {
        return;
    }
    for args in [
        ["check", "rules", "tw-inspect.rules.yml"],
        ["test", "rules", "tw-inspect.rules.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(repo("contrib/prometheus"))
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `KEY=value` lines of a unit file.
fn unit_keys(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    if !found("systemd-analyze", "systemd") {
        return;
    }
    // No systemd runs here as PID 1: verify in a root of our own, holding
    // the system's own units (the targets ours refer to), the binary where
    // ExecStart= expects it, and our units.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
    std::fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    std::fs::copy(bin(), r.join("usr/bin/tw-inspect")).unwrap();
    let system = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .find(|d| Path::new(d).join("timers.target").exists())
        .expect("the system's unit directory");
    let st = Command::new("cp")
        .args(["-r", system])
        .arg(r.join("usr/lib/systemd/system"))
        .status()
        .unwrap();
    assert!(st.success());
    let mut units = Vec::new();
    for u in ["tw-inspect-textfile.service", "tw-inspect-textfile.timer"] {
        let to = r.join("etc/systemd/system").join(u);
        std::fs::copy(repo(&format!("contrib/systemd/{u}")), &to).unwrap();
        units.push(to);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", r.display()))
        .args(&units)
        .output()
        .expect("run systemd-analyze");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );

    // The same check catches a mistake: a key systemd does not know.
    let mut bad = std::fs::read_to_string(&units[0]).unwrap();
    bad.push_str("ProtectSistem=strict\n");
    std::fs::write(&units[0], bad).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", r.display()))
        .arg(&units[0])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("ProtectSistem"));
}

/// The service's ExecStart= and the cron line, run as they would be (root,
/// no capability, no new privileges) with the output moved to a temporary
/// directory: each writes a valid, complete file.
#[test]
fn service_and_cron_commands_work_without_capabilities() {
    if !is_root() {
        eprintln!("\n*** SKIP: dropping the bounding set needs root ***\n");
        return;
    }
    let service =
        std::fs::read_to_string(repo("contrib/systemd/tw-inspect-textfile.service")).unwrap();
    let keys = unit_keys(&service);
    let get = |k: &str| -> Vec<&str> {
        keys.iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("Type"), ["oneshot"]);
    assert_eq!(get("CapabilityBoundingSet"), [""], "no capability at all");
    assert_eq!(get("NoNewPrivileges"), ["yes"]);
    assert_eq!(get("ProtectSystem"), ["strict"]);
    let exec = get("ExecStart")[0];
    let out_path = exec
        .split_once("--output ")
        .unwrap()
        .1
        .split(' ')
        .next()
        .unwrap();
    let out_dir = Path::new(out_path).parent().unwrap().to_str().unwrap();
    assert_eq!(
        get("ReadWritePaths"),
        [out_dir],
        "the directory it writes, only"
    );
    let timer = std::fs::read_to_string(repo("contrib/systemd/tw-inspect-textfile.timer")).unwrap();
    assert!(unit_keys(&timer).contains(&("OnCalendar".into(), "minutely".into())));

    let cron = std::fs::read_to_string(repo("contrib/cron.d/tw-inspect")).unwrap();
    let job = cron
        .lines()
        .find(|l| l.starts_with("* * * * * root "))
        .expect("a job every minute, as root")
        .trim_start_matches("* * * * * root ");
    assert!(
        job.contains(&format!("--output {out_path}")),
        "cron and the service write the same file"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tw_inspect.prom");
    let service_cmd = format!(
        "setpriv --no-new-privs --bounding-set=-all --inh-caps=-all -- {}",
        exec.replace("/usr/bin/tw-inspect", bin())
    );
    let cron_cmd = job.replace(" tw-inspect ", &format!(" {} ", bin()));
    for (what, cmd) in [("service", service_cmd), ("cron", cron_cmd)] {
        let cmd = cmd.replace(out_path, file.to_str().unwrap());
        let _ = std::fs::remove_file(&file);
        let out = Command::new("sh").args(["-c", &cmd]).output().unwrap();
        assert!(out.status.success(), "{what}: {cmd}: {out:?}");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("\ntw_inspect_up 1\n"), "{what}:\n{text}");
        assert!(
            text.contains("tw_inspect_sockets{state=\"time-wait\""),
            "{what}"
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["tw_inspect.prom"], "{what}: no temporary file left");
        if found("promtool", "prometheus") {
            let mut p = Command::new("promtool")
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let r = p.wait_with_output().unwrap();
            assert!(r.status.success(), "{what}: {r:?}");
        }
    }
}
