//! Network namespaces: find them, and collect inside one without moving the process.
//!
//! `setns(CLONE_NEWNET)` changes only the calling thread's namespace, so each
//! collection runs on a dedicated thread that enters the namespace first. The
//! collector's per-family threads are spawned from that thread and inherit its
//! namespace; the process's own threads never leave theirs.
//!
//! `--all-netns` finds namespaces by path and identity (device and inode), then
//! opens, enters and closes them one at a time: a host with thousands of
//! namespaces needs a handful of descriptors, not one per namespace. Namespaces
//! come and go meanwhile (`ip netns add/del`, pods): one that is gone, half
//! made, replaced, or that cannot be entered (inside a user namespace) is
//! skipped with its reason ([`Skipped`]), never a reason to stop.
//!
//! Namespace files are opened with `O_NONBLOCK` and checked (`fstat`,
//! `fstatfs`) before use, so a FIFO or a plain file given to `--netns` is
//! refused at once instead of blocking or failing later.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use nix::sched::{CloneFlags, setns};
use nix::sys::statfs::{NSFS_MAGIC, fstatfs, statfs};
use serde::Serialize;

use crate::exit::UsageError;
use crate::host::identity::{self, Found, Kind, NsIdentity, NsInput, Resolver};

/// Where `ip netns add` puts its names.
pub const RUN_NETNS: &str = "/run/netns";

/// A network namespace as found: how to call it in output, where its file is,
/// and its identity. Not held open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsRef {
    /// Its stable label once named ([`identify`]): `host`, the /run/netns
    /// name, a container or pod, or `net:[INODE]`; until then the name under
    /// /run/netns, `pid:PID`, or the path given to `--netns`.
    pub label: String,
    pub path: PathBuf,
    /// Device and inode of the namespace: its identity.
    pub dev: u64,
    pub ino: u64,
    /// Who it belongs to ([`identity`]), once named.
    pub identity: Option<NsIdentity>,
}

/// An open network namespace (`--netns`), checked to be one.
#[derive(Debug)]
pub struct Namespace {
    pub ns: NsRef,
    file: File,
}

/// Why a namespace found by `--all-netns` was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// Deleted, or its last process exited, after it was found.
    Gone,
    /// Its file is there but is not (or no longer, or not yet) a namespace:
    /// `ip netns add` or `del` was half-way.
    NotANamespace,
    /// The name or process now leads to another namespace than the one found.
    Replaced,
    /// It cannot be entered from here (inside a user namespace, the host's
    /// namespaces belong to a user namespace where we hold no capability).
    PermissionDenied,
}

impl SkipReason {
    /// In words, for the warning line and the table.
    pub fn text(self) -> &'static str {
        match self {
            SkipReason::Gone => "it was deleted during the run",
            SkipReason::NotANamespace => {
                "its file is not a network namespace (being added or deleted during the run)"
            }
            SkipReason::Replaced => "it was replaced by another namespace during the run",
            SkipReason::PermissionDenied => {
                "it cannot be entered from here (permission denied; inside a user namespace?)"
            }
        }
    }
}

/// A namespace left out, with why: JSON `skipped` (README).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub netns: String,
    pub path: String,
    pub reason: SkipReason,
}

impl Skipped {
    fn new(ns: &NsRef, reason: SkipReason) -> Skipped {
        Skipped {
            netns: ns.label.clone(),
            path: ns.path.display().to_string(),
            reason,
        }
    }

    /// The one warning line for it (escaped when printed).
    pub fn warning(&self) -> String {
        format!(
            "network namespace '{}' ({}) skipped: {}",
            self.netns,
            self.path,
            self.reason.text()
        )
    }
}

/// Which namespaces the command line asked for (`--netns`, `--all-netns`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetnsChoice {
    /// The process's own namespace.
    Current,
    /// A name under /run/netns, a container, a pod (`NAMESPACE/POD`), or a
    /// path such as /proc/PID/ns/net.
    One(String),
    /// Every distinct namespace on the host.
    All,
}

/// Which namespaces a command reads.
#[derive(Debug)]
pub enum Scope {
    /// The process's own namespace, as without the flags.
    Current,
    /// `--netns`: exactly one, open.
    One(Box<Namespace>),
    /// `--all-netns`: every distinct namespace found, opened one at a time
    /// when read; `skipped` holds those left out while finding them.
    All {
        found: Vec<NsRef>,
        skipped: Vec<Skipped>,
        /// Processes whose namespace could not be looked at (permission).
        denied_processes: usize,
    },
}

/// What [`Scope::run`] produced: one result per namespace read, with its
/// identity (`None` is the current namespace), and the namespaces left out.
#[derive(Debug)]
pub struct Ran<T> {
    pub results: Vec<(Option<NsIdentity>, T)>,
    pub skipped: Vec<Skipped>,
}

impl Scope {
    /// Finds (`--all-netns`) or opens (`--netns`) the namespaces of
    /// `choice`, each named through `names`.
    pub fn resolve(choice: &NetnsChoice, names: &mut Resolver) -> Result<Scope> {
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
        match choice {
            NetnsChoice::All => {
                let d = discover(names)?;
                Ok(Scope::All {
                    found: d.found,
                    skipped: d.skipped,
                    denied_processes: d.denied_processes,
                })
            }
            NetnsChoice::One(arg) => Ok(Scope::One(Box::new(select(arg, names)?))),
            NetnsChoice::Current => Ok(Scope::Current),
        }
    }

    /// True when output carries a namespace label.
    pub fn labelled(&self) -> bool {
        !matches!(self, Scope::Current)
    }

    /// The warning about processes whose namespace could not be looked at, if any.
    pub fn denied_warning(&self) -> Option<String> {
        match self {
            Scope::All {
                denied_processes: n,
                ..
            } if *n > 0 => Some(format!(
                "could not open the network namespace of {n} process(es) (permission denied); \
they are left out (a process may be protected from inspection)"
            )),
            _ => None,
        }
    }

    /// Runs `f` once per namespace (on its own thread inside it) and returns
    /// each result with the namespace's label, and the namespaces skipped.
    pub fn run<T: Send>(&self, f: impl Fn() -> Result<T> + Sync) -> Result<Ran<T>> {
        self.run_labelled(|_| f())
    }

    /// As [`Scope::run`], telling `f` which namespace it runs in (`None` for
    /// the current one), for output written while it runs.
    pub fn run_labelled<T: Send>(
        &self,
        f: impl Fn(Option<&NsIdentity>) -> Result<T> + Sync,
    ) -> Result<Ran<T>> {
        match self {
            Scope::Current => Ok(Ran {
                results: vec![(None, f(None)?)],
                skipped: Vec::new(),
            }),
            Scope::One(ns) => {
                let r = run_in(&ns.file, &ns.ns, || f(ns.ns.identity.as_ref())).map_err(
                    |e| match e {
                        Entry::Skip(SkipReason::PermissionDenied) => capability_error(
                            format!("entering network namespace '{}'", ns.ns.label),
                            "permission denied",
                        ),
                        Entry::Skip(_) => not_a_namespace(&ns.ns.path),
                        Entry::Fail(e) => e,
                    },
                )?;
                Ok(Ran {
                    results: vec![(ns.ns.identity.clone(), r)],
                    skipped: Vec::new(),
                })
            }
            Scope::All { found, skipped, .. } => {
                let mut ran = Ran {
                    results: Vec::with_capacity(found.len()),
                    skipped: skipped.clone(),
                };
                for ns in found {
                    // Open, enter, collect, close: one namespace at a time.
                    let entered = match reopen(ns) {
                        Ok(file) => run_in(&file, ns, || f(ns.identity.as_ref())),
                        Err(e) => Err(e),
                    };
                    match entered {
                        Ok(r) => ran.results.push((ns.identity.clone(), r)),
                        Err(Entry::Skip(reason)) => ran.skipped.push(Skipped::new(ns, reason)),
                        Err(Entry::Fail(e)) => return Err(e),
                    }
                }
                Ok(ran)
            }
        }
    }
}

/// Entering a namespace either works, or the namespace is skipped, or the run fails.
enum Entry {
    Skip(SkipReason),
    Fail(anyhow::Error),
}

/// The message for a refused namespace operation: names the capability.
fn capability_error(what: String, err: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(
        "{what}: {err}: reading other network namespaces needs root (CAP_SYS_ADMIN, and CAP_SYS_PTRACE for other users' processes)"
    )
}

fn not_a_namespace(path: &Path) -> anyhow::Error {
    UsageError(format!(
        "--netns: '{}' is not a network namespace file (expected a name under {RUN_NETNS} or a path such as /proc/PID/ns/net)",
        path.display()
    ))
    .into()
}

fn is_denied(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM))
}

fn is_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH))
}

/// Opens a path without blocking (a FIFO opens at once) and without making
/// it our controlling terminal.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// True when the open file lives on nsfs, the namespace file system.
fn on_nsfs(file: &File) -> bool {
    fstatfs(file).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Opens `--netns NAME|PATH`: a name under /run/netns, or a path (anything
/// with a `/`). Anything but a namespace file is refused (exit 2) before use.
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
    let file = match open_nonblocking(&path) {
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
    let meta = file
        .metadata()
        .with_context(|| format!("stat {}", path.display()))?;
    let t = meta.file_type();
    if !t.is_file() {
        let what = if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(UsageError(format!(
            "--netns: '{}' is {what}, not a network namespace file (expected a name under {RUN_NETNS} or a path such as /proc/PID/ns/net)",
            path.display()
        ))
        .into());
    }
    if !on_nsfs(&file) {
        return Err(not_a_namespace(&path));
    }
    Ok(Namespace {
        ns: NsRef {
            label: arg.to_string(),
            path,
            dev: meta.dev(),
            ino: meta.ino(),
            identity: None,
        },
        file,
    })
}

/// Names `refs` through `names`: identity and label. `all` says they are
/// every namespace there is: `names` forgets the others.
fn identify(refs: &mut [NsRef], names: &mut Resolver, all: bool) {
    let run: std::collections::HashMap<(u64, u64), String> = named()
        .into_iter()
        .filter_map(|(n, p)| {
            let m = fs::metadata(p).ok()?;
            Some(((m.dev(), m.ino()), n))
        })
        .collect();
    let inputs: Vec<NsInput> = refs
        .iter()
        .map(|ns| NsInput {
            dev: ns.dev,
            ino: ns.ino,
            run_netns: run.get(&(ns.dev, ns.ino)).cloned(),
        })
        .collect();
    if all {
        names.retain(&inputs);
    }
    for (ns, id) in refs.iter_mut().zip(names.resolve(&inputs)) {
        ns.label.clone_from(&id.name);
        ns.identity = Some(id);
    }
}

/// Opens `arg` as a path or name ([`open`]) and names it.
fn open_named(arg: &str, names: &mut Resolver) -> Result<Namespace> {
    let mut ns = open(arg)?;
    identify(std::slice::from_mut(&mut ns.ns), names, false);
    Ok(ns)
}

/// `--netns ARG`: a path (`/...`, `./...`), a name under /run/netns, else a
/// namespace found by `--all-netns` whose label, container or pod `ARG` names.
fn select(arg: &str, names: &mut Resolver) -> Result<Namespace> {
    let path_like = arg.starts_with('/') || arg.starts_with("./") || arg.starts_with("../");
    let run_name = !arg.contains('/') && Path::new(RUN_NETNS).join(arg).exists();
    if arg.is_empty() || path_like || run_name {
        return open_named(arg, names);
    }
    let d = discover(names)?;
    let ids: Vec<NsIdentity> = d.found.iter().filter_map(|n| n.identity.clone()).collect();
    let inode = match identity::find(&ids, arg) {
        Found::One(id) => id.inode,
        Found::Ambiguous(v) => {
            // The message is shown escaped, as every error is.
            let labels: Vec<&str> = v.iter().map(|i| i.name.as_str()).collect();
            return Err(UsageError(format!(
                "--netns: '{arg}' names {} network namespaces ({}); give one of those labels",
                v.len(),
                labels.join(", ")
            ))
            .into());
        }
        // A relative path, as before containers were looked up.
        Found::None if arg.contains('/') && Path::new(arg).exists() => {
            return open_named(arg, names);
        }
        Found::None => return Err(unknown(arg, &ids).into()),
    };
    let ns = d
        .found
        .into_iter()
        .find(|n| n.ino == inode)
        .expect("found among the discovered");
    let file = reopen(&ns).map_err(|e| match e {
        Entry::Skip(SkipReason::PermissionDenied) => capability_error(
            format!("entering network namespace '{}'", ns.label),
            "permission denied",
        ),
        Entry::Skip(reason) => anyhow!(
            "network namespace '{}' ({}): {}",
            ns.label,
            ns.path.display(),
            reason.text()
        ),
        Entry::Fail(e) => e,
    })?;
    Ok(Namespace { ns, file })
}

/// Known labels shown in the error for an unknown `--netns` argument.
const SHOW_KNOWN: usize = 12;

/// The one-line error for a `--netns` argument that names nothing.
fn unknown(arg: &str, ids: &[NsIdentity]) -> UsageError {
    // Closest first (the longest common start with what was typed), then
    // containers and pods: what a name is most likely meant to be.
    let rank = |i: &&NsIdentity| {
        let common = i
            .name
            .chars()
            .zip(arg.chars())
            .take_while(|(a, b)| a == b)
            .count();
        let kind = match i.kind {
            Kind::Pod | Kind::Container => 0,
            Kind::Named => 1,
            Kind::Host => 2,
            Kind::Unknown => 3,
        };
        (std::cmp::Reverse(common), kind)
    };
    let mut sorted: Vec<&NsIdentity> = ids.iter().collect();
    sorted.sort_by_key(rank);
    let mut known: Vec<String> = sorted
        .iter()
        .take(SHOW_KNOWN)
        .map(|i| i.name.clone())
        .collect();
    if ids.len() > SHOW_KNOWN {
        known.push(format!("and {} more", ids.len() - SHOW_KNOWN));
    }
    // The message is shown escaped, as every error is.
    UsageError(format!(
        "--netns: no network namespace, container or pod '{arg}'; known: {} (all of them, with containers and pods: tw-inspect list --all-netns --format json); or give a path such as /proc/PID/ns/net",
        known.join(", ")
    ))
}

/// Opens a namespace found earlier, checking it is still that namespace.
fn reopen(ns: &NsRef) -> Result<File, Entry> {
    let file = match open_nonblocking(&ns.path) {
        Ok(f) => f,
        Err(e) if is_gone(&e) => return Err(Entry::Skip(SkipReason::Gone)),
        Err(e) if is_denied(&e) => return Err(Entry::Skip(SkipReason::PermissionDenied)),
        Err(e) => {
            return Err(Entry::Fail(
                anyhow::Error::new(e).context(format!("opening {}", ns.path.display())),
            ));
        }
    };
    if !on_nsfs(&file) {
        return Err(Entry::Skip(SkipReason::NotANamespace));
    }
    match file.metadata() {
        Ok(m) if (m.dev(), m.ino()) == (ns.dev, ns.ino) => Ok(file),
        Ok(_) => Err(Entry::Skip(SkipReason::Replaced)),
        Err(e) if is_gone(&e) => Err(Entry::Skip(SkipReason::Gone)),
        Err(e) => Err(Entry::Fail(
            anyhow::Error::new(e).context(format!("stat {}", ns.path.display())),
        )),
    }
}

/// How to call the network namespace with inode `ino` when it is not the
/// caller's (`None` when it is): its label from `names` (a container, a pod,
/// its name under /run/netns, else `net:[INODE]` as /proc/PID/ns/net reads).
pub fn label_of(ino: u64, names: &mut Resolver) -> Option<String> {
    let own = fs::metadata("/proc/self/ns/net").ok()?;
    if own.ino() == ino {
        return None;
    }
    let run_netns = named()
        .into_iter()
        .find(|(_, p)| fs::metadata(p).is_ok_and(|m| m.ino() == ino))
        .map(|(n, _)| n);
    let input = NsInput {
        // Every namespace file lives on the one nsfs device.
        dev: own.dev(),
        ino,
        run_netns,
    };
    names.resolve(&[input]).pop().map(|id| id.name)
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

/// What [`discover`] found.
#[derive(Debug, Default)]
pub struct Discovered {
    pub found: Vec<NsRef>,
    /// Names under /run/netns that are not namespaces (being added or deleted).
    pub skipped: Vec<Skipped>,
    /// Processes whose namespace could not be looked at: even root can be
    /// refused a process protected from ptrace-style inspection, and one such
    /// process should not stop the others from being read.
    pub denied_processes: usize,
}

/// Every distinct network namespace: the names in /run/netns first (sorted),
/// then those only reachable through a process, each named by `names`.
/// Distinct means a distinct (device, inode) of the namespace file.
/// Nothing is held open.
pub fn discover(names: &mut Resolver) -> Result<Discovered> {
    let mut d = Discovered::default();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let add = |ns: NsRef, d: &mut Discovered, seen: &mut HashSet<(u64, u64)>| {
        if seen.insert((ns.dev, ns.ino)) {
            d.found.push(ns);
        }
    };
    for (name, path) in named() {
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            // Deleted since the directory was listed.
            Err(e) if is_gone(&e) => continue,
            Err(e) if is_denied(&e) => {
                return Err(capability_error(format!("reading {}", path.display()), e));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("reading {}", path.display())));
            }
        };
        let ns = NsRef {
            label: name,
            path,
            dev: meta.dev(),
            ino: meta.ino(),
            identity: None,
        };
        // A name whose bind mount is not (or no longer) there: `ip netns`
        // creates the file before mounting and unmounts before removing it.
        if !statfs(&ns.path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC) {
            d.skipped.push(Skipped::new(&ns, SkipReason::NotANamespace));
            continue;
        }
        add(ns, &mut d, &mut seen);
    }
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .context("listing /proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        match fs::metadata(&path) {
            Ok(m) => {
                if seen.contains(&(m.dev(), m.ino())) {
                    continue;
                }
                let ns = NsRef {
                    label: format!("pid:{pid}"),
                    path,
                    dev: m.dev(),
                    ino: m.ino(),
                    identity: None,
                };
                add(ns, &mut d, &mut seen);
            }
            // The process exited since /proc was listed.
            Err(e) if is_gone(&e) => {}
            Err(e) if is_denied(&e) => d.denied_processes += 1,
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("reading {}", path.display())));
            }
        }
    }
    identify(&mut d.found, names, true);
    Ok(d)
}

/// Runs `f` on a new thread that has entered the namespace open as `file`;
/// the caller's thread stays put.
fn run_in<T: Send>(
    file: &File,
    ns: &NsRef,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T, Entry> {
    std::thread::scope(|s| {
        s.spawn(|| {
            match setns(file, CloneFlags::CLONE_NEWNET) {
                Ok(()) => {}
                Err(nix::errno::Errno::EPERM | nix::errno::Errno::EACCES) => {
                    return Err(Entry::Skip(SkipReason::PermissionDenied));
                }
                Err(nix::errno::Errno::EINVAL) => {
                    return Err(Entry::Skip(SkipReason::NotANamespace));
                }
                Err(e) => {
                    return Err(Entry::Fail(
                        anyhow::Error::new(e)
                            .context(format!("entering network namespace '{}'", ns.label)),
                    ));
                }
            }
            f().with_context(|| format!("in network namespace '{}'", ns.label))
                .map_err(Entry::Fail)
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
            return; // discovering and entering namespaces needs CAP_SYS_ADMIN
        }
        let d = discover(&mut Resolver::new()).unwrap();
        let mine: Vec<_> = d
            .found
            .iter()
            .filter(|n| (n.dev, n.ino) == (me.dev(), me.ino()))
            .collect();
        assert_eq!(mine.len(), 1, "own namespace listed exactly once");
        let file = reopen(mine[0]).ok().unwrap();
        let inside = run_in(&file, mine[0], || {
            Ok(fs::metadata("/proc/thread-self/ns/net")?.ino())
        })
        .ok()
        .unwrap();
        assert_eq!(inside, me.ino());
        assert_eq!(
            fs::metadata("/proc/thread-self/ns/net").unwrap().ino(),
            me.ino()
        );
    }

    #[test]
    fn files_that_are_not_namespaces_are_refused_before_use() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        fs::write(&plain, b"").unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        for (p, want) in [
            (&plain, "not a network namespace"),
            (&fifo, "is a FIFO"),
            (&dir.path().to_path_buf(), "is a directory"),
        ] {
            let e = open(p.to_str().unwrap()).unwrap_err();
            let u = e.downcast_ref::<UsageError>().expect("usage error");
            assert!(u.0.contains(want), "{u}");
        }
    }

    #[test]
    fn a_vanished_namespace_is_skipped_with_its_reason() {
        let gone = NsRef {
            label: "gone".into(),
            path: PathBuf::from("/run/netns/tw-inspect-never-there"),
            dev: 1,
            ino: 1,
            identity: None,
        };
        assert!(matches!(reopen(&gone), Err(Entry::Skip(SkipReason::Gone))));
        let plain = tempfile::NamedTempFile::new().unwrap();
        let half = NsRef {
            path: plain.path().to_path_buf(),
            ..gone.clone()
        };
        assert!(matches!(
            reopen(&half),
            Err(Entry::Skip(SkipReason::NotANamespace))
        ));
        let s = Skipped::new(&half, SkipReason::NotANamespace);
        assert!(s.warning().contains("being added or deleted"));
        assert_eq!(
            serde_json::to_value(&s).unwrap()["reason"],
            "not-a-namespace"
        );
    }
}
