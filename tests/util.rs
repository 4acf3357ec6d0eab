//! Helpers shared by the integration tests: run the binary, make sockets in
//! known states, and isolate a test in a private network namespace.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tw-inspect")
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tw-inspect")
}

/// Runs the binary, asserts success, and parses its JSON output.
pub fn json(args: &[&str]) -> serde_json::Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "tw-inspect {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "invalid JSON from {args:?}: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Groups from `list --format json` as (peer, peer_port) → count.
pub fn groups(v: &serde_json::Value) -> std::collections::BTreeMap<(String, u64), u64> {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let key = (
                g["peer"].as_str().unwrap().to_string(),
                g["peer_port"].as_u64().unwrap(),
            );
            (key, g["count"].as_u64().unwrap())
        })
        .collect()
}

const NETNS_ENV: &str = "TW_INSPECT_TEST_NETNS";

/// Runs the calling test again inside a private network namespace (with `lo` up).
/// Returns true in the namespaced copy, which should run the test body; the
/// outer copy waits for it, asserts it passed and gets false. Where no
/// namespace can be made (no unshare), the body runs on the host.
/// A test's name as the harness knows it: `module_path!()` without the crate.
pub fn qualified(module: &str, test: &str) -> String {
    match module.split_once("::") {
        Some((_, rest)) => format!("{rest}::{test}"),
        None => test.to_string(),
    }
}

pub fn private_netns(module: &str, test: &str) -> bool {
    let full = qualified(module, test);
    let test = full.as_str();
    if std::env::var(NETNS_ENV).as_deref() == Ok(test) {
        let st = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("run ip");
        assert!(st.success(), "ip link set lo up failed");
        // No reuse of TIME_WAIT tuples: with the default (2, loopback) a connect
        // more than tcp_tw_reuse_delay after an earlier one may take over its
        // tuple and silently end a TIME_WAIT socket a test is counting.
        std::fs::write("/proc/sys/net/ipv4/tcp_tw_reuse", "0")
            .expect("set tcp_tw_reuse in the namespace");
        return true;
    }
    let root = nix::unistd::geteuid().is_root();
    let mut cmd = Command::new("unshare");
    cmd.arg("--net");
    if !root {
        cmd.arg("--map-root-user");
    }
    let probe = Command::new("unshare")
        .args(if root {
            vec!["--net", "true"]
        } else {
            vec!["--map-root-user", "--net", "true"]
        })
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("note: cannot create a network namespace here; running {test} on the host");
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let out = cmd
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(NETNS_ENV, test)
        .output()
        .expect("run unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "namespaced run of {test} failed:\n{text}"
    );
    false
}

/// Polls `f` until it returns Some, or panics after `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Makes `n` connections to `listener` where the client closes first, so each
/// client side ends in TIME_WAIT. Returns the clients' local ports.
pub fn make_time_wait(listener: &TcpListener, n: usize) -> Vec<u16> {
    let addr = listener.local_addr().unwrap();
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let c = TcpStream::connect(addr).expect("connect");
        ports.push(c.local_addr().unwrap().port());
        let (mut s, _) = listener.accept().expect("accept");
        drop(c); // client closes first: FIN_WAIT → TIME_WAIT
        let mut buf = [0u8; 16];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(s.read(&mut buf).unwrap(), 0, "server sees the client's FIN");
        drop(s); // server closes second: LAST_ACK → gone
    }
    ports
}

/// One listener per `(address, n)` with `n` client-closed connections to it:
/// TIME_WAIT groups of known size. Returns (peer, port) → n and the listeners.
pub fn time_wait_groups(
    plan: &[(&str, usize)],
) -> (
    std::collections::BTreeMap<(String, u64), u64>,
    Vec<TcpListener>,
) {
    let mut expect = std::collections::BTreeMap::new();
    let mut keep = Vec::new();
    for (addr, n) in plan {
        let l = listen(addr);
        make_time_wait(&l, *n);
        let a = l.local_addr().unwrap();
        expect.insert((a.ip().to_string(), a.port() as u64), *n as u64);
        keep.push(l);
    }
    (expect, keep)
}

pub fn listen(addr: &str) -> TcpListener {
    TcpListener::bind(addr.parse::<SocketAddr>().unwrap()).expect("bind listener")
}

/// `ss -tanH` lines as (state, local, peer), with IPv4-mapped addresses unmapped
/// and brackets removed so they compare with tw-inspect's JSON.
pub fn ss_rows(extra: &[&str]) -> Vec<(String, String, String)> {
    let out = Command::new("ss")
        .args(["-tanH"])
        .args(extra)
        .output()
        .expect("run ss");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.len() {
                // With a single-state filter ss leaves out the State column.
                4 => Some((String::new(), norm_endpoint(f[2]), norm_endpoint(f[3]))),
                n if n >= 5 => Some((ss_state(f[0]), norm_endpoint(f[3]), norm_endpoint(f[4]))),
                _ => None,
            }
        })
        .collect()
}

/// ss's display names → the names tw-inspect uses.
pub fn ss_state(s: &str) -> String {
    match s {
        "ESTAB" => "established".into(),
        "LISTEN" => "listening".into(),
        "UNCONN" => "closed".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// `[::ffff:1.2.3.4]:80` → `1.2.3.4:80`; `[::1]:80` → `::1:80`; `*:80` → `0.0.0.0:80`.
pub fn norm_endpoint(e: &str) -> String {
    let (host, port) = e.rsplit_once(':').unwrap();
    let port = if port == "*" { "0" } else { port };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next().unwrap();
    let host = match host {
        "*" => "0.0.0.0",
        h => h
            .strip_prefix("::ffff:")
            .filter(|h| h.contains('.'))
            .unwrap_or(h),
    };
    format!("{host}:{port}")
}

/// A server started in a private network namespace of its own (`lo` up),
/// killed on drop. `ns` is its /proc/PID/ns/net.
pub struct NsServer {
    pub child: std::process::Child,
    pub ns: String,
}

impl Drop for NsServer {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (a shell command line that execs the server) in a new network
/// namespace and waits until `port` listens there.
pub fn ns_server(cmd: &str, port: u16) -> NsServer {
    let child = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            &format!("ip link set lo up && exec {cmd}"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ns = format!("/proc/{}/ns/net", child.id());
    let srv = NsServer { child, ns };
    wait_for(30, &format!("port {port} listening"), || {
        let out = in_ns(&srv.ns, &["ss", "-tlnH", &format!("sport = :{port}")]);
        (!out.trim().is_empty()).then_some(())
    });
    srv
}

/// Runs `args` in the network namespace `ns` (a path); its stdout, asserting success.
pub fn in_ns(ns: &str, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={ns}"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
