//! Tracing TCP state changes through tracefs, for `who`.
//!
//! `tracefs` manages the private instance, `format` reads the event's field
//! table, `record` parses the text records, `session` runs one recording, `attribute` turns them into
//! per-process counts and matches TIME_WAIT sockets, `render` prints.

pub mod attribute;
pub mod format;
pub mod record;
pub mod session;
pub mod tracefs;
