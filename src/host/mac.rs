//! `MacHost`: the commands of SPEC §4 (placeholder).

/// The real host adapter.
#[derive(Debug, Clone)]
pub struct MacHost;
