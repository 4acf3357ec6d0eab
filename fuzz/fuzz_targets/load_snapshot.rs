//! Feeds arbitrary bytes to the snapshot loader as if they were a file given
//! to `--load`. It must return (Ok or an error) without panicking; a file it
//! accepts must replay, describe itself and hold metadata within its limits.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tw_inspect::filter::Query;
use tw_inspect::snapshot::{HEAD_LEN, Origin, Snapshot};
use tw_inspect::socket::SocketRecord;
use tw_inspect::state::StateSet;

fuzz_target!(|data: &[u8]| {
    let head = Snapshot::recognize(&data[..data.len().min(HEAD_LEN)]);
    // Whatever the first bytes reject, the whole file is rejected too.
    if let Ok(snap) = Snapshot::from_bytes(Path::new("fuzz"), data.to_vec()) {
        // The first bytes alone already said "read on", and what it is.
        assert_eq!(head.ok().map(is_ours), Some(is_ours(snap.origin)));
        // Every state, both families, no filter: every socket parsed is kept.
        let all = Query {
            states: StateSet::all(),
            ..Query::default()
        };
        let mut v = Vec::<SocketRecord>::new();
        let stats = snap.replay(&all, &mut v).expect("a file that loads replays");
        assert_eq!(stats.sockets, v.len() as u64);
        // The default query keeps a subset of them.
        let mut some = Vec::<SocketRecord>::new();
        snap.replay(&Query::default(), &mut some)
            .expect("a file that loads replays");
        assert!(some.len() <= v.len());
        if let Some(m) = &snap.meta {
            assert!(m.collect_ms.is_finite() && m.collect_ms >= 0.0);
            m.validate().expect("loaded metadata is valid");
        }
        let _ = snap.info();
        let _ = snap.host_facts();
    }
});

fn is_ours(o: Origin) -> bool {
    matches!(o, Origin::TwInspect(_))
}
