//! The commands other than `run` and `demo`: `config check|import|schema` and `ui preview`.
//! They print their findings to stdout; errors go back to the CLI as one line.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use super::ConfigCommand;
use crate::config::{self, Mode, Sources};
use crate::error::CommandError as CliError;

use crate::ui::strings::{self, Strings};

/// `prestage config check|import|schema`.
pub fn config_command(cmd: &ConfigCommand) -> Result<u8, CliError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ConfigCommand::Check {
            file,
            online,
            allow_secret_in_profile,
        } => {
            let code = config::check_command(
                file,
                *allow_secret_in_profile,
                &strings::is_known_id,
                &mut out,
            );
            if code != 0 || !online {
                return Ok(u8::try_from(code).unwrap_or(1));
            }
            online_check(file, &mut out)
        }
        ConfigCommand::Import { script, output } => {
            let text = std::fs::read(script).map_err(|e| {
                CliError::new(
                    1,
                    format!(
                        "{}: {e}; pass the path of your filled-in jumpcloud_bootstrap_template.sh",
                        script.display()
                    ),
                )
            })?;
            let report = config::import::import(&String::from_utf8_lossy(&text));
            match output {
                Some(path) => {
                    write_private(path, &report.plist_xml)?;
                    let _ = writeln!(out, "wrote {}", path.display());
                }
                None => {
                    let _ = out.write_all(&report.plist_xml);
                }
            }
            eprint!("{}", report.summary());
            Ok(0)
        }
        ConfigCommand::Schema => {
            let schema = config::schema::json_schema();
            let text = serde_json::to_string_pretty(&schema)
                .map_err(|e| CliError::new(1, e.to_string()))?;
            let _ = writeln!(out, "{text}");
            Ok(0)
        }
    }
}

/// Writes a file that may hold a secret: 0600.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| {
        CliError::new(
            1,
            format!(
                "cannot write {}: {e}; choose a writable path for -o, or leave -o out to print the plist",
                path.display()
            ),
        )
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)
}

/// `config check --online`: read-only checks against the tenant, a line per check.
fn online_check(file: &Path, out: &mut dyn Write) -> Result<u8, CliError> {
    let loaded = config::load(
        &Sources::for_check(file.to_owned()),
        Mode::Check {
            allow_secret_in_profile: true,
        },
        &strings::is_known_id,
    )
    .map_err(|e| CliError::new(1, e.to_string()))?;
    let config = loaded.config;
    let key = match &config.api_key {
        config::ApiKeySource::Plain(key) => key.clone(),
        config::ApiKeySource::Keychain { service } => {
            match config::keychain::system().read(service) {
                Ok(Some(key)) => key,
                _ => {
                    return Err(CliError::new(1, format!("--online needs the API key: the System keychain has no item {service:?} on this machine; run the check where the key is stored, or with a copy of the configuration holding APIKey")));
                }
            }
        }
        config::ApiKeySource::Legacy { .. } => {
            return Err(CliError::new(1, "--online cannot decrypt EncryptedAPIKey off the target Mac (it needs the UID of DecryptUser there); check with a copy of the configuration holding APIKey"));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(1, e.to_string()))?;
    let lines = rt.block_on(crate::jumpcloud::online::online_check(&config, &key));
    for line in &lines {
        let _ = writeln!(out, "{line}");
    }
    Ok(u8::from(!crate::jumpcloud::online::all_ok(&lines)))
}

/// `prestage ui preview`.
pub fn ui_preview(config_file: Option<&Path>, out_dir: &Path) -> Result<u8, CliError> {
    let ui = match config_file {
        Some(file) => {
            config::load(
                &Sources::single(file.to_owned()),
                Mode::Run,
                &strings::is_known_id,
            )
            .map_err(|e| CliError::new(1, e.to_string()))?
            .config
            .ui
        }
        None => crate::config::UiConfig::default(),
    };
    let strings = Strings::from_config(&ui, &[]);
    let files = crate::ui::preview::render(&ui, &strings, out_dir)
        .map_err(|e| CliError::new(1, e.to_string()))?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(0)
}
