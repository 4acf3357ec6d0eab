//! Checked values from the command line: durations, intervals, the kernel
//! query, file identity. Every error names the bad value and what is valid.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::FilterArgs;
use crate::exit::UsageError;
use crate::filter::{Cond, MAX_CONDITIONS, PortRange, Prefix, Query, Side};
use crate::host::netns::NetnsChoice;
use crate::state::StateSet;

/// The shortest interval between two samples or progress lines: shorter ones
/// would only spin (every sample is a full dump of the socket table).
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Builds the kernel query from the filter flags: one group per flag given,
/// whose values are alternatives (`--port 80 --port 81`: either port), and
/// every group required (`--port 80 --peer ::1`: both), as `ss` filters read.
pub fn query(f: &FilterArgs) -> Result<Query, UsageError> {
    let states = match &f.state {
        None => StateSet::unfiltered(),
        Some(s) => StateSet::parse_list(s).map_err(|e| UsageError(format!("--state: {e}")))?,
    };
    let mut groups = Vec::new();
    for (flag, side, vals) in [
        ("--port", Side::Either, &f.port),
        ("--local-port", Side::Local, &f.local_port),
        ("--peer-port", Side::Peer, &f.peer_port),
    ] {
        let group = vals
            .iter()
            .map(|v| {
                PortRange::parse(v)
                    .map(|r| Cond::Port(side, r))
                    .map_err(|e| UsageError(format!("{flag}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !group.is_empty() {
            groups.push(group);
        }
    }
    for (flag, side, vals) in [
        ("--peer", Side::Peer, &f.peer),
        ("--local", Side::Local, &f.local),
    ] {
        let mut group = Vec::with_capacity(vals.len());
        for v in vals {
            let p = Prefix::parse(v).map_err(|e| UsageError(format!("{flag}: {e}")))?;
            if f.ipv4 && p.addr.is_ipv6() {
                return Err(UsageError(format!(
                    "{flag} '{v}' is an IPv6 address but -4 asks for IPv4 only"
                )));
            }
            group.push(Cond::Addr(side, p));
        }
        if !group.is_empty() {
            groups.push(group);
        }
    }
    let q = Query {
        ipv4: !f.ipv6,
        ipv6: !f.ipv4,
        states,
        groups,
    };
    // The kernel's filter program is addressed with 16-bit offsets.
    if q.conditions() > MAX_CONDITIONS {
        return Err(UsageError(format!(
            "{} port and address filters given; at most {MAX_CONDITIONS} are supported",
            q.conditions()
        )));
    }
    Ok(q)
}

/// Parses a duration: `1.5` (seconds), `200ms`, `10s`, `2m`, `1h`; `0` allowed.
/// `what` names the flag in the error.
pub fn duration(what: &str, s: &str) -> Result<Duration, UsageError> {
    let err = || {
        UsageError(format!(
            "{what}: invalid duration '{s}': expected a number of seconds or a number with ms, s, m or h (e.g. 500ms, 10s, 2m)"
        ))
    };
    let t = s;
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
    // Digits and one decimal point only: no sign, exponent, spaces, NaN or inf.
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(err());
    }
    let v: f64 = num.parse().map_err(|_| err())?;
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

/// A repeating interval (`--watch`, `who --interval`): a duration of at least
/// [`MIN_INTERVAL`].
pub fn interval(what: &str, s: &str) -> Result<Duration, UsageError> {
    let d = duration(what, s)?;
    if d < MIN_INTERVAL {
        return Err(UsageError(format!(
            "{what}: interval '{s}' is shorter than the minimum of {} s",
            MIN_INTERVAL.as_secs_f64()
        )));
    }
    Ok(d)
}

/// `--netns` / `--all-netns`.
pub fn netns(f: &FilterArgs) -> NetnsChoice {
    match (&f.netns, f.all_netns) {
        (_, true) => NetnsChoice::All,
        (Some(n), false) => NetnsChoice::One(n.clone()),
        (None, false) => NetnsChoice::Current,
    }
}

/// What identifies a file: its device and inode when it exists (through any
/// symlinks), otherwise the absolute path it would be created at.
#[derive(Debug, PartialEq, Eq)]
enum FileId {
    Inode(u64, u64),
    Path(PathBuf),
}

fn file_id(p: &Path) -> FileId {
    if let Ok(m) = std::fs::metadata(p) {
        return FileId::Inode(m.dev(), m.ino());
    }
    // Not there yet (or a dangling symlink): where would it be created?
    let mut path = p.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&path) {
            Ok(target) => {
                path = match path.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                }
            }
            Err(_) => break,
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    FileId::Path(dir.join(name))
}

/// True when two paths name the same file, whatever the spelling
/// (`b`, `./b`, an absolute path, a symlink to it).
pub fn same_file(a: &Path, b: &Path) -> bool {
    file_id(a) == file_id(b)
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
        for bad in [
            "-1",
            "x",
            "",
            "1y",
            "NaN",
            "inf",
            "99999999h",
            "+1",
            " 1",
            "1e3",
            "1..2",
        ] {
            let e = duration("--x", bad).unwrap_err();
            assert!(e.0.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn intervals_have_a_floor() {
        assert_eq!(
            interval("--watch", "0.1").unwrap(),
            Duration::from_millis(100)
        );
        for bad in ["0", "0.000000001", "99ms", "0.05"] {
            let e = interval("--watch", bad).unwrap_err();
            assert!(
                e.0.contains(&format!("'{bad}'")) && e.0.contains("0.1 s"),
                "{e}"
            );
        }
        // Exponents are not durations at all.
        assert!(
            interval("--watch", "1e-9")
                .unwrap_err()
                .0
                .contains("'1e-9'")
        );
    }

    #[test]
    fn same_file_by_identity() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("b");
        let other = dir.path().join("c");
        assert!(
            same_file(&b, &dir.path().join(".").join("b")),
            "not yet there"
        );
        assert!(!same_file(&b, &other));
        std::fs::write(&b, "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&b, &link).unwrap();
        assert!(same_file(&b, &link));
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(&other, &dangling).unwrap();
        assert!(
            same_file(&dangling, &other),
            "a dangling link names its target"
        );
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
        assert_eq!(q.groups.len(), 2);
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
        // -4 refuses an IPv6 value even among IPv4 alternatives.
        let mixed = FilterArgs {
            peer: vec!["127.0.0.1".into(), "[::1]".into()],
            ipv4: true,
            ..FilterArgs::default()
        };
        assert!(query(&mixed).unwrap_err().0.contains("'[::1]'"));
    }

    #[test]
    fn one_group_per_flag() {
        let f = FilterArgs {
            port: vec!["8080".into(), "8081".into()],
            peer: vec!["127.0.0.1".into(), "::1".into()],
            local_port: vec!["1000-2000".into()],
            ..FilterArgs::default()
        };
        let q = query(&f).unwrap();
        let port = |p| Cond::Port(Side::Either, PortRange::single(p));
        let peer = |a: &str| Cond::Addr(Side::Peer, Prefix::parse(a).unwrap());
        assert_eq!(
            q.groups,
            vec![
                vec![port(8080), port(8081)],
                vec![Cond::Port(Side::Local, PortRange { lo: 1000, hi: 2000 })],
                vec![peer("127.0.0.1"), peer("::1")],
            ]
        );
        assert!(query(&FilterArgs::default()).unwrap().groups.is_empty());
        // The cap counts conditions across groups.
        let spread = FilterArgs {
            port: vec!["80".into(); MAX_CONDITIONS / 2],
            peer: vec!["::1".into(); MAX_CONDITIONS / 2 + 1],
            ..FilterArgs::default()
        };
        assert!(query(&spread).unwrap_err().0.contains("at most 64"));
    }

    #[test]
    fn lenient_values_are_refused_naming_the_flag_and_value() {
        for (port, peer) in [
            (vec!["+80"], vec![]),
            (vec![" 80"], vec![]),
            (vec![], vec!["[[[::1]]]"]),
            (vec![], vec!["10.0.0.0/+8"]),
            (vec![], vec!["[10.0.0.1]"]),
            (vec![], vec!["::1]"]),
        ] {
            let bad = port.first().or(peer.first()).unwrap().to_string();
            let f = FilterArgs {
                port: port.into_iter().map(String::from).collect(),
                peer: peer.into_iter().map(String::from).collect(),
                ..FilterArgs::default()
            };
            let e = query(&f).unwrap_err().0;
            assert!(e.contains(&format!("'{bad}'")), "{e}");
            assert!(
                e.starts_with("--port: ") || e.starts_with("--peer: "),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
