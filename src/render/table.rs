//! Tables for people, with comfy-table. Styling only when [`Style::color`] says so.

use std::io::Write;

use anyhow::Result;
use comfy_table::{Attribute, Cell, CellAlignment, Color, Table, presets};

use super::{Style, human_age, human_ms};
use crate::aggregate::Role;
use crate::diagnose::Severity;
use crate::escape::{Visible, visible};
use crate::report::Skipped;
use crate::report::{CountedBasis, GroupRow, ListReport, OtherGroups, SnapshotInfo};
use crate::state::{StateSet, TcpState};

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

/// The states a person looks for first, colored: comfy-table's color and its ANSI code.
pub(super) fn state_color(s: TcpState) -> Option<(Color, &'static str)> {
    match s {
        TcpState::TimeWait => Some((Color::Yellow, "33")),
        TcpState::CloseWait => Some((Color::Red, "31")),
        TcpState::Established => Some((Color::Green, "32")),
        _ => None,
    }
}

/// A state's name, colored when styling and when there are sockets in it:
/// an empty state is nothing to look at, so a zero is never red.
fn state_cell(style: Style, s: TcpState, count: Option<u64>) -> Cell {
    let c = Cell::new(s.name());
    match state_color(s) {
        Some((color, _)) if style.color && count.unwrap_or(0) > 0 => c.fg(color),
        _ => c,
    }
}

/// Writes a comfy-table line by line, without the padding it leaves at the
/// end of each line.
pub fn write_table(w: &mut dyn Write, t: &Table) -> Result<()> {
    for line in t.lines() {
        writeln!(w, "{}", trim_end_styled(&line))?;
    }
    Ok(())
}

/// `line` without trailing spaces, also those before trailing SGR codes
/// (`"x   \x1b[0m"` becomes `"x\x1b[0m"`).
pub fn trim_end_styled(line: &str) -> String {
    let mut body = line;
    let mut codes: Vec<&str> = Vec::new();
    loop {
        let trimmed = body.trim_end_matches(' ');
        if let Some(start) = trimmed.rfind("\x1b[").filter(|_| trimmed.ends_with('m')) {
            let code = &trimmed[start..];
            if code[2..code.len() - 1]
                .chars()
                .all(|c| c.is_ascii_digit() || c == ';')
            {
                codes.push(code);
                body = &trimmed[..start];
                continue;
            }
        }
        body = trimmed;
        break;
    }
    let mut out = body.to_string();
    out.extend(codes.into_iter().rev());
    out
}

/// The word for a finding's severity, and its color (ANSI code) when styling.
fn severity_label(s: Severity) -> (&'static str, Option<&'static str>) {
    match s {
        Severity::Info => ("info", None),
        Severity::Warning => ("WARNING", Some("33")),
        Severity::Critical => ("CRITICAL", Some("31")),
    }
}

/// One finding: `  [CRITICAL] kind: message`, wrapped under its first word
/// when `style.width` says so, the severity colored when styling.
fn diagnosis_line(kind: &str, severity: Severity, message: &str, style: Style) -> String {
    let (label, color) = severity_label(severity);
    let head = format!("  [{label}] ");
    let body = format!("{kind}: {message}");
    let text = match style.width {
        Some(width) => crate::text::wrap(&body, width, &head, &" ".repeat(head.len())),
        None => format!("{head}{body}"),
    };
    match color {
        Some(code) if style.color => text.replacen(
            &format!("[{label}]"),
            &format!("\x1b[{code}m[{label}]\x1b[0m"),
            1,
        ),
        _ => text,
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

/// A count with its noun, singular for one: `1 socket`, `4,565 sockets`.
pub fn counted(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{} {noun}s", grouped(n)),
    }
}

/// A change with its sign and thousands separators: `+1,204`, `-3`, `0`.
pub fn grouped_signed(n: i64) -> String {
    let sign = match n {
        0 => "",
        n if n > 0 => "+",
        _ => "-",
    };
    format!("{sign}{}", grouped(n.unsigned_abs()))
}

/// A borderless table written in two passes over `rows` (column widths, then
/// the rows), so that memory does not grow beyond the rows themselves: `--top
/// 0` can print many groups (comfy-table kept every styled cell: about 0.5 GB
/// and 0.9 s for 200,000 rows). It looks like the small tables: one space of
/// padding, bold header and colored states when styling. (Socket rows stream
/// through `rows`, with fixed widths.)
fn stream_table<R>(
    w: &mut dyn Write,
    style: Style,
    head: &[&str],
    right: &[bool],
    rows: &[R],
    cells: impl Fn(&R, &mut Vec<String>),
    state_of: impl Fn(&R) -> Option<TcpState>,
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
            writeln!(w, "{}", line.trim_end_matches(' '))?;
            Ok(())
        };
    emit(w, head, None, style.color)?;
    for row in rows {
        cells(row, &mut buf);
        let refs: Vec<&str> = buf.iter().map(String::as_str).collect();
        let color = match state_of(row).and_then(state_color) {
            Some((_, code)) if style.color => Some(code),
            _ => None,
        };
        emit(w, &refs, color, false)?;
    }
    Ok(())
}

/// The group table: the grouping keys that apply, then count and timer
/// spread; incoming groups name their listener, outgoing ones their headroom.
fn groups_table(w: &mut dyn Write, groups: &[GroupRow], style: Style) -> Result<()> {
    let g0 = &groups[0];
    let listener = groups.iter().any(|g| g.listening.is_some());
    let headroom = groups.iter().any(|g| g.headroom.is_some());
    let mut head: Vec<&str> = Vec::new();
    let mut right = Vec::new();
    for (present, name, is_num) in [
        (g0.state.is_some(), "State", false),
        (g0.peer.is_some(), "Peer", false),
        (g0.peer_port.is_some(), "Peer port", true),
        (g0.local.is_some(), "Local", false),
        (g0.local_port.is_some(), "Local port", true),
        (listener, "Listener", false),
        (true, "Count", true),
        (true, "Soonest", true),
        (true, "Latest", true),
        (headroom, "Headroom", true),
    ] {
        if present {
            head.push(name);
            right.push(is_num);
        }
    }
    let cells = |g: &GroupRow, out: &mut Vec<String>| {
        out.clear();
        out.extend(g.state.map(|s| s.name().to_string()));
        out.extend(g.peer.map(|a| a.to_string()));
        out.extend(g.peer_port.map(|p| p.to_string()));
        out.extend(g.local.map(|a| a.to_string()));
        out.extend(g.local_port.map(|p| p.to_string()));
        if listener {
            out.push(match (&g.process, g.listening) {
                (Some(p), _) => format!("{} ({})", Visible(&p.comm), p.pid),
                (None, Some(true)) => "listening".into(),
                _ => "(none now)".into(),
            });
        }
        out.push(grouped(g.count));
        out.push(g.soonest_ms.map_or("-".into(), human_ms));
        out.push(g.latest_ms.map_or("-".into(), human_ms));
        if headroom {
            out.push(g.headroom.map_or("-".into(), grouped));
        }
    };
    stream_table(w, style, &head, &right, groups, cells, |g| g.state)
}

/// The states the groups cover, as the kernel spells them (`TIME_WAIT`).
fn kernel_names(states: &[TcpState]) -> String {
    states
        .iter()
        .map(|s| s.kernel_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The role view: "TIME_WAIT incoming, by local port", then "TIME_WAIT
/// outgoing, by destination", each cut to the top N with the rest summed.
fn role_tables(w: &mut dyn Write, r: &ListReport, style: Style) -> Result<()> {
    let states = kernel_names(&r.group_states);
    let others = r.other_roles.unwrap_or_default();
    for (i, role) in Role::ALL.into_iter().enumerate() {
        let rows: Vec<GroupRow> = r
            .groups
            .iter()
            .filter(|g| g.role == Some(role))
            .cloned()
            .collect();
        let other: OtherGroups = others.get(role);
        let how = match role {
            Role::Incoming => "by local port",
            Role::Outgoing => "by destination",
        };
        if i > 0 {
            writeln!(w)?;
        }
        if rows.is_empty() {
            writeln!(w, "{states} {}: none", role.name())?;
            continue;
        }
        let total = rows.iter().map(|g| g.count).sum::<u64>() + other.count;
        writeln!(
            w,
            "{states} {}, {how} (top {} of {}, {})",
            role.name(),
            rows.len(),
            counted(rows.len() as u64 + other.groups, "group"),
            counted(total, "socket")
        )?;
        groups_table(w, &rows, style)?;
        if other.groups > 0 {
            writeln!(
                w,
                "... and {} more with {} (--top 0 shows all)",
                counted(other.groups, "group"),
                counted(other.count, "socket")
            )?;
        }
    }
    Ok(())
}

/// CLOSE_WAIT per local port and process, with the oldest wait.
fn close_wait_table(w: &mut dyn Write, r: &ListReport, style: Style) -> Result<()> {
    let Some(rows) = r.close_wait.as_ref().filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let other = r.close_wait_other.unwrap_or_default();
    let total = rows.iter().map(|c| c.count).sum::<u64>() + other.count;
    writeln!(w)?;
    writeln!(
        w,
        "CLOSE_WAIT by local port and process ({}; oldest: time since the peer closed)",
        counted(total, "socket")
    )?;
    let head = ["Local port", "Process", "Count", "Oldest"];
    let right = [true, false, true, true];
    let cells = |c: &crate::report::CloseWaitRow, out: &mut Vec<String>| {
        out.clear();
        out.push(c.local_port.map_or("(outgoing)".into(), |p| p.to_string()));
        out.push(c.process.as_ref().map_or("(unknown)".into(), |p| {
            format!("{} ({})", Visible(&p.comm), p.pid)
        }));
        out.push(grouped(c.count));
        out.push(c.oldest_ms.map_or("-".into(), human_age));
    };
    stream_table(w, style, &head, &right, rows, cells, |_| None)?;
    if other.groups > 0 {
        writeln!(
            w,
            "... and {} more with {} (--top 0 shows all)",
            grouped(other.groups),
            counted(other.count, "socket")
        )?;
    }
    Ok(())
}

/// One line of the kernel's counters that speak about teardown.
fn counters_line(r: &ListReport) -> Option<String> {
    let c = &r.counters.as_ref()?.0;
    let entered = c.get("TcpExtTW")?;
    let overflow = c.get("TcpExtTCPTimeWaitOverflow").unwrap_or(0);
    let resets: u64 = crate::diagnose::ABORT_COUNTERS
        .iter()
        .filter_map(|(n, _)| c.get(n))
        .sum();
    Some(format!(
        "Kernel counters (since the namespace began): {} entered TIME_WAIT, {} refused it (table full), {} reset instead of closed",
        grouped(entered),
        grouped(overflow),
        grouped(resets)
    ))
}

/// The default `list` view: states, top groups, diagnoses (socket rows are
/// written by `rows`).
pub fn list(w: &mut dyn Write, r: &ListReport, style: Style, explain: bool) -> Result<()> {
    summary(w, r, style, explain)?;
    diagnoses(w, r, style)
}

/// The default view without its diagnoses: states and top groups.
pub fn summary(w: &mut dyn Write, r: &ListReport, style: Style, explain: bool) -> Result<()> {
    if let Some(s) = &r.snapshot {
        writeln!(w, "{}", snapshot_line(s))?;
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
    for st in TcpState::ALL {
        let orphans = r.orphaned.get(st);
        let count = match r.states.get(st) {
            None => "-".to_string(), // not counted: see the line below
            Some(n) if orphans > 0 => format!("{} ({} orphaned)", grouped(n), grouped(orphans)),
            Some(n) => grouped(n),
        };
        let mut row = vec![state_cell(style, st, r.states.get(st)), num(count)];
        if explain {
            row.push(Cell::new(crate::text::short(st)));
        }
        t.add_row(row);
    }
    write_table(w, &t)?;
    if let Some(line) = uncounted_line(r) {
        writeln!(w, "{line}")?;
    }

    let grouped_total: u64 = r.groups.iter().map(|g| g.count).sum::<u64>() + r.other_groups.count;
    writeln!(w)?;
    let states = names(&r.group_states);
    if r.other_roles.is_some() {
        role_tables(w, r, style)?;
    } else if r.groups.is_empty() {
        writeln!(w, "No {states} sockets to group.")?;
    } else {
        writeln!(
            w,
            "{} by {} (top {} of {}, {})",
            states,
            r.group_by,
            r.groups.len(),
            counted(r.groups.len() as u64 + r.other_groups.groups, "group"),
            counted(grouped_total, "socket")
        )?;
        groups_table(w, &r.groups, style)?;
        if r.other_groups.groups > 0 {
            writeln!(
                w,
                "... and {} more with {} (--top 0 shows all)",
                counted(r.other_groups.groups, "group"),
                counted(r.other_groups.count, "socket")
            )?;
        }
    }
    close_wait_table(w, r, style)?;
    if let Some(line) = counters_line(r) {
        writeln!(w)?;
        writeln!(w, "{line}")?;
    }
    Ok(())
}

/// The diagnoses, most severe first, when there are any.
pub fn diagnoses(w: &mut dyn Write, r: &ListReport, style: Style) -> Result<()> {
    if !r.diagnoses.is_empty() {
        writeln!(w)?;
        writeln!(w, "Diagnoses:")?;
        for d in &r.diagnoses {
            writeln!(
                w,
                "{}",
                diagnosis_line(d.kind, d.severity, &visible(&d.message), style)
            )?;
        }
    }
    Ok(())
}

/// The namespaces `--all-netns` found but could not read, one line each.
pub fn skipped(w: &mut dyn Write, skipped: &[Skipped]) -> Result<()> {
    if skipped.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(w, "Skipped {} network namespace(s):", skipped.len())?;
    for s in skipped {
        writeln!(
            w,
            "  {} ({}): {}",
            Visible(&s.netns),
            Visible(&s.path),
            s.reason.text()
        )?;
    }
    Ok(())
}

/// What a `-` in the state table means, when one is there (or could be).
fn uncounted_line(r: &ListReport) -> Option<&'static str> {
    let some_left_out = TcpState::ALL.iter().any(|st| r.states.get(*st).is_none());
    match r.counted.basis {
        // The dump does not say what it asked for: a state it holds no socket
        // of may have had sockets that were never asked for.
        CountedBasis::Found => Some(
            " (- : none in this `ss -D` dump, which does not record the states it asked for: only the states found in it count as seen)",
        ),
        CountedBasis::Asked if some_left_out => {
            Some(" (- : not asked of the kernel; --state all counts every state)")
        }
        CountedBasis::Captured if some_left_out => Some(
            " (- : not in the snapshot, which was captured without it; --state all with --save captures every state)",
        ),
        _ => None,
    }
}

fn names(states: &[TcpState]) -> String {
    states
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line saying which snapshot the numbers come from. Everything in it
/// but the wording comes from the file (or its name): shown escaped.
pub fn snapshot_line(s: &SnapshotInfo) -> String {
    let Some(at) = &s.taken_at else {
        let note = s.note.as_deref().unwrap_or("no host metadata");
        return format!("From `ss -D` dump {}: {}", Visible(&s.file), Visible(note));
    };
    let mut line = format!(
        "Snapshot of {} (kernel {}) taken {}, from {}",
        Visible(s.host.as_deref().unwrap_or("an unnamed host")),
        Visible(s.kernel.as_deref().unwrap_or("unknown")),
        Visible(at),
        Visible(&s.file)
    );
    // Say when the capture itself was narrowed: other sockets are not in the file.
    // (The default capture leaves out only bound-inactive, as a live `list` does.)
    let states = s.captured_states.as_deref().unwrap_or_default();
    if StateSet::unfiltered()
        .iter()
        .any(|st| !states.iter().any(|n| n == st.name()))
    {
        line.push_str(&format!("; holds only {}", Visible(&states.join(", "))));
    }
    let filter = s.captured_filter.as_deref().unwrap_or_default();
    if !filter.is_empty() {
        line.push_str(&format!(
            "; captured with {}",
            Visible(&filter.join(" and "))
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_of_one_is_singular() {
        assert_eq!(counted(1, "socket"), "1 socket");
        assert_eq!(counted(0, "socket"), "0 sockets");
        assert_eq!(counted(4565, "group"), "4,565 groups");
    }

    use crate::aggregate::GroupBy;
    use crate::report::{Counted, fixtures};
    use crate::socket::{Family, SocketRecord, Timer};

    fn text(r: &ListReport) -> String {
        let mut out = Vec::new();
        list(&mut out, r, Style::new(false), false).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The count cell of `state` in the state table.
    fn count_of<'t>(text: &'t str, state: &str) -> &'t str {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(state))
            .unwrap_or_else(|| panic!("no {state} row in\n{text}"));
        line.split_whitespace().nth(1).unwrap()
    }

    #[test]
    fn uncounted_states_show_a_dash_and_say_why() {
        let tw = SocketRecord::blank(Family::V4, TcpState::TimeWait);
        let asked = StateSet::from_states(&[TcpState::TimeWait, TcpState::Established]);
        let r = fixtures::report(
            &[tw],
            GroupBy::PEER_PORT_PAIR,
            StateSet::from_states(&[TcpState::TimeWait]),
            Counted::asked(asked),
        );
        let t = text(&r);
        assert_eq!(count_of(&t, "time-wait"), "1");
        assert_eq!(count_of(&t, "established"), "0", "counted, none there");
        assert_eq!(count_of(&t, "close-wait"), "-");
        assert!(t.contains("not asked of the kernel"), "{t}");

        // Everything counted: no dash, no note.
        let all = fixtures::report(
            &[tw],
            GroupBy::PEER_PORT_PAIR,
            StateSet::all(),
            Counted::asked(StateSet::all()),
        );
        let t = text(&all);
        assert_eq!(count_of(&t, "close-wait"), "0");
        assert!(!t.contains("(- :"), "{t}");

        // An `ss -D` dump: the note is there even when every state was found.
        let found = fixtures::report(
            &[tw],
            GroupBy::PEER_PORT_PAIR,
            StateSet::all(),
            Counted::found(StateSet::from_states(&[TcpState::TimeWait])),
        );
        let t = text(&found);
        assert_eq!(count_of(&t, "established"), "-");
        assert!(t.contains("only the states found in it count"), "{t}");
        assert_eq!(t.matches("(- :").count(), 1, "one line: {t}");
    }

    #[test]
    fn colors_only_what_is_there_and_no_trailing_spaces() {
        let tw = SocketRecord::blank(Family::V4, TcpState::TimeWait);
        let all = StateSet::all();
        let mut r = fixtures::report(&[tw], GroupBy::PEER_PORT_PAIR, all, Counted::asked(all));
        r.diagnoses.push(crate::diagnose::Diagnosis {
            kind: "tw-buckets",
            severity: Severity::Critical,
            message: "many words ".repeat(20).trim_end().to_string(),
            data: serde_json::Value::Null,
        });
        let mut out = Vec::new();
        list(&mut out, &r, Style::new(true).wrapped(Some(50)), false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let row = |s: &str| text.lines().find(|l| l.contains(s)).unwrap().to_string();
        // close-wait and established are 0: plain; time-wait holds one: colored.
        assert!(!row("close-wait").contains('\x1b'), "{text}");
        assert!(!row("established").contains('\x1b'), "{text}");
        assert!(row("time-wait ").contains('\x1b'), "{text}");
        assert!(
            text.contains("\x1b[31m[CRITICAL]\x1b[0m tw-buckets: many"),
            "{text}"
        );
        let finding: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("CRITICAL"))
            .collect();
        assert!(finding.len() > 3, "{text}");
        for l in &finding[1..] {
            assert!(l.len() <= 50 && l.starts_with(&" ".repeat(13)), "{l:?}");
        }
        for l in text.lines() {
            assert_eq!(trim_end_styled(l), l, "trailing space in {l:?}");
        }

        // Without a width and without color: one line per finding, no codes.
        let mut out = Vec::new();
        list(&mut out, &r, Style::new(false), false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b'));
        assert!(
            text.lines()
                .any(|l| l.starts_with("  [CRITICAL] tw-buckets: many") && l.ends_with("words"))
        );
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text:?}");
    }

    #[test]
    fn the_role_view_has_a_section_per_role() {
        use crate::aggregate::{Aggregate, Roles};
        use crate::diag::listen::Listener;
        use crate::socket::Sink;
        use std::sync::Arc;
        let l = Listener {
            family: "ipv4".into(),
            local: "0.0.0.0".parse().unwrap(),
            port: 80,
            inode: 5,
            process: Some(crate::host::procs::ProcessRef {
                pid: 99,
                comm: "nginx".into(),
            }),
        };
        let roles = Arc::new(Roles::new(Some(&[l]), Some((32768, 60999))));
        let mut agg = Aggregate::new(GroupBy::ROLES, StateSet::from_states(&[TcpState::TimeWait]))
            .with_roles(roles);
        for i in 0..12u16 {
            let mut r = SocketRecord::blank(Family::V4, TcpState::TimeWait);
            r.local = "10.0.0.1".parse().unwrap();
            r.local_port = 80;
            r.peer = "10.0.0.9".parse().unwrap();
            r.peer_port = 40000 + i;
            r.timer = Timer::TimeWait;
            r.expires_ms = 30_000 + u32::from(i);
            agg.push(&r);
        }
        let r = ListReport::new(&agg, 10, 1.0, Counted::asked(StateSet::unfiltered()));
        let t = text(&r);
        assert!(
            t.contains("TIME_WAIT incoming, by local port (top 1 of 1 group, 12 sockets)"),
            "{t}"
        );
        let row = t
            .lines()
            .find(|l| l.contains("nginx (99)"))
            .unwrap_or_else(|| panic!("{t}"));
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["10.0.0.1", "80", "nginx", "(99)", "12", "30s", "30s"]
        );
        assert!(t.contains("TIME_WAIT outgoing: none"), "{t}");
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["groups"][0]["role"], "incoming");
        assert_eq!(v["groups"][0]["process"]["comm"], "nginx");
        assert_eq!(v["roles"]["time-wait"]["incoming"], 12);
        assert_eq!(v["roles"]["time-wait"]["outgoing"], 0);
        assert_eq!(v["group_by"], "role");
    }

    #[test]
    fn trims_spaces_before_trailing_codes() {
        assert_eq!(trim_end_styled("a  \x1b[0m"), "a\x1b[0m");
        assert_eq!(trim_end_styled("a \x1b[1m  \x1b[0m  "), "a\x1b[1m\x1b[0m");
        assert_eq!(trim_end_styled(" x"), " x");
        assert_eq!(trim_end_styled("x \x1b[zz"), "x \x1b[zz");
    }

    #[test]
    fn thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(200000), "200,000");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(grouped_signed(1204), "+1,204");
        assert_eq!(grouped_signed(-3), "-3");
        assert_eq!(grouped_signed(0), "0");
        assert_eq!(grouped_signed(i64::MIN), "-9,223,372,036,854,775,808");
    }
}
