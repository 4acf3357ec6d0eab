//! Monitoring features against the real kernel: Prometheus output checked by
//! promtool, atomic --output under a reader, check's exit codes, namespaces
//! made with `ip netns add`, and --watch's TIME_WAIT arrival rate.
//!
//! Each test works in network namespaces of its own (unique names, removed on
//! drop), so counts are exact and tests can run in parallel with anything.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tw-inspect");

fn tw(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run tw-inspect")
}

pub(crate) fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIP: this test needs root (ip netns add, setns)");
    false
}

/// A named network namespace made with `ip netns add`, loopback up; deleted on drop.
pub(crate) struct NetNs {
    pub(crate) name: String,
}

impl NetNs {
    pub(crate) fn new(tag: &str) -> NetNs {
        let name = format!("twi5-{}-{tag}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(ok.success(), "ip netns add {name}");
        let ns = NetNs { name };
        let ok = Command::new("ip")
            .args(["-n", &ns.name, "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(ok.success(), "lo up in {}", ns.name);
        ns
    }

    pub(crate) fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs `f` on a thread inside this namespace.
    pub(crate) fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = File::open(self.path()).unwrap();
        std::thread::scope(|s| {
            s.spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// One connection closed by the client first: leaves the client socket in TIME_WAIT.
pub(crate) fn one_time_wait(l: &TcpListener) {
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        s.read(&mut [0u8; 8]).unwrap(),
        0,
        "server sees the client's FIN"
    );
    drop(s);
    // The read returns 0 once the server's FIN is processed: the client is in TIME_WAIT now.
    assert_eq!(
        (&c).read(&mut [0u8; 8]).unwrap(),
        0,
        "client sees the server's FIN"
    );
}

/// Makes `n` TIME_WAIT sockets towards a listener on `addr` in the current thread's namespace.
fn make_time_wait(addr: &str, n: usize) {
    let l = TcpListener::bind(addr).unwrap();
    for _ in 0..n {
        one_time_wait(&l);
    }
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "tw-inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

pub(crate) fn promtool_check(text: &str) -> bool {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!(
            "\n*** SKIP promtool check: promtool not found; install Debian package `prometheus` ***\n"
        );
        return false;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- input ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[test]
fn all_netns_reports_each_namespace_exactly() {
    if !root() {
        return;
    }
    let spaces = [
        (NetNs::new("all-a"), 3),
        (NetNs::new("all-b"), 5),
        (NetNs::new("all-c"), 7),
    ];
    for (ns, n) in &spaces {
        ns.run(|| make_time_wait("127.0.0.1:0", *n));
    }
    let v = json(&tw(&["list", "--all-netns", "--format", "json"]));
    let list = v["namespaces"].as_array().expect("namespaces array");
    let mut sum = 0;
    for (ns, n) in &spaces {
        let mine: Vec<_> = list
            .iter()
            .filter(|e| e["netns"] == ns.name.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "{} listed once", ns.name);
        assert_eq!(mine[0]["states"]["time-wait"], *n, "{}", ns.name);
        assert_eq!(
            mine[0]["groups"][0]["count"], *n,
            "{}: one peer+port group",
            ns.name
        );
        sum += n;
    }
    // The totals cover every namespace, ours included.
    assert!(v["states"]["time-wait"].as_u64().unwrap() >= sum as u64);
    let per_ns: u64 = list.iter().map(|e| e["total"].as_u64().unwrap()).sum();
    assert_eq!(
        v["total"].as_u64().unwrap(),
        per_ns,
        "top-level total is the sum of the namespaces"
    );

    // --netns by name and by path give the same single namespace, labelled by its name.
    let (ns, n) = &spaces[1];
    for arg in [ns.name.clone(), ns.path()] {
        let v = json(&tw(&["list", "--netns", &arg, "--format", "json"]));
        assert_eq!(v["namespaces"].as_array().unwrap().len(), 1);
        assert_eq!(v["namespaces"][0]["netns"], ns.name.as_str());
        assert_eq!(v["namespaces"][0]["identity"]["kind"], "named");
        assert_eq!(
            v["namespaces"][0]["identity"]["run_netns"],
            ns.name.as_str()
        );
        assert_eq!(v["states"]["time-wait"], *n);
    }
    let bad = tw(&["list", "--netns", "twi5-no-such-namespace"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("'twi5-no-such-namespace'") && err.contains(&ns.name),
        "{err}"
    );
}

/// `--sockets` over namespaces: each namespace's rows are written as its dump
/// is read, under its label, then its summary; the totals come last.
#[test]
fn all_netns_streams_each_namespace_rows() {
    if !root() {
        return;
    }
    let spaces = [(NetNs::new("rows-a"), 2), (NetNs::new("rows-b"), 4)];
    for (ns, n) in &spaces {
        ns.run(|| make_time_wait("127.0.0.1:0", *n));
    }
    let args = ["list", "--all-netns", "--sockets", "--state", "time-wait"];
    let v = json(&tw(&[&args[..], &["--format", "json"]].concat()));
    assert!(
        v.get("sockets").is_none(),
        "rows are not repeated in the totals"
    );
    for (ns, n) in &spaces {
        let mine: Vec<&Value> = v["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["netns"] == ns.name.as_str())
            .collect();
        assert_eq!(mine.len(), 1);
        let rows = mine[0]["sockets"].as_array().unwrap();
        assert_eq!(rows.len(), *n, "{}", ns.name);
        assert!(rows.iter().all(|r| r["state"] == "time-wait"));
        assert_eq!(mine[0]["total"], *n);
    }

    let out = tw(&[&args[..], &["--format", "ndjson"]].concat());
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (ns, n) in &spaces {
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|l| l["netns"] == ns.name.as_str())
            .collect();
        // The namespace's sockets, then its summary.
        assert_eq!(mine.len(), n + 1, "{}", ns.name);
        assert!(mine[..*n].iter().all(|l| l["type"] == "socket"));
        assert_eq!(mine[*n]["type"], "summary");
        assert_eq!(mine[*n]["total"], *n);
    }
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert!(last.get("netns").is_none(), "the totals' line has no label");
    let per_ns: u64 = lines
        .iter()
        .filter(|l| l["type"] == "summary" && l.get("netns").is_some())
        .map(|l| l["total"].as_u64().unwrap())
        .sum();
    assert_eq!(last["total"].as_u64().unwrap(), per_ns);

    let out = tw(&[&args[..], &["--format", "csv"]].concat());
    let text = String::from_utf8(out.stdout).unwrap();
    for (ns, n) in &spaces {
        // netns, container, pod, pod_namespace, then the socket.
        let prefix = format!("{},,,,time-wait,", ns.name);
        assert_eq!(text.lines().filter(|l| l.starts_with(&prefix)).count(), *n);
    }
    let out = tw(&[&args[..], &["--top", "1"]].concat());
    let text = String::from_utf8(out.stdout).unwrap();
    for (ns, n) in &spaces {
        let at = text
            .find(&format!("Network namespace {} (", ns.name))
            .expect("a heading per namespace");
        assert!(
            text[at..].contains(&format!("1 of {n} sockets shown")),
            "{text}"
        );
    }
}

#[test]
fn prometheus_output_passes_promtool_with_ipv6_and_escaped_labels() {
    if !root() {
        return;
    }
    // A name that needs escaping in a label value: a double quote and a backslash.
    let ns = NetNs::new("q\"b\\s");
    ns.run(|| {
        make_time_wait("127.0.0.1:0", 3);
        make_time_wait("[::1]:0", 2);
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tw.prom");
    let out = tw(&[
        "list",
        "--format",
        "prometheus",
        "--netns",
        &ns.name,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "--output leaves stdout empty");
    let text = fs::read_to_string(&file).unwrap();
    // The label carries the name as the table shows it (a backslash doubled),
    // then escaped for the format: each backslash doubled again, quotes escaped.
    let label = format!(
        "netns=\"{}\"",
        ns.name.replace('\\', r"\\\\").replace('"', "\\\"")
    );
    assert!(
        label.contains("\\\"") && label.contains("\\\\"),
        "the label really needs escaping: {label}"
    );
    for want in [
        format!("tw_inspect_sockets{{{label},state=\"time-wait\",family=\"ipv4\"}} 3\n"),
        format!("tw_inspect_sockets{{{label},state=\"time-wait\",family=\"ipv6\"}} 2\n"),
        format!("tw_inspect_sockets{{{label},state=\"close-wait\",family=\"ipv6\"}} 0\n"),
        format!("tw_inspect_time_wait{{{label},role=\"outgoing\",peer=\"::1\","),
        format!(
            "tw_inspect_time_wait{{{label},role=\"outgoing\",peer=\"other\",peer_port=\"other\"}} 0\n"
        ),
        format!("tw_inspect_time_wait{{{label},role=\"incoming\",local_port=\"other\"}} 0\n"),
        format!("tw_inspect_port_pressure_ratio{{{label},local=\"127.0.0.1\",peer=\"127.0.0.1\","),
        format!("tw_inspect_up{{{label}}} 1\n"),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }
    // The groups and `other` add up to the TIME_WAIT count, with --top cutting them.
    let out = tw(&[
        "list",
        "--format",
        "prometheus",
        "--netns",
        &ns.name,
        "--top",
        "1",
    ]);
    let cut = String::from_utf8(out.stdout).unwrap();
    let sum: u64 = cut
        .lines()
        .filter(|l| l.starts_with("tw_inspect_time_wait{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(sum, 5);
    // One outgoing group and the rest of each role.
    assert_eq!(
        cut.lines()
            .filter(|l| l.starts_with("tw_inspect_time_wait{"))
            .count(),
        3
    );
    if !promtool_check(&text) {
        return;
    }
    promtool_check(&cut);
    // The host's own namespace (no netns label), and every namespace at once.
    make_time_wait("127.0.0.1:0", 1);
    make_time_wait("[::1]:0", 1);
    let host = tw(&["list", "--format", "prometheus"]);
    assert!(host.status.success());
    promtool_check(&String::from_utf8(host.stdout).unwrap());
    let all = tw(&["list", "--format", "prometheus", "--all-netns"]);
    assert!(all.status.success());
    let all = String::from_utf8(all.stdout).unwrap();
    assert!(all.contains(&label));
    promtool_check(&all);
}

#[test]
fn output_file_is_never_seen_partial_during_200_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tw.prom");
    let f = file.to_str().unwrap().to_string();
    let first = tw(&["list", "--format", "prometheus", "--output", &f]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, reads, file) = (stop.clone(), reads.clone(), file.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let text = fs::read_to_string(&file).expect("the file is always there");
                assert!(
                    text.starts_with("# HELP tw_inspect_up "),
                    "partial file: {text:?}"
                );
                let last = text.lines().last().unwrap_or("");
                assert!(
                    text.ends_with('\n')
                        && last.starts_with("tw_inspect_collect_duration_seconds "),
                    "partial file: {text:?}"
                );
                // Versions by content: each rewrite carries its own collect
                // duration (inode numbers are reused, so they undercount).
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::hash::Hash::hash(&text, &mut h);
                seen.insert(std::hash::Hasher::finish(&h));
                reads.fetch_add(1, Ordering::Relaxed);
            }
            seen.len()
        })
    };
    // 200 rewrites: 180 runs of `list -o`, then 20 samples of `--watch -o`
    // at the shortest interval it allows.
    let t0 = Instant::now();
    for _ in 0..180 {
        let out = tw(&["list", "--format", "prometheus", "--output", &f]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = tw(&[
        "list",
        "--format",
        "prometheus",
        "--output",
        &f,
        "--watch",
        "0.1",
        "--count",
        "20",
    ]);
    let took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let versions = reader.join().expect("reader saw only whole files");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = reads.load(Ordering::Relaxed);
    eprintln!("200 rewrites in {took:?}; {n} reads, {versions} distinct versions seen");
    assert!(n > 100, "the reader ran throughout ({n} reads)");
    assert!(
        versions > 10,
        "the reader saw the file being replaced ({versions} versions)"
    );
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "no temporary files left behind: {left:?}");
}

fn check(ns: &NetNs, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["check", "--netns", &ns.name];
    all.extend_from_slice(args);
    let out = tw(&all);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_exit_codes_and_perfdata() {
    if !root() {
        return;
    }
    let ns = NetNs::new("check");
    // No TIME_WAIT reuse: the port-pressure values below stay put.
    ns.run(|| std::fs::write("/proc/sys/net/ipv4/tcp_tw_reuse", "0").unwrap());
    ns.run(|| make_time_wait("127.0.0.1:0", 4));
    let (code, out, _) = check(&ns, &["-w", "time-wait=10", "-c", "time-wait=20"]);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "TW_INSPECT OK - time-wait 4 | time_wait=4;10;20 total=4;;\n"
        )
    );
    let (code, out, _) = check(&ns, &["-w", "time-wait=3", "-c", "time-wait=10"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("TW_INSPECT WARNING - time-wait 4 (warning: above 3)"),
        "{out}"
    );
    assert!(out.ends_with("| time_wait=4;3;10 total=4;;\n"), "{out}");
    let (code, out, _) = check(
        &ns,
        &[
            "--warning",
            "time-wait=1",
            "--critical",
            "time-wait=3",
            "-w",
            "total=100",
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("TW_INSPECT CRITICAL - time-wait 4 (critical: above 3), total 4 |"),
        "{out}"
    );
    assert!(out.contains("time_wait=4;1;3 total=4;100;"), "{out}");
    // Port pressure: 4 outgoing sockets to one destination out of the namespace's 28,232 ephemeral ports.
    let (code, out, _) = check(&ns, &["-w", "port-pressure=0.01", "-c", "port-pressure=50"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("port_pressure=0.01%;0.01;50"), "{out}");
    // Filters apply: no sockets on this port.
    let (code, out, _) = check(&ns, &["-w", "time-wait=1", "--port", "9"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("time_wait=0;1;"), "{out}");

    let (code, out, err) = check(&ns, &["-w", "bogus=1"]);
    assert_eq!(code, 3);
    assert!(out.starts_with("TW_INSPECT UNKNOWN - "), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("'bogus'") && err.contains("time-wait") && err.contains("port-pressure"),
        "{err}"
    );
    let (code, _, err) = check(&ns, &["-w", "time-wait=lots"]);
    assert_eq!(code, 3);
    assert!(err.contains("'lots'"), "{err}");
    let (code, out, err) = check(&ns, &["-w", "time-wait=5000", "-c", "time-wait=1e3"]);
    assert_eq!(code, 3, "{out}");
    assert!(err.contains("contradict"), "{err}");
}

#[test]
fn check_ranges_and_scoped_metrics_on_real_sockets() {
    if !root() {
        return;
    }
    let ns = NetNs::new("scoped");
    ns.run(|| std::fs::write("/proc/sys/net/ipv4/tcp_tw_reuse", "0").unwrap());
    // Three connections the server closes first: TIME_WAIT on its port 8443.
    // Two the clients close first, towards 127.0.0.1:9000.
    ns.run(|| {
        let l = TcpListener::bind("127.0.0.1:8443").unwrap();
        for _ in 0..3 {
            let c = TcpStream::connect("127.0.0.1:8443").unwrap();
            let (s, _) = l.accept().unwrap();
            drop(s);
            assert_eq!((&c).read(&mut [0u8; 8]).unwrap(), 0);
        }
        make_time_wait("127.0.0.1:9000", 2);
    });
    let ss = |filter: &str| -> u64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "ss",
                "-tanH",
                "state",
                "time-wait",
                filter,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count() as u64
    };
    assert_eq!((ss("sport = :8443"), ss("dport = :9000")), (3, 2));

    let (code, out, _) = check(
        &ns,
        &["-w", "time-wait:port=8443=2", "-c", "time-wait:port=8443=5"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("TW_INSPECT WARNING - time-wait:port=8443 3 (warning: above 2) |"),
        "{out}"
    );
    assert!(
        out.contains("time_wait_port_8443=3;2;5 time_wait=5;; total=5;;"),
        "{out}"
    );
    let (code, out, _) = check(&ns, &["-c", "time-wait:peer=127.0.0.1:9000=@2:3"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("(critical: inside @2:3)"), "{out}");
    assert!(
        out.contains("time_wait_peer_127.0.0.1_9000=2;;@2:3"),
        "{out}"
    );
    // At least one established connection, else critical: there is none.
    let (code, out, _) = check(&ns, &["-w", "established=2:", "-c", "established=1:"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("established 0 (critical: below 1)"), "{out}");
    assert!(out.contains("established=0;2:;1:"), "{out}");
    // Port pressure towards one destination: 2 of 28,232 ports.
    let (code, out, _) = check(&ns, &["-w", "port-pressure:peer=127.0.0.1:9000=~:0.001"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("port_pressure_peer_127.0.0.1_9000=0.01%;~:0.001;"),
        "{out}"
    );
    let (code, out, _) = check(&ns, &["-w", "port-pressure:peer=10.9.9.9=1"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("port_pressure_peer_10.9.9.9=0.00%;1;"),
        "{out}"
    );
    // check --help lists the metrics from the parser's table.
    let help = String::from_utf8(tw(&["check", "--help"]).stdout).unwrap();
    for m in tw_inspect::threshold::METRICS {
        assert!(
            help.contains(m.name),
            "{} missing from --help:\n{help}",
            m.name
        );
    }
}

#[test]
fn watch_json_lines_show_the_time_wait_arrival_rate() {
    if !root() {
        return;
    }
    let ns = NetNs::new("watch");
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let generator = {
        let (stop, made) = (stop.clone(), made.clone());
        let file = File::open(ns.path()).unwrap();
        std::thread::spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            while !stop.load(Ordering::Relaxed) {
                one_time_wait(&l);
                made.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2)); // pacing, not waiting for state
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while made.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "generator started");
        std::thread::yield_now();
    }
    let out = tw(&[
        "list", "--netns", &ns.name, "--watch", "0.2", "--count", "5", "--format", "json",
    ]);
    stop.store(true, Ordering::Relaxed);
    generator.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0]["time_wait_rate"].is_null());
    let tw_count = |i: usize| lines[i]["states"]["time-wait"].as_u64().unwrap();
    let (mut arrived, mut busy) = (0, 0);
    for (i, l) in lines.iter().enumerate().skip(1) {
        assert_eq!(l["sample"], i as u64 + 1);
        let new = l["time_wait_new"].as_u64().unwrap();
        let rate = l["time_wait_rate"].as_f64().unwrap();
        let dt = l["interval_s"].as_f64().unwrap();
        assert!((rate * dt - new as f64).abs() < 1e-6 * new as f64 + 1e-9);
        if new > 0 {
            busy += 1;
        }
        assert_eq!(
            l["change"]["time-wait"].as_i64().unwrap(),
            tw_count(i) as i64 - tw_count(i - 1) as i64
        );
        arrived += new;
    }
    // The generator makes a connection every few ms; allow one 0.2 s gap on a loaded machine.
    assert!(
        busy >= 3,
        "arrivals seen in {busy} of 4 intervals: {lines:?}"
    );
    // Nothing leaves TIME_WAIT within a second, so arrivals are exactly the growth.
    assert_eq!(arrived, tw_count(4) - tw_count(0));
    assert_eq!(lines[0]["namespaces"][0]["netns"], ns.name.as_str());
}

#[test]
fn watch_stops_on_ctrl_c_with_exit_0() {
    let mut child = Command::new(BIN)
        .args(["list", "--watch", "0.2", "--state", "listening"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("total="), "{line}");
    let t0 = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = t0 + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "watch did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "stopped promptly: {:?}",
        t0.elapsed()
    );
}

#[test]
fn watch_usage_errors() {
    let out = tw(&["list", "--watch", "0.2", "--format", "prometheus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output"));
    let out = tw(&["list", "--watch", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'soon'"));
}

#[test]
fn namespaces_without_cap_sys_admin_give_one_line_naming_it() {
    // Drop CAP_SYS_ADMIN from the bounding set so the exec'd binary lacks it even as root.
    let run = |args: &[&str]| {
        let mut all = vec!["--inh-caps=-sys_admin", "--bounding-set=-sys_admin", BIN];
        all.extend_from_slice(args);
        Command::new("setpriv").args(&all).output()
    };
    let Ok(list) = run(&["list", "--all-netns"]) else {
        eprintln!("\n*** SKIP: setpriv (util-linux) not found ***\n");
        return;
    };
    if !root() {
        return;
    }
    assert_eq!(list.status.code(), Some(1));
    let err = String::from_utf8_lossy(&list.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("CAP_SYS_ADMIN") && err.contains("--all-netns"),
        "{err}"
    );
    let chk = run(&["check", "--netns", "/proc/self/ns/net"]).unwrap();
    assert_eq!(chk.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&chk.stdout)
            .starts_with("TW_INSPECT UNKNOWN - --netns needs root or CAP_SYS_ADMIN")
    );
}
