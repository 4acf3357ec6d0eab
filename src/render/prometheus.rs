//! Prometheus text exposition format (version 0.0.4), for node_exporter's
//! textfile collector or any scraper. Every metric family is written as one
//! block (HELP, TYPE, then its samples for every namespace), as the format requires.
//!
//! Cardinality is bounded: states × families is fixed, TIME_WAIT groups and
//! port-pressure destinations are cut to `top`, and the cut TIME_WAIT groups
//! are summed into one `peer="other"` series so the groups add up to the total.

use std::io::Write;

use anyhow::Result;

use crate::aggregate::{Aggregate, Pressure};
use crate::state::TcpState;

/// What one namespace contributes.
pub struct NsMetrics<'a> {
    /// `Some` adds a `netns` label to every series (`--netns`, `--all-netns`).
    pub netns: Option<&'a str>,
    /// TIME_WAIT sockets grouped by peer and peer port.
    pub agg: &'a Aggregate,
    /// Outgoing sockets per destination and the usable ephemeral ports.
    pub pressure: Option<(&'a Pressure, u64)>,
    pub collect_seconds: f64,
}

/// Escapes a label value: backslash, double quote and line feed.
pub fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// `{netns="..",k="v",...}` (or nothing when there are no labels).
fn labels(netns: Option<&str>, pairs: &[(&str, &str)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(n) = netns {
        parts.push(format!("netns=\"{}\"", escape(n)));
    }
    for (k, v) in pairs {
        parts.push(format!("{k}=\"{}\"", escape(v)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn head(w: &mut dyn Write, name: &str, help: &str) -> Result<()> {
    writeln!(w, "# HELP {name} {help}")?;
    writeln!(w, "# TYPE {name} gauge")?;
    Ok(())
}

/// Writes every metric for these namespaces; `top` = 0 keeps every group.
pub fn write(w: &mut dyn Write, items: &[NsMetrics], top: u32) -> Result<()> {
    let cut = |n: usize| if top == 0 { n } else { n.min(top as usize) };

    head(
        w,
        "tw_inspect_up",
        "1 when the sockets were read from the kernel, 0 when reading failed.",
    )?;
    for m in items {
        writeln!(w, "tw_inspect_up{} 1", labels(m.netns, &[]))?;
    }

    head(
        w,
        "tw_inspect_sockets",
        "TCP sockets matching the filters, by state and address family.",
    )?;
    for m in items {
        for (fi, fam) in ["ipv4", "ipv6"].iter().enumerate() {
            for st in TcpState::ALL {
                let n = m.agg.family_states[fi][st.index()];
                writeln!(
                    w,
                    "tw_inspect_sockets{} {n}",
                    labels(m.netns, &[("state", st.name()), ("family", fam)])
                )?;
            }
        }
    }

    head(
        w,
        "tw_inspect_time_wait",
        "TIME_WAIT sockets per peer address and port: the largest groups, the rest summed in peer=\"other\".",
    )?;
    for m in items {
        let groups = m.agg.sorted_groups();
        let keep = cut(groups.len());
        for (k, s) in &groups[..keep] {
            let peer = k.peer.map(|a| a.to_string()).unwrap_or_default();
            let port = k.peer_port.map(|p| p.to_string()).unwrap_or_default();
            writeln!(
                w,
                "tw_inspect_time_wait{} {}",
                labels(m.netns, &[("peer", &peer), ("peer_port", &port)]),
                s.count
            )?;
        }
        let rest: u64 = groups[keep..].iter().map(|(_, s)| s.count).sum();
        writeln!(
            w,
            "tw_inspect_time_wait{} {rest}",
            labels(m.netns, &[("peer", "other"), ("peer_port", "other")])
        )?;
    }

    head(
        w,
        "tw_inspect_port_pressure_ratio",
        "Share of the usable ephemeral ports held by outgoing sockets to one destination (1 = exhausted), busiest destinations.",
    )?;
    for m in items {
        let Some((p, ports)) = m.pressure else {
            continue;
        };
        if ports == 0 {
            continue;
        }
        let dests = p.sorted();
        for (d, n) in &dests[..cut(dests.len())] {
            let (local, peer, port) = (
                d.local.to_string(),
                d.peer.to_string(),
                d.peer_port.to_string(),
            );
            writeln!(
                w,
                "tw_inspect_port_pressure_ratio{} {}",
                labels(
                    m.netns,
                    &[("local", &local), ("peer", &peer), ("peer_port", &port)]
                ),
                *n as f64 / ports as f64
            )?;
        }
    }

    head(
        w,
        "tw_inspect_collect_duration_seconds",
        "Time spent reading the sockets from the kernel.",
    )?;
    for m in items {
        writeln!(
            w,
            "tw_inspect_collect_duration_seconds{} {}",
            labels(m.netns, &[]),
            m.collect_seconds
        )?;
    }
    Ok(())
}

/// What a failed run writes, so an alert on `tw_inspect_up == 0` fires instead
/// of the textfile silently going stale.
pub fn write_down(w: &mut dyn Write) -> Result<()> {
    head(
        w,
        "tw_inspect_up",
        "1 when the sockets were read from the kernel, 0 when reading failed.",
    )?;
    writeln!(w, "tw_inspect_up 0")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::GroupBy;
    use crate::socket::Sink;
    use crate::socket::{Family, SocketRecord};
    use crate::state::StateSet;

    fn tw(peer: &str, port: u16) -> SocketRecord {
        let fam = if peer.contains(':') {
            Family::V6
        } else {
            Family::V4
        };
        let mut r = SocketRecord::blank(fam, TcpState::TimeWait);
        r.peer = peer.parse().unwrap();
        r.peer_port = port;
        r.local = if fam == Family::V6 {
            "::1".parse().unwrap()
        } else {
            "127.0.0.1".parse().unwrap()
        };
        r.local_port = 40000;
        r
    }

    fn sample() -> (Aggregate, Pressure) {
        let mut a = Aggregate::new(
            GroupBy::PEER_PORT_PAIR,
            StateSet::from_states(&[TcpState::TimeWait]),
        );
        let mut p = Pressure::new((32768, 60999));
        for r in [
            tw("10.0.0.1", 80),
            tw("10.0.0.1", 80),
            tw("10.0.0.2", 443),
            tw("::1", 8080),
        ] {
            a.push(&r);
            p.push(&r);
        }
        (a, p)
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
        assert_eq!(escape("plain-name_1"), "plain-name_1");
        assert_eq!(
            labels(Some("q\"\\"), &[("peer", "::1")]),
            r#"{netns="q\"\\",peer="::1"}"#
        );
    }

    #[test]
    fn groups_and_other_add_up_and_zeros_are_present() {
        let (a, p) = sample();
        let mut out = Vec::new();
        write(
            &mut out,
            &[NsMetrics {
                netns: None,
                agg: &a,
                pressure: Some((&p, 28232)),
                collect_seconds: 0.5,
            }],
            1,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("tw_inspect_time_wait{peer=\"10.0.0.1\",peer_port=\"80\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tw_inspect_time_wait{peer=\"other\",peer_port=\"other\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("tw_inspect_sockets{state=\"time-wait\",family=\"ipv6\"} 1\n"));
        assert!(text.contains("tw_inspect_sockets{state=\"close-wait\",family=\"ipv4\"} 0\n"));
        let n_states = text
            .lines()
            .filter(|l| l.starts_with("tw_inspect_sockets{"))
            .count();
        assert_eq!(n_states, 2 * TcpState::ALL.len());
        assert!(text.contains(&format!(
            "tw_inspect_port_pressure_ratio{{local=\"127.0.0.1\",peer=\"10.0.0.1\",peer_port=\"80\"}} {}\n",
            2.0 / 28232.0
        )));
        assert!(text.contains("tw_inspect_up 1\n"));
        // Every family is one block: its TYPE line appears once.
        assert_eq!(text.matches("# TYPE tw_inspect_sockets gauge").count(), 1);
    }

    #[test]
    fn namespaces_label_every_series() {
        let (a, _) = sample();
        let items = [
            NsMetrics {
                netns: Some("blue"),
                agg: &a,
                pressure: None,
                collect_seconds: 0.1,
            },
            NsMetrics {
                netns: Some("red\"x"),
                agg: &a,
                pressure: None,
                collect_seconds: 0.1,
            },
        ];
        let mut out = Vec::new();
        write(&mut out, &items, 0).unwrap();
        let text = String::from_utf8(out).unwrap();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                l.contains("{netns=\"blue\"") || l.contains("{netns=\"red\\\"x\""),
                "{l}"
            );
        }
        assert_eq!(text.matches("# HELP tw_inspect_up ").count(), 1);
    }
}
