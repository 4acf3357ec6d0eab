//! The one module allowed to use `unsafe`: system calls that nix and the standard
//! library do not wrap. Every block states why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// `BPF_RET | BPF_K` (linux/bpf_common.h): return the constant `k`.
const BPF_RET_K: u16 = 0x06;

/// Attaches a classic BPF socket filter of one instruction, "return 0", so the
/// kernel drops every packet that arrives for this socket before TCP sees it.
/// No privilege is needed; [`detach_filter`] removes it.
pub fn attach_drop_all(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut prog = [libc::sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: 0,
    }];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: `fd` is a live descriptor for the duration of the borrow; `fprog`
    // points at `prog`, both on this stack frame and alive for the whole call,
    // and the length passed is exactly the size of `sock_fprog`. The kernel
    // copies the program before returning.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Removes a socket filter attached by [`attach_drop_all`]. ENOENT means there
/// was none, which is not an error here.
pub fn detach_filter(fd: BorrowedFd<'_>) -> io::Result<()> {
    let dummy: libc::c_int = 0;
    // SAFETY: `fd` is live for the borrow; the kernel ignores the option value
    // for SO_DETACH_FILTER, and we pass a valid pointer to an int with its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DETACH_FILTER,
            (&dummy as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOENT) {
        Ok(())
    } else {
        Err(e)
    }
}

/// The socket's cookie (`SO_COOKIE`): the number sock_diag reports for it, which
/// stays the same when the socket turns into a TIME_WAIT minisocket.
pub fn socket_cookie(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: `fd` is live for the borrow; `cookie` and `len` are valid, writable
    // and correctly sized for SO_COOKIE, which writes one u64.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cookie)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Prepares a descriptor known only by number for a clean exit: removes any
/// socket filter and sets `SO_LINGER {on, 0}`, so the close at exit sends a RST.
/// Used by the signal handler thread, which cannot borrow the owners' sockets.
/// A stale number only makes the calls fail with EBADF or ENOTSOCK.
pub fn reset_on_close(fd: RawFd) {
    let dummy: libc::c_int = 0;
    let lin = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: both calls pass pointers to live stack values with their exact sizes;
    // the kernel validates `fd` itself, so an invalid number cannot cause memory
    // unsafety, only an error return, which we ignore on this exit path.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DETACH_FILTER,
            (&dummy as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lin as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    #[test]
    fn filter_attach_detach_and_cookie() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        // Some kernels refuse socket filters to ordinary users outside a user namespace.
        match attach_drop_all(c.as_fd()) {
            Ok(()) => {}
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
        detach_filter(c.as_fd()).unwrap();
        // A second detach finds nothing, and that is fine.
        detach_filter(c.as_fd()).unwrap();
        let a = socket_cookie(c.as_fd()).unwrap();
        let b = socket_cookie(l.as_fd()).unwrap();
        assert!(a != 0 && b != 0 && a != b);
    }
}
