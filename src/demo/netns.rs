//! Isolation: the demo runs in a private network namespace where it can, so the
//! host's sockets and sysctls are never touched and SOCK_DESTROY is permitted.

use std::fs;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Uid};

use crate::diag::destroy::read_ack;
use crate::diag::request::message;

/// Set once the process is inside its own network namespace; sysctl writes
/// refuse to run without it, so the host's settings cannot be changed by mistake.
static PRIVATE: AtomicBool = AtomicBool::new(false);

/// Where the demo's sockets live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// A private network namespace (inside a user namespace when not root).
    Namespace,
    /// The host's loopback, with the reason when it was not asked for.
    Host { reason: Option<String> },
}

impl Isolation {
    pub fn is_private(&self) -> bool {
        matches!(self, Isolation::Namespace)
    }

    pub fn name(&self) -> &'static str {
        if self.is_private() {
            "namespace"
        } else {
            "host"
        }
    }

    /// The one line that says what runs where, and what is skipped.
    pub fn note(&self) -> Option<String> {
        match self {
            Isolation::Namespace => None,
            Isolation::Host { reason: None } => Some(
                "running on the host's loopback (--host): parts that change sysctls are skipped, the host's settings are left alone"
                    .to_string(),
            ),
            Isolation::Host { reason: Some(r) } => Some(format!(
                "no private network namespace ({r}): running on the host's loopback; parts that change sysctls are skipped"
            )),
        }
    }
}

/// Enters a private network namespace and brings `lo` up. Must run before any
/// thread starts: the kernel refuses `CLONE_NEWUSER` to a multi-threaded process.
/// Falls back to the host (with the reason) when the kernel refuses.
pub fn enter_private() -> Isolation {
    let (uid, gid) = (Uid::current(), Gid::current());
    let flags = if Uid::effective().is_root() {
        CloneFlags::CLONE_NEWNET
    } else {
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET
    };
    if let Err(e) = unshare(flags) {
        return Isolation::Host {
            reason: Some(format!("unshare: {}", e.desc())),
        };
    }
    if flags.contains(CloneFlags::CLONE_NEWUSER)
        && let Err(e) = map_ids(uid, gid)
    {
        return Isolation::Host {
            reason: Some(format!("user namespace id map: {e:#}")),
        };
    }
    match loopback_up() {
        Ok(()) => {
            PRIVATE.store(true, Ordering::SeqCst);
            Isolation::Namespace
        }
        Err(e) => Isolation::Host {
            reason: Some(format!("bringing lo up: {e:#}")),
        },
    }
}

/// Maps our own uid and gid to root inside the new user namespace, so that the
/// namespace's sysctl files are ours to write.
fn map_ids(uid: Uid, gid: Gid) -> Result<()> {
    fs::write("/proc/self/setgroups", "deny").context("writing /proc/self/setgroups")?;
    fs::write("/proc/self/uid_map", format!("0 {uid} 1")).context("writing /proc/self/uid_map")?;
    fs::write("/proc/self/gid_map", format!("0 {gid} 1")).context("writing /proc/self/gid_map")?;
    Ok(())
}

const RTM_NEWLINK: u16 = 16;

/// `RTM_NEWLINK` for `lo` with IFF_UP set: what `ip link set lo up` sends.
fn loopback_up() -> Result<()> {
    let index = nix::net::if_::if_nametoindex("lo").context("finding lo")?;
    let sock = Socket::new(NETLINK_ROUTE).context("opening a NETLINK_ROUTE socket")?;
    let seq: u32 = 1;
    // struct ifinfomsg: family (AF_UNSPEC), pad, type, index, flags, change.
    let mut ifi = [0u8; 16];
    ifi[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
    let up = libc::IFF_UP as u32;
    ifi[8..12].copy_from_slice(&up.to_ne_bytes());
    ifi[12..16].copy_from_slice(&up.to_ne_bytes());
    let b = message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, &ifi);
    sock.send_to(&b, &SocketAddr::new(0, 0), 0)
        .context("sending RTM_NEWLINK")?;
    read_ack(&sock, seq).context("RTM_NEWLINK for lo")?;
    Ok(())
}

fn knob(name: &str) -> String {
    format!("/proc/sys/net/ipv4/{name}")
}

/// Reads a sysctl of the current network namespace (`tcp_timestamps`).
pub fn read_sysctl(name: &str) -> io::Result<String> {
    Ok(fs::read_to_string(knob(name))?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" "))
}

/// Writes a sysctl. Only ever called inside the private namespace.
pub fn write_sysctl(name: &str, value: &str) -> Result<()> {
    if !PRIVATE.load(Ordering::SeqCst) {
        anyhow::bail!("refusing to change net.ipv4.{name} outside the demo's private namespace");
    }
    fs::write(knob(name), value)
        .with_context(|| format!("setting net.ipv4.{name} = {value} in the demo's namespace"))
}

/// Restores sysctls to the values they had when it was made.
pub struct SysctlGuard {
    saved: Vec<(String, String)>,
}

impl SysctlGuard {
    pub fn new() -> SysctlGuard {
        SysctlGuard { saved: Vec::new() }
    }

    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        if !self.saved.iter().any(|(n, _)| n == name) {
            let old = read_sysctl(name).with_context(|| format!("reading net.ipv4.{name}"))?;
            self.saved.push((name.to_string(), old));
        }
        write_sysctl(name, value)
    }
}

impl Default for SysctlGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SysctlGuard {
    fn drop(&mut self) {
        for (n, v) in self.saved.iter().rev() {
            let _ = write_sysctl(n, v);
        }
    }
}
