//! `tw-inspect demo`: scenarios that show TCP teardown live.
