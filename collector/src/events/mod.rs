//! From observations to stored events: what the rules engine is fed ([`observe`]).
pub mod observe;
