//! `tw-inspect demo` against the real kernel: every scenario runs, and the test
//! checks the sequence of states the demo observed, not only its verdict.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tw-inspect");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running tw-inspect")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn scenario<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

fn steps(s: &Value) -> &Vec<Value> {
    s["steps"].as_array().unwrap()
}

fn state(v: &Value) -> Option<&str> {
    v["state"].as_str()
}

fn side_states(s: &Value, side: &str) -> Vec<Option<String>> {
    steps(s)
        .iter()
        .map(|st| state(&st[side]).map(str::to_string))
        .collect()
}

fn ever(s: &Value, side: &str, want: &str) -> bool {
    side_states(s, side)
        .iter()
        .any(|x| x.as_deref() == Some(want))
}

fn action_has(s: &Value, text: &str) -> bool {
    steps(s)
        .iter()
        .any(|st| st["action"].as_str().unwrap().contains(text))
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

#[test]
fn list_names_every_scenario_with_its_claim() {
    let out = run(&["demo", "--list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "active-close",
        "server-close",
        "abort",
        "simultaneous",
        "reuse",
        "lost-ack",
        "timeout",
        "cost",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        assert!(line.len() > name.len() + 20, "no claim for {name}: {line}");
    }

    // The same list as JSON: an array of {name, claim}, in the table's order.
    let out = run(&["demo", "--list", "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let v = json_of(&out);
    let entries = v.as_array().expect("an array");
    assert_eq!(entries.len(), text.lines().count());
    for (e, line) in entries.iter().zip(text.lines()) {
        let (name, claim) = (e["name"].as_str().unwrap(), e["claim"].as_str().unwrap());
        assert_eq!(e.as_object().unwrap().len(), 2, "{e}");
        assert!(
            line.starts_with(name) && line.ends_with(claim),
            "{line} vs {e}"
        );
    }
    let csv = run(&["demo", "--list", "--format", "csv"]);
    assert_eq!(csv.status.code(), Some(2));
}

#[test]
fn unknown_scenario_is_a_usage_error_naming_the_valid_ones() {
    let out = run(&["demo", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("'nope'") && err.contains("active-close") && err.contains("cost"),
        "{err}"
    );
    let out = run(&["demo", "--count", "0", "cost"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["demo", "--pace", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'soon'"));
}

/// The whole default run, in a private namespace, as JSON: every claim
/// confirmed, each shown by the states the kernel reported, in under 30 s.
#[test]
fn every_scenario_shows_its_sequence() {
    let t0 = Instant::now();
    let out = run(&["demo", "--pace", "0", "--format", "json"]);
    let took = t0.elapsed();
    let doc = json_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}\n{doc:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        took < Duration::from_secs(30),
        "the default run took {took:?}"
    );
    assert_eq!(doc["scenarios"].as_array().unwrap().len(), 8);
    for s in doc["scenarios"].as_array().unwrap() {
        assert_eq!(s["verdict"], "confirmed", "{s:#}");
    }

    // active-close: the client passes FIN_WAIT1/2 to TIME_WAIT with 55-60 s left;
    // the server passes CLOSE_WAIT and is never in TIME_WAIT.
    let s = scenario(&doc, "active-close");
    assert!(
        ever(s, "client", "fin-wait-1") && ever(s, "client", "fin-wait-2"),
        "{s:#}"
    );
    assert!(ever(s, "server", "close-wait"));
    assert!(!ever(s, "server", "time-wait"), "{s:#}");
    let tw = steps(s)
        .iter()
        .find(|st| state(&st["client"]) == Some("time-wait"))
        .expect("client time-wait");
    let left = tw["client"]["expires_ms"].as_u64().unwrap();
    assert!(
        (55_000..=60_000).contains(&left),
        "time-wait had {left} ms left"
    );
    assert_eq!(tw["client"]["timer"], "timewait");
    assert!(steps(s).last().unwrap()["server"].is_null());

    // server-close: the server keeps the TIME_WAIT, the client never has one.
    let s = scenario(&doc, "server-close");
    assert!(ever(s, "client", "close-wait"));
    assert!(!ever(s, "client", "time-wait"));
    assert_eq!(
        state(&steps(s).last().unwrap()["server"]),
        Some("time-wait")
    );

    // abort: no TIME_WAIT anywhere, ECONNRESET on the peer's read.
    let s = scenario(&doc, "abort");
    assert!(
        !ever(s, "client", "time-wait") && !ever(s, "server", "time-wait"),
        "{s:#}"
    );
    assert!(action_has(s, "read() fails with ECONNRESET"), "{s:#}");

    // simultaneous: FIN_WAIT1 on both, CLOSING, TIME_WAIT on both.
    let s = scenario(&doc, "simultaneous");
    assert!(
        steps(s)
            .iter()
            .any(|st| state(&st["client"]) == Some("fin-wait-1")
                && state(&st["server"]) == Some("fin-wait-1"))
    );
    assert!(
        ever(s, "client", "closing") || ever(s, "server", "closing"),
        "{s:#}"
    );
    let last = steps(s).last().unwrap();
    assert_eq!(
        (state(&last["client"]), state(&last["server"])),
        (Some("time-wait"), Some("time-wait"))
    );

    // reuse (a)-(d).
    let s = scenario(&doc, "reuse");
    for r in ["0", "1", "2"] {
        let n = steps(s)
            .iter()
            .filter(|st| {
                let a = st["action"].as_str().unwrap();
                a.starts_with(&format!("(a) tcp_tw_reuse={r}:"))
                    && a.ends_with("fails with EADDRNOTAVAIL")
            })
            .count();
        assert_eq!(n, 2, "(a) tcp_tw_reuse={r}: {s:#}");
    }
    assert!(steps(s).iter().any(|st| {
        let a = st["action"].as_str().unwrap();
        a.starts_with("(b) bind") && a.contains("connect connected")
    }));
    assert!(action_has(
        s,
        "(c) third connect at once fails with EADDRNOTAVAIL"
    ));
    assert!(action_has(
        s,
        "(c) tcp_tw_reuse=0: connect fails with EADDRNOTAVAIL"
    ));
    assert!(action_has(
        s,
        "(c) tcp_tw_reuse=2 (loopback): connect connected"
    ));
    let binds: Vec<&str> = steps(s)
        .iter()
        .map(|st| st["action"].as_str().unwrap())
        .filter(|a| a.starts_with("(d) new listener"))
        .collect();
    assert_eq!(binds.len(), 4, "{binds:?}");
    assert!(
        binds[..3]
            .iter()
            .all(|a| a.ends_with("fails with EADDRINUSE")),
        "{binds:?}"
    );
    assert!(binds[3].ends_with("succeeds"), "{binds:?}");

    // lost-ack: LAST_ACK with retransmits while the client holds TIME_WAIT, then
    // the server gone without a reset; with TIME_WAIT destroyed, a reset.
    let s = scenario(&doc, "lost-ack");
    let st = steps(s);
    let held = st
        .iter()
        .position(|x| {
            state(&x["client"]) == Some("time-wait")
                && state(&x["server"]) == Some("last-ack")
                && x["server"]["retransmits"].as_u64().unwrap() >= 1
        })
        .expect("last-ack with a retransmitted FIN");
    let clean = st
        .iter()
        .position(|x| x["action"] == "server: SO_ERROR is no error")
        .expect("clean end");
    assert!(held < clean && st[clean]["server"].is_null());
    let reset = st
        .iter()
        .position(|x| x["action"] == "server: SO_ERROR is ECONNRESET")
        .expect("reset end");
    assert!(clean < reset && st[reset]["server"].is_null());
    assert!(
        s.get("reason").is_none(),
        "nothing skipped in a namespace: {s:#}"
    );

    // timeout: retransmits, ETIMEDOUT, client gone with no TIME_WAIT, server still established.
    let s = scenario(&doc, "timeout");
    assert!(
        steps(s)
            .iter()
            .any(|x| x["client"]["retransmits"].as_u64().unwrap_or(0) >= 1)
    );
    assert!(!ever(s, "client", "time-wait"));
    let last = steps(s).last().unwrap();
    assert!(last["client"].is_null() && state(&last["server"]) == Some("established"));
    assert!(
        last["action"]
            .as_str()
            .unwrap()
            .ends_with("SO_ERROR is ETIMEDOUT"),
        "{last}"
    );

    // cost: all 10,000 in TIME_WAIT, and the memory read from the kernel.
    let s = scenario(&doc, "cost");
    assert!(
        action_has(s, "sock_diag: 10000 client sockets in time-wait"),
        "{s:#}"
    );
    assert!(action_has(s, "sockstat: tw "));
    if is_root() {
        assert!(action_has(s, "slabinfo: tw_sock_TCP"), "{s:#}");
    }
}

/// As an ordinary user on the host's loopback, the demo completes, and says which
/// privileged parts it skipped.
#[test]
fn unprivileged_on_the_host_skips_and_says_so() {
    let args = [
        "demo", "--host", "--pace", "0", "--format", "json", "--count", "300", "reuse", "lost-ack",
        "cost",
    ];
    let out = if is_root() {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args(args)
            .output()
            .expect("setpriv")
    } else {
        run(&args)
    };
    let doc = json_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}\n{doc:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("skipped"), "{err}");
    assert_eq!(doc["isolation"], "host");
    let reuse = scenario(&doc, "reuse");
    assert_eq!(reuse["verdict"], "confirmed");
    let why = reuse["reason"].as_str().unwrap();
    assert!(why.contains("(a)") && why.contains("(c)"), "{why}");
    // Outside a user namespace an ordinary user may not destroy sockets, and some
    // kernels also refuse it socket filters: either way the reason is given.
    let lost = scenario(&doc, "lost-ack");
    let why = lost["reason"].as_str().unwrap();
    match lost["verdict"].as_str().unwrap() {
        "confirmed" => {
            assert!(why.contains("SOCK_DESTROY"), "{lost:#}");
            assert!(action_has(lost, "SO_ERROR is no error"));
        }
        "skipped" => assert!(why.contains("SO_ATTACH_FILTER"), "{lost:#}"),
        v => panic!("lost-ack {v}: {lost:#}"),
    }
    let cost = scenario(&doc, "cost");
    assert!(
        cost["reason"].as_str().unwrap().contains("slabinfo"),
        "{cost:#}"
    );
}

/// An ordinary user still gets a private namespace (user namespaces), where
/// SOCK_DESTROY is permitted.
#[test]
fn unprivileged_gets_a_private_namespace_where_the_kernel_allows() {
    let args = ["demo", "--pace", "0", "--format", "json", "lost-ack"];
    let out = if is_root() {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args(args)
            .output()
            .expect("setpriv")
    } else {
        run(&args)
    };
    let doc = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    let lost = scenario(&doc, "lost-ack");
    if doc["isolation"] == "namespace" {
        assert!(lost.get("reason").is_none(), "{lost:#}");
        assert!(action_has(lost, "SO_ERROR is ECONNRESET"));
    } else {
        assert!(String::from_utf8_lossy(&out.stderr).contains("no private network namespace"));
    }
}

/// Ctrl-C (or a hang-up) in the middle of a scenario on the host leaves none
/// of its sockets listening, established or half-closed.
#[test]
fn sigint_or_sighup_mid_scenario_leaves_no_socket_behind() {
    for sig in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        interrupt_mid_scenario(sig);
    }
}

fn interrupt_mid_scenario(sig: nix::sys::signal::Signal) {
    let mut child = Command::new(BIN)
        .args(["demo", "--host", "--pace", "1s", "simultaneous"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut port = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("connects to port ").nth(1) {
            port = rest
                .split(',')
                .next()
                .and_then(|p| p.trim().parse::<u16>().ok());
        }
        // Both sockets now in FIN_WAIT1 with drop-all filters: the worst moment.
        if line.contains("both: shutdown") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "demo did not reach the shutdown step"
        );
    }
    let port = port.expect("port in the output");
    let before =
        tw_inspect::demo::timeline::dump_port(port, tw_inspect::state::StateSet::all()).unwrap();
    assert!(
        before
            .iter()
            .any(|r| r.state == tw_inspect::state::TcpState::Listen),
        "{before:?}"
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + sig as i32), "{sig}");
    use tw_inspect::state::TcpState::*;
    let bad = [
        Listen,
        Established,
        SynSent,
        SynRecv,
        FinWait1,
        FinWait2,
        CloseWait,
        LastAck,
        Closing,
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = tw_inspect::demo::timeline::dump_port(port, tw_inspect::state::StateSet::all())
            .unwrap();
        let stuck: Vec<_> = left.iter().filter(|r| bad.contains(&r.state)).collect();
        if stuck.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sockets left behind on port {port}: {stuck:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
