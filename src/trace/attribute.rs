//! Attribution: state changes → per-process counts, and TIME_WAIT sockets →
//! the process whose close made them.
//!
//! A connection ends in TIME_WAIT on the side that sent the first FIN. That
//! side's socket goes ESTABLISHED → FIN_WAIT1 inside the `close()` or
//! `shutdown()` of the process closing it, so the tracepoint's task is the
//! closer. The step into TIME_WAIT is never traced (the kernel swaps the socket
//! for a minisocket), so the four-tuple seen at FIN_WAIT1 is what links a
//! TIME_WAIT socket that sock_diag reports later back to a process.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

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
    /// → FIN_WAIT1: this process closed first; the socket will pass TIME_WAIT.
    Active,
    /// CLOSE_WAIT → LAST_ACK: the peer closed first; no TIME_WAIT here.
    Passive,
    /// ESTABLISHED or CLOSE_WAIT → CLOSE: a reset, sent or received.
    Abort,
}

pub fn classify(e: &StateChange) -> Option<Kind> {
    match (e.old, e.new) {
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
    pub active: u64,
    pub passive: u64,
    pub aborts: u64,
    pub time_wait_now: u64,
    pub peers: HashMap<(IpAddr, u16), u64>,
}

/// Looks a process up while it may still exist. A seam so tests can feed fixed answers.
pub trait ProcInfo {
    /// The process id of a thread, when the tracer did not record it.
    fn tgid(&mut self, tid: u32) -> Option<u32>;
    /// The process's command (its main thread's).
    fn comm(&mut self, pid: u32) -> Option<String>;
    fn cgroup(&mut self, pid: u32) -> Option<String>;
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

/// How long a recorded close can still explain a TIME_WAIT socket, in seconds
/// of trace clock: TIME_WAIT lasts 60 s (TCP_TIMEWAIT_LEN), FIN_WAIT2 before it
/// up to `tcp_fin_timeout` (60 s by default), plus a margin. Older four-tuples
/// are dropped so memory stays bounded on a host closing thousands per second.
pub const CLOSER_TTL_S: f64 = 300.0;

/// Distinct peers kept per process; closes to further peers still count.
pub const MAX_PEERS: usize = 4096;

/// Everything learned from the events of one recording.
#[derive(Default)]
pub struct Attribution {
    pub procs: HashMap<ProcKey, ProcStats>,
    /// Process keys by index, so the per-tuple map stores 4 bytes, not a key.
    keys: Vec<ProcKey>,
    index: HashMap<ProcKey, u32>,
    /// The last process that closed each four-tuple first, and when.
    closers: HashMap<FourTuple, (u32, f64)>,
    /// Process identity per thread id, resolved once.
    threads: HashMap<(u32, String), u32>,
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
    /// the main thread; `<...>` from the tracer is replaced when /proc knows better.
    fn resolve(&mut self, e: &StateChange, info: &mut dyn ProcInfo) -> u32 {
        let k = (e.tid, e.comm.clone());
        if let Some(i) = self.threads.get(&k) {
            return *i;
        }
        let pid = e
            .tgid
            .filter(|t| *t != 0)
            .or_else(|| if e.tid == 0 { None } else { info.tgid(e.tid) })
            .unwrap_or(e.tid);
        let traced_is_main = pid == e.tid && e.comm != "<...>";
        let comm = if traced_is_main || pid == 0 {
            e.comm.clone()
        } else {
            info.comm(pid).unwrap_or_else(|| e.comm.clone())
        };
        let key = ProcKey { pid, comm };
        let idx = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                let cgroup = if pid == 0 { None } else { info.cgroup(pid) };
                self.procs.insert(
                    key.clone(),
                    ProcStats {
                        cgroup,
                        ..ProcStats::default()
                    },
                );
                let i = self.keys.len() as u32;
                self.keys.push(key.clone());
                self.index.insert(key, i);
                i
            }
        };
        self.threads.insert(k, idx);
        idx
    }

    pub fn on_event(&mut self, e: &StateChange, info: &mut dyn ProcInfo) {
        let Some(kind) = classify(e) else { return };
        self.events += 1;
        self.now = self.now.max(e.timestamp);
        if kind == Kind::Abort && e.irq {
            self.resets_received += 1;
            return;
        }
        let idx = self.resolve(e, info);
        let Some(st) = self.procs.get_mut(&self.keys[idx as usize]) else {
            return;
        };
        match kind {
            Kind::Active => {
                st.active += 1;
                let peer = (e.peer, e.peer_port);
                if st.peers.len() < MAX_PEERS || st.peers.contains_key(&peer) {
                    *st.peers.entry(peer).or_default() += 1;
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
    pub fn prune(&mut self) {
        let horizon = self.now - CLOSER_TTL_S;
        self.closers.retain(|_, (_, ts)| *ts >= horizon);
    }

    #[cfg(test)]
    /// Four-tuples remembered for matching.
    pub fn remembered(&self) -> usize {
        self.closers.len()
    }

    /// Matches the TIME_WAIT sockets present now to the closes recorded.
    pub fn match_time_wait(&mut self, sockets: &[SocketRecord]) {
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

/// The JSON contract of `who`.
#[derive(Serialize, Debug, Clone)]
pub struct WhoReport {
    pub duration_s: f64,
    pub lost_events: u64,
    pub processes: Vec<ProcessReport>,
    pub unattributed_time_wait: u64,
    pub time_wait_total: u64,
    /// Resets received from peers (not counted against any process).
    pub resets_received: u64,
    /// Processes left out by --top.
    pub processes_omitted: usize,
    pub unparsed_records: u64,
    pub note: &'static str,
}

#[derive(Serialize, Debug, Clone)]
pub struct ProcessReport {
    pub pid: u32,
    pub comm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    pub active_closes: u64,
    pub aborts: u64,
    pub passive_closes: u64,
    pub rate_per_s: f64,
    pub time_wait_now: u64,
    pub top_peers: Vec<PeerReport>,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// Serialises as a plain string (`127.0.0.1`, `::1`).
    pub peer: IpAddr,
    pub peer_port: u16,
    pub count: u64,
}

/// What attribution means, for the table's footer and the JSON `note`.
pub const NOTE: &str = "Attribution: a TIME_WAIT socket belongs to the process that closed the connection first \
(its ESTABLISHED->FIN_WAIT1 step, traced in that process's close() or shutdown()). \
Passive closes (CLOSE_WAIT->LAST_ACK) leave no TIME_WAIT on this host. Aborts are resets this process \
sent (close with unread data or SO_LINGER 0); resets received from peers belong to no process and are counted \
apart. A process that exited is still listed \
by pid and command. TIME_WAIT made before recording began cannot be attributed and is counted as unattributed; \
sockets closed during recording may already have left TIME_WAIT.";

/// How many peers each process lists.
pub const TOP_PEERS: usize = 5;

impl WhoReport {
    /// Busiest first (active closes, then TIME_WAIT, then pid); `top` 0 keeps all.
    pub fn build(a: &Attribution, duration_s: f64, top: usize) -> WhoReport {
        let mut rows: Vec<ProcessReport> = a
            .procs
            .iter()
            .map(|(k, st)| {
                let mut peers: Vec<PeerReport> = st
                    .peers
                    .iter()
                    .map(|((ip, port), n)| PeerReport {
                        peer: *ip,
                        peer_port: *port,
                        count: *n,
                    })
                    .collect();
                peers.sort_by(|x, y| {
                    y.count
                        .cmp(&x.count)
                        .then(x.peer.cmp(&y.peer))
                        .then(x.peer_port.cmp(&y.peer_port))
                });
                peers.truncate(TOP_PEERS);
                ProcessReport {
                    pid: k.pid,
                    comm: k.comm.clone(),
                    cgroup: st.cgroup.clone(),
                    active_closes: st.active,
                    aborts: st.aborts,
                    passive_closes: st.passive,
                    rate_per_s: if duration_s > 0.0 {
                        round2(st.active as f64 / duration_s)
                    } else {
                        0.0
                    },
                    time_wait_now: st.time_wait_now,
                    top_peers: peers,
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
                .then(x.pid.cmp(&y.pid))
                .then(x.comm.cmp(&y.comm))
        });
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
            lost_events: a.lost,
            processes: rows,
            unattributed_time_wait: a.unattributed_time_wait,
            time_wait_total: a.time_wait_total,
            resets_received: a.resets_received,
            processes_omitted: omitted,
            unparsed_records: a.unparsed,
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
        let r = WhoReport::build(&a, 2.0, 0);
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
        assert_eq!(a.remembered(), 4);
        a.prune();
        assert_eq!(a.remembered(), 1);
        let top1 = WhoReport::build(&a, 2.0, 1);
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
