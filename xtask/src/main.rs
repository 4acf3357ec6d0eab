//! Repository chores. `cargo xtask gen` writes man/, completions/ and the
//! generated sections of README.md (exit codes, layout) from the program's own
//! tables; `cargo xtask check-gen` fails when any of them is stale.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};
use tw_inspect::app::command;
use tw_inspect::exit::{CHECK_CODES, EXIT_CODES};
use tw_inspect::state::TcpState;

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repo")
        .to_path_buf();
    let res = match task.as_str() {
        "gen" => write_all(&root),
        "check-gen" => check(&root),
        _ => {
            eprintln!("usage: cargo xtask gen | check-gen");
            return ExitCode::from(2);
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every generated file: path relative to the repo, and its contents.
pub fn generated(root: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let cmd = command();
    let mut page = Vec::new();
    let man = Man::new(cmd.clone());
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend(extra_sections().render().as_bytes());
    man.render_version_section(&mut page)?;
    out.push((PathBuf::from("man/tw-inspect.1"), page));
    for sub in cmd.get_subcommands() {
        let name = format!("tw-inspect-{}", sub.get_name());
        // clap keeps names as 'static strings; a few leaked bytes in a build tool are fine.
        let static_name: &'static str = Box::leak(name.clone().into_boxed_str());
        let is_explain = sub.get_name() == "explain";
        let sub = sub.clone().name(static_name);
        let mut page = Vec::new();
        let man = Man::new(sub);
        if is_explain {
            man.render_title(&mut page)?;
            man.render_name_section(&mut page)?;
            man.render_synopsis_section(&mut page)?;
            man.render_description_section(&mut page)?;
            man.render_options_section(&mut page)?;
            page.extend(explain_sections().render().as_bytes());
            man.render_extra_section(&mut page)?;
        } else {
            man.render(&mut page)?;
        }
        out.push((PathBuf::from(format!("man/{name}.1")), page));
    }
    for (shell, file) in [
        (Shell::Bash, "tw-inspect.bash"),
        (Shell::Zsh, "_tw-inspect"),
        (Shell::Fish, "tw-inspect.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut command(), "tw-inspect", &mut buf);
        out.push((PathBuf::from(format!("completions/{file}")), buf));
    }
    out.push((PathBuf::from("README.md"), readme(root)?));
    Ok(out)
}

/// README.md with its generated sections written anew: each lies between
/// `<!-- generated: NAME -->` and `<!-- end generated -->`.
fn readme(root: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(root.join("README.md")).context("reading README.md")?;
    let mut text = text;
    for (name, body) in [
        ("exit-codes", tw_inspect::exit::markdown()),
        ("layout", layout(root)?),
    ] {
        let open = format!("<!-- generated: {name} -->\n");
        let close = "<!-- end generated -->";
        let start = text
            .find(&open)
            .with_context(|| format!("README.md has no '{}' marker", open.trim()))?
            + open.len();
        let end = start
            + text[start..]
                .find(close)
                .with_context(|| format!("README.md: '{}' is not closed", open.trim()))?;
        text.replace_range(start..end, &body);
    }
    Ok(text.into_bytes())
}

/// The first sentence of a file's `//!` documentation.
fn doc_line(path: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let para: Vec<&str> = text
        .lines()
        .map_while(|l| l.strip_prefix("//!"))
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let para = para.join(" ");
    let line = match para.find(". ") {
        Some(i) => &para[..=i],
        None => para.as_str(),
    };
    if line.is_empty() {
        bail!("{} has no //! documentation line", path.display());
    }
    Ok(line.to_string())
}

/// The tree of src/, one line per file or folder with what its documentation
/// says first, so the README's layout cannot drift from the code.
fn layout(root: &Path) -> Result<String> {
    fn walk(dir: &Path, rel: &str, depth: usize, out: &mut String) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?
            .collect::<std::io::Result<Vec<_>>>()?
            .into_iter()
            .map(|e| e.path())
            .collect();
        // Files first, then folders; each alphabetically.
        entries.sort_by_key(|p| (p.is_dir(), p.file_name().map(|n| n.to_os_string())));
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let indent = "  ".repeat(depth);
            if p.is_dir() {
                let doc = doc_line(&p.join("mod.rs"))?;
                out.push_str(&format!("{indent}{rel}{name}/  {doc}\n"));
                walk(&p, &format!("{rel}{name}/"), depth + 1, out)?;
            } else if name.ends_with(".rs") && name != "mod.rs" {
                out.push_str(&format!("{indent}{rel}{name}  {}\n", doc_line(&p)?));
            }
        }
        Ok(())
    }
    let mut out = String::from("```\n");
    walk(&root.join("src"), "", 0, &mut out)?;
    out.push_str("```\n");
    Ok(out)
}

/// EXIT STATUS and TCP STATES, from the same tables the program uses.
fn extra_sections() -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for c in &EXIT_CODES {
        r.control("TP", [])
            .text([bold(c.code.to_string())])
            .text([roman(c.meaning)]);
    }
    r.text([roman(
        "tw-inspect check follows the monitoring-plugins convention:",
    )]);
    for c in &CHECK_CODES {
        r.control("TP", [])
            .text([bold(c.code.to_string())])
            .text([roman(format!("{}: {}", c.short, c.meaning))]);
    }
    r.control("SH", ["TCP STATES"]);
    for s in TcpState::ALL {
        r.control("TP", [])
            .text([bold(s.name())])
            .text([roman(tw_inspect::text::short(s))]);
    }
    r
}

/// The long form of every state and the settings, from the same table
/// `tw-inspect explain` prints.
fn explain_sections() -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["TCP STATES IN DETAIL"]);
    for s in TcpState::ALL {
        let t = tw_inspect::text::state(s);
        r.control("SS", [s.name()]);
        r.text([roman(t.short)]);
        for (label, value) in [
            ("Who gets here: ", t.who),
            ("Waits for: ", t.waits_for),
            ("Lasts: ", t.lasts),
            ("Many of them: ", t.many),
        ] {
            r.control("TP", [])
                .text([bold(label.trim_end_matches(": "))])
                .text([roman(value)]);
        }
        for para in t.long.split("\n\n") {
            r.control("PP", []).text([roman(para)]);
        }
    }
    r.control("SH", ["SETTINGS"]);
    for k in tw_inspect::text::KNOBS.iter() {
        r.control("TP", [])
            .text([bold(format!("net.ipv4.{}", k.name))])
            .text([roman(k.about)]);
    }
    r
}

fn write_all(root: &Path) -> Result<()> {
    for (rel, bytes) in generated(root)? {
        let path = root.join(&rel);
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", rel.display());
    }
    Ok(())
}

fn check(root: &Path) -> Result<()> {
    let mut stale = Vec::new();
    for (rel, bytes) in generated(root)? {
        if std::fs::read(root.join(&rel)).ok().as_deref() != Some(&bytes[..]) {
            stale.push(rel.display().to_string());
        }
    }
    if !stale.is_empty() {
        bail!(
            "stale generated files (run `cargo xtask gen`): {}",
            stale.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        check(root).unwrap();
    }

    #[test]
    fn man_page_has_exit_codes_and_states() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let all = generated(root).unwrap();
        let page = String::from_utf8(all[0].1.clone()).unwrap();
        assert!(page.contains("EXIT STATUS") && page.contains("time\\-wait"));
        let explain = all
            .iter()
            .find(|(p, _)| p.ends_with("tw-inspect-explain.1"))
            .unwrap();
        let explain = String::from_utf8(explain.1.clone()).unwrap();
        assert!(
            explain.contains("TCP STATES IN DETAIL")
                && explain.contains("net.ipv4.tcp_max_tw_buckets")
        );
    }
}
