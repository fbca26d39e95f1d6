//! prestage: zero-touch onboarding of new Macs with JumpCloud, from the MDM prestage to the
//! employee's own account.
//!
//! Architecture (one folder per part):
//! - [`config`]: the admin's plist, parsed and validated into a typed [`config::Config`];
//! - [`jumpcloud`]: the typed JumpCloud client (retries, both auth modes);
//! - [`host`]: the Mac, through the commands of SPEC §4 under `--root`;
//! - [`ui`]: the employee's screens (swiftDialog);
//! - [`engine`]: the crash-safe enrollment state machine;
//! - [`cli`]: the command line.
//!
//! With the `sim` feature (on by default, off in the package that ships to Macs): [`sim`], the
//! simulated JumpCloud tenant and agent, and [`demo`], plus the fake macOS tools
//! (`host::fake`), the fake swiftDialog and the scripted and terminal UIs. The daemon's own
//! code never depends on them.

pub mod app;
pub mod cli;
pub mod config;
#[cfg(feature = "sim")]
pub mod demo;
pub mod engine;
pub mod error;
pub mod host;
pub mod jumpcloud;
pub mod logging;
pub mod paths;
pub mod policy;
#[cfg(feature = "sim")]
pub mod sim;
pub mod ui;

/// `prestage/<version>`, sent as `User-Agent`.
pub const USER_AGENT: &str = concat!("prestage/", env!("CARGO_PKG_VERSION"));
