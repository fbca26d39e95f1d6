//! Faithful fakes of the macOS tools of SPEC §4 (placeholder).

pub mod world;
