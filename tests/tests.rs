//! The integration tests: one crate, a module per area, helpers in `util`.
//! They run the real binary against sockets, namespaces and files the tests
//! make themselves. `alloc.rs` is apart: it installs its own global allocator.

mod util;

mod bad_input;
mod churn;
mod completions;
mod conntrack;
mod containers;
mod contrib;
mod counters;
mod demo;
mod diag_fixtures;
mod diagnose;
mod explain;
mod fallback;
mod filters;
mod flags;
mod list;
mod man;
mod monitoring;
mod nothing_lost;
mod roles;
mod root_safe;
mod snapshot;
mod stream;
mod unprivileged;
mod who;
