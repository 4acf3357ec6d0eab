//! Compiles a query's conditions into `INET_DIAG_REQ_BYTECODE`, the small filter
//! program the kernel runs on every socket before it copies it out
//! (net/ipv4/inet_diag.c: `inet_diag_bc_run`, checked by `inet_diag_bc_audit`).
//!
//! Each op is `struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }`: on success
//! the program moves on by `yes` bytes, on failure by `no` bytes. A socket is
//! accepted when the program ends exactly at its last byte; we reject by
//! jumping 4 bytes past the end, as the kernel's audit allows.

use std::net::IpAddr;

use crate::filter::{Cond, PortRange, Prefix, Side};

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

/// Returns the bytecode for `conds`, or an empty vector when nothing needs filtering.
pub fn compile(conds: &[Cond]) -> Vec<u8> {
    let exprs: Vec<Expr> = conds.iter().filter_map(cond_expr).collect();
    if exprs.is_empty() {
        return Vec::new();
    }
    let mut items = Vec::new();
    let mut labels = 0usize;
    emit(Expr::All(exprs), Target::Reject, &mut items, &mut labels);
    assemble(&items, labels)
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

/// Runs bytecode the way the kernel does, over a socket's ports and addresses.
/// Used by tests to check that what we send means what `Query::matches` means.
#[cfg(test)]
pub fn run(bc: &[u8], sport: u16, dport: u16, saddr: IpAddr, daddr: IpAddr) -> bool {
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
                let fam = bc[pc + 4];
                let plen = bc[pc + 5];
                let addr: IpAddr = if fam == AF_INET {
                    let o: [u8; 4] = bc[pc + 12..pc + 16].try_into().unwrap();
                    IpAddr::from(o)
                } else {
                    let o: [u8; 16] = bc[pc + 12..pc + 28].try_into().unwrap();
                    IpAddr::from(o)
                };
                let a = if code == BC_S_COND { saddr } else { daddr };
                Prefix { addr, len: plen }.contains(crate::socket::canonical(a))
            }
            _ => panic!("unexpected op {code}"),
        };
        pc += if ok { yes_off } else { no_off };
    }
    pc == len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{Query, Side};
    use crate::socket::{Family, SocketRecord};
    use crate::state::TcpState;

    fn conds(cs: &[(Side, &str)]) -> Vec<Cond> {
        cs.iter()
            .map(|(side, v)| match PortRange::parse(v) {
                Ok(r) => Cond::Port(*side, r),
                Err(_) => Cond::Addr(*side, Prefix::parse(v).unwrap()),
            })
            .collect()
    }

    #[test]
    fn empty_without_conditions() {
        assert!(compile(&[]).is_empty());
        assert!(compile(&conds(&[(Side::Local, "0-65535")])).is_empty());
    }

    #[test]
    fn single_port_is_one_eq_op() {
        let bc = compile(&conds(&[(Side::Peer, "80")]));
        // D_EQ, yes=8, no=8+4 (reject), then the port in the second op's `no`.
        assert_eq!(bc, [12, 8, 12, 0, 0, 0, 80, 0]);
    }

    #[test]
    fn agrees_with_query_matches() {
        let cases: Vec<Vec<Cond>> = vec![
            conds(&[(Side::Either, "80")]),
            conds(&[(Side::Local, "1000-2000")]),
            conds(&[(Side::Either, "1000-2000"), (Side::Peer, "127.0.0.0/8")]),
            conds(&[(Side::Either, "127.0.0.2")]),
            conds(&[(Side::Local, "::1"), (Side::Peer, "0-100")]),
            conds(&[(Side::Either, "80"), (Side::Either, "10.0.0.0/8")]),
        ];
        let addrs: Vec<IpAddr> = ["127.0.0.1", "127.0.0.2", "10.1.1.1", "::1", "fe80::1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let ports = [0u16, 50, 80, 999, 1000, 1500, 2000, 2001, 65535];
        for cs in &cases {
            let bc = compile(cs);
            let q = Query {
                conds: cs.clone(),
                ..Query::default()
            };
            for &sp in &ports {
                for &dp in &ports {
                    for &sa in &addrs {
                        for &da in &addrs {
                            let mut r = SocketRecord::blank(Family::V4, TcpState::TimeWait);
                            (r.local_port, r.peer_port, r.local, r.peer) = (sp, dp, sa, da);
                            assert_eq!(
                                run(&bc, sp, dp, sa, da),
                                q.matches(&r),
                                "{cs:?} {sa}:{sp} {da}:{dp}"
                            );
                        }
                    }
                }
            }
        }
    }
}
