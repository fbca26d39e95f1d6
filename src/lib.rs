//! prestage: zero-touch onboarding of new Macs with JumpCloud, from the MDM prestage to the
//! employee's own account.
//!
//! Architecture (one folder per part):
//! - [`config`]: the admin's plist, parsed and validated into a typed [`config::Config`];
//! - [`jumpcloud`]: the typed JumpCloud client (retries, both auth modes);
//! - [`host`]: the Mac, through the commands of SPEC §4 under `--root`;
//! - [`ui`]: the employee's screens (swiftDialog);
//! - [`engine`]: the crash-safe enrollment state machine;
//! - [`sim`]: the simulated JumpCloud tenant and agent used by tests and `prestage demo`;
//! - [`cli`]: the command line.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod engine;
pub mod host;
pub mod jumpcloud;
pub mod logging;
pub mod paths;
pub mod policy;
pub mod sim;
pub mod ui;

/// `prestage/<version>`, sent as `User-Agent`.
pub const USER_AGENT: &str = concat!("prestage/", env!("CARGO_PKG_VERSION"));
