//! Renderers: they read the report model and write text. They never see netlink types.

pub mod check;
pub mod csv;
pub mod explain;
pub mod json;
pub mod prometheus;
pub mod table;
pub mod watch;
pub mod who;

use std::io::{self, IsTerminal};

use crate::cli::ColorChoice;

/// Resolved once per run: whether to emit ANSI styling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// `auto` colors only a terminal, and never when `NO_COLOR` is set (non-empty).
    pub fn resolve(choice: ColorChoice, to_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: match choice {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => to_terminal && !no_color,
            },
        }
    }

    pub fn stdout(choice: ColorChoice) -> Style {
        Style::resolve(choice, io::stdout().is_terminal())
    }
}

/// Milliseconds as a short human duration: `850ms`, `12.3s`, `59s`.
pub fn human_ms(ms: u32) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}s", (ms + 500) / 1000)
    }
}

/// `host:port`, bracketing IPv6 hosts as ss does.
pub fn endpoint(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
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

    #[test]
    fn formatting_helpers() {
        assert_eq!(human_ms(850), "850ms");
        assert_eq!(human_ms(1234), "1.2s");
        assert_eq!(human_ms(59_400), "59s");
        assert_eq!(endpoint("::1", 80), "[::1]:80");
        assert_eq!(endpoint("10.0.0.1", 80), "10.0.0.1:80");
    }
}
