//! `prestage demo`: the newcomer's first command and the admin's rehearsal.
//!
//! A [`Scenario`] is a simulated Mac (a temporary `--root` with the fake macOS tools and world of
//! `host::fake`), the simulated JumpCloud tenant and agent of `sim`, an employee in the directory
//! and a configuration plist written where the real one lives. The demo runs the real engine on
//! it, with the real host adapter and JumpCloud client, and prints each step, the requests made
//! and a summary. Tests and benchmarks build their situations from the same [`Scenario`].
//!
//! `scenario` builds the simulated Mac, tenant and employee; `rehearsal` points the admin's
//! configuration at them; `narration` prints what happens.

use std::path::PathBuf;
use std::time::Instant;

use crate::engine::Outcome;
use crate::error::CommandError as CliError;
use crate::logging::{LogFormat, LogOptions};
use crate::ui::scripted::ScriptedUi;
use crate::ui::strings::Strings;
use crate::ui::Ui;

mod narration;
mod rehearsal;
mod scenario;

pub use rehearsal::write_plist;
pub use scenario::{
    demo_policy, simulation_timing, Employee, EmployeeKind, Scenario, ScenarioError,
    ScenarioOptions, DEMO_AGENT_PACKAGE, EMPLOYEE_ACCOUNT, SETUP_ACCOUNT,
};

/// Options of `prestage demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub interactive: bool,
    /// `--preset VALUE`: `Identity.Preset` as the MDM would have substituted it; the simulated
    /// Mac then starts with the employee's own account at the console and no setup account.
    pub preset: Option<String>,
    pub config: Option<PathBuf>,
    pub verbosity: u8,
    pub log_format: LogFormat,
}

/// Runs the demo and prints what happens.
pub async fn run(opts: &DemoOptions) -> Result<u8, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::new(1, format!("cannot find the prestage binary: {e}")))?;
    let base_config = match &opts.config {
        Some(path) => Some(
            plist::Value::from_file(path)
                .map_err(|e| {
                    CliError::new(
                        1,
                        format!("{}: {e}; pass an XML or binary plist", path.display()),
                    )
                })?
                .into_dictionary()
                .ok_or_else(|| {
                    CliError::new(
                        1,
                        format!("{}: the top level is not a dictionary", path.display()),
                    )
                })?,
        ),
        None => None,
    };
    let own_account = opts.preset.is_some();
    let base_config = match &opts.preset {
        Some(value) => Some(rehearsal::with_preset(
            base_config.unwrap_or_default(),
            value,
        )),
        None => base_config,
    };
    let started = Instant::now();
    let scenario = Scenario::new(
        ScenarioOptions {
            base_config,
            keep_root: true,
            bootout_kills_caller: false,
            own_account,
            ..ScenarioOptions::default()
        },
        &exe,
    )
    .await
    .map_err(|e| CliError::new(1, e.to_string()))?;
    crate::logging::init(&LogOptions {
        format: opts.log_format,
        verbosity: opts.verbosity,
        file_root: Some(scenario.root.clone()),
        quiet_stderr_when_piped: false,
    });

    narration::header(&scenario, opts.preset.as_deref());

    let receiver = rehearsal::demo_webhooks(&scenario)
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?;

    let loaded = rehearsal::load(&scenario.root)
        .map_err(|e| CliError::new(1, format!("the configuration does not work: {e}")))?;
    for w in &loaded.warnings {
        println!("  config warning: {w}");
    }
    let cfg = loaded.config;
    let strings = Strings::from_config(&cfg.ui, &[]);
    let ui: Box<dyn Ui> = if opts.interactive {
        println!(
            "  (interactive: you are the employee; the directory knows {} with secret {:?} )",
            scenario.employee.identifier,
            scenario.employee.secret.as_deref().unwrap_or("-")
        );
        Box::new(crate::ui::terminal::TerminalUi::new(
            cfg.ui.clone(),
            strings,
        ))
    } else {
        Box::new(ScriptedUi::new(scenario.demo_script(), cfg.ui.clone(), strings).with_echo(true))
    };
    // The same engine as every test's: the real host adapter and JumpCloud client on the
    // simulated Mac, at simulation pace.
    let engine = scenario
        .engine(ui)
        .map_err(|e| CliError::new(1, e.to_string()))?
        .with_observer(narration::event);
    let outcome = engine.run(std::future::pending::<()>()).await;
    let took = started.elapsed();
    narration::summary(&scenario, &outcome, took);
    narration::webhook_summary(&receiver);
    Ok(match outcome {
        Outcome::Done | Outcome::AlreadyDone => 0,
        Outcome::ConfigInvalid { .. } => 78,
        Outcome::Failed { .. } | Outcome::Stopped => 1,
    })
}
