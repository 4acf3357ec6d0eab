//! A scenario's timeline: actions taken, and every state the kernel reported for
//! the followed client and server sockets, found by cookie in a dump filtered
//! (in the kernel) on the scenario's port.

use std::io::{self, BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::model::{OBSERVED, Obs, Step};
use crate::diag::{self, Options};
use crate::filter::{Cond, PortRange, Query, Side};
use crate::socket::SocketRecord;
use crate::state::{StateSet, TcpState};

/// How often a wait polls the kernel. Short enough to catch CLOSING.
const POLL: Duration = Duration::from_millis(2);

/// Told about each step as a scenario records it (the live table).
pub trait Observer {
    fn step(&self, step: &Step) -> Result<()>;
}

/// Settings shared by every scenario.
pub struct Ctx<'o> {
    pub pace: Duration,
    /// Wait for Enter before each action (only when stdin is a terminal).
    pub step: bool,
    /// Shown the timeline as it happens (table output); none for JSON.
    pub observer: Option<&'o dyn Observer>,
    pub private_ns: bool,
    pub count: u32,
}

/// Dumps the IPv4 TCP sockets with `port` at either end: the kernel applies the filter.
pub fn dump_port(port: u16, states: StateSet) -> Result<Vec<SocketRecord>> {
    let q = Query {
        ipv6: false,
        states,
        ..Query::default()
    }
    .and(Cond::Port(Side::Either, PortRange::single(port)));
    Ok(diag::collect(&q, Options::default(), Vec::new)
        .context("reading sockets over sock_diag")?
        .sink)
}

pub struct Timeline<'c> {
    ctx: &'c Ctx<'c>,
    start: Instant,
    port: u16,
    client: Option<u64>,
    server: Option<u64>,
    pub steps: Vec<Step>,
    last: Option<(Option<Obs>, Option<Obs>)>,
}

impl<'c> Timeline<'c> {
    pub fn new(ctx: &'c Ctx<'c>, port: u16) -> Timeline<'c> {
        Timeline {
            ctx,
            start: Instant::now(),
            port,
            client: None,
            server: None,
            steps: Vec::new(),
            last: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Watches another port from now on (the kernel-side filter changes with it).
    pub fn watch_port(&mut self, port: u16) {
        self.port = port;
        self.last = None;
    }

    /// Follows these sockets (by cookie) from now on.
    pub fn follow(&mut self, client: Option<u64>, server: Option<u64>) {
        self.client = client;
        self.server = server;
        self.last = None;
    }

    pub fn snapshot(&self) -> Result<Vec<SocketRecord>> {
        dump_port(self.port, StateSet::all())
    }

    /// The followed sockets as the kernel reports them now.
    pub fn look(&self) -> Result<(Option<Obs>, Option<Obs>)> {
        let recs = self.snapshot()?;
        let find = |c: Option<u64>| {
            c.and_then(|c| recs.iter().find(|r| r.cookie == c).map(Obs::from_record))
        };
        Ok((find(self.client), find(self.server)))
    }

    /// Pauses (pace or Enter), performs `f`, then records what the kernel reports.
    pub fn act<T>(&mut self, action: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.pause();
        let out = f()?;
        let (c, s) = self.look()?;
        self.record(action, c, s)?;
        Ok(out)
    }

    /// Records a step for something that needs no pause (a result, a note).
    pub fn note(&mut self, action: &str) -> Result<()> {
        let (c, s) = self.look()?;
        self.record(action, c, s)
    }

    /// Polls until `pred` holds or `limit` passes, recording every change of
    /// state, timer or retransmit count as an `observed` step. True if it held.
    pub fn wait_for(
        &mut self,
        limit: Duration,
        pred: impl Fn(Option<Obs>, Option<Obs>) -> bool,
    ) -> Result<bool> {
        let deadline = Instant::now() + limit;
        loop {
            let (c, s) = self.look()?;
            let changed = match self.last {
                Some((lc, ls)) => !Obs::same_phase(lc, c) || !Obs::same_phase(ls, s),
                None => true,
            };
            if changed {
                self.record(OBSERVED, c, s)?;
            }
            if pred(c, s) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(POLL);
        }
    }

    fn record(&mut self, action: &str, client: Option<Obs>, server: Option<Obs>) -> Result<()> {
        let step = Step {
            t_ms: self.start.elapsed().as_millis() as u64,
            action: action.to_string(),
            client,
            server,
        };
        if let Some(o) = self.ctx.observer {
            o.step(&step)?;
        }
        self.last = Some((client, server));
        self.steps.push(step);
        Ok(())
    }

    fn pause(&self) {
        if self.steps.is_empty() {
            return;
        }
        if self.ctx.step && io::stdin().is_terminal() {
            let mut err = io::stderr().lock();
            let _ = err.write_all(b"  [Enter] ");
            let _ = err.flush();
            drop(err);
            let mut line = String::new();
            let _ = io::stdin().lock().read_line(&mut line);
        } else if !self.ctx.pace.is_zero() {
            std::thread::sleep(self.ctx.pace);
        }
    }

    // ---- questions the verdicts ask ----

    pub fn client_ever(&self, st: TcpState) -> bool {
        self.steps
            .iter()
            .any(|s| s.client.is_some_and(|o| o.state == st))
    }

    pub fn server_ever(&self, st: TcpState) -> bool {
        self.steps
            .iter()
            .any(|s| s.server.is_some_and(|o| o.state == st))
    }

    pub fn last_step(&self) -> Option<&Step> {
        self.steps.last()
    }
}
