//! What is read from the host besides sockets: network namespaces, the
//! processes that own sockets, sysctls, and the conntrack table's size and counters.

pub mod conntrack;
pub mod netns;
pub mod procs;
pub mod sysctl;
