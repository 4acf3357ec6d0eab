//! What N TIME_WAIT sockets cost the kernel.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Checks;
use super::model::ScenarioResult;
use super::netns::{self, SysctlGuard};
use super::sock;
use super::timeline::{Ctx, Timeline, dump_port};
use crate::state::{StateSet, TcpState};

pub const CLAIM: &str = "TIME_WAIT costs little: each is a small minisocket that holds no buffers, a fraction of an established socket";

/// One line of /proc/slabinfo: objects in use and the size of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slab {
    pub active: u64,
    pub objsize: u64,
}

/// Finds a cache by name in /proc/slabinfo text.
pub fn parse_slab(text: &str, name: &str) -> Option<Slab> {
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        if f.next()? != name {
            return None;
        }
        let active = f.next()?.parse().ok()?;
        let _num: u64 = f.next()?.parse().ok()?;
        let objsize = f.next()?.parse().ok()?;
        Some(Slab { active, objsize })
    })
}

/// `tw` and `mem` (pages) from the `TCP:` line of /proc/net/sockstat.
pub fn parse_sockstat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let get = |k: &str| {
        f.iter()
            .position(|x| *x == k)
            .and_then(|i| f.get(i + 1)?.parse().ok())
    };
    Some((get("tw")?, get("mem")?))
}

fn read_slabs() -> Option<(Slab, Slab)> {
    let t = fs::read_to_string("/proc/slabinfo").ok()?;
    Some((parse_slab(&t, "tw_sock_TCP")?, parse_slab(&t, "TCP")?))
}

fn read_sockstat() -> Option<(u64, u64)> {
    parse_sockstat(&fs::read_to_string("/proc/net/sockstat").ok()?)
}

pub fn run(ctx: &Ctx) -> Result<ScenarioResult> {
    let n = ctx.count;
    let l = sock::listen(0, false).context("listening on 127.0.0.1")?;
    let port = sock::port_of(&l)?;
    let mut tl = Timeline::new(ctx, port);
    tl.note(&format!("server listens on port {port}"))?;
    // A connect more than tcp_tw_reuse_delay after an earlier one may take over
    // that one's TIME_WAIT port (tcp_tw_reuse 1, or 2 on loopback), and a slow
    // or loaded machine makes that likely: here every connection must leave its own.
    let mut guard = SysctlGuard::new();
    let reuse_off = ctx.private_ns;
    if reuse_off {
        guard.set("tcp_tw_reuse", "0")?;
        tl.note("net.ipv4.tcp_tw_reuse = 0 in the demo's namespace: no connection takes over an earlier one's TIME_WAIT")?;
    }
    let slab0 = read_slabs();
    let stat0 = read_sockstat();
    let started = Instant::now();
    tl.act(
        &format!("open {n} connections; each client closes first, then its server"),
        || {
            let mut last = None;
            for _ in 0..n {
                let (c, s) = sock::pair(&l, None, false).context("connecting on 127.0.0.1")?;
                last = Some((sock::cookie(&*c)?, sock::cookie(&*s)?));
                drop(c);
                drop(s);
            }
            Ok(last)
        },
    )
    .map(|last| {
        if let Some((c, s)) = last {
            tl.follow(Some(c), Some(s));
        }
    })?;
    let made = started.elapsed();
    let count_tw = || -> Result<u64> {
        let tw = dump_port(port, StateSet::from_states(&[TcpState::TimeWait]))?;
        Ok(tw.iter().filter(|r| r.peer_port == port).count() as u64)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tw = count_tw()?;
    while tw < u64::from(n) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        tw = count_tw()?;
    }
    tl.note(&format!(
        "sock_diag: {tw} client sockets in time-wait on port {port} (made in {} ms)",
        made.as_millis()
    ))?;
    let slab1 = read_slabs();
    let stat1 = read_sockstat();

    let mut k = Checks::default();
    let reuse = netns::read_sysctl("tcp_tw_reuse").unwrap_or_default();
    if reuse_off || reuse.trim() == "0" {
        k.check(
            tw >= u64::from(n),
            format!("only {tw} of {n} connections left a time-wait socket"),
        );
    } else {
        // On the host with reuse allowed, later connections may have taken
        // over earlier ports: fewer sockets, but each still a time-wait one.
        k.check(
            tw > 0,
            format!("none of {n} connections left a time-wait socket"),
        );
    }
    drop(guard);
    match (slab0, slab1) {
        (Some((tw0, tcp)), Some((tw1, _))) => {
            let grew = tw1.active.saturating_sub(tw0.active);
            tl.note(&format!(
                "slabinfo: tw_sock_TCP {} B each, {grew} more in use ({} KiB); an established socket's TCP object is {} B before buffers",
                tw1.objsize,
                grew * tw1.objsize / 1024,
                tcp.objsize
            ))?;
            k.check(
                tw1.objsize * 4 <= tcp.objsize,
                format!(
                    "a time-wait object ({} B) is not a small fraction of a TCP socket ({} B)",
                    tw1.objsize, tcp.objsize
                ),
            );
        }
        _ => {
            k.skip("per-socket size: /proc/slabinfo is not readable here (root only)");
        }
    }
    match (stat0, stat1) {
        (Some((tw0, mem0)), Some((tw1, mem1))) => {
            let mem = mem1.saturating_sub(mem0);
            tl.note(&format!(
                "sockstat: tw {tw0} -> {tw1}; socket buffer memory {mem0} -> {mem1} pages, i.e. no buffers held by time-wait"
            ))?;
            k.check(
                mem * 4096 < u64::from(n) * 256,
                format!("socket buffer memory grew by {mem} pages with {n} time-wait sockets"),
            );
        }
        _ => k.skip("/proc/net/sockstat is not readable"),
    }
    Ok(k.finish(
        "cost",
        CLAIM,
        &format!("{n} TIME_WAIT sockets held no buffers and took a small slab object each"),
        tl,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_slabinfo_and_sockstat() {
        let slab = "slabinfo - version: 2.1\n# name <active_objs> <num_objs> <objsize> ...\n\
                    TCPv6   60   60   2496 13 8 : tunables 0 0 0 : slabdata 5 5 0\n\
                    tw_sock_TCP  10240  10240  256 16 1 : tunables 0 0 0 : slabdata 640 640 0\n\
                    TCP     98   112   2368 13 8 : tunables 0 0 0 : slabdata 8 8 0\n";
        assert_eq!(
            parse_slab(slab, "tw_sock_TCP"),
            Some(Slab {
                active: 10240,
                objsize: 256
            })
        );
        assert_eq!(
            parse_slab(slab, "TCP"),
            Some(Slab {
                active: 98,
                objsize: 2368
            })
        );
        assert_eq!(parse_slab(slab, "UDP"), None);
        let ss =
            "sockets: used 180\nTCP: inuse 5 orphan 0 tw 10003 alloc 9 mem 2\nUDP: inuse 1 mem 0\n";
        assert_eq!(parse_sockstat(ss), Some((10003, 2)));
        assert_eq!(parse_sockstat("UDP: inuse 1"), None);
    }
}
