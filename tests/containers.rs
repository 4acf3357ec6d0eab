//! Containers and pods with real runtimes: podman (runc, cgroupfs), Docker
//! (a dockerd this test starts when none answers) and plain runc with a
//! kubelet-style cgroup path. Each container makes a known number of TIME_WAIT
//! sockets inside its own namespace with busybox `httpd` and `wget`, and
//! tw-inspect must name each namespace after its container or pod, count
//! exactly what `ss` counts there, keep its Prometheus labels across a
//! restart, select it with `--netns NAME`, and name it in `who`.
//!
//! Needs root and the tools `.ci/run` installs (podman, runc, docker.io,
//! busybox-static); without root the tests say so and return. A tool that is
//! missing is a failure, not a skip.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::util::{bin, wait_for};

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIP: the container tests need root (podman, dockerd, runc, setns)");
    false
}

/// Runs a command, returning its output; panics when it cannot start.
fn sh(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .env("CONTAINERS_CONF", conf())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is missing ({e}): run .ci/run to install it"))
}

/// Runs a command that must succeed; returns its stdout, trimmed.
fn ok(cmd: &str, args: &[&str]) -> String {
    let out = sh(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn tw(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tw-inspect")
}

fn tw_json(args: &[&str]) -> Value {
    let out = tw(args);
    assert!(
        out.status.success(),
        "tw-inspect {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// podman's settings for this kind of machine: runc (crun refuses hybrid
/// cgroups), the cgroupfs manager (no systemd), fixed ulimits (the defaults
/// ask for more than the hard limits allow), events in a file.
fn conf() -> PathBuf {
    let path = std::env::temp_dir().join("tw-inspect-test-containers.conf");
    let text = "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n";
    if fs::read_to_string(&path).ok().as_deref() != Some(text) {
        let tmp = path.with_extension(format!("{}", std::process::id()));
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, &path).unwrap();
    }
    path
}

const DOCKER: &str = "/usr/bin/docker";
const IMAGE: &str = "localhost/tw-inspect-test-bb:2";

/// A root file system with busybox (static) and a page for httpd.
fn rootfs(dir: &Path) {
    let bb = Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "/bin/busybox is missing: install busybox-static (.ci/run does)"
    );
    for d in ["bin", "www", "tmp", "proc", "sys", "dev", "etc"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::copy(bb, dir.join("bin/busybox")).unwrap();
    for app in ["sh", "httpd", "wget", "sleep", "seq"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(app)).unwrap();
    }
    // A CGI answer has no Content-Length: wget reads to the end, so httpd
    // always closes first and each request leaves exactly one TIME_WAIT, on
    // httpd's side (a static page lets both close at once now and then, and
    // a simultaneous close leaves two).
    fs::create_dir_all(dir.join("www/cgi-bin")).unwrap();
    let cgi = dir.join("www/cgi-bin/hi");
    fs::write(
        &cgi,
        "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho hello\n",
    )
    .unwrap();
    fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// Imports the busybox image into a runtime (`podman` or Docker) once.
fn image(cmd: &str) {
    if sh(cmd, &["image", "inspect", IMAGE]).status.success() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    rootfs(dir.path());
    let tar = Command::new("tar")
        .args(["-C", dir.path().to_str().unwrap(), "-c", "."])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let mut imp = Command::new(cmd)
        .args(["import", "-", IMAGE])
        .env("CONTAINERS_CONF", conf())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    imp.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(imp.wait().unwrap().success(), "{cmd} import");
}

/// busybox httpd on the container's loopback, in the foreground.
const HTTPD: &[&str] = &["/bin/sh", "-c", "exec httpd -f -p 127.0.0.1:8080 -h /www"];

/// A container: its runtime's command, name and main process.
struct Ctr {
    cmd: &'static str,
    name: String,
    id: String,
}

impl Ctr {
    fn pid(&self) -> u32 {
        ok(self.cmd, &["inspect", "-f", "{{.State.Pid}}", &self.name])
            .parse()
            .unwrap()
    }

    fn netns_inode(&self) -> u64 {
        inode_of(self.pid())
    }

    /// `n` requests from wget to httpd inside the container: each leaves
    /// one TIME_WAIT socket there, on httpd's side.
    fn requests(&self, n: usize) {
        ok(
            self.cmd,
            &[
                "exec",
                &self.name,
                "/bin/sh",
                "-c",
                &format!(
                    "for i in $(seq {n}); do wget -q -O /dev/null http://127.0.0.1:8080/cgi-bin/hi || exit 1; done"
                ),
            ],
        );
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = sh(self.cmd, &["rm", "-f", "-t", "0", &self.name]);
    }
}

fn inode_of(pid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(format!("/proc/{pid}/ns/net")).unwrap().ino()
}

/// TIME_WAIT sockets in the namespace of `pid`, as `ss` counts them.
fn ss_time_wait(pid: u32) -> usize {
    let out = ok(
        "nsenter",
        &[
            "-t",
            &pid.to_string(),
            "-n",
            "ss",
            "-tanH",
            "state",
            "time-wait",
        ],
    );
    out.lines().filter(|l| !l.trim().is_empty()).count()
}

/// No reuse of TIME_WAIT ports in the namespace of `pid`: with the default
/// (2, loopback) a later connect may take over a tuple the test counts.
fn no_tw_reuse(pid: u32) {
    ok(
        "nsenter",
        &[
            "-t",
            &pid.to_string(),
            "-n",
            "sh",
            "-c",
            "echo 0 > /proc/sys/net/ipv4/tcp_tw_reuse",
        ],
    );
}

fn podman_run(name: &str, extra: &[&str]) -> Ctr {
    let _ = sh("podman", &["rm", "-f", "-t", "0", name]);
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend(extra);
    args.push(IMAGE);
    args.extend(HTTPD);
    let id = ok("podman", &args);
    Ctr {
        cmd: "podman",
        name: name.into(),
        id,
    }
}

fn docker_run(name: &str) -> Ctr {
    let _ = sh(DOCKER, &["rm", "-f", name]);
    let mut args = vec![
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        IMAGE,
    ];
    args.extend(HTTPD);
    let id = ok(DOCKER, &args);
    Ctr {
        cmd: DOCKER,
        name: name.into(),
        id,
    }
}

/// A dockerd this test started (stopped on drop), or none when one answers already.
struct Dockerd(Option<Child>);

impl Dockerd {
    fn ensure() -> Dockerd {
        if sh(DOCKER, &["info"]).status.success() {
            return Dockerd(None);
        }
        let log =
            std::env::temp_dir().join(format!("tw-inspect-dockerd-{}.log", std::process::id()));
        let child = Command::new("dockerd")
            // No bridge and no iptables rules: the containers have no network,
            // and the host's firewall and forwarding stay as they were.
            .args([
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
                "--iptables=false",
                "--bridge=none",
            ])
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                fs::File::create(log.with_extension("err")).unwrap(),
            ))
            .spawn()
            .expect("dockerd is missing: install docker.io (.ci/run does)");
        let d = Dockerd(Some(child));
        wait_for(60, "dockerd to answer", || {
            sh(DOCKER, &["info"]).status.success().then_some(())
        });
        d
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }
}

/// The namespace entry of `list --all-netns --format json` with this inode.
fn entry(v: &Value, inode: u64) -> Value {
    let all = v["namespaces"].as_array().expect("namespaces");
    let hits: Vec<&Value> = all
        .iter()
        .filter(|n| n["identity"]["inode"] == inode)
        .collect();
    assert_eq!(hits.len(), 1, "namespace {inode} listed once in {all:#?}");
    hits[0].clone()
}

/// The label sets (series without values) that carry `netns="LABEL"`, but
/// those of TIME_WAIT groups, whose `peer` labels are the data itself.
fn series_of(prom: &str, label: &str) -> Vec<String> {
    let want = format!("netns=\"{label}\"");
    prom.lines()
        .filter(|l| {
            !l.starts_with('#') && !l.starts_with("tw_inspect_time_wait{") && l.contains(&want)
        })
        .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
        .collect()
}

#[test]
fn podman_and_docker_containers_are_named_counted_and_selected() {
    if !root() {
        return;
    }
    let tag = format!("twi16-{}", std::process::id());
    image("podman");
    let _dockerd = Dockerd::ensure();
    image(DOCKER);

    // One plain podman container, one with Kubernetes annotations for a pod,
    // one Docker container; each with its own number of TIME_WAIT.
    let web1 = podman_run(&format!("{tag}-web1"), &[]);
    let pod_ns = format!("{tag}-shop");
    let shop = podman_run(
        &format!("{tag}-app"),
        &[
            "--annotation",
            "io.kubernetes.pod.name=web-7f9c",
            "--annotation",
            &format!("io.kubernetes.pod.namespace={pod_ns}"),
        ],
    );
    let web3 = docker_run(&format!("{tag}-web3"));
    let plan = [(&web1, 3usize), (&shop, 5), (&web3, 7)];
    for (c, n) in plan {
        no_tw_reuse(c.pid());
        c.requests(n);
        let pid = c.pid();
        wait_for(10, "TIME_WAIT in the container", || {
            (ss_time_wait(pid) == n).then_some(())
        });
    }

    let v = tw_json(&["list", "--all-netns", "--format", "json"]);
    let e1 = entry(&v, web1.netns_inode());
    assert_eq!(e1["netns"], web1.name.as_str());
    let id = &e1["identity"];
    assert_eq!(id["kind"], "container");
    assert_eq!(id["name"], web1.name.as_str());
    assert_eq!(id["container"]["name"], web1.name.as_str());
    assert_eq!(id["container"]["id"], web1.id.as_str());
    assert_eq!(id["container"]["runtime"], "podman");
    assert!(id["pod"].is_null());

    let e2 = entry(&v, shop.netns_inode());
    let label = format!("{pod_ns}/web-7f9c");
    assert_eq!(e2["netns"], label.as_str());
    let id = &e2["identity"];
    assert_eq!(id["kind"], "pod");
    assert_eq!(id["pod"]["name"], "web-7f9c");
    assert_eq!(id["pod"]["namespace"], pod_ns.as_str());
    assert_eq!(id["container"]["name"], shop.name.as_str());
    assert_eq!(id["containers"][0]["id"], shop.id.as_str());

    let e3 = entry(&v, web3.netns_inode());
    assert_eq!(e3["netns"], web3.name.as_str());
    assert_eq!(e3["identity"]["container"]["runtime"], "docker");
    assert_eq!(e3["identity"]["container"]["id"], web3.id.as_str());

    // Exact TIME_WAIT counts per namespace, as ss counts them there.
    for ((c, n), e) in plan.iter().zip([&e1, &e2, &e3]) {
        assert_eq!(e["states"]["time-wait"], *n as u64, "{}", c.name);
        assert_eq!(ss_time_wait(c.pid()), *n, "{}", c.name);
    }

    // --netns by container name, id prefix, pod and pod name alone.
    for (arg, c, n) in [
        (web1.name.clone(), &web1, 3u64),
        (web1.id[..12].to_string(), &web1, 3),
        (label.clone(), &shop, 5),
        (web3.name.clone(), &web3, 7),
    ] {
        let v = tw_json(&["list", "--netns", &arg, "--format", "json"]);
        let ns = &v["namespaces"][0];
        assert_eq!(ns["identity"]["inode"], c.netns_inode(), "--netns {arg}");
        assert_eq!(ns["states"]["time-wait"], n, "--netns {arg}");
    }
    // The table says whose namespace it is.
    let t = tw(&["list", "--netns", &web1.name]);
    let head = String::from_utf8_lossy(&t.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        head,
        format!(
            "Network namespace {0} (podman container {0}, id {1}; inode {2})",
            web1.name,
            &web1.id[..12],
            web1.netns_inode()
        )
    );
    // CSV: container, pod and pod namespace columns.
    let csv = String::from_utf8(tw(&["list", "--all-netns", "--format", "csv"]).stdout).unwrap();
    assert!(
        csv.starts_with("netns,container,pod,pod_namespace,state,"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&format!("{label},{},web-7f9c,{pod_ns},", shop.name))),
        "{csv}"
    );
    // An unknown name: one line, exit 2, saying how to see the known ones.
    let bad = tw(&["list", "--netns", &format!("{tag}-nothing")]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("'{tag}-nothing'"))
            && err.contains("tw-inspect list --all-netns")
            && err.contains(&web1.name),
        "{err}"
    );

    // Prometheus: the same series before and after a restart, which gives
    // the container a new namespace (new inode, new processes).
    let prom = |args: &[&str]| String::from_utf8(tw(args).stdout).unwrap();
    let before = prom(&["list", "--all-netns", "--format", "prometheus"]);
    let pid0 = web1.pid();
    let want = [
        format!(
            "tw_inspect_up{{netns=\"{0}\",container=\"{0}\"}}",
            web1.name
        ),
        format!(
            "tw_inspect_sockets{{netns=\"{label}\",container=\"{}\",pod=\"web-7f9c\",pod_namespace=\"{pod_ns}\",state=\"time-wait\",family=\"ipv4\"}}",
            shop.name
        ),
    ];
    for w in &want {
        assert!(before.contains(w.as_str()), "missing {w} in\n{before}");
    }
    ok("podman", &["restart", "-t", "0", &web1.name]);
    let pid1 = wait_for(20, "web1 to run again", || {
        let p = web1.pid();
        (p != 0 && p != pid0).then_some(p)
    });
    // A new namespace (its inode may well be the old one's, reused): the
    // old one's TIME_WAIT sockets went with it.
    assert_eq!(ss_time_wait(pid1), 0, "a restart makes a new namespace");
    let after = prom(&["list", "--all-netns", "--format", "prometheus"]);
    let tw = format!(
        "tw_inspect_sockets{{netns=\"{0}\",container=\"{0}\",state=\"time-wait\",family=\"ipv4\"}}",
        web1.name
    );
    assert!(before.contains(&format!("{tw} 3\n")), "{before}");
    assert!(after.contains(&format!("{tw} 0\n")), "{after}");
    let series = series_of(&before, &web1.name);
    assert!(series.len() > 20, "{series:?}");
    assert_eq!(series, series_of(&after, &web1.name));
    assert!(after.contains(want[0].as_str()), "{after}");
}

/// Removes a directory tree made by the test, on drop.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_dir_all(p).or_else(|_| fs::remove_file(p));
        }
    }
}

/// A runc container as a kubelet with containerd and the systemd cgroup
/// driver lays it out: `cri-containerd-<id>.scope` under the pod's slice, and
/// the pod's log directory under /var/log/pods. No annotation names the pod:
/// its name and namespace can only come from kubelet's directory.
#[test]
fn runc_container_in_a_kubelet_cgroup_is_named_as_its_pod() {
    if !root() {
        return;
    }
    let pid = std::process::id();
    let id = format!("{:064x}", (u128::from(pid) << 64) | 0x16);
    let uid = format!("0016{pid:04x}-1111-4222-8333-{:012x}", u64::from(pid));
    let (ns, pod) = (format!("twi16-{pid}"), "web-7f9c".to_string());
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path();
    rootfs(&bundle.join("rootfs"));
    ok("runc", &["spec", "--bundle", bundle.to_str().unwrap()]);
    let cfg_path = bundle.join("config.json");
    let mut cfg: Value = serde_json::from_str(&fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["args"] =
        serde_json::json!(["/bin/sh", "-c", "exec httpd -f -p 127.0.0.1:8080 -h /www"]);
    cfg["process"]["rlimits"] =
        serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]);
    cfg["root"]["readonly"] = false.into();
    let slice = uid.replace('-', "_");
    cfg["linux"]["cgroupsPath"] = format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{slice}.slice/cri-containerd-{id}.scope"
    )
    .into();
    fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();

    // kubelet's directories, made for the test and removed after it (the
    // parents too when the test made them).
    let mut made = Vec::new();
    for d in ["/var/log/pods", "/var/log/containers"] {
        if !Path::new(d).exists() {
            made.push(PathBuf::from(d));
        }
    }
    let logs = PathBuf::from(format!("/var/log/pods/{ns}_{pod}_{uid}"));
    let link = PathBuf::from(format!("/var/log/containers/{pod}_{ns}_app-{id}.log"));
    let mut clean = vec![logs.clone(), link.clone()];
    clean.extend(made);
    let _clean = Cleanup(clean);
    fs::create_dir_all(logs.join("app")).unwrap();
    fs::write(logs.join("app/0.log"), "").unwrap();
    fs::create_dir_all("/var/log/containers").unwrap();
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(logs.join("app/0.log"), &link).unwrap();

    let pidfile = bundle.join("pid");
    // Detached, the container keeps runc's stdio: a pipe here would never close.
    let errfile = bundle.join("runc.err");
    let run = Command::new("runc")
        .args([
            "run",
            "-d",
            "--bundle",
            bundle.to_str().unwrap(),
            "--pid-file",
            pidfile.to_str().unwrap(),
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&errfile).unwrap())
        .status()
        .expect("runc is missing: install runc (.ci/run does)");
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("runc")
                .args(["delete", "-f", &self.0])
                .output();
        }
    }
    let _gone = Gone(id.clone());
    assert!(
        run.success(),
        "runc run: {}",
        fs::read_to_string(&errfile).unwrap_or_default()
    );
    let cpid: u32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        fs::read_to_string(format!("/proc/{cpid}/cgroup"))
            .unwrap()
            .contains(&format!("cri-containerd-{id}.scope")),
        "the container runs in the kubelet-style cgroup"
    );
    // Loopback is down in a new namespace: up, then two requests.
    ok(
        "nsenter",
        &[
            "-t",
            &cpid.to_string(),
            "-n",
            "ip",
            "link",
            "set",
            "lo",
            "up",
        ],
    );
    no_tw_reuse(cpid);
    ok(
        "runc",
        &[
            "exec",
            &id,
            "/bin/sh",
            "-c",
            "for i in 1 2; do wget -q -O /dev/null http://127.0.0.1:8080/cgi-bin/hi || exit 1; done",
        ],
    );
    wait_for(10, "TIME_WAIT in the runc container", || {
        (ss_time_wait(cpid) == 2).then_some(())
    });

    let v = tw_json(&["list", "--all-netns", "--format", "json"]);
    let e = entry(&v, inode_of(cpid));
    let label = format!("{ns}/{pod}");
    assert_eq!(e["netns"], label.as_str());
    let i = &e["identity"];
    assert_eq!(i["kind"], "pod");
    assert_eq!(i["pod"]["namespace"], ns.as_str());
    assert_eq!(i["pod"]["name"], pod.as_str());
    assert_eq!(i["pod"]["uid"], uid.as_str());
    assert_eq!(i["container"]["id"], id.as_str());
    assert_eq!(i["container"]["name"], "app");
    assert_eq!(i["container"]["runtime"], "containerd");
    assert_eq!(e["states"]["time-wait"], 2);
    let v = tw_json(&["list", "--netns", &label, "--format", "json"]);
    assert_eq!(v["namespaces"][0]["identity"]["inode"], inode_of(cpid));
    assert_eq!(v["states"]["time-wait"], 2);
}

/// Starts `who` for `secs` seconds and returns it once it is recording.
fn who_recording(secs: u32, extra: &[&str]) -> Child {
    let mut child = Command::new(bin())
        .args([
            "who",
            "--duration",
            &secs.to_string(),
            "--format",
            "json",
            "--top",
            "0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut err, &mut line).unwrap();
        assert!(n > 0, "who ended before recording");
        if line.contains("recording TCP closes") {
            break;
        }
    }
    // Keep draining stderr so who never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    child
}

#[test]
fn who_names_the_container_of_each_closing_process() {
    if !root() {
        return;
    }
    let tag = format!("twi16w-{}", std::process::id());
    image("podman");
    let c = podman_run(&format!("{tag}-web"), &[]);
    no_tw_reuse(c.pid());
    let who = who_recording(6, &[]);
    // httpd forks a worker per request, which closes first and exits at
    // once: its container comes from its parent, still running. wget closes
    // second, started by a shell that podman exec put in the container.
    c.requests(6);
    let out = who.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Rows of the container's namespace, or of its cgroup (a process that
    // exited before its namespace was read, started by a runtime).
    let rows: Vec<&Value> = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["netns"] == c.name.as_str() || p["container"]["id"] == c.id.as_str())
        .collect();
    let sum = |comm: &str, field: &str| -> u64 {
        rows.iter()
            .filter(|p| p["comm"] == comm)
            .map(|p| p[field].as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum("httpd", "active_closes"), 6, "{v:#}");
    assert_eq!(sum("wget", "passive_closes"), 6, "{v:#}");
    // Each of them is named by its container.
    for p in &rows {
        assert_eq!(p["container"]["name"], c.name.as_str(), "{p:#}");
        assert_eq!(p["container"]["id"], c.id.as_str(), "{p:#}");
        assert_eq!(p["container"]["runtime"], "podman", "{p:#}");
    }

    // --netns by the container's name: its processes only, its TIME_WAIT
    // attributed, and httpd seen as the server it is (closes on port 8080).
    let who = who_recording(6, &["--netns", &c.name]);
    c.requests(4);
    let out = who.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["netns"], c.name.as_str(), "{v:#}");
    let procs = v["processes"].as_array().unwrap();
    let httpd: Vec<&Value> = procs.iter().filter(|p| p["comm"] == "httpd").collect();
    assert_eq!(httpd.len(), 1, "{v:#}");
    assert_eq!(httpd[0]["active_closes"], 4, "{v:#}");
    assert_eq!(httpd[0]["time_wait_now"], 4, "{v:#}");
    assert_eq!(
        httpd[0]["top_local_ports"],
        serde_json::json!([{"port": 8080, "count": 4}]),
        "{v:#}"
    );
    assert!(
        procs.iter().all(|p| p["container"]["id"] == c.id.as_str()),
        "{v:#}"
    );
}
