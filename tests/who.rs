//! `who` against the real kernel: tracefs, real loopback connections, real TIME_WAIT.
//!
//! Workers are this test binary re-executed through symlinks with distinct names:
//! the kernel takes a process's command name from the path it was executed by,
//! so each worker has its own `comm`. A worker makes N loopback connections to
//! its own listener and closes the client side first (so the client socket
//! goes to TIME_WAIT), then waits for its stdin to close.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tw_inspect::diag::{self, Options};
use tw_inspect::filter::{Cond, PortRange, Query, Side};
use tw_inspect::socket::SocketRecord;
use tw_inspect::state::{StateSet, TcpState};

use crate::util::{in_ns, ns_server};

const BIN: &str = env!("CARGO_BIN_EXE_tw-inspect");
const WORKER_ENV: &str = "TW_WHO_TEST_WORKER";

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The worker's body; a no-op in a normal test run.
#[test]
fn worker_entry() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    // "N" closes N connections client first; "abort:N" resets them instead;
    // "to:PORT:N" closes N connections to someone else's listener.
    if let Some(rest) = spec.strip_prefix("to:") {
        let (port, n) = rest.split_once(':').expect("to:PORT:N");
        let port: u16 = port.parse().unwrap();
        for _ in 0..n.parse::<usize>().unwrap() {
            let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            drop(client);
        }
        println!("\nworker-done {port}");
        std::io::stdout().flush().unwrap();
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        return;
    }
    let (abort, n) = match spec.strip_prefix("abort:") {
        Some(n) => (true, n),
        None => (false, spec.as_str()),
    };
    let n: usize = n.parse().expect("connection count");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    for _ in 0..n {
        let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        if abort {
            // SO_LINGER 0: close() sends a reset; no TIME_WAIT on either side.
            let off = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            nix::sys::socket::setsockopt(&client, nix::sys::socket::sockopt::Linger, &off)
                .expect("SO_LINGER");
        }
        // Client closes first: its socket will sit in TIME_WAIT.
        drop(client);
        let mut rest = Vec::new();
        let r = server.read_to_end(&mut rest);
        assert!(abort || r.is_ok(), "{r:?}");
        let _ = server.shutdown(Shutdown::Both);
        drop(server);
    }
    // On its own line: libtest may have printed "test worker_entry ... " unterminated.
    println!("\nworker-done {port}");
    std::io::stdout().flush().unwrap();
    // Stay alive until the test is finished with us.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

struct Worker {
    child: Child,
    name: String,
    port: u16,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a worker under `name` (a symlink to this test binary in `dir`).
fn spawn_worker(dir: &Path, name: &str, spec: &str) -> (Worker, mpsc::Receiver<String>) {
    let link = dir.join(name);
    std::os::unix::fs::symlink(std::env::current_exe().unwrap(), &link).unwrap();
    let mut child = Command::new(&link)
        .args([
            "--exact",
            &crate::util::qualified(module_path!(), "worker_entry"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WORKER_ENV, spec)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (
        Worker {
            child,
            name: name.to_string(),
            port: 0,
        },
        rx,
    )
}

fn wait_line(rx: &mpsc::Receiver<String>, prefix: &str, deadline: Instant) -> String {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with(prefix) => return l,
            Ok(_) => continue,
            Err(e) => panic!("no line starting with {prefix:?} before the deadline: {e}"),
        }
    }
}

/// Forwards `who`'s stderr lines to a channel (and keeps them for messages).
fn stderr_lines(err: ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Spawns `who` with these arguments and waits until it says it is recording.
/// Returns the child, its stderr lines and the instance directory it named.
fn start_who(args: &[&str]) -> (Child, mpsc::Receiver<String>, PathBuf) {
    let mut all = vec!["who"];
    all.extend_from_slice(args);
    start_who_as(&all)
}

/// Like [`start_who`], for any command line that records (e.g. `list --trace`).
fn start_who_as(args: &[&str]) -> (Child, mpsc::Receiver<String>, PathBuf) {
    let mut who = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(who.stderr.take().unwrap());
    let line = wait_line(
        &rx,
        "tw-inspect: recording",
        Instant::now() + Duration::from_secs(30),
    );
    let dir = line
        .split("(tracing instance ")
        .nth(1)
        .and_then(|s| s.strip_suffix(')'))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no instance in {line:?}"));
    (who, rx, dir)
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn time_wait_to_port(port: u16) -> u64 {
    let q = Query {
        states: StateSet::from_states(&[TcpState::TimeWait]),
        ..Query::default()
    }
    .and(Cond::Port(Side::Peer, PortRange::single(port)));
    let c = diag::collect(&q, Options::default(), Vec::<SocketRecord>::new).unwrap();
    c.sink.iter().filter(|s| s.peer_port == port).count() as u64
}

#[test]
fn who_attributes_active_closes_and_time_wait_to_processes() {
    if !is_root() {
        eprintln!("skipped: needs root for tracefs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut who, _err, instance) = start_who(&[
        "--duration",
        "3",
        "--by",
        "pid",
        "--top",
        "0",
        "--format",
        "json",
    ]);
    assert!(
        instance.is_dir(),
        "{} does not exist while recording",
        instance.display()
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut a, rx_a) = spawn_worker(dir.path(), "twclose-alpha", "200");
    let (mut b, rx_b) = spawn_worker(dir.path(), "twclose-beta", "100");
    let (mut c, rx_c) = spawn_worker(dir.path(), "twabort-gamma", "abort:20");
    for (w, rx) in [(&mut a, &rx_a), (&mut b, &rx_b), (&mut c, &rx_c)] {
        let line = wait_line(rx, "worker-done ", deadline);
        w.port = line["worker-done ".len()..].trim().parse().unwrap();
    }

    let mut stdout = who.stdout.take().unwrap();
    let st = wait_exit(&mut who, Duration::from_secs(60));
    let mut json = String::new();
    stdout.read_to_string(&mut json).unwrap();
    assert!(st.success(), "who failed: {st:?}");
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert!(v["duration_s"].as_f64().unwrap() >= 3.0, "{json}");
    assert_eq!(v["lost_events"], 0, "{json}");
    let procs = v["processes"].as_array().unwrap();
    for (w, n) in [(&a, 200u64), (&b, 100u64)] {
        let pid = w.child.id();
        let p = procs
            .iter()
            .find(|p| p["pid"] == pid)
            .unwrap_or_else(|| panic!("pid {pid} ({}) not reported: {json}", w.name));
        assert_eq!(p["comm"], w.name.as_str(), "{p}");
        assert_eq!(p["active_closes"], n, "{p}");
        assert_eq!(p["passive_closes"], n, "{p}");
        assert_eq!(p["aborts"], 0, "{p}");
        let peers = p["top_peers"].as_array().unwrap();
        assert_eq!(peers[0]["peer"], "127.0.0.1", "{p}");
        assert_eq!(peers[0]["peer_port"], w.port, "{p}");
        assert_eq!(peers[0]["count"], n, "{p}");
        // Every client socket is in TIME_WAIT (fewer only if the kernel reused a
        // tuple, which then is still one TIME_WAIT socket): who must have matched
        // exactly the ones the kernel still shows, all of them to this process.
        let tw_now = time_wait_to_port(w.port);
        assert!(tw_now > 0 && tw_now <= n, "{tw_now}");
        assert_eq!(p["time_wait_now"], tw_now, "{p}");
        assert!(p["cgroup"].is_string(), "{p}");
    }
    // The resetting process: 20 aborts it sent, no active close, no TIME_WAIT;
    // the resets its listener received belong to no process.
    let p = procs
        .iter()
        .find(|p| p["pid"] == c.child.id())
        .unwrap_or_else(|| panic!("abort worker missing: {json}"));
    assert_eq!(p["comm"], c.name.as_str(), "{p}");
    assert_eq!(
        (p["aborts"].as_u64(), p["active_closes"].as_u64()),
        (Some(20), Some(0)),
        "{p}"
    );
    assert_eq!(
        (p["passive_closes"].as_u64(), p["time_wait_now"].as_u64()),
        (Some(0), Some(0)),
        "{p}"
    );
    assert_eq!(time_wait_to_port(c.port), 0);
    assert!(v["resets_received"].as_u64().unwrap() >= 20, "{json}");
    assert!(v["unattributed_time_wait"].as_u64().is_some());
    assert!(
        v["note"]
            .as_str()
            .unwrap()
            .contains("closed the connection first")
    );
    assert!(
        !instance.exists(),
        "instance {} left behind",
        instance.display()
    );
}

fn instances_of(root: &Path, pid: u32) -> Vec<String> {
    std::fs::read_dir(root.join("instances"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("tw-inspect-{pid}-")))
        .collect()
}

/// Every signal that stops tw-inspect ends the recording the same way: the
/// report is written, the event disabled, the instance removed, exit 0.
#[test]
fn every_stop_signal_removes_the_instance_and_disables_the_event() {
    if !is_root() {
        eprintln!("skipped: needs root for tracefs");
        return;
    }
    use nix::sys::signal::Signal::*;
    for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM] {
        let (mut who, _err, instance) = start_who(&["--duration", "0", "--format", "json"]);
        let root = instance.parent().unwrap().parent().unwrap().to_path_buf();
        let enable = instance.join("events/sock/inet_sock_set_state/enable");
        assert_eq!(std::fs::read_to_string(&enable).unwrap().trim(), "1");
        let filter =
            std::fs::read_to_string(instance.join("events/sock/inet_sock_set_state/filter"))
                .unwrap();
        assert!(filter.contains("protocol == 6"), "{filter}");
        assert_eq!(instances_of(&root, who.id()).len(), 1);

        nix::sys::signal::kill(nix::unistd::Pid::from_raw(who.id() as i32), sig).unwrap();
        let mut stdout = who.stdout.take().unwrap();
        let st = wait_exit(&mut who, Duration::from_secs(30));
        assert!(st.success(), "{sig}: {st:?}");
        let mut json = String::new();
        stdout.read_to_string(&mut json).unwrap();
        let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{sig}: {e}: {json}"));
        assert!(v["processes"].is_array());
        assert!(
            !instance.exists(),
            "{sig}: {} left behind",
            instance.display()
        );
        assert!(instances_of(&root, who.id()).is_empty());
        // Nothing of ours is left enabled anywhere: the top-level event is off.
        let top = root.join("events/sock/inet_sock_set_state/enable");
        assert_eq!(std::fs::read_to_string(top).unwrap().trim(), "0");
    }
}

#[test]
fn without_privilege_one_line_naming_the_capability() {
    if !is_root() || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("skipped: needs root and setpriv to drop privilege");
        return;
    }
    // A copy nobody can execute (the build tree may not be reachable by nobody).
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("tw-inspect");
    std::fs::copy(BIN, &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(&bin)
        .args(["who", "--duration", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("CAP_SYS_ADMIN") && err.contains("tw-inspect list"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_flags_are_usage_errors() {
    for (args, needle) in [
        (vec!["who", "--duration", "soon"], "'soon'"),
        (vec!["who", "--interval", "0"], "--interval"),
        (vec!["who", "--format", "csv"], "csv"),
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn stale_instances_progress_lines_and_prometheus() {
    if !is_root() {
        eprintln!("skipped: needs root for tracefs");
        return;
    }
    // An instance named as ours, left by a pid that cannot exist (> pid_max).
    let out = Command::new(BIN)
        .args(["who", "--duration", "0.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = PathBuf::from(
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .find_map(|l| l.split("(tracing instance ").nth(1).map(str::to_string))
            .unwrap()
            .trim_end_matches(')')
            .rsplit_once("/instances/")
            .unwrap()
            .0,
    );
    let stale = root.join("instances/tw-inspect-999999999-deadbeef");
    std::fs::create_dir(&stale).unwrap();

    let out = Command::new(BIN)
        .args([
            "who",
            "--duration",
            "1.2",
            "--interval",
            "400ms",
            "--format",
            "prometheus",
            "--top",
            "2",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!stale.exists(), "stale instance not removed: {err}");
    let progress = err
        .lines()
        .filter(|l| l.contains("active closes by"))
        .count();
    assert!(progress >= 2, "{err}");

    let text = String::from_utf8(out.stdout).unwrap();
    let mut series = 0;
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(name.starts_with("tw_inspect_"), "{line}");
        if name.starts_with("tw_inspect_who_fin_closes{") {
            series += 1;
        }
    }
    // --top 2: at most two commands plus "other".
    assert!(series <= 3, "{text}");
    // One window's counts are gauges (a counter would reset every run).
    assert!(
        text.contains("# TYPE tw_inspect_who_fin_closes gauge"),
        "{text}"
    );
    assert!(text.contains("tw_inspect_who_window_seconds "), "{text}");
    assert!(
        text.contains("tw_inspect_who_time_wait_unattributed "),
        "{text}"
    );
    promtool(&text);

    // --interval with a file: rewritten every interval with counters since the start.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("who.prom");
    let (mut who, _err, _inst) = start_who(&[
        "--duration",
        "0",
        "--interval",
        "200ms",
        "--format",
        "prometheus",
        "-o",
        file.to_str().unwrap(),
    ]);
    let first = crate::util::wait_for(20, "the first rewrite", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| !t.is_empty())
    });
    let started = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("tw_inspect_who_start_time_seconds "))
            .map(str::to_string)
    };
    let start = started(&first).unwrap_or_else(|| panic!("{first}"));
    let (mut w, rx) = spawn_worker(dir.path(), "twcount-eps", "30");
    wait_line(
        &rx,
        "worker-done ",
        Instant::now() + Duration::from_secs(20),
    );
    let total = |t: &str| -> u64 {
        t.lines()
            .find_map(|l| l.strip_prefix("tw_inspect_who_fin_closes_total{comm=\"twcount-eps\"} "))
            .map_or(0, |v| v.parse().unwrap())
    };
    let later = crate::util::wait_for(20, "the worker's 30 closes in the file", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| total(t) == 30)
    });
    assert!(
        later.contains("# TYPE tw_inspect_who_fin_closes_total counter"),
        "{later}"
    );
    assert_eq!(started(&later), Some(start), "one start time per recording");
    promtool(&later);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(who.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert!(wait_exit(&mut who, Duration::from_secs(30)).success());
    let last = std::fs::read_to_string(&file).unwrap();
    assert_eq!(total(&last), 30, "{last}");
    w.port = 0;
}

/// The exposition as Prometheus itself reads it (promtool is installed by .ci/run).
fn promtool(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {msg}\n{text}");
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is needed (installed by .ci/run)");
}

/// Stops a `who --duration 0` with SIGINT and parses its JSON.
fn stop_who(mut who: Child) -> Value {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(who.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut stdout = who.stdout.take().unwrap();
    let st = wait_exit(&mut who, Duration::from_secs(60));
    let mut json = String::new();
    stdout.read_to_string(&mut json).unwrap();
    assert!(st.success(), "who failed: {st:?}");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn row<'a>(v: &'a Value, comm: &str) -> &'a Value {
    v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["comm"] == comm)
        .unwrap_or_else(|| panic!("no {comm} row: {v:#}"))
}

/// TIME_WAIT sockets of clients of `dport` in `ns`.
fn time_wait_to(ns: &str, dport: u16) -> u64 {
    in_ns(
        ns,
        &[
            "ss",
            "-tanH",
            "state",
            "time-wait",
            &format!("dport = :{dport}"),
        ],
    )
    .lines()
    .count() as u64
}

fn time_wait_on(ns: &str, sport: u16) -> u64 {
    in_ns(
        ns,
        &[
            "ss",
            "-tanH",
            "state",
            "time-wait",
            &format!("sport = :{sport}"),
        ],
    )
    .lines()
    .count() as u64
}

/// Python's http.server closes each HTTP/1.0 connection with shutdown(SHUT_WR)
/// and then close(): one active close per request, not two.
#[test]
fn who_counts_python_http_server_closes_exactly() {
    if !is_root() {
        eprintln!("skipped: needs root for tracefs");
        return;
    }
    for t in ["ab", "python3", "nsenter"] {
        need(t);
    }
    const REQUESTS: u64 = 400;
    let srv = ns_server("python3 -m http.server 18099 --bind 127.0.0.1", 18099);
    let (who, _err, _inst) =
        start_who(&["--duration", "0", "--netns", &srv.ns, "--format", "json"]);
    let ab = in_ns(
        &srv.ns,
        &[
            "ab",
            "-n",
            &REQUESTS.to_string(),
            "-c",
            "4",
            "http://127.0.0.1:18099/",
        ],
    );
    assert!(
        ab.contains(&format!("Complete requests:      {REQUESTS}"))
            && ab.contains("Failed requests:        0"),
        "{ab}"
    );
    let tw = time_wait_on(&srv.ns, 18099);
    // ab may open a connection or two beyond -n and close them itself unused.
    let ab_tw = time_wait_to(&srv.ns, 18099);
    let v = stop_who(who);
    let py = row(&v, "python3");
    eprintln!(
        "python3 -m http.server: {REQUESTS} requests from ab, {} active closes, {} TIME_WAIT on its port",
        py["active_closes"], tw
    );
    assert_eq!(py["active_closes"], REQUESTS, "{v:#}");
    assert_eq!(py["aborts"], 0, "{py}");
    assert_eq!(
        py["process_count"], 1,
        "one process, its worker threads included: {py}"
    );
    assert_eq!(
        py["top_local_ports"],
        serde_json::json!([{"port": 18099, "count": REQUESTS}]),
        "{py}"
    );
    assert_eq!(
        py["top_peers"],
        serde_json::json!([]),
        "no client ephemeral ports: {py}"
    );
    assert!(py["netns"].is_string(), "not the caller's namespace: {py}");
    // Every close made a TIME_WAIT on the server's port, each one matched.
    assert_eq!(tw, REQUESTS);
    assert_eq!(py["time_wait_now"], tw, "{py}");
    let ab_row = row(&v, "ab");
    assert_eq!(
        (
            ab_row["active_closes"].as_u64(),
            ab_row["passive_closes"].as_u64()
        ),
        (Some(ab_tw), Some(REQUESTS)),
        "{ab_row}"
    );
    // Named by its identity: no container and no /run/netns name, so its inode.
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&srv.ns).unwrap());
    assert_eq!(v["netns"], format!("net:[{inode}]"));
    assert_eq!(
        v["active_closes"],
        REQUESTS + ab_tw,
        "nothing from other namespaces: {v:#}"
    );
}

/// nginx closing (keepalive off) and curl closing (keepalive on): each exact,
/// and 100 curl processes are one row.
#[test]
fn who_counts_nginx_and_curl_closes_exactly() {
    if !is_root() {
        eprintln!("skipped: needs root for tracefs");
        return;
    }
    for t in ["ab", "nginx", "curl", "nsenter"] {
        need(t);
    }
    const REQUESTS: u64 = 400;
    const CURLS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    let d = dir.path().display();
    std::fs::write(
        &conf,
        format!(
            "worker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
  server {{ listen 127.0.0.1:18081; keepalive_timeout 0; location / {{ return 200 \"closes\\n\"; }} }}\n\
  server {{ listen 127.0.0.1:18082; keepalive_timeout 65; location / {{ return 200 \"stays\\n\"; }} }}\n}}\n"
        ),
    )
    .unwrap();
    let srv = ns_server(
        &format!("nginx -p {d} -c {} -g 'daemon off;'", conf.display()),
        18082,
    );
    let (who, _err, _inst) =
        start_who(&["--duration", "0", "--netns", &srv.ns, "--format", "json"]);
    let ab = in_ns(
        &srv.ns,
        &[
            "ab",
            "-n",
            &REQUESTS.to_string(),
            "-c",
            "4",
            "http://127.0.0.1:18081/",
        ],
    );
    assert!(ab.contains("Failed requests:        0"), "{ab}");
    for _ in 0..CURLS {
        let body = in_ns(&srv.ns, &["curl", "-sS", "http://127.0.0.1:18082/"]);
        assert_eq!(body, "stays\n");
    }
    let server_tw = time_wait_on(&srv.ns, 18081);
    let client_tw = time_wait_to(&srv.ns, 18082);
    let ab_tw = time_wait_to(&srv.ns, 18081);
    let v = stop_who(who);
    let nginx = row(&v, "nginx");
    let curl = row(&v, "curl");
    eprintln!(
        "nginx: {REQUESTS} requests from ab, {} active closes; curl: {CURLS} runs, {} active closes in one row of {} processes",
        nginx["active_closes"], curl["active_closes"], curl["process_count"]
    );
    assert_eq!(nginx["active_closes"], REQUESTS, "{nginx}");
    // Its passive closes: every curl, and the connections ab opened beyond -n and closed unused.
    assert_eq!(nginx["passive_closes"], CURLS + ab_tw, "{nginx}");
    assert_eq!(row(&v, "ab")["active_closes"], ab_tw);
    assert_eq!(
        nginx["top_local_ports"],
        serde_json::json!([{"port": 18081, "count": REQUESTS}]),
        "{nginx}"
    );
    assert_eq!(nginx["time_wait_now"], server_tw, "{nginx}");
    assert_eq!(server_tw, REQUESTS);
    assert_eq!(curl["active_closes"], CURLS, "{v:#}");
    assert_eq!(curl["process_count"], CURLS, "{curl}");
    assert_eq!(
        curl["top_peers"],
        serde_json::json!([{"peer": "127.0.0.1", "peer_port": 18082, "count": CURLS}]),
        "{curl}"
    );
    assert_eq!(curl["time_wait_now"], client_tw, "{curl}");
    assert_eq!(client_tw, CURLS);
    for p in v["processes"].as_array().unwrap() {
        assert!(p["comm"] != "<...>" && p["comm"] != "?", "{p}");
    }
}

#[test]
fn list_by_process_with_trace_reuses_the_attribution() {
    if !is_root() {
        eprintln!("skipped: needs root for tracefs");
        return;
    }
    // Our own listener; the worker connects to it and closes first.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for _ in 0..50 {
            let (mut s, _) = listener.accept().unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        }
    });
    let port_s = port.to_string();
    let (mut lst, _err, _inst) = start_who_as(&[
        "list",
        "--by",
        "process",
        "--trace",
        "2",
        "--peer-port",
        &port_s,
        "--format",
        "json",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (mut w, rx) = spawn_worker(dir.path(), "twlist-delta", &format!("to:{port}:50"));
    wait_line(
        &rx,
        "worker-done ",
        Instant::now() + Duration::from_secs(20),
    );
    server.join().unwrap();
    w.port = port;

    let mut stdout = lst.stdout.take().unwrap();
    let st = wait_exit(&mut lst, Duration::from_secs(60));
    let mut json = String::new();
    stdout.read_to_string(&mut json).unwrap();
    assert!(st.success(), "{st:?}");
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let procs = v["processes"].as_array().unwrap();
    let p = procs
        .iter()
        .find(|p| p["pid"] == w.child.id())
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(p["comm"], "twlist-delta", "{p}");
    assert_eq!(p["active_closes"], 50, "{p}");
    let tw_now = time_wait_to_port(port);
    assert!(tw_now > 0, "no TIME_WAIT to {port}");
    assert_eq!(p["time_wait_now"], tw_now, "{p}");
    // --peer-port restricts the TIME_WAIT considered to this port.
    let total = v["time_wait_total"].as_u64().unwrap();
    assert_eq!(
        total,
        tw_now + v["unattributed_time_wait"].as_u64().unwrap(),
        "{json}"
    );
    assert!(total < tw_now + 5, "filter not applied: {json}");

    let out = Command::new(BIN)
        .args(["list", "--by", "process"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--trace"));
}

#[test]
fn mounts_tracefs_when_absent_and_says_so() {
    if !is_root() || !Path::new("/usr/bin/unshare").exists() {
        eprintln!("skipped: needs root and unshare");
        return;
    }
    // In a private mount namespace, unmount every tracefs, then run who there.
    let script = format!(
        "for m in $(awk '$3 == \"tracefs\" {{print $2}}' /proc/self/mounts); do umount \"$m\" || exit 97; done; \
         exec {BIN} who --duration 0.2 --format json"
    );
    let out = Command::new("/usr/bin/unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(
        err.contains("tracefs was not mounted; mounted it on /sys/kernel/tracing"),
        "{err}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["processes"].is_array());
}
