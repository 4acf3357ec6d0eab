//! Pure parsing of sock_diag replies: bytes in, socket records out.
//!
//! Nothing here allocates per socket and nothing panics on hostile input: every
//! length is checked against the bytes actually present.
//!
//! Layouts (include/uapi/linux/netlink.h, include/uapi/linux/inet_diag.h):
//!
//! ```text
//! struct nlmsghdr      (16 bytes) u32 len, u16 type, u16 flags, u32 seq, u32 pid
//! struct inet_diag_msg (72 bytes)
//!    0 u8  family        1 u8 state      2 u8 timer      3 u8 retrans
//!    4 be16 sport        6 be16 dport
//!    8 be32 src[4]      24 be32 dst[4]   (IPv4 uses the first 4 bytes)
//!   40 u32 if           44 u32 cookie[2] (cookie[0] is the low half)
//!   52 u32 expires (ms) 56 u32 rqueue    60 u32 wqueue
//!   64 u32 uid          68 u32 inode
//! then attributes (`struct nlattr`: u16 len, u16 type, payload padded to 4).
//! Only `INET_DIAG_INFO` (type 2, `struct tcp_info`) is read, and only its
//! receive times; a dump carries it only when asked (`idiag_ext`).
//!
//! struct tcp_info (include/uapi/linux/tcp.h), the fields read:
//!   52 u32 tcpi_last_data_recv   56 u32 tcpi_last_ack_recv   (ms)
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// NLM_F_DUMP_INTR: the kernel sets it on messages of a dump that raced with
// a table change.
pub use netlink_packet_core::{
    NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN,
};

use crate::socket::{Family, SocketRecord, TcpTimes, Timer, canonical};
use crate::state::TcpState;
use crate::wire::{u16_be, u16_ne, u32_ne};

/// `struct nlmsghdr` (netlink-packet-core keeps its own length private).
pub const NLMSG_HDRLEN: usize = 16;
pub const INET_DIAG_MSG_LEN: usize = 72;
/// `INET_DIAG_INFO`: the attribute holding `struct tcp_info`.
pub const INET_DIAG_INFO: u16 = 2;
/// `struct tcp_info` up to and including `tcpi_last_ack_recv`.
const TCP_INFO_TIMES_END: usize = 60;
pub const SOCK_DIAG_BY_FAMILY: u16 = netlink_packet_sock_diag::constants::SOCK_DIAG_BY_FAMILY;
/// The original inet_diag request type; its dump covers both families and
/// its replies carry the same type.
pub const TCPDIAG_GETSOCK: u16 = 18;

/// What went wrong in a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A message header or body runs past the end of the datagram.
    Truncated {
        offset: usize,
        need: usize,
        have: usize,
    },
    /// `nlmsg_len` is smaller than a header.
    BadLength { offset: usize, len: u32 },
    /// A socket message too short to hold `struct inet_diag_msg`.
    ShortSocket { offset: usize, len: usize },
    /// A socket message of a family this tool does not ask for.
    BadFamily { offset: usize, family: u8 },
    /// A netlink attribute (ctnetlink) that does not fit or lacks what it must hold.
    BadAttribute { offset: usize, what: &'static str },
    /// The kernel answered with an error (positive errno).
    Kernel(i32),
    /// The kernel dropped messages because our buffer overran.
    Overrun,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated { offset, need, have } => write!(
                f,
                "truncated netlink message at byte {offset}: needs {need} bytes, {have} present"
            ),
            ParseError::BadLength { offset, len } => {
                write!(f, "invalid netlink message length {len} at byte {offset}")
            }
            ParseError::ShortSocket { offset, len } => write!(
                f,
                "sock_diag message at byte {offset} has {len} bytes, fewer than the {INET_DIAG_MSG_LEN} of inet_diag_msg"
            ),
            ParseError::BadFamily { offset, family } => {
                write!(
                    f,
                    "sock_diag message at byte {offset} has unexpected family {family}"
                )
            }
            ParseError::BadAttribute { offset, what } => {
                write!(f, "bad netlink attribute at byte {offset}: {what}")
            }
            ParseError::Kernel(errno) => write!(
                f,
                "kernel answered with error: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            ParseError::Overrun => f.write_str("netlink overrun: the kernel dropped messages"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Counts from one datagram or a whole dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseStats {
    pub sockets: u64,
    /// Messages whose state number this build does not know (a newer kernel).
    pub unknown_state: u64,
    /// The kernel flagged the dump as interrupted by concurrent changes.
    pub interrupted: bool,
}

impl ParseStats {
    /// Adds another dump's counts (the other family's).
    pub fn add(&mut self, o: &ParseStats) {
        self.sockets += o.sockets;
        self.unknown_state += o.unknown_state;
        self.interrupted |= o.interrupted;
    }
}

/// Whether the dump goes on after this datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    More,
    Done,
}

/// Walks every netlink message in `buf`, calling `on_socket` for each socket.
/// Messages whose sequence number differs from `seq` (when given) are skipped.
pub fn parse_datagram(
    buf: &[u8],
    seq: Option<u32>,
    stats: &mut ParseStats,
    mut on_socket: impl FnMut(&SocketRecord),
) -> Result<Flow, ParseError> {
    let mut sockets = 0u64;
    let mut unknown = 0u64;
    let flow = walk(buf, seq, &mut stats.interrupted, |ty, this, body| {
        // The both-families request is answered with its own type.
        if ty == SOCK_DIAG_BY_FAMILY || ty == TCPDIAG_GETSOCK {
            match parse_inet_diag_msg(body, this)? {
                Some(rec) => {
                    sockets += 1;
                    on_socket(&rec);
                }
                None => unknown += 1,
            }
        }
        Ok(())
    });
    stats.sockets += sockets;
    stats.unknown_state += unknown;
    flow
}

/// Walks the netlink messages of one datagram: checks every length, ends the
/// dump at `NLMSG_DONE` (or with the error a `NLMSG_DONE` or `NLMSG_ERROR`
/// carries), and hands every other message (type, offset, body) to `on_msg`.
/// Messages whose sequence number differs from `seq` (when given) are
/// skipped; `interrupted` is set when the kernel flags a dump as raced
/// (`NLM_F_DUMP_INTR`). sock_diag and ctnetlink replies both go through it.
pub fn walk(
    buf: &[u8],
    seq: Option<u32>,
    interrupted: &mut bool,
    mut on_msg: impl FnMut(u16, usize, &[u8]) -> Result<(), ParseError>,
) -> Result<Flow, ParseError> {
    let mut off = 0usize;
    while off < buf.len() {
        let have = buf.len() - off;
        if have < NLMSG_HDRLEN {
            return Err(ParseError::Truncated {
                offset: off,
                need: NLMSG_HDRLEN,
                have,
            });
        }
        let len = u32_ne(buf, off);
        if (len as usize) < NLMSG_HDRLEN {
            return Err(ParseError::BadLength { offset: off, len });
        }
        if len as usize > have {
            return Err(ParseError::Truncated {
                offset: off,
                need: len as usize,
                have,
            });
        }
        let ty = u16_ne(buf, off + 4);
        let flags = u16_ne(buf, off + 6);
        let msg_seq = u32_ne(buf, off + 8);
        let body = &buf[off + NLMSG_HDRLEN..off + len as usize];
        let this = off;
        // The kernel pads every message to 4 bytes, the last one included; a
        // datagram that ends inside the padding was cut short.
        let padded = (len as usize + 3) & !3;
        if padded > have {
            return Err(ParseError::Truncated {
                offset: off,
                need: padded,
                have,
            });
        }
        off += padded;
        if seq.is_some_and(|s| s != msg_seq) {
            continue;
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            *interrupted = true;
        }
        match ty {
            NLMSG_DONE => {
                // A dump that failed midway reports the error in DONE's payload.
                if body.len() >= 4 {
                    let err = u32_ne(body, 0) as i32;
                    if err < 0 {
                        // saturating: a hostile i32::MIN must not overflow.
                        return Err(ParseError::Kernel(err.saturating_neg()));
                    }
                }
                return Ok(Flow::Done);
            }
            NLMSG_ERROR => {
                if body.len() < 4 {
                    return Err(ParseError::Truncated {
                        offset: this,
                        need: NLMSG_HDRLEN + 4,
                        have: len as usize,
                    });
                }
                let err = u32_ne(body, 0) as i32;
                if err != 0 {
                    return Err(ParseError::Kernel(err.saturating_neg()));
                }
            }
            NLMSG_OVERRUN => return Err(ParseError::Overrun),
            NLMSG_NOOP => {}
            _ => on_msg(ty, this, body)?,
        }
    }
    Ok(Flow::More)
}

/// True when [`parse_datagram`] would stop at `buf`: it holds the end of the
/// dump (`NLMSG_DONE`), a kernel error or overrun, or bytes it rejects. The
/// receiving thread of a dump asks this of every datagram without decoding
/// the sockets, so that it reads no further than the parser will go.
pub fn ends_dump(buf: &[u8], seq: Option<u32>) -> bool {
    let mut off = 0usize;
    while off < buf.len() {
        let have = buf.len() - off;
        if have < NLMSG_HDRLEN {
            return true;
        }
        let len = u32_ne(buf, off) as usize;
        let padded = (len + 3) & !3;
        if len < NLMSG_HDRLEN || padded > have {
            return true;
        }
        let body = &buf[off + NLMSG_HDRLEN..off + len];
        let ty = u16_ne(buf, off + 4);
        let ours = seq.is_none_or(|s| s == u32_ne(buf, off + 8));
        off += padded;
        if !ours {
            continue;
        }
        let ends = match ty {
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                body.len() < INET_DIAG_MSG_LEN
                    || !matches!(body[0] as i32, libc::AF_INET | libc::AF_INET6)
            }
            NLMSG_DONE | NLMSG_OVERRUN => true,
            NLMSG_ERROR => body.len() < 4 || u32_ne(body, 0) != 0,
            _ => false,
        };
        if ends {
            return true;
        }
    }
    false
}

/// Decodes the fixed `inet_diag_msg` header at the start of `body`.
/// Returns `Ok(None)` for a state number this build does not know.
pub fn parse_inet_diag_msg(body: &[u8], offset: usize) -> Result<Option<SocketRecord>, ParseError> {
    if body.len() < INET_DIAG_MSG_LEN {
        return Err(ParseError::ShortSocket {
            offset,
            len: body.len(),
        });
    }
    let family = match body[0] as i32 {
        libc::AF_INET => Family::V4,
        libc::AF_INET6 => Family::V6,
        _ => {
            return Err(ParseError::BadFamily {
                offset,
                family: body[0],
            });
        }
    };
    let Some(state) = TcpState::from_kernel(body[1]) else {
        return Ok(None);
    };
    let addr = |at: usize| -> IpAddr {
        match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(
                body[at],
                body[at + 1],
                body[at + 2],
                body[at + 3],
            )),
            Family::V6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(&body[at..at + 16]);
                canonical(IpAddr::V6(Ipv6Addr::from(o)))
            }
        }
    };
    let inode = u32_ne(body, 68);
    let orphaned = crate::socket::is_orphaned(state, inode);
    Ok(Some(SocketRecord {
        family,
        state,
        orphaned,
        local: addr(8),
        local_port: u16_be(body, 4),
        peer: addr(24),
        peer_port: u16_be(body, 6),
        timer: Timer::from_kernel(body[2]),
        expires_ms: u32_ne(body, 52),
        retransmits: body[3],
        uid: u32_ne(body, 64),
        inode,
        cookie: (u32_ne(body, 48) as u64) << 32 | u32_ne(body, 44) as u64,
        recv_q: u32_ne(body, 56),
        send_q: u32_ne(body, 60),
        ifindex: u32_ne(body, 40),
        tcp_times: tcp_times(&body[INET_DIAG_MSG_LEN..]),
    }))
}

/// The receive times from an `INET_DIAG_INFO` attribute among `attrs`, if
/// there is one long enough. Malformed attributes end the walk quietly: they
/// carry nothing the record needs. TIME_WAIT messages have no attributes, so
/// on the summary's hot path this is one length check.
fn tcp_times(mut attrs: &[u8]) -> Option<TcpTimes> {
    while attrs.len() >= 4 {
        let len = u16_ne(attrs, 0) as usize;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if u16_ne(attrs, 2) == INET_DIAG_INFO {
            let info = &attrs[4..len];
            return (info.len() >= TCP_INFO_TIMES_END).then(|| TcpTimes {
                last_data_recv_ms: u32_ne(info, 52),
                last_ack_recv_ms: u32_ne(info, 56),
            });
        }
        attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `inet_diag_msg` of a CLOSE_WAIT socket, then the attributes the
    /// kernel puts first (INET_DIAG_SHUTDOWN, u8, padded), then INET_DIAG_INFO.
    fn msg_with_info(info_len: usize) -> Vec<u8> {
        let mut b = vec![0u8; INET_DIAG_MSG_LEN];
        b[0] = libc::AF_INET as u8;
        b[1] = 8; // TCP_CLOSE_WAIT
        // nlattr: len 5, type 8 (INET_DIAG_SHUTDOWN), one byte, 3 of padding.
        b.extend_from_slice(&5u16.to_ne_bytes());
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&((4 + info_len) as u16).to_ne_bytes());
        b.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        let mut info = vec![0u8; info_len];
        if info_len >= TCP_INFO_TIMES_END {
            info[52..56].copy_from_slice(&5028u32.to_ne_bytes()); // tcpi_last_data_recv
            info[56..60].copy_from_slice(&3016u32.to_ne_bytes()); // tcpi_last_ack_recv
        }
        b.extend_from_slice(&info);
        b
    }

    #[test]
    fn reads_the_receive_times_of_tcp_info() {
        let r = parse_inet_diag_msg(&msg_with_info(232), 0)
            .unwrap()
            .unwrap();
        assert_eq!(r.state, TcpState::CloseWait);
        assert_eq!(
            r.tcp_times,
            Some(TcpTimes {
                last_data_recv_ms: 5028,
                last_ack_recv_ms: 3016
            })
        );
        // Too short to hold the times, or no attributes at all: none.
        let short = parse_inet_diag_msg(&msg_with_info(40), 0).unwrap().unwrap();
        assert_eq!(short.tcp_times, None);
        let bare = parse_inet_diag_msg(&msg_with_info(232)[..INET_DIAG_MSG_LEN], 0)
            .unwrap()
            .unwrap();
        assert_eq!(bare.tcp_times, None);
        // A length running past the end stops the walk, never panics.
        let mut bad = msg_with_info(232);
        bad[INET_DIAG_MSG_LEN..INET_DIAG_MSG_LEN + 2].copy_from_slice(&999u16.to_ne_bytes());
        assert_eq!(
            parse_inet_diag_msg(&bad, 0).unwrap().unwrap().tcp_times,
            None
        );
    }

    /// One netlink message: header, then `body`, padded to 4 bytes.
    fn msg(ty: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + body.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        m.resize((len + 3) & !3, 0);
        m
    }

    fn socket(family: u8) -> Vec<u8> {
        let mut b = vec![0u8; INET_DIAG_MSG_LEN];
        b[0] = family;
        b[1] = 6; // TIME_WAIT
        msg(TCPDIAG_GETSOCK, 1, &b)
    }

    fn stops(buf: &[u8], seq: Option<u32>) -> bool {
        let mut stats = ParseStats::default();
        !matches!(parse_datagram(buf, seq, &mut stats, |_| {}), Ok(Flow::More))
    }

    #[test]
    fn the_end_of_a_dump_is_seen_without_parsing() {
        let mut d = socket(libc::AF_INET as u8);
        d.extend(socket(libc::AF_INET6 as u8));
        assert!(!ends_dump(&d, Some(1)));
        d.extend(msg(NLMSG_DONE, 1, &0i32.to_ne_bytes()));
        assert!(ends_dump(&d, Some(1)));
        // Another request's DONE does not end ours.
        let other = msg(NLMSG_DONE, 7, &0i32.to_ne_bytes());
        assert!(!ends_dump(&other, Some(1)));
        assert!(ends_dump(&other, None));
        // An error ends it; an acknowledgement (error 0) does not.
        assert!(ends_dump(
            &msg(NLMSG_ERROR, 1, &(-1i32).to_ne_bytes()),
            Some(1)
        ));
        assert!(!ends_dump(
            &msg(NLMSG_ERROR, 1, &0i32.to_ne_bytes()),
            Some(1)
        ));
        assert!(ends_dump(&socket(99), Some(1)));
        assert!(ends_dump(&d[..d.len() - 3], Some(1)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The receiving thread stops exactly where the parser stops.
        #[test]
        fn ends_where_the_parser_stops(
            parts in proptest::collection::vec(0u8..8, 0..6),
            cut in 0usize..64,
            noise in proptest::collection::vec(any::<u8>(), 0..40),
            seq in proptest::option::of(0u32..3),
        ) {
            let mut buf = Vec::new();
            for p in parts {
                buf.extend(match p {
                    0 => socket(libc::AF_INET as u8),
                    1 => socket(libc::AF_INET6 as u8),
                    2 => socket(0),
                    3 => msg(NLMSG_DONE, 1, &0i32.to_ne_bytes()),
                    4 => msg(NLMSG_ERROR, 1, &(-13i32).to_ne_bytes()),
                    5 => msg(NLMSG_ERROR, 1, &0i32.to_ne_bytes()),
                    6 => msg(NLMSG_NOOP, 2, &[]),
                    _ => msg(SOCK_DIAG_BY_FAMILY, 1, &[2u8; 10]),
                });
            }
            buf.truncate(buf.len().saturating_sub(cut % 5));
            prop_assert_eq!(ends_dump(&buf, seq), stops(&buf, seq));
            buf.extend(noise);
            prop_assert_eq!(ends_dump(&buf, seq), stops(&buf, seq));
        }
    }
}
