//! CSV (RFC 4180, quoting by the `csv` crate): a header line, then one record
//! per group or per socket. Names from outside (namespaces, containers,
//! pods, processes) are shown with control characters escaped, as in the
//! table: a CSV file is read line by line by people and tools alike. Each
//! shape is one serde row struct; with several namespaces a `netns` field goes
//! first, an empty one marking the totals, then who the namespace belongs to:
//! `container`, `pod`, `pod_namespace` (empty when unknown).

use std::borrow::Cow;
use std::io::Write;
use std::net::IpAddr;

use anyhow::Result;
use serde::Serialize;

use crate::aggregate::Role;
use crate::conntrack::CtState;
use crate::escape::visible;
use crate::report::{
    ConntrackReport, GroupRow, ListReport, NetnsListReport, NsIdentity, SocketRow,
};
use crate::socket::Timer;
use crate::state::TcpState;

/// The columns of [`GroupCsv`], written even when there is no row.
const GROUP_HEADER: &[&str] = &[
    "state",
    "peer",
    "peer_port",
    "local",
    "local_port",
    "count",
    "soonest_ms",
    "latest_ms",
    "role",
    "headroom",
    "pid",
    "process",
];

/// The columns of [`SocketCsv`] (without `meaning`, which `--explain` adds).
pub(super) const SOCKET_HEADER: &[&str] = &[
    "state",
    "local",
    "local_port",
    "peer",
    "peer_port",
    "timer",
    "expires_ms",
    "retransmits",
    "uid",
    "inode",
    "cookie",
    "orphaned",
    "pid",
    "process",
];

/// The columns of [`ConntrackCsv`] (`list --conntrack --format csv`).
const CONNTRACK_HEADER: &[&str] = &[
    "section",
    "state",
    "address",
    "port",
    "count",
    "time_wait",
    "sockets",
    "max",
];

/// One row of the conntrack table's CSV. `section` says which fields apply:
/// `table` (count = nf_conntrack_count, max = nf_conntrack_max, time_wait =
/// TCP TIME_WAIT entries), `state` (count = TCP entries in that conntrack
/// state, sockets = the matching sockets), `destination` and `source` (count =
/// TCP entries, time_wait = those in TIME_WAIT). Empty fields are unknown or
/// do not apply.
#[derive(Serialize)]
struct ConntrackCsv {
    section: &'static str,
    state: Option<CtState>,
    address: Option<IpAddr>,
    port: Option<u16>,
    count: Option<u64>,
    time_wait: Option<u64>,
    sockets: Option<u64>,
    max: Option<u64>,
}

impl ConntrackCsv {
    fn rows(c: &ConntrackReport) -> Vec<ConntrackCsv> {
        let blank = |section| ConntrackCsv {
            section,
            state: None,
            address: None,
            port: None,
            count: None,
            time_wait: None,
            sockets: None,
            max: None,
        };
        let e = c.entries.as_ref();
        let mut out = vec![ConntrackCsv {
            count: c.count,
            max: c.max,
            time_wait: e.map(|e| e.state(CtState::TimeWait).conntrack),
            ..blank("table")
        }];
        let Some(e) = e else { return out };
        for st in &e.states {
            out.push(ConntrackCsv {
                state: Some(st.state),
                count: Some(st.conntrack),
                sockets: st.sockets,
                ..blank("state")
            });
        }
        for (section, groups) in [("destination", &e.destinations), ("source", &e.sources)] {
            for g in groups {
                out.push(ConntrackCsv {
                    address: Some(g.address),
                    port: g.port,
                    count: Some(g.tcp),
                    time_wait: Some(g.time_wait),
                    ..blank(section)
                });
            }
        }
        out
    }
}

/// One group; a grouping key that does not apply is an empty field. The
/// role view adds `role`, the headroom of outgoing groups and the listening
/// process of incoming ones (columns after the original ones, so positions
/// stay).
#[derive(Serialize)]
struct GroupCsv<'a> {
    state: Option<TcpState>,
    peer: Option<IpAddr>,
    peer_port: Option<u16>,
    local: Option<IpAddr>,
    local_port: Option<u16>,
    count: u64,
    soonest_ms: Option<u32>,
    latest_ms: Option<u32>,
    role: Option<Role>,
    headroom: Option<u64>,
    pid: Option<u32>,
    process: Option<Cow<'a, str>>,
}

impl<'a> From<&'a GroupRow> for GroupCsv<'a> {
    fn from(g: &'a GroupRow) -> GroupCsv<'a> {
        GroupCsv {
            state: g.state,
            peer: g.peer,
            peer_port: g.peer_port,
            local: g.local,
            local_port: g.local_port,
            count: g.count,
            soonest_ms: g.soonest_ms,
            latest_ms: g.latest_ms,
            role: g.role,
            headroom: g.headroom,
            pid: g.process.as_ref().map(|p| p.pid),
            process: g.process.as_ref().map(|p| visible(&p.comm)),
        }
    }
}

/// One socket; `pid` and `process` are empty when no owner is known. The
/// contract of a socket record: `rows` writes these fields as each socket
/// arrives, and is tested to write exactly what the csv crate writes for this.
#[derive(Serialize)]
#[cfg_attr(not(test), allow(dead_code))]
pub(super) struct SocketCsv<'a> {
    state: TcpState,
    local: IpAddr,
    local_port: u16,
    peer: IpAddr,
    peer_port: u16,
    timer: Timer,
    expires_ms: u32,
    retransmits: u8,
    uid: u32,
    inode: u32,
    cookie: u64,
    orphaned: bool,
    pid: Option<u32>,
    process: Option<Cow<'a, str>>,
    /// With `--explain` only: every row has it or none does.
    #[serde(skip_serializing_if = "Option::is_none")]
    meaning: Option<&'static str>,
}

#[cfg_attr(not(test), allow(dead_code))]
impl<'a> SocketCsv<'a> {
    pub(super) fn new(s: &SocketRow<'a>, explain: bool) -> SocketCsv<'a> {
        SocketCsv {
            state: s.state,
            local: s.local,
            local_port: s.local_port,
            peer: s.peer,
            peer_port: s.peer_port,
            timer: s.timer,
            expires_ms: s.expires_ms,
            retransmits: s.retransmits,
            uid: s.uid,
            inode: s.inode,
            cookie: s.cookie,
            orphaned: s.orphaned,
            pid: s.process.map(|p| p.pid),
            process: s.process.map(|p| visible(&p.comm)),
            meaning: explain.then(|| crate::text::short(s.state)),
        }
    }
}

/// The leading fields of multi-namespace output (serialised as a tuple with
/// the row): the namespace's label and who it belongs to.
#[derive(Serialize, Default)]
struct Netns<'a> {
    netns: Cow<'a, str>,
    container: Option<String>,
    pod: Option<String>,
    pod_namespace: Option<String>,
}

/// The columns of [`Netns`].
pub(super) const NETNS_HEADER: &[&str] = &["netns", "container", "pod", "pod_namespace"];

impl Netns<'_> {
    fn of(id: &NsIdentity) -> Netns<'_> {
        let mut n = Netns {
            netns: visible(&id.name),
            ..Netns::default()
        };
        for (k, v) in id.prometheus_labels() {
            let v = Some(visible(&v).into_owned());
            match k {
                "container" => n.container = v,
                "pod" => n.pod = v,
                _ => n.pod_namespace = v,
            }
        }
        n
    }
}

type Csv<'w> = csv::Writer<&'w mut dyn Write>;

fn writer(w: &mut dyn Write) -> Csv<'_> {
    // The header is written by hand: serde would write it only with the first row.
    csv::WriterBuilder::new().has_headers(false).from_writer(w)
}

fn header(out: &mut Csv, netns: bool) -> Result<()> {
    let mut cols: Vec<&str> = Vec::new();
    if netns {
        cols.extend(NETNS_HEADER);
    }
    cols.extend(GROUP_HEADER);
    out.write_record(&cols).map_err(plain)
}

fn row<R: Serialize>(out: &mut Csv, netns: Option<&Netns>, row: R) -> Result<()> {
    match netns {
        Some(netns) => out.serialize((netns, row)),
        None => out.serialize(row),
    }
    .map_err(plain)
}

/// The writer's own error as a plain `io::Error`, so that a closed pipe is
/// recognised as one (`csv::Error` does not expose it as its source).
fn plain(e: csv::Error) -> anyhow::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io.into(),
        other => anyhow::anyhow!("writing CSV: {other:?}"),
    }
}

/// The groups of one report (socket rows are written by `rows` as they arrive).
fn rows(out: &mut Csv, r: &ListReport, netns: Option<&Netns>) -> Result<()> {
    for g in &r.groups {
        row(out, netns, GroupCsv::from(g))?;
    }
    Ok(())
}

/// With `--conntrack`, the rows are the conntrack table's (one CSV has one header).
fn conntrack(w: &mut dyn Write, items: &[(Option<Netns>, &ConntrackReport)]) -> Result<()> {
    let mut out = writer(w);
    let netns = items.iter().any(|(n, _)| n.is_some());
    let mut cols: Vec<&str> = Vec::new();
    if netns {
        cols.extend(NETNS_HEADER);
    }
    cols.extend(CONNTRACK_HEADER);
    out.write_record(&cols).map_err(plain)?;
    for (n, c) in items {
        for r in ConntrackCsv::rows(c) {
            row(&mut out, n.as_ref(), r)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The groups, or with `--conntrack` the conntrack table.
pub fn list(w: &mut dyn Write, r: &ListReport) -> Result<()> {
    if let Some(c) = &r.conntrack {
        return conntrack(w, &[(None, c)]);
    }
    let mut out = writer(w);
    header(&mut out, false)?;
    rows(&mut out, r, None)?;
    out.flush()?;
    Ok(())
}

/// Several namespaces as one document: each namespace's groups, then the
/// totals' groups under an empty `netns` (or each namespace's conntrack table).
pub fn namespaces(w: &mut dyn Write, doc: &NetnsListReport) -> Result<()> {
    if doc.namespaces.iter().any(|n| n.report.conntrack.is_some()) {
        let items: Vec<_> = doc
            .namespaces
            .iter()
            .filter_map(|n| Some((Some(Netns::of(&n.identity)), n.report.conntrack.as_ref()?)))
            .collect();
        return conntrack(w, &items);
    }
    let mut out = writer(w);
    header(&mut out, true)?;
    for n in &doc.namespaces {
        rows(&mut out, &n.report, Some(&Netns::of(&n.identity)))?;
    }
    rows(&mut out, &doc.total, Some(&Netns::default()))?;
    out.flush()?;
    Ok(())
}

/// `s` as one CSV field, quoted by the csv crate where RFC 4180 needs it.
pub(super) fn field(s: &str) -> Vec<u8> {
    // Two fields, so that an empty one is written empty, not as `""`.
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    out.write_record([s, ""]).expect("writing to memory");
    let mut b = out.into_inner().expect("writing to memory");
    b.truncate(b.len() - ",\n".len());
    b
}

/// The leading fields of a namespace's rows (see [`NETNS_HEADER`]), each
/// with its comma, as the csv crate writes them.
pub(super) fn netns_fields(id: &NsIdentity) -> Vec<u8> {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    out.serialize((Netns::of(id), ""))
        .expect("writing to memory");
    let mut b = out.into_inner().expect("writing to memory");
    // The record ends with the empty field and its line end.
    b.truncate(b.len() - "\n".len());
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::GroupBy;
    use crate::host::identity::fixtures as identity;
    use crate::report::{Counted, NamespaceReport, ProcessRef, fixtures, socket_row};
    use crate::socket::{Family, SocketRecord};
    use crate::state::StateSet;

    fn records() -> Vec<SocketRecord> {
        let mut a = SocketRecord::blank(Family::V4, TcpState::TimeWait);
        a.peer = "10.0.0.1".parse().unwrap();
        a.peer_port = 80;
        a.timer = Timer::TimeWait;
        a.expires_ms = 30_000;
        let mut b = SocketRecord::blank(Family::V6, TcpState::CloseWait);
        b.local = "::1".parse().unwrap();
        b.local_port = 8080;
        b.peer = "::1".parse().unwrap();
        b.peer_port = 50000;
        b.inode = 77;
        vec![a, b]
    }

    fn parse(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let head = rd.headers().unwrap().iter().map(String::from).collect();
        let rows = rd
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        (head, rows)
    }

    fn render(r: &ListReport) -> String {
        let mut out = Vec::new();
        list(&mut out, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn headers_are_the_row_structs_fields() {
        // The hand-written headers name the fields serde writes, in order.
        let r = fixtures::report(
            &records(),
            GroupBy::PEER_PORT_PAIR,
            StateSet::all(),
            Counted::asked(StateSet::all()),
        );
        assert_eq!(
            serde_header(GroupCsv::from(&r.groups[0])),
            GROUP_HEADER.join(",")
        );
        let p = ProcessRef {
            pid: 1,
            comm: "x".into(),
        };
        let row = socket_row(&records()[1], Some(&p));
        assert_eq!(
            serde_header(SocketCsv::new(&row, false)),
            SOCKET_HEADER.join(",")
        );
        let explained = serde_header(SocketCsv::new(&row, true));
        assert_eq!(explained, format!("{},meaning", SOCKET_HEADER.join(",")));
        assert_eq!(serde_header(Netns::default()), NETNS_HEADER.join(","));
    }

    /// The header line serde writes for `row`.
    fn serde_header<R: Serialize>(row: R) -> String {
        let mut out = csv::Writer::from_writer(Vec::new());
        out.serialize(row).unwrap();
        let text = String::from_utf8(out.into_inner().unwrap()).unwrap();
        text.lines().next().unwrap().to_string()
    }

    #[test]
    fn groups_as_documented() {
        let r = fixtures::report(
            &records(),
            GroupBy::PEER_PORT_PAIR,
            StateSet::from_states(&[TcpState::TimeWait]),
            Counted::asked(StateSet::all()),
        );
        let text = render(&r);
        assert_eq!(
            text,
            "state,peer,peer_port,local,local_port,count,soonest_ms,latest_ms,role,headroom,pid,process\n,10.0.0.1,80,,,1,30000,30000,,,,\n"
        );
    }

    #[test]
    fn fields_are_quoted_by_rfc_4180() {
        for s in ["plain", "", "a,\"b\"", "two\nlines", " lead"] {
            let mut line = field(s);
            line.extend_from_slice(b",x\n");
            let mut rd = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(&line[..]);
            let rec = rd.records().next().unwrap().unwrap();
            assert_eq!((&rec[0], &rec[1]), (s, "x"));
        }
        assert_eq!(field("plain"), b"plain");
        assert_eq!(field("a,b"), b"\"a,b\"");
        let mut line = netns_fields(&identity::pod("shop", "web-7f9c", &["app"]));
        line.extend_from_slice(b"x\n");
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "shop/web-7f9c,app,web-7f9c,shop,x\n"
        );
    }

    #[test]
    fn no_rows_still_has_a_header() {
        let r = fixtures::report(
            &[],
            GroupBy::PEER_PORT_PAIR,
            StateSet::all(),
            Counted::asked(StateSet::all()),
        );
        assert_eq!(render(&r), format!("{}\n", GROUP_HEADER.join(",")));
    }

    #[test]
    fn uncounted_states_have_no_rows() {
        // Grouped by state over every state, but only TIME_WAIT was counted:
        // CLOSE_WAIT has no row, not a row of 0.
        let r = fixtures::report(
            &records(),
            GroupBy {
                state: true,
                ..GroupBy::default()
            },
            StateSet::all(),
            Counted::asked(StateSet::from_states(&[TcpState::TimeWait])),
        );
        let text = render(&r);
        assert!(!text.contains("close-wait"), "{text}");
        let (_, rows) = parse(&text);
        assert_eq!(
            rows,
            [[
                "time-wait",
                "",
                "",
                "",
                "",
                "1",
                "30000",
                "30000",
                "",
                "",
                "",
                ""
            ]]
        );
    }

    #[test]
    fn namespaces_lead_with_netns_and_end_with_totals() {
        let r = || {
            fixtures::report(
                &records(),
                GroupBy::PEER_PORT_PAIR,
                StateSet::from_states(&[TcpState::TimeWait]),
                Counted::asked(StateSet::all()),
            )
        };
        let doc = NetnsListReport {
            total: r(),
            namespaces: vec![
                NamespaceReport::new(identity::named("blue"), r()),
                NamespaceReport::new(identity::container("web,1"), r()),
                NamespaceReport::new(identity::pod("shop", "web-7f9c", &["app"]), r()),
                NamespaceReport::new(identity::named("evil\x1b[2J\nx"), r()),
            ],
            skipped: Vec::new(),
        };
        let mut out = Vec::new();
        namespaces(&mut out, &doc).unwrap();
        let (head, rows) = parse(&String::from_utf8(out).unwrap());
        assert_eq!(head[..4], *NETNS_HEADER);
        assert_eq!(head[4..], *GROUP_HEADER);
        let who: Vec<[&str; 4]> = rows
            .iter()
            .map(|r| [r[0].as_str(), r[1].as_str(), r[2].as_str(), r[3].as_str()])
            .collect();
        assert_eq!(
            who,
            [
                ["blue", "", "", ""],
                ["web,1", "web,1", "", ""],
                ["shop/web-7f9c", "app", "web-7f9c", "shop"],
                // A control character is shown, never written: one record per line.
                ["evil\\x1b[2J\\nx", "", "", ""],
                ["", "", "", ""],
            ]
        );
    }
}
