//! Renderers: they read plain report data and write text. They never see
//! netlink or command-line types; the command picks the format and the style.

pub mod check;
pub mod conntrack;
pub mod csv;
pub mod demo;
pub mod explain;
pub mod json;
pub mod list;
pub mod prometheus;
pub mod rows;
pub mod table;
pub mod watch;
pub mod who;

/// Resolved once per run: whether to emit ANSI styling, and the width to
/// wrap long lines of prose (diagnoses) to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
    /// `None`: never wrap (a file, a pipe: one finding per line for grep).
    pub width: Option<usize>,
}

impl Style {
    pub fn new(color: bool) -> Style {
        Style { color, width: None }
    }

    /// The same style, wrapping long lines to `width` columns.
    pub fn wrapped(self, width: Option<usize>) -> Style {
        Style { width, ..self }
    }
}

/// Where long lines wrap: on a terminal, at `COLUMNS` when it is set to a
/// number, else at the terminal's width, else at 80; not at all when the
/// output is not a terminal.
pub fn wrap_width(to_terminal: bool) -> Option<usize> {
    if !to_terminal {
        return None;
    }
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0);
    let width = columns
        .or_else(|| comfy_table::Table::new().width().map(usize::from))
        .unwrap_or(80);
    // Narrower than this, a hanging indent leaves no room for words.
    Some(width.max(40))
}

/// Milliseconds as a short human duration: `850ms`, `12.3s`, `59s`.
pub fn human_ms(ms: u32) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        // u64: the kernel's u32 can be within 500 of its maximum.
        format!("{}s", (u64::from(ms) + 500) / 1000)
    }
}

/// A wait in words for tables: `850ms`, `42s`, `3m12s`, `2h05m`, `3d04h`.
pub fn human_age(ms: u32) -> String {
    let s = ms / 1000;
    match s {
        0..60 => human_ms(ms),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(human_age(850), "850ms");
        assert_eq!(human_age(42_000), "42s");
        assert_eq!(human_age(192_000), "3m12s");
        assert_eq!(human_age(7_500_000), "2h05m");
        assert_eq!(human_age(273_600_000), "3d04h");
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(human_ms(850), "850ms");
        assert_eq!(human_ms(1234), "1.2s");
        assert_eq!(human_ms(59_400), "59s");
    }
}
