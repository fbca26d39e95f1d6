//! Integration test modules, one per part of prestage.

mod config;
mod engine;
mod faults;
mod host;
mod jumpcloud;
mod packaging;
mod sim;
mod ui;
