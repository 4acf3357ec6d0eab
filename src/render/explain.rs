//! `explain` output: the state table, one state's long form, the sysctls.
//! All words come from `text`; this module only lays them out.

use std::io::Write;

use anyhow::Result;
use comfy_table::{Cell, ContentArrangement};
use serde::Serialize;

use super::Style;
use super::table::{new_table, write_table};
use crate::host::conntrack::{CtTable, NETFILTER_SYSCTL};
use crate::host::sysctl::{Sysctls, knob_path};
use crate::state::TcpState;
use crate::text::{self, KNOBS, STATES, StateText};

/// One state in JSON; `long` only for `explain STATE`.
#[derive(Serialize, Debug, Clone)]
pub struct StateJson {
    pub state: &'static str,
    pub kernel_name: &'static str,
    pub short: &'static str,
    pub who: &'static str,
    pub waits_for: &'static str,
    pub lasts: &'static str,
    pub many: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub long: Option<&'static str>,
}

impl StateJson {
    pub fn new(t: &StateText, long: bool) -> StateJson {
        StateJson {
            state: t.state.name(),
            kernel_name: t.state.kernel_name(),
            short: t.short,
            who: t.who,
            waits_for: t.waits_for,
            lasts: t.lasts,
            many: t.many,
            long: long.then_some(t.long),
        }
    }
}

#[derive(Serialize, Debug)]
pub struct StatesJson {
    pub states: Vec<StateJson>,
}

/// One knob in JSON: its value as /proc/sys prints it, or `null` when absent.
#[derive(Serialize, Debug, Clone)]
pub struct KnobJson {
    pub name: &'static str,
    pub path: String,
    pub present: bool,
    pub value: Option<String>,
    pub about: &'static str,
    pub here: String,
    /// `namespace` (each network namespace has its own) or `host` (one for all).
    pub scope: &'static str,
}

#[derive(Serialize, Debug)]
pub struct SysctlsJson {
    /// `host` (this process's namespace), `netns` (`--netns`) or `snapshot`.
    pub source: &'static str,
    /// With `--netns`: the namespace as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    pub sysctls: Vec<KnobJson>,
}

pub fn states_json() -> StatesJson {
    StatesJson {
        states: STATES.iter().map(|t| StateJson::new(t, false)).collect(),
    }
}

pub fn sysctls_json(s: &Sysctls, source: &'static str) -> SysctlsJson {
    SysctlsJson {
        source,
        netns: None,
        sysctls: KNOBS
            .iter()
            .map(|k| {
                let value = text::knob_value(s, k.name);
                KnobJson {
                    name: k.name,
                    path: knob_path(k.name),
                    present: value.is_some(),
                    value,
                    about: k.about,
                    here: text::knob_here(s, k.name),
                    scope: if text::host_wide(k.name) {
                        "host"
                    } else {
                        "namespace"
                    },
                }
            })
            .collect(),
    }
}

/// `explain conntrack` in JSON: the text, and this namespace's settings.
#[derive(Serialize, Debug)]
pub struct ConntrackJson {
    pub topic: &'static str,
    pub long: &'static str,
    pub settings: Vec<ConntrackKnobJson>,
}

/// One conntrack setting: its path, its value (`null` when absent) and what it means here.
#[derive(Serialize, Debug)]
pub struct ConntrackKnobJson {
    pub name: String,
    pub path: String,
    pub value: Option<u64>,
    pub here: String,
}

pub fn conntrack_json(t: &CtTable) -> ConntrackJson {
    let value = |name: &str| match name {
        "nf_conntrack_count" => t.count,
        "nf_conntrack_max" => t.max,
        "nf_conntrack_buckets" => t.buckets,
        "nf_conntrack_tcp_timeout_time_wait" => t.tcp_timeout_time_wait,
        "nf_conntrack_tcp_timeout_established" => t.tcp_timeout_established,
        _ => None,
    };
    ConntrackJson {
        topic: "conntrack",
        long: text::CONNTRACK_LONG,
        settings: text::conntrack_here(t)
            .into_iter()
            .map(|(name, here)| ConntrackKnobJson {
                path: format!("{NETFILTER_SYSCTL}/{name}"),
                value: value(&name),
                name,
                here,
            })
            .collect(),
    }
}

/// `explain conntrack`: the long text, then this namespace's settings.
pub fn conntrack(w: &mut dyn Write, c: &ConntrackJson, width: usize) -> Result<()> {
    let width = width.min(100);
    writeln!(w, "Conntrack TIME_WAIT: the other TIME_WAIT")?;
    writeln!(w)?;
    writeln!(w, "{}", text::paragraphs_wrapped(c.long, width))?;
    writeln!(w)?;
    writeln!(w, "This namespace:")?;
    for k in &c.settings {
        writeln!(
            w,
            "{}",
            text::wrap(
                &format!("net.netfilter.{}: {}", k.name, k.here),
                width,
                "  ",
                "    "
            )
        )?;
    }
    Ok(())
}

/// The terminal's width when stdout is one, else a width that reads well in a file.
pub fn width() -> usize {
    comfy_table::Table::new()
        .width()
        .map_or(120, usize::from)
        .clamp(60, 200)
}

/// Every state in one table.
pub fn states(w: &mut dyn Write, style: Style, width: usize) -> Result<()> {
    let mut t = new_table(
        style,
        &[
            "State",
            "Who gets there",
            "Waits for",
            "Lasts on Linux",
            "A large count means",
        ],
    );
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_width(width as u16);
    for s in &STATES {
        t.add_row(vec![
            Cell::new(s.state.name()),
            Cell::new(s.who),
            Cell::new(s.waits_for),
            Cell::new(s.lasts),
            Cell::new(s.many),
        ]);
    }
    write_table(w, &t)?;
    writeln!(w)?;
    writeln!(
        w,
        "tw-inspect explain STATE tells the whole story of one state; tw-inspect explain sysctls reads this host's settings."
    )?;
    Ok(())
}

/// The long form of one state.
pub fn state(w: &mut dyn Write, s: TcpState, width: usize) -> Result<()> {
    let t = text::state(s);
    let width = width.min(100);
    writeln!(w, "{} ({}): {}", s.kernel_name(), s.name(), t.short)?;
    writeln!(w)?;
    for (label, value) in [
        ("Who gets there:", t.who),
        ("Waits for:", t.waits_for),
        ("Lasts on Linux:", t.lasts),
        ("A large count:", t.many),
    ] {
        writeln!(
            w,
            "{}",
            text::wrap(value, width, &format!("  {label:<17}"), &" ".repeat(19))
        )?;
    }
    writeln!(w)?;
    writeln!(w, "{}", text::long_wrapped(s, width))?;
    Ok(())
}

/// Each knob with its value and what it means here.
pub fn sysctls(w: &mut dyn Write, s: &SysctlsJson, width: usize) -> Result<()> {
    let width = width.min(100);
    let in_ns;
    let here = match (s.source, &s.netns) {
        ("snapshot", _) => "In the snapshot",
        (_, Some(ns)) => {
            in_ns = format!("In {}", crate::escape::Visible(ns));
            in_ns.as_str()
        }
        _ => "Here",
    };
    for (i, k) in s.sysctls.iter().enumerate() {
        if i > 0 {
            writeln!(w)?;
        }
        let mark = if k.scope == "host" {
            " (host-wide)"
        } else {
            ""
        };
        match &k.value {
            Some(v) if v.is_empty() => writeln!(w, "net.ipv4.{} = (empty){mark}", k.name)?,
            Some(v) => writeln!(w, "net.ipv4.{} = {v}{mark}", k.name)?,
            None if k.scope == "host" => {
                writeln!(w, "net.ipv4.{}: host-wide, not readable here", k.name)?
            }
            None => writeln!(w, "net.ipv4.{}: absent", k.name)?,
        }
        writeln!(w, "{}", text::wrap(k.about, width, "    ", "    "))?;
        writeln!(
            w,
            "{}",
            text::wrap(&format!("{here}: {}", k.here), width, "    ", "    ")
        )?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "TIME_WAIT itself lasts 60 s whatever these say; tw-inspect explain time-wait tells why."
    )?;
    Ok(())
}
