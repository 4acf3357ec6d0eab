//! The /proc fallback reports the same sockets as sock_diag: listeners,
//! established connections and TIME_WAIT, over IPv4 and IPv6, in a private network
//! namespace.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use tw_inspect::diag::{self, Options, procfs};
use tw_inspect::filter::{Cond, PortRange, Query, Side};
use tw_inspect::socket::{Family, SocketRecord};
use tw_inspect::state::TcpState;

/// The fields both sources must agree on.
type Key = (Family, TcpState, IpAddr, u16, IpAddr, u16);

fn key(r: &SocketRecord) -> Key {
    (
        r.family,
        r.state,
        r.local,
        r.local_port,
        r.peer,
        r.peer_port,
    )
}

fn query_for(ports: &[u16]) -> Query {
    // One condition per query keeps the kernel filter and Query::matches simple;
    // the ports are compared below.
    let lo = *ports.iter().min().unwrap();
    let hi = *ports.iter().max().unwrap();
    Query::default().and(Cond::Port(Side::Either, PortRange { lo, hi }))
}

fn ours(ports: &[u16], r: &SocketRecord) -> bool {
    ports.contains(&r.local_port) || ports.contains(&r.peer_port)
}

fn netlink(q: &Query, ports: &[u16]) -> BTreeSet<Key> {
    let c = diag::collect(q, Options::default(), Vec::<SocketRecord>::new).unwrap();
    c.sink.iter().filter(|r| ours(ports, r)).map(key).collect()
}

fn proc(q: &Query, ports: &[u16]) -> BTreeSet<Key> {
    let c = procfs::collect(q, Vec::<SocketRecord>::new).unwrap();
    c.sink.iter().filter(|r| ours(ports, r)).map(key).collect()
}

/// A listener, one established connection and one connection in TIME_WAIT on
/// the client side (the client closes first).
struct Scene {
    _listener: TcpListener,
    _est: (TcpStream, TcpStream),
    port: u16,
    tw_client: SocketAddr,
}

fn scene(loopback: &str) -> Scene {
    let listener = TcpListener::bind((loopback, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let est_c = TcpStream::connect(addr).unwrap();
    let (est_s, _) = listener.accept().unwrap();

    let tw_c = TcpStream::connect(addr).unwrap();
    let tw_client = tw_c.local_addr().unwrap();
    let (mut tw_s, _) = listener.accept().unwrap();
    drop(tw_c); // client FIN first
    let mut buf = [0u8; 1];
    assert_eq!(
        tw_s.read(&mut buf).unwrap(),
        0,
        "server sees the client's FIN"
    );
    drop(tw_s); // server FIN: the client goes to TIME_WAIT
    Scene {
        _listener: listener,
        _est: (est_c, est_s),
        port: addr.port(),
        tw_client,
    }
}

/// Waits until the client side is in TIME_WAIT and the server side has left
/// LAST_ACK (it goes once the client's last ACK is processed), so both
/// sources see a table that no longer changes.
fn wait_for_time_wait(q: &Query, ports: &[u16], tw_client: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = netlink(q, ports);
        let tw = seen
            .iter()
            .any(|k| k.1 == TcpState::TimeWait && k.3 == tw_client.port());
        let closing = seen.iter().any(|k| {
            !matches!(
                k.1,
                TcpState::TimeWait | TcpState::Listen | TcpState::Established
            )
        });
        if tw && !closing {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no settled TIME_WAIT for {tw_client} within 10 s: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn proc_reports_the_same_sockets_as_netlink() {
    // Ports are per family: another test's IPv4 port may equal ours on IPv6,
    // so the comparison runs in a namespace of its own.
    if !crate::util::private_netns(module_path!(), "proc_reports_the_same_sockets_as_netlink") {
        return;
    }
    let v4 = scene("127.0.0.1");
    let v6 = scene("::1");
    let ports = [v4.port, v6.port];
    let q = query_for(&ports);
    wait_for_time_wait(&q, &ports, v4.tw_client);
    wait_for_time_wait(&q, &ports, v6.tw_client);

    let from_netlink = netlink(&q, &ports);
    let from_proc = proc(&q, &ports);
    assert_eq!(from_netlink, from_proc);

    // And what both agree on is what we built: per family 1 listener,
    // 2 established (client and server side), 1 TIME_WAIT; the server half of
    // the closed connection is gone.
    for (fam, port) in [(Family::V4, v4.port), (Family::V6, v6.port)] {
        let count = |st| from_proc.iter().filter(|k| k.0 == fam && k.1 == st).count();
        assert_eq!(
            count(TcpState::Listen),
            1,
            "{fam:?} listeners in {from_proc:?}"
        );
        assert_eq!(
            count(TcpState::Established),
            2,
            "{fam:?} established in {from_proc:?}"
        );
        assert_eq!(
            count(TcpState::TimeWait),
            1,
            "{fam:?} TIME_WAIT in {from_proc:?}"
        );
        assert!(
            from_proc
                .iter()
                .any(|k| k.0 == fam && k.1 == TcpState::TimeWait && k.5 == port)
        );
    }
}

#[test]
fn proc_applies_the_query() {
    // Ports are per family: another test's IPv4 port may equal ours on IPv6,
    // so the comparison runs in a namespace of its own.
    if !crate::util::private_netns(module_path!(), "proc_applies_the_query") {
        return;
    }
    let v4 = scene("127.0.0.1");
    let ports = [v4.port];
    let mut q = query_for(&ports);
    wait_for_time_wait(&q, &ports, v4.tw_client);
    q.states = tw_inspect::state::StateSet::from_states(&[TcpState::TimeWait]);
    q.ipv6 = false;
    let got = proc(&q, &ports);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got.iter()
            .all(|k| k.1 == TcpState::TimeWait && k.0 == Family::V4)
    );
    assert_eq!(got, netlink(&q, &ports));
}

#[test]
fn binary_falls_back_on_request_and_says_so() {
    // Ports are per family: another test's IPv4 port may equal ours on IPv6,
    // so the comparison runs in a namespace of its own.
    if !crate::util::private_netns(module_path!(), "binary_falls_back_on_request_and_says_so") {
        return;
    }
    let v4 = scene("127.0.0.1");
    let ports = [v4.port];
    wait_for_time_wait(&query_for(&ports), &ports, v4.tw_client);
    let run = |source: &str| {
        Command::new(env!("CARGO_BIN_EXE_tw-inspect"))
            .args(["list", "--sockets", "--format", "json", "-4", "--port"])
            .arg(v4.port.to_string())
            .env("TW_INSPECT_SOURCE", source)
            .output()
            .unwrap()
    };
    let out = run("proc");
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one warning line: {err:?}");
    assert!(
        err.starts_with("tw-inspect: warning: sock_diag unavailable"),
        "{err:?}"
    );
    assert!(err.contains("/proc/net/tcp"), "{err:?}");
    let proc_json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(proc_json["source"], "proc");

    let out = run("netlink");
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let nl_json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(nl_json["source"], "netlink");

    let rows = |v: &serde_json::Value| -> BTreeSet<String> {
        v["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{} {}:{} {}:{}",
                    s["state"], s["local"], s["local_port"], s["peer"], s["peer_port"]
                )
            })
            .collect()
    };
    assert_eq!(rows(&proc_json), rows(&nl_json));
    assert_eq!(
        rows(&proc_json).len(),
        4,
        "listener, 2 established, 1 TIME_WAIT: {:?}",
        rows(&proc_json)
    );
    assert_eq!(proc_json["states"], nl_json["states"]);

    let bad = run("carrier-pigeon");
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("carrier-pigeon"), "{err}");
}
