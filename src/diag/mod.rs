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

/// Dumps one family, calling `on_socket` for every socket the kernel sends.
pub fn dump_family(
    family: Family,
    query: &Query,
    bytecode: &[u8],
    raw: Option<&mut Vec<u8>>,
    on_socket: impl FnMut(&SocketRecord),
) -> Result<ParseStats, DiagError> {
    dump_family_ext(family, query, bytecode, 0, raw, on_socket)
}

fn dump_family_ext(
    family: Family,
    query: &Query,
    bytecode: &[u8],
    ext: u8,
    raw: Option<&mut Vec<u8>>,
    on_socket: impl FnMut(&SocketRecord),
) -> Result<ParseStats, DiagError> {
    let req = build_request_ext(family, query, bytecode, 1, ext);
    dump(family, &req, raw, on_socket)
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

/// Sends `req` (sequence number 1) and feeds every socket of the reply to
/// `on_socket`; `family` only labels errors.
fn dump(
    family: Family,
    req: &[u8],
    raw: Option<&mut Vec<u8>>,
    mut on_socket: impl FnMut(&SocketRecord),
) -> Result<ParseStats, DiagError> {
    let io_err = |what, err| DiagError::Io {
        what,
        family: Some(family),
        err,
    };
    let _plain = NetAdminLowered::new();
    let sock = Socket::new(NETLINK_SOCK_DIAG).map_err(|e| io_err("socket", e))?;
    let seq = 1;
    sock.send_to(req, &SocketAddr::new(0, 0), 0)
        .map_err(|e| io_err("send", e))?;
    let mut raw = raw;
    let mut buf = vec![0u8; RECV_BUF];
    let mut stats = ParseStats::default();
    loop {
        let n = loop {
            let mut slice = &mut buf[..];
            match sock.recv(&mut slice, libc::MSG_TRUNC) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("recv", e)),
            }
        };
        if n > buf.len() {
            return Err(DiagError::Truncated { family, len: n });
        }
        if n == 0 {
            return Err(io_err(
                "recv",
                io::Error::from(io::ErrorKind::UnexpectedEof),
            ));
        }
        let data = &buf[..n];
        if let Some(r) = raw.as_deref_mut() {
            r.extend_from_slice(data);
        }
        match parse_datagram(data, Some(seq), &mut stats, &mut on_socket) {
            Ok(Flow::More) => {}
            Ok(Flow::Done) => return Ok(stats),
            Err(err) => return Err(DiagError::Reply { family, err }),
        }
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
        let n = loop {
            let mut slice = &mut buf[..];
            match sock.recv(&mut slice, libc::MSG_TRUNC) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("recv", e)),
            }
        };
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
pub fn collect<S: Sink>(
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
        if let Ok(stats) = dump(Family::V4, &req, None, |r| sink.push(r)) {
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
        let stats = dump_family_ext(family, query, &bc, opts.ext(), raw.as_mut(), |r| {
            sink.push(r)
        })?;
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
                c.stats.sockets += stats.sockets;
                c.stats.unknown_state += stats.unknown_state;
                c.stats.interrupted |= stats.interrupted;
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
}
