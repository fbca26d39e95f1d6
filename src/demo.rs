//! `prestage demo`: a full enrollment on a simulated Mac against the simulated tenant.

use std::path::PathBuf;

use crate::cli::CliError;
use crate::logging::LogFormat;

/// Options of `prestage demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub interactive: bool,
    pub config: Option<PathBuf>,
    pub verbosity: u8,
    pub log_format: LogFormat,
}

/// Runs the demo.
pub async fn run(_opts: &DemoOptions) -> Result<u8, CliError> {
    Err(CliError::new(1, "not wired yet"))
}
