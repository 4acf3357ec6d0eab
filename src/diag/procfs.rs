//! The fallback source: `/proc/net/tcp` and `/proc/net/tcp6`, for hosts where
//! sock_diag is missing or refused (a sandbox that forbids NETLINK_SOCK_DIAG, a
//! kernel without `inet_diag`). `ss` falls back the same way.
//!
//! The text carries less than sock_diag: no socket cookie, no interface, and
//! queue sizes of listeners mean something slightly different. Timers arrive in
//! clock ticks (USER_HZ, 100 on every Linux ABI) rather than milliseconds. The
//! kernel cannot filter here, so every record goes through [`Query::matches`].
//!
//! Line layout (`tcp4_seq_show`/`tcp6_seq_show` in net/ipv4/tcp_ipv4.c, net/ipv6/tcp_ipv6.c):
//!
//! ```text
//!   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ...
//!    1: 0100007F:1F90 0100007F:A1B2 06 00000000:00000000 03:00000893 00000000     0        0 0 ...
//! ```
//!
//! Addresses are 32-bit words printed in hex in host byte order (one word for
//! IPv4, four for IPv6); ports, state, queues, timer and retransmits are hex;
//! uid, timeout (probes) and inode are decimal.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use super::parse::ParseStats;
use super::{Collection, DiagError, Options};
use crate::filter::Query;
use crate::socket::{Family, Sink, SocketRecord, Timer, canonical};
use crate::state::TcpState;

/// Clock ticks per second as /proc reports times (`USER_HZ`).
pub const USER_HZ: u64 = 100;

/// The environment variable that chooses the source: `proc` forces this
/// fallback, `netlink` forbids it, `auto` (or unset) falls back only when
/// sock_diag is unavailable.
pub const SOURCE_ENV: &str = "TW_INSPECT_SOURCE";

/// Where a collection's sockets came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Netlink,
    /// The /proc fallback, and why it was used.
    Proc {
        reason: String,
    },
}

impl Source {
    /// The name used in JSON (`"source"`).
    pub fn name(&self) -> &'static str {
        match self {
            Source::Netlink => "netlink",
            Source::Proc { .. } => "proc",
        }
    }

    /// The one-line warning to print when the fallback was used.
    pub fn warning(&self) -> Option<String> {
        match self {
            Source::Netlink => None,
            Source::Proc { reason } => Some(format!(
                "sock_diag unavailable ({reason}); reading /proc/net/tcp instead"
            )),
        }
    }
}

/// A malformed line in a /proc table.
#[derive(Debug)]
pub struct ProcLineError {
    pub path: PathBuf,
    pub line: usize,
    pub what: &'static str,
}

impl std::fmt::Display for ProcLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} line {}: cannot read {}",
            self.path.display(),
            self.line,
            self.what
        )
    }
}

impl std::error::Error for ProcLineError {}

/// Collects from sock_diag, or from /proc when sock_diag is unavailable or
/// `TW_INSPECT_SOURCE=proc` asks for it. The caller prints [`Source::warning`].
pub fn collect_any<S: Sink + Send>(
    query: &Query,
    opts: Options,
    make: impl Fn() -> S + Sync,
) -> Result<(Collection<S>, Source)> {
    let choice = std::env::var_os(SOURCE_ENV);
    let choice = choice.as_deref().map(|v| v.to_string_lossy());
    match choice.as_deref() {
        None | Some("") | Some("auto") => match super::collect(query, opts, &make) {
            Ok(c) => Ok((c, Source::Netlink)),
            Err(e) if e.is_unavailable() => {
                let reason = short_reason(&e);
                let c = collect(query, &make).with_context(|| {
                    format!("sock_diag unavailable ({e}), and the /proc fallback failed")
                })?;
                Ok((c, Source::Proc { reason }))
            }
            Err(e) => Err(e.into()),
        },
        Some("proc") => Ok((
            collect(query, &make)?,
            Source::Proc {
                reason: format!("{SOURCE_ENV}=proc"),
            },
        )),
        Some("netlink") => Ok((super::collect(query, opts, &make)?, Source::Netlink)),
        Some(other) => crate::exit::usage(format!(
            "{SOURCE_ENV}: unknown source '{other}'; valid: auto, netlink, proc"
        )),
    }
}

/// As [`collect_any`], into one sink in the order the sockets are read (see
/// [`super::stream`]). The /proc fallback reads IPv4, then IPv6.
pub fn stream_any<S: Sink>(
    query: &Query,
    opts: Options,
    sink: &mut S,
) -> Result<(super::Streamed, Source)> {
    let choice = std::env::var_os(SOURCE_ENV);
    let choice = choice.as_deref().map(|v| v.to_string_lossy());
    let from_proc = |sink: &mut S, reason: String| -> Result<(super::Streamed, Source)> {
        let start = Instant::now();
        let stats = stream_proc(query, sink)?;
        let streamed = super::Streamed {
            stats,
            elapsed: start.elapsed(),
            raw: Vec::new(),
        };
        Ok((streamed, Source::Proc { reason }))
    };
    match choice.as_deref() {
        None | Some("") | Some("auto") => match super::stream(query, opts, sink) {
            Ok(s) => Ok((s, Source::Netlink)),
            // Refusals come before the first socket: nothing was handed over.
            Err(e) if e.is_unavailable() => {
                let reason = short_reason(&e);
                from_proc(sink, reason).with_context(|| {
                    format!("sock_diag unavailable ({e}), and the /proc fallback failed")
                })
            }
            Err(e) => Err(e.into()),
        },
        Some("proc") => from_proc(sink, format!("{SOURCE_ENV}=proc")),
        Some("netlink") => Ok((super::stream(query, opts, sink)?, Source::Netlink)),
        Some(other) => crate::exit::usage(format!(
            "{SOURCE_ENV}: unknown source '{other}'; valid: auto, netlink, proc"
        )),
    }
}

/// The errno's text, e.g. "Permission denied (os error 13)".
fn short_reason(e: &DiagError) -> String {
    match e.errno() {
        Some(n) => io::Error::from_raw_os_error(n).to_string(),
        None => e.to_string(),
    }
}

/// The table for a family, as seen by the calling thread: `thread-self` follows
/// a thread that has entered another network namespace, `self` would not.
pub fn table_path(family: Family) -> PathBuf {
    let name = match family {
        Family::V4 => "tcp",
        Family::V6 => "tcp6",
    };
    let thread = Path::new("/proc/thread-self/net").join(name);
    if thread.exists() {
        thread
    } else {
        Path::new("/proc/net").join(name)
    }
}

/// Reads both tables (as the query's families ask) into one sink made by `make`.
pub fn collect<S: Sink>(query: &Query, make: impl Fn() -> S) -> Result<Collection<S>> {
    let start = Instant::now();
    let mut sink = make();
    let stats = stream_proc(query, &mut sink)?;
    Ok(Collection {
        sink,
        stats,
        elapsed: start.elapsed(),
        raw: Vec::new(),
    })
}

/// Reads both tables (as the query's families ask) into one sink, IPv4 first.
fn stream_proc<S: Sink>(query: &Query, sink: &mut S) -> Result<ParseStats> {
    let mut stats = ParseStats::default();
    // /proc cannot narrow the families by address, so read what `ipv4`/`ipv6` allow.
    let families = [(query.ipv4, Family::V4), (query.ipv6, Family::V6)];
    for (_, family) in families.iter().filter(|(on, _)| *on) {
        if sink.stopped() {
            break;
        }
        let path = table_path(*family);
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut matched = 0;
        let s = read_table(BufReader::new(file), *family, &path, |r| {
            if query.matches(r) {
                matched += 1;
                sink.push(r);
            }
        })?;
        // Like the netlink path, count what passed the filter.
        stats.sockets += matched;
        stats.unknown_state += s.unknown_state;
    }
    Ok(stats)
}

/// Parses one table, calling `on_socket` for every line (before filtering).
/// `stats.sockets` counts the lines that parsed to a known state.
pub fn read_table(
    mut r: impl BufRead,
    family: Family,
    path: &Path,
    mut on_socket: impl FnMut(&SocketRecord),
) -> Result<ParseStats> {
    let mut stats = ParseStats::default();
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let got = r
            .read_line(&mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        if got == 0 {
            return Ok(stats);
        }
        n += 1;
        if n == 1 {
            continue; // the column header
        }
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line, family) {
            Ok(Some(rec)) => {
                stats.sockets += 1;
                on_socket(&rec);
            }
            Ok(None) => stats.unknown_state += 1,
            Err(what) => {
                return Err(ProcLineError {
                    path: path.to_path_buf(),
                    line: n,
                    what,
                }
                .into());
            }
        }
    }
}

/// Parses one socket line. `Ok(None)` is a state number this build does not know.
/// The error names the column that did not parse.
pub fn parse_line(line: &str, family: Family) -> Result<Option<SocketRecord>, &'static str> {
    let mut f = line.split_ascii_whitespace();
    let mut next = |what: &'static str| f.next().ok_or(what);
    let _slot = next("slot")?;
    let (local, local_port) = endpoint(next("local address")?, family).ok_or("local address")?;
    let (peer, peer_port) = endpoint(next("remote address")?, family).ok_or("remote address")?;
    let st = u8::from_str_radix(next("state")?, 16).map_err(|_| "state")?;
    let (tx, rx) = hex_pair(next("queues")?).ok_or("queues")?;
    let (tr, when) = hex_pair(next("timer")?).ok_or("timer")?;
    let retrans = u32::from_str_radix(next("retransmits")?, 16).map_err(|_| "retransmits")?;
    let uid: u32 = next("uid")?.parse().map_err(|_| "uid")?;
    let _probes: u32 = next("timeout")?.parse().map_err(|_| "timeout")?;
    let inode: u32 = next("inode")?.parse().map_err(|_| "inode")?;
    let Some(state) = TcpState::from_kernel(st) else {
        return Ok(None);
    };
    let timer = Timer::from_kernel(u8::try_from(tr).map_err(|_| "timer")?);
    let expires_ms = if timer == Timer::Off {
        0
    } else {
        ticks_to_ms(when)
    };
    let orphaned = crate::socket::is_orphaned(state, inode);
    Ok(Some(SocketRecord {
        family,
        state,
        orphaned,
        local,
        local_port,
        peer,
        peer_port,
        timer,
        expires_ms,
        // The kernel keeps icsk_retransmits in a u8 for sock_diag; same here.
        retransmits: retrans.min(u8::MAX as u32) as u8,
        uid,
        inode,
        cookie: 0,
        recv_q: rx,
        send_q: tx,
        ifindex: 0,
        tcp_times: None,
    }))
}

/// Clock ticks to milliseconds, saturating.
pub fn ticks_to_ms(ticks: u32) -> u32 {
    (ticks as u64 * 1000 / USER_HZ).min(u32::MAX as u64) as u32
}

fn hex_pair(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    Some((
        u32::from_str_radix(a, 16).ok()?,
        u32::from_str_radix(b, 16).ok()?,
    ))
}

/// `ADDR:PORT` with ADDR as host-order hex words. IPv4-mapped IPv6 addresses
/// become IPv4, as everywhere else.
fn endpoint(s: &str, family: Family) -> Option<(IpAddr, u16)> {
    let (a, p) = s.split_once(':')?;
    if p.len() != 4 {
        return None;
    }
    let port = u16::from_str_radix(p, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = a.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(w, 16).ok()?.to_ne_bytes())
    };
    let addr = match family {
        Family::V4 if a.len() == 8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        Family::V6 if a.len() == 32 => {
            let mut o = [0u8; 16];
            for i in 0..4 {
                o[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            canonical(IpAddr::V6(Ipv6Addr::from(o)))
        }
        _ => return None,
    };
    Some((addr, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as this kernel prints them (little-endian host).
    const V4_TW: &str = "   1: 0100007F:1F90 0200007F:A1B2 06 00000000:00000000 03:00000893 00000000     0        0 0 3 0000000000000000";
    const V4_LISTEN: &str = "   0: 00000000:07E8 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 1145 1 000000000605042b 100 0 0 10 0";
    const V6_EST: &str = "   0: 00000000000000000000000001000000:1F90 0000000000000000FFFF00000100007F:C350 01 00000010:00000020 01:0000000A 00000002  1000        0 4242 1 0000000000000000 20 4 30 10 -1";

    #[test]
    fn parses_time_wait_v4() {
        let r = parse_line(V4_TW, Family::V4).unwrap().unwrap();
        assert_eq!(r.state, TcpState::TimeWait);
        assert_eq!(r.local, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(r.peer, "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((r.local_port, r.peer_port), (8080, 0xA1B2));
        assert_eq!(r.timer, Timer::TimeWait);
        assert_eq!(r.expires_ms, 0x893 * 10);
        assert_eq!(r.inode, 0);
        assert!(!r.orphaned);
    }

    #[test]
    fn parses_listen_and_queues() {
        let r = parse_line(V4_LISTEN, Family::V4).unwrap().unwrap();
        assert_eq!(r.state, TcpState::Listen);
        assert_eq!(r.local_port, 2024);
        assert_eq!((r.send_q, r.recv_q), (0, 2));
        assert_eq!(r.inode, 1145);
        assert_eq!(r.expires_ms, 0);
    }

    #[test]
    fn parses_v6_and_unmaps_v4_mapped() {
        let r = parse_line(V6_EST, Family::V6).unwrap().unwrap();
        assert_eq!(r.family, Family::V6);
        assert_eq!(r.local, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(r.peer, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((r.local_port, r.peer_port), (8080, 50000));
        assert_eq!((r.send_q, r.recv_q), (0x10, 0x20));
        assert_eq!(r.timer, Timer::On);
        assert_eq!(r.expires_ms, 100);
        assert_eq!(r.retransmits, 2);
        assert_eq!(r.uid, 1000);
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "",
            "   1:",
            "   1: 0100007F:1F90",
            "   1: 0100007F1F90 0200007F:A1B2 06 00000000:00000000 03:00000893 00000000 0 0 0",
            "   1: 0100007F:1F90 0200007F:A1B2 0x6 00000000:00000000 03:00000893 00000000 0 0 0",
            "   1: 0100007F:1F90 0200007F:A1B2 06 00000000:00000000 03:00000893 00000000 -1 0 0",
            "   1: 0100007F:1F9 0200007F:A1B2 06 00000000:00000000 03:00000893 00000000 0 0 0",
            "   1: 00000000000000000000000001000000:1F90 0200007F:A1B2 06 0:0 0:0 0 0 0 0",
        ] {
            assert!(parse_line(bad, Family::V4).is_err(), "{bad:?}");
        }
        assert!(
            parse_line(V4_TW, Family::V6).is_err(),
            "an IPv4 address in tcp6"
        );
        let unknown = V4_TW.replace(" 06 ", " 3F ");
        assert_eq!(parse_line(&unknown, Family::V4).unwrap(), None);
    }

    #[test]
    fn reads_a_table_and_names_the_bad_line() {
        let text = format!("  sl  local_address ...\n{V4_LISTEN}\n{V4_TW}\n");
        let mut got = Vec::new();
        let s = read_table(text.as_bytes(), Family::V4, Path::new("t"), |r| {
            got.push(*r)
        })
        .unwrap();
        assert_eq!(s.sockets, 2);
        assert_eq!(got[1].state, TcpState::TimeWait);
        let text = format!("header\n{V4_LISTEN}\ngarbage\n");
        let e = read_table(text.as_bytes(), Family::V4, Path::new("t"), |_| {}).unwrap_err();
        assert!(format!("{e:#}").contains("t line 3"), "{e:#}");
    }

    #[test]
    fn ticks_saturate() {
        assert_eq!(ticks_to_ms(6000), 60_000);
        assert_eq!(ticks_to_ms(u32::MAX), u32::MAX);
    }
}
