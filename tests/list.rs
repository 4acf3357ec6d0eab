//! `list` against real sockets made by the tests, compared with `ss` and /proc.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

use crate::util::*;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, connect, socket};
use serde_json::Value;

#[test]
fn time_wait_groups_are_exact_and_match_ss() {
    if !private_netns(module_path!(), "time_wait_groups_are_exact_and_match_ss") {
        return;
    }
    let plan = [
        ("127.0.0.1:0", 7),
        ("127.0.0.2:0", 5),
        ("[::1]:0", 6),
        ("127.0.0.3:0", 1),
    ];
    let (expect, listeners) = time_wait_groups(&plan);
    let total: u64 = expect.values().sum();
    let v = wait_for(10, "all TIME_WAIT sockets", || {
        let v = json(&[
            "list",
            "--state",
            "time-wait",
            "--by",
            "peer+port",
            "--format",
            "json",
            "--top",
            "0",
        ]);
        (v["total"] == total).then_some(v)
    });
    assert_eq!(groups(&v), expect);
    assert_eq!(v["states"]["time-wait"], total);
    assert!(
        v["states"]["established"].is_null(),
        "only TIME_WAIT was asked of the kernel: {}",
        v["states"]
    );
    assert_eq!(v["counted_states"], serde_json::json!(["time-wait"]));
    assert_eq!(v["counted_basis"], "asked");
    assert_eq!(v["families"]["ipv6"], 6);
    for g in v["groups"].as_array().unwrap() {
        let (soon, late) = (
            g["soonest_ms"].as_u64().unwrap(),
            g["latest_ms"].as_u64().unwrap(),
        );
        assert!(
            soon <= late && late <= 60_000 && soon > 40_000,
            "timer spread {soon}..{late}"
        );
    }
    let ss_count = ss_rows(&["state", "time-wait"]).len() as u64;
    assert_eq!(ss_count, total, "ss sees the same number");

    // --top cuts the list and reports what it left out, so groups add up.
    let v = json(&[
        "list",
        "--state",
        "time-wait",
        "--format",
        "json",
        "--top",
        "2",
    ]);
    let shown: u64 = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .sum();
    assert_eq!(v["groups"].as_array().unwrap().len(), 2);
    assert_eq!(v["groups"][0]["count"], 7);
    assert_eq!(v["other_groups"]["groups"], 2);
    assert_eq!(shown + v["other_groups"]["count"].as_u64().unwrap(), total);

    // Kernel-side filters: one peer port, a peer prefix, IPv6 only, a port range.
    let p = listeners[1].local_addr().unwrap().port().to_string();
    let range = format!("{p}-{p}");
    let filtered: [(&[&str], u64); 5] = [
        (&["--peer-port", &p], 5),
        (&["--peer", "127.0.0.0/30"], 7 + 5 + 1),
        (&["-6"], 6),
        (&["--peer", "::1"], 6),
        (&["--port", &range], 5),
    ];
    for (filter, want) in filtered {
        let mut args = vec!["list", "--state", "time-wait", "--format", "json"];
        args.extend_from_slice(filter);
        assert_eq!(json(&args)["total"], want, "{filter:?}");
    }
    // Grouping by state, local port and local address.
    let v = json(&[
        "list",
        "--state",
        "time-wait",
        "--by",
        "state",
        "--format",
        "json",
    ]);
    assert_eq!(v["groups"][0]["state"], "time-wait");
    assert_eq!(v["groups"][0]["count"], total);
    let v = json(&[
        "list",
        "--state",
        "time-wait",
        "--by",
        "local-port",
        "--top",
        "0",
        "--format",
        "json",
    ]);
    assert_eq!(
        v["groups"].as_array().unwrap().len() as u64,
        total,
        "every client port is its own group"
    );
}

/// Connects without blocking; the SYN may sit unanswered (SYN_SENT).
fn connect_nonblocking(port: u16) -> std::os::fd::OwnedFd {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK,
        None,
    )
    .unwrap();
    let addr = SockaddrIn::new(127, 0, 0, 1, port);
    let _ = connect(fd.as_raw_fd(), &addr); // EINPROGRESS
    fd
}

#[test]
fn every_state_and_endpoint_agrees_with_ss_and_proc() {
    if !private_netns(
        module_path!(),
        "every_state_and_endpoint_agrees_with_ss_and_proc",
    ) {
        return;
    }
    // LISTEN, on both families.
    let l4 = listen("127.0.0.1:0");
    let l6 = listen("[::1]:0");
    // ESTABLISHED pair.
    let c_est = TcpStream::connect(l4.local_addr().unwrap()).unwrap();
    let (s_est, _) = l4.accept().unwrap();
    // FIN_WAIT2 (client, still open) / CLOSE_WAIT (server), IPv6.
    let c_fw2 = TcpStream::connect(l6.local_addr().unwrap()).unwrap();
    let (s_cw, _) = l6.accept().unwrap();
    c_fw2.shutdown(std::net::Shutdown::Write).unwrap();
    // TIME_WAIT.
    let ltw = listen("127.0.0.1:0");
    make_time_wait(&ltw, 3);
    // SYN_SENT: a listener with a full accept queue drops further SYNs.
    let full = listen("127.0.0.1:0");
    let full_port = full.local_addr().unwrap().port();
    let mut queued = Vec::new();
    wait_for(10, "a SYN_SENT socket", || {
        queued.push(connect_nonblocking(full_port));
        let v = json(&["list", "--state", "syn-sent", "--format", "json"]);
        (v["total"].as_u64().unwrap() > 0).then_some(())
    });

    let expect_states = [
        "listening",
        "established",
        "fin-wait-2",
        "close-wait",
        "time-wait",
        "syn-sent",
    ];
    let ours = wait_for(10, "stable states", || {
        let v = json(&["list", "--sockets", "--format", "json"]);
        let rows: BTreeSet<(String, String, String)> = v["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["state"].as_str().unwrap().to_string(),
                    endpoint(&s["local"], &s["local_port"]),
                    endpoint(&s["peer"], &s["peer_port"]),
                )
            })
            .collect();
        let theirs: BTreeSet<_> = ss_rows(&["state", "all"]).into_iter().collect();
        let seen: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        (rows == theirs && expect_states.iter().all(|s| seen.contains(s))).then_some(rows)
    });
    // The same sockets in /proc/net/tcp and tcp6.
    let proc_rows = proc_net_tcp();
    assert_eq!(ours, proc_rows, "/proc/net/tcp{{,6}} agrees");
    // The summary counts agree with the socket list.
    let v = json(&["list", "--format", "json"]);
    for st in expect_states {
        let n = ours.iter().filter(|r| r.0 == st).count() as u64;
        assert_eq!(v["states"][st], n, "{st}");
    }
    assert_eq!(v["states"]["fin-wait-2"], 1);
    assert_eq!(v["states"]["close-wait"], 1);
    assert_eq!(
        v["orphaned"].as_object().unwrap().len(),
        0,
        "nothing orphaned: the FIN_WAIT2 socket is still open"
    );
    drop((c_est, s_est, s_cw, queued));
}

fn endpoint(addr: &Value, port: &Value) -> String {
    format!("{}:{}", addr.as_str().unwrap(), port)
}

/// (state, local, peer) from /proc/net/tcp and tcp6, IPv4-mapped addresses unmapped.
fn proc_net_tcp() -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let st = u8::from_str_radix(f[3], 16).unwrap();
            let name = tw_inspect::state::TcpState::from_kernel(st).unwrap().name();
            out.insert((name.to_string(), proc_endpoint(f[1]), proc_endpoint(f[2])));
        }
    }
    out
}

/// `0100007F:1F90` (host-order 32-bit words in hex) → `127.0.0.1:8080`.
fn proc_endpoint(s: &str) -> String {
    let (a, p) = s.split_once(':').unwrap();
    let port = u16::from_str_radix(p, 16).unwrap();
    let words: Vec<u32> = (0..a.len() / 8)
        .map(|i| u32::from_str_radix(&a[i * 8..i * 8 + 8], 16).unwrap())
        .collect();
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let ip: std::net::IpAddr = if bytes.len() == 4 {
        <[u8; 4]>::try_from(bytes).unwrap().into()
    } else {
        let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).unwrap());
        v6.to_ipv4_mapped().map_or(v6.into(), Into::into)
    };
    format!("{ip}:{port}")
}

#[test]
fn orphaned_fin_wait2_is_marked() {
    if !private_netns(module_path!(), "orphaned_fin_wait2_is_marked") {
        return;
    }
    let l = listen("127.0.0.1:0");
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    drop(c); // closed by the application: FIN_WAIT2 as an orphan while the server holds CLOSE_WAIT
    let v = wait_for(10, "orphaned FIN_WAIT2", || {
        let v = json(&[
            "list",
            "--state",
            "fin-wait-2",
            "--sockets",
            "--format",
            "json",
        ]);
        (v["total"] == 1).then_some(v)
    });
    let row = &v["sockets"][0];
    assert_eq!(row["orphaned"], true);
    assert_eq!(row["inode"], 0);
    assert_eq!(v["orphaned"]["fin-wait-2"], 1);
    drop(s);
}

#[test]
fn csv_and_table_show_the_same_groups() {
    if !private_netns(module_path!(), "csv_and_table_show_the_same_groups") {
        return;
    }
    let l = listen("127.0.0.1:0");
    make_time_wait(&l, 4);
    let port = l.local_addr().unwrap().port();
    wait_for(10, "TIME_WAIT", || {
        (json(&["list", "--state", "time-wait", "--format", "json"])["total"] == 4).then_some(())
    });
    let csv = String::from_utf8(run(&["list", "--format", "csv"]).stdout).unwrap();
    let mut lines = csv.lines();
    // The former columns first, at their places; the role view adds its own after them.
    assert_eq!(
        lines.next().unwrap(),
        "state,peer,peer_port,local,local_port,count,soonest_ms,latest_ms,role,headroom,pid,process"
    );
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        (row[1], row[2], row[5], row[8]),
        ("127.0.0.1", port.to_string().as_str(), "4", "outgoing")
    );
    let table = String::from_utf8(run(&["list"]).stdout).unwrap();
    assert!(
        table.contains("time-wait") && table.contains(&port.to_string()),
        "{table}"
    );
    let sockets_csv = String::from_utf8(
        run(&[
            "list",
            "--state",
            "time-wait",
            "--sockets",
            "--format",
            "csv",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(sockets_csv.lines().count(), 5, "header and four sockets");
}

#[test]
fn wrong_invocations_exit_2_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (&["list", "--state", "bogus"], "bogus"),
        (&["list", "--state", "time-wait,nope"], "nope"),
        (&["list", "--peer", "1.2.3"], "1.2.3"),
        (&["list", "--local", "10.0.0.0/33"], "33"),
        (&["list", "--port", "70000"], "70000"),
        (&["list", "--peer-port", "2000-1000"], "2000-1000"),
        (&["list", "--top", "-1"], "-1"),
        (&["list", "--by", "color"], "color"),
        (&["list", "--format", "xml"], "xml"),
        (&["list", "-4", "-6"], "--ipv6"),
        (&["list", "-4", "--peer", "::1"], "::1"),
        (&["list", "--local-port", ""], "''"),
    ];
    for (args, needle) in cases {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?} one line: {err}"
        );
        assert!(err.contains(needle), "{args:?} names {needle}: {err}");
        assert!(!err.contains("panicked"));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn closed_pipe_is_quiet() {
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "set -o pipefail; {} list --sockets --state all | head -1 >/dev/null",
                bin()
            ),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Writing into a pipe whose reader is gone, with a large output.
    let mut child = std::process::Command::new(bin())
        .args(["list", "--help"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert!(child.wait().unwrap().success());
}
