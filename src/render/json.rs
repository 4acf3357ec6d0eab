//! JSON: one document per run, the contract documented in README.

use std::io::{BufWriter, Write};

use anyhow::Result;
use serde::Serialize;

use crate::report::{ListReport, NetnsListReport, Skipped};

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

/// One `list` summary as an NDJSON line: `"type": "summary"` before the
/// fields of `body` (a report; a namespace's, with `netns` and `identity`
/// first; or the totals over namespaces).
pub fn summary_line<T: Serialize>(w: &mut dyn Write, body: &T) -> Result<()> {
    #[derive(Serialize)]
    struct Line<'a, T> {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(flatten)]
        body: &'a T,
    }
    write_line(
        w,
        &Line {
            kind: "summary",
            body,
        },
    )
}

/// The totals over namespaces as their NDJSON line has them: the report's
/// fields, then the namespaces skipped.
#[derive(Serialize)]
pub struct Totals<'a> {
    #[serde(flatten)]
    pub total: &'a ListReport,
    pub skipped: &'a [Skipped],
}

impl<'a> Totals<'a> {
    pub fn of(d: &'a NetnsListReport) -> Totals<'a> {
        Totals {
            total: &d.total,
            skipped: &d.skipped,
        }
    }
}
