//! The steps of an enrollment, in order. Each is idempotent: it first checks what is already
//! done (in the persisted state and in the world), and persists its progress before and after
//! every side effect, so a kill -9 anywhere followed by a restart finishes the job exactly once.
//!
//!  1. preflight: state directory, keep the Mac awake
//!  2. wait_desktop: the setup account's desktop (console user, Finder)
//!  3. welcome: the full-screen welcome window
//!  4. install_agent: agentBootstrap.json, the package (path or download), signature, the
//!     agent's credentials file, install (uncovering a Full Disk Access prompt)
//!  5. wait_agent: `systemKey` in jcagent.conf (bounded; one kickstart half-way)
//!  6. join_group: `EnrollmentGroupID`, confirmed
//!  7. read_org: org ID, API key, password policy
//!  8. identify: ask, search, check the secret; attempts and a cool-down that survives restarts
//!  9. password: policy checked locally, confirmation, set once; activate staged users
//! 10. bind: bind the user to this Mac, confirmed
//! 11. wait_account: `User updates complete` (or `Processing user updates` and a quiet log)
//!     after our bind, and `id -u` succeeds; at most one agent restart
//! 12. handover: tell the employee, hide the setup accounts, log the setup account out
//!     (confirmed at the console; `bootout gui/UID` as the fallback)
//! 13. wait_login: the employee at the console, with a Secure Token (`SecureTokenTimeoutSeconds`)
//! 14. remove_setup: move groups, refresh the FileVault unlock list, delete the setup accounts
//!     (safely, a bounded number of tries), report
//! 15. cleanup: the receipt; then, once Done is persisted, the finishing touches: the API key
//!     in the keychain, the local configuration holding a secret, the LaunchDaemon plist, and
//!     `launchctl bootout` ourselves, last

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use super::removal::Keep;
use super::state::{PasswordPhase, Step, UserFacts};
use super::wait::Pacer;
use super::{clock, Engine, Event, StepError};
use crate::config::{ApiKeySource, PolicySource, SecretKind, WebhookEvent};
use crate::host::agent::kickstart_urls;
use crate::jumpcloud::{DirectoryUser, JcError, UserState};
use crate::paths::mac;
use crate::ui::{IdentityPrompt, ItemStatus, PasswordPrompt, Progress, StepItem};

/// Team ID of JumpCloud's Developer ID Installer certificate: `pkgutil --check-signature`
/// shows `1. Developer ID Installer: JUMPCLOUD INC. (N985MXSH85)` first in the chain of
/// JumpCloud's packages (TheJumpCloud/support, Commands Gallery "Mac - Install Remote Assist",
/// which greps for that exact line; the name is upper case).
pub const JUMPCLOUD_TEAM_ID: &str = "N985MXSH85";

/// Runs one step.
pub async fn run_step(e: &mut Engine, step: Step) -> Result<(), StepError> {
    // The API key lives only in memory: after a restart it is resolved again. From reading the
    // org on it is required (waiting for a keychain item that is not there yet); before that
    // the client asks for it only when system context is refused (the fallback). Removing the
    // setup accounts needs it only for the fallback, and must not depend on it: the legacy
    // key's DecryptUser is one of the accounts that step deletes.
    if step >= Step::ReadOrg && step < Step::RemoveSetup {
        ensure_api_key(e, true).await?;
    }
    match run_one(e, step).await {
        // System context is refused and no API key was at hand: wait for it or say why it will
        // not come, then run the step again (it is idempotent), now with the admin key.
        Err(err) if signature_rejected(&err) && !e.auth.has_key() => {
            no_system_context_without_key(e).await?;
            run_one(e, step).await
        }
        other => other,
    }
}

/// Whether `err` is JumpCloud refusing this Mac's system context with no admin key to fall
/// back on ([`JcError::SignatureRejected`]).
fn signature_rejected(err: &StepError) -> bool {
    matches!(err, StepError::Caused(c) if matches!(
        c.error.downcast_ref::<JcError>(),
        Some(JcError::SignatureRejected { .. })
    ))
}

async fn run_one(e: &mut Engine, step: Step) -> Result<(), StepError> {
    match step {
        Step::Preflight => preflight(e),
        Step::WaitDesktop => wait_desktop(e).await,
        Step::Welcome => welcome(e).await,
        Step::InstallAgent => install_agent(e).await,
        Step::WaitAgent => wait_agent(e).await,
        Step::JoinGroup => join_group(e).await,
        Step::ReadOrg => read_org(e).await,
        Step::Identify => identify(e).await,
        Step::Password => password(e).await,
        Step::Bind => {
            bind(e).await?;
            super::naming::apply(e).await
        }
        Step::WaitAccount => wait_account(e).await,
        Step::Handover => handover(e).await,
        Step::WaitLogin => wait_login(e).await,
        Step::RemoveSetup => remove_setup(e).await,
        Step::Cleanup => cleanup(e),
        Step::Done => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Preflight

fn preflight(e: &mut Engine) -> Result<(), StepError> {
    if e.root.is_system() && !rustix::process::geteuid().is_root() {
        return Err(StepError::Config(
            "prestage run must run as root (launchd starts it as root from /Library/LaunchDaemons)"
                .into(),
        ));
    }
    e.store.ensure_dir()?;
    if let (Some(enrollment), true) = (&e.config.enrollment_user, e.config.delete_enrollment_users)
    {
        info!(setup_account = %enrollment, "the setup account will be deleted once the employee holds a Secure Token");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Wait for the setup account's desktop

async fn wait_desktop(e: &mut Engine) -> Result<(), StepError> {
    // The console is watched through `/dev/console`'s metadata (no process); `stat` runs only
    // when it changed, `pgrep` once a person is there and then once per gap while Finder starts.
    let mut pacer = Pacer::new(e.timing.tool_gap);
    let mut user = e.console_user().await?;
    let mut last_seen = String::new();
    loop {
        if user != last_seen {
            info!(console_user = %user, "console user");
            last_seen.clone_from(&user);
            pacer.react();
        } else if is_system_user(&user) {
            user = e.console_change().await?;
            continue;
        } else {
            pacer.tick().await;
        }
        if !is_system_user(&user) && e.host.finder_running().await? {
            e.record("effect", format!("desktop of {user}"), |s| {
                s.setup_user = Some(user.clone());
            })?;
            return Ok(());
        }
        user = e.console_user().await?;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Welcome

async fn welcome(e: &mut Engine) -> Result<(), StepError> {
    // The serial first: the welcome window's help text and the Started message show it.
    super::naming::remember_serial(e).await;
    show_progress(e, Step::Welcome).await?;
    super::webhooks::notify(e, WebhookEvent::Started, Step::Welcome, None);
    super::preflight::check(e).await?;
    Ok(())
}

/// Opens (or updates) the progress window for `step`.
pub async fn show_progress(e: &mut Engine, step: Step) -> Result<(), StepError> {
    let progress = progress_for(step, "", Vec::new());
    e.ui.progress(&progress).await?;
    e.window_open = true;
    Ok(())
}

/// Tells the employee we are retrying (best effort). Never once the setup account is logged
/// out: from then on the screen is the employee's own desktop (or the login window), and a
/// full-screen window on top of it would lock them out of their work.
pub async fn show_retrying(e: &mut Engine, step: Step) {
    if step < Step::Welcome || e.state.setup_logged_out {
        return;
    }
    let progress = progress_for(step, "progress.retrying", Vec::new());
    if let Err(err) = e.ui.progress(&progress).await {
        warn!(error = %err, "could not update the progress window");
    }
}

/// The progress window's content at `step`: percentage, status text and the step list.
pub fn progress_for(
    step: Step,
    text_id: &'static str,
    args: Vec<(&'static str, String)>,
) -> Progress {
    // The employee sees six lines, not fifteen steps.
    const GROUPS: [(&str, Step); 6] = [
        ("steps.prepare", Step::Welcome),
        ("steps.agent", Step::ReadOrg),
        ("steps.identity", Step::Identify),
        ("steps.password", Step::Password),
        ("steps.account", Step::WaitAccount),
        ("steps.finish", Step::Done),
    ];
    let steps = GROUPS
        .iter()
        .enumerate()
        .map(|(i, (title_id, last))| {
            let first = if i == 0 {
                Step::Preflight
            } else {
                GROUPS[i - 1].1.next()
            };
            let status = if step > *last {
                ItemStatus::Success
            } else if step >= first {
                ItemStatus::Wait
            } else {
                ItemStatus::Pending
            };
            StepItem { title_id, status }
        })
        .collect();
    // swiftDialog draws 0 % as an endless spinner: start at 1 %.
    let percent = u8::try_from((step.number().saturating_sub(1) * 100 / 15).max(1)).unwrap_or(100);
    let text_id = if text_id.is_empty() {
        step_text_id(step)
    } else {
        text_id
    };
    Progress {
        percent,
        text_id,
        args,
        steps,
    }
}

fn step_text_id(step: Step) -> &'static str {
    match step {
        Step::Preflight | Step::Welcome => "progress.preflight",
        Step::WaitDesktop => "progress.waiting_desktop",
        Step::InstallAgent => "progress.installing_agent",
        Step::WaitAgent => "progress.waiting_agent",
        Step::JoinGroup => "progress.joining_group",
        Step::ReadOrg => "progress.reading_policy",
        Step::Identify => "progress.identity",
        Step::Password => "progress.password",
        Step::Bind => "progress.binding",
        Step::WaitAccount => "progress.waiting_account",
        Step::Handover | Step::WaitLogin => "progress.handover",
        Step::RemoveSetup | Step::Cleanup => "progress.cleanup",
        Step::Done => "progress.done",
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Install the JumpCloud agent

async fn install_agent(e: &mut Engine) -> Result<(), StepError> {
    show_progress(e, Step::InstallAgent).await?;
    // A run killed during the install may have left the agent's credentials file.
    if e.agent.remove_service_account_creds()? {
        info!("removed the agent's credentials file an earlier run left behind");
    }
    if e.agent.read_conf()?.is_some() {
        info!("the JumpCloud agent is already installed and registered");
        e.record("effect", "agent already registered", |s| {
            s.agent_installed = true;
            s.agent_install_started_ms.get_or_insert(clock::now_ms());
        })?;
        return Ok(());
    }
    if e.state.agent_installed {
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
        s.agent_install_started_ms = Some(clock::now_ms());
    })?;
    super::agent_install::install(e, &pkg).await?;
    e.record("effect", "agent package installed", |s| {
        s.agent_installed = true;
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

async fn wait_agent(e: &mut Engine) -> Result<(), StepError> {
    show_progress(e, Step::WaitAgent).await?;
    let limit_ms = u64::try_from(e.config.agent.install_timeout.as_millis()).unwrap_or(u64::MAX);
    let started = *e
        .state
        .agent_install_started_ms
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
                s.system_key = Some(conf.system_key.clone());
                if s.org_id.is_none() {
                    s.org_id.clone_from(&conf.org_id);
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
        if waited >= limit_ms / 2 && !e.state.agent_kickstarted {
            warn!("the JumpCloud agent has not registered half-way through Agent.InstallTimeoutSeconds; restarting it once");
            // The flag after the kickstart: a crash or a failed kickstart in between must not
            // use up the one restart (a second kickstart is harmless).
            e.journal("effect", "kickstarting agent")?;
            e.host.kickstart_agent().await?;
            e.record("effect", "agent kickstarted", |s| {
                s.agent_kickstarted = true;
            })?;
        }
        tokio::time::sleep(e.timing.file_poll).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Join the enrollment group

async fn join_group(e: &mut Engine) -> Result<(), StepError> {
    show_progress(e, Step::JoinGroup).await?;
    let Some(group) = e.config.enrollment_group_id.clone() else {
        return Ok(());
    };
    // No read before or after (issue 11): the add is idempotent, and its answer is definite:
    // a 2xx, or "already a member" (a 409, or a 4xx saying so; SPEC §5), means this Mac is in
    // the group. A lost answer is an error, so the step runs again, adds again and reads that
    // second, definite answer.
    e.dir
        .add_system_to_group(&group)
        .await
        .map_err(|err| group_error(err, "EnrollmentGroupID", &group))?;
    e.journal("effect", format!("member of {group}"))?;
    Ok(())
}

fn group_error(err: JcError, key: &str, group: &crate::config::ObjectId) -> StepError {
    match err {
        JcError::NotFound { .. } => StepError::permanent(
            "error.configuration",
            format!("{key} {group} does not exist in this organisation: check {key}"),
        ),
        other => other.into(),
    }
}

/// System context is refused and no API key is at hand yet. Macs that JumpCloud's own MDM
/// enrolled through ADE get 401 on every system-context call (JumpCloud, "Use System Context
/// Authorization with JumpCloud APIs": ADE/DEP-enrolled systems may not be eligible), so this
/// Mac cannot add itself to `EnrollmentGroupID`, and a key-writing command bound to that group
/// never runs: say so in one line now instead of waiting for ever. A keychain key that may come
/// another way is waited for; a legacy key without a known org ID cannot be decrypted.
async fn no_system_context_without_key(e: &mut Engine) -> Result<(), StepError> {
    match (&e.config.api_key, &e.config.enrollment_group_id) {
        (ApiKeySource::Keychain { service }, Some(group)) => Err(StepError::permanent(
            "error.configuration",
            format!("JumpCloud refuses this Mac's system context (401, as for Macs enrolled through JumpCloud's own MDM), so it cannot add itself to EnrollmentGroupID {group}, and the key for APIKeyKeychainService {service:?} comes from a command bound to that group, which will never run: bind that command to the Mac another way (directly or through another group), or use EncryptedAPIKey or APIKey"),
        )),
        (ApiKeySource::Keychain { service }, None) => {
            warn!(service = %service, "JumpCloud refuses this Mac's system context (401); every JumpCloud call needs the API key: waiting for it in the System keychain (APIKeyKeychainService)");
            ensure_api_key(e, true).await
        }
        _ => Err(StepError::permanent(
            "error.configuration",
            "JumpCloud refuses this Mac's system context (401, as for Macs enrolled through JumpCloud's own MDM), and the API key cannot be decrypted without the organisation ID, which would have come from that refused call: set OrgID",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Org facts, API key and password policy

async fn read_org(e: &mut Engine) -> Result<(), StepError> {
    show_progress(e, Step::ReadOrg).await?;
    if e.state.org_id.is_none() && e.config.org_id.is_none() {
        let facts = e.dir.system().await?;
        e.record("effect", format!("org {}", facts.organization), |s| {
            s.org_id = Some(facts.organization.clone());
        })?;
    }
    ensure_api_key(e, true).await?;
    let policy = match &e.config.password.policy {
        PolicySource::Local(policy) => policy.clone(),
        PolicySource::Tenant => {
            let org = org_id(e)?;
            e.dir.org(&org).await?.password_policy
        }
    };
    e.record("effect", "password policy read", |s| {
        s.policy = Some(policy);
    })?;
    report(e, "prestage: waiting for the employee").await;
    Ok(())
}

fn org_id(e: &Engine) -> Result<crate::config::ObjectId, StepError> {
    let raw = e
        .config
        .org_id
        .as_ref()
        .map(|o| o.as_str().to_owned())
        .or_else(|| e.state.org_id.clone())
        .unwrap_or_default();
    crate::config::ObjectId::parse(&raw).ok_or_else(|| {
        StepError::permanent(
            "error.configuration",
            format!("the organisation ID {raw:?} is not 24 hex characters: set OrgID"),
        )
    })
}

/// Resolves the admin API key from its source; with `wait`, waits for a keychain item that is
/// not there yet (a JumpCloud command writes it after the Mac registers). The key is kept by
/// the credentials provider ([`super::auth::EngineAuth`]), which the client asks.
pub(crate) async fn ensure_api_key(e: &mut Engine, wait: bool) -> Result<(), StepError> {
    e.auth.resolve(wait, e.timing.tool_gap).await.map(drop)
}

/// Writes a short status line into the system's description (best effort, never blocks).
async fn report(e: &mut Engine, line: &str) {
    if !e.config.report_to_directory || e.state.system_key.is_none() {
        return;
    }
    if let Err(err) = e.dir.report(line).await {
        warn!(error = %err, "could not report progress to JumpCloud (ReportToDirectory)");
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Identity

async fn identify(e: &mut Engine) -> Result<(), StepError> {
    if e.state.user.is_some() {
        return Ok(());
    }
    // The MDM already knows the employee: no window, no secret.
    if let Some(preset) = e.config.identity.preset.clone() {
        return super::preset::identify(e, &preset).await;
    }
    show_progress(e, Step::Identify).await?;
    let identity = e.config.identity.clone();
    let dir = std::sync::Arc::clone(&e.dir);
    loop {
        if let Some(until) = e.state.cooldown_until_ms {
            let now = clock::now_ms();
            if until > now {
                let left = until - now;
                warn!(
                    seconds = left / 1000,
                    "identity attempts exhausted; cooling down"
                );
                // The message counts down with the cool-down; if the employee closes it early,
                // wait out only what is left.
                e.ui.identity_rejected(0, Some(left.div_ceil(1000))).await?;
                let rest = until.saturating_sub(clock::now_ms());
                tokio::time::sleep(Duration::from_millis(rest)).await;
            }
            e.record("effect", "cool-down over", |s| {
                s.cooldown_until_ms = None;
                s.identity_failures = 0;
            })?;
        }
        let failures = e.state.identity_failures;
        let prompt = IdentityPrompt {
            identifier_label_id: crate::ui::screen::identifier_label_id(identity.identifier),
            secret_label_id: crate::ui::screen::secret_label_id(&identity.secret),
            attempts_left: (failures > 0).then(|| identity.max_attempts.saturating_sub(failures)),
        };
        let answer = e.ui.ask_identity(&prompt).await?;
        let value = answer.identifier.trim().to_owned();
        let found = if value.is_empty() {
            Vec::new()
        } else {
            dir.find_users(identity.identifier, &value).await?
        };
        match judge(&found, &identity.secret, answer.secret.as_ref()) {
            Ok(user) => {
                let user = user.clone();
                return identified(e, &user, "");
            }
            Err(why) => {
                // The employee sees one message for every cause; the admin reads which it was.
                warn!(identifier = %value, reason = why, "identity check failed");
                let max = identity.max_attempts;
                let cooldown_ms = u64::try_from(identity.cooldown.as_millis()).unwrap_or(u64::MAX);
                e.record("effect", format!("identity failed: {why}"), |s| {
                    s.identity_failures += 1;
                    if s.identity_failures >= max {
                        s.cooldown_until_ms = Some(clock::now_ms().saturating_add(cooldown_ms));
                    }
                })?;
                let left = max.saturating_sub(e.state.identity_failures);
                if left > 0 {
                    e.ui.identity_rejected(left, None).await?;
                }
            }
        }
    }
}

/// Records the identified employee (`how` says how, for the journal).
pub(super) fn identified(e: &mut Engine, user: &DirectoryUser, how: &str) -> Result<(), StepError> {
    let facts = UserFacts {
        id: user.id.clone(),
        local_name: user.local_name().to_owned(),
        pending: !user.activated,
        staged: user.state == Some(UserState::Staged),
        password_date: user.password_date.clone(),
        username: user.username.clone(),
    };
    check_local_name(e, &facts.local_name)?;
    info!(user_id = %facts.id, account = %facts.local_name, pending = facts.pending, "employee identified");
    let detail = format!("identified {} {how}", facts.id);
    e.record("effect", detail.trim_end(), |s| {
        s.user = Some(facts);
        s.identity_failures = 0;
    })
}

/// Decides whether the search results and the typed secret identify exactly one employee.
/// The error says which check failed (for the admin's log only).
pub fn judge<'a>(
    found: &'a [DirectoryUser],
    secret: &SecretKind,
    typed: Option<&SecretString>,
) -> Result<&'a DirectoryUser, &'static str> {
    let user = match found {
        [] => return Err("no user matches the identifier"),
        [one] => one,
        _ => return Err("several users match the identifier"),
    };
    if user.state == Some(UserState::Suspended) {
        return Err("the matching user is suspended");
    }
    let expected = match secret {
        SecretKind::None => return Ok(user),
        SecretKind::EmployeeId => user.employee_identifier.as_deref(),
        SecretKind::Attribute(name) => user.attribute(name),
    };
    let Some(expected) = expected.filter(|v| !v.is_empty()) else {
        return Err("the matching user has no value for the configured secret");
    };
    let typed = typed.map_or("", |t| t.expose_secret().trim());
    if bool::from(expected.as_bytes().ct_eq(typed.as_bytes())) {
        Ok(user)
    } else {
        Err("the secret does not match")
    }
}

/// Refuses an employee whose local account would be one of the setup accounts: the agent would
/// take it over and we would then delete it.
fn check_local_name(e: &Engine, name: &str) -> Result<(), StepError> {
    crate::host::mac::check_name(name)?;
    let mut setup: Vec<&str> = setup_accounts(e);
    // No EnrollmentUser: the account at the console may be the employee's own (Setup
    // Assistant created it with the name the MDM prefilled); the agent takes it over.
    if e.config.enrollment_user.is_none() {
        let console = e.state.setup_user.as_deref();
        setup.retain(|s| Some(*s) != console);
    }
    if is_system_user(name) || setup.iter().any(|s| same_account(s, name)) {
        return Err(StepError::permanent(
            "error.directory",
            format!("the employee's local account name {name:?} is a setup or system account on this Mac: give the user another username or systemUsername in JumpCloud"),
        ));
    }
    Ok(())
}

fn setup_accounts(e: &Engine) -> Vec<&str> {
    let mut names = Vec::new();
    if let Some(u) = e.config.enrollment_user.as_deref() {
        names.push(u);
    }
    if let ApiKeySource::Legacy { decrypt_user, .. } = &e.config.api_key {
        names.push(decrypt_user.as_str());
    }
    if let Some(u) = e.state.setup_user.as_deref() {
        if !names.contains(&u) {
            names.push(u);
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// 9. Password

async fn password(e: &mut Engine) -> Result<(), StepError> {
    let Some(user) = e.state.user.clone() else {
        return Err(StepError::Transient("no employee identified yet".into()));
    };
    let needed = user.pending || e.config.password.require_for_active_users;
    match e.state.password.clone() {
        PasswordPhase::Unknown if !needed => {
            e.record("effect", "no new password needed", |s| {
                s.password = PasswordPhase::NotNeeded;
            })?;
        }
        PasswordPhase::Unknown => ask_and_set_password(e, &user, true).await?,
        PasswordPhase::Sending {
            before_password_date,
            before_activated,
        } => {
            // A previous run may have set it: read the user back instead of sending the
            // password again (history rules could refuse a repeat; SPEC §5).
            let now = e.dir.user(&user.id).await?;
            if super::password::password_took_effect(
                before_password_date.as_deref(),
                before_activated,
                &now,
            ) {
                info!("the password set before the restart took effect");
                e.record("effect", "password confirmed after restart", |s| {
                    s.password = PasswordPhase::Set;
                })?;
            } else {
                ask_and_set_password(e, &user, false).await?;
            }
        }
        PasswordPhase::NotNeeded | PasswordPhase::Set => {}
    }
    activate_if_staged(e, &user).await
}

/// Asks for the new password and sets it. `first`: no earlier attempt is in the state, so the
/// user is as identify found them and the facts a restart compares against need no read.
async fn ask_and_set_password(
    e: &mut Engine,
    user: &UserFacts,
    mut first: bool,
) -> Result<(), StepError> {
    show_progress(e, Step::Password).await?;
    let policy = e.state.policy.clone().unwrap_or_default();
    let dir = std::sync::Arc::clone(&e.dir);
    let mut prompt = PasswordPrompt {
        account: user.local_name.clone(),
        policy: policy.clone(),
        unmet: Vec::new(),
        mismatch: false,
        rejected_by_directory: None,
    };
    loop {
        let answer = e.ui.ask_password(&prompt).await?;
        let unmet = policy.unmet(
            answer.password.expose_secret(),
            &[user.username.as_str(), user.local_name.as_str()],
        );
        let mismatch = !bool::from(
            answer
                .password
                .expose_secret()
                .as_bytes()
                .ct_eq(answer.confirmation.expose_secret().as_bytes()),
        );
        if !unmet.is_empty() || mismatch {
            info!(
                unmet = unmet.len(),
                mismatch, "the new password was not accepted locally"
            );
            prompt.unmet = unmet;
            prompt.mismatch = mismatch;
            prompt.rejected_by_directory = None;
            continue;
        }
        // Persisted before the side effect: a restart reads the user back before resending and
        // compares with these facts. On a first attempt they are identify's (nothing has
        // touched the password since); after an earlier attempt they are read (issue 11).
        let (before_password_date, before_activated) = if first {
            (user.password_date.clone(), !user.pending)
        } else {
            let now = dir.user(&user.id).await?;
            (now.password_date, now.activated)
        };
        first = false;
        e.record("effect", "setting password", |s| {
            s.password = PasswordPhase::Sending {
                before_password_date,
                before_activated,
            };
        })?;
        match dir.set_password(&user.id, &answer.password).await {
            Ok(()) => {
                e.record("effect", "password set", |s| {
                    s.password = PasswordPhase::Set;
                })?;
                return Ok(());
            }
            // Any 4xx that says why (JumpCloud's status for a policy refusal is not on record):
            // the employee reads it and chooses again. Only our key's 401/403 and exhausted
            // retries end the run.
            Err(JcError::PasswordRefused { status, message }) => {
                warn!(status, %message, "JumpCloud refused the new password");
                e.record("effect", format!("password refused ({status})"), |s| {
                    s.password = PasswordPhase::Unknown;
                })?;
                prompt.unmet = Vec::new();
                prompt.mismatch = false;
                prompt.rejected_by_directory = Some(message);
            }
            Err(other) => return Err(other.into()),
        }
    }
}

async fn activate_if_staged(e: &mut Engine, user: &UserFacts) -> Result<(), StepError> {
    if !user.staged || e.state.activated {
        return Ok(());
    }
    let now = e.dir.user(&user.id).await?;
    if now.state != Some(UserState::Staged) {
        e.record("effect", "already active", |s| s.activated = true)?;
        return Ok(());
    }
    e.dir.activate_user(&user.id).await?;
    e.record("effect", "staged user activated", |s| s.activated = true)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 10. Bind

async fn bind(e: &mut Engine) -> Result<(), StepError> {
    show_progress(e, Step::Bind).await?;
    let Some(user) = e.state.user.clone() else {
        return Err(StepError::Transient("no employee identified yet".into()));
    };
    if e.state.agent_log_offset.is_none() {
        let offset =
            crate::host::agent::LogFollower::at_end(e.root.resolve(mac::JC_AGENT_LOG)).offset();
        e.record("effect", format!("agent log at {offset}"), |s| {
            s.agent_log_offset = Some(offset);
        })?;
    }
    let sudo = e.config.admin;
    let bound = |list: &[crate::jumpcloud::Binding]| list.iter().any(|b| b.user_id == user.id);
    if e.state.bind_sent {
        // Uncertain: the earlier send may have worked.
        let list = e.dir.bound_users().await?;
        if bound(&list) {
            e.record("effect", "bind confirmed", |s| {
                s.bind_confirmed = true;
                s.takeover_started_ms.get_or_insert_with(clock::now_ms);
            })?;
            return Ok(());
        }
    }
    e.record("effect", "binding", |s| s.bind_sent = true)?;
    e.dir.bind_user(&user.id, sudo).await?;
    // A 2xx or "already bound" (409; SPEC §5) is definite: no read-back (issue 11). Only a
    // send whose answer was lost (`bind_sent` without `bind_confirmed`, above) is read back.
    e.record("effect", "bind confirmed", |s| {
        s.bind_confirmed = true;
        s.takeover_started_ms = Some(clock::now_ms());
    })?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 11. Wait for the agent to create the account

async fn wait_account(e: &mut Engine) -> Result<(), StepError> {
    super::takeover::wait_account(e).await
}

// ---------------------------------------------------------------------------------------------
// 12. Hand over

async fn handover(e: &mut Engine) -> Result<(), StepError> {
    if super::preset::own_account(e) {
        return super::preset::handover(e).await;
    }
    let Some(user) = e.state.user.clone() else {
        return Err(StepError::Transient("no employee identified yet".into()));
    };
    if !e.state.setup_logged_out {
        // Nobody of the setup accounts at the console any more (a crash came right after the
        // logout, or the employee logged it out): the screen is not ours to use.
        let console = e.console_user().await?;
        if is_system_user(&console) || same_account(&console, &user.local_name) {
            e.record(
                "effect",
                format!("the setup account is already logged out (console: {console})"),
                |s| s.setup_logged_out = true,
            )?;
        } else {
            e.ui.done(&user.local_name).await?;
        }
    }
    let setup: Vec<String> = setup_accounts(e).into_iter().map(str::to_owned).collect();
    for name in &setup {
        if e.state.hidden_users.contains(name) || *name == user.local_name {
            continue;
        }
        // Remembered, so the logout below and the removal need not ask `id -u` again.
        if let Some(uid) = e.host.user_id(name).await? {
            e.setup_uids.insert(name.clone(), uid);
            e.host.hide_user(name).await?;
        }
        e.record("effect", format!("hidden {name}"), |s| {
            s.hidden_users.push(name.clone());
        })?;
    }
    if !e.state.setup_logged_out {
        e.ui.close().await?;
        e.window_open = false;
        let console = e.console_user().await?;
        if !same_account(&console, &user.local_name) && !is_system_user(&console) {
            let uid = match e.setup_uids.get(&console).copied() {
                Some(uid) => Some(uid),
                None => e.host.user_id(&console).await?,
            };
            if let Some(uid) = uid {
                e.record("effect", format!("logging out {console}"), |_| {})?;
                super::logout::log_out(e, &console, uid).await?;
            }
        }
        e.record("effect", "setup account logged out", |s| {
            s.setup_logged_out = true;
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 13. Wait for the employee's first login and Secure Token

async fn wait_login(e: &mut Engine) -> Result<(), StepError> {
    if super::preset::own_account(e) {
        return super::preset::wait_login(e);
    }
    let Some(user) = e.state.user.clone() else {
        return Err(StepError::Transient("no employee identified yet".into()));
    };
    // SecureTokenTimeoutSeconds (simulations may shorten it further).
    let grace = e
        .config
        .secure_token_timeout
        .min(e.timing.secure_token_grace);
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    if e.state.login_seen_ms.is_none() {
        // `/dev/console` is watched without a process; `stat` runs when it changes.
        let mut console = e.console_user().await?;
        if console != user.local_name {
            info!(account = %user.local_name, "waiting for the employee's first login");
        }
        while console != user.local_name {
            console = e.console_change().await?;
        }
        e.record("effect", "employee logged in", |s| {
            s.login_seen_ms = Some(clock::now_ms());
        })?;
    }
    // The employee just arrived: check the Secure Token at once (macOS usually grants it
    // during the login itself); later checks are paced.
    let mut pacer = Pacer::new(e.timing.tool_gap);
    loop {
        pacer.tick().await;
        if e.host.has_secure_token(&user.local_name).await? {
            e.record("effect", "employee holds a Secure Token", |s| {
                s.employee_has_token = true;
            })?;
            return Ok(());
        }
        let seen = e.state.login_seen_ms.unwrap_or(0);
        if clock::now_ms().saturating_sub(seen) >= grace_ms {
            warn!(account = %user.local_name, waited_s = grace.as_secs(), "the employee has no Secure Token SecureTokenTimeoutSeconds after their first login; the setup accounts will be kept");
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 14. Remove the setup accounts, move groups, report

async fn remove_setup(e: &mut Engine) -> Result<(), StepError> {
    let Some(user) = e.state.user.clone() else {
        return Err(StepError::Transient("no employee identified yet".into()));
    };
    let mut kept_short: Vec<String> = Vec::new();
    // The groups first: they may need the API key, and the legacy key's DecryptUser is one of
    // the accounts deleted below.
    if !e.state.groups_moved {
        if let Some(group) = e.config.enrollment_group_id.clone() {
            e.dir
                .remove_system_from_group(&group)
                .await
                .map_err(|err| group_error(err, "EnrollmentGroupID", &group))?;
        }
        if let Some(group) = e.config.post_enrollment_group_id.clone() {
            e.dir
                .add_system_to_group(&group)
                .await
                .map_err(|err| group_error(err, "PostEnrollmentGroupID", &group))?;
        }
        e.record("effect", "groups moved", |s| s.groups_moved = true)?;
    }
    // The FileVault unlock list before any deletion: the employee must be able to unlock the
    // disk at the next start once the setup account is gone. Without a setup account there is
    // nothing to delete (DeleteEnrollmentUsers needs EnrollmentUser).
    let own = super::preset::own_account(e);
    let preboot = if own {
        e.journal(
            "effect",
            format!(
                "nothing to delete: {} is the employee's own account (no EnrollmentUser)",
                user.local_name
            ),
        )?;
        Ok(())
    } else {
        super::removal::refresh_preboot(e, &user.local_name).await?
    };
    if e.config.delete_enrollment_users && !own {
        let mut candidates: Vec<String> = Vec::new();
        if let Some(u) = &e.config.enrollment_user {
            candidates.push(u.clone());
        }
        if let ApiKeySource::Legacy { decrypt_user, .. } = &e.config.api_key {
            candidates.push(decrypt_user.clone());
        }
        for name in candidates {
            if e.state.deleted_users.contains(&name) || e.state.kept_users.contains(&name) {
                continue;
            }
            let verdict = match safe_to_delete(e, &name, &user.local_name).await? {
                // Gone already (a deletion before a crash, or by hand).
                Ok(None) => Ok(()),
                Ok(Some(_)) => match &preboot {
                    Err(keep) => Err(keep.clone()),
                    Ok(()) => super::removal::delete_setup_account(e, &name).await?,
                },
                Err(keep) => Err(keep),
            };
            match verdict {
                Ok(()) => {
                    info!(account = %name, "setup account deleted");
                    e.record("effect", format!("deleted {name}"), |s| {
                        s.deleted_users.push(name.clone());
                    })?;
                }
                Err(keep) => {
                    warn!(account = %name, reason = %keep.detail, "setup account kept");
                    e.emit(&Event::Note(format!("kept {name}: {}", keep.detail)));
                    // We hid it at the handover; kept, it is how IT gets into this Mac (often
                    // the only Secure Token holder): show it at the login window again.
                    if e.state.hidden_users.contains(&name)
                        && e.host.user_id(&name).await?.is_some()
                    {
                        e.host.show_user(&name).await?;
                    }
                    e.record("effect", format!("kept {name}: {}", keep.detail), |s| {
                        s.kept_users.push(name.clone());
                        s.kept_reasons.insert(name.clone(), keep.detail.clone());
                        s.hidden_users.retain(|h| *h != name);
                    })?;
                    kept_short.push(format!("{name} ({})", keep.short));
                }
            }
        }
    }
    let mut line = format!(
        "prestage: enrolled {} on {}",
        user.local_name,
        clock::rfc3339(clock::now_ms())
    );
    if !e.state.kept_users.is_empty() {
        // The admin reads this in the JumpCloud console: the Mac needs a hand.
        if kept_short.is_empty() {
            // Kept in an earlier run: the reasons are in `status` and the log.
            kept_short.clone_from(&e.state.kept_users);
        }
        let _ = write!(line, "; setup account kept: {}", kept_short.join(", "));
        super::webhooks::notify(e, WebhookEvent::AccountKept, Step::RemoveSetup, None);
    }
    report(e, &line).await;
    Ok(())
}

/// Whether deleting `name` is safe: never the employee, never the console user, and only
/// when the employee holds a Secure Token (so the setup account is not the last holder:
/// bash script issue #17). `Ok(None)`: there is no such account (any more); `Ok(Some(uid))`:
/// it exists and may go.
async fn safe_to_delete(
    e: &mut Engine,
    name: &str,
    employee: &str,
) -> Result<Result<Option<u32>, Keep>, StepError> {
    let keep = |short: String, detail: String| Ok(Err(Keep { short, detail }));
    if same_account(name, employee) {
        let why = "it is the employee's own account".to_owned();
        return keep(why.clone(), why);
    }
    // The handover of this process read it a moment ago; if it went since, deleting it
    // again succeeds (`MacHost::delete_user` checks that it is gone, not what sysadminctl said).
    let uid = match e.setup_uids.get(name).copied() {
        Some(uid) => uid,
        None => match e.host.user_id(name).await? {
            Some(uid) => uid,
            None => return Ok(Ok(None)),
        },
    };
    // wait_login read the token a moment ago (a definite answer, kept in the state): only a
    // run that has no such answer asks again (issue 11).
    if !e.state.employee_has_token && !e.host.has_secure_token(employee).await? {
        return keep(
            format!("no Secure Token for {employee}"),
            format!(
                "{employee} holds no Secure Token yet, so {name} may be the last Secure Token holder; grant {employee} a token (sysadminctl -secureTokenOn {employee} -password - -adminUser {name} -adminPassword -), then delete {name}"
            ),
        );
    }
    if same_account(&e.console_user().await?, name) {
        let why = format!("{name} is logged in at the console");
        return keep(why.clone(), why);
    }
    Ok(Ok(Some(uid)))
}

/// Whether two short names may be the same account: macOS looks record names up without
/// regard to case (`id -u Welcome` finds `welcome`), so the safety checks do too (they err on
/// the side of refusing).
pub(super) fn same_account(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

use crate::host::is_system_user;

// ---------------------------------------------------------------------------------------------
// 15. Clean up

fn cleanup(e: &mut Engine) -> Result<(), StepError> {
    // Decide what the finishing touches remove, then leave the receipt. The removals happen
    // after the state says Done (see `finish`), so a restart in between still has a
    // configuration to start with, and a finished Mac needs none.
    let keychain_service = match &e.config.api_key {
        ApiKeySource::Keychain { service } => Some(service.clone()),
        _ => None,
    };
    // A local configuration holds a secret unless the API key is in the keychain, and always
    // when it holds EnrollmentUserPassword.
    let holds_secret = keychain_service.is_none() || e.config.enrollment_user_password.is_some();
    e.record("effect", "cleanup planned", |s| {
        s.keychain_service = keychain_service;
        s.remove_local_config = holds_secret;
    })?;
    super::status::write_receipt(e)?;
    super::webhooks::notify(e, WebhookEvent::Finished, Step::Cleanup, None);
    Ok(())
}

/// The finishing touches of a finished enrollment, each idempotent: delete the API key from
/// the System keychain, remove the local configuration when it holds a secret, remove the
/// LaunchDaemon plist, and last `launchctl bootout system/io.prestage.enroll` (launchd may kill
/// us while it runs). Runs right after the cleanup step and again on any later start until it
/// has completed, and needs no configuration.
pub async fn finish(
    root: &crate::paths::Root,
    store: &super::state::Store,
    state: &mut super::state::State,
    host: &dyn crate::host::Host,
    keychain: &std::sync::Arc<dyn crate::config::keychain::Keychain>,
) -> Result<(), StepError> {
    // Every start after the last step comes here, even once finished: what this does is
    // idempotent, and the one thing that cannot be persisted after it happened (the bootout
    // ends this process) must be repeated if a crash came between the two.
    if let Some(service) = &state.keychain_service {
        // Not done until it is gone: the key must not outlive the enrollment.
        crate::config::keychain::off_thread(keychain, service, |kc, s| kc.delete(s))
            .await
            .map_err(|err| {
                StepError::Transient(format!(
                    "could not delete the API key from the System keychain: {err}"
                ))
            })?;
    }
    // The agent's credentials file too, should an installer and a crash have left it.
    let mut remove = vec![mac::LAUNCH_DAEMON, mac::JC_SECURETOKEN_CREDS];
    if state.remove_local_config {
        remove.push(mac::LOCAL_CONFIG);
    }
    for path in remove {
        let real = root.resolve(path);
        match std::fs::remove_file(&real) {
            Ok(()) => info!(path, "removed"),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(StepError::Transient(format!(
                    "cannot remove {}: {err}",
                    real.display()
                )))
            }
        }
    }
    // Persisted before the last side effect: bootout may end this process.
    let again = state.finished;
    if !again {
        state.finished = true;
        store.save(state)?;
        store.journal(&super::state::JournalEntry {
            at_ms: clock::now_ms(),
            step: state.step,
            event: "effect".into(),
            detail: "bootout".into(),
        })?;
    }
    match host.remove_daemon().await {
        Ok(()) => {}
        // Started by hand, or the bootout before a crash did happen: launchd has no such job.
        Err(err) if again => info!(error = %err, "the LaunchDaemon is not loaded"),
        Err(err) => {
            warn!(error = %err, "could not unload the LaunchDaemon; it will not start again since its plist is gone");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jumpcloud::types::UserAttribute;

    fn user(id: &str) -> DirectoryUser {
        DirectoryUser {
            id: id.into(),
            username: "ada".into(),
            system_username: None,
            email: "ada@example.com".into(),
            lastname: "Lovelace".into(),
            description: String::new(),
            employee_identifier: Some("E-1815".into()),
            activated: false,
            state: Some(UserState::Activated),
            attributes: vec![UserAttribute {
                name: "enrollmentCode".into(),
                value: "K7-Q2".into(),
            }],
            password_date: None,
        }
    }

    #[test]
    fn judge_needs_exactly_one_match() {
        let none: Vec<DirectoryUser> = Vec::new();
        assert!(judge(&none, &SecretKind::None, None).is_err());
        let two = vec![user("a"), user("b")];
        assert_eq!(
            judge(&two, &SecretKind::None, None).unwrap_err(),
            "several users match the identifier"
        );
        let one = vec![user("a")];
        assert_eq!(judge(&one, &SecretKind::None, None).unwrap().id, "a");
    }

    #[test]
    fn judge_checks_the_secret() {
        let one = vec![user("a")];
        let right = SecretString::from("E-1815");
        let wrong = SecretString::from("E-1816");
        assert!(judge(&one, &SecretKind::EmployeeId, Some(&right)).is_ok());
        assert_eq!(
            judge(&one, &SecretKind::EmployeeId, Some(&wrong)).unwrap_err(),
            "the secret does not match"
        );
        assert!(judge(&one, &SecretKind::EmployeeId, None).is_err());
        let code = SecretString::from(" K7-Q2 ");
        assert!(judge(
            &one,
            &SecretKind::Attribute("enrollmentCode".into()),
            Some(&code)
        )
        .is_ok());
        assert!(judge(&one, &SecretKind::Attribute("other".into()), Some(&code)).is_err());
    }

    #[test]
    fn judge_refuses_suspended_users() {
        let mut u = user("a");
        u.state = Some(UserState::Suspended);
        assert!(judge(&[u], &SecretKind::None, None).is_err());
    }

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

    #[test]
    fn progress_marks_groups() {
        let p = progress_for(Step::Bind, "", Vec::new());
        let statuses: Vec<ItemStatus> = p.steps.iter().map(|s| s.status).collect();
        assert_eq!(
            statuses,
            vec![
                ItemStatus::Success,
                ItemStatus::Success,
                ItemStatus::Success,
                ItemStatus::Success,
                ItemStatus::Wait,
                ItemStatus::Pending
            ]
        );
        assert_eq!(p.text_id, "progress.binding");
        assert!(progress_for(Step::Done, "", Vec::new()).percent == 100);
    }
}
