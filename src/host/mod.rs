//! What is read from the host besides sockets: network namespaces and who
//! they belong to (containers, pods), the processes that own sockets, sysctls,
//! the kernel's TCP counters, and the conntrack table's size and counters.

pub mod conntrack;
pub mod containers;
pub mod counters;
pub mod identity;
pub mod netns;
pub mod procs;
pub mod sysctl;
