//! Repository chores. `cargo xtask gen` writes man/, completions/ and the
//! generated sections of README.md (exit codes, layout, alert rules) from the
//! program's own tables and contrib/; `cargo xtask check-gen` fails when any
//! of them is stale.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::ValueHint;
use clap::builder::PossibleValuesParser;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};
use tw_inspect::app::command;
use tw_inspect::demo::SCENARIOS;
use tw_inspect::exit::{CHECK_CODES, EXIT_CODES, SIGNAL_CODES, SIGNAL_NOTE};
use tw_inspect::state::{STATE_GROUPS, TcpState};

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
    let mut out = man_pages()?;
    for (shell, file) in [
        (Shell::Bash, "tw-inspect.bash"),
        (Shell::Zsh, "_tw-inspect"),
        (Shell::Fish, "tw-inspect.fish"),
    ] {
        out.push((
            PathBuf::from(format!("completions/{file}")),
            completion(shell),
        ));
    }
    out.push((PathBuf::from("README.md"), readme(root)?));
    Ok(out)
}

/// The command as the completions see it: the values that the program checks
/// itself (states, scenarios, explain's topics) offered as choices, so that
/// `--state <TAB>` lists them while the binary keeps its own parsing and
/// its "did you mean" messages.
fn completion_command() -> clap::Command {
    let mut states: Vec<&'static str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    states.extend(STATE_GROUPS.iter().map(|(name, _)| *name));
    let mut topics: Vec<&'static str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    topics.push("sysctls");
    let scenarios: Vec<&'static str> = SCENARIOS.iter().map(|s| s.name).collect();
    let choices = |v: Vec<&'static str>| PossibleValuesParser::new(v);
    let states_for =
        |c: clap::Command| c.mut_arg("state", |a| a.value_parser(choices(states.clone())));
    command()
        .mut_subcommand("list", states_for)
        .mut_subcommand("check", states_for)
        .mut_subcommand("explain", |c| {
            c.mut_arg("topic", |a| a.value_parser(choices(topics.clone())))
        })
        .mut_subcommand("demo", |c| {
            c.mut_arg("scenarios", |a| a.value_parser(choices(scenarios.clone())))
        })
        .mut_subcommands(|c| c.mut_args(hint))
}

/// Arguments that name a file or a path: completed with file names.
const PATH_ARGS: &[&str] = &["output", "save", "load", "netns"];

/// What the shell offers for a value that is not a choice: file names for
/// the arguments in [`PATH_ARGS`], nothing for numbers, addresses, durations
/// and thresholds (file names there would only mislead).
fn hint(a: clap::Arg) -> clap::Arg {
    let has_choices = !a.get_possible_values().is_empty();
    if !a.get_action().takes_values() || has_choices {
        a
    } else if PATH_ARGS.contains(&a.get_id().as_str()) {
        a.value_hint(ValueHint::AnyPath)
    } else {
        a.value_hint(ValueHint::Other)
    }
}

/// One shell's completion script.
fn completion(shell: Shell) -> Vec<u8> {
    let mut buf = Vec::new();
    match shell {
        Shell::Bash => return bash_completion(),
        Shell::Fish => {
            clap_complete::generate(shell, &mut completion_command(), "tw-inspect", &mut buf);
            fish_positionals(&mut buf);
        }
        _ => clap_complete::generate(shell, &mut completion_command(), "tw-inspect", &mut buf),
    }
    buf
}

/// clap_complete's bash script names the state of a subcommand one way in
/// its dispatch loop and another in its case labels when the program's name
/// has a hyphen (clap-rs/clap#6421), so nothing completed after
/// `tw-inspect list`. Generated under a name without one, the two agree;
/// then only the function's name and the `complete` line are renamed.
fn bash_completion() -> Vec<u8> {
    const STAND_IN: &str = "twinspect";
    let mut buf = Vec::new();
    let mut cmd = completion_command().name(STAND_IN).bin_name(STAND_IN);
    clap_complete::generate(Shell::Bash, &mut cmd, STAND_IN, &mut buf);
    let text = String::from_utf8(buf).expect("clap_complete writes UTF-8");
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.replace(STAND_IN, "tw_inspect");
        if line.trim_start().starts_with("complete -F ") {
            let registers = line
                .strip_suffix(" tw_inspect")
                .expect("the complete line ends with the program's name");
            out.push_str(registers);
            out.push_str(" tw-inspect");
        } else {
            out.push_str(&line);
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// Option names and page names must read as typed: never split at a hyphen.
const NO_HYPHENATION: &[u8] = b".nh\n";

/// clap_complete's fish script offers no choices for positional arguments
/// (`demo <TAB>`, `explain <TAB>`): one more line per such argument does.
fn fish_positionals(buf: &mut Vec<u8>) {
    let cmd = completion_command();
    for sub in cmd.get_subcommands() {
        for pos in sub.get_positionals() {
            let values: Vec<String> = pos
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect();
            if values.is_empty() {
                continue;
            }
            buf.extend(
                format!(
                    "complete -c tw-inspect -n \"__fish_tw_inspect_using_subcommand {}\" -f -a \"{}\"\n",
                    sub.get_name(),
                    values.join(" ")
                )
                .as_bytes(),
            );
        }
    }
}

/// The man pages: `tw-inspect(1)` and one page per command, each with its
/// examples as examples, its own exit status, and the pages it relates to.
fn man_pages() -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut cmd = command().disable_help_subcommand(true);
    // Building gives each subcommand its page name (`tw-inspect-list`) and
    // the words that call it (`tw-inspect list`) for the synopsis.
    cmd.build();
    let subs: Vec<clap::Command> = cmd.get_subcommands().cloned().collect();
    let page_names: Vec<String> = subs
        .iter()
        .map(|s| s.get_display_name().unwrap_or(s.get_name()).to_string())
        .collect();

    let mut out = Vec::new();
    let mut page = Vec::new();
    let man = Man::new(cmd.clone());
    man.render_title(&mut page)?;
    page.extend(NO_HYPHENATION);
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    let mut r = Roff::new();
    r.control("SH", ["COMMANDS"]);
    for (sub, page_name) in subs.iter().zip(&page_names) {
        r.control("TP", [])
            .text([bold(page_name.as_str()), roman("(1)")])
            .text([roman(
                sub.get_about().map(|a| a.to_string()).unwrap_or_default(),
            )]);
    }
    after_help_sections(&mut r, &cmd);
    exit_status(&mut r, false);
    r.control("SH", ["TCP STATES"]);
    for s in TcpState::ALL {
        r.control("TP", [])
            .text([bold(s.name())])
            .text([roman(tw_inspect::text::short(s))]);
    }
    see_also(&mut r, page_names.iter().map(String::as_str));
    page.extend(r.render().as_bytes());
    man.render_version_section(&mut page)?;
    out.push((PathBuf::from("man/tw-inspect.1"), page));

    let source = format!("tw-inspect {}", cmd.get_version().unwrap_or_default());
    for (sub, page_name) in subs.iter().zip(&page_names) {
        let mut page = Vec::new();
        let man = Man::new(sub.clone()).source(source.as_str());
        man.render_title(&mut page)?;
        page.extend(NO_HYPHENATION);
        man.render_name_section(&mut page)?;
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        man.render_options_section(&mut page)?;
        let mut r = Roff::new();
        if sub.get_name() == "explain" {
            explain_sections(&mut r);
        }
        after_help_sections(&mut r, sub);
        exit_status(&mut r, sub.get_name() == "check");
        let others = page_names.iter().filter(|n| *n != page_name);
        see_also(
            &mut r,
            std::iter::once("tw-inspect").chain(others.map(String::as_str)),
        );
        page.extend(r.render().as_bytes());
        out.push((PathBuf::from(format!("man/{page_name}.1")), page));
    }
    Ok(out)
}

/// The text under `--help` split for a man page: indented lines are examples,
/// shown as written (no filling); other paragraphs are notes. The exit-code
/// line is left out: EXIT STATUS gives the codes in full.
fn after_help_sections(r: &mut Roff, cmd: &clap::Command) {
    let Some(text) = cmd.get_after_help().map(|t| t.to_string()) else {
        return;
    };
    let mut examples: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut para = String::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() || line.starts_with("  ") {
            if !para.is_empty() {
                notes.push(std::mem::take(&mut para));
            }
            if line.starts_with("  ") {
                examples.push(line.trim().to_string());
            }
            continue;
        }
        if line == "Examples:" || line.starts_with("Exit codes:") {
            continue;
        }
        if !para.is_empty() {
            para.push(' ');
        }
        para.push_str(line.trim());
    }
    if !examples.is_empty() {
        // Each example is a command (never filled or hyphenated), then what
        // it does, indented below it when the help text says.
        r.control("SH", ["EXAMPLES"]);
        for line in &examples {
            let (cmd, what) = match line.find("  ") {
                Some(i) => (&line[..i], Some(line[i..].trim())),
                None => (line.as_str(), None),
            };
            r.control("PP", []).control("nf", []);
            r.text([bold(cmd)]);
            r.control("fi", []);
            if let Some(what) = what {
                r.control("RS", ["4"]).text([roman(what)]).control("RE", []);
            }
        }
    }
    if !notes.is_empty() {
        r.control("SH", ["NOTES"]);
        for para in &notes {
            r.control("PP", []).text([roman(para.as_str())]);
        }
    }
}

/// EXIT STATUS from the one table in `src/exit.rs`: `check` has the
/// monitoring-plugin codes, every other page the program's.
fn exit_status(r: &mut Roff, check: bool) {
    r.control("SH", ["EXIT STATUS"]);
    let codes: &[tw_inspect::exit::CodeDoc] = if check { &CHECK_CODES } else { &EXIT_CODES };
    if check {
        r.control("PP", []).text([roman(
            "tw-inspect check follows the monitoring-plugins convention; the status line on standard output says the same word.",
        )]);
    }
    for c in codes {
        let meaning = if check {
            format!("{}: {}", c.short, c.meaning)
        } else {
            c.meaning.to_string()
        };
        r.control("TP", [])
            .text([bold(c.code.to_string())])
            .text([roman(meaning)]);
    }
    // Every command, `check` too, exits 128 + the signal that stopped it.
    for c in &SIGNAL_CODES {
        r.control("TP", [])
            .text([bold(c.code.to_string())])
            .text([roman(format!("{} ({})", c.short, c.meaning))]);
    }
    r.control("PP", []).text([roman(SIGNAL_NOTE)]);
    if !check {
        r.control("PP", []).text([
            roman("tw-inspect check exits 0 to 3 as monitoring plugins do: see "),
            bold("tw-inspect-check"),
            roman("(1)."),
        ]);
    }
}

/// SEE ALSO: the related pages, then ss(8).
fn see_also<'a>(r: &mut Roff, pages: impl Iterator<Item = &'a str>) {
    r.control("SH", ["SEE ALSO"]);
    let mut parts = Vec::new();
    for p in pages.chain(["ss"]) {
        if !parts.is_empty() {
            parts.push(roman(", "));
        }
        parts.push(bold(p.to_string()));
        parts.push(roman(if p == "ss" { "(8)" } else { "(1)" }));
    }
    r.text(parts);
}

/// The alert rules the README shows, tested by `promtool test rules`.
const ALERT_RULES: &str = "contrib/prometheus/tw-inspect.rules.yml";

/// README.md with its generated sections written anew: each lies between
/// `<!-- generated: NAME -->` and `<!-- end generated -->`.
fn readme(root: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(root.join("README.md")).context("reading README.md")?;
    let mut text = text;
    let rules = std::fs::read_to_string(root.join(ALERT_RULES))
        .with_context(|| format!("reading {ALERT_RULES}"))?;
    for (name, body) in [
        ("exit-codes", tw_inspect::exit::markdown()),
        ("layout", layout(root)?),
        ("alert-rules", format!("```yaml\n{rules}```\n")),
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

/// The long form of every state and the settings, from the same table
/// `tw-inspect explain` prints.
fn explain_sections(r: &mut Roff) {
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
