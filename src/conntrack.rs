//! The owned conntrack entry record and the TCP conntrack states, with their
//! own names (`TIME_WAIT`, `FIN_WAIT`, ...) and the socket states each matches.
//!
//! A conntrack entry is netfilter's record of one connection as packets pass
//! (include/uapi/linux/netfilter/nf_conntrack_tcp.h numbers its TCP states).
//! It is `Copy`: the parser builds one per entry without allocating.

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::socket::Family;
use crate::state::TcpState;

/// `IPPROTO_TCP` and `IPPROTO_UDP`, as conntrack tuples carry them.
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// `enum tcp_conntrack`: the states netfilter tracks a TCP connection through,
/// in kernel order. They are not the socket states: conntrack sees both
/// directions of a connection at once, so one entry stands for both ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CtState {
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    /// A SYN seen in the reply direction after one in the original (simultaneous open).
    SynSent2,
}

/// Number of TCP conntrack states.
pub const CT_STATES: usize = 10;

impl CtState {
    /// Every state in kernel order.
    pub const ALL: [CtState; CT_STATES] = [
        CtState::None,
        CtState::SynSent,
        CtState::SynRecv,
        CtState::Established,
        CtState::FinWait,
        CtState::CloseWait,
        CtState::LastAck,
        CtState::TimeWait,
        CtState::Close,
        CtState::SynSent2,
    ];

    /// From `CTA_PROTOINFO_TCP_STATE`; `None` for a number this build does not know.
    pub fn from_kernel(n: u8) -> Option<CtState> {
        CtState::ALL.get(n as usize).copied()
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The kernel's own name, as `conntrack -L` prints it.
    pub fn name(self) -> &'static str {
        match self {
            CtState::None => "NONE",
            CtState::SynSent => "SYN_SENT",
            CtState::SynRecv => "SYN_RECV",
            CtState::Established => "ESTABLISHED",
            CtState::FinWait => "FIN_WAIT",
            CtState::CloseWait => "CLOSE_WAIT",
            CtState::LastAck => "LAST_ACK",
            CtState::TimeWait => "TIME_WAIT",
            CtState::Close => "CLOSE",
            CtState::SynSent2 => "SYN_SENT2",
        }
    }

    /// The socket states whose count is shown beside this one. Conntrack's
    /// FIN_WAIT covers the socket's FIN_WAIT1 and FIN_WAIT2; NONE, CLOSE and
    /// SYN_SENT2 have no socket counterpart worth comparing.
    pub fn socket_states(self) -> &'static [TcpState] {
        match self {
            CtState::SynSent => &[TcpState::SynSent],
            CtState::SynRecv => &[TcpState::SynRecv],
            CtState::Established => &[TcpState::Established],
            CtState::FinWait => &[TcpState::FinWait1, TcpState::FinWait2],
            CtState::CloseWait => &[TcpState::CloseWait],
            CtState::LastAck => &[TcpState::LastAck],
            CtState::TimeWait => &[TcpState::TimeWait],
            CtState::None | CtState::Close | CtState::SynSent2 => &[],
        }
    }
}

impl std::fmt::Display for CtState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for CtState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One conntrack entry: the original-direction tuple (who opened the
/// connection, to where), the reply tuple's source (differs from the original
/// destination under DNAT), and for TCP its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtEntry {
    pub family: Family,
    /// IP protocol number (6 TCP, 17 UDP, ...).
    pub proto: u8,
    /// TCP entries only; `None` for other protocols or a state this build does not know.
    pub tcp_state: Option<CtState>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// Source of the reply tuple: the original destination unless NAT rewrote it.
    pub reply_src: IpAddr,
    pub reply_dst: IpAddr,
    /// `CTA_STATUS` bits (`IPS_*`).
    pub status: u32,
    /// Seconds left before the entry expires.
    pub timeout_s: u32,
}

/// `IPS_SRC_NAT` and `IPS_DST_NAT`: the entry is translated.
pub const IPS_NAT_MASK: u32 = (1 << 4) | (1 << 5);

impl CtEntry {
    /// An entry with unspecified addresses, for tests.
    pub fn blank(family: Family, proto: u8, tcp_state: Option<CtState>) -> CtEntry {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        CtEntry {
            family,
            proto,
            tcp_state,
            src: any,
            dst: any,
            sport: 0,
            dport: 0,
            reply_src: any,
            reply_dst: any,
            status: 0,
            timeout_s: 0,
        }
    }

    /// True when NAT rewrites the connection (status bits, or tuples that do not mirror).
    pub fn is_nat(&self) -> bool {
        self.status & IPS_NAT_MASK != 0 || self.reply_src != self.dst || self.reply_dst != self.src
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_in_kernel_order() {
        for (i, s) in CtState::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(CtState::from_kernel(i as u8), Some(*s));
        }
        assert_eq!(CtState::from_kernel(7), Some(CtState::TimeWait));
        assert_eq!(CtState::from_kernel(10), None);
        assert_eq!(CtState::TimeWait.name(), "TIME_WAIT");
        assert_eq!(
            CtState::FinWait.socket_states(),
            &[TcpState::FinWait1, TcpState::FinWait2]
        );
    }
}
