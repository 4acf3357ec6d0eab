//! `tw-inspect list`.

use anyhow::{Context, Result};

use std::collections::HashSet;

use crate::aggregate::{Aggregate, Pressure};
use crate::cli::{ColorChoice, Format, ListArgs};
use crate::config;
use crate::diag::{self, Options, Sink};
use crate::diagnose::{self, Inputs, Teardown};
use crate::filter::Query;
use crate::procs;
use crate::exit::usage;
use crate::output::Output;
use crate::render::{self, Style};
use crate::report::ListReport;
use crate::socket::SocketRecord;
use crate::state::{StateSet, TcpState};
use crate::sysctl::Sysctls;

pub fn run(args: &ListArgs, color: ColorChoice) -> Result<()> {
    let query = config::query(&args.filter)?;
    let (by, group_states) = config::grouping(args.by, &args.filter, &query);
    if args.processes && !args.sockets {
        return usage("--processes shows owners per socket: add --sockets");
    }
    if args.format == Format::Prometheus && args.sockets {
        return usage("--format prometheus reports counts, not sockets: drop --sockets");
    }
    let mut out = Output::open(args.output.as_deref())?;
    let style = Style::resolve(color, out.is_terminal());

    let opts = Options::default();
    let sysctls = Sysctls::read_host();
    // Without a readable range the Pressure sink counts nothing: (1, 0) is empty.
    let range = sysctls.ip_local_port_range.unwrap_or((1, 0));
    let extra = || (Pressure::new(range), Teardown::default());
    let (mut report, agg, (pressure, mut teardown)) = if args.sockets {
        let c = diag::collect(&query, opts, || ((Aggregate::new(by, group_states), Vec::<SocketRecord>::new()), extra()))
            .context("reading sockets from the kernel")?;
        let ((agg, socks), more) = c.sink;
        (ListReport::new(&agg, args.top, Some(&socks), c.elapsed.as_secs_f64() * 1e3), agg, more)
    } else {
        let c = diag::collect(&query, opts, || (Aggregate::new(by, group_states), extra()))
            .context("reading sockets from the kernel")?;
        let (agg, more) = c.sink;
        (ListReport::new(&agg, args.top, None, c.elapsed.as_secs_f64() * 1e3), agg, more)
    };
    complete_listeners(&query, &agg, &mut teardown)?;
    attach_processes(&mut report, &teardown, args.processes, &agg, &pressure, &sysctls);
    match args.format {
        Format::Table => render::table::list(&mut out, &report, style, args.explain)?,
        Format::Json => render::json::write(&mut out, &report)?,
        Format::Csv => render::csv::list(&mut out, &report, args.explain)?,
        Format::Prometheus => return usage("--format prometheus is not available yet"),
    }
    out.finish()
}

/// server-time-wait needs every listening port: when the query left listeners
/// out (by state or by an address/port condition), ask for them alone.
fn complete_listeners(query: &Query, agg: &Aggregate, teardown: &mut Teardown) -> Result<()> {
    if agg.count(TcpState::TimeWait) == 0 || (query.states.contains(TcpState::Listen) && query.conds.is_empty()) {
        return Ok(());
    }
    let listeners = Query {
        ipv4: query.ipv4,
        ipv6: query.ipv6,
        states: StateSet::from_states(&[TcpState::Listen]),
        conds: Vec::new(),
    };
    let c = diag::collect(&listeners, Options::default(), Teardown::default)
        .context("reading listening sockets from the kernel")?;
    teardown.absorb(c.sink);
    Ok(())
}

/// Finds owners in /proc (only when CLOSE_WAIT sockets or `-p` need them),
/// fills the socket rows for `-p` and computes the diagnoses.
fn attach_processes(
    report: &mut ListReport,
    teardown: &Teardown,
    processes: bool,
    agg: &Aggregate,
    pressure: &Pressure,
    sysctls: &Sysctls,
) {
    let mut wanted: HashSet<u32> = teardown.close_wait_inodes.iter().copied().filter(|i| *i != 0).collect();
    if processes {
        if let Some(rows) = &report.sockets {
            wanted.extend(rows.iter().map(|r| r.inode).filter(|i| *i != 0));
        }
    }
    let owners = procs::owners(&wanted);
    if processes {
        report.processes = true;
        for row in report.sockets.iter_mut().flatten() {
            row.process = owners.get(&row.inode).cloned();
        }
    }
    let close_wait = teardown.close_wait_owners(&owners);
    let server_time_wait = teardown.server_time_wait();
    report.diagnoses = diagnose::diagnose(&Inputs {
        agg,
        pressure: Some(pressure),
        sysctls,
        close_wait: &close_wait,
        server_time_wait: &server_time_wait,
    });
}
