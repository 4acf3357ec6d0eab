//! `list` output: one report, or one per network namespace and their totals,
//! in the chosen format.

use std::io::Write;

use anyhow::Result;

use super::{Style, conntrack, csv, json, prometheus, table};
use crate::escape::Visible;
use crate::report::{ListDocument, ListReport};

/// The formats `list` writes (its socket rows: `rows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
    Ndjson,
    Csv,
    Prometheus,
}

/// How to write a [`ListDocument`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListRender {
    pub format: ListFormat,
    pub style: Style,
    /// Add each state's meaning (table and CSV).
    pub explain: bool,
}

/// One report as a table: the socket summary, the conntrack section when
/// there is one, then the diagnoses (of both).
fn table_report(w: &mut dyn Write, r: &ListReport, style: Style, explain: bool) -> Result<()> {
    table::summary(w, r, style, explain)?;
    if let Some(c) = &r.conntrack {
        conntrack::section(w, c, style, explain)?;
    }
    table::diagnoses(w, r, style)
}

/// Writes `doc`. Several namespaces: JSON is the totals with a `namespaces`
/// array; NDJSON a summary line per namespace (`netns` and `identity` first),
/// then the totals' line (with `skipped`); the table is one summary per namespace under a heading that says
/// whose it is, then the totals (when there is more than one); CSV leads with
/// `netns`, `container`, `pod` and `pod_namespace` columns, the totals under
/// empty ones; Prometheus labels every series with `netns` and, where known,
/// `container`, `pod` and `pod_namespace`.
pub fn write(w: &mut dyn Write, doc: &ListDocument, how: ListRender) -> Result<()> {
    let ListRender {
        format,
        style,
        explain,
    } = how;
    match (doc, format) {
        (ListDocument::One(r), ListFormat::Table) => table_report(w, r, style, explain),
        (ListDocument::One(r), ListFormat::Json) => json::write(w, r),
        (ListDocument::One(r), ListFormat::Ndjson) => json::summary_line(w, r),
        (ListDocument::One(r), ListFormat::Csv) => csv::list(w, r),
        (ListDocument::One(r), ListFormat::Prometheus) => prometheus::list(w, &[(None, r)]),
        (ListDocument::Namespaces(d), ListFormat::Table) => {
            for (i, n) in d.namespaces.iter().enumerate() {
                if i > 0 {
                    writeln!(w)?;
                }
                writeln!(
                    w,
                    "Network namespace {} ({})",
                    Visible(&n.netns),
                    Visible(&n.identity.describe())
                )?;
                table_report(w, &n.report, style, explain)?;
            }
            // One namespace: its report is the total.
            if d.namespaces.len() > 1 {
                writeln!(w)?;
                writeln!(w, "All {} network namespaces", d.namespaces.len())?;
                table::list(w, &d.total, style, explain)?;
            }
            table::skipped(w, &d.skipped)
        }
        (ListDocument::Namespaces(d), ListFormat::Json) => json::write(w, d),
        (ListDocument::Namespaces(d), ListFormat::Ndjson) => {
            for n in &d.namespaces {
                json::summary_line(w, n)?;
            }
            json::summary_line(w, &json::Totals::of(d))
        }
        (ListDocument::Namespaces(d), ListFormat::Csv) => csv::namespaces(w, d),
        (ListDocument::Namespaces(d), ListFormat::Prometheus) => {
            let items: Vec<_> = d
                .namespaces
                .iter()
                .map(|n| (Some(&n.identity), &n.report))
                .collect();
            prometheus::list(w, &items)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::GroupBy;
    use crate::host::identity::fixtures as identity;
    use crate::report::{Counted, ListReport, NamespaceReport, NetnsListReport, fixtures};
    use crate::socket::{Family, SocketRecord};
    use crate::state::{StateSet, TcpState};

    fn report(n: usize, counted: StateSet) -> ListReport {
        let tw = SocketRecord::blank(Family::V4, TcpState::TimeWait);
        fixtures::report(
            &vec![tw; n],
            GroupBy::PEER_PORT_PAIR,
            StateSet::from_states(&[TcpState::TimeWait]),
            Counted::asked(counted),
        )
    }

    fn doc(names: &[&str], counted: StateSet) -> ListDocument {
        ListDocument::Namespaces(NetnsListReport {
            total: report(names.len() * 2, counted),
            namespaces: names
                .iter()
                .map(|n| NamespaceReport::new(identity::named(n), report(2, counted)))
                .collect(),
            skipped: Vec::new(),
        })
    }

    #[test]
    fn hostile_namespace_names_are_shown_escaped_in_every_format() {
        use crate::host::netns::SkipReason;
        let evil = "pid:7 (\x1b]0;pwned\x07\nNetwork namespace forged)";
        let mut d = doc(&["blue", evil], StateSet::all());
        if let ListDocument::Namespaces(n) = &mut d {
            n.skipped.push(crate::report::Skipped {
                netns: "gone\r\u{9b}2J".into(),
                path: "/run/netns/gone\r\u{9b}2J".into(),
                reason: SkipReason::Gone,
            });
        }
        // Prometheus escapes the shown text's backslashes once more, for its
        // format: a scraper reads back the same text the table shows.
        for (format, shown) in [
            (ListFormat::Table, "\\x1b]0;pwned\\x07\\n"),
            (ListFormat::Csv, "\\x1b]0;pwned\\x07\\n"),
            (ListFormat::Prometheus, "\\\\x1b]0;pwned\\\\x07\\\\n"),
        ] {
            let t = render(&d, format);
            assert!(
                !t.chars().any(|c| c.is_control() && c != '\n'),
                "{format:?}: {t:?}"
            );
            assert!(t.contains(shown), "{format:?}: {t}");
            assert!(
                !t.lines().any(|l| l.starts_with("Network namespace forged")),
                "{format:?}: {t}"
            );
        }
        let t = render(&d, ListFormat::Table);
        assert!(t.contains("Skipped 1 network namespace(s):"), "{t}");
        assert!(t.contains("gone\\r\\x9b2J"), "{t}");
        // JSON carries the names as they are, escaped by JSON itself.
        let j = render(&d, ListFormat::Json);
        assert!(!j.contains('\x1b') && j.contains("\\u001b"), "{j}");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["namespaces"][1]["netns"], evil);
        assert_eq!(v["skipped"][0]["reason"], "gone");
        assert_eq!(v["skipped"][0]["netns"], "gone\r\u{9b}2J");
    }

    fn render(doc: &ListDocument, format: ListFormat) -> String {
        let mut out = Vec::new();
        let how = ListRender {
            format,
            style: Style::new(false),
            explain: false,
        };
        write(&mut out, doc, how).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn namespaces_as_a_table_then_the_totals() {
        let mut d = doc(&["blue", "red"], StateSet::all());
        if let ListDocument::Namespaces(n) = &mut d {
            n.namespaces[1] = NamespaceReport::new(
                identity::pod("shop", "web-7f9c", &["app", "side\x1bcar"]),
                report(2, StateSet::all()),
            );
        }
        let t = render(&d, ListFormat::Table);
        let heads: Vec<&str> = t
            .lines()
            .filter(|l| l.starts_with("Network namespace") || l.starts_with("All "))
            .collect();
        assert_eq!(
            heads,
            [
                "Network namespace blue (/run/netns/blue; inode 4026532004)",
                "Network namespace shop/web-7f9c (pod web-7f9c in namespace shop, \
uid 1234abcd-0000-4000-8000-0123456789ab; containers app, side\\x1bcar; inode 4026532200)",
                "All 2 network namespaces"
            ]
        );
        assert!(t.contains("TCP sockets: 4 "), "{t}");
        // One namespace: no separate totals.
        let t = render(&doc(&["blue"], StateSet::all()), ListFormat::Table);
        assert!(!t.contains("All "), "{t}");
    }

    #[test]
    fn namespaces_as_json_nest_under_the_totals() {
        let counted = StateSet::from_states(&[TcpState::TimeWait]);
        let v: serde_json::Value =
            serde_json::from_str(&render(&doc(&["blue", "red"], counted), ListFormat::Json))
                .unwrap();
        assert_eq!(v["total"], 4);
        assert_eq!(v["namespaces"][1]["netns"], "red");
        assert_eq!(v["namespaces"][1]["states"]["time-wait"], 2);
        // Not counted: null, at the top and per namespace; the counted states listed.
        assert!(v["states"]["close-wait"].is_null());
        assert!(v["namespaces"][0]["states"]["close-wait"].is_null());
        assert_eq!(v["counted_states"], serde_json::json!(["time-wait"]));
        assert_eq!(v["namespaces"][0]["counted_basis"], "asked");
    }

    #[test]
    fn one_report_in_each_format() {
        let one = ListDocument::One(report(3, StateSet::all()));
        let v: serde_json::Value = serde_json::from_str(&render(&one, ListFormat::Json)).unwrap();
        assert_eq!(v["states"]["time-wait"], 3);
        assert!(v.get("namespaces").is_none());
        assert!(render(&one, ListFormat::Csv).starts_with("state,peer,"));
        let line: serde_json::Value =
            serde_json::from_str(&render(&one, ListFormat::Ndjson)).unwrap();
        assert_eq!(
            (&line["type"], &line["total"]),
            (&"summary".into(), &3.into())
        );
        let lines = render(&doc(&["blue", "red"], StateSet::all()), ListFormat::Ndjson);
        let lines: Vec<serde_json::Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let netns: Vec<&serde_json::Value> = lines.iter().map(|l| &l["netns"]).collect();
        assert_eq!(
            netns,
            [&"blue".into(), &"red".into(), &serde_json::Value::Null]
        );
        assert_eq!(lines[0]["identity"]["name"], "blue");
        assert!(
            lines[2]["skipped"].is_array(),
            "the totals' line names what was skipped"
        );
        let p = render(&one, ListFormat::Prometheus);
        assert!(p.contains("tw_inspect_sockets{state=\"time-wait\",family=\"ipv4\"} 3\n"));
        assert!(!p.contains("netns="));
        let p = render(&doc(&["blue"], StateSet::all()), ListFormat::Prometheus);
        assert!(p.contains("tw_inspect_up{netns=\"blue\"} 1\n"), "{p}");
    }
}
