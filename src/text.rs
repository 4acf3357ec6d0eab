//! The one table of explanatory text: `explain`, `list --explain`, the man page
//! and README all read it. Facts are for Linux; where a number is a default it
//! says which knob sets it.

use crate::conntrack::CtState;
use crate::host::conntrack::CtTable;
use crate::host::sysctl::Sysctls;
use crate::state::TcpState;

/// Everything tw-inspect says about one state.
#[derive(Clone, Copy, Debug)]
pub struct StateText {
    pub state: TcpState,
    /// One line: what a socket in this state is doing.
    pub short: &'static str,
    /// Which side reaches it: active or passive closer, client or server.
    pub who: &'static str,
    /// What the socket is waiting for.
    pub waits_for: &'static str,
    /// How long it lasts on Linux.
    pub lasts: &'static str,
    /// What a large count of it usually means.
    pub many: &'static str,
    /// The long form: paragraphs separated by a blank line; a paragraph whose
    /// lines start with "- " is a list.
    pub long: &'static str,
}

/// Every state in kernel order, the same order as [`TcpState::ALL`].
pub const STATES: [StateText; 13] = [
    StateText {
        state: TcpState::Established,
        short: "open; data flows both ways",
        who: "both sides, client and server",
        waits_for: "data, or a close from either side",
        lasts: "as long as the applications keep it open",
        many: "many open connections; normal for a busy server or a connection pool",
        long: "The connection is open after the three-way handshake, and both sides may send. \
Nothing in TCP ends an idle ESTABLISHED connection: it stays until one application closes it, \
a keepalive probe (SO_KEEPALIVE, tcp_keepalive_time) or TCP_USER_TIMEOUT finds the peer gone, \
or a retransmission times out.\n\n\
A count that only grows points at connections that are opened and never closed, or at \
half-open connections whose peer vanished without a FIN or RST and no keepalive to notice.",
    },
    StateText {
        state: TcpState::SynSent,
        short: "connecting: SYN sent, waiting for the peer's SYN-ACK",
        who: "the client (active opener), after connect()",
        waits_for: "the peer's SYN-ACK",
        lasts: "one round trip; up to about 127 s when unanswered (tcp_syn_retries = 6)",
        many: "the peer or a firewall drops SYNs, or the peer's accept backlog is full",
        long: "connect() sent a SYN and waits for the SYN-ACK. A reply normally arrives within one \
round trip. Without one, Linux resends the SYN with doubling intervals, tcp_syn_retries times \
(6 by default, about 127 s in all), unless the application set a shorter connect timeout.\n\n\
Many SYN_SENT sockets mean the destinations do not answer: a host that is down, a firewall \
that drops instead of rejecting, or a server whose listen backlog overflows.",
    },
    StateText {
        state: TcpState::SynRecv,
        short: "half-open: SYN received, SYN-ACK sent, waiting for the final ACK",
        who: "the server (passive opener), for a SYN on a listening port",
        waits_for: "the client's ACK of our SYN-ACK",
        lasts: "one round trip; up to about 63 s when unanswered (tcp_synack_retries = 5)",
        many: "a SYN flood, or clients that vanish after their SYN; see tcp_syncookies",
        long: "A SYN arrived on a listening port and the SYN-ACK went back; the handshake ends with \
the client's ACK, after which the connection waits in the listener's accept queue as \
ESTABLISHED. Linux keeps these as small request sockets (its NEW_SYN_RECV state) and sock_diag \
reports them as SYN_RECV, so they are counted here.\n\n\
Without the final ACK, the SYN-ACK is resent tcp_synack_retries times (5 by default, about 63 s). \
Thousands of SYN_RECV sockets usually mean a SYN flood or clients behind a broken path; \
tcp_syncookies lets the server answer without keeping state when the queue is full.",
    },
    StateText {
        state: TcpState::FinWait1,
        short: "we closed first: FIN sent, waiting for its ACK",
        who: "the active closer (the side that called close() or shutdown() first)",
        waits_for: "the ACK of our FIN (and of any data still queued before it)",
        lasts: "one round trip; minutes when the peer stops acknowledging (tcp_orphan_retries)",
        many: "peers that stopped reading or disappeared while data was still queued",
        long: "This side closed first and sent its FIN, perhaps after data still in the send queue. \
When the peer acknowledges the FIN the socket moves to FIN_WAIT2; when the peer's own FIN comes \
first it moves to CLOSING.\n\n\
It normally lasts one round trip. A peer that advertises a zero window or no longer answers keeps \
it here while Linux retransmits; for a socket the application already closed, tcp_orphan_retries \
bounds the retries. Many FIN_WAIT1 sockets with full send queues point at slow or vanished peers.",
    },
    StateText {
        state: TcpState::FinWait2,
        short: "we closed first: our FIN is acked, waiting for the peer's FIN",
        who: "the active closer",
        waits_for: "the peer's FIN (the peer application calling close())",
        lasts: "until the peer closes; tcp_fin_timeout (60 s) once our application has closed",
        many: "peers that never close their side of the connection",
        long: "Our FIN is acknowledged; the connection is half closed and the peer may still send. \
It ends when the peer's FIN arrives, and the socket moves to TIME_WAIT.\n\n\
When the application only called shutdown(SHUT_WR) and still holds the socket, it can stay here \
forever. When the application has closed it (an orphaned FIN_WAIT2), Linux replaces it with a \
small timewait socket in state FIN_WAIT2 and drops it after tcp_fin_timeout (60 s by default). \
That knob governs orphaned FIN_WAIT2, not TIME_WAIT.\n\n\
Many orphaned FIN_WAIT2 sockets mean peers whose applications never close their end, often a \
client library that keeps reading from a connection the server has given up on.",
    },
    StateText {
        state: TcpState::TimeWait,
        short: "we closed first and it is finished; the tuple is held for 60 s",
        who: "the active closer: the side that closed first, client or server",
        waits_for: "nothing but time: old segments to die out and a lost final ACK to be resent",
        lasts: "60 s, fixed (TCP_TIMEWAIT_LEN, not tunable)",
        many: "this host closes many short connections first; harmful only near a port or bucket limit",
        long: "TIME_WAIT belongs to the side that closes first. After it sent the last ACK, \
answering the peer's FIN, the connection is over, but the kernel keeps its four-tuple (local \
address and port, peer address and port) reserved for 2MSL, twice the maximum segment lifetime. \
Linux fixes this at 60 s (TCP_TIMEWAIT_LEN); no sysctl changes it.\n\n\
There are two reasons:\n\
- Old duplicate segments of this connection may still be in the network. If a new connection \
reused the same four-tuple at once, a delayed segment could be taken as its data; after 2MSL \
every such segment has died out.\n\
- The final ACK may be lost. The peer, in LAST_ACK, then resends its FIN. A socket in TIME_WAIT \
answers it with an ACK and the peer closes cleanly; a socket already closed would answer with \
RST, and the peer would report an error for a connection that ended well.\n\n\
Not every close ends here. An abortive close (SO_LINGER with a zero timeout, then close()) sends \
RST and skips TIME_WAIT on both sides. A connection that times out (retransmissions or \
TCP_USER_TIMEOUT run out) goes straight to CLOSED. The passive closer goes through CLOSE_WAIT \
and LAST_ACK and never has TIME_WAIT.\n\n\
It costs little: Linux swaps the full socket (about 2.3 KB) for a timewait minisocket of about \
256 bytes, with no file descriptor and no process. The real cost is the four-tuple: a client \
making many short connections to one destination can run out of local ports, because each \
TIME_WAIT keeps its port to that destination for 60 s.\n\n\
The Linux knobs, and what they do not do:\n\
- tcp_fin_timeout governs orphaned FIN_WAIT2, not TIME_WAIT; lowering it does not shorten \
TIME_WAIT.\n\
- tcp_tw_reuse lets connect() take over a TIME_WAIT four-tuple for a new outgoing connection, \
once the old one is tcp_tw_reuse_delay old (1000 ms by default; the knob arrived in Linux 6.14 \
with commit ca6a6f93867a, December 2024, and before it the delay was a fixed 1 s), using TCP \
timestamps to keep old segments apart. 0 = never, 1 = always, 2 = when either address is \
loopback (the default). It never helps the server side of a connection. A TIME_WAIT port that \
connect() can take over this way does not count against the ports a destination can use.\n\
- tcp_timestamps (on by default) is what makes reuse safe; with timestamps, an explicit bind() \
with SO_REUSEADDR to the old port and connect() to the same peer succeeds at once, and with \
timestamps off it fails with EADDRNOTAVAIL for the whole TIME_WAIT.\n\
- tcp_tw_recycle was removed in Linux 4.12 (commit 4396e46187ca, April 2017): it broke clients \
behind NAT. Advice to set it is out of date, and the knob no longer exists.\n\
- tcp_max_tw_buckets caps the number of timewait sockets (TIME_WAIT and orphaned FIN_WAIT2). \
Above it, a closing connection is destroyed at once without TIME_WAIT and the kernel logs \
\"TCP: time wait bucket table overflow\".\n\
- SO_REUSEADDR on a listening socket lets a restarted server bind() its port while old \
connections on it are in TIME_WAIT.\n\n\
The usual remedies for too many TIME_WAIT sockets: reuse connections (HTTP keep-alive, \
connection pools) so fewer are closed; let the client close first so the TIME_WAIT lands on the \
many clients instead of one server; spread connections over more source addresses or \
destination ports; widen ip_local_port_range; set tcp_tw_reuse=1 on hosts that make outgoing \
connections.",
    },
    StateText {
        state: TcpState::Close,
        short: "closed, not yet released",
        who: "either side, after a reset, a timeout or a failed connect",
        waits_for: "the application to close() its file descriptor",
        lasts: "until the application closes it",
        many: "an application that keeps sockets whose connections failed or were reset",
        long: "The connection is gone (reset, timed out or never established) but the application \
still holds the socket, usually bound to a port. The kernel has nothing left to do with it.\n\n\
A steady count of them is an application that does not close a socket after an error.",
    },
    StateText {
        state: TcpState::CloseWait,
        short: "the peer closed; our application has not closed yet",
        who: "the passive closer: the side whose peer closed first",
        waits_for: "the local application to call close()",
        lasts: "forever: no timer ends it; only the application closing the socket",
        many: "a leak: the local application is not closing its sockets",
        long: "The peer sent its FIN: it has nothing more to send. The kernel told the application \
(read() returned 0), and the connection now waits for the application to close its end. TCP \
has no timer for this state.\n\n\
A pile-up of CLOSE_WAIT is the local application not closing its sockets: a code path that \
returns without close(), a connection pool that never checks for closed connections, or a \
thread stuck before the close. Nothing on the network or in the kernel will clear it; the fix \
is in the application, and restarting it releases them. `tw-inspect list --state close-wait \
--sockets -p` shows which process holds them.",
    },
    StateText {
        state: TcpState::LastAck,
        short: "the peer closed, then we did: waiting for the ACK of our FIN",
        who: "the passive closer, after its application closed",
        waits_for: "the ACK of our FIN",
        lasts: "one round trip; longer while our FIN is retransmitted (tcp_orphan_retries)",
        many: "peers that vanished after closing, or lost final ACKs",
        long: "The peer closed first, then our application closed, and our FIN is out. The peer's \
ACK of it ends the connection, with no TIME_WAIT on this side.\n\n\
If that ACK is lost, our FIN is retransmitted; the peer's TIME_WAIT socket answers it. Had the \
peer no TIME_WAIT, it would answer with RST. Many LAST_ACK sockets mean peers that disappeared \
right after closing.",
    },
    StateText {
        state: TcpState::Listen,
        short: "a server socket waiting for connections",
        who: "the server, after listen()",
        waits_for: "connection requests (SYNs)",
        lasts: "until the server closes it",
        many: "many server ports, or many processes listening with SO_REUSEPORT",
        long: "A server socket bound to a port, accepting connections. Completed connections wait \
in its accept queue until the application calls accept(); `Recv-Q` in ss shows that queue.\n\n\
A TIME_WAIT socket whose local port is a listening port belongs to a connection this server \
closed first.",
    },
    StateText {
        state: TcpState::Closing,
        short: "both closed at once: waiting for the ACK of our FIN",
        who: "both sides, in a simultaneous close",
        waits_for: "the ACK of our FIN",
        lasts: "one round trip, then TIME_WAIT",
        many: "rare; simultaneous closes with lost ACKs",
        long: "Both sides sent a FIN before either FIN was acknowledged: a simultaneous close. \
Each side waits for the ACK of its own FIN and then enters TIME_WAIT, so both ends get one.\n\n\
It passes within a round trip; seeing many means FINs crossing on a path that loses ACKs.",
    },
    StateText {
        state: TcpState::NewSynRecv,
        short: "a connection request being answered (request socket)",
        who: "the server, for a SYN on a listening port",
        waits_for: "the client's ACK of our SYN-ACK",
        lasts: "like SYN_RECV: one round trip, up to about 63 s (tcp_synack_retries)",
        many: "a SYN flood or clients that vanish; reported as SYN_RECV",
        long: "Linux's own state for a connection request: instead of a full socket, the listener \
keeps a small request socket until the handshake completes. sock_diag reports these sockets as \
SYN_RECV, so `list` counts them under syn-recv and this line stays at zero.",
    },
    StateText {
        state: TcpState::BoundInactive,
        short: "bound to a port but neither listening nor connected",
        who: "an application that called bind() and nothing else yet",
        waits_for: "the application to listen(), connect() or close()",
        lasts: "until the application does one of those",
        many: "an application holding ports it does not use; they are unavailable to others",
        long: "A socket bound to a local port that neither listens nor is connected (sock_diag \
reports these since Linux 6.8, commit 91051f003948). The port is taken for as long as the socket exists.\n\n\
Many of them are an application reserving ports, or a leak of sockets that were bound and \
never used.",
    },
];

/// The text of one state.
pub fn state(s: TcpState) -> &'static StateText {
    &STATES[s.index()]
}

/// One line: what a socket in this state is doing.
pub fn short(s: TcpState) -> &'static str {
    state(s).short
}

/// Why a socket row has no owning process.
pub fn no_owner(s: TcpState, orphaned: bool) -> &'static str {
    match s {
        TcpState::TimeWait => "none: closed; the kernel holds TIME_WAIT alone",
        TcpState::FinWait2 if orphaned => "none: closed; the kernel finishes it alone",
        TcpState::SynRecv | TcpState::NewSynRecv => "none yet: not accepted",
        _ if orphaned => "none: closed by its application",
        _ => "-",
    }
}

/// One line per TCP conntrack state: what netfilter has seen of the connection.
pub fn conntrack_state(s: CtState) -> &'static str {
    match s {
        CtState::None => "no state yet (an entry being set up)",
        CtState::SynSent => "a SYN seen from the opener, no answer yet",
        CtState::SynRecv => "the SYN-ACK seen, waiting for the opener's ACK",
        CtState::Established => "the handshake seen both ways; open",
        CtState::FinWait => "a FIN seen from one side",
        CtState::CloseWait => "a FIN seen and acknowledged; the other side has not closed",
        CtState::LastAck => "FINs seen from both sides, the last ACK not yet",
        CtState::TimeWait => {
            "both FINs acknowledged: closed, kept for nf_conntrack_tcp_timeout_time_wait (120 s)"
        }
        CtState::Close => "reset or fully closed; removed after 10 s",
        CtState::SynSent2 => "SYNs seen from both sides (simultaneous open)",
    }
}

/// `explain conntrack`: what conntrack's TIME_WAIT is, and how it differs
/// from the socket state. Paragraphs separated by a blank line; "- " lists.
pub const CONNTRACK_LONG: &str = "Connection tracking (conntrack, part of netfilter) keeps one entry per \
connection that passes through a network namespace whose firewall or NAT rules use it: every Kubernetes \
node, every NAT gateway or router, every host with stateful rules (iptables -m conntrack or -m state, \
nft ct state, masquerading, Docker and podman port mappings). The entry records both directions of the \
connection, so one entry stands for both of its ends.\n\n\
When a TCP connection closes, its conntrack entry moves to conntrack's own TIME_WAIT and stays for \
nf_conntrack_tcp_timeout_time_wait, 120 s by default. That is 2MSL, twice the 60 s maximum segment \
lifetime Linux assumes, as RFC 793 asks: late segments and a retransmitted FIN of the closed \
connection still match its entry, for every host behind this one. The socket's TIME_WAIT is only \
60 s (TCP_TIMEWAIT_LEN, a shortcut Linux has long taken), so conntrack keeps a closed connection \
twice as long as the socket that closed it.\n\n\
How the two differ:\n\
- A socket TIME_WAIT exists only on the host that closed first, and only in that host's namespace. \
A conntrack TIME_WAIT exists on every host and namespace the connection passed through with tracking on: \
the client, the server, and every router, NAT gateway or Kubernetes node in between.\n\
- A socket TIME_WAIT holds a four-tuple and a port; many of them exhaust ephemeral ports or \
tcp_max_tw_buckets. A conntrack TIME_WAIT holds a slot in the conntrack table; many of them fill \
nf_conntrack_max.\n\
- ss and sock_diag show sockets only. A forwarded or NATed connection has no socket on the host that \
tracks it, so conntrack TIME_WAIT far above socket TIME_WAIT means traffic tracked here whose sockets \
are elsewhere (`list --conntrack` shows the two side by side).\n\n\
When the table is full (nf_conntrack_count reaches nf_conntrack_max), the kernel first tries to evict \
an entry near the new one's hash slot that is closing (TIME_WAIT included) or not yet confirmed \
(counted as early_drop). When none is at hand it drops the packet that would have created the entry, \
counts it as drop and logs \"nf_conntrack: table full, dropping packet\": new connections fail \
while the socket table looks normal.\n\n\
The knobs and what each costs:\n\
- nf_conntrack_max: the most entries a namespace's table may hold (one host-wide value, writable \
only in the initial namespace). Each entry costs about 256 bytes of kernel memory that cannot be \
swapped; raising it far above nf_conntrack_buckets makes every lookup walk longer hash chains.\n\
- nf_conntrack_buckets: the hash table's size (host-wide, writable in the initial namespace); \
8 bytes per bucket.\n\
- nf_conntrack_tcp_timeout_time_wait: per namespace. Lowering it (30 to 60 s is common on busy NAT \
gateways) frees closed connections' entries sooner; the cost is that a late retransmission of a \
closed connection finds no entry and is treated as a new or INVALID packet: dropped by a ctstate \
INVALID rule, or not translated by NAT.\n\
- Exempting traffic from tracking (a NOTRACK or notrack rule in the raw table) removes its entries \
altogether; that traffic then gets no NAT and no stateful matching.";

/// What this namespace's conntrack settings mean, one line each, with the numbers.
pub fn conntrack_here(t: &CtTable) -> Vec<(String, String)> {
    let v = |n: Option<u64>| n.map_or("absent".to_string(), |n| n.to_string());
    let mut out = vec![(
        "nf_conntrack_count".to_string(),
        match (t.loaded, t.count) {
            (false, _) => "absent: nf_conntrack is not loaded in this kernel".to_string(),
            (true, Some(0)) => {
                "0: conntrack not in use in this namespace (its table is empty)".to_string()
            }
            (true, Some(n)) => format!("{n} entries in this namespace's table now"),
            (true, None) => "unreadable".to_string(),
        },
    )];
    out.push((
        "nf_conntrack_max".to_string(),
        match (t.max, t.fill()) {
            (Some(m), Some(f)) => format!(
                "{}: host-wide; this namespace's table is {:.1}% full; at most about {} MiB at 256 bytes an entry",
                m,
                f * 100.0,
                m * 256 / (1024 * 1024)
            ),
            (m, _) => v(m),
        },
    ));
    out.push((
        "nf_conntrack_buckets".to_string(),
        match t.buckets {
            Some(b) => format!("{b}: host-wide hash buckets"),
            None => "absent".to_string(),
        },
    ));
    out.push((
        "nf_conntrack_tcp_timeout_time_wait".to_string(),
        match t.tcp_timeout_time_wait {
            Some(s) => format!("{s} s in this namespace: a closed TCP connection keeps its entry this long (the socket keeps TIME_WAIT 60 s)"),
            None => "absent".to_string(),
        },
    ));
    out.push((
        "nf_conntrack_tcp_timeout_established".to_string(),
        match t.tcp_timeout_established {
            Some(s) => format!("{s} s ({} days) in this namespace: an idle open connection keeps its entry this long", s / 86400),
            None => "absent".to_string(),
        },
    ));
    out
}

/// A sysctl `explain sysctls` reports, and what it governs.
#[derive(Clone, Copy, Debug)]
pub struct KnobText {
    /// Name under net.ipv4.
    pub name: &'static str,
    /// What it governs, whatever its value.
    pub about: &'static str,
}

/// The knobs that decide how teardown and local ports behave.
pub const KNOBS: [KnobText; 9] = [
    KnobText {
        name: "ip_local_port_range",
        about: "the local ports connect() picks from; each destination (peer address and port, from one local address) can use each port once, TIME_WAIT included",
    },
    KnobText {
        name: "ip_local_reserved_ports",
        about: "ports inside the range that connect() never picks",
    },
    KnobText {
        name: "tcp_tw_reuse",
        about: "whether connect() may take over a four-tuple still in TIME_WAIT: 0 never, 1 always, 2 loopback only; outgoing connections only",
    },
    KnobText {
        name: "tcp_tw_reuse_delay",
        about: "how old a TIME_WAIT socket must be before tcp_tw_reuse may take it over, in ms (Linux 6.14+, commit ca6a6f93867a)",
    },
    KnobText {
        name: "tcp_max_tw_buckets",
        about: "the most timewait sockets (TIME_WAIT and orphaned FIN_WAIT2) at once; beyond it, closing connections skip TIME_WAIT and the kernel logs \"TCP: time wait bucket table overflow\"",
    },
    KnobText {
        name: "tcp_fin_timeout",
        about: "seconds an orphaned FIN_WAIT2 socket waits for the peer's FIN; it does not change TIME_WAIT, fixed at 60 s",
    },
    KnobText {
        name: "tcp_max_orphans",
        about: "the most sockets closed by their application but still finishing (FIN_WAIT1, LAST_ACK, CLOSING); beyond it they are reset",
    },
    KnobText {
        name: "tcp_timestamps",
        about: "TCP timestamps; tcp_tw_reuse needs them to tell old segments from new ones",
    },
    KnobText {
        name: "tcp_mem",
        about: "pages of memory all TCP sockets may use: below the first number no pressure, above the second the kernel economizes, at the third it refuses to grow buffers",
    },
];

/// True for a knob the host has once for every namespace (see host::sysctl).
pub fn host_wide(name: &str) -> bool {
    crate::host::sysctl::HOST_WIDE.contains(&name)
}

/// The value of a knob as /proc/sys prints it (whitespace collapsed), or `None` when absent.
pub fn knob_value(s: &Sysctls, name: &str) -> Option<String> {
    match name {
        "ip_local_port_range" => s.ip_local_port_range.map(|(a, b)| format!("{a} {b}")),
        "ip_local_reserved_ports" => s.ip_local_reserved_ports.clone(),
        "tcp_tw_reuse" => s.tcp_tw_reuse.map(|v| v.to_string()),
        "tcp_tw_reuse_delay" => s.tcp_tw_reuse_delay.map(|v| v.to_string()),
        "tcp_max_tw_buckets" => s.tcp_max_tw_buckets.map(|v| v.to_string()),
        "tcp_fin_timeout" => s.tcp_fin_timeout.map(|v| v.to_string()),
        "tcp_max_orphans" => s.tcp_max_orphans.map(|v| v.to_string()),
        "tcp_timestamps" => s.tcp_timestamps.map(|v| v.to_string()),
        "tcp_mem" => s.tcp_mem.clone(),
        _ => None,
    }
}

/// What a knob's value means on this host, in one sentence with its numbers.
pub fn knob_here(s: &Sysctls, name: &str) -> String {
    if host_wide(name) {
        use crate::host::sysctl::HostWide;
        let meaning = knob_meaning(s, name);
        return match s.host_wide {
            HostWide::Here => format!("{meaning} (host-wide: one value for every network namespace)"),
            HostWide::Host => format!(
                "{meaning} (host-wide: this network namespace has no copy of it, so it was read from the host's)"
            ),
            HostWide::Unreadable => "host-wide: this network namespace has no copy of it, and the host's could not be read from here (root in the host's user namespace can)".to_string(),
        };
    }
    knob_meaning(s, name)
}

fn knob_meaning(s: &Sysctls, name: &str) -> String {
    let absent = || format!("absent: this kernel has no {name}");
    match name {
        "ip_local_port_range" => match (s.ip_local_port_range, s.ephemeral_ports()) {
            (Some((lo, hi)), Some(n)) => {
                let per_s = n as f64 / 60.0;
                format!(
                    "ports {lo}-{hi}: {n} usable after reserved ports, so at most {n} connections at once to one destination, \
and with every one ending in TIME_WAIT at most {per_s:.0} new connections per second to it"
                )
            }
            (Some((lo, hi)), None) => format!("ports {lo}-{hi}: an empty range"),
            _ => absent(),
        },
        "ip_local_reserved_ports" => match &s.ip_local_reserved_ports {
            None => absent(),
            Some(v) if v.is_empty() => "none reserved".to_string(),
            Some(v) => match s.ip_local_port_range {
                Some((lo, hi)) => format!(
                    "{v}: {} of them inside the ephemeral range",
                    s.reserved_in_range(lo, hi)
                ),
                None => v.clone(),
            },
        },
        "tcp_tw_reuse" => match s.tcp_tw_reuse {
            None => absent(),
            Some(0) => "0: connect() never takes over a TIME_WAIT four-tuple; a busy client can run out of ports".into(),
            Some(1) => "1: outgoing connections may take over a TIME_WAIT four-tuple to any destination".into(),
            Some(2) => "2 (the default): outgoing connections reuse TIME_WAIT four-tuples on loopback only; other destinations wait the full 60 s".into(),
            Some(v) => format!("{v}: not a value the kernel documents (0, 1 or 2)"),
        },
        "tcp_tw_reuse_delay" => match s.tcp_tw_reuse_delay {
            None => "absent: this kernel (before Linux 6.14, commit ca6a6f93867a) waits a fixed 1 s before tcp_tw_reuse applies".into(),
            Some(ms) => format!("{ms} ms: a TIME_WAIT socket must be this old before connect() may reuse its four-tuple"),
        },
        "tcp_max_tw_buckets" => match s.tcp_max_tw_buckets {
            None => absent(),
            Some(n) => format!(
                "{n}: up to {n} timewait sockets, about {} MiB at 256 bytes each; `list` compares the TIME_WAIT count with it",
                n * 256 / (1024 * 1024)
            ),
        },
        "tcp_fin_timeout" => match s.tcp_fin_timeout {
            None => absent(),
            Some(v) => format!("{v} s: an orphaned FIN_WAIT2 socket is dropped after {v} s; TIME_WAIT still lasts 60 s"),
        },
        "tcp_max_orphans" => match s.tcp_max_orphans {
            None => absent(),
            Some(n) => format!("{n}: up to {n} closed-but-finishing sockets before the kernel resets them"),
        },
        "tcp_mem" => match &s.tcp_mem {
            None => absent(),
            Some(v) => {
                let pages: Vec<u64> = v.split_whitespace().filter_map(|n| n.parse().ok()).collect();
                match pages.as_slice() {
                    [_, pressure, max] => format!(
                        "{v}: TCP economizes above {} MiB and stops growing buffers at {} MiB (4 KiB pages)",
                        pressure * 4 / 1024,
                        max * 4 / 1024
                    ),
                    _ => v.clone(),
                }
            }
        },
        "tcp_timestamps" => match s.tcp_timestamps {
            None => absent(),
            Some(0) => "0: timestamps off, so tcp_tw_reuse cannot reuse TIME_WAIT four-tuples".into(),
            Some(v) => format!("{v}: timestamps on, so tcp_tw_reuse and SO_REUSEADDR reuse of TIME_WAIT four-tuples work"),
        },
        _ => absent(),
    }
}

/// Word-wraps one paragraph to `width` columns, indenting continuation lines by `hang`.
pub fn wrap(text: &str, width: usize, indent: &str, hang: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = String::from(hang);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out
}

/// The long form as plain text wrapped to `width`: paragraphs, and "- " items as a list.
pub fn long_wrapped(s: TcpState, width: usize) -> String {
    paragraphs_wrapped(state(s).long, width)
}

/// Long text (paragraphs separated by a blank line, "- " items as a list) wrapped to `width`.
pub fn paragraphs_wrapped(long: &str, width: usize) -> String {
    let mut out = Vec::new();
    for para in long.split("\n\n") {
        let mut block = Vec::new();
        for line in para.lines() {
            match line.strip_prefix("- ") {
                Some(item) => block.push(wrap(item, width, "  - ", "    ")),
                None => block.push(wrap(line, width, "", "")),
            }
        }
        out.push(block.join("\n"));
    }
    out.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_kernel_order_and_complete() {
        for (i, s) in TcpState::ALL.iter().enumerate() {
            let t = &STATES[i];
            assert_eq!(t.state, *s);
            for field in [t.short, t.who, t.waits_for, t.lasts, t.many, t.long] {
                assert!(!field.trim().is_empty(), "{s}");
            }
        }
    }

    #[test]
    fn wraps_and_lists() {
        let w = wrap("aaa bbb ccc ddd", 7, "", "  ");
        assert_eq!(w, "aaa bbb\n  ccc\n  ddd");
        let tw = long_wrapped(TcpState::TimeWait, 70);
        assert!(
            tw.lines()
                .all(|l| l.chars().count() <= 70 || !l.contains(' ')),
            "{tw}"
        );
        assert!(tw.contains("  - tcp_tw_recycle"));
    }

    /// Every kernel-version claim names the commit it rests on.
    #[test]
    fn version_claims_carry_their_commit() {
        let mut texts: Vec<String> = STATES
            .iter()
            .flat_map(|t| [t.long, t.lasts, t.who, t.many])
            .map(str::to_string)
            .collect();
        texts.extend(KNOBS.iter().map(|k| k.about.to_string()));
        let empty = Sysctls::default();
        texts.extend(KNOBS.iter().map(|k| knob_here(&empty, k.name)));
        let mut claims = 0;
        for t in &texts {
            for (at, _) in t.match_indices("Linux ") {
                let rest = &t[at + 6..];
                if !rest.starts_with(|c: char| c.is_ascii_digit()) {
                    continue;
                }
                claims += 1;
                let near = &t[at..(at + 120).min(t.len())];
                let commit = near.find("commit ").map(|i| &near[i + 7..]);
                assert!(
                    commit.is_some_and(|c| {
                        c.chars().take_while(|c| c.is_ascii_hexdigit()).count() == 12
                    }),
                    "no commit beside the claim: {near}"
                );
            }
        }
        assert!(claims >= 4, "{claims}");
    }

    #[test]
    fn knob_meanings_use_the_values() {
        let s = Sysctls {
            ip_local_port_range: Some((40000, 40099)),
            ip_local_reserved_ports: Some(String::new()),
            tcp_tw_reuse: Some(2),
            tcp_fin_timeout: Some(30),
            ..Sysctls::default()
        };
        assert!(knob_here(&s, "ip_local_port_range").contains("100 usable"));
        assert!(knob_here(&s, "tcp_fin_timeout").starts_with("30 s"));
        assert!(knob_here(&s, "tcp_max_tw_buckets").starts_with("absent"));
        assert!(knob_here(&s, "tcp_tw_reuse_delay").starts_with("absent"));
        assert_eq!(
            knob_value(&s, "ip_local_port_range").as_deref(),
            Some("40000 40099")
        );
        assert_eq!(knob_value(&s, "tcp_timestamps"), None);
    }
}
