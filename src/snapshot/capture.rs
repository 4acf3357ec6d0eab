//! Capture from the live host: a collection's datagrams and its namespace's facts.
//!
//! The facts are the host name, kernel release, time, network namespace,
//! sysctls and listening sockets, read in the namespace that was dumped.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use super::format::{Capture, Metadata, SectionInfo};
use crate::diag::listen::{self, Listener};
use crate::filter::Query;
use crate::host::sysctl::Sysctls;
use crate::socket::Family;

/// A collection's datagrams with the facts of the namespace it was made in.
#[derive(Debug)]
pub struct Captured {
    pub meta: Metadata,
    pub raw: Vec<(Family, Vec<u8>)>,
}

/// Gathers this namespace's facts (read in the calling thread, which must be in
/// the namespace that was dumped) around the datagrams of a `keep_raw` collection.
/// `listening`, when the caller already read the listeners in this namespace,
/// saves reading them again.
pub fn capture(
    query: &Query,
    raw: Vec<(Family, Vec<u8>)>,
    collect_time: Duration,
    listening: Option<Vec<Listener>>,
) -> Result<Captured> {
    let meta = Metadata {
        tool: format!("tw-inspect {}", env!("CARGO_PKG_VERSION")),
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        taken_at: rfc3339_utc(SystemTime::now()),
        netns_inode: std::fs::metadata("/proc/thread-self/ns/net")
            .map(|m| m.ino())
            .ok(),
        collect_ms: collect_time.as_secs_f64() * 1e3,
        capture: Capture {
            states: query.states.iter().map(|s| s.name().to_string()).collect(),
            filter: describe_filter(query),
        },
        sysctls: Sysctls::read_host(),
        listening: with_processes(match listening {
            Some(l) => l,
            None => listen::listeners_for(query, &raw)?,
        }),
        sections: SectionInfo::describe(&raw),
        counters: None,
        close_wait_ages: None,
    };
    Ok(Captured { meta, raw })
}

/// The listeners with the processes holding them, found now in this host's
/// /proc: a snapshot is read where those processes cannot be looked up.
fn with_processes(mut listeners: Vec<Listener>) -> Vec<Listener> {
    let wanted = listeners
        .iter()
        .map(|l| l.inode)
        .filter(|i| *i != 0)
        .collect();
    let owners = crate::host::procs::owners(&wanted);
    for l in &mut listeners {
        l.process = owners.get(&l.inode).cloned();
    }
    listeners
}

fn read_trimmed(p: &str) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The capture filter in words, one entry per requirement, all of them
/// required: `(port 8080 or port 8081)`, `peer ::1`, `ipv4 only`.
pub fn describe_filter(q: &Query) -> Vec<String> {
    let mut v = q.describe_groups();
    if !q.ipv4 {
        v.push("ipv6 only".into());
    }
    if !q.ipv6 {
        v.push("ipv4 only".into());
    }
    v
}

/// Formats a time as RFC 3339 in UTC with second precision.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_735_689_599)),
            "2024-12-31T23:59:59Z"
        );
    }
}
