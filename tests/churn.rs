//! Dumps under heavy churn: a generator opens and closes thousands of loopback
//! connections per second (client closes first, so each leaves a TIME_WAIT)
//! while the collector dumps the table again and again. Every dump must
//! succeed, list no socket twice, and count TIME_WAIT within what the churn
//! during that dump can explain, against /proc/net/sockstat's `tw`.
//!
//! It runs in a private network namespace (as root, or as an ordinary user
//! inside a user namespace of its own), so other tests do not disturb the
//! counts and the namespace's own sysctls can be set.
//! The longer run: `cargo test --release --test integration -- --ignored --nocapture churn::`.

use std::collections::HashSet;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tw_inspect::diag::{self, Options};
use tw_inspect::filter::Query;
use tw_inspect::socket::SocketRecord;
use tw_inspect::state::TcpState;

/// Connections per second the generator must reach.
const MIN_RATE: f64 = 5_000.0;
/// The shortest measured span of the 100-dump test.
const MIN_SECS: u64 = 3;

struct Outcome {
    dumps: usize,
    secs: f64,
    conns: u64,
    max_sockets: usize,
    max_tw: u64,
    worst_tw_gap: u64,
    interrupted: usize,
    dump_ms_max: f64,
}

/// `tw` from sockstat of this thread's namespace (`thread-self`, not `self`:
/// only this thread and its children are in the private namespace).
fn sockstat_tw() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/net/sockstat").unwrap();
    let tcp = s.lines().find(|l| l.starts_with("TCP:")).unwrap();
    let mut it = tcp.split_whitespace();
    while let Some(w) = it.next() {
        if w == "tw" {
            return it.next().unwrap().parse().unwrap();
        }
    }
    panic!("no tw in {tcp}");
}

/// std listens with a backlog of 128; a deep one keeps SYNs from being
/// dropped (and retried a second later) when the acceptor falls behind.
fn listener_with_backlog(addr: &str, backlog: i32) -> TcpListener {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, socket,
    };
    let a: std::net::SocketAddr = addr.parse().unwrap();
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(a),
    )
    .unwrap();
    listen(&fd, Backlog::new(backlog).unwrap()).unwrap();
    TcpListener::from(fd)
}

fn enter_private_netns() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .expect("unshare(CLONE_NEWNET) needs root");
    let st = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(st.success(), "ip link set lo up");
    // 20,000 ephemeral ports: after a few seconds every new connection reuses
    // a tuple still in TIME_WAIT (tcp_tw_reuse=2 allows it on loopback after
    // 1 s), so TIME_WAIT sockets are destroyed as fast as they are created.
    std::fs::write("/proc/sys/net/ipv4/ip_local_port_range", "20000 39999").unwrap();
    std::fs::write("/proc/sys/net/ipv4/tcp_tw_reuse", "2").unwrap();
}

/// Runs the generator and `dumps` dumps (or dumps until `until`).
fn churn(dumps: usize, until: Option<Duration>) -> Outcome {
    enter_private_netns();
    let stop = Arc::new(AtomicBool::new(false));
    let conns = Arc::new(AtomicU64::new(0));
    let listener = listener_with_backlog("127.0.0.1:5000", 4096);
    let addr = listener.local_addr().unwrap();

    let mut threads = Vec::new();
    // The server closes each connection only after 64 more have arrived, by
    // when the client's FIN (sent right after connect) is long in: the client
    // closes first and keeps the TIME_WAIT. Not reading keeps accept() fast.
    {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut open = std::collections::VecDeque::with_capacity(65);
            for s in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(s) = s {
                    open.push_back(s);
                }
                if open.len() > 64 {
                    open.pop_front();
                }
            }
        }));
    }
    for _ in 0..2 {
        let (stop, conns) = (stop.clone(), conns.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(c) = TcpStream::connect(addr) {
                    drop(c);
                    conns.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    // Let the table fill before measuring.
    let warm = Instant::now();
    while sockstat_tw() < 5_000 {
        assert!(
            warm.elapsed() < Duration::from_secs(30),
            "generator too slow to warm up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let q = Query::default();
    let start = Instant::now();
    let c0 = conns.load(Ordering::Relaxed);
    let mut out = Outcome {
        dumps: 0,
        secs: 0.0,
        conns: 0,
        max_sockets: 0,
        max_tw: 0,
        worst_tw_gap: 0,
        interrupted: 0,
        dump_ms_max: 0.0,
    };
    loop {
        let done = match until {
            Some(d) => start.elapsed() >= d,
            // At least MIN_SECS, so the connection rate is measured over a
            // span long enough to mean something.
            None => out.dumps >= dumps && start.elapsed() >= Duration::from_secs(MIN_SECS),
        };
        if done {
            break;
        }
        let before_conns = conns.load(Ordering::Relaxed);
        let tw_before = sockstat_tw();
        let c = diag::collect(&q, Options::default(), Vec::<SocketRecord>::new)
            .unwrap_or_else(|e| panic!("dump {} failed: {e}", out.dumps));
        let tw_after = sockstat_tw();
        let during = conns.load(Ordering::Relaxed) - before_conns;

        let mut seen = HashSet::with_capacity(c.sink.len());
        for r in &c.sink {
            assert!(
                seen.insert(r.cookie),
                "dump {}: cookie {:#x} twice ({r:?})",
                out.dumps,
                r.cookie
            );
        }
        // sockstat's tw counts TIME_WAIT and the FIN_WAIT2 minisockets.
        let tw = c
            .sink
            .iter()
            .filter(|r| {
                r.state == TcpState::TimeWait || (r.state == TcpState::FinWait2 && r.orphaned)
            })
            .count() as u64;
        // Each connection finished while the dump ran can add one TIME_WAIT
        // and remove one (by reusing its tuple); a little slack for the two
        // sockstat reads around the dump.
        let tol = during * 2 + 50;
        let (lo, hi) = (tw_before.min(tw_after), tw_before.max(tw_after));
        let gap = lo.saturating_sub(tw).max(tw.saturating_sub(hi));
        assert!(
            gap <= tol,
            "dump {}: {tw} TIME_WAIT, sockstat {tw_before}..{tw_after}, {during} connections during the dump",
            out.dumps
        );
        out.worst_tw_gap = out.worst_tw_gap.max(gap);
        out.max_tw = out.max_tw.max(tw);
        out.max_sockets = out.max_sockets.max(c.sink.len());
        out.interrupted += c.stats.interrupted as usize;
        out.dump_ms_max = out.dump_ms_max.max(c.elapsed.as_secs_f64() * 1e3);
        out.dumps += 1;
    }
    out.secs = start.elapsed().as_secs_f64();
    out.conns = conns.load(Ordering::Relaxed) - c0;
    stop.store(true, Ordering::Relaxed);
    let _ = TcpStream::connect(addr); // wakes the acceptor
    for t in threads {
        t.join().unwrap();
    }
    out
}

fn report(o: &Outcome) -> f64 {
    let rate = o.conns as f64 / o.secs;
    eprintln!(
        "churn: {} dumps in {:.1} s, {} connections ({rate:.0}/s), up to {} sockets / {} TIME_WAIT per dump, \
         worst TIME_WAIT gap to sockstat {}, {} dumps flagged interrupted, slowest dump {:.1} ms",
        o.dumps,
        o.secs,
        o.conns,
        o.max_sockets,
        o.max_tw,
        o.worst_tw_gap,
        o.interrupted,
        o.dump_ms_max
    );
    rate
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Not root: run this test again inside `unshare --user --map-root-user --net`,
/// where we are root over a namespace of our own.
fn rerun_in_user_namespace(test: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--"])
        .arg(exe)
        .args([
            "--exact",
            &crate::util::qualified(module_path!(), test),
            "--nocapture",
            "--include-ignored",
        ])
        .output()
        .unwrap();
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn hundred_dumps_under_churn() {
    if !is_root() {
        return rerun_in_user_namespace("hundred_dumps_under_churn");
    }
    let o = std::thread::spawn(|| churn(100, None)).join().unwrap();
    let rate = report(&o);
    assert!(o.dumps >= 100, "{} dumps", o.dumps);
    assert!(o.max_tw > 1_000, "the table really held TIME_WAIT sockets");
    assert!(
        rate >= MIN_RATE,
        "generator reached only {rate:.0} connections/s"
    );
}

#[test]
#[ignore = "runs 60 s; for the record"]
fn sixty_seconds_under_churn() {
    if !is_root() {
        return rerun_in_user_namespace("sixty_seconds_under_churn");
    }
    let o = std::thread::spawn(|| churn(0, Some(Duration::from_secs(60))))
        .join()
        .unwrap();
    let rate = report(&o);
    assert!(
        rate >= MIN_RATE,
        "generator reached only {rate:.0} connections/s"
    );
}
