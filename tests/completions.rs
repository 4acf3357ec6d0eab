//! Shell completions as a user meets them: each generated script is loaded by
//! a real shell (bash; zsh and fish where installed, as `.ci/run` does) and
//! asked to complete options and their values after every subcommand.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use tw_inspect::demo::SCENARIOS;
use tw_inspect::state::{STATE_GROUPS, TcpState};

/// A command line to complete: the words typed so far, the last being the
/// word under the cursor (empty after a space), and what must be offered.
struct Case {
    words: Vec<String>,
    want: BTreeSet<String>,
    /// The offer must be exactly `want` (a value list), not only hold it.
    exact: bool,
}

fn set<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> BTreeSet<String> {
    items.into_iter().map(|s| s.as_ref().to_string()).collect()
}

fn case(words: &[&str], want: BTreeSet<String>, exact: bool) -> Case {
    Case {
        words: words.iter().map(|w| w.to_string()).collect(),
        want,
        exact,
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("completions")
        .join(name)
}

/// Every case, from the command-line definition itself: the subcommands; for
/// each subcommand its long options, each option's choices, a prefix; and the
/// values the program checks itself (states, topics, scenarios).
fn cases() -> Vec<Case> {
    let mut cmd = tw_inspect::app::command();
    cmd.build();
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut out = vec![case(&["tw-inspect", ""], set(&subs), false)];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_name();
        let longs: BTreeSet<String> = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        assert!(longs.contains("--help") && longs.contains("--color"));
        out.push(case(&["tw-inspect", name, "--"], longs.clone(), false));
        for a in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let (Some(long), values) = (a.get_long(), a.get_possible_values()) else {
                continue;
            };
            // A prefix of each option completes to it.
            let prefix = format!("--{}", &long[..long.len().min(4)]);
            let starting: BTreeSet<String> = longs
                .iter()
                .filter(|l| l.starts_with(&prefix))
                .cloned()
                .collect();
            out.push(case(&["tw-inspect", name, &prefix], starting, true));
            if !values.is_empty() {
                let values = set(values.iter().map(|v| v.get_name()));
                out.push(case(
                    &["tw-inspect", name, &format!("--{long}"), ""],
                    values,
                    true,
                ));
            }
        }
    }
    let mut states: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    states.extend(STATE_GROUPS.iter().map(|(n, _)| *n));
    for sub in ["list", "check"] {
        out.push(case(
            &["tw-inspect", sub, "--state", ""],
            set(&states),
            true,
        ));
        out.push(case(
            &["tw-inspect", sub, "--state", "time-"],
            set(["time-wait"]),
            true,
        ));
    }
    let mut topics: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    topics.push("sysctls");
    out.push(case(&["tw-inspect", "explain", ""], set(&topics), false));
    out.push(case(
        &["tw-inspect", "explain", "sys"],
        set(["sysctls"]),
        true,
    ));
    out.push(case(
        &["tw-inspect", "demo", ""],
        set(SCENARIOS.iter().map(|s| s.name)),
        false,
    ));
    out
}

/// Compares each shell's offers with the cases; returns the failures.
fn check(shell: &str, cases: &[Case], got: &[BTreeSet<String>]) {
    assert_eq!(got.len(), cases.len(), "{shell}: one answer per case");
    let mut failures = Vec::new();
    for (c, got) in cases.iter().zip(got) {
        let ok = if c.exact {
            got == &c.want
        } else {
            c.want.is_subset(got)
        };
        if !ok {
            failures.push(format!(
                "{shell}: `{}`<TAB>\n  wanted {}{:?}\n  got    {:?}",
                c.words.join(" "),
                if c.exact { "" } else { "at least " },
                c.want,
                got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{shell}: {} completions checked", cases.len());
}

fn have(shell: &str) -> bool {
    let found = Command::new(shell)
        .args(["-c", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!(
            "\n*** SKIP {shell} completion test: {shell} not found (.ci/run installs it) ***\n"
        );
    }
    found
}

const SEP: char = '\x1f';

/// bash: load the script, find the function its `complete` line registered,
/// and call it as bash's programmable completion does (COMP_WORDS, COMP_CWORD,
/// and the command, current and previous words as arguments).
const BASH_DRIVER: &str = r#"
source "$1" || exit 3
fn=$(complete -p tw-inspect) || exit 4
fn=${fn#*-F }; fn=${fn%% *}
while IFS=$'\x1f' read -r -a words; do
  unset 'words[${#words[@]}-1]'   # the END marker keeps an empty last word
  COMP_WORDS=("${words[@]}")
  COMP_CWORD=$(( ${#words[@]} - 1 ))
  COMP_LINE="${words[*]}"; COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  "$fn" tw-inspect "${words[COMP_CWORD]}" "${words[COMP_CWORD-1]}"
  (IFS=$'\x1f'; printf '%s\n' "${COMPREPLY[*]}")
done
"#;

#[test]
fn bash_completes_options_and_values_after_every_subcommand() {
    let cases = cases();
    let input: String = cases
        .iter()
        .map(|c| format!("{}{SEP}END\n", c.words.join(&SEP.to_string())))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input_file = dir.path().join("cases");
    std::fs::write(&input_file, input).unwrap();
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", BASH_DRIVER, "driver"])
        .arg(script("tw-inspect.bash"))
        .stdin(std::fs::File::open(&input_file).unwrap())
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<BTreeSet<String>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| set(l.split(SEP).filter(|w| !w.is_empty())))
        .collect();
    check("bash", &cases, &got);
}

/// fish: `complete -C LINE` prints what fish would offer, one per line, with
/// an optional tab and description.
#[test]
fn fish_completes_options_and_values_after_every_subcommand() {
    if !have("fish") {
        return;
    }
    let cases = cases();
    let mut got = Vec::new();
    // One fish for all cases; a marker line separates the answers.
    let mut prog = format!("source {}\n", script("tw-inspect.fish").display());
    for c in &cases {
        prog.push_str(&format!(
            "complete -C '{}'\necho {SEP}\n",
            c.words.join(" ").replace('\'', "\\'")
        ));
    }
    let out = Command::new("fish")
        .args(["--no-config", "-c", &prog])
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .expect("run fish");
    assert!(
        out.status.success(),
        "fish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for block in text.split(&format!("{SEP}\n")).take(cases.len()) {
        got.push(set(block
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default())
            .filter(|w| !w.is_empty())));
    }
    check("fish", &cases, &got);
}

/// zsh completes only inside its line editor: a zsh in a pseudo-terminal
/// (zsh/zpty) loads compinit with the script's directory on `fpath`, types
/// each line and a TAB, and every word the completion functions add is also
/// written to a file (a `compadd` wrapper).
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty || exit 3
compdir=$1 outdir=$2
shift 2
zpty -b z zsh -f -i
zpty -w z "unsetopt auto_list list_beep beep; fpath=(${(q)compdir} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z 'compadd() { local -a m; builtin compadd -O m "$@"; (( $#m )) && print -rl -- $m >> $TW_OUT; builtin compadd "$@" }'
# Ctrl-X drops the line after completing it (a Ctrl-U typed before the line
# editor starts would be taken by the terminal itself).
zpty -w z 'drop-line() { BUFFER=; zle .accept-line }; zle -N drop-line; bindkey "^X" drop-line'
n=0
for line in "$@"; do
  n=$((n+1))
  : > $outdir/$n
  zpty -w z "TW_OUT=${(q)outdir}/$n"
  zpty -w -n z "$line"$'\t\x18'
  zpty -w z "print marker-\$((1000+$n))"
  zpty -r -m z got "*marker-$((1000+n))*" || exit 4
done
zpty -d z
"#;

#[test]
fn zsh_completes_options_and_values_after_every_subcommand() {
    if !have("zsh") {
        return;
    }
    let cases = cases();
    let dir = tempfile::tempdir().unwrap();
    let compdir = dir.path().join("functions");
    std::fs::create_dir(&compdir).unwrap();
    std::fs::copy(script("_tw-inspect"), compdir.join("_tw-inspect")).unwrap();
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let lines: Vec<String> = cases.iter().map(|c| c.words.join(" ")).collect();
    let out = Command::new("timeout")
        .args(["120", "zsh", "-f", "-c", ZSH_DRIVER, "driver"])
        .arg(&compdir)
        .arg(&outdir)
        .args(&lines)
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .output()
        .expect("run zsh");
    assert!(
        out.status.success(),
        "zsh driver exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<BTreeSet<String>> = (1..=cases.len())
        .map(|n| {
            let text = std::fs::read_to_string(outdir.join(n.to_string())).unwrap_or_default();
            set(text.lines().filter(|w| !w.is_empty()))
        })
        .collect();
    check("zsh", &cases, &got);
}
