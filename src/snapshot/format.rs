//! The snapshot file format, pure: bytes in, a checked snapshot out, and back.
//!
//! No file system, clock or kernel here, so every path can be fed arbitrary
//! bytes (tests/snapshot.rs does, with proptest).
//!
//! A tw-inspect snapshot is a 16-byte header, JSON [`Metadata`], then one
//! section per family holding the sock_diag datagrams as the kernel sent them;
//! docs/snapshot-format.md documents every byte. An `ss -D` dump is recognised
//! by its first netlink header and walked whole before it is accepted.

use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::aggregate::Teardown;
use crate::diag::listen::Listener;
use crate::diag::parse::{
    INET_DIAG_MSG_LEN, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, ParseStats,
    SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK, parse_datagram,
};
use crate::diag::{self, Collection};
use crate::exit::UsageError;
use crate::filter::Query;
use crate::host::counters::Counters;
use crate::host::sysctl::Sysctls;
use crate::report::SnapshotInfo;
use crate::socket::{Family, Sink, SocketRecord};
use crate::wire::{u16_le, u16_ne, u32_le, u32_ne, u64_le};

/// The first 8 bytes of a tw-inspect snapshot. The high first byte and the
/// trailing newline make a text-mode transfer that mangles the file visible.
pub const MAGIC: [u8; 8] = *b"\x89TWSNAP\n";
/// The format version this build writes and the newest it reads. Version 2
/// added the kernel's counters, the CLOSE_WAIT ages and the listeners' inodes
/// and processes; version 1 files still load (those are then unknown).
pub const VERSION: u16 = 2;
/// At most this many CLOSE_WAIT ages are saved (the oldest), so the metadata
/// stays a few MiB even with a large leak.
pub const MAX_CLOSE_WAIT_AGES: usize = 100_000;
/// Magic (8) + version (2) + byte order (1) + reserved (1) + metadata length (4).
pub const HEADER_LEN: usize = 16;
/// Family code (4) + reserved (4) + data length (8).
pub const SECTION_HEADER_LEN: usize = 16;
/// Metadata is a few KiB (more with many listening sockets); anything larger
/// is a damaged length field. It also bounds the memory the parsed metadata takes.
pub const MAX_METADATA: usize = 8 << 20;
/// The largest file `--load` reads: about five million sockets. The whole file
/// is held in memory once (no copy), so this bounds what a load can take.
pub const MAX_FILE: u64 = 1 << 30;
/// Bytes [`Snapshot::recognize`] wants to see (fewer when the file is shorter).
pub const HEAD_LEN: usize = 512;
/// Byte order of the netlink data, which the kernel writes in host order.
const NATIVE_ORDER: u8 = if cfg!(target_endian = "little") {
    b'L'
} else {
    b'B'
};

/// Everything in a snapshot besides the datagrams.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The program that wrote the file, e.g. `tw-inspect 0.1.0`.
    pub tool: String,
    pub hostname: Option<String>,
    /// Kernel release (`uname -r`).
    pub kernel: Option<String>,
    /// Capture time, RFC 3339 in UTC (`2025-01-31T12:00:00Z`).
    pub taken_at: String,
    /// Inode of the network namespace the sockets were read in.
    pub netns_inode: Option<u64>,
    /// How long the kernel dump took, in milliseconds.
    pub collect_ms: f64,
    /// What the capture asked the kernel for.
    pub capture: Capture,
    /// The TIME_WAIT-related settings of the captured namespace.
    pub sysctls: Sysctls,
    /// Listening sockets at capture time (for server-side diagnoses).
    pub listening: Vec<Listener>,
    /// The sections that follow, in order, with their sizes and checksums.
    pub sections: Vec<SectionInfo>,
    /// The kernel's TCP counters at capture (`nstat` names); version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<Counters>,
    /// How long each CLOSE_WAIT socket had waited since its peer closed, as
    /// `[inode, ms]` pairs (the oldest first, at most
    /// [`MAX_CLOSE_WAIT_AGES`]); version 2, when there was CLOSE_WAIT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_wait_ages: Option<Vec<(u32, u32)>>,
}

/// The filter the capture ran with: a snapshot holds only what it selected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    /// State names as `--state` spells them.
    pub states: Vec<String>,
    /// The port and address filter, one entry per requirement, all of them
    /// required: e.g. `(port 80 or port 81)`, `peer 10.0.0.0/8`, `ipv4 only`.
    pub filter: Vec<String>,
}

/// Where a family's datagrams are and how to check them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionInfo {
    /// `ipv4` or `ipv6`.
    pub family: String,
    pub bytes: u64,
    /// CRC-32 (IEEE 802.3, as zlib computes it) of the section's data.
    pub crc32: u32,
}

impl SectionInfo {
    /// The description of each family's datagrams, as the metadata lists them.
    pub fn describe(raw: &[(Family, Vec<u8>)]) -> Vec<SectionInfo> {
        raw.iter()
            .map(|(f, d)| SectionInfo {
                family: f.name().into(),
                bytes: d.len() as u64,
                crc32: crc32(d),
            })
            .collect()
    }
}

/// Which kind of file a snapshot came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Written by `list --save`, with this format version.
    TwInspect(u16),
    /// Written by `ss -D`: sockets only.
    SsDump,
}

/// A loaded snapshot: checked framing, datagrams not yet parsed. The file's
/// bytes are kept once, as read; sections are ranges of them.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub path: PathBuf,
    pub origin: Origin,
    /// `None` for `ss -D` dumps.
    pub meta: Option<Metadata>,
    bytes: Vec<u8>,
    /// Datagrams per family in capture order; an `ss -D` dump is one section
    /// without a family (each message names its own).
    sections: Vec<(Option<Family>, Range<usize>)>,
}

/// What diagnoses need to know about the host whose sockets they look at. On a
/// snapshot these come from the file, never from the machine reading it; an
/// `ss -D` dump has none, and diagnoses that need them must be skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostFacts {
    pub sysctls: Option<Sysctls>,
    pub listening: Option<Vec<Listener>>,
}

/// Why a file is not a loadable snapshot. Printed after the file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    Empty,
    /// Neither magic nor plausible netlink; `what` guesses what it is.
    Unrecognized {
        what: String,
    },
    DamagedMagic,
    FutureVersion(u16),
    BadVersion(u16),
    ForeignByteOrder(u8),
    /// Bytes run out before a declared length.
    Truncated {
        what: String,
        need: u64,
        have: u64,
    },
    /// The data stops inside a dump, before its `NLMSG_DONE`.
    Unterminated(String),
    /// Anything else that is inconsistent.
    Corrupt(String),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Empty => {
                f.write_str("the file is empty (expected a tw-inspect snapshot or an `ss -D` dump)")
            }
            FormatError::Unrecognized { what } => write!(
                f,
                "not a snapshot: {what} (expected a tw-inspect snapshot from `list --save` or an `ss -D` dump)"
            ),
            FormatError::DamagedMagic => {
                f.write_str("damaged snapshot signature in the first 8 bytes: the file is corrupt")
            }
            FormatError::FutureVersion(v) => write!(
                f,
                "snapshot format version {v} is newer than this build reads (up to {VERSION}): use a newer tw-inspect"
            ),
            FormatError::BadVersion(v) => write!(
                f,
                "invalid snapshot format version {v}: the header is corrupt"
            ),
            FormatError::ForeignByteOrder(b) => write!(
                f,
                "snapshot written on a {} machine; this build reads {} snapshots only",
                if *b == b'B' {
                    "big-endian"
                } else {
                    "little-endian"
                },
                if NATIVE_ORDER == b'L' {
                    "little-endian"
                } else {
                    "big-endian"
                }
            ),
            FormatError::Truncated { what, need, have } => {
                write!(f, "truncated: {what} needs {need} bytes, {have} present")
            }
            FormatError::Unterminated(at) => {
                write!(
                    f,
                    "truncated: the dump stops at {at} without its end message (NLMSG_DONE)"
                )
            }
            FormatError::Corrupt(s) => write!(f, "corrupt: {s}"),
        }
    }
}

impl std::error::Error for FormatError {}

// ---------------------------------------------------------------------------
// Reading

/// A format error as the one-line usage error that names the file (shown
/// escaped, like every error, when it is printed).
pub(super) fn bad_file(path: &Path, e: &dyn fmt::Display) -> UsageError {
    UsageError(format!("snapshot '{}': {e}", path.display()))
}

impl Snapshot {
    /// Tells from the first bytes of a file (up to [`HEAD_LEN`]) whether it can
    /// be a snapshot, before the rest is read. `Ok` means "read on".
    pub fn recognize(head: &[u8]) -> Result<Origin, FormatError> {
        if head.is_empty() {
            return Err(FormatError::Empty);
        }
        if head.starts_with(&MAGIC) {
            return Ok(Origin::TwInspect(VERSION));
        }
        // A signature off by a byte or two is a damaged snapshot, not another format.
        if MAGIC.iter().zip(head).filter(|(a, b)| a == b).count() >= 6 {
            return Err(FormatError::DamagedMagic);
        }
        if looks_like_netlink(head) {
            return Ok(Origin::SsDump);
        }
        Err(FormatError::Unrecognized { what: sniff(head) })
    }

    /// Recognizes the file by its content and checks its framing and every
    /// metadata field. Takes the bytes and keeps them: no copy is made.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Snapshot, FormatError> {
        let head = &bytes[..bytes.len().min(HEAD_LEN)];
        match Snapshot::recognize(head)? {
            Origin::TwInspect(_) => parse_tw(path, bytes),
            Origin::SsDump => {
                // Walk it once now so a bad dump fails before any output.
                let len = bytes.len();
                let snap = Snapshot {
                    path: path.to_path_buf(),
                    origin: Origin::SsDump,
                    meta: None,
                    bytes,
                    sections: vec![(None, 0..len)],
                };
                snap.replay(&Query::default(), &mut Discard)?;
                Ok(snap)
            }
        }
    }

    /// Each section's family and datagrams, in capture order.
    pub fn sections(&self) -> impl Iterator<Item = (Option<Family>, &[u8])> {
        self.sections
            .iter()
            .map(|(f, r)| (*f, &self.bytes[r.clone()]))
    }

    /// What the loaded file tells about the host, for diagnoses.
    pub fn host_facts(&self) -> HostFacts {
        match &self.meta {
            Some(m) => HostFacts {
                sysctls: Some(m.sysctls.clone()),
                listening: Some(m.listening.clone()),
            },
            None => HostFacts::default(),
        }
    }

    /// The listening sockets a snapshot's own data holds (for `ss -D` dumps,
    /// which carry no metadata).
    pub fn listeners(&self) -> Result<Vec<Listener>> {
        let mut v = Vec::<SocketRecord>::new();
        self.replay(&crate::diag::listen::listen_query(), &mut v)
            .map_err(|e| bad_file(&self.path, &e))?;
        Ok(crate::diag::listen::from_records(&v))
    }

    /// The kernel's counters saved with the snapshot.
    pub fn counters(&self) -> Option<Counters> {
        self.meta.as_ref()?.counters.clone()
    }

    /// Gives the CLOSE_WAIT sockets of `t` the ages saved with the snapshot
    /// (matched by inode); true when the snapshot has ages.
    pub fn apply_close_wait_ages(&self, t: &mut Teardown) -> bool {
        let Some(ages) = self.meta.as_ref().and_then(|m| m.close_wait_ages.as_ref()) else {
            return false;
        };
        let by_inode: std::collections::HashMap<u32, u32> = ages.iter().copied().collect();
        for s in &mut t.close_wait {
            s.age_ms = by_inode.get(&s.inode).copied();
        }
        true
    }

    /// The report's description of this snapshot.
    pub fn info(&self) -> SnapshotInfo {
        let file = self.path.display().to_string();
        match (&self.meta, self.origin) {
            (Some(m), Origin::TwInspect(v)) => SnapshotInfo {
                file,
                format: "tw-inspect".into(),
                version: Some(v),
                host: m.hostname.clone(),
                kernel: m.kernel.clone(),
                taken_at: Some(m.taken_at.clone()),
                netns_inode: m.netns_inode,
                captured_states: Some(m.capture.states.clone()),
                captured_filter: Some(m.capture.filter.clone()),
                note: None,
            },
            _ => SnapshotInfo {
                file,
                format: "ss-dump".into(),
                version: None,
                host: None,
                kernel: None,
                taken_at: None,
                netns_inode: None,
                captured_states: None,
                captured_filter: None,
                note: Some(
                    "an `ss -D` dump records sockets only: no host, time or sysctls; diagnoses that need sysctls are skipped"
                        .into(),
                ),
            },
        }
    }

    /// Parses every datagram again and pushes the sockets that match `query`.
    pub fn replay<S: Sink>(&self, query: &Query, sink: &mut S) -> Result<ParseStats, FormatError> {
        let mut stats = ParseStats::default();
        for (family, data) in self.sections() {
            replay_section(family, data, query, &mut stats, sink)?;
        }
        Ok(stats)
    }

    /// Replays into a sink made by `make`, shaped like a live collection. The
    /// elapsed time is the original capture's (0 when unknown).
    pub fn collect<S: Sink>(
        &self,
        query: &Query,
        make: impl FnOnce() -> S,
    ) -> Result<Collection<S>> {
        let mut sink = make();
        let stats = self
            .replay(query, &mut sink)
            .map_err(|e| bad_file(&self.path, &e))?;
        // Checked on load (0 to a day); `try_` keeps a bad value from ever panicking.
        let ms = self.meta.as_ref().map_or(0.0, |m| m.collect_ms);
        let elapsed = Duration::try_from_secs_f64(ms / 1e3).unwrap_or_default();
        Ok(Collection {
            sink,
            stats,
            elapsed,
            raw: Vec::new(),
        })
    }
}

/// A sink that keeps nothing (for checking a file's framing).
struct Discard;

impl Sink for Discard {
    fn push(&mut self, _: &SocketRecord) {}
    fn absorb(&mut self, _: Self) {}
}

fn family_code(f: Family) -> u32 {
    match f {
        Family::V4 => libc::AF_INET as u32,
        Family::V6 => libc::AF_INET6 as u32,
    }
}

fn family_from_name(s: &str) -> Option<Family> {
    match s {
        "ipv4" => Some(Family::V4),
        "ipv6" => Some(Family::V6),
        _ => None,
    }
}

fn parse_tw(path: &Path, bytes: Vec<u8>) -> Result<Snapshot, FormatError> {
    let have = bytes.len() as u64;
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::Truncated {
            what: "the header".into(),
            need: HEADER_LEN as u64,
            have,
        });
    }
    let version = u16_le(&bytes, 8);
    if version == 0 {
        return Err(FormatError::BadVersion(version));
    }
    if version > VERSION {
        return Err(FormatError::FutureVersion(version));
    }
    match bytes[10] {
        b if b == NATIVE_ORDER => {}
        b @ (b'L' | b'B') => return Err(FormatError::ForeignByteOrder(b)),
        b => {
            return Err(FormatError::Corrupt(format!(
                "invalid byte-order mark 0x{b:02x} at byte 10"
            )));
        }
    }
    if bytes[11] != 0 {
        return Err(FormatError::Corrupt(
            "reserved header byte 11 is not zero".into(),
        ));
    }
    let meta_len = u32_le(&bytes, 12) as usize;
    if meta_len > MAX_METADATA {
        return Err(FormatError::Corrupt(format!(
            "metadata length {meta_len} is implausible (limit {MAX_METADATA})"
        )));
    }
    let meta_end = HEADER_LEN + meta_len;
    if meta_end > bytes.len() {
        return Err(FormatError::Truncated {
            what: "the metadata".into(),
            need: meta_end as u64,
            have,
        });
    }
    let meta: Metadata = serde_json::from_slice(&bytes[HEADER_LEN..meta_end])
        .map_err(|e| FormatError::Corrupt(format!("metadata is not valid: {e}")))?;
    meta.validate()?;
    let mut sections = Vec::with_capacity(meta.sections.len());
    let mut off = meta_end;
    for (i, info) in meta.sections.iter().enumerate() {
        let Some(family) = family_from_name(&info.family) else {
            return Err(FormatError::Corrupt(format!(
                "section {i} has unknown family '{}'",
                info.family
            )));
        };
        if sections.iter().any(|(f, _)| *f == Some(family)) {
            return Err(FormatError::Corrupt(format!(
                "two {} sections",
                info.family
            )));
        }
        let what = || format!("the {} section header", info.family);
        if bytes.len() - off < SECTION_HEADER_LEN {
            return Err(FormatError::Truncated {
                what: what(),
                need: (off + SECTION_HEADER_LEN) as u64,
                have,
            });
        }
        let code = u32_le(&bytes, off);
        if code != family_code(family) {
            return Err(FormatError::Corrupt(format!(
                "section {i} at byte {off} has family code {code}, metadata says {}",
                info.family
            )));
        }
        if u32_le(&bytes, off + 4) != 0 {
            return Err(FormatError::Corrupt(format!(
                "reserved bytes of the {} section header are not zero",
                info.family
            )));
        }
        let len = u64_le(&bytes, off + 8);
        if len != info.bytes {
            return Err(FormatError::Corrupt(format!(
                "the {} section header says {len} bytes, metadata says {}",
                info.family, info.bytes
            )));
        }
        off += SECTION_HEADER_LEN;
        let remaining = (bytes.len() - off) as u64;
        if len > remaining {
            return Err(FormatError::Truncated {
                what: format!("the {} section", info.family),
                need: off as u64 + len,
                have,
            });
        }
        let range = off..off + len as usize;
        if crc32(&bytes[range.clone()]) != info.crc32 {
            return Err(FormatError::Corrupt(format!(
                "the {} section does not match its checksum",
                info.family
            )));
        }
        sections.push((Some(family), range));
        off += len as usize;
    }
    if off != bytes.len() {
        return Err(FormatError::Corrupt(format!(
            "{} unexpected bytes after the last section (at byte {off})",
            bytes.len() - off
        )));
    }
    let snap = Snapshot {
        path: path.to_path_buf(),
        origin: Origin::TwInspect(version),
        meta: Some(meta),
        bytes,
        sections,
    };
    snap.replay(&Query::default(), &mut Discard)?;
    Ok(snap)
}

// ---------------------------------------------------------------------------
// Metadata checks: whoever wrote the file chose every value in it.

/// Limits on the metadata's text: `uname -r` and the host name are at most
/// 64 bytes on Linux; the others leave room for any real capture.
const MAX_TOOL: usize = 128;
const MAX_HOSTNAME: usize = 255;
const MAX_KERNEL: usize = 128;
const MAX_TIMESTAMP: usize = 64;
const MAX_FILTERS: usize = 64;
const MAX_FILTER_TEXT: usize = 16 << 10;
const MAX_RESERVED_PORTS_TEXT: usize = 512 << 10;
const MAX_LISTENERS: usize = 1 << 20;
/// Far more than the counters tw-inspect reads (16), for a newer writer's.
const MAX_COUNTERS: usize = 256;
/// A process name is at most 15 bytes in the kernel (TASK_COMM_LEN 16).
const MAX_COMM: usize = 64;
/// A dump longer than a day is not a measurement (milliseconds).
const MAX_COLLECT_MS: f64 = 86_400_000.0;

fn bad_field(field: &str, why: impl fmt::Display) -> FormatError {
    FormatError::Corrupt(format!("metadata field {field} {why}"))
}

fn check_text(field: &str, v: &str, max: usize) -> Result<(), FormatError> {
    if v.len() > max {
        return Err(bad_field(
            field,
            format!("is {} bytes long (limit {max})", v.len()),
        ));
    }
    Ok(())
}

fn check_range<T: PartialOrd + fmt::Display>(
    field: &str,
    v: Option<T>,
    lo: T,
    hi: T,
) -> Result<(), FormatError> {
    match v {
        Some(v) if v < lo || v > hi => {
            Err(bad_field(field, format!("is {v}, outside {lo} to {hi}")))
        }
        _ => Ok(()),
    }
}

impl Metadata {
    /// Checks every field against what a real capture can hold: numbers in
    /// their kernel ranges, the time as RFC 3339, names of known states and
    /// families, text within its length limit. Text is shown escaped later,
    /// but a length or a number out of range is refused here. (Messages quote
    /// values raw: every error is escaped once, where it is printed.)
    pub fn validate(&self) -> Result<(), FormatError> {
        check_text("tool", &self.tool, MAX_TOOL)?;
        if let Some(h) = &self.hostname {
            check_text("hostname", h, MAX_HOSTNAME)?;
        }
        if let Some(k) = &self.kernel {
            check_text("kernel", k, MAX_KERNEL)?;
        }
        check_text("taken_at", &self.taken_at, MAX_TIMESTAMP)?;
        if !is_rfc3339(&self.taken_at) {
            return Err(bad_field(
                "taken_at",
                format!(
                    "'{}' is not an RFC 3339 time (such as 2025-01-31T12:00:00Z)",
                    self.taken_at
                ),
            ));
        }
        // The kernel's inode numbers for namespaces are 32-bit.
        check_range("netns_inode", self.netns_inode, 1, u64::from(u32::MAX))?;
        if !self.collect_ms.is_finite() || !(0.0..=MAX_COLLECT_MS).contains(&self.collect_ms) {
            return Err(bad_field(
                "collect_ms",
                format!(
                    "is {}, outside 0 to {MAX_COLLECT_MS} (milliseconds)",
                    self.collect_ms
                ),
            ));
        }
        if self.capture.states.len() > crate::state::MAX_STATE {
            return Err(bad_field(
                "capture.states",
                format!(
                    "has {} entries; there are {} states",
                    self.capture.states.len(),
                    crate::state::MAX_STATE
                ),
            ));
        }
        for st in &self.capture.states {
            if crate::state::TcpState::parse(st).is_none() {
                check_text("capture.states", st, 32)?;
                return Err(bad_field(
                    "capture.states",
                    format!("holds '{}', which is not a state name", st),
                ));
            }
        }
        if self.capture.filter.len() > MAX_FILTERS {
            return Err(bad_field(
                "capture.filter",
                format!(
                    "has {} entries (limit {MAX_FILTERS})",
                    self.capture.filter.len()
                ),
            ));
        }
        for f in &self.capture.filter {
            check_text("capture.filter", f, MAX_FILTER_TEXT)?;
        }
        self.check_sysctls()?;
        if self.listening.len() > MAX_LISTENERS {
            return Err(bad_field(
                "listening",
                format!(
                    "has {} entries (limit {MAX_LISTENERS})",
                    self.listening.len()
                ),
            ));
        }
        for l in &self.listening {
            let fits = match l.family.as_str() {
                "ipv4" => l.local.is_ipv4(),
                "ipv6" => l.local.is_ipv6(),
                _ => false,
            };
            if !fits {
                check_text("listening.family", &l.family, 32)?;
                return Err(bad_field(
                    "listening",
                    format!("holds family '{}' with address {}", l.family, l.local),
                ));
            }
        }
        for l in &self.listening {
            if let Some(p) = &l.process {
                check_text("listening.process.comm", &p.comm, MAX_COMM)?;
            }
        }
        if let Some(c) = &self.counters {
            if c.0.len() > MAX_COUNTERS {
                return Err(bad_field(
                    "counters",
                    format!("has {} entries (limit {MAX_COUNTERS})", c.0.len()),
                ));
            }
            for name in c.0.keys() {
                check_text("counters", name, 64)?;
            }
        }
        if let Some(a) = &self.close_wait_ages
            && a.len() > MAX_CLOSE_WAIT_AGES
        {
            return Err(bad_field(
                "close_wait_ages",
                format!("has {} entries (limit {MAX_CLOSE_WAIT_AGES})", a.len()),
            ));
        }
        if self.sections.len() > 2 {
            return Err(bad_field(
                "sections",
                format!(
                    "has {} entries; a capture has one per family",
                    self.sections.len()
                ),
            ));
        }
        for sec in &self.sections {
            if family_from_name(&sec.family).is_none() {
                check_text("sections.family", &sec.family, 32)?;
                return Err(bad_field(
                    "sections.family",
                    format!("is '{}'; expected ipv4 or ipv6", sec.family),
                ));
            }
        }
        Ok(())
    }

    /// Kernel ranges (net/ipv4/sysctl_net_ipv4.c): an int knob is at most
    /// `i32::MAX`; the port range is ordered within 1-65535.
    fn check_sysctls(&self) -> Result<(), FormatError> {
        let s = &self.sysctls;
        const INT_MAX: u64 = i32::MAX as u64;
        if let Some((lo, hi)) = s.ip_local_port_range
            && (lo == 0 || lo > hi)
        {
            return Err(bad_field(
                "sysctls.ip_local_port_range",
                format!("is {lo}-{hi}; the kernel keeps 1 <= first <= last <= 65535"),
            ));
        }
        if let Some(r) = &s.ip_local_reserved_ports {
            check_text(
                "sysctls.ip_local_reserved_ports",
                r,
                MAX_RESERVED_PORTS_TEXT,
            )?;
            if let Some(c) = r
                .chars()
                .find(|c| !(c.is_ascii_digit() || *c == ',' || *c == '-'))
            {
                return Err(bad_field(
                    "sysctls.ip_local_reserved_ports",
                    format!(
                        "holds '{}'; the kernel writes digits, commas and dashes only",
                        c
                    ),
                ));
            }
        }
        check_range("sysctls.tcp_tw_reuse", s.tcp_tw_reuse, 0, 2)?;
        check_range("sysctls.tcp_timestamps", s.tcp_timestamps, 0, 2)?;
        check_range(
            "sysctls.tcp_tw_reuse_delay",
            s.tcp_tw_reuse_delay.map(u64::from),
            1,
            INT_MAX,
        )?;
        check_range(
            "sysctls.tcp_fin_timeout",
            s.tcp_fin_timeout.map(u64::from),
            0,
            INT_MAX,
        )?;
        check_range(
            "sysctls.tcp_max_tw_buckets",
            s.tcp_max_tw_buckets,
            0,
            INT_MAX,
        )?;
        check_range("sysctls.tcp_max_orphans", s.tcp_max_orphans, 0, INT_MAX)?;
        Ok(())
    }
}

/// True for an RFC 3339 `date-time`: `2025-01-31T12:00:00Z`, with optional
/// fractional seconds and a `Z` or `+HH:MM` offset (a leap second allowed).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |r: Range<usize>| -> Option<u32> {
        let d = b.get(r)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(d.iter().fold(0, |n, c| n * 10 + u32::from(c - b'0')))
    };
    let at = |i: usize, set: &[u8]| b.get(i).is_some_and(|c| set.contains(c));
    let (Some(year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt")) {
        return false;
    }
    let (Some(h), Some(m), Some(sec)) = (num(11..13), num(14..16), num(17..19)) else {
        return false;
    };
    if !(at(13, b":") && at(16, b":")) {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days || h > 23 || m > 59 || sec > 60 {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        i += 1 + digits;
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            let (Some(oh), Some(om)) = (num(i + 1..i + 3), num(i + 4..i + 6)) else {
                return false;
            };
            at(i + 3, b":") && oh <= 23 && om <= 59 && i + 6 == b.len()
        }
        _ => false,
    }
}

/// True when the file starts like a sock_diag dump: a plausible first
/// `nlmsghdr` of a type a dump holds.
pub fn looks_like_netlink(b: &[u8]) -> bool {
    if b.len() < NLMSG_HDRLEN {
        return false;
    }
    let len = u32_ne(b, 0) as usize;
    let ty = u16_ne(b, 4);
    match ty {
        SOCK_DIAG_BY_FAMILY => {
            (NLMSG_HDRLEN + INET_DIAG_MSG_LEN..=diag::RECV_BUF).contains(&len)
                && (b.len() <= NLMSG_HDRLEN
                    || matches!(b[NLMSG_HDRLEN] as i32, libc::AF_INET | libc::AF_INET6))
        }
        NLMSG_DONE | NLMSG_ERROR => (NLMSG_HDRLEN..=NLMSG_HDRLEN + 64).contains(&len),
        _ => false,
    }
}

/// Walks one section message by message, so a dump's end (`NLMSG_DONE`) can
/// sit in the middle (an `ss -D` file holds one dump per family).
fn replay_section<S: Sink>(
    family: Option<Family>,
    data: &[u8],
    query: &Query,
    stats: &mut ParseStats,
    sink: &mut S,
) -> Result<(), FormatError> {
    let where_ = |off: usize| match family {
        Some(f) => format!("{} section, byte {off}", f.name()),
        None => format!("byte {off}"),
    };
    let mut off = 0usize;
    let mut open = false;
    let mut dumps = 0u32;
    while off < data.len() {
        let have = data.len() - off;
        if have < NLMSG_HDRLEN {
            return Err(FormatError::Truncated {
                what: format!("the netlink message at {}", where_(off)),
                need: NLMSG_HDRLEN as u64,
                have: have as u64,
            });
        }
        let len = u32_ne(data, off) as usize;
        let ty = u16_ne(data, off + 4);
        if len < NLMSG_HDRLEN {
            return Err(FormatError::Corrupt(format!(
                "netlink message length {len} at {}",
                where_(off)
            )));
        }
        if len > have {
            return Err(FormatError::Truncated {
                what: format!("the netlink message at {}", where_(off)),
                need: len as u64,
                have: have as u64,
            });
        }
        if family.is_some() && dumps > 0 {
            return Err(FormatError::Corrupt(format!(
                "data after the end of the dump at {}",
                where_(off)
            )));
        }
        match ty {
            // 18 is the reply type of the two-family request (TCPDIAG_GETSOCK).
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                let body = &data[off + NLMSG_HDRLEN..off + len];
                if let (Some(f), Some(&code)) = (family, body.first())
                    && code as u32 != family_code(f)
                {
                    return Err(FormatError::Corrupt(format!(
                        "socket of address family {code} at {}",
                        where_(off)
                    )));
                }
            }
            NLMSG_DONE | NLMSG_ERROR | NLMSG_NOOP => {}
            other => {
                return Err(FormatError::Corrupt(format!(
                    "netlink message type {other} at {} is not part of a sock_diag dump",
                    where_(off)
                )));
            }
        }
        let end = (off + ((len + 3) & !3)).min(data.len());
        parse_datagram(&data[off..end], None, stats, |r| {
            if query.matches(r) {
                sink.push(r)
            }
        })
        .map_err(|e| match e {
            diag::parse::ParseError::Kernel(_) => {
                FormatError::Corrupt(format!("the capture recorded a kernel error: {e}"))
            }
            e => FormatError::Corrupt(format!("{} ({})", e, where_(off))),
        })?;
        if ty == NLMSG_DONE {
            dumps += 1;
            open = false;
        } else {
            open = true;
        }
        off = end;
    }
    if open || dumps == 0 {
        return Err(FormatError::Unterminated(where_(data.len())));
    }
    Ok(())
}

/// A short guess at what a file that is not a snapshot is.
fn sniff(b: &[u8]) -> String {
    let known: &[(&[u8], &str)] = &[
        (b"\x89PNG", "a PNG image"),
        (b"\x1f\x8b", "gzip-compressed data (decompress it first)"),
        (
            b"\x28\xb5\x2f\xfd",
            "zstd-compressed data (decompress it first)",
        ),
        (b"\xfd7zXZ\x00", "xz-compressed data (decompress it first)"),
        (b"\x7fELF", "an ELF executable"),
        (b"\xd4\xc3\xb2\xa1", "a pcap capture"),
        (b"\xa1\xb2\xc3\xd4", "a pcap capture"),
        (b"\x0a\x0d\x0d\x0a", "a pcapng capture"),
        (b"%PDF", "a PDF document"),
        (b"PK\x03\x04", "a zip archive"),
    ];
    for (magic, what) in known {
        if b.starts_with(magic) {
            return (*what).to_string();
        }
    }
    let head = &b[..b.len().min(512)];
    let text = std::str::from_utf8(head)
        .is_ok_and(|s| s.chars().all(|c| !c.is_control() || c.is_whitespace()));
    if text {
        return "it is a text file".into();
    }
    let hex: Vec<String> = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    format!("unrecognized data starting with bytes {}", hex.join(" "))
}

// ---------------------------------------------------------------------------
// Writing

/// Serializes a snapshot; `meta.sections` must describe `raw`.
pub fn write_to(
    w: &mut dyn Write,
    meta: &Metadata,
    raw: &[(Family, Vec<u8>)],
) -> std::io::Result<()> {
    let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    let mut head = [0u8; HEADER_LEN];
    head[..8].copy_from_slice(&MAGIC);
    head[8..10].copy_from_slice(&VERSION.to_le_bytes());
    head[10] = NATIVE_ORDER;
    head[12..16].copy_from_slice(&(json.len() as u32).to_le_bytes());
    w.write_all(&head)?;
    w.write_all(&json)?;
    for (family, data) in raw {
        let mut sh = [0u8; SECTION_HEADER_LEN];
        sh[..4].copy_from_slice(&family_code(*family).to_le_bytes());
        sh[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
        w.write_all(&sh)?;
        w.write_all(data)?;
    }
    Ok(())
}

/// CRC-32 as zlib and PNG compute it (crc32fast: table-free SIMD, about
/// fifty times faster than a byte table on a 17 MB snapshot).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::state::{StateSet, TcpState};

    /// One TIME_WAIT socket 127.0.0.1:40000 -> 127.0.0.2:80, as the kernel
    /// lays out `nlmsghdr` + `inet_diag_msg` (no attributes), then NLMSG_DONE.
    fn v4_dump() -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDRLEN + INET_DIAG_MSG_LEN];
        m[0..4].copy_from_slice(&((NLMSG_HDRLEN + INET_DIAG_MSG_LEN) as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m[6..8].copy_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
        let b = NLMSG_HDRLEN;
        m[b] = libc::AF_INET as u8;
        m[b + 1] = 6; // TCP_TIME_WAIT
        m[b + 2] = 3; // timewait timer
        m[b + 4..b + 6].copy_from_slice(&40000u16.to_be_bytes());
        m[b + 6..b + 8].copy_from_slice(&80u16.to_be_bytes());
        m[b + 8..b + 12].copy_from_slice(&[127, 0, 0, 1]);
        m[b + 24..b + 28].copy_from_slice(&[127, 0, 0, 2]);
        m[b + 52..b + 56].copy_from_slice(&59_000u32.to_ne_bytes());
        let mut done = vec![0u8; 20];
        done[0..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend(done);
        m
    }

    fn done_only() -> Vec<u8> {
        let mut done = vec![0u8; 20];
        done[0..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        done
    }

    fn meta_for(raw: &[(Family, Vec<u8>)]) -> Metadata {
        Metadata {
            tool: "tw-inspect test".into(),
            hostname: Some("h".into()),
            kernel: Some("6.18".into()),
            taken_at: "2025-01-01T00:00:00Z".into(),
            netns_inode: Some(1),
            collect_ms: 1.5,
            capture: Capture {
                states: vec!["time-wait".into()],
                filter: vec![],
            },
            sysctls: Sysctls {
                ip_local_port_range: Some((40000, 40009)),
                ..Sysctls::default()
            },
            listening: vec![],
            sections: SectionInfo::describe(raw),
            counters: None,
            close_wait_ages: None,
        }
    }

    fn file() -> Vec<u8> {
        let raw = vec![(Family::V4, v4_dump()), (Family::V6, done_only())];
        let mut out = Vec::new();
        write_to(&mut out, &meta_for(&raw), &raw).unwrap();
        out
    }

    #[test]
    fn round_trip() {
        let s = Snapshot::from_bytes(Path::new("s"), file()).unwrap();
        assert_eq!(s.origin, Origin::TwInspect(VERSION));
        let mut v = Vec::<SocketRecord>::new();
        s.replay(&Query::default(), &mut v).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].local_port, v[0].peer_port, v[0].expires_ms),
            (40000, 80, 59_000)
        );
        assert_eq!(v[0].peer, "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(
            s.host_facts().sysctls.unwrap().ip_local_port_range,
            Some((40000, 40009))
        );
        // Filters apply offline.
        let q = Query {
            states: StateSet::from_states(&[TcpState::Established]),
            ..Query::default()
        };
        let mut none = Vec::<SocketRecord>::new();
        s.replay(&q, &mut none).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn ss_dump_with_two_families() {
        let mut b = v4_dump();
        b.extend(done_only());
        let s = Snapshot::from_bytes(Path::new("d"), b.clone()).unwrap();
        assert_eq!(s.origin, Origin::SsDump);
        assert!(s.meta.is_none() && s.host_facts().sysctls.is_none());
        let mut v = Vec::<SocketRecord>::new();
        assert_eq!(s.replay(&Query::default(), &mut v).unwrap().sockets, 1);
        // A dump cut before its last NLMSG_DONE is truncated.
        b.truncate(b.len() - 20 - 20);
        let e = Snapshot::from_bytes(Path::new("d"), b).unwrap_err();
        assert!(matches!(e, FormatError::Unterminated(_)), "{e}");
    }

    #[test]
    fn bad_files_are_named_errors() {
        let good = file();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "empty"),
            (b"\x89PNG\r\n\x1a\n0000".to_vec(), "PNG"),
            (b"hello world\n".to_vec(), "text file"),
            (good[..10].to_vec(), "truncated"),
            (good[..good.len() - 3].to_vec(), "truncated"),
            (
                {
                    let mut b = good.clone();
                    b[8] = 9;
                    b
                },
                "version 9 is newer",
            ),
            (
                {
                    let mut b = good.clone();
                    b[5] = b'X';
                    b
                },
                "damaged snapshot signature",
            ),
            (
                {
                    let mut b = good.clone();
                    b[HEADER_LEN] = b'[';
                    b
                },
                "metadata is not valid",
            ),
            (
                {
                    let mut b = good.clone();
                    let n = b.len();
                    b[n - 50] ^= 0x40;
                    b
                },
                "checksum",
            ),
            (
                {
                    let mut b = good.clone();
                    let n = b.len();
                    b[n - 30] ^= 0x40;
                    b
                },
                "reserved",
            ),
            (
                {
                    let mut b = good.clone();
                    b.push(0);
                    b
                },
                "unexpected bytes",
            ),
            (
                {
                    let mut b = good.clone();
                    b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
                    b
                },
                "metadata length",
            ),
        ];
        for (bytes, want) in cases {
            let e = Snapshot::from_bytes(Path::new("f"), bytes)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "want {want:?} in {e:?}");
            assert!(!e.contains('\n'));
        }
    }

    /// A file whose metadata `edit` changed after it was made.
    fn file_with(edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
        let raw = vec![(Family::V4, v4_dump()), (Family::V6, done_only())];
        let mut v = serde_json::to_value(meta_for(&raw)).unwrap();
        edit(&mut v);
        let json = serde_json::to_vec(&v).unwrap();
        let mut out = Vec::new();
        write_to(&mut out, &meta_for(&raw), &raw).unwrap();
        let old_len = u32_le(&out, 12) as usize;
        let mut b = out[..HEADER_LEN].to_vec();
        b[12..16].copy_from_slice(&(json.len() as u32).to_le_bytes());
        b.extend(json);
        b.extend(&out[HEADER_LEN + old_len..]);
        b
    }

    #[test]
    fn every_metadata_field_is_checked() {
        use serde_json::json;
        let long = "h".repeat(300);
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|v| v["collect_ms"] = json!(1e300)), "collect_ms"),
            (Box::new(|v| v["collect_ms"] = json!(-1.0)), "collect_ms"),
            (Box::new(|v| v["taken_at"] = json!("yesterday")), "RFC 3339"),
            (
                Box::new(|v| v["taken_at"] = json!("2025-02-30T00:00:00Z")),
                "RFC 3339",
            ),
            (
                Box::new(|v| v["taken_at"] = json!("2025-01-01T24:00:00Z")),
                "RFC 3339",
            ),
            (
                Box::new(|v| v["taken_at"] = json!("2025-01-01 00:00:00")),
                "RFC 3339",
            ),
            (
                Box::new(move |v| v["hostname"] = json!(long.clone())),
                "hostname is 300 bytes",
            ),
            (
                Box::new(|v| v["netns_inode"] = json!(u64::MAX)),
                "netns_inode",
            ),
            (
                Box::new(|v| v["capture"]["states"] = json!(["time-wait", "bogus"])),
                "not a state name",
            ),
            (
                Box::new(|v| v["sysctls"]["ip_local_port_range"] = json!([60999, 32768])),
                "ip_local_port_range",
            ),
            (
                Box::new(|v| v["sysctls"]["ip_local_port_range"] = json!([0, 10])),
                "ip_local_port_range",
            ),
            (
                Box::new(|v| v["sysctls"]["tcp_tw_reuse"] = json!(7)),
                "tcp_tw_reuse is 7",
            ),
            (
                Box::new(|v| v["sysctls"]["tcp_max_tw_buckets"] = json!(1u64 << 40)),
                "tcp_max_tw_buckets",
            ),
            (
                Box::new(|v| v["sysctls"]["ip_local_reserved_ports"] = json!("80\n[OK]")),
                "digits, commas and dashes",
            ),
            (
                Box::new(|v| {
                    v["listening"] = json!([{"family": "ipv4", "local": "::1", "port": 80}])
                }),
                "listening",
            ),
            (
                Box::new(|v| {
                    v["listening"] = json!([{"family": "ipx", "local": "::1", "port": 80}])
                }),
                "listening",
            ),
            (
                Box::new(|v| {
                    v["listening"] = json!([{"family": "ipv4", "local": "1.2.3.4", "port": 70000}])
                }),
                "metadata is not valid",
            ),
            (
                Box::new(|v| v["sections"][0]["family"] = json!("x".repeat(10_000))),
                "sections.family is 10000 bytes",
            ),
            (
                Box::new(|v| {
                    let many: serde_json::Map<String, serde_json::Value> = (0..300)
                        .map(|i| (format!("TcpExtX{i}"), json!(1)))
                        .collect();
                    v["counters"] = json!(many);
                }),
                "counters has 300 entries",
            ),
            (
                Box::new(|v| v["counters"] = json!({"TcpExtTW": -1})),
                "metadata is not valid",
            ),
            (
                Box::new(|v| {
                    v["close_wait_ages"] = json!(vec![[1, 2]; MAX_CLOSE_WAIT_AGES + 1]);
                }),
                "close_wait_ages has 100001 entries",
            ),
            (
                Box::new(|v| {
                    v["listening"] = json!([{"family": "ipv4", "local": "1.2.3.4", "port": 80,
                        "process": {"pid": 1, "comm": "c".repeat(100)}}])
                }),
                "listening.process.comm is 100 bytes",
            ),
        ];
        for (edit, want) in cases {
            let e = Snapshot::from_bytes(Path::new("f"), file_with(edit))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "want {want:?} in {e:?}");
        }
        // Unchanged, and with every field at a limit it accepts, the file loads.
        assert!(Snapshot::from_bytes(Path::new("f"), file_with(|_| {})).is_ok());
        let edge = file_with(|v| {
            v["collect_ms"] = json!(86_400_000.0);
            v["taken_at"] = json!("2024-02-29T23:59:60.123456+05:30");
            v["hostname"] = json!("h\u{1b}]0;x\u{7}\nDiagnoses:");
            v["sysctls"]["ip_local_reserved_ports"] = json!("8080,9000-9100");
        });
        let s = Snapshot::from_bytes(Path::new("f"), edge).unwrap();
        // Odd text is kept as it is (and shown escaped when printed).
        assert_eq!(
            s.info().host.as_deref(),
            Some("h\u{1b}]0;x\u{7}\nDiagnoses:")
        );
    }

    #[test]
    fn rfc3339_times() {
        for ok in [
            "2025-01-31T12:00:00Z",
            "2025-01-31t12:00:00z",
            "2000-02-29T00:00:00.5+00:00",
            "1999-12-31T23:59:60-12:30",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2025-01-31",
            "2025-1-31T12:00:00Z",
            "1900-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-01-31T12:00:00",
            "2025-01-31T12:00:00.Z",
            "2025-01-31T12:00:00+5:00",
            "2025-01-31T12:00:00Z ",
            "2025-01-31T12:60:00Z",
            "２025-01-31T12:00:00Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn the_signature_decides_before_the_rest_is_read() {
        assert_eq!(Snapshot::recognize(&MAGIC), Ok(Origin::TwInspect(VERSION)));
        assert_eq!(Snapshot::recognize(&v4_dump()[..17]), Ok(Origin::SsDump));
        assert_eq!(Snapshot::recognize(&[]), Err(FormatError::Empty));
        assert!(matches!(
            Snapshot::recognize(&[0u8; 512]),
            Err(FormatError::Unrecognized { .. })
        ));
    }

    #[test]
    fn checksums() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
