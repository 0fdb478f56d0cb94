//! CMDB logic that is not storage: identification of the CI a report is about, and CI classes.

pub mod classes;
pub mod identify;
