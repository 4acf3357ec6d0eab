//! The one module allowed to use `unsafe`: system calls that nix and the standard
//! library do not wrap. Every block states why it is sound.
#![allow(unsafe_code)]
