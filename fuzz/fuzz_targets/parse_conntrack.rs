//! Feeds arbitrary bytes to the ctnetlink parser as if the kernel had sent
//! them. It must return (Ok or an error) without panicking, and never report
//! more entries than the bytes can hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tw_inspect::diag::conntrack_parse::{CtParseStats, MIN_ENTRY_LEN, parse_datagram};
use tw_inspect::diag::parse::NLMSG_HDRLEN;

fuzz_target!(|data: &[u8]| {
    for seq in [None, Some(1)] {
        let mut stats = CtParseStats::default();
        let mut n = 0usize;
        let _ = parse_datagram(data, seq, &mut stats, |e| {
            n += 1;
            std::hint::black_box(e.src.is_ipv4() ^ e.dst.is_ipv6());
        });
        assert!(n <= data.len() / (NLMSG_HDRLEN + MIN_ENTRY_LEN));
        assert_eq!(n as u64, stats.entries);
    }
});
