//! Network namespaces: find them, and collect inside one without moving the process.
//!
//! `setns(CLONE_NEWNET)` changes only the calling thread's namespace, so each
//! collection runs on a dedicated thread that enters the namespace first. The
//! collector's per-family threads are spawned from that thread and inherit its
//! namespace; the process's own threads never leave theirs. The namespace file
//! is held open from discovery to collection, so a namespace cannot vanish in
//! between even if its last process exits.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use nix::sched::{CloneFlags, setns};

use crate::exit::UsageError;

/// Where `ip netns add` puts its names.
pub const RUN_NETNS: &str = "/run/netns";

/// An open network namespace and how to call it in output.
#[derive(Debug)]
pub struct Namespace {
    /// The name under /run/netns, `pid:PID (COMM)` for one found through a
    /// process, or the path given to `--netns`.
    pub label: String,
    pub path: PathBuf,
    /// Device and inode of the namespace: its identity.
    pub dev: u64,
    pub ino: u64,
    file: File,
}

/// Which namespaces the command line asked for (`--netns`, `--all-netns`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetnsChoice {
    /// The process's own namespace.
    Current,
    /// A name under /run/netns or a path such as /proc/PID/ns/net.
    One(String),
    /// Every distinct namespace on the host.
    All,
}

/// Which namespaces a command reads, opened.
#[derive(Debug)]
pub enum Scope {
    /// The process's own namespace, as without the flags.
    Current,
    /// `--netns`: exactly one.
    One(Namespace),
    /// `--all-netns`: every distinct namespace.
    All(Vec<Namespace>),
}

impl Scope {
    /// Opens the namespaces of `choice`; `warn` says whether to report processes
    /// whose namespace could not be opened (once is enough when sampling repeatedly).
    pub fn resolve(choice: &NetnsChoice, warn: bool) -> Result<Scope> {
        let flag = match choice {
            NetnsChoice::Current => return Ok(Scope::Current),
            NetnsChoice::One(_) => "--netns",
            NetnsChoice::All => "--all-netns",
        };
        if !has_cap_sys_admin() {
            return Err(anyhow!(
                "{flag} needs root or CAP_SYS_ADMIN to enter other network namespaces"
            ));
        }
        if let NetnsChoice::All = choice {
            let (list, denied) = discover()?;
            if denied > 0 && warn {
                eprintln!(
                    "tw-inspect: warning: could not open the network namespace of {denied} process(es) (permission denied); \
they are left out (a process may be protected from inspection)"
                );
            }
            Ok(Scope::All(list))
        } else if let NetnsChoice::One(arg) = choice {
            Ok(Scope::One(open(arg)?))
        } else {
            Ok(Scope::Current)
        }
    }

    /// True when output carries a namespace label.
    pub fn labelled(&self) -> bool {
        !matches!(self, Scope::Current)
    }

    /// Runs `f` once per namespace (on its own thread inside it) and returns
    /// each result with the namespace's label (`None` for the current namespace).
    pub fn run<T: Send>(
        &self,
        f: impl Fn() -> Result<T> + Sync,
    ) -> Result<Vec<(Option<String>, T)>> {
        match self {
            Scope::Current => Ok(vec![(None, f()?)]),
            Scope::One(ns) => Ok(vec![(Some(ns.label.clone()), run_in(ns, &f)?)]),
            Scope::All(list) => list
                .iter()
                .map(|ns| Ok((Some(ns.label.clone()), run_in(ns, &f)?)))
                .collect(),
        }
    }
}

/// The message for a refused namespace operation: names the capability.
fn capability_error(what: String, err: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(
        "{what}: {err}: reading other network namespaces needs root (CAP_SYS_ADMIN, and CAP_SYS_PTRACE for other users' processes)"
    )
}

fn is_denied(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM))
}

fn from_file(label: String, path: PathBuf, file: File) -> Result<Namespace> {
    let meta = file
        .metadata()
        .with_context(|| format!("stat {}", path.display()))?;
    Ok(Namespace {
        label,
        path,
        dev: meta.dev(),
        ino: meta.ino(),
        file,
    })
}

/// Opens `--netns NAME|PATH`: a name under /run/netns, or a path (anything with a `/`).
pub fn open(arg: &str) -> Result<Namespace> {
    if arg.is_empty() {
        return Err(UsageError(
            "--netns: empty name; give a name under /run/netns or a path such as /proc/PID/ns/net"
                .into(),
        )
        .into());
    }
    let path = if arg.contains('/') {
        PathBuf::from(arg)
    } else {
        Path::new(RUN_NETNS).join(arg)
    };
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let names = named().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
            let known = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            return Err(UsageError(format!(
                "--netns: no network namespace '{arg}' ({} does not exist); names in {RUN_NETNS}: {known}; or give a path such as /proc/PID/ns/net",
                path.display()
            ))
            .into());
        }
        Err(e) if is_denied(&e) => {
            return Err(capability_error(format!("opening {}", path.display()), e));
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("opening {}", path.display()))),
    };
    from_file(arg.to_string(), path, file)
}

/// How to call the network namespace with inode `ino` when it is not the
/// caller's (`None` when it is): its name under /run/netns, else `net:[INODE]`
/// as /proc/PID/ns/net reads.
pub fn label_of(ino: u64) -> Option<String> {
    let own = fs::metadata("/proc/self/ns/net").ok().map(|m| m.ino());
    if own == Some(ino) {
        return None;
    }
    let name = named()
        .into_iter()
        .find(|(_, p)| fs::metadata(p).is_ok_and(|m| m.ino() == ino))
        .map(|(n, _)| n);
    Some(name.unwrap_or_else(|| format!("net:[{ino}]")))
}

/// Names under /run/netns, sorted; none when the directory does not exist.
fn named() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = fs::read_dir(RUN_NETNS)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    v.sort();
    v
}

/// True when this thread's effective capabilities hold CAP_SYS_ADMIN, which setns(2) needs.
pub fn has_cap_sys_admin() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .unwrap_or(false)
}

/// Every distinct network namespace: the names in /run/netns first (sorted),
/// then those only reachable through a process, labelled by the lowest PID in
/// them. Distinct means a distinct (device, inode) of the namespace file.
/// Also returns how many processes could not be opened: even root can be
/// refused a process protected from ptrace-style inspection, and one such
/// process should not stop the others from being read.
pub fn discover() -> Result<(Vec<Namespace>, usize)> {
    let mut denied = 0;
    let mut out: Vec<Namespace> = Vec::new();
    let mut seen: HashMap<(u64, u64), usize> = HashMap::new();
    let mut add = |ns: Namespace, out: &mut Vec<Namespace>| {
        if let std::collections::hash_map::Entry::Vacant(e) = seen.entry((ns.dev, ns.ino)) {
            e.insert(out.len());
            out.push(ns);
        }
    };
    for (name, path) in named() {
        match File::open(&path) {
            Ok(f) => add(from_file(name, path, f)?, &mut out),
            // A name being deleted right now, or a stale mount point.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINVAL)) => {}
            Err(e) if is_denied(&e) => {
                return Err(capability_error(format!("opening {}", path.display()), e));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("opening {}", path.display())));
            }
        }
    }
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .context("listing /proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        match File::open(&path) {
            Ok(f) => {
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                add(
                    from_file(format!("pid:{pid} ({})", comm.trim_end()), path, f)?,
                    &mut out,
                );
            }
            // The process exited since /proc was listed.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => {}
            Err(e) if is_denied(&e) => denied += 1,
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("opening {}", path.display())));
            }
        }
    }
    Ok((out, denied))
}

/// Runs `f` on a new thread that has entered `ns`; the caller's thread stays put.
pub fn run_in<T: Send>(ns: &Namespace, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            match setns(&ns.file, CloneFlags::CLONE_NEWNET) {
                Ok(()) => {}
                Err(nix::errno::Errno::EPERM) => {
                    return Err(capability_error(format!("entering network namespace '{}'", ns.label), "permission denied"));
                }
                Err(nix::errno::Errno::EINVAL) => {
                    return Err(UsageError(format!(
                        "--netns: '{}' is not a network namespace file (expected a name under {RUN_NETNS} or a path such as /proc/PID/ns/net)",
                        ns.path.display()
                    ))
                    .into());
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!("entering network namespace '{}'", ns.label)));
                }
            }
            f().with_context(|| format!("in network namespace '{}'", ns.label))
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_name_is_a_usage_error_listing_names() {
        let e = open("tw-inspect-no-such-namespace").unwrap_err();
        let u = e.downcast_ref::<UsageError>().expect("usage error");
        assert!(u.0.contains("'tw-inspect-no-such-namespace'"), "{u}");
        assert!(u.0.contains("/proc/PID/ns/net"), "{u}");
    }

    #[test]
    fn own_namespace_is_discovered_once_and_entering_it_keeps_ours() {
        let me = fs::metadata("/proc/self/ns/net").unwrap();
        if !has_cap_sys_admin() {
            eprintln!("SKIP: discovering namespaces needs CAP_SYS_ADMIN");
            return;
        }
        let (all, _) = discover().unwrap();
        let mine: Vec<_> = all
            .iter()
            .filter(|n| (n.dev, n.ino) == (me.dev(), me.ino()))
            .collect();
        assert_eq!(mine.len(), 1, "own namespace listed exactly once");
        let inside = run_in(mine[0], || {
            Ok(fs::metadata("/proc/thread-self/ns/net")?.ino())
        })
        .unwrap();
        assert_eq!(inside, me.ino());
        assert_eq!(
            fs::metadata("/proc/thread-self/ns/net").unwrap().ino(),
            me.ino()
        );
    }

    #[test]
    fn a_file_that_is_not_a_namespace_is_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let ns = open(f.path().to_str().unwrap()).unwrap();
        let e = run_in(&ns, || Ok(())).unwrap_err();
        assert!(
            format!("{e:#}").contains("not a network namespace"),
            "{e:#}"
        );
    }
}
