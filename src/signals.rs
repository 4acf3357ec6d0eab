//! The one way tw-inspect takes signals: SIGINT, SIGTERM, SIGHUP, SIGQUIT,
//! SIGUSR1, SIGUSR2 and SIGALRM are blocked in the thread that installs the
//! watcher (and so in every thread it starts later) and taken by one thread
//! waiting in sigwait(2). No signal handler runs, so there is no
//! async-signal-safety to get wrong and no unsafe code.
//!
//! Each of them means "stop": `--watch` and `who` stop cleanly on the first
//! (the report is still written, exit 0) and exit at once on a second; the
//! other commands exit at once; `demo` resets its sockets first. A command
//! that writes to stdout only installs no watcher: the default action ends it. Whenever the
//! program exits from here, the temporary files registered with
//! [`create_removed_on_exit`] are removed first, so no write leaves one behind; the
//! exit status is 128 + the signal number, as shells report a killed process.

use std::io;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use nix::sys::signal::{SigSet, Signal};

/// The signals that stop tw-inspect, in the order the exit-code table lists them.
pub const STOPPING: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGTERM,
];

/// What the first signal does.
#[derive(Clone, Copy, Debug)]
pub enum OnSignal {
    /// Record it: [`received`] and [`sleep_until`] tell the program, which
    /// stops when it next looks. A second signal exits at once (128 + signal).
    Stop,
    /// Call this hook on the watcher thread, then exit with 128 + signal.
    Exit(fn(Signal)),
}

/// Exit at once on the first signal, with nothing to do first.
pub const EXIT: OnSignal = OnSignal::Exit(|_| {});

struct Watcher {
    got: Mutex<Option<Signal>>,
    woken: Condvar,
}

static WATCHER: OnceLock<Watcher> = OnceLock::new();

/// Temporary files to remove before exiting from a signal, by registration id.
static TEMPS: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
static NEXT_ID: Mutex<u64> = Mutex::new(0);

fn temps() -> MutexGuard<'static, Vec<(u64, PathBuf)>> {
    TEMPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The exit status of a process ended by `sig`, as shells report it.
pub fn status_of(sig: Signal) -> i32 {
    128 + sig as i32
}

/// Removes the registered temporary files and exits with 128 + `sig`. The
/// registry stays locked until the process is gone, so a rename in progress
/// ([`Registered::commit`]) either finished before or never starts.
fn exit_now(sig: Signal) -> ! {
    let list = temps();
    for (_, path) in list.iter() {
        let _ = std::fs::remove_file(path);
    }
    std::process::exit(status_of(sig));
}

/// A temporary file that a signal-driven exit removes. Dropping the
/// registration forgets the path (the owner removes or renames the file).
#[derive(Debug)]
pub struct Registered {
    id: u64,
}

/// Creates a temporary file with `create` and registers `path` for removal
/// should a signal end the program. Both happen with signal exits held off,
/// so no exit can fall between the file appearing and its registration.
pub fn create_removed_on_exit<T, E>(
    path: PathBuf,
    create: impl FnOnce() -> Result<T, E>,
) -> Result<(T, Registered), E> {
    let id = {
        let mut n = NEXT_ID.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        *n
    };
    let mut list = temps();
    let made = create()?;
    list.push((id, path));
    Ok((made, Registered { id }))
}

impl Registered {
    /// Runs `f` (the rename into place) with signal exits held off, then
    /// forgets the path: a signal meanwhile waits for `f` and then exits
    /// without touching the renamed file.
    pub fn commit<T>(self, f: impl FnOnce() -> T) -> T {
        let mut list = temps();
        let out = f();
        list.retain(|(id, _)| *id != self.id);
        drop(list);
        std::mem::forget(self);
        out
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        temps().retain(|(id, _)| *id != self.id);
    }
}

/// Installs the watcher. Call it before starting threads that must not take
/// the signals themselves. A second call changes nothing.
pub fn install(on: OnSignal) -> io::Result<()> {
    if WATCHER.get().is_some() {
        return Ok(());
    }
    let mut set = SigSet::empty();
    for s in STOPPING {
        set.add(s);
    }
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
                        exit_now(sig);
                    }
                    OnSignal::Stop => {
                        let mut got = w.got.lock().unwrap_or_else(|p| p.into_inner());
                        if got.is_some() {
                            exit_now(sig);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_128_plus_the_number() {
        let got: Vec<i32> = STOPPING.iter().map(|s| status_of(*s)).collect();
        assert_eq!(got, [129, 130, 131, 138, 140, 142, 143]);
    }

    #[test]
    fn registrations_come_and_go() {
        // Other tests register files concurrently: look at these two only.
        let (pa, pb) = (
            PathBuf::from("/nonexistent/signals-a"),
            PathBuf::from("/nonexistent/signals-b"),
        );
        let has = |p: &PathBuf| temps().iter().any(|(_, q)| q == p);
        let (_, a) = create_removed_on_exit(pa.clone(), || Ok::<_, ()>(())).unwrap();
        let (_, b) = create_removed_on_exit(pb.clone(), || Ok::<_, ()>(())).unwrap();
        assert!(create_removed_on_exit(PathBuf::from("/x"), || Err::<(), _>(1)).is_err());
        assert!(
            !has(&PathBuf::from("/x")),
            "nothing registered when creating fails"
        );
        assert!(has(&pa) && has(&pb));
        drop(a);
        assert!(!has(&pa) && has(&pb));
        assert_eq!(b.commit(|| 7), 7);
        assert!(!has(&pb));
    }
}
