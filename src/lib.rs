//! tw-inspect: TCP sockets by state from the kernel's sock_diag interface.
//!
//! The pipeline reads top to bottom: `diag` collects; `socket`, `state` and
//! `filter` model; `aggregate` and `diagnose` compute; `report` and `render` print.
//! Only what the benchmark, the fuzz targets, xtask and the integration tests
//! use is public, so the compiler reports code that nothing uses.
#![deny(unsafe_code)]
// Output goes through handles whose errors are handled (a closed pipe, a full
// disk, a closed stderr), never through the printing macros, which panic.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod app;
mod cli;
mod commands;
pub mod conntrack;
pub mod diag;
mod escape;
pub mod exit;
mod ffi;
pub mod filter;
pub mod host;
mod output;
mod plan;
mod signals;
pub mod socket;
mod sort;
pub mod state;
mod wire;

pub mod aggregate;
mod diagnose;
mod report;
mod sample;
pub mod snapshot;
pub mod text;
pub mod threshold;

mod render;
/// Socket rows as `list --sockets` writes them, for the allocation test.
pub use render::rows;

pub mod demo;
mod trace;
