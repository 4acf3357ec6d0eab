//! Where output goes: stdout, or a regular file replaced atomically so that a
//! reader (node_exporter's textfile collector, a script) never sees it
//! half-written; and the one way to write a line on stderr.
//!
//! tw-inspect runs as root in directories other users may own, so the rules
//! for `--output` and `--save` are strict:
//!
//! - The last component of the path is never followed. A symbolic link there
//!   is refused (not replaced: whoever made it meant something by it, and
//!   replacing it silently would surprise them as much as following it would
//!   surprise root). A directory, FIFO, socket or device is refused too; a pipe
//!   is what stdout is for. Both exit 1 with one line naming the path and what
//!   it is. Directories on the way to it are followed as usual.
//! - The report is written to a new file in the same directory, created with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW` relative to the opened directory, then
//!   synced and renamed over the path (`renameat`), and the directory synced.
//!   Nothing is ever written through an existing name.
//! - The new file takes the permission bits (`0o777` only: never setuid, setgid
//!   or sticky) of the regular file it replaces, read with `lstat`; a file that
//!   did not exist is created `0644` less the umask. Its owner is the user
//!   running tw-inspect.
//! - The temporary file is `.NAME.tw-inspect-PID-RANDOM.tmp`. It is removed on
//!   an error, on drop, and by a signal ([`signals::create_removed_on_exit`]); one left
//!   by SIGKILL or a crash is removed by the next run writing the same NAME when
//!   it belongs to the same user, is older than a minute and its PID is no
//!   longer running.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::exit::UsageError;
use crate::signals;

/// What a temporary file's name carries between `.NAME` and `.tmp`.
const TEMP_TAG: &str = ".tw-inspect-";
/// A temporary file this old, whose writer is gone, was left by a killed run.
const STALE_AFTER: Duration = Duration::from_secs(60);
/// Longest part of NAME kept in a temporary file's name, so the whole stays
/// under NAME_MAX (255 bytes).
const NAME_IN_TEMP: usize = 200;

/// A destination for a command's output.
pub enum Output {
    Stdout(BufWriter<io::Stdout>),
    File(Box<Replacement>),
}

/// A regular file being written aside, renamed over its path by [`Output::finish`].
pub struct Replacement {
    w: BufWriter<File>,
    dir: OwnedFd,
    tmp_name: OsString,
    name: OsString,
    path: PathBuf,
    /// Present until the rename: a signal-driven exit removes the file.
    registered: Option<signals::Registered>,
}

impl Output {
    /// Opens stdout, or a temporary file next to `path` for `--output`.
    /// Opening first means an unwritable destination fails before any work.
    pub fn open(path: Option<&Path>) -> Result<Output> {
        match path {
            None => Ok(Output::Stdout(BufWriter::with_capacity(
                64 * 1024,
                io::stdout(),
            ))),
            Some(p) => Output::replace(p, "--output"),
        }
    }

    /// A temporary file next to `path`, which will replace it; `flag` names
    /// the option in messages (`--output`, `--save`).
    pub fn replace(path: &Path, flag: &str) -> Result<Output> {
        if path.as_os_str().is_empty() {
            return Err(UsageError(format!("{flag} '': empty file name")).into());
        }
        let shown = path.display().to_string();
        let Some(name) = path.file_name().map(OsStr::to_os_string) else {
            return Err(anyhow!(
                "{flag}: '{shown}' names a directory, not a file; give a file name"
            ));
        };
        let dir_path = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let dir = openat(
            nix::fcntl::AT_FDCWD,
            dir_path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)
        .with_context(|| {
            format!(
                "cannot write '{shown}': opening its directory '{}'",
                dir_path.display()
            )
        })?;
        let mode = match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Some(existing_mode(&st, &dir, &name, flag, &shown)?),
            Err(Errno::ENOENT) => None,
            Err(e) => {
                return Err(io::Error::from(e)).with_context(|| format!("cannot write '{shown}'"));
            }
        };
        // A signal must find the file registered: the watcher (unless the
        // command started one of its own) starts here, before any collecting
        // thread exists, so every thread leaves the signals to it.
        signals::install(signals::EXIT).context("installing the signal watcher")?;
        remove_stale(&dir, dir_path, &name);
        let tmp_name = temp_name(&name, std::process::id(), random32());
        let create = || {
            openat(
                &dir,
                tmp_name.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
        };
        let (fd, registered) = signals::create_removed_on_exit(dir_path.join(&tmp_name), create)
            .map_err(io::Error::from)
            .with_context(|| {
                format!(
                    "cannot write '{shown}': creating a temporary file in '{}'",
                    dir_path.display()
                )
            })?;
        let rep = Replacement {
            w: BufWriter::with_capacity(64 * 1024, File::from(fd)),
            dir,
            tmp_name,
            name,
            path: path.to_path_buf(),
            registered: Some(registered),
        };
        if let Some(mode) = mode {
            // Before the first byte is written: the data never has looser
            // permissions than the file it replaces.
            fchmod(rep.w.get_ref().as_fd(), mode)
                .map_err(io::Error::from)
                .with_context(|| format!("setting permissions for '{shown}'"))?;
        }
        Ok(Output::File(Box::new(rep)))
    }

    pub fn is_terminal(&self) -> bool {
        match self {
            Output::Stdout(_) => io::IsTerminal::is_terminal(&io::stdout()),
            Output::File(_) => false,
        }
    }

    /// Flushes, and for a file: syncs it, renames it into place and syncs the
    /// directory. Dropping an `Output` without finishing removes the temporary file.
    pub fn finish(self) -> Result<()> {
        match self {
            Output::Stdout(mut w) => w.flush().context("writing to stdout"),
            Output::File(rep) => (*rep).finish(),
        }
    }
}

impl Replacement {
    fn finish(mut self) -> Result<()> {
        let shown = self.path.display().to_string();
        self.w
            .flush()
            .with_context(|| format!("writing '{shown}'"))?;
        self.w
            .get_ref()
            .sync_all()
            .with_context(|| format!("syncing '{shown}'"))?;
        let registered = self.registered.take().expect("registered until renamed");
        let renamed = registered.commit(|| {
            renameat(
                &self.dir,
                self.tmp_name.as_os_str(),
                &self.dir,
                self.name.as_os_str(),
            )
        });
        match renamed {
            Ok(()) => {
                // Renamed: nothing to remove on drop any more.
                self.tmp_name.clear();
                // The rename is durable once the directory is; a directory
                // that cannot be synced (some network file systems) is not an error.
                let _ = nix::unistd::fsync(&self.dir);
                Ok(())
            }
            Err(e) => Err(io::Error::from(e))
                .with_context(|| format!("renaming the temporary file onto '{shown}'")),
        }
    }
}

impl Drop for Replacement {
    fn drop(&mut self) {
        if !self.tmp_name.is_empty() {
            let _ = unlinkat(
                &self.dir,
                self.tmp_name.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

/// The permission bits for the file that replaces `st`, or why it may not be replaced.
fn existing_mode(
    st: &FileStat,
    dir: &OwnedFd,
    name: &OsStr,
    flag: &str,
    shown: &str,
) -> Result<Mode> {
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let what = match kind {
        SFlag::S_IFREG => return Ok(Mode::from_bits_truncate(st.st_mode & 0o777)),
        SFlag::S_IFLNK => {
            let to = nix::fcntl::readlinkat(dir, name)
                .map(|t| format!(" to '{}'", t.to_string_lossy()))
                .unwrap_or_default();
            return Err(anyhow!(
                "{flag}: '{shown}' is a symbolic link{to}; tw-inspect neither follows nor replaces one: give the path of a regular file"
            ));
        }
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        _ => "not a regular file",
    };
    Err(anyhow!(
        "{flag}: '{shown}' is {what}; tw-inspect writes regular files only, replacing them whole (for a pipe or a terminal, leave out {flag} and use stdout)"
    ))
}

/// `.NAME.tw-inspect-PID-RANDOM.tmp`, with NAME cut to fit NAME_MAX.
fn temp_name(name: &OsStr, pid: u32, rand: u32) -> OsString {
    let mut v = b".".to_vec();
    v.extend_from_slice(name_part(name));
    v.extend_from_slice(format!("{TEMP_TAG}{pid}-{rand:08x}.tmp").as_bytes());
    OsString::from_vec(v)
}

fn name_part(name: &OsStr) -> &[u8] {
    let b = name.as_bytes();
    &b[..b.len().min(NAME_IN_TEMP)]
}

/// The writer's PID of a temporary file made for `name`, if `entry` is one.
fn temp_owner(entry: &[u8], name: &OsStr) -> Option<u32> {
    let rest = entry.strip_prefix(b".")?.strip_prefix(name_part(name))?;
    let rest = rest.strip_prefix(TEMP_TAG.as_bytes())?;
    let rest = rest.strip_suffix(b".tmp")?;
    let (pid, rand) = std::str::from_utf8(rest).ok()?.split_once('-')?;
    (rand.len() == 8 && rand.bytes().all(|b| b.is_ascii_hexdigit())).then_some(())?;
    pid.parse().ok()
}

fn random32() -> u32 {
    let mut b = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut b))
        .is_ok()
    {
        return u32::from_ne_bytes(b);
    }
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

/// Removes temporary files for `name` left by runs that were killed: regular
/// files of this user, older than [`STALE_AFTER`], whose writer no longer runs.
fn remove_stale(dir: &OwnedFd, dir_path: &Path, name: &OsStr) {
    // Listed by path; every check and the removal go through the opened directory.
    let Ok(entries) = std::fs::read_dir(dir_path) else {
        return;
    };
    let me = nix::unistd::geteuid().as_raw();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut stale = Vec::new();
    for entry in entries.flatten() {
        let fname = entry.file_name();
        let Some(pid) = temp_owner(fname.as_bytes(), name) else {
            continue;
        };
        let Ok(st) = fstatat(dir, fname.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        let regular = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
        let old = now.saturating_sub(st.st_mtime) >= STALE_AFTER.as_secs() as i64;
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None)
            == Err(Errno::ESRCH);
        if regular && st.st_uid == me && old && gone {
            stale.push(fname);
        }
    }
    for fname in stale {
        if unlinkat(dir, fname.as_os_str(), UnlinkatFlags::NoRemoveDir).is_ok() {
            note(&format!(
                "removed '{}', a temporary file left by an earlier run that was killed",
                fname.to_string_lossy()
            ));
        }
    }
}

impl Replacement {
    /// A write error that names the file (a full disk says which one).
    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("writing '{}': {e}", self.path.display()))
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File(r) => r.w.write(buf).map_err(|e| r.named(e)),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.write_all(buf),
            Output::File(r) => r.w.write_all(buf).map_err(|e| r.named(e)),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File(r) => r.w.flush().map_err(|e| r.named(e)),
        }
    }
}

/// Writes `tw-inspect: MSG` as one line on stderr, control characters shown
/// as escapes. A failing stderr (closed, full) is ignored: it must never
/// change what the program does or its exit code.
pub fn note(msg: &str) {
    let line = format!("tw-inspect: {}\n", crate::escape::Visible(msg));
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// [`note`] with `warning: ` in front.
pub fn warn(msg: &str) {
    note(&format!("warning: {msg}"));
}

/// True when the error chain holds a broken pipe: the reader went away, which is
/// not a failure (`tw-inspect list | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            // serde_json wraps the writer's error in its own type.
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn file_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.prom");
        let mut o = Output::open(Some(&path)).unwrap();
        o.write_all(b"half").unwrap();
        assert!(!path.exists(), "nothing visible before finish");
        let tmp = names(dir.path());
        assert_eq!(tmp.len(), 1);
        assert!(
            tmp[0].starts_with(".out.prom.tw-inspect-") && tmp[0].ends_with(".tmp"),
            "{tmp:?}"
        );
        drop(o);
        assert!(
            names(dir.path()).is_empty(),
            "temporary file removed on drop"
        );
        let mut o = Output::open(Some(&path)).unwrap();
        o.write_all(b"whole\n").unwrap();
        o.finish().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole\n");
        let umask = {
            let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
            nix::sys::stat::umask(old);
            old.bits()
        };
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o644 & !umask
        );
        assert_eq!(names(dir.path()), ["out.prom"]);
    }

    #[test]
    fn replaced_file_keeps_only_its_permission_bits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o6751)).unwrap();
        let ino = fs::metadata(&path).unwrap().ino();
        let mut o = Output::open(Some(&path)).unwrap();
        o.write_all(b"new").unwrap();
        o.finish().unwrap();
        let m = fs::symlink_metadata(&path).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o751);
        assert_ne!(m.ino(), ino, "a new file, renamed over the old one");
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn symlinks_and_special_files_are_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let sock = dir.path().join("sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let before = names(dir.path());
        for (p, what) in [
            (&link, "is a symbolic link to"),
            (&fifo, "is a FIFO"),
            (&sub, "is a directory"),
            (&sock, "is a socket"),
            (&PathBuf::from("/dev/null"), "is a character device"),
        ] {
            let e = format!("{:#}", Output::open(Some(p)).err().unwrap());
            assert!(e.contains(what), "{e}");
            assert!(e.contains(&*p.to_string_lossy()), "{e}");
            assert!(!e.contains('\n'));
        }
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(names(dir.path()), before, "nothing created or removed");
    }

    #[test]
    fn stale_temporary_files_of_dead_runs_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let old = SystemTime::now() - Duration::from_secs(3600);
        let make = |name: &OsStr, age: SystemTime| {
            let p = dir.path().join(name);
            let f = fs::File::create(&p).unwrap();
            f.set_modified(age).unwrap();
        };
        // A pid that cannot be running: above the kernel's maximum.
        let dead = 4_194_305;
        let stale = temp_name(OsStr::new("out"), dead, 1);
        let young = temp_name(OsStr::new("out"), dead, 2);
        let alive = temp_name(OsStr::new("out"), std::process::id(), 3);
        let other = temp_name(OsStr::new("other"), dead, 4);
        make(&stale, old);
        make(&young, SystemTime::now());
        make(&alive, old);
        make(&other, old);
        let o = Output::open(Some(&path)).unwrap();
        o.finish().unwrap();
        let left = names(dir.path());
        assert!(
            !left.contains(&stale.to_string_lossy().into_owned()),
            "{left:?}"
        );
        for kept in [&young, &alive, &other] {
            assert!(
                left.contains(&kept.to_string_lossy().into_owned()),
                "{left:?}"
            );
        }
        assert_eq!(temp_owner(stale.as_bytes(), OsStr::new("out")), Some(dead));
        assert_eq!(temp_owner(b".out.tmp", OsStr::new("out")), None);
    }

    #[test]
    fn long_names_fit_in_a_temporary_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x".repeat(255));
        let mut o = Output::open(Some(&path)).unwrap();
        o.write_all(b"ok").unwrap();
        o.finish().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"ok");
    }

    #[test]
    fn unwritable_directory_fails_early() {
        let e = Output::open(Some(Path::new("/nonexistent-dir/x.prom")))
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("/nonexistent-dir/x.prom"));
    }
}
