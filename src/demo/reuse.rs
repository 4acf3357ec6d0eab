//! The article's reason 1: a four-tuple in TIME_WAIT cannot be reused at once,
//! and what `tcp_timestamps`, `tcp_tw_reuse` and SO_REUSEADDR really change.
//! Sysctls are changed only inside the demo's private namespace.

use std::io;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Checks;
use super::close::LIMIT;
use super::model::{Obs, ScenarioResult};
use super::netns::{self, SysctlGuard};
use super::sock::{self, Listener};
use super::timeline::{Ctx, Timeline, dump_port};
use crate::state::{StateSet, TcpState};

pub const CLAIM: &str = "a four-tuple in TIME_WAIT is protected from reuse: strictly without timestamps, safely reused with them (PAWS), ephemeral ports only after tcp_tw_reuse_delay when tcp_tw_reuse allows, and a restarted server's bind needs SO_REUSEADDR on both listeners";

fn is(o: Option<Obs>, st: TcpState) -> bool {
    o.is_some_and(|o| o.state == st)
}

/// Makes a client-side TIME_WAIT towards the listener and returns its local port.
/// No pauses: part (c) needs its TIME_WAIT sockets younger than one second.
fn client_tw(tl: &mut Timeline<'_>, l: &Listener, explicit: bool, label: &str) -> Result<u16> {
    let (c, s) = if explicit {
        sock::pair(l, Some(0), true)
    } else {
        sock::pair(l, None, false)
    }
    .context("connecting on 127.0.0.1")?;
    let cport = sock::local_port(&c)?;
    tl.follow(Some(sock::cookie(&*c)?), Some(sock::cookie(&*s)?));
    let how = if explicit {
        " (bound explicitly, SO_REUSEADDR)"
    } else {
        ""
    };
    tl.note(&format!("{label}: client from port {cport}{how} connects"))?;
    drop(c);
    tl.wait_for(LIMIT, |_, s| is(s, TcpState::CloseWait))?;
    drop(s);
    tl.wait_for(LIMIT, |c, s| is(c, TcpState::TimeWait) && s.is_none())?;
    tl.note(&format!("{label}: client closed first, then server"))?;
    Ok(cport)
}

/// Describes a connect attempt for the timeline and closes a success with RST.
fn attempt(l: &Listener, r: io::Result<sock::Stream>) -> (i32, String) {
    match r {
        Ok(c) => {
            let from = sock::local_port(&c).unwrap_or(0);
            if let Ok((s, _)) = l.accept() {
                let s = sock::Tracked::new(s);
                sock::abort(s);
            }
            sock::abort(c);
            (0, format!("connected (from port {from})"))
        }
        Err(e) => (
            sock::errno(&e),
            format!("fails with {}", sock::errno_name(sock::errno(&e))),
        ),
    }
}

pub fn run(ctx: &Ctx) -> Result<ScenarioResult> {
    let l = sock::listen(0, false).context("listening on 127.0.0.1")?;
    let port = sock::port_of(&l)?;
    let mut tl = Timeline::new(ctx, port);
    let mut k = Checks::default();
    let private = ctx.private_ns;
    let no_ns = "needs a private network namespace to change sysctls";

    // (a) tcp_timestamps = 0: strict protection, whatever tcp_tw_reuse says.
    if private {
        let mut g = SysctlGuard::new();
        g.set("tcp_timestamps", "0")?;
        tl.act(
            "(a) net.ipv4.tcp_timestamps = 0 in the demo's namespace",
            || Ok(()),
        )?;
        let cport = client_tw(&mut tl, &l, true, "(a)")?;
        let tw_at = Instant::now();
        for round in 0..2 {
            if round == 1 {
                let wait = Duration::from_millis(1200).saturating_sub(tw_at.elapsed());
                tl.act(
                    &format!("(a) wait {} ms, past tcp_tw_reuse_delay", wait.as_millis()),
                    || {
                        std::thread::sleep(wait);
                        Ok(())
                    },
                )?;
            }
            for reuse in ["0", "1", "2"] {
                g.set("tcp_tw_reuse", reuse)?;
                let (e, text) = attempt(&l, sock::connect(port, Some(cport), true));
                tl.note(&format!(
                    "(a) tcp_tw_reuse={reuse}: bind :{cport}, connect {text}"
                ))?;
                k.check(
                    e == libc::EADDRNOTAVAIL,
                    format!("(a) with tcp_timestamps=0 and tcp_tw_reuse={reuse}, reusing the tuple {text}"),
                );
            }
        }
    } else {
        k.skip(format!("(a) {no_ns}"));
    }

    // (b) timestamps on: the same explicit reuse succeeds at once.
    let ts = if private {
        "1".to_string()
    } else {
        netns::read_sysctl("tcp_timestamps").unwrap_or_default()
    };
    if ts == "1" {
        let mut g = SysctlGuard::new();
        if private {
            g.set("tcp_timestamps", "1")?;
        }
        tl.act("(b) net.ipv4.tcp_timestamps = 1 (the default)", || Ok(()))?;
        let cport = client_tw(&mut tl, &l, true, "(b)")?;
        let (e, text) = attempt(&l, sock::connect(port, Some(cport), true));
        tl.note(&format!("(b) bind :{cport}, connect {text}"))?;
        k.check(
            e == 0,
            format!("(b) with timestamps on, reusing the tuple at once {text}"),
        );
    } else {
        k.skip(format!("(b) this host has tcp_timestamps={ts}"));
    }

    // (c) ephemeral range exhausted by TIME_WAIT.
    if private {
        let mut g = SysctlGuard::new();
        let range = if (40000..=40001).contains(&port) {
            (50000, 50001)
        } else {
            (40000, 40001)
        };
        g.set("tcp_tw_reuse", "2")?;
        g.set("ip_local_port_range", &format!("{} {}", range.0, range.1))?;
        tl.act(
            &format!(
                "(c) ip_local_port_range = {} {}, tcp_tw_reuse = 2",
                range.0, range.1
            ),
            || Ok(()),
        )?;
        client_tw(&mut tl, &l, false, "(c) 1st")?;
        client_tw(&mut tl, &l, false, "(c) 2nd")?;
        let tw_at = Instant::now();
        let (e, text) = attempt(&l, sock::connect(port, None, false));
        let young = tw_at.elapsed() < Duration::from_millis(900);
        tl.note(&format!("(c) third connect at once {text}"))?;
        if young {
            k.check(
                e == libc::EADDRNOTAVAIL,
                format!("(c) with both ports in TIME_WAIT, a new connect at once {text}"),
            );
        }
        let wait = Duration::from_millis(1200).saturating_sub(tw_at.elapsed());
        tl.act(
            &format!("(c) wait {} ms, past tcp_tw_reuse_delay", wait.as_millis()),
            || {
                std::thread::sleep(wait);
                Ok(())
            },
        )?;
        g.set("tcp_tw_reuse", "0")?;
        let (e0, text0) = attempt(&l, sock::connect(port, None, false));
        tl.note(&format!("(c) tcp_tw_reuse=0: connect {text0}"))?;
        k.check(
            e0 == libc::EADDRNOTAVAIL,
            format!("(c) with tcp_tw_reuse=0 a connect {text0}"),
        );
        g.set("tcp_tw_reuse", "2")?;
        let (e2, text2) = attempt(&l, sock::connect(port, None, false));
        tl.note(&format!("(c) tcp_tw_reuse=2 (loopback): connect {text2}"))?;
        k.check(
            e2 == 0,
            format!("(c) with tcp_tw_reuse=2 after the delay a connect {text2}"),
        );
    } else {
        k.skip(format!("(c) {no_ns}"));
    }
    drop(l);

    // (d) a restarted server and its listening port.
    for old_reuse in [false, true] {
        let l = sock::listen(0, old_reuse).context("listening on 127.0.0.1")?;
        let lport = sock::port_of(&l)?;
        tl.watch_port(lport);
        let (c, s) = sock::pair(&l, None, false).context("connecting on 127.0.0.1")?;
        tl.follow(Some(sock::cookie(&*c)?), Some(sock::cookie(&*s)?));
        let flag = if old_reuse { "with" } else { "without" };
        tl.act(
            &format!("(d) server on port {lport} {flag} SO_REUSEADDR; a client connects"),
            || Ok(()),
        )?;
        drop(s);
        tl.wait_for(LIMIT, |c, _| is(c, TcpState::CloseWait))?;
        drop(c);
        tl.wait_for(LIMIT, |c, s| c.is_none() && is(s, TcpState::TimeWait))?;
        tl.note("(d) server closed first, then client; the server stops listening")?;
        drop(l);
        let tw = dump_port(lport, StateSet::from_states(&[TcpState::TimeWait]))?;
        k.check(
            tw.iter().any(|r| r.local_port == lport),
            format!("(d) no time-wait on the server's port {lport}"),
        );
        for new_reuse in [false, true] {
            let r = sock::bind_only(lport, new_reuse).and_then(|fd| {
                nix::sys::socket::listen(
                    &fd,
                    nix::sys::socket::Backlog::new(16).map_err(io::Error::from)?,
                )?;
                Ok(fd)
            });
            let e = r.as_ref().err().map(sock::errno).unwrap_or(0);
            drop(r);
            let nflag = if new_reuse { "with" } else { "without" };
            let text = if e == 0 {
                "succeeds".to_string()
            } else {
                format!("fails with {}", sock::errno_name(e))
            };
            tl.note(&format!(
                "(d) new listener {nflag} SO_REUSEADDR: bind :{lport} {text}"
            ))?;
            let expect_ok = old_reuse && new_reuse;
            k.check(
                (e == 0) == expect_ok && (expect_ok || e == libc::EADDRINUSE),
                format!("(d) old listener {flag}, new {nflag} SO_REUSEADDR: bind {text}"),
            );
        }
    }
    Ok(k.finish(
        "reuse",
        CLAIM,
        "the TIME_WAIT tuple was refused or reused exactly as the knobs say",
        tl,
    ))
}
