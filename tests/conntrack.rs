//! Conntrack beside the socket table: the ctnetlink parser on bytes captured
//! from the kernel (tests/fixtures/conntrack/), and `list --conntrack` against
//! real conntrack in private network namespaces, compared with `conntrack -L`
//! and nf_conntrack_count.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use tw_inspect::conntrack::{CtEntry, CtState, PROTO_TCP, PROTO_UDP};
use tw_inspect::diag::conntrack_parse::{CtParseStats, parse_datagram};
use tw_inspect::diag::parse::{Flow, ParseError};
use tw_inspect::socket::Family;

use crate::util::*;

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/conntrack")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse_all(bytes: &[u8]) -> (Result<Flow, ParseError>, Vec<CtEntry>) {
    let mut got = Vec::new();
    let mut stats = CtParseStats::default();
    let r = parse_datagram(bytes, Some(1), &mut stats, |e| got.push(*e));
    (r, got)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn fixture_entries_are_the_ones_conntrack_listed() {
    let (r, entries) = parse_all(&fixture("dump_mixed.bin"));
    assert_eq!(r, Ok(Flow::Done));
    let key = |e: &CtEntry| (e.proto, e.tcp_state, e.src, e.sport, e.dst, e.dport);
    let got: Vec<_> = entries.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (
                PROTO_TCP,
                Some(CtState::TimeWait),
                ip("127.0.0.1"),
                40001,
                ip("127.0.0.1"),
                5000
            ),
            (
                PROTO_TCP,
                Some(CtState::Established),
                ip("::1"),
                40003,
                ip("::1"),
                5002
            ),
            (
                PROTO_UDP,
                None,
                ip("127.0.0.1"),
                40004,
                ip("127.0.0.1"),
                5003
            ),
            (
                PROTO_TCP,
                Some(CtState::Established),
                ip("127.0.0.1"),
                40002,
                ip("127.0.0.1"),
                5001
            ),
        ]
    );
    assert_eq!(entries[1].family, Family::V6);
    // 119 s left of conntrack's 120 s TIME_WAIT when captured.
    assert!((100..=120).contains(&entries[0].timeout_s));
    assert!(entries.iter().all(|e| !e.is_nat()));
    assert_eq!(entries[0].reply_src, ip("127.0.0.1"));
}

#[test]
fn fixture_eperm_is_the_kernels_refusal() {
    let (r, entries) = parse_all(&fixture("error_eperm.bin"));
    assert_eq!(r, Err(ParseError::Kernel(libc::EPERM)));
    assert!(entries.is_empty());
}

#[test]
fn every_cut_and_flipped_byte_of_the_fixture_is_handled() {
    let m = fixture("dump_mixed.bin");
    for cut in 0..m.len() {
        let mut stats = CtParseStats::default();
        let _ = parse_datagram(&m[..cut], None, &mut stats, |_| {});
    }
    for i in 0..m.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = m.clone();
            b[i] ^= flip;
            let mut stats = CtParseStats::default();
            let mut n = 0u64;
            let _ = parse_datagram(&b, None, &mut stats, |_| n += 1);
            assert_eq!(n, stats.entries);
            assert!(n <= 4, "byte {i} ^ {flip:#x}: {n} entries from 4");
        }
    }
}

// ---- against the kernel -------------------------------------------------

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Root, conntrack and iptables: what the kernel tests need. Without them a
/// test says why on stderr and passes (CI installs both and runs as root).
fn can_track() -> bool {
    let ok = is_root() && have("conntrack") && have("iptables");
    if !ok {
        eprintln!("SKIP: needs root, conntrack and iptables");
    }
    ok
}

/// Makes this (private) namespace track connections, IPv4 and IPv6.
fn track_here() {
    for tool in ["iptables", "ip6tables"] {
        track_with(tool);
    }
}

fn track_with(tool: &str) {
    let st = Command::new(tool)
        .args([
            "-A",
            "OUTPUT",
            "-m",
            "conntrack",
            "--ctstate",
            "NEW,ESTABLISHED",
            "-j",
            "ACCEPT",
        ])
        .status()
        .unwrap();
    assert!(st.success(), "{tool} rule");
}

/// `conntrack -L -p tcp` lines, by state.
fn conntrack_tcp_states() -> std::collections::BTreeMap<String, u64> {
    let out = Command::new("conntrack")
        .args(["-L", "-p", "tcp"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut m = std::collections::BTreeMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        // tcp      6 119 TIME_WAIT src=...
        if let Some(st) = l.split_whitespace().nth(3) {
            *m.entry(st.to_string()).or_insert(0) += 1;
        }
    }
    m
}

fn nf_count() -> u64 {
    std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Makes `n` connections to a new listener where the client closes first:
/// `n` socket TIME_WAIT on the client side, `n` conntrack TIME_WAIT entries.
fn closed_connections(n: usize) -> std::net::TcpListener {
    let l = listen("127.0.0.1:0");
    make_time_wait(&l, n);
    l
}

fn ct_state<'a>(v: &'a serde_json::Value, state: &str) -> &'a serde_json::Value {
    v["conntrack"]["entries"]["states"]
        .as_array()
        .expect("conntrack states")
        .iter()
        .find(|s| s["state"] == state)
        .unwrap_or_else(|| panic!("no {state} row in {v}"))
}

#[test]
fn time_wait_entries_match_conntrack_and_nf_conntrack_count() {
    if !can_track()
        || !private_netns(
            module_path!(),
            "time_wait_entries_match_conntrack_and_nf_conntrack_count",
        )
    {
        return;
    }
    track_here();
    let _l = closed_connections(40);
    // Two open connections: ESTABLISHED entries beside the TIME_WAIT ones.
    let l2 = listen("127.0.0.1:0");
    let open: Vec<_> = (0..2)
        .map(|_| {
            let c = std::net::TcpStream::connect(l2.local_addr().unwrap()).unwrap();
            (c, l2.accept().unwrap().0)
        })
        .collect();
    let v = json(&["list", "--conntrack", "--format", "json"]);
    let kernel = conntrack_tcp_states();
    let count = nf_count();
    let tw = ct_state(&v, "TIME_WAIT");
    assert_eq!(tw["conntrack"], kernel["TIME_WAIT"], "{v}");
    assert_eq!(tw["conntrack"], 40);
    // nf_conntrack_count minus the entries in other states (and protocols).
    let others: u64 = kernel
        .iter()
        .filter(|(s, _)| *s != "TIME_WAIT")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(tw["conntrack"].as_u64().unwrap(), count - others);
    assert_eq!(ct_state(&v, "ESTABLISHED")["conntrack"], 2);
    // Beside them, the sockets: 40 client TIME_WAIT, 2 × 2 ESTABLISHED ends.
    assert_eq!(tw["sockets"], 40);
    assert_eq!(ct_state(&v, "ESTABLISHED")["sockets"], 4);
    assert_eq!(v["conntrack"]["status"], "in-use");
    assert_eq!(v["conntrack"]["count"], count);
    let dest = &v["conntrack"]["entries"]["destinations"][0];
    assert_eq!(dest["port"], _l.local_addr().unwrap().port());
    assert_eq!(dest["time_wait"], 40);
    // The table shows the same, and CSV and Prometheus parse.
    let out = run(&["list", "--conntrack"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    // The conntrack state's row (the socket part has "TIME_WAIT incoming, ..." headings).
    let row = text
        .lines()
        .find(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some("TIME_WAIT")
                && f.next()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit() || b == b','))
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["TIME_WAIT", "40", "40"]
    );
    let csv = run(&["list", "--conntrack", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(
        csv.lines().any(|l| l == "state,TIME_WAIT,,,40,,40,"),
        "{csv}"
    );
    let prom = run(&["list", "--conntrack", "--format", "prometheus"]);
    let prom = String::from_utf8_lossy(&prom.stdout);
    assert!(
        prom.contains("tw_inspect_conntrack_tcp_entries{state=\"TIME_WAIT\"} 40\n"),
        "{prom}"
    );
    assert!(prom.contains("# TYPE tw_inspect_conntrack_events_total counter\n"));
    if have("promtool") {
        let mut p = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        p.stdin.take().unwrap().write_all(prom.as_bytes()).unwrap();
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(open);
}

#[test]
fn a_namespace_without_rules_says_not_in_use() {
    if !can_track() || !private_netns(module_path!(), "a_namespace_without_rules_says_not_in_use") {
        return;
    }
    let _l = closed_connections(5);
    assert_eq!(nf_count(), 0, "no rule: nothing tracked");
    let out = run(&["list", "--conntrack"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("conntrack not in use in this namespace"),
        "{text}"
    );
    let v = json(&["list", "--conntrack", "--format", "json"]);
    assert_eq!(v["conntrack"]["status"], "not-in-use");
    assert!(v["conntrack"]["entries"].is_null());
    assert_eq!(v["states"]["time-wait"], 5);
    // The default view says nothing of an unused table.
    let out = run(&["list"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Conntrack"));
}

/// A copy of the binary every user can run, and the command running it as `nobody`.
fn as_nobody(args: &[&str]) -> (tempfile::TempDir, std::process::Output) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("tw-inspect");
    std::fs::copy(bin_path(), &bin).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(&bin)
        .args(args)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (dir, out)
}

fn bin_path() -> &'static str {
    bin()
}

#[test]
fn without_net_admin_the_capability_is_named_and_sockets_still_listed() {
    if !can_track()
        || !private_netns(
            module_path!(),
            "without_net_admin_the_capability_is_named_and_sockets_still_listed",
        )
    {
        return;
    }
    track_here();
    let _l = closed_connections(12);
    let (_d, out) = as_nobody(&["list", "--conntrack", "--format", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["states"]["time-wait"], 12, "the socket part is whole");
    assert!(v["conntrack"]["entries"].is_null());
    assert!(
        v["conntrack"]["entries_note"]
            .as_str()
            .unwrap()
            .contains("CAP_NET_ADMIN")
    );
    // The size needs no privilege.
    assert_eq!(v["conntrack"]["count"], 12);
    let (_d, out) = as_nobody(&["list", "--conntrack"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CAP_NET_ADMIN") && text.contains("time-wait"),
        "{text}"
    );
}

/// The largest conntrack table of any namespace on the host now.
fn largest_table() -> u64 {
    let mut max = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = e.path().join("net/stat/nf_conntrack");
        if let Ok(t) = std::fs::read_to_string(&p)
            && let Some(n) = t.lines().nth(1).and_then(|l| l.split_whitespace().next())
        {
            max = max.max(u64::from_str_radix(n, 16).unwrap_or(0));
        }
    }
    max
}

/// nf_conntrack_max is host-wide on this kernel (read-only in a namespace):
/// it is set from the namespace the test started in (the parent process's,
/// which made this one) and put back on drop.
struct HostMax {
    before: String,
}

fn write_host_max(v: &str) {
    let v = v.to_string();
    std::thread::spawn(move || {
        let parent = nix::unistd::getppid();
        let ns = std::fs::File::open(format!("/proc/{parent}/ns/net")).unwrap();
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        if let Err(e) = std::fs::write("/proc/sys/net/netfilter/nf_conntrack_max", &v) {
            panic!("setting nf_conntrack_max to {v}: {e}");
        }
    })
    .join()
    .unwrap();
}

impl HostMax {
    fn set(max: u64) -> HostMax {
        let before = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_max")
            .unwrap()
            .trim()
            .to_string();
        let guard = HostMax { before };
        write_host_max(&max.to_string());
        guard
    }
}

impl Drop for HostMax {
    fn drop(&mut self) {
        write_host_max(&self.before);
    }
}

fn stat_drops() -> u64 {
    let t = std::fs::read_to_string("/proc/thread-self/net/stat/nf_conntrack").unwrap();
    let mut lines = t.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let col = head.iter().position(|h| *h == "drop").unwrap();
    lines
        .map(|l| u64::from_str_radix(l.split_whitespace().nth(col).unwrap(), 16).unwrap())
        .sum()
}

#[test]
fn a_full_table_is_diagnosed_and_its_drops_counted() {
    if !can_track()
        || !private_netns(
            module_path!(),
            "a_full_table_is_diagnosed_and_its_drops_counted",
        )
    {
        return;
    }
    track_here();
    // Low, but above every other namespace's table, so that only ours fills.
    let max = (largest_table() + 200).max(256);
    let guard = HostMax::set(max);
    let l = closed_connections(max as usize);
    assert_eq!(nf_count(), max);
    // The next connection's SYN finds the table full: dropped, so the
    // connect does not complete (a nearby closing entry may be evicted
    // instead now and then, so try a few).
    let addr = l.local_addr().unwrap();
    let before = stat_drops();
    let failed = (0..20).any(|_| {
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300)).is_err()
    });
    assert!(failed, "a connection went through a full table");
    let drops = stat_drops();
    assert!(drops > before, "drop counter {before} -> {drops}");
    let v = json(&["list", "--conntrack", "--format", "json"]);
    let check = run(&[
        "check",
        "-w",
        "conntrack-drops=0",
        "-c",
        "conntrack-fill=90",
    ]);
    drop(guard);
    let kinds: Vec<&str> = v["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"conntrack-full"), "{kinds:?}");
    assert!(kinds.contains(&"conntrack-drops"), "{kinds:?}");
    let full = v["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "conntrack-full")
        .unwrap();
    assert_eq!(full["severity"], "critical");
    assert_eq!(full["data"]["max"], max);
    assert_eq!(v["conntrack"]["stats"]["drop"], stat_drops());
    assert!(v["conntrack"]["fill"].as_f64().unwrap() >= 0.99);
    let line = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(2), "{line}");
    assert!(line.starts_with("TW_INSPECT CRITICAL"), "{line}");
    assert!(line.contains("conntrack_drops="), "{line}");
    // The default view shows the table by itself now.
    let out = run(&["list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Conntrack table:"));
}

/// Every flag `--conntrack` is not refused with changes what it shows, or
/// applies to the socket part beside it.
#[test]
fn conntrack_with_other_flags_is_honoured() {
    if !can_track() || !private_netns(module_path!(), "conntrack_with_other_flags_is_honoured") {
        return;
    }
    track_here();
    let _a = closed_connections(6);
    let _b = closed_connections(3);
    let v6 = listen("[::1]:0");
    make_time_wait(&v6, 2);
    // --top: the destinations are cut, the rest summed.
    let v = json(&["list", "--conntrack", "--top", "1", "--format", "json"]);
    let e = &v["conntrack"]["entries"];
    assert_eq!(e["destinations"].as_array().unwrap().len(), 1);
    assert_eq!(e["destinations"][0]["time_wait"], 6);
    assert_eq!(e["other_destinations"]["time_wait"], 5);
    // -4 / -6: the entries of that family only (the table's count is both).
    let v = json(&["list", "--conntrack", "-6", "--format", "json"]);
    assert_eq!(v["conntrack"]["entries"]["ipv4"], 0);
    assert_eq!(ct_state(&v, "TIME_WAIT")["conntrack"], 2);
    assert_eq!(v["conntrack"]["count"], 11);
    // --state: the sockets beside the entries follow it; an uncounted one is null.
    let v = json(&[
        "list",
        "--conntrack",
        "--state",
        "established",
        "--format",
        "json",
    ]);
    assert!(ct_state(&v, "TIME_WAIT")["sockets"].is_null(), "{v}");
    assert_eq!(ct_state(&v, "TIME_WAIT")["conntrack"], 11);
    // --by: the socket groups change, the conntrack part stays.
    let v = json(&[
        "list",
        "--conntrack",
        "--by",
        "local-port",
        "--format",
        "json",
    ]);
    assert_eq!(v["group_by"], "local-port");
    assert_eq!(ct_state(&v, "TIME_WAIT")["conntrack"], 11);
    // --explain: the table adds each conntrack state's meaning.
    let out = run(&["list", "--conntrack", "--explain"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("both FINs acknowledged"), "{text}");
    // --netns: the namespace's own table, labelled.
    let name = format!("tw-ct-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "attach", &name, &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let v = json(&["list", "--conntrack", "--netns", &name, "--format", "json"]);
    let _ = Command::new("ip").args(["netns", "delete", &name]).status();
    assert_eq!(v["namespaces"][0]["netns"], name.as_str());
    assert_eq!(v["namespaces"][0]["conntrack"]["count"], 11);
    // --watch --output: the whole report, conntrack included, rewritten each sample.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ct.json");
    let f = file.to_str().unwrap();
    let out = run(&[
        "list",
        "--conntrack",
        "--watch",
        "0.1",
        "--count",
        "2",
        "--format",
        "json",
        "--output",
        f,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(ct_state(&v, "TIME_WAIT")["conntrack"], 11);
}
