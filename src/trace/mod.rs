//! Tracing TCP state changes through tracefs, for `who`.
