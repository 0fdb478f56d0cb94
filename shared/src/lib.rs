//! The Steward wire protocol, shared by the agent and the collector.
//!
//! A report on the wire is a protocol version (a postcard varint) followed by that version's
//! envelope, encoded with postcard. Each version's types are frozen once shipped: postcard is not
//! self-describing, so adding a field to a shipped struct would break every older reader. See
//! `PROTOCOL.md` beside this crate for the rules of adding a version.
//!
//! This crate does no I/O and has no async runtime; it is plain data and a codec.

pub mod codec;
pub mod v1;

pub use codec::{DecodeError, EncodeError, Envelope, decode, encode_v1};

/// Protocol versions this build can decode, oldest first. The collector advertises the highest in
/// the `x-steward-protocol-max` response header so an agent can learn what it may send.
pub const SUPPORTED_VERSIONS: &[u16] = &[1];

/// The highest protocol version this build speaks.
pub const PROTOCOL_VERSION_MAX: u16 = 1;

/// Media type of an encoded report body.
pub const REPORT_CONTENT_TYPE: &str = "application/x-steward-report";

/// Response header carrying the collector's highest supported protocol version.
pub const PROTOCOL_MAX_HEADER: &str = "x-steward-protocol-max";

/// Headers an agent sends with each report about its spool (reports waiting on its disk):
/// how many, their bytes, when the oldest was made (Unix ms), and how many it dropped since
/// enrollment. Optional; outside the versioned payload, so any collector can ignore them.
pub const SPOOL_BACKLOG_HEADER: &str = "x-steward-spool-backlog";
pub const SPOOL_BYTES_HEADER: &str = "x-steward-spool-bytes";
pub const SPOOL_OLDEST_HEADER: &str = "x-steward-spool-oldest-ms";
pub const SPOOL_DROPPED_HEADER: &str = "x-steward-spool-dropped";
