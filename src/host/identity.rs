//! Who a network namespace belongs to: the host, a name under /run/netns, a
//! container or a pod, resolved from files only.
//!
//! The kernel gives a TIME_WAIT socket no owner, so the path is namespace →
//! the processes in it (`/proc/PID/ns/net`) → their cgroups → container and pod
//! ([`crate::host::containers`]). Each namespace gets a stable label that does
//! not change when a container's processes restart: `host`, the /run/netns
//! name, the container's name, `POD_NAMESPACE/POD`, or `net:[INODE]` when
//! nothing names it. Labels are made unique within a run.
//!
//! Cost: one stat per process to find the namespaces' processes, one bounded
//! read of `/proc/PID/cgroup` per process in a namespace being resolved (at
//! most [`MAX_PROCS_PER_NS`] each), then at most four small metadata files per
//! container. A [`Resolver`] keeps what it found by namespace inode, so
//! `--watch` resolves only namespaces it has not seen.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;

use serde::Serialize;

use crate::host::containers::{self, ContainerFacts, Metadata, PodFacts, Roots, Runtime};
use crate::host::procs::ProcessRef;

/// Processes whose cgroup is read per namespace; a namespace with more is
/// named after the containers of its first ones (lowest pids).
pub const MAX_PROCS_PER_NS: usize = 1024;

/// What a namespace is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The namespace of PID 1.
    Host,
    /// A name under /run/netns, and no container in it.
    Named,
    /// A container's (one or more containers, no pod).
    Container,
    /// A pod's: its containers share it.
    Pod,
    /// Nothing names it: labelled `net:[INODE]`.
    Unknown,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Named => "named",
            Kind::Container => "container",
            Kind::Pod => "pod",
            Kind::Unknown => "unknown",
        }
    }
}

/// A container in a namespace, as the JSON `container`/`containers` objects show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContainerRef {
    /// Full id (64 hex digits for podman, Docker, containerd and CRI-O).
    pub id: String,
    /// null when no metadata file names it.
    pub name: Option<String>,
    /// podman, docker, containerd, cri-o or runc; null when unknown.
    pub runtime: Option<Runtime>,
    /// A pod's sandbox (pause or infra) container, which holds the namespace.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

impl ContainerRef {
    /// Its name, or its short id (12 digits) when no file names it.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => short(&self.id).to_string(),
        }
    }
}

/// A pod, as the JSON `pod` object shows it; a field no file gives is null.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PodRef {
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The Kubernetes pod uid, or a podman pod's id.
    pub uid: Option<String>,
}

impl PodRef {
    /// `NAMESPACE/NAME`, the name alone, or `pod:UID` (12 digits of a podman pod id).
    pub fn label(&self) -> String {
        match (&self.namespace, &self.name, &self.uid) {
            (Some(ns), Some(n), _) => format!("{ns}/{n}"),
            (None, Some(n), _) => n.clone(),
            (_, None, Some(uid)) => format!("pod:{}", short(uid)),
            (_, None, None) => "pod:?".into(),
        }
    }
}

fn short(id: &str) -> &str {
    if id.len() == 64 { &id[..12] } else { id }
}

/// One network namespace's identity: the JSON `identity` object (README).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NsIdentity {
    /// The namespace's inode (`ls -l /proc/PID/ns/net`); changes when a container restarts.
    pub inode: u64,
    /// The stable label: the same as `netns` and the Prometheus `netns` label.
    pub name: String,
    pub kind: Kind,
    /// Its name under /run/netns, when it has one (also for a container's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_netns: Option<String>,
    /// The container that owns it: for a pod, its only container besides the sandbox.
    pub container: Option<ContainerRef>,
    pub pod: Option<PodRef>,
    /// Every container found in it, sandbox first for a pod.
    pub containers: Vec<ContainerRef>,
    /// The lowest process in it (for people: it changes when processes restart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessRef>,
    #[serde(skip)]
    pub dev: u64,
}

impl NsIdentity {
    /// The Prometheus labels besides `netns`: `container`, `pod`, `pod_namespace`,
    /// each only when known.
    pub fn prometheus_labels(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Some(c) = &self.container {
            v.push(("container", c.label()));
        }
        if let Some(p) = &self.pod {
            if let Some(n) = &p.name {
                v.push(("pod", n.clone()));
            } else if let Some(uid) = &p.uid {
                v.push(("pod", format!("pod:{}", short(uid))));
            }
            if let Some(ns) = &p.namespace {
                v.push(("pod_namespace", ns.clone()));
            }
        }
        v
    }

    /// What it is, beyond its label, for a table heading (escape before printing).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        match self.kind {
            Kind::Host => parts.push("the host's".into()),
            Kind::Named => parts.push(format!(
                "/run/netns/{}",
                self.run_netns.as_deref().unwrap_or("?")
            )),
            Kind::Container => {
                if let Some(c) = self.container.as_ref().or(self.containers.first()) {
                    parts.push(format!(
                        "{} container {}, id {}",
                        c.runtime.map_or("unknown", Runtime::name),
                        c.name.as_deref().unwrap_or("(name unknown)"),
                        short(&c.id)
                    ));
                }
                let others: Vec<String> = self
                    .containers
                    .iter()
                    .skip(1)
                    .map(ContainerRef::label)
                    .collect();
                if !others.is_empty() {
                    parts.push(format!("shared with {}", others.join(", ")));
                }
            }
            Kind::Pod => {
                let p = self.pod.as_ref();
                let mut d = format!(
                    "pod {}",
                    p.and_then(|p| p.name.as_deref())
                        .unwrap_or("(name unknown)")
                );
                if let Some(ns) = p.and_then(|p| p.namespace.as_deref()) {
                    d.push_str(&format!(" in namespace {ns}"));
                }
                if let Some(uid) = p.and_then(|p| p.uid.as_deref()) {
                    d.push_str(&format!(", uid {uid}"));
                }
                parts.push(d);
                let names: Vec<String> = self
                    .containers
                    .iter()
                    .filter(|c| !c.sandbox)
                    .map(ContainerRef::label)
                    .collect();
                if !names.is_empty() {
                    parts.push(format!("containers {}", names.join(", ")));
                }
            }
            Kind::Unknown => parts.push("no container or /run/netns name".into()),
        }
        parts.push(format!("inode {}", self.inode));
        if matches!(self.kind, Kind::Named | Kind::Unknown)
            && let Some(p) = &self.process
        {
            parts.push(format!("pid {} ({})", p.pid, p.comm));
        }
        parts.join("; ")
    }
}

/// A namespace to identify: its identity (device, inode), and its name under
/// /run/netns when it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsInput {
    pub dev: u64,
    pub ino: u64,
    pub run_netns: Option<String>,
}

struct Cached {
    id: NsIdentity,
    /// A process that was in the namespace: while it still is, the namespace
    /// (and its inode) is the same one.
    witness: Option<u32>,
}

/// Resolves namespaces to identities; keeps them by inode for the next call.
pub struct Resolver {
    meta: Metadata,
    cache: HashMap<(u64, u64), Cached>,
    host: Option<(u64, u64)>,
    /// How many of the files skipped for their size were already warned about.
    warned: usize,
    /// Namespaces resolved from files (not from the cache), for the tests and the benchmark.
    pub resolved: u64,
}

impl Default for Resolver {
    fn default() -> Self {
        Self::new()
    }
}

fn ns_of(pid: u32) -> Option<(u64, u64)> {
    fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
}

/// The host's namespace: kthreadd's (PID 2; kernel threads never leave the
/// initial namespace), else PID 1's when PID 2 is not kthreadd (inside a PID
/// namespace: then "host" is that namespace's init's).
fn host_netns() -> Option<(u64, u64)> {
    if comm(2).as_deref() == Some("kthreadd")
        && let Some(ns) = ns_of(2)
    {
        return Some(ns);
    }
    ns_of(1)
}

/// Every process id under /proc, ascending.
fn pids() -> Vec<u32> {
    let mut v: Vec<u32> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

impl Resolver {
    /// Reads the real host's runtime files.
    pub fn new() -> Resolver {
        Resolver::with_roots(Roots::default())
    }

    pub fn with_roots(roots: Roots) -> Resolver {
        Resolver {
            meta: Metadata::new(roots),
            cache: HashMap::new(),
            host: host_netns(),
            warned: 0,
            resolved: 0,
        }
    }

    /// Files read so far, and those skipped for their size.
    pub fn cost(&self) -> &containers::Cost {
        &self.meta.cost
    }

    /// One warning line per metadata file skipped for its size since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        let new = &self.meta.cost.too_large[self.warned..];
        self.warned = self.meta.cost.too_large.len();
        // Shown escaped, as every warning is.
        new.iter()
            .map(|f| {
                format!(
                    "{} skipped: larger than the limit for container metadata files",
                    f.display()
                )
            })
            .collect()
    }

    /// The container and pod that a process's cgroup path names (`who`),
    /// with their names from the runtimes' files; `(None, None)` for a
    /// process outside any container.
    pub fn owner(&mut self, cgroup: &str) -> (Option<ContainerRef>, Option<PodRef>) {
        let h = containers::parse_path(cgroup);
        let facts = h
            .container_id
            .as_deref()
            .map(|id| self.meta.container(id, h.runtime));
        let mut pod = facts.as_ref().map(|c| c.pod.clone()).unwrap_or_default();
        if let Some(uid) = &h.pod_uid {
            if pod.uid.is_none() {
                pod.uid = Some(uid.clone());
            }
            if pod.name.is_none() {
                let p = self.meta.pod(uid);
                pod.merge(&p);
            }
        }
        if pod.is_empty() {
            pod.uid = h.podman_pod;
        }
        let container = facts.map(|c| ContainerRef {
            id: c.id,
            name: c.name,
            runtime: c.runtime,
            sandbox: c.sandbox,
        });
        let pod = (!pod.is_empty()).then_some(PodRef {
            namespace: pod.namespace,
            name: pod.name,
            uid: pod.uid,
        });
        (container, pod)
    }

    /// The identities of `wanted`, in its order, with unique labels.
    pub fn resolve(&mut self, wanted: &[NsInput]) -> Vec<NsIdentity> {
        let mut pending: HashMap<(u64, u64), Vec<u32>> = HashMap::new();
        for w in wanted {
            let key = (w.dev, w.ino);
            let fresh = match self.cache.get(&key) {
                Some(c) => c.witness.is_some_and(|pid| ns_of(pid) == Some(key)),
                None => false,
            };
            if !fresh && Some(key) != self.host {
                pending.insert(key, Vec::new());
            }
        }
        if !pending.is_empty() {
            for pid in pids() {
                if let Some(key) = ns_of(pid)
                    && let Some(v) = pending.get_mut(&key)
                    && v.len() < MAX_PROCS_PER_NS
                {
                    v.push(pid);
                }
            }
        }
        let mut out: Vec<NsIdentity> = Vec::with_capacity(wanted.len());
        for w in wanted {
            let key = (w.dev, w.ino);
            let mut id = if Some(key) == self.host {
                NsIdentity {
                    inode: w.ino,
                    name: "host".into(),
                    kind: Kind::Host,
                    run_netns: w.run_netns.clone(),
                    container: None,
                    pod: None,
                    containers: Vec::new(),
                    process: None,
                    dev: w.dev,
                }
            } else if let Some(pids) = pending.get(&key) {
                self.resolved += 1;
                let id = self.identify(w, pids);
                // A namespace with no process (only a name) is looked at again
                // next time: a container may be about to start in it.
                let witness = pids.first().copied();
                if witness.is_some() {
                    self.cache.insert(
                        key,
                        Cached {
                            id: id.clone(),
                            witness,
                        },
                    );
                }
                id
            } else {
                self.cache[&key].id.clone()
            };
            // The /run/netns name may have been added or removed since.
            id.run_netns.clone_from(&w.run_netns);
            if id.kind == Kind::Named || id.kind == Kind::Unknown {
                id.kind = if w.run_netns.is_some() {
                    Kind::Named
                } else {
                    Kind::Unknown
                };
                id.name = base_label(&id);
            }
            out.push(id);
        }
        unique_labels(&mut out);
        out
    }

    /// Forgets the namespaces not in `live` (every namespace there is now),
    /// so the cache stays as large as the host.
    pub fn retain(&mut self, live: &[NsInput]) {
        let live: HashSet<(u64, u64)> = live.iter().map(|w| (w.dev, w.ino)).collect();
        self.cache.retain(|k, _| live.contains(k));
    }

    /// Reads the cgroups of `pids` (the namespace's processes, ascending) and
    /// the metadata of the containers they name.
    fn identify(&mut self, w: &NsInput, pids: &[u32]) -> NsIdentity {
        let mut seen_text: HashSet<String> = HashSet::new();
        let mut ids: Vec<(String, Option<Runtime>)> = Vec::new();
        let mut pod_uids: Vec<String> = Vec::new();
        let mut podman_pods: Vec<String> = Vec::new();
        for &pid in pids {
            let Some((text, h)) = containers::process_hint(pid) else {
                continue;
            };
            if !seen_text.insert(text) {
                continue;
            }
            if let Some(id) = h.container_id
                && !ids.iter().any(|(i, _)| *i == id)
            {
                ids.push((id, h.runtime));
            }
            if let Some(u) = h.pod_uid
                && !pod_uids.contains(&u)
            {
                pod_uids.push(u);
            }
            if let Some(p) = h.podman_pod
                && !podman_pods.contains(&p)
            {
                podman_pods.push(p);
            }
        }
        let mut facts: Vec<ContainerFacts> = ids
            .iter()
            .map(|(id, rt)| self.meta.container(id, *rt))
            .collect();
        // A container another one names as its sandbox is the sandbox.
        let sandboxes: HashSet<String> =
            facts.iter().filter_map(|c| c.sandbox_id.clone()).collect();
        for c in &mut facts {
            c.sandbox |= sandboxes.contains(&c.id);
        }
        // Sandbox first: it holds the namespace.
        facts.sort_by_key(|c| !c.sandbox);
        let mut pod = PodFacts::default();
        for c in &facts {
            pod.merge(&c.pod);
        }
        if let Some(uid) = pod_uids.first() {
            if pod.uid.is_none() {
                pod.uid = Some(uid.clone());
            }
            if pod.name.is_none() {
                let p = self.meta.pod(uid);
                pod.merge(&p);
            }
        }
        if pod.is_empty()
            && let Some(p) = podman_pods.first()
        {
            pod.uid = Some(p.clone());
        }
        let containers: Vec<ContainerRef> = facts
            .iter()
            .map(|c| ContainerRef {
                id: c.id.clone(),
                name: c.name.clone(),
                runtime: c.runtime,
                sandbox: c.sandbox,
            })
            .collect();
        let apps: Vec<&ContainerRef> = containers.iter().filter(|c| !c.sandbox).collect();
        let (kind, container) = if !pod.is_empty() {
            (Kind::Pod, (apps.len() == 1).then(|| apps[0].clone()))
        } else if !containers.is_empty() {
            // Several containers and no pod (one joined another's namespace):
            // the namespace is the one of the container with the lowest process.
            (Kind::Container, Some(containers[0].clone()))
        } else if w.run_netns.is_some() {
            (Kind::Named, None)
        } else {
            (Kind::Unknown, None)
        };
        let mut id = NsIdentity {
            inode: w.ino,
            name: String::new(),
            kind,
            run_netns: w.run_netns.clone(),
            container,
            pod: (!pod.is_empty()).then_some(PodRef {
                namespace: pod.namespace,
                name: pod.name,
                uid: pod.uid,
            }),
            containers,
            process: pids.first().and_then(|&pid| {
                Some(ProcessRef {
                    pid,
                    comm: comm(pid)?,
                })
            }),
            dev: w.dev,
        };
        id.name = base_label(&id);
        id
    }
}

/// The label before uniqueness is enforced.
fn base_label(id: &NsIdentity) -> String {
    match id.kind {
        Kind::Host => "host".into(),
        Kind::Named => id.run_netns.clone().unwrap_or_default(),
        Kind::Container => id
            .container
            .as_ref()
            .or(id.containers.first())
            .map_or_else(|| format!("net:[{}]", id.inode), ContainerRef::label),
        Kind::Pod => id
            .pod
            .as_ref()
            .map_or_else(|| format!("net:[{}]", id.inode), PodRef::label),
        Kind::Unknown => format!("net:[{}]", id.inode),
    }
}

/// Two namespaces never share a label: a clash (two runtimes each with a
/// container `web`) adds the runtime, then the inode.
fn unique_labels(ids: &mut [NsIdentity]) {
    let count = |ids: &[NsIdentity]| {
        let mut m: HashMap<String, usize> = HashMap::new();
        for i in ids {
            *m.entry(i.name.clone()).or_default() += 1;
        }
        m
    };
    let n = count(ids);
    for i in ids.iter_mut() {
        if n[&i.name] > 1
            && let Some(rt) = i
                .container
                .as_ref()
                .or(i.containers.first())
                .and_then(|c| c.runtime)
        {
            i.name = format!("{}:{}", rt.name(), i.name);
        }
    }
    let n = count(ids);
    for i in ids.iter_mut() {
        if n[&i.name] > 1 {
            i.name = format!("{}@{}", i.name, i.inode);
        }
    }
}

/// What a `--netns` argument matched among the identities.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    One(&'a NsIdentity),
    None,
    /// Several namespaces match as well as each other.
    Ambiguous(Vec<&'a NsIdentity>),
}

/// Finds the namespace that `arg` names: a label, a container's name, a pod
/// as `NAMESPACE/NAME` (or its name alone), then a container id or pod uid
/// (whole, or a prefix of at least 4 characters). The first rule that matches
/// decides; two namespaces matching the same rule are ambiguous.
pub fn find<'a>(ids: &'a [NsIdentity], arg: &str) -> Found<'a> {
    let lower = arg.to_ascii_lowercase();
    let rules: [&dyn Fn(&NsIdentity) -> bool; 4] = [
        &|i| i.name == arg,
        &|i| i.containers.iter().any(|c| c.name.as_deref() == Some(arg)),
        &|i| {
            i.pod.as_ref().is_some_and(|p| {
                let full = p.namespace.as_deref().zip(p.name.as_deref());
                full.is_some_and(|(ns, n)| arg.split_once('/') == Some((ns, n)))
                    || (!arg.contains('/') && p.name.as_deref() == Some(arg))
            })
        },
        &|i| {
            lower.len() >= 4
                && (i.containers.iter().any(|c| c.id.starts_with(&lower))
                    || i.pod
                        .as_ref()
                        .and_then(|p| p.uid.as_deref())
                        .is_some_and(|u| u.starts_with(&lower)))
        },
    ];
    for rule in rules {
        let hits: Vec<&NsIdentity> = ids.iter().filter(|i| rule(i)).collect();
        match hits.len() {
            0 => continue,
            1 => return Found::One(hits[0]),
            _ => return Found::Ambiguous(hits),
        }
    }
    Found::None
}

/// Identities for the renderers' tests.
#[cfg(test)]
pub mod fixtures {
    use super::*;

    /// An identity with nothing known but its name, kind and inode.
    pub fn blank(name: &str, kind: Kind, inode: u64) -> NsIdentity {
        NsIdentity {
            inode,
            name: name.into(),
            kind,
            run_netns: None,
            container: None,
            pod: None,
            containers: Vec::new(),
            process: None,
            dev: 4,
        }
    }

    /// A name under /run/netns.
    pub fn named(name: &str) -> NsIdentity {
        let mut i = blank(name, Kind::Named, 4026532000 + name.len() as u64);
        i.run_netns = Some(name.into());
        i
    }

    /// A podman container's namespace.
    pub fn container(name: &str) -> NsIdentity {
        let mut i = blank(name, Kind::Container, 4026532100 + name.len() as u64);
        let c = ContainerRef {
            id: "e4".repeat(32),
            name: Some(name.into()),
            runtime: Some(Runtime::Podman),
            sandbox: false,
        };
        i.container = Some(c.clone());
        i.containers = vec![c];
        i
    }

    /// A Kubernetes pod's namespace with a pause container and `apps`.
    pub fn pod(namespace: &str, name: &str, apps: &[&str]) -> NsIdentity {
        let mut i = blank(&format!("{namespace}/{name}"), Kind::Pod, 4026532200);
        i.pod = Some(PodRef {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            uid: Some("1234abcd-0000-4000-8000-0123456789ab".into()),
        });
        i.containers.push(ContainerRef {
            id: "0a".repeat(32),
            name: None,
            runtime: Some(Runtime::Containerd),
            sandbox: true,
        });
        for (n, a) in apps.iter().enumerate() {
            i.containers.push(ContainerRef {
                id: format!("{n:x}").repeat(64),
                name: Some(a.to_string()),
                runtime: Some(Runtime::Containerd),
                sandbox: false,
            });
        }
        if apps.len() == 1 {
            i.container = Some(i.containers[1].clone());
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::fixtures::blank as ident;

    fn ctr(id: char, name: Option<&str>, rt: Runtime) -> ContainerRef {
        ContainerRef {
            id: id.to_string().repeat(64),
            name: name.map(String::from),
            runtime: Some(rt),
            sandbox: false,
        }
    }

    fn samples() -> Vec<NsIdentity> {
        let mut web1 = ident("web1", Kind::Container, 10);
        web1.container = Some(ctr('a', Some("web1"), Runtime::Podman));
        web1.containers = vec![web1.container.clone().unwrap()];
        let mut pod = ident("shop/web-7f9c", Kind::Pod, 11);
        pod.pod = Some(PodRef {
            namespace: Some("shop".into()),
            name: Some("web-7f9c".into()),
            uid: Some("1234abcd-0000-4000-8000-0123456789ab".into()),
        });
        let mut pause = ctr('b', Some("pause"), Runtime::Containerd);
        pause.sandbox = true;
        pod.containers = vec![pause, ctr('c', Some("app"), Runtime::Containerd)];
        pod.container = Some(pod.containers[1].clone());
        vec![
            ident("host", Kind::Host, 1),
            web1,
            pod,
            ident("blue", Kind::Named, 12),
        ]
    }

    #[test]
    fn find_by_label_name_pod_and_id() {
        let ids = samples();
        let name = |f: Found| match f {
            Found::One(i) => i.name.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(name(find(&ids, "web1")), "web1");
        assert_eq!(name(find(&ids, "blue")), "blue");
        assert_eq!(name(find(&ids, "host")), "host");
        assert_eq!(name(find(&ids, "shop/web-7f9c")), "shop/web-7f9c");
        assert_eq!(name(find(&ids, "web-7f9c")), "shop/web-7f9c");
        assert_eq!(name(find(&ids, "app")), "shop/web-7f9c");
        assert_eq!(name(find(&ids, "aaaa")), "web1");
        assert_eq!(name(find(&ids, &"C".repeat(64))), "shop/web-7f9c");
        assert_eq!(name(find(&ids, "1234abcd")), "shop/web-7f9c");
        assert_eq!(find(&ids, "aaa"), Found::None, "prefixes need 4 characters");
        assert_eq!(find(&ids, "other/web-7f9c"), Found::None);
        assert_eq!(find(&ids, "nothing"), Found::None);
        let mut two = samples();
        two[3].containers = vec![ctr('a', Some("x"), Runtime::Docker)];
        assert!(matches!(find(&two, "aaaa"), Found::Ambiguous(v) if v.len() == 2));
    }

    #[test]
    fn labels_and_their_prometheus_parts() {
        let ids = samples();
        assert_eq!(
            ids[1].prometheus_labels(),
            vec![("container", "web1".to_string())]
        );
        assert_eq!(
            ids[2].prometheus_labels(),
            vec![
                ("container", "app".to_string()),
                ("pod", "web-7f9c".to_string()),
                ("pod_namespace", "shop".to_string())
            ]
        );
        assert!(ids[0].prometheus_labels().is_empty());
        assert_eq!(base_label(&ids[2]), "shop/web-7f9c");
        let mut unnamed = ids[1].clone();
        unnamed.container.as_mut().unwrap().name = None;
        assert_eq!(base_label(&unnamed), "aaaaaaaaaaaa");
        let mut podman_pod = ident("", Kind::Pod, 3);
        podman_pod.pod = Some(PodRef {
            namespace: None,
            name: None,
            uid: Some("f".repeat(64)),
        });
        assert_eq!(base_label(&podman_pod), "pod:ffffffffffff");
        assert_eq!(base_label(&ident("", Kind::Unknown, 77)), "net:[77]");
        assert_eq!(
            ids[2].describe(),
            "pod web-7f9c in namespace shop, uid 1234abcd-0000-4000-8000-0123456789ab; containers app; inode 11"
        );
        assert_eq!(
            ids[1].describe(),
            "podman container web1, id aaaaaaaaaaaa; inode 10"
        );
    }

    #[test]
    fn clashing_labels_are_made_unique() {
        let mut a = ident("web", Kind::Container, 20);
        a.container = Some(ctr('a', Some("web"), Runtime::Podman));
        let mut b = ident("web", Kind::Container, 21);
        b.container = Some(ctr('b', Some("web"), Runtime::Docker));
        let mut c = ident("web", Kind::Container, 22);
        c.container = Some(ctr('c', Some("web"), Runtime::Docker));
        let mut v = vec![a, b, c, ident("blue", Kind::Named, 5)];
        unique_labels(&mut v);
        let names: Vec<&str> = v.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            ["podman:web", "docker:web@21", "docker:web@22", "blue"]
        );
    }

    /// A process in a network namespace of its own, killed on drop.
    struct Unshared(std::process::Child);

    impl Unshared {
        fn start() -> Option<Unshared> {
            let mut cmd = std::process::Command::new("unshare");
            if !nix::unistd::geteuid().is_root() {
                cmd.arg("--map-root-user");
            }
            let child = cmd.args(["--net", "sleep", "60"]).spawn().ok()?;
            let u = Unshared(child);
            let me = fs::metadata("/proc/self/ns/net").ok()?.ino();
            // Until unshare has made the namespace and exec'd sleep.
            for _ in 0..500 {
                if u.ns().is_some_and(|(_, ino)| ino != me)
                    && comm(u.0.id()).as_deref() == Some("sleep")
                {
                    return Some(u);
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            None
        }

        fn ns(&self) -> Option<(u64, u64)> {
            ns_of(self.0.id())
        }
    }

    impl Drop for Unshared {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn known_namespaces_come_from_the_cache_new_ones_from_files() {
        let Some(a) = Unshared::start() else {
            // No network namespace can be made here (unshare --net): nothing to name.
            return;
        };
        let (dev, ino) = a.ns().unwrap();
        let input = |ino, name: Option<&str>| NsInput {
            dev,
            ino,
            run_netns: name.map(String::from),
        };
        let mut r = Resolver::new();
        let got = r.resolve(&[input(ino, None)]);
        assert_eq!(
            (got[0].kind, got[0].name.clone()),
            (Kind::Unknown, format!("net:[{ino}]"))
        );
        assert_eq!(got[0].process.as_ref().map(|p| p.pid), Some(a.0.id()));
        assert_eq!(r.resolved, 1);
        // Seen before, and its process still in it: not looked up again,
        // and a /run/netns name given since is taken.
        let again = r.resolve(&[input(ino, Some("blue"))]);
        assert_eq!(r.resolved, 1);
        assert_eq!(
            (again[0].kind, again[0].name.as_str()),
            (Kind::Named, "blue")
        );
        // A second namespace: only that one is looked up.
        let b = Unshared::start().unwrap();
        let (_, ino_b) = b.ns().unwrap();
        r.resolve(&[input(ino, None), input(ino_b, None)]);
        assert_eq!(r.resolved, 2);
        // Its process gone, the inode may belong to another namespace next:
        // looked up again, never taken from the cache.
        drop(b);
        r.resolve(&[input(ino, None), input(ino_b, None)]);
        assert_eq!(r.resolved, 3);
        // A namespace with no process (only a name) is looked at every time:
        // a container may be about to start in it.
        r.resolve(&[input(1, Some("empty"))]);
        r.resolve(&[input(1, Some("empty"))]);
        assert_eq!(r.resolved, 5);
        // Forgotten once gone from the host.
        r.retain(&[input(ino, None)]);
        assert_eq!(r.cache.len(), 1);
    }

    #[test]
    fn own_namespace_is_the_host_or_named_after_its_processes() {
        let me = fs::metadata("/proc/self/ns/net").unwrap();
        let mut r = Resolver::new();
        let input = NsInput {
            dev: me.dev(),
            ino: me.ino(),
            run_netns: None,
        };
        let got = r.resolve(std::slice::from_ref(&input));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].inode, me.ino());
        if r.host == Some((me.dev(), me.ino())) {
            assert_eq!((got[0].name.as_str(), got[0].kind), ("host", Kind::Host));
        } else {
            assert!(got[0].process.is_some(), "{got:?}");
        }
        // Asked again: from the cache when it had a process to vouch for it.
        let before = r.resolved;
        assert_eq!(r.resolve(&[input]), got);
        assert!(r.resolved <= before + 1);
    }
}
