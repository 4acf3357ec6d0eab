//! `tw-bench`: times tw-inspect side by side with ss, netstat and two
//! dump-only floor clients, on TIME_WAIT sockets it makes in private network
//! namespaces.
//!
//! Run from the repository: `cargo run --release -p tw-bench` (as root).
//!
//! The parent installs what is missing, builds the release binaries, then runs
//! one child per size. Each child moves itself into a new network namespace
//! (so the namespace, its sysctls and its sockets vanish when it exits), makes
//! the sockets, times every command in alternation and prints raw samples on
//! stdout. The parent turns the samples into markdown tables.

mod containers;
mod sys;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// TIME_WAIT lasts 60 s. Sockets made first must still be there when the last
/// sample is taken, so a phase stops sampling this long after it began.
const PHASE_BUDGET: Duration = Duration::from_secs(50);
/// No round may end later than this after the first socket was made.
const LAST_SAMPLE: Duration = Duration::from_secs(58);
const ESTABLISHED_PAIRS: usize = 100;
const V4_PORTS: [u16; 4] = [80, 443, 636, 993];
const V6_PORTS: [u16; 4] = [81, 444, 637, 994];
/// IPv4 peers: 127.0.0.1 to this (the whole of 127/8 is local).
const V4_PEERS: u8 = 16;
/// IPv6 peers besides ::1, added to `lo`.
const V6_EXTRA: [&str; 7] = [
    "fd00::1", "fd00::2", "fd00::3", "fd00::4", "fd00::5", "fd00::6", "fd00::7",
];

struct Args {
    sizes: Vec<usize>,
    reps: usize,
    build: bool,
    phase: Option<usize>,
    run: Option<String>,
    bin_dir: Option<PathBuf>,
    /// `--containers 0,20,100`: the namespace-naming benchmark instead.
    containers: Option<Vec<usize>>,
    /// `--baseline BIN`: another tw-inspect to time beside (a build of an
    /// earlier commit, which names no containers).
    baseline: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        sizes: vec![10_000, 200_000, 1_000_000],
        reps: 30,
        build: true,
        phase: None,
        run: None,
        bin_dir: None,
        containers: None,
        baseline: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--sizes" => {
                a.sizes = val("--sizes")?
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse::<usize>()
                            .with_context(|| format!("--sizes: invalid number '{s}'"))
                    })
                    .collect::<Result<_>>()?
            }
            "--reps" => {
                a.reps = val("--reps")?
                    .parse()
                    .context("--reps: expected a number")?
            }
            "--no-build" => a.build = false,
            "--phase" => {
                a.phase = Some(
                    val("--phase")?
                        .parse()
                        .context("--phase: expected a number")?,
                )
            }
            "--run" => a.run = Some(val("--run")?),
            "--containers" => {
                a.containers = Some(
                    val("--containers")?
                        .split(',')
                        .map(|s| {
                            s.trim()
                                .parse::<usize>()
                                .with_context(|| format!("--containers: invalid number '{s}'"))
                        })
                        .collect::<Result<_>>()?,
                )
            }
            "--bin-dir" => a.bin_dir = Some(PathBuf::from(val("--bin-dir")?)),
            "--baseline" => a.baseline = Some(PathBuf::from(val("--baseline")?)),
            "-h" | "--help" => {
                println!(
                    "tw-bench: tw-inspect vs ss vs netstat vs dump-only clients, in private network namespaces\n\n\
                     Usage: cargo run --release -p tw-bench -- [--sizes 10000,200000,1000000] [--reps 30] [--no-build]\n\
                     \x20      cargo run --release -p tw-bench -- --containers 0,20,100 [--reps 15] [--no-build] [--baseline OLD-TW-INSPECT]\n\n\
                     Needs root. Prints markdown tables on stdout, progress on stderr."
                );
                std::process::exit(0);
            }
            other => {
                bail!(
                    "unknown argument '{other}' (valid: --sizes, --containers, --baseline, --reps, --no-build, --help)"
                )
            }
        }
    }
    if a.reps == 0 {
        bail!("--reps: must be at least 1");
    }
    Ok(a)
}

fn main() -> ExitCode {
    let res = parse_args().and_then(|a| match a.phase {
        Some(n) => phase(
            n,
            a.reps,
            a.bin_dir.as_deref().context("--phase needs --bin-dir")?,
            a.run.as_deref(),
        ),
        None if a.containers.is_some() => containers_bench(&a),
        None => match &a.run {
            // Development aid: make the sockets, run one shell command among them.
            Some(cmd) => {
                let exe = std::env::current_exe()?;
                let n = a.sizes.last().copied().unwrap_or(0);
                let bin = exe.parent().context("locating the target directory")?;
                phase(n, 1, bin, Some(cmd))
            }
            None => parent(&a),
        },
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tw-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- parent

/// `--containers`: root, the tools, the release binary, then the runs.
fn containers_bench(a: &Args) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("needs root: it starts podman containers and enters their namespaces");
    }
    ensure(&[
        ("podman", "podman"),
        ("runc", "runc"),
        ("strace", "strace"),
        ("lsns", "util-linux"),
        ("nsenter", "util-linux"),
    ])?;
    if !Path::new("/bin/busybox").exists() {
        ensure(&[("busybox-static-is-missing", "busybox-static")])?;
    }
    let exe = std::env::current_exe().context("locating tw-bench")?;
    let bin_dir = exe.parent().context("locating the target directory")?;
    if a.build {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("locating the workspace")?;
        build(root)?;
    }
    containers::run(
        a.containers.as_deref().unwrap_or(&[]),
        a.reps,
        bin_dir,
        a.baseline.as_deref(),
    )
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the Debian packages that provide missing tools.
fn ensure_tools() -> Result<()> {
    ensure(&[
        ("netstat", "net-tools"),
        ("ss", "iproute2"),
        ("ip", "iproute2"),
        ("awk", "gawk"),
    ])
}

/// Installs the package of each (command, package) whose command is missing.
fn ensure(tools: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(cmd, _)| !have(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("tw-bench: installing {}", missing.join(" "));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
    };
    if !install().is_ok_and(|s| s.success()) {
        let _ = Command::new("apt-get")
            .args(["update", "-q"])
            .stdout(Stdio::null())
            .status();
        if !install().context("running apt-get")?.success() {
            bail!("could not install {}", missing.join(" "));
        }
    }
    Ok(())
}

fn build(root: &Path) -> Result<()> {
    eprintln!("tw-bench: building release binaries");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let ok = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "--workspace", "--bins"])
        .status()
        .context("running cargo build")?
        .success();
    if !ok {
        bail!("cargo build --release failed");
    }
    Ok(())
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn read_to_string(path: &str) -> String {
    let mut s = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut s));
    s
}

/// Raw samples of one command in one phase.
#[derive(Clone, Debug, Default)]
struct Samples {
    ms: Vec<f64>,
    rss_kib: Vec<u64>,
    failures: usize,
}

impl Samples {
    fn median_ms(&self) -> f64 {
        median(&self.ms)
    }
    fn peak_rss(&self) -> u64 {
        self.rss_kib.iter().copied().max().unwrap_or(0)
    }
    /// The median of the rounds' peak RSS: steadier than the maximum for comparing sizes.
    fn median_rss(&self) -> u64 {
        let v: Vec<f64> = self.rss_kib.iter().map(|k| *k as f64).collect();
        median(&v) as u64
    }
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

struct Phase {
    size: usize,
    time_wait: (u64, u64),
    make_s: f64,
    /// The load average when the phase began.
    load: String,
    /// When the last sample ended, in seconds after the first socket was made.
    until_s: f64,
    /// Size of the snapshot `--load` reads in this phase.
    snap_bytes: u64,
    results: BTreeMap<usize, Samples>,
}

fn parent(a: &Args) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "needs root: it creates network namespaces and sets their sysctls (run it with sudo)"
        );
    }
    ensure_tools()?;
    let exe = std::env::current_exe().context("locating tw-bench")?;
    let bin_dir = exe
        .parent()
        .context("locating the target directory")?
        .to_path_buf();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("locating the workspace")?
        .to_path_buf();
    if a.build {
        build(&root)?;
    }
    for b in ["tw-inspect", "tw-floor"] {
        if !bin_dir.join(b).exists() {
            bail!(
                "{} is missing: build with `cargo build --release --workspace --bins`",
                bin_dir.join(b).display()
            );
        }
    }
    let load_before = read_to_string("/proc/loadavg");
    let started = Instant::now();
    let mut phases = Vec::new();
    let mut sizes = vec![0];
    sizes.extend(a.sizes.iter().copied().filter(|&n| n > 0));
    for &n in &sizes {
        eprintln!("tw-bench: phase with {n} TIME_WAIT sockets");
        let reps = if n == 0 { a.reps.max(30) } else { a.reps };
        let mut child = Command::new(&exe)
            .args([
                "--phase",
                &n.to_string(),
                "--reps",
                &reps.to_string(),
                "--bin-dir",
            ])
            .arg(&bin_dir)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting a benchmark phase")?;
        let mut p = Phase {
            size: n,
            time_wait: (0, 0),
            make_s: 0.0,
            snap_bytes: 0,
            until_s: 0.0,
            load: read_to_string("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            results: BTreeMap::new(),
        };
        for line in BufReader::new(child.stdout.take().context("phase stdout")?).lines() {
            let line = line?;
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["tw", a, b, s, until] => {
                    p.time_wait = (a.parse()?, b.parse()?);
                    p.make_s = s.parse()?;
                    p.until_s = until.parse()?;
                }
                ["snap", bytes] => p.snap_bytes = bytes.parse()?,
                ["sample", i, ms, rss, ok] => {
                    let s = p.results.entry(i.parse()?).or_default();
                    s.ms.push(ms.parse()?);
                    s.rss_kib.push(rss.parse()?);
                    if *ok != "1" {
                        s.failures += 1;
                    }
                }
                _ => eprintln!("{line}"),
            }
        }
        if !child.wait()?.success() {
            bail!("the phase with {n} sockets failed");
        }
        phases.push(p);
    }
    let load_after = read_to_string("/proc/loadavg");
    report(&phases, &load_before, &load_after, started.elapsed());
    Ok(())
}

// ---------------------------------------------------------------- commands

struct Cmd {
    label: &'static str,
    short: &'static str,
    argv: Vec<String>,
}

/// The snapshot a phase saves for the `--load` row.
fn snapshot_path() -> PathBuf {
    std::env::temp_dir().join(format!("tw-bench-{}.twsnap", std::process::id()))
}

fn commands(bin_dir: &Path) -> Vec<Cmd> {
    let tw = bin_dir.join("tw-inspect").display().to_string();
    let snap = snapshot_path().display().to_string();
    let floor = bin_dir.join("tw-floor").display().to_string();
    let sh = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let list = |extra: &[&str]| {
        let mut a = vec![tw.clone(), "list".to_string()];
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    vec![
        Cmd {
            label: "tw-inspect list",
            short: "summary",
            argv: list(&[]),
        },
        Cmd {
            label: "tw-inspect list --state time-wait --by peer+port",
            short: "tw-by",
            argv: list(&["--state", "time-wait", "--by", "peer+port"]),
        },
        Cmd {
            label: "tw-inspect list --sockets --format ndjson",
            short: "ndjson",
            argv: list(&["--sockets", "--format", "ndjson"]),
        },
        Cmd {
            label: "tw-inspect list --sockets --format csv",
            short: "csv",
            argv: list(&["--sockets", "--format", "csv"]),
        },
        Cmd {
            label: "tw-inspect list --sockets --format json",
            short: "json",
            argv: list(&["--sockets", "--format", "json"]),
        },
        Cmd {
            label: "tw-inspect list --sockets (table)",
            short: "table",
            argv: list(&["--sockets"]),
        },
        Cmd {
            label: "tw-inspect list --sockets --format ndjson --sort expires",
            short: "sorted",
            argv: list(&["--sockets", "--format", "ndjson", "--sort", "expires"]),
        },
        Cmd {
            label: "ss -tan state time-wait",
            short: "ss",
            argv: v(&["ss", "-tan", "state", "time-wait"]),
        },
        Cmd {
            label: "ss -tan state time-wait \\| awk '{print $4}' \\| sort \\| uniq -c",
            short: "ss|sort",
            argv: sh("ss -tan state time-wait | awk '{print $4}' | sort | uniq -c"),
        },
        Cmd {
            label: "netstat -tan",
            short: "netstat",
            argv: v(&["netstat", "-tan"]),
        },
        Cmd {
            label: "floor: dump-only client, one dump per family in sequence",
            short: "floor/fam",
            argv: v(&[&floor]),
        },
        Cmd {
            label: "floor: dump-only client, one walk for both families (tw-floor --compat)",
            short: "floor",
            argv: v(&[&floor, "--compat"]),
        },
        Cmd {
            label: "tw-inspect list --load SNAPSHOT (of this namespace, --state all)",
            short: "load",
            argv: v(&[&tw, "list", "--load", &snap]),
        },
    ]
}

const SUMMARY: usize = 0;
const NDJSON: usize = 2;
const CSV: usize = 3;
const JSON: usize = 4;
const TABLE: usize = 5;
const SS: usize = 7;
const NETSTAT: usize = 9;
/// The commands that take a good part of a second a run at 200,000 sockets
/// and seconds at a million (ss, its pipeline, netstat): timed every 5th
/// round there, and once (in the first round) at a million.
const SLOW: [usize; 3] = [SS, SS + 1, NETSTAT];
const FLOOR_FAMILY: usize = 10;
/// The reference: the least work any sock_diag client can do.
const FLOOR: usize = 11;
const LOAD: usize = 12;
/// The streaming `--sockets` formats and their targets (× the one-walk floor).
const STREAMING: [(usize, &str, f64); 4] = [
    (NDJSON, "--sockets --format ndjson", 1.8),
    (CSV, "--sockets --format csv", 1.8),
    (JSON, "--sockets --format json", 2.0),
    (TABLE, "--sockets (table)", 2.5),
];

/// Runs one command with stdout on /dev/null; wall time and peak RSS.
fn run_once(c: &Cmd) -> Result<(f64, u64, bool)> {
    let devnull = File::create("/dev/null")?;
    let start = Instant::now();
    let child = Command::new(&c.argv[0])
        .args(&c.argv[1..])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(devnull)
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", c.argv[0]))?;
    let r = sys::wait4(child.id()).context("wait4")?;
    Ok((start.elapsed().as_secs_f64() * 1e3, r.maxrss_kib, r.success))
}

// ---------------------------------------------------------------- child phase

fn sh_ok(args: &[&str]) -> Result<()> {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .with_context(|| format!("running {}", args.join(" ")))?;
    if !st.success() {
        bail!("{} failed", args.join(" "));
    }
    Ok(())
}

fn sysctl(name: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    std::fs::write(&path, value)
        .with_context(|| format!("setting {name} in the benchmark namespace"))
}

/// TIME_WAIT sockets in this namespace, from /proc/net/sockstat (both families).
fn tw_count() -> u64 {
    read_to_string("/proc/net/sockstat")
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.iter()
                .position(|x| *x == "tw")
                .and_then(|i| f.get(i + 1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

struct Server {
    listener: TcpListener,
    peers: Vec<SocketAddr>,
}

fn setup_namespace() -> Result<Vec<Server>> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
    sh_ok(&["ip", "link", "set", "lo", "up"])?;
    for a in V6_EXTRA {
        sh_ok(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{a}/128"),
            "dev",
            "lo",
            "nodad",
        ])?;
    }
    // IPv6 local routes appear a moment after `ip addr add` returns: a UDP
    // connect() does the route lookup without sending anything.
    let deadline = Instant::now() + Duration::from_secs(5);
    for a in V6_EXTRA {
        let addr = SocketAddr::new(a.parse()?, 9);
        while std::net::UdpSocket::bind("[::]:0")?.connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("{a} did not become reachable on lo");
            }
            std::thread::yield_now();
        }
    }
    sysctl("net.ipv4.tcp_tw_reuse", "0")?;
    sysctl("net.ipv4.ip_local_port_range", "1024 65535")?;
    // Room for a million and more: the namespace's own limit, not the host's.
    sysctl("net.ipv4.tcp_max_tw_buckets", "4000000")?;
    let mut servers = Vec::new();
    // The whole of 127/8 is local: IPv4 peers without adding addresses. With 96
    // destinations, a million sockets use about 10,000 ephemeral ports each.
    let v4_peers: Vec<IpAddr> = (1..=V4_PEERS)
        .map(|i| IpAddr::from([127, 0, 0, i]))
        .collect();
    let mut v6_peers: Vec<IpAddr> = vec!["::1".parse()?];
    for a in V6_EXTRA {
        v6_peers.push(a.parse()?);
    }
    for (ports, any, peers) in [
        (V4_PORTS, "0.0.0.0", &v4_peers),
        (V6_PORTS, "::", &v6_peers),
    ] {
        for port in ports {
            let any: IpAddr = any.parse()?;
            let listener = TcpListener::bind(SocketAddr::new(any, port))
                .with_context(|| format!("listening on {port}"))?;
            servers.push(Server {
                listener,
                peers: peers.iter().map(|p| SocketAddr::new(*p, port)).collect(),
            });
        }
    }
    Ok(servers)
}

/// Makes `n` TIME_WAIT sockets, spread evenly over `servers` and their peers:
/// the client closes first, the server closes after, so the client side ends in
/// TIME_WAIT on an ephemeral port.
fn make_time_wait(servers: &[&Server], n: usize) -> Result<()> {
    let dests: Vec<(SocketAddr, &TcpListener)> = servers
        .iter()
        .flat_map(|s| s.peers.iter().map(move |p| (*p, &s.listener)))
        .collect();
    for i in 0..n {
        let (addr, l) = dests[i % dests.len()];
        let c = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        let (s, _) = l.accept().context("accept")?;
        drop(c);
        drop(s);
    }
    Ok(())
}

fn phase(n: usize, reps: usize, bin_dir: &Path, run: Option<&str>) -> Result<()> {
    let servers = setup_namespace()?;
    let began = Instant::now();
    // Two threads, each with its own listeners (so accept() returns its own
    // connection): the machine has at least two cores to make sockets with.
    let threads = 2;
    std::thread::scope(|s| -> Result<()> {
        let mut hs = Vec::new();
        for t in 0..threads {
            let mine: Vec<&Server> = servers.iter().skip(t).step_by(threads).collect();
            let share = n / threads + usize::from(t < n % threads);
            hs.push(s.spawn(move || make_time_wait(&mine, share)));
        }
        for h in hs {
            h.join()
                .map_err(|_| anyhow::anyhow!("socket maker panicked"))??;
        }
        Ok(())
    })?;
    // Some ESTABLISHED pairs to keep open, and the listeners above.
    let mut established = Vec::new();
    for i in 0..ESTABLISHED_PAIRS {
        let s = &servers[i % servers.len()];
        let c = TcpStream::connect(s.peers[i % s.peers.len()])?;
        let (a, _) = s.listener.accept()?;
        established.push((c, a));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while tw_count() < n as u64 {
        if Instant::now() > deadline {
            bail!("only {} of {n} TIME_WAIT sockets appeared", tw_count());
        }
        std::thread::yield_now();
    }
    let made = began.elapsed();
    let tw_start = tw_count();
    eprintln!(
        "tw-bench: {tw_start} TIME_WAIT sockets made in {:.1} s",
        made.as_secs_f64()
    );

    if let Some(cmd) = run {
        let st = Command::new("sh")
            .args(["-c", cmd])
            .env("BIN", bin_dir)
            .status()?;
        drop(established);
        return if st.success() {
            Ok(())
        } else {
            bail!("`{cmd}` failed")
        };
    }
    // The snapshot `--load` reads: the whole table, saved once.
    let snap = snapshot_path();
    let st = Command::new(bin_dir.join("tw-inspect"))
        .args(["list", "--state", "all", "--save"])
        .arg(&snap)
        .stdout(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("saving {} failed", snap.display());
    }
    println!("snap\t{}", std::fs::metadata(&snap)?.len());
    let cmds = commands(bin_dir);
    // One unmeasured round warms the page cache and the kernel's tables. At a
    // million sockets a round takes about 10 s of the 60 s that TIME_WAIT
    // lasts, so there only tw-inspect and the floors warm up.
    for (i, c) in cmds.iter().enumerate() {
        if n < 1_000_000 || !SLOW.contains(&i) {
            run_once(c)?;
        }
    }
    let mut done = 0;
    let mut round = Duration::ZERO;
    while done < reps {
        // A round that could not end before the first sockets expire is not begun.
        if n > 0 && done > 0 && began.elapsed() + round > LAST_SAMPLE {
            eprintln!("tw-bench: stopping at {done} rounds so no TIME_WAIT socket expires mid-run");
            break;
        }
        // The next round's length: the commands it will run again.
        round = Duration::ZERO;
        for (i, c) in cmds.iter().enumerate() {
            // ss and netstat take a good part of a second a run at 200,000
            // sockets (every 5th round) and seconds at a million (one sample):
            // the rounds of the others then fit in TIME_WAIT's 60 s.
            let slow = SLOW.contains(&i) && n >= 200_000;
            let every = if n >= 1_000_000 { usize::MAX } else { 5 };
            if slow && done % every != 0 {
                continue;
            }
            let start = Instant::now();
            let (ms, rss, ok) = run_once(c)?;
            println!("sample\t{i}\t{ms:.3}\t{rss}\t{}", u8::from(ok));
            if !slow {
                round += start.elapsed();
            }
        }
        done += 1;
        if n > 0 && began.elapsed() > PHASE_BUDGET && done >= 3 {
            eprintln!("tw-bench: stopping at {done} rounds so no TIME_WAIT socket expires mid-run");
            break;
        }
    }
    let tw_end = tw_count();
    println!(
        "tw\t{tw_start}\t{tw_end}\t{:.2}\t{:.1}",
        made.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    drop(established);
    let _ = std::fs::remove_file(&snap);
    Ok(())
}

// ---------------------------------------------------------------- report

fn report(phases: &[Phase], load_before: &str, load_after: &str, took: Duration) {
    let cmds = commands(Path::new("."));
    let date = first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let kernel = first_line("uname", &["-r"]);
    let cpu = read_to_string("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = read_to_string("/proc/meminfo")
        .lines()
        .next()
        .unwrap_or("")
        .replace("MemTotal:", "")
        .trim()
        .to_string();
    println!("## tw-bench results\n");
    println!("- date: {date}; kernel {kernel}; {ncpu} × {cpu}; memory {mem}");
    println!(
        "- {} ; {}",
        first_line("ss", &["-V"]),
        first_line("netstat", &["-V"])
    );
    println!(
        "- load average before: {}; after: {}; whole run {:.0} s",
        load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        load_after
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        took.as_secs_f64()
    );
    println!(
        "- median wall time over alternating rounds; peak RSS from wait4 (largest of the rounds)\n"
    );

    for p in phases {
        let rounds = p.results.get(&0).map_or(0, |s| s.ms.len());
        if p.size == 0 {
            println!(
                "### Empty namespace ({rounds} rounds; load average {})\n",
                p.load
            );
        } else {
            println!(
                "### {} TIME_WAIT (+{} ESTABLISHED, {} LISTEN): {} at start, {} at end, made in {:.1} s, {} rounds, the last ending {:.0} s after the first socket was made; load average {}\n",
                p.size,
                2 * ESTABLISHED_PAIRS,
                V4_PORTS.len() + V6_PORTS.len(),
                p.time_wait.0,
                p.time_wait.1,
                p.make_s,
                rounds,
                p.until_s,
                p.load
            );
        }
        let m = |i| p.results.get(&i).map_or(f64::NAN, Samples::median_ms);
        let (floor, floor_family, ss) = (m(FLOOR), m(FLOOR_FAMILY), m(SS));
        println!(
            "| command | median ms | min ms | peak RSS KiB | × floor (one walk) | × floor (per family) | × ss |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (i, c) in cmds.iter().enumerate() {
            let Some(s) = p.results.get(&i) else { continue };
            let med = s.median_ms();
            let min = s.ms.iter().copied().fold(f64::INFINITY, f64::min);
            let fail = if s.failures > 0 {
                format!(" ({} failed)", s.failures)
            } else {
                String::new()
            };
            println!(
                "| `{}`{fail} | {med:.2} | {min:.2} | {} | {:.2} | {:.2} | {:.2} |",
                c.label,
                s.peak_rss(),
                med / floor,
                med / floor_family,
                med / ss
            );
        }
        println!();
    }

    let sized: Vec<&Phase> = phases.iter().filter(|p| p.size > 0).collect();
    let Some(big) = sized.iter().max_by_key(|p| p.size) else {
        return;
    };
    println!(
        "### Ratios at {} TIME_WAIT (row time ÷ column time)\n",
        big.size
    );
    let med: Vec<f64> = (0..cmds.len())
        .map(|i| big.results.get(&i).map_or(f64::NAN, Samples::median_ms))
        .collect();
    print!("| ÷ |");
    for c in &cmds {
        print!(" {} |", c.short);
    }
    println!();
    println!("|---|{}", "---:|".repeat(cmds.len()));
    for (i, c) in cmds.iter().enumerate() {
        print!("| {} |", c.short);
        for j in 0..cmds.len() {
            print!(" {:.2} |", med[i] / med[j]);
        }
        println!();
    }
    println!();

    println!("### Scaling (median ms; peak RSS KiB)\n");
    print!("| command |");
    for p in &sized {
        print!(" {} |", p.size);
    }
    let pair = scaling_pair(&sized);
    if let Some((a, b)) = pair {
        print!(" {}→{} time | {}→{} RSS |", a.size, b.size, a.size, b.size);
    }
    println!();
    println!(
        "|---|{}{}",
        "---:|".repeat(sized.len()),
        if pair.is_some() { "---:|---:|" } else { "" }
    );
    for (i, c) in cmds.iter().enumerate() {
        print!("| {} |", c.short);
        for p in &sized {
            let s = p.results.get(&i);
            print!(
                " {:.1} ms, {} KiB |",
                s.map_or(f64::NAN, Samples::median_ms),
                s.map_or(0, Samples::peak_rss)
            );
        }
        if let Some((a, b)) = pair {
            let (sa, sb) = (a.results.get(&i), b.results.get(&i));
            let t =
                sb.map_or(f64::NAN, Samples::median_ms) / sa.map_or(f64::NAN, Samples::median_ms);
            let r = sb.map_or(0, Samples::peak_rss) as f64
                / sa.map_or(1, Samples::peak_rss).max(1) as f64;
            print!(" {t:.2}× | {r:.2}× |");
        }
        println!();
    }
    println!();

    let mut checks: Vec<(String, bool)> = Vec::new();
    // The streaming targets hold at every size from 200,000 up (or at the
    // largest size when the run had none that large).
    let judged: Vec<&Phase> = match sized.iter().any(|p| p.size >= 200_000) {
        true => sized
            .iter()
            .filter(|p| p.size >= 200_000)
            .copied()
            .collect(),
        false => vec![*big],
    };
    for p in &judged {
        let m = |i: usize| p.results.get(&i).map_or(f64::NAN, Samples::median_ms);
        let rss = |i: usize| p.results.get(&i).map_or(0, Samples::peak_rss);
        let n = p.size;
        let ratio = m(SUMMARY) / m(FLOOR);
        checks.push((
            format!("{n}: summary ≤ 1.05× the one-walk floor: {ratio:.2}×"),
            ratio <= 1.05,
        ));
        for (i, what, target) in STREAMING {
            let ratio = m(i) / m(FLOOR);
            checks.push((
                format!("{n}: {what} ≤ {target}× the one-walk floor: {ratio:.2}×"),
                ratio <= target,
            ));
            let faster = m(SS) / m(i);
            checks.push((
                format!("{n}: {what} ≥ 2× faster than ss: {faster:.2}×"),
                faster >= 2.0,
            ));
            checks.push((
                format!("{n}: {what} peak RSS ≤ 8 MiB: {} KiB", rss(i)),
                rss(i) <= 8192,
            ));
        }
        checks.push((
            format!(
                "{n}: summary ≥ 4× faster than ss: {:.1}×",
                m(SS) / m(SUMMARY)
            ),
            m(SS) / m(SUMMARY) >= 4.0,
        ));
        checks.push((
            format!(
                "{n}: summary ≥ 8× faster than netstat: {:.1}×",
                m(NETSTAT) / m(SUMMARY)
            ),
            m(NETSTAT) / m(SUMMARY) >= 8.0,
        ));
        checks.push((
            format!("{n}: summary peak RSS ≤ 4 MiB: {} KiB", rss(SUMMARY)),
            rss(SUMMARY) <= 4096,
        ));
        // A snapshot is held once, as read: its size plus what `list` needs anyway.
        let file_kib = p.snap_bytes.div_ceil(1024);
        checks.push((
            format!(
                "{n}: --load peak RSS ≤ snapshot size + 8 MiB: {} KiB for a {file_kib} KiB file (+{} KiB)",
                rss(LOAD),
                rss(LOAD) as i64 - file_kib as i64
            ),
            rss(LOAD) <= file_kib + 8192,
        ));
    }
    if let Some((a, b)) = pair {
        let added = b.size.saturating_sub(a.size).max(1) as f64;
        // Peak RSS wobbles by a few pages from run to run (allocator, page
        // cache of the binary); memory that grew with sockets would show as
        // bytes per added socket.
        for (i, what, within) in std::iter::once((SUMMARY, "summary", 64))
            .chain(STREAMING.iter().map(|(i, w, _)| (*i, *w, 1024)))
        {
            let (ra, rb) = (
                a.results.get(&i).map_or(0, Samples::median_rss),
                b.results.get(&i).map_or(0, Samples::median_rss),
            );
            let per_socket = (rb as f64 - ra as f64) * 1024.0 / added;
            checks.push((
                format!(
                    "{what} RSS flat {}→{} (median of rounds, within {within} KiB): {ra} → {rb} KiB, {per_socket:+.2} bytes per added socket",
                    a.size, b.size
                ),
                rb.abs_diff(ra) <= within,
            ));
        }
        let ta = a.results.get(&SUMMARY).map_or(f64::NAN, Samples::median_ms);
        let tb = b.results.get(&SUMMARY).map_or(f64::NAN, Samples::median_ms);
        let linear = b.size as f64 / a.size as f64;
        checks.push((
            format!(
                "summary time {}→{} ≤ 1.1 × linear ({:.2}×): {:.2}×",
                a.size,
                b.size,
                1.1 * linear,
                tb / ta
            ),
            tb / ta <= 1.1 * linear,
        ));
    }
    if let Some(e) = phases.iter().find(|p| p.size == 0) {
        let t = e.results.get(&SUMMARY).map_or(f64::NAN, Samples::median_ms);
        checks.push((
            format!("`list` on an empty namespace < 2 ms: {t:.2} ms"),
            t < 2.0,
        ));
    }
    println!("### Targets\n");
    for (text, ok) in checks {
        println!("- {} {text}", if ok { "PASS" } else { "FAIL" });
    }
}

/// The sizes the scaling targets compare: 200k → 1M when both ran, else the
/// two largest.
fn scaling_pair<'a>(sized: &[&'a Phase]) -> Option<(&'a Phase, &'a Phase)> {
    let find = |n| sized.iter().find(|p| p.size == n).copied();
    match (find(200_000), find(1_000_000)) {
        (Some(a), Some(b)) => Some((a, b)),
        _ if sized.len() >= 2 => Some((sized[sized.len() - 2], sized[sized.len() - 1])),
        _ => None,
    }
}
