//! Feeds arbitrary bytes to the sock_diag parser as if the kernel had sent
//! them. It must return (Ok or an error) without panicking, and never report
//! more sockets than the bytes can hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tw_inspect::diag::parse::{INET_DIAG_MSG_LEN, NLMSG_HDRLEN, ParseStats, parse_datagram};

fuzz_target!(|data: &[u8]| {
    for seq in [None, Some(1)] {
        let mut stats = ParseStats::default();
        let mut n = 0usize;
        let _ = parse_datagram(data, seq, &mut stats, |r| {
            n += 1;
            // Records are plain values; touching every field catches any
            // uninitialised or out-of-range construction.
            std::hint::black_box(r.local.is_ipv4() ^ r.peer.is_ipv6());
        });
        assert!(n <= data.len() / (NLMSG_HDRLEN + INET_DIAG_MSG_LEN));
        assert_eq!(n as u64, stats.sockets);
    }
});
