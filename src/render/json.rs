//! JSON: one document per run, the contract documented in README.

use std::io::{BufWriter, Write};

use anyhow::Result;
use serde::Serialize;

/// Writes `value` as one pretty JSON document and a newline.
pub fn write<T: Serialize>(w: &mut dyn Write, value: &T) -> Result<()> {
    // serde_json writes a few bytes at a time; through `dyn Write` each piece
    // would be a virtual call. A concrete buffer in front turns 200k socket
    // rows into a few hundred large writes.
    let mut buf = BufWriter::with_capacity(256 * 1024, w);
    serde_json::to_writer_pretty(&mut buf, value)?;
    buf.write_all(b"\n")?;
    buf.flush()?;
    Ok(())
}

/// Writes `value` as one JSON line (for streams such as `--watch`).
pub fn write_line<T: Serialize>(w: &mut dyn Write, value: &T) -> Result<()> {
    serde_json::to_writer(&mut *w, value)?;
    w.write_all(b"\n")?;
    Ok(())
}
