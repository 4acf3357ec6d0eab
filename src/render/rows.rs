//! Socket rows written as the sockets arrive (`list --sockets`): table, JSON,
//! NDJSON and CSV, with nothing kept per socket and no allocation per socket.
//!
//! A [`RowWriter`] is the sink of a collection: each socket the parser hands
//! over is formatted into one buffer, which goes to the output whenever it
//! holds 64 KiB. Everything that does not depend on the socket is prepared
//! before the first row: the table's column widths (from the address
//! families and states asked for, never from a first pass over the rows),
//! the fixed parts of each JSON object, and the owners found before the dump,
//! each written once in the output's format. The fields are those of the
//! contract structs ([`SocketRow`] for JSON, `csv::SocketCsv` for CSV); the
//! tests below check this writer against serde's output of those structs.
//!
//! The order of a document: the rows of each report come first, then its
//! summary, since the counts are known only once the dump has ended.

use std::io::{self, Write};
use std::net::IpAddr;

pub use super::Style;
use super::table::{counted, grouped};
use super::{csv as csv_out, human_ms, json};
use crate::escape::visible;
use crate::host::identity::NsIdentity;
use crate::report::{ListReport, ProcessRef, Skipped, SocketRow, socket_row};
use crate::socket::{Family, Sink, SocketRecord, Timer};
use crate::state::{MAX_STATE, StateSet, TcpState};

/// The formats `--sockets` streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowFormat {
    Table,
    Json,
    Ndjson,
    Csv,
}

/// Everything about the rows that is fixed before the first one.
#[derive(Clone, Copy, Debug)]
pub struct RowLayout {
    pub format: RowFormat,
    pub style: Style,
    /// The plain meaning of each state (table and CSV).
    pub explain: bool,
    /// An owner column (table, CSV) or field (JSON).
    pub processes: bool,
    /// IPv6 addresses may appear: the table's address columns are wide enough for any.
    pub ipv6: bool,
    /// The states asked for: the table's state column fits their names.
    pub states: StateSet,
    /// `--top N`: at most N rows per report; the rest are counted, not written.
    pub limit: Option<u64>,
    /// Several network namespaces: each report is labelled.
    pub labelled: bool,
}

/// The output buffer is written out once it holds this much.
const FLUSH_AT: usize = 64 * 1024;
/// Room for a full buffer plus one row, so that the buffer never grows.
const BUF_CAP: usize = FLUSH_AT + 16 * 1024;

/// Characters of the longest endpoint: `255.255.255.255:65535`, and
/// `[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535`.
const V4_ENDPOINT: usize = 21;
const V6_ENDPOINT: usize = 47;
/// `comm` is at most 15 bytes and a pid at most 7 digits: `comm (pid)`.
const OWNER_CELL: usize = 26;
/// The longest `Left` cell: `human_ms(u32::MAX)` is `4294967s`.
const LEFT_CELL: usize = 8;
/// A u32 in decimal.
const U32_CELL: usize = 10;

/// The owners of sockets, found before the dump (`--processes`), each one
/// written once in the output's format; rows copy it by inode.
#[derive(Debug, Default)]
pub struct Owners {
    /// inode → (start, end, width in characters) in `text`.
    by_inode: foldhash::HashMap<u32, (u32, u32, u32)>,
    text: Vec<u8>,
}

impl Owners {
    /// `owners` (inode → process) prepared for `format`.
    pub fn new(owners: &std::collections::HashMap<u32, ProcessRef>, format: RowFormat) -> Owners {
        let mut o = Owners::default();
        for (&inode, p) in owners {
            let start = o.text.len();
            let width = match format {
                RowFormat::Json | RowFormat::Ndjson => {
                    o.text.extend_from_slice(b",\"process\":");
                    serde_json::to_writer(&mut o.text, p).expect("writing to memory");
                    0
                }
                RowFormat::Csv => {
                    let mut l = Line::new();
                    l.uint(p.pid.into());
                    o.text.extend_from_slice(l.bytes());
                    o.text.push(b',');
                    o.text.extend_from_slice(&csv_out::field(&visible(&p.comm)));
                    0
                }
                RowFormat::Table => {
                    let cell = format!("{} ({})", visible(&p.comm), p.pid);
                    o.text.extend_from_slice(cell.as_bytes());
                    cell.chars().count()
                }
            };
            o.by_inode
                .insert(inode, (start as u32, o.text.len() as u32, width as u32));
        }
        o
    }

    fn get(&self, inode: u32) -> Option<(&[u8], usize)> {
        let &(a, b, w) = self.by_inode.get(&inode)?;
        Some((&self.text[a as usize..b as usize], w as usize))
    }
}

/// A table column: its width in characters and which side it keeps to.
#[derive(Clone, Copy, Debug)]
struct Column {
    head: &'static str,
    width: usize,
    right: bool,
}

/// Per-report state.
#[derive(Debug, Default)]
struct Report {
    /// Rows handed over, and rows written (fewer with `--top`).
    seen: u64,
    shown: u64,
    /// The label as each format writes it before a row (NDJSON, CSV).
    label: Vec<u8>,
    /// The namespace (when the document is labelled), for its summary.
    netns: Option<NsIdentity>,
}

/// A namespace's summary: its label and identity before its report's
/// fields, as `NamespaceReport` serializes them.
#[derive(serde::Serialize)]
struct Labelled<'a> {
    netns: &'a str,
    identity: &'a NsIdentity,
    #[serde(flatten)]
    report: &'a ListReport,
}

/// Writes socket rows to `out` as a collection hands them over. See the
/// module documentation for the order of a document.
pub struct RowWriter<'o, W: Write> {
    out: W,
    how: RowLayout,
    owners: Option<&'o Owners>,
    buf: Vec<u8>,
    err: Option<io::Error>,
    columns: Vec<Column>,
    /// Table: the state cell of each (state, orphaned), styled and padded.
    /// JSON: the object's start up to `"local":"`, per (family, state, orphaned).
    heads: Vec<Fixed<HEAD>>,
    /// The meaning of each state: a table cell or a CSV field.
    meanings: Vec<Vec<u8>>,
    report: Report,
    reports: u64,
    /// The row being built (reused: starting a row clears nothing).
    line: Line,
    /// The table's time-left cell, built before it is right-aligned.
    cell: Line,
}

impl<'o, W: Write> RowWriter<'o, W> {
    pub fn new(out: W, how: RowLayout, owners: Option<&'o Owners>) -> RowWriter<'o, W> {
        let mut w = RowWriter {
            out,
            how,
            owners,
            buf: Vec::with_capacity(BUF_CAP),
            err: None,
            columns: Vec::new(),
            heads: Vec::new(),
            meanings: Vec::new(),
            report: Report::default(),
            reports: 0,
            line: Line::new(),
            cell: Line::new(),
        };
        match how.format {
            RowFormat::Table => w.prepare_table(),
            RowFormat::Json | RowFormat::Ndjson => w.prepare_json(),
            RowFormat::Csv => {
                w.meanings = TcpState::ALL
                    .iter()
                    .map(|s| csv_out::field(crate::text::short(*s)))
                    .collect();
            }
        }
        w
    }

    fn prepare_table(&mut self) {
        let how = self.how;
        let orphans = how.states.iter().any(|s| {
            matches!(
                s,
                TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing | TcpState::LastAck
            )
        });
        let state_width = how.states.iter().map(|s| s.name().len()).max().unwrap_or(0)
            + if orphans { " (orphaned)".len() } else { 0 };
        let endpoint = if how.ipv6 { V6_ENDPOINT } else { V4_ENDPOINT };
        let timer = [
            Timer::Off,
            Timer::On,
            Timer::Keepalive,
            Timer::TimeWait,
            Timer::Persist,
            Timer::Unknown(0),
        ]
        .iter()
        .map(|t| t.name().len())
        .max()
        .unwrap_or(0);
        let col = |head: &'static str, width: usize, right: bool| Column {
            head,
            width: width.max(head.len()),
            right,
        };
        self.columns = vec![
            col("State", state_width, false),
            col("Local", endpoint, false),
            col("Peer", endpoint, false),
            col("Timer", timer, false),
            col("Left", LEFT_CELL, true),
            col("Retr", 3, true),
            col("UID", U32_CELL, true),
            col("Inode", U32_CELL, true),
        ];
        if how.processes {
            self.columns.push(col("Process", OWNER_CELL, false));
        }
        if how.explain {
            let longest = how
                .states
                .iter()
                .map(|s| crate::text::short(s).chars().count())
                .max()
                .unwrap_or(0);
            self.columns.push(col("Meaning", longest, false));
            self.meanings = TcpState::ALL
                .iter()
                .map(|s| crate::text::short(*s).as_bytes().to_vec())
                .collect();
        }
        let width = self.columns[0].width;
        self.heads = (0..MAX_STATE * 2)
            .map(|i| -> Fixed<HEAD> {
                let (st, orphaned) = (TcpState::ALL[i / 2], i % 2 == 1);
                let name = match orphaned {
                    true => format!("{} (orphaned)", st.name()),
                    false => st.name().to_string(),
                };
                let mut cell = match super::table::state_color(st) {
                    Some((_, code)) if how.style.color => {
                        format!("\x1b[{code}m{name}\x1b[0m").into_bytes()
                    }
                    _ => name.clone().into_bytes(),
                };
                cell.resize(cell.len() + width.saturating_sub(name.len()), b' ');
                Fixed::new(&cell)
            })
            .collect();
    }

    fn prepare_json(&mut self) {
        let mut heads = Vec::with_capacity(2 * MAX_STATE * 2);
        for family in [Family::V4, Family::V6] {
            for st in TcpState::ALL {
                for orphaned in [false, true] {
                    heads.push(Fixed::new(
                        format!(
                            "\"family\":\"{}\",\"state\":\"{}\",\"orphaned\":{orphaned},\"local\":\"",
                            family.name(),
                            st.name()
                        )
                        .as_bytes(),
                    ));
                }
            }
        }
        self.heads = heads;
    }

    /// Starts the document: the table's header (after `preamble`, a line
    /// such as the snapshot a report comes from), the CSV header, the JSON
    /// document's opening.
    pub fn begin(&mut self, preamble: Option<&str>) {
        match self.how.format {
            RowFormat::Table => {
                if let Some(p) = preamble {
                    self.buf.extend_from_slice(p.as_bytes());
                    self.buf.push(b'\n');
                }
                if !self.how.labelled {
                    self.table_header();
                }
            }
            RowFormat::Json => self.buf.extend_from_slice(match self.how.labelled {
                true => b"{\n  \"namespaces\": [",
                false => b"{\n  \"sockets\": [",
            }),
            RowFormat::Ndjson => {}
            RowFormat::Csv => {
                let mut cols: Vec<&str> = Vec::new();
                if self.how.labelled {
                    cols.extend(csv_out::NETNS_HEADER);
                }
                cols.extend(csv_out::SOCKET_HEADER);
                if self.how.explain {
                    cols.push("meaning");
                }
                self.buf.extend_from_slice(cols.join(",").as_bytes());
                self.buf.push(b'\n');
            }
        }
    }

    /// Starts one report: a namespace's rows, under its label when the
    /// document is labelled.
    pub fn begin_report(&mut self, ns: Option<&NsIdentity>) {
        self.report = Report::default();
        let first = self.reports == 0;
        self.reports += 1;
        let Some(ns) = ns.filter(|_| self.how.labelled) else {
            return;
        };
        self.report.netns = Some(ns.clone());
        let name = ns.name.as_str();
        match self.how.format {
            RowFormat::Table => {
                if !first {
                    self.buf.push(b'\n');
                }
                let heading = format!(
                    "Network namespace {} ({})\n",
                    visible(name),
                    visible(&ns.describe())
                );
                self.buf.extend_from_slice(heading.as_bytes());
                self.table_header();
            }
            RowFormat::Json => {
                if !first {
                    self.buf.push(b',');
                }
                self.buf.extend_from_slice(b"\n    {\n      \"netns\": ");
                serde_json::to_writer(&mut self.buf, name).expect("writing to memory");
                self.buf.extend_from_slice(b",\n      \"identity\": ");
                let text = serde_json::to_vec_pretty(ns).expect("an identity serializes");
                push_indented(&mut self.buf, &text, 6);
                self.buf.extend_from_slice(b",\n      \"sockets\": [");
            }
            RowFormat::Ndjson => {
                self.report.label.extend_from_slice(b"\"netns\":");
                serde_json::to_writer(&mut self.report.label, name).expect("writing to memory");
                self.report.label.push(b',');
            }
            RowFormat::Csv => self.report.label = csv_out::netns_fields(ns),
        }
        self.flush_if_full();
    }

    /// Writes one socket (unless `--top` has been reached). Its owner is the
    /// one found before the dump for its inode (`process` is not read).
    pub fn row(&mut self, r: &SocketRow) {
        self.report.seen += 1;
        if self.err.is_some() || self.how.limit.is_some_and(|n| self.report.shown >= n) {
            return;
        }
        self.report.shown += 1;
        let owner = match self.owners {
            Some(o) if self.how.processes && r.inode != 0 => o.get(r.inode),
            _ => None,
        };
        match self.how.format {
            RowFormat::Table => self.table_row(r, owner),
            RowFormat::Json => {
                self.buf.extend_from_slice(match self.report.shown {
                    1 => b"\n",
                    _ => b",\n",
                });
                let indent: &[u8] = match self.how.labelled {
                    true => b"        {",
                    false => b"    {",
                };
                self.buf.extend_from_slice(indent);
                self.json_fields(r, owner);
                self.buf.push(b'}');
            }
            RowFormat::Ndjson => {
                self.buf.extend_from_slice(b"{\"type\":\"socket\",");
                self.buf.extend_from_slice(&self.report.label);
                self.json_fields(r, owner);
                self.buf.extend_from_slice(b"}\n");
            }
            RowFormat::Csv => self.csv_row(r, owner),
        }
        self.flush_if_full();
    }

    /// Ends one report with its summary: the JSON fields after the rows, the
    /// NDJSON summary line, the table's count line.
    pub fn end_report(&mut self, r: &ListReport) {
        let labelled = self.how.labelled;
        match self.how.format {
            RowFormat::Table => {
                let line = match self.report.shown < r.total {
                    true => format!(
                        "{} of {} shown (--top 0 shows all)\n",
                        grouped(self.report.shown),
                        counted(r.total, "socket")
                    ),
                    false => format!("{}\n", counted(r.total, "socket")),
                };
                self.buf.extend_from_slice(line.as_bytes());
            }
            RowFormat::Json => {
                let indent = if labelled { 6 } else { 2 };
                self.close_array(indent);
                self.buf.extend_from_slice(b",\n");
                self.summary_fields(r, indent);
                if labelled {
                    self.buf.extend_from_slice(b"\n    }");
                }
            }
            RowFormat::Ndjson => match self.report.netns.take() {
                Some(ns) => self.summary_line(&Labelled {
                    netns: &ns.name,
                    identity: &ns,
                    report: r,
                }),
                None => self.summary_line(r),
            },
            RowFormat::Csv => {}
        }
        self.flush_if_full();
    }

    /// Ends the document; `total` is the report over every namespace when the
    /// document is labelled, `skipped` the namespaces that could not be read.
    pub fn end(&mut self, total: Option<&ListReport>, skipped: &[Skipped]) {
        match (self.how.format, total.filter(|_| self.how.labelled)) {
            (RowFormat::Json, None) => self.buf.extend_from_slice(b"\n}\n"),
            (RowFormat::Json, Some(t)) => {
                self.close_array_of(self.reports > 0, 2);
                self.buf.extend_from_slice(b",\n");
                self.summary_fields(t, 2);
                self.buf.extend_from_slice(b",\n  \"skipped\": ");
                let text = serde_json::to_vec_pretty(skipped).expect("skipped serializes");
                push_indented(&mut self.buf, &text, 2);
                self.buf.extend_from_slice(b"\n}\n");
            }
            (RowFormat::Ndjson, Some(t)) => self.summary_line(&json::Totals { total: t, skipped }),
            (RowFormat::Table, Some(t)) => {
                // One namespace: its report is the total.
                if self.reports > 1 {
                    let text = format!(
                        "\nAll {} network namespaces\n{}\n",
                        self.reports,
                        counted(t.total, "socket")
                    );
                    self.buf.extend_from_slice(text.as_bytes());
                }
                super::table::skipped(&mut self.buf, skipped).expect("writing to memory");
            }
            _ => {}
        }
    }

    /// Writes what is left in the buffer; the first write error, if any.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush();
        match self.err.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }

    fn close_array(&mut self, indent: usize) {
        self.close_array_of(self.report.shown > 0, indent);
    }

    /// `]` on its own line after elements, or right after `[` when empty.
    fn close_array_of(&mut self, any: bool, indent: usize) {
        if any {
            self.buf.push(b'\n');
            self.buf.resize(self.buf.len() + indent, b' ');
        }
        self.buf.push(b']');
    }

    /// The report's fields as members of the object being written, `indent`
    /// spaces in, as serde_json's pretty printer writes them at that depth.
    fn summary_fields(&mut self, r: &ListReport, indent: usize) {
        let text = serde_json::to_vec_pretty(r).expect("a report serializes");
        // `{\n  "source": ...,\n  ...\n}`: the lines between the braces.
        let inner = &text[2..text.len() - 2];
        self.buf.resize(self.buf.len() + indent, b' ');
        push_indented(&mut self.buf, inner.trim_ascii_start(), indent - 2);
    }

    fn summary_line<T: serde::Serialize>(&mut self, body: &T) {
        json::summary_line(&mut self.buf, body).expect("writing to memory");
    }

    /// The members of one socket object, in [`crate::report::SocketRow`]'s order.
    fn json_fields(&mut self, r: &SocketRow, owner: Option<(&[u8], usize)>) {
        let l = &mut self.line;
        l.n = 0;
        let i = ((r.family as usize * MAX_STATE) + r.state.index()) * 2 + r.orphaned as usize;
        l.fixed(&self.heads[i]);
        l.ip(r.local);
        l.lit(b"\",\"local_port\":");
        l.uint(r.local_port.into());
        l.lit(b",\"peer\":\"");
        l.ip(r.peer);
        l.lit(b"\",\"peer_port\":");
        l.uint(r.peer_port.into());
        l.lit(b",\"timer\":\"");
        l.fixed(&TIMERS[timer_index(r.timer)]);
        l.lit(b"\",\"expires_ms\":");
        l.uint(r.expires_ms.into());
        l.lit(b",\"retransmits\":");
        l.uint(r.retransmits.into());
        l.lit(b",\"uid\":");
        l.uint(r.uid.into());
        l.lit(b",\"inode\":");
        l.uint(r.inode.into());
        l.lit(b",\"cookie\":");
        l.uint(r.cookie);
        l.lit(b",\"recv_q\":");
        l.uint(r.recv_q.into());
        l.lit(b",\"send_q\":");
        l.uint(r.send_q.into());
        self.buf.extend_from_slice(l.bytes());
        if let Some((text, _)) = owner {
            self.buf.extend_from_slice(text);
        }
    }

    /// One CSV record, in `csv::SocketCsv`'s order.
    fn csv_row(&mut self, r: &SocketRow, owner: Option<(&[u8], usize)>) {
        let l = &mut self.line;
        l.n = 0;
        l.fixed(&STATES[r.state.index()]);
        l.push(b',');
        l.ip(r.local);
        l.push(b',');
        l.uint(r.local_port.into());
        l.push(b',');
        l.ip(r.peer);
        l.push(b',');
        l.uint(r.peer_port.into());
        l.push(b',');
        l.fixed(&TIMERS[timer_index(r.timer)]);
        l.push(b',');
        l.uint(r.expires_ms.into());
        l.push(b',');
        l.uint(r.retransmits.into());
        l.push(b',');
        l.uint(r.uid.into());
        l.push(b',');
        l.uint(r.inode.into());
        l.push(b',');
        l.uint(r.cookie);
        match r.orphaned {
            true => l.lit(b",true,"),
            false => l.lit(b",false,"),
        }
        let b = &mut self.buf;
        b.extend_from_slice(&self.report.label);
        b.extend_from_slice(l.bytes());
        match owner {
            Some((text, _)) => b.extend_from_slice(text),
            None => b.push(b','),
        }
        if self.how.explain {
            b.push(b',');
            b.extend_from_slice(&self.meanings[r.state.index()]);
        }
        b.push(b'\n');
    }

    fn table_header(&mut self) {
        let bold = self.how.style.color;
        let line_start = self.buf.len();
        for c in &self.columns {
            self.buf.push(b' ');
            let pad = c.width - c.head.len();
            if c.right {
                self.buf.resize(self.buf.len() + pad, b' ');
            }
            if bold {
                self.buf.extend_from_slice(b"\x1b[1m");
            }
            self.buf.extend_from_slice(c.head.as_bytes());
            if bold {
                self.buf.extend_from_slice(b"\x1b[0m");
            }
            if !c.right {
                self.buf.resize(self.buf.len() + pad, b' ');
            }
            self.buf.push(b' ');
        }
        end_line(&mut self.buf, line_start);
    }

    fn table_row(&mut self, r: &SocketRow, owner: Option<(&[u8], usize)>) {
        let cols = &self.columns;
        let l = &mut self.line;
        l.n = 0;
        l.push(b' ');
        l.fixed(&self.heads[r.state.index() * 2 + r.orphaned as usize]);
        l.lit(b"  ");
        let at = l.n;
        l.endpoint(r.local, r.local_port);
        l.spaces(cols[1].width.saturating_sub(l.n - at));
        l.lit(b"  ");
        let at = l.n;
        l.endpoint(r.peer, r.peer_port);
        l.spaces(cols[2].width.saturating_sub(l.n - at));
        l.lit(b"  ");
        let timer = &TIMERS[timer_index(r.timer)];
        l.fixed(timer);
        l.spaces(cols[3].width - timer.len);
        l.lit(b"  ");
        let left = &mut self.cell;
        left.n = 0;
        match r.timer {
            Timer::Off => left.push(b'-'),
            _ => left.human_ms(r.expires_ms),
        }
        l.spaces(cols[4].width.saturating_sub(left.n));
        l.lit(&left.b[..16]);
        l.n -= 16 - left.n;
        for (col, v) in [
            (cols[5], r.retransmits.into()),
            (cols[6], r.uid),
            (cols[7], r.inode),
        ] {
            l.lit(b"  ");
            l.spaces(col.width.saturating_sub(decimal_len(v.into())));
            l.uint(v.into());
        }
        let b = &mut self.buf;
        let line_start = b.len();
        b.extend_from_slice(l.bytes());
        if self.how.processes {
            let (text, width) = match owner {
                Some(o) => o,
                None => {
                    let t = crate::text::no_owner(r.state, r.orphaned);
                    (t.as_bytes(), t.chars().count())
                }
            };
            b.extend_from_slice(b"  ");
            b.extend_from_slice(text);
            b.resize(b.len() + cols[8].width.saturating_sub(width), b' ');
        }
        if self.how.explain {
            b.extend_from_slice(b"  ");
            b.extend_from_slice(&self.meanings[r.state.index()]);
        }
        end_line(b, line_start);
    }

    fn flush_if_full(&mut self) {
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.err.is_none()
            && let Err(e) = self.out.write_all(&self.buf)
        {
            self.err = Some(e);
        }
        self.buf.clear();
    }
}

/// A collection hands each socket straight to the writer. The rows of one
/// collection are written by one sink on one thread, in the order they come;
/// a writer is never merged with another.
impl<W: Write> Sink for RowWriter<'_, W> {
    fn push(&mut self, r: &SocketRecord) {
        self.row(&socket_row(r, None));
    }
    fn absorb(&mut self, _: Self) {}
    fn stopped(&self) -> bool {
        self.err.is_some()
    }
}

/// Pretty JSON `text` written where its first line continues the current one,
/// each further line `extra` spaces deeper (strings hold no raw newlines, so
/// every newline is between values).
fn push_indented(b: &mut Vec<u8>, text: &[u8], extra: usize) {
    for (i, line) in text.split(|c| *c == b'\n').enumerate() {
        if i > 0 {
            b.push(b'\n');
            b.resize(b.len() + extra, b' ');
        }
        b.extend_from_slice(line);
    }
}

/// Ends a table line: the last cell's padding is not written.
fn end_line(b: &mut Vec<u8>, line_start: usize) {
    while b.len() > line_start && b.last() == Some(&b' ') {
        b.pop();
    }
    b.push(b'\n');
}

/// Room for the longest row before its owner, meaning and label: a JSON
/// socket object with two full IPv6 addresses and every number at its
/// largest is under 400 bytes.
const LINE: usize = 512;
/// The start of a JSON object, or a styled and padded state cell.
const HEAD: usize = 96;
/// A state or timer name.
const NAME: usize = 16;

/// Text of at most `N` bytes in a fixed array, so that copying it is a copy
/// of `N` bytes (no call, no loop) and the length moves the cursor.
#[derive(Clone, Copy, Debug)]
struct Fixed<const N: usize> {
    b: [u8; N],
    len: usize,
}

impl<const N: usize> Fixed<N> {
    const fn new(s: &[u8]) -> Fixed<N> {
        let mut b = [0u8; N];
        let mut i = 0;
        while i < s.len() {
            b[i] = s[i];
            i += 1;
        }
        Fixed { b, len: s.len() }
    }
}

const fn name<const N: usize>(s: &str) -> Fixed<N> {
    Fixed::new(s.as_bytes())
}

/// State names, by [`TcpState::index`].
const STATES: [Fixed<NAME>; MAX_STATE] = {
    let mut t = [Fixed {
        b: [0; NAME],
        len: 0,
    }; MAX_STATE];
    let mut i = 0;
    while i < MAX_STATE {
        t[i] = name(TcpState::ALL[i].name());
        i += 1;
    }
    t
};

/// Timer names, by [`timer_index`].
const TIMERS: [Fixed<NAME>; 6] = [
    name(Timer::Off.name()),
    name(Timer::On.name()),
    name(Timer::Keepalive.name()),
    name(Timer::TimeWait.name()),
    name(Timer::Persist.name()),
    name(Timer::Unknown(0).name()),
];

fn timer_index(t: Timer) -> usize {
    match t {
        Timer::Off => 0,
        Timer::On => 1,
        Timer::Keepalive => 2,
        Timer::TimeWait => 3,
        Timer::Persist => 4,
        Timer::Unknown(_) => 5,
    }
}

/// Two decimal digits per entry, `00` to `99`.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Digits of `v` in decimal.
fn decimal_len(v: u64) -> usize {
    let mut n = 1;
    let mut p = 10u64;
    while n < 20 && v >= p {
        n += 1;
        p = p.wrapping_mul(10);
    }
    n
}

/// One row built on the stack, then copied into the output buffer at once:
/// literals and names are fixed-size copies, digits are written in place.
struct Line {
    b: [u8; LINE],
    n: usize,
}

impl Line {
    fn new() -> Line {
        Line { b: [0; LINE], n: 0 }
    }

    fn bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }

    fn push(&mut self, c: u8) {
        self.b[self.n] = c;
        self.n += 1;
    }

    /// A literal: its length is known where this is inlined.
    #[inline(always)]
    fn lit(&mut self, s: &[u8]) {
        self.b[self.n..self.n + s.len()].copy_from_slice(s);
        self.n += s.len();
    }

    fn fixed<const N: usize>(&mut self, f: &Fixed<N>) {
        self.b[self.n..self.n + N].copy_from_slice(&f.b);
        self.n += f.len;
    }

    /// Up to 48 spaces.
    fn spaces(&mut self, k: usize) {
        self.b[self.n..self.n + 48].fill(b' ');
        self.n += k.min(48);
    }

    fn uint(&mut self, mut v: u64) {
        let len = decimal_len(v);
        let mut i = self.n + len;
        while v >= 100 {
            let d = (v % 100) as usize * 2;
            v /= 100;
            i -= 2;
            self.b[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
        }
        if v >= 10 {
            let d = v as usize * 2;
            self.b[i - 2..i].copy_from_slice(&PAIRS[d..d + 2]);
        } else {
            self.b[i - 1] = b'0' + v as u8;
        }
        self.n += len;
    }

    /// 0-255 in decimal.
    fn u8(&mut self, n: u8) {
        if n >= 100 {
            self.push(b'0' + n / 100);
        }
        if n >= 10 {
            self.push(b'0' + n / 10 % 10);
        }
        self.push(b'0' + n % 10);
    }

    fn hex(&mut self, v: u16) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digits = (16 - v.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            self.push(HEX[(v >> (4 * i) & 0xf) as usize]);
        }
    }

    /// IPv6 groups in hex, separated by colons.
    fn groups(&mut self, segs: &[u16]) {
        for (i, seg) in segs.iter().enumerate() {
            if i > 0 {
                self.push(b':');
            }
            self.hex(*seg);
        }
    }

    /// An address as `IpAddr`'s `Display` writes it: dotted quad, or RFC 5952
    /// (lowercase hex, no leading zeros, the first longest run of two or more
    /// zero groups as `::`).
    fn ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                let [w, x, y, z] = a.octets();
                self.u8(w);
                self.push(b'.');
                self.u8(x);
                self.push(b'.');
                self.u8(y);
                self.push(b'.');
                self.u8(z);
            }
            IpAddr::V6(a) => {
                // As `Display`: an IPv4-mapped address keeps its dotted tail.
                if let Some(v4) = a.to_ipv4_mapped() {
                    self.lit(b"::ffff:");
                    return self.ip(IpAddr::V4(v4));
                }
                let s = a.segments();
                let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
                for (i, seg) in s.iter().enumerate() {
                    if *seg == 0 {
                        if run_len == 0 {
                            run = i;
                        }
                        run_len += 1;
                        if run_len > best_len {
                            (best, best_len) = (run, run_len);
                        }
                    } else {
                        run_len = 0;
                    }
                }
                if best_len < 2 {
                    self.groups(&s);
                } else {
                    self.groups(&s[..best]);
                    self.lit(b"::");
                    self.groups(&s[best + best_len..]);
                }
            }
        }
    }

    /// An endpoint as `SocketAddr`'s `Display` writes it: `1.2.3.4:80`, `[::1]:80`.
    fn endpoint(&mut self, ip: IpAddr, port: u16) {
        match ip {
            IpAddr::V4(_) => self.ip(ip),
            IpAddr::V6(_) => {
                self.push(b'[');
                self.ip(ip);
                self.push(b']');
            }
        }
        self.push(b':');
        self.uint(port.into());
    }

    /// What [`human_ms`] writes, without its allocation.
    fn human_ms(&mut self, ms: u32) {
        if ms < 1000 {
            self.uint(ms.into());
            self.lit(b"ms");
        } else if ms < 10_000 {
            // Tenths of a second, rounded as the float formatting of ms / 1000
            // rounds them; an exact half (x.x50 s) goes through that formatting.
            if ms % 100 == 50 {
                let text = human_ms(ms);
                self.b[self.n..self.n + text.len()].copy_from_slice(text.as_bytes());
                self.n += text.len();
                return;
            }
            let tenths = (ms + 50) / 100;
            self.uint((tenths / 10).into());
            self.push(b'.');
            self.push(b'0' + (tenths % 10) as u8);
            self.push(b's');
        } else {
            self.uint((u64::from(ms) + 500) / 1000);
            self.push(b's');
        }
    }
}

/// An address as `IpAddr`'s `Display` writes it.
#[cfg(test)]
fn push_ip(b: &mut Vec<u8>, ip: IpAddr) {
    let mut l = Line::new();
    l.ip(ip);
    b.extend_from_slice(l.bytes());
}

/// An endpoint as `SocketAddr`'s `Display` writes it.
#[cfg(test)]
fn push_endpoint(b: &mut Vec<u8>, ip: IpAddr, port: u16) {
    let mut l = Line::new();
    l.endpoint(ip, port);
    b.extend_from_slice(l.bytes());
}

/// What [`human_ms`] writes, without its allocation.
#[cfg(test)]
fn push_human_ms(b: &mut Vec<u8>, ms: u32) {
    let mut l = Line::new();
    l.human_ms(ms);
    b.extend_from_slice(l.bytes());
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

    use proptest::prelude::*;

    use super::*;
    use crate::aggregate::GroupBy;
    use crate::host::identity::fixtures as identity;
    use crate::report::{Counted, fixtures, socket_row};

    fn layout(format: RowFormat) -> RowLayout {
        RowLayout {
            format,
            style: Style::new(false),
            explain: false,
            processes: false,
            ipv6: true,
            states: StateSet::unfiltered(),
            limit: None,
            labelled: false,
        }
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            // IPv4-mapped, which `Display` writes with a dotted tail.
            any::<u32>().prop_map(|a| IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped())),
            // Zero runs of every length and place.
            (any::<[u16; 8]>(), any::<u8>()).prop_map(|(mut s, mask)| {
                for (i, seg) in s.iter_mut().enumerate() {
                    if mask & (1 << i) != 0 {
                        *seg = 0;
                    }
                }
                IpAddr::V6(Ipv6Addr::from(s))
            }),
        ]
    }

    fn record() -> impl Strategy<Value = SocketRecord> {
        (
            (any::<bool>(), 0usize..MAX_STATE, any::<bool>(), ip(), ip()),
            (
                any::<u16>(),
                any::<u16>(),
                0u8..7,
                any::<u32>(),
                any::<u8>(),
            ),
            (
                any::<u32>(),
                any::<u32>(),
                any::<u64>(),
                any::<u32>(),
                any::<u32>(),
            ),
        )
            .prop_map(
                |(
                    (v6, st, orphaned, local, peer),
                    (local_port, peer_port, timer, expires_ms, retransmits),
                    (uid, inode, cookie, recv_q, send_q),
                )| SocketRecord {
                    family: if v6 { Family::V6 } else { Family::V4 },
                    state: TcpState::ALL[st],
                    orphaned,
                    local,
                    local_port,
                    peer,
                    peer_port,
                    timer: Timer::from_kernel(timer),
                    expires_ms,
                    retransmits,
                    uid,
                    inode,
                    cookie,
                    recv_q,
                    send_q,
                    ifindex: 0,
                    tcp_times: None,
                },
            )
    }

    /// A process name as hostile as `prctl(PR_SET_NAME)` allows.
    fn comm() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![any::<char>(), Just('"'), Just(','), Just('\n'), Just('\\')],
            0..15,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    /// Rows of `recs` (owner `p` for odd inodes) through a writer.
    fn write_rows(how: RowLayout, recs: &[SocketRecord], p: Option<&ProcessRef>) -> String {
        let mut map = std::collections::HashMap::new();
        if let Some(p) = p {
            for r in recs.iter().filter(|r| r.inode % 2 == 1) {
                map.insert(r.inode, p.clone());
            }
        }
        let owners = Owners::new(&map, how.format);
        let mut out = Vec::new();
        let mut w = RowWriter::new(&mut out, how, Some(&owners));
        w.begin(None);
        w.begin_report(None);
        for r in recs {
            w.push(r);
        }
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    fn owner_of<'a>(r: &SocketRecord, p: Option<&'a ProcessRef>) -> Option<&'a ProcessRef> {
        p.filter(|_| r.inode % 2 == 1 && r.inode != 0)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]

        #[test]
        fn addresses_as_display_writes_them(a in ip(), port in any::<u16>()) {
            let mut b = Vec::new();
            push_ip(&mut b, a);
            prop_assert_eq!(String::from_utf8(b).unwrap(), a.to_string());
            let mut b = Vec::new();
            push_endpoint(&mut b, a, port);
            prop_assert_eq!(String::from_utf8(b).unwrap(), SocketAddr::new(a, port).to_string());
        }

        /// Each NDJSON line is serde's `SocketRow` plus `type`.
        #[test]
        fn json_rows_are_socket_rows(
            recs in proptest::collection::vec(record(), 1..6),
            c in comm(),
            with_owner in any::<bool>(),
        ) {
            let p = ProcessRef { pid: 4242, comm: c };
            let p = with_owner.then_some(&p);
            let mut how = layout(RowFormat::Ndjson);
            how.processes = with_owner;
            let text = write_rows(how, &recs, p);
            let lines: Vec<&str> = text.lines().collect();
            prop_assert_eq!(lines.len(), recs.len());
            for (line, r) in lines.iter().zip(&recs) {
                let mut got: serde_json::Value = serde_json::from_str(line).unwrap();
                prop_assert_eq!(got["type"].take(), "socket");
                got.as_object_mut().unwrap().remove("type");
                let want = serde_json::to_value(socket_row(r, owner_of(r, p))).unwrap();
                prop_assert_eq!(&got, &want);
                // Same members in the same order: the text itself is serde's.
                let serde_text = serde_json::to_string(&socket_row(r, owner_of(r, p))).unwrap();
                prop_assert_eq!(format!("{{{}", &line[17..]), serde_text);
            }
            // The JSON document holds the same objects.
            let how = RowLayout { format: RowFormat::Json, ..how };
            let doc = write_rows(how, &recs, p) + "\n  ]\n}";
            let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
            let rows = v["sockets"].as_array().unwrap();
            for (got, r) in rows.iter().zip(&recs) {
                prop_assert_eq!(got, &serde_json::to_value(socket_row(r, owner_of(r, p))).unwrap());
            }
        }

        /// Each CSV record is what the csv crate writes for `SocketCsv`.
        #[test]
        fn csv_rows_are_the_csv_crates(
            recs in proptest::collection::vec(record(), 1..6),
            c in comm(),
            with_owner in any::<bool>(),
            explain in any::<bool>(),
        ) {
            let p = ProcessRef { pid: 7, comm: c };
            let p = with_owner.then_some(&p);
            let mut how = layout(RowFormat::Csv);
            how.processes = with_owner;
            how.explain = explain;
            let text = write_rows(how, &recs, p);
            let mut want = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
            for r in &recs {
                want.serialize(csv_out::SocketCsv::new(&socket_row(r, owner_of(r, p)), explain)).unwrap();
            }
            let want = String::from_utf8(want.into_inner().unwrap()).unwrap();
            let (head, body) = text.split_once('\n').unwrap();
            prop_assert!(head.starts_with("state,local,"));
            prop_assert_eq!(body, want);
        }

        /// Table cells are what `Display` and [`human_ms`] write.
        #[test]
        fn table_cells_as_before(recs in proptest::collection::vec(record(), 1..6)) {
            let text = write_rows(layout(RowFormat::Table), &recs, None);
            let lines: Vec<&str> = text.lines().collect();
            prop_assert_eq!(lines.len(), recs.len() + 1);
            for (line, r) in lines[1..].iter().zip(&recs) {
                let cells: Vec<&str> = line.split_whitespace().collect();
                let mut state = r.state.name().to_string();
                if r.orphaned {
                    state.push_str(" (orphaned)");
                }
                let left = match r.timer {
                    Timer::Off => "-".to_string(),
                    _ => human_ms(r.expires_ms),
                };
                let want = [
                    state,
                    SocketAddr::new(r.local, r.local_port).to_string(),
                    SocketAddr::new(r.peer, r.peer_port).to_string(),
                    r.timer.name().to_string(),
                    left,
                    r.retransmits.to_string(),
                    r.uid.to_string(),
                    r.inode.to_string(),
                ]
                .join(" ");
                prop_assert_eq!(cells.join(" "), want);
            }
        }
    }

    #[test]
    fn human_ms_without_allocating() {
        for ms in (0..20_000).chain([u32::MAX - 1, u32::MAX, 59_400, 7_200_000]) {
            let mut b = Vec::new();
            push_human_ms(&mut b, ms);
            assert_eq!(String::from_utf8(b).unwrap(), human_ms(ms), "{ms}");
        }
    }

    fn tw(port: u16) -> SocketRecord {
        let mut a = SocketRecord::blank(Family::V4, TcpState::TimeWait);
        a.local = "127.0.0.1".parse().unwrap();
        a.local_port = port;
        a.peer = "127.0.0.2".parse().unwrap();
        a.peer_port = 80;
        a.timer = Timer::TimeWait;
        a.expires_ms = 59_400;
        a
    }

    #[test]
    fn table_columns_line_up_and_do_not_move() {
        let mut b = SocketRecord::blank(Family::V6, TcpState::Established);
        b.local = "fe80::1".parse().unwrap();
        b.local_port = 443;
        b.peer = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff".parse().unwrap();
        b.peer_port = 51000;
        b.inode = 123_456;
        let text = write_rows(layout(RowFormat::Table), &[tw(40000), b], None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let col = |l: &str, s: &str| l.find(s).unwrap();
        assert_eq!(col(lines[0], "Local"), col(lines[1], "127.0.0.1:40000"));
        assert_eq!(col(lines[1], "127.0.0.2:80"), col(lines[2], "[2001:db8"));
        let end = |l: &str, s: &str| l.find(s).unwrap() + s.len();
        assert_eq!(end(lines[0], "Inode"), end(lines[2], "123456"));
        assert_eq!(end(lines[0], "Left"), end(lines[1], "59s"));
        assert!(!text.contains('\x1b') && !text.contains(" \n"));
        // IPv4 only: narrower address columns.
        let v4 = write_rows(
            RowLayout {
                ipv6: false,
                ..layout(RowFormat::Table)
            },
            &[tw(1)],
            None,
        );
        assert!(v4.lines().next().unwrap().len() < lines[0].len() - 40);
    }

    fn report(n: usize) -> ListReport {
        let recs: Vec<SocketRecord> = (0..n).map(|i| tw(i as u16)).collect();
        fixtures::report(
            &recs,
            GroupBy::PEER_PORT_PAIR,
            StateSet::all(),
            Counted::asked(StateSet::all()),
        )
    }

    /// A whole document: `labels` as the namespaces (none: unlabelled),
    /// `rows` sockets in each.
    fn document(format: RowFormat, labels: &[&str], rows: usize, limit: Option<u64>) -> String {
        let how = RowLayout {
            labelled: !labels.is_empty(),
            limit,
            ..layout(format)
        };
        let mut out = Vec::new();
        let mut w = RowWriter::new(&mut out, how, None);
        w.begin(None);
        let names: Vec<Option<NsIdentity>> = match labels {
            [] => vec![None],
            l => l.iter().map(|s| Some(identity::named(s))).collect(),
        };
        for name in &names {
            w.begin_report(name.as_ref());
            for i in 0..rows {
                w.push(&tw(i as u16));
            }
            w.end_report(&report(rows));
        }
        w.end(Some(&report(rows * names.len())), &[]);
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_documents_are_whole_with_rows_first() {
        for rows in [0, 1, 3] {
            let text = document(RowFormat::Json, &[], rows, None);
            let v: serde_json::Value = serde_json::from_str(&text).expect(&text);
            assert_eq!(v["sockets"].as_array().unwrap().len(), rows);
            assert_eq!(v["total"], rows);
            assert!(text.starts_with("{\n  \"sockets\": ["), "{text}");
            // Pretty: the summary as serde writes it, one socket per line.
            assert!(text.contains("\n  \"total\": "), "{text}");
            assert_eq!(text.matches("\"family\"").count(), rows);
            let text = document(RowFormat::Json, &["blue", "r\"ed"], rows, Some(2));
            let v: serde_json::Value = serde_json::from_str(&text).expect(&text);
            assert_eq!(v["namespaces"][1]["netns"], "r\"ed");
            assert_eq!(v["namespaces"][1]["identity"]["name"], "r\"ed");
            assert!(v["skipped"].as_array().unwrap().is_empty());
            assert_eq!(
                v["namespaces"][1]["sockets"].as_array().unwrap().len(),
                rows.min(2)
            );
            assert_eq!(v["namespaces"][0]["total"], rows);
            assert_eq!(v["total"], 2 * rows);
            assert!(v.get("sockets").is_none(), "no repeated rows in the totals");
        }
    }

    #[test]
    fn ndjson_ends_with_the_summary() {
        let text = document(RowFormat::Ndjson, &[], 2, None);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["type"], "socket");
        assert_eq!(lines[2]["type"], "summary");
        assert_eq!(lines[2]["total"], 2);
        let text = document(RowFormat::Ndjson, &["blue", "red"], 1, None);
        let kinds: Vec<(String, String)> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["type"].as_str().unwrap().to_string(),
                    v["netns"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let want = [
            ("socket", "blue"),
            ("summary", "blue"),
            ("socket", "red"),
            ("summary", "red"),
            ("summary", ""),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(kinds, want);
    }

    #[test]
    fn table_and_csv_per_namespace() {
        let t = document(RowFormat::Table, &["blue", "red"], 3, Some(2));
        assert!(t.starts_with("Network namespace blue ("), "{t}");
        assert!(
            t.lines().nth(1).unwrap().trim_start().starts_with("State"),
            "{t}"
        );
        assert_eq!(t.matches("2 of 3 sockets shown").count(), 2, "{t}");
        assert!(t.ends_with("All 2 network namespaces\n6 sockets\n"), "{t}");
        let t = document(RowFormat::Table, &[], 2, None);
        assert!(t.ends_with("\n2 sockets\n"), "{t}");
        let c = document(RowFormat::Csv, &["blue", "a,b"], 1, None);
        let mut rd = csv::Reader::from_reader(c.as_bytes());
        let head: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(head[..4], *csv_out::NETNS_HEADER);
        assert_eq!(head[4], "state");
        let labels: Vec<String> = rd.records().map(|r| r.unwrap()[0].to_string()).collect();
        assert_eq!(labels, ["blue", "a,b"]);
    }

    #[test]
    fn a_closed_output_stops_the_rows() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = RowWriter::new(Closed, layout(RowFormat::Ndjson), None);
        w.begin_report(None);
        let mut n = 0;
        while !w.stopped() {
            w.push(&tw(1));
            n += 1;
            assert!(n < 10_000, "never noticed the closed output");
        }
        let e = w.finish().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
