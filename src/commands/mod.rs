//! One module per subcommand: each wires collect → aggregate → render.

pub mod check;
pub mod demo;
pub mod explain;
pub mod list;
pub mod watch;
pub mod who;

use crate::cli::ColorChoice;
use crate::render::Style;

impl Style {
    /// `auto` colors only a terminal, and never when `NO_COLOR` is set (non-empty).
    /// Here rather than in render/, which never sees command-line types.
    pub fn resolve(choice: ColorChoice, to_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style::new(match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => to_terminal && !no_color,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_resolution() {
        assert!(Style::resolve(ColorChoice::Always, false).color);
        assert!(!Style::resolve(ColorChoice::Never, true).color);
        assert!(!Style::resolve(ColorChoice::Auto, false).color);
    }
}
