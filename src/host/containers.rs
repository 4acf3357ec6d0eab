//! Containers and pods from files only: the cgroup layouts of podman, Docker,
//! containerd, CRI-O and Kubernetes, and the runtimes' own metadata on disk.
//!
//! No runtime API and no daemon is asked: a process's `/proc/PID/cgroup` names
//! its container (by id) and pod (by uid) in every common layout, and the
//! runtimes keep names and annotations in small files. Every source is
//! optional; what none of them says stays unknown (`None`), never guessed.
//!
//! Every file is read bounded: opened without blocking, checked to be a regular
//! file, and skipped when larger than its limit ([`MAX_INDEX_BYTES`],
//! [`MAX_FILE_BYTES`]), so a hostile or corrupt file costs at most that much
//! memory. Strings taken from these files are kept as they are and escaped by
//! each output format; one longer than [`MAX_NAME_BYTES`] is not used.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The largest index file read (podman's `containers.json` lists every container).
pub const MAX_INDEX_BYTES: u64 = 16 << 20;
/// The largest per-container file read (`config.json`, `config.v2.json`, `state.json`).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// The largest `/proc/PID/cgroup` read.
pub const MAX_CGROUP_BYTES: u64 = 64 << 10;
/// Names, namespaces and ids longer than this are not used (Kubernetes names
/// are at most 253 bytes).
pub const MAX_NAME_BYTES: usize = 253;
/// Entries read from one directory listing (`/var/log/pods`, `/var/log/containers`).
pub const MAX_DIR_ENTRIES: usize = 100_000;

/// Who runs a container: from its cgroup's naming, else from the metadata
/// that knew it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    Podman,
    Docker,
    Containerd,
    CriO,
    /// Plain runc (known only from `/run/runc`).
    Runc,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Podman => "podman",
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Runc => "runc",
        }
    }
}

/// What one cgroup path says, before any metadata is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupHint {
    /// The container's id (64 hex digits).
    pub container_id: Option<String>,
    /// The runtime its naming shows (`libpod-`, `docker-`, `cri-containerd-`, `crio-`).
    pub runtime: Option<Runtime>,
    /// The Kubernetes pod uid (`pod<uid>`, dashes restored in systemd slices).
    pub pod_uid: Option<String>,
    /// A podman pod's id (`/libpod_parent/<pod id>/...`, `machine-libpod_pod_<id>.slice`).
    pub podman_pod: Option<String>,
}

impl CgroupHint {
    pub fn is_empty(&self) -> bool {
        self.container_id.is_none() && self.pod_uid.is_none() && self.podman_pod.is_none()
    }
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A pod uid: a UUID (36 characters with dashes) or a static pod's 32 hex digits.
fn is_pod_uid(s: &str) -> bool {
    matches!(s.len(), 32 | 36) && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// A container id behind one of the runtimes' prefixes, in one path component.
fn prefixed_id(comp: &str) -> Option<(String, Runtime)> {
    let stem = comp.strip_suffix(".scope").unwrap_or(comp);
    for (prefix, rt) in [
        ("libpod-", Runtime::Podman),
        ("docker-", Runtime::Docker),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
    ] {
        // `libpod-conmon-<id>` and `crio-conmon-<id>` hold the monitor, not the container.
        if let Some(id) = stem.strip_prefix(prefix)
            && is_hex_id(id)
        {
            return Some((id.to_ascii_lowercase(), rt));
        }
    }
    None
}

/// The pod uid in a component: `pod<uid>` (cgroupfs) or
/// `kubepods[-<qos>]-pod<uid with _>.slice` (systemd).
fn pod_uid(comp: &str) -> Option<String> {
    let raw = if let Some(slice) = comp.strip_suffix(".slice") {
        slice
            .strip_prefix("kubepods-")?
            .rsplit_once("pod")
            .map(|(_, uid)| uid)?
    } else {
        comp.strip_prefix("pod")?
    };
    let uid = raw.replace('_', "-");
    is_pod_uid(&uid).then(|| uid.to_ascii_lowercase())
}

/// Reads one cgroup path: the container and pod it names, if any.
pub fn parse_path(path: &str) -> CgroupHint {
    let mut h = CgroupHint::default();
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let kube = comps
        .first()
        .is_some_and(|c| *c == "kubepods" || *c == "kubepods.slice");
    for (i, comp) in comps.iter().enumerate() {
        if h.container_id.is_none()
            && let Some((id, rt)) = prefixed_id(comp)
        {
            h.container_id = Some(id);
            h.runtime = Some(rt);
            continue;
        }
        if kube
            && h.pod_uid.is_none()
            && let Some(uid) = pod_uid(comp)
        {
            h.pod_uid = Some(uid);
            continue;
        }
        // Bare ids: Docker's cgroupfs layout (`/docker/<id>`), a kubelet's
        // cgroupfs layout (`/kubepods/<qos>/pod<uid>/<id>`) and podman's pods
        // (`/libpod_parent/<pod id>/libpod-<id>`).
        if is_hex_id(comp) && i > 0 {
            let prev = comps[i - 1];
            if h.container_id.is_none() && prev == "docker" {
                h.container_id = Some(comp.to_ascii_lowercase());
                h.runtime = Some(Runtime::Docker);
            } else if h.container_id.is_none() && pod_uid(prev).is_some() && kube {
                h.container_id = Some(comp.to_ascii_lowercase());
            } else if prev == "libpod_parent" && h.podman_pod.is_none() {
                h.podman_pod = Some(comp.to_ascii_lowercase());
            }
        }
        if let Some(id) = comp
            .strip_prefix("machine-libpod_pod_")
            .and_then(|c| c.strip_suffix(".slice"))
            .filter(|id| is_hex_id(id))
        {
            h.podman_pod = Some(id.to_ascii_lowercase());
        }
    }
    // A podman pod's cgroup also holds its containers' monitors (`conmon`),
    // which stay in the host's namespace: the pod counts only with a container.
    if h.container_id.is_none() {
        h.podman_pod = None;
    }
    h
}

/// Reads `/proc/PID/cgroup` text: the first line whose path names a container
/// or pod (hybrid hosts list the same path for every controller).
pub fn parse_cgroup_file(text: &str) -> CgroupHint {
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .map(parse_path)
        .find(|h| !h.is_empty())
        .unwrap_or_default()
}

/// Reads a file of at most `limit` bytes without blocking on a FIFO or
/// following it into a device: `None` when it is missing, unreadable, not a
/// regular file, or larger than `limit`.
pub fn read_bounded(path: &Path, limit: u64) -> Bounded {
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(_) => return Bounded::Missing,
    };
    let Ok(meta) = file.metadata() else {
        return Bounded::Missing;
    };
    if !meta.is_file() {
        return Bounded::Missing;
    }
    // /proc files report size 0: the read below is bounded all the same.
    if meta.len() > limit {
        return Bounded::TooLarge;
    }
    let mut buf = Vec::with_capacity(meta.len().min(limit) as usize);
    match read_at_most(file, limit, &mut buf) {
        Ok(true) => Bounded::Ok(buf),
        Ok(false) => Bounded::TooLarge,
        Err(_) => Bounded::Missing,
    }
}

/// Reads up to `limit` bytes; false when there was more.
fn read_at_most(file: File, limit: u64, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let n = file.take(limit + 1).read_to_end(buf)?;
    Ok(n as u64 <= limit)
}

/// The outcome of [`read_bounded`].
#[derive(Debug)]
pub enum Bounded {
    Ok(Vec<u8>),
    Missing,
    TooLarge,
}

/// A string from a metadata file, when it is usable as a name.
fn name(s: &str) -> Option<String> {
    (!s.is_empty() && s.len() <= MAX_NAME_BYTES).then(|| s.to_string())
}

/// Where the runtimes keep their metadata. [`Roots::default`] is the real host.
#[derive(Clone, Debug)]
pub struct Roots {
    /// podman's (and CRI-O's) container storage: `containers.json` and `<id>/userdata/config.json`.
    pub containers_storage: PathBuf,
    /// Docker: `<id>/config.v2.json`.
    pub docker: PathBuf,
    /// containerd's task bundles for Kubernetes: `<id>/config.json`.
    pub containerd_tasks: PathBuf,
    /// runc state directories: `<id>/state.json`, with the runtime each implies.
    pub runc_states: Vec<(PathBuf, Runtime)>,
    /// kubelet's pod log directories: `<namespace>_<pod>_<uid>/`.
    pub pod_logs: PathBuf,
    /// kubelet's container log links: `<pod>_<namespace>_<container>-<id>.log`.
    pub container_logs: PathBuf,
}

impl Default for Roots {
    fn default() -> Roots {
        Roots {
            containers_storage: "/var/lib/containers/storage/overlay-containers".into(),
            docker: "/var/lib/docker/containers".into(),
            containerd_tasks: "/run/containerd/io.containerd.runtime.v2.task/k8s.io".into(),
            runc_states: vec![
                ("/run/containerd/runc/k8s.io".into(), Runtime::Containerd),
                ("/run/runc".into(), Runtime::Runc),
            ],
            pod_logs: "/var/log/pods".into(),
            container_logs: "/var/log/containers".into(),
        }
    }
}

/// A container as its runtime's files describe it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerFacts {
    pub id: String,
    pub name: Option<String>,
    pub runtime: Option<Runtime>,
    /// A pod's sandbox (pause or infra) container, which holds the namespace.
    pub sandbox: bool,
    /// The sandbox this container belongs to, when its metadata names it.
    pub sandbox_id: Option<String>,
    pub pod: PodFacts,
}

/// A Kubernetes pod (or a podman pod) as far as it is known.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodFacts {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub uid: Option<String>,
}

impl PodFacts {
    pub fn is_empty(&self) -> bool {
        self.namespace.is_none() && self.name.is_none() && self.uid.is_none()
    }

    /// Fills what `self` does not know from `o`.
    pub fn merge(&mut self, o: &PodFacts) {
        if self.namespace.is_none() {
            self.namespace.clone_from(&o.namespace);
        }
        if self.name.is_none() {
            self.name.clone_from(&o.name);
        }
        if self.uid.is_none() {
            self.uid.clone_from(&o.uid);
        }
    }
}

/// The annotations (or labels) that name a Kubernetes pod and container, as
/// CRI-O and podman (`io.kubernetes.*`), containerd (`io.kubernetes.cri.*`)
/// and the Docker shim (labels) write them.
fn from_annotations(a: &HashMap<String, String>, c: &mut ContainerFacts) {
    let get = |keys: &[&str]| keys.iter().find_map(|k| a.get(*k).and_then(|v| name(v)));
    let pod = PodFacts {
        name: get(&["io.kubernetes.pod.name", "io.kubernetes.cri.sandbox-name"]),
        namespace: get(&[
            "io.kubernetes.pod.namespace",
            "io.kubernetes.cri.sandbox-namespace",
        ]),
        uid: get(&["io.kubernetes.pod.uid", "io.kubernetes.cri.sandbox-uid"]),
    };
    c.pod.merge(&pod);
    if let Some(n) = get(&[
        "io.kubernetes.container.name",
        "io.kubernetes.cri.container-name",
    ]) {
        // The name Kubernetes gave beats the runtime's generated one (k8s_...).
        c.name = Some(n);
    }
    let kind = get(&[
        "io.kubernetes.cri.container-type",
        "io.kubernetes.cri-o.ContainerType",
        "io.kubernetes.docker.type",
    ]);
    if matches!(kind.as_deref(), Some("sandbox" | "podsandbox")) {
        c.sandbox = true;
    }
    if c.sandbox_id.is_none() {
        c.sandbox_id = get(&[
            "io.kubernetes.cri.sandbox-id",
            "io.kubernetes.cri-o.SandboxID",
            "io.kubernetes.sandbox.id",
        ])
        .filter(|s| is_hex_id(s));
    }
}

#[derive(Deserialize)]
struct StorageEntry {
    id: String,
    #[serde(default)]
    names: Vec<String>,
}

#[derive(Deserialize)]
struct OciConfig {
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerConfig {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    config: Option<DockerInner>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerInner {
    #[serde(default)]
    labels: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
struct RuncState {
    #[serde(default)]
    config: Option<RuncConfig>,
}

#[derive(Deserialize)]
struct RuncConfig {
    /// OCI annotations as `key=value`, and `bundle=PATH`.
    #[serde(default)]
    labels: Option<Vec<String>>,
}

/// What reading metadata cost, and what it skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Files opened (found or not) and directories listed.
    pub files: u64,
    /// Files skipped for being larger than their limit.
    pub too_large: Vec<PathBuf>,
}

/// Reads the runtimes' metadata, each file at most once per run.
pub struct Metadata {
    roots: Roots,
    /// podman/CRI-O names by id, from containers.json (read when first needed).
    storage_names: Option<HashMap<String, String>>,
    /// kubelet pod directories by uid: (namespace, name).
    pod_logs: Option<HashMap<String, (String, String)>>,
    /// kubelet container log links by id: (namespace, pod, container).
    container_logs: Option<HashMap<String, (String, String, String)>>,
    known: HashMap<(String, Option<Runtime>), ContainerFacts>,
    pub cost: Cost,
}

impl Metadata {
    pub fn new(roots: Roots) -> Metadata {
        Metadata {
            roots,
            storage_names: None,
            pod_logs: None,
            container_logs: None,
            known: HashMap::new(),
            cost: Cost::default(),
        }
    }

    fn read(&mut self, path: &Path, limit: u64) -> Option<Vec<u8>> {
        self.cost.files += 1;
        match read_bounded(path, limit) {
            Bounded::Ok(b) => Some(b),
            Bounded::Missing => None,
            Bounded::TooLarge => {
                self.cost.too_large.push(path.to_path_buf());
                None
            }
        }
    }

    fn json<T: for<'de> Deserialize<'de>>(&mut self, path: &Path, limit: u64) -> Option<T> {
        serde_json::from_slice(&self.read(path, limit)?).ok()
    }

    /// Everything the files say about container `id`; `hint` is the runtime
    /// its cgroup names, which decides where to look first.
    pub fn container(&mut self, id: &str, hint: Option<Runtime>) -> ContainerFacts {
        let key = (id.to_string(), hint);
        if let Some(c) = self.known.get(&key) {
            return c.clone();
        }
        let mut c = ContainerFacts {
            id: id.to_string(),
            runtime: hint,
            ..ContainerFacts::default()
        };
        let found = match hint {
            Some(Runtime::Podman | Runtime::CriO) => self.storage(&mut c),
            Some(Runtime::Docker) => self.docker(&mut c),
            Some(Runtime::Containerd) => self.containerd(&mut c) || self.runc(&mut c),
            Some(Runtime::Runc) => self.runc(&mut c),
            // A bare id under a kubelet's pod cgroup: any runtime.
            None => {
                self.containerd(&mut c)
                    || self.docker(&mut c)
                    || self.storage(&mut c)
                    || self.runc(&mut c)
            }
        };
        if c.name.is_none() || (c.pod.uid.is_some() && c.pod.name.is_none()) {
            self.kubelet_logs(&mut c);
        }
        let _ = found;
        self.known.insert(key, c.clone());
        c
    }

    /// podman and CRI-O: the name from containers.json, annotations from the
    /// container's OCI config.
    fn storage(&mut self, c: &mut ContainerFacts) -> bool {
        if self.storage_names.is_none() {
            let path = self.roots.containers_storage.join("containers.json");
            let entries: Vec<StorageEntry> = self.json(&path, MAX_INDEX_BYTES).unwrap_or_default();
            self.storage_names = Some(
                entries
                    .into_iter()
                    .filter_map(|e| Some((e.id, name(e.names.first()?)?)))
                    .collect(),
            );
        }
        let listed = self
            .storage_names
            .as_ref()
            .and_then(|m| m.get(&c.id))
            .cloned();
        let path = self
            .roots
            .containers_storage
            .join(&c.id)
            .join("userdata/config.json");
        let config: Option<OciConfig> = self.json(&path, MAX_FILE_BYTES);
        if listed.is_none() && config.is_none() {
            return false;
        }
        c.name = listed;
        if let Some(a) = config.and_then(|o| o.annotations) {
            if c.runtime.is_none() {
                c.runtime = Some(match a.get("io.container.manager").map(String::as_str) {
                    Some("libpod") => Runtime::Podman,
                    _ => Runtime::CriO,
                });
            }
            from_annotations(&a, c);
        }
        true
    }

    /// Docker: `Name` and `Config.Labels` (the Docker shim's pod labels).
    fn docker(&mut self, c: &mut ContainerFacts) -> bool {
        let path = self.roots.docker.join(&c.id).join("config.v2.json");
        let Some(d) = self.json::<DockerConfig>(&path, MAX_FILE_BYTES) else {
            return false;
        };
        c.runtime.get_or_insert(Runtime::Docker);
        c.name = d
            .name
            .as_deref()
            .map(|n| n.trim_start_matches('/'))
            .and_then(name);
        if let Some(labels) = d.config.and_then(|i| i.labels) {
            from_annotations(&labels, c);
        }
        true
    }

    /// containerd's task bundle for Kubernetes: the OCI annotations.
    fn containerd(&mut self, c: &mut ContainerFacts) -> bool {
        let path = self.roots.containerd_tasks.join(&c.id).join("config.json");
        let Some(a) = self
            .json::<OciConfig>(&path, MAX_FILE_BYTES)
            .and_then(|o| o.annotations)
        else {
            return false;
        };
        c.runtime.get_or_insert(Runtime::Containerd);
        from_annotations(&a, c);
        true
    }

    /// runc's state: the OCI annotations are among its labels (`key=value`).
    fn runc(&mut self, c: &mut ContainerFacts) -> bool {
        for (dir, rt) in self.roots.runc_states.clone() {
            let path = dir.join(&c.id).join("state.json");
            let Some(s) = self.json::<RuncState>(&path, MAX_FILE_BYTES) else {
                continue;
            };
            c.runtime.get_or_insert(rt);
            let labels = s.config.and_then(|c| c.labels).unwrap_or_default();
            let a: HashMap<String, String> = labels
                .iter()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            from_annotations(&a, c);
            return true;
        }
        false
    }

    /// kubelet's log directories: the pod's namespace and name by uid, and the
    /// container's name by id.
    fn kubelet_logs(&mut self, c: &mut ContainerFacts) {
        if self.container_logs.is_none() {
            let mut m = HashMap::new();
            for f in self.list(&self.roots.container_logs.clone()) {
                // <pod>_<namespace>_<container>-<id>.log; none of the names has `_`.
                let Some(stem) = f.strip_suffix(".log") else {
                    continue;
                };
                let mut parts = stem.splitn(3, '_');
                let (Some(pod), Some(ns), Some(rest)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let Some((ctr, id)) = rest.rsplit_once('-') else {
                    continue;
                };
                if let (true, Some(pod), Some(ns), Some(ctr)) =
                    (is_hex_id(id), name(pod), name(ns), name(ctr))
                {
                    m.insert(id.to_ascii_lowercase(), (ns, pod, ctr));
                }
            }
            self.container_logs = Some(m);
        }
        if let Some((ns, pod, ctr)) = self
            .container_logs
            .as_ref()
            .and_then(|m| m.get(&c.id))
            .cloned()
        {
            c.name.get_or_insert(ctr);
            c.pod.merge(&PodFacts {
                namespace: Some(ns),
                name: Some(pod),
                uid: None,
            });
        }
        if let Some(uid) = c.pod.uid.clone()
            && c.pod.name.is_none()
        {
            let p = self.pod(&uid);
            c.pod.merge(&p);
        }
    }

    /// A pod by uid from kubelet's `/var/log/pods/<namespace>_<pod>_<uid>`.
    pub fn pod(&mut self, uid: &str) -> PodFacts {
        if self.pod_logs.is_none() {
            let mut m = HashMap::new();
            for d in self.list(&self.roots.pod_logs.clone()) {
                let mut parts = d.splitn(3, '_');
                let (Some(ns), Some(pod), Some(uid)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                if let (true, Some(ns), Some(pod)) = (is_pod_uid(uid), name(ns), name(pod)) {
                    m.insert(uid.to_ascii_lowercase(), (ns, pod));
                }
            }
            self.pod_logs = Some(m);
        }
        let (namespace, name) = self
            .pod_logs
            .as_ref()
            .and_then(|m| m.get(uid))
            .cloned()
            .unzip();
        PodFacts {
            namespace,
            name,
            uid: Some(uid.to_string()),
        }
    }

    /// The names in a directory (at most [`MAX_DIR_ENTRIES`]); none when it is missing.
    fn list(&mut self, dir: &Path) -> Vec<String> {
        self.cost.files += 1;
        let Ok(rd) = fs::read_dir(dir) else {
            return Vec::new();
        };
        rd.take(MAX_DIR_ENTRIES)
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }
}

/// Reads a process's cgroup file (bounded): what it says about its container.
pub fn process_hint(pid: u32) -> Option<(String, CgroupHint)> {
    match read_bounded(Path::new(&format!("/proc/{pid}/cgroup")), MAX_CGROUP_BYTES) {
        Bounded::Ok(b) => {
            let text = String::from_utf8_lossy(&b).into_owned();
            let h = parse_cgroup_file(&text);
            Some((text, h))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "e48412077324ab72236fba86173aa1941a3b74481201c831372640163202d62b";
    const ID2: &str = "abababababababababababababababababababababababababababababababab";
    const UID: &str = "1234abcd-0000-4000-8000-0123456789ab";

    fn hint(id: Option<&str>, rt: Option<Runtime>, pod: Option<&str>) -> CgroupHint {
        CgroupHint {
            container_id: id.map(String::from),
            runtime: rt,
            pod_uid: pod.map(String::from),
            podman_pod: None,
        }
    }

    #[test]
    fn cgroup_layouts() {
        use Runtime::*;
        let uid_ = UID.replace('-', "_");
        for (path, want) in [
            // podman, cgroupfs and systemd
            (
                format!("/libpod_parent/libpod-{ID}"),
                hint(Some(ID), Some(Podman), None),
            ),
            (
                format!("/machine.slice/libpod-{ID}.scope"),
                hint(Some(ID), Some(Podman), None),
            ),
            // Docker, cgroupfs and systemd; a process in a sub-cgroup of the container
            (format!("/docker/{ID}"), hint(Some(ID), Some(Docker), None)),
            (
                format!("/docker/{ID}/init.scope"),
                hint(Some(ID), Some(Docker), None),
            ),
            (
                format!("/system.slice/docker-{ID}.scope"),
                hint(Some(ID), Some(Docker), None),
            ),
            // Kubernetes with containerd and CRI-O, systemd driver
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/cri-containerd-{ID}.scope"
                ),
                hint(Some(ID), Some(Containerd), Some(UID)),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{uid_}.slice/crio-{ID}.scope"),
                hint(Some(ID), Some(CriO), Some(UID)),
            ),
            // cgroupfs driver: a bare id under the pod, with and without a QoS level
            (
                format!("/kubepods/besteffort/pod{UID}/{ID}"),
                hint(Some(ID), None, Some(UID)),
            ),
            (
                format!("/kubepods/pod{UID}/{ID}"),
                hint(Some(ID), None, Some(UID)),
            ),
            (
                format!("/kubepods/burstable/pod{UID}/crio-{ID}"),
                hint(Some(ID), Some(CriO), Some(UID)),
            ),
            // The pod alone
            (
                format!("/kubepods/burstable/pod{UID}"),
                hint(None, None, Some(UID)),
            ),
            // Not containers
            ("/".into(), CgroupHint::default()),
            ("/system.slice/nginx.service".into(), CgroupHint::default()),
            (
                format!("/libpod_parent/libpod-conmon-{ID}"),
                CgroupHint::default(),
            ),
            (format!("/user.slice/{ID}"), CgroupHint::default()),
            (
                "/process_api/5d12fabf0c430f09193cf1cabac98566".into(),
                CgroupHint::default(),
            ),
            (format!("/pod{UID}/{ID}"), CgroupHint::default()),
        ] {
            assert_eq!(parse_path(&path), want, "{path}");
        }
        assert!(parse_path(&format!("/libpod_parent/{ID2}/conmon")).is_empty());
        let pod = parse_path(&format!("/libpod_parent/{ID2}/libpod-{ID}"));
        assert_eq!(pod.container_id.as_deref(), Some(ID));
        assert_eq!(pod.podman_pod.as_deref(), Some(ID2));
        let pod = parse_path(&format!(
            "/machine.slice/machine-libpod_pod_{ID2}.slice/libpod-{ID}.scope"
        ));
        assert_eq!(pod.podman_pod.as_deref(), Some(ID2));
        // Uppercase hex is read as the same id.
        assert_eq!(
            parse_path(&format!("/docker/{}", ID.to_uppercase()))
                .container_id
                .as_deref(),
            Some(ID)
        );
    }

    #[test]
    fn cgroup_file_takes_the_first_line_that_names_a_container() {
        let text = format!(
            "9:name=systemd:/\n4:memory:/process_api/5d12\n1:cpu:/docker/{ID}\n0::/docker/{ID}\n"
        );
        assert_eq!(parse_cgroup_file(&text).container_id.as_deref(), Some(ID));
        assert!(parse_cgroup_file("0::/\n").is_empty());
        assert!(parse_cgroup_file("garbage").is_empty());
    }

    fn roots(dir: &Path) -> Roots {
        Roots {
            containers_storage: dir.join("storage"),
            docker: dir.join("docker"),
            containerd_tasks: dir.join("tasks"),
            runc_states: vec![
                (dir.join("runc-k8s"), Runtime::Containerd),
                (dir.join("runc"), Runtime::Runc),
            ],
            pod_logs: dir.join("pods"),
            container_logs: dir.join("containers"),
        }
    }

    fn put(path: PathBuf, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn podman_names_and_annotations() {
        let d = tempfile::tempdir().unwrap();
        let r = roots(d.path());
        put(
            r.containers_storage.join("containers.json"),
            &format!(
                r#"[{{"id":"{ID}","names":["web2"],"image":"x"}},{{"id":"{ID2}","names":[]}}]"#
            ),
        );
        put(
            r.containers_storage.join(ID).join("userdata/config.json"),
            r#"{"ociVersion":"1.0","annotations":{"io.container.manager":"libpod",
              "io.kubernetes.pod.name":"web-7f9c","io.kubernetes.pod.namespace":"shop"}}"#,
        );
        let mut m = Metadata::new(r);
        let c = m.container(ID, Some(Runtime::Podman));
        assert_eq!(c.name.as_deref(), Some("web2"));
        assert_eq!(c.runtime, Some(Runtime::Podman));
        assert_eq!(
            (
                c.pod.namespace.as_deref(),
                c.pod.name.as_deref(),
                c.pod.uid.as_deref()
            ),
            (Some("shop"), Some("web-7f9c"), None)
        );
        // Asked again: no file is read twice.
        let files = m.cost.files;
        assert_eq!(m.container(ID, Some(Runtime::Podman)), c);
        assert_eq!(m.cost.files, files);
        // Listed without a name, and no config: nothing is made up.
        let c = m.container(ID2, Some(Runtime::Podman));
        assert_eq!((c.name, c.pod.is_empty()), (None, true));
    }

    #[test]
    fn docker_and_kubelet_files() {
        let d = tempfile::tempdir().unwrap();
        let r = roots(d.path());
        put(
            r.docker.join(ID).join("config.v2.json"),
            r#"{"ID":"x","Name":"/web3","Config":{"Labels":{"io.kubernetes.pod.uid":"1234abcd-0000-4000-8000-0123456789ab"}}}"#,
        );
        fs::create_dir_all(r.pod_logs.join(format!("shop_web-7f9c_{UID}/app"))).unwrap();
        fs::create_dir_all(r.pod_logs.join("bad_name")).unwrap();
        fs::create_dir_all(&r.container_logs).unwrap();
        fs::write(
            r.container_logs
                .join(format!("web-7f9c_shop_app-{ID2}.log")),
            "",
        )
        .unwrap();
        let mut m = Metadata::new(r.clone());
        let c = m.container(ID, Some(Runtime::Docker));
        assert_eq!(c.name.as_deref(), Some("web3"));
        assert_eq!(c.runtime, Some(Runtime::Docker));
        // The pod's name and namespace from kubelet's directory, by the uid of the label.
        assert_eq!(
            (
                c.pod.namespace.as_deref(),
                c.pod.name.as_deref(),
                c.pod.uid.as_deref()
            ),
            (Some("shop"), Some("web-7f9c"), Some(UID))
        );
        // A bare id under a pod: containerd's runc state carries the annotations;
        // the container's name comes from kubelet's log link.
        put(
            r.runc_states[0].0.join(ID2).join("state.json"),
            r#"{"id":"x","config":{"labels":["bundle=/x","io.kubernetes.cri.container-type=container",
               "io.kubernetes.cri.sandbox-id=e48412077324ab72236fba86173aa1941a3b74481201c831372640163202d62b"]}}"#,
        );
        let c = m.container(ID2, None);
        assert_eq!(c.runtime, Some(Runtime::Containerd));
        assert_eq!(c.name.as_deref(), Some("app"));
        assert_eq!(c.sandbox_id.as_deref(), Some(ID));
        assert_eq!(c.pod.name.as_deref(), Some("web-7f9c"));
        // A sandbox by its annotation.
        put(
            r.containerd_tasks.join(ID).join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-name":"p",
               "io.kubernetes.cri.sandbox-namespace":"n","io.kubernetes.cri.sandbox-uid":"1234abcd-0000-4000-8000-0123456789ab"}}"#,
        );
        let c = m.container(ID, Some(Runtime::Containerd));
        assert!(c.sandbox);
        assert_eq!(c.pod.name.as_deref(), Some("p"));
        assert_eq!(m.pod(UID).name.as_deref(), Some("web-7f9c"));
        assert_eq!(m.pod("00000000-0000-4000-8000-0123456789ab").name, None);
    }

    #[test]
    fn bounded_reads_skip_what_is_too_large_or_not_a_file() {
        let d = tempfile::tempdir().unwrap();
        let r = roots(d.path());
        let big = format!(r#"{{"Name":"/{}"}}"#, "x".repeat(MAX_FILE_BYTES as usize));
        put(r.docker.join(ID).join("config.v2.json"), &big);
        let fifo = r.docker.join(ID2).join("config.v2.json");
        fs::create_dir_all(fifo.parent().unwrap()).unwrap();
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut m = Metadata::new(r);
        assert_eq!(m.container(ID, Some(Runtime::Docker)).name, None);
        assert_eq!(m.cost.too_large.len(), 1);
        // A FIFO is refused at once instead of blocking.
        assert_eq!(m.container(ID2, Some(Runtime::Docker)).name, None);
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 10),
            Bounded::Missing
        ));
        // /proc files report size 0 and are still read, bounded.
        assert!(
            matches!(read_bounded(Path::new("/proc/self/cgroup"), MAX_CGROUP_BYTES), Bounded::Ok(b) if !b.is_empty())
        );
        // A name longer than the limit is not used.
        let d2 = tempfile::tempdir().unwrap();
        let r2 = roots(d2.path());
        put(
            r2.docker.join(ID).join("config.v2.json"),
            &format!(r#"{{"Name":"/{}"}}"#, "y".repeat(MAX_NAME_BYTES + 1)),
        );
        assert_eq!(
            Metadata::new(r2).container(ID, Some(Runtime::Docker)).name,
            None
        );
    }
}
