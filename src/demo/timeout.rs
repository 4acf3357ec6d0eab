//! A connection that times out goes straight to CLOSED: no TIME_WAIT.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;

use super::Checks;
use super::close::LIMIT;
use super::model::ScenarioResult;
use super::sock;
use super::timeline::Ctx;
use crate::state::TcpState::*;

pub const CLAIM: &str = "a connection that times out (TCP_USER_TIMEOUT, the peer silent) fails with ETIMEDOUT and goes straight to CLOSED, with no TIME_WAIT";

pub fn run(ctx: &Ctx) -> Result<ScenarioResult> {
    let (mut tl, _l, c, s) = super::close::start(ctx)?;
    if !sock::filters_allowed(&*s)? {
        return Ok(super::close::refused("timeout", CLAIM, tl, c, s));
    }
    tl.act("client: TCP_USER_TIMEOUT 500 ms", || {
        Ok(sock::set_user_timeout(&*c, 500)?)
    })?;
    tl.act("server: drop-all filter on (it hears nothing)", || {
        Ok(sock::drop_all(&*s)?)
    })?;
    let sent = tl.act("client: send 10 bytes", || {
        (&*c).write_all(b"0123456789")?;
        Ok(Instant::now())
    })?;
    tl.wait_for(LIMIT, |c, _| c.is_none())?;
    let after = sent.elapsed();
    let err = sock::take_error(&*c)?;
    tl.note(&format!(
        "client: gone after {} ms; SO_ERROR is {}",
        after.as_millis(),
        sock::errno_name(err)
    ))?;

    let mut k = Checks::default();
    k.check(
        tl.steps
            .iter()
            .any(|s| s.client.is_some_and(|o| o.retransmits >= 1)),
        "the client never retransmitted",
    );
    k.check(!tl.client_ever(TimeWait), "the client entered time-wait");
    let end = tl.last_step().cloned();
    k.check(
        end.as_ref().is_some_and(|s| s.client.is_none()),
        "the client's socket is still in the table",
    );
    k.check(
        err == libc::ETIMEDOUT,
        format!("the client saw {}, not ETIMEDOUT", sock::errno_name(err)),
    );
    k.check(
        end.as_ref()
            .is_some_and(|s| s.server.is_some_and(|o| o.state == Established)),
        "the server, which heard nothing, is no longer established",
    );
    sock::abort(s);
    drop(c);
    Ok(k.finish("timeout", CLAIM, "the send timed out and the socket vanished without TIME_WAIT; the silent peer still believes it is connected", tl))
}
