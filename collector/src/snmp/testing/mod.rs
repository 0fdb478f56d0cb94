//! Test support other crates reuse (the collector's integration tests, the end-to-end tests):
//! [`MemoryAgent`], an in-memory [`super::SnmpClient`] that replays a recorded walk and can
//! misbehave on request, and [`Snmpd`], a real net-snmp agent on a loopback port. Compiled in
//! every build because integration tests in other crates cannot see `cfg(test)` items; neither
//! is used by the collector itself.

pub mod memory;
pub mod snmpd;

pub use memory::{Fault, MemoryAgent};
pub use snmpd::{Snmpd, SnmpdConfig, SnmpdUser};
