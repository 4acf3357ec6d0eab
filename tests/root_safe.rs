//! Safe to run as root from cron: files written and read, hostile names,
//! standard streams, signals and namespaces, each tried the hostile way on
//! real files, FIFOs, devices, symlinks, processes and namespaces.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::util::{bin, make_time_wait, private_netns, wait_for};

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIP: this test needs root");
    false
}

fn tw(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tw-inspect")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every name in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn temps(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.contains(".tw-inspect-") && n.ends_with(".tmp"))
        .collect()
}

/// Waits for `child` at most `limit`; kills it and fails if it takes longer.
fn finish(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{what}: still running after {limit:?}: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A control character other than the line ends of the output itself.
fn has_raw_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n')
}

// ---------------------------------------------------------------------------
// Files written: --output and --save

#[test]
fn writes_refuse_symlinks_and_special_files_and_never_block() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let victim = d.join("victim");
    fs::write(&victim, b"keep").unwrap();
    std::os::unix::fs::symlink(&victim, d.join("link")).unwrap();
    std::os::unix::fs::symlink("/dev/null", d.join("link-dev")).unwrap();
    std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling")).unwrap();
    nix::unistd::mkfifo(
        &d.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    fs::create_dir(d.join("dir")).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(d.join("sock")).unwrap();
    let mut cases: Vec<(PathBuf, &str)> = vec![
        (d.join("link"), "symbolic link"),
        (d.join("link-dev"), "symbolic link"),
        (d.join("dangling"), "symbolic link"),
        (d.join("fifo"), "a FIFO"),
        (d.join("dir"), "a directory"),
        (d.join("sock"), "a socket"),
    ];
    if nix::unistd::geteuid().is_root() {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        // /dev/null and a loop device's numbers, made here so nothing real is at risk.
        mknod(
            &d.join("chr"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            makedev(1, 3),
        )
        .unwrap();
        mknod(
            &d.join("blk"),
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o600),
            makedev(7, 250),
        )
        .unwrap();
        cases.push((d.join("chr"), "a character device"));
        cases.push((d.join("blk"), "a block device"));
    } else {
        cases.push((PathBuf::from("/dev/null"), "a character device"));
    }
    let before = names(d);
    let mut n = 0;
    for (path, what) in &cases {
        let p = path.to_str().unwrap();
        for args in [
            vec!["list", "--output", p],
            vec!["list", "--format", "prometheus", "-o", p],
            vec!["list", "--save", p],
            vec!["list", "--watch", "0.1", "--count", "2", "-o", p],
        ] {
            // A FIFO without a reader must not hang the run: a deadline.
            let out = finish(spawn(&args), Duration::from_secs(20), p);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.contains(p) && err.contains(what), "{args:?}: {err}");
            assert!(out.stdout.is_empty(), "{args:?}");
            n += 1;
        }
    }
    assert_eq!(fs::read(&victim).unwrap(), b"keep", "never written through");
    assert_eq!(names(d), before, "nothing created, nothing replaced");
    eprintln!("{n} refused writes");
}

#[test]
fn replaced_files_keep_only_permission_bits_and_new_ones_follow_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.prom");
    fs::write(&old, b"before").unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o6751)).unwrap();
    let ino = fs::metadata(&old).unwrap().ino();
    let out = tw(&[
        "list",
        "--format",
        "prometheus",
        "-o",
        old.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let m = fs::symlink_metadata(&old).unwrap();
    assert!(m.is_file());
    assert_eq!(
        m.mode() & 0o7777,
        0o751,
        "setuid/setgid dropped, the rest kept"
    );
    assert_ne!(m.ino(), ino, "a new file was renamed over the old one");
    assert!(
        fs::read_to_string(&old)
            .unwrap()
            .contains("tw_inspect_up 1")
    );

    for (umask, want) in [("022", 0o644), ("077", 0o600), ("027", 0o640)] {
        let new = dir.path().join(format!("new-{umask}.json"));
        let st = Command::new("sh")
            .args([
                "-c",
                &format!("umask {umask}; exec \"$0\" list --format json -o \"$1\""),
            ])
            .arg(bin())
            .arg(&new)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(
            fs::metadata(&new).unwrap().mode() & 0o7777,
            want,
            "umask {umask}"
        );
    }
    assert!(temps(dir.path()).is_empty());
}

/// A run killed with SIGKILL (nothing can clean up) leaves its temporary file;
/// the next run writing the same file removes it once it is a minute old. Temp
/// files of live writers, young ones and other names are left alone.
#[test]
fn temporary_files_of_killed_runs_are_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.json");
    let t = target.to_str().unwrap();
    // Caught in the act: stopped while its temporary file exists, then killed.
    let left = loop {
        let child = spawn(&["list", "--watch", "0.1", "--format", "json", "-o", t]);
        let pid = Pid::from_raw(child.id() as i32);
        let seen = wait_for(20, "a temporary file", || {
            let t = temps(dir.path());
            if !t.is_empty() {
                let _ = kill(pid, Signal::SIGSTOP);
                return Some(t);
            }
            None
        });
        kill(pid, Signal::SIGKILL).unwrap();
        let _ = finish(child, Duration::from_secs(10), "killed run");
        // It may have renamed in between: try again until one is left.
        let now = temps(dir.path());
        if now == seen {
            break now;
        }
    };
    assert_eq!(left.len(), 1);
    let stale = dir.path().join(&left[0]);
    // Young: kept.
    assert!(tw(&["list", "--format", "json", "-o", t]).status.success());
    assert!(
        stale.exists(),
        "a temporary file under a minute old is kept"
    );
    // Old, and its writer gone: removed, and said once on stderr.
    let f = fs::File::options().write(true).open(&stale).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(120))
        .unwrap();
    drop(f);
    let alive = dir.path().join(format!(
        ".out.json.tw-inspect-{}-0000abcd.tmp",
        std::process::id()
    ));
    let other = dir
        .path()
        .join(".other.json.tw-inspect-4194305-0000abcd.tmp");
    for p in [&alive, &other] {
        let f = fs::File::create(p).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(120))
            .unwrap();
    }
    let out = tw(&["list", "--format", "json", "-o", t]);
    assert!(out.status.success(), "{out:?}");
    assert!(!stale.exists(), "stale temporary file removed");
    assert!(
        text(&out.stderr).contains("left by an earlier run that was killed"),
        "{out:?}"
    );
    assert!(alive.exists() && other.exists(), "{:?}", names(dir.path()));
    let v: Value = serde_json::from_slice(&fs::read(&target).unwrap()).unwrap();
    assert!(v["total"].is_u64());
}

/// Sockets enough that a `--sockets` report takes a while to collect and
/// write, so a signal can be delivered while the temporary file exists.
fn busy_namespace() -> Vec<std::net::TcpListener> {
    let l = crate::util::listen("127.0.0.1:0");
    make_time_wait(&l, 1500);
    vec![l]
}

/// Starts `args`, stops it as soon as its temporary file appears in `dir`,
/// queues `sigs` and lets it go on. None when the run finished first.
fn signal_mid_write(args: &[&str], dir: &Path, sigs: &[Signal]) -> Option<Output> {
    assert!(temps(dir).is_empty(), "{:?}", names(dir));
    let mut child = spawn(args);
    let pid = Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "{args:?}: no temporary file seen"
        );
        if !temps(dir).is_empty() {
            kill(pid, Signal::SIGSTOP).unwrap();
            if !temps(dir).is_empty() {
                break;
            }
            // Renamed just before the stop: let it go on and look again.
            kill(pid, Signal::SIGCONT).unwrap();
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    for s in sigs {
        kill(pid, *s).unwrap();
    }
    kill(pid, Signal::SIGCONT).unwrap();
    Some(finish(child, Duration::from_secs(10), "signalled run"))
}

#[test]
fn every_stop_signal_during_a_write_removes_the_temporary_file() {
    if !private_netns(
        module_path!(),
        "every_stop_signal_during_a_write_removes_the_temporary_file",
    ) {
        return;
    }
    let _keep = busy_namespace();
    use Signal::*;
    let (mut tried, mut renamed) = (0, 0);
    for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM] {
        for flag in ["--output", "--save"] {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("out");
            let t = target.to_str().unwrap();
            let args = [
                "list",
                "--state",
                "all",
                "--sockets",
                "--format",
                "json",
                flag,
                t,
            ];
            let out = (0..20)
                .find_map(|_| signal_mid_write(&args, dir.path(), &[sig]))
                .unwrap_or_else(|| panic!("{sig} {flag}: never caught the write in progress"));
            assert_eq!(
                out.status.code(),
                Some(128 + sig as i32),
                "{sig} {flag}: {out:?}"
            );
            assert!(
                temps(dir.path()).is_empty(),
                "{sig} {flag}: {:?}",
                names(dir.path())
            );
            // Stopped inside the rename, the file is renamed before the exit:
            // then it is whole. Otherwise nothing appears.
            if target.exists() {
                let whole = match flag {
                    "--save" => tw(&["list", "--load", t]).status.success(),
                    _ => serde_json::from_slice::<Value>(&fs::read(&target).unwrap()).is_ok(),
                };
                assert!(whole, "{sig} {flag}: a half-written file appeared");
                renamed += 1;
            }
            tried += 1;
        }
    }
    eprintln!("{tried} writes interrupted ({renamed} inside the rename, whole)");
}

/// A small tmpfs mounted on a temporary directory, unmounted on drop.
struct SmallFs(tempfile::TempDir);

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        SmallFs(dir)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// A disk that fills during the write: exit 1, one line naming the file,
/// no temporary file left, and a file already at the path untouched.
#[test]
fn a_full_disk_fails_the_write_by_name_and_keeps_the_old_file() {
    if !root()
        || !private_netns(
            module_path!(),
            "a_full_disk_fails_the_write_by_name_and_keeps_the_old_file",
        )
    {
        return;
    }
    let _keep = busy_namespace();
    let fs_ = SmallFs::mount("64k");
    let dir = fs_.0.path();
    let target = dir.join("out");
    fs::write(&target, b"old\n").unwrap();
    let t = target.to_str().unwrap();
    for args in [
        vec!["list", "--sockets", "--format", "json", "-o", t],
        vec!["list", "--sockets", "--format", "csv", "-o", t],
        vec!["list", "--state", "all", "--save", t],
    ] {
        let out = tw(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(&format!("'{t}'")) && err.contains("No space left on device"),
            "{args:?}: {err}"
        );
        assert!(temps(dir).is_empty(), "{args:?}: {:?}", names(dir));
        assert_eq!(fs::read(&target).unwrap(), b"old\n", "{args:?}");
    }
}

/// `--watch --output` takes SIGTERM or SIGHUP as the end of the run: the
/// sample being written is finished, the file is whole, exit 0. A second
/// signal exits at once with 128 + signal, and still leaves no temporary file.
#[test]
fn watch_output_stops_cleanly_on_sigterm_and_sighup() {
    if !private_netns(
        module_path!(),
        "watch_output_stops_cleanly_on_sigterm_and_sighup",
    ) {
        return;
    }
    let _keep = busy_namespace();
    for sig in [Signal::SIGTERM, Signal::SIGHUP] {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("watch.json");
        let t = target.to_str().unwrap();
        let args = [
            "list",
            "--watch",
            "0.2",
            "--state",
            "all",
            "--sockets",
            "--format",
            "json",
            "-o",
            t,
        ];
        // Between two samples.
        let child = spawn(&args);
        wait_for(20, "the first sample", || target.exists().then_some(()));
        kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        let out = finish(child, Duration::from_secs(10), "watch");
        assert_eq!(out.status.code(), Some(0), "{sig}: {out:?}");
        assert!(temps(dir.path()).is_empty());
        let v: Value = serde_json::from_slice(&fs::read(&target).unwrap()).unwrap();
        assert!(v["sockets"].as_array().unwrap().len() >= 1500);
        // In the middle of writing a sample.
        fs::remove_file(&target).unwrap();
        let out = (0..20)
            .find_map(|_| signal_mid_write(&args, dir.path(), &[sig]))
            .expect("caught a sample being written");
        assert_eq!(out.status.code(), Some(0), "{sig}: {out:?}");
        assert!(temps(dir.path()).is_empty(), "{:?}", names(dir.path()));
        let v: Value = serde_json::from_slice(&fs::read(&target).unwrap()).unwrap();
        assert!(v["total"].as_u64().unwrap() >= 1500);
        // Two signals: out at once.
        let out = (0..20)
            .find_map(|_| signal_mid_write(&args, dir.path(), &[sig, Signal::SIGINT]))
            .expect("caught a sample being written");
        let code = out.status.code().unwrap();
        assert!([128 + sig as i32, 130].contains(&code), "{sig}: {out:?}");
        assert!(temps(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }
}

// ---------------------------------------------------------------------------
// Files read: --load, explain --load, --netns PATH

#[test]
fn reads_refuse_fifos_devices_and_directories_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let f = fifo.to_str().unwrap();
    let d = dir.path().to_str().unwrap();
    for (args, what) in [
        (vec!["list", "--load", f], "is a FIFO"),
        (vec!["list", "--load", "/dev/zero"], "is a character device"),
        (vec!["list", "--load", d], "is a directory"),
        (vec!["explain", "sysctls", "--load", f], "is a FIFO"),
        (
            vec!["explain", "sysctls", "--load", "/dev/urandom"],
            "is a character device",
        ),
    ] {
        let started = Instant::now();
        let out = finish(spawn(&args), Duration::from_secs(10), f);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(what) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{args:?}");
    }
    if root() {
        for (arg, what) in [
            (f, "is a FIFO"),
            ("/dev/zero", "is a device"),
            (d, "is a directory"),
        ] {
            let out = finish(
                spawn(&["list", "--netns", arg]),
                Duration::from_secs(10),
                arg,
            );
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{arg}: {err}");
            assert!(err.contains(what), "{arg}: {err}");
        }
    }
}

/// `list --load /dev/zero` under a 1 GiB address-space limit: exit 2 within
/// a second, peak RSS under 64 MiB (measured by the kernel for the child).
#[test]
fn loading_dev_zero_is_refused_quickly_in_little_memory() {
    let script = r#"
import resource, subprocess, sys, time
# Set here and inherited: without preexec_fn the child is spawned (vfork), so
# its peak RSS is tw-inspect's own, not that of a copy of this interpreter.
resource.setrlimit(resource.RLIMIT_AS, (1048576 * 1024, 1048576 * 1024))
t = time.monotonic()
p = subprocess.run([sys.argv[1], "list", "--load", "/dev/zero"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
dt = time.monotonic() - t
rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(p.returncode, dt, rss_kib, p.stderr.decode().strip())
"#;
    let out = Command::new("python3")
        .args(["-c", script, bin()])
        .output()
        .unwrap();
    let line = text(&out.stdout);
    let f: Vec<&str> = line.splitn(4, ' ').collect();
    assert_eq!(f[0], "2", "{line}");
    let secs: f64 = f[1].parse().unwrap();
    let rss_kib: u64 = f[2].parse().unwrap();
    eprintln!(
        "list --load /dev/zero: exit {}, {secs:.3} s, peak RSS {rss_kib} KiB",
        f[0]
    );
    assert!(secs < 1.0, "{line}");
    assert!(rss_kib < 64 * 1024, "{line}");
    assert!(
        f[3].contains("/dev/zero") && f[3].contains("character device"),
        "{line}"
    );
}

// ---------------------------------------------------------------------------
// Strings from outside: a process that names itself with an escape sequence

/// The name the helper gives itself: an OSC (retitles a terminal), a bell, and
/// a newline that would forge a report line. 13 bytes: comm holds 15.
const EVIL: &str = "\x1b]0;pwn\x07\n[OK]";
/// How it shows once escaped.
const SHOWN: &str = "\\x1b]0;pwn\\x07\\n[OK]";

/// A process that sets its own comm with prctl(PR_SET_NAME), holds twelve
/// CLOSE_WAIT sockets (it never closes connections its peer closed), then
/// keeps closing connections first while `who` watches. Prints its port and pid.
const HELPER: &str = r#"
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(15, ctypes.c_char_p(sys.argv[1].encode()), 0, 0, 0) == 0
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
held = []
for _ in range(12):
    c = socket.create_connection(l.getsockname()); s, _ = l.accept()
    c.close()        # the peer closes: s is now in CLOSE_WAIT and stays there
    held.append(s)
print(l.getsockname()[1], os.getpid(), flush=True)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    a = socket.create_connection(l.getsockname()); b, _ = l.accept()
    a.close(); b.close()   # we close first: FIN_WAIT1 in our name, then TIME_WAIT
    time.sleep(0.05)
sys.stdin.read()
"#;

struct Helper {
    child: Child,
    port: u16,
    pid: u32,
}

impl Helper {
    /// Starts the helper here, or with `own_netns` in a network namespace of
    /// its own (loopback up) that only it is in.
    fn start(own_netns: bool, busy_secs: u32) -> Helper {
        let mut cmd = if own_netns {
            let mut c = Command::new("unshare");
            c.args([
                "--net",
                "sh",
                "-c",
                "ip link set lo up && exec python3 \"$@\"",
                "sh",
            ]);
            c
        } else {
            Command::new("python3")
        };
        let mut child = cmd
            .args(["-c", HELPER, EVIL, &busy_secs.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = child.stdout.take().unwrap();
        let mut b = [0u8; 1];
        while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
            line.push(b[0] as char);
        }
        let mut f = line.split_whitespace();
        let port = f.next().expect("helper's port").parse().unwrap();
        let pid = f.next().expect("helper's pid").parse().unwrap();
        assert_eq!(
            fs::read(format!("/proc/{pid}/comm")).unwrap(),
            format!("{EVIL}\n").into_bytes(),
            "the kernel keeps the name as set"
        );
        Helper { child, port, pid }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Table, CSV and Prometheus show the name escaped and never forge a line;
/// JSON carries it exactly.
fn assert_escaped(what: &str, out: &Output) {
    assert!(out.status.success(), "{what}: {out:?}");
    let s = text(&out.stdout);
    assert!(
        !has_raw_control(&s),
        "{what}: raw control character in {s:?}"
    );
    assert!(
        !s.lines().any(|l| l.starts_with("[OK]")),
        "{what}: a forged line: {s}"
    );
}

#[test]
fn hostile_process_names_are_escaped_in_every_format_of_list() {
    if !private_netns(
        module_path!(),
        "hostile_process_names_are_escaped_in_every_format_of_list",
    ) {
        return;
    }
    let h = Helper::start(false, 0);
    let port = h.port.to_string();
    // Diagnoses: the CLOSE_WAIT holder is named.
    let out = tw(&["list", "--state", "all"]);
    assert_escaped("list", &out);
    let t = text(&out.stdout);
    assert!(
        t.contains(&format!(
            "12 CLOSE_WAIT sockets held by {SHOWN} (pid {})",
            h.pid
        )),
        "{t}"
    );
    // -p: the owner column, table and CSV.
    for format in ["table", "csv"] {
        let out = tw(&[
            "list",
            "-p",
            "--sockets",
            "--state",
            "close-wait",
            "--format",
            format,
            "--port",
            &port,
        ]);
        assert_escaped(format, &out);
        assert!(
            text(&out.stdout).contains(SHOWN),
            "{format}: {}",
            text(&out.stdout)
        );
    }
    // JSON: exact, escaped by JSON itself.
    let out = tw(&[
        "list",
        "-p",
        "--sockets",
        "--state",
        "close-wait",
        "--format",
        "json",
        "--port",
        &port,
    ]);
    assert!(!text(&out.stdout).contains('\x1b'));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let owners: Vec<&str> = v["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["process"]["comm"].as_str())
        .collect();
    assert!(owners.contains(&EVIL), "{v}");
    let out = tw(&["list", "--state", "all", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let named = v["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["data"]["comm"] == EVIL);
    assert!(named, "{v}");
}

#[test]
fn hostile_names_are_escaped_in_who() {
    if !root() || !Path::new("/sys/kernel/tracing").exists() {
        return;
    }
    let h = Helper::start(false, 12);
    for (format, check_raw) in [("table", true), ("prometheus", true), ("json", false)] {
        let out = tw(&["who", "--duration", "2", "--format", format, "--top", "0"]);
        assert!(out.status.success(), "{format}: {out:?}");
        let s = text(&out.stdout);
        if check_raw {
            assert!(!has_raw_control(&s), "{format}: {s:?}");
            assert!(
                s.contains("\\x1b]0;pwn"),
                "{format}: the helper's closes: {s}"
            );
        } else {
            let v: Value = serde_json::from_str(&s).unwrap();
            let found = v["processes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["pid"] == h.pid && p["comm"] == EVIL);
            assert!(found, "{v}");
        }
        let err = text(&out.stderr);
        assert!(!has_raw_control(&err), "{format}: stderr {err:?}");
    }
}

/// A namespace known only through a process is labelled by its inode, and
/// the process is named beside it: in the table's heading and in JSON.
#[test]
fn hostile_names_are_escaped_in_all_netns_labels() {
    if !root() {
        return;
    }
    let h = Helper::start(true, 0);
    let inode = std::os::unix::fs::MetadataExt::ino(
        &fs::metadata(format!("/proc/{}/ns/net", h.pid)).unwrap(),
    );
    let label = format!("net:[{inode}]");
    let heading = format!(
        "Network namespace {label} (no container or /run/netns name; inode {inode}; pid {} ({SHOWN}))",
        h.pid
    );
    for format in ["table", "csv", "prometheus"] {
        // CSV rows are groups, or sockets with --sockets: the helper has sockets.
        let out = tw(&["list", "--all-netns", "--sockets", "--format", format]);
        let out = if format == "prometheus" {
            tw(&["list", "--all-netns", "--format", format])
        } else {
            out
        };
        assert_escaped(format, &out);
        let s = text(&out.stdout);
        let want = if format == "table" { &heading } else { &label };
        assert!(s.contains(want.as_str()), "{format}: no {want:?} in {s}");
    }
    let v: Value =
        serde_json::from_slice(&tw(&["list", "--all-netns", "--format", "json"]).stdout).unwrap();
    assert!(
        v["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["netns"] == label.as_str()
                && n["identity"]["process"]["comm"] == EVIL
                && n["identity"]["process"]["pid"] == h.pid),
        "{v}"
    );
}

/// Rewrites the metadata of a saved snapshot (header, JSON, sections).
fn with_metadata(file: &Path, edit: impl Fn(&mut Value)) {
    let b = fs::read(file).unwrap();
    let len = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    let mut meta: Value = serde_json::from_slice(&b[16..16 + len]).unwrap();
    edit(&mut meta);
    let json = serde_json::to_vec(&meta).unwrap();
    let mut out = b[..16].to_vec();
    out[12..16].copy_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend(json);
    out.extend(&b[16 + len..]);
    fs::write(file, out).unwrap();
}

#[test]
fn hostile_snapshot_metadata_is_escaped_and_bad_values_refused() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap");
    let s = snap.to_str().unwrap();
    assert!(tw(&["list", "--save", s]).status.success());
    with_metadata(&snap, |m| {
        m["hostname"] = "h\n\nDiagnoses:\n  [OK] all good\x1b[2J".into();
        m["kernel"] = "6.18\r\x07".into();
        m["capture"]["filter"] = serde_json::json!(["port 80\n[OK]"]);
    });
    for format in ["table", "csv", "prometheus"] {
        let out = tw(&["list", "--load", s, "--format", format]);
        assert_escaped(format, &out);
        assert!(
            !text(&out.stdout)
                .lines()
                .any(|l| l.trim_start().starts_with("[OK]")),
            "{format}: {}",
            text(&out.stdout)
        );
    }
    // The whole story stays on the snapshot's one line.
    let t = text(&tw(&["list", "--load", s]).stdout);
    let first = t.lines().next().unwrap();
    assert!(
        first.starts_with(
            "Snapshot of h\\n\\nDiagnoses:\\n  [OK] all good\\x1b[2J (kernel 6.18\\r\\x07)"
        ),
        "{t}"
    );
    assert!(first.ends_with("captured with port 80\\n[OK]"), "{first}");
    let v: Value =
        serde_json::from_slice(&tw(&["list", "--load", s, "--format", "json"]).stdout).unwrap();
    assert_eq!(
        v["snapshot"]["host"],
        "h\n\nDiagnoses:\n  [OK] all good\x1b[2J"
    );
    // Out-of-range values are refused with one line naming the field (exit 2).
    for (field, value, want) in [
        ("collect_ms", serde_json::json!(1e300), "collect_ms"),
        (
            "taken_at",
            serde_json::json!("2025-13-01T00:00:00Z"),
            "RFC 3339",
        ),
        (
            "netns_inode",
            serde_json::json!(-1),
            "metadata is not valid",
        ),
    ] {
        assert!(tw(&["list", "--save", s]).status.success());
        with_metadata(&snap, |m| m[field] = value.clone());
        for args in [
            vec!["list", "--load", s],
            vec!["explain", "sysctls", "--load", s],
        ] {
            let out = tw(&args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{field}: {err}");
            assert!(
                err.contains(want) && err.lines().count() == 1,
                "{field}: {err}"
            );
            assert!(!err.contains("panicked"));
        }
    }
}

#[test]
fn errors_quoting_hostile_values_stay_one_line() {
    let evil = "x\n[OK]\x1b[2J";
    for (args, code) in [
        (vec!["list", "--load", evil], 1),
        (vec!["list", "--state", evil], 2),
        (vec!["check", "--netns", evil], 3),
    ] {
        let out = tw(&args);
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "{args:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{args:?}: {e:?}");
        assert!(
            !has_raw_control(&e) && !has_raw_control(&o),
            "{args:?}: {e:?} {o:?}"
        );
        assert!(e.contains("x\\n[OK]\\x1b[2J"), "{args:?}: {e}");
    }
}

// ---------------------------------------------------------------------------
// Standard streams

#[test]
fn full_or_closed_streams_never_panic_and_keep_the_exit_code() {
    let full = || {
        fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let closed_pipe = || {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        Stdio::from(w)
    };
    let run = |args: &[&str], out: Stdio, err: Stdio| {
        Command::new(bin())
            .args(args)
            .stdout(out)
            .stderr(err)
            .status()
            .unwrap()
            .code()
    };
    // stdout full: a failure to write (check: UNKNOWN); closed: quiet.
    assert_eq!(run(&["check"], Stdio::from(full()), Stdio::null()), Some(3));
    assert_eq!(run(&["list"], Stdio::from(full()), Stdio::null()), Some(1));
    assert_eq!(run(&["check"], closed_pipe(), Stdio::null()), Some(0));
    assert_eq!(
        run(&["check", "-w", "total=0"], closed_pipe(), Stdio::null()),
        Some(1),
        "the verdict stays the exit code when the reader left"
    );
    // stderr full or closed: the documented code all the same.
    for err in [
        || {
            Stdio::from(
                fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
        },
        || {
            let (r, w) = nix::unistd::pipe().unwrap();
            drop(r);
            Stdio::from(w)
        },
    ] {
        assert_eq!(
            run(&["list", "--state", "bogus"], Stdio::null(), err()),
            Some(2)
        );
        assert_eq!(
            run(&["list", "--load", "/nonexistent"], Stdio::null(), err()),
            Some(1)
        );
        assert_eq!(run(&["check", "--bogus"], Stdio::null(), err()), Some(3));
        assert_eq!(run(&["lsit"], Stdio::null(), err()), Some(2));
        // A warning on a closed stderr does not stop the run.
        let st = Command::new(bin())
            .args(["list"])
            .env("TW_INSPECT_SOURCE", "proc")
            .stdout(Stdio::null())
            .stderr(err())
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(0));
    }
    // The panic-free rule is kept by the compiler: no print macros in the crate.
    let lib = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    assert!(lib.contains("#![deny(clippy::print_stdout, clippy::print_stderr)]"));
}

#[test]
fn broken_pipes_are_quiet_in_every_format_and_command() {
    let _l: Vec<_> = (0..400)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    for cmd in [
        "list --sockets --format table",
        "list --sockets --format json",
        "list --sockets --format csv",
        "list --format prometheus --top 0",
        "list --watch 0.1 --count 3 --format json",
        "list --watch 0.1 --count 3 --format csv",
        "check",
        "explain",
        "explain --format json",
        "demo --list",
    ] {
        let script = format!("set -o pipefail; \"$0\" {cmd} | head -c 1 >/dev/null");
        let out = Command::new("bash")
            .args(["-c", &script, bin()])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{cmd}: {out:?}");
        assert!(out.stderr.is_empty(), "{cmd}: {}", text(&out.stderr));
    }
}

// ---------------------------------------------------------------------------
// Namespaces

/// Named namespaces made with `ip -batch`, removed on drop.
struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    fn add(prefix: &str, n: usize) -> Namespaces {
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
        batch(&names, "add");
        Namespaces { names }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        batch(&self.names, "del");
    }
}

fn batch(names: &[String], verb: &str) {
    let mut child = Command::new("ip")
        .args(["-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    for n in names {
        writeln!(input, "netns {verb} {n}").unwrap();
    }
    drop(input);
    child.wait().unwrap();
}

#[test]
fn all_netns_needs_few_descriptors_whatever_the_number_of_namespaces() {
    if !root() {
        return;
    }
    let prefix = format!("twi13-fd-{}", std::process::id());
    let ns = Namespaces::add(&prefix, 120);
    let out = Command::new("sh")
        .args([
            "-c",
            "ulimit -n 48; exec \"$0\" list --all-netns --format json",
        ])
        .arg(bin())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let read: Vec<&str> = v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["netns"].as_str())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert_eq!(read.len(), ns.names.len(), "{}", text(&out.stderr));
}

/// A thread adding and deleting namespaces `PREFIX-0` to `PREFIX-7` in a
/// loop; stopped, and every one of them deleted, when dropped (a failing
/// test leaves none behind).
struct Churn {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
    prefix: String,
}

impl Churn {
    fn start(prefix: String) -> Churn {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (stop, prefix) = (stop.clone(), prefix.clone());
            std::thread::spawn(move || {
                let mut k = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let names: Vec<String> = (0..4)
                        .map(|i| format!("{prefix}-{}", (k + i) % 8))
                        .collect();
                    batch(&names, "add");
                    batch(&names[..2], "del");
                    k += 1;
                }
                k
            })
        };
        Churn {
            stop,
            thread: Some(thread),
            prefix,
        }
    }

    /// Stops the loop; the add/del rounds it made.
    fn stop(mut self) -> u64 {
        self.halt()
    }

    fn halt(&mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let rounds = self.thread.take().map_or(0, |t| t.join().unwrap_or(0));
        let all: Vec<String> = (0..8).map(|i| format!("{}-{i}", self.prefix)).collect();
        batch(&all, "del");
        rounds
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.halt();
    }
}

/// `ip netns add` and `del` in a loop while `--all-netns` runs again and
/// again: every run succeeds; a namespace that changed meanwhile is skipped
/// with one warning line and listed in JSON `skipped` with its reason.
#[test]
fn all_netns_survives_namespaces_added_and_deleted_meanwhile() {
    if !root() {
        return;
    }
    let prefix = format!("twi13-churn-{}", std::process::id());
    let churn = Churn::start(prefix);
    let (mut skipped, mut runs) = (0usize, 0);
    for _ in 0..40 {
        let out = tw(&["list", "--all-netns", "--format", "json"]);
        let err = text(&out.stderr);
        assert!(out.status.success(), "run {runs}: {err}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let s = v["skipped"].as_array().unwrap();
        for entry in s {
            let reason = entry["reason"].as_str().unwrap();
            assert!(
                ["gone", "not-a-namespace", "replaced"].contains(&reason),
                "{entry}"
            );
        }
        let warned = err.lines().filter(|l| l.contains("skipped:")).count();
        assert_eq!(
            warned,
            s.len(),
            "one warning line per skipped namespace: {err}"
        );
        // A process in the middle of exec(2) can refuse a look at its
        // namespace for a moment: that is the one other warning allowed.
        let other = err
            .lines()
            .filter(|l| {
                !l.contains("skipped:") && !l.contains("could not open the network namespace of")
            })
            .count();
        assert_eq!(other, 0, "nothing else on stderr: {err}");
        skipped += s.len();
        runs += 1;
    }
    // --watch finds the namespaces again every sample: the same rules, per sample.
    let out = tw(&[
        "list",
        "--all-netns",
        "--watch",
        "0.1",
        "--count",
        "10",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut watched = 0;
    for l in text(&out.stdout).lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        for entry in v["skipped"].as_array().into_iter().flatten() {
            assert!(
                entry["reason"].is_string() && entry["netns"].is_string(),
                "{entry}"
            );
            watched += 1;
        }
    }
    let rounds = churn.stop();
    eprintln!(
        "{runs} runs during {rounds} add/del rounds: {skipped} namespaces skipped; --watch: {watched} in 10 samples"
    );
}

/// Inside a user namespace the host's namespaces cannot be entered: they are
/// skipped and reported, and the namespace of our own is still read.
#[test]
fn inside_a_user_namespace_unenterable_namespaces_are_skipped() {
    if !root() {
        return;
    }
    let prefix = format!("twi13-userns-{}", std::process::id());
    let _ns = Namespaces::add(&prefix, 1);
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net"])
        .arg(bin())
        .args(["list", "--all-netns", "--format", "json"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours = format!("{prefix}-0");
    let skipped = v["skipped"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s["netns"] == ours.as_str() && s["reason"] == "permission-denied"),
        "{v}"
    );
    assert!(
        err.contains(&format!("'{ours}'")) && err.contains("permission denied"),
        "{err}"
    );
    assert!(
        !v["namespaces"].as_array().unwrap().is_empty(),
        "our own namespace is read"
    );
}
