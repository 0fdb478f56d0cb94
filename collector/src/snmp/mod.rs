//! SNMP polling of routers and switches. [`types`] holds the owned values every part shares.
// The client (trait + snmp2 implementation), the walk, the MIB modules and the poller are added
// beside it; see ARCHITECTURE.md.

pub mod types;

pub use types::{Oid, Value, VarBind};
