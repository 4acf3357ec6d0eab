//! Conntrack beside the socket table: the ctnetlink parser on bytes captured
//! from the kernel (tests/fixtures/conntrack/), and `list --conntrack` against
//! real conntrack in private network namespaces, compared with `conntrack -L`
//! and nf_conntrack_count.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use tw_inspect::conntrack::{CtEntry, CtState, PROTO_TCP, PROTO_UDP};
use tw_inspect::diag::conntrack_parse::{CtParseStats, parse_datagram};
use tw_inspect::diag::parse::{Flow, ParseError};
use tw_inspect::socket::Family;

use crate::util::*;

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/conntrack")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse_all(bytes: &[u8]) -> (Result<Flow, ParseError>, Vec<CtEntry>) {
    let mut got = Vec::new();
    let mut stats = CtParseStats::default();
    let r = parse_datagram(bytes, Some(1), &mut stats, |e| got.push(*e));
    (r, got)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn fixture_entries_are_the_ones_conntrack_listed() {
    let (r, entries) = parse_all(&fixture("dump_mixed.bin"));
    assert_eq!(r, Ok(Flow::Done));
    let key = |e: &CtEntry| (e.proto, e.tcp_state, e.src, e.sport, e.dst, e.dport);
    let got: Vec<_> = entries.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (
                PROTO_TCP,
                Some(CtState::TimeWait),
                ip("127.0.0.1"),
                40001,
                ip("127.0.0.1"),
                5000
            ),
            (
                PROTO_TCP,
                Some(CtState::Established),
                ip("::1"),
                40003,
                ip("::1"),
                5002
            ),
            (
                PROTO_UDP,
                None,
                ip("127.0.0.1"),
                40004,
                ip("127.0.0.1"),
                5003
            ),
            (
                PROTO_TCP,
                Some(CtState::Established),
                ip("127.0.0.1"),
                40002,
                ip("127.0.0.1"),
                5001
            ),
        ]
    );
    assert_eq!(entries[1].family, Family::V6);
    // 119 s left of conntrack's 120 s TIME_WAIT when captured.
    assert!((100..=120).contains(&entries[0].timeout_s));
    assert!(entries.iter().all(|e| !e.is_nat()));
    assert_eq!(entries[0].reply_src, ip("127.0.0.1"));
}

#[test]
fn fixture_eperm_is_the_kernels_refusal() {
    let (r, entries) = parse_all(&fixture("error_eperm.bin"));
    assert_eq!(r, Err(ParseError::Kernel(libc::EPERM)));
    assert!(entries.is_empty());
}

#[test]
fn every_cut_and_flipped_byte_of_the_fixture_is_handled() {
    let m = fixture("dump_mixed.bin");
    for cut in 0..m.len() {
        let mut stats = CtParseStats::default();
        let _ = parse_datagram(&m[..cut], None, &mut stats, |_| {});
    }
    for i in 0..m.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = m.clone();
            b[i] ^= flip;
            let mut stats = CtParseStats::default();
            let mut n = 0u64;
            let _ = parse_datagram(&b, None, &mut stats, |_| n += 1);
            assert_eq!(n, stats.entries);
            assert!(n <= 4, "byte {i} ^ {flip:#x}: {n} entries from 4");
        }
    }
}

// ---- against the kernel -------------------------------------------------

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Root, conntrack and iptables: what the kernel tests need. Without them a
/// test says why on stderr and passes (CI installs both and runs as root).
fn can_track() -> bool {
    let ok = is_root() && have("conntrack") && have("iptables");
    if !ok {
        eprintln!("SKIP: needs root, conntrack and iptables");
    }
    ok
}

/// Makes this (private) namespace track connections.
fn track_here() {
    let st = Command::new("iptables")
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
        .unwrap();
    assert!(st.success(), "iptables rule");
}

/// `conntrack -L -p tcp` lines, by state.
fn conntrack_tcp_states() -> std::collections::BTreeMap<String, u64> {
    let out = Command::new("conntrack")
        .args(["-L", "-p", "tcp"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut m = std::collections::BTreeMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        // tcp      6 119 TIME_WAIT src=...
        if let Some(st) = l.split_whitespace().nth(3) {
            *m.entry(st.to_string()).or_insert(0) += 1;
        }
    }
    m
}

fn nf_count() -> u64 {
    std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
