//! The command line of SPEC §2. `main` parses, runs, and turns an error into one line for the
//! admin (`error: <what>; <how to fix>`) and an exit code; detail goes to the log. This is the
//! only place that prints a command's outcome and chooses exit codes.

mod commands;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::logging::{self, LogFormat, LogOptions};
use crate::paths::Root;

/// Zero-touch JumpCloud onboarding of new Macs from the MDM prestage.
#[derive(Debug, Parser)]
#[command(name = "prestage", version, about, long_about = None)]
pub struct Cli {
    /// More detail: -v info, -vv debug.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// The folder that stands for `/` of the Mac (run, status, reset; default `/`).
    #[arg(long, value_name = "DIR", global = true)]
    pub root: Option<PathBuf>,
    /// Use this configuration instead of the managed and local ones (run, demo, ui preview).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// `run` reads the API key from the simulated Mac's keychain (`<root>/.fakemac/keychain.json`)
    /// instead of the System keychain: the wiring tests use (builds with the `sim` feature only).
    #[cfg(feature = "sim")]
    #[arg(long, global = true, hide = true)]
    pub simulated_keychain: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: run (or resume) the enrollment to the end.
    Run,
    /// Where the enrollment is: step, attempts, last error, timings.
    Status {
        /// JSON for MDM extension attributes.
        #[arg(long)]
        json: bool,
    },
    /// Check, import or describe configurations.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Full enrollment on a simulated Mac against a simulated JumpCloud tenant.
    #[cfg(feature = "sim")]
    Demo {
        /// Answer the employee's questions in this terminal.
        #[arg(long)]
        interactive: bool,
        /// Rehearse SSO during Setup Assistant: `Identity.Preset` as the MDM substituted it
        /// (e.g. ada.lovelace@example.com for Jamf Pro's $EMAIL); the simulated Mac starts
        /// with the employee's own account at the console and no setup account.
        #[arg(long, value_name = "EMAIL")]
        preset: Option<String>,
    },
    /// Run a fake macOS tool or swiftDialog of a simulated Mac (what its shim calls).
    #[cfg(feature = "sim")]
    #[command(name = "sim-tool", hide = true)]
    SimTool {
        /// The tool's path under the simulated Mac's root.
        tool: PathBuf,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The employee's screens.
    #[command(subcommand)]
    Ui(UiCommand),
    /// Admin recovery: forget progress so the next run starts over (user accounts are untouched).
    Reset {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

impl Command {
    /// The command's name as typed, for messages.
    fn name(&self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Status { .. } => "status",
            Command::Config(ConfigCommand::Check { .. }) => "config check",
            Command::Config(ConfigCommand::Import { .. }) => "config import",
            Command::Config(ConfigCommand::Schema) => "config schema",
            #[cfg(feature = "sim")]
            Command::Demo { .. } => "demo",
            #[cfg(feature = "sim")]
            Command::SimTool { .. } => "sim-tool",
            Command::Ui(UiCommand::Preview { .. }) => "ui preview",
            Command::Reset { .. } => "reset",
        }
    }

    fn takes_root(&self) -> bool {
        matches!(
            self,
            Command::Run | Command::Status { .. } | Command::Reset { .. }
        )
    }

    fn takes_config(&self) -> bool {
        #[cfg(feature = "sim")]
        if matches!(self, Command::Demo { .. }) {
            return true;
        }
        matches!(self, Command::Run | Command::Ui(UiCommand::Preview { .. }))
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file.
    Check {
        file: PathBuf,
        /// Also check the API key, org, group IDs and connect key against the tenant (read-only).
        #[arg(long)]
        online: bool,
        /// Accept an API key in a configuration profile (managed preferences are world-readable).
        #[arg(long)]
        allow_secret_in_profile: bool,
    },
    /// Turn a filled-in jumpcloud_bootstrap_template.sh (v3.x) into a prestage plist.
    Import {
        script: PathBuf,
        /// Where to write the plist (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the JSON Schema of the configuration (Jamf Pro custom settings).
    Schema,
}

#[derive(Debug, Subcommand)]
pub enum UiCommand {
    /// Draw every employee screen to HTML (and PNG where Chromium is available).
    Preview {
        /// Where to write the drawings.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

pub use crate::error::{one_line, CommandError as CliError};

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let is_help = matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if is_help {
                // --help, --version, or a bare `prestage` / `prestage config`: clap's own text.
                let _ = e.print();
            } else {
                eprintln!("{}", usage_error_line(&e.render().to_string()));
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", one_line(&e.message));
            ExitCode::from(e.code)
        }
    }
}

/// clap's usage error (what, tips, usage, each a paragraph) as one line (SPEC §2):
/// `error: <what> (tip: ...); usage: <usage>; see --help`.
pub fn usage_error_line(rendered: &str) -> String {
    let mut what = String::new();
    let mut tips = Vec::new();
    let mut usage = None;
    for paragraph in rendered.split("\n\n") {
        let text = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || text.starts_with("For more information") {
            continue;
        }
        if let Some(u) = text.strip_prefix("Usage: ") {
            usage = Some(u.to_owned());
        } else if text.starts_with("tip:") {
            tips.push(text);
        } else if what.is_empty() {
            text.strip_prefix("error: ")
                .unwrap_or(&text)
                .clone_into(&mut what);
        } else {
            what.push(' ');
            what.push_str(&text);
        }
    }
    let mut line = format!("error: {what}");
    if !tips.is_empty() {
        line = format!("{line} ({})", tips.join("; "));
    }
    match usage {
        Some(u) => format!("{line}; usage: {u} (see --help)"),
        None => format!("{line}; see --help"),
    }
}

fn log_options(cli: &Cli, file_root: Option<Root>, daemon: bool) -> LogOptions {
    LogOptions {
        format: cli.log_format,
        verbosity: cli.verbose,
        file_root,
        quiet_stderr_when_piped: daemon,
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    // One thread: the daemon waits far more than it works, and memory stays small.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(1, format!("cannot start the async runtime: {e}")))
}

#[allow(clippy::needless_pass_by_value)] // owns the parsed command line for the whole run
fn dispatch(cli: Cli) -> Result<u8, CliError> {
    // `--root` and `--config` are accepted before or after the command; each applies to some
    // commands only, and silently ignoring one would mislead.
    let name = cli.command.name();
    if cli.root.is_some() && !cli.command.takes_root() {
        return Err(CliError::new(
            2,
            format!("--root does not apply to `prestage {name}`; leave it out (it is for run, status and reset)"),
        ));
    }
    if cli.config.is_some() && !cli.command.takes_config() {
        let fix = if name == "config check" {
            "pass the file as `prestage config check FILE`"
        } else {
            "leave it out (it is for run, demo and ui preview)"
        };
        return Err(CliError::new(
            2,
            format!("--config does not apply to `prestage {name}`; {fix}"),
        ));
    }
    let root = Root::new(cli.root.as_deref().unwrap_or(std::path::Path::new("/")));
    let config = cli.config.clone();
    match &cli.command {
        Command::Run => {
            if let Some(note) = logging::init(&log_options(&cli, Some(root.clone()), true)) {
                eprintln!("warning: {note}");
            }
            let rt = runtime()?;
            #[cfg(feature = "sim")]
            let keychain: Box<dyn crate::config::keychain::Keychain> = if cli.simulated_keychain {
                Box::new(crate::host::fake::keychain::FakeKeychain::for_root(&root))
            } else {
                crate::config::keychain::system()
            };
            #[cfg(not(feature = "sim"))]
            let keychain = crate::config::keychain::system();
            let code = rt.block_on(run(root, config, keychain));
            // A keychain or file read stuck on its blocking thread must not keep a stopped
            // daemon alive (dropping the runtime would wait for it).
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            code
        }
        Command::Status { json } => {
            logging::init(&log_options(&cli, None, false));
            // `status` always exits 0 (SPEC §2): MDM extension attributes read its output.
            let report = crate::engine::status::read(&root);
            let mut out = std::io::stdout().lock();
            if *json {
                let text = serde_json::to_string_pretty(&report)
                    .map_err(|e| CliError::new(1, e.to_string()))?;
                let _ = writeln!(out, "{text}");
            } else {
                let _ = write!(out, "{}", report.to_text());
            }
            Ok(0)
        }
        Command::Config(cmd) => {
            logging::init(&log_options(&cli, None, false));
            commands::config_command(cmd)
        }
        #[cfg(feature = "sim")]
        Command::SimTool { tool, args } => {
            let code = crate::host::fake::run(tool, args);
            Ok(u8::try_from(code & 0xff).unwrap_or(1))
        }
        #[cfg(feature = "sim")]
        Command::Demo {
            interactive,
            preset,
        } => {
            let rt = runtime()?;
            rt.block_on(crate::demo::run(&crate::demo::DemoOptions {
                interactive: *interactive,
                preset: preset.clone(),
                config,
                verbosity: cli.verbose,
                log_format: cli.log_format,
            }))
        }
        Command::Ui(UiCommand::Preview { out }) => {
            logging::init(&log_options(&cli, None, false));
            commands::ui_preview(config.as_deref(), out)
        }
        Command::Reset { yes } => {
            logging::init(&log_options(&cli, None, false));
            reset(&root, *yes)
        }
    }
}

/// `prestage run`: SIGTERM is launchd's stop (at shutdown, or our own bootout at the end).
async fn run(
    root: Root,
    config: Option<PathBuf>,
    keychain: Box<dyn crate::config::keychain::Keychain>,
) -> Result<u8, CliError> {
    use crate::engine::Outcome;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| CliError::new(1, format!("cannot listen for SIGTERM: {e}")))?;
    let shutdown = async move {
        sigterm.recv().await;
    };
    let outcome = crate::app::run(root, config, keychain, shutdown)
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?;
    Ok(match outcome {
        Outcome::Done => 0,
        Outcome::AlreadyDone => {
            eprintln!("this Mac is already enrolled; see `prestage status`");
            0
        }
        Outcome::Failed { reference, message } => {
            eprintln!(
                "error: {} (reference {reference}); fix it, then `prestage reset` if needed; launchd will retry",
                one_line(&message)
            );
            1
        }
        Outcome::ConfigInvalid { reference, message } => {
            eprintln!(
                "error: the configuration is invalid (reference {reference}): {}; fix it with your MDM or package (`prestage config check FILE` lists every problem), launchd starts prestage again within a minute",
                one_line(&message)
            );
            78
        }
        // launchd restarts us; progress is persisted.
        Outcome::Stopped => 143,
    })
}

fn reset(root: &Root, yes: bool) -> Result<u8, CliError> {
    let store = crate::engine::state::Store::new(root);
    if !store.state_path().exists() && !store.journal_path().exists() {
        println!(
            "nothing to reset: no enrollment progress under {}",
            store.dir().display()
        );
        return Ok(0);
    }
    if !yes {
        print!(
            "Forget the enrollment progress in {}? User accounts are not touched. [y/N] ",
            store.dir().display()
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
            println!("nothing changed");
            return Ok(0);
        }
    }
    let moved = store
        .reset()
        .map_err(|e| CliError::new(1, format!("{e}")))?;
    for path in moved {
        println!("moved aside: {}", path.display());
    }
    println!("the next `prestage run` starts the enrollment over");
    Ok(0)
}
