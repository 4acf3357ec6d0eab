//! `tw-bench --containers 0,20,100`: what naming namespaces after their
//! containers costs. Starts that many podman containers (busybox `sleep`, each
//! in a network namespace of its own), then times `tw-inspect list
//! --all-netns` beside `lsns -t net` (util-linux listing the same namespaces
//! from /proc, no sockets, no names) and the shell loop one would write by
//! hand (`nsenter` + `ss` per namespace), and counts the files tw-inspect
//! opens, by kind, with strace: once, and over five `--watch` samples.
//! The naming step alone is timed in-process too (the library's resolver over
//! every namespace, fresh and then from its cache), apart from the socket
//! dumps, whose kernel-side cost depends on every socket of the host.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::{Cmd, median, run_once};

const IMAGE: &str = "localhost/tw-bench-bb:1";
const PREFIX: &str = "tw-bench-c";

/// podman's settings for a host without systemd and with hybrid cgroups.
const CONF: &str = "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n";

fn podman(args: &[&str]) -> Result<String> {
    let conf = std::env::temp_dir().join("tw-bench-containers.conf");
    std::fs::write(&conf, CONF)?;
    let out = Command::new("podman")
        .args(args)
        .env("CONTAINERS_CONF", &conf)
        .stdin(Stdio::null())
        .output()
        .context("running podman (install podman, runc and busybox-static)")?;
    if !out.status.success() {
        bail!(
            "podman {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn image() -> Result<()> {
    if podman(&["image", "inspect", IMAGE]).is_ok() {
        return Ok(());
    }
    let dir = tempfile_dir()?;
    std::fs::create_dir_all(dir.join("bin"))?;
    std::fs::copy("/bin/busybox", dir.join("bin/busybox"))
        .context("/bin/busybox (install busybox-static)")?;
    std::os::unix::fs::symlink("busybox", dir.join("bin/sleep"))?;
    let tar = Command::new("tar")
        .args(["-C", dir.to_str().unwrap(), "-c", "."])
        .output()?;
    let mut imp = Command::new("podman")
        .args(["import", "-", IMAGE])
        .env(
            "CONTAINERS_CONF",
            std::env::temp_dir().join("tw-bench-containers.conf"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    imp.stdin.take().unwrap().write_all(&tar.stdout)?;
    if !imp.wait()?.success() {
        bail!("podman import failed");
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("tw-bench-rootfs-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn ours() -> Result<Vec<String>> {
    Ok(podman(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=^{PREFIX}"),
        "--format",
        "{{.Names}}",
    ])?
    .lines()
    .map(String::from)
    .collect())
}

fn remove_all() -> Result<()> {
    let names = ours()?;
    if !names.is_empty() {
        let mut args = vec!["rm", "-f", "-t", "0"];
        args.extend(names.iter().map(String::as_str));
        podman(&args)?;
    }
    Ok(())
}

/// Files tw-inspect opened, by kind, from an strace log.
fn classify(log: &str) -> BTreeMap<&'static str, u64> {
    let mut m = BTreeMap::new();
    for l in log.lines().filter(|l| l.contains("openat(")) {
        let Some(path) = l.split('"').nth(1) else {
            continue;
        };
        let kind = if path.starts_with("/proc/") && path.ends_with("/ns/net") {
            "ns"
        } else if path.starts_with("/proc/") && path.ends_with("/cgroup") {
            "cgroup"
        } else if [
            "/var/lib/containers",
            "/var/lib/docker",
            "/run/runc",
            "/run/containerd",
            "/var/log/",
        ]
        .iter()
        .any(|p| path.starts_with(p))
        {
            "metadata"
        } else {
            "other"
        };
        *m.entry(kind).or_insert(0) += 1;
    }
    m
}

/// [`traced_once`], tried three times: others may delete a namespace mid-run.
/// Every network namespace, as `--all-netns` would find it (from /proc).
fn namespaces() -> Vec<tw_inspect::host::identity::NsInput> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(m) = std::fs::metadata(format!("/proc/{pid}/ns/net"))
            && seen.insert((m.dev(), m.ino()))
        {
            v.push(tw_inspect::host::identity::NsInput {
                dev: m.dev(),
                ino: m.ino(),
                run_netns: None,
            });
        }
    }
    v
}

/// Median times of naming every namespace with a new resolver (files read)
/// and with one that has seen them all (the `--watch` case), in ms.
fn naming(reps: usize) -> (f64, f64) {
    use tw_inspect::host::identity::Resolver;
    let ns = namespaces();
    let (mut fresh, mut cached) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let mut r = Resolver::new();
        let t = Instant::now();
        std::hint::black_box(r.resolve(&ns));
        fresh.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        std::hint::black_box(r.resolve(&ns));
        cached.push(t.elapsed().as_secs_f64() * 1e3);
    }
    (median(&fresh), median(&cached))
}

fn traced(tw: &str, args: &[&str]) -> Result<BTreeMap<&'static str, u64>> {
    let mut last = None;
    for _ in 0..3 {
        match traced_once(tw, args) {
            Ok(m) => return Ok(m),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("tried"))
}

fn traced_once(tw: &str, args: &[&str]) -> Result<BTreeMap<&'static str, u64>> {
    let log = std::env::temp_dir().join(format!("tw-bench-strace-{}", std::process::id()));
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=openat", "-o"])
        .arg(&log)
        .arg(tw)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running strace (install strace)")?;
    if !out.status.success() {
        bail!(
            "tw-inspect {} failed under strace: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = std::fs::read_to_string(&log)?;
    std::fs::remove_file(&log)?;
    Ok(classify(&text))
}

pub fn run(counts: &[usize], reps: usize, bin_dir: &Path, baseline: Option<&Path>) -> Result<()> {
    image()?;
    remove_all()?;
    let r = measure(counts, reps, bin_dir, baseline);
    // The containers go, whatever happened.
    let gone = remove_all();
    r.and(gone)
}

fn measure(counts: &[usize], reps: usize, bin_dir: &Path, baseline: Option<&Path>) -> Result<()> {
    let tw = bin_dir.join("tw-inspect").display().to_string();
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut cmds = vec![
        Cmd {
            label: "tw-inspect list --all-netns --format json",
            short: "tw-inspect",
            argv: v(&[&tw, "list", "--all-netns", "--format", "json"]),
        },
        Cmd {
            label: "lsns -t net",
            short: "lsns",
            argv: v(&["lsns", "-t", "net"]),
        },
        Cmd {
            label: "for p in $(lsns -t net -n -o PID); do nsenter -t $p -n ss -tanH state time-wait; done",
            short: "loop",
            argv: v(&[
                "sh",
                "-c",
                // A process may exit, or be protected, between lsns and nsenter.
                "for p in $(lsns -t net -n -o PID); do nsenter -t $p -n ss -tanH state time-wait 2>/dev/null; done; true",
            ]),
        },
    ];
    if let Some(b) = baseline {
        cmds.push(Cmd {
            label: "the baseline binary: list --all-netns --format json",
            short: "baseline",
            argv: v(&[
                &b.display().to_string(),
                "list",
                "--all-netns",
                "--format",
                "json",
            ]),
        });
    }
    let mut rows = Vec::new();
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    for &n in &sorted {
        let have = ours()?.len();
        let started = Instant::now();
        for i in have..n {
            podman(&[
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                &format!("{PREFIX}{i}"),
                IMAGE,
                "/bin/sleep",
                "1000000",
            ])?;
        }
        eprintln!(
            "tw-bench: {n} containers ({:.1} s to start the new ones)",
            started.elapsed().as_secs_f64()
        );
        let namespaces = Command::new("lsns")
            .args(["-t", "net", "-n"])
            .output()?
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        let mut ms: Vec<Vec<f64>> = vec![Vec::new(); cmds.len()];
        let mut rss = 0;
        let mut failed = 0;
        for _ in 0..reps {
            for (i, c) in cmds.iter().enumerate() {
                let (t, r, ok) = run_once(c)?;
                // A run that failed (a namespace deleted by someone else
                // mid-run) is counted and left out of the times.
                if !ok {
                    failed += 1;
                    continue;
                }
                ms[i].push(t);
                if i == 0 {
                    rss = rss.max(r);
                }
            }
        }
        let once = traced(&tw, &["list", "--all-netns", "--format", "json"])?;
        let watch = traced(
            &tw,
            &[
                "list",
                "--all-netns",
                "--watch",
                "0.2",
                "--count",
                "5",
                "--format",
                "json",
            ],
        )?;
        let named = naming(reps);
        rows.push((
            n,
            namespaces,
            ms.iter().map(|v| median(v)).collect::<Vec<_>>(),
            rss,
            once,
            watch,
            failed,
            named,
        ));
    }

    println!("### Naming namespaces after their containers\n");
    println!(
        "podman containers (busybox `sleep`, `--network none`: one namespace each); median of {reps} runs, alternating.\n"
    );
    let base = baseline.is_some();
    println!(
        "| containers | namespaces | {} | {} | {} |{} tw-inspect / lsns |{} peak RSS |",
        cmds[0].short,
        cmds[1].short,
        cmds[2].short,
        if base { " baseline |" } else { "" },
        if base { " tw-inspect / baseline |" } else { "" }
    );
    println!(
        "|---:|---:|---:|---:|---:|---:|---:|{}",
        if base { "---:|---:|" } else { "" }
    );
    for (n, ns, m, rss, _, _, _, _) in &rows {
        let (b, r) = match base {
            true => (
                format!(" {:.1} ms |", m[3]),
                format!(" {:.2} |", m[0] / m[3]),
            ),
            false => (String::new(), String::new()),
        };
        println!(
            "| {n} | {ns} | {:.1} ms | {:.1} ms | {:.1} ms |{b} {:.2} |{r} {:.1} MiB |",
            m[0],
            m[1],
            m[2],
            m[0] / m[1],
            *rss as f64 / 1024.0
        );
    }
    println!(
        "\nFiles tw-inspect opens (strace, `openat`): `ns` = /proc/PID/ns/net, `cgroup` = /proc/PID/cgroup, `metadata` = the runtimes' files.\n"
    );
    println!(
        "| containers | list: ns | cgroup | metadata | other | --watch 5 samples: ns | cgroup | metadata |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let g = |m: &BTreeMap<&str, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    for (n, _, _, _, once, watch, _, _) in &rows {
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} |",
            g(once, "ns"),
            g(once, "cgroup"),
            g(once, "metadata"),
            g(once, "other"),
            g(watch, "ns"),
            g(watch, "cgroup"),
            g(watch, "metadata"),
        );
    }
    println!(
        "\nThe naming step alone (in-process: the library's resolver over every namespace, median of {reps}):\n"
    );
    println!(
        "| containers | namespaces | first run (files read) | again (from the cache, as --watch) |"
    );
    println!("|---:|---:|---:|---:|");
    for (n, ns, _, _, _, _, _, (fresh, cached)) in &rows {
        println!("| {n} | {ns} | {fresh:.2} ms | {cached:.3} ms |");
    }
    let failed: usize = rows.iter().map(|r| r.6).sum();
    if failed > 0 {
        println!(
            "\n{failed} run(s) failed and are left out of the times (namespaces deleted by others mid-run)."
        );
    }
    println!("\nCommands:\n");
    for c in &cmds {
        println!("- {}: `{}`", c.short, c.label);
    }
    Ok(())
}
