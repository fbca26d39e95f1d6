//! Wiring: builds the real parts (configuration, host, UI, JumpCloud client) for the commands.

use std::path::{Path, PathBuf};

use crate::cli::{CliError, ConfigCommand};
use crate::paths::Root;

/// `prestage run`.
pub async fn run(_root: Root, _config: Option<PathBuf>) -> u8 {
    eprintln!("error: prestage run is not wired yet");
    1
}

/// `prestage config ...`.
pub fn config_command(_cmd: &ConfigCommand) -> Result<u8, CliError> {
    Err(CliError::new(1, "not wired yet"))
}

/// `prestage ui preview`.
pub fn ui_preview(_config: Option<&Path>, _out: &Path) -> Result<u8, CliError> {
    Err(CliError::new(1, "not wired yet"))
}
