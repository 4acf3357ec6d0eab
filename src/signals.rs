//! The one way tw-inspect takes SIGINT and SIGTERM: both are blocked in the
//! thread that installs the watcher (and so in every thread it starts later)
//! and taken by one thread waiting in sigwait(2). No signal handler runs, so
//! there is no async-signal-safety to get wrong and no unsafe code.
//!
//! `--watch` and `who` stop cleanly on the first signal (the report is still
//! written) and exit at once on a second; `demo` resets its sockets and exits.

use std::io;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

use nix::sys::signal::{SigSet, Signal};

/// What the first signal does.
#[derive(Clone, Copy, Debug)]
pub enum OnSignal {
    /// Record it: [`received`] and [`sleep_until`] tell the program, which
    /// stops when it next looks. A second signal exits at once (128 + signal).
    Stop,
    /// Call this hook on the watcher thread, then exit with 128 + signal.
    Exit(fn(Signal)),
}

struct Watcher {
    got: Mutex<Option<Signal>>,
    woken: Condvar,
}

static WATCHER: OnceLock<Watcher> = OnceLock::new();

/// The exit status of a process ended by `sig`, as shells report it.
pub fn status_of(sig: Signal) -> i32 {
    128 + sig as i32
}

/// Installs the watcher. Call it before starting threads that must not take
/// the signals themselves. A second call changes nothing.
pub fn install(on: OnSignal) -> io::Result<()> {
    if WATCHER.get().is_some() {
        return Ok(());
    }
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().map_err(io::Error::from)?;
    let w = WATCHER.get_or_init(|| Watcher {
        got: Mutex::new(None),
        woken: Condvar::new(),
    });
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                let Ok(sig) = set.wait() else { continue };
                match on {
                    OnSignal::Exit(hook) => {
                        hook(sig);
                        std::process::exit(status_of(sig));
                    }
                    OnSignal::Stop => {
                        let mut got = w.got.lock().unwrap_or_else(|p| p.into_inner());
                        if got.is_some() {
                            std::process::exit(status_of(sig));
                        }
                        *got = Some(sig);
                        w.woken.notify_all();
                    }
                }
            }
        })?;
    Ok(())
}

/// The signal that asked the program to stop, if one came.
pub fn received() -> Option<Signal> {
    let w = WATCHER.get()?;
    *w.got.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sleeps until `deadline`; false when a signal came first (or had come).
pub fn sleep_until(deadline: Instant) -> bool {
    let Some(w) = WATCHER.get() else {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        return true;
    };
    let mut got = w.got.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if got.is_some() {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        got = w
            .woken
            .wait_timeout(got, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}
