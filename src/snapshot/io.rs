//! Snapshot files: load from a path, create and save through `Output`.
//!
//! A saved file is written aside and renamed into place when complete
//! ([`Output`]).

use std::path::Path;

use anyhow::{Context, Result};

use super::capture::Captured;
use super::format::{Snapshot, bad_file, write_to};
use crate::exit::UsageError;
use crate::host::sysctl::Sysctls;
use crate::output::Output;

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

/// Writes a capture and renames the file into place.
pub fn save(mut out: Output, c: &Captured) -> Result<()> {
    write_to(&mut out, &c.meta, &c.raw).context("writing the snapshot")?;
    out.finish()
}
