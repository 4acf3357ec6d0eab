//! Pure aggregation: socket records in, counts out. Memory grows with the
//! number of groups, never with the number of sockets.

pub mod conntrack;
mod roles;
mod teardown;

pub use roles::{Listening, Role, Roles};
pub use teardown::{CLOSE_WAIT_IDS, CloseWaitGroup, CloseWaitOwner, CloseWaitSock, Teardown};

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

// One hash per grouped socket is the hottest user-space step of a summary.
// foldhash is several times faster than SipHash on these 40-byte keys and,
// unlike FxHash, is seeded per process: peer addresses and ports are chosen by
// remote hosts, and a fixed hash would let them force collisions.
use foldhash::HashMap;

use crate::socket::{Family, Sink, SocketRecord};
use crate::state::{MAX_STATE, StateSet, TcpState};

/// Which fields form a group.
///
/// With `role` set (the default view), a group is one side of connections:
/// incoming sockets are grouped by local port (and local address when `local`
/// is set), outgoing ones by peer address and port; the other fields are then
/// not used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupBy {
    pub state: bool,
    pub peer: bool,
    pub peer_port: bool,
    pub local: bool,
    pub local_port: bool,
    pub role: bool,
}

impl GroupBy {
    pub const PEER_PORT_PAIR: GroupBy = GroupBy {
        state: false,
        peer: true,
        peer_port: true,
        local: false,
        local_port: false,
        role: false,
    };

    /// The default view: incoming by local address and port, outgoing by
    /// destination (peer address and port).
    pub const ROLES: GroupBy = GroupBy {
        state: false,
        peer: true,
        peer_port: true,
        local: true,
        local_port: true,
        role: true,
    };

    /// The roles with incoming grouped by local port alone (Prometheus: one
    /// series per service port, whatever address it was reached on).
    pub const ROLES_BY_PORT: GroupBy = GroupBy {
        local: false,
        ..GroupBy::ROLES
    };

    /// Name as `--by` spells it (`peer+port`, `local-port`, `role`, ...).
    pub fn name(self) -> String {
        if self.role {
            return "role".into();
        }
        let mut parts = Vec::new();
        if self.state {
            parts.push("state");
        }
        match (self.peer, self.peer_port) {
            (true, true) => parts.push("peer+port"),
            (true, false) => parts.push("peer"),
            (false, true) => parts.push("peer-port"),
            _ => {}
        }
        match (self.local, self.local_port) {
            (true, true) => parts.push("local+port"),
            (true, false) => parts.push("local"),
            (false, true) => parts.push("local-port"),
            _ => {}
        }
        parts.join(",")
    }

    fn key(self, r: &SocketRecord, role: Role) -> GroupKey {
        if self.role {
            return match role {
                Role::Incoming => GroupKey {
                    role: Some(role),
                    peer: None,
                    peer_port: None,
                    local: self.local.then_some(r.local),
                    local_port: Some(r.local_port),
                    state: self.state.then_some(r.state),
                },
                Role::Outgoing => GroupKey {
                    role: Some(role),
                    peer: Some(r.peer),
                    peer_port: Some(r.peer_port),
                    local: None,
                    local_port: None,
                    state: self.state.then_some(r.state),
                },
            };
        }
        GroupKey {
            role: None,
            peer: self.peer.then_some(r.peer),
            peer_port: self.peer_port.then_some(r.peer_port),
            local: self.local.then_some(r.local),
            local_port: self.local_port.then_some(r.local_port),
            state: self.state.then_some(r.state),
        }
    }
}

/// The values of the grouping fields for one group (`None` = not grouped on).
/// Field order gives the tie-break: role, then peer address, then port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    /// Set in the role view only.
    pub role: Option<Role>,
    pub peer: Option<IpAddr>,
    pub peer_port: Option<u16>,
    pub local: Option<IpAddr>,
    pub local_port: Option<u16>,
    pub state: Option<TcpState>,
}

/// Count and remaining-timer spread of one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupStats {
    pub count: u64,
    /// Soonest and latest timer expiry among the group's sockets with a timer running (ms).
    pub expires_min_ms: Option<u32>,
    pub expires_max_ms: Option<u32>,
}

impl GroupStats {
    pub const EMPTY: GroupStats = GroupStats {
        count: 0,
        expires_min_ms: None,
        expires_max_ms: None,
    };

    fn add(&mut self, r: &SocketRecord) {
        self.count += 1;
        if r.timer != crate::socket::Timer::Off {
            let e = r.expires_ms;
            self.expires_min_ms = Some(self.expires_min_ms.map_or(e, |m| m.min(e)));
            self.expires_max_ms = Some(self.expires_max_ms.map_or(e, |m| m.max(e)));
        }
    }

    fn merge(&mut self, o: &GroupStats) {
        self.count += o.count;
        self.expires_min_ms = match (self.expires_min_ms, o.expires_min_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.expires_max_ms = match (self.expires_max_ms, o.expires_max_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Counts per state and family, and per group for the sockets in `group_states`.
#[derive(Clone, Debug)]
pub struct Aggregate {
    pub by: GroupBy,
    pub group_states: StateSet,
    pub total: u64,
    pub states: [u64; MAX_STATE],
    pub by_family: [u64; 2],
    /// Per family (IPv4, IPv6) and state, for metrics labelled by both.
    pub family_states: [[u64; MAX_STATE]; 2],
    /// FIN_WAIT1/FIN_WAIT2/CLOSING/LAST_ACK sockets the application has already closed.
    pub orphaned: [u64; MAX_STATE],
    /// Per role (incoming, outgoing) and state; meaningful when `roles.known()`.
    pub role_states: [[u64; MAX_STATE]; 2],
    pub groups: HashMap<GroupKey, GroupStats>,
    /// The classifier: shared, built once per namespace before the dump.
    pub roles: Arc<Roles>,
}

impl Aggregate {
    pub fn new(by: GroupBy, group_states: StateSet) -> Aggregate {
        Aggregate {
            by,
            group_states,
            total: 0,
            states: [0; MAX_STATE],
            by_family: [0; 2],
            family_states: [[0; MAX_STATE]; 2],
            orphaned: [0; MAX_STATE],
            role_states: [[0; MAX_STATE]; 2],
            groups: HashMap::default(),
            roles: Arc::new(Roles::default()),
        }
    }

    /// Classifies sockets with `roles` (the listeners of their namespace).
    pub fn with_roles(mut self, roles: Arc<Roles>) -> Aggregate {
        self.roles = roles;
        self
    }

    /// Sockets of `s` per role, when roles are known here.
    pub fn roles_of(&self, s: TcpState) -> Option<[u64; 2]> {
        self.roles.known().then(|| {
            [
                self.role_states[0][s.index()],
                self.role_states[1][s.index()],
            ]
        })
    }

    pub fn count(&self, s: TcpState) -> u64 {
        self.states[s.index()]
    }

    /// Groups sorted by count (descending), ties by address then port.
    pub fn sorted_groups(&self) -> Vec<(GroupKey, GroupStats)> {
        let mut v: Vec<_> = self.groups.iter().map(|(k, s)| (*k, *s)).collect();
        v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
        v
    }

    /// The sockets that are grouped (those in `group_states`).
    pub fn grouped_total(&self) -> u64 {
        self.group_states.iter().map(|s| self.count(s)).sum()
    }
}

impl Aggregate {
    /// Counts a socket by state, family and role, without grouping it.
    pub fn count_socket(&mut self, r: &SocketRecord, role: Role) {
        self.role_states[role.index()][r.state.index()] += 1;
        self.total += 1;
        self.states[r.state.index()] += 1;
        let fam = match r.family {
            Family::V4 => 0,
            Family::V6 => 1,
        };
        self.by_family[fam] += 1;
        self.family_states[fam][r.state.index()] += 1;
        if r.orphaned {
            self.orphaned[r.state.index()] += 1;
        }
    }
}

impl Aggregate {
    fn add_to_group(&mut self, r: &SocketRecord, role: Role) {
        let key = self.by.key(r, role);
        self.groups.entry(key).or_insert(GroupStats::EMPTY).add(r);
    }
}

impl Sink for Aggregate {
    fn push(&mut self, r: &SocketRecord) {
        let role = self.roles.of(r);
        self.count_socket(r, role);
        if self.group_states.contains(r.state) {
            self.add_to_group(r, role);
        }
    }

    fn absorb(&mut self, other: Self) {
        self.total += other.total;
        for i in 0..MAX_STATE {
            self.states[i] += other.states[i];
            self.orphaned[i] += other.orphaned[i];
            self.family_states[0][i] += other.family_states[0][i];
            self.family_states[1][i] += other.family_states[1][i];
            self.role_states[0][i] += other.role_states[0][i];
            self.role_states[1][i] += other.role_states[1][i];
        }
        // A total over namespaces has roles wherever one of them had.
        if !self.roles.known() && other.roles.known() {
            self.roles = other.roles;
        }
        self.by_family[0] += other.by_family[0];
        self.by_family[1] += other.by_family[1];
        for (k, s) in other.groups {
            self.groups
                .entry(k)
                .and_modify(|g| g.merge(&s))
                .or_insert(s);
        }
    }
}

/// Outgoing connections per destination, for the port-pressure diagnosis.
///
/// A socket is outgoing when its local port lies in the ephemeral range and it
/// is not a listener. The kernel needs a distinct local port per
/// (local address, peer address, peer port), so each destination can use at
/// most the usable ephemeral ports. A TIME_WAIT socket whose port `connect()`
/// may take over (see [`ReusePolicy`]) is counted apart: it does not hold its port.
#[derive(Clone, Debug, Default)]
pub struct Pressure {
    pub range: (u16, u16),
    pub policy: ReusePolicy,
    pub per_destination: HashMap<Destination, PortUse>,
}

/// How `connect()` treats a TIME_WAIT four-tuple in one namespace, after the
/// kernel's `tcp_twsk_unique` (net/ipv4/tcp_ipv4.c): it takes the tuple over
/// when `tcp_tw_reuse` applies (1, or 2 with a loopback address or a socket
/// bound to `lo`), the TIME_WAIT socket holds the peer's last timestamp, and
/// it entered TIME_WAIT more than `tcp_tw_reuse_delay` ms ago.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReusePolicy {
    /// `tcp_tw_reuse`; `None` when unknown (every TIME_WAIT port then counts as held).
    pub tw_reuse: Option<u32>,
    /// `tcp_timestamps`. sock_diag does not say whether one TIME_WAIT socket
    /// holds a timestamp; with timestamps on here this host offers them on
    /// every SYN, and the rule taken is that the connection used them.
    pub timestamps: Option<u32>,
    /// `tcp_tw_reuse_delay` in ms; 1000 where the knob is absent (before Linux 6.14).
    pub delay_ms: u32,
}

/// TIME_WAIT lasts this long on Linux (TCP_TIMEWAIT_LEN): the socket's age is
/// this minus the time left on its timer.
pub const TIME_WAIT_LEN_MS: u32 = 60_000;
/// The reuse delay before `tcp_tw_reuse_delay` existed (Linux 6.14).
pub const DEFAULT_REUSE_DELAY_MS: u32 = 1000;

/// What `connect()` can do with the port of one TIME_WAIT socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TwPort {
    /// Taken over by the next connect() to the same destination.
    Reusable,
    /// Reusable once older than `tcp_tw_reuse_delay`: held for now.
    Maturing,
    /// Held for the whole TIME_WAIT, for this reason.
    Held(HeldWhy),
}

/// Why connect() cannot take over a TIME_WAIT port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldWhy {
    /// `tcp_tw_reuse` = 0.
    ReuseOff,
    /// `tcp_tw_reuse` = 2 and neither address is loopback.
    NotLoopback,
    /// `tcp_timestamps` = 0: no timestamp to keep the connections apart.
    NoTimestamps,
    /// The settings are not known (a snapshot without them).
    Unknown,
}

/// True for 127.0.0.0/8, ::1 (mapped addresses are canonical IPv4 here).
fn is_loopback(a: IpAddr) -> bool {
    a.is_loopback()
}

impl ReusePolicy {
    pub fn new(tw_reuse: Option<u32>, timestamps: Option<u32>, delay_ms: Option<u32>) -> Self {
        ReusePolicy {
            tw_reuse,
            timestamps,
            delay_ms: delay_ms.unwrap_or(DEFAULT_REUSE_DELAY_MS),
        }
    }

    /// Why TIME_WAIT ports to `d` are held for the whole TIME_WAIT, if they are.
    pub fn held_why(&self, d: &Destination) -> Option<HeldWhy> {
        self.why(d.local, d.peer, 0)
    }

    fn why(&self, local: IpAddr, peer: IpAddr, ifindex: u32) -> Option<HeldWhy> {
        match self.tw_reuse {
            None => return Some(HeldWhy::Unknown),
            Some(0) => return Some(HeldWhy::ReuseOff),
            // LOOPBACK_IFINDEX is 1: a socket bound to `lo` counts as loopback.
            Some(2) if !(is_loopback(local) || is_loopback(peer) || ifindex == 1) => {
                return Some(HeldWhy::NotLoopback);
            }
            Some(_) => {}
        }
        match self.timestamps {
            None => Some(HeldWhy::Unknown),
            Some(0) => Some(HeldWhy::NoTimestamps),
            Some(_) => None,
        }
    }

    /// What connect() can do with this TIME_WAIT socket's port now.
    pub fn judge(&self, r: &SocketRecord) -> TwPort {
        if let Some(why) = self.why(r.local, r.peer, r.ifindex) {
            return TwPort::Held(why);
        }
        let age = TIME_WAIT_LEN_MS.saturating_sub(r.expires_ms);
        // The kernel reuses strictly after entry + delay.
        if age > self.delay_ms {
            TwPort::Reusable
        } else {
            TwPort::Maturing
        }
    }
}

/// How the sockets to one destination use its ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortUse {
    /// Sockets in any state but TIME_WAIT (ESTABLISHED, SYN_SENT, FIN_WAIT...).
    pub other: u64,
    /// TIME_WAIT that connect() cannot take over.
    pub tw_held: u64,
    /// TIME_WAIT that connect() may take over once older than the reuse delay.
    pub tw_maturing: u64,
    /// TIME_WAIT that connect() takes over now.
    pub tw_reusable: u64,
}

impl PortUse {
    /// Ports that a new connect() to this destination cannot use now.
    pub fn held(&self) -> u64 {
        self.other + self.tw_held + self.tw_maturing
    }

    /// Every socket to this destination.
    pub fn in_use(&self) -> u64 {
        self.held() + self.tw_reusable
    }

    fn add(&mut self, r: &SocketRecord, policy: &ReusePolicy) {
        if r.state != TcpState::TimeWait {
            self.other += 1;
            return;
        }
        match policy.judge(r) {
            TwPort::Reusable => self.tw_reusable += 1,
            TwPort::Maturing => self.tw_maturing += 1,
            TwPort::Held(_) => self.tw_held += 1,
        }
    }

    fn merge(&mut self, o: &PortUse) {
        self.other += o.other;
        self.tw_held += o.tw_held;
        self.tw_maturing += o.tw_maturing;
        self.tw_reusable += o.tw_reusable;
    }

    fn is_empty(&self) -> bool {
        self.in_use() == 0
    }
}

/// Where outgoing connections go, from one local address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    pub local: IpAddr,
    pub peer: IpAddr,
    pub peer_port: u16,
}

// Both keys are hashed once per socket on the hot path. The derived Hash feeds
// the hasher an enum tag, a length and the address bytes field by field; these
// feed two u128 words and one u64, which is several times cheaper. Equal keys
// still hash equally (the words are a function of the fields).
fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(v4.to_bits()) | (0xffff << 32),
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

impl Hash for GroupKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u128(self.peer.map_or(0, addr_bits));
        h.write_u128(self.local.map_or(0, addr_bits));
        h.write_u64(
            u64::from(self.peer_port.unwrap_or(0))
                | u64::from(self.local_port.unwrap_or(0)) << 16
                | u64::from(self.state.map_or(0, |s| s.number())) << 32
                | u64::from(self.peer_port.is_some()) << 40
                | u64::from(self.local_port.is_some()) << 41
                | u64::from(self.role.map_or(0, |r| r.index() as u8 + 1)) << 42,
        );
    }
}

impl Hash for Destination {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u128(addr_bits(self.peer));
        h.write_u128(addr_bits(self.local));
        h.write_u16(self.peer_port);
    }
}

impl Pressure {
    /// Every TIME_WAIT port counts as held (the settings are unknown).
    pub fn new(range: (u16, u16)) -> Pressure {
        Pressure::with_policy(range, ReusePolicy::default())
    }

    pub fn with_policy(range: (u16, u16), policy: ReusePolicy) -> Pressure {
        Pressure {
            range,
            policy,
            per_destination: HashMap::default(),
        }
    }

    /// Destinations sorted by ports held, then by ports in use, busiest first.
    pub fn sorted(&self) -> Vec<(Destination, PortUse)> {
        let mut v: Vec<_> = self.per_destination.iter().map(|(d, n)| (*d, *n)).collect();
        v.sort_by(|a, b| {
            (b.1.held(), b.1.in_use())
                .cmp(&(a.1.held(), a.1.in_use()))
                .then(a.0.cmp(&b.0))
        });
        v
    }
}

impl Pressure {
    /// True when `r` holds an ephemeral port for an outgoing connection.
    pub fn takes(&self, r: &SocketRecord) -> bool {
        !matches!(
            r.state,
            TcpState::Listen | TcpState::BoundInactive | TcpState::Close
        ) && r.local_port >= self.range.0
            && r.local_port <= self.range.1
    }
}

impl Sink for Pressure {
    fn push(&mut self, r: &SocketRecord) {
        if !self.takes(r) {
            return;
        }
        let d = Destination {
            local: r.local,
            peer: r.peer,
            peer_port: r.peer_port,
        };
        let policy = self.policy;
        self.per_destination.entry(d).or_default().add(r, &policy);
    }
    fn absorb(&mut self, other: Self) {
        for (d, n) in other.per_destination {
            self.per_destination.entry(d).or_default().merge(&n);
        }
    }
}

/// [`Aggregate`] and [`Pressure`] fed from one map when the groups are
/// peer+port, or roles (whose outgoing groups are peer+port): a destination
/// (local, peer, peer port) refines a peer+port group, so each socket costs
/// one map lookup instead of two. Incoming groups of the role view go to the
/// aggregate's own map. [`Fused::finish`] folds the map into the two results.
#[derive(Clone, Debug)]
pub struct Fused {
    agg: Aggregate,
    pressure: Pressure,
    by_destination: HashMap<Destination, (GroupStats, PortUse)>,
}

impl Fused {
    /// True when `agg` groups by peer+port or by role (without state) and
    /// nothing is counted yet.
    pub fn applies(agg: &Aggregate, pressure: &Pressure) -> bool {
        (agg.by == GroupBy::PEER_PORT_PAIR || (agg.by.role && !agg.by.state))
            && agg.groups.is_empty()
            && pressure.per_destination.is_empty()
    }

    /// Call only where [`Fused::applies`].
    pub fn new(agg: Aggregate, pressure: Pressure) -> Fused {
        debug_assert!(Fused::applies(&agg, &pressure));
        Fused {
            agg,
            pressure,
            by_destination: HashMap::default(),
        }
    }

    pub fn finish(self) -> (Aggregate, Pressure) {
        let (mut agg, mut pressure) = (self.agg, self.pressure);
        let role = agg.by.role.then_some(Role::Outgoing);
        for (d, (g, n)) in self.by_destination {
            if g.count > 0 {
                let key = GroupKey {
                    role,
                    peer: Some(d.peer),
                    peer_port: Some(d.peer_port),
                    local: None,
                    local_port: None,
                    state: None,
                };
                agg.groups
                    .entry(key)
                    .and_modify(|e| e.merge(&g))
                    .or_insert(g);
            }
            if !n.is_empty() {
                pressure.per_destination.insert(d, n);
            }
        }
        (agg, pressure)
    }
}

impl Sink for Fused {
    fn push(&mut self, r: &SocketRecord) {
        let role = self.agg.roles.of(r);
        self.agg.count_socket(r, role);
        let mut grouped = self.agg.group_states.contains(r.state);
        let outgoing = self.pressure.takes(r);
        if grouped && self.agg.by.role && role == Role::Incoming {
            self.agg.add_to_group(r, role);
            grouped = false;
        }
        if grouped || outgoing {
            let d = Destination {
                local: r.local,
                peer: r.peer,
                peer_port: r.peer_port,
            };
            let e = self
                .by_destination
                .entry(d)
                .or_insert((GroupStats::EMPTY, PortUse::default()));
            if grouped {
                e.0.add(r);
            }
            if outgoing {
                e.1.add(r, &self.pressure.policy);
            }
        }
    }
    fn absorb(&mut self, other: Self) {
        self.agg.absorb(other.agg);
        for (d, (g, n)) in other.by_destination {
            let e = self
                .by_destination
                .entry(d)
                .or_insert((GroupStats::EMPTY, PortUse::default()));
            e.0.merge(&g);
            e.1.merge(&n);
        }
    }
}

/// Two sinks fed the same records (e.g. counts and the socket list).
impl<A: Sink, B: Sink> Sink for (A, B) {
    fn push(&mut self, r: &SocketRecord) {
        self.0.push(r);
        self.1.push(r);
    }
    fn absorb(&mut self, other: Self) {
        self.0.absorb(other.0);
        self.1.absorb(other.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::Timer;

    fn tw(peer: &str, port: u16, expires: u32) -> SocketRecord {
        let mut r = SocketRecord::blank(Family::V4, TcpState::TimeWait);
        r.peer = peer.parse().unwrap();
        r.peer_port = port;
        r.timer = Timer::TimeWait;
        r.expires_ms = expires;
        r
    }

    #[test]
    fn groups_count_sort_and_spread() {
        let mut a = Aggregate::new(
            GroupBy::PEER_PORT_PAIR,
            StateSet::from_states(&[TcpState::TimeWait]),
        );
        let mut b = a.clone();
        for (p, port, e) in [
            ("10.0.0.2", 80, 100),
            ("10.0.0.1", 80, 5000),
            ("10.0.0.1", 80, 300),
        ] {
            a.push(&tw(p, port, e));
        }
        b.push(&tw("10.0.0.2", 80, 60000));
        b.push(&SocketRecord::blank(Family::V6, TcpState::Established));
        a.absorb(b);
        assert_eq!(a.total, 5);
        assert_eq!(a.count(TcpState::TimeWait), 4);
        assert_eq!(a.by_family, [4, 1]);
        assert_eq!(a.family_states[0][TcpState::TimeWait.index()], 4);
        assert_eq!(a.family_states[1][TcpState::Established.index()], 1);
        let g = a.sorted_groups();
        assert_eq!(g.len(), 2);
        // Tie on count 2: 10.0.0.1 sorts before 10.0.0.2.
        assert_eq!(g[0].0.peer, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            (g[0].1.expires_min_ms, g[0].1.expires_max_ms),
            (Some(300), Some(5000))
        );
        assert_eq!(
            (g[1].1.expires_min_ms, g[1].1.expires_max_ms),
            (Some(100), Some(60000))
        );
        assert_eq!(a.grouped_total(), 4);
    }

    #[test]
    fn fused_equals_separate() {
        let group_states = StateSet::from_states(&[TcpState::TimeWait, TcpState::Established]);
        let agg = Aggregate::new(GroupBy::PEER_PORT_PAIR, group_states);
        let policy = ReusePolicy::new(Some(2), Some(1), Some(1000));
        let fresh = || Pressure::with_policy((32768, 60999), policy);
        let (mut a, mut p) = (agg.clone(), fresh());
        let mut f = Fused::new(agg.clone(), fresh());
        let mut g = Fused::new(agg, fresh());
        let states = [
            TcpState::TimeWait,
            TcpState::Established,
            TcpState::Listen,
            TcpState::CloseWait,
        ];
        for i in 0..2000u32 {
            let mut r = tw(
                ["10.0.0.1", "10.0.0.2", "::1"][(i % 3) as usize],
                [80, 443][(i % 2) as usize],
                i * 7 % 60000,
            );
            r.state = states[(i % 4) as usize];
            r.local = ["127.0.0.1", "127.0.0.2"][(i / 5 % 2) as usize]
                .parse()
                .unwrap();
            r.local_port = (30000 + i * 13 % 35000) as u16;
            a.push(&r);
            p.push(&r);
            let half = if i % 2 == 0 { &mut f } else { &mut g };
            half.push(&r);
        }
        f.absorb(g);
        let (fa, fp) = f.finish();
        assert_eq!(fa.sorted_groups(), a.sorted_groups());
        assert_eq!((fa.total, fa.states), (a.total, a.states));
        assert_eq!(fp.sorted(), p.sorted());
        assert!(!p.per_destination.is_empty() && !a.groups.is_empty());
        let by_port = Aggregate::new(
            GroupBy {
                local_port: true,
                ..GroupBy::default()
            },
            group_states,
        );
        assert!(!Fused::applies(&by_port, &Pressure::new((1, 0))));
    }

    #[test]
    fn fused_equals_separate_in_the_role_view() {
        use crate::diag::listen::Listener;
        let listeners = [Listener {
            family: "ipv4".into(),
            local: "0.0.0.0".parse().unwrap(),
            port: 443,
            inode: 9,
            process: None,
        }];
        let roles = Arc::new(Roles::new(Some(&listeners), Some((32768, 60999))));
        let group_states = StateSet::from_states(&[TcpState::TimeWait, TcpState::CloseWait]);
        for by in [GroupBy::ROLES, GroupBy::ROLES_BY_PORT] {
            let agg = Aggregate::new(by, group_states).with_roles(Arc::clone(&roles));
            let policy = ReusePolicy::new(Some(0), Some(1), Some(1000));
            let fresh = || Pressure::with_policy((32768, 60999), policy);
            let (mut a, mut p) = (agg.clone(), fresh());
            let mut f = Fused::new(agg, fresh());
            for i in 0..3000u32 {
                // Thirds: to 10.0.0.1:443 (incoming), from our 45000+ to :80, :5432.
                let mut r = tw("10.0.0.9", [50000, 80, 5432][(i % 3) as usize], i % 60000);
                r.local = ["10.0.0.1", "10.0.0.2"][(i / 7 % 2) as usize]
                    .parse()
                    .unwrap();
                r.local_port = if i % 3 == 0 { 443 } else { (33000 + i) as u16 };
                r.peer_port = if i % 3 == 0 {
                    (40000 + i) as u16
                } else {
                    r.peer_port
                };
                if i % 11 == 0 {
                    r.state = TcpState::CloseWait;
                }
                a.push(&r);
                p.push(&r);
                f.push(&r);
            }
            let (fa, fp) = f.finish();
            assert_eq!(fa.sorted_groups(), a.sorted_groups(), "{by:?}");
            assert_eq!(fa.role_states, a.role_states);
            assert_eq!(fp.sorted(), p.sorted());
            let incoming: u64 = fa
                .groups
                .iter()
                .filter(|(k, _)| k.role == Some(Role::Incoming))
                .map(|(_, s)| s.count)
                .sum();
            let tw_in = fa.roles_of(TcpState::TimeWait).unwrap()[0];
            let cw_in = fa.roles_of(TcpState::CloseWait).unwrap()[0];
            assert_eq!(incoming, tw_in + cw_in);
            assert_eq!(tw_in + cw_in, 1000, "every third socket is on 443");
            // Incoming keys carry the local address only when asked.
            assert!(fa.groups.keys().all(|k| k.role.is_some()));
            assert_eq!(
                fa.groups
                    .keys()
                    .filter(|k| k.role == Some(Role::Incoming))
                    .all(|k| k.local.is_some()),
                by.local
            );
        }
    }

    #[test]
    fn time_wait_ports_follow_tcp_twsk_unique() {
        let mut r = tw("10.0.0.2", 80, 30_000);
        r.local = "10.0.0.1".parse().unwrap();
        let policy = |reuse, ts| ReusePolicy::new(Some(reuse), Some(ts), None);
        assert_eq!(policy(0, 1).judge(&r), TwPort::Held(HeldWhy::ReuseOff));
        assert_eq!(policy(2, 1).judge(&r), TwPort::Held(HeldWhy::NotLoopback));
        assert_eq!(policy(1, 1).judge(&r), TwPort::Reusable);
        assert_eq!(policy(1, 0).judge(&r), TwPort::Held(HeldWhy::NoTimestamps));
        assert_eq!(
            ReusePolicy::default().judge(&r),
            TwPort::Held(HeldWhy::Unknown)
        );
        // Bound to lo (ifindex 1), or a loopback address on either side: 2 applies.
        let mut lo = r;
        lo.ifindex = 1;
        assert_eq!(policy(2, 1).judge(&lo), TwPort::Reusable);
        let mut v6 = r;
        v6.peer = "::1".parse().unwrap();
        assert_eq!(policy(2, 1).judge(&v6), TwPort::Reusable);
        // Age = 60 s - time left; reusable strictly after the delay.
        r.expires_ms = 59_000;
        assert_eq!(policy(1, 1).judge(&r), TwPort::Maturing);
        r.expires_ms = 58_999;
        assert_eq!(policy(1, 1).judge(&r), TwPort::Reusable);
        let slow = ReusePolicy::new(Some(1), Some(1), Some(5000));
        assert_eq!(slow.judge(&r), TwPort::Maturing);

        let mut p = Pressure::with_policy((1, 65535), policy(1, 1));
        let mut est = r;
        est.state = TcpState::Established;
        est.local_port = 40000;
        r.local_port = 40001;
        p.push(&r);
        p.push(&est);
        let young = TcpState::TimeWait;
        let mut y = r;
        y.state = young;
        y.expires_ms = 59_990;
        p.push(&y);
        let (_, u) = p.sorted()[0];
        assert_eq!(
            (u.other, u.tw_reusable, u.tw_maturing, u.held(), u.in_use()),
            (1, 1, 1, 2, 3)
        );
    }

    #[test]
    fn group_names() {
        assert_eq!(GroupBy::PEER_PORT_PAIR.name(), "peer+port");
        assert_eq!(GroupBy::ROLES.name(), "role");
        let g = GroupBy {
            state: true,
            local_port: true,
            ..GroupBy::default()
        };
        assert_eq!(g.name(), "state,local-port");
    }
}
