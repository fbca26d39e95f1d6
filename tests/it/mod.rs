//! Integration test modules, one per part of prestage.

mod answers;
mod cli;
mod config;
mod engine;
mod faults;
mod host;
mod jumpcloud;
mod packaging;
mod sim;
mod tenant;
mod ui;
