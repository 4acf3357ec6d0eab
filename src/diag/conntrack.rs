//! The conntrack collector: dumps this namespace's connection tracking table
//! over NETLINK_NETFILTER (ctnetlink) and hands each entry, parsed in place, to
//! a callback, with the sock_diag collector's discipline: one 32 KiB buffer
//! reused for every datagram, nothing allocated per entry, errors with their errno.
//!
//! ctnetlink answers only a caller with CAP_NET_ADMIN in the namespace's user
//! namespace (nfnetlink checks it for every message): the error for anyone
//! else is EPERM, which [`ConntrackError::needs_net_admin`] recognises.

use std::io;

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use super::conntrack_parse::{CT_GET, CtParseStats, parse_datagram};
use super::parse::{Flow, ParseError};
use super::request::message;
use super::{RECV_BUF, recv_datagram};
use crate::conntrack::CtEntry;

/// A failure to dump the conntrack table.
#[derive(Debug)]
pub enum ConntrackError {
    /// A system call failed; `what` says which.
    Io { what: &'static str, err: io::Error },
    /// The reply did not parse, or the kernel answered with an error.
    Reply(ParseError),
    /// A datagram was larger than our buffer.
    Truncated { len: usize },
}

impl ConntrackError {
    /// The errno behind the failure, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            ConntrackError::Io { err, .. } => err.raw_os_error(),
            ConntrackError::Reply(ParseError::Kernel(e)) => Some(*e),
            _ => None,
        }
    }

    /// True when the kernel refused the dump for want of CAP_NET_ADMIN.
    pub fn needs_net_admin(&self) -> bool {
        matches!(self.errno(), Some(libc::EPERM | libc::EACCES))
    }
}

impl std::fmt::Display for ConntrackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConntrackError::Io { what, err } => write!(f, "ctnetlink {what}: {err}"),
            ConntrackError::Reply(err) => write!(f, "ctnetlink dump: {err}"),
            ConntrackError::Truncated { len } => write!(
                f,
                "ctnetlink dump: datagram of {len} bytes exceeds the {RECV_BUF}-byte buffer"
            ),
        }
    }
}

impl std::error::Error for ConntrackError {}

/// The dump request: `IPCTNL_MSG_CT_GET` with `NLM_F_DUMP` and a `struct
/// nfgenmsg` of family AF_UNSPEC (IPv4 and IPv6 entries, every protocol).
pub fn build_request(seq: u32) -> Vec<u8> {
    // nfgen_family, version (NFNETLINK_V0), res_id (be16 0).
    let body = [libc::AF_UNSPEC as u8, 0, 0, 0];
    message(CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, &body)
}

/// Dumps the calling thread's namespace's table, calling `on_entry` for every
/// entry the kernel sends.
pub fn dump(mut on_entry: impl FnMut(&CtEntry)) -> Result<CtParseStats, ConntrackError> {
    let io_err = |what, err| ConntrackError::Io { what, err };
    let sock = Socket::new(NETLINK_NETFILTER).map_err(|e| io_err("socket", e))?;
    let seq = 1;
    sock.send_to(&build_request(seq), &SocketAddr::new(0, 0), 0)
        .map_err(|e| io_err("send", e))?;
    let mut buf = vec![0u8; RECV_BUF];
    let mut stats = CtParseStats::default();
    loop {
        let n = recv_datagram(&sock, &mut buf).map_err(|e| io_err("recv", e))?;
        if n > buf.len() {
            return Err(ConntrackError::Truncated { len: n });
        }
        match parse_datagram(&buf[..n], Some(seq), &mut stats, &mut on_entry) {
            Ok(Flow::More) => {}
            Ok(Flow::Done) => return Ok(stats),
            Err(err) => return Err(ConntrackError::Reply(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_ctnetlink_dump() {
        let r = build_request(1);
        assert_eq!(r.len(), 20);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 0x0101);
        assert_eq!(u16::from_ne_bytes([r[6], r[7]]), 0x0301);
        assert_eq!(&r[16..], &[0, 0, 0, 0]);
    }

    #[test]
    fn a_dump_ends_or_names_the_capability() {
        match dump(|_| {}) {
            Ok(_) => {}
            Err(e) => assert!(
                e.needs_net_admin() || e.errno() == Some(libc::EPROTONOSUPPORT),
                "{e}"
            ),
        }
    }
}
