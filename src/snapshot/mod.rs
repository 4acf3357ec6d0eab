//! Snapshots: a socket table saved on one host and analysed anywhere.
//!
//! Two kinds of file load, told apart by their content, never by their name:
//!
//! - **tw-inspect snapshots** (`list --save`): a 16-byte header, JSON metadata
//!   (host, kernel, time, network namespace, sysctls, listening ports), then the
//!   sock_diag datagrams of each family exactly as the kernel sent them. The
//!   layout is documented in docs/snapshot-format.md.
//! - **`ss -D` dumps**: bare netlink messages as `ss` wrote them, one dump per
//!   family, each closed by `NLMSG_DONE`. They carry no metadata.
//!
//! Loading checks every length against the bytes present and never panics; a bad
//! file becomes a one-line [`UsageError`] naming the file and what is wrong.
//! Replaying applies [`Query::matches`], since the kernel's filters are not
//! there offline.

use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::diag::parse::{
    INET_DIAG_MSG_LEN, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, ParseStats,
    SOCK_DIAG_BY_FAMILY, parse_datagram,
};
use crate::diag::{self, Collection, Options, Sink};
use crate::exit::UsageError;
use crate::filter::Query;
use crate::host::sysctl::Sysctls;
use crate::output::Output;
use crate::report::SnapshotInfo;
use crate::socket::{Family, SocketRecord};
use crate::state::{StateSet, TcpState};

/// The first 8 bytes of a tw-inspect snapshot. The high first byte and the
/// trailing newline make a text-mode transfer that mangles the file visible.
pub const MAGIC: [u8; 8] = *b"\x89TWSNAP\n";
/// The format version this build writes and the newest it reads.
pub const VERSION: u16 = 1;
/// Magic (8) + version (2) + byte order (1) + reserved (1) + metadata length (4).
pub const HEADER_LEN: usize = 16;
/// Family code (4) + reserved (4) + data length (8).
pub const SECTION_HEADER_LEN: usize = 16;
/// Metadata is a few KiB; anything this large is a damaged length field.
const MAX_METADATA: usize = 16 << 20;
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

/// One listening socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub family: String,
    pub local: IpAddr,
    pub port: u16,
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

/// A loaded snapshot: checked framing, datagrams not yet parsed.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub path: PathBuf,
    pub origin: Origin,
    /// `None` for `ss -D` dumps.
    pub meta: Option<Metadata>,
    /// Datagrams per family in capture order; an `ss -D` dump is one section
    /// without a family (each message names its own).
    pub sections: Vec<(Option<Family>, Vec<u8>)>,
}

/// What diagnoses need to know about the host whose sockets they look at. On a
/// snapshot these come from the file, never from the machine reading it; an
/// `ss -D` dump has none, and diagnoses that need them must be skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostFacts {
    pub sysctls: Option<Sysctls>,
    pub listening: Option<Vec<Listener>>,
}

impl HostFacts {
    /// This host's (current network namespace's) facts.
    pub fn live() -> Result<HostFacts> {
        Ok(HostFacts {
            sysctls: Some(Sysctls::read_host()),
            listening: Some(listeners()?),
        })
    }
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
// Loading

/// Reads and checks a snapshot. I/O errors keep their cause (exit 1); bad
/// content becomes a [`UsageError`] naming the file (exit 2).
pub fn load(path: &Path) -> Result<Snapshot> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read snapshot '{}'", path.display()))?;
    Snapshot::from_bytes(path, bytes).map_err(|e| bad_file(path, &e).into())
}

/// The sysctls saved in a snapshot (for `explain sysctls --load`).
pub fn load_sysctls(path: &Path) -> Result<Sysctls> {
    let snap = load(path)?;
    match snap.meta {
        Some(m) => Ok(m.sysctls),
        None => Err(UsageError(format!(
            "'{}' is an `ss -D` dump: it holds sockets only, no sysctls (save with `tw-inspect list --save`)",
            path.display()
        ))
        .into()),
    }
}

fn bad_file(path: &Path, e: &dyn fmt::Display) -> UsageError {
    UsageError(format!("snapshot '{}': {e}", path.display()))
}

impl Snapshot {
    /// Recognizes the file by its content and checks its framing.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Snapshot, FormatError> {
        if bytes.is_empty() {
            return Err(FormatError::Empty);
        }
        if bytes.starts_with(&MAGIC) {
            return parse_tw(path, &bytes);
        }
        // A signature off by a byte or two is a damaged snapshot, not another format.
        if MAGIC.iter().zip(&bytes).filter(|(a, b)| a == b).count() >= 6 {
            return Err(FormatError::DamagedMagic);
        }
        if looks_like_netlink(&bytes) {
            // Walk it once now so a bad dump fails before any output.
            let snap = Snapshot {
                path: path.to_path_buf(),
                origin: Origin::SsDump,
                meta: None,
                sections: vec![(None, bytes)],
            };
            snap.replay(&Query::default(), &mut Discard)?;
            return Ok(snap);
        }
        Err(FormatError::Unrecognized {
            what: sniff(&bytes),
        })
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
        for (family, data) in &self.sections {
            replay_section(*family, data, query, &mut stats, sink)?;
        }
        Ok(stats)
    }

    /// Replays into a sink made by `make`, shaped like a live collection. The
    /// elapsed time is the original capture's (0 when unknown).
    pub fn collect<S: Sink>(&self, query: &Query, make: impl Fn() -> S) -> Result<Collection<S>> {
        let mut sink = make();
        let stats = self
            .replay(query, &mut sink)
            .map_err(|e| bad_file(&self.path, &e))?;
        let ms = self.meta.as_ref().map_or(0.0, |m| m.collect_ms);
        let elapsed = Duration::from_secs_f64(if ms.is_finite() && ms > 0.0 {
            ms / 1e3
        } else {
            0.0
        });
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

fn u16_le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_le(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u16_ne(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
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

fn parse_tw(path: &Path, bytes: &[u8]) -> Result<Snapshot, FormatError> {
    let have = bytes.len() as u64;
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::Truncated {
            what: "the header".into(),
            need: HEADER_LEN as u64,
            have,
        });
    }
    let version = u16_le(bytes, 8);
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
    let meta_len = u32_le(bytes, 12) as usize;
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
        let code = u32_le(bytes, off);
        if code != family_code(family) {
            return Err(FormatError::Corrupt(format!(
                "section {i} at byte {off} has family code {code}, metadata says {}",
                info.family
            )));
        }
        if u32_le(bytes, off + 4) != 0 {
            return Err(FormatError::Corrupt(format!(
                "reserved bytes of the {} section header are not zero",
                info.family
            )));
        }
        let len = u64_le(bytes, off + 8);
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
        let data = &bytes[off..off + len as usize];
        if crc32(data) != info.crc32 {
            return Err(FormatError::Corrupt(format!(
                "the {} section does not match its checksum",
                info.family
            )));
        }
        sections.push((Some(family), data.to_vec()));
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
        sections,
    };
    snap.replay(&Query::default(), &mut Discard)?;
    Ok(snap)
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
            SOCK_DIAG_BY_FAMILY | crate::diag::TCPDIAG_GETSOCK => {
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
            crate::diag::parse::ParseError::Kernel(_) => {
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
// Saving

/// Opens the snapshot file before any work, so a bad destination fails early.
pub fn create(path: &Path) -> Result<Output> {
    if path.as_os_str().is_empty() {
        return Err(UsageError("--save: empty file name".into()).into());
    }
    if path.is_dir() {
        return Err(UsageError(format!(
            "--save: '{}' is a directory; give a file name",
            path.display()
        ))
        .into());
    }
    Output::open(Some(path))
}

/// A collection's datagrams with the facts of the namespace it was made in.
#[derive(Debug)]
pub struct Captured {
    pub meta: Metadata,
    pub raw: Vec<(Family, Vec<u8>)>,
}

/// Writes a capture and renames the file into place.
pub fn save(mut out: Output, c: &Captured) -> Result<()> {
    write_to(&mut out, &c.meta, &c.raw).context("writing the snapshot")?;
    out.finish()
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
        listening: match listening {
            Some(l) => l,
            None => listeners_for(query, &raw)?,
        },
        sections: SectionInfo::describe(&raw),
    };
    Ok(Captured { meta, raw })
}

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

/// Listening sockets of the current namespace. The kernel skips its connection
/// table when only LISTEN is asked for, so this costs little even on a busy host.
pub fn listeners() -> Result<Vec<Listener>> {
    let c = diag::collect(
        &listen_query(),
        Options::default(),
        Vec::<SocketRecord>::new,
    )
    .context("reading listening sockets from the kernel")?;
    Ok(to_listeners(&c.sink))
}

/// The listeners of a capture: taken from its own datagrams when it holds every
/// listener (so saving costs no extra dump), else from a LISTEN-only dump.
fn listeners_for(query: &Query, raw: &[(Family, Vec<u8>)]) -> Result<Vec<Listener>> {
    let complete = query.states.contains(TcpState::Listen)
        && query.groups.is_empty()
        && query.families() == [Family::V4, Family::V6];
    if !complete {
        return listeners();
    }
    let mut v = Vec::<SocketRecord>::new();
    let q = listen_query();
    let mut stats = ParseStats::default();
    for (family, data) in raw {
        replay_section(Some(*family), data, &q, &mut stats, &mut v)
            .map_err(|e| anyhow::anyhow!("re-reading the capture: {e}"))?;
    }
    Ok(to_listeners(&v))
}

fn listen_query() -> Query {
    Query {
        states: StateSet::from_states(&[TcpState::Listen]),
        ..Query::default()
    }
}

fn to_listeners(recs: &[SocketRecord]) -> Vec<Listener> {
    let mut v: Vec<Listener> = recs
        .iter()
        .map(|r| Listener {
            family: r.family.name().into(),
            local: r.local,
            port: r.local_port,
        })
        .collect();
    v.sort_by(|a, b| (a.port, &a.family, a.local).cmp(&(b.port, &b.family, b.local)));
    v.dedup();
    v
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

/// CRC-32 as zlib and PNG compute it (crc32fast: table-free SIMD, about
/// fifty times faster than a byte table on a 17 MB snapshot).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(s.origin, Origin::TwInspect(1));
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

    #[test]
    fn dates_and_checksums() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_735_689_599)),
            "2024-12-31T23:59:59Z"
        );
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
