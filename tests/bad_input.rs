//! Wrong invocations, table-driven: every one exits with its documented code
//! (2 usage, 1 runtime failure; `check`: 3 UNKNOWN), prints exactly one line
//! on stderr that names the bad value, never panics, and writes nothing to
//! stdout or to disk.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Command;

pub const USAGE: i32 = 2;
const FAILURE: i32 = 1;
pub const UNKNOWN: i32 = 3;

pub struct Case {
    pub args: Vec<OsString>,
    pub code: i32,
    /// Texts the one stderr line must contain: the bad value, or the flags.
    pub names: Vec<String>,
}

fn case(args: &[&str], code: i32, names: &str) -> Case {
    both(args, code, &[names])
}

/// A case whose one line must name each of `names` (both flags of a combination).
pub fn both(args: &[&str], code: i32, names: &[&str]) -> Case {
    Case {
        args: args.iter().map(OsString::from).collect(),
        code,
        names: names.iter().map(|n| n.to_string()).collect(),
    }
}

fn raw(args: Vec<OsString>, code: i32, names: &str) -> Case {
    Case {
        args,
        code,
        names: vec![names.into()],
    }
}

fn bytes(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

fn cases(tmp: &Path) -> Vec<Case> {
    let file = tmp.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("out.txt");
    let missing_dir = tmp.join("missing").join("out.txt");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    vec![
        // --- list: states and grouping
        case(&["list", "--state", "bogus"], USAGE, "bogus"),
        case(&["list", "--state", "time-wait,nope"], USAGE, "nope"),
        // A typo gets the name that was meant (list, check, explain).
        both(
            &["list", "--state", "time-wiat"],
            USAGE,
            &["'time-wiat'", "did you mean time-wait?"],
        ),
        both(
            &["check", "--state", "estab,clsoe-wait"],
            UNKNOWN,
            &["'clsoe-wait'", "did you mean close-wait?"],
        ),
        both(
            &["check", "-w", "time-wiat=5"],
            UNKNOWN,
            &["'time-wiat'", "did you mean time-wait?"],
        ),
        both(
            &["explain", "sysclts"],
            USAGE,
            &["'sysclts'", "did you mean sysctls?"],
        ),
        both(
            &["list", "--by", "peer-prot"],
            USAGE,
            &["'peer-prot'", "'peer-port'"],
        ),
        case(
            &["list", "--state", "time-wait,,established"],
            USAGE,
            "time-wait,,established",
        ),
        case(&["list", "--state", ""], USAGE, "''"),
        case(&["list", "--state"], USAGE, "--state"),
        case(&["list", "--by", "bogus"], USAGE, "bogus"),
        case(&["list", "--by", ""], USAGE, "--by"),
        case(&["list", "--by", "peer,port"], USAGE, "peer,port"),
        // --- list: ports
        case(&["list", "--port", "70000"], USAGE, "70000"),
        case(&["list", "--port", "65536"], USAGE, "65536"),
        case(&["list", "--port", "2000-1000"], USAGE, "2000-1000"),
        case(&["list", "--port", "-1"], USAGE, "-1"),
        case(&["list", "--local-port", "abc"], USAGE, "abc"),
        case(&["list", "--peer-port", "1-"], USAGE, "1-"),
        case(&["list", "--peer-port", ""], USAGE, "''"),
        case(&["list", "--local-port", "80-70000"], USAGE, "80-70000"),
        // Digits only: no sign, no spaces.
        case(&["list", "--port", "+80"], USAGE, "'+80'"),
        case(&["list", "--port", " 80"], USAGE, "' 80'"),
        case(&["list", "--port", "80", "--port", "1-+2"], USAGE, "'1-+2'"),
        // --- list: addresses and prefixes
        case(&["list", "--peer", "1.2.3"], USAGE, "1.2.3"),
        case(&["list", "--peer", "10.0.0.0/33"], USAGE, "33"),
        case(&["list", "--local", "::1/129"], USAGE, "129"),
        case(&["list", "--peer", "10.0.0.0/"], USAGE, "10.0.0.0/"),
        case(&["list", "--peer", "999.1.1.1"], USAGE, "999.1.1.1"),
        case(&["list", "--peer", ""], USAGE, "''"),
        case(&["list", "--local", "host.example"], USAGE, "host.example"),
        // Brackets only as one pair around an IPv6 address; lengths in digits.
        case(&["list", "--peer", "[[[::1]]]"], USAGE, "'[[[::1]]]'"),
        case(&["list", "--peer", "10.0.0.0/+8"], USAGE, "'10.0.0.0/+8'"),
        case(&["list", "--peer", "[10.0.0.1]"], USAGE, "'[10.0.0.1]'"),
        case(&["list", "--peer", "::1]"], USAGE, "'::1]'"),
        case(&["list", "--peer", "::ffff:10.0.0.0/8"], USAGE, "96-128"),
        // --- list: conflicting flags
        case(&["list", "-4", "-6"], USAGE, "--ipv6"),
        case(&["list", "-4", "--peer", "::1"], USAGE, "::1"),
        case(
            &["list", "-4", "--peer", "127.0.0.1", "--peer", "::1"],
            USAGE,
            "'::1'",
        ),
        case(&["list", "--processes"], USAGE, "--processes"),
        case(
            &["list", "--format", "prometheus", "--sockets"],
            USAGE,
            "prometheus",
        ),
        case(&["list", "--save", "a", "--load", "b"], USAGE, "--load"),
        case(
            &["list", "--netns", "x", "--all-netns"],
            USAGE,
            "--all-netns",
        ),
        case(&["list", "--count", "5"], USAGE, "--watch"),
        case(
            &["list", "--load", "x", "--all-netns"],
            USAGE,
            "--all-netns",
        ),
        // --- list: counts and formats
        case(&["list", "--top", "-1"], USAGE, "-1"),
        case(&["list", "--top", "99999999999"], USAGE, "99999999999"),
        case(&["list", "--top", "ten"], USAGE, "ten"),
        case(&["list", "--format", "xml"], USAGE, "xml"),
        case(&["list", "--format", ""], USAGE, "--format"),
        case(&["list", "--watch", "1", "--count", "-1"], USAGE, "-1"),
        // --- list: --output that cannot be written (nothing must appear)
        case(
            &["list", "--output", &p(&missing_dir)],
            FAILURE,
            &p(&missing_dir),
        ),
        case(
            &["list", "--output", &p(&under_file)],
            FAILURE,
            &p(&under_file),
        ),
        both(
            &["list", "--output", &p(tmp)],
            FAILURE,
            &[&p(tmp), "is a directory"],
        ),
        case(&["list", "--output", ""], USAGE, "--output"),
        // --- not UTF-8
        raw(
            vec!["list".into(), "--state".into(), bytes(b"time-wait\xff")],
            USAGE,
            "time-wait\\xff",
        ),
        raw(
            vec!["list".into(), "--peer".into(), bytes(b"\xc0\xa8")],
            USAGE,
            "\\xc0\\xa8",
        ),
        raw(vec![bytes(b"l\xffst")], USAGE, "l\\xffst"),
        raw(
            vec![
                "list".into(),
                "--output".into(),
                bytes(b"/nonexistent-dir/\xff"),
            ],
            FAILURE,
            "/nonexistent-dir/",
        ),
        // --- global and unknown
        case(&["--color", "sometimes", "list"], USAGE, "sometimes"),
        case(&["lsit"], USAGE, "lsit"),
        case(&["list", "--bogus"], USAGE, "--bogus"),
        case(&["list", "extra"], USAGE, "extra"),
        // --- explain
        case(&["explain", "--format", "xml"], USAGE, "xml"),
        case(&["explain", "time-wait", "extra"], USAGE, "extra"),
        case(&["explain", "--load"], USAGE, "--load"),
        // --- demo
        case(&["demo", "--count", "-5"], USAGE, "-5"),
        case(&["demo", "--count", "99999999999"], USAGE, "99999999999"),
        case(&["demo", "--format", "yaml"], USAGE, "yaml"),
        case(&["demo", "--pace"], USAGE, "--pace"),
        // --- who
        case(&["who", "--top", "-3"], USAGE, "-3"),
        case(&["who", "--format", "yaml"], USAGE, "yaml"),
        case(&["who", "--duration"], USAGE, "--duration"),
        // --- check (usage errors are UNKNOWN, 3)
        case(&["check", "-4", "-6"], UNKNOWN, "--ipv6"),
        case(&["check", "--format", "json"], UNKNOWN, "--format"),
        case(
            &["check", "--netns", "a", "--all-netns"],
            UNKNOWN,
            "--all-netns",
        ),
        case(&["check", "--bogus"], UNKNOWN, "--bogus"),
        case(&["list", "--netns", "no-such-ns"], USAGE, "no-such-ns"),
        case(&["list", "--watch", "fast"], USAGE, "fast"),
        case(&["list", "--watch", "-5"], USAGE, "-5"),
        case(&["list", "--watch", "99999h"], USAGE, "99999h"),
        case(&["check", "-w", "time-wait=abc"], UNKNOWN, "abc"),
        case(&["check", "-w", "bogus=5"], UNKNOWN, "bogus"),
        case(&["check", "-w", "time-wait=20:10"], UNKNOWN, "'20:10'"),
        case(
            &["check", "-w", "time-wait=5000", "-c", "time-wait=1000"],
            UNKNOWN,
            "contradict",
        ),
        case(
            &["check", "-w", "time-wait:port=99999=1"],
            UNKNOWN,
            "'99999'",
        ),
        case(
            &["check", "-w", "port-pressure:port=80=1"],
            UNKNOWN,
            "port= scope",
        ),
        case(&["check", "--port", "70000"], UNKNOWN, "70000"),
        case(&["check", "--netns", "no-such-ns"], UNKNOWN, "no-such-ns"),
        case(&["explain", "no-such-state"], USAGE, "no-such-state"),
        case(&["explain", ""], USAGE, "''"),
        case(&["demo", "no-such-scenario"], USAGE, "no-such-scenario"),
        case(&["demo", "--pace", "fast"], USAGE, "fast"),
        case(&["demo", "--pace", "-1s"], USAGE, "-1"),
        case(&["who", "--duration", "forever"], USAGE, "forever"),
        case(&["who", "--interval", "0"], USAGE, "0"),
        case(
            &["who", "--output", "/nonexistent-dir/who.txt"],
            FAILURE,
            "/nonexistent-dir/who.txt",
        ),
        case(
            &["list", "--by", "process", "--trace", "soon"],
            USAGE,
            "soon",
        ),
        case(
            &["list", "--load", "/nonexistent-dir/snap"],
            FAILURE,
            "/nonexistent-dir/snap",
        ),
    ]
}

/// Runs one case in `tmp` and lists what is wrong with its outcome.
pub fn check(c: &Case, tmp: &Path) -> Result<(), String> {
    let before = listing(tmp);
    let out = Command::new(env!("CARGO_BIN_EXE_tw-inspect"))
        .args(&c.args)
        .current_dir(tmp)
        .env_remove("TW_INSPECT_SOURCE")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let who = format!("{:?}", c.args);
    let mut problems = Vec::new();
    if out.status.code() != Some(c.code) {
        problems.push(format!("exit {:?}, expected {}", out.status.code(), c.code));
    }
    if err.contains("panicked") {
        problems.push("panicked".into());
    }
    if err.lines().count() != 1 || !err.ends_with('\n') {
        problems.push(format!("stderr is not exactly one line: {err:?}"));
    }
    for name in &c.names {
        if !err.contains(name) {
            problems.push(format!("stderr does not name {name:?}: {err:?}"));
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A monitoring plugin's runner reads stdout: `check` states UNKNOWN there, in one line.
    let plugin_line = c.args.iter().any(|a| a == "check")
        && stdout.lines().count() == 1
        && stdout.starts_with("TW_INSPECT UNKNOWN - ")
        && c.names.iter().all(|n| stdout.contains(n));
    if !out.stdout.is_empty() && !plugin_line {
        problems.push(format!(
            "stdout not empty: {:?}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    if listing(tmp) != before {
        problems.push(format!("files changed: {:?} -> {:?}", before, listing(tmp)));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{who}: {}", problems.join("; ")))
    }
}

/// Every name under `dir`, recursively: a leftover temporary file shows here.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.to_string_lossy().into_owned());
        if p.is_dir() {
            out.extend(listing(&p));
        }
    }
    out.sort();
    out
}

/// Runs every case in `tmp` and fails with the list of those that went wrong.
pub fn assert_cases<'a>(cases: impl IntoIterator<Item = &'a Case>, tmp: &Path) -> usize {
    let mut n = 0;
    let failures: Vec<String> = cases
        .into_iter()
        .inspect(|_| n += 1)
        .filter_map(|c| check(c, tmp).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}

fn run(which: impl Fn(&Case) -> bool) -> usize {
    let tmp = tempfile::tempdir().unwrap();
    let all = cases(tmp.path());
    assert_cases(all.iter().filter(|c| which(c)), tmp.path())
}

#[test]
fn wrong_invocations_fail_cleanly() {
    let n = run(|_| true);
    assert!(n >= 40, "only {n} cases");
}
