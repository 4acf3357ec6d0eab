//! Every flag is honoured or refused: a table of combinations. A refused one
//! exits 2 (`check`: 3, with its UNKNOWN line on stdout) with one line on
//! stderr naming both flags, and writes nothing; an honoured one exits 0 and
//! its output shows the flag took effect.

use std::path::Path;

use serde_json::Value;

use crate::bad_input::{Case, UNKNOWN, USAGE, assert_cases, both};
use crate::util::*;

fn refusals(tmp: &Path) -> Vec<Case> {
    let b = tmp.join("b");
    let link = tmp.join("link-to-b");
    std::os::unix::fs::symlink(&b, &link).unwrap();
    let snap = tmp.join("snap.twsnap");
    let abs_b = b.to_str().unwrap().to_string();
    let link = link.to_str().unwrap().to_string();
    let snap = snap.to_str().unwrap().to_string();
    let by_process = |extra: &[&str], flag: &str| {
        let mut a = vec!["list", "--by", "process", "--trace", "1s"];
        a.extend_from_slice(extra);
        both(&a, USAGE, &["--by process", flag])
    };
    vec![
        // list: tracing
        both(
            &["list", "--trace", "5s"],
            USAGE,
            &["--trace", "--by process"],
        ),
        both(
            &["list", "--by", "peer", "--trace", "5s"],
            USAGE,
            &["--trace", "--by process"],
        ),
        by_process(&["--netns", "x"], "--netns"),
        by_process(&["--all-netns"], "--all-netns"),
        by_process(&["--save", "s"], "--save"),
        by_process(&["--load", "s"], "--load"),
        by_process(&["--watch"], "--watch"),
        by_process(&["--sockets"], "--sockets"),
        by_process(&["--sockets", "--processes"], "--sockets"),
        by_process(&["--explain"], "--explain"),
        by_process(&["--format", "csv"], "--format csv"),
        by_process(&["--format", "ndjson"], "--format ndjson"),
        by_process(&["--sort", "state"], "--sort"),
        // list: rows and groups
        both(
            &["list", "--sockets", "--by", "peer"],
            USAGE,
            &["--sockets", "--by peer"],
        ),
        both(
            &["list", "--sockets", "--format", "prometheus"],
            USAGE,
            &["--sockets", "--format prometheus"],
        ),
        both(
            &["list", "--processes"],
            USAGE,
            &["--processes", "--sockets"],
        ),
        // --sort orders rows; groups are ordered by count.
        both(
            &["list", "--sort", "state"],
            USAGE,
            &["--sort", "--sockets"],
        ),
        both(
            &["list", "--sort", "peer", "--by", "peer"],
            USAGE,
            &["--sort", "--sockets"],
        ),
        both(
            &["list", "--sockets", "--sort", "state", "--by", "peer"],
            USAGE,
            &["--sockets", "--by peer"],
        ),
        both(
            &[
                "list",
                "--sockets",
                "--sort",
                "state",
                "--format",
                "prometheus",
            ],
            USAGE,
            &["--sockets", "--format prometheus"],
        ),
        both(
            &["list", "--sockets", "--sort", "bogus"],
            USAGE,
            &["bogus", "expires"],
        ),
        both(
            &["list", "--by", "local-port", "--format", "prometheus"],
            USAGE,
            &["--by local-port", "--format prometheus"],
        ),
        both(
            &["list", "--by", "local-port", "--format", "prometheus"],
            USAGE,
            &["--by local-port", "--format prometheus"],
        ),
        // list --prom-port: Prometheus series only, and only the role series have incoming ones
        both(
            &["list", "--prom-port", "443"],
            USAGE,
            &["--prom-port", "--format table"],
        ),
        both(
            &["list", "--prom-port", "443", "--format", "json"],
            USAGE,
            &["--prom-port", "--format json"],
        ),
        both(
            &["list", "--prom-port", "443", "--format", "csv"],
            USAGE,
            &["--prom-port", "--format csv"],
        ),
        both(
            &[
                "list",
                "--prom-port",
                "443",
                "--format",
                "prometheus",
                "--by",
                "peer+port",
            ],
            USAGE,
            &["--prom-port", "--by peer+port"],
        ),
        both(
            &["list", "--prom-port", "443,x", "--format", "prometheus"],
            USAGE,
            &["--prom-port", "'x'"],
        ),
        both(
            &["list", "--prom-port", "0", "--format", "prometheus"],
            USAGE,
            &["--prom-port", "'0'"],
        ),
        both(
            &["list", "--explain", "--format", "json"],
            USAGE,
            &["--explain", "--format json"],
        ),
        both(
            &["list", "--explain", "--format", "prometheus"],
            USAGE,
            &["--explain", "--format prometheus"],
        ),
        both(
            &["list", "--explain", "--format", "csv"],
            USAGE,
            &["--explain", "--format csv"],
        ),
        both(
            &["list", "--explain", "--format", "ndjson"],
            USAGE,
            &["--explain", "--format ndjson"],
        ),
        both(
            &["list", "--load", &snap, "--sockets", "--processes"],
            USAGE,
            &["--processes", "--load"],
        ),
        // list: files, compared by identity
        both(
            &["list", "--save", "b", "--output", "./b"],
            USAGE,
            &["--save", "--output"],
        ),
        both(
            &["list", "--save", "b", "--output", &abs_b],
            USAGE,
            &["--save", "--output"],
        ),
        both(
            &["list", "--save", "b", "--output", &link],
            USAGE,
            &["--save", "--output"],
        ),
        both(
            &["list", "--load", &snap, "--output", &snap],
            USAGE,
            &["--load", "--output"],
        ),
        both(
            &["list", "--load", &snap, "--save", "x"],
            USAGE,
            &["--save", "--load"],
        ),
        both(
            &["list", "--load", &snap, "--netns", "x"],
            USAGE,
            &["--load", "--netns"],
        ),
        // list --conntrack
        both(
            &["list", "--conntrack", "--port", "80"],
            USAGE,
            &["--conntrack", "--port"],
        ),
        both(
            &["list", "--conntrack", "--local-port", "80"],
            USAGE,
            &["--conntrack", "--local-port"],
        ),
        both(
            &["list", "--conntrack", "--peer-port", "80"],
            USAGE,
            &["--conntrack", "--peer-port"],
        ),
        both(
            &["list", "--conntrack", "--peer", "10.0.0.1"],
            USAGE,
            &["--conntrack", "--peer"],
        ),
        both(
            &["list", "--conntrack", "--local", "10.0.0.1"],
            USAGE,
            &["--conntrack", "--local"],
        ),
        both(
            &["list", "--conntrack", "--sockets"],
            USAGE,
            &["--conntrack", "--sockets"],
        ),
        both(
            &["list", "--conntrack", "--save", "x"],
            USAGE,
            &["--conntrack", "--save"],
        ),
        both(
            &["list", "--conntrack", "--load", &snap],
            USAGE,
            &["--conntrack", "--load"],
        ),
        both(
            &["list", "--conntrack", "--watch"],
            USAGE,
            &["--conntrack", "--watch"],
        ),
        both(
            &["list", "--conntrack", "--format", "csv", "--by", "peer"],
            USAGE,
            &["--conntrack", "--by peer"],
        ),
        by_process(&["--conntrack"], "--conntrack"),
        // list --watch
        both(&["list", "--watch", "0"], USAGE, &["--watch", "0.1 s"]),
        both(&["list", "--watch", "1e-9"], USAGE, &["--watch", "1e-9"]),
        both(&["list", "--watch", "0.05"], USAGE, &["--watch", "0.1 s"]),
        both(
            &["list", "--watch", "1", "--count", "0"],
            USAGE,
            &["--count", "0"],
        ),
        both(&["list", "--count", "3"], USAGE, &["--count", "--watch"]),
        both(
            &["list", "--watch", "--sockets"],
            USAGE,
            &["--watch", "--sockets"],
        ),
        both(
            &["list", "--watch", "--sockets", "--sort", "local"],
            USAGE,
            &["--watch", "--sockets"],
        ),
        both(
            &["list", "--watch", "--by", "local-port"],
            USAGE,
            &["--watch", "--by local-port"],
        ),
        both(
            &["list", "--watch", "--top", "5"],
            USAGE,
            &["--watch", "--top"],
        ),
        both(
            &["list", "--watch", "--explain"],
            USAGE,
            &["--watch", "--explain"],
        ),
        both(
            &["list", "--watch", "--format", "prometheus"],
            USAGE,
            &["--watch", "--format prometheus"],
        ),
        both(
            &["list", "--watch", "--save", "x"],
            USAGE,
            &["--save", "--watch"],
        ),
        // who
        both(
            &["who", "--interval", "1e-9"],
            USAGE,
            &["--interval", "1e-9"],
        ),
        both(
            &["who", "--interval", "0.01"],
            USAGE,
            &["--interval", "0.1 s"],
        ),
        both(&["who", "--format", "csv"], USAGE, &["csv", "prometheus"]),
        // explain, demo: formats per subcommand
        both(
            &["explain", "--format", "csv"],
            USAGE,
            &["csv", "table, json"],
        ),
        both(
            &["explain", "time-wait", "--load", &snap],
            USAGE,
            &["--load", "sysctls"],
        ),
        both(
            &["demo", "--format", "prometheus"],
            USAGE,
            &["prometheus", "table, json"],
        ),
        both(
            &["demo", "--list", "--pace", "1s"],
            USAGE,
            &["--list", "--pace"],
        ),
        both(&["demo", "--list", "--host"], USAGE, &["--list", "--host"]),
        both(
            &["demo", "--list", "--count", "5"],
            USAGE,
            &["--list", "--count"],
        ),
        both(&["demo", "--list", "--step"], USAGE, &["--list", "--step"]),
        both(
            &["demo", "abort", "--count", "5"],
            USAGE,
            &["--count", "cost"],
        ),
        both(
            &["demo", "--step", "--format", "json"],
            USAGE,
            &["--step", "--format json"],
        ),
        both(&["demo", "abort", "--step"], USAGE, &["--step", "terminal"]),
        // check: UNKNOWN, also for clap's own errors, wherever --color stands
        both(&["check", "--bogus"], UNKNOWN, &["--bogus"]),
        both(
            &["--color", "never", "check", "-w", "bogus=1"],
            UNKNOWN,
            &["bogus"],
        ),
        both(
            &["--color", "never", "check", "--bogus"],
            UNKNOWN,
            &["--bogus"],
        ),
        both(
            &["check", "-w", "time-wait=1", "-w", "TIME_WAIT=2"],
            UNKNOWN,
            &["--warning", "twice"],
        ),
        both(
            &["check", "--state", "established", "-w", "time-wait=1"],
            UNKNOWN,
            &["time-wait", "--state"],
        ),
        both(&["check", "--watch"], UNKNOWN, &["--watch"]),
        both(
            &["check", "-w", "port-pressure:incoming=10"],
            UNKNOWN,
            &["port-pressure", ":incoming"],
        ),
        both(
            &["check", "-w", "TcpExtTW:outgoing=10"],
            UNKNOWN,
            &["TcpExtTW", ":outgoing"],
        ),
    ]
}

#[test]
fn prom_port_keeps_its_ports_and_by_role_is_the_default() {
    if !private_netns(
        module_path!(),
        "prom_port_keeps_its_ports_and_by_role_is_the_default",
    ) {
        return;
    }
    let (_, _keep) = time_wait_groups(&[("127.0.0.1:0", 3)]);
    let text = |args: &[&str]| String::from_utf8(run(args).stdout).unwrap();
    let p = text(&[
        "list",
        "--format",
        "prometheus",
        "--prom-port",
        "443,80",
        "--prom-port",
        "8443",
    ]);
    for port in ["443", "80", "8443"] {
        assert!(
            p.contains(&format!(
                "tw_inspect_time_wait{{role=\"incoming\",local_port=\"{port}\"}} 0\n"
            )),
            "{p}"
        );
    }
    // --by role is the default, spelled out or not.
    let with = text(&["list", "--by", "role", "--format", "json"]);
    let v: Value = serde_json::from_str(&with).unwrap();
    assert_eq!(v["group_by"], "role");
    assert_eq!(v["groups"][0]["role"], "outgoing");
    assert_eq!(
        text(&["list", "--by", "role", "--format", "prometheus"])
            .lines()
            .filter(|l| l.starts_with("tw_inspect_time_wait{"))
            .count(),
        3
    );
}

#[test]
fn refused_combinations_name_both_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = refusals(tmp.path());
    assert_cases(&cases, tmp.path());
}

#[test]
fn sockets_with_top_limits_the_rows() {
    if !private_netns(module_path!(), "sockets_with_top_limits_the_rows") {
        return;
    }
    let (_, _keep) = time_wait_groups(&[("127.0.0.1:0", 6)]);
    let v = json(&[
        "list",
        "--state",
        "time-wait",
        "--sockets",
        "--top",
        "4",
        "--format",
        "json",
    ]);
    assert_eq!(v["sockets"].as_array().unwrap().len(), 4, "{v}");
    assert_eq!(v["total"], 6, "the total still counts every socket");
    let all = json(&[
        "list",
        "--state",
        "time-wait",
        "--sockets",
        "--top",
        "0",
        "--format",
        "json",
    ]);
    assert_eq!(all["sockets"].as_array().unwrap().len(), 6);
    let table = run(&["list", "--state", "time-wait", "--sockets", "-n", "2"]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.contains("time-wait")).count(),
        2,
        "{text}"
    );
    assert!(text.contains("2 of 6 sockets shown"), "{text}");
}

#[test]
fn demo_list_as_json_and_by_name() {
    let v = json(&["demo", "--list", "--format", "json"]);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"active-close") && names.contains(&"cost"),
        "{v}"
    );
    assert!(v[0]["claim"].as_str().is_some_and(|c| !c.is_empty()));
    let one = json(&["demo", "--list", "abort", "--format", "json"]);
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["name"], "abort");
}

#[test]
fn save_and_output_to_two_files_both_happen() {
    if !private_netns(module_path!(), "save_and_output_to_two_files_both_happen") {
        return;
    }
    let (_, _keep) = time_wait_groups(&[("127.0.0.1:0", 3)]);
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("s.twsnap");
    let report = tmp.path().join("r.json");
    let out = run(&[
        "list",
        "--state",
        "time-wait",
        "--format",
        "json",
        "--save",
        snap.to_str().unwrap(),
        "--output",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let live: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let loaded = json(&["list", "--load", snap.to_str().unwrap(), "--format", "json"]);
    assert_eq!(live["total"], 3);
    assert_eq!(loaded["states"]["time-wait"], 3);
}

#[test]
fn check_counts_the_states_its_thresholds_name() {
    // bound-inactive is left out of a default dump; a threshold on it adds it.
    let out = run(&["check", "-w", "bound-inactive=100000"]);
    let line = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{line}");
    assert!(line.contains("bound_inactive="), "{line}");
}

#[test]
fn watch_on_stdout_samples_at_the_interval_asked() {
    let out = run(&["list", "--watch", "0.1", "--count", "3", "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let dt = lines[2]["interval_s"].as_f64().unwrap();
    // At least the interval asked; a loaded machine may be late, never early.
    assert!((0.09..5.0).contains(&dt), "interval {dt}");
}

/// `--sort KEY --top N`: the N first rows in that order, out of every socket.
#[test]
fn sockets_sorted_and_limited() {
    if !private_netns(module_path!(), "sockets_sorted_and_limited") {
        return;
    }
    let (_, _keep) = time_wait_groups(&[("127.0.0.1:0", 6), ("[::1]:0", 3)]);
    let lines = |args: &[&str]| -> Vec<Value> {
        let out = run(args);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let base = [
        "list",
        "--state",
        "time-wait",
        "--sockets",
        "--format",
        "ndjson",
    ];
    let all = lines(&base);
    let mut ports: Vec<u64> = all
        .iter()
        .filter(|l| l["type"] == "socket")
        .map(|l| l["local_port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports.len(), 9);
    ports.sort();
    for key in ["local-port", "expires", "local", "state"] {
        let got = lines(&[&base[..], &["--sort", key, "--top", "4"]].concat());
        let (summary, rows) = got.split_last().unwrap();
        assert_eq!(rows.len(), 4, "{key}");
        assert_eq!(summary["total"], 9, "{key}: the total counts every socket");
        if key == "local-port" {
            let got: Vec<u64> = rows
                .iter()
                .map(|l| l["local_port"].as_u64().unwrap())
                .collect();
            assert_eq!(got, ports[..4], "the four lowest local ports, in order");
        }
        if key == "local" {
            assert!(rows.iter().all(|l| l["family"] == "ipv4"), "IPv4 first");
        }
    }
    let sorted = lines(&[&base[..], &["--sort", "expires"]].concat());
    let left: Vec<u64> = sorted[..9]
        .iter()
        .map(|l| l["expires_ms"].as_u64().unwrap())
        .collect();
    assert!(left.windows(2).all(|w| w[0] <= w[1]), "{left:?}");
}

/// NDJSON without `--sockets` is the summary alone, one line; with `--watch`
/// on stdout, one object per sample as with `--format json`.
#[test]
fn ndjson_summary_and_watch_lines() {
    let out = run(&["list", "--format", "ndjson"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "summary");
    assert!(v["states"].is_object() && v.get("sockets").is_none());
    let out = run(&[
        "list", "--watch", "0.1", "--count", "2", "--format", "ndjson",
    ]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["sample"], 2);
}

/// `--save` beside rows written as they arrive: both happen, from one dump.
#[test]
fn save_beside_streamed_rows() {
    if !private_netns(module_path!(), "save_beside_streamed_rows") {
        return;
    }
    let (_, _keep) = time_wait_groups(&[("127.0.0.1:0", 4), ("[::1]:0", 2)]);
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("s.twsnap");
    let out = run(&[
        "list",
        "--state",
        "time-wait",
        "--sockets",
        "--format",
        "ndjson",
        "--save",
        snap.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let lines = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        lines
            .lines()
            .filter(|l| l.contains("\"type\":\"socket\""))
            .count(),
        6
    );
    let loaded = json(&[
        "list",
        "--load",
        snap.to_str().unwrap(),
        "--sockets",
        "--format",
        "json",
    ]);
    assert_eq!(loaded["sockets"].as_array().unwrap().len(), 6);
    assert_eq!(loaded["source"], "snapshot");
}
