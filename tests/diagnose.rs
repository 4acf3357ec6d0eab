//! Diagnoses in `list` against real sockets: a child process that leaks
//! CLOSE_WAIT sockets, and port pressure in a private network namespace.
//!
//! Helper roles run in a child copy of this test binary: the parent re-executes
//! it with `TWI_ROLE` set and `--ignored --exact <helper>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tw-inspect");
const CLOSE_WAIT_SOCKETS: usize = 50;

fn tw(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run tw-inspect")
}

fn tw_json(args: &[&str]) -> Value {
    let o = tw(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("valid JSON")
}

/// Polls `f` until it returns Some, or panics with `what` after `limit`.
fn poll<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn helper(role: &str, test: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--ignored",
        "--exact",
        &crate::util::qualified(module_path!(), test),
        "--nocapture",
        "--test-threads=1",
    ])
    .env("TWI_ROLE", role);
    c
}

/// The helper's stdout lines, read on a thread so a stuck helper cannot hang the test.
fn lines_of(out: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            // Keep draining after the test stops listening, so the helper never gets EPIPE.
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits for a line containing `tag` (the harness may print "test NAME ... " before
/// it on the same line) and returns what follows the tag.
fn read_tagged(lines: &Receiver<String>, tag: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(at) = line.find(tag) {
                    return line[at + tag.len()..].trim().to_string();
                }
            }
            Err(e) => panic!("no '{tag}' line from the helper: {e}"),
        }
    }
}

/// `text` without its SGR escape sequences (colors, bold).
fn strip_sgr(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('m').map_or(after.len(), |e| e + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn diagnoses<'a>(v: &'a Value, kind: &str) -> Vec<&'a Value> {
    v["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == kind)
        .collect()
}

/// Helper role: accepts CLOSE_WAIT_SOCKETS connections and never closes them,
/// until its stdin reaches EOF.
#[test]
#[ignore = "helper, run in a child process by close_wait_names_the_holding_process"]
fn helper_close_wait_holder() {
    assert_eq!(
        std::env::var("TWI_ROLE").as_deref(),
        Ok("close-wait-holder")
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    println!("PORT {}", l.local_addr().unwrap().port());
    let held: Vec<TcpStream> = (0..CLOSE_WAIT_SOCKETS)
        .map(|_| l.accept().unwrap().0)
        .collect();
    println!("READY {}", held.len());
    std::io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop(held);
}

struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

#[test]
fn close_wait_names_the_holding_process() {
    let child = helper("close-wait-holder", "helper_close_wait_holder")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut holder = Holder(child);
    let pid = holder.0.id();
    let out = lines_of(holder.0.stdout.take().unwrap());
    let port: u16 = read_tagged(&out, "PORT ").parse().unwrap();
    let clients: Vec<TcpStream> = (0..CLOSE_WAIT_SOCKETS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    assert_eq!(read_tagged(&out, "READY "), CLOSE_WAIT_SOCKETS.to_string());
    // Our ends close first: the helper's accepted sockets go to CLOSE_WAIT and stay.
    drop(clients);

    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap()
        .trim_end()
        .to_string();
    let port_s = port.to_string();
    let args = [
        "list",
        "--state",
        "close-wait",
        "--local-port",
        &port_s,
        "--format",
        "json",
    ];
    let report = poll("50 CLOSE_WAIT sockets", Duration::from_secs(20), || {
        let v = tw_json(&args);
        (v["states"]["close-wait"] == CLOSE_WAIT_SOCKETS as u64).then_some(v)
    });
    let cw = diagnoses(&report, "close-wait");
    assert_eq!(cw.len(), 1, "{report:#}");
    let d = cw[0];
    assert_eq!(d["severity"], "warning");
    assert_eq!(d["data"]["pid"], pid);
    assert_eq!(d["data"]["comm"], comm.as_str());
    assert_eq!(d["data"]["count"], CLOSE_WAIT_SOCKETS as u64);
    let msg = d["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("50 CLOSE_WAIT sockets held by {comm} (pid {pid})")),
        "{msg}"
    );

    // The summary table shows the same finding.
    let table = String::from_utf8(tw(&args[..5]).stdout).unwrap();
    assert!(
        table.contains(&format!(
            "[WARNING] close-wait: 50 CLOSE_WAIT sockets held by {comm} (pid {pid})"
        )),
        "{table}"
    );

    // Not on a terminal: the finding is one line, whole, with no color. The
    // oldest age moved on between the two runs: compare up to it.
    let line = table.lines().find(|l| l.contains("[WARNING]")).unwrap();
    let upto = |s: &str| {
        s.split(" The oldest has waited")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        upto(line),
        upto(&format!("  [WARNING] close-wait: {msg}")),
        "{table}"
    );
    assert!(!table.contains('\x1b'));

    // On a terminal (a pseudo-terminal from script(1)) of COLUMNS=50: wrapped
    // under its first word, the severity yellow, the non-zero close-wait red.
    let cmd = format!("{BIN} {}", args[..5].join(" "));
    let tty = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("COLUMNS", "50")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("run script(1) from util-linux");
    assert!(tty.status.success(), "{tty:?}");
    let screen = String::from_utf8(tty.stdout).unwrap().replace('\r', "");
    assert!(screen.contains("\x1b[33m[WARNING]\x1b[0m"), "{screen:?}");
    let cw_row = screen.lines().find(|l| l.contains("close-wait ")).unwrap();
    assert!(
        cw_row.split("close-wait").next().unwrap().contains("\x1b["),
        "{cw_row:?}"
    );
    let plain = strip_sgr(&screen);
    let lines: Vec<&str> = plain.lines().collect();
    let at = lines.iter().position(|l| l.contains("[WARNING]")).unwrap();
    let finding: Vec<&str> = lines[at..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .copied()
        .collect();
    assert!(finding.len() >= 3, "wrapped: {finding:#?}");
    for l in &finding {
        assert!(l.chars().count() <= 50, "{l:?} is wider than 50");
        assert!(!l.ends_with(' '), "{l:?}");
    }
    for l in &finding[1..] {
        assert!(
            l.starts_with(&" ".repeat(12)) && !l.starts_with(&" ".repeat(13)),
            "{l:?}"
        );
    }
    let joined = finding
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(upto(&joined), upto(&format!("[WARNING] close-wait: {msg}")));
    for l in &lines {
        assert!(!l.ends_with(' '), "trailing space: {l:?}");
    }

    // -p names the owner of every socket.
    let v = tw_json(&[
        "list",
        "--state",
        "close-wait",
        "--local-port",
        &port_s,
        "--sockets",
        "-p",
        "--format",
        "json",
    ]);
    let rows = v["sockets"].as_array().unwrap();
    assert_eq!(rows.len(), CLOSE_WAIT_SOCKETS);
    for r in rows {
        assert_eq!(r["process"]["pid"], pid, "{r}");
        assert_eq!(r["process"]["comm"], comm.as_str());
    }
}

#[test]
fn processes_flag_shows_owners_and_why_time_wait_has_none() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&l);
    let inode = std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .unwrap()
        .ino();
    // One TIME_WAIT on the server side: the accepted socket closes first.
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (server, _) = l.accept().unwrap();
    drop(server);
    let mut buf = [0u8; 1];
    assert_eq!((&client).read(&mut buf).unwrap(), 0, "the server's FIN");
    drop(client);

    let port_s = port.to_string();
    let v = poll("a TIME_WAIT on our port", Duration::from_secs(10), || {
        let v = tw_json(&[
            "list",
            "--local-port",
            &port_s,
            "--sockets",
            "-p",
            "--format",
            "json",
        ]);
        (v["states"]["time-wait"] == 1).then_some(v)
    });
    let rows = v["sockets"].as_array().unwrap();
    let listen = rows
        .iter()
        .find(|r| r["state"] == "listening")
        .expect("our listener");
    assert_eq!(listen["inode"], inode);
    assert_eq!(listen["process"]["pid"], std::process::id());
    let tw_row = rows.iter().find(|r| r["state"] == "time-wait").unwrap();
    assert_eq!(tw_row["inode"], 0);
    assert!(tw_row.get("process").is_none());

    let o = tw(&["list", "--local-port", &port_s, "--sockets", "-p"]);
    let table = String::from_utf8(o.stdout).unwrap();
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("time-wait"))
        .unwrap();
    assert!(
        line.contains("none: closed; the kernel holds TIME_WAIT alone"),
        "{table}"
    );
    let me = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert!(
        table.contains(&format!("{} ({})", me.trim_end(), std::process::id())),
        "{table}"
    );

    let usage = tw(&["list", "-p"]);
    assert_eq!(usage.status.code(), Some(2));
}

const PRESSURE_PORTS: (u16, u16) = (40000, 40099);
const PRESSURE_TIME_WAIT: usize = 85;
const PRESSURE_MORE: usize = 95;
const SERVER_PORT: u16 = 8080;
/// An address on a veth interface: traffic that is not loopback, where
/// tcp_tw_reuse = 2 does not apply (the kernel looks at the addresses).
const VETH_ADDR: &str = "10.200.0.1";

fn net_ns_inode() -> u64 {
    std::fs::metadata("/proc/self/ns/net").unwrap().ino()
}

/// Helper role, inside a private network namespace: 100 ephemeral ports,
/// 85 client-side TIME_WAIT sockets to one destination, the diagnosis, and
/// then 95 more connect() to that destination. Prints one RESULT line.
/// `TWI_CASE` is `REUSE,TIMESTAMPS,lo|veth`.
#[test]
#[ignore = "helper, run in a private network namespace by port_pressure_verdicts_match_connect"]
fn helper_port_pressure() {
    assert_eq!(std::env::var("TWI_ROLE").as_deref(), Ok("port-pressure"));
    let host_ns: u64 = std::env::var("TWI_HOST_NETNS").unwrap().parse().unwrap();
    // Never touch the host's sysctls: only go on inside a namespace of our own.
    assert_ne!(
        net_ns_inode(),
        host_ns,
        "not in a private network namespace"
    );
    let case = std::env::var("TWI_CASE").unwrap();
    let f: Vec<&str> = case.split(',').collect();
    let (reuse, timestamps, veth) = (f[0], f[1], f[2] == "veth");
    let ip = |args: &[&str]| {
        let st = Command::new("ip").args(args).status().expect("run ip");
        assert!(st.success(), "ip {args:?}");
    };
    ip(&["link", "set", "lo", "up"]);
    let addr = if veth {
        // A veth pair (this kernel has no dummy driver); the address on one end.
        ip(&[
            "link", "add", "twi0", "type", "veth", "peer", "name", "twi1",
        ]);
        ip(&["addr", "add", &format!("{VETH_ADDR}/24"), "dev", "twi0"]);
        ip(&["link", "set", "twi0", "up"]);
        ip(&["link", "set", "twi1", "up"]);
        VETH_ADDR
    } else {
        "127.0.0.1"
    };
    let sys = |k: &str, v: &str| std::fs::write(format!("/proc/sys/net/ipv4/{k}"), v).unwrap();
    sys(
        "ip_local_port_range",
        &format!("{} {}", PRESSURE_PORTS.0, PRESSURE_PORTS.1),
    );
    sys("tcp_tw_reuse", reuse);
    sys("tcp_timestamps", timestamps);

    let l = TcpListener::bind((addr, SERVER_PORT)).unwrap();
    for _ in 0..PRESSURE_TIME_WAIT {
        let client = TcpStream::connect((addr, SERVER_PORT)).unwrap();
        let (mut server, _) = l.accept().unwrap();
        let port = client.local_addr().unwrap().port();
        assert!(
            (PRESSURE_PORTS.0..=PRESSURE_PORTS.1).contains(&port),
            "{port}"
        );
        // The client closes first and so gets the TIME_WAIT.
        drop(client);
        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).unwrap(), 0);
        drop(server);
    }

    // The diagnosis once every TIME_WAIT socket has passed the reuse delay
    // (at once where reuse does not apply): what it says then holds until
    // the connections below are made, a few milliseconds later.
    let v = poll("the TIME_WAIT sockets", Duration::from_secs(20), || {
        let v = tw_json(&["list", "--format", "json"]);
        let settled = v["states"]["time-wait"] == PRESSURE_TIME_WAIT as u64
            && v["states"]["fin-wait-2"] == 0
            && diagnoses(&v, "port-pressure")
                .first()
                .is_some_and(|d| d["data"]["time_wait_maturing"] == 0);
        settled.then_some(v)
    });
    let pp = diagnoses(&v, "port-pressure");
    assert_eq!(pp.len(), 1, "{v:#}");
    let d = pp[0];
    assert_eq!(d["data"]["in_use"], PRESSURE_TIME_WAIT as u64, "{d}");
    assert_eq!(d["data"]["usable"], 100);
    assert_eq!(d["data"]["peer_port"], SERVER_PORT);
    assert_eq!(d["data"]["tcp_tw_reuse"], reuse.parse::<u64>().unwrap());
    let critical = d["severity"] == "critical";
    let msg = d["message"].as_str().unwrap().to_string();

    // Now do what the verdict predicts. The listener's backlog (128) takes
    // the handshakes without accept().
    let (mut opened, mut failed, mut open) = (0, 0, Vec::new());
    for _ in 0..PRESSURE_MORE {
        match TcpStream::connect((addr, SERVER_PORT)) {
            Ok(c) => {
                opened += 1;
                open.push(c);
            }
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{e}");
                failed += 1;
            }
        }
    }
    println!(
        "RESULT reuse={reuse} timestamps={timestamps} addr={addr} verdict={} held={} reusable={} opened={opened} failed={failed}",
        d["severity"].as_str().unwrap(),
        d["data"]["held"],
        d["data"]["time_wait_reusable"]
    );
    assert_eq!(
        critical,
        failed > 0,
        "the verdict must be critical exactly when connect() fails: {opened} opened, {failed} failed\n{msg}"
    );
    drop((open, l));
    if critical {
        assert!(msg.contains("EADDRNOTAVAIL"), "{msg}");
        // Never a remedy already in force.
        if reuse == "1" {
            assert!(!msg.contains("tcp_tw_reuse=1"), "{msg}");
        }
    } else {
        assert_eq!(d["severity"], "info", "{d}");
        assert_eq!(d["data"]["held"], 0, "{d}");
    }

    // explain sysctls reads the namespace's own values.
    let s = tw_json(&["explain", "sysctls", "--format", "json"]);
    let range = s["sysctls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ip_local_port_range")
        .unwrap();
    assert_eq!(range["value"], "40000 40099");
    println!("PRESSURE-OK");
}

/// The acceptance test of the port-pressure verdict: for tcp_tw_reuse 0, 1
/// and 2 on loopback, 2 and 1 on a non-loopback address, and 1 without
/// timestamps, the diagnosis is critical exactly when connect() then fails.
#[test]
fn port_pressure_verdicts_match_connect() {
    let root = nix_is_root();
    let cases = [
        ("0,1,lo", true),
        ("1,1,lo", false),
        ("2,1,lo", false),
        ("2,1,veth", true),
        ("1,1,veth", false),
        ("1,0,lo", true),
    ];
    for (case, fails) in cases {
        let mut c = Command::new("unshare");
        c.arg("--net");
        if !root {
            c.arg("--map-root-user");
        }
        let exe = std::env::current_exe().unwrap();
        c.arg(exe)
            .args([
                "--ignored",
                "--exact",
                &crate::util::qualified(module_path!(), "helper_port_pressure"),
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TWI_ROLE", "port-pressure")
            .env("TWI_CASE", case)
            .env("TWI_HOST_NETNS", net_ns_inode().to_string());
        let o = c.output().expect("run unshare");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("PRESSURE-OK"),
            "helper failed for {case} ({:?}):\n{out}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        let result = out.lines().find(|l| l.contains("RESULT ")).unwrap();
        eprintln!("{case}: {}", &result[result.find("RESULT ").unwrap()..]);
        // The kernel behaves as the facts say (no reuse: 15 of 95 succeed).
        assert_eq!(result.contains("failed=0"), !fails, "{case}: {result}");
        if fails {
            assert!(result.contains("opened=15 failed=80"), "{case}: {result}");
        }
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

#[test]
fn server_time_wait_and_orphaned_fin_wait2_on_loopback() {
    const N: usize = 100;
    // Server closes first: TIME_WAIT lands on the listening port.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    for _ in 0..N {
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server, _) = l.accept().unwrap();
        drop(server);
        let mut buf = [0u8; 1];
        assert_eq!((&client).read(&mut buf).unwrap(), 0, "the server's FIN");
    }
    let port_s = port.to_string();
    let v = poll("100 server-side TIME_WAIT", Duration::from_secs(20), || {
        let v = tw_json(&[
            "list",
            "--state",
            "time-wait",
            "--local-port",
            &port_s,
            "--format",
            "json",
        ]);
        (v["states"]["time-wait"] == N as u64).then_some(v)
    });
    let d = diagnoses(&v, "server-time-wait");
    assert_eq!(d.len(), 1, "{v:#}");
    assert_eq!(d[0]["severity"], "info");
    assert_eq!(d[0]["data"]["ports"][0]["port"], port);
    assert_eq!(d[0]["data"]["ports"][0]["count"], N as u64);
    let msg = d[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "100 TIME_WAIT sockets on listening ports {port} (100)"
        )),
        "{msg}"
    );

    // Clients close first and the server never does: orphaned FIN_WAIT2 on the client side.
    let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let port2 = l2.local_addr().unwrap().port();
    let mut held = Vec::new();
    for _ in 0..N {
        let client = TcpStream::connect(("127.0.0.1", port2)).unwrap();
        held.push(l2.accept().unwrap().0);
        drop(client);
    }
    let port2_s = port2.to_string();
    let v = poll("100 orphaned FIN_WAIT2", Duration::from_secs(20), || {
        let v = tw_json(&[
            "list",
            "--state",
            "fin-wait-2",
            "--peer-port",
            &port2_s,
            "--format",
            "json",
        ]);
        (v["orphaned"]["fin-wait-2"] == N as u64).then_some(v)
    });
    let d = diagnoses(&v, "orphan-fin-wait2");
    assert_eq!(d.len(), 1, "{v:#}");
    assert_eq!(d[0]["severity"], "info");
    assert_eq!(d[0]["data"]["count"], N as u64);
    let fin = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_fin_timeout").unwrap();
    assert_eq!(
        d[0]["data"]["tcp_fin_timeout"],
        fin.trim().parse::<u64>().unwrap()
    );
    drop(held);
}

/// Makes `n` client-side TIME_WAIT sockets to 127.0.0.1:8080 inside the
/// namespace at `path`, on a thread that enters it.
fn time_wait_in(path: &str, n: usize) {
    let f = std::fs::File::open(path).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let l = TcpListener::bind(("127.0.0.1", SERVER_PORT)).unwrap();
            for _ in 0..n {
                let c = TcpStream::connect(("127.0.0.1", SERVER_PORT)).unwrap();
                let (mut s, _) = l.accept().unwrap();
                drop(c);
                assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0);
            }
        })
        .join()
        .unwrap()
    });
}

/// `list --all-netns` diagnoses each namespace with its own settings: the
/// same 85 TIME_WAIT sockets are critical where tcp_tw_reuse is 0 and not
/// where it is 1.
#[test]
fn all_netns_diagnoses_use_each_namespace_settings() {
    if !nix_is_root() {
        eprintln!("skipped: needs root (ip netns, --all-netns)");
        return;
    }
    struct Named(String);
    impl Drop for Named {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let mk = |tag: &str, reuse: &str| {
        let name = format!("twi14-{}-{tag}", std::process::id());
        let ip = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &name]);
        let ns = Named(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        for (k, v) in [
            (
                "ip_local_port_range",
                format!("{} {}", PRESSURE_PORTS.0, PRESSURE_PORTS.1),
            ),
            ("tcp_tw_reuse", reuse.to_string()),
        ] {
            ip(&[
                "netns",
                "exec",
                &name,
                "sysctl",
                "-qw",
                &format!("net.ipv4.{k}={v}"),
            ]);
        }
        time_wait_in(&format!("/run/netns/{name}"), PRESSURE_TIME_WAIT);
        ns
    };
    let off = mk("off", "0");
    let on = mk("on", "1");
    let find = |v: &Value, name: &str| -> Option<Value> {
        v["namespaces"]
            .as_array()?
            .iter()
            .find(|n| n["netns"] == name)
            .cloned()
    };
    let v = poll(
        "both namespaces, TIME_WAIT past the reuse delay",
        Duration::from_secs(20),
        || {
            let v = tw_json(&["list", "--all-netns", "--format", "json"]);
            let settled = find(&v, &on.0).is_some_and(|n| {
                diagnoses(&n, "port-pressure")
                    .first()
                    .is_some_and(|d| d["data"]["time_wait_maturing"] == 0)
            });
            settled.then_some(v)
        },
    );
    let off_ns = find(&v, &off.0).unwrap();
    let on_ns = find(&v, &on.0).unwrap();
    for n in [&off_ns, &on_ns] {
        assert_eq!(n["states"]["time-wait"], PRESSURE_TIME_WAIT as u64, "{n:#}");
    }
    let d_off = diagnoses(&off_ns, "port-pressure")[0].clone();
    let d_on = diagnoses(&on_ns, "port-pressure")[0].clone();
    assert_eq!(
        (
            d_off["severity"].as_str(),
            d_off["data"]["tcp_tw_reuse"].as_u64(),
            d_off["data"]["usable"].as_u64()
        ),
        (Some("critical"), Some(0), Some(100)),
        "{d_off}"
    );
    assert_eq!(
        (
            d_on["severity"].as_str(),
            d_on["data"]["tcp_tw_reuse"].as_u64(),
            d_on["data"]["held"].as_u64()
        ),
        (Some("info"), Some(1), Some(0)),
        "{d_on}"
    );
}

/// CLOSE_WAIT held for a known time: the peer sends data, then closes 1.5 s
/// later, and this process keeps its ends open. The age reported is the time
/// since the peer's FIN (tcpi_last_ack_recv), not since its data
/// (tcpi_last_data_recv), in JSON, the table, Prometheus and the finding.
#[test]
fn close_wait_age_is_the_time_since_the_peers_fin() {
    if !crate::util::private_netns(
        module_path!(),
        "close_wait_age_is_the_time_since_the_peers_fin",
    ) {
        return;
    }
    const N: usize = 12;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut clients: Vec<TcpStream> = (0..N)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut held: Vec<TcpStream> = (0..N).map(|_| l.accept().unwrap().0).collect();
    for (c, s) in clients.iter_mut().zip(&mut held) {
        c.write_all(b"early").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
    }
    // The data is 1.5 s older than the FIN that follows.
    std::thread::sleep(Duration::from_millis(1500));
    let fin_at = Instant::now();
    drop(clients);
    let port_s = port.to_string();
    let args = ["list", "--state", "close-wait", "--format", "json"];
    poll("12 CLOSE_WAIT", Duration::from_secs(10), || {
        (tw_json(&args)["states"]["close-wait"] == N as u64).then_some(())
    });
    // Held for a known time: 2 s after the FIN.
    std::thread::sleep((fin_at + Duration::from_secs(2)).saturating_duration_since(Instant::now()));
    let e0 = fin_at.elapsed().as_millis() as u64;
    let v = tw_json(&["list", "--format", "json"]);
    let e1 = fin_at.elapsed().as_millis() as u64;
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    let comm = comm.trim_end();
    let rows = v["close_wait"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v:#}");
    let r = &rows[0];
    assert_eq!(r["role"], "incoming");
    assert_eq!(r["local_port"], port);
    assert_eq!(r["count"], N);
    assert_eq!(r["process"]["comm"], comm);
    let oldest = r["oldest_ms"].as_u64().unwrap();
    eprintln!("CLOSE_WAIT held {e0}..{e1} ms after the FIN: reported {oldest} ms");
    // Jiffies (4 ms at HZ=250) and the loopback's delivery: a few ms either side.
    assert!(
        oldest + 20 >= e0 && oldest <= e1 + 20,
        "{oldest} ms not within {e0}..{e1} ms"
    );
    assert_eq!(v["close_wait_oldest_ms"], oldest);
    let d = diagnoses(&v, "close-wait");
    assert_eq!(d.len(), 1, "{v:#}");
    assert_eq!(d[0]["data"]["oldest_ms"], oldest);
    assert!(
        d[0]["message"]
            .as_str()
            .unwrap()
            .ends_with("since its peer closed."),
        "{}",
        d[0]["message"]
    );
    let table = String::from_utf8(tw(&["list"]).stdout).unwrap();
    assert!(
        table.contains("CLOSE_WAIT by local port and process (12 sockets"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with(&port_s))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(comm) && row.contains(" 12 "), "{row}");
    let p = String::from_utf8(tw(&["list", "--format", "prometheus"]).stdout).unwrap();
    assert!(
        p.contains(&format!(
            "tw_inspect_close_wait{{local_port=\"{port}\",process=\"{comm}\"}} 12\n"
        )),
        "{p}"
    );
    let secs: f64 = p
        .lines()
        .find_map(|l| l.strip_prefix("tw_inspect_close_wait_oldest_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((2.0..30.0).contains(&secs), "{secs}");

    // 60 more, closed now: 72 in all, past the 64 asked for one by one, so
    // they are dumped again instead. The 12 are still the oldest.
    let more: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let held_more: Vec<TcpStream> = (0..60).map(|_| l.accept().unwrap().0).collect();
    drop(more);
    poll("72 CLOSE_WAIT", Duration::from_secs(10), || {
        (tw_json(&args)["states"]["close-wait"] == 72).then_some(())
    });
    let e0 = fin_at.elapsed().as_millis() as u64;
    let v = tw_json(&["list", "--format", "json"]);
    let e1 = fin_at.elapsed().as_millis() as u64;
    let r = &v["close_wait"][0];
    assert_eq!(r["count"], 72, "{v:#}");
    let oldest = r["oldest_ms"].as_u64().unwrap();
    eprintln!("72 CLOSE_WAIT (dumped again): oldest {oldest} ms, within {e0}..{e1} ms");
    assert!(
        oldest + 20 >= e0 && oldest <= e1 + 20,
        "{oldest} ms not within {e0}..{e1} ms"
    );
    drop((held, held_more));
}
