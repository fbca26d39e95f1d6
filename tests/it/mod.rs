//! Integration test modules, one per part of prestage.

mod admin;
mod answers;
mod auth;
mod cli;
mod config;
mod console;
mod dialog_enrollment;
mod engine;
mod faults;
mod host;
mod jumpcloud;
mod lifecycle;
mod messages;
mod packaging;
mod paused;
mod pppc;
mod preset;
mod realmac;
mod sim;
mod swiftdialog;
mod tenant;
mod ui;
mod util;
mod wake;
