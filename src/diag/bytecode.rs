//! Compiles a query's conditions into `INET_DIAG_REQ_BYTECODE`, the small filter
//! program the kernel runs on every socket before it copies it out
//! (net/ipv4/inet_diag.c: `inet_diag_bc_run`, checked by `inet_diag_bc_audit`).
//!
//! Each op is `struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }`: on success
//! the program moves on by `yes` bytes, on failure by `no` bytes. A socket is
//! accepted when the program ends exactly at its last byte; we reject by
//! jumping 4 bytes past the end, as the kernel's audit allows.

use std::net::IpAddr;

use crate::filter::{AnyOf, Cond, PortRange, Prefix, Side};

const BC_JMP: u8 = 1;
const BC_S_GE: u8 = 2;
const BC_S_LE: u8 = 3;
const BC_D_GE: u8 = 4;
const BC_D_LE: u8 = 5;
const BC_S_COND: u8 = 7;
const BC_D_COND: u8 = 8;
const BC_S_EQ: u8 = 11;
const BC_D_EQ: u8 = 12;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

#[derive(Clone, Copy)]
enum Target {
    Label(usize),
    Reject,
}

#[derive(Clone, Copy)]
enum Payload {
    /// The port travels in the `no` field of a second op.
    Port(u16),
    /// `struct inet_diag_hostcond` (family, prefix_len, int port) plus the address.
    Host(Prefix),
    Jump,
}

enum Item {
    Op {
        code: u8,
        payload: Payload,
        no: Target,
    },
    Label(usize),
}

enum Expr {
    Op(u8, Payload),
    All(Vec<Expr>),
    Any(Vec<Expr>),
}

/// Returns the bytecode for `groups` (all of them must hold, each by any of
/// its conditions), or an empty vector when nothing needs filtering.
pub fn compile(groups: &[AnyOf]) -> Vec<u8> {
    let exprs: Vec<Expr> = groups.iter().filter_map(group_expr).collect();
    if exprs.is_empty() {
        return Vec::new();
    }
    let mut items = Vec::new();
    let mut labels = 0usize;
    emit(Expr::All(exprs), Target::Reject, &mut items, &mut labels);
    assemble(&items, labels)
}

/// The test for one group, or None when every socket passes it (a condition
/// such as the port range 0-65535 makes the whole group true).
fn group_expr(g: &AnyOf) -> Option<Expr> {
    let mut alts = Vec::with_capacity(g.len());
    for c in g {
        match cond_expr(c)? {
            // Flattened: fewer jumps than a nested Any.
            Expr::Any(parts) => alts.extend(parts),
            e => alts.push(e),
        }
    }
    match alts.len() {
        // Any of nothing: a jump always takes its `no` branch.
        0 => Some(Expr::Op(BC_JMP, Payload::Jump)),
        1 => alts.pop(),
        _ => Some(Expr::Any(alts)),
    }
}

fn port_expr(local: bool, r: PortRange) -> Option<Expr> {
    let (eq, ge, le) = if local {
        (BC_S_EQ, BC_S_GE, BC_S_LE)
    } else {
        (BC_D_EQ, BC_D_GE, BC_D_LE)
    };
    if r.lo == r.hi {
        return Some(Expr::Op(eq, Payload::Port(r.lo)));
    }
    let mut parts = Vec::new();
    if r.lo > 0 {
        parts.push(Expr::Op(ge, Payload::Port(r.lo)));
    }
    if r.hi < u16::MAX {
        parts.push(Expr::Op(le, Payload::Port(r.hi)));
    }
    if parts.is_empty() {
        None
    } else {
        Some(Expr::All(parts))
    }
}

fn cond_expr(c: &Cond) -> Option<Expr> {
    match *c {
        Cond::Port(Side::Local, r) => port_expr(true, r),
        Cond::Port(Side::Peer, r) => port_expr(false, r),
        Cond::Port(Side::Either, r) => match (port_expr(true, r), port_expr(false, r)) {
            (Some(a), Some(b)) => Some(Expr::Any(vec![a, b])),
            _ => None,
        },
        Cond::Addr(Side::Local, p) => Some(Expr::Op(BC_S_COND, Payload::Host(p))),
        Cond::Addr(Side::Peer, p) => Some(Expr::Op(BC_D_COND, Payload::Host(p))),
        Cond::Addr(Side::Either, p) => Some(Expr::Any(vec![
            Expr::Op(BC_S_COND, Payload::Host(p)),
            Expr::Op(BC_D_COND, Payload::Host(p)),
        ])),
    }
}

fn emit(e: Expr, fail: Target, items: &mut Vec<Item>, labels: &mut usize) {
    match e {
        Expr::Op(code, payload) => items.push(Item::Op {
            code,
            payload,
            no: fail,
        }),
        Expr::All(parts) => {
            for p in parts {
                emit(p, fail, items, labels);
            }
        }
        Expr::Any(mut parts) => {
            let last = parts.pop().expect("Any is never empty");
            let done = new_label(labels);
            for p in parts {
                let next = new_label(labels);
                emit(p, Target::Label(next), items, labels);
                items.push(Item::Op {
                    code: BC_JMP,
                    payload: Payload::Jump,
                    no: Target::Label(done),
                });
                items.push(Item::Label(next));
            }
            emit(last, fail, items, labels);
            items.push(Item::Label(done));
        }
    }
}

fn new_label(labels: &mut usize) -> usize {
    *labels += 1;
    *labels - 1
}

fn op_len(p: Payload) -> usize {
    match p {
        Payload::Port(_) => 8,
        Payload::Jump => 4,
        Payload::Host(pr) => 4 + 8 + if pr.addr.is_ipv4() { 4 } else { 16 },
    }
}

fn assemble(items: &[Item], nlabels: usize) -> Vec<u8> {
    let mut label_pos = vec![0usize; nlabels];
    let mut pos = 0;
    for it in items {
        match it {
            Item::Op { payload, .. } => pos += op_len(*payload),
            Item::Label(l) => label_pos[*l] = pos,
        }
    }
    let total = pos;
    let mut out = Vec::with_capacity(total);
    for it in items {
        let Item::Op { code, payload, no } = it else {
            continue;
        };
        let here = out.len();
        let len = op_len(*payload);
        let target = match no {
            Target::Label(l) => label_pos[*l],
            Target::Reject => total + 4,
        };
        let no = u16::try_from(target - here).expect("bytecode fits in u16 offsets");
        out.push(*code);
        out.push(len as u8);
        out.extend_from_slice(&no.to_ne_bytes());
        match *payload {
            Payload::Port(p) => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&p.to_ne_bytes());
            }
            Payload::Jump => {}
            Payload::Host(pr) => {
                let fam = if pr.addr.is_ipv4() { AF_INET } else { AF_INET6 };
                out.push(fam);
                out.push(pr.len);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&(-1i32).to_ne_bytes());
                match pr.addr {
                    IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                    IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
                }
            }
        }
    }
    debug_assert_eq!(out.len(), total);
    out
}

/// Runs bytecode the way the kernel does (`inet_diag_bc_run`) over a socket as
/// the kernel sees it: an IPv6 socket's IPv4 peer as `::ffff:a.b.c.d`.
/// Used by tests to check that what we send means what `Query::matches` means.
#[cfg(test)]
pub fn run(bc: &[u8], r: &crate::socket::SocketRecord) -> bool {
    use crate::socket::Family;
    let family = match r.family {
        Family::V4 => AF_INET,
        Family::V6 => AF_INET6,
    };
    let raw = |a: IpAddr| match (r.family, a) {
        (Family::V6, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
        (_, a) => a,
    };
    let octets = |a: IpAddr| match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let (saddr, daddr) = (octets(raw(r.local)), octets(raw(r.peer)));
    let (sport, dport) = (r.local_port, r.peer_port);
    let mut pc = 0usize;
    let len = bc.len();
    while pc < len {
        let code = bc[pc];
        let yes_off = bc[pc + 1] as usize;
        let no_off = u16::from_ne_bytes([bc[pc + 2], bc[pc + 3]]) as usize;
        let port_arg = || u16::from_ne_bytes([bc[pc + 6], bc[pc + 7]]);
        let ok = match code {
            BC_JMP => false,
            BC_S_GE => sport >= port_arg(),
            BC_S_LE => sport <= port_arg(),
            BC_D_GE => dport >= port_arg(),
            BC_D_LE => dport <= port_arg(),
            BC_S_EQ => sport == port_arg(),
            BC_D_EQ => dport == port_arg(),
            BC_S_COND | BC_D_COND => {
                let (cfam, plen) = (bc[pc + 4], bc[pc + 5] as usize);
                let port = i32::from_ne_bytes(bc[pc + 8..pc + 12].try_into().unwrap());
                assert_eq!(port, -1, "host conditions never test a port");
                let alen = if cfam == AF_INET { 4 } else { 16 };
                let caddr = &bc[pc + 12..pc + 12 + alen];
                let addr = if code == BC_S_COND { &saddr } else { &daddr };
                if cfam != family {
                    cfam == AF_INET
                        && addr[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
                        && bits_match(&addr[12..], caddr, plen)
                } else {
                    plen == 0 || bits_match(addr, caddr, plen)
                }
            }
            _ => panic!("unexpected op {code}"),
        };
        pc += if ok { yes_off } else { no_off };
    }
    pc == len
}

/// The first `bits` bits of `a` and `b` are equal (the kernel's `bitstring_match`).
#[cfg(test)]
fn bits_match(a: &[u8], b: &[u8], bits: usize) -> bool {
    let (whole, rest) = (bits / 8, bits % 8);
    a[..whole] == b[..whole] && (rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0)
}

/// The kernel's checks on a program before it runs it (`inet_diag_bc_audit`):
/// every op long enough, every offset a multiple of 4 within the program or 4
/// past its end, and every `no` landing on an op reached by the `yes` chain.
#[cfg(test)]
pub fn audit(bc: &[u8]) -> Result<(), String> {
    let total = bc.len();
    let mut starts = Vec::new();
    let mut pc = 0usize;
    while pc < total {
        starts.push(pc);
        if total - pc < 4 {
            return Err(format!("op at {pc} cut short"));
        }
        pc += bc[pc + 1] as usize;
    }
    let mut pc = 0usize;
    while pc < total {
        let left = total - pc;
        let (code, yes) = (bc[pc], bc[pc + 1] as usize);
        let no = u16::from_ne_bytes([bc[pc + 2], bc[pc + 3]]) as usize;
        let min = match code {
            BC_JMP => 4,
            BC_S_GE | BC_S_LE | BC_D_GE | BC_D_LE | BC_S_EQ | BC_D_EQ => 8,
            BC_S_COND | BC_D_COND => {
                let (fam, plen) = (bc[pc + 4], bc[pc + 5] as usize);
                let alen = match fam {
                    AF_INET => 4,
                    AF_INET6 => 16,
                    _ => return Err(format!("op at {pc}: family {fam}")),
                };
                if plen > alen * 8 {
                    return Err(format!("op at {pc}: prefix length {plen}"));
                }
                12 + alen
            }
            _ => return Err(format!("op at {pc}: code {code}")),
        };
        if left < min {
            return Err(format!("op at {pc} shorter than {min}"));
        }
        for (what, off) in [("yes", yes), ("no", no)] {
            if off < min || off > left + 4 || off % 4 != 0 {
                return Err(format!("op at {pc}: {what} offset {off}"));
            }
        }
        if no < left && !starts.contains(&(pc + no)) {
            return Err(format!("op at {pc}: no jumps into the middle of an op"));
        }
        pc += yes;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{MAX_CONDITIONS, Query};
    use crate::socket::{Family, SocketRecord};
    use crate::state::TcpState;
    use proptest::prelude::*;

    fn cond(side: Side, v: &str) -> Cond {
        match PortRange::parse(v) {
            Ok(r) => Cond::Port(side, r),
            Err(_) => Cond::Addr(side, Prefix::parse(v).unwrap()),
        }
    }

    fn group(side: Side, vs: &[&str]) -> AnyOf {
        vs.iter().map(|v| cond(side, v)).collect()
    }

    fn record(family: Family, sa: IpAddr, sp: u16, da: IpAddr, dp: u16) -> SocketRecord {
        let mut r = SocketRecord::blank(family, TcpState::TimeWait);
        (r.local, r.local_port, r.peer, r.peer_port) = (sa, sp, da, dp);
        r
    }

    #[test]
    fn empty_without_conditions() {
        assert!(compile(&[]).is_empty());
        assert!(compile(&[group(Side::Local, &["0-65535"])]).is_empty());
        // One alternative that every socket meets makes its group true.
        assert!(compile(&[group(Side::Peer, &["80", "0-65535"])]).is_empty());
    }

    #[test]
    fn single_port_is_one_eq_op() {
        let bc = compile(&[group(Side::Peer, &["80"])]);
        // D_EQ, yes=8, no=8+4 (reject), then the port in the second op's `no`.
        assert_eq!(bc, [12, 8, 12, 0, 0, 0, 80, 0]);
    }

    #[test]
    fn two_ports_are_either_or() {
        let bc = compile(&[group(Side::Peer, &["80", "81"])]);
        #[rustfmt::skip]
        let want = [
            12, 8, 12, 0, 0, 0, 80, 0, // D_EQ 80; no: try the next port
            1, 4, 12, 0,               // JMP to the end: accepted
            12, 8, 12, 0, 0, 0, 81, 0, // D_EQ 81; no: reject
        ];
        assert_eq!(bc, want);
        audit(&bc).unwrap();
    }

    #[test]
    fn an_empty_group_rejects_everything() {
        let bc = compile(&[Vec::new()]);
        assert_eq!(bc, [BC_JMP, 4, 8, 0]);
        audit(&bc).unwrap();
        let r = record(
            Family::V4,
            [127, 0, 0, 1].into(),
            1,
            [127, 0, 0, 1].into(),
            2,
        );
        assert!(!run(&bc, &r));
    }

    #[test]
    fn the_largest_query_fits_16_bit_offsets() {
        // MAX_CONDITIONS of the longest kind, an IPv6 prefix at either end,
        // in one group and spread over several.
        let v6 = cond(Side::Either, "fe80::1/64");
        let range = cond(Side::Either, "1000-2000");
        for groups in [
            vec![vec![v6; MAX_CONDITIONS]],
            vec![vec![v6; 1]; MAX_CONDITIONS],
            vec![vec![v6, range]; MAX_CONDITIONS / 2],
        ] {
            let bc = compile(&groups);
            assert!(bc.len() < 8192, "{} bytes", bc.len());
            audit(&bc).unwrap();
        }
    }

    #[test]
    fn agrees_with_query_matches() {
        let cases: Vec<Vec<AnyOf>> = vec![
            vec![group(Side::Either, &["80"])],
            vec![group(Side::Local, &["1000-2000"])],
            vec![
                group(Side::Either, &["1000-2000"]),
                group(Side::Peer, &["127.0.0.0/8"]),
            ],
            vec![group(Side::Either, &["127.0.0.2"])],
            vec![group(Side::Local, &["::1"]), group(Side::Peer, &["0-100"])],
            vec![
                group(Side::Either, &["80"]),
                group(Side::Either, &["10.0.0.0/8"]),
            ],
            // OR within a key.
            vec![group(Side::Either, &["80", "1000-2000", "65535"])],
            vec![group(Side::Peer, &["127.0.0.2", "::1"])],
            // Several groups, mixed families, mixed sides.
            vec![
                group(Side::Either, &["80", "999"]),
                group(Side::Peer, &["10.0.0.0/8", "fe80::/10", "::1"]),
            ],
            vec![
                group(Side::Local, &["0-50", "2000-2001"]),
                group(Side::Peer, &["1000-2000"]),
                group(Side::Local, &["127.0.0.0/30", "::/0"]),
            ],
            vec![
                group(Side::Peer, &["::/0"]),
                group(Side::Local, &["0.0.0.0/0", "::1"]),
            ],
            vec![Vec::new(), group(Side::Peer, &["80"])],
        ];
        let addrs: Vec<IpAddr> = ["127.0.0.1", "127.0.0.2", "10.1.1.1", "::1", "fe80::1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let ports = [0u16, 50, 80, 999, 1000, 1500, 2000, 2001, 65535];
        for groups in &cases {
            let bc = compile(groups);
            audit(&bc).unwrap_or_else(|e| panic!("{groups:?}: {e}"));
            let q = Query {
                groups: groups.clone(),
                ..Query::default()
            };
            for &sp in &ports {
                for &dp in &ports {
                    for &sa in &addrs {
                        for &da in &addrs {
                            // IPv4 addresses are IPv4 sockets or mapped peers of IPv6 ones.
                            let fams: &[Family] = if sa.is_ipv4() && da.is_ipv4() {
                                &[Family::V4, Family::V6]
                            } else {
                                &[Family::V6]
                            };
                            for &fam in fams {
                                let r = record(fam, sa, sp, da, dp);
                                assert_eq!(
                                    run(&bc, &r),
                                    q.matches(&r),
                                    "{groups:?} {fam:?} {sa}:{sp} {da}:{dp}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Addresses near each other, so random prefixes often split them.
    const V4: [[u8; 4]; 4] = [
        [127, 0, 0, 1],
        [127, 0, 0, 2],
        [10, 1, 2, 3],
        [10, 200, 0, 1],
    ];
    const V6: [&str; 4] = ["::1", "fe80::1", "fe80::8000:1", "2001:db8::1"];

    fn v4() -> impl Strategy<Value = IpAddr> {
        prop::sample::select(V4.to_vec()).prop_map(IpAddr::from)
    }

    fn v6() -> impl Strategy<Value = IpAddr> {
        prop::sample::select(V6.to_vec()).prop_map(|a| a.parse().unwrap())
    }

    fn port() -> impl Strategy<Value = u16> {
        prop_oneof![
            prop::sample::select(vec![0u16, 1, 80, 81, 443, 65534, 65535]),
            any::<u16>()
        ]
    }

    fn side() -> impl Strategy<Value = Side> {
        prop::sample::select(vec![Side::Local, Side::Peer, Side::Either])
    }

    fn cond_strategy() -> impl Strategy<Value = Cond> {
        let range = (port(), port()).prop_map(|(a, b)| PortRange {
            lo: a.min(b),
            hi: a.max(b),
        });
        let single = port().prop_map(PortRange::single);
        let v4p = (v4(), 0u8..=32).prop_map(|(addr, len)| Prefix { addr, len });
        let v6p = (v6(), 0u8..=128).prop_map(|(addr, len)| Prefix { addr, len });
        prop_oneof![
            (side(), prop_oneof![single, range]).prop_map(|(s, r)| Cond::Port(s, r)),
            (side(), prop_oneof![v4p, v6p]).prop_map(|(s, p)| Cond::Addr(s, p)),
        ]
    }

    fn groups_strategy() -> impl Strategy<Value = Vec<AnyOf>> {
        prop::collection::vec(prop::collection::vec(cond_strategy(), 1..=3), 1..=4)
    }

    fn socket_strategy() -> impl Strategy<Value = SocketRecord> {
        // IPv4 sockets; IPv6 sockets with IPv6 or IPv4-mapped addresses.
        let v4_sock = (v4(), port(), v4(), port())
            .prop_map(|(sa, sp, da, dp)| record(Family::V4, sa, sp, da, dp));
        let v6_sock = (v6(), port(), v6(), port())
            .prop_map(|(sa, sp, da, dp)| record(Family::V6, sa, sp, da, dp));
        let mapped = (v4(), port(), v4(), port())
            .prop_map(|(sa, sp, da, dp)| record(Family::V6, sa, sp, da, dp));
        prop_oneof![v4_sock, v6_sock, mapped]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn random_queries_agree_with_the_matcher(
            groups in groups_strategy(),
            socks in prop::collection::vec(socket_strategy(), 16),
        ) {
            let bc = compile(&groups);
            prop_assert!(audit(&bc).is_ok(), "{:?}", audit(&bc));
            let q = Query { groups, ..Query::default() };
            for r in &socks {
                prop_assert_eq!(run(&bc, r), q.matches(r), "{:?}", r);
                // A socket the matcher keeps is in a family that is dumped.
                if q.matches(r) {
                    prop_assert!(q.families().contains(&r.family));
                }
            }
        }
    }
}
