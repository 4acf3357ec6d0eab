//! Attribution: state changes → per-process counts, and TIME_WAIT sockets →
//! the process whose close made them.
//!
//! A connection ends in TIME_WAIT on the side that sent the first FIN. That
//! side's socket goes ESTABLISHED → FIN_WAIT1 inside the `close()` or
//! `shutdown()` of the process closing it, so the tracepoint's task is the
//! closer. The step into TIME_WAIT is never traced (the kernel swaps the socket
//! for a minisocket), so the four-tuple seen at FIN_WAIT1 is what links a
//! TIME_WAIT socket that sock_diag reports later back to a process.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::host::identity::{ContainerRef, PodRef};
use crate::socket::{SocketRecord, canonical};
use crate::state::TcpState;
use crate::trace::record::StateChange;

/// A connection's identity from the local side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FourTuple {
    pub local: IpAddr,
    pub local_port: u16,
    pub peer: IpAddr,
    pub peer_port: u16,
}

impl FourTuple {
    /// The same connection seen from its other end.
    pub fn reversed(self) -> FourTuple {
        FourTuple {
            local: self.peer,
            local_port: self.peer_port,
            peer: self.local,
            peer_port: self.local_port,
        }
    }

    pub fn of_socket(r: &SocketRecord) -> FourTuple {
        FourTuple {
            local: canonical(r.local),
            local_port: r.local_port,
            peer: canonical(r.peer),
            peer_port: r.peer_port,
        }
    }
}

/// What an event means for attribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// → FIN_WAIT1: this process closed first with a FIN; the socket will pass TIME_WAIT.
    Active,
    /// CLOSE_WAIT → LAST_ACK: the peer closed first; no TIME_WAIT here.
    Passive,
    /// ESTABLISHED or CLOSE_WAIT → CLOSE: a reset (RST) instead of a FIN, sent
    /// (SO_LINGER 0, or close() with unread data) or received; no TIME_WAIT.
    Abort,
}

/// One active close per connection: the first step into FIN_WAIT1. `close()`
/// after `shutdown(SHUT_WR)` sets FIN_WAIT1 again (FIN_WAIT1 → FIN_WAIT1 in
/// the trace) without a second FIN; counting it made Python's http.server
/// look like it closed up to twice per request.
pub fn classify(e: &StateChange) -> Option<Kind> {
    match (e.old, e.new) {
        (Some(TcpState::FinWait1), Some(TcpState::FinWait1)) => None,
        (_, Some(TcpState::FinWait1)) => Some(Kind::Active),
        (Some(TcpState::CloseWait), Some(TcpState::LastAck)) => Some(Kind::Passive),
        (Some(TcpState::Established | TcpState::CloseWait), Some(TcpState::Close)) => {
            Some(Kind::Abort)
        }
        _ => None,
    }
}

/// A process as the tracer saw it: (pid, command). A pid reused by another
/// program makes a second entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcKey {
    pub pid: u32,
    pub comm: String,
}

#[derive(Clone, Debug, Default)]
pub struct ProcStats {
    pub cgroup: Option<String>,
    /// Inode of its network namespace (`/proc/PID/ns/net`), when it could be read.
    pub netns: Option<u64>,
    /// For a process whose namespace could not be read: a few of its
    /// connections, to find their TIME_WAIT (on either side) in the namespace.
    pub unplaced_tuples: Vec<FourTuple>,
    /// One of those connections has a TIME_WAIT socket in the namespace dumped.
    pub seen_in_netns: bool,
    pub active: u64,
    pub passive: u64,
    pub aborts: u64,
    pub time_wait_now: u64,
    /// Active closes of connections made to this host: per local (listening) port.
    pub local_ports: HashMap<u16, u64>,
    /// Active closes of connections this host made: per destination.
    pub peers: HashMap<(IpAddr, u16), u64>,
}

/// Looks a process up while it may still exist. A seam so tests can feed fixed answers.
pub trait ProcInfo {
    /// The process id of a thread, when the tracer did not record it.
    fn tgid(&mut self, tid: u32) -> Option<u32>;
    /// The process's command (its main thread's).
    fn comm(&mut self, pid: u32) -> Option<String>;
    fn cgroup(&mut self, pid: u32) -> Option<String>;
    /// The inode of the process's network namespace.
    fn netns(&mut self, pid: u32) -> Option<u64>;
}

/// Reads /proc.
pub struct Procfs;

impl ProcInfo for Procfs {
    fn tgid(&mut self, tid: u32) -> Option<u32> {
        let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("Tgid:"))
            .and_then(|v| v.trim().parse().ok())
    }
    fn comm(&mut self, pid: u32) -> Option<String> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some(s.trim_end_matches('\n').to_string())
    }
    fn cgroup(&mut self, pid: u32) -> Option<String> {
        parse_cgroup(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
    }
    fn netns(&mut self, pid: u32) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .ok()
            .map(|m| m.ino())
    }
}

/// The cgroup a person recognises: the unified (v2) path when it is not the
/// root, else the first controller with a non-root path, else `/`.
pub fn parse_cgroup(text: &str) -> Option<String> {
    let entries: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_id, ctrl, path) = (it.next()?, it.next()?, it.next()?);
            Some((ctrl, path))
        })
        .collect();
    if let Some((_, p)) = entries.iter().find(|(c, p)| c.is_empty() && *p != "/") {
        return Some(p.to_string());
    }
    if let Some((_, p)) = entries.iter().find(|(_, p)| *p != "/") {
        return Some(p.to_string());
    }
    entries.first().map(|(_, p)| p.to_string())
}

/// The container id a process's cgroup names, if any.
fn container_of(st: &ProcStats) -> Option<String> {
    crate::host::containers::parse_path(st.cgroup.as_deref()?).container_id
}

/// How long a recorded close can still explain a TIME_WAIT socket, in seconds
/// of trace clock: TIME_WAIT lasts 60 s (TCP_TIMEWAIT_LEN), FIN_WAIT2 before it
/// up to `tcp_fin_timeout` (60 s by default), plus a margin. Older four-tuples
/// are dropped so memory stays bounded on a host closing thousands per second.
pub const CLOSER_TTL_S: f64 = 300.0;

/// Distinct peers (and local ports) kept per process; closes to further ones still count.
pub const MAX_PEERS: usize = 4096;

/// Connections kept per process whose namespace could not be read.
pub const MAX_UNPLACED_TUPLES: usize = 64;

/// Threads whose process is remembered at once.
pub const MAX_THREADS: usize = 1 << 16;

/// The command the tracer prints when its command cache no longer holds the task.
pub const UNNAMED: &str = "<...>";

/// Everything learned from the events of one recording.
#[derive(Default)]
pub struct Attribution {
    pub procs: HashMap<ProcKey, ProcStats>,
    /// Process keys by index, so the per-tuple map stores 4 bytes, not a key.
    keys: Vec<ProcKey>,
    index: HashMap<ProcKey, u32>,
    /// The last process that closed each four-tuple first, and when.
    closers: HashMap<FourTuple, (u32, f64)>,
    /// Process identity per thread id, resolved once (`None`: left out by `--netns`).
    threads: HashMap<(u32, String), Option<u32>>,
    /// Local ports that accept connections: an active close on one of them is
    /// a server closing a client's connection.
    pub server_ports: HashSet<u16>,
    /// With `--netns`: attribute only processes in this namespace (inode).
    /// A process that exited before its namespace could be read (a short-lived
    /// client) is placed there when one of its connections has a TIME_WAIT
    /// socket in that namespace, its own or its peer's (a loopback peer's),
    /// and left out otherwise.
    pub only_netns: Option<u64>,
    /// Active closes by processes in another namespace than `only_netns`.
    pub other_netns_closes: u64,
    /// The process of each thread created while recording.
    thread_of: HashMap<u32, u32>,
    /// Events of threads not placed yet (see `settle`).
    pending: Vec<(StateChange, Kind)>,
    /// The command of each process seen, for its threads' events.
    names: HashMap<u32, String>,
    /// Pids the tracer could not name, and the names their exits gave.
    unnamed: HashSet<u32>,
    exits: HashMap<u32, String>,
    /// The parent of each process created while recording, and whether it
    /// got a network namespace of its own: a process that exits before /proc
    /// shows its cgroup and namespace started in its parent's.
    parent_of: HashMap<u32, (u32, bool)>,
    /// The cgroup each process was last moved to (hierarchy, path), when the
    /// path names a container or pod: how a runtime puts what it starts
    /// into a container.
    moved: HashMap<u32, (i32, String)>,
    /// Processes that ran a new program while recording: one may have entered
    /// another network namespace first (`ip netns exec`), so it does not take
    /// its parent's.
    execed: HashSet<u32>,
    /// Latest trace timestamp seen.
    now: f64,
    pub events: u64,
    /// Resets received from the network: aborts recorded in interrupt context,
    /// which belong to no process.
    pub resets_received: u64,
    pub lost: u64,
    pub unparsed: u64,
    pub unattributed_time_wait: u64,
    pub time_wait_total: u64,
}

impl Attribution {
    pub fn new() -> Attribution {
        Attribution::default()
    }

    /// Who is this thread? The tracer's tgid when it has one, else /proc. The
    /// command is the process's (main thread's) when the event's task is not
    /// the main thread; `<...>` from the tracer is replaced when /proc knows
    /// better, else by the name the process's exit gives. `None` for a process
    /// that `--netns` leaves out.
    fn resolve(&mut self, e: &StateChange, info: &mut dyn ProcInfo) -> Option<u32> {
        let k = (e.tid, e.comm.clone());
        if let Some(i) = self.threads.get(&k) {
            return *i;
        }
        // A thread's creation is authoritative: the tracer has been seen to
        // print a short-lived thread's own id as its process id.
        // A process id equal to the thread's own is checked against /proc
        // while the thread lives.
        let pid = self
            .thread_of
            .get(&e.tid)
            .copied()
            .or(e.tgid.filter(|t| *t != 0 && *t != e.tid))
            .or_else(|| if e.tid == 0 { None } else { info.tgid(e.tid) })
            .or(e.tgid.filter(|t| *t != 0))
            .unwrap_or(e.tid);
        // The live process's name first: the tracer prints a command from a
        // cache that can still hold the name from before an exec (a forked
        // child's parent's name) or a thread's name.
        let comm = match pid {
            0 => e.comm.clone(),
            _ => info
                .comm(pid)
                .or_else(|| self.names.get(&pid).cloned())
                .unwrap_or_else(|| e.comm.clone()),
        };
        if comm != UNNAMED && self.names.len() < MAX_THREADS {
            self.names.entry(pid).or_insert_with(|| comm.clone());
        }
        if comm == UNNAMED {
            self.unnamed.insert(pid);
        }
        let netns = match pid {
            0 => None,
            _ => info.netns(pid).or_else(|| self.traced_netns(pid, info)),
        };
        // A process gone before its namespace was read is kept for now: its
        // TIME_WAIT sockets place it (see `build`).
        if let Some(want) = self.only_netns
            && netns.is_some_and(|n| n != want)
        {
            self.threads.insert(k, None);
            return None;
        }
        let key = ProcKey { pid, comm };
        let idx = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                let cgroup = match pid {
                    0 => None,
                    _ => info.cgroup(pid).or_else(|| self.traced_cgroup(pid, info)),
                };
                self.procs.insert(
                    key.clone(),
                    ProcStats {
                        cgroup,
                        netns,
                        ..ProcStats::default()
                    },
                );
                let i = self.keys.len() as u32;
                self.keys.push(key.clone());
                self.index.insert(key, i);
                i
            }
        };
        self.threads.insert(k, Some(idx));
        Some(idx)
    }

    /// A thread was created: remember its process, for its events whose
    /// process the tracer does not print.
    pub fn on_new_thread(
        &mut self,
        creator: u32,
        creator_tgid: Option<u32>,
        thread: u32,
        info: &mut dyn ProcInfo,
    ) {
        let tgid = creator_tgid
            .filter(|t| *t != 0)
            .or_else(|| self.thread_of.get(&creator).copied())
            .or_else(|| info.tgid(creator))
            .unwrap_or(creator);
        // Bounded: a host spawning threads endlessly forgets the old ones.
        if self.thread_of.len() >= MAX_THREADS {
            self.thread_of.clear();
        }
        self.thread_of.insert(thread, tgid);
    }

    /// A process was created by process `parent` (`new_netns`: with a
    /// network namespace of its own).
    pub fn on_new_process(&mut self, parent: u32, child: u32, new_netns: bool) {
        if self.parent_of.len() >= MAX_THREADS {
            self.parent_of.clear();
        }
        self.parent_of.insert(child, (parent, new_netns));
        // A pid used again is a new process: what the old one did is not its.
        self.moved.remove(&child);
        self.execed.remove(&child);
    }

    /// A process ran a new program.
    pub fn on_exec(&mut self, pid: u32) {
        if self.execed.len() >= MAX_THREADS {
            self.execed.clear();
        }
        self.execed.insert(pid);
    }

    /// The network namespace of a process /proc no longer shows: its
    /// parent's, up to the first ancestor still running, when each one on the
    /// way was only forked: not made with a namespace of its own, not moved
    /// into a container (a runtime's child enters the container's namespace
    /// after it starts), and not running a new program (`ip netns exec` and
    /// `nsenter` enter a namespace, then exec).
    fn traced_netns(&self, pid: u32, info: &mut dyn ProcInfo) -> Option<u64> {
        let mut p = pid;
        for _ in 0..16 {
            if self.moved.contains_key(&p) || self.execed.contains(&p) {
                return None;
            }
            let (parent, new_netns) = *self.parent_of.get(&p)?;
            if new_netns {
                return None;
            }
            if let Some(n) = info.netns(parent) {
                return Some(n);
            }
            p = parent;
        }
        None
    }

    /// A process moved to another cgroup: kept when the path names a
    /// container or pod; a later move elsewhere in the same hierarchy forgets it.
    pub fn on_attach(&mut self, pid: u32, root: i32, path: &str) {
        if !crate::host::containers::parse_path(path).is_empty() {
            if self.moved.len() >= MAX_THREADS {
                self.moved.clear();
            }
            self.moved.insert(pid, (root, path.to_string()));
        } else if self.moved.get(&pid).is_some_and(|(r, _)| *r == root) {
            self.moved.remove(&pid);
        }
    }

    /// The cgroup of a process /proc no longer shows: where it was moved to
    /// while recording, else (it stayed where it started) its parent's, and
    /// so on up to the first ancestor that was moved or is still running.
    fn traced_cgroup(&self, pid: u32, info: &mut dyn ProcInfo) -> Option<String> {
        let mut p = pid;
        for _ in 0..16 {
            if let Some((_, path)) = self.moved.get(&p) {
                return Some(path.clone());
            }
            if p != pid
                && let Some(c) = info.cgroup(p)
            {
                return Some(c);
            }
            p = self.parent_of.get(&p)?.0;
        }
        None
    }

    /// A task exited: keep its command in case the tracer could not name it.
    /// Every exit is kept (bounded), since the per-CPU buffers may deliver an
    /// exit before the close that preceded it on another CPU.
    pub fn on_exit(&mut self, pid: u32, comm: &str) {
        if self.exits.len() >= MAX_THREADS && !self.exits.contains_key(&pid) {
            // Names of exits already matched to a row are not needed again.
            let unnamed = &self.unnamed;
            self.exits.retain(|p, _| unnamed.contains(p));
            if self.exits.len() >= MAX_THREADS {
                self.exits.clear();
            }
        }
        self.exits.insert(pid, comm.to_string());
    }

    /// The command of a row: for a process that exited while recording, the
    /// name it had then (after any exec); else the one seen when it closed.
    pub fn command(&self, k: &ProcKey) -> Option<String> {
        if let Some(c) = self.exits.get(&k.pid) {
            return Some(c.clone());
        }
        if k.comm != UNNAMED {
            return Some(k.comm.clone());
        }
        // Named by another of its events, resolved later.
        self.names.get(&k.pid).cloned()
    }

    pub fn on_event(&mut self, e: &StateChange, info: &mut dyn ProcInfo) {
        let Some(kind) = classify(e) else { return };
        self.events += 1;
        self.now = self.now.max(e.timestamp);
        if kind == Kind::Abort && e.irq {
            self.resets_received += 1;
            return;
        }
        // A task the tracer could not place (no process id, or its own id,
        // which it prints for some short-lived threads), already gone from
        // /proc: its creation may still be on its way from another CPU's
        // buffer. Decided in `settle`.
        let unplaced = e.tgid.is_none_or(|t| t == 0 || t == e.tid)
            && e.tid != 0
            && !self.threads.contains_key(&(e.tid, e.comm.clone()))
            && !self.thread_of.contains_key(&e.tid);
        if unplaced && self.pending.len() < MAX_THREADS && info.tgid(e.tid).is_none() {
            self.pending.push((e.clone(), kind));
            return;
        }
        self.apply(e, kind, info);
    }

    /// Attributes the events put aside by `on_event`, with what was learnt since.
    pub fn settle(&mut self, info: &mut dyn ProcInfo) {
        for (e, kind) in std::mem::take(&mut self.pending) {
            self.apply(&e, kind, info);
        }
        // Cgroups of processes that exited first, from what was traced since
        // (events of other CPUs can arrive late).
        let missing: Vec<ProcKey> = self
            .procs
            .iter()
            .filter(|(k, st)| st.cgroup.is_none() && k.pid != 0)
            .map(|(k, _)| k.clone())
            .collect();
        for k in missing {
            let c = self.traced_cgroup(k.pid, info);
            if let Some(st) = self.procs.get_mut(&k) {
                st.cgroup = c;
            }
        }
        // With --netns, a gone process is placed by its TIME_WAIT sockets instead.
        let missing: Vec<ProcKey> = self
            .procs
            .iter()
            .filter(|(k, st)| st.netns.is_none() && k.pid != 0 && self.only_netns.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        for k in missing {
            let n = self.traced_netns(k.pid, info);
            if let Some(st) = self.procs.get_mut(&k) {
                st.netns = n;
            }
        }
        // Still unknown (a runtime's child, gone): the namespace of the
        // processes seen in the same container, as `exec` into a container
        // joins its namespaces.
        if self.only_netns.is_none() {
            let mut of_container: HashMap<String, u64> = HashMap::new();
            for st in self.procs.values() {
                if let (Some(n), Some(id)) = (st.netns, container_of(st)) {
                    of_container.entry(id).or_insert(n);
                }
            }
            for st in self.procs.values_mut() {
                if st.netns.is_none() {
                    st.netns = container_of(st).and_then(|id| of_container.get(&id).copied());
                }
            }
        }
    }

    fn apply(&mut self, e: &StateChange, kind: Kind, info: &mut dyn ProcInfo) {
        let Some(idx) = self.resolve(e, info) else {
            self.other_netns_closes += u64::from(kind == Kind::Active);
            return;
        };
        let server = self.server_ports.contains(&e.local_port);
        let Some(st) = self.procs.get_mut(&self.keys[idx as usize]) else {
            return;
        };
        if st.netns.is_none() && st.unplaced_tuples.len() < MAX_UNPLACED_TUPLES {
            st.unplaced_tuples.push(FourTuple {
                local: e.local,
                local_port: e.local_port,
                peer: e.peer,
                peer_port: e.peer_port,
            });
        }
        match kind {
            Kind::Active => {
                st.active += 1;
                if server {
                    let port = e.local_port;
                    if st.local_ports.len() < MAX_PEERS || st.local_ports.contains_key(&port) {
                        *st.local_ports.entry(port).or_default() += 1;
                    }
                } else {
                    let peer = (e.peer, e.peer_port);
                    if st.peers.len() < MAX_PEERS || st.peers.contains_key(&peer) {
                        *st.peers.entry(peer).or_default() += 1;
                    }
                }
                let t = FourTuple {
                    local: e.local,
                    local_port: e.local_port,
                    peer: e.peer,
                    peer_port: e.peer_port,
                };
                self.closers.insert(t, (idx, e.timestamp));
            }
            Kind::Passive => st.passive += 1,
            Kind::Abort => st.aborts += 1,
        }
    }

    /// Forgets closes too old to explain any TIME_WAIT socket still present.
    /// Call [`Attribution::settle`] first.
    pub fn prune(&mut self) {
        let horizon = self.now - CLOSER_TTL_S;
        self.closers.retain(|_, (_, ts)| *ts >= horizon);
    }

    #[cfg(test)]
    /// Four-tuples remembered for matching.
    pub fn remembered(&self) -> usize {
        self.closers.len()
    }

    /// Matches the TIME_WAIT sockets present now to the closes recorded
    /// (replacing what an earlier match found).
    pub fn match_time_wait(&mut self, sockets: &[SocketRecord]) {
        self.time_wait_total = 0;
        self.unattributed_time_wait = 0;
        for st in self.procs.values_mut() {
            st.time_wait_now = 0;
        }
        if self.procs.values().any(|st| !st.unplaced_tuples.is_empty()) {
            let present: HashSet<FourTuple> = sockets
                .iter()
                .filter(|s| s.state == TcpState::TimeWait)
                .map(FourTuple::of_socket)
                .collect();
            for st in self.procs.values_mut() {
                st.seen_in_netns = st
                    .unplaced_tuples
                    .iter()
                    .any(|t| present.contains(t) || present.contains(&t.reversed()));
            }
        }
        for s in sockets.iter().filter(|s| s.state == TcpState::TimeWait) {
            self.time_wait_total += 1;
            let owner = self
                .closers
                .get(&FourTuple::of_socket(s))
                .map(|(i, _)| &self.keys[*i as usize]);
            match owner.and_then(|k| self.procs.get_mut(k)) {
                Some(st) => st.time_wait_now += 1,
                None => self.unattributed_time_wait += 1,
            }
        }
    }
}

/// What a row of `who` stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// One row per command (and network namespace): 300 runs of `curl` are one row.
    Command,
    /// One row per process.
    Pid,
}

/// The JSON contract of `who`.
#[derive(Serialize, Debug, Clone)]
pub struct WhoReport {
    pub duration_s: f64,
    /// `command` (the default) or `pid`.
    pub by: By,
    pub lost_events: u64,
    pub processes: Vec<ProcessReport>,
    pub unattributed_time_wait: u64,
    pub time_wait_total: u64,
    /// Resets received from peers (not counted against any process).
    pub resets_received: u64,
    /// Rows left out by --top.
    pub processes_omitted: usize,
    /// Connections closed first with a FIN, over every row (one per connection).
    pub active_closes: u64,
    /// Connections ended with a reset sent instead of a FIN, over every row.
    pub aborts: u64,
    pub unparsed_records: u64,
    /// With `--netns`: the namespace whose processes are attributed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// With `--netns`: active closes by processes elsewhere (or gone before
    /// their namespace could be read), left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_netns_closes: Option<u64>,
    pub note: &'static str,
}

#[derive(Serialize, Debug, Clone)]
pub struct ProcessReport {
    /// The process; with `--by command`, the one of the command that closed most.
    pub pid: u32,
    /// The command, or `?` when the process exited before it could be named.
    pub comm: String,
    /// Why `comm` is `?`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm_note: Option<&'static str>,
    /// The processes of the row, lowest first (at most [`MAX_PIDS`]).
    pub pids: Vec<u32>,
    /// How many processes the row sums.
    pub process_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The container its cgroup names (filled in by the command, from the runtimes' files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerRef>,
    /// The pod its cgroup names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
    /// Connections closed first with a FIN (one per connection); these make TIME_WAIT here.
    pub active_closes: u64,
    /// Connections ended with a reset sent instead (SO_LINGER 0, unread data): no TIME_WAIT.
    pub aborts: u64,
    pub passive_closes: u64,
    pub rate_per_s: f64,
    pub time_wait_now: u64,
    /// Active closes of connections to this host, by local (listening) port.
    pub top_local_ports: Vec<LocalPortReport>,
    /// Active closes of connections this host made, by destination.
    pub top_peers: Vec<PeerReport>,
    /// The process's network namespace, when it is not the caller's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// Serialises as a plain string (`127.0.0.1`, `::1`).
    pub peer: IpAddr,
    pub peer_port: u16,
    pub count: u64,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct LocalPortReport {
    pub port: u16,
    pub count: u64,
}

/// What attribution means, for the table's footer and the JSON `note`.
pub const NOTE: &str = "Attribution: a TIME_WAIT socket belongs to the process that closed the connection first \
with a FIN (its ESTABLISHED->FIN_WAIT1 step, traced in that process's close() or shutdown(); counted once per \
connection). Passive closes (CLOSE_WAIT->LAST_ACK) leave no TIME_WAIT on this host. Aborts are connections this \
process ended with a reset instead of a FIN (SO_LINGER 0, or close with unread data): they skip TIME_WAIT on both \
sides, and the peer sees ECONNRESET. Resets received from peers belong to no process and are counted apart. \
A process that exited is still listed by pid and command. TIME_WAIT made before recording began cannot be \
attributed and is counted as unattributed; sockets closed during recording may already have left TIME_WAIT.";

/// How many peers and local ports each row lists.
pub const TOP_PEERS: usize = 5;
/// How many pids a row lists.
pub const MAX_PIDS: usize = 20;

/// Why a command reads `?`.
pub const COMM_UNKNOWN: &str = "exited before the tracer or /proc could name it";

fn top_of<K: Ord + Copy>(m: &HashMap<K, u64>) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = m.iter().map(|(k, n)| (*k, *n)).collect();
    v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    v.truncate(TOP_PEERS);
    v
}

/// One row before it is cut to the top ones.
struct Row {
    pid: u32,
    pid_closes: u64,
    comm: String,
    comm_note: Option<&'static str>,
    pids: Vec<u32>,
    cgroup: Option<String>,
    netns: Option<String>,
    active: u64,
    aborts: u64,
    passive: u64,
    time_wait: u64,
    local_ports: HashMap<u16, u64>,
    peers: HashMap<(IpAddr, u16), u64>,
}

impl Row {
    fn absorb(&mut self, o: Row) {
        if o.pid_closes > self.pid_closes || (o.pid_closes == self.pid_closes && o.pid < self.pid) {
            self.pid = o.pid;
            self.pid_closes = o.pid_closes;
            self.cgroup = o.cgroup;
        }
        self.pids.extend(o.pids);
        self.active += o.active;
        self.aborts += o.aborts;
        self.passive += o.passive;
        self.time_wait += o.time_wait;
        for (k, n) in o.local_ports {
            *self.local_ports.entry(k).or_default() += n;
        }
        for (k, n) in o.peers {
            *self.peers.entry(k).or_default() += n;
        }
    }
}

impl WhoReport {
    /// Busiest first (active closes, then TIME_WAIT, then pid); `top` 0 keeps
    /// all. `label` names a namespace inode that is not the caller's (`None`
    /// for the caller's own).
    pub fn build(
        a: &Attribution,
        duration_s: f64,
        top: usize,
        by: By,
        label: &dyn Fn(u64) -> Option<String>,
    ) -> WhoReport {
        // With --netns, a process whose namespace could not be read counts
        // when one of its connections has a TIME_WAIT socket, on either side,
        // in that namespace.
        let placed = |st: &ProcStats| {
            a.only_netns.is_none() || st.netns.is_some() || st.time_wait_now > 0 || st.seen_in_netns
        };
        let unplaced: u64 = a
            .procs
            .values()
            .filter(|st| !placed(st))
            .map(|st| st.active)
            .sum();
        let per_pid = a.procs.iter().filter(|(_, st)| placed(st)).map(|(k, st)| {
            let (comm, comm_note) = match a.command(k) {
                Some(c) => (c, None),
                None => ("?".to_string(), Some(COMM_UNKNOWN)),
            };
            Row {
                pid: k.pid,
                pid_closes: st.active,
                comm,
                comm_note,
                pids: vec![k.pid],
                cgroup: st.cgroup.clone(),
                netns: st.netns.or(a.only_netns).and_then(label),
                active: st.active,
                aborts: st.aborts,
                passive: st.passive,
                time_wait: st.time_wait_now,
                local_ports: st.local_ports.clone(),
                peers: st.peers.clone(),
            }
        });
        let rows: Vec<Row> = {
            // By pid, a process seen under two names (before and after an
            // exec) is one row under its final name.
            // By command, one row per container too: the containers of a
            // pod share a namespace, and may run the same command.
            type Key = (Option<u32>, String, Option<String>, Option<String>);
            let mut m: HashMap<Key, Row> = HashMap::new();
            for r in per_pid {
                let pid = (by == By::Pid).then_some(r.pid);
                let container = r
                    .cgroup
                    .as_deref()
                    .and_then(|c| crate::host::containers::parse_path(c).container_id);
                match m.entry((pid, r.comm.clone(), r.netns.clone(), container)) {
                    std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().absorb(r),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(r);
                    }
                }
            }
            m.into_values().collect()
        };
        let mut rows: Vec<ProcessReport> = rows
            .into_iter()
            .map(|mut r| {
                r.pids.sort_unstable();
                r.pids.dedup();
                let count = r.pids.len() as u64;
                r.pids.truncate(MAX_PIDS);
                ProcessReport {
                    pid: r.pid,
                    comm: r.comm,
                    comm_note: r.comm_note,
                    pids: r.pids,
                    process_count: count,
                    cgroup: r.cgroup,
                    container: None,
                    pod: None,
                    active_closes: r.active,
                    aborts: r.aborts,
                    passive_closes: r.passive,
                    rate_per_s: if duration_s > 0.0 {
                        round2(r.active as f64 / duration_s)
                    } else {
                        0.0
                    },
                    time_wait_now: r.time_wait,
                    top_local_ports: top_of(&r.local_ports)
                        .into_iter()
                        .map(|(port, count)| LocalPortReport { port, count })
                        .collect(),
                    top_peers: top_of(&r.peers)
                        .into_iter()
                        .map(|((peer, peer_port), count)| PeerReport {
                            peer,
                            peer_port,
                            count,
                        })
                        .collect(),
                    netns: r.netns,
                }
            })
            .collect();
        rows.sort_by(|x, y| {
            (
                y.active_closes,
                y.time_wait_now,
                y.aborts + y.passive_closes,
            )
                .cmp(&(
                    x.active_closes,
                    x.time_wait_now,
                    x.aborts + x.passive_closes,
                ))
                .then(x.comm.cmp(&y.comm))
                .then(x.pid.cmp(&y.pid))
        });
        let active_closes = rows.iter().map(|r| r.active_closes).sum();
        let aborts = rows.iter().map(|r| r.aborts).sum();
        let omitted = if top > 0 && rows.len() > top {
            rows.len() - top
        } else {
            0
        };
        if top > 0 {
            rows.truncate(top);
        }
        WhoReport {
            duration_s: round2(duration_s),
            by,
            lost_events: a.lost,
            processes: rows,
            unattributed_time_wait: a.unattributed_time_wait,
            time_wait_total: a.time_wait_total,
            resets_received: a.resets_received,
            processes_omitted: omitted,
            active_closes,
            aborts,
            unparsed_records: a.unparsed,
            netns: None,
            other_netns_closes: a.only_netns.map(|_| a.other_netns_closes + unplaced),
            note: NOTE,
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::Family;
    use crate::trace::record::{Line, parse_line};

    /// Fixed answers instead of /proc.
    struct Fixed;
    impl ProcInfo for Fixed {
        fn tgid(&mut self, tid: u32) -> Option<u32> {
            (tid == 501).then_some(500)
        }
        fn comm(&mut self, pid: u32) -> Option<String> {
            (pid == 500).then(|| "server".to_string())
        }
        fn cgroup(&mut self, _pid: u32) -> Option<String> {
            Some("/test.slice".into())
        }
        fn netns(&mut self, pid: u32) -> Option<u64> {
            // Pid 77 lives in namespace 9; pid 78 is gone; the rest in 1.
            match pid {
                77 => Some(9),
                78 => None,
                _ => Some(1),
            }
        }
    }

    fn none(_: u64) -> Option<String> {
        None
    }

    fn row_of<'a>(r: &'a WhoReport, comm: &str) -> &'a ProcessReport {
        r.processes.iter().find(|p| p.comm == comm).unwrap()
    }

    fn change(
        comm: &str,
        tid: u32,
        tgid: Option<u32>,
        old: TcpState,
        new: TcpState,
        lport: u16,
    ) -> StateChange {
        StateChange {
            comm: comm.into(),
            tid,
            tgid,
            cpu: 0,
            irq: false,
            timestamp: 1.0,
            old: Some(old),
            new: Some(new),
            local: "127.0.0.1".parse().unwrap(),
            local_port: lport,
            peer: "127.0.0.2".parse().unwrap(),
            peer_port: 80,
        }
    }

    /// Only pid 100 (a server's main process, in container A) is still running.
    struct Gone;
    const A: &str = "/docker/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str =
        "/libpod_parent/libpod-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    impl ProcInfo for Gone {
        fn tgid(&mut self, _: u32) -> Option<u32> {
            None
        }
        fn comm(&mut self, _: u32) -> Option<String> {
            None
        }
        fn cgroup(&mut self, pid: u32) -> Option<String> {
            (pid == 100).then(|| A.to_string())
        }
        fn netns(&mut self, pid: u32) -> Option<u64> {
            (pid == 100).then_some(7)
        }
    }

    #[test]
    fn exited_processes_take_the_cgroup_they_were_moved_to_or_their_parents() {
        use TcpState::*;
        let mut a = Attribution::new();
        let g = &mut Gone;
        // A forked worker (101, a child of 100) and its own child (102) exit
        // before /proc is read: they are in 100's cgroup.
        a.on_new_process(100, 101, false);
        a.on_new_process(101, 102, false);
        a.on_event(
            &change("httpd", 101, Some(101), Established, FinWait1, 1),
            g,
        );
        a.on_event(&change("cgi", 102, Some(102), Established, FinWait1, 2), g);
        // A process a runtime started (parent 1, outside) and moved into container B.
        a.on_new_process(1, 200, false);
        a.on_attach(200, 0, B);
        a.on_attach(200, 3, "/");
        a.on_event(&change("wget", 200, Some(200), Established, FinWait1, 3), g);
        // Moved in, then out again in the same hierarchy: not in B any more.
        a.on_attach(300, 0, B);
        a.on_attach(300, 0, "/system.slice/x.service");
        a.on_event(&change("left", 300, Some(300), Established, FinWait1, 4), g);
        // A child that ran a program (`ip netns exec` enters a namespace,
        // then execs): its cgroup is still its parent's, its namespace unknown.
        a.on_new_process(100, 700, false);
        a.on_exec(700);
        a.on_event(&change("curl", 700, Some(700), Established, FinWait1, 8), g);
        // Events seen before the process's creation (another CPU's buffer):
        // settled once it arrives.
        a.on_event(&change("late", 400, Some(400), Established, FinWait1, 5), g);
        a.on_new_process(100, 400, false);
        a.settle(g);
        let r = WhoReport::build(&a, 1.0, 0, By::Pid, &none);
        let cg = |c: &str| row_of(&r, c).cgroup.clone();
        assert_eq!(cg("httpd").as_deref(), Some(A));
        assert_eq!(cg("cgi").as_deref(), Some(A));
        assert_eq!(cg("wget").as_deref(), Some(B));
        assert_eq!(cg("left"), None, "never guessed");
        assert_eq!(cg("late").as_deref(), Some(A));
        // The namespace likewise: the parent's, but not across a move into a
        // container (a runtime's child enters the container's namespace later).
        let label = |ino: u64| Some(format!("net:[{ino}]"));
        let r = WhoReport::build(&a, 1.0, 0, By::Pid, &label);
        let ns = |c: &str| row_of(&r, c).netns.clone();
        assert_eq!(ns("httpd").as_deref(), Some("net:[7]"));
        assert_eq!(ns("cgi").as_deref(), Some("net:[7]"));
        assert_eq!(ns("late").as_deref(), Some("net:[7]"));
        // Not from its parent, but from the other processes of its container.
        assert_eq!(ns("curl").as_deref(), Some("net:[7]"));
        assert_eq!(cg("curl").as_deref(), Some(A));
        assert_eq!(ns("wget"), None, "nothing else seen in container B");
        // Another process seen in container B gives B's namespace to the gone one.
        struct InB;
        impl ProcInfo for InB {
            fn tgid(&mut self, _: u32) -> Option<u32> {
                None
            }
            fn comm(&mut self, _: u32) -> Option<String> {
                None
            }
            fn cgroup(&mut self, pid: u32) -> Option<String> {
                (pid == 600).then(|| B.to_string())
            }
            fn netns(&mut self, pid: u32) -> Option<u64> {
                (pid == 600).then_some(8)
            }
        }
        a.on_event(
            &change("sh", 600, Some(600), Established, FinWait1, 7),
            &mut InB,
        );
        a.settle(&mut InB);
        let r = WhoReport::build(&a, 1.0, 0, By::Pid, &label);
        assert_eq!(row_of(&r, "wget").netns.as_deref(), Some("net:[8]"));
        // A child made with a namespace of its own is not in its parent's.
        let mut b = Attribution::new();
        b.on_new_process(100, 500, true);
        b.on_event(
            &change("unshared", 500, Some(500), Established, FinWait1, 6),
            g,
        );
        // Nor one that ran a program (`ip netns exec` enters a namespace, then
        // execs), with nothing else known in its container.
        b.on_new_process(100, 501, false);
        b.on_exec(501);
        b.on_event(&change("curl", 501, Some(501), Established, FinWait1, 9), g);
        b.settle(g);
        let r = WhoReport::build(&b, 1.0, 0, By::Pid, &label);
        assert_eq!(
            row_of(&r, "curl").netns,
            None,
            "after an exec, never guessed"
        );
        assert_eq!(row_of(&r, "unshared").netns, None);
    }

    #[test]
    fn by_command_one_row_per_container() {
        use TcpState::*;
        let mut a = Attribution::new();
        let g = &mut Gone;
        a.on_attach(10, 0, A);
        a.on_attach(11, 0, B);
        a.on_attach(12, 0, B);
        for (pid, port) in [(10, 1), (11, 2), (12, 3)] {
            a.on_event(
                &change("curl", pid, Some(pid), Established, FinWait1, port),
                g,
            );
        }
        a.settle(g);
        let r = WhoReport::build(&a, 1.0, 0, By::Command, &none);
        let mut rows: Vec<(Option<String>, u64)> = r
            .processes
            .iter()
            .map(|p| (p.cgroup.clone(), p.active_closes))
            .collect();
        rows.sort();
        assert_eq!(rows, vec![(Some(A.into()), 1), (Some(B.into()), 2)]);
    }

    #[test]
    fn counts_and_matches() {
        let mut a = Attribution::new();
        let f = &mut Fixed;
        use TcpState::*;
        a.on_event(
            &change("curl", 10, Some(10), Established, FinWait1, 40000),
            f,
        );
        a.on_event(
            &change("curl", 10, Some(10), Established, FinWait1, 40001),
            f,
        );
        a.on_event(&change("curl", 10, Some(10), Established, Close, 40002), f);
        // A worker thread (tid 501, no tgid from the tracer) of process 500, named "server".
        a.on_event(
            &change("worker-3", 501, None, Established, FinWait1, 40003),
            f,
        );
        a.on_event(&change("worker-3", 501, None, CloseWait, LastAck, 40004), f);
        a.on_event(&change("x", 12, Some(12), SynSent, Close, 40005), f);
        a.settle(f);
        let mut tw = SocketRecord::blank(Family::V6, TimeWait);
        tw.local = "::ffff:127.0.0.1".parse().unwrap();
        tw.local_port = 40000;
        tw.peer = "::ffff:127.0.0.2".parse().unwrap();
        tw.peer_port = 80;
        let mut other = tw;
        other.local_port = 1234;
        let mut est = tw;
        est.state = Established;
        a.match_time_wait(&[tw, other, est]);
        let r = WhoReport::build(&a, 2.0, 0, By::Pid, &none);
        assert_eq!(r.processes.len(), 2);
        let curl = &r.processes[0];
        assert_eq!(
            (
                curl.pid,
                curl.comm.as_str(),
                curl.active_closes,
                curl.aborts,
                curl.time_wait_now
            ),
            (10, "curl", 2, 1, 1)
        );
        assert_eq!(curl.rate_per_s, 1.0);
        assert_eq!(
            curl.top_peers,
            vec![PeerReport {
                peer: "127.0.0.2".parse().unwrap(),
                peer_port: 80,
                count: 2
            }]
        );
        let srv = &r.processes[1];
        assert_eq!(
            (
                srv.pid,
                srv.comm.as_str(),
                srv.active_closes,
                srv.passive_closes
            ),
            (500, "server", 1, 1)
        );
        assert_eq!(srv.cgroup.as_deref(), Some("/test.slice"));
        assert_eq!((r.unattributed_time_wait, r.time_wait_total), (1, 2));
        // Pruning keeps recent closes and forgets old ones.
        let mut late = change("curl", 10, Some(10), Established, FinWait1, 40009);
        late.timestamp = 1.0 + CLOSER_TTL_S + 1.0;
        a.on_event(&late, f);
        a.settle(f);
        assert_eq!(a.remembered(), 4);
        a.prune();
        assert_eq!(a.remembered(), 1);
        let top1 = WhoReport::build(&a, 2.0, 1, By::Pid, &none);
        assert_eq!((top1.processes.len(), top1.processes_omitted), (1, 1));
    }

    #[test]
    fn fixture_events_attribute() {
        let mut a = Attribution::new();
        for l in include_str!("../../tests/fixtures/trace/trace_pipe.txt").lines() {
            if let Ok(Line::Event(e)) = parse_line(l, "inet_sock_set_state") {
                a.on_event(&e, &mut Fixed);
            }
        }
        a.settle(&mut Fixed);
        let sum = |f: fn(&ProcStats) -> u64| -> u64 { a.procs.values().map(f).sum() };
        assert_eq!(
            (sum(|s| s.active), sum(|s| s.passive), sum(|s| s.aborts)),
            (4, 4, 1)
        );
        assert_eq!(a.resets_received, 1);
        let mut pids: Vec<u32> = a.procs.keys().map(|k| k.pid).collect();
        pids.sort();
        assert_eq!(pids, vec![11440, 17266]);
        // A thread (19849) with the tgid the tracer recorded (19731) counts for the process.
        let mut t = change(
            "prometheus_outp",
            19849,
            Some(19731),
            TcpState::Established,
            TcpState::FinWait1,
            1,
        );
        t.comm = "prometheus_outp".into();
        a.on_event(&t, &mut Fixed);
        assert!(a.procs.keys().any(|k| k.pid == 19731) && !a.procs.keys().any(|k| k.pid == 19849));
    }

    #[test]
    fn one_active_close_per_connection() {
        use TcpState::*;
        let f = &mut Fixed;
        let mut a = Attribution::new();
        // shutdown(SHUT_WR), then close(): FIN_WAIT1 twice, one connection.
        a.on_event(
            &change("python3", 10, Some(10), Established, FinWait1, 8000),
            f,
        );
        a.on_event(
            &change("python3", 10, Some(10), FinWait1, FinWait1, 8000),
            f,
        );
        a.settle(f);
        let st = a.procs.values().next().unwrap();
        assert_eq!(st.active, 1);
    }

    #[test]
    fn rows_per_command_server_ports_and_exits() {
        use TcpState::*;
        let f = &mut Fixed;
        let mut a = Attribution::new();
        a.server_ports.insert(8080);
        // Three short-lived curl processes, one of them named only by its exit.
        for (pid, comm) in [(20, "curl"), (21, "curl"), (22, UNNAMED)] {
            let mut e = change(
                comm,
                pid,
                Some(pid),
                Established,
                FinWait1,
                40000 + pid as u16,
            );
            e.peer_port = 443;
            a.on_event(&e, f);
        }
        a.on_exit(22, "curl");
        // A server closing two clients' connections on its port 8080.
        for cport in [50000, 50001] {
            let mut e = change("nginx", 30, Some(30), Established, FinWait1, 8080);
            e.peer_port = cport;
            a.on_event(&e, f);
        }
        // Someone never named.
        a.on_event(
            &change(UNNAMED, 40, Some(40), Established, FinWait1, 40100),
            f,
        );
        a.settle(f);
        let r = WhoReport::build(&a, 1.0, 0, By::Command, &none);
        let row = |c: &str| r.processes.iter().find(|p| p.comm == c).unwrap();
        let curl = row("curl");
        assert_eq!((curl.active_closes, curl.process_count), (3, 3));
        assert_eq!(curl.pids, vec![20, 21, 22]);
        assert_eq!(curl.top_peers[0].count, 3);
        assert!(curl.top_local_ports.is_empty());
        let nginx = row("nginx");
        assert_eq!(
            nginx.top_local_ports,
            vec![LocalPortReport {
                port: 8080,
                count: 2
            }]
        );
        assert!(
            nginx.top_peers.is_empty(),
            "no client ephemeral ports for a server"
        );
        let unknown = row("?");
        assert_eq!(unknown.comm_note, Some(COMM_UNKNOWN));
        assert!(r.processes.iter().all(|p| p.comm != UNNAMED));
        let by_pid = WhoReport::build(&a, 1.0, 0, By::Pid, &none);
        assert_eq!(by_pid.processes.len(), 5);
    }

    #[test]
    fn a_thread_the_tracer_could_not_place_counts_for_its_process() {
        use TcpState::*;
        let f = &mut Fixed;
        let mut a = Attribution::new();
        a.on_new_thread(600, Some(600), 601, f);
        a.on_event(
            &change("python3", 600, Some(600), Established, FinWait1, 1),
            f,
        );
        a.on_event(&change(UNNAMED, 601, None, Established, FinWait1, 2), f);
        // A thread's close read before its creation (another CPU's buffer),
        // and printed with its own id as its process's.
        a.on_event(
            &change(UNNAMED, 602, Some(602), Established, FinWait1, 3),
            f,
        );
        a.on_new_thread(600, Some(600), 602, f);
        a.settle(f);
        let r = WhoReport::build(&a, 1.0, 0, By::Pid, &none);
        assert_eq!(r.processes.len(), 1, "{:?}", r.processes);
        assert_eq!((r.processes[0].pid, r.processes[0].active_closes), (600, 3));
    }

    #[test]
    fn netns_filter_and_labels() {
        use TcpState::*;
        let f = &mut Fixed;
        let mut a = Attribution::new();
        a.only_netns = Some(9);
        a.on_event(&change("inside", 77, Some(77), Established, FinWait1, 1), f);
        a.on_event(
            &change("outside", 76, Some(76), Established, FinWait1, 2),
            f,
        );
        a.on_event(&change("gone", 78, Some(78), Established, FinWait1, 3), f);
        a.settle(f);
        let label = |ino: u64| (ino != 1).then(|| format!("net:[{ino}]"));
        let r = WhoReport::build(&a, 1.0, 0, By::Command, &label);
        assert_eq!(r.processes.len(), 1);
        assert_eq!(r.processes[0].comm, "inside");
        assert_eq!(r.processes[0].netns.as_deref(), Some("net:[9]"));
        assert_eq!(r.other_netns_closes, Some(2));
        // The gone process's close left a TIME_WAIT in the namespace: it was there.
        let mut tw = SocketRecord::blank(Family::V4, TimeWait);
        tw.local = "127.0.0.1".parse().unwrap();
        tw.local_port = 3;
        tw.peer = "127.0.0.2".parse().unwrap();
        tw.peer_port = 80;
        a.match_time_wait(&[tw]);
        let r = WhoReport::build(&a, 1.0, 0, By::Command, &label);
        assert_eq!(r.processes.len(), 2, "{:?}", r.processes);
        assert_eq!(row_of(&r, "gone").netns.as_deref(), Some("net:[9]"));
        assert_eq!(r.other_netns_closes, Some(1));
        // A gone client whose close was passive: placed by the server's TIME_WAIT.
        let mut passive = change("client", 78, Some(78), CloseWait, LastAck, 5);
        passive.tid = 78;
        a.on_event(&passive, f);
        a.settle(f);
        let mut server_tw = tw;
        server_tw.local = "127.0.0.2".parse().unwrap();
        server_tw.local_port = 80;
        server_tw.peer = "127.0.0.1".parse().unwrap();
        server_tw.peer_port = 5;
        a.match_time_wait(&[tw, server_tw]);
        let r = WhoReport::build(&a, 1.0, 0, By::Pid, &label);
        assert!(
            r.processes
                .iter()
                .any(|p| p.pid == 78 && p.passive_closes == 1),
            "{:?}",
            r.processes
        );
    }

    #[test]
    fn cgroups() {
        assert_eq!(
            parse_cgroup("0::/system.slice/nginx.service\n").as_deref(),
            Some("/system.slice/nginx.service")
        );
        assert_eq!(
            parse_cgroup("4:memory:/docker/abc\n0::/\n").as_deref(),
            Some("/docker/abc")
        );
        assert_eq!(parse_cgroup("0::/\n").as_deref(), Some("/"));
        assert_eq!(parse_cgroup(""), None);
    }
}
