//! Which process holds a socket: the link /proc/PID/fd/N points at
//! `socket:[INODE]`, the way `ss -p` finds owners. Processes that vanish
//! mid-scan or whose fds we may not read are skipped, never an error.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A process holding a socket (found through /proc/PID/fd).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessRef {
    pub pid: u32,
    pub comm: String,
}

/// Parses the target of an fd link: `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u32> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The owners of the `wanted` socket inodes, found under `/proc`. An inode held
/// by several processes (after fork) gets the lowest pid.
pub fn owners(wanted: &HashSet<u32>) -> HashMap<u32, ProcessRef> {
    owners_in(Path::new("/proc"), wanted)
}

/// The owner of every socket some process holds, found under `/proc`: what
/// rows written as the kernel sends them look owners up in (the sockets are
/// not known yet when the scan runs). Its size follows the sockets processes
/// hold open, not the TIME_WAIT sockets, which no process holds.
pub fn socket_owners() -> HashMap<u32, ProcessRef> {
    scan(Path::new("/proc"), None)
}

/// As [`owners`], under another proc root (tests).
pub fn owners_in(proc_root: &Path, wanted: &HashSet<u32>) -> HashMap<u32, ProcessRef> {
    if wanted.is_empty() {
        return HashMap::new();
    }
    scan(proc_root, Some(wanted))
}

/// The owners of `wanted` (all sockets when `None`) under `proc_root`.
fn scan(proc_root: &Path, wanted: Option<&HashSet<u32>>) -> HashMap<u32, ProcessRef> {
    let mut found: HashMap<u32, ProcessRef> = HashMap::new();
    let Ok(dir) = fs::read_dir(proc_root) else {
        return found;
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let base = proc_root.join(pid.to_string());
        // EACCES (other users' processes when not root) and ENOENT (exited) are expected.
        let Ok(fds) = fs::read_dir(base.join("fd")) else {
            continue;
        };
        let mut comm: Option<String> = None;
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let Some(ino) = target.to_str().and_then(socket_inode) else {
                continue;
            };
            if wanted.is_some_and(|w| !w.contains(&ino)) || found.contains_key(&ino) {
                continue;
            }
            let name = comm.get_or_insert_with(|| {
                fs::read_to_string(base.join("comm"))
                    .map(|s| s.trim_end().to_string())
                    .unwrap_or_default()
            });
            found.insert(
                ino,
                ProcessRef {
                    pid,
                    comm: name.clone(),
                },
            );
        }
        if wanted.is_some_and(|w| found.len() == w.len()) {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn parses_links() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn finds_our_own_socket() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&l);
        let ino = fs::metadata(format!("/proc/self/fd/{fd}")).unwrap().ino() as u32;
        let found = owners(&HashSet::from([ino]));
        let me = found.get(&ino).expect("our listener's inode");
        assert_eq!(me.pid, std::process::id());
        let comm = fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(me.comm, comm.trim_end());
        assert!(owners(&HashSet::new()).is_empty());
        assert_eq!(socket_owners().get(&ino), Some(me));
    }

    #[test]
    fn tolerates_a_missing_root() {
        assert!(owners_in(Path::new("/nonexistent-proc"), &HashSet::from([1])).is_empty());
    }
}
