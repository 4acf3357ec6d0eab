//! One recording: signals, tracefs, the instance, the read loop. Used by `who`
//! and by `list --by process --trace`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::output::{note, warn};
use crate::signals::{self, OnSignal};
use crate::trace::attribute::{Attribution, Procfs};
use crate::trace::format::FormatError;
use crate::trace::record::{Line, Rejoin};
use crate::trace::tracefs::{self, Instance};

/// How many unreadable records are shown on stderr before they are only counted.
const SHOW_UNPARSED: u64 = 3;
/// How often four-tuples too old to match any TIME_WAIT are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// What a recording produced; match TIME_WAIT sockets against `attr` next.
pub struct Recording {
    pub attr: Attribution,
    pub elapsed: Duration,
}

/// Records closes into `attr` for `duration` (zero: until SIGINT/SIGTERM),
/// printing a progress line on stderr and calling `tick` with the counts so
/// far every `interval`. The instance is gone on return, whether it returns
/// Ok or Err.
pub fn record(
    mut attr: Attribution,
    duration: Duration,
    interval: Option<Duration>,
    mut tick: impl FnMut(&mut Attribution, Duration) -> Result<()>,
) -> Result<Recording> {
    // SIGINT/SIGTERM end the recording early: the loop below sees the signal
    // and returns normally, so the instance guard runs and the report is still
    // printed. A second signal exits at once for someone who really wants out;
    // an instance left that way is removed by the next run.
    signals::install(OnSignal::Stop).context("installing the signal watcher")?;

    let (root, mounted) = tracefs::discover_or_mount()?;
    if mounted {
        note(&format!(
            "tracefs was not mounted; mounted it on {} (left mounted)",
            root.display()
        ));
    }
    for name in tracefs::remove_stale(&root) {
        note(&format!(
            "removed tracing instance {name} left by an earlier run that was killed"
        ));
    }
    let (mut inst, format) = Instance::start(&root, &tracefs::unique_name())?;
    let event = format.name.clone();
    let until = if duration.is_zero() {
        "until Ctrl-C".to_string()
    } else {
        format!("for {:.1}s", duration.as_secs_f64())
    };
    note(&format!(
        "recording TCP closes {until} (tracing instance {})",
        inst.dir.display()
    ));

    let start = Instant::now();
    let mut procfs = Procfs;
    let mut buf = Vec::with_capacity(256 * 1024);
    let mut next_progress = interval.map(|i| start + i);
    let mut next_prune = start + PRUNE_EVERY;
    let mut lines = Rejoin::default();
    let mut consume = |buf: &mut Vec<u8>, attr: &mut Attribution, final_chunk: bool| {
        let upto = if final_chunk {
            buf.len()
        } else {
            buf.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1)
        };
        let mut take = |r: Result<Line, FormatError>| match r {
            Ok(Line::Event(e)) => attr.on_event(&e, &mut procfs),
            Ok(Line::Lost { count, .. }) => attr.lost += count,
            Ok(Line::Exit { pid, comm }) => attr.on_exit(pid, &comm),
            Ok(Line::NewThread {
                creator,
                creator_tgid,
                thread,
            }) => attr.on_new_thread(creator, creator_tgid, thread, &mut procfs),
            Ok(Line::NewProcess {
                parent,
                child,
                new_netns,
            }) => attr.on_new_process(parent, child, new_netns),
            Ok(Line::Attach { pid, root, path }) => attr.on_attach(pid, root, &path),
            Ok(Line::Exec { pid }) => attr.on_exec(pid),
            Ok(Line::Ignored) => {}
            Err(e) => {
                attr.unparsed += 1;
                if attr.unparsed <= SHOW_UNPARSED {
                    warn(&e.to_string());
                }
            }
        };
        if upto > 0 {
            // The chunk ends with a newline: the last piece is empty, not a line.
            let chunk = &buf[..upto];
            let chunk = chunk.strip_suffix(b"\n").unwrap_or(chunk);
            for raw in chunk.split(|b| *b == b'\n') {
                lines.line(&String::from_utf8_lossy(raw), &event, &mut take);
            }
        }
        if final_chunk {
            lines.finish(&event, &mut take);
        }
        buf.drain(..upto);
    };
    loop {
        let now = Instant::now();
        if signals::received().is_some() || (!duration.is_zero() && now >= start + duration) {
            break;
        }
        let mut wait = Duration::from_millis(200);
        if !duration.is_zero() {
            wait = wait.min((start + duration).saturating_duration_since(now));
        }
        inst.read_some(&mut buf, wait)?;
        consume(&mut buf, &mut attr, false);
        if Instant::now() >= next_prune {
            attr.settle(&mut Procfs);
            attr.prune();
            next_prune += PRUNE_EVERY;
        }
        if let (Some(at), Some(i)) = (next_progress, interval)
            && Instant::now() >= at
        {
            let active: u64 = attr.procs.values().map(|s| s.active).sum();
            note(&format!(
                "{:.0}s: {} active closes by {} process(es), {} lost events",
                start.elapsed().as_secs_f64(),
                active,
                attr.procs.len(),
                attr.lost
            ));
            tick(&mut attr, start.elapsed())?;
            next_progress = Some(at + i);
        }
    }
    let elapsed = start.elapsed();
    inst.disable()?;
    // Whatever the buffer still holds was recorded inside the window.
    while inst.read_some(&mut buf, Duration::ZERO)? > 0 {
        consume(&mut buf, &mut attr, false);
    }
    consume(&mut buf, &mut attr, true);
    attr.settle(&mut Procfs);
    // The markers and the per-CPU counters describe the same losses: take the larger.
    attr.lost = attr.lost.max(inst.lost_from_stats());
    drop(inst);
    Ok(Recording { attr, elapsed })
}
