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
//! - [`config`]: the `[snmp]` section of `collector.toml`.
//! - [`poller`]: polls every target at its interval and stores what the modules decode.

pub mod client;
pub mod config;
pub mod mib;
pub mod poller;
pub mod session;
pub mod testing;
pub mod types;
pub mod walk;
#[doc(hidden)] // pub for the `snmp_response` fuzz target only
pub mod wire;

pub use client::{Credentials, SnmpClient, SnmpError, SnmpVersion};
pub use config::SnmpConfig;
pub use session::{SessionOptions, SnmpSession};
pub use types::{Oid, Value, VarBind};
pub use walk::{Walk, WalkOptions, walk, walk_many};
