//! CMDB logic that is not storage: identification of the CI a report is about.

pub mod identify;
