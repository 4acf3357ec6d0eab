//! Lines of an instance's text `trace_pipe`, parsed.
//!
//! With the `record-tgid` option on, the kernel writes one line per event:
//!
//! ```text
//!   python3-11487   (  11487) [000] .....   553.060319: inet_sock_set_state: family=AF_INET ...
//!   <comm>-<tid>    (<tgid>)  [cpu] flags   timestamp:  event:               print fmt output
//! ```
//!
//! The tgid reads `-------` when the kernel has not cached it, and the command
//! `<...>` likewise. When a per-CPU buffer overflowed, a line `CPU:1 [LOST 12 EVENTS]`
//! takes the place of the lost records. Anything else is an error: the parser
//! returns it, it never panics.
//!
//! The kernel prints the command raw: a process that puts a newline in its
//! own name (prctl) splits its records in two. [`Rejoin`] puts them together.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::socket::canonical;
use crate::state::TcpState;
use crate::trace::format::{FormatError, TEXT_KEYS};

/// One TCP state change, as the tracepoint recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct StateChange {
    /// The command of the task that was running, as the tracer cached it
    /// (`<...>` when it had not).
    pub comm: String,
    /// Thread id of that task.
    pub tid: u32,
    /// Its process id, when the tracer knew it.
    pub tgid: Option<u32>,
    pub cpu: u32,
    /// Recorded in interrupt context (softirq or hardirq, per the flags column):
    /// the task shown merely happened to be running, e.g. a reset received from
    /// the network. Process-context events belong to the task.
    pub irq: bool,
    /// Seconds on the instance's trace clock.
    pub timestamp: f64,
    pub old: Option<TcpState>,
    pub new: Option<TcpState>,
    /// Canonical addresses (IPv4-mapped IPv6 written as IPv4).
    pub local: IpAddr,
    pub local_port: u16,
    pub peer: IpAddr,
    pub peer_port: u16,
}

/// A line of the pipe.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    Event(StateChange),
    /// The kernel overwrote or dropped this many events on this CPU.
    Lost {
        cpu: u32,
        count: u64,
    },
    /// A task exited (`sched:sched_process_exit`): its command as the task
    /// itself held it, for closes whose command the tracer had forgotten.
    Exit {
        pid: u32,
        comm: String,
    },
    /// A thread was created (`task:task_newtask` with CLONE_THREAD) by task
    /// `creator` of process `creator_tgid` (when the tracer knew it): the
    /// thread belongs to that process. The tracer often cannot tell the
    /// process of a short-lived thread when it prints the thread's events.
    NewThread {
        creator: u32,
        creator_tgid: Option<u32>,
        thread: u32,
    },
    /// A new process (`task:task_newtask` without CLONE_THREAD), made by
    /// process `parent` (the creator's process when the tracer knew it):
    /// it starts in its parent's cgroup, which names its container if it
    /// exits before /proc can be read.
    NewProcess {
        parent: u32,
        child: u32,
        /// Made with CLONE_NEWNET: in a namespace of its own, not its parent's.
        new_netns: bool,
    },
    /// A process ran a new program (`sched:sched_process_exec`): it may have
    /// entered another network namespace first (`ip netns exec`, `nsenter`),
    /// so its parent's no longer tells its own.
    Exec {
        pid: u32,
    },
    /// A process moved to another cgroup (`cgroup:cgroup_attach_task`), as a
    /// container runtime moves what it starts into the container's: the path
    /// in hierarchy `root`.
    Attach {
        pid: u32,
        root: i32,
        path: String,
    },
    /// An empty line or a `#` annotation.
    Ignored,
}

/// The event that tells a new thread's process, as tracefs names its directory.
pub const NEWTASK_EVENT: &str = "task/task_newtask";
const NEWTASK_MARKER: &str = ": task_newtask: ";
/// `clone_flags` bit of a new network namespace (include/uapi/linux/sched.h).
const CLONE_NEWNET: u64 = 0x4000_0000;
/// `clone_flags` bit of a thread (include/uapi/linux/sched.h).
const CLONE_THREAD: u64 = 0x0001_0000;

/// The event that names exiting tasks, as tracefs names its directory.
pub const EXIT_EVENT: &str = "sched/sched_process_exit";
const EXIT_MARKER: &str = ": sched_process_exit: ";

/// The event that tells a process ran a new program, as tracefs names its directory.
pub const EXEC_EVENT: &str = "sched/sched_process_exec";
const EXEC_MARKER: &str = ": sched_process_exec: ";

/// The event that tells a process's new cgroup, as tracefs names its directory.
pub const ATTACH_EVENT: &str = "cgroup/cgroup_attach_task";
const ATTACH_MARKER: &str = ": cgroup_attach_task: ";
/// The longest command the kernel keeps (TASK_COMM_LEN less its NUL).
const MAX_COMM: usize = 15;

fn bad<T>(line: &str, why: &str) -> Result<T, FormatError> {
    let mut shown: String = line.chars().take(160).collect();
    if shown.len() < line.len() {
        shown.push_str("...");
    }
    Err(FormatError(format!(
        "unreadable trace record ({why}): '{shown}'"
    )))
}

/// Parses one line of `trace_pipe` for the event named `event`.
pub fn parse_line(line: &str, event: &str) -> Result<Line, FormatError> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(Line::Ignored);
    }
    if let Some(rest) = t.strip_prefix("CPU:") {
        return parse_lost(rest).map_or_else(|| bad(line, "lost-events marker"), Ok);
    }
    if let Some(at) = t.find(EXIT_MARKER) {
        return parse_exit(&t[at + EXIT_MARKER.len()..])
            .map_or_else(|| bad(line, "exit record"), Ok);
    }
    if let Some(at) = t.find(EXEC_MARKER) {
        return parse_exec(&t[at + EXEC_MARKER.len()..])
            .map_or_else(|| bad(line, "exec record"), Ok);
    }
    if let Some(at) = t.find(ATTACH_MARKER) {
        return parse_attach(&t[at + ATTACH_MARKER.len()..])
            .map_or_else(|| bad(line, "cgroup attach record"), Ok);
    }
    if let Some(at) = t.find(NEWTASK_MARKER) {
        let h = parse_head(&t[..at], line)?;
        return parse_newtask(&t[at + NEWTASK_MARKER.len()..], h.tid, h.tgid)
            .map_or_else(|| bad(line, "new-task record"), Ok);
    }
    let marker = format!(": {event}: ");
    let Some(at) = t.find(&marker) else {
        return bad(line, "no event name");
    };
    let (head, body) = (&t[..at], &t[at + marker.len()..]);

    let Head {
        comm,
        tid,
        tgid,
        cpu,
        irq,
        timestamp,
    } = parse_head(head, line)?;
    // Body: key=value pairs; values have no spaces.
    let mut vals: [Option<&str>; TEXT_KEYS.len()] = [None; TEXT_KEYS.len()];
    for pair in body.split_whitespace() {
        let Some((k, v)) = pair.split_once('=') else {
            return bad(line, "field without '='");
        };
        if let Some(i) = TEXT_KEYS.iter().position(|key| *key == k) {
            vals[i] = Some(v);
        }
    }
    let mut get = |i: usize| vals[i].take();
    let [
        Some(family),
        Some(sport),
        Some(dport),
        Some(saddr),
        Some(daddr),
        Some(saddr6),
        Some(daddr6),
        Some(old),
        Some(new),
    ] = std::array::from_fn::<_, { TEXT_KEYS.len() }, _>(&mut get)
    else {
        return bad(line, "missing field");
    };
    let (Ok(sport), Ok(dport)) = (sport.parse::<u16>(), dport.parse::<u16>()) else {
        return bad(line, "bad port");
    };
    let (local, peer) = match family {
        "AF_INET" | "2" => match (saddr.parse::<Ipv4Addr>(), daddr.parse::<Ipv4Addr>()) {
            (Ok(s), Ok(d)) => (IpAddr::V4(s), IpAddr::V4(d)),
            _ => return bad(line, "bad IPv4 address"),
        },
        "AF_INET6" | "10" => match (saddr6.parse::<Ipv6Addr>(), daddr6.parse::<Ipv6Addr>()) {
            (Ok(s), Ok(d)) => (canonical(IpAddr::V6(s)), canonical(IpAddr::V6(d))),
            _ => return bad(line, "bad IPv6 address"),
        },
        _ => return bad(line, "unknown family"),
    };
    let (Some(old), Some(new)) = (state(old), state(new)) else {
        return bad(line, "bad state");
    };
    Ok(Line::Event(StateChange {
        comm,
        tid,
        tgid,
        cpu,
        irq,
        timestamp,
        old,
        new,
        local,
        local_port: sport,
        peer,
        peer_port: dport,
    }))
}

/// The task columns before the event name.
struct Head {
    comm: String,
    tid: u32,
    tgid: Option<u32>,
    cpu: u32,
    irq: bool,
    timestamp: f64,
}

fn parse_head(head: &str, line: &str) -> Result<Head, FormatError> {
    // Head, from the right: timestamp, flags, [cpu], optional (tgid), comm-tid.
    let Some(open) = head.rfind(" [") else {
        return bad(line, "no CPU field");
    };
    let (task, tail) = (&head[..open], &head[open + 2..]);
    let Some((cpu, after)) = tail.split_once(']') else {
        return bad(line, "no CPU field");
    };
    let Ok(cpu) = cpu.trim().parse::<u32>() else {
        return bad(line, "bad CPU number");
    };
    let cols: Vec<&str> = after.split_whitespace().collect();
    let Some(ts) = cols.last() else {
        return bad(line, "no timestamp");
    };
    // Flags column (`.ns2.`): the third character is `s` (softirq), `h`/`H`
    // (hardirq) or `z`/`Z` (NMI) in interrupt context, `.` or `b` otherwise.
    let irq =
        cols.len() >= 2 && matches!(cols[0].chars().nth(2), Some('s' | 'h' | 'H' | 'z' | 'Z'));
    let timestamp = match ts.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => v,
        _ => return bad(line, "bad timestamp"),
    };
    let mut task = task.trim_end();
    let mut tgid = None;
    if task.ends_with(')') {
        let Some(p) = task.rfind('(') else {
            return bad(line, "bad tgid field");
        };
        let inner = task[p + 1..task.len() - 1].trim();
        if !inner.chars().all(|c| c == '-') {
            let Ok(n) = inner.parse::<u32>() else {
                return bad(line, "bad tgid");
            };
            tgid = Some(n);
        }
        task = task[..p].trim_end();
    }
    let task = task.trim_start();
    let Some((comm, tid)) = task.rsplit_once('-') else {
        return bad(line, "no command-pid");
    };
    let Ok(tid) = tid.parse::<u32>() else {
        return bad(line, "bad pid");
    };

    Ok(Head {
        comm: comm.to_string(),
        tid,
        tgid,
        cpu,
        irq,
        timestamp,
    })
}

/// `TCP_FIN_WAIT1`, or the number the kernel prints for a value it has no
/// name for. `Some(None)` is a well-formed but unknown state.
fn state(s: &str) -> Option<Option<TcpState>> {
    if let Some(name) = s.strip_prefix("TCP_") {
        return TcpState::parse(name).map(Some);
    }
    let n = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => s.parse::<u64>().ok()?,
    };
    Some(u8::try_from(n).ok().and_then(TcpState::from_kernel))
}

/// `comm=curl pid=42 prio=120 [group_dead=true]`: the command may hold spaces,
/// so it runs up to the last ` pid=`.
fn parse_exit(body: &str) -> Option<Line> {
    let rest = body.strip_prefix("comm=")?;
    let at = rest.rfind(" pid=")?;
    let comm = &rest[..at];
    let pid = rest[at + 5..].split_whitespace().next()?.parse().ok()?;
    Some(Line::Exit {
        pid,
        comm: comm.to_string(),
    })
}

/// `pid=42 comm=python3 clone_flags=3d0f00 oom_score_adj=0`; the command may
/// hold spaces, so the flags are found from the right.
fn parse_newtask(body: &str, creator: u32, creator_tgid: Option<u32>) -> Option<Line> {
    let rest = body.strip_prefix("pid=")?;
    let (pid, _) = rest.split_once(' ')?;
    let pid: u32 = pid.parse().ok()?;
    let at = rest.rfind(" clone_flags=")?;
    let flags = rest[at + 13..].split_whitespace().next()?;
    let flags = u64::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
    Some(if flags & CLONE_THREAD != 0 {
        Line::NewThread {
            creator,
            creator_tgid,
            thread: pid,
        }
    } else {
        Line::NewProcess {
            parent: creator_tgid.filter(|t| *t != 0).unwrap_or(creator),
            child: pid,
            new_netns: flags & CLONE_NEWNET != 0,
        }
    })
}

/// `filename=/usr/bin/curl pid=42 old_pid=42`: the file name may hold spaces,
/// so the pid is found from the right (` old_pid=` does not contain ` pid=`).
fn parse_exec(body: &str) -> Option<Line> {
    let rest = body.strip_prefix("filename=")?;
    let at = rest.rfind(" pid=")?;
    let pid = rest[at + 5..].split_whitespace().next()?.parse().ok()?;
    Some(Line::Exec { pid })
}

/// `dst_root=0 dst_id=5 dst_level=2 dst_path=/docker/ab pid=42 comm=sh`. A
/// path may hold spaces and any text, so the split is the first ` pid=N comm=`
/// whose command fits the kernel's 15 bytes: a path that spells ` pid=` is
/// followed by the real ` pid=N comm=...`, too long to be a command.
fn parse_attach(body: &str) -> Option<Line> {
    let rest = body.strip_prefix("dst_root=")?;
    let (root, rest) = rest.split_once(' ')?;
    let root: i32 = root.parse().ok()?;
    let at = rest.find(" dst_path=")?;
    let rest = &rest[at + 10..];
    let mut from = 0;
    while let Some(i) = rest[from..].find(" pid=") {
        let at = from + i;
        let tail = &rest[at + 5..];
        if let Some((pid, comm)) = tail.split_once(" comm=")
            && comm.len() <= MAX_COMM
            && let Ok(pid) = pid.parse::<u32>()
        {
            return Some(Line::Attach {
                pid,
                root,
                path: rest[..at].to_string(),
            });
        }
        from = at + 1;
    }
    None
}

/// `1 [LOST 12 EVENTS]` (after the `CPU:` prefix).
fn parse_lost(rest: &str) -> Option<Line> {
    let (cpu, rest) = rest.split_once(' ')?;
    let count = rest
        .trim()
        .strip_prefix("[LOST ")?
        .strip_suffix(" EVENTS]")?;
    Some(Line::Lost {
        cpu: cpu.parse().ok()?,
        count: count.parse().ok()?,
    })
}

/// The kernel writes the command right-aligned in 16 columns (`%16s`; a name
/// holds at most 15 bytes), so a record's text before `-<tid>` is 16 bytes.
const NAME_COLUMN: usize = 16;
/// A piece of a line this short (allowing for bytes shown as U+FFFD) may be
/// the head of a name cut by a newline in it.
const NAME_PIECE: usize = 48;

/// The bytes before `-<tid>` in a line that parsed as `e`.
fn name_column(line: &str, e: &StateChange) -> usize {
    line.len() - line.trim_start().len() + e.comm.len()
}

/// Reads `trace_pipe` lines in order, joining a record that a newline in its
/// command name split (`   \x1b]0;pwn\x07` then `[OK]-123 (123) [001] ...`).
/// A piece that joins nothing is reported as the unreadable line it is.
#[derive(Debug, Default)]
pub struct Rejoin {
    pending: String,
}

impl Rejoin {
    /// Parses `raw` (one line, without its newline); `out` gets each result.
    pub fn line(&mut self, raw: &str, event: &str, mut out: impl FnMut(Result<Line, FormatError>)) {
        if !self.pending.is_empty() {
            let joined = format!("{}\n{raw}", self.pending);
            match parse_line(&joined, event) {
                // Joined only when the name fills its column exactly: a line
                // of junk before a record is not a name.
                Ok(Line::Event(e)) if name_column(&joined, &e) == NAME_COLUMN => {
                    self.pending.clear();
                    return out(Ok(Line::Event(e)));
                }
                // The other records (a task's exit, a new thread) carry no
                // command to measure: a piece shorter than the column joins.
                Ok(
                    l @ (Line::Exit { .. }
                    | Line::NewThread { .. }
                    | Line::NewProcess { .. }
                    | Line::Exec { .. }
                    | Line::Attach { .. }),
                ) if self.pending.len() < NAME_COLUMN => {
                    self.pending.clear();
                    return out(Ok(l));
                }
                // Several newlines in one name: keep gathering.
                _ if joined.len() < NAME_PIECE => {
                    self.pending = joined;
                    return;
                }
                _ => {
                    let piece = std::mem::take(&mut self.pending);
                    out(parse_line(&piece, event));
                }
            }
        }
        match parse_line(raw, event) {
            Err(_) if raw.len() < NAME_PIECE => self.pending = raw.to_string(),
            r => out(r),
        }
    }

    /// At the end of the input: a piece still waiting is an unreadable line.
    pub fn finish(&mut self, event: &str, mut out: impl FnMut(Result<Line, FormatError>)) {
        if !self.pending.is_empty() {
            out(parse_line(&std::mem::take(&mut self.pending), event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EV: &str = "inet_sock_set_state";

    fn ev(line: &str) -> StateChange {
        match parse_line(line, EV).unwrap() {
            Line::Event(e) => e,
            other => panic!("not an event: {other:?}"),
        }
    }

    /// How this kernel printed a close by a process named `\x1b]0;pwn\x07\n[OK]`.
    const SPLIT: &str = "   \x1b]0;pwn\x07\n[OK]-11526   (  11526) [001] .N...  2900.727299: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=41266 dport=38153 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 oldstate=TCP_ESTABLISHED newstate=TCP_FIN_WAIT1";

    fn rejoined(text: &str) -> Vec<Result<Line, FormatError>> {
        let mut r = Rejoin::default();
        let mut out = Vec::new();
        for l in text.split('\n') {
            r.line(l, EV, |x| out.push(x));
        }
        r.finish(EV, |x| out.push(x));
        out
    }

    #[test]
    fn a_newline_in_a_command_name_does_not_split_its_record() {
        let got = rejoined(SPLIT);
        assert_eq!(got.len(), 1, "{got:?}");
        let Ok(Line::Event(e)) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!((e.comm.as_str(), e.tid), ("\x1b]0;pwn\x07\n[OK]", 11526));
        // The layout the join relies on holds for every captured record.
        let fixture = include_str!("../../tests/fixtures/trace/trace_pipe.txt");
        for l in fixture.lines() {
            if let Ok(Line::Event(e)) = parse_line(l, EV) {
                assert_eq!(name_column(l, &e), NAME_COLUMN, "{l}");
            }
        }
        // Two newlines, records around it, and a short piece that joins nothing.
        let two = SPLIT.replace("pwn", "p\nw");
        let text = format!("{fixture}{two}\nshort junk\n{fixture}");
        let events = rejoined(&text)
            .iter()
            .filter(|r| matches!(r, Ok(Line::Event(_))))
            .count();
        assert_eq!(events, 14 * 2 + 1);
        let errors: Vec<_> = rejoined(&text).into_iter().filter(|r| r.is_err()).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(format!("{:?}", errors[0]).contains("short junk"));
        // A piece at the very end is reported, not lost.
        assert!(rejoined("   \x1b]0;pwn").iter().all(|r| r.is_err()));
    }

    #[test]
    fn captured_lines() {
        let text = include_str!("../../tests/fixtures/trace/trace_pipe.txt");
        let mut events = Vec::new();
        for l in text.lines() {
            if let Line::Event(e) = parse_line(l, EV).unwrap() {
                events.push(e);
            }
        }
        assert_eq!(events.len(), 14);
        // The reset received in softirq, and the multi-threaded process.
        assert_eq!(events.iter().filter(|e| e.irq).count(), 1);
        assert!(
            events
                .iter()
                .any(|e| e.tid == 19849 && e.tgid == Some(19731))
        );
        let lost: Vec<Line> = text
            .lines()
            .map(|l| parse_line(l, EV).unwrap())
            .filter(|l| matches!(l, Line::Lost { .. }))
            .collect();
        assert_eq!(
            lost,
            vec![Line::Lost {
                cpu: 0,
                count: 2915
            }]
        );
        let first = &events[0];
        assert_eq!(first.old, Some(TcpState::Established));
        assert_eq!(first.new, Some(TcpState::FinWait1));
        assert!(first.local.is_ipv4() && first.peer.is_ipv4());
        // Mapped addresses of an AF_INET6 socket come out as IPv4; ::1 stays IPv6.
        assert!(
            events
                .iter()
                .any(|e| e.local == "::1".parse::<IpAddr>().unwrap())
        );
        assert!(
            events
                .iter()
                .all(|e| e.local.is_ipv4() || e.local.to_string() == "::1")
        );
    }

    #[test]
    fn head_variants() {
        let body = "family=AF_INET protocol=IPPROTO_TCP sport=1 dport=2 saddr=10.0.0.1 daddr=10.0.0.2 \
                    saddrv6=::ffff:10.0.0.1 daddrv6=::ffff:10.0.0.2 oldstate=TCP_CLOSE_WAIT newstate=TCP_LAST_ACK";
        let e = ev(&format!(
            "   my-prog name-42 (   40) [001] d..1.   7.5: {EV}: {body}"
        ));
        assert_eq!(
            (e.comm.as_str(), e.tid, e.tgid, e.cpu),
            ("my-prog name", 42, Some(40), 1)
        );
        assert_eq!(
            (e.old, e.new),
            (Some(TcpState::CloseWait), Some(TcpState::LastAck))
        );
        let e = ev(&format!(
            "<...>-11440   (-------) [000] .....   550.6: {EV}: {body}"
        ));
        assert_eq!((e.comm.as_str(), e.tgid), ("<...>", None));
        assert!(!e.irq);
        let e = ev(&format!("<idle>-0 [000] ..s1. 1.0: {EV}: {body}"));
        assert_eq!((e.tid, e.tgid, e.irq), (0, None, true));
        let unknown = body.replace("TCP_LAST_ACK", "0x2a");
        assert_eq!(ev(&format!("a-1 [0] . 1.0: {EV}: {unknown}")).new, None);
    }

    #[test]
    fn exits() {
        let l = "          <...>-4242    (   4242) [001] .....  99.5: sched_process_exit: comm=my curl pid=4242 prio=120 group_dead=true";
        assert_eq!(
            parse_line(l, EV).unwrap(),
            Line::Exit {
                pid: 4242,
                comm: "my curl".into()
            }
        );
        let old = "curl-7 [000] ..... 1.0: sched_process_exit: comm=curl pid=7 prio=120";
        assert!(matches!(
            parse_line(old, EV).unwrap(),
            Line::Exit { pid: 7, .. }
        ));
        assert!(parse_line("a-1 [0] . 1.0: sched_process_exit: pid=7", EV).is_err());
    }

    #[test]
    fn new_threads() {
        let l = "         python3-500     (    500) [000] .....   10.0: task_newtask: pid=501 comm=python3 clone_flags=3d0f00 oom_score_adj=0";
        assert_eq!(
            parse_line(l, EV).unwrap(),
            Line::NewThread {
                creator: 500,
                creator_tgid: Some(500),
                thread: 501
            }
        );
        let fork = "bash-7 (7) [000] ..... 1.0: task_newtask: pid=8 comm=my sh clone_flags=1200000 oom_score_adj=0";
        assert_eq!(
            parse_line(fork, EV).unwrap(),
            Line::NewProcess {
                parent: 7,
                child: 8,
                new_netns: false
            }
        );
        assert!(
            parse_line(
                "a-1 [0] . 1.0: task_newtask: pid=x comm=a clone_flags=1 oom_score_adj=0",
                EV
            )
            .is_err()
        );
    }

    #[test]
    fn execs() {
        let l = "curl-42 (42) [001] ..... 5.0: sched_process_exec: filename=/tmp/a pid=7 dir/curl pid=42 old_pid=42";
        assert_eq!(parse_line(l, EV).unwrap(), Line::Exec { pid: 42 });
        assert!(parse_line("a-1 [0] . 1.0: sched_process_exec: filename=/x", EV).is_err());
    }

    #[test]
    fn cgroup_attaches() {
        let l = "runc:[2:INIT]-9 (9) [001] ..... 5.0: cgroup_attach_task: dst_root=0 dst_id=77 dst_level=2 \
dst_path=/libpod_parent/libpod-e4 pid=9 comm=runc:[2:INIT]";
        assert_eq!(
            parse_line(l, EV).unwrap(),
            Line::Attach {
                pid: 9,
                root: 0,
                path: "/libpod_parent/libpod-e4".into()
            }
        );
        // A path that spells the fields itself, and a command with a space.
        let l = "a-1 [0] . 1.0: cgroup_attach_task: dst_root=3 dst_id=1 dst_level=1 \
dst_path=/x pid=5 comm=evil pid=12 comm=my sh";
        assert_eq!(
            parse_line(l, EV).unwrap(),
            Line::Attach {
                pid: 12,
                root: 3,
                path: "/x pid=5 comm=evil".into()
            }
        );
        assert!(parse_line("a-1 [0] . 1.0: cgroup_attach_task: dst_root=x", EV).is_err());
    }

    #[test]
    fn lost_and_ignored() {
        assert_eq!(
            parse_line("CPU:1 [LOST 12 EVENTS]", EV).unwrap(),
            Line::Lost { cpu: 1, count: 12 }
        );
        assert_eq!(parse_line("", EV).unwrap(), Line::Ignored);
        assert_eq!(
            parse_line("##### CPU 1 buffer started ####", EV).unwrap(),
            Line::Ignored
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        let good = include_str!("../../tests/fixtures/trace/trace_pipe.txt")
            .lines()
            .next()
            .unwrap();
        for bad in [
            "CPU:x [LOST 1 EVENTS]",
            "CPU:1 [LOST many EVENTS]",
            "garbage",
            &good.replace("[001]", "[xx]"),
            &good.replace("[001]", "001"),
            &good.replace("sport=", "sport:"),
            &good.replace("sport=44230", "sport=99999"),
            &good.replace("saddr=127.0.0.1", "saddr=1.2.3"),
            &good.replace("family=AF_INET", "family=AF_UNIX"),
            &good.replace("newstate=TCP_FIN_WAIT1", "newstate=TCP_SOMETHING"),
            &good.replace(" newstate=TCP_FIN_WAIT1", ""),
            &good.replace("550.650722", "nan"),
            &good.replace("-11440", "-x"),
            &good.replace("(-------)", "(12a)"),
            &good[..good.len() / 2],
        ] {
            let r = parse_line(bad, EV);
            assert!(r.is_err(), "accepted {bad:?}: {r:?}");
        }
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = "          python3-11487   (  11487) [000] .....   553.060319: inet_sock_set_state: family=AF_INET6 \
        protocol=IPPROTO_TCP sport=55181 dport=44230 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 \
        daddrv6=::ffff:127.0.0.1 oldstate=TCP_CLOSE_WAIT newstate=TCP_LAST_ACK";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any text at all: an answer, never a panic.
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse_line(&s, "inet_sock_set_state");
        }

        /// A real record cut anywhere, or with one byte replaced, parses or errors: never panics.
        #[test]
        fn damaged_records_never_panic(cut in 0usize..GOOD.len(), at in 0usize..GOOD.len(), b in any::<u8>()) {
            let _ = parse_line(&GOOD[..cut], "inet_sock_set_state");
            let mut bytes = GOOD.as_bytes().to_vec();
            bytes[at] = b;
            let _ = parse_line(&String::from_utf8_lossy(&bytes), "inet_sock_set_state");
        }

        /// A record cut short anywhere after its first character is rejected
        /// (newstate is the last field, and no prefix of its value is a state).
        #[test]
        fn truncated_records_are_errors(cut in GOOD.len() - GOOD.trim_start().len() + 1..GOOD.len()) {
            prop_assert!(parse_line(&GOOD[..cut], "inet_sock_set_state").is_err());
        }
    }
}
