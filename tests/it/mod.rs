//! Integration test modules, one per part of prestage.

mod cli;
mod config;
mod dialog_enrollment;
mod engine;
mod faults;
mod host;
mod jumpcloud;
mod packaging;
mod sim;
mod swiftdialog;
mod ui;
