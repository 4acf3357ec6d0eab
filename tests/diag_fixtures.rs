//! The sock_diag parser on datagrams captured from the kernel
//! (tests/fixtures/diag/, see its README), checked against known values and,
//! field by field, against netlink-packet-sock-diag's own parser.
//!
//! Recapture (root; runs in a private network namespace with fixed ports):
//! `cargo test --test integration -- --ignored --exact diag_fixtures::recapture`

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload, Parseable};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::inet::{InetResponseHeader, Timer as CrateTimer};
use tw_inspect::diag::parse::{
    Flow, NLMSG_HDRLEN, ParseError, ParseStats, SOCK_DIAG_BY_FAMILY, parse_datagram,
    parse_inet_diag_msg,
};
use tw_inspect::socket::{Family, SocketRecord, Timer, canonical};
use tw_inspect::state::TcpState;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diag")
}

fn fixture(name: &str) -> Vec<u8> {
    let p = fixture_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse_all(bytes: &[u8]) -> (Result<Flow, ParseError>, Vec<SocketRecord>) {
    let mut got = Vec::new();
    let mut stats = ParseStats::default();
    let r = parse_datagram(bytes, Some(1), &mut stats, |r| got.push(*r));
    (r, got)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn time_wait_v4() {
    let (r, socks) = parse_all(&fixture("time_wait_v4.bin"));
    assert_eq!(r, Ok(Flow::Done));
    assert_eq!(socks.len(), 1);
    let s = &socks[0];
    assert_eq!(
        (s.family, s.state, s.timer),
        (Family::V4, TcpState::TimeWait, Timer::TimeWait)
    );
    assert_eq!((s.local, s.local_port), (ip("127.0.0.1"), 40001));
    assert_eq!((s.peer, s.peer_port), (ip("127.0.0.1"), 5000));
    assert!(
        s.expires_ms > 0 && s.expires_ms <= 60_000,
        "{}",
        s.expires_ms
    );
    assert_eq!(
        (s.inode, s.uid, s.recv_q, s.send_q),
        (0, 0, 0, 0),
        "TIME_WAIT has no owner or queues"
    );
    assert_ne!(s.cookie, 0);
}

#[test]
fn sockets_v6_with_a_mapped_peer() {
    let (r, socks) = parse_all(&fixture("sockets_v6.bin"));
    assert_eq!(r, Ok(Flow::Done));
    assert!(socks.iter().all(|s| s.family == Family::V6));
    let find = |st: TcpState, lport: u16| {
        socks
            .iter()
            .find(|s| s.state == st && s.local_port == lport)
            .unwrap_or_else(|| panic!("{st:?} on {lport} in {socks:?}"))
    };
    let l = find(TcpState::Listen, 5001);
    assert_eq!(l.local, ip("::"));
    assert_ne!(l.inode, 0);
    let c = find(TcpState::Established, 40002);
    assert_eq!((c.local, c.peer, c.peer_port), (ip("::1"), ip("::1"), 5001));
    // The accepted side of an IPv4 client on a dual-stack listener: both
    // addresses arrive as ::ffff:127.0.0.1 and come out as IPv4.
    let m = socks
        .iter()
        .find(|s| s.peer_port == 40003)
        .expect("mapped peer");
    assert_eq!(
        (m.local, m.peer, m.local_port),
        (ip("127.0.0.1"), ip("127.0.0.1"), 5001)
    );
    assert_eq!(socks.len(), 4, "{socks:?}");
}

#[test]
fn kernel_error() {
    let (r, socks) = parse_all(&fixture("error_einval.bin"));
    assert_eq!(r, Err(ParseError::Kernel(libc::EINVAL)));
    assert!(socks.is_empty());
}

#[test]
fn truncated_by_a_small_buffer() {
    let bytes = fixture("truncated.bin");
    let (r, socks) = parse_all(&bytes);
    assert!(
        matches!(r, Err(ParseError::Truncated { offset: 0, .. })),
        "{r:?}"
    );
    assert!(socks.is_empty());
}

/// Every message of every fixture, through the crate's parser: whatever it
/// keeps must equal what ours produced.
#[test]
fn agrees_with_netlink_packet_sock_diag() {
    let mut compared = 0;
    for name in ["time_wait_v4.bin", "sockets_v6.bin", "error_einval.bin"] {
        let bytes = fixture(name);
        let mut off = 0;
        while off + NLMSG_HDRLEN <= bytes.len() {
            let len = u32::from_ne_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
            let msg = &bytes[off..off + len];
            let theirs = NetlinkMessage::<SockDiagMessage>::deserialize(msg)
                .unwrap_or_else(|e| panic!("{name}@{off}: crate rejects a kernel message: {e}"));
            match theirs.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(resp)) => {
                    let ours = parse_inet_diag_msg(&msg[NLMSG_HDRLEN..], off)
                        .unwrap()
                        .unwrap();
                    same_fields(&resp.header, &ours, &format!("{name}@{off}"));
                    compared += 1;
                }
                NetlinkPayload::Done(_) => assert_eq!(msg_type(msg), 3),
                NetlinkPayload::Error(e) => {
                    assert_eq!(msg_type(msg), 2);
                    assert_eq!(e.code.map(|c| c.get()), Some(-libc::EINVAL), "{name}");
                    assert_eq!(parse_all(msg).0, Err(ParseError::Kernel(libc::EINVAL)));
                }
                other => panic!("{name}@{off}: unexpected {other:?}"),
            }
            off += (len + 3) & !3;
        }
        assert_eq!(off, bytes.len(), "{name}: messages fill the file exactly");
    }
    assert_eq!(compared, 5, "1 TIME_WAIT + 4 IPv6 sockets compared");
}

fn msg_type(msg: &[u8]) -> u16 {
    u16::from_ne_bytes([msg[4], msg[5]])
}

/// Compares every field the crate keeps with ours.
fn same_fields(h: &InetResponseHeader, ours: &SocketRecord, what: &str) {
    let fam = match ours.family {
        Family::V4 => libc::AF_INET as u8,
        Family::V6 => libc::AF_INET6 as u8,
    };
    assert_eq!(h.family, fam, "{what}");
    assert_eq!(h.state, ours.state.number(), "{what}");
    assert_eq!(h.socket_id.source_port, ours.local_port, "{what}");
    assert_eq!(h.socket_id.destination_port, ours.peer_port, "{what}");
    assert_eq!(canonical(h.socket_id.source_address), ours.local, "{what}");
    assert_eq!(
        canonical(h.socket_id.destination_address),
        ours.peer,
        "{what}"
    );
    assert_eq!(h.socket_id.interface_id, ours.ifindex, "{what}");
    let c = h.socket_id.cookie;
    let lo = u32::from_ne_bytes(c[0..4].try_into().unwrap()) as u64;
    let hi = u32::from_ne_bytes(c[4..8].try_into().unwrap()) as u64;
    assert_eq!(hi << 32 | lo, ours.cookie, "{what}");
    assert_eq!(h.recv_queue, ours.recv_q, "{what}");
    assert_eq!(h.send_queue, ours.send_q, "{what}");
    assert_eq!(h.uid, ours.uid, "{what}");
    assert_eq!(h.inode, ours.inode, "{what}");
    // The crate keeps the expiry for some timers only, and drops TIME_WAIT's
    // remaining time (we read it at offset 52).
    match (&h.timer, ours.timer) {
        (None, Timer::Off | Timer::Unknown(_)) => {}
        (Some(CrateTimer::Retransmit(d, n)), Timer::On) => {
            assert_eq!(d.as_millis() as u32, ours.expires_ms, "{what}");
            assert_eq!(*n, ours.retransmits, "{what}");
        }
        (Some(CrateTimer::KeepAlive(d)), Timer::Keepalive) => {
            assert_eq!(d.as_millis() as u32, ours.expires_ms)
        }
        (Some(CrateTimer::Probe(d)), Timer::Persist) => {
            assert_eq!(d.as_millis() as u32, ours.expires_ms)
        }
        (Some(CrateTimer::TimeWait), Timer::TimeWait) => {}
        (t, o) => panic!("{what}: timers differ: crate {t:?}, ours {o:?}"),
    }
}

/// Message start offsets in a well-formed buffer.
fn boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut out = vec![0];
    let mut off = 0;
    while off + NLMSG_HDRLEN <= bytes.len() {
        let len = u32::from_ne_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        off += (len + 3) & !3;
        out.push(off);
    }
    out
}

/// Hostile input: random bytes, cuts, lying lengths and flipped bits never
/// panic, and each kind of damage gets the error it deserves.
/// `PROPTEST_CASES=100000` runs longer.
mod hostile {
    use proptest::prelude::*;

    use super::*;

    const VALID: [&str; 3] = ["time_wait_v4.bin", "sockets_v6.bin", "error_einval.bin"];

    #[test]
    fn done_with_the_most_negative_error() {
        // NLMSG_DONE carrying i32::MIN: negating it must not overflow.
        let mut m = vec![0u8; 20];
        m[0..4].copy_from_slice(&20u32.to_ne_bytes());
        m[4..6].copy_from_slice(&3u16.to_ne_bytes());
        m[8..12].copy_from_slice(&1u32.to_ne_bytes());
        m[16..20].copy_from_slice(&i32::MIN.to_ne_bytes());
        assert_eq!(parse_all(&m).0, Err(ParseError::Kernel(i32::MAX)));
        m[4..6].copy_from_slice(&2u16.to_ne_bytes());
        assert_eq!(parse_all(&m).0, Err(ParseError::Kernel(i32::MAX)));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), seq in any::<Option<u32>>()) {
            let mut stats = ParseStats::default();
            let mut n = 0u64;
            let _ = parse_datagram(&bytes, seq, &mut stats, |_| n += 1);
            // A socket takes at least a header and an inet_diag_msg.
            prop_assert!(n as usize <= bytes.len() / (NLMSG_HDRLEN + 72));
            prop_assert_eq!(n, stats.sockets);
        }

        #[test]
        fn any_cut_inside_a_message_is_truncated(f in 0..VALID.len(), at in any::<prop::sample::Index>()) {
            let full = fixture(VALID[f]);
            let cut = at.index(full.len());
            let (r, socks) = parse_all(&full[..cut]);
            let bounds = boundaries(&full);
            if bounds.contains(&cut) {
                // A whole number of messages short of DONE: the dump goes on
                // (unless one of them was the error).
                let whole = parse_all(&full);
                if whole.0.is_ok() {
                    prop_assert_eq!(r, Ok(Flow::More));
                }
                prop_assert!(socks.len() <= whole.1.len());
            } else {
                let is_truncated = matches!(r, Err(ParseError::Truncated { .. }));
                prop_assert!(is_truncated, "cut at {}: {:?}", cut, r);
            }
        }

        #[test]
        fn trailing_bytes_are_an_error(f in 0..VALID.len(), extra in proptest::collection::vec(any::<u8>(), 1..16usize)) {
            // Messages up to (not including) DONE or ERROR, then junk that is
            // not a whole message.
            let full = fixture(VALID[f]);
            let bounds = boundaries(&full);
            let keep = bounds[bounds.len() - 2];
            let mut bytes = full[..keep].to_vec();
            bytes.extend_from_slice(&extra);
            let (r, _) = parse_all(&bytes);
            let is_err = r.is_err();
            prop_assert!(is_err, "{} trailing bytes accepted: {:?}", extra.len(), r);
        }

        #[test]
        fn a_datagram_ending_inside_padding_is_truncated(f in 0..VALID.len(), which in any::<prop::sample::Index>(), short in 1usize..4) {
            // Shorten one message by 1-3 bytes, length field included, and end
            // the datagram there: the kernel always pads, so this was cut.
            let full = fixture(VALID[f]);
            let bounds = boundaries(&full);
            let i = which.index(bounds.len() - 1);
            let (off, end) = (bounds[i], bounds[i + 1]);
            let mut bytes = full[..end - short].to_vec();
            let len = (end - short - off) as u32;
            bytes[off..off + 4].copy_from_slice(&len.to_ne_bytes());
            let (r, _) = parse_all(&bytes);
            let is_truncated = matches!(r, Err(ParseError::Truncated { offset, .. }) if offset == off);
            prop_assert!(is_truncated, "message at {} of {} bytes: {:?}", off, len, r);
        }

        #[test]
        fn lying_lengths_are_caught(f in 0..VALID.len(), which in any::<prop::sample::Index>(), len in prop_oneof![0u32..200, any::<u32>()]) {
            let mut bytes = fixture(VALID[f]);
            let bounds = boundaries(&bytes);
            let off = bounds[which.index(bounds.len() - 1)];
            let ty = msg_type(&bytes[off..]);
            bytes[off..off + 4].copy_from_slice(&len.to_ne_bytes());
            let (r, _) = parse_all(&bytes);
            let room = bytes.len() - off;
            let padded = (len as u64 + 3) & !3;
            if (len as usize) < NLMSG_HDRLEN {
                prop_assert_eq!(r, Err(ParseError::BadLength { offset: off, len }));
            } else if padded > room as u64 {
                let is_truncated = matches!(r, Err(ParseError::Truncated { offset, .. }) if offset == off);
                prop_assert!(is_truncated, "len {} at {}: {:?}", len, off, r);
            } else if ty == SOCK_DIAG_BY_FAMILY && (len as usize) < NLMSG_HDRLEN + 72 {
                prop_assert_eq!(r, Err(ParseError::ShortSocket { offset: off, len: len as usize - NLMSG_HDRLEN }));
            }
        }

        #[test]
        fn flipped_bytes_never_panic_and_agree_with_the_crate(
            f in 0..VALID.len(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        ) {
            let mut bytes = fixture(VALID[f]);
            for (i, b) in &flips {
                let i = i.index(bytes.len());
                bytes[i] ^= b;
            }
            let mut stats = ParseStats::default();
            let _ = parse_datagram(&bytes, None, &mut stats, |_| {});
            // Wherever a damaged message still decodes as a socket for us, the
            // crate (reading the same header) must see the same fields.
            let mut off = 0;
            while off + NLMSG_HDRLEN + 72 <= bytes.len() {
                let len = u32::from_ne_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
                if len < NLMSG_HDRLEN || off + len > bytes.len() {
                    break;
                }
                let body = &bytes[off + NLMSG_HDRLEN..off + len];
                if msg_type(&bytes[off..]) == SOCK_DIAG_BY_FAMILY
                    && body.len() >= 72
                    && body[2] <= 4
                    && let Ok(Some(ours)) = parse_inet_diag_msg(body, off)
                {
                    let h = InetResponseHeader::parse(&body[..72]).expect("crate rejects what we accept");
                    same_fields(&h, &ours, "mutated");
                }
                off += (len + 3) & !3;
            }
        }
    }
}

/// Writes the fixtures again from the running kernel. Root only: it makes a
/// private network namespace so the ports, and so the bytes, are the same
/// every time (apart from cookies, inodes and timers).
#[test]
#[ignore = "rewrites tests/fixtures/diag; needs root"]
fn recapture() {
    std::thread::spawn(capture::run).join().unwrap();
}

mod capture {
    use std::io::Read;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::OwnedFd;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};
    use nix::sched::{CloneFlags, unshare};
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, setsockopt, socket,
        sockopt,
    };
    use tw_inspect::diag::{build_request, dump_family};
    use tw_inspect::filter::Query;
    use tw_inspect::socket::Family;
    use tw_inspect::state::{StateSet, TcpState};

    use super::fixture_dir;

    fn bound_connect(from: &str, to: &str) -> TcpStream {
        let from: SocketAddr = from.parse().unwrap();
        let to: SocketAddr = to.parse().unwrap();
        let fam = if from.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let fd: OwnedFd = socket(fam, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
        setsockopt(&fd, sockopt::ReuseAddr, &true).unwrap();
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrStorage::from(from),
        )
        .unwrap();
        connect(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrStorage::from(to),
        )
        .unwrap();
        TcpStream::from(fd)
    }

    fn dump(family: Family, states: &[TcpState]) -> (Vec<u8>, u64) {
        let q = Query {
            states: StateSet::from_states(states),
            ..Query::default()
        };
        let mut raw = Vec::new();
        let mut none = Vec::<tw_inspect::socket::SocketRecord>::new();
        let stats = dump_family(family, &q, &[], Some(&mut raw), &mut none).unwrap();
        (raw, stats.sockets)
    }

    fn write(name: &str, bytes: &[u8]) {
        let p = fixture_dir().join(name);
        std::fs::write(&p, bytes).unwrap();
        eprintln!("wrote {} ({} bytes)", p.display(), bytes.len());
    }

    pub fn run() {
        // Only this thread (and what it spawns) moves to the new namespace.
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): run as root");
        let st = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::create_dir_all(fixture_dir()).unwrap();

        // One TIME_WAIT: the client (port 40001) closes first.
        let l4 = TcpListener::bind("127.0.0.1:5000").unwrap();
        let c = bound_connect("127.0.0.1:40001", "127.0.0.1:5000");
        let (mut s, _) = l4.accept().unwrap();
        drop(c);
        assert_eq!(s.read(&mut [0u8; 1]).unwrap(), 0);
        drop(s);
        drop(l4);
        let deadline = Instant::now() + Duration::from_secs(10);
        let tw = loop {
            let (raw, n) = dump(Family::V4, &[TcpState::TimeWait]);
            let (_, any) = dump(
                Family::V4,
                &[TcpState::LastAck, TcpState::FinWait2, TcpState::CloseWait],
            );
            if n == 1 && any == 0 {
                break raw;
            }
            assert!(Instant::now() < deadline, "no TIME_WAIT");
            std::thread::sleep(Duration::from_millis(10));
        };
        write("time_wait_v4.bin", &tw);

        // IPv6: a dual-stack listener, an IPv6 client and an IPv4 client.
        let l6 = TcpListener::bind("[::]:5001").unwrap();
        let c6 = bound_connect("[::1]:40002", "[::1]:5001");
        let (s6, _) = l6.accept().unwrap();
        let c4 = bound_connect("127.0.0.1:40003", "127.0.0.1:5001");
        let (s4, _) = l6.accept().unwrap();
        let (v6, n) = dump(Family::V6, &TcpState::ALL);
        assert_eq!(n, 4, "listener, ::1 client and server, mapped server side");
        write("sockets_v6.bin", &v6);

        // NLMSG_ERROR: a family number past AF_MAX is refused with EINVAL.
        let mut req = build_request(Family::V4, &Query::default(), &[], 1);
        req[16] = 0xff;
        write("error_einval.bin", &exchange(&req, 64 * 1024));

        // A datagram cut by a receive buffer too small for it.
        let req = build_request(Family::V6, &Query::default(), &[], 1);
        write("truncated.bin", &exchange(&req, 60));
        drop((c6, s6, c4, s4, l6));
    }

    /// Sends one request and returns the first datagram, read into `cap` bytes.
    fn exchange(req: &[u8], cap: usize) -> Vec<u8> {
        let sock = Socket::new(NETLINK_SOCK_DIAG).unwrap();
        sock.send_to(req, &NlAddr::new(0, 0), 0).unwrap();
        let mut buf = vec![0u8; cap];
        let n = sock.recv(&mut &mut buf[..], 0).unwrap();
        buf.truncate(n.min(cap));
        buf
    }
}
