//! TCP states with the kernel's numbering (include/net/tcp_states.h) and the
//! names `ss` uses for them.

use std::fmt;

/// A TCP state as the kernel numbers it in `inet_diag_msg.idiag_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
    NewSynRecv = 12,
    BoundInactive = 13,
}

/// Highest state number the kernel defines today; also the size of per-state arrays.
pub const MAX_STATE: usize = 13;

impl TcpState {
    /// Every state, in kernel order.
    pub const ALL: [TcpState; MAX_STATE] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
        TcpState::NewSynRecv,
        TcpState::BoundInactive,
    ];

    pub fn from_kernel(n: u8) -> Option<TcpState> {
        if (1..=MAX_STATE as u8).contains(&n) {
            Some(Self::ALL[n as usize - 1])
        } else {
            None
        }
    }

    pub fn number(self) -> u8 {
        self as u8
    }

    /// Index into per-state arrays (0-based).
    pub fn index(self) -> usize {
        self as usize - 1
    }

    /// Bit of this state in `idiag_states`.
    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The name `ss` accepts in a state filter (`time-wait`, `listening`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::Established => "established",
            TcpState::SynSent => "syn-sent",
            TcpState::SynRecv => "syn-recv",
            TcpState::FinWait1 => "fin-wait-1",
            TcpState::FinWait2 => "fin-wait-2",
            TcpState::TimeWait => "time-wait",
            TcpState::Close => "closed",
            TcpState::CloseWait => "close-wait",
            TcpState::LastAck => "last-ack",
            TcpState::Listen => "listening",
            TcpState::Closing => "closing",
            TcpState::NewSynRecv => "new-syn-recv",
            TcpState::BoundInactive => "bound-inactive",
        }
    }

    /// The name as the kernel and RFC 9293 write it (`TIME_WAIT`).
    pub fn kernel_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW_SYN_RECV",
            TcpState::BoundInactive => "BOUND_INACTIVE",
        }
    }

    /// Parses one state name: case-insensitive, `-` and `_` optional
    /// (`TIME_WAIT`, `time-wait`, `timewait`), and the other spellings of
    /// `ss` ([`SS_SPELLINGS`]: `estab`, `syn-rcv`, `unconn`, `listen`, ...).
    pub fn parse(s: &str) -> Option<TcpState> {
        let key = squash(s);
        Self::ALL
            .into_iter()
            .find(|st| squash(st.name()) == key || squash(st.kernel_name()) == key)
            .or_else(|| {
                SS_SPELLINGS
                    .iter()
                    .find(|(name, _)| squash(name) == key)
                    .map(|(_, st)| *st)
            })
    }
}

/// By name, as `ss` spells it: the JSON and CSV contracts.
impl serde::Serialize for TcpState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The other names `ss` gives states: those its state filter accepts
/// (`syn-rcv`, `unconnected`, `close`; iproute2's `scan_state`) and those it
/// prints in its State column (`ESTAB`, `UNCONN`, `LISTEN`), so that a state
/// copied from either works here.
pub const SS_SPELLINGS: &[(&str, TcpState)] = &[
    ("estab", TcpState::Established),
    ("syn-rcv", TcpState::SynRecv),
    ("unconn", TcpState::Close),
    ("unconnected", TcpState::Close),
    ("close", TcpState::Close),
    ("listen", TcpState::Listen),
];

/// The closest of `candidates` to a mistyped `input`, when one is close
/// enough to be what was meant (`time-wiat` → `time-wait`). Case, `-` and `_`
/// do not count; a swap of two neighbouring letters counts as one edit.
pub fn suggest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let key = squash(input);
    if key.is_empty() {
        return None;
    }
    candidates
        .into_iter()
        .map(|c| (edits(&key, &squash(c)), c))
        .filter(|(d, c)| {
            let len = squash(c).chars().count();
            // One edit in a short name, two in a longer one, never most of it.
            *d <= if len >= 6 { 2 } else { 1 } && *d * 2 < len
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`:
/// the optimal string alignment distance.
fn edits(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[(i - 2) * w + j - 2] + 1);
                }
                v
            };
        }
    }
    d[a.len() * w + b.len()]
}

fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-' && *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A set of states, stored as the kernel's `idiag_states` bit mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateSet(pub u32);

/// Named groups of states accepted by `--state`, with what they hold.
pub const STATE_GROUPS: &[(&str, &[TcpState])] = &[
    ("all", &TcpState::ALL),
    (
        "connected",
        &[
            TcpState::Established,
            TcpState::SynSent,
            TcpState::SynRecv,
            TcpState::FinWait1,
            TcpState::FinWait2,
            TcpState::TimeWait,
            TcpState::CloseWait,
            TcpState::LastAck,
            TcpState::Closing,
        ],
    ),
    (
        "synchronized",
        &[
            TcpState::Established,
            TcpState::SynRecv,
            TcpState::FinWait1,
            TcpState::FinWait2,
            TcpState::TimeWait,
            TcpState::CloseWait,
            TcpState::LastAck,
            TcpState::Closing,
        ],
    ),
    (
        "teardown",
        &[
            TcpState::FinWait1,
            TcpState::FinWait2,
            TcpState::TimeWait,
            TcpState::CloseWait,
            TcpState::LastAck,
            TcpState::Closing,
        ],
    ),
    ("bucket", &[TcpState::SynRecv, TcpState::TimeWait]),
    // As in `ss`: every state but the bucket ones.
    (
        "big",
        &[
            TcpState::Established,
            TcpState::SynSent,
            TcpState::FinWait1,
            TcpState::FinWait2,
            TcpState::Close,
            TcpState::CloseWait,
            TcpState::LastAck,
            TcpState::Listen,
            TcpState::Closing,
            TcpState::NewSynRecv,
            TcpState::BoundInactive,
        ],
    ),
];

impl StateSet {
    pub const EMPTY: StateSet = StateSet(0);

    pub fn all() -> StateSet {
        StateSet::from_states(&TcpState::ALL)
    }

    /// What a dump asks for when no state is named: every state but
    /// BOUND_INACTIVE. Finding those makes the kernel walk its whole bind table,
    /// which also holds every TIME_WAIT socket: at 200k TIME_WAIT that walk costs
    /// more than the dump itself. Like `ss`, they are shown only when asked for
    /// (`--state bound-inactive` or `--state all`).
    pub fn unfiltered() -> StateSet {
        StateSet(StateSet::all().0 & !TcpState::BoundInactive.bit())
    }

    pub fn from_states(states: &[TcpState]) -> StateSet {
        StateSet(states.iter().fold(0, |m, s| m | s.bit()))
    }

    pub fn contains(self, s: TcpState) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn insert(&mut self, s: TcpState) {
        self.0 |= s.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = TcpState> {
        TcpState::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// Parses a comma-separated list of state and group names.
    /// The error names the bad item.
    pub fn parse_list(list: &str) -> Result<StateSet, String> {
        let mut set = StateSet::EMPTY;
        for item in list.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(format!("empty state name in '{list}'"));
            }
            if let Some(st) = TcpState::parse(item) {
                set.insert(st);
            } else if let Some((_, members)) = STATE_GROUPS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(item))
            {
                set.0 |= StateSet::from_states(members).0;
            } else {
                let names = TcpState::ALL
                    .iter()
                    .map(|s| s.name())
                    .chain(STATE_GROUPS.iter().map(|(n, _)| *n));
                let hint = suggest(item, names)
                    .map(|s| format!("did you mean {s}? "))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown state '{item}'; {hint}valid: {}",
                    valid_state_names()
                ));
            }
        }
        Ok(set)
    }
}

/// The names `--state` accepts, for error messages and help.
pub fn valid_state_names() -> String {
    let mut names: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    names.extend(STATE_GROUPS.iter().map(|(n, _)| *n));
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_matches_kernel() {
        assert_eq!(TcpState::TimeWait.number(), 6);
        assert_eq!(TcpState::NewSynRecv.number(), 12);
        assert_eq!(TcpState::BoundInactive.number(), 13);
        for s in TcpState::ALL {
            assert_eq!(TcpState::from_kernel(s.number()), Some(s));
        }
        assert_eq!(TcpState::from_kernel(0), None);
        assert_eq!(TcpState::from_kernel(14), None);
    }

    #[test]
    fn parses_spellings() {
        for s in ["time-wait", "TIME_WAIT", "timewait", "Time-Wait"] {
            assert_eq!(TcpState::parse(s), Some(TcpState::TimeWait), "{s}");
        }
        assert_eq!(TcpState::parse("listen"), Some(TcpState::Listen));
        // ss's filter names and the names in its State column.
        for (s, want) in [
            ("estab", TcpState::Established),
            ("ESTAB", TcpState::Established),
            ("syn-rcv", TcpState::SynRecv),
            ("SYN-RECV", TcpState::SynRecv),
            ("unconn", TcpState::Close),
            ("UNCONN", TcpState::Close),
            ("unconnected", TcpState::Close),
            ("close", TcpState::Close),
            ("closed", TcpState::Close),
            ("LISTEN", TcpState::Listen),
            ("listening", TcpState::Listen),
        ] {
            assert_eq!(TcpState::parse(s), Some(want), "{s}");
        }
        assert_eq!(TcpState::parse("fin_wait1"), Some(TcpState::FinWait1));
        assert_eq!(TcpState::parse("bogus"), None);
    }

    #[test]
    fn parses_lists_and_groups() {
        let s = StateSet::parse_list("time-wait,CLOSE_WAIT").unwrap();
        assert!(s.contains(TcpState::TimeWait) && s.contains(TcpState::CloseWait));
        assert_eq!(s.iter().count(), 2);
        let c = StateSet::parse_list("connected").unwrap();
        assert!(!c.contains(TcpState::Listen) && c.contains(TcpState::TimeWait));
        assert_eq!(StateSet::parse_list("all").unwrap(), StateSet::all());
        let e = StateSet::parse_list("time-wait,bogus").unwrap_err();
        assert!(e.contains("'bogus'") && e.contains("time-wait"), "{e}");
        assert!(StateSet::parse_list("").is_err());
        let big = StateSet::parse_list("big").unwrap();
        assert!(!big.contains(TcpState::TimeWait) && !big.contains(TcpState::SynRecv));
        assert_eq!(big.iter().count(), MAX_STATE - 2);
    }

    #[test]
    fn typos_get_a_suggestion() {
        for (typo, meant) in [
            ("time-wiat", "time-wait"),
            ("TIME_WIAT", "time-wait"),
            ("timewait2", "time-wait"),
            ("close-wiat", "close-wait"),
            ("establised", "established"),
            ("lisening", "listening"),
            ("fin-wait-3", "fin-wait-1"),
            ("conected", "connected"),
        ] {
            let e = StateSet::parse_list(&format!("established,{typo}")).unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "unknown state '{typo}'; did you mean {meant}? valid: "
                )),
                "{e}"
            );
        }
        // Nothing close: no guess, only the valid names.
        for far in ["bogus", "x", "waiting", "tcp"] {
            let e = StateSet::parse_list(far).unwrap_err();
            assert!(!e.contains("did you mean"), "{far}: {e}");
            assert!(e.contains("valid: established"), "{e}");
        }
    }
}
