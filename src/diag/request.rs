//! Every netlink request is built here, through one `nlmsghdr` builder.
//!
//! The builder writes netlink-packet-core's [`NetlinkHeader`]; on top of it sit
//! the sock_diag dump requests (`inet_diag_req_v2` per family, the original
//! `inet_diag_req` for both, each with an optional filter program).

use netlink_packet_core::{Emitable, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader};
use netlink_packet_sock_diag::constants::IPPROTO_TCP;
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};

use std::net::IpAddr;

use super::parse::{NLMSG_HDRLEN, SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK};
use crate::filter::Query;
use crate::socket::{Family, SocketRecord};

/// `INET_DIAG_REQ_BYTECODE`: the attribute carrying the filter program.
const INET_DIAG_REQ_BYTECODE: u16 = 1;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, u32 states, then the
/// 48-byte `inet_diag_sockid`.
pub const INET_DIAG_REQ_LEN: usize = 56;
/// `struct inet_diag_req`: family, src_len, dst_len, ext, the 48-byte
/// `inet_diag_sockid`, then u32 states and u32 dbs.
const INET_DIAG_REQ_V1_LEN: usize = 60;

/// One netlink message to the kernel (port 0): the header, then `body` as is.
/// `nlmsg_len` covers both; nothing is padded after the body.
pub fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let total = NLMSG_HDRLEN + body.len();
    let mut header = NetlinkHeader::default();
    header.length = u32::try_from(total).expect("a request fits a netlink message");
    header.message_type = kind;
    header.flags = flags;
    header.sequence_number = seq;
    let mut buf = vec![0u8; total];
    header.emit(&mut buf[..NLMSG_HDRLEN]);
    buf[NLMSG_HDRLEN..].copy_from_slice(body);
    buf
}

/// Appends the filter program as an `INET_DIAG_REQ_BYTECODE` attribute (none
/// when the program is empty).
fn push_bytecode(body: &mut Vec<u8>, bytecode: &[u8]) {
    if bytecode.is_empty() {
        return;
    }
    let attr_len = 4 + bytecode.len();
    body.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    body.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    body.extend_from_slice(bytecode);
}

/// `idiag_ext` bit asking for `INET_DIAG_INFO` (`1 << (INET_DIAG_INFO - 1)`).
pub const EXT_INFO: u8 = 1 << 1;

/// Builds the dump request: nlmsghdr + `inet_diag_req_v2` (+ bytecode attribute).
pub fn build_request(family: Family, query: &Query, bytecode: &[u8], seq: u32) -> Vec<u8> {
    build_request_ext(family, query, bytecode, seq, 0)
}

/// [`build_request`] asking for the attributes in `ext` (`idiag_ext` bits, e.g. [`EXT_INFO`]).
pub fn build_request_ext(
    family: Family,
    query: &Query,
    bytecode: &[u8],
    seq: u32,
    ext: u8,
) -> Vec<u8> {
    let fam = match family {
        Family::V4 => libc::AF_INET as u8,
        Family::V6 => libc::AF_INET6 as u8,
    };
    let req = InetRequest {
        family: fam,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::from_bits_retain(ext),
        states: StateFlags::from_bits_retain(query.states.0),
        socket_id: match family {
            Family::V4 => SocketId::new_v4(),
            Family::V6 => SocketId::new_v6(),
        },
    };
    debug_assert_eq!(req.buffer_len(), INET_DIAG_REQ_LEN);
    let mut body = vec![0u8; INET_DIAG_REQ_LEN];
    req.emit(&mut body);
    push_bytecode(&mut body, bytecode);
    message(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, &body)
}

/// The 16 address bytes of `inet_diag_sockid` for `addr` in a dump of
/// `family`: IPv4 in the first 4; an IPv4 address of an IPv6 socket (shown
/// canonical, it was IPv4-mapped) mapped back to `::ffff:a.b.c.d`.
fn sockid_addr(family: Family, addr: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match (family, addr) {
        (Family::V4, IpAddr::V4(a)) => b[..4].copy_from_slice(&a.octets()),
        (Family::V6, IpAddr::V4(a)) => b = a.to_ipv6_mapped().octets(),
        (_, IpAddr::V6(a)) => b = a.octets(),
    }
    b
}

/// Asks for one socket by its exact id (addresses, ports, interface and
/// cookie, as a dump reported it): nlmsghdr + `inet_diag_req_v2`, no
/// `NLM_F_DUMP`. The kernel finds it by hash lookup, without walking its
/// table, and answers with that one socket (and the attributes in `ext`), or
/// `ENOENT` when it is gone or its cookie no longer matches.
pub fn build_exact(r: &SocketRecord, seq: u32, ext: u8) -> Vec<u8> {
    let mut b = [0u8; INET_DIAG_REQ_LEN];
    b[0] = match r.family {
        Family::V4 => libc::AF_INET as u8,
        Family::V6 => libc::AF_INET6 as u8,
    };
    b[1] = libc::IPPROTO_TCP as u8;
    b[2] = ext;
    b[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    // inet_diag_sockid: ports in network order, then src, dst, if, cookie.
    b[8..10].copy_from_slice(&r.local_port.to_be_bytes());
    b[10..12].copy_from_slice(&r.peer_port.to_be_bytes());
    b[12..28].copy_from_slice(&sockid_addr(r.family, r.local));
    b[28..44].copy_from_slice(&sockid_addr(r.family, r.peer));
    b[44..48].copy_from_slice(&r.ifindex.to_ne_bytes());
    b[48..52].copy_from_slice(&(r.cookie as u32).to_ne_bytes());
    b[52..56].copy_from_slice(&((r.cookie >> 32) as u32).to_ne_bytes());
    message(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, seq, &b)
}

/// Builds the both-families request: nlmsghdr + `inet_diag_req` (+ bytecode).
pub fn build_request_both(query: &Query, bytecode: &[u8], seq: u32) -> Vec<u8> {
    build_request_both_ext(query, bytecode, seq, 0)
}

/// [`build_request_both`] asking for the attributes in `ext` (`idiag_ext`, byte 3).
pub fn build_request_both_ext(query: &Query, bytecode: &[u8], seq: u32, ext: u8) -> Vec<u8> {
    let mut body = vec![0u8; INET_DIAG_REQ_V1_LEN];
    // The kernel ignores the family of this request type (it dumps AF_UNSPEC).
    body[0] = libc::AF_INET as u8;
    body[3] = ext;
    let states = 4 + 48;
    body[states..states + 4].copy_from_slice(&query.states.0.to_ne_bytes());
    push_bytecode(&mut body, bytecode);
    message(TCPDIAG_GETSOCK, NLM_F_REQUEST | NLM_F_DUMP, seq, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{StateSet, TcpState};

    /// The header as it was written by hand before the builder: u32 length,
    /// u16 type, u16 flags, u32 sequence, u32 port, all in host order.
    fn hand_built_header(total: usize, kind: u16, flags: u16, seq: u32) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&(total as u32).to_ne_bytes());
        b[4..6].copy_from_slice(&kind.to_ne_bytes());
        b[6..8].copy_from_slice(&flags.to_ne_bytes());
        b[8..12].copy_from_slice(&seq.to_ne_bytes());
        b
    }

    #[test]
    fn header_length_is_the_kernels() {
        assert_eq!(NetlinkHeader::default().buffer_len(), NLMSG_HDRLEN);
    }

    #[test]
    fn builder_writes_the_hand_built_header() {
        // 0x01 | 0x300, 0x01 | 0x04: the flag values the requests used.
        assert_eq!(NLM_F_REQUEST | NLM_F_DUMP, 0x301);
        assert_eq!(NLM_F_REQUEST | netlink_packet_core::NLM_F_ACK, 0x05);
        for (kind, flags, seq, body_len) in [
            (SOCK_DIAG_BY_FAMILY, 0x301, 1, 56),
            (TCPDIAG_GETSOCK, 0x301, 1, 60 + 4 + 8),
            (21, 0x05, 7, 56),
            (16, 0x05, 1, 16),
            (0xabcd, 0xffff, u32::MAX, 0),
        ] {
            let body: Vec<u8> = (0..body_len).map(|i| i as u8 ^ 0x5a).collect();
            let m = message(kind, flags, seq, &body);
            assert_eq!(
                m[..16],
                hand_built_header(16 + body_len, kind, flags, seq),
                "type {kind}"
            );
            assert_eq!(m[16..], body[..]);
        }
    }

    /// The dump requests as they were built before, byte by byte.
    fn hand_built_v2(family: Family, states: u32, bytecode: &[u8], seq: u32) -> Vec<u8> {
        let attr_len = if bytecode.is_empty() {
            0
        } else {
            4 + bytecode.len()
        };
        let total = 16 + 56 + attr_len;
        let mut b = vec![0u8; total];
        b[..16].copy_from_slice(&hand_built_header(total, 20, 0x301, seq));
        b[16] = match family {
            Family::V4 => libc::AF_INET as u8,
            Family::V6 => libc::AF_INET6 as u8,
        };
        b[17] = libc::IPPROTO_TCP as u8;
        b[20..24].copy_from_slice(&states.to_ne_bytes());
        // b[24..72]: inet_diag_sockid, all zero (any socket).
        if !bytecode.is_empty() {
            b[72..74].copy_from_slice(&(attr_len as u16).to_ne_bytes());
            b[74..76].copy_from_slice(&1u16.to_ne_bytes());
            b[76..].copy_from_slice(bytecode);
        }
        b
    }

    fn hand_built_v1(states: u32, bytecode: &[u8], seq: u32) -> Vec<u8> {
        let attr_len = if bytecode.is_empty() {
            0
        } else {
            4 + bytecode.len()
        };
        let total = 16 + 60 + attr_len;
        let mut b = vec![0u8; total];
        b[..16].copy_from_slice(&hand_built_header(total, 18, 0x301, seq));
        b[16] = libc::AF_INET as u8;
        b[68..72].copy_from_slice(&states.to_ne_bytes());
        if !bytecode.is_empty() {
            b[76..78].copy_from_slice(&(attr_len as u16).to_ne_bytes());
            b[78..80].copy_from_slice(&1u16.to_ne_bytes());
            b[80..].copy_from_slice(bytecode);
        }
        b
    }

    #[test]
    fn dump_requests_are_unchanged() {
        let q = Query {
            states: StateSet::from_states(&[TcpState::TimeWait, TcpState::Listen]),
            ..Query::default()
        };
        let bc: Vec<u8> = (1..=12).collect();
        for bytecode in [&[][..], &bc] {
            for family in [Family::V4, Family::V6] {
                assert_eq!(
                    build_request(family, &q, bytecode, 3),
                    hand_built_v2(family, q.states.0, bytecode, 3),
                    "{family:?}, {} bytes of bytecode",
                    bytecode.len()
                );
            }
            assert_eq!(
                build_request_both(&q, bytecode, 1),
                hand_built_v1(q.states.0, bytecode, 1)
            );
        }
    }

    #[test]
    fn an_exact_request_names_one_socket() {
        use crate::state::TcpState;
        let mut r = SocketRecord::blank(Family::V6, TcpState::CloseWait);
        r.local = "127.0.0.1".parse().unwrap(); // IPv4-mapped in an IPv6 dump
        r.local_port = 8080;
        r.peer = "::1".parse().unwrap();
        r.peer_port = 40000;
        r.ifindex = 1;
        r.cookie = 0x1122_3344_5566_7788;
        let m = build_exact(&r, 9, EXT_INFO);
        assert_eq!(m.len(), 16 + INET_DIAG_REQ_LEN);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), NLM_F_REQUEST, "no dump");
        let b = &m[16..];
        assert_eq!((b[0], b[1], b[2]), (libc::AF_INET6 as u8, 6, EXT_INFO));
        assert_eq!(&b[8..12], &[0x1f, 0x90, 0x9c, 0x40]);
        assert_eq!(
            &b[12..28],
            &"::ffff:127.0.0.1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
        assert_eq!(b[43], 1, "::1");
        assert_eq!(u32::from_ne_bytes(b[44..48].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_ne_bytes(b[48..52].try_into().unwrap()),
            0x5566_7788
        );
        assert_eq!(
            u32::from_ne_bytes(b[52..56].try_into().unwrap()),
            0x1122_3344
        );
    }

    #[test]
    fn info_is_asked_in_idiag_ext() {
        let q = Query::default();
        let mut v2 = build_request(Family::V4, &q, &[], 1);
        v2[18] = EXT_INFO; // inet_diag_req_v2.idiag_ext
        assert_eq!(build_request_ext(Family::V4, &q, &[], 1, EXT_INFO), v2);
        let mut v1 = build_request_both(&q, &[], 1);
        v1[19] = EXT_INFO; // inet_diag_req.idiag_ext
        assert_eq!(build_request_both_ext(&q, &[], 1, EXT_INFO), v1);
    }
}
