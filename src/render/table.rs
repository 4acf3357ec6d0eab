//! Tables for people, with comfy-table. Styling only when [`Style::color`] says so.

use std::io::Write;

use anyhow::Result;
use comfy_table::{Attribute, Cell, CellAlignment, Color, Table, presets};

use super::{Style, human_ms};
use crate::diagnose::Severity;
use crate::report::ListReport;
use crate::state::TcpState;

/// A borderless table like `ss` prints, told explicitly whether to style.
pub fn new_table(style: Style, header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    if style.color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(header.iter().map(|h| {
        let c = Cell::new(h);
        if style.color {
            c.add_attribute(Attribute::Bold)
        } else {
            c
        }
    }));
    t
}

/// A right-aligned cell for numbers.
pub fn num(n: impl ToString) -> Cell {
    Cell::new(n.to_string()).set_alignment(CellAlignment::Right)
}

fn state_cell(style: Style, s: &str) -> Cell {
    let c = Cell::new(s);
    if !style.color {
        return c;
    }
    match s {
        "time-wait" => c.fg(Color::Yellow),
        "close-wait" => c.fg(Color::Red),
        "established" => c.fg(Color::Green),
        _ => c,
    }
}

/// Thousands separators for counts a person reads.
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// One socket row's cells, in column order.
fn socket_cells(
    s: &crate::report::SocketRow,
    with_proc: bool,
    explain: bool,
    cells: &mut Vec<String>,
) {
    use std::fmt::Write as _;
    cells.clear();
    let mut state = s.state.to_string();
    if s.orphaned {
        state.push_str(" (orphaned)");
    }
    cells.push(state);
    for (addr, port) in [(s.local, s.local_port), (s.peer, s.peer_port)] {
        let mut e = String::with_capacity(24);
        let _ = match addr {
            std::net::IpAddr::V6(_) => write!(e, "[{addr}]:{port}"),
            std::net::IpAddr::V4(_) => write!(e, "{addr}:{port}"),
        };
        cells.push(e);
    }
    cells.push(s.timer.to_string());
    cells.push(if s.timer == "off" {
        "-".to_string()
    } else {
        human_ms(s.expires_ms)
    });
    cells.push(s.retransmits.to_string());
    cells.push(s.uid.to_string());
    cells.push(s.inode.to_string());
    let st = TcpState::parse(s.state);
    if with_proc {
        cells.push(match &s.process {
            Some(p) => format!("{} ({})", p.comm, p.pid),
            None => st
                .map_or("-", |st| crate::text::no_owner(st, s.orphaned))
                .to_string(),
        });
    }
    if explain {
        cells.push(st.map(crate::text::short).unwrap_or("").to_string());
    }
}

/// A borderless table written in two passes over `rows` (column widths, then
/// the rows), so that memory does not grow with the number of rows: `--sockets`
/// and `--top 0` can print hundreds of thousands (comfy-table kept every styled
/// cell: about 0.5 GB and 0.9 s for 200,000 rows). It looks like the small
/// tables: one space of padding, bold header and colored states when styling.
fn stream_table<R>(
    w: &mut dyn Write,
    style: Style,
    head: &[&str],
    right: &[bool],
    rows: &[R],
    cells: impl Fn(&R, &mut Vec<String>),
    state_of: impl Fn(&R) -> Option<&str>,
) -> Result<()> {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    let mut buf = Vec::with_capacity(head.len());
    for row in rows {
        cells(row, &mut buf);
        for (wd, c) in widths.iter_mut().zip(&buf) {
            *wd = (*wd).max(c.chars().count());
        }
    }
    let mut line = String::new();
    let mut emit =
        |w: &mut dyn Write, cells: &[&str], color: Option<&str>, bold: bool| -> Result<()> {
            line.clear();
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(c.chars().count());
                let right = right.get(i).copied().unwrap_or(false);
                line.push(' ');
                if right {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                match (i, color, bold) {
                    (_, _, true) => line.push_str(&format!("\x1b[1m{c}\x1b[0m")),
                    (0, Some(code), _) => line.push_str(&format!("\x1b[{code}m{c}\x1b[0m")),
                    _ => line.push_str(c),
                }
                if !right {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                line.push(' ');
            }
            writeln!(w, "{line}")?;
            Ok(())
        };
    emit(w, head, None, style.color)?;
    for row in rows {
        cells(row, &mut buf);
        let refs: Vec<&str> = buf.iter().map(String::as_str).collect();
        let color = match state_of(row) {
            _ if !style.color => None,
            Some("time-wait") => Some("33"),
            Some("close-wait") => Some("31"),
            Some("established") => Some("32"),
            _ => None,
        };
        emit(w, &refs, color, false)?;
    }
    Ok(())
}

/// `--sockets` as a table.
fn sockets_table(
    w: &mut dyn Write,
    r: &ListReport,
    sockets: &[crate::report::SocketRow],
    style: Style,
    explain: bool,
) -> Result<()> {
    let mut head = vec![
        "State", "Local", "Peer", "Timer", "Left", "Retr", "UID", "Inode",
    ];
    let with_proc = r.processes || sockets.iter().any(|s| s.process.is_some());
    if with_proc {
        head.push("Process");
    }
    if explain {
        head.push("Meaning");
    }
    // Numbers (Left, Retr, UID, Inode) are right-aligned.
    let right: Vec<bool> = (0..head.len()).map(|i| (4..8).contains(&i)).collect();
    stream_table(
        w,
        style,
        &head,
        &right,
        sockets,
        |s, cells| socket_cells(s, with_proc, explain, cells),
        |s| Some(s.state),
    )?;
    writeln!(w, "{} sockets", grouped(r.total))?;
    Ok(())
}

/// The group table: the grouping keys that apply, then count and timer spread.
fn groups_table(w: &mut dyn Write, groups: &[crate::report::GroupRow], style: Style) -> Result<()> {
    let g0 = &groups[0];
    let mut head: Vec<&str> = Vec::new();
    let mut right = Vec::new();
    for (present, name, is_num) in [
        (g0.state.is_some(), "State", false),
        (g0.peer.is_some(), "Peer", false),
        (g0.peer_port.is_some(), "Peer port", true),
        (g0.local.is_some(), "Local", false),
        (g0.local_port.is_some(), "Local port", true),
        (true, "Count", true),
        (true, "Soonest", true),
        (true, "Latest", true),
    ] {
        if present {
            head.push(name);
            right.push(is_num);
        }
    }
    let cells = |g: &crate::report::GroupRow, out: &mut Vec<String>| {
        out.clear();
        out.extend(g.state.map(str::to_string));
        out.extend(g.peer.clone());
        out.extend(g.peer_port.map(|p| p.to_string()));
        out.extend(g.local.clone());
        out.extend(g.local_port.map(|p| p.to_string()));
        out.push(grouped(g.count));
        out.push(g.soonest_ms.map_or("-".into(), human_ms));
        out.push(g.latest_ms.map_or("-".into(), human_ms));
    };
    stream_table(w, style, &head, &right, groups, cells, |g| g.state)
}

/// The default `list` view: states, top groups, diagnoses; or the socket rows.
pub fn list(w: &mut dyn Write, r: &ListReport, style: Style, explain: bool) -> Result<()> {
    if let Some(s) = &r.snapshot {
        writeln!(w, "{}", snapshot_line(s))?;
    }
    if let Some(sockets) = &r.sockets {
        return sockets_table(w, r, sockets, style, explain);
    }

    // A snapshot's collect_ms is its capture's; an `ss -D` dump does not say.
    let source = match (&r.snapshot, r.collect_ms > 0.0) {
        (Some(_), true) => format!("captured in {:.1} ms", r.collect_ms),
        (Some(_), false) => "from a snapshot".to_string(),
        (None, _) => format!("read from {} in {:.1} ms", r.source, r.collect_ms),
    };
    writeln!(
        w,
        "TCP sockets: {} (IPv4 {}, IPv6 {}), {source}",
        grouped(r.total),
        grouped(r.families.ipv4),
        grouped(r.families.ipv6),
    )?;
    writeln!(w)?;
    let mut head = vec!["State", "Count"];
    if explain {
        head.push("Meaning");
    }
    let mut t = new_table(style, &head);
    for (st, n) in &r.states.0 {
        let orphans = r.orphaned.get(*st);
        let count = if !r.counted_states.contains(&st.name()) {
            "-".to_string() // not asked of the kernel
        } else if orphans > 0 {
            format!("{} ({} orphaned)", grouped(*n), grouped(orphans))
        } else {
            grouped(*n)
        };
        let mut row = vec![state_cell(style, st.name()), num(count)];
        if explain {
            row.push(Cell::new(crate::text::short(*st)));
        }
        t.add_row(row);
    }
    writeln!(w, "{t}")?;
    if r.counted_states.len() < r.states.0.len() {
        writeln!(
            w,
            " (- : not asked of the kernel; --state all counts every state)"
        )?;
    }

    let grouped_total: u64 = r.groups.iter().map(|g| g.count).sum::<u64>() + r.other_groups.count;
    writeln!(w)?;
    let states = r.group_states.join(", ");
    if r.groups.is_empty() {
        writeln!(w, "No {states} sockets to group.")?;
    } else {
        writeln!(
            w,
            "{} by {} (top {} of {} groups, {} sockets)",
            states,
            r.group_by,
            r.groups.len(),
            r.groups.len() as u64 + r.other_groups.groups,
            grouped(grouped_total)
        )?;
        groups_table(w, &r.groups, style)?;
        if r.other_groups.groups > 0 {
            writeln!(
                w,
                "... and {} more groups with {} sockets (--top 0 shows all)",
                grouped(r.other_groups.groups),
                grouped(r.other_groups.count)
            )?;
        }
    }
    if !r.diagnoses.is_empty() {
        writeln!(w)?;
        writeln!(w, "Diagnoses:")?;
        for d in &r.diagnoses {
            let label = match d.severity {
                Severity::Info => "info",
                Severity::Warning => "WARNING",
                Severity::Critical => "CRITICAL",
            };
            writeln!(w, "  [{label}] {}: {}", d.kind, d.message)?;
        }
    }
    Ok(())
}

/// One line saying which snapshot the numbers come from.
pub fn snapshot_line(s: &crate::report::SnapshotInfo) -> String {
    let Some(at) = &s.taken_at else {
        let note = s.note.as_deref().unwrap_or("no host metadata");
        return format!("From `ss -D` dump {}: {note}", s.file);
    };
    let mut line = format!(
        "Snapshot of {} (kernel {}) taken {at}, from {}",
        s.host.as_deref().unwrap_or("an unnamed host"),
        s.kernel.as_deref().unwrap_or("unknown"),
        s.file
    );
    // Say when the capture itself was narrowed: other sockets are not in the file.
    // (The default capture leaves out only bound-inactive, as a live `list` does.)
    let states = s.captured_states.as_deref().unwrap_or_default();
    if crate::state::StateSet::unfiltered()
        .iter()
        .any(|st| !states.iter().any(|n| n == st.name()))
    {
        line.push_str(&format!("; holds only {}", states.join(", ")));
    }
    let filter = s.captured_filter.as_deref().unwrap_or_default();
    if !filter.is_empty() {
        line.push_str(&format!("; captured with {}", filter.join(" and ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_rows_line_up() {
        use crate::aggregate::{Aggregate, GroupBy};
        use crate::socket::Sink;
        use crate::socket::{Family, SocketRecord, Timer};
        use crate::state::StateSet;
        let mut a = SocketRecord::blank(Family::V4, TcpState::TimeWait);
        a.local = "127.0.0.1".parse().unwrap();
        a.local_port = 40000;
        a.peer = "127.0.0.2".parse().unwrap();
        a.peer_port = 80;
        a.timer = Timer::TimeWait;
        a.expires_ms = 59_400;
        let mut b = SocketRecord::blank(Family::V6, TcpState::Established);
        b.local = "fe80::1".parse().unwrap();
        b.local_port = 443;
        b.peer = "fe80::2".parse().unwrap();
        b.peer_port = 51000;
        b.inode = 123_456;
        let mut agg = Aggregate::new(GroupBy::PEER_PORT_PAIR, StateSet::all());
        agg.push(&a);
        agg.push(&b);
        let r = ListReport::new(&agg, 10, Some(&[a, b]), 0.0);
        let mut out = Vec::new();
        list(&mut out, &r, Style { color: false }, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(!text.contains('\x1b'));
        // Text columns start together, numbers end together.
        let col = |l: &str, s: &str| l.find(s).unwrap();
        assert_eq!(col(lines[0], "Local"), col(lines[1], "127.0.0.1:40000"));
        assert_eq!(
            col(lines[1], "127.0.0.1:40000"),
            col(lines[2], "[fe80::1]:443")
        );
        let end = |l: &str, s: &str| l.find(s).unwrap() + s.len();
        assert_eq!(end(lines[0], "Inode"), end(lines[2], "123456"));
        assert_eq!(end(lines[0], "Left"), end(lines[1], "59s"));
        assert_eq!(lines[3], "2 sockets");
    }

    #[test]
    fn thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(200000), "200,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }
}
