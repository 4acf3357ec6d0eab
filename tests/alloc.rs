//! The dump loop, the streaming aggregation and the socket rows of every
//! `--sockets` format allocate nothing per socket: collecting (or writing)
//! 4,000 TIME_WAIT sockets allocates exactly as often as 2,000, counted by a
//! global allocator around `diag::collect` and around `diag::stream` into a
//! row writer. The conntrack dump and its aggregation likewise, on the
//! conntrack entries of the same connections (when iptables is there to make
//! the namespace track them).
//!
//! The sockets live in a private network namespace (root only), so the count
//! and the groups are ours alone. This file holds a single test: the counter is
//! process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::sync::{Arc, OnceLock};

use tw_inspect::aggregate::conntrack::CtAggregate;
use tw_inspect::aggregate::{Aggregate, GroupBy, Roles};
use tw_inspect::diag::listen::Listener;
use tw_inspect::diag::{self, Options};
use tw_inspect::filter::Query;
use tw_inspect::host::identity::{Kind, NsIdentity};
use tw_inspect::rows::{RowFormat, RowLayout, RowWriter, Style};
use tw_inspect::state::{StateSet, TcpState};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY (no unsafe code of ours runs here beyond forwarding): every call goes
// straight to the system allocator with the caller's arguments.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds GlobalAlloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds GlobalAlloc's contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds GlobalAlloc's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds GlobalAlloc's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The default summary's sink: TIME_WAIT by role, each socket judged against
/// the listeners (built once, before the dump, as `sample` does).
fn summary_sink() -> Aggregate {
    static ROLES: OnceLock<Arc<Roles>> = OnceLock::new();
    let roles = ROLES.get_or_init(|| {
        let l = Listener {
            family: "ipv4".into(),
            local: "0.0.0.0".parse().unwrap(),
            port: 443,
            inode: 0,
            process: None,
        };
        Arc::new(Roles::new(Some(&[l]), Some((32768, 60999))))
    });
    Aggregate::new(GroupBy::ROLES, StateSet::from_states(&[TcpState::TimeWait]))
        .with_roles(Arc::clone(roles))
}

/// Allocations made by `run`, and the TIME_WAIT count it reports. The fewest
/// of three runs, so a stray allocation elsewhere cannot inflate it.
fn counted(mut run: impl FnMut() -> u64) -> (u64, u64) {
    let mut best = (u64::MAX, 0);
    for _ in 0..3 {
        ALLOCS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        let seen = run();
        COUNTING.store(false, Ordering::SeqCst);
        let n = ALLOCS.load(Ordering::SeqCst);
        if n < best.0 {
            best = (n, seen);
        }
    }
    best
}

/// One summary collection.
fn summary() -> u64 {
    let c = diag::collect(&Query::default(), Options::default(), summary_sink);
    c.expect("collecting sockets")
        .sink
        .count(TcpState::TimeWait)
}

/// The socket rows of one dump in `format`, written as they arrive (to
/// nowhere), beside the summary's counts, as `list --sockets` does.
fn rows(format: RowFormat) -> u64 {
    let layout = RowLayout {
        format,
        style: Style::new(true),
        explain: true,
        processes: true,
        ipv6: true,
        states: StateSet::unfiltered(),
        limit: None,
        labelled: true,
    };
    let mut w = RowWriter::new(std::io::sink(), layout, None);
    w.begin(None);
    let blue = NsIdentity {
        inode: 1,
        name: "blue".into(),
        kind: Kind::Named,
        run_netns: Some("blue".into()),
        container: None,
        pod: None,
        containers: Vec::new(),
        process: None,
        dev: 0,
    };
    w.begin_report(Some(&blue));
    let mut sink = (summary_sink(), w);
    diag::stream(&Query::default(), Options::default(), &mut sink).expect("collecting sockets");
    let (agg, w) = sink;
    w.finish().expect("writing to nowhere");
    agg.count(TcpState::TimeWait)
}

const FORMATS: [RowFormat; 4] = [
    RowFormat::Table,
    RowFormat::Json,
    RowFormat::Ndjson,
    RowFormat::Csv,
];

/// Allocations of the summary, then of each format's rows, with the counts seen.
fn counted_all() -> Vec<(String, (u64, u64))> {
    let mut all = vec![("summary".to_string(), counted(summary))];
    for f in FORMATS {
        all.push((format!("{f:?} rows"), counted(|| rows(f))));
    }
    all
}

/// Allocations made by one conntrack dump into an aggregate, and the entries
/// it counted; the fewest of three runs.
fn counted_conntrack() -> (u64, u64) {
    let mut best = (u64::MAX, 0);
    for _ in 0..3 {
        let mut agg = CtAggregate::default();
        ALLOCS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        let r = diag::conntrack::dump(|e| agg.push(e));
        COUNTING.store(false, Ordering::SeqCst);
        r.expect("dumping conntrack");
        let n = ALLOCS.load(Ordering::SeqCst);
        if n < best.0 {
            best = (n, agg.tcp);
        }
    }
    best
}

/// Makes this namespace track connections; false when iptables is missing.
fn track() -> bool {
    ["iptables", "ip6tables"].iter().all(|tool| {
        std::process::Command::new(tool)
            .args([
                "-A",
                "OUTPUT",
                "-m",
                "conntrack",
                "--ctstate",
                "NEW,ESTABLISHED",
                "-j",
                "ACCEPT",
            ])
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Client closes first, then the server: the client side ends in TIME_WAIT.
fn make_time_wait(listener: &TcpListener, addr: SocketAddr, n: usize) {
    for _ in 0..n {
        let c = TcpStream::connect(addr).expect("connect");
        let (s, _) = listener.accept().expect("accept");
        drop(c);
        drop(s);
    }
}

fn wait_for_time_wait(n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = diag::collect(&Query::default(), Options::default(), summary_sink)
            .expect("collecting sockets");
        let seen = c.sink.count(TcpState::TimeWait);
        if seen == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} TIME_WAIT sockets, the kernel reports {seen}"
        );
        std::thread::yield_now();
    }
}

fn body() {
    // This thread (and the collector threads it spawns) moves to a new namespace.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    let st = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("running ip");
    assert!(st.success(), "ip link set lo up failed");

    let tracking = track();
    if !tracking {
        eprintln!("alloc: iptables missing, the conntrack dump is not counted");
    }
    let v4 = TcpListener::bind("127.0.0.1:0").expect("bind v4");
    let v6 = TcpListener::bind("[::1]:0").expect("bind v6");
    let (a4, a6) = (v4.local_addr().unwrap(), v6.local_addr().unwrap());

    make_time_wait(&v4, a4, 1000);
    make_time_wait(&v6, a6, 1000);
    wait_for_time_wait(2000);
    let small = counted_all();
    let ct_small = tracking.then(counted_conntrack);

    make_time_wait(&v4, a4, 1000);
    make_time_wait(&v6, a6, 1000);
    wait_for_time_wait(4000);
    let large = counted_all();
    let ct_large = tracking.then(counted_conntrack);

    for ((what, (small, seen_small)), (_, (large, seen_large))) in small.iter().zip(&large) {
        assert_eq!((*seen_small, *seen_large), (2000, 4000), "{what}");
        assert!(
            *small > 0,
            "the counting allocator saw nothing: it is not installed"
        );
        assert_eq!(
            large, small,
            "{what}: allocations grew with the socket count: {small} for 2,000 TIME_WAIT sockets, {large} for 4,000"
        );
        eprintln!(
            "alloc: {what}: {small} allocations per collection, for 2,000 and for 4,000 sockets"
        );
    }
    if let (Some((cs, ns)), Some((cl, nl))) = (ct_small, ct_large) {
        assert_eq!((ns, nl), (2000, 4000), "conntrack entries");
        assert!(cs > 0, "the conntrack dump allocated nothing at all");
        assert_eq!(
            cl, cs,
            "conntrack allocations grew with the entries: {cs} for 2,000, {cl} for 4,000"
        );
        eprintln!("alloc: {cs} allocations per conntrack dump, for 2,000 and for 4,000 entries");
    }
}

#[test]
fn no_allocation_per_socket() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for a private network namespace");
        return;
    }
    std::thread::spawn(body)
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
}
