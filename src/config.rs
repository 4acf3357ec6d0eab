//! Turns parsed arguments into checked values before any work starts.
//! Every error here names the bad value and what would have been valid.

use std::time::Duration;

use crate::aggregate::GroupBy;
use crate::cli::{FilterArgs, GroupKeyArg};
use crate::exit::UsageError;
use crate::filter::{Cond, PortRange, Prefix, Query, Side};
use crate::state::{StateSet, TcpState};

/// Most port and address filters one query may carry.
pub const MAX_CONDITIONS: usize = 64;

/// Builds the kernel query from the filter flags.
pub fn query(f: &FilterArgs) -> Result<Query, UsageError> {
    let states = match &f.state {
        None => StateSet::unfiltered(),
        Some(s) => StateSet::parse_list(s).map_err(|e| UsageError(format!("--state: {e}")))?,
    };
    let mut conds = Vec::new();
    for (flag, side, vals) in [
        ("--port", Side::Either, &f.port),
        ("--local-port", Side::Local, &f.local_port),
        ("--peer-port", Side::Peer, &f.peer_port),
    ] {
        for v in vals {
            let r = PortRange::parse(v).map_err(|e| UsageError(format!("{flag}: {e}")))?;
            conds.push(Cond::Port(side, r));
        }
    }
    for (flag, side, vals) in [
        ("--peer", Side::Peer, &f.peer),
        ("--local", Side::Local, &f.local),
    ] {
        for v in vals {
            let p = Prefix::parse(v).map_err(|e| UsageError(format!("{flag}: {e}")))?;
            if f.ipv4 && p.addr.is_ipv6() {
                return Err(UsageError(format!(
                    "{flag} '{v}' is an IPv6 address but -4 asks for IPv4 only"
                )));
            }
            conds.push(Cond::Addr(side, p));
        }
    }
    // The kernel's filter program is addressed with 16-bit offsets; 64 conditions
    // of the largest kind (an IPv6 prefix on either side, about 70 bytes) fit well.
    if conds.len() > MAX_CONDITIONS {
        return Err(UsageError(format!(
            "{} port and address filters given; at most {MAX_CONDITIONS} are supported",
            conds.len()
        )));
    }
    Ok(Query {
        ipv4: !f.ipv6,
        ipv6: !f.ipv4,
        states,
        conds,
    })
}

/// The grouping for `list`, and which states it covers: TIME_WAIT by default,
/// the selected states when `--state` is given, every selected state for `--by state`.
pub fn grouping(by: Option<GroupKeyArg>, f: &FilterArgs, q: &Query) -> (GroupBy, StateSet) {
    let g = match by {
        None | Some(GroupKeyArg::PeerAndPort) => GroupBy::PEER_PORT_PAIR,
        Some(GroupKeyArg::State) => GroupBy {
            state: true,
            ..GroupBy::default()
        },
        Some(GroupKeyArg::Peer) => GroupBy {
            peer: true,
            ..GroupBy::default()
        },
        Some(GroupKeyArg::PeerPort) => GroupBy {
            peer_port: true,
            ..GroupBy::default()
        },
        Some(GroupKeyArg::Local) => GroupBy {
            local: true,
            ..GroupBy::default()
        },
        Some(GroupKeyArg::LocalPort) => GroupBy {
            local_port: true,
            ..GroupBy::default()
        },
        Some(GroupKeyArg::LocalAndPort) => GroupBy {
            local: true,
            local_port: true,
            ..GroupBy::default()
        },
        // Attribution by process is handled by the caller; group by peer+port underneath.
        Some(GroupKeyArg::Process) => GroupBy::PEER_PORT_PAIR,
    };
    let states = if f.state.is_some() || g.state {
        q.states
    } else {
        StateSet::from_states(&[TcpState::TimeWait])
    };
    (g, states)
}

/// Parses a duration: `1.5` (seconds), `200ms`, `10s`, `2m`, `1h`; `0` allowed.
/// `what` names the flag in the error.
pub fn duration(what: &str, s: &str) -> Result<Duration, UsageError> {
    let err = || {
        UsageError(format!(
            "{what}: invalid duration '{s}': expected a number of seconds or a number with ms, s, m or h (e.g. 500ms, 10s, 2m)"
        ))
    };
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| err())?;
    if !v.is_finite() || v < 0.0 {
        return Err(err());
    }
    let secs = v * mult;
    if secs > 366.0 * 86400.0 {
        return Err(UsageError(format!(
            "{what}: duration '{s}' is absurdly long (more than a year)"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("--x", "1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(
            duration("--x", "200ms").unwrap(),
            Duration::from_millis(200)
        );
        assert_eq!(duration("--x", "2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("--x", "0").unwrap(), Duration::ZERO);
        for bad in ["-1", "x", "", "1y", "NaN", "inf", "99999999h"] {
            let e = duration("--x", bad).unwrap_err();
            assert!(e.0.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn query_from_flags() {
        let f = FilterArgs {
            state: Some("time-wait".into()),
            peer_port: vec!["80".into()],
            peer: vec!["10.0.0.0/8".into()],
            ipv4: true,
            ..FilterArgs::default()
        };
        let q = query(&f).unwrap();
        assert!(q.ipv4 && !q.ipv6);
        assert_eq!(q.conds.len(), 2);
        let bad = FilterArgs {
            port: vec!["70000".into()],
            ..FilterArgs::default()
        };
        assert!(query(&bad).unwrap_err().0.contains("70000"));
        let many = FilterArgs {
            peer: vec!["::1".into(); MAX_CONDITIONS + 1],
            ..FilterArgs::default()
        };
        assert!(query(&many).unwrap_err().0.contains("at most 64"));
        let mixed = FilterArgs {
            peer: vec!["::1".into()],
            ipv4: true,
            ..FilterArgs::default()
        };
        assert!(query(&mixed).unwrap_err().0.contains("::1"));
    }
}
