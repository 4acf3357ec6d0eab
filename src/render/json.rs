//! JSON: one document per run, the contract documented in README.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// Writes `value` as one pretty JSON document and a newline.
pub fn write<T: Serialize>(w: &mut dyn Write, value: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut *w, value)?;
    w.write_all(b"\n")?;
    Ok(())
}

/// Writes `value` as one JSON line (for streams such as `--watch`).
pub fn write_line<T: Serialize>(w: &mut dyn Write, value: &T) -> Result<()> {
    serde_json::to_writer(&mut *w, value)?;
    w.write_all(b"\n")?;
    Ok(())
}
