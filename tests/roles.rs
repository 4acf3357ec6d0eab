//! Roles on real servers and clients: nginx with keepalive off under `ab`
//! (server-side TIME_WAIT, compared with `ss`), curl towards keepalive servers
//! (client-side TIME_WAIT, compared with the plan), the Prometheus series per
//! role (their sums, promtool), and the listener edge cases: a listener gone,
//! a wildcard IPv6 listener taking IPv4, an IPv4-mapped listener.

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;

use serde_json::Value;

use crate::monitoring::promtool_check;
use crate::util::*;

const BIN: &str = env!("CARGO_BIN_EXE_tw-inspect");

fn need(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIP: {tool} is needed (installed by .ci/run)");
    }
    found
}

/// `ss -tanH state time-wait FILTER | wc -l` in `ns`.
fn ss_time_wait(ns: &str, filter: &str) -> u64 {
    in_ns(ns, &["ss", "-tanH", "state", "time-wait", filter])
        .lines()
        .count() as u64
}

fn tw_json(ns: &str, args: &[&str]) -> Value {
    let mut a = vec![BIN, "list"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--format", "json"]);
    serde_json::from_str(&in_ns(ns, &a)).expect("JSON")
}

fn group<'a>(v: &'a Value, role: &str, key: &str, val: &Value) -> Option<&'a Value> {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["role"] == role && &g[key] == val)
}

/// nginx serving port 80 with keepalive off (it closes first: TIME_WAIT on
/// its side) and two keepalive servers that curl leaves first (TIME_WAIT on
/// the client's side). Every group is checked against `ss` or the plan.
#[test]
fn nginx_and_ab_by_role_match_ss_and_the_plan() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: needs root (nginx on port 80 in a namespace of its own)");
        return;
    }
    if !["nginx", "ab", "curl", "nsenter", "unshare"]
        .iter()
        .all(|t| need(t))
    {
        return;
    }
    const REQUESTS: u64 = 1000;
    // The generator's plan for the client side: (address, port, connections).
    const PLAN: [(&str, u16, u64); 2] = [("127.0.0.1", 8080, 40), ("127.0.0.2", 8081, 25)];
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
  server {{ listen 80; keepalive_timeout 0; location / {{ return 200 \"closes\\n\"; }} }}\n\
  server {{ listen 127.0.0.1:8080; keepalive_timeout 65; location / {{ return 200 \"stays\\n\"; }} }}\n\
  server {{ listen 127.0.0.2:8081; keepalive_timeout 65; location / {{ return 200 \"stays\\n\"; }} }}\n}}\n"
        ),
    )
    .unwrap();
    let srv = ns_server(
        &format!("nginx -p {d} -c {} -g 'daemon off;'", conf.display()),
        8081,
    );
    let ab = in_ns(
        &srv.ns,
        &[
            "ab",
            "-n",
            &REQUESTS.to_string(),
            "-c",
            "8",
            "http://127.0.0.1/",
        ],
    );
    assert!(ab.contains("Failed requests:        0"), "{ab}");
    for (addr, port, n) in PLAN {
        for _ in 0..n {
            let body = in_ns(&srv.ns, &["curl", "-sS", &format!("http://{addr}:{port}/")]);
            assert_eq!(body, "stays\n");
        }
    }

    let v = tw_json(&srv.ns, &["--top", "0"]);
    // The kernel's own tool, right after: nothing expires within a minute.
    let on_80 = ss_time_wait(&srv.ns, "sport = :80");
    // ab may open a connection or two beyond -n and close them itself unused.
    let ab_extra = ss_time_wait(&srv.ns, "dport = :80");
    // nginx closed every connection first; a client port ab reuses within
    // the minute ends that TIME_WAIT early (a SYN on its four-tuple).
    assert!(on_80 > REQUESTS * 9 / 10 && on_80 <= REQUESTS, "{on_80}");
    let incoming = group(&v, "incoming", "local_port", &80.into())
        .unwrap_or_else(|| panic!("no incoming group for port 80: {v:#}"));
    assert_eq!(incoming["count"], on_80, "{incoming}");
    assert_eq!(incoming["local"], "127.0.0.1");
    assert_eq!(incoming["listening"], true);
    assert_eq!(incoming["process"]["comm"], "nginx", "{incoming}");
    // Outgoing: exactly the plan, plus ab's own extras towards port 80.
    let mut want: Vec<(String, u64, u64)> = PLAN
        .iter()
        .map(|(a, p, n)| (a.to_string(), u64::from(*p), *n))
        .collect();
    if ab_extra > 0 {
        want.push(("127.0.0.1".into(), 80, ab_extra));
    }
    want.sort();
    let mut got: Vec<(String, u64, u64)> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["role"] == "outgoing")
        .map(|g| {
            (
                g["peer"].as_str().unwrap().to_string(),
                g["peer_port"].as_u64().unwrap(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, want, "{v:#}");
    for g in v["groups"].as_array().unwrap() {
        if g["role"] == "outgoing" {
            assert!(g["headroom"].as_u64().unwrap() > 28_000, "{g}");
        }
    }
    let tw = v["states"]["time-wait"].as_u64().unwrap();
    assert_eq!(tw, ss_time_wait(&srv.ns, ""));
    assert_eq!(
        v["roles"]["time-wait"]["incoming"].as_u64().unwrap()
            + v["roles"]["time-wait"]["outgoing"].as_u64().unwrap(),
        tw
    );
    assert_eq!(v["roles"]["time-wait"]["incoming"], on_80);
    assert_eq!(v["roles"]["listening"]["incoming"], 3, "{v:#}");

    // The table: the two sections, nginx named.
    let table = in_ns(&srv.ns, &[BIN, "list"]);
    assert!(
        table.contains(&format!(
            "TIME_WAIT incoming, by local port (top 1 of 1 group, {} sockets)",
            on_80.to_string().replace("000", ",000")
        )),
        "{table}"
    );
    assert!(
        table.contains("TIME_WAIT outgoing, by destination"),
        "{table}"
    );
    assert!(table.contains("nginx ("), "{table}");

    // Prometheus: per role, with `other`, adding up to the total, whatever --top.
    for top in ["10", "1"] {
        let text = in_ns(
            &srv.ns,
            &[BIN, "list", "--format", "prometheus", "--top", top],
        );
        let series: Vec<(&str, u64)> = text
            .lines()
            .filter(|l| l.starts_with("tw_inspect_time_wait{"))
            .map(|l| {
                let (k, n) = l.rsplit_once(' ').unwrap();
                (k, n.parse().unwrap())
            })
            .collect();
        let sum = |role: &str| -> u64 {
            series
                .iter()
                .filter(|(k, _)| k.contains(&format!("role=\"{role}\"")))
                .map(|(_, n)| n)
                .sum()
        };
        assert_eq!(
            sum("incoming") + sum("outgoing"),
            tw,
            "--top {top}:\n{text}"
        );
        assert_eq!(sum("incoming"), on_80, "--top {top}");
        assert_eq!(series.iter().map(|(_, n)| n).sum::<u64>(), tw);
        assert!(
            text.contains(&format!(
                "tw_inspect_time_wait{{role=\"incoming\",local_port=\"80\"}} {on_80}\n"
            )),
            "{text}"
        );
        promtool_check(&text);
    }
    // --prom-port keeps a port as its own series, none there included.
    let text = in_ns(
        &srv.ns,
        &[
            BIN,
            "list",
            "--format",
            "prometheus",
            "--top",
            "1",
            "--prom-port",
            "443,80",
        ],
    );
    assert!(
        text.contains("tw_inspect_time_wait{role=\"incoming\",local_port=\"443\"} 0\n"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "tw_inspect_time_wait{{role=\"incoming\",local_port=\"80\"}} {on_80}\n"
    )));
    promtool_check(&text);
    // The former series, by peer and port, on request: they add up too.
    let old = in_ns(
        &srv.ns,
        &[BIN, "list", "--format", "prometheus", "--by", "peer+port"],
    );
    let old_sum: u64 = old
        .lines()
        .filter(|l| l.starts_with("tw_inspect_time_wait{"))
        .map(|l| {
            assert!(!l.contains("role="), "{l}");
            l.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(old_sum, tw);
    eprintln!(
        "nginx + ab: {on_80} incoming TIME_WAIT on port 80 (ss agrees), outgoing {got:?}, total {tw}"
    );
}

/// A server-side TIME_WAIT made on `l`: the server closes first.
fn server_closes_first(l: &TcpListener, connect_to: SocketAddr) {
    let c = TcpStream::connect(connect_to).unwrap();
    let (s, _) = l.accept().unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!((&c).read(&mut buf).unwrap(), 0, "the client sees the FIN");
    drop(c);
    assert_eq!((&s).read(&mut buf).unwrap(), 0, "the server sees the FIN");
}

#[test]
fn listener_edge_cases() {
    if !private_netns(module_path!(), "listener_edge_cases") {
        return;
    }
    // 1. A listener gone: port 7000 is no ephemeral port, the clients' are.
    let gone = listen("127.0.0.1:7000");
    for _ in 0..4 {
        server_closes_first(&gone, "127.0.0.1:7000".parse().unwrap());
    }
    drop(gone);
    // Ports inside the ephemeral range from here on: only a listener makes
    // their TIME_WAIT incoming.
    // 2. A wildcard IPv6 listener taking IPv4 (the connection's address is
    // IPv4-mapped, shown as IPv4).
    let dual = TcpListener::bind("[::]:45001").unwrap();
    for _ in 0..3 {
        server_closes_first(&dual, "127.0.0.1:45001".parse().unwrap());
    }
    // 3. A listener on an IPv4-mapped address.
    let mapped = TcpListener::bind("[::ffff:127.0.0.1]:45002").unwrap();
    for _ in 0..2 {
        server_closes_first(&mapped, "127.0.0.1:45002".parse().unwrap());
    }
    // 4. A listener gone from an ephemeral port: its TIME_WAIT cannot be told
    // from a client's (documented).
    let ephemeral = listen("127.0.0.1:45003");
    server_closes_first(&ephemeral, "127.0.0.1:45003".parse().unwrap());
    drop(ephemeral);
    let v = json(&["list", "--format", "json", "--top", "0"]);
    let find = |port: u64| {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["local_port"] == port)
            .unwrap_or_else(|| panic!("no group for port {port}: {v:#}"))
            .clone()
    };
    let g = find(7000);
    assert_eq!(
        (&g["role"], &g["count"], &g["listening"]),
        (&"incoming".into(), &4.into(), &false.into()),
        "a gone listener's TIME_WAIT is still incoming: {g}"
    );
    let me = std::fs::read_to_string("/proc/self/comm").unwrap();
    for (port, n) in [(45001, 3), (45002, 2)] {
        let g = find(port);
        assert_eq!(g["role"], "incoming", "{g}");
        assert_eq!(g["count"], n, "{g}");
        assert_eq!(g["local"], "127.0.0.1", "shown as IPv4: {g}");
        assert_eq!(g["listening"], true, "{g}");
        assert_eq!(g["process"]["comm"], me.trim_end(), "{g}");
    }
    // The outgoing group of the gone ephemeral listener is keyed by peer.
    let g = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["role"] == "outgoing")
        .unwrap_or_else(|| panic!("{v:#}"))
        .clone();
    assert_eq!(g["role"], "outgoing", "{g}");
    assert_eq!(v["roles"]["time-wait"]["incoming"], 9, "{v:#}");
    assert_eq!(v["roles"]["time-wait"]["outgoing"], 1);
    // The table says the gone listener is gone.
    let text = String::from_utf8(run(&["list"]).stdout).unwrap();
    let row = text
        .lines()
        .find(|l| l.contains(" 7000 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("(none now)"), "{row}");
    // --by still overrides: groups by peer port, no role.
    let by = json(&["list", "--format", "json", "--by", "local-port"]);
    assert_eq!(by["group_by"], "local-port");
    assert!(by["groups"][0].get("role").is_none(), "{by:#}");
    assert_eq!(by["roles"]["time-wait"]["incoming"], 9);
    // ss agrees on where they are.
    assert_eq!(ss_rows(&["state", "time-wait", "sport = :45001"]).len(), 3);
    // check: thresholds per role, and on a kernel counter.
    let out = run(&[
        "check",
        "-w",
        "time-wait:incoming=5",
        "-c",
        "time-wait:outgoing=1",
        "-w",
        "TcpExtTW=1000",
    ]);
    let line = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert!(
        line.starts_with("TW_INSPECT WARNING - time-wait:incoming 9 (warning: above 5), TcpExtTW 10c, time-wait:outgoing 1 |"),
        "{line}"
    );
    assert!(
        line.contains("time_wait_incoming=9;5; TcpExtTW=10c;1000; time_wait_outgoing=1;;1 "),
        "{line}"
    );
}
