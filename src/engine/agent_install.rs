//! The `installer` part of step 4, `install_agent`: what the JumpCloud agent's installer needs
//! around it on a real Mac.
//!
//! - Its service-account credentials: `/var/run/JumpCloud-SecureToken-Creds.txt` written right
//!   before `installer` (`<EnrollmentUser>;<EnrollmentUserPassword>`, else `=skip`), as
//!   JumpCloud's own installers do, and removed afterwards if the installer left it.
//! - Full Disk Access: without an MDM privacy (PPPC) profile for the agent, its installer opens
//!   System Settings and waits about five minutes for someone to allow it (TheJumpCloud/support
//!   `install_agent_and_serviceaccount.sh`). prestage cannot see the PPPC profile (the TCC
//!   database is readable only with Full Disk Access, which prestage itself does not have), but
//!   it can see System Settings start during the install (`pgrep -x "System Settings"`): then it
//!   closes its own full-screen window so the prompt is not hidden under it, and says in the log
//!   and in `status` that the profile is missing.

use std::path::Path;
use std::sync::Arc;

use tracing::{debug, info, warn};

use super::wait::Pacer;
use super::{clock, Engine, StepError};
use crate::host::ServiceAccountCreds;

/// The PPPC profile prestage ships for the agent (README, deployment prerequisites).
pub const PPPC_PROFILE: &str = "packaging/profile/jumpcloud-agent-pppc.mobileconfig";

/// What `status` and the log say when the agent's installer asked for Full Disk Access.
pub fn fda_missing_message() -> String {
    format!(
        "the JumpCloud agent's installer opened System Settings to ask for Full Disk Access: no privacy (PPPC) profile grants it; deploy {PPPC_PROFILE} with your MDM before prestage runs"
    )
}

/// Writes the credentials file, runs `installer` while watching for the Full Disk Access
/// prompt, and removes the credentials file if the installer left it (whatever the outcome).
pub(super) async fn install(e: &mut Engine, pkg: &Path) -> Result<(), StepError> {
    let creds = match (
        &e.config.enrollment_user,
        &e.config.enrollment_user_password,
    ) {
        (Some(user), Some(password)) => ServiceAccountCreds::Admin { user, password },
        _ => ServiceAccountCreds::Skip,
    };
    let form = match creds {
        ServiceAccountCreds::Admin { user, .. } => format!("{user};<EnrollmentUserPassword>"),
        ServiceAccountCreds::Skip => "=skip".to_owned(),
    };
    e.journal(
        "effect",
        format!("writing the agent's credentials file ({form})"),
    )?;
    e.agent.write_service_account_creds(&creds)?;
    let result = install_watching(e, pkg).await;
    match e.agent.remove_service_account_creds() {
        Ok(true) => info!("removed the credentials file the agent's installer left behind"),
        Ok(false) => {}
        // The password must not stay on disk: not done until it is gone.
        Err(err) => {
            return Err(StepError::Transient(format!(
                "cannot remove the agent's credentials file: {err}"
            )))
        }
    }
    result
}

/// `installer`, and once per gap `pgrep -x "System Settings"` while it runs.
async fn install_watching(e: &mut Engine, pkg: &Path) -> Result<(), StepError> {
    let host = Arc::clone(&e.host);
    let install = host.install_package(pkg);
    tokio::pin!(install);
    let mut pacer = Pacer::new(e.timing.tool_gap);
    // The first look waits a gap: the installer needs a moment before it opens anything.
    pacer.tick().await;
    let mut closed = false;
    loop {
        tokio::select! {
            result = &mut install => {
                return result.map_err(|err| {
                    if e.state.agent_fda_prompt_ms.is_some() {
                        StepError::Transient(format!("{err}; {}", fda_missing_message()))
                    } else {
                        err.into()
                    }
                });
            }
            () = pacer.tick(), if !closed => {
                match host.system_settings_running().await {
                    Ok(true) => {
                        closed = true;
                        prompt_seen(e).await?;
                    }
                    Ok(false) => {}
                    Err(err) => debug!(error = %err, "could not look for System Settings"),
                }
            }
        }
    }
}

/// System Settings opened during the agent's install: uncover it and say why.
async fn prompt_seen(e: &mut Engine) -> Result<(), StepError> {
    warn!(
        "{}; closing prestage's window so the prompt can be answered",
        fda_missing_message()
    );
    if let Err(err) = e.ui.close().await {
        warn!(error = %err, "could not close the progress window");
    }
    e.window_open = false;
    let first = e.state.agent_fda_prompt_ms.is_none();
    e.record(
        "effect",
        "the agent's installer asks for Full Disk Access (no PPPC profile); window closed",
        |s| {
            if first {
                s.agent_fda_prompt_ms = Some(clock::now_ms());
            }
        },
    )
}
