//! `tw-bench-conntrack`: times `tw-inspect list --conntrack` side by side with
//! `conntrack -L | wc -l`, `conntrack -L` grouped by state, and `conntrack -C`,
//! on conntrack entries it makes in a private network namespace.
//!
//! Run from the repository: `cargo run --release -p tw-bench --bin tw-bench-conntrack` (root).
//!
//! The namespace tracks connections (one iptables conntrack rule), keeps
//! closed connections' entries 600 s (its own nf_conntrack_tcp_timeout_time_wait)
//! and keeps no TIME_WAIT sockets (tcp_max_tw_buckets 0), so what is measured
//! is the conntrack table alone: N TCP entries in TIME_WAIT and nothing else.
//! Two sizes run in one namespace, one after the other (the second adds to
//! the first), so memory can be compared across sizes.

#[path = "../sys.rs"]
mod sys;

use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const PORTS: [u16; 4] = [80, 443, 636, 993];

struct Cmd {
    label: &'static str,
    argv: Vec<String>,
}

fn commands(bin: &Path) -> Vec<Cmd> {
    let tw = bin.join("tw-inspect").display().to_string();
    let sh = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
    vec![
        Cmd {
            label: "tw-inspect list --conntrack",
            argv: vec![tw.clone(), "list".into(), "--conntrack".into()],
        },
        Cmd {
            label: "tw-inspect list --conntrack --format json",
            argv: vec![
                tw,
                "list".into(),
                "--conntrack".into(),
                "--format".into(),
                "json".into(),
            ],
        },
        Cmd {
            label: "conntrack -L \\| wc -l",
            argv: sh("conntrack -L 2>/dev/null | wc -l"),
        },
        Cmd {
            label: "conntrack -L -p tcp \\| awk '{print $4}' \\| sort \\| uniq -c",
            argv: sh("conntrack -L -p tcp 2>/dev/null | awk '{print $4}' | sort | uniq -c"),
        },
        Cmd {
            label: "conntrack -C",
            argv: vec!["conntrack".into(), "-C".into()],
        },
    ]
}

const TW: usize = 0;
const WC: usize = 2;
const COUNT: usize = 4;

fn read(path: &str) -> String {
    let mut s = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut s));
    s
}

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
    std::fs::write(format!("/proc/sys/{}", name.replace('.', "/")), value)
        .with_context(|| format!("setting {name}"))
}

fn ct_count() -> u64 {
    read("/proc/sys/net/netfilter/nf_conntrack_count")
        .trim()
        .parse()
        .unwrap_or(0)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// CPU time (user + system) of the children reaped so far, in ms.
fn children_cpu_ms() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 * 1e3 + tv.tv_usec() as f64 / 1e3;
        t(u.user_time()) + t(u.system_time())
    })
}

/// One run: wall time, peak RSS, success, and CPU time (user + system, the
/// whole pipeline), stdout to /dev/null. On a shared machine the CPU time is
/// the steadier figure: wall time includes waiting for a core.
fn run_once(c: &Cmd) -> Result<(f64, u64, bool, f64)> {
    let cpu0 = children_cpu_ms();
    let start = Instant::now();
    let child = Command::new(&c.argv[0])
        .args(&c.argv[1..])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(File::create("/dev/null")?)
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", c.argv[0]))?;
    let r = sys::wait4(child.id()).context("wait4")?;
    let wall = start.elapsed().as_secs_f64() * 1e3;
    Ok((wall, r.maxrss_kib, r.success, children_cpu_ms() - cpu0))
}

/// Makes `n` connections that both ends close; each leaves one conntrack
/// TIME_WAIT entry and (tcp_max_tw_buckets 0) no socket.
fn make(listeners: &[(TcpListener, Vec<SocketAddr>)], n: usize) -> Result<()> {
    let dests: Vec<(SocketAddr, &TcpListener)> = listeners
        .iter()
        .flat_map(|(l, peers)| peers.iter().map(move |p| (*p, l)))
        .collect();
    for i in 0..n {
        let (addr, l) = dests[i % dests.len()];
        let c = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        let (s, _) = l.accept()?;
        drop(c);
        drop(s);
    }
    Ok(())
}

struct Size {
    entries: u64,
    rounds: usize,
    samples: Vec<Vec<(f64, u64, bool, f64)>>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tw-bench-conntrack: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut sizes = vec![20_000usize, 200_000];
    let mut reps = 7usize;
    let mut do_build = true;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = it
                    .next()
                    .context("--sizes needs a value")?
                    .split(',')
                    .map(|s| s.trim().parse().with_context(|| format!("--sizes: '{s}'")))
                    .collect::<Result<_>>()?
            }
            "--reps" => reps = it.next().context("--reps needs a value")?.parse()?,
            "--no-build" => do_build = false,
            "-h" | "--help" => {
                println!(
                    "tw-bench-conntrack: tw-inspect list --conntrack vs conntrack -L, in a private network namespace\n\n\
                     Usage: cargo run --release -p tw-bench --bin tw-bench-conntrack -- [--sizes 20000,200000] [--reps 7] [--no-build]\n\n\
                     Needs root, conntrack and iptables. Prints a markdown table on stdout."
                );
                return Ok(());
            }
            other => bail!("unknown argument '{other}' (valid: --sizes, --reps, --no-build)"),
        }
    }
    sizes.sort_unstable();
    if !nix::unistd::geteuid().is_root() {
        bail!("needs root: it creates a network namespace with firewall rules");
    }
    for tool in ["conntrack", "iptables"] {
        if !Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()?
            .success()
        {
            bail!("{tool} is missing: apt-get install conntrack iptables");
        }
    }
    let exe = std::env::current_exe()?;
    let bin: PathBuf = exe.parent().context("target directory")?.to_path_buf();
    if do_build {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("workspace")?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ok = Command::new(cargo)
            .current_dir(root)
            .args(["build", "--release", "-p", "tw-inspect"])
            .status()?
            .success();
        if !ok {
            bail!("cargo build --release failed");
        }
    }
    let max: u64 = read("/proc/sys/net/netfilter/nf_conntrack_max")
        .trim()
        .parse()
        .unwrap_or(0);
    let largest = *sizes.last().unwrap_or(&0) as u64;
    if max < largest + 1000 {
        bail!(
            "nf_conntrack_max is {max}: the largest size, {largest}, needs it above {largest} + 1000"
        );
    }
    let load_before = read("/proc/loadavg");
    let started = Instant::now();

    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
    sh_ok(&["ip", "link", "set", "lo", "up"])?;
    sh_ok(&[
        "iptables",
        "-A",
        "OUTPUT",
        "-m",
        "conntrack",
        "--ctstate",
        "NEW,ESTABLISHED",
        "-j",
        "ACCEPT",
    ])?;
    sysctl("net.netfilter.nf_conntrack_tcp_timeout_time_wait", "600")?;
    sysctl("net.ipv4.tcp_max_tw_buckets", "0")?;
    sysctl("net.ipv4.ip_local_port_range", "1024 65535")?;
    // 32 peers (127/8 is all local) × four ports: 128 destinations, so that
    // few new connections land on the tuple of an entry still in TIME_WAIT.
    let mut listeners = Vec::new();
    for port in PORTS {
        let l = TcpListener::bind(("0.0.0.0", port))?;
        let peers = (1..=32)
            .map(|i| SocketAddr::new(IpAddr::from([127, 0, 0, i]), port))
            .collect();
        listeners.push((l, peers));
    }
    let cmds = commands(&bin);
    let mut results = Vec::new();
    for &n in &sizes {
        let t = Instant::now();
        // A new connection on the tuple of an entry still in TIME_WAIT
        // replaces that entry: make more until the table holds n.
        while (ct_count() as usize) < n {
            let add = n - ct_count() as usize;
            std::thread::scope(|s| -> Result<()> {
                let (a, b) = listeners.split_at(2);
                let h = s.spawn(|| make(a, add / 2));
                make(b, add - add / 2)?;
                h.join().map_err(|_| anyhow::anyhow!("maker panicked"))?
            })?;
            if t.elapsed() > Duration::from_secs(300) {
                bail!("only {} of {n} entries after 300 s", ct_count());
            }
        }
        let entries = ct_count();
        eprintln!(
            "tw-bench-conntrack: {entries} conntrack entries after {:.1} s",
            t.elapsed().as_secs_f64()
        );
        for c in &cmds {
            run_once(c)?; // warm-up
        }
        let mut samples = vec![Vec::new(); cmds.len()];
        for _ in 0..reps {
            for (i, c) in cmds.iter().enumerate() {
                samples[i].push(run_once(c)?);
            }
        }
        results.push(Size {
            entries,
            rounds: reps,
            samples,
        });
    }
    let load_after = read("/proc/loadavg");
    report(
        &cmds,
        &results,
        &load_before,
        &load_after,
        started.elapsed(),
    );
    Ok(())
}

fn report(cmds: &[Cmd], sizes: &[Size], before: &str, after: &str, took: Duration) {
    let three = |s: &str| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    println!("## tw-bench-conntrack results\n");
    println!(
        "- kernel {}; {} CPUs; {}",
        read("/proc/sys/kernel/osrelease").trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        Command::new("conntrack")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    );
    println!(
        "- load average before: {}; after: {}; whole run {:.0} s",
        three(before),
        three(after),
        took.as_secs_f64()
    );
    println!("- median wall time over alternating rounds; peak RSS from wait4\n");
    for s in sizes {
        let med = |i: usize| median(&s.samples[i].iter().map(|x| x.0).collect::<Vec<_>>());
        println!(
            "### {} conntrack entries (TCP TIME_WAIT), {} rounds\n",
            s.entries, s.rounds
        );
        println!(
            "| command | median ms | min ms | median CPU ms | peak RSS KiB | × tw-inspect (wall) | × tw-inspect (CPU) |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (i, c) in cmds.iter().enumerate() {
            let v = &s.samples[i];
            let min = v.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
            let rss = v.iter().map(|x| x.1).max().unwrap_or(0);
            let fails = v.iter().filter(|x| !x.2).count();
            let fail = if fails > 0 {
                format!(" ({fails} failed)")
            } else {
                String::new()
            };
            let cpu = |i: usize| median(&s.samples[i].iter().map(|x| x.3).collect::<Vec<_>>());
            println!(
                "| `{}`{fail} | {:.1} | {min:.1} | {:.1} | {rss} | {:.2} | {:.2} |",
                c.label,
                med(i),
                cpu(i),
                med(i) / med(TW),
                cpu(i) / cpu(TW)
            );
        }
        println!();
    }
    let (Some(small), Some(big)) = (sizes.first(), sizes.last()) else {
        return;
    };
    let med = |s: &Size, i: usize| median(&s.samples[i].iter().map(|x| x.0).collect::<Vec<_>>());
    let rss = |s: &Size, i: usize| {
        median(&s.samples[i].iter().map(|x| x.1 as f64).collect::<Vec<_>>()) as u64
    };
    println!("### Targets at {} entries\n", big.entries);
    let cpu = |s: &Size, i: usize| median(&s.samples[i].iter().map(|x| x.3).collect::<Vec<_>>());
    let speed = med(big, WC) / med(big, TW);
    println!(
        "- {} tw-inspect list --conntrack ≥ 3× faster than conntrack -L | wc -l, wall time: {speed:.1}×",
        if speed >= 3.0 { "PASS" } else { "FAIL" }
    );
    let speed = cpu(big, WC) / cpu(big, TW);
    println!(
        "- {} the same in CPU time (user + system): {speed:.1}×",
        if speed >= 3.0 { "PASS" } else { "FAIL" }
    );
    println!(
        "- (floor) conntrack -C, which reads one counter: {:.1} ms",
        med(big, COUNT)
    );
    if !std::ptr::eq(small, big) {
        let (a, b) = (rss(small, TW), rss(big, TW));
        let added = big.entries.saturating_sub(small.entries).max(1) as f64;
        println!(
            "- {} tw-inspect RSS flat {}→{} entries (within 256 KiB): {a} → {b} KiB, {:+.2} bytes per added entry",
            if b <= a + 256 { "PASS" } else { "FAIL" },
            small.entries,
            big.entries,
            (b as f64 - a as f64) * 1024.0 / added
        );
    }
}
