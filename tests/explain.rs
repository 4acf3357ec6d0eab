//! `explain`: every state, the long form of TIME_WAIT, bad topics, and this
//! host's sysctls checked against /proc/sys.

use std::process::{Command, Output};

use serde_json::Value;

fn tw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tw-inspect"))
        .args(args)
        .output()
        .expect("run tw-inspect")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}, stderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&stdout(&tw(args))).expect("valid JSON")
}

/// Whitespace collapsed, so wrapped text can be searched for phrases.
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

const STATE_NAMES: [&str; 13] = [
    "established",
    "syn-sent",
    "syn-recv",
    "fin-wait-1",
    "fin-wait-2",
    "time-wait",
    "closed",
    "close-wait",
    "last-ack",
    "listening",
    "closing",
    "new-syn-recv",
    "bound-inactive",
];

#[test]
fn explain_lists_every_state() {
    let table = stdout(&tw(&["explain"]));
    for name in STATE_NAMES {
        assert!(
            table.lines().any(|l| l.trim_start().starts_with(name)),
            "no row for {name}:\n{table}"
        );
    }
    assert!(
        table.contains("Who gets there") && table.contains("Lasts on Linux"),
        "{table}"
    );
    let v = json(&["explain", "--format", "json"]);
    let states = v["states"].as_array().unwrap();
    let names: Vec<&str> = states
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(names, STATE_NAMES);
    for s in states {
        for field in ["short", "who", "waits_for", "lasts", "many"] {
            assert!(!s[field].as_str().unwrap().is_empty(), "{s}");
        }
        assert!(s.get("long").is_none(), "the table has no long form: {s}");
    }
    let tw_row = &states[5];
    assert!(tw_row["lasts"].as_str().unwrap().contains("60 s"));
}

#[test]
fn explain_time_wait_covers_the_story() {
    let text = flat(&stdout(&tw(&["explain", "time-wait"])));
    let long = json(&["explain", "TIME_WAIT", "--format", "json"]);
    assert_eq!(long["state"], "time-wait");
    let long = flat(long["long"].as_str().unwrap());
    for phrase in [
        "belongs to the side that closes first",
        "2MSL",
        "Linux fixes this at 60 s",
        "no sysctl changes it",
        // reason 1
        "Old duplicate segments",
        "same four-tuple",
        // reason 2
        "final ACK may be lost",
        "resends its FIN",
        "answers it with an ACK",
        "would answer with RST",
        // exceptions
        "SO_LINGER with a zero timeout",
        "sends RST and skips TIME_WAIT",
        "times out",
        "goes straight to CLOSED",
        // cost
        "It costs little",
        "256 bytes",
        // knobs and misconceptions
        "tcp_fin_timeout governs orphaned FIN_WAIT2, not TIME_WAIT",
        "tcp_tw_reuse",
        "0 = never, 1 = always, 2 = when either address is loopback",
        "tcp_tw_reuse_delay",
        "tcp_tw_recycle was removed in Linux 4.12",
        "tcp_max_tw_buckets",
        "TCP: time wait bucket table overflow",
    ] {
        assert!(long.contains(phrase), "JSON long form lacks '{phrase}'");
        assert!(text.contains(phrase), "text lacks '{phrase}'");
    }
    assert!(text.starts_with("TIME_WAIT (time-wait):"), "{text}");
}

#[test]
fn every_state_has_a_long_form_and_close_wait_names_the_leak() {
    for name in STATE_NAMES {
        let v = json(&["explain", name, "--format", "json"]);
        assert_eq!(v["state"], name);
        assert!(v["long"].as_str().unwrap().len() > 100, "{name}: {v}");
    }
    let cw = flat(&stdout(&tw(&["explain", "close-wait"])));
    assert!(
        cw.contains("the local application not closing its sockets"),
        "{cw}"
    );
}

#[test]
fn explain_bogus_exits_2_naming_valid_topics() {
    let o = tw(&["explain", "bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("'bogus'"), "{err}");
    for name in STATE_NAMES.iter().chain(&["sysctls"]) {
        assert!(err.contains(name), "{name} missing from: {err}");
    }
    let csv = tw(&["explain", "--format", "csv"]);
    assert_eq!(csv.status.code(), Some(2));
    let err = String::from_utf8_lossy(&csv.stderr);
    assert!(
        err.contains("'csv'") && err.contains("table, json"),
        "{err}"
    );
    let load = tw(&["explain", "time-wait", "--load", "/nonexistent"]);
    assert_eq!(load.status.code(), Some(2));
}

#[test]
fn explain_sysctls_shows_this_hosts_values() {
    let v = json(&["explain", "sysctls", "--format", "json"]);
    let knobs = v["sysctls"].as_array().unwrap();
    let names: Vec<&str> = knobs.iter().map(|k| k["name"].as_str().unwrap()).collect();
    for want in [
        "ip_local_port_range",
        "ip_local_reserved_ports",
        "tcp_tw_reuse",
        "tcp_tw_reuse_delay",
        "tcp_max_tw_buckets",
        "tcp_fin_timeout",
        "tcp_max_orphans",
    ] {
        assert!(names.contains(&want), "{want} missing: {names:?}");
    }
    let mut present = 0;
    for k in knobs {
        let path = format!("/proc/sys/net/ipv4/{}", k["name"].as_str().unwrap());
        assert_eq!(k["path"], path.as_str());
        match std::fs::read_to_string(&path) {
            Ok(raw) => {
                present += 1;
                assert_eq!(k["present"], true, "{k}");
                assert_eq!(k["value"].as_str(), Some(flat(&raw).as_str()), "{path}");
                assert!(!k["here"].as_str().unwrap().starts_with("absent"), "{k}");
            }
            Err(_) => {
                assert_eq!(k["present"], false, "{k}");
                assert!(k["value"].is_null());
                assert!(k["here"].as_str().unwrap().starts_with("absent"), "{k}");
            }
        }
    }
    assert!(present >= 6, "most knobs exist on any Linux: {present}");

    // The text form shows the same values and their meaning with the numbers.
    let text = stdout(&tw(&["explain", "sysctls"]));
    let range = flat(&std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap());
    assert!(
        text.contains(&format!("net.ipv4.ip_local_port_range = {range}")),
        "{text}"
    );
    let fin = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_fin_timeout").unwrap();
    assert!(
        flat(&text).contains(&format!("dropped after {} s", fin.trim())),
        "{text}"
    );
}

#[test]
fn explain_sysctls_reads_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.twi");
    let file_s = file.to_str().unwrap();
    let o = tw(&[
        "list",
        "--state",
        "listening",
        "--save",
        file_s,
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&["explain", "sysctls", "--load", file_s, "--format", "json"]);
    assert_eq!(v["source"], "snapshot");
    let host = json(&["explain", "sysctls", "--format", "json"]);
    assert_eq!(v["sysctls"], host["sysctls"], "saved just now on this host");
    let text = stdout(&tw(&["explain", "sysctls", "--load", file_s]));
    assert!(text.contains("In the snapshot: "), "{text}");
}

/// A namespace made with `ip netns add`, deleted on drop.
struct Named(String);

impl Drop for Named {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn named(tag: &str) -> Named {
    let name = format!("twi14-{}-{tag}", std::process::id());
    let st = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap();
    assert!(st.success(), "ip netns add {name}");
    Named(name)
}

fn knob<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["sysctls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing: {v:#}"))
}

/// Per-namespace knobs come from the namespace; host-wide ones from the host,
/// marked so, and never reported absent.
#[test]
fn explain_sysctls_in_a_namespace_marks_host_wide_knobs() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (ip netns)");
        return;
    }
    let ns = named("explain");
    let set = |k: &str, v: &str| {
        let st = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.0,
                "sysctl",
                "-qw",
                &format!("net.ipv4.{k}={v}"),
            ])
            .status()
            .unwrap();
        assert!(st.success(), "{k}");
    };
    set("ip_local_port_range", "40000 40099");
    set("tcp_tw_reuse", "0");
    let host_orphans =
        flat(&std::fs::read_to_string("/proc/sys/net/ipv4/tcp_max_orphans").unwrap());
    let host_mem = flat(&std::fs::read_to_string("/proc/sys/net/ipv4/tcp_mem").unwrap());

    // From the host, into the namespace.
    let v = json(&["explain", "sysctls", "--netns", &ns.0, "--format", "json"]);
    assert_eq!(
        (v["source"].as_str(), v["netns"].as_str()),
        (Some("netns"), Some(ns.0.as_str()))
    );
    assert_eq!(knob(&v, "ip_local_port_range")["value"], "40000 40099");
    assert_eq!(knob(&v, "tcp_tw_reuse")["value"], "0");
    assert_eq!(knob(&v, "tcp_tw_reuse")["scope"], "namespace");
    for (name, host) in [("tcp_max_orphans", &host_orphans), ("tcp_mem", &host_mem)] {
        let k = knob(&v, name);
        assert_eq!(k["scope"], "host", "{k}");
        assert_eq!(k["value"].as_str(), Some(host.as_str()), "{k}");
        assert!(
            k["here"].as_str().unwrap().contains("read from the host"),
            "{k}"
        );
    }
    let text = stdout(&tw(&["explain", "sysctls", "--netns", &ns.0]));
    assert!(
        text.contains(&format!(
            "net.ipv4.tcp_max_orphans = {host_orphans} (host-wide)"
        )),
        "{text}"
    );
    assert!(
        text.contains("net.ipv4.ip_local_port_range = 40000 40099\n"),
        "{text}"
    );
    assert!(text.contains(&format!("In {}:", ns.0)), "{text}");

    // The tool itself inside the namespace: per-namespace knobs from there;
    // host-wide ones from the host where it may be entered, else said to be
    // unreadable, never absent.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            env!("CARGO_BIN_EXE_tw-inspect"),
            "explain",
            "sysctls",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(knob(&v, "ip_local_port_range")["value"], "40000 40099");
    for name in ["tcp_max_orphans", "tcp_mem"] {
        let k = knob(&v, name);
        let here = k["here"].as_str().unwrap();
        assert!(!here.starts_with("absent"), "{k}");
        assert!(here.contains("host-wide"), "{k}");
        if k["present"] == true {
            assert_eq!(
                k["value"].as_str(),
                Some(if name == "tcp_mem" {
                    host_mem.as_str()
                } else {
                    host_orphans.as_str()
                })
            );
        }
    }

    // Refused combinations.
    let o = tw(&["explain", "time-wait", "--netns", &ns.0]);
    assert_eq!(o.status.code(), Some(2));
    let o = tw(&["explain", "sysctls", "--netns", &ns.0, "--load", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--netns cannot be used with --load"));
}
