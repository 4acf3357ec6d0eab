//! One module per subcommand: each wires collect → aggregate → render.

pub mod list;
