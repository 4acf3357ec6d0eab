//! What is read from the host besides sockets: network namespaces, the
//! processes that own sockets, and sysctls.

pub mod netns;
pub mod procs;
pub mod sysctl;
