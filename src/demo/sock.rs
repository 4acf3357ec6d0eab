//! The demo's sockets: opened here, tracked so that Ctrl-C or SIGTERM leaves no
//! listener, established or half-closed socket behind.
//!
//! Every socket the demo opens is registered by descriptor. On a signal, a
//! dedicated thread takes the registry lock (so no socket closes under it),
//! removes drop-all filters and sets `SO_LINGER {on, 0}` on each, then exits:
//! the kernel closes every descriptor with a RST, so nothing lingers in LISTEN,
//! ESTABLISHED, CLOSE_WAIT or LAST_ACK. TIME_WAIT sockets may remain on the host;
//! they hold no port that a listener needs and expire on their own.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use nix::sys::signal::Signal;
use nix::sys::socket::{
    self, AddressFamily, Backlog, SockFlag, SockProtocol, SockType, SockaddrIn, sockopt,
};

use crate::ffi;

static OPEN: Mutex<BTreeSet<RawFd>> = Mutex::new(BTreeSet::new());

fn lock() -> std::sync::MutexGuard<'static, BTreeSet<RawFd>> {
    OPEN.lock().unwrap_or_else(|p| p.into_inner())
}

/// A socket registered for cleanup on a signal; unregistered when dropped.
#[derive(Debug)]
pub struct Tracked<T: AsRawFd> {
    inner: Option<T>,
}

impl<T: AsRawFd> Tracked<T> {
    pub fn new(inner: T) -> Tracked<T> {
        lock().insert(inner.as_raw_fd());
        Tracked { inner: Some(inner) }
    }
}

impl<T: AsRawFd> Deref for Tracked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_ref().expect("present until drop")
    }
}

impl<T: AsRawFd> Drop for Tracked<T> {
    fn drop(&mut self) {
        let mut open = lock();
        if let Some(s) = self.inner.take() {
            open.remove(&s.as_raw_fd());
            drop(s); // closed while the lock is held: the cleanup thread never sees a reused number
        }
    }
}

pub type Stream = Tracked<TcpStream>;
pub type Listener = Tracked<TcpListener>;

/// On SIGINT or SIGTERM: reset every socket the demo holds open (so nothing
/// is left in LISTEN, ESTABLISHED or a teardown state), say so, and exit.
pub fn install_signal_cleanup() -> io::Result<()> {
    crate::signals::install(crate::signals::OnSignal::Exit(reset_all))
}

fn reset_all(sig: Signal) {
    let open = lock();
    for &fd in open.iter() {
        ffi::reset_on_close(fd);
    }
    crate::output::note(&format!(
        "demo interrupted by {}; its sockets were reset",
        sig.as_str()
    ));
}

fn v4(port: u16) -> SockaddrIn {
    SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

fn tcp_socket() -> io::Result<OwnedFd> {
    socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Tcp,
    )
    .map_err(io::Error::from)
}

/// A listener on 127.0.0.1:`port` (0 = any free port).
pub fn listen(port: u16, reuse_addr: bool) -> io::Result<Listener> {
    let fd = tcp_socket()?;
    if reuse_addr {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    socket::bind(fd.as_raw_fd(), &v4(port))?;
    socket::listen(&fd, Backlog::new(4096).map_err(io::Error::from)?)?;
    Ok(Tracked::new(TcpListener::from(fd)))
}

/// Only binds (no listen): the step where a restarted server fails.
pub fn bind_only(port: u16, reuse_addr: bool) -> io::Result<OwnedFd> {
    let fd = tcp_socket()?;
    if reuse_addr {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    socket::bind(fd.as_raw_fd(), &v4(port))?;
    Ok(fd)
}

/// Connects to 127.0.0.1:`to`, from `from` when given (bound explicitly, with
/// SO_REUSEADDR when asked), else from an ephemeral port.
pub fn connect(to: u16, from: Option<u16>, reuse_addr: bool) -> io::Result<Stream> {
    let fd = tcp_socket()?;
    if reuse_addr {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    if let Some(p) = from {
        socket::bind(fd.as_raw_fd(), &v4(p))?;
    }
    let s = Tracked::new(TcpStream::from(fd));
    socket::connect(s.as_raw_fd(), &v4(to))?;
    Ok(s)
}

/// A connected pair on `l`: (client, accepted server socket).
pub fn pair(l: &Listener, from: Option<u16>, reuse_addr: bool) -> io::Result<(Stream, Stream)> {
    let c = connect(port_of(l)?, from, reuse_addr)?;
    let (s, _) = l.accept()?;
    Ok((c, Tracked::new(s)))
}

pub fn port_of(l: &TcpListener) -> io::Result<u16> {
    Ok(l.local_addr()?.port())
}

pub fn local_port(s: &TcpStream) -> io::Result<u16> {
    match s.local_addr()? {
        SocketAddr::V4(a) => Ok(a.port()),
        SocketAddr::V6(a) => Ok(a.port()),
    }
}

pub fn cookie(s: &impl AsFd) -> io::Result<u64> {
    ffi::socket_cookie(s.as_fd())
}

pub fn drop_all(s: &impl AsFd) -> io::Result<()> {
    ffi::attach_drop_all(s.as_fd())
}

/// Why a scenario that loses packets on purpose could not run.
pub const FILTER_REFUSED: &str = "losing packets on purpose needs SO_ATTACH_FILTER, which this kernel refuses here (EPERM; it works inside a user namespace)";

/// Whether this process may attach a socket filter. Some kernels refuse an
/// ordinary user on the host (EPERM) yet allow it inside a user namespace.
pub fn filters_allowed(s: &impl AsFd) -> io::Result<bool> {
    match drop_all(s) {
        Ok(()) => undrop(s).map(|()| true),
        Err(e) if matches!(errno(&e), libc::EPERM | libc::EACCES) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn undrop(s: &impl AsFd) -> io::Result<()> {
    ffi::detach_filter(s.as_fd())
}

pub fn set_linger_zero(s: &impl AsFd) -> io::Result<()> {
    socket::setsockopt(
        s,
        sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    )
    .map_err(io::Error::from)
}

pub fn set_user_timeout(s: &impl AsFd, ms: u32) -> io::Result<()> {
    socket::setsockopt(s, sockopt::TcpUserTimeout, &ms).map_err(io::Error::from)
}

/// Reads and clears the socket's pending error (0 = none).
pub fn take_error(s: &impl AsFd) -> io::Result<i32> {
    socket::getsockopt(s, sockopt::SocketError).map_err(io::Error::from)
}

/// Closes a socket with a RST, leaving no TIME_WAIT: for cleaning up helpers.
pub fn abort(s: Stream) {
    let _ = undrop(&*s);
    let _ = set_linger_zero(&*s);
    drop(s);
}

/// The errno of an I/O error, for comparisons and messages.
pub fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// `EADDRNOTAVAIL`-style name of an errno.
pub fn errno_name(n: i32) -> String {
    if n == 0 {
        return "no error".to_string();
    }
    format!("{:?}", nix::errno::Errno::from_raw(n))
}
