//! `list --watch`: sample again every INTERVAL and show what changed.
//!
//! The TIME_WAIT arrival rate comes from socket cookies: a socket keeps its
//! cookie from ESTABLISHED to TIME_WAIT, and TIME_WAIT lasts 60 s, so the
//! TIME_WAIT cookies not present in the previous sample are the sockets that
//! entered TIME_WAIT in between (exact while the interval is under 60 s).
//! Keeping the previous sample's cookies costs O(TIME_WAIT) memory.
//!
//! Ctrl-C: SIGINT is blocked in every thread and taken by one thread waiting
//! in sigwait(2), which wakes the sampling loop through a channel. That needs
//! no signal handler (so no unsafe code and no extra crate) and stops even
//! in the middle of the pause between samples.

use std::collections::HashSet;
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use serde::Serialize;

use crate::aggregate::Aggregate;
use crate::cli::{ColorChoice, Format, ListArgs};
use crate::commands::list;
use crate::exit::usage;
use crate::host::netns::Scope;
use crate::output::Output;
use crate::render::{self, Style};
use crate::report::StateCounts;
use crate::sample::{self, Spec};
use crate::state::TcpState;

/// One line of `--watch --format json`.
#[derive(Serialize)]
struct WatchLine<'a> {
    /// Unix time of the sample, seconds.
    time: f64,
    /// 1 for the first sample.
    sample: u64,
    /// Seconds since the previous sample (null for the first).
    interval_s: Option<f64>,
    total: u64,
    states: &'a StateCounts,
    /// Change per state since the previous sample (null for the first).
    change: Option<StateChange>,
    /// Sockets that entered TIME_WAIT since the previous sample.
    time_wait_new: Option<u64>,
    /// The same per second.
    time_wait_rate: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    namespaces: Vec<NsLine>,
}

#[derive(Serialize)]
struct NsLine {
    netns: String,
    total: u64,
    states: StateCounts,
}

/// Signed change per state.
struct StateChange(Vec<(TcpState, i64)>);

impl Serialize for StateChange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (st, d) in &self.0 {
            m.serialize_entry(st.name(), d)?;
        }
        m.end()
    }
}

fn counts(agg: &Aggregate) -> StateCounts {
    StateCounts(TcpState::ALL.iter().map(|s| (*s, agg.count(*s))).collect())
}

/// Blocks SIGINT in this thread (and so in every thread started from now on)
/// and returns a receiver that gets a message when SIGINT arrives.
fn interrupt_channel() -> Result<mpsc::Receiver<()>> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.thread_block().context("blocking SIGINT")?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("sigint".into())
        .spawn(move || {
            if set.wait().is_ok() {
                let _ = tx.send(());
            }
        })
        .context("starting the signal thread")?;
    Ok(rx)
}

/// Waits until `deadline`; false when Ctrl-C came first.
fn pause_until(rx: &mpsc::Receiver<()>, deadline: Instant) -> bool {
    let wait = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(wait) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => false,
        Err(mpsc::RecvTimeoutError::Timeout) => true,
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `HH:MM:SS` UTC.
fn clock(t: f64) -> String {
    let s = t as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub fn run(args: &ListArgs, mut spec: Spec, interval: Duration, color: ColorChoice) -> Result<()> {
    if args.count == Some(0) {
        return usage("--count: 0 samples asked for; give 1 or more");
    }
    if args.sockets && args.output.is_none() {
        return usage(
            "--watch shows counts, not sockets: drop --sockets (or add --output FILE to rewrite a file)",
        );
    }
    if args.format == Format::Prometheus && args.output.is_none() {
        return usage("--watch with --format prometheus rewrites a file: add --output FILE");
    }
    let mut scope = Scope::from_flags(&args.filter)?;
    // Namespaces come and go (pods): find them again for every sample, and hold
    // none open between samples, which would keep a dead namespace alive.
    let rescope = |scope: &mut Scope, n: u64| -> Result<()> {
        if n > 0 && args.filter.all_netns {
            *scope = Scope::All(Vec::new());
            *scope = Scope::resolve(&args.filter, false)?;
        }
        Ok(())
    };
    let stop = interrupt_channel()?;
    let mut next = Instant::now();
    let mut n: u64 = 0;

    // With --output: the full report, rewritten atomically every sample.
    if let Some(path) = &args.output {
        loop {
            rescope(&mut scope, n)?;
            let mut out = Output::open(Some(path))?;
            let style = Style::resolve(color, false);
            let source = list::Source::Live(&scope);
            match list::collect_or_down(&mut out, args, &spec, &source)? {
                Ok(samples) => list::write_report(&mut out, args, &spec, &source, &samples, style)?,
                Err(e) => {
                    out.finish()?;
                    return Err(e);
                }
            }
            out.finish()?;
            n += 1;
            if args.count.is_some_and(|c| n >= c) {
                return Ok(());
            }
            next = (next + interval).max(Instant::now());
            if !pause_until(&stop, next) {
                return Ok(());
            }
        }
    }

    spec.tw_cookies = true;
    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
    let terminal =
        std::io::IsTerminal::is_terminal(&std::io::stdout()) && args.format == Format::Table;
    let style = Style::resolve(color, terminal);
    let mut prev: Option<(Instant, StateCounts, HashSet<u64>)> = None;
    loop {
        rescope(&mut scope, n)?;
        let samples = sample::collect_scope(&scope, &spec)?;
        let at = Instant::now();
        let time = unix_now();
        n += 1;
        let total = sample::total(&samples, &spec);
        let mut cookies = HashSet::new();
        for (_, s) in &samples {
            cookies.extend(s.tw_cookies.iter().copied());
        }
        let now_counts = counts(&total);
        let (dt, change, new) = match &prev {
            None => (None, None, None),
            Some((t0, c0, k0)) => {
                let ch = StateChange(
                    TcpState::ALL
                        .iter()
                        .map(|s| (*s, now_counts.get(*s) as i64 - c0.get(*s) as i64))
                        .collect(),
                );
                let new = cookies.iter().filter(|c| !k0.contains(c)).count() as u64;
                (
                    Some(at.duration_since(*t0).as_secs_f64()),
                    Some(ch),
                    Some(new),
                )
            }
        };
        let rate = match (new, dt) {
            (Some(k), Some(d)) if d > 0.0 => Some(k as f64 / d),
            _ => None,
        };
        match args.format {
            Format::Json => {
                let line = WatchLine {
                    time,
                    sample: n,
                    interval_s: dt,
                    total: total.total,
                    states: &now_counts,
                    change,
                    time_wait_new: new,
                    time_wait_rate: rate,
                    namespaces: if scope.labelled() {
                        samples
                            .iter()
                            .map(|(l, s)| NsLine {
                                netns: l.clone().unwrap_or_default(),
                                total: s.agg.total,
                                states: counts(&s.agg),
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                };
                render::json::write_line(&mut w, &line)?;
            }
            Format::Csv => {
                if n == 1 {
                    let names: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
                    writeln!(
                        w,
                        "time,total,{},time_wait_new,time_wait_rate",
                        names.join(",")
                    )?;
                }
                let vals: Vec<String> = now_counts.0.iter().map(|(_, c)| c.to_string()).collect();
                let opt = |v: Option<String>| v.unwrap_or_default();
                writeln!(
                    w,
                    "{time:.3},{},{},{},{}",
                    total.total,
                    vals.join(","),
                    opt(new.map(|v| v.to_string())),
                    opt(rate.map(|r| format!("{r:.2}")))
                )?;
            }
            _ if terminal => {
                write!(w, "\x1b[H\x1b[2J")?;
                writeln!(
                    w,
                    "tw-inspect list --watch: every {:.1}s, sample {n} at {} UTC; Ctrl-C stops",
                    interval.as_secs_f64(),
                    clock(time)
                )?;
                let mut t = render::table::new_table(style, &["State", "Sockets", "Change"]);
                for (i, (st, c)) in now_counts.0.iter().enumerate() {
                    let d = change.as_ref().map(|ch| ch.0[i].1);
                    if *c == 0 && d.unwrap_or(0) == 0 && *st != TcpState::TimeWait {
                        continue;
                    }
                    t.add_row(vec![
                        st.name().to_string(),
                        render::table::grouped(*c),
                        d.map_or(String::new(), |d| format!("{d:+}")),
                    ]);
                }
                writeln!(w, "{t}")?;
                writeln!(w, "Total {}", render::table::grouped(total.total))?;
                match (rate, new) {
                    (Some(r), Some(k)) => writeln!(
                        w,
                        "Entering TIME_WAIT: {r:.1}/s ({k} new since the last sample)"
                    )?,
                    _ => writeln!(w, "Entering TIME_WAIT: measured from the second sample on")?,
                }
            }
            _ => {
                let mut parts = vec![format!("{} total={}", clock(time), total.total)];
                for (i, (st, c)) in now_counts.0.iter().enumerate() {
                    if *c == 0 && *st != TcpState::TimeWait {
                        continue;
                    }
                    match &change {
                        Some(ch) => parts.push(format!("{}={c}({:+})", st.name(), ch.0[i].1)),
                        None => parts.push(format!("{}={c}", st.name())),
                    }
                }
                if let Some(r) = rate {
                    parts.push(format!("time-wait-rate={r:.1}/s"));
                }
                writeln!(w, "{}", parts.join(" "))?;
            }
        }
        w.flush()?;
        prev = Some((at, now_counts, cookies));
        if args.count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        next = (next + interval).max(Instant::now());
        if !pause_until(&stop, next) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_utc_hms() {
        assert_eq!(clock(86_400.0 * 3.0 + 3661.5), "01:01:01");
    }
}
