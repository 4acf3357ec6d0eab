//! `tw-inspect who`: which processes close connections first, and so make TIME_WAIT.
//!
//! Records `sock:inet_sock_set_state` in a private tracing instance for the
//! duration (or until SIGINT/SIGTERM), then dumps TIME_WAIT sockets over
//! sock_diag and matches them to the closes recorded. `list --by process`
//! runs the same plan with list's filters.

use std::cell::RefCell;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::diag::{self, Options};
use crate::exit::Exit;
use crate::host::identity::Resolver;
use crate::host::netns::{self, NetnsChoice, Scope};
use crate::output::Output;
use crate::plan::WhoPlan;
use crate::plan::who::Format;
use crate::render::who::{WhoFormat, WhoRender, Window};
use crate::render::{self, Style};
use crate::socket::SocketRecord;
use crate::trace::attribute::{Attribution, Procfs, WhoReport};
use crate::trace::session;

pub fn run(plan: &WhoPlan) -> Result<ExitCode> {
    // Names namespaces, containers and pods, each looked up once.
    let names = RefCell::new(Resolver::new());
    // A bad --netns is refused before anything is recorded.
    let scope = match &plan.netns {
        Some(n) => super::scope(&NetnsChoice::One(n.clone()), &mut names.borrow_mut())?,
        None => Scope::Current,
    };
    let (only, ns_label) = match &scope {
        Scope::One(ns) => (Some(ns.ns.ino), Some(ns.ns.label.clone())),
        _ => (None, None),
    };
    let mut out = Output::open(plan.output.path())?;
    let tty = out.is_terminal();
    let style = Style::new(plan.color.enabled(tty)).wrapped(render::wrap_width(tty));

    let mut attr = Attribution::new();
    attr.only_netns = only;
    // Listening ports of the namespace: closes on them are a server's.
    // Refused or missing (no sock_diag), every close is shown by destination.
    if let Ok(found) = scope.run(diag::listen::listeners) {
        attr.server_ports = found
            .results
            .into_iter()
            .flat_map(|(_, l)| l)
            .map(|l| l.port)
            .collect();
    }

    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    // With --interval, Prometheus and a file: rewrite it every interval with
    // counters since the start, so rate() over them is meaningful.
    let periodic = plan.format == Format::Prometheus
        && plan.interval.is_some()
        && plan.output.path().is_some();
    let window = if periodic {
        Window::Since {
            start_unix: started,
        }
    } else {
        Window::Once
    };
    let top = plan.top as usize;
    // Namespaces other than ours are named after their container or pod.
    let label_of = |ino: u64| netns::label_of(ino, &mut names.borrow_mut());
    let label: &dyn Fn(u64) -> Option<String> = &label_of;
    let write = |attr: &mut Attribution, elapsed: Duration, out: &mut Output| -> Result<()> {
        let tw = scope
            .run(|| {
                diag::collect(&plan.query, Options::default(), Vec::<SocketRecord>::new)
                    .context("reading TIME_WAIT sockets from the kernel")
            })?
            .results
            .into_iter()
            .flat_map(|(_, c)| c.sink)
            .collect::<Vec<_>>();
        attr.match_time_wait(&tw);
        let secs = elapsed.as_secs_f64();
        let mut report = WhoReport::build(attr, secs, top, plan.by, label);
        report.netns = ns_label.clone();
        name_containers(&mut report, &mut names.borrow_mut());
        let (format, all) = match plan.format {
            Format::Table => (WhoFormat::Table, None),
            Format::Json => (WhoFormat::Json, None),
            // Per command over every process, not only the top ones.
            Format::Prometheus => (WhoFormat::Prometheus, {
                let mut all = WhoReport::build(attr, secs, 0, plan.by, label);
                name_containers(&mut all, &mut names.borrow_mut());
                Some(all)
            }),
        };
        let all = all.as_ref().map_or(&[][..], |a| &a.processes[..]);
        let how = WhoRender {
            format,
            style,
            top,
            window,
        };
        crate::render::who::write(out, &report, all, how)
    };
    let tick = |attr: &mut Attribution, elapsed: Duration| -> Result<()> {
        if !periodic {
            return Ok(());
        }
        attr.settle(&mut Procfs);
        let mut o = Output::open(plan.output.path())?;
        write(attr, elapsed, &mut o)?;
        o.finish()
    };
    let session::Recording { mut attr, elapsed } =
        session::record(attr, plan.duration, plan.interval, tick)?;
    write(&mut attr, elapsed, &mut out)?;
    out.finish()?;
    Ok(Exit::Ok.into())
}

/// Each process's container and pod, from its cgroup and the runtimes' files
/// (read once per container).
fn name_containers(r: &mut WhoReport, names: &mut Resolver) {
    for p in &mut r.processes {
        if let Some(cg) = &p.cgroup {
            (p.container, p.pod) = names.owner(cg);
        }
    }
}
