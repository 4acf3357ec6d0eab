//! The one system call std and nix do not wrap for us: `wait4`, which returns
//! the resource usage (peak RSS) of exactly the child it reaps.
#![allow(unsafe_code)]

use std::io;

/// Exit status and peak resident set (KiB) of a finished child.
pub struct Reaped {
    pub success: bool,
    pub maxrss_kib: u64,
}

/// Waits for child `pid` and returns how it ended and its peak RSS. For a
/// shell pipeline the peak covers every process the shell waited for.
pub fn wait4(pid: u32) -> io::Result<Reaped> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; an all-zero value is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers refer to live, writable locals of the right
        // types for the whole call; the kernel writes nothing else.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r == pid as libc::pid_t {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok(Reaped {
        success,
        maxrss_kib: usage.ru_maxrss.max(0) as u64,
    })
}
