//! Least privilege: `list` (and `explain`) work for an ordinary user, the
//! binary is not setuid, and `unsafe` code lives in src/ffi.rs only.
//!
//! When the tests run as root, the binary runs as `nobody` through
//! `setpriv --reuid=65534 --regid=65534 --clear-groups` (no capabilities
//! survive the uid change). As any other user, it simply runs as that user.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOBODY: u32 = 65534;
static SETPRIV_UID: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("--reuid={NOBODY}"));
static SETPRIV_GID: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("--regid={NOBODY}"));

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A copy of the binary in a directory every user can traverse (the build
/// tree may sit under a private home directory).
fn public_binary() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("tw-inspect");
    std::fs::copy(env!("CARGO_BIN_EXE_tw-inspect"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, bin)
}

/// The binary as an unprivileged user: `nobody` when we are root.
fn unprivileged(bin: &Path, args: &[&str]) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            SETPRIV_UID.as_str(),
            SETPRIV_GID.as_str(),
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ]);
        c.arg(bin);
        c
    } else {
        Command::new(bin)
    };
    c.args(args)
        .current_dir(bin.parent().unwrap())
        .env_remove("TW_INSPECT_SOURCE");
    c
}

fn run_unprivileged(bin: &Path, args: &[&str]) -> Output {
    unprivileged(bin, args).output().unwrap()
}

#[test]
fn setpriv_really_drops_root() {
    if !is_root() {
        return;
    }
    let out = Command::new("setpriv")
        .args([
            SETPRIV_UID.as_str(),
            SETPRIV_GID.as_str(),
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .args(["sh", "-c", "id -u; grep CapEff /proc/self/status"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("{NOBODY}\n")), "{text}");
    assert!(text.contains("CapEff:\t0000000000000000"), "{text}");
}

#[test]
fn list_works_unprivileged() {
    let (_dir, bin) = public_binary();
    // A socket owned by root: sock_diag shows every socket of the namespace
    // to every user, so nobody sees it too.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();

    let table = run_unprivileged(&bin, &["list"]);
    assert!(table.status.success(), "{table:?}");
    assert!(
        table.stderr.is_empty(),
        "no warning, no fallback: {}",
        String::from_utf8_lossy(&table.stderr)
    );
    assert!(
        String::from_utf8(table.stdout)
            .unwrap()
            .to_lowercase()
            .contains("listen")
    );

    let json = run_unprivileged(
        &bin,
        &[
            "list",
            "--sockets",
            "--format",
            "json",
            "--local-port",
            &port,
        ],
    );
    assert!(json.status.success(), "{json:?}");
    assert!(
        json.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["source"], "netlink", "sock_diag needs no privilege");
    let socks = v["sockets"].as_array().unwrap();
    assert_eq!(socks.len(), 1, "{socks:?}");
    assert_eq!(socks[0]["state"], "listening");
    assert_eq!(socks[0]["local_port"].to_string(), port);

    let csv = run_unprivileged(&bin, &["list", "--format", "csv"]);
    assert!(csv.status.success() && csv.stderr.is_empty(), "{csv:?}");

    // The /proc fallback is readable by anyone as well.
    let mut cmd = unprivileged(&bin, &["list", "--format", "json"]);
    let proc = cmd.env("TW_INSPECT_SOURCE", "proc").output().unwrap();
    assert!(proc.status.success(), "{proc:?}");
    let v: serde_json::Value = serde_json::from_slice(&proc.stdout).unwrap();
    assert_eq!(v["source"], "proc");
    drop(l);
}

#[test]
fn explain_works_unprivileged() {
    let (_dir, bin) = public_binary();
    for args in [
        &["explain"][..],
        &["explain", "time-wait"],
        &["explain", "sysctls"],
        &["explain", "--format", "json"],
    ] {
        let out = run_unprivileged(&bin, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `demo` as nobody: it runs (in a user namespace where the kernel allows one,
/// on the host loopback otherwise) and confirms the claims it can check.
#[test]
fn demo_works_unprivileged() {
    let (_dir, bin) = public_binary();
    for extra in [&[][..], &["--host"][..]] {
        let mut args = vec![
            "demo",
            "--pace",
            "0",
            "--format",
            "json",
            "active-close",
            "abort",
        ];
        args.extend_from_slice(extra);
        let out = run_unprivileged(&bin, &args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let scenarios = v["scenarios"].as_array().unwrap();
        assert_eq!(scenarios.len(), 2);
        for s in scenarios {
            assert_ne!(s["verdict"], "contradicted", "{s}");
        }
        assert_eq!(
            scenarios[1]["verdict"], "confirmed",
            "abort needs no privilege"
        );
    }
}

#[test]
fn binary_is_not_setuid_or_setgid() {
    let mode = std::fs::metadata(env!("CARGO_BIN_EXE_tw-inspect"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o6000, 0, "mode {mode:o}");
}

/// `unsafe` appears in src/ffi.rs only, which is the one module allowed to
/// use it, and every unsafe block there says why it is sound.
#[test]
fn unsafe_only_in_ffi() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(
        lib.contains("#![deny(unsafe_code)]") || lib.contains("#![forbid(unsafe_code)]"),
        "lib.rs must deny unsafe code"
    );
    let mut files = Vec::new();
    collect_rs(&src, &mut files);
    assert!(files.len() > 10, "walked the tree: {files:?}");
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(&src).unwrap();
        let code_lines = text.lines().map(str::trim).filter(|l| !l.starts_with("//"));
        let unsafe_lines: Vec<&str> = code_lines.filter(|l| uses_unsafe(l)).collect();
        if rel == Path::new("ffi.rs") {
            check_safety_comments(&text);
        } else {
            assert!(
                unsafe_lines.is_empty(),
                "{}: unsafe outside src/ffi.rs: {unsafe_lines:?}",
                rel.display()
            );
            assert!(!text.contains("allow(unsafe_code)"), "{}", rel.display());
        }
    }
    let main = std::fs::read_to_string(src.join("main.rs")).unwrap();
    assert!(!main.lines().any(uses_unsafe));
}

fn uses_unsafe(line: &str) -> bool {
    [
        "unsafe {",
        "unsafe fn",
        "unsafe impl",
        "unsafe extern",
        "unsafe trait",
    ]
    .iter()
    .any(|p| line.contains(p))
}

/// Every `unsafe {` in ffi.rs has a `// SAFETY:` comment in the comment block
/// right above its statement.
fn check_safety_comments(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.contains("unsafe {") && !l.trim_start().starts_with("//") {
            // The statement may start a line above (`let rc = unsafe {`), then comments.
            let mut j = i;
            let mut found = lines[i].contains("SAFETY:");
            while j > 0 && !found {
                j -= 1;
                let t = lines[j].trim_start();
                if t.starts_with("//") {
                    found = t.contains("SAFETY:");
                } else if j + 1 < i || t.is_empty() {
                    break;
                }
            }
            assert!(
                found,
                "src/ffi.rs line {}: unsafe without // SAFETY:",
                i + 1
            );
        }
    }
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}
