//! Snapshots: `list --save` / `list --load`, `ss -D` dumps, and bad files.
//! Socket tables are made by the tests themselves, in private network
//! namespaces so that nothing else changes them between two reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;
use proptest::prelude::*;
use serde_json::Value;
use tw_inspect::aggregate::Pressure;
use tw_inspect::diag::{self, Options};
use tw_inspect::filter::Query;
use tw_inspect::host::sysctl::Sysctls;
use tw_inspect::snapshot::{self, Snapshot};
use tw_inspect::socket::SocketRecord;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// What `TCPDIAG_FILE=FILE ss -tanH` prints, as (peer, peer_port) → count of TIME-WAIT rows.
fn ss_replay(file: &Path) -> BTreeMap<(String, u64), u64> {
    let out = Command::new("ss")
        .args(["-tanH"])
        .env("TCPDIAG_FILE", file)
        .output()
        .expect("run ss");
    assert!(
        out.status.success(),
        "ss replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert!(f.len() >= 5, "unexpected ss line {line:?}");
        assert_eq!(f[0], "TIME-WAIT", "{line}");
        let peer = norm_endpoint(f[4]);
        let (host, port) = peer.rsplit_once(':').unwrap();
        *m.entry((host.to_string(), port.parse().unwrap()))
            .or_insert(0) += 1;
    }
    m
}

/// Removes what legitimately differs between a live run and a snapshot of it.
fn strip(mut v: Value, timers: bool) -> Value {
    let o = v.as_object_mut().unwrap();
    o.remove("source");
    o.remove("snapshot");
    o.remove("collect_ms");
    o.remove("counted_basis");
    // A live run reads the counters twice, a snapshot holds one reading.
    o.remove("counters_change");
    // Socket order is the kernel's walk order (one walk for both families live,
    // one per family in a snapshot), not part of the contract: compare by cookie.
    if let Some(rows) = o.get_mut("sockets").and_then(Value::as_array_mut) {
        rows.sort_by_key(|r| r["cookie"].as_u64());
    }
    if timers {
        for g in o
            .get_mut("groups")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            g.as_object_mut().unwrap().remove("soonest_ms");
            g.as_object_mut().unwrap().remove("latest_ms");
        }
        for r in o
            .get_mut("sockets")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            r.as_object_mut().unwrap().remove("expires_ms");
        }
    }
    v
}

#[test]
fn ss_dump_loads_with_the_counts_ss_replays() {
    if !private_netns(module_path!(), "ss_dump_loads_with_the_counts_ss_replays") {
        return;
    }
    // Known TIME_WAIT groups on several loopback peers and ports.
    let plan = [
        ("127.0.0.1:0", 4),
        ("127.0.0.2:0", 3),
        ("127.0.0.2:0", 2),
        ("127.0.0.3:0", 5),
        ("[::1]:0", 3),
    ];
    let (expect, keep) = time_wait_groups(&plan);
    let total: u64 = expect.values().sum();
    wait_for(10, "the TIME_WAIT sockets", || {
        (ss_rows(&["state", "time-wait"]).len() as u64 == total).then_some(())
    });

    let dir = tmp();
    let dump = dir.path().join("tw.dump");
    let st = Command::new("ss")
        .args(["-tan", "-D", s(&dump), "state", "time-wait"])
        .status()
        .unwrap();
    assert!(st.success());

    let v = json(&[
        "list",
        "--load",
        s(&dump),
        "--by",
        "peer+port",
        "--top",
        "0",
        "--format",
        "json",
    ]);
    let ours = groups(&v);
    assert_eq!(ours, expect, "every group, both families");
    assert_eq!(v["source"], "snapshot");
    assert_eq!(v["snapshot"]["format"], "ss-dump");
    assert!(
        v["snapshot"]["host"].is_null()
            && v["snapshot"]["note"].as_str().unwrap().contains("sysctls")
    );

    // ss replays the file only up to its first NLMSG_DONE, i.e. the IPv4 dump.
    let replayed = ss_replay(&dump);
    let ours_v4: BTreeMap<_, _> = ours
        .into_iter()
        .filter(|((p, _), _)| p.contains('.'))
        .collect();
    assert_eq!(
        replayed, ours_v4,
        "same per-peer-and-port counts as ss's own replay"
    );
    assert_eq!(replayed.values().sum::<u64>(), total - 3);

    // Filters work offline as they do against the kernel.
    let p = keep[1].local_addr().unwrap().port().to_string();
    let v = json(&[
        "list",
        "--load",
        s(&dump),
        "--peer-port",
        &p,
        "--format",
        "json",
    ]);
    assert_eq!(v["total"], 3);
    let v = json(&[
        "list",
        "--load",
        s(&dump),
        "--peer",
        "127.0.0.2",
        "--format",
        "json",
    ]);
    assert_eq!(v["total"], 5);
    let v = json(&[
        "list",
        "--load",
        s(&dump),
        "-6",
        "--sockets",
        "--format",
        "json",
    ]);
    assert_eq!(v["sockets"].as_array().unwrap().len(), 3);

    // The table says where the numbers come from.
    let out = run(&["list", "--load", s(&dump)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().next().unwrap().contains("`ss -D` dump"),
        "{text}"
    );

    // The dump does not say which states ss asked for: only TIME_WAIT, found
    // in it, counts as seen; every other state is unknown, not 0.
    let v = json(&["list", "--load", s(&dump), "--format", "json"]);
    assert_eq!(v["counted_basis"], "found");
    assert_eq!(v["counted_states"], serde_json::json!(["time-wait"]));
    assert_eq!(v["states"]["time-wait"], total);
    for st in ["established", "close-wait", "listening"] {
        assert!(v["states"][st].is_null(), "{st}: {}", v["states"]);
    }
    let row = |st: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(st))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
    };
    assert_eq!(row("time-wait").as_deref(), Some(&*total.to_string()));
    assert_eq!(row("established").as_deref(), Some("-"), "{text}");
    assert!(
        text.contains("only the states found in it count as seen"),
        "{text}"
    );
    let csv = run(&[
        "list",
        "--load",
        s(&dump),
        "--by",
        "state",
        "--state",
        "all",
        "--format",
        "csv",
    ]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    let states: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(states, ["time-wait"], "{csv}");
    let prom = run(&["list", "--load", s(&dump), "--format", "prometheus"]);
    let prom = String::from_utf8(prom.stdout).unwrap();
    let series: Vec<&str> = prom
        .lines()
        .filter(|l| l.starts_with("tw_inspect_sockets{"))
        .collect();
    assert_eq!(series.len(), 2, "time-wait in both families: {prom}");
    assert!(
        series.iter().all(|l| l.contains("state=\"time-wait\"")),
        "{prom}"
    );
}

#[test]
fn save_then_load_equals_live() {
    if !private_netns(module_path!(), "save_then_load_equals_live") {
        return;
    }
    let l1 = listen("127.0.0.1:0");
    let l2 = listen("127.0.0.4:0");
    let l6 = listen("[::1]:0");
    make_time_wait(&l1, 3);
    make_time_wait(&l2, 2);
    make_time_wait(&l6, 2);
    let _c = std::net::TcpStream::connect(l1.local_addr().unwrap()).unwrap();
    let (_a, _) = l1.accept().unwrap();
    wait_for(10, "the TIME_WAIT sockets", || {
        (ss_rows(&["state", "time-wait"]).len() == 7).then_some(())
    });

    let dir = tmp();
    let snap = dir.path().join("s.twsnap");
    let sp = s(&snap);
    // The run that saves prints the live report of the very capture it saved:
    // loading must give exactly the same, timers included.
    let saved = json(&["list", "--save", sp, "--top", "0", "--format", "json"]);
    let loaded = json(&["list", "--load", sp, "--top", "0", "--format", "json"]);
    assert_eq!(loaded["source"], "snapshot");
    assert_eq!(saved["source"], "netlink");
    assert_eq!(
        loaded["collect_ms"], saved["collect_ms"],
        "the capture's own duration"
    );
    // Live, the states counted are those asked; loaded, those captured.
    assert_eq!(saved["counted_basis"], "asked");
    assert_eq!(loaded["counted_basis"], "captured");
    assert_eq!(loaded["counted_states"], saved["counted_states"]);
    assert_eq!(strip(loaded.clone(), false), strip(saved, false));

    // Snapshot fields: this namespace, this host, now.
    let meta = &loaded["snapshot"];
    assert_eq!(meta["format"], "tw-inspect");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(meta["host"], host.trim());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(meta["kernel"], kernel.trim());
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
    assert_eq!(meta["netns_inode"], ino);
    let at = meta["taken_at"].as_str().unwrap();
    assert!(
        at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "{at}"
    );

    // Every list view on the snapshot equals the same view live (timers move).
    let p2 = l2.local_addr().unwrap().port().to_string();
    let views: Vec<Vec<&str>> = vec![
        vec![],
        vec!["--sockets"],
        vec!["--state", "time-wait", "--by", "local-port"],
        vec!["--by", "peer"],
        vec!["--peer-port", &p2],
        vec!["--peer", "127.0.0.0/8", "--state", "time-wait"],
        vec!["-6", "--sockets"],
        vec!["-4", "--state", "established,listening", "--by", "state"],
        vec!["--top", "1"],
    ];
    for view in views {
        let mut live_args = vec!["list", "--format", "json"];
        live_args.extend(&view);
        let mut load_args = live_args.clone();
        load_args.extend(["--load", sp]);
        let live = json(&live_args);
        let off = json(&load_args);
        assert_eq!(strip(off, true), strip(live, true), "view {view:?}");
    }

    // CSV of the groups, minus the timer columns, agrees too.
    let csv = |extra: &[&str]| {
        let mut a = vec!["list", "--format", "csv", "--top", "0"];
        a.extend(extra);
        let out = run(&a);
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split(',').take(3).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
    };
    assert_eq!(csv(&["--load", sp]), csv(&[]));

    // The table names host and time.
    let out = run(&["list", "--load", sp]);
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(
        first.starts_with("Snapshot of ") && first.contains(at) && first.contains(host.trim()),
        "{first}"
    );
}

#[test]
fn port_pressure_offline_uses_the_snapshots_sysctls() {
    if !private_netns(
        module_path!(),
        "port_pressure_offline_uses_the_snapshots_sysctls",
    ) {
        return;
    }
    // A narrow ephemeral range in this namespace only.
    std::fs::write("/proc/sys/net/ipv4/ip_local_port_range", "40000 40009").unwrap();
    let server = listen("127.0.0.5:5000");
    make_time_wait(&server, 6);
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(std::net::TcpStream::connect("127.0.0.5:5000").unwrap());
        open.push(server.accept().unwrap().0);
    }
    wait_for(10, "the TIME_WAIT sockets", || {
        (ss_rows(&["state", "time-wait"]).len() == 6).then_some(())
    });

    let live_range = Sysctls::read_host().ip_local_port_range.unwrap();
    let live = diag::collect(&Query::default(), Options::default(), || {
        Pressure::new(live_range)
    })
    .unwrap();

    let dir = tmp();
    let path = dir.path().join("p.twsnap");
    let out = run(&["list", "--save", s(&path), "--format", "json"]);
    assert!(out.status.success());
    let live_report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // The machine reading the snapshot has other settings: they must not matter.
    std::fs::write("/proc/sys/net/ipv4/ip_local_port_range", "32768 60999").unwrap();

    // The same port-pressure diagnosis offline as live: 8 of 10 ports, critical.
    let offline = json(&["list", "--load", s(&path), "--format", "json"]);
    let pressure = |v: &serde_json::Value| {
        v["diagnoses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["kind"] == "port-pressure")
            .cloned()
            .unwrap_or_else(|| panic!("no port-pressure diagnosis in {}", v["diagnoses"]))
    };
    let (live_d, off_d) = (pressure(&live_report), pressure(&offline));
    assert_eq!(off_d, live_d);
    assert_eq!(off_d["severity"], "critical");
    assert!(
        off_d["message"]
            .as_str()
            .unwrap()
            .starts_with("8 of 10 usable ephemeral ports held"),
        "{off_d}"
    );
    // And this host, with its wide range, sees no pressure at all.
    let now = json(&["list", "--format", "json"]);
    assert!(
        !now["diagnoses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "port-pressure"),
        "{}",
        now["diagnoses"]
    );

    let snap = snapshot::load(&path).unwrap();
    let facts = snap.host_facts();
    let sys = facts.sysctls.clone().unwrap();
    assert_eq!(sys.ip_local_port_range, Some((40000, 40009)));
    assert_eq!(sys.ephemeral_ports(), Some(10));
    assert_eq!(sys.tcp_tw_reuse, Sysctls::read_host().tcp_tw_reuse);
    let listening = facts.listening.unwrap();
    assert!(
        listening
            .iter()
            .any(|l| l.port == 5000 && l.local.to_string() == "127.0.0.5"),
        "{listening:?}"
    );
    assert_eq!(snapshot::load_sysctls(&path).unwrap(), sys);

    // A capture narrowed to TIME_WAIT still records the listeners (a LISTEN-only
    // dump), and says what it holds.
    let narrow = dir.path().join("n.twsnap");
    let out = run(&[
        "list",
        "--save",
        s(&narrow),
        "-s",
        "time-wait",
        "--peer-port",
        "5000",
    ]);
    assert!(out.status.success());
    let n = snapshot::load(&narrow).unwrap();
    assert_eq!(n.host_facts().listening.unwrap(), listening);
    let v = json(&["list", "--load", s(&narrow), "--format", "json"]);
    assert_eq!(
        v["snapshot"]["captured_states"],
        serde_json::json!(["time-wait"])
    );
    assert_eq!(
        v["snapshot"]["captured_filter"],
        serde_json::json!(["peer-port 5000"])
    );
    assert_eq!(v["total"], 6);
    let out = run(&["list", "--load", s(&narrow)]);
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(
        first.contains("holds only time-wait; captured with peer-port 5000"),
        "{first}"
    );

    let c = snap
        .collect(&Query::default(), || {
            Pressure::new(sys.ip_local_port_range.unwrap())
        })
        .unwrap();
    assert_eq!(
        c.sink.sorted(),
        live.sink.sorted(),
        "same port pressure offline as live"
    );
    let top = c.sink.sorted()[0];
    assert_eq!(
        (top.0.peer.to_string(), top.0.peer_port, top.1.in_use()),
        ("127.0.0.5".to_string(), 5000, 8)
    );
    drop(open);
}

/// A real snapshot and a real `ss -D` dump of this host's listeners, for
/// corrupting.
fn fixtures(dir: &Path) -> (PathBuf, PathBuf) {
    let _l = listen("127.0.0.1:0");
    let snap = dir.join("good.twsnap");
    let out = run(&[
        "list",
        "--save",
        s(&snap),
        "--state",
        "listening",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = dir.join("good.dump");
    assert!(
        Command::new("ss")
            .args(["-tan", "-D", s(&dump), "state", "listening"])
            .status()
            .unwrap()
            .success()
    );
    (snap, dump)
}

#[test]
fn malformed_files_give_one_line_errors() {
    let dir = tmp();
    let (good, dump) = fixtures(dir.path());
    let g = std::fs::read(&good).unwrap();
    let d = std::fs::read(&dump).unwrap();
    assert!(d.len() > 40);
    let meta_len = u32::from_le_bytes(g[12..16].try_into().unwrap()) as usize;
    let first_section = 16 + meta_len;
    let newer = format!("version {} is newer", snapshot::VERSION + 1);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty"),
        (
            "png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
            "PNG image",
        ),
        (
            "text",
            b"State Recv-Q Send-Q\nESTAB 0 0\n".to_vec(),
            "text file",
        ),
        ("gzip", vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0], "gzip"),
        ("short-header", g[..12].to_vec(), "truncated"),
        ("cut-metadata", g[..40].to_vec(), "truncated"),
        ("cut-section", g[..g.len() - 10].to_vec(), "truncated"),
        // Only the first socket message: the dump never ends.
        (
            "cut-dump",
            d[..u32::from_ne_bytes(d[..4].try_into().unwrap()) as usize].to_vec(),
            "NLMSG_DONE",
        ),
        ("cut-dump-message", d[..d.len() - 10].to_vec(), "truncated"),
    ];
    let mut m = g.clone();
    m[8..10].copy_from_slice(&(snapshot::VERSION + 1).to_le_bytes());
    cases.push(("future-version", m, &newer));
    let mut m = g.clone();
    m[3] = b'X';
    cases.push(("wrong-magic", m, "signature"));
    let mut m = g.clone();
    m[12..16].copy_from_slice(&(meta_len as u32 + 5000).to_le_bytes());
    cases.push(("lying-metadata-length", m, "truncated"));
    let mut m = g.clone();
    m[first_section + 8..first_section + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    cases.push(("lying-section-length", m, "section header says"));
    let mut m = g.clone();
    // The first socket's local port, inside the IPv4 section's data.
    m[first_section + 16 + 16 + 4] ^= 0x5a;
    cases.push(("flipped-bit", m, "checksum"));
    let mut m = d.clone();
    m[0..4].copy_from_slice(&4000u32.to_ne_bytes());
    cases.push(("lying-nlmsg-len", m, "truncated"));
    let mut m = g.clone();
    m[16] = b'!';
    cases.push(("corrupt-metadata", m, "metadata is not valid"));

    for (name, bytes, want) in &cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = run(&["list", "--load", s(&p)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert!(
            err.starts_with("tw-inspect: ") && err.contains(s(&p)),
            "{name}: names the file: {err}"
        );
        assert!(err.contains(want), "{name}: wanted {want:?} in {err}");
        assert!(out.stdout.is_empty(), "{name}: no output on error");
    }

    // A missing file is an I/O error (exit 1); a directory is not a file to
    // load at all (exit 2, refused before reading).
    for (p, code, want) in [
        (dir.path().join("missing"), 1, "No such file"),
        (dir.path().to_path_buf(), 2, "is a directory"),
    ] {
        let out = run(&["list", "--load", s(&p)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert_eq!(err.lines().count(), 1);
        assert!(err.contains(s(&p)) && err.contains(want), "{err}");
    }
    // --save onto a directory is refused (exit 1, like any path that is not a
    // regular file); nothing is left behind.
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    let out = run(&["list", "--save", s(dir.path())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
}

/// Real datagrams from this kernel, framed both ways (read once).
fn real_files() -> &'static [Vec<u8>] {
    static FILES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    FILES.get_or_init(make_real_files)
}

fn make_real_files() -> Vec<Vec<u8>> {
    let c = diag::collect(
        &Query::default(),
        Options {
            keep_raw: true,
            ..Options::default()
        },
        Vec::<SocketRecord>::new,
    )
    .unwrap();
    let meta = snapshot::Metadata {
        tool: "test".into(),
        hostname: None,
        kernel: None,
        taken_at: "2025-01-01T00:00:00Z".into(),
        netns_inode: None,
        collect_ms: 0.0,
        capture: snapshot::Capture {
            states: vec![],
            filter: vec![],
        },
        sysctls: Sysctls::default(),
        listening: vec![],
        sections: c
            .raw
            .iter()
            .map(|(f, d)| snapshot::SectionInfo {
                family: f.name().into(),
                bytes: d.len() as u64,
                crc32: snapshot::crc32(d),
            })
            .collect(),
        counters: None,
        close_wait_ages: Some(vec![(1, 2)]),
    };
    let mut ours = Vec::new();
    snapshot::write_to(&mut ours, &meta, &c.raw).unwrap();
    let ss_like: Vec<u8> = c.raw.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    vec![ours, ss_like]
}

fn check(bytes: Vec<u8>) {
    // Never a panic; a file that loads must replay.
    if let Ok(snap) = Snapshot::from_bytes(Path::new("fuzz"), bytes) {
        let mut v = Vec::<SocketRecord>::new();
        snap.replay(&Query::default(), &mut v).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn loader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(bytes);
    }

    #[test]
    fn loader_survives_random_bytes_after_a_magic(tail in proptest::collection::vec(any::<u8>(), 0..256), v in 0u16..4) {
        let mut b = snapshot::MAGIC.to_vec();
        b.extend(v.to_le_bytes());
        b.extend(tail);
        check(b);
    }

    #[test]
    fn loader_survives_mutated_real_files(
        which in 0usize..2,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let files = real_files();
        let mut b = files[which].clone();
        for (i, byte) in edits {
            let at = i.index(b.len());
            b[at] = byte;
        }
        if do_cut {
            b.truncate(cut.index(b.len() + 1));
        }
        check(b);
    }
}

/// A file written by the previous format (version 1, before counters and
/// CLOSE_WAIT ages were kept) still loads, roles worked out from its
/// listeners; what it does not hold is absent, never 0.
#[test]
fn version_1_snapshots_still_load() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/snapshot/v1.twsnap"
    );
    let v = json(&["list", "--load", file, "--format", "json"]);
    assert_eq!(v["snapshot"]["version"], 1);
    assert_eq!(v["snapshot"]["host"], "fixture-host");
    assert_eq!(v["states"]["time-wait"], 8);
    assert_eq!(v["states"]["close-wait"], 2);
    assert_eq!(v["roles"]["time-wait"]["incoming"], 3, "{v:#}");
    assert_eq!(v["roles"]["time-wait"]["outgoing"], 5);
    assert!(v.get("counters").is_none(), "{v:#}");
    assert_eq!(v["close_wait"][0]["count"], 2);
    assert!(v["close_wait"][0]["oldest_ms"].is_null());
}

/// Version 2 keeps the kernel's counters and the CLOSE_WAIT ages.
#[test]
fn counters_and_close_wait_ages_survive_save_and_load() {
    if !private_netns(
        module_path!(),
        "counters_and_close_wait_ages_survive_save_and_load",
    ) {
        return;
    }
    let l = listen("127.0.0.1:0");
    make_time_wait(&l, 4);
    let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (held, _) = l.accept().unwrap();
    drop(c);
    wait_for(10, "CLOSE_WAIT", || {
        (json(&["list", "--state", "close-wait", "--format", "json"])["total"] == 1).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let dir = tmp();
    let snap = dir.path().join("v2.twsnap");
    let live = json(&["list", "--format", "json", "--save", s(&snap)]);
    let loaded = json(&["list", "--load", s(&snap), "--format", "json"]);
    assert_eq!(loaded["snapshot"]["version"], snapshot::VERSION);
    assert_eq!(loaded["counters"], live["counters"]);
    assert_eq!(
        loaded["counters"]["TcpExtTW"], 5,
        "4 TIME_WAIT and the FIN_WAIT2"
    );
    let age = live["close_wait"][0]["oldest_ms"].as_u64().unwrap();
    assert!(age >= 300, "{age}");
    assert_eq!(loaded["close_wait"][0]["oldest_ms"], age);
    assert_eq!(loaded["close_wait_oldest_ms"], age);
    // Owners are looked up in /proc, which a snapshot's reader does not share.
    assert_eq!(loaded["close_wait"][0]["process"], Value::Null);
    let text =
        String::from_utf8(run(&["list", "--load", s(&snap), "--format", "prometheus"]).stdout)
            .unwrap();
    assert!(
        text.contains("tw_inspect_kernel_timewait_entered_total 5\n"),
        "{text}"
    );
    drop(held);
}
