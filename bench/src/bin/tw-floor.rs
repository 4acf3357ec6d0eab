//! The floor: the least work any sock_diag client can do. One dump request per
//! family, one after the other, every datagram read into one 32 KiB buffer, the
//! socket messages counted, nothing parsed beyond the netlink headers.
//!
//! Prints the count. A tool that reads the same sockets cannot beat this
//! sequentially; it can only beat it by overlapping the two dumps.

use std::io;
use std::process::ExitCode;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_DUMP: u16 = 0x300;

/// nlmsghdr (16 bytes) + inet_diag_req_v2 (56 bytes), every TCP state.
fn request(family: u8) -> [u8; 72] {
    let mut b = [0u8; 72];
    b[0..4].copy_from_slice(&72u32.to_ne_bytes());
    b[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // inet_diag_req_v2: family, protocol, ext, pad, states (u32), then a zeroed id.
    b[16] = family;
    b[17] = libc::IPPROTO_TCP as u8;
    b[20..24].copy_from_slice(&0xfffu32.to_ne_bytes());
    b
}

/// nlmsghdr + the old `inet_diag_req` (TCPDIAG_GETSOCK): the kernel answers
/// it with both families from one walk of its tables.
fn request_compat() -> [u8; 76] {
    let mut b = [0u8; 76];
    b[0..4].copy_from_slice(&76u32.to_ne_bytes());
    b[4..6].copy_from_slice(&18u16.to_ne_bytes());
    b[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b[8..12].copy_from_slice(&1u32.to_ne_bytes());
    b[16] = libc::AF_INET as u8;
    b[68..72].copy_from_slice(&0xfffu32.to_ne_bytes());
    b
}

fn dump(family: u8, buf: &mut [u8]) -> io::Result<u64> {
    let sock = Socket::new(NETLINK_SOCK_DIAG)?;
    if family == 0 {
        sock.send_to(&request_compat(), &SocketAddr::new(0, 0), 0)?;
    } else {
        sock.send_to(&request(family), &SocketAddr::new(0, 0), 0)?;
    }
    let mut count = 0u64;
    loop {
        let n = sock.recv(&mut &mut buf[..], libc::MSG_TRUNC)?;
        if n > buf.len() {
            return Err(io::Error::other("datagram larger than the buffer"));
        }
        let mut off = 0;
        while off + NLMSG_HDRLEN <= n {
            let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
            let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
            match ty {
                SOCK_DIAG_BY_FAMILY | 18 => count += 1,
                NLMSG_DONE => return Ok(count),
                NLMSG_ERROR => return Err(io::Error::other("kernel answered NLMSG_ERROR")),
                _ => {}
            }
            if len < NLMSG_HDRLEN {
                return Err(io::Error::other("bad netlink length"));
            }
            off += (len + 3) & !3;
        }
    }
}

fn main() -> ExitCode {
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0;
    let compat = std::env::args().nth(1).is_some_and(|a| a == "--compat");
    let families: &[u8] = if compat {
        &[0]
    } else {
        &[libc::AF_INET as u8, libc::AF_INET6 as u8]
    };
    for &family in families {
        match dump(family, &mut buf) {
            Ok(n) => total += n,
            Err(e) => {
                eprintln!("tw-floor: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{total}");
    ExitCode::SUCCESS
}
