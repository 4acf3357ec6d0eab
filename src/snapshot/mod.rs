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
//! Loading checks every length against the bytes present and every metadata
//! field against its range, and never panics; a bad file becomes a one-line
//! [`UsageError`](crate::exit::UsageError) naming the file and what is wrong.
//! Reading never blocks on a FIFO and holds the file once, at most
//! [`MAX_FILE`] bytes (`io`). Replaying applies
//! [`Query::matches`](crate::filter::Query::matches), since the kernel's filters
//! are not there offline.
//!
//! [`format`] is the pure part (bytes to a checked [`Snapshot`] and back);
//! `capture` reads the live kernel and host, `io` reads and writes files.

mod capture;
pub mod format;
mod io;

pub use capture::{Captured, capture};
pub use format::{
    Capture, FormatError, HEAD_LEN, HostFacts, MAGIC, MAX_FILE, Metadata, Origin, SectionInfo,
    Snapshot, VERSION, crc32, write_to,
};
pub use io::{create, load, load_sysctls, save};
