//! This host's TCP teardown settings, read from /proc/sys. A knob the kernel does
//! not have is `None` ("absent"), never an error.
//!
//! /proc/sys/net shows the network namespace of the thread that reads it. Most
//! knobs here are per namespace; `tcp_max_orphans` and `tcp_mem` are
//! host-wide and exist only in the host's (initial) namespace, so inside
//! another one they are read from the host: [`HostWide`] says how.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The settings that decide how TIME_WAIT and ephemeral ports behave.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctls {
    /// `net.ipv4.ip_local_port_range`: first and last ephemeral port.
    pub ip_local_port_range: Option<(u16, u16)>,
    /// `net.ipv4.ip_local_reserved_ports`, as the kernel prints it (`8080,9000-9100`).
    pub ip_local_reserved_ports: Option<String>,
    pub tcp_tw_reuse: Option<u32>,
    /// Milliseconds (Linux 6.14+, commit ca6a6f93867a; absent before: a fixed 1 s).
    pub tcp_tw_reuse_delay: Option<u32>,
    pub tcp_max_tw_buckets: Option<u64>,
    pub tcp_fin_timeout: Option<u32>,
    /// Host-wide (see [`HostWide`]).
    pub tcp_max_orphans: Option<u64>,
    pub tcp_timestamps: Option<u32>,
    /// Host-wide: `tcp_mem` in pages, as the kernel prints it (`min pressure max`).
    #[serde(default)]
    pub tcp_mem: Option<String>,
    /// Where the host-wide knobs were read.
    #[serde(default)]
    pub host_wide: HostWide,
}

/// Where the host-wide knobs (`tcp_max_orphans`, `tcp_mem`) of a [`Sysctls`] come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostWide {
    /// Read here: this namespace is the host's own.
    #[default]
    Here,
    /// Read from the host's namespace, this one lacking them.
    Host,
    /// This namespace lacks them and the host's could not be entered (no
    /// CAP_SYS_ADMIN over it, e.g. in a user namespace).
    Unreadable,
}

/// The knobs only the host's namespace has.
pub const HOST_WIDE: [&str; 2] = ["tcp_max_orphans", "tcp_mem"];

/// The host-wide knobs read in the host's network namespace, on a thread
/// that enters it (the caller's stays where it is): the namespace of this
/// process's main thread (a collection runs on a thread of its own inside the
/// namespace it reads), else init's. `None` when neither is the host's or
/// may be entered.
fn host_wide_from_host() -> Option<Sysctls> {
    ["/proc/self/ns/net", "/proc/1/ns/net"]
        .iter()
        .find_map(|path| {
            let ns = std::fs::File::open(path).ok()?;
            std::thread::scope(|t| {
                t.spawn(|| {
                    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
                    let root = Path::new("/proc/sys/net/ipv4");
                    root.join("tcp_mem")
                        .exists()
                        .then(|| Sysctls::read_from(root))
                })
                .join()
                .ok()
                .flatten()
            })
        })
}

/// Where a knob lives under /proc/sys.
pub fn knob_path(name: &str) -> String {
    format!("/proc/sys/net/ipv4/{name}")
}

fn read_at(root: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(root.join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

impl Sysctls {
    /// Reads the current network namespace's values, and the host-wide ones
    /// from the host when this namespace lacks them.
    pub fn read_host() -> Sysctls {
        let root = Path::new("/proc/sys/net/ipv4");
        let mut s = Sysctls::read_from(root);
        // tcp_mem has existed as long as TCP: its absence means another namespace.
        if !root.join("tcp_mem").exists() {
            match host_wide_from_host() {
                Some(h) => {
                    s.tcp_max_orphans = h.tcp_max_orphans;
                    s.tcp_mem = h.tcp_mem;
                    s.host_wide = HostWide::Host;
                }
                None => s.host_wide = HostWide::Unreadable,
            }
        }
        s
    }

    /// Reads from a directory laid out like /proc/sys/net/ipv4 (tests use a temp dir).
    pub fn read_from(root: &Path) -> Sysctls {
        let num = |n: &str| read_at(root, n).and_then(|s| s.parse().ok());
        Sysctls {
            ip_local_port_range: read_at(root, "ip_local_port_range").and_then(|s| {
                let mut it = s.split_whitespace().map(|t| t.parse::<u16>().ok());
                match (it.next().flatten(), it.next().flatten()) {
                    (Some(a), Some(b)) => Some((a, b)),
                    _ => None,
                }
            }),
            ip_local_reserved_ports: read_at(root, "ip_local_reserved_ports"),
            tcp_tw_reuse: num("tcp_tw_reuse").map(|v: u64| v as u32),
            tcp_tw_reuse_delay: num("tcp_tw_reuse_delay").map(|v: u64| v as u32),
            tcp_max_tw_buckets: num("tcp_max_tw_buckets"),
            tcp_fin_timeout: num("tcp_fin_timeout").map(|v: u64| v as u32),
            tcp_max_orphans: num("tcp_max_orphans"),
            tcp_timestamps: num("tcp_timestamps").map(|v: u64| v as u32),
            tcp_mem: read_at(root, "tcp_mem")
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")),
            host_wide: HostWide::Here,
        }
    }

    /// Ports in `ip_local_reserved_ports` that fall inside `[lo, hi]`.
    pub fn reserved_in_range(&self, lo: u16, hi: u16) -> u64 {
        let Some(list) = &self.ip_local_reserved_ports else {
            return 0;
        };
        list.split(',')
            .filter_map(|item| {
                let item = item.trim();
                let (a, b) = item.split_once('-').unwrap_or((item, item));
                Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
            })
            .map(|(a, b)| {
                let (a, b) = (a.max(lo), b.min(hi));
                if a <= b { (b - a) as u64 + 1 } else { 0 }
            })
            .sum()
    }

    /// Usable ephemeral ports: the range minus reserved ports inside it.
    pub fn ephemeral_ports(&self) -> Option<u64> {
        let (lo, hi) = self.ip_local_port_range?;
        if lo > hi {
            return None;
        }
        Some(((hi - lo) as u64 + 1).saturating_sub(self.reserved_in_range(lo, hi)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_tolerates_missing_knobs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ip_local_port_range"), "32768\t60999\n").unwrap();
        std::fs::write(
            d.path().join("ip_local_reserved_ports"),
            "40000-40009,50000,70\n",
        )
        .unwrap();
        std::fs::write(d.path().join("tcp_tw_reuse"), "2\n").unwrap();
        let s = Sysctls::read_from(d.path());
        assert_eq!(s.ip_local_port_range, Some((32768, 60999)));
        assert_eq!(s.tcp_tw_reuse, Some(2));
        assert_eq!(s.tcp_tw_reuse_delay, None);
        assert_eq!(s.reserved_in_range(32768, 60999), 11);
        assert_eq!(s.ephemeral_ports(), Some(28232 - 11));
    }

    #[test]
    fn host_values_match_proc() {
        let s = Sysctls::read_host();
        let raw = std::fs::read_to_string(knob_path("tcp_max_tw_buckets")).unwrap();
        assert_eq!(s.tcp_max_tw_buckets, raw.trim().parse().ok());
    }
}
