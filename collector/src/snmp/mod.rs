//! SNMP polling of routers and switches.
//!
//! - [`types`]: the owned values every part shares (OIDs, values, varbinds, recorded walks).
//! - [`client`]: the [`SnmpClient`] trait, [`SnmpError`] and [`Credentials`].
//! - [`session`]: [`SnmpSession`], the client over UDP (snmp2), with timeouts, retries and
//!   SNMPv3 engine resynchronisation.
//! - [`walk`](mod@walk): subtree walks over GETBULK/GETNEXT, with their bounds.
//! - [`mib`]: pure decoders from walked varbinds to typed device data.
//! - [`testing`]: an in-memory agent and a real `snmpd` harness, for tests in any crate.
//!
//! The poller is added beside these; see ARCHITECTURE.md.

pub mod client;
pub mod mib;
pub mod session;
pub mod testing;
pub mod types;
pub mod walk;
mod wire;

pub use client::{Credentials, SnmpClient, SnmpError, SnmpVersion};
pub use session::{SessionOptions, SnmpSession};
pub use types::{Oid, Value, VarBind};
pub use walk::{Walk, WalkOptions, walk, walk_many};
