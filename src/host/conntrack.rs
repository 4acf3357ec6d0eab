//! The conntrack table's size, limits and statistics, read from /proc: they
//! need no privilege, unlike the entries themselves (see `diag::conntrack`).
//!
//! On Linux 6.x, `nf_conntrack_count` and the timeouts are per network
//! namespace; `nf_conntrack_max` and `nf_conntrack_buckets` are host-wide
//! (read-only outside the initial namespace), and the kernel compares each
//! namespace's own count with the one host-wide maximum. The per-CPU counters
//! in /proc/net/stat/nf_conntrack are per namespace.

use std::io::Read;
use std::path::Path;

use serde::Serialize;

/// Where the knobs live.
pub const NETFILTER_SYSCTL: &str = "/proc/sys/net/netfilter";
/// The statistics of the calling thread's namespace: /proc/net would show
/// the main thread's, which stays in its own namespace.
pub const STAT_PATH: &str = "/proc/thread-self/net/stat/nf_conntrack";
/// More than any real file (about 200 bytes per CPU); a longer one is cut here.
const STAT_MAX_BYTES: u64 = 1 << 20;

/// The per-CPU counters, summed over CPUs. `None` for a counter this kernel
/// does not print. They count since the namespace was created (the initial
/// one: since boot) and only go up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CtStats {
    /// Packets dropped because no entry could be made (table full, allocation failed).
    pub drop: Option<u64>,
    /// Entries evicted to make room in a full table (not yet assured, or closing).
    pub early_drop: Option<u64>,
    /// Entries that could not be inserted (a race lost to another CPU).
    pub insert_failed: Option<u64>,
    /// Packets conntrack could not track (malformed, out of window).
    pub invalid: Option<u64>,
    /// Insert races resolved by reusing the other CPU's entry.
    pub clash_resolve: Option<u64>,
    /// Inserts refused because a hash chain grew too long.
    pub chain_too_long: Option<u64>,
    /// Lookups restarted because the table changed underneath.
    pub search_restart: Option<u64>,
    pub found: Option<u64>,
    pub insert: Option<u64>,
    pub icmp_error: Option<u64>,
}

impl CtStats {
    /// Every counter with its name, in a fixed order.
    pub fn pairs(&self) -> [(&'static str, Option<u64>); 10] {
        [
            ("drop", self.drop),
            ("early_drop", self.early_drop),
            ("insert_failed", self.insert_failed),
            ("invalid", self.invalid),
            ("clash_resolve", self.clash_resolve),
            ("chain_too_long", self.chain_too_long),
            ("search_restart", self.search_restart),
            ("found", self.found),
            ("insert", self.insert),
            ("icmp_error", self.icmp_error),
        ]
    }

    /// Packets lost for want of an entry: `drop` plus `insert_failed`.
    pub fn losses(&self) -> Option<u64> {
        Some(self.drop? + self.insert_failed.unwrap_or(0))
    }
}

/// Parses /proc/net/stat/nf_conntrack: a header line naming the columns,
/// then one line of hexadecimal numbers per CPU. Columns are found by name,
/// so a kernel that adds or drops one still reads. `None` when the header
/// names none of the counters or a line does not parse.
pub fn parse_stat(text: &str) -> Option<CtStats> {
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next()?.split_whitespace().collect();
    let col = |name: &str| head.iter().position(|h| *h == name);
    let want = [
        ("drop", col("drop")),
        ("early_drop", col("early_drop")),
        ("insert_failed", col("insert_failed")),
        ("invalid", col("invalid")),
        ("clash_resolve", col("clashres")),
        ("chain_too_long", col("chainlength")),
        ("search_restart", col("search_restart")),
        ("found", col("found")),
        ("insert", col("insert")),
        ("icmp_error", col("icmp_error")),
    ];
    if want.iter().all(|(_, c)| c.is_none()) {
        return None;
    }
    let mut sums = [0u64; 10];
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != head.len() {
            return None;
        }
        for (i, (_, c)) in want.iter().enumerate() {
            if let Some(c) = c {
                let v = u64::from_str_radix(fields[*c], 16).ok()?;
                sums[i] = sums[i].saturating_add(v);
            }
        }
    }
    let get = |i: usize| want[i].1.map(|_| sums[i]);
    Some(CtStats {
        drop: get(0),
        early_drop: get(1),
        insert_failed: get(2),
        invalid: get(3),
        clash_resolve: get(4),
        chain_too_long: get(5),
        search_restart: get(6),
        found: get(7),
        insert: get(8),
        icmp_error: get(9),
    })
}

/// The table of one namespace: how full, its limits, its counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CtTable {
    /// nf_conntrack is in this kernel (built in or loaded): its sysctls exist.
    pub loaded: bool,
    /// `nf_conntrack_count`: entries in this namespace's table now.
    pub count: Option<u64>,
    /// `nf_conntrack_max` (host-wide): the most entries one namespace may hold.
    pub max: Option<u64>,
    /// `nf_conntrack_buckets` (host-wide): hash table size.
    pub buckets: Option<u64>,
    /// `nf_conntrack_tcp_timeout_time_wait`, seconds (per namespace).
    pub tcp_timeout_time_wait: Option<u64>,
    /// `nf_conntrack_tcp_timeout_established`, seconds (per namespace).
    pub tcp_timeout_established: Option<u64>,
    pub stats: Option<CtStats>,
}

impl CtTable {
    /// Reads the calling thread's namespace.
    pub fn read() -> CtTable {
        CtTable::read_from(Path::new(NETFILTER_SYSCTL), Path::new(STAT_PATH))
    }

    /// Reads from a directory laid out like /proc/sys/net/netfilter and a stat
    /// file (tests use temporary files).
    pub fn read_from(sysctl: &Path, stat: &Path) -> CtTable {
        let num = |n: &str| -> Option<u64> {
            let mut s = String::new();
            std::fs::File::open(sysctl.join(n))
                .ok()?
                .take(64)
                .read_to_string(&mut s)
                .ok()?;
            s.trim().parse().ok()
        };
        let max = num("nf_conntrack_max");
        let stats = std::fs::File::open(stat).ok().and_then(|f| {
            let mut s = String::new();
            f.take(STAT_MAX_BYTES).read_to_string(&mut s).ok()?;
            parse_stat(&s)
        });
        CtTable {
            loaded: max.is_some(),
            count: num("nf_conntrack_count"),
            max,
            buckets: num("nf_conntrack_buckets"),
            tcp_timeout_time_wait: num("nf_conntrack_tcp_timeout_time_wait"),
            tcp_timeout_established: num("nf_conntrack_tcp_timeout_established"),
            stats,
        }
    }

    /// Entries as a share of the maximum, 0 to 1 (`None` when either is unknown or max is 0).
    pub fn fill(&self) -> Option<f64> {
        let max = self.max.filter(|m| *m > 0)?;
        Some(self.count? as f64 / max as f64)
    }

    /// Whether this namespace tracks anything now: its table holds entries.
    pub fn in_use(&self) -> bool {
        self.loaded && self.count.is_some_and(|c| c > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
00000006  00000000 00000001 00000000 0000000a 00000000 00000000 00000000 00000000 00000002 00000010 00000003 00000000  00000000 00000000 00000000 00000000
00000006  00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000  00000000 00000000 00000000 0000ffff
";

    #[test]
    fn stat_columns_by_name_summed_over_cpus() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(s.drop, Some(17));
        assert_eq!(s.early_drop, Some(3));
        assert_eq!(s.insert_failed, Some(2));
        assert_eq!(s.invalid, Some(10));
        assert_eq!(s.clash_resolve, Some(1));
        assert_eq!(s.search_restart, Some(0xffff));
        assert_eq!(s.losses(), Some(19));
        // A kernel without a column: that counter is unknown, not 0.
        let fewer = "entries drop\n00000001 00000002\n";
        let s = parse_stat(fewer).unwrap();
        assert_eq!((s.drop, s.early_drop), (Some(2), None));
        for bad in [
            "",
            "nothing here\n1\n",
            "entries drop\n1 zz\n",
            "entries drop\n1\n",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_files_and_tolerates_missing_ones() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("nf_conntrack_count"), "200\n").unwrap();
        std::fs::write(d.path().join("nf_conntrack_max"), "262144\n").unwrap();
        let stat = d.path().join("stat");
        std::fs::write(&stat, STAT).unwrap();
        let t = CtTable::read_from(d.path(), &stat);
        assert!(t.loaded && t.in_use());
        assert_eq!(t.buckets, None);
        assert_eq!(t.fill(), Some(200.0 / 262144.0));
        assert_eq!(t.stats.unwrap().drop, Some(17));
        let none = CtTable::read_from(&d.path().join("absent"), &d.path().join("absent"));
        assert!(!none.loaded && !none.in_use() && none.fill().is_none());
    }

    #[test]
    fn this_hosts_count_matches_proc() {
        let t = CtTable::read();
        let raw = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count").ok();
        assert_eq!(t.count, raw.and_then(|r| r.trim().parse().ok()));
    }
}
