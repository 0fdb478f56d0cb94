//! Inventory: what the host is and what runs on it, each source reading only under the root it
//! is given ("/" on a real host, a fixture tree in tests).

pub mod asset;
pub mod hardware;
