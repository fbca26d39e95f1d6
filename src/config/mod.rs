//! Configuration: the admin's plist (managed preferences over the local file, key by key),
//! parsed into a raw form and validated into [`Config`] (SPEC §3).

pub mod keychain;
pub mod legacy;
mod model;

pub use model::*;
