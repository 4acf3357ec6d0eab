//! Filter semantics on real sockets: the values of one flag are alternatives,
//! different flags must all match. Each filter is checked against `ss` given
//! the same rule, against counts known from how the sockets were made, and
//! against a snapshot of the same namespace replayed through the matcher.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::util::*;
use serde_json::Value;

/// (state, local, peer) rows, sorted, so two views of one table compare whole.
type Rows = Vec<(String, String, String)>;

/// An unspecified address of either family as `*`: ss prints `*` for `::`
/// where tw-inspect prints `::`.
fn any(endpoint: String) -> String {
    match endpoint.rsplit_once(':') {
        Some(("::" | "0.0.0.0", port)) => format!("*:{port}"),
        _ => endpoint,
    }
}

fn rows_of(v: &Value) -> Rows {
    let end = |a: &Value, p: &Value| any(format!("{}:{}", a.as_str().unwrap(), p));
    let mut rows: Rows = v["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap().to_string(),
                end(&s["local"], &s["local_port"]),
                end(&s["peer"], &s["peer_port"]),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Every socket `list` reports with `flags`, live or from `load`.
fn list_rows(flags: &[String], load: Option<&Path>) -> Rows {
    let mut args = vec!["list", "--state", "all", "--sockets", "--top", "0"];
    args.extend(["--format", "json"]);
    if let Some(f) = load {
        args.extend(["--load", f.to_str().unwrap()]);
    }
    args.extend(flags.iter().map(String::as_str));
    let v = json(&args);
    let rows = rows_of(&v);
    assert_eq!(v["total"], rows.len() as u64, "{args:?}: total = rows");
    rows
}

fn ss_sorted(filter: &str) -> Rows {
    let rows = if filter.is_empty() {
        ss_rows(&["state", "all"])
    } else {
        ss_rows(&["state", "all", filter])
    };
    let mut rows: Rows = rows
        .into_iter()
        .map(|(st, l, p)| (st, any(l), any(p)))
        .collect();
    rows.sort();
    rows
}

/// A listener on 127.0.0.1 and one on ::1 with the same port.
fn listen_both() -> (u16, TcpListener, TcpListener) {
    let l4 = listen("127.0.0.1:0");
    let port = l4.local_addr().unwrap().port();
    let l6 = listen(&format!("[::1]:{port}"));
    (port, l4, l6)
}

/// `n` connections to `port` on 127.0.0.1 where the server closes first, so
/// the server's side ends in TIME_WAIT (on a dual-stack listener: an IPv6
/// socket with IPv4-mapped addresses).
fn server_closes_first(l: &TcpListener, port: u16, n: usize) {
    for _ in 0..n {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (s, _) = l.accept().unwrap();
        drop(s);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(c.read(&mut [0u8; 16]).unwrap(), 0, "client sees the FIN");
    }
}

fn open(to: &TcpListener, addr: &str) -> (TcpStream, TcpStream) {
    let c = TcpStream::connect(addr).unwrap();
    let (s, _) = to.accept().unwrap();
    (c, s)
}

#[test]
fn or_within_a_flag_and_across_flags() {
    if !private_netns(module_path!(), "or_within_a_flag_and_across_flags") {
        return;
    }
    // Ports A and B on both loopbacks, client-side TIME_WAIT of distinct sizes.
    let (a, a4, a6) = listen_both();
    let (b, b4, b6) = listen_both();
    for (l, n) in [(&a4, 3), (&a6, 2), (&b4, 1), (&b6, 4)] {
        make_time_wait(l, n);
    }
    // C: dual-stack, server-side TIME_WAIT with IPv4-mapped addresses.
    let c6 = listen("[::]:0");
    let c = c6.local_addr().unwrap().port();
    server_closes_first(&c6, c, 2);
    // D: on 127.0.0.2, so its clients' peer is not 127.0.0.1.
    let d4 = listen("127.0.0.2:0");
    let d = d4.local_addr().unwrap().port();
    make_time_wait(&d4, 2);
    // ESTABLISHED pairs to A (IPv4), B (IPv6) and C (mapped).
    let keep = [
        open(&a4, &format!("127.0.0.1:{a}")),
        open(&b6, &format!("[::1]:{b}")),
        open(&c6, &format!("127.0.0.1:{c}")),
    ];

    // Every teardown finished: 14 TIME_WAIT, 6 ESTABLISHED, 6 listeners.
    let all = wait_for(10, "the sockets made to settle", || {
        let rows = list_rows(&[], None);
        let count = |st: &str| rows.iter().filter(|r| r.0 == st).count();
        (count("time-wait") == 14
            && count("established") == 6
            && count("listening") == 6
            && rows.len() == 26
            && rows == ss_sorted(""))
        .then_some(rows)
    });

    // An unfiltered capture of this table, for the matcher.
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("all.twsnap");
    let out = run(&["list", "--state", "all", "--save", snap.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let either = |p: u16| format!("sport = :{p} or dport = :{p}");
    let cases: Vec<(Vec<String>, String, Option<usize>)> = vec![
        // Two ports: both count (before, this matched nothing).
        (
            vec![
                "--port".into(),
                a.to_string(),
                "--port".into(),
                b.to_string(),
            ],
            format!("( {} or {} )", either(a), either(b)),
            // 10 TIME_WAIT, 4 listeners, 4 ESTABLISHED.
            Some(18),
        ),
        // Two peers of different families: both count, mapped peers too.
        (
            vec![
                "--peer".into(),
                "127.0.0.1".into(),
                "--peer".into(),
                "::1".into(),
            ],
            "( dst 127.0.0.1 or dst [::1] )".into(),
            None,
        ),
        // A port AND a peer: only the IPv6 TIME_WAIT to A.
        (
            vec![
                "--port".into(),
                a.to_string(),
                "--peer".into(),
                "::1".into(),
            ],
            format!("( {} ) and ( dst [::1] )", either(a)),
            Some(2),
        ),
        // Two local ports AND a peer: the server end of the IPv6 pair to B.
        (
            vec![
                "--local-port".into(),
                a.to_string(),
                "--local-port".into(),
                b.to_string(),
                "--peer".into(),
                "::1".into(),
            ],
            format!("( sport = :{a} or sport = :{b} ) and ( dst [::1] )"),
            Some(1),
        ),
        // Two peer ports AND a local address: IPv4 clients of A and B.
        (
            vec![
                "--peer-port".into(),
                a.to_string(),
                "--peer-port".into(),
                b.to_string(),
                "--local".into(),
                "127.0.0.1".into(),
            ],
            format!("( dport = :{a} or dport = :{b} ) and ( src 127.0.0.1 )"),
            // 3 + 1 TIME_WAIT, one ESTABLISHED client.
            Some(5),
        ),
        // A port range and a port, AND a peer network: D's clients are out.
        (
            vec![
                "--port".into(),
                format!("{c}-{c}"),
                "--port".into(),
                d.to_string(),
                "--peer".into(),
                "127.0.0.1/32".into(),
            ],
            format!(
                "( {} or {} ) and ( dst 127.0.0.1/32 )",
                either(c),
                either(d)
            ),
            // 2 mapped TIME_WAIT, the mapped server end and its IPv4 client.
            Some(4),
        ),
        // A local port AND a peer port that no socket has together.
        (
            vec![
                "--local-port".into(),
                a.to_string(),
                "--peer-port".into(),
                a.to_string(),
            ],
            format!("( sport = :{a} ) and ( dport = :{a} )"),
            Some(0),
        ),
        // An IPv6 network that holds the mapped range, as the kernel reads it.
        (
            vec![
                "--peer".into(),
                "::/0".into(),
                "--port".into(),
                c.to_string(),
            ],
            format!("( dst ::/0 ) and ( {} )", either(c)),
            None,
        ),
    ];
    for (flags, ss_filter, known) in &cases {
        let live = list_rows(flags, None);
        assert_eq!(live, ss_sorted(ss_filter), "{flags:?} vs ss '{ss_filter}'");
        if let Some(n) = known {
            assert_eq!(live.len(), *n, "{flags:?}: {live:#?}");
        }
        assert!(live.iter().all(|r| all.contains(r)));
        // The matcher on the unfiltered capture agrees with the kernel.
        assert_eq!(
            list_rows(flags, Some(&snap)),
            live,
            "{flags:?} from the snapshot"
        );
        // The summary counts the same sockets.
        let mut args = vec!["list", "--state", "all", "--format", "json"];
        args.extend(flags.iter().map(String::as_str));
        assert_eq!(json(&args)["total"], live.len() as u64, "{flags:?} summary");
    }

    // OR adds up: two peers are the sum of each alone (they are disjoint).
    let one = |p: &str| list_rows(&["--peer".into(), p.into()], None).len();
    let both = list_rows(&cases[1].0, None).len();
    assert!(one("127.0.0.1") > 0 && one("::1") > 0);
    assert_eq!(both, one("127.0.0.1") + one("::1"));
    // The mapped sockets of C are found by an IPv4 peer, in the IPv6 dump.
    let mapped = list_rows(&["-6".into(), "--peer".into(), "127.0.0.1".into()], None);
    assert_eq!(
        mapped.len(),
        3,
        "2 TIME_WAIT and one ESTABLISHED: {mapped:#?}"
    );

    // A capture made with the filter holds what live shows, and says its rule.
    let flags = &cases[0].0;
    let narrow = dir.path().join("narrow.twsnap");
    let mut args = vec!["list", "--state", "all", "--save", narrow.to_str().unwrap()];
    args.extend(flags.iter().map(String::as_str));
    args.extend(["--peer", "::1"]);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut with_peer = flags.clone();
    with_peer.extend(["--peer".into(), "::1".into()]);
    let live = list_rows(&with_peer, None);
    assert!(!live.is_empty());
    assert_eq!(list_rows(&with_peer, Some(&narrow)), live);
    assert_eq!(
        list_rows(&[], Some(&narrow)),
        live,
        "the file holds only those"
    );
    let v = json(&[
        "list",
        "--load",
        narrow.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(
        v["snapshot"]["captured_filter"],
        serde_json::json!([format!("(port {a} or port {b})"), "peer ::1"])
    );
    drop((keep, a4, a6, b4, b6, c6, d4));
}

/// `ss`'s own state names, and the names in its State column, select the
/// sockets `ss` selects with its names.
#[test]
fn ss_state_spellings_select_what_ss_selects() {
    if !private_netns(module_path!(), "ss_state_spellings_select_what_ss_selects") {
        return;
    }
    let (a, a4, _a6) = listen_both();
    make_time_wait(&a4, 3);
    let _keep = [
        open(&a4, &format!("127.0.0.1:{a}")),
        open(&a4, &format!("127.0.0.1:{a}")),
    ];
    // A half-closed pair: FIN_WAIT2 on the client, CLOSE_WAIT on the server.
    let (c, s) = open(&a4, &format!("127.0.0.1:{a}"));
    c.shutdown(std::net::Shutdown::Write).unwrap();
    wait_for(10, "the sockets made to settle", || {
        let rows = list_rows(&[], None);
        (rows.len() == 11 && rows == ss_sorted("")).then_some(())
    });
    for (ours, theirs) in [
        ("estab", "established"),
        ("ESTAB", "established"),
        ("syn-rcv", "syn-rcv"),
        ("unconn", "unconnected"),
        ("unconnected", "unconnected"),
        ("close", "close"),
        ("listen", "listening"),
        ("LISTEN", "listening"),
        ("fin-wait-2", "fin-wait-2"),
        ("close-wait", "close-wait"),
        ("time-wait", "time-wait"),
        ("bucket", "bucket"),
        ("big", "big"),
        ("connected", "connected"),
        ("synchronized", "synchronized"),
    ] {
        let flags = ["--state".to_string(), ours.to_string()];
        let mut args = vec!["list", "--state", ours, "--sockets", "--top", "0"];
        args.extend(["--format", "json"]);
        // ss leaves out its State column when one state is asked for: compare
        // the endpoints.
        let ends = |rows: Rows| {
            let mut e: Vec<(String, String)> =
                rows.into_iter().map(|(_, l, p)| (any(l), any(p))).collect();
            e.sort();
            e
        };
        let mine = ends(rows_of(&json(&args)));
        let want = ends(ss_rows(&["state", theirs]));
        assert!(!want.is_empty() || ["syn-rcv", "unconnected", "close"].contains(&theirs));
        assert_eq!(
            mine, want,
            "--state {ours} against ss state {theirs} ({flags:?})"
        );
    }
    drop((c, s));
}
