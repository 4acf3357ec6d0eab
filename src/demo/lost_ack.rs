//! The article's reason 2: TIME_WAIT lets the close finish when the last ACK is lost.

use std::net::{Ipv4Addr, Shutdown};

use anyhow::{Context, Result};

use super::Checks;
use super::close::LIMIT;
use super::model::{Obs, ScenarioResult};
use super::sock::{self, Listener, Stream};
use super::timeline::{Ctx, Timeline};
use crate::diag::destroy::{self, Target};
use crate::state::TcpState::{self, *};

pub const CLAIM: &str = "when the final ACK is lost, the passive closer stays in LAST_ACK and resends its FIN; the TIME_WAIT side answers it and the close ends cleanly, where a vanished socket would answer RST";

fn is(o: Option<Obs>, st: TcpState) -> bool {
    o.is_some_and(|o| o.state == st)
}

/// Brings a new connection to: client TIME_WAIT, server LAST_ACK resending its FIN.
fn hold_last_ack(tl: &mut Timeline<'_>, l: &Listener, label: &str) -> Result<(Stream, Stream)> {
    let (c, s) = sock::pair(l, None, false).context("connecting on 127.0.0.1")?;
    tl.follow(Some(sock::cookie(&*c)?), Some(sock::cookie(&*s)?));
    tl.note(&format!("{label}: client connects, server accepts"))?;
    tl.act("client: shutdown(SHUT_WR)", || {
        Ok(c.shutdown(Shutdown::Write)?)
    })?;
    tl.wait_for(LIMIT, |c, s| is(c, FinWait2) && is(s, CloseWait))?;
    tl.act(
        "server: drop-all filter on (the client's last ACK is lost)",
        || Ok(sock::drop_all(&*s)?),
    )?;
    tl.act("server: shutdown(SHUT_WR)", || {
        Ok(s.shutdown(Shutdown::Write)?)
    })?;
    tl.wait_for(LIMIT, |c, s| {
        is(c, TimeWait) && s.is_some_and(|o| o.state == LastAck && o.retransmits >= 1)
    })?;
    Ok((c, s))
}

pub fn run(ctx: &Ctx) -> Result<ScenarioResult> {
    let l = sock::listen(0, false).context("listening on 127.0.0.1")?;
    let port = sock::port_of(&l)?;
    let mut tl = Timeline::new(ctx, port);
    let mut k = Checks::default();

    // Part 1: the TIME_WAIT socket is there to answer.
    {
        let (c, s) = sock::pair(&l, None, false).context("connecting on 127.0.0.1")?;
        if !sock::filters_allowed(&*s)? {
            return Ok(super::close::refused("lost-ack", CLAIM, tl, c, s));
        }
        sock::abort(c);
        sock::abort(s);
    }
    let (c, s) = hold_last_ack(&mut tl, &l, "1")?;
    let first = tl.steps.len();
    tl.act("server: filter off", || Ok(sock::undrop(&*s)?))?;
    tl.wait_for(LIMIT, |_, s| s.is_none())?;
    let err = sock::take_error(&*s)?;
    tl.note(&format!("server: SO_ERROR is {}", sock::errno_name(err)))?;
    let part1 = &tl.steps[..first];
    k.check(
        part1.iter().any(|s| is(s.client, TimeWait) && s.server.is_some_and(|o| o.state == LastAck && o.retransmits >= 1)),
        "the server was never seen in last-ack with a retransmitted FIN while the client held time-wait",
    );
    k.check(
        tl.last_step().is_some_and(|s| s.server.is_none()),
        "the server's socket did not leave last-ack",
    );
    k.check(
        err == 0,
        format!(
            "the server saw {} instead of a clean close",
            sock::errno_name(err)
        ),
    );
    drop((c, s));

    // Part 2: the same, with the TIME_WAIT socket destroyed first.
    let (c, s) = hold_last_ack(&mut tl, &l, "2")?;
    let cport = sock::local_port(&c)?;
    let tw = tl.look()?.0;
    let cookie = sock::cookie(&*c)?;
    let target = Target {
        local: Ipv4Addr::LOCALHOST,
        local_port: cport,
        peer: Ipv4Addr::LOCALHOST,
        peer_port: port,
        cookie,
    };
    let destroyed = if tw.is_some_and(|o| o.state == TimeWait) {
        destroy::destroy(&target)
    } else {
        Ok(())
    };
    match destroyed {
        Err(e) if matches!(sock::errno(&e), libc::EPERM | libc::EACCES) => {
            tl.note(&format!(
                "SOCK_DESTROY on the client's time-wait: {}",
                sock::errno_name(sock::errno(&e))
            ))?;
            k.skip("the second half (TIME_WAIT destroyed, FIN answered by RST): SOCK_DESTROY needs CAP_NET_ADMIN here");
            sock::abort(s);
        }
        Err(e) => return Err(e).context("SOCK_DESTROY of the client's TIME_WAIT socket"),
        Ok(()) => {
            let second = tl.steps.len();
            tl.note("SOCK_DESTROY: the client's time-wait socket removed")?;
            tl.wait_for(LIMIT, |c, _| c.is_none())?;
            tl.act("server: filter off; its next FIN finds no socket", || {
                Ok(sock::undrop(&*s)?)
            })?;
            tl.wait_for(LIMIT, |_, s| s.is_none())?;
            let err = sock::take_error(&*s)?;
            tl.note(&format!("server: SO_ERROR is {}", sock::errno_name(err)))?;
            let part2 = &tl.steps[second..];
            k.check(
                part2
                    .iter()
                    .any(|s| s.client.is_none() && is(s.server, LastAck)),
                "the destroyed time-wait socket was still seen",
            );
            k.check(
                tl.last_step().is_some_and(|s| s.server.is_none()),
                "the server's socket did not leave last-ack",
            );
            k.check(
                err == libc::ECONNRESET,
                format!("the server saw {}, not ECONNRESET", sock::errno_name(err)),
            );
            drop(s);
        }
    }
    drop(c);
    Ok(k.finish(
        "lost-ack",
        CLAIM,
        "LAST_ACK resent its FIN, TIME_WAIT answered and the close ended cleanly; without TIME_WAIT it ended in a reset",
        tl,
    ))
}
