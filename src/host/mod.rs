//! What is read from the host besides sockets: network namespaces and who
//! they belong to (containers, pods), the processes that own sockets, sysctls,
//! and the conntrack table's size and counters.

pub mod conntrack;
pub mod containers;
pub mod identity;
pub mod netns;
pub mod procs;
pub mod sysctl;
