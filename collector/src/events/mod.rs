//! From observations to stored events: what the rules engine is fed ([`observe`]), and the
//! service that runs the engine and records its transitions ([`service`]).
pub mod observe;
pub mod service;

pub use service::{EventService, RuleSummary, check_recurrence, load_rules};
