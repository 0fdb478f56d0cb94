//! Inventory logic that is not storage: package version ordering (`ci software --version-below`),
//! the asset CSV import, and which hardware identifiers are placeholders that never identify.

pub mod assets;
pub mod junk;
pub mod version;
