//! This host's TCP teardown settings, read from /proc/sys. A knob the kernel does
//! not have is `None` ("absent"), never an error.

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
    /// Milliseconds (Linux 6.6+).
    pub tcp_tw_reuse_delay: Option<u32>,
    pub tcp_max_tw_buckets: Option<u64>,
    pub tcp_fin_timeout: Option<u32>,
    pub tcp_max_orphans: Option<u64>,
    pub tcp_timestamps: Option<u32>,
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
    /// Reads the current network namespace's values.
    pub fn read_host() -> Sysctls {
        Sysctls::read_from(Path::new("/proc/sys/net/ipv4"))
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
