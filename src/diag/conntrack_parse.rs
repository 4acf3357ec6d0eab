//! Pure parsing of ctnetlink dump replies: bytes in, conntrack entries out.
//!
//! Nothing here allocates per entry and nothing panics on hostile input: every
//! attribute length is checked against the bytes present. The netlink header
//! walk is sock_diag's ([`walk`]); this module reads the ctnetlink body.
//!
//! Layouts (include/uapi/linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h):
//!
//! ```text
//! struct nlmsghdr (16 bytes), type = NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW
//! struct nfgenmsg  (4 bytes)  u8 family (AF_INET, AF_INET6), u8 version, be16 res_id
//! then attributes, each: u16 len (header included), u16 type (top two bits are
//! the NESTED and NET_BYTEORDER flags), value, padding to 4 bytes:
//!   1 CTA_TUPLE_ORIG   nested: 1 CTA_TUPLE_IP    nested: 1/2 V4 src/dst (4 bytes),
//!                                                        3/4 V6 src/dst (16 bytes)
//!                              2 CTA_TUPLE_PROTO nested: 1 proto num (u8),
//!                                                        2/3 src/dst port (be16)
//!   2 CTA_TUPLE_REPLY  nested, as CTA_TUPLE_ORIG
//!   3 CTA_STATUS       be32 IPS_* bits
//!   4 CTA_PROTOINFO    nested: 1 CTA_PROTOINFO_TCP nested: 1 state (u8)
//!   7 CTA_TIMEOUT      be32 seconds left
//! others (mark, use, id, counters, zone, timestamps, labels...) are skipped.
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::parse::{Flow, ParseError, walk};
use crate::conntrack::{CtEntry, CtState};
use crate::socket::{Family, canonical};
use crate::wire::{u16_be, u16_ne, u32_be};

/// `NFNL_SUBSYS_CTNETLINK`.
pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
/// `IPCTNL_MSG_CT_NEW`: the type of every entry in a dump reply.
pub const CT_NEW: u16 = NFNL_SUBSYS_CTNETLINK << 8;
/// `IPCTNL_MSG_CT_GET`: the dump request.
pub const CT_GET: u16 = NFNL_SUBSYS_CTNETLINK << 8 | 1;
/// `struct nfgenmsg`.
pub const NFGENMSG_LEN: usize = 4;
/// The smallest entry the kernel can send: nfgenmsg and one attribute header.
pub const MIN_ENTRY_LEN: usize = NFGENMSG_LEN + 4;

const NLA_TYPE_MASK: u16 = 0x3fff;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_PROTOINFO: u16 = 4;
const CTA_TIMEOUT: u16 = 7;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;

/// Counts from one datagram or a whole dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtParseStats {
    pub entries: u64,
    /// Entries of another address family (the dump asks for IPv4 and IPv6 only).
    pub other_family: u64,
    /// The kernel flagged the dump as interrupted by concurrent changes.
    pub interrupted: bool,
}

/// Walks every netlink message in `buf`, calling `on_entry` for each entry.
/// Messages whose sequence number differs from `seq` (when given) are skipped.
pub fn parse_datagram(
    buf: &[u8],
    seq: Option<u32>,
    stats: &mut CtParseStats,
    mut on_entry: impl FnMut(&CtEntry),
) -> Result<Flow, ParseError> {
    let (mut entries, mut other) = (0u64, 0u64);
    let flow = walk(buf, seq, &mut stats.interrupted, |ty, at, body| {
        if ty != CT_NEW {
            return Ok(());
        }
        match parse_entry(body, at)? {
            Some(e) => {
                entries += 1;
                on_entry(&e);
            }
            None => other += 1,
        }
        Ok(())
    });
    stats.entries += entries;
    stats.other_family += other;
    flow
}

/// One attribute: its type (flags masked off), its value, and where it starts.
struct Attr<'a> {
    kind: u16,
    value: &'a [u8],
    at: usize,
}

/// The attributes packed in `b`, which starts at byte `base` of the message.
/// A length shorter than a header or past the end is an error; the padding
/// after the last attribute may be absent.
fn attrs(b: &[u8], base: usize) -> impl Iterator<Item = Result<Attr<'_>, ParseError>> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        if off >= b.len() {
            return None;
        }
        let at = base + off;
        let bad = |what| Some(Err(ParseError::BadAttribute { offset: at, what }));
        if b.len() - off < 4 {
            off = b.len();
            return bad("attribute header cut short");
        }
        let len = u16_ne(b, off) as usize;
        let kind = u16_ne(b, off + 2) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() - off {
            off = b.len();
            return bad("attribute length out of bounds");
        }
        let value = &b[off + 4..off + len];
        off += (len + 3) & !3;
        Some(Ok(Attr { kind, value, at }))
    })
}

/// One direction's tuple.
#[derive(Default)]
struct Tuple {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    proto: Option<u8>,
    sport: u16,
    dport: u16,
}

fn addr(a: &Attr, family: Family) -> Result<IpAddr, ParseError> {
    match (family, a.value.len()) {
        (Family::V4, 4) => Ok(IpAddr::V4(Ipv4Addr::new(
            a.value[0], a.value[1], a.value[2], a.value[3],
        ))),
        (Family::V6, 16) => {
            let mut o = [0u8; 16];
            o.copy_from_slice(a.value);
            Ok(canonical(IpAddr::V6(Ipv6Addr::from(o))))
        }
        _ => Err(ParseError::BadAttribute {
            offset: a.at,
            what: "address of the wrong length for the family",
        }),
    }
}

fn port(a: &Attr) -> Result<u16, ParseError> {
    if a.value.len() < 2 {
        return Err(ParseError::BadAttribute {
            offset: a.at,
            what: "port shorter than 2 bytes",
        });
    }
    Ok(u16_be(a.value, 0))
}

fn tuple(a: &Attr, family: Family) -> Result<Tuple, ParseError> {
    let mut t = Tuple::default();
    for part in attrs(a.value, a.at + 4) {
        let part = part?;
        match part.kind {
            CTA_TUPLE_IP => {
                for ip in attrs(part.value, part.at + 4) {
                    let ip = ip?;
                    match ip.kind {
                        CTA_IP_V4_SRC | CTA_IP_V6_SRC => t.src = Some(addr(&ip, family)?),
                        CTA_IP_V4_DST | CTA_IP_V6_DST => t.dst = Some(addr(&ip, family)?),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for p in attrs(part.value, part.at + 4) {
                    let p = p?;
                    match p.kind {
                        CTA_PROTO_NUM => t.proto = p.value.first().copied(),
                        CTA_PROTO_SRC_PORT => t.sport = port(&p)?,
                        CTA_PROTO_DST_PORT => t.dport = port(&p)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(t)
}

/// The TCP state inside `CTA_PROTOINFO`, if any.
fn tcp_state(a: &Attr) -> Result<Option<u8>, ParseError> {
    for info in attrs(a.value, a.at + 4) {
        let info = info?;
        if info.kind != CTA_PROTOINFO_TCP {
            continue;
        }
        for f in attrs(info.value, info.at + 4) {
            let f = f?;
            if f.kind == CTA_PROTOINFO_TCP_STATE {
                return Ok(f.value.first().copied());
            }
        }
    }
    Ok(None)
}

fn be32(a: &Attr) -> Result<u32, ParseError> {
    if a.value.len() < 4 {
        return Err(ParseError::BadAttribute {
            offset: a.at,
            what: "32-bit value shorter than 4 bytes",
        });
    }
    Ok(u32_be(a.value, 0))
}

/// Decodes one entry message body (nfgenmsg and attributes) at byte `offset`.
/// Returns `Ok(None)` for an address family other than IPv4 and IPv6.
pub fn parse_entry(body: &[u8], offset: usize) -> Result<Option<CtEntry>, ParseError> {
    if body.len() < NFGENMSG_LEN {
        return Err(ParseError::BadAttribute {
            offset,
            what: "message shorter than struct nfgenmsg",
        });
    }
    let family = match body[0] as i32 {
        libc::AF_INET => Family::V4,
        libc::AF_INET6 => Family::V6,
        _ => return Ok(None),
    };
    let base = offset + super::parse::NLMSG_HDRLEN + NFGENMSG_LEN;
    let (mut orig, mut reply) = (None, None);
    let (mut state, mut status, mut timeout) = (None, 0u32, 0u32);
    for a in attrs(&body[NFGENMSG_LEN..], base) {
        let a = a?;
        match a.kind {
            CTA_TUPLE_ORIG => orig = Some(tuple(&a, family)?),
            CTA_TUPLE_REPLY => reply = Some(tuple(&a, family)?),
            CTA_STATUS => status = be32(&a)?,
            CTA_PROTOINFO => state = tcp_state(&a)?,
            CTA_TIMEOUT => timeout = be32(&a)?,
            _ => {}
        }
    }
    let missing = |what| ParseError::BadAttribute { offset, what };
    let orig = orig.ok_or(missing("entry without an original tuple"))?;
    let (Some(src), Some(dst), Some(proto)) = (orig.src, orig.dst, orig.proto) else {
        return Err(missing("original tuple without addresses or protocol"));
    };
    let reply = reply.unwrap_or_default();
    Ok(Some(CtEntry {
        family,
        proto,
        tcp_state: match proto {
            crate::conntrack::PROTO_TCP => state.and_then(CtState::from_kernel),
            _ => None,
        },
        src,
        dst,
        sport: orig.sport,
        dport: orig.dport,
        reply_src: reply.src.unwrap_or(dst),
        reply_dst: reply.dst.unwrap_or(src),
        status,
        timeout_s: timeout,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::PROTO_TCP;

    /// Appends one attribute (header, value, padding).
    fn nla(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
        out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }

    fn nested(kind: u16, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut inner = Vec::new();
        f(&mut inner);
        let mut out = Vec::new();
        nla(&mut out, kind | 0x8000, &inner);
        out
    }

    fn v4_tuple(kind: u16, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        nested(kind, |t| {
            t.extend(nested(CTA_TUPLE_IP, |ip| {
                nla(ip, CTA_IP_V4_SRC, &src);
                nla(ip, CTA_IP_V4_DST, &dst);
            }));
            t.extend(nested(CTA_TUPLE_PROTO, |p| {
                nla(p, CTA_PROTO_NUM, &[PROTO_TCP]);
                nla(p, CTA_PROTO_SRC_PORT, &sport.to_be_bytes());
                nla(p, CTA_PROTO_DST_PORT, &dport.to_be_bytes());
            }));
        })
    }

    /// A TCP entry message as the kernel lays it out, state `st`.
    pub fn entry_message(st: u8, seq: u32) -> Vec<u8> {
        let mut body = vec![libc::AF_INET as u8, 0, 0, 0];
        body.extend(v4_tuple(
            CTA_TUPLE_ORIG,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            40000,
            80,
        ));
        body.extend(v4_tuple(
            CTA_TUPLE_REPLY,
            [10, 0, 0, 2],
            [10, 0, 0, 1],
            80,
            40000,
        ));
        nla(&mut body, CTA_STATUS | 0x4000, &0x18eu32.to_be_bytes());
        nla(&mut body, CTA_TIMEOUT | 0x4000, &119u32.to_be_bytes());
        body.extend(nested(CTA_PROTOINFO, |p| {
            p.extend(nested(CTA_PROTOINFO_TCP, |t| {
                nla(t, CTA_PROTOINFO_TCP_STATE, &[st]);
            }))
        }));
        crate::diag::request::message(CT_NEW, 2, seq, &body)
    }

    #[test]
    fn reads_a_built_entry() {
        let m = entry_message(7, 1);
        let mut stats = CtParseStats::default();
        let mut got = Vec::new();
        let flow = parse_datagram(&m, Some(1), &mut stats, |e| got.push(*e)).unwrap();
        assert_eq!(flow, Flow::More);
        assert_eq!(stats.entries, 1);
        let e = got[0];
        assert_eq!(e.tcp_state, Some(CtState::TimeWait));
        assert_eq!(e.src.to_string(), "10.0.0.1");
        assert_eq!((e.sport, e.dport), (40000, 80));
        assert_eq!(e.reply_src.to_string(), "10.0.0.2");
        assert_eq!(e.timeout_s, 119);
        assert!(!e.is_nat());
        // Another sequence number: skipped.
        let mut stats = CtParseStats::default();
        parse_datagram(&m, Some(2), &mut stats, |_| panic!("skipped")).unwrap();
        assert_eq!(stats.entries, 0);
    }

    #[test]
    fn every_cut_is_an_error_never_a_panic() {
        let m = entry_message(3, 1);
        for cut in 0..m.len() {
            let mut b = m[..cut].to_vec();
            if b.len() >= 4 {
                // Keep nlmsg_len consistent so the cut reaches the attributes.
                let l = b.len() as u32;
                b[..4].copy_from_slice(&l.to_ne_bytes());
            }
            let mut stats = CtParseStats::default();
            let _ = parse_datagram(&b, None, &mut stats, |_| {});
        }
    }

    #[test]
    fn a_lying_attribute_length_is_refused() {
        let mut m = entry_message(3, 1);
        // The first attribute (at 16 + 4) claims more bytes than the message has.
        m[20..22].copy_from_slice(&0xfff0u16.to_ne_bytes());
        let mut stats = CtParseStats::default();
        let r = parse_datagram(&m, None, &mut stats, |_| {});
        assert!(
            matches!(r, Err(ParseError::BadAttribute { offset: 20, .. })),
            "{r:?}"
        );
    }
}
