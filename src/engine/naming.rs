//! `ComputerName` (SPEC §3): once the employee is known (after the bind), the Mac gets its
//! name from the template, set with `scutil` as `ComputerName`, `LocalHostName` and
//! `HostName`, and the JumpCloud system's `displayName` follows.
//!
//! Idempotent across kill -9: the serial and the chosen name are persisted before any is
//! set (a restart sets the same name), and each of the two effects is recorded once done.

use tracing::{info, warn};

use super::{Engine, StepError};
use crate::config::naming::local_host_name;
use crate::host::NameKind;

/// Tells the UI what `UI.HelpMessage`'s tokens stand for now: the serial and, until an
/// error has its own reference code, the enrollment's id.
pub fn update_help(e: &mut Engine) {
    if e.config.ui.help_message.is_none() {
        return;
    }
    let facts = crate::ui::help::HelpFacts {
        serial: e.state.naming.serial.clone(),
        reference: Some(e.state.run_id.clone()),
    };
    e.ui.set_help_facts(&facts);
}

/// Reads the serial number once (best effort: webhooks and the help text show it when known).
pub async fn remember_serial(e: &mut Engine) {
    if e.state.naming.serial.is_some() {
        return;
    }
    let wanted = e.config.computer_name.is_some()
        || !e.config.webhooks.is_empty()
        || e.config.ui.help_message.is_some();
    if !wanted {
        return;
    }
    match e.host.serial_number().await {
        Ok(serial) => {
            if let Err(err) = e.record("effect", "serial number read", |s| {
                s.naming.serial = Some(serial);
            }) {
                warn!(error = %err, "could not record the serial number");
            }
            update_help(e);
        }
        Err(err) => warn!(error = %err, "could not read the serial number"),
    }
}

/// Names the Mac and the JumpCloud system (nothing without `ComputerName`).
pub async fn apply(e: &mut Engine) -> Result<(), StepError> {
    let Some(template) = e.config.computer_name.clone() else {
        return Ok(());
    };
    let user = super::employee(e)?;
    let serial = if let Some(s) = e.state.naming.serial.clone() {
        s
    } else {
        let s = e.host.serial_number().await?;
        e.record("effect", "serial number read", |st| {
            st.naming.serial = Some(s.clone());
        })?;
        s
    };
    let name = if let Some(n) = e.state.naming.computer_name.clone() {
        n
    } else {
        let n = template.render(&serial, &user.local_name);
        if n.is_empty() {
            return Err(StepError::permanent(
                "error.configuration",
                format!(
                    "ComputerName `{}` gives an empty name for this Mac; change the template",
                    template.as_str()
                ),
            ));
        }
        e.record("effect", format!("computer name {n}"), |s| {
            s.naming.computer_name = Some(n.clone());
        })?;
        n
    };
    if !e.state.naming.names_set {
        e.host.set_name(NameKind::ComputerName, &name).await?;
        // LocalHostName must be a DNS label (scutil refuses anything else); HostName gets the
        // same safe form, as admins' naming scripts do.
        let safe = local_host_name(&name);
        if safe.is_empty() {
            warn!(computer_name = %name, "no letters or digits for a LocalHostName; only ComputerName set");
        } else {
            e.host.set_name(NameKind::LocalHostName, &safe).await?;
            e.host.set_name(NameKind::HostName, &safe).await?;
        }
        info!(computer_name = %name, local_host_name = %safe, "the Mac is named");
        e.record("effect", format!("named {name}"), |s| {
            s.naming.names_set = true;
        })?;
    }
    if !e.state.naming.display_name_set && e.state.agent.system_key.is_some() {
        match e.dir.set_display_name(&name).await.map_err(StepError::from) {
            Ok(()) => {}
            Err(err) if err.is_transient() => return Err(err),
            // A name in the console is worth a retry, not a stopped enrollment.
            Err(err) => {
                warn!(error = %err, "JumpCloud refused the system's displayName (ComputerName); the Mac keeps its name");
            }
        }
        e.record("effect", format!("displayName {name}"), |s| {
            s.naming.display_name_set = true;
        })?;
    }
    Ok(())
}
