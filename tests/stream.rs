//! `list --sockets` writes each socket as the kernel hands it over. Every
//! format lists the same sockets as the others, as the collected (sorted)
//! listing and as `ss`, with the same summary as `list` without rows; a
//! reader leaving mid-stream is quiet; `-o` still replaces its file whole.
//! (That each row's text is what the contract structs serialize to is checked
//! by the property tests in src/render/rows.rs.)

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// The sockets a test keeps open while it looks.
struct Mixed {
    _keep: Vec<TcpStream>,
    _listeners: Vec<TcpListener>,
}

/// Both families and most states: TIME_WAIT (IPv4 and IPv6), ESTABLISHED,
/// LISTEN, CLOSE_WAIT with an orphaned FIN_WAIT2 peer, and an IPv4 client of
/// a dual-stack listener (seen through an IPv4-mapped address).
fn mixed_states() -> Mixed {
    let v4 = listen("127.0.0.1:0");
    let v6 = listen("[::1]:0");
    make_time_wait(&v4, 5);
    make_time_wait(&v6, 4);
    let mut keep = Vec::new();
    // ESTABLISHED, both ends.
    keep.push(TcpStream::connect(v4.local_addr().unwrap()).unwrap());
    keep.push(v4.accept().unwrap().0);
    // The client closes, the server does not: CLOSE_WAIT and an orphaned FIN_WAIT2.
    let c = TcpStream::connect(v6.local_addr().unwrap()).unwrap();
    let (mut s, _) = v6.accept().unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(s.read(&mut [0u8; 4]).unwrap(), 0);
    drop(c);
    keep.push(s);
    // The server is in CLOSE_WAIT as soon as it reads the end, but the kernel
    // may delay the ACK of that FIN (pingpong mode), so the client's move from
    // FIN_WAIT1 to FIN_WAIT2 is awaited.
    wait_for(10, "the client's FIN acknowledged (FIN_WAIT2)", || {
        let out = Command::new("ss")
            .args(["-tanH", "state", "fin-wait-2"])
            .output()
            .unwrap();
        (!out.stdout.is_empty()).then_some(())
    });
    // A dual-stack listener and an IPv4 client.
    let dual = listen("[::]:0");
    let port = dual.local_addr().unwrap().port();
    keep.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
    keep.push(dual.accept().unwrap().0);
    Mixed {
        _keep: keep,
        _listeners: vec![v4, v6, dual],
    }
}

fn stdout(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{args:?}: {out:?}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What every format shows of a socket: state (and orphaned), both
/// endpoints as `SocketAddr` writes them, timer, uid, inode. (Time left
/// moves between runs; the table has no cookie.)
type Common = (String, bool, String, String, String, u64, u64);

fn endpoint(ip: &str, port: u64) -> String {
    SocketAddr::new(ip.parse().unwrap(), port as u16).to_string()
}

fn common_of_json(o: &Value) -> Common {
    (
        o["state"].as_str().unwrap().to_string(),
        o["orphaned"].as_bool().unwrap(),
        endpoint(
            o["local"].as_str().unwrap(),
            o["local_port"].as_u64().unwrap(),
        ),
        endpoint(
            o["peer"].as_str().unwrap(),
            o["peer_port"].as_u64().unwrap(),
        ),
        o["timer"].as_str().unwrap().to_string(),
        o["uid"].as_u64().unwrap(),
        o["inode"].as_u64().unwrap(),
    )
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// A socket object without the members that move between runs.
fn steady(mut o: Value) -> Value {
    let m = o.as_object_mut().unwrap();
    m.remove("expires_ms");
    m.remove("type");
    o
}

/// A summary without what moves between runs (the collection time, the
/// counters' interval, the groups' timer spread) and without the CLOSE_WAIT
/// ages, which the summary view alone measures (with a second dump).
fn steady_summary(mut v: Value) -> Value {
    let m = v.as_object_mut().unwrap();
    for k in [
        "collect_ms",
        "type",
        "sockets",
        "counters_change",
        "close_wait",
        "close_wait_other",
        "close_wait_oldest_ms",
    ] {
        m.remove(k);
    }
    for g in m["groups"].as_array_mut().unwrap() {
        let g = g.as_object_mut().unwrap();
        g.remove("soonest_ms");
        g.remove("latest_ms");
    }
    v
}

#[test]
fn every_format_streams_the_same_sockets() {
    if !private_netns(module_path!(), "every_format_streams_the_same_sockets") {
        return;
    }
    let _m = mixed_states();
    let json: Value = serde_json::from_str(&stdout(&["list", "--sockets", "--format", "json"]))
        .expect("one JSON document");
    let rows: Vec<Value> = json["sockets"].as_array().unwrap().clone();
    assert_eq!(rows.len() as u64, json["total"].as_u64().unwrap());
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
    for st in [
        "time-wait",
        "established",
        "listening",
        "close-wait",
        "fin-wait-2",
    ] {
        assert!(states.contains(&st), "no {st} in {states:?}");
    }
    assert!(rows.iter().any(|r| r["family"] == "ipv6"));
    assert!(
        rows.iter()
            .any(|r| r["family"] == "ipv6" && r["peer"] == "127.0.0.1"),
        "the IPv4-mapped peer is shown as IPv4: {rows:?}"
    );

    // NDJSON: the same objects, then the summary as the last line.
    let nd = stdout(&["list", "--sockets", "--format", "ndjson"]);
    let lines: Vec<Value> = nd
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (last, socks) = lines.split_last().unwrap();
    assert_eq!(last["type"], "summary");
    assert!(socks.iter().all(|l| l["type"] == "socket"));
    assert_eq!(
        sorted(
            socks
                .iter()
                .map(|o| steady(o.clone()).to_string())
                .collect()
        ),
        sorted(
            rows.iter()
                .map(|o| steady(o.clone()).to_string())
                .collect::<Vec<_>>()
        ),
    );

    // The collected listing (--sort holds every row first) has the same rows.
    let held: Value = serde_json::from_str(&stdout(&[
        "list",
        "--sockets",
        "--format",
        "json",
        "--sort",
        "peer",
    ]))
    .unwrap();
    let held = held["sockets"].as_array().unwrap();
    assert_eq!(
        sorted(held.iter().map(|o| steady(o.clone()).to_string()).collect()),
        sorted(
            rows.iter()
                .map(|o| steady(o.clone()).to_string())
                .collect::<Vec<_>>()
        ),
    );
    let peers: Vec<String> = held
        .iter()
        .map(|o| o["peer"].as_str().unwrap().to_string())
        .collect();
    let v4_first = peers.iter().position(|p| p.contains(':'));
    assert!(
        v4_first.is_none_or(|i| peers[i..].iter().all(|p| p.contains(':'))),
        "sorted by peer, IPv4 first: {peers:?}"
    );

    // CSV and the table: the same sockets.
    let want: Vec<Common> = sorted(rows.iter().map(common_of_json).collect());
    let csv = stdout(&["list", "--sockets", "--format", "csv"]);
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    let head: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let from_csv: Vec<Common> = rd
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[col("state")].to_string(),
                &r[col("orphaned")] == "true",
                endpoint(&r[col("local")], r[col("local_port")].parse().unwrap()),
                endpoint(&r[col("peer")], r[col("peer_port")].parse().unwrap()),
                r[col("timer")].to_string(),
                r[col("uid")].parse().unwrap(),
                r[col("inode")].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(sorted(from_csv), want);
    let table = stdout(&["list", "--sockets"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().trim_start().starts_with("State"));
    let from_table: Vec<Common> = lines
        .filter(|l| l.starts_with(' '))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let orphaned = f[1] == "(orphaned)";
            let f = if orphaned {
                [&f[..1], &f[2..]].concat()
            } else {
                f
            };
            (
                f[0].to_string(),
                orphaned,
                f[1].to_string(),
                f[2].to_string(),
                f[3].to_string(),
                f[6].parse().unwrap(),
                f[7].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(sorted(from_table), want);
    assert!(
        table.ends_with(&format!("\n{} sockets\n", rows.len())),
        "{table}"
    );

    // The kernel's own tool sees the same sockets. (ss writes `*` for both
    // addresses of a dual-stack listener on `[::]`, which util reads as 0.0.0.0.)
    let ss: Vec<(String, String, String)> = sorted(ss_rows(&["-a"]));
    let ours: Vec<(String, String, String)> = sorted(
        rows.iter()
            .map(|o| {
                let dual = o["local"] == "::";
                let addr = |a: &str| {
                    if dual {
                        "0.0.0.0".to_string()
                    } else {
                        a.to_string()
                    }
                };
                (
                    o["state"].as_str().unwrap().to_string(),
                    format!("{}:{}", addr(o["local"].as_str().unwrap()), o["local_port"]),
                    format!("{}:{}", addr(o["peer"].as_str().unwrap()), o["peer_port"]),
                )
            })
            .collect(),
    );
    assert_eq!(ours, ss);

    // The summary after the rows is the summary `list` writes without them.
    let alone: Value = serde_json::from_str(&stdout(&["list", "--format", "json"])).unwrap();
    assert_eq!(steady_summary(json.clone()), steady_summary(alone.clone()));
    assert_eq!(steady_summary(last.clone()), steady_summary(alone));
}

/// Many sockets, so that the output is far larger than a pipe buffer and the
/// dump is still running when the reader leaves.
#[test]
fn a_reader_leaving_mid_stream_is_quiet() {
    if !private_netns(module_path!(), "a_reader_leaving_mid_stream_is_quiet") {
        return;
    }
    let l = listen("127.0.0.1:0");
    make_time_wait(&l, 20_000);
    for format in ["table", "json", "ndjson", "csv"] {
        let mut child = Command::new(bin())
            .args(["list", "--sockets", "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 4096];
        let mut out = child.stdout.take().unwrap();
        out.read_exact(&mut first).unwrap();
        drop(out);
        let started = Instant::now();
        let done = child.wait_with_output().unwrap();
        assert_eq!(done.status.code(), Some(0), "{format}: {done:?}");
        assert!(
            done.stderr.is_empty(),
            "{format}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{format} went on after its reader left"
        );
    }
}

/// `-o` streams into a temporary file and renames it whole: a reader polling
/// the file while `--watch` rewrites it never sees part of a document.
#[test]
fn output_file_appears_whole() {
    if !private_netns(module_path!(), "output_file_appears_whole") {
        return;
    }
    let l = listen("127.0.0.1:0");
    make_time_wait(&l, 3_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sockets.json");
    let mut child = Command::new(bin())
        .args(["list", "--sockets", "--format", "json", "--watch", "0.1"])
        .args(["--count", "10", "-o", path.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = BTreeMap::new();
    loop {
        let exited = child.try_wait().unwrap().is_some();
        if let Ok(text) = std::fs::read(&path) {
            let v: Value = serde_json::from_slice(&text)
                .unwrap_or_else(|e| panic!("a partial file ({} bytes): {e}", text.len()));
            assert_eq!(
                v["sockets"].as_array().unwrap().len(),
                3_001,
                "3,000 TIME_WAIT and the listener"
            );
            *seen.entry(text.len()).or_insert(0) += 1;
        }
        if exited {
            break;
        }
        std::thread::yield_now();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!seen.is_empty());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["sockets.json"], "no temporary file left");
}
