//! Snapshot files: read one safely from a path, create and save through `Output`.
//!
//! Reading never blocks and never takes more memory than the file is long:
//! the path is opened with `O_NONBLOCK` (a FIFO opens at once instead of
//! waiting for a writer) and checked with `fstat` before a byte is read, so a
//! FIFO, device, directory or socket is refused at once. The first bytes must
//! look like a snapshot before the rest is read, and the rest is read into one
//! buffer of exactly the file's length, up to [`MAX_FILE`].
//!
//! A saved file is written aside and renamed into place when complete
//! ([`Output`]).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result};

use super::capture::Captured;
use super::format::{HEAD_LEN, MAX_FILE, Snapshot, bad_file, write_to};
use crate::exit::UsageError;
use crate::host::sysctl::Sysctls;
use crate::output::Output;

/// Opens `path` for reading without blocking and returns it with its length,
/// or refuses anything but a regular file (a [`UsageError`]: exit 2).
/// `flag` names the option in messages.
pub fn open_regular(path: &Path, flag: &str) -> Result<(File, u64)> {
    let shown = path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .with_context(|| format!("{flag}: cannot read '{shown}'"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{flag}: cannot read '{shown}'"))?;
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok((file, meta.len()));
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(UsageError(format!(
        "{flag}: '{shown}' is {what}; give a regular file (a snapshot from `list --save` or an `ss -D` dump)"
    ))
    .into())
}

/// Reads and checks a snapshot. I/O errors keep their cause (exit 1); a path
/// that is not a regular file, and bad content, become a [`UsageError`]
/// naming the file (exit 2).
pub fn load(path: &Path) -> Result<Snapshot> {
    let shown = path.display().to_string();
    let (mut file, len) = open_regular(path, "--load")?;
    if len > MAX_FILE {
        return Err(UsageError(format!(
            "snapshot '{shown}': {len} bytes is more than tw-inspect loads ({MAX_FILE} bytes)"
        ))
        .into());
    }
    // The signature first: anything else is refused before the rest is read.
    let mut bytes = Vec::with_capacity(len as usize);
    (&mut file)
        .take(len.min(HEAD_LEN as u64))
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read snapshot '{shown}'"))?;
    Snapshot::recognize(&bytes).map_err(|e| bad_file(path, &e))?;
    (&mut file)
        .take(len - bytes.len() as u64)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read snapshot '{shown}'"))?;
    // A file that grew or shrank while being read is not the one measured.
    let mut probe = [0u8; 1];
    let grew = match file.read(&mut probe) {
        Ok(n) => n > 0,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read snapshot '{shown}'"));
        }
    };
    if grew || bytes.len() as u64 != len {
        return Err(anyhow::anyhow!(
            "snapshot '{shown}' changed while it was read ({len} bytes at the start); read it again when it is complete"
        ));
    }
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

/// Opens the snapshot file before any work, so a bad destination fails early.
pub fn create(path: &Path) -> Result<Output> {
    Output::replace(path, "--save")
}

/// Writes a capture and renames the file into place.
pub fn save(mut out: Output, c: &Captured) -> Result<()> {
    write_to(&mut out, &c.meta, &c.raw).context("writing the snapshot")?;
    out.finish()
}
