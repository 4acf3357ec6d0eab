//! The collector: asks the kernel for TCP sockets over NETLINK_SOCK_DIAG and hands
//! each one, parsed in place, to a `Sink` (`crate::socket`). Every command gets its
//! sockets here.
//!
//! The kernel walks its whole TCP hash table once per dump, and that walk is
//! most of the cost. When both families are wanted, one request of the original
//! inet_diag kind (`TCPDIAG_GETSOCK`, which the kernel answers for both families
//! from a single walk) replaces the two per-family dumps: at 200k TIME_WAIT it
//! takes about 0.6x the time of the two dumps in sequence, on one core. If the
//! kernel refuses it, the IPv4 and IPv6 dumps run at the same time on two
//! netlink sockets.

pub mod bytecode;
pub mod conntrack;
pub mod conntrack_parse;
pub mod destroy;
mod handoff;
pub mod listen;
pub mod parse;
pub mod procfs;
pub mod request;

pub use parse::TCPDIAG_GETSOCK;
pub use procfs::{Source, collect_any};
use request::{EXT_INFO, build_request_both_ext, build_request_ext};
pub use request::{build_request, build_request_both};

use std::io;
use std::time::{Duration, Instant};

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};

use crate::filter::Query;
use crate::socket::{Family, Sink, SocketRecord};
use handoff::{CloseOnDrop, Handoff};
use parse::{Flow, ParseError, ParseStats, parse_datagram};

/// The kernel never sends a dump datagram larger than this (netlink caps
/// `max_recvmsg_len` at 32 KiB), so a 32 KiB buffer reads each one whole.
pub const RECV_BUF: usize = 32 * 1024;

/// A failure to get sockets from the kernel.
#[derive(Debug)]
pub enum DiagError {
    /// A system call failed; `what` says which.
    Io {
        what: &'static str,
        family: Option<Family>,
        err: io::Error,
    },
    /// The reply did not parse, or the kernel answered with an error.
    Reply { family: Family, err: ParseError },
    /// A datagram was larger than our buffer.
    Truncated { family: Family, len: usize },
}

impl DiagError {
    /// The errno behind the failure, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            DiagError::Io { err, .. } => err.raw_os_error(),
            DiagError::Reply {
                err: ParseError::Kernel(e),
                ..
            } => Some(*e),
            _ => None,
        }
    }

    /// True when sock_diag is missing or refused here, the case where reading
    /// /proc/net/tcp is the right fallback.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self.errno(),
            Some(
                libc::EPERM
                    | libc::EACCES
                    | libc::EPROTONOSUPPORT
                    | libc::ENOENT
                    | libc::EAFNOSUPPORT
                    | libc::EOPNOTSUPP
            )
        )
    }
}

impl std::fmt::Display for DiagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fam = |f: &Option<Family>| f.map(|f| format!(" ({})", f.name())).unwrap_or_default();
        match self {
            DiagError::Io { what, family, err } => {
                write!(f, "sock_diag {what}{}: {err}", fam(family))
            }
            DiagError::Reply { family, err } => {
                write!(f, "sock_diag dump ({}): {err}", family.name())
            }
            DiagError::Truncated { family, len } => write!(
                f,
                "sock_diag dump ({}): datagram of {len} bytes exceeds the {RECV_BUF}-byte buffer",
                family.name()
            ),
        }
    }
}

impl std::error::Error for DiagError {}

/// The result of a collection.
pub struct Collection<S> {
    pub sink: S,
    pub stats: ParseStats,
    pub elapsed: Duration,
    /// Raw datagrams per family, in arrival order, when asked for.
    pub raw: Vec<(Family, Vec<u8>)>,
}

/// Options that do not change which sockets are reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Keep every datagram as received (for snapshots).
    pub keep_raw: bool,
    /// Ask for `INET_DIAG_INFO` (`struct tcp_info`) with every full socket:
    /// a few hundred bytes more per message, so only for small dumps.
    pub info: bool,
}

impl Options {
    fn ext(self) -> u8 {
        if self.info { EXT_INFO } else { 0 }
    }
}

/// Dumps one family into `sink`.
pub fn dump_family<S: Sink>(
    family: Family,
    query: &Query,
    bytecode: &[u8],
    raw: Option<&mut Vec<u8>>,
    sink: &mut S,
) -> Result<ParseStats, DiagError> {
    dump_family_ext(family, query, bytecode, 0, raw, sink)
}

fn dump_family_ext<S: Sink>(
    family: Family,
    query: &Query,
    bytecode: &[u8],
    ext: u8,
    raw: Option<&mut Vec<u8>>,
    sink: &mut S,
) -> Result<ParseStats, DiagError> {
    let req = build_request_ext(family, query, bytecode, 1, ext);
    dump(family, &req, raw, sink)
}

/// Lowers CAP_NET_ADMIN in this thread's effective set for as long as it lives.
///
/// For a network administrator the kernel adds attributes (socket marks) to
/// every dumped message; it decides from the credentials of the task running
/// the dump. Nothing here reads them, and at 200,000 sockets they made a root
/// dump about 15% slower than an unprivileged one. Capabilities are per thread
/// and the permitted set is untouched, so the capability comes back on drop.
struct NetAdminLowered(bool);

impl NetAdminLowered {
    fn new() -> NetAdminLowered {
        use caps::{CapSet, Capability};
        let admin =
            caps::has_cap(None, CapSet::Effective, Capability::CAP_NET_ADMIN).unwrap_or(false);
        NetAdminLowered(
            admin && caps::drop(None, CapSet::Effective, Capability::CAP_NET_ADMIN).is_ok(),
        )
    }
}

impl Drop for NetAdminLowered {
    fn drop(&mut self) {
        if self.0 {
            let _ = caps::raise(
                None,
                caps::CapSet::Effective,
                caps::Capability::CAP_NET_ADMIN,
            );
        }
    }
}

/// The receiving thread reads datagrams back to back into a chunk of this
/// size and hands the chunk over when fewer than [`RECV_BUF`] bytes are left:
/// three full datagrams or more (about 1,100 TIME_WAIT sockets) per hand-over,
/// so the wake-ups between the threads cost little even at a million sockets.
const CHUNK: usize = 4 * RECV_BUF;

/// Chunks in flight: one being filled, one being parsed, one spare.
const RING: usize = 3;

/// Datagrams read on the calling thread before a receiving thread is started.
const SYNC_DATAGRAMS: usize = 2;

/// Datagrams one chunk holds at most (full ones fill it at 3 or 4).
const PER_CHUNK: usize = 16;

/// Datagrams read back to back, with where each one ends.
struct Chunk {
    buf: Vec<u8>,
    ends: [usize; PER_CHUNK],
    count: usize,
}

impl Chunk {
    fn new(size: usize) -> Chunk {
        Chunk {
            buf: vec![0u8; size],
            ends: [0; PER_CHUNK],
            count: 0,
        }
    }

    fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends[..self.count].iter().map(move |&end| {
            let d = &self.buf[start..end];
            start = end;
            d
        })
    }

    fn filled(&self) -> usize {
        self.count.checked_sub(1).map_or(0, |i| self.ends[i])
    }

    /// Reads datagrams into what is left of the chunk, as long as a whole one
    /// fits, until one ends the dump. Errs only when nothing was read.
    fn fill(&mut self, sock: &Socket, family: Family) -> Result<bool, DiagError> {
        self.count = 0;
        while self.count < PER_CHUNK && self.buf.len() - self.filled() >= RECV_BUF {
            let at = self.filled();
            match recv_one(sock, family, &mut self.buf[at..]) {
                Ok(n) => {
                    let last = parse::ends_dump(&self.buf[at..at + n], Some(1));
                    self.ends[self.count] = at + n;
                    self.count += 1;
                    if last {
                        return Ok(true);
                    }
                }
                // What was read before the failure is parsed first; the
                // next call reports it.
                Err(_) if self.count > 0 => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

/// One datagram into `buf`; its length.
fn recv_one(sock: &Socket, family: Family, buf: &mut [u8]) -> Result<usize, DiagError> {
    let io_err = |err| DiagError::Io {
        what: "recv",
        family: Some(family),
        err,
    };
    match recv_datagram(sock, buf) {
        Ok(n) if n > RECV_BUF.min(buf.len()) => Err(DiagError::Truncated { family, len: n }),
        Ok(n) => Ok(n),
        Err(e) => Err(io_err(e)),
    }
}

/// One netlink datagram into `buf`, retried when a signal interrupts the wait.
/// The length is the datagram's whole length (`MSG_TRUNC`), more than
/// `buf.len()` when it did not fit; a zero-length read is an error, since every
/// reply carries at least a header.
pub(crate) fn recv_datagram(sock: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        let mut slice = &mut buf[..];
        return match sock.recv(&mut slice, libc::MSG_TRUNC) {
            Ok(0) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

/// The receiving side of a large dump: reads datagrams into free chunks until
/// the one that ends the dump, and hands each chunk over. It stops early when
/// the parser has gone.
///
/// The kernel fills the next datagram inside `recvmsg`, so while the parser
/// works on one chunk this thread is already in the kernel for the next.
fn receive(
    family: Family,
    sock: &Socket,
    free: &Handoff<Chunk>,
    full: &Handoff<Result<Chunk, DiagError>>,
) {
    // However this ends, the parser stops waiting.
    let _close = CloseOnDrop(full);
    // The kernel decides at each recvmsg, from the task that makes the call
    // (see the test `no_marks_in_a_dump_read_on_two_threads`).
    let _plain = NetAdminLowered::new();
    // While the parser keeps up, two chunks take turns and the third is
    // never touched (its pages never become resident).
    while let Some(mut chunk) = free.recv_last() {
        match chunk.fill(sock, family) {
            Ok(last) => {
                if full.send(Ok(chunk)).is_err() || last {
                    return;
                }
            }
            Err(e) => {
                let _ = full.send(Err(e));
                return;
            }
        }
    }
}

/// Sends `req` (sequence number 1) and feeds every socket of the reply to
/// `sink`, in the kernel's order; `family` only labels errors. Stops early,
/// without an error, once `sink` says it has stopped (its output is gone).
///
/// The first datagrams are read here: a small dump (an empty table, the
/// listeners) is over without a second thread. A larger one goes on with a
/// receiving thread (see [`receive`]) while this thread parses.
fn dump<S: Sink>(
    family: Family,
    req: &[u8],
    mut raw: Option<&mut Vec<u8>>,
    sink: &mut S,
) -> Result<ParseStats, DiagError> {
    let seq = 1;
    let sock = {
        let _plain = NetAdminLowered::new();
        let io_err = |what, err| DiagError::Io {
            what,
            family: Some(family),
            err,
        };
        // Opened with the capability lowered: the kernel also asks the
        // credentials the socket was opened with.
        let sock = Socket::new(NETLINK_SOCK_DIAG).map_err(|e| io_err("socket", e))?;
        sock.send_to(req, &SocketAddr::new(0, 0), 0)
            .map_err(|e| io_err("send", e))?;
        sock
    };
    let mut stats = ParseStats::default();
    // Parses a chunk; true when the dump is over for us (its end, or the
    // sink has stopped).
    let mut parse = |chunk: &Chunk, stats: &mut ParseStats| -> Result<bool, DiagError> {
        for data in chunk.datagrams() {
            if let Some(r) = raw.as_deref_mut() {
                r.extend_from_slice(data);
            }
            match parse_datagram(data, Some(seq), stats, |r| sink.push(r)) {
                Ok(Flow::More) => {}
                Ok(Flow::Done) => return Ok(true),
                Err(err) => return Err(DiagError::Reply { family, err }),
            }
        }
        Ok(sink.stopped())
    };
    // The kernel sends NLMSG_DONE in a datagram of its own after the last
    // sockets: a dump of a few dozen sockets (the listeners) is two datagrams.
    let mut first = Chunk::new(RECV_BUF);
    for _ in 0..SYNC_DATAGRAMS {
        let last = {
            let _plain = NetAdminLowered::new();
            first.fill(&sock, family)?
        };
        if parse(&first, &mut stats)? {
            return Ok(stats);
        }
        if last {
            // The receiver would read no further than this: the parser
            // agrees (ends_dump), so only a damaged reply gets here.
            return Err(DiagError::Io {
                what: "recv",
                family: Some(family),
                err: io::Error::other("the dump ended without NLMSG_DONE"),
            });
        }
    }
    drop(first);
    let full = Handoff::new(RING);
    let free = Handoff::new(RING);
    for _ in 0..RING {
        let _ = free.send(Chunk::new(CHUNK));
    }
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("tw-recv".into())
            .spawn_scoped(s, || receive(family, &sock, &free, &full))
            .map_err(|err| DiagError::Io {
                what: "starting the receiving thread",
                family: Some(family),
                err,
            })?;
        // However this returns, the receiver stops waiting for free chunks
        // (and its next send fails); the scope then joins it.
        let _close = (CloseOnDrop(&free), CloseOnDrop(&full));
        loop {
            let Some(got) = full.recv() else {
                return Err(DiagError::Io {
                    what: "recv",
                    family: Some(family),
                    err: io::Error::other("the receiving thread stopped"),
                });
            };
            let chunk = got?;
            let over = parse(&chunk, &mut stats)?;
            let _ = free.send(chunk);
            if over {
                return Ok(stats);
            }
        }
    })
}

/// What [`stream`] read, besides the sockets it handed over.
#[derive(Debug)]
pub struct Streamed {
    pub stats: ParseStats,
    pub elapsed: Duration,
    /// Raw datagrams per family, in arrival order, when asked for.
    pub raw: Vec<(Family, Vec<u8>)>,
}

/// Collects the sockets that match `query` into one sink, on the calling
/// thread, in the kernel's order: what a writer that prints each socket as it
/// arrives needs. Both families come from one walk when the kernel allows
/// it; else, and to keep each family's datagrams apart (`keep_raw`), one
/// family after the other.
pub fn stream<S: Sink>(query: &Query, opts: Options, sink: &mut S) -> Result<Streamed, DiagError> {
    let start = Instant::now();
    let bc = bytecode::compile(&query.groups);
    let families = query.families();
    if families.len() == 2 && !opts.keep_raw {
        let req = build_request_both_ext(query, &bc, 1, opts.ext());
        let mut counted = Counted { sink, n: 0 };
        match dump(Family::V4, &req, None, &mut counted) {
            Ok(stats) => {
                return Ok(Streamed {
                    stats,
                    elapsed: start.elapsed(),
                    raw: Vec::new(),
                });
            }
            // Refused outright: the per-family dumps below. Once sockets were
            // handed over, starting again would repeat them.
            Err(e) if counted.n > 0 => return Err(e),
            Err(_) => {}
        }
    }
    let mut stats = ParseStats::default();
    let mut raws = Vec::new();
    for family in families {
        let mut raw = opts.keep_raw.then(Vec::new);
        let s = dump_family_ext(family, query, &bc, opts.ext(), raw.as_mut(), sink)?;
        stats.add(&s);
        raws.extend(raw.map(|r| (family, r)));
        if sink.stopped() {
            break;
        }
    }
    Ok(Streamed {
        stats,
        elapsed: start.elapsed(),
        raw: raws,
    })
}

/// Counts what passes through to `sink`.
struct Counted<'a, S> {
    sink: &'a mut S,
    n: u64,
}

impl<S: Sink> Sink for Counted<'_, S> {
    fn push(&mut self, r: &SocketRecord) {
        self.n += 1;
        self.sink.push(r);
    }
    fn absorb(&mut self, _: Self) {}
    fn stopped(&self) -> bool {
        self.sink.stopped()
    }
}

/// Asks the kernel for each socket of `ids` by its exact id (see
/// [`request::build_exact`]), one request at a time on one netlink socket, and
/// feeds the answers to `on_socket`. A socket gone meanwhile is skipped. Each
/// lookup is a hash lookup in the kernel: for a few sockets this is much
/// cheaper than a dump, which walks the whole table.
pub fn lookup_each(
    ids: &[SocketRecord],
    opts: Options,
    mut on_socket: impl FnMut(&SocketRecord),
) -> Result<(), DiagError> {
    let Some(first) = ids.first() else {
        return Ok(());
    };
    let family = first.family;
    let io_err = |what, err| DiagError::Io {
        what,
        family: Some(family),
        err,
    };
    let _plain = NetAdminLowered::new();
    let sock = Socket::new(NETLINK_SOCK_DIAG).map_err(|e| io_err("socket", e))?;
    let mut buf = vec![0u8; RECV_BUF];
    let mut stats = ParseStats::default();
    for (i, id) in ids.iter().enumerate() {
        let seq = i as u32 + 1;
        let req = request::build_exact(id, seq, opts.ext());
        sock.send_to(&req, &SocketAddr::new(0, 0), 0)
            .map_err(|e| io_err("send", e))?;
        let n = recv_datagram(&sock, &mut buf).map_err(|e| io_err("recv", e))?;
        if n > buf.len() {
            return Err(DiagError::Truncated {
                family: id.family,
                len: n,
            });
        }
        match parse_datagram(&buf[..n], Some(seq), &mut stats, &mut on_socket) {
            Ok(_) | Err(ParseError::Kernel(libc::ENOENT)) => {}
            Err(err) => {
                return Err(DiagError::Reply {
                    family: id.family,
                    err,
                });
            }
        }
    }
    Ok(())
}

/// Collects the sockets that match `query` into sinks made by `make`, one
/// family per thread, and merges them.
pub fn collect<S: Sink + Send>(
    query: &Query,
    opts: Options,
    make: impl Fn() -> S + Sync,
) -> Result<Collection<S>, DiagError> {
    let start = Instant::now();
    let bc = bytecode::compile(&query.groups);
    let families = query.families();
    // One walk for both families. Raw capture keeps its per-family datagrams;
    // any failure falls back to the per-family dumps, which label errors.
    if families.len() == 2 && !opts.keep_raw {
        let mut sink = make();
        let req = build_request_both_ext(query, &bc, 1, opts.ext());
        if let Ok(stats) = dump(Family::V4, &req, None, &mut sink) {
            return Ok(Collection {
                sink,
                stats,
                elapsed: start.elapsed(),
                raw: Vec::new(),
            });
        }
    }
    let run = |family: Family| -> Result<(S, ParseStats, Option<Vec<u8>>), DiagError> {
        let mut sink = make();
        let mut raw = opts.keep_raw.then(Vec::new);
        let stats = dump_family_ext(family, query, &bc, opts.ext(), raw.as_mut(), &mut sink)?;
        Ok((sink, stats, raw))
    };
    let results: Vec<Result<_, DiagError>> = match families.as_slice() {
        [a, b] => std::thread::scope(|s| {
            let other = s.spawn(|| run(*b));
            let first = run(*a);
            let second = other
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            vec![first, second]
        }),
        _ => families.iter().map(|f| run(*f)).collect(),
    };
    let mut out: Option<Collection<S>> = None;
    for (family, res) in families.iter().zip(results) {
        let (sink, stats, raw) = res?;
        match out.as_mut() {
            None => {
                out = Some(Collection {
                    sink,
                    stats,
                    elapsed: Duration::ZERO,
                    raw: Vec::new(),
                })
            }
            Some(c) => {
                c.sink.absorb(sink);
                c.stats.add(&stats);
            }
        }
        if let (Some(c), Some(raw)) = (out.as_mut(), raw) {
            c.raw.push((*family, raw));
        }
    }
    let mut c = match out {
        Some(c) => c,
        None => Collection {
            sink: make(),
            stats: ParseStats::default(),
            elapsed: Duration::ZERO,
            raw: Vec::new(),
        },
    };
    c.elapsed = start.elapsed();
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use caps::{CapSet, Capability};

    #[test]
    fn a_dump_gives_net_admin_back() {
        let before = caps::has_cap(None, CapSet::Effective, Capability::CAP_NET_ADMIN).unwrap();
        let during = {
            let _g = NetAdminLowered::new();
            caps::has_cap(None, CapSet::Effective, Capability::CAP_NET_ADMIN).unwrap()
        };
        assert!(!during, "lowered while dumping");
        let q = Query::default();
        collect(&q, Options::default(), Vec::new).unwrap();
        let after = caps::has_cap(None, CapSet::Effective, Capability::CAP_NET_ADMIN).unwrap();
        assert_eq!(before, after);
    }

    /// For a network administrator the kernel adds a mark attribute to each
    /// full socket it dumps, deciding at every recvmsg from the calling task:
    /// the receiving thread must lower the capability too. Enough sockets
    /// that the receiving thread reads most of the dump.
    #[test]
    fn no_marks_in_a_dump_read_on_two_threads() {
        use std::net::{TcpListener, TcpStream};
        const INET_DIAG_MARK: u16 = 15;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut keep = Vec::new();
        for _ in 0..1500 {
            keep.push(TcpStream::connect(l.local_addr().unwrap()).unwrap());
            keep.push(l.accept().unwrap().0);
        }
        let q = Query {
            groups: vec![vec![crate::filter::Cond::Port(
                crate::filter::Side::Either,
                crate::filter::PortRange { lo: port, hi: port },
            )]],
            ..Query::default()
        };
        let mut raw = Vec::new();
        let mut got = Vec::<SocketRecord>::new();
        let bc = bytecode::compile(&q.groups);
        dump_family(Family::V4, &q, &bc, Some(&mut raw), &mut got).unwrap();
        assert!(got.len() > 3000, "{} sockets", got.len());
        let mut off = 0;
        while off + parse::NLMSG_HDRLEN <= raw.len() {
            let len = crate::wire::u32_ne(&raw, off) as usize;
            let ty = crate::wire::u16_ne(&raw, off + 4);
            if ty == parse::SOCK_DIAG_BY_FAMILY {
                let mut a = off + parse::NLMSG_HDRLEN + parse::INET_DIAG_MSG_LEN;
                while a + 4 <= off + len {
                    let alen = crate::wire::u16_ne(&raw, a) as usize;
                    assert_ne!(
                        crate::wire::u16_ne(&raw, a + 2),
                        INET_DIAG_MARK,
                        "a mark at byte {a}"
                    );
                    a += (alen.max(4) + 3) & !3;
                }
            }
            off += (len + 3) & !3;
        }
    }
}
