//! MIB modules: pure decoders from walked varbinds to typed device data.
//!
//! Each module is one file implementing [`MibModule`] and is listed once in [`MODULES`]; the
//! poller walks every module's [`MibModule::roots`] and hands the varbinds to
//! [`decode_device`]. Nothing here does I/O, so recorded walks (`collector/testdata/snmp`)
//! drive the tests.
//!
//! *Invariant*: decoding never panics and never fails as a whole. Devices answer with wrong
//! types, half-filled tables and odd indexes; each oddity becomes a problem string naming the
//! OID (in [`DeviceData::problems`]) and costs as little as possible: a bad cell empties that
//! one field, and a row is skipped only when what identifies it (its index, or the column a
//! result cannot exist without) is unusable.

pub mod bridge;
pub mod cdp;
pub mod entity;
pub mod host_resources;
pub mod interfaces;
pub mod lldp;
pub mod rates;
pub mod system;
mod table;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::snmp::types::{Oid, VarBind};

pub use bridge::FdbEntry;
pub use entity::PhysicalEntity;
pub use host_resources::{Processors, Storage};
pub use interfaces::Interface;
pub use system::System;
pub use table::{Counter, CounterWidth};

/// One MIB module: which subtrees to walk and how to read them.
pub trait MibModule: Sync {
    /// Short stable name, used in problems and logs (`interfaces`, `lldp`, ...).
    fn name(&self) -> &'static str;

    /// The subtrees the poller must walk for this module.
    fn roots(&self) -> &[Oid];

    /// Decodes this module's part of `out` from `walked`, which holds at least every varbind
    /// walked under [`Self::roots`] and may hold more (a module reads only its own OIDs).
    /// Modules run in [`MODULES`] order and may read what earlier ones filled in: `cdp` and
    /// `bridge` name ports from `out.interfaces`.
    fn decode(&self, walked: &[VarBind], out: &mut DeviceData);
}

/// Every MIB module, in decoding order: `interfaces` comes before the modules that name ports
/// from it (a test checks this).
pub static MODULES: &[&dyn MibModule] = &[
    &system::SystemMib,
    &interfaces::IfMib,
    &host_resources::HostResourcesMib,
    &entity::EntityMib,
    &lldp::LldpMib,
    &cdp::CdpMib,
    &bridge::BridgeMib,
];

/// Everything decoded from one poll of one device.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceData {
    pub system: Option<System>,
    pub interfaces: Vec<Interface>,
    pub processors: Processors,
    pub storage: Vec<Storage>,
    pub entities: Vec<PhysicalEntity>,
    /// LLDP and CDP neighbours together, LLDP first.
    pub neighbours: Vec<Neighbour>,
    pub fdb: Vec<FdbEntry>,
    /// What could not be decoded, each `module: OID: what`, at most
    /// [`MAX_PROBLEMS_PER_MODULE`] per module plus one line counting the rest.
    pub problems: Vec<String>,
}

/// A device seen on the other end of a port, from LLDP or CDP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    pub protocol: NeighbourProtocol,
    /// The local port's name: from lldpLocPortTable (LLDP) or ifName by ifIndex (CDP).
    pub local_port: Option<String>,
    /// The local ifIndex (CDP indexes its cache by it).
    pub local_if_index: Option<u32>,
    /// lldpRemLocalPortNum: LLDP's own port number, which need not be an ifIndex.
    pub local_port_num: Option<u32>,
    /// The neighbour's name: LLDP sysName, or the CDP device id without the serial some
    /// NX-OS devices append in parentheses.
    pub remote_name: Option<String>,
    /// LLDP chassis id as decoded for its subtype (a MAC as `aa:bb:..`), or the CDP device id.
    pub remote_chassis_id: Option<String>,
    /// What `remote_chassis_id` is: an LLDP chassis id subtype name (`macAddress`,
    /// `networkAddress`, `interfaceName`, `local`, ...) or `cdpDeviceId`.
    pub remote_chassis_id_type: Option<String>,
    /// The neighbour's port, as a name where the neighbour gave one (see [`lldp`]).
    pub remote_port: Option<String>,
    /// LLDP port id as decoded for its subtype, when it differs from `remote_port`.
    pub remote_port_id: Option<String>,
    /// LLDP port description.
    pub remote_port_descr: Option<String>,
    /// LLDP sysDesc or CDP version string.
    pub remote_descr: Option<String>,
    /// A management address, IPv4 preferred.
    pub remote_mgmt_addr: Option<String>,
    /// CDP platform (e.g. `cisco WS-C2960X-48FPD-L`); LLDP has none.
    pub remote_platform: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NeighbourProtocol {
    Lldp,
    Cdp,
}

impl DeviceData {
    /// ifIndex → interface name, for modules that name ports (CDP, bridge).
    pub fn interface_names(&self) -> BTreeMap<u32, String> {
        self.interfaces
            .iter()
            .map(|i| (i.index, i.name.clone()))
            .collect()
    }

    /// The device's own chassis entity (serial, model, firmware), see [`entity::chassis`].
    pub fn chassis(&self) -> Option<&PhysicalEntity> {
        entity::chassis(&self.entities)
    }
}

/// Enough to tell what is wrong on a device, without one broken 10,000-row table flooding
/// the log and the store with 10,000 near-identical lines.
pub const MAX_PROBLEMS_PER_MODULE: usize = 20;

/// Problems found while decoding, each naming the OID at fault.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn push(&mut self, oid: &Oid, what: impl fmt::Display) {
        self.0.push(format!("{oid}: {what}"));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }

    /// Moves these problems into `out` (modules keep [`DeviceData::problems`] a plain list
    /// of strings, which is what consumers and the JSON want).
    pub fn append_to(self, out: &mut Vec<String>) {
        out.extend(self.0);
    }
}

/// Runs every module of [`MODULES`] over one device's walk.
pub fn decode_device(walked: &[VarBind]) -> DeviceData {
    let mut out = DeviceData::default();
    let mut problems = Vec::new();
    for module in MODULES {
        module.decode(walked, &mut out);
        let found = std::mem::take(&mut out.problems);
        let total = found.len();
        problems.extend(
            found
                .into_iter()
                .take(MAX_PROBLEMS_PER_MODULE)
                .map(|p| format!("{}: {p}", module.name())),
        );
        if total > MAX_PROBLEMS_PER_MODULE {
            problems.push(format!(
                "{}: {} more problems not listed",
                module.name(),
                total - MAX_PROBLEMS_PER_MODULE
            ));
        }
    }
    out.problems = problems;
    out
}

/// Every root of every module, in table order without duplicates: what the poller walks.
pub fn all_roots() -> Vec<Oid> {
    let mut roots: Vec<Oid> = Vec::new();
    for root in MODULES.iter().flat_map(|m| m.roots()) {
        if !roots.contains(root) {
            roots.push(root.clone());
        }
    }
    roots
}

#[cfg(test)]
mod tests;
