//! Renderers: they read plain report data and write text. They never see
//! netlink or command-line types; the command picks the format and the style.

pub mod check;
pub mod csv;
pub mod demo;
pub mod explain;
pub mod json;
pub mod list;
pub mod prometheus;
pub mod table;
pub mod watch;
pub mod who;

/// Resolved once per run: whether to emit ANSI styling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn new(color: bool) -> Style {
        Style { color }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_helpers() {
        assert_eq!(human_ms(850), "850ms");
        assert_eq!(human_ms(1234), "1.2s");
        assert_eq!(human_ms(59_400), "59s");
    }
}
