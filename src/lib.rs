//! tw-inspect: TCP sockets by state from the kernel's sock_diag interface.
//!
//! The pipeline reads top to bottom: `diag` collects; `socket`, `state` and
//! `filter` model; `aggregate` and `diagnose` compute; `report` and `render` print.
#![deny(unsafe_code)]

pub mod app;
pub mod cli;
pub mod commands;
pub mod diag;
pub mod exit;
pub mod ffi;
pub mod filter;
pub mod host;
pub mod output;
pub mod plan;
pub mod signals;
pub mod socket;
pub mod state;

pub mod aggregate;
pub mod diagnose;
pub mod report;
pub mod sample;
pub mod snapshot;
pub mod text;
pub mod threshold;

pub mod render;

pub mod demo;
pub mod trace;
