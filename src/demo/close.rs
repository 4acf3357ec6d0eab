//! How connections end: who closes first, an abort, both at once.

use std::io::Read;
use std::net::Shutdown;
use std::time::Duration;

use anyhow::{Context, Result};

use super::Checks;
use super::model::ScenarioResult;
use super::sock;
use super::timeline::{Ctx, Timeline};
use crate::state::TcpState::{self, *};

/// How long any single transition may take on a loaded machine. The slowest
/// expected is a FIN retransmission after exponential backoff (about 1.4 s).
pub const LIMIT: Duration = Duration::from_secs(8);

fn is(o: Option<super::model::Obs>, st: TcpState) -> bool {
    o.is_some_and(|o| o.state == st)
}

/// Opens a connection on a fresh listener and follows both ends.
pub fn start<'c>(
    ctx: &'c Ctx,
) -> Result<(Timeline<'c>, sock::Listener, sock::Stream, sock::Stream)> {
    let l = sock::listen(0, false).context("listening on 127.0.0.1")?;
    let port = sock::port_of(&l)?;
    let mut tl = Timeline::new(ctx, port);
    let (c, s) = sock::pair(&l, None, false).context("connecting on 127.0.0.1")?;
    tl.follow(Some(sock::cookie(&*c)?), Some(sock::cookie(&*s)?));
    tl.note(&format!("client connects to port {port}, server accepts"))?;
    Ok((tl, l, c, s))
}

pub const ACTIVE_CLAIM: &str = "the side that closes first goes through FIN_WAIT1 and FIN_WAIT2 to TIME_WAIT for about 60 s; the other side passes CLOSE_WAIT and LAST_ACK and is gone";

pub fn active_close(ctx: &Ctx) -> Result<ScenarioResult> {
    let (mut tl, _l, c, s) = start(ctx)?;
    let mut k = Checks::default();
    let hold = sock::filters_allowed(&*s)?;
    if hold {
        tl.act(
            "server: drop-all filter on, to hold the FIN in flight",
            || Ok(sock::drop_all(&*s)?),
        )?;
    } else {
        k.skip(format!("showing FIN_WAIT1: {}", sock::FILTER_REFUSED));
    }
    tl.act("client: close()", || {
        drop(c);
        Ok(())
    })?;
    if hold {
        tl.wait_for(LIMIT, |c, _| is(c, FinWait1))?;
        tl.act("server: filter off", || Ok(sock::undrop(&*s)?))?;
    }
    tl.wait_for(LIMIT, |c, s| is(c, FinWait2) && is(s, CloseWait))?;
    tl.act("server: close()", || {
        drop(s);
        Ok(())
    })?;
    tl.wait_for(LIMIT, |c, s| is(c, TimeWait) && s.is_none())?;

    k.check(
        !hold || tl.client_ever(FinWait1),
        "the client was never seen in fin-wait-1",
    );
    k.check(
        tl.client_ever(FinWait2),
        "the client was never seen in fin-wait-2",
    );
    k.check(
        tl.server_ever(CloseWait),
        "the server was never seen in close-wait",
    );
    k.check(
        !tl.server_ever(TimeWait),
        "the server, which closed second, entered time-wait",
    );
    let end = tl.last_step().cloned();
    match end.as_ref().and_then(|s| s.client) {
        Some(o) if o.state == TimeWait => k.check(
            (55_000..=60_000).contains(&o.expires_ms),
            format!(
                "the client's time-wait had {} ms left, not 55-60 s",
                o.expires_ms
            ),
        ),
        other => k.fail(format!(
            "the client ended in {} instead of time-wait",
            super::model::Obs::describe(other)
        )),
    }
    k.check(
        end.is_some_and(|s| s.server.is_none()),
        "the server's socket did not leave the table",
    );
    Ok(k.finish(
        "active-close",
        ACTIVE_CLAIM,
        "the client, which closed first, holds TIME_WAIT; the server left without one",
        tl,
    ))
}

pub const SERVER_CLAIM: &str = "when the server closes first, the TIME_WAIT is on the server's port: busy servers that close connections pile it up";

pub fn server_close(ctx: &Ctx) -> Result<ScenarioResult> {
    let (mut tl, _l, c, s) = start(ctx)?;
    tl.act("server: close()", || {
        drop(s);
        Ok(())
    })?;
    tl.wait_for(LIMIT, |c, s| is(c, CloseWait) && is(s, FinWait2))?;
    tl.act("client: close()", || {
        drop(c);
        Ok(())
    })?;
    tl.wait_for(LIMIT, |c, s| c.is_none() && is(s, TimeWait))?;

    let mut k = Checks::default();
    k.check(
        tl.client_ever(CloseWait),
        "the client was never seen in close-wait",
    );
    k.check(
        !tl.client_ever(TimeWait),
        "the client, which closed second, entered time-wait",
    );
    let port = tl.port();
    let tw = super::timeline::dump_port(port, crate::state::StateSet::from_states(&[TimeWait]))?;
    k.check(
        tw.iter().any(|r| r.local_port == port),
        format!("no time-wait socket has the server's port {port} as its local port"),
    );
    k.check(
        tl.last_step().is_some_and(|s| s.client.is_none()),
        "the client's socket did not leave the table",
    );
    Ok(k.finish(
        "server-close",
        SERVER_CLAIM,
        "the TIME_WAIT sits on the server's own port",
        tl,
    ))
}

pub const ABORT_CLAIM: &str = "not every close leaves TIME_WAIT: close with SO_LINGER {on, 0} sends RST, no side keeps TIME_WAIT and the peer's read fails with ECONNRESET";

pub fn abort(ctx: &Ctx) -> Result<ScenarioResult> {
    let (mut tl, _l, c, s) = start(ctx)?;
    tl.act("client: SO_LINGER {on, 0}", || {
        Ok(sock::set_linger_zero(&*c)?)
    })?;
    tl.act("client: close(), which sends RST", || {
        drop(c);
        Ok(())
    })?;
    tl.wait_for(LIMIT, |c, s| c.is_none() && s.is_none())?;
    let mut buf = [0u8; 16];
    let read = (&*s).read(&mut buf);
    let err = match &read {
        Ok(n) => format!("returned {n} bytes"),
        Err(e) => format!("fails with {}", sock::errno_name(sock::errno(e))),
    };
    tl.note(&format!("server: read() {err}"))?;

    let mut k = Checks::default();
    k.check(
        !tl.client_ever(TimeWait) && !tl.server_ever(TimeWait),
        "a followed socket entered time-wait",
    );
    let left =
        super::timeline::dump_port(tl.port(), crate::state::StateSet::from_states(&[TimeWait]))?;
    k.check(
        left.is_empty(),
        format!("{} time-wait socket(s) on the port", left.len()),
    );
    k.check(
        matches!(&read, Err(e) if sock::errno(e) == libc::ECONNRESET),
        format!("the server's read() {err}, not ECONNRESET"),
    );
    k.check(
        tl.last_step()
            .is_some_and(|s| s.client.is_none() && s.server.is_none()),
        "a socket stayed in the table",
    );
    Ok(k.finish(
        "abort",
        ABORT_CLAIM,
        "RST ended it: no TIME_WAIT anywhere, the peer saw ECONNRESET",
        tl,
    ))
}

pub const SIMULTANEOUS_CLAIM: &str =
    "when both sides close at once, both pass FIN_WAIT1 and CLOSING and both end in TIME_WAIT";

pub fn simultaneous(ctx: &Ctx) -> Result<ScenarioResult> {
    let (mut tl, _l, c, s) = start(ctx)?;
    if !sock::filters_allowed(&*s)? {
        return Ok(refused("simultaneous", SIMULTANEOUS_CLAIM, tl, c, s));
    }
    tl.act("both: drop-all filter on", || {
        sock::drop_all(&*c)?;
        Ok(sock::drop_all(&*s)?)
    })?;
    tl.act("both: shutdown(SHUT_WR), so both FINs cross", || {
        c.shutdown(Shutdown::Write)?;
        Ok(s.shutdown(Shutdown::Write)?)
    })?;
    tl.wait_for(LIMIT, |c, s| is(c, FinWait1) && is(s, FinWait1))?;
    tl.act("client: filter off (it now gets the server's FIN)", || {
        Ok(sock::undrop(&*c)?)
    })?;
    tl.wait_for(LIMIT, |c, _| is(c, Closing))?;
    tl.act("server: filter off", || Ok(sock::undrop(&*s)?))?;
    tl.wait_for(LIMIT, |c, s| is(c, TimeWait) && is(s, TimeWait))?;

    let mut k = Checks::default();
    k.check(
        tl.steps
            .iter()
            .any(|s| is(s.client, FinWait1) && is(s.server, FinWait1)),
        "the two sides were never both in fin-wait-1",
    );
    k.check(
        tl.client_ever(Closing) || tl.server_ever(Closing),
        "no side was seen in closing",
    );
    k.check(
        tl.last_step()
            .is_some_and(|s| is(s.client, TimeWait) && is(s.server, TimeWait)),
        "the two sides did not both end in time-wait",
    );
    drop((c, s));
    Ok(k.finish(
        "simultaneous",
        SIMULTANEOUS_CLAIM,
        "both sides closed first, so both hold TIME_WAIT",
        tl,
    ))
}

/// The result of a scenario that cannot lose packets here; its sockets are reset.
pub fn refused(
    name: &'static str,
    claim: &'static str,
    tl: Timeline<'_>,
    c: sock::Stream,
    s: sock::Stream,
) -> ScenarioResult {
    sock::abort(c);
    sock::abort(s);
    let mut k = Checks::default();
    k.skip_all(sock::FILTER_REFUSED);
    k.finish(name, claim, "", tl)
}
