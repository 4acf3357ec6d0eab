//! One module per subcommand: each wires collect → aggregate → render.

pub mod check;
pub mod demo;
pub mod explain;
pub mod list;
pub mod watch;
pub mod who;
