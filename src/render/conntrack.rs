//! The conntrack section of the `list` table: the table's fill, entries by
//! conntrack state beside the matching sockets, top destinations and sources,
//! and the counters.

use std::io::Write;

use anyhow::Result;
use comfy_table::Cell;

use super::Style;
use super::table::{grouped, new_table, num, write_table};
use crate::conntrack::CtState;
use crate::report::{ConntrackGroupRow, ConntrackOther, ConntrackReport};

fn opt(n: Option<u64>) -> String {
    n.map_or("-".to_string(), grouped)
}

/// Writes the section (after the socket groups, before the diagnoses).
pub fn section(w: &mut dyn Write, c: &ConntrackReport, style: Style, explain: bool) -> Result<()> {
    writeln!(w)?;
    let fill = match c.fill {
        Some(f) if f < 0.1 => format!(" ({:.1}% of nf_conntrack_max)", f * 100.0),
        Some(f) => format!(" ({:.0}% of nf_conntrack_max)", f * 100.0),
        None => String::new(),
    };
    match (c.count, c.max) {
        (Some(n), Some(m)) => writeln!(
            w,
            "Conntrack table: {} of {} entries{fill}; TCP TIME_WAIT kept {} s",
            grouped(n),
            grouped(m),
            c.tcp_timeout_time_wait
                .map_or("?".to_string(), |s| s.to_string())
        )?,
        _ => writeln!(
            w,
            "Conntrack table: size unknown (nf_conntrack is not loaded)"
        )?,
    }
    let Some(e) = &c.entries else {
        if let Some(note) = &c.entries_note {
            writeln!(w, "{note}")?;
        }
        return counters(w, c);
    };
    writeln!(
        w,
        "TCP {}, UDP {}, other {} (IPv4 {}, IPv6 {}; NAT {}), read in {:.1} ms",
        grouped(e.tcp),
        grouped(e.udp),
        grouped(e.other),
        grouped(e.ipv4),
        grouped(e.ipv6),
        grouped(e.nat),
        e.collect_ms
    )?;
    let mut head = vec!["Conntrack state", "Entries", "Sockets"];
    if explain {
        head.push("Meaning");
    }
    let mut t = new_table(style, &head);
    for row in &e.states {
        // Empty states say nothing, except TIME_WAIT, the one compared.
        if row.conntrack == 0 && row.state != CtState::TimeWait {
            continue;
        }
        let sockets = match (&row.sockets, row.socket_states.is_empty()) {
            (_, true) => "n/a".to_string(),
            (Some(n), false) => grouped(*n),
            (None, false) => "-".to_string(),
        };
        let mut cells = vec![
            Cell::new(row.state.name()),
            num(grouped(row.conntrack)),
            num(sockets),
        ];
        if explain {
            cells.push(Cell::new(crate::text::conntrack_state(row.state)));
        }
        t.add_row(cells);
    }
    write_table(w, &t)?;
    groups(
        w,
        style,
        "TCP destinations (original direction)",
        "Destination",
        &e.destinations,
        &e.other_destinations,
    )?;
    groups(
        w,
        style,
        "TCP sources (original direction)",
        "Source",
        &e.sources,
        &e.other_sources,
    )?;
    counters(w, c)
}

fn groups(
    w: &mut dyn Write,
    style: Style,
    title: &str,
    what: &str,
    rows: &[ConntrackGroupRow],
    other: &ConntrackOther,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(w, "{title}, most TIME_WAIT first")?;
    let with_port = rows.iter().any(|r| r.port.is_some());
    let mut head = vec![what];
    if with_port {
        head.push("Port");
    }
    head.extend(["Entries", "TIME_WAIT"]);
    let mut t = new_table(style, &head);
    for r in rows {
        let mut cells = vec![Cell::new(r.address)];
        if with_port {
            cells.push(num(r.port.map_or("-".into(), |p| p.to_string())));
        }
        cells.push(num(grouped(r.tcp)));
        cells.push(num(grouped(r.time_wait)));
        t.add_row(cells);
    }
    write_table(w, &t)?;
    if other.groups > 0 {
        writeln!(
            w,
            "... and {} more with {} entries, {} in TIME_WAIT (--top 0 shows all)",
            grouped(other.groups),
            grouped(other.tcp),
            grouped(other.time_wait)
        )?;
    }
    Ok(())
}

fn counters(w: &mut dyn Write, c: &ConntrackReport) -> Result<()> {
    let Some(s) = &c.stats else {
        return Ok(());
    };
    let shown: Vec<String> = s
        .pairs()
        .iter()
        .take(4)
        .map(|(name, v)| format!("{name} {}", opt(*v)))
        .collect();
    writeln!(w)?;
    writeln!(
        w,
        "Counters since this namespace started: {}",
        shown.join(", ")
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::conntrack::CtAggregate;
    use crate::conntrack::{CtEntry, PROTO_TCP};
    use crate::host::conntrack::{CtStats, CtTable};
    use crate::report::Counts;
    use crate::socket::Family;
    use crate::state::{MAX_STATE, StateSet, TcpState};

    fn report(entries: bool) -> ConntrackReport {
        let t = CtTable {
            loaded: true,
            count: Some(3),
            max: Some(4),
            buckets: Some(4),
            tcp_timeout_time_wait: Some(120),
            tcp_timeout_established: Some(432000),
            stats: Some(CtStats {
                drop: Some(5),
                ..CtStats::default()
            }),
        };
        let mut a = CtAggregate::default();
        let mut e = CtEntry::blank(Family::V4, PROTO_TCP, Some(CtState::TimeWait));
        e.dst = "10.0.0.9".parse().unwrap();
        e.dport = 80;
        e.reply_src = e.dst;
        a.push(&e);
        a.push(&e);
        let mut counts = [0; MAX_STATE];
        counts[TcpState::TimeWait.index()] = 1;
        let sockets = Counts {
            counts,
            counted: StateSet::from_states(&[TcpState::TimeWait]),
        };
        let got = if entries {
            Ok((&a, 1.0))
        } else {
            Err("reading conntrack entries needs CAP_NET_ADMIN".to_string())
        };
        ConntrackReport::new(&t, got, &sockets, 10)
    }

    fn text(c: &ConntrackReport) -> String {
        let mut out = Vec::new();
        section(&mut out, c, Style::new(false), true).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn states_beside_sockets_groups_and_counters() {
        let t = text(&report(true));
        assert!(
            t.contains("Conntrack table: 3 of 4 entries (75% of nf_conntrack_max)"),
            "{t}"
        );
        let tw = t.lines().find(|l| l.starts_with(" TIME_WAIT ")).unwrap();
        assert_eq!(
            tw.split_whitespace().take(3).collect::<Vec<_>>(),
            ["TIME_WAIT", "2", "1"],
            "{t}"
        );
        assert!(t.contains("10.0.0.9"), "{t}");
        assert!(t.contains("drop 5"), "{t}");
        // ESTABLISHED has no entries: left out; its sockets were not counted.
        assert!(!t.contains("ESTABLISHED"), "{t}");
    }

    #[test]
    fn without_entries_the_note_and_the_size() {
        let t = text(&report(false));
        assert!(t.contains("CAP_NET_ADMIN"), "{t}");
        assert!(t.contains("3 of 4 entries"), "{t}");
        assert!(!t.contains("Conntrack state"), "{t}");
    }
}
