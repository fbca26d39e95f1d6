//! Steps 4 and 5, `install_agent` and `wait_agent`: the package, its signature (JumpCloud's
//! team, [`JUMPCLOUD_TEAM_ID`]), the install, and the wait for the agent to register.
//!
//! What the JumpCloud agent's installer needs around it on a real Mac:
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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{debug, info, warn};

use super::wait::Pacer;
use super::{clock, Engine, StepError};
use crate::host::agent::kickstart_urls;
use crate::host::ServiceAccountCreds;
use crate::paths::mac;

/// Team ID of JumpCloud's Developer ID Installer certificate: `pkgutil --check-signature`
/// shows `1. Developer ID Installer: JUMPCLOUD INC. (N985MXSH85)` first in the chain of
/// JumpCloud's packages (TheJumpCloud/support, Commands Gallery "Mac - Install Remote Assist",
/// which greps for that exact line; the name is upper case).
pub const JUMPCLOUD_TEAM_ID: &str = "N985MXSH85";

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
                    if e.state.agent.fda_prompt_ms.is_some() {
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
    let first = e.state.agent.fda_prompt_ms.is_none();
    e.record(
        "effect",
        "the agent's installer asks for Full Disk Access (no PPPC profile); window closed",
        |s| {
            if first {
                s.agent.fda_prompt_ms = Some(clock::now_ms());
            }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// 4. Install the JumpCloud agent

pub(super) async fn install_agent(e: &mut Engine) -> Result<(), StepError> {
    // A run killed during the install may have left the agent's credentials file.
    if e.agent.remove_service_account_creds()? {
        info!("removed the agent's credentials file an earlier run left behind");
    }
    if e.agent.read_conf()?.is_some() {
        info!("the JumpCloud agent is already installed and registered");
        e.record("effect", "agent already registered", |s| {
            s.agent.installed = true;
            s.agent.install_started_ms.get_or_insert(clock::now_ms());
        })?;
        return Ok(());
    }
    if e.state.agent.installed {
        return Ok(());
    }
    // A tenant key (jcc_) is its own agentBootstrap.json, kickstart URLs included; a classic
    // key gets the hosts of APIBaseURL's region.
    let (public, private) = kickstart_urls(&e.config.api_base_url);
    e.agent
        .write_bootstrap(&e.config.connect_key.bootstrap_json(&public, &private))?;
    let pkg = agent_package(e).await?;
    let signature = e.host.package_signature(&pkg).await?;
    if !is_jumpcloud_agent_signature(&signature) {
        return Err(StepError::permanent(
            "error.agent_install",
            format!(
                "{} is not signed by JumpCloud (team {JUMPCLOUD_TEAM_ID}; pkgutil: {}; chain: {}): use JumpCloud's own agent package in Agent.PackagePath or Agent.PackageURL",
                pkg.display(),
                signature.status,
                signature.chain.join(" / ")
            ),
        ));
    }
    e.record("effect", "installing the agent package", |s| {
        s.agent.install_started_ms = Some(clock::now_ms());
    })?;
    install(e, &pkg).await?;
    e.record("effect", "agent package installed", |s| {
        s.agent.installed = true;
    })?;
    if pkg.starts_with(crate::host::staging::STAGING_DIR) {
        crate::host::staging::remove(&e.root, &pkg);
    }
    Ok(())
}

/// Whether pkgutil's answer is JumpCloud's (SPEC §4; exit 0 is checked by the host adapter):
/// pkgutil trusts it for distribution and the leaf is a Developer ID Installer certificate of
/// JumpCloud's team. The team ID decides: the certificate's name is `JUMPCLOUD INC.` in upper
/// case, and a name pins no publisher anyway.
pub(crate) fn is_jumpcloud_agent_signature(signature: &crate::host::PackageSignature) -> bool {
    signature.is_developer_id_of(JUMPCLOUD_TEAM_ID)
}

/// The agent package on disk, as its macOS path: `Agent.PackagePath`, or `Agent.PackageURL`
/// downloaded into the state directory (streamed to disk, with a progress line). The macOS path
/// is what `pkgutil` and `installer` are given: SPEC §1, arguments passed to tools are not
/// rewritten under `--root` (as for `UI.DialogPackagePath`).
async fn agent_package(e: &mut Engine) -> Result<PathBuf, StepError> {
    if let Some(path) = &e.config.agent.package_path {
        if !e.root.resolve(path).is_file() {
            return Err(StepError::permanent(
                "error.agent_install",
                format!(
                    "Agent.PackagePath {} does not exist on this Mac: install the package with the MDM before prestage, or use Agent.PackageURL",
                    path.display()
                ),
            ));
        }
        // Checked and installed as a copy in the root-only state directory: the admin's
        // folder may be one other users can write to.
        return crate::host::staging::stage(&e.root, path, "jumpcloud-agent.pkg")
            .await
            .map_err(|err| {
                StepError::permanent("error.agent_install", format!("Agent.PackagePath: {err}"))
            });
    }
    let mac_dest = PathBuf::from(mac::AGENT_PACKAGE);
    let dest = e.root.resolve(&mac_dest);
    super::download::download(&e.config.agent.package_url, &dest, |done, total| {
        info!(
            bytes = done,
            total = total.unwrap_or(0),
            "downloading the JumpCloud agent"
        );
    })
    .await
    .map_err(|err| match StepError::from(err) {
        // The admin's URL: name the key to fix.
        StepError::Caused(c) if c.permanent.is_some() => StepError::permanent(
            "error.agent_install",
            format!("{c}: check Agent.PackageURL (JumpCloud's is {}), or ship the package and set Agent.PackagePath", crate::config::DEFAULT_AGENT_PACKAGE_URL),
        ),
        other => other,
    })?;
    Ok(mac_dest)
}

// ---------------------------------------------------------------------------------------------
// 5. Wait for the agent to register

pub(super) async fn wait_agent(e: &mut Engine) -> Result<(), StepError> {
    let limit_ms = u64::try_from(e.config.agent.install_timeout.as_millis()).unwrap_or(u64::MAX);
    let started = *e
        .state
        .agent
        .install_started_ms
        .get_or_insert_with(clock::now_ms);
    let mut malformed = None;
    loop {
        // A jcagent.conf that is not JSON may be one the agent is about to rewrite: it counts
        // as "not yet" until the limit, then as the reason the agent never registered.
        let conf = match e.agent.read_conf() {
            Ok(conf) => conf,
            Err(err @ crate::host::agent::AgentError::Malformed { .. }) => {
                if malformed.is_none() {
                    warn!(error = %err, "jcagent.conf is not JSON yet");
                }
                malformed = Some(err);
                None
            }
            Err(err) => return Err(err.into()),
        };
        if let Some(conf) = conf {
            info!(system_key = %conf.system_key, "the JumpCloud agent registered this Mac");
            e.record("effect", format!("systemKey {}", conf.system_key), |s| {
                s.agent.system_key = Some(conf.system_key.clone());
                if s.org.id.is_none() {
                    s.org.id.clone_from(&conf.org_id);
                }
            })?;
            return Ok(());
        }
        let waited = clock::now_ms().saturating_sub(started);
        if waited >= limit_ms {
            if let Some(err) = malformed {
                return Err(StepError::permanent(
                    "error.agent_install",
                    format!(
                        "the JumpCloud agent did not register within {} s: {err}",
                        limit_ms / 1000
                    ),
                ));
            }
            return Err(StepError::permanent(
                "error.agent_timeout",
                format!(
                    "the JumpCloud agent did not register within {} s (no systemKey in {}): check the ConnectKey, the network to JumpCloud, and /var/log/jcagent.log",
                    limit_ms / 1000,
                    mac::JC_AGENT_CONF
                ),
            ));
        }
        if waited >= limit_ms / 2 && !e.state.agent.kickstarted {
            warn!("the JumpCloud agent has not registered half-way through Agent.InstallTimeoutSeconds; restarting it once");
            // The flag after the kickstart: a crash or a failed kickstart in between must not
            // use up the one restart (a second kickstart is harmless).
            e.journal("effect", "kickstarting agent")?;
            e.host.kickstart_agent().await?;
            e.record("effect", "agent kickstarted", |s| {
                s.agent.kickstarted = true;
            })?;
        }
        tokio::time::sleep(e.timing.file_poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_signature_needs_jumpcloud_s_team_and_trust_whatever_the_name_s_case() {
        let sig = |status: &str, leaf: &str| crate::host::PackageSignature {
            status: status.into(),
            chain: vec![leaf.into(), "Developer ID Certification Authority".into()],
        };
        let trusted = "signed by a developer certificate issued by Apple for distribution";
        // The real leaf (upper case) and any other spelling of the name: the team ID decides.
        let real = "Developer ID Installer: JUMPCLOUD INC. (N985MXSH85)";
        assert!(is_jumpcloud_agent_signature(&sig(trusted, real)));
        assert!(is_jumpcloud_agent_signature(&sig(
            trusted,
            "Developer ID Installer: JumpCloud Inc. (N985MXSH85)"
        )));
        assert!(is_jumpcloud_agent_signature(&sig(
            trusted,
            "developer id installer: jumpcloud inc. (N985MXSH85)"
        )));
        // Another team, a team ID only mentioned inside the name, another certificate kind.
        assert!(!is_jumpcloud_agent_signature(&sig(
            trusted,
            "Developer ID Installer: JUMPCLOUD INC. (ABCDE12345)"
        )));
        assert!(!is_jumpcloud_agent_signature(&sig(
            trusted,
            "Developer ID Installer: Mallory (N985MXSH85) Ltd (ABCDE12345)"
        )));
        assert!(!is_jumpcloud_agent_signature(&sig(
            trusted,
            "Developer ID Application: JUMPCLOUD INC. (N985MXSH85)"
        )));
        // pkgutil must trust it for distribution, with exit 0.
        assert!(!is_jumpcloud_agent_signature(&sig("no signature", real)));
        assert!(!is_jumpcloud_agent_signature(&sig(
            "signed by a developer certificate issued by Apple for development",
            real
        )));
        assert!(!is_jumpcloud_agent_signature(&sig(
            &format!("pkgutil exited 1 ({trusted})"),
            real
        )));
    }
}
