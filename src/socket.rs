//! The owned socket record every source (netlink, /proc, snapshots) produces
//! and every later stage consumes. It is `Copy`: building one allocates nothing.
//! Sources hand records to a [`Sink`]; the stages that consume them implement it
//! without depending on any source.

use std::net::{IpAddr, Ipv4Addr};

use crate::state::TcpState;

/// Address family of the dump a socket came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const fn name(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

/// By name (`ipv4`, `ipv6`), as the JSON contract spells it.
impl serde::Serialize for Family {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The kernel's `idiag_timer` values (see `inet_sk_diag_fill`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    Off,
    /// Retransmit (or SYN-ACK / loss-probe) timer.
    On,
    Keepalive,
    TimeWait,
    /// Zero-window probe.
    Persist,
    Unknown(u8),
}

impl Timer {
    pub fn from_kernel(n: u8) -> Timer {
        match n {
            0 => Timer::Off,
            1 => Timer::On,
            2 => Timer::Keepalive,
            3 => Timer::TimeWait,
            4 => Timer::Persist,
            other => Timer::Unknown(other),
        }
    }

    /// Name as `ss -o` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Timer::Off => "off",
            Timer::On => "on",
            Timer::Keepalive => "keepalive",
            Timer::TimeWait => "timewait",
            Timer::Persist => "persist",
            Timer::Unknown(_) => "unknown",
        }
    }
}

/// By name, as `ss -o` prints it.
impl serde::Serialize for Timer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One TCP socket as reported by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketRecord {
    pub family: Family,
    pub state: TcpState,
    /// An orphaned FIN_WAIT2: the application has closed it and the kernel keeps a
    /// timewait minisocket in FIN_WAIT2 until `tcp_fin_timeout` runs out.
    pub orphaned: bool,
    /// Addresses are canonical: an IPv4-mapped IPv6 address is stored as IPv4.
    pub local: IpAddr,
    pub local_port: u16,
    pub peer: IpAddr,
    pub peer_port: u16,
    pub timer: Timer,
    /// Time left on `timer`, in milliseconds (0 when off).
    pub expires_ms: u32,
    pub retransmits: u8,
    pub uid: u32,
    pub inode: u32,
    pub cookie: u64,
    pub recv_q: u32,
    pub send_q: u32,
    pub ifindex: u32,
    /// From `INET_DIAG_INFO` (`struct tcp_info`), when the dump asked for it:
    /// only the dump of CLOSE_WAIT sockets does.
    pub tcp_times: Option<TcpTimes>,
}

/// The receive times of `struct tcp_info` (include/uapi/linux/tcp.h), in ms
/// before the dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpTimes {
    /// `tcpi_last_data_recv`: since the last segment that carried data. A
    /// bare FIN carries none, so this does not move when the peer closes.
    pub last_data_recv_ms: u32,
    /// `tcpi_last_ack_recv`: since the last acceptable ACK from the peer. Its
    /// FIN carries one, so in CLOSE_WAIT this is the time since the peer
    /// closed (unless it sent anything later).
    pub last_ack_recv_ms: u32,
}

impl SocketRecord {
    /// A record with zeroed fields, for tests and fallbacks to fill in.
    pub fn blank(family: Family, state: TcpState) -> SocketRecord {
        SocketRecord {
            family,
            state,
            orphaned: false,
            local: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            local_port: 0,
            peer: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            peer_port: 0,
            timer: Timer::Off,
            expires_ms: 0,
            retransmits: 0,
            uid: 0,
            inode: 0,
            cookie: 0,
            recv_q: 0,
            send_q: 0,
            ifindex: 0,
            tcp_times: None,
        }
    }
}

/// Where consumed sockets go. A sink may be filled per family on its own
/// thread, then the two are merged with [`Sink::absorb`] (IPv4 first); a sink
/// that writes each socket out as it comes is filled on one thread, in the
/// kernel's order.
pub trait Sink {
    fn push(&mut self, rec: &SocketRecord);
    fn absorb(&mut self, other: Self)
    where
        Self: Sized;
    /// True once the sink wants no more sockets (its output is gone): the
    /// collector may stop reading. Asked once per datagram.
    fn stopped(&self) -> bool {
        false
    }
}

/// Collects every record; for `--sockets` and tests.
impl Sink for Vec<SocketRecord> {
    fn push(&mut self, rec: &SocketRecord) {
        Vec::push(self, *rec);
    }
    fn absorb(&mut self, mut other: Self) {
        self.append(&mut other);
    }
}

/// True for a socket its application has already closed and that is still
/// finishing its teardown (FIN_WAIT1, FIN_WAIT2, CLOSING, LAST_ACK without an
/// inode); orphaned FIN_WAIT2 is what `tcp_fin_timeout` limits.
pub fn is_orphaned(state: TcpState, inode: u32) -> bool {
    inode == 0
        && matches!(
            state,
            TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing | TcpState::LastAck
        )
}

/// Turns `::ffff:a.b.c.d` into `a.b.c.d`; leaves everything else alone.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Records for unit tests elsewhere.
#[cfg(test)]
pub mod fixtures {
    use super::*;

    /// A record with these endpoints and state, every other field zero.
    pub fn record(
        family: Family,
        state: TcpState,
        local: &str,
        lport: u16,
        peer: &str,
        pport: u16,
    ) -> SocketRecord {
        let mut r = SocketRecord::blank(family, state);
        r.local = local.parse().unwrap();
        r.local_port = lport;
        r.peer = peer.parse().unwrap();
        r.peer_port = pport;
        r
    }

    /// The same, IPv4.
    pub fn v4(state: TcpState, local: &str, lport: u16, peer: &str, pport: u16) -> SocketRecord {
        record(Family::V4, state, local, lport, peer, pport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_unmaps_only_mapped() {
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(canonical(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(canonical(v6), v6);
        let compat: IpAddr = "::10.1.2.3".parse().unwrap();
        assert_eq!(canonical(compat), compat);
    }
}
