//! The man pages as `man -l` shows them: every page has its sections, its own
//! exit status from `src/exit.rs`, and its examples as typed; no page points
//! at a page that does not exist.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use tw_inspect::exit::{CHECK_CODES, EXIT_CODES, SIGNAL_CODES};

/// Each page's text as `man -l` formats it, 100 columns wide; groff's
/// warnings must be empty.
fn pages() -> Option<BTreeMap<String, String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let Ok(run) = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&path)
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "")
            .env("LC_ALL", "C.UTF-8")
            .output()
        else {
            eprintln!("\n*** SKIP man page test: man not found (Debian package man-db) ***\n");
            return None;
        };
        assert!(run.status.success(), "man -l {}", path.display());
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(err.trim().is_empty(), "{name}: groff warns:\n{err}");
        out.insert(name, String::from_utf8(run.stdout).unwrap());
    }
    Some(out)
}

/// The lines of one section: from its heading to the next heading.
fn section<'a>(page: &'a str, heading: &str) -> Option<Vec<&'a str>> {
    let mut lines = page.lines().skip_while(|l| *l != heading);
    lines.next()?;
    Some(
        lines
            .take_while(|l| l.is_empty() || l.starts_with(' '))
            .collect(),
    )
}

/// The numbers that head the entries of an EXIT STATUS section.
fn codes(lines: &[&str]) -> Vec<u8> {
    lines
        .iter()
        .filter_map(|l| {
            let t = l.trim_start();
            let (n, rest) = t.split_once(' ')?;
            (rest.starts_with(' ') && l.len() - t.len() == 7)
                .then(|| n.parse().ok())
                .flatten()
        })
        .collect()
}

#[test]
fn every_page_has_its_sections_exit_status_and_examples() {
    let Some(pages) = pages() else { return };
    let mut cmd = tw_inspect::app::command();
    cmd.build();
    let mut want: Vec<String> = vec!["tw-inspect".into()];
    want.extend(
        cmd.get_subcommands()
            .filter(|s| s.get_name() != "help")
            .map(|s| format!("tw-inspect-{}", s.get_name())),
    );
    assert_eq!(
        pages.keys().cloned().collect::<Vec<_>>(),
        {
            let mut w = want.clone();
            w.sort();
            w
        },
        "one page per command"
    );
    for (name, page) in &pages {
        for heading in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXAMPLES",
            "EXIT STATUS",
            "SEE ALSO",
        ] {
            assert!(section(page, heading).is_some(), "{name}: no {heading}");
        }
        assert!(!page.contains("\nEXTRA"), "{name}: an EXTRA section");
        assert!(
            !page.contains("tw-inspect-help"),
            "{name}: points at tw-inspect-help(1), which does not exist"
        );
        // Every page it points at exists.
        for word in page.split(|c: char| c.is_whitespace() || c == ',') {
            if let Some(p) = word.strip_suffix("(1)") {
                assert!(pages.contains_key(p), "{name}: points at {word}");
            }
        }

        let exit = section(page, "EXIT STATUS").unwrap();
        let table = if name == "tw-inspect-check" {
            &CHECK_CODES[..]
        } else {
            &EXIT_CODES[..]
        };
        // Then the statuses of a stop by signal, on every page.
        assert_eq!(
            codes(&exit),
            table
                .iter()
                .chain(&SIGNAL_CODES)
                .map(|c| c.code)
                .collect::<Vec<_>>(),
            "{name}: EXIT STATUS\n{}",
            exit.join("\n")
        );
        // Filled text: words joined by any run of spaces.
        let text = exit
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for c in table.iter().chain(&SIGNAL_CODES) {
            let first_words: String = c.meaning.split(' ').take(3).collect::<Vec<_>>().join(" ");
            assert!(text.contains(&first_words), "{name}: {first_words:?}");
        }
        if name != "tw-inspect-check" {
            assert!(
                !text.contains("UNKNOWN") && text.contains("tw-inspect-check(1)"),
                "{name}: check's codes belong on its own page, named once: {text}"
            );
        }
    }
}

#[test]
fn examples_are_shown_as_typed() {
    let Some(pages) = pages() else { return };
    let mut cmd = tw_inspect::app::command();
    cmd.build();
    let mut checked = 0;
    for sub in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
        let Some(help) = sub.get_after_help().map(|h| h.to_string()) else {
            continue;
        };
        let name = match sub.get_name() {
            "tw-inspect" => "tw-inspect".to_string(),
            n => format!("tw-inspect-{n}"),
        };
        let examples = section(&pages[&name], "EXAMPLES").unwrap();
        let shown: Vec<&str> = examples.iter().map(|l| l.trim()).collect();
        for line in help.lines().filter(|l| l.starts_with("  ")) {
            // The command, then what it does, each on a line of its own.
            let (command, what) = match line.trim().split_once("  ") {
                Some((c, w)) => (c, Some(w.trim())),
                None => (line.trim(), None),
            };
            let at = shown.iter().position(|l| *l == command).unwrap_or_else(|| {
                panic!(
                    "{name}: example `{command}` not on a line of its own:\n{}",
                    examples.join("\n")
                )
            });
            if let Some(what) = what {
                assert!(
                    shown[at + 1..]
                        .iter()
                        .take_while(|l| !l.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(" ")
                        == what,
                    "{name}: `{command}` is not followed by `{what}`"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} examples");
    eprintln!("{checked} examples checked in {} pages", pages.len());
}
