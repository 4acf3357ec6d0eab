//! SOCK_DESTROY: asks the kernel to abort one socket, as `ss -K` does. It needs
//! CAP_NET_ADMIN in the socket's network namespace (a private namespace made by
//! an ordinary user qualifies). A TIME_WAIT minisocket is simply removed.

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};

use super::parse::NLMSG_HDRLEN;
use super::request::{INET_DIAG_REQ_LEN, message};
use crate::wire::{i32_ne, u16_ne, u32_ne};

/// `SOCK_DESTROY` in linux/sock_diag.h.
pub const SOCK_DESTROY: u16 = 21;

/// One IPv4 TCP socket, named as sock_diag names it: `local` is the socket's
/// own end. `cookie` must match too, so a reused tuple is never hit by mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub local: Ipv4Addr,
    pub local_port: u16,
    pub peer: Ipv4Addr,
    pub peer_port: u16,
    pub cookie: u64,
}

/// Builds the request: nlmsghdr + `inet_diag_req_v2` with an exact socket id.
pub fn build_request(t: &Target, seq: u32) -> Vec<u8> {
    // struct inet_diag_req_v2: family, protocol, ext, pad, states, then the
    // 48-byte inet_diag_sockid.
    let mut r = [0u8; INET_DIAG_REQ_LEN];
    r[0] = libc::AF_INET as u8;
    r[1] = libc::IPPROTO_TCP as u8;
    // r[2] extensions = 0, r[3] padding
    r[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    // inet_diag_sockid: ports and addresses in network order.
    r[8..10].copy_from_slice(&t.local_port.to_be_bytes());
    r[10..12].copy_from_slice(&t.peer_port.to_be_bytes());
    r[12..16].copy_from_slice(&t.local.octets());
    r[28..32].copy_from_slice(&t.peer.octets());
    // r[44..48] interface 0 = any
    r[48..52].copy_from_slice(&(t.cookie as u32).to_ne_bytes());
    r[52..56].copy_from_slice(&((t.cookie >> 32) as u32).to_ne_bytes());
    message(SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, seq, &r)
}

/// Destroys the socket. EPERM/EACCES come back as such so callers can skip;
/// ENOENT means the socket was already gone.
pub fn destroy(t: &Target) -> io::Result<()> {
    let sock = Socket::new(NETLINK_SOCK_DIAG)?;
    let seq = 7;
    sock.send_to(&build_request(t, seq), &SocketAddr::new(0, 0), 0)?;
    read_ack(&sock, seq)
}

/// Reads the kernel's acknowledgement of a request sent with NLM_F_ACK and turns a
/// non-zero error into an `io::Error`.
pub fn read_ack(sock: &Socket, seq: u32) -> io::Result<()> {
    let mut buf = vec![0u8; 8192];
    loop {
        let n = {
            let mut slice = &mut buf[..];
            match sock.recv(&mut slice, 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if let Some(errno) = parse_ack(&buf[..n], seq)? {
            return if errno == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(errno))
            };
        }
    }
}

/// Finds the NLMSG_ERROR for `seq` in a datagram: `Some(errno)` (0 = success),
/// `None` when this datagram does not hold it.
pub fn parse_ack(data: &[u8], seq: u32) -> io::Result<Option<i32>> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed netlink acknowledgement",
        )
    };
    let mut at = 0;
    while at + NLMSG_HDRLEN <= data.len() {
        let len = u32_ne(data, at) as usize;
        if len < NLMSG_HDRLEN || at + len > data.len() {
            return Err(bad());
        }
        let ty = u16_ne(data, at + 4);
        let s = u32_ne(data, at + 8);
        if ty == NLMSG_ERROR && s == seq {
            if len < NLMSG_HDRLEN + 4 {
                return Err(bad());
            }
            let e = i32_ne(data, at + NLMSG_HDRLEN);
            return Ok(Some(-e));
        }
        at += (len + 3) & !3;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_matches_inet_diag_req_v2() {
        let t = Target {
            local: Ipv4Addr::new(127, 0, 0, 1),
            local_port: 0x1234,
            peer: Ipv4Addr::new(127, 0, 0, 2),
            peer_port: 80,
            cookie: 0x1122_3344_5566_7788,
        };
        let b = build_request(&t, 9);
        assert_eq!(b.len(), 72);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 72);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 21);
        assert_eq!(u16::from_ne_bytes([b[6], b[7]]), 0x05, "REQUEST | ACK");
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 9);
        assert_eq!(&b[24..26], &[0x12, 0x34]);
        assert_eq!(&b[26..28], &[0, 80]);
        assert_eq!(&b[28..32], &[127, 0, 0, 1]);
        assert_eq!(&b[44..48], &[127, 0, 0, 2]);
        assert_eq!(
            u32::from_ne_bytes(b[64..68].try_into().unwrap()),
            0x5566_7788
        );
        assert_eq!(
            u32::from_ne_bytes(b[68..72].try_into().unwrap()),
            0x1122_3344
        );
    }

    #[test]
    fn ack_parsing() {
        let mut d = vec![0u8; 36];
        d[0..4].copy_from_slice(&36u32.to_ne_bytes());
        d[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        d[8..12].copy_from_slice(&5u32.to_ne_bytes());
        d[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(parse_ack(&d, 5).unwrap(), Some(libc::EPERM));
        assert_eq!(parse_ack(&d, 6).unwrap(), None);
        assert!(parse_ack(&d[..20], 5).is_err());
    }
}
