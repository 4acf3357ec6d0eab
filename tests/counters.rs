//! The kernel's TCP counters against the kernel's own tool (`nstat`), and the
//! findings and rates built on them, each on real sockets in a private
//! namespace: a TIME_WAIT table that overflows, resets from SO_LINGER 0, and
//! `--watch`'s TIME_WAIT rate from the counter against a paced generator.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sched::{CloneFlags, setns};
use serde_json::Value;

use crate::monitoring::{NetNs, one_time_wait, root};
use crate::util::*;

/// `nstat -asz`: every counter's absolute value, without touching nstat's history.
fn nstat() -> BTreeMap<String, u64> {
    let out = Command::new("nstat")
        .args(["-asz"])
        .output()
        .expect("nstat");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.parse().ok()?))
        })
        .collect()
}

fn counter(v: &Value, name: &str) -> u64 {
    v["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}: {v:#}"))
}

fn diagnosis<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == kind)
}

#[test]
fn every_counter_equals_nstat() {
    if !private_netns(module_path!(), "every_counter_equals_nstat") {
        return;
    }
    let l = listen("127.0.0.1:0");
    make_time_wait(&l, 7);
    // Nothing else runs in this namespace: both readings see the same values.
    let v = json(&["list", "--format", "json"]);
    let n = nstat();
    let names: Vec<String> = v["counters"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(names.len(), 16, "{names:?}");
    for name in &names {
        // nstat leaves out TcpCurrEstab, a level rather than a counter: read it
        // from /proc/net/snmp as nstat reads the others.
        let want = match name.as_str() {
            "TcpCurrEstab" => {
                let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap();
                let tcp: Vec<Vec<&str>> = snmp
                    .lines()
                    .filter(|l| l.starts_with("Tcp:"))
                    .map(|l| l.split_whitespace().collect())
                    .collect();
                let at = tcp[0].iter().position(|f| *f == "CurrEstab").unwrap();
                tcp[1][at].parse().ok()
            }
            _ => n.get(name).copied(),
        };
        assert_eq!(
            v["counters"][name].as_u64(),
            want,
            "{name}: tw-inspect and nstat"
        );
    }
    assert_eq!(counter(&v, "TcpExtTW"), 7, "one per connection closed here");
    assert_eq!(counter(&v, "TcpActiveOpens"), 7);
    assert_eq!(counter(&v, "TcpPassiveOpens"), 7);
    // The growth within the run is there, and zero: nothing happened meanwhile.
    assert_eq!(v["counters_change"]["growth"]["TcpExtTW"], 0);
    let p = String::from_utf8(run(&["list", "--format", "prometheus"]).stdout).unwrap();
    assert!(
        p.contains("tw_inspect_kernel_timewait_entered_total 7\n"),
        "{p}"
    );
    assert!(p.contains("# TYPE tw_inspect_kernel_timewait_overflow_total counter\n"));
    crate::monitoring::promtool_check(&p);
}

/// A client that closes first; `linger0` resets instead (SO_LINGER {1, 0}).
fn connection(l: &TcpListener, linger0: bool) {
    if !linger0 {
        return one_time_wait(l);
    }
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    nix::sys::socket::setsockopt(
        &c.as_fd(),
        nix::sys::socket::sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    )
    .unwrap();
    drop(c);
    // The server sees the reset.
    let mut buf = [0u8; 8];
    assert!((&s).read(&mut buf).is_err(), "ECONNRESET");
}

#[test]
fn overflow_rises_by_each_refused_close_and_the_finding_cites_it() {
    if !private_netns(
        module_path!(),
        "overflow_rises_by_each_refused_close_and_the_finding_cites_it",
    ) {
        return;
    }
    std::fs::write("/proc/sys/net/ipv4/tcp_max_tw_buckets", "100").unwrap();
    let before = nstat();
    let l = listen("127.0.0.1:0");
    for _ in 0..300 {
        one_time_wait(&l);
    }
    let after = nstat();
    let grew = |n: &str| after.get(n).unwrap_or(&0) - before.get(n).unwrap_or(&0);
    // The first 100 closes got a timewait socket, the 200 after were refused one.
    assert_eq!(grew("TcpExtTCPTimeWaitOverflow"), 200);
    assert_eq!(grew("TcpExtTW"), 100);

    let v = json(&["list", "--format", "json"]);
    assert_eq!(v["states"]["time-wait"], 100);
    assert_eq!(counter(&v, "TcpExtTCPTimeWaitOverflow"), 200);
    let d = diagnosis(&v, "tw-buckets").unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(d["severity"], "critical");
    assert_eq!(d["data"]["overflow_total"], 200);
    // Full: the run gave the counter a second, and nothing closed meanwhile.
    assert_eq!(d["data"]["overflow_growth"], 0);
    assert!(
        d["data"]["overflow_window_s"].as_f64().unwrap() >= 1.0,
        "{d}"
    );
    let msg = d["message"].as_str().unwrap();
    assert!(
        msg.contains(
            "TCPTimeWaitOverflow did not grow in the last 1.0 s (200 since the namespace began)"
        ),
        "{msg}"
    );

    // Closing on while it is full: the finding says the table overflows now.
    let stop = Arc::new(AtomicBool::new(false));
    let made = std::thread::scope(|t| {
        let closer = t.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                connection(&l, false);
                n += 1;
                std::thread::sleep(Duration::from_millis(5)); // pacing
            }
            n
        });
        let v = json(&["list", "--format", "json"]);
        stop.store(true, Ordering::Relaxed);
        let n = closer.join().unwrap();
        let d = diagnosis(&v, "tw-buckets").unwrap_or_else(|| panic!("{v:#}"));
        eprintln!("tw-buckets finding while full: {}", d["message"]);
        let grew = d["data"]["overflow_growth"].as_u64().unwrap();
        assert!(grew > 0, "{d}");
        assert!(
            d["message"].as_str().unwrap().contains(&format!(
                "The kernel refused TIME_WAIT to {grew} closing connections in the last"
            )),
            "{d}"
        );
        n
    });
    let end = nstat();
    let refused =
        end["TcpExtTCPTimeWaitOverflow"] - before.get("TcpExtTCPTimeWaitOverflow").unwrap_or(&0);
    eprintln!(
        "tcp_max_tw_buckets 100: 300 closes, then {made} more while full: TCPTimeWaitOverflow +{refused}"
    );
    assert_eq!(
        refused,
        200 + made,
        "every close past the 100th was refused TIME_WAIT"
    );
}

#[test]
fn linger_zero_resets_count_as_abort_on_data_and_are_a_finding() {
    if !private_netns(
        module_path!(),
        "linger_zero_resets_count_as_abort_on_data_and_are_a_finding",
    ) {
        return;
    }
    let l = listen("127.0.0.1:0");
    let before = nstat();
    for _ in 0..20 {
        connection(&l, true);
    }
    let after = nstat();
    let grew = |n: &str| after.get(n).unwrap_or(&0) - before.get(n).unwrap_or(&0);
    // Checked on this kernel: SO_LINGER 0 is counted as TCPAbortOnData.
    assert_eq!(grew("TcpExtTCPAbortOnData"), 20);
    assert_eq!(grew("TcpExtTCPAbortOnLinger"), 0);
    assert_eq!(grew("TcpExtTW"), 0, "no TIME_WAIT after a reset");
    let v = json(&["list", "--format", "json"]);
    assert_eq!(
        counter(&v, "TcpExtTCPAbortOnData"),
        after["TcpExtTCPAbortOnData"]
    );
    assert!(
        diagnosis(&v, "aborts").is_none(),
        "nothing grew during the run"
    );

    // Resets while --watch rewrites the report: each sample compares with the one before.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|t| {
        let resetter = t.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                connection(&l, true);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let out = run(&[
            "list",
            "--watch",
            "0.5",
            "--count",
            "3",
            "--format",
            "json",
            "--output",
            file.to_str().unwrap(),
        ]);
        stop.store(true, Ordering::Relaxed);
        resetter.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let d = diagnosis(&v, "aborts").unwrap_or_else(|| panic!("{v:#}"));
    eprintln!("aborts finding: {}", d["message"]);
    let n = d["data"]["counters"]["TcpExtTCPAbortOnData"]
        .as_u64()
        .unwrap();
    assert!(n > 0, "{d}");
    assert_eq!(d["data"]["count"], n, "{d}");
    assert_eq!(v["counters_change"]["growth"]["TcpExtTCPAbortOnData"], n);
    let w = d["data"]["window_s"].as_f64().unwrap();
    assert!((0.4..2.0).contains(&w), "the window is the interval: {w}");
    assert!(
        d["message"].as_str().unwrap().contains(&format!(
            "{n} by close() with SO_LINGER 0, or data arriving after close() (TCPAbortOnData)"
        )),
        "{d}"
    );
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `--watch` gives the rate of TIME_WAIT entries twice: from the cookies of
/// new TIME_WAIT sockets, and from the kernel's TcpExtTW. Under a generator
/// whose every close is timestamped, both agree with it and with each other.
#[test]
fn watch_rate_from_the_kernel_counter_agrees_with_cookies_and_the_generator() {
    if !root() {
        return;
    }
    let ns = NetNs::new("twrate");
    let stop = Arc::new(AtomicBool::new(false));
    let file = File::open(ns.path()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<f64>();
    let generator = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            // 200 closes per second, paced against the clock.
            let start = Instant::now();
            let mut k = 0u32;
            while !stop.load(Ordering::Relaxed) {
                one_time_wait(&l);
                tx.send(unix_now()).unwrap();
                k += 1;
                let next = start + Duration::from_millis(5) * k;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        })
    };
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("generator started");
    let out = Command::new(env!("CARGO_BIN_EXE_tw-inspect"))
        .args([
            "list", "--netns", &ns.name, "--watch", "0.5", "--count", "7", "--format", "json",
        ])
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    generator.join().unwrap();
    let closes: Vec<f64> = std::iter::once(first).chain(rx.try_iter()).collect();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert!(lines[0]["time_wait_entered"].is_null());
    let (mut by_counter, mut by_cookie) = (0u64, 0u64);
    for l in &lines[1..] {
        let entered = l["time_wait_entered"].as_u64().unwrap();
        let dt = l["interval_s"].as_f64().unwrap();
        let rate = l["time_wait_entered_rate"].as_f64().unwrap();
        assert!((rate * dt - entered as f64).abs() < 1e-6 * entered as f64 + 1e-9);
        assert_eq!(l["counters_change"]["TcpExtTW"], entered);
        by_counter += entered;
        by_cookie += l["time_wait_new"].as_u64().unwrap();
    }
    // The generator's closes between the first sample and the last.
    let (t0, t1) = (
        lines[0]["time"].as_f64().unwrap(),
        lines[6]["time"].as_f64().unwrap(),
    );
    let made = closes.iter().filter(|t| **t > t0 && **t <= t1).count() as u64;
    let rate = made as f64 / (t1 - t0);
    eprintln!(
        "generator: {made} closes in {:.2} s ({rate:.1}/s); TcpExtTW: {by_counter}; new cookies: {by_cookie}",
        t1 - t0
    );
    // A sample's time is taken after its dump and counter reading, a few ms
    // apart: closes near an edge may fall on either side. 2 % or 3 closes.
    let close_enough = |a: u64, b: u64| a.abs_diff(b) as f64 <= (0.02 * b as f64).max(3.0);
    assert!(
        close_enough(by_counter, made),
        "counter {by_counter} vs generator {made}"
    );
    assert!(
        close_enough(by_cookie, made),
        "cookies {by_cookie} vs generator {made}"
    );
    assert!(close_enough(by_counter, by_cookie));
    assert!(made > 300, "the generator ran ({made})");
}
