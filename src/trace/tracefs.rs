//! tracefs: finding (or mounting) it, and a private instance that removes itself.
//!
//! A tracing instance (`instances/NAME`) has its own ring buffer, event switches
//! and filters, so `who` never touches the top-level buffer or anything another
//! tool enabled. The [`Instance`] guard disables the event and removes the
//! directory when dropped: on the normal path, on an error, on a panic, and after
//! SIGINT/SIGTERM (which only set a flag; the recording loop then returns).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use crate::trace::format::EventFormat;
use crate::trace::record::{ATTACH_EVENT, EXEC_EVENT, EXIT_EVENT, NEWTASK_EVENT};

/// Recorded beside [`EVENT`] when the kernel has them.
const AUX_EVENTS: [&str; 4] = [NEWTASK_EVENT, EXIT_EVENT, ATTACH_EVENT, EXEC_EVENT];

/// Where tracefs lives on current systems, and where we mount it if absent.
pub const DEFAULT_MOUNT: &str = "/sys/kernel/tracing";
/// Prefix of our instance names: `tw-inspect-<pid>-<random>`.
pub const INSTANCE_PREFIX: &str = "tw-inspect-";
/// The event `who` records.
pub const EVENT: &str = "sock/inet_sock_set_state";
/// Kernel-side filter: TCP only, and only the transitions `who` counts:
/// →FIN_WAIT1 (4, active close) from any other state, →LAST_ACK (9, passive
/// close), and →CLOSE (7) from ESTABLISHED (1) or CLOSE_WAIT (8), an abort.
/// FIN_WAIT1 → FIN_WAIT1 is left out: `close()` after `shutdown(SHUT_WR)`
/// (Python's http.server does this) sets the state again, but no second FIN
/// is sent and it is the same connection. Numbers from
/// include/net/tcp_states.h; `protocol` 6 is IPPROTO_TCP.
pub const FILTER: &str = "protocol == 6 && ((newstate == 4 && oldstate != 4) || newstate == 9 || (newstate == 7 && (oldstate == 1 || oldstate == 8)))";
/// Per-CPU buffer of the instance, in KiB. Events are ~130 bytes of text each
/// once formatted but ~100 bytes in the buffer: 4 MiB holds ~40,000 per CPU
/// between two reads.
pub const BUFFER_KB: u32 = 4096;

/// The actionable one-liner for a missing privilege.
pub fn privilege_hint(root: &Path) -> String {
    format!(
        "'who' needs root (CAP_SYS_ADMIN) to use tracefs at {}; without it, 'tw-inspect list --state time-wait' counts TIME_WAIT unprivileged",
        root.display()
    )
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

/// Finds the tracefs mount point in `/proc/self/mounts` text.
pub fn find_mount(mounts: &str) -> Option<PathBuf> {
    let points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (_dev, point, fstype) = (it.next()?, it.next()?, it.next()?);
            (fstype == "tracefs").then_some(point)
        })
        .collect();
    // Prefer the canonical place; /sys/kernel/debug/tracing is the old one.
    points
        .iter()
        .find(|p| **p == DEFAULT_MOUNT)
        .or(points.first())
        .map(|p| PathBuf::from(unescape_mount(p)))
}

/// /proc/self/mounts writes spaces and tabs in paths as octal escapes.
fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\134", "\\")
}

/// Returns the tracefs root, mounting it at [`DEFAULT_MOUNT`] when no tracefs
/// is mounted. The bool says whether we mounted it.
pub fn discover_or_mount() -> Result<(PathBuf, bool)> {
    let mounts = fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    if let Some(p) = find_mount(&mounts) {
        return Ok((p, false));
    }
    let root = PathBuf::from(DEFAULT_MOUNT);
    nix::mount::mount(
        Some("nodev"),
        &root,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| {
        let io = io::Error::from(e);
        if is_permission(&io) {
            anyhow!("{} (mounting tracefs: {io})", privilege_hint(&root))
        } else {
            anyhow!(
                "tracefs is not mounted and mounting it on {} failed: {io}",
                root.display()
            )
        }
    })?;
    Ok((root, true))
}

/// A private tracing instance. Dropping it disables the event and removes it.
pub struct Instance {
    pub dir: PathBuf,
    pipe: Option<File>,
    enabled: bool,
    /// The helper events enabled beside [`EVENT`].
    aux: Vec<&'static str>,
}

/// A name no other run uses: our pid plus 32 random bits from the kernel.
pub fn unique_name() -> String {
    let mut r = [0u8; 4];
    let rand = File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut r))
        .map(|_| u32::from_ne_bytes(r));
    let rand = rand.unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .elapsed()
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    });
    format!("{INSTANCE_PREFIX}{}-{rand:08x}", std::process::id())
}

/// The pid in an instance name of ours, if it is one.
pub fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(INSTANCE_PREFIX)?
        .split_once('-')?
        .0
        .parse()
        .ok()
}

/// Removes instances left by runs of ours that were killed (SIGKILL leaves no
/// chance to clean up); only names whose pid no longer exists.
pub fn remove_stale(root: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(dir) = fs::read_dir(root.join("instances")) else {
        return removed;
    };
    for ent in dir.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if let Some(pid) = owner_pid(&name)
            && !Path::new(&format!("/proc/{pid}")).exists()
            && fs::remove_dir(ent.path()).is_ok()
        {
            removed.push(name);
        }
    }
    removed
}

impl Instance {
    /// Creates the instance, checks the event's format, sets the buffer, the
    /// tgid recording and the filter, enables the event and opens the pipe.
    pub fn start(root: &Path, name: &str) -> Result<(Instance, EventFormat)> {
        let instances = root.join("instances");
        let dir = instances.join(name);
        fs::create_dir(&dir).map_err(|e| {
            if is_permission(&e) {
                anyhow!("{} (creating {}: {e})", privilege_hint(root), dir.display())
            } else if e.kind() == io::ErrorKind::NotFound {
                anyhow!(
                    "{} has no instances directory: is it tracefs? ({e})",
                    root.display()
                )
            } else {
                anyhow!("creating tracing instance {}: {e}", dir.display())
            }
        })?;
        let mut inst = Instance {
            dir,
            pipe: None,
            enabled: false,
            aux: Vec::new(),
        };
        let event_dir = inst.dir.join("events").join(EVENT);
        let format_path = event_dir.join("format");
        let text = fs::read_to_string(&format_path).with_context(|| {
            format!(
                "reading {} (does this kernel have the {EVENT} event?)",
                format_path.display()
            )
        })?;
        let format = EventFormat::parse(&text)
            .with_context(|| format!("parsing {}", format_path.display()))?;
        format
            .check_state_change()
            .with_context(|| format!("checking {}", format_path.display()))?;

        inst.write("buffer_size_kb", &BUFFER_KB.to_string())?;
        // Without it the pipe shows thread ids only; a process is what we report.
        inst.write("options/record-tgid", "1")?;
        inst.write(&format!("events/{EVENT}/filter"), FILTER)?;
        // Open the pipe before enabling, so no event can precede the reader.
        let pipe = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(inst.dir.join("trace_pipe"))
            .with_context(|| format!("opening {}/trace_pipe", inst.dir.display()))?;
        inst.pipe = Some(pipe);
        inst.write(&format!("events/{EVENT}/enable"), "1")?;
        inst.enabled = true;
        // New threads name the process of threads the tracer's cache never
        // learnt (a server's short-lived worker threads); exits name the
        // processes whose command it forgot (many short-lived clients).
        // Without them such closes read `?`, never a wrong process. New
        // processes, execs and cgroup moves name the container and namespace
        // of a process that exits before /proc can show them.
        for aux in AUX_EVENTS {
            if inst.write(&format!("events/{aux}/enable"), "1").is_ok() {
                inst.aux.push(aux);
            }
        }
        Ok((inst, format))
    }

    fn write(&self, rel: &str, value: &str) -> Result<()> {
        let p = self.dir.join(rel);
        fs::write(&p, value).with_context(|| format!("writing '{value}' to {}", p.display()))
    }

    /// Waits up to `timeout` for data, then reads whatever the pipe holds
    /// (without blocking) and appends it to `buf`. Returns the bytes read.
    pub fn read_some(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(0);
        };
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from(e)).context("waiting on trace_pipe"),
        }
        let mut total = 0;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => return Ok(total),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(total),
                Err(e) => return Err(e).context("reading trace_pipe"),
            }
        }
    }

    /// Stops recording: disables the event. Events already in the buffer stay readable.
    pub fn disable(&mut self) -> Result<()> {
        if self.enabled {
            self.write(&format!("events/{EVENT}/enable"), "0")?;
            self.enabled = false;
        }
        for aux in std::mem::take(&mut self.aux) {
            self.write(&format!("events/{aux}/enable"), "0")?;
        }
        Ok(())
    }

    /// Events the kernel overwrote or dropped, summed over the per-CPU buffers
    /// (`overrun` and `dropped events` in per_cpu/cpuN/stats).
    pub fn lost_from_stats(&self) -> u64 {
        let Ok(cpus) = fs::read_dir(self.dir.join("per_cpu")) else {
            return 0;
        };
        cpus.flatten()
            .filter_map(|c| fs::read_to_string(c.path().join("stats")).ok())
            .map(|s| parse_stats_lost(&s))
            .sum()
    }
}

/// `overrun: N` plus `dropped events: N` from a per-CPU stats file.
pub fn parse_stats_lost(stats: &str) -> u64 {
    stats
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| matches!(k.trim(), "overrun" | "dropped events"))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}

impl Drop for Instance {
    fn drop(&mut self) {
        // The kernel refuses to remove an instance whose pipe is open.
        self.pipe = None;
        if let Err(e) = self.disable() {
            crate::output::warn(&format!("{e:#}"));
        }
        let _ = fs::write(self.dir.join("events").join(EVENT).join("filter"), "0");
        // rmdir can meet EBUSY for a moment while the kernel releases the pipe.
        let mut last = None;
        for _ in 0..50 {
            match fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = last {
            crate::output::warn(&format!(
                "could not remove tracing instance {}: {e}",
                self.dir.display()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tracefs_in_mounts() {
        let m = "sysfs /sys sysfs rw 0 0\ntracefs /sys/kernel/debug/tracing tracefs rw 0 0\ntracefs /sys/kernel/tracing tracefs rw 0 0\n";
        assert_eq!(find_mount(m), Some(PathBuf::from(DEFAULT_MOUNT)));
        assert_eq!(
            find_mount("none /x\\040y tracefs rw 0 0"),
            Some(PathBuf::from("/x y"))
        );
        assert_eq!(find_mount("sysfs /sys sysfs rw 0 0\n"), None);
    }

    #[test]
    fn names_and_stats() {
        let n = unique_name();
        assert_eq!(owner_pid(&n), Some(std::process::id()));
        assert_eq!(owner_pid("other-1-2"), None);
        let stats = "entries: 3\noverrun: 5\ncommit overrun: 0\nbytes: 100\ndropped events: 2\nread events: 9\n";
        assert_eq!(parse_stats_lost(stats), 7);
    }
}
