//! The steps of an enrollment, in order: [`STEPS`] is the one list (number, name, what the
//! employee reads, the line of the progress window, patience), [`run_one`] the dispatch, and
//! the short steps are here; a long phase has its own file (named in the table). Each step is
//! idempotent: it first checks what is already done (in the persisted state and in the world),
//! and persists its progress before and after every side effect, so a kill -9 anywhere
//! followed by a restart finishes the job exactly once.

use tracing::{info, warn};

use super::phases::BindPhase;
use super::progress::UiGroup;
use super::state::Step;
use super::wait::Pacer;
use super::{clock, Engine, StepError};
use crate::config::{ApiKeySource, PolicySource, WebhookEvent};
use crate::host::is_system_user;
use crate::jumpcloud::JcError;
use crate::paths::mac;

/// One row of [`STEPS`]: everything about a step that is not its code.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo {
    pub step: Step,
    /// The snake_case name used in logs, the journal and `status`.
    pub name: &'static str,
    /// The progress window's status text while the step runs (a UI string id).
    pub text_id: &'static str,
    /// The line of the progress window's step list the step belongs to.
    pub group: UiGroup,
    /// The runner opens (or updates) the progress window before the step runs. The others
    /// show it themselves when they need it (welcome after reading the serial, which the help
    /// text shows; identify and password only when they ask), or never (the setup account's
    /// screen is not ours before the welcome, and the employee's after the handover).
    pub shows_progress: bool,
    /// How long transient failures are retried before the runner stops with a reference code
    /// ([`Step::patience`]); `None` for the waits for a person.
    pub patience_minutes: Option<u64>,
    /// What to look at when the step ran out of patience.
    pub patience_hint: &'static str,
}

const HINT_STATE: &str = "check the state directory /var/db/prestage and the disk";
const HINT_DIALOG: &str = "check swiftDialog (/usr/local/bin/dialog) and the console session";
const HINT_AGENT: &str = "check the network, the agent package and /var/log/jcagent.log";
const HINT_JUMPCLOUD: &str = "check the network path to JumpCloud (APIBaseURL) and the API key";
const HINT_NONE: &str = "nothing to wait for";

const fn row(
    step: Step,
    name: &'static str,
    text_id: &'static str,
    group: UiGroup,
    shows_progress: bool,
    patience_minutes: Option<u64>,
    patience_hint: &'static str,
) -> StepInfo {
    StepInfo {
        step,
        name,
        text_id,
        group,
        shows_progress,
        patience_minutes,
        patience_hint,
    }
}

/// Every step, in order; [`Step::number`] is the position (1-based), and the reference codes,
/// `status` and the progress percentage count with it.
#[rustfmt::skip]
pub const STEPS: [StepInfo; 16] = [
    // State directory, keep the Mac awake.
    row(Step::Preflight, "preflight", "progress.preflight", UiGroup::Prepare, false, Some(30), HINT_STATE),
    // The setup account's desktop (console user, Finder).
    row(Step::WaitDesktop, "wait_desktop", "progress.waiting_desktop", UiGroup::Prepare, false, None, HINT_NONE),
    // The full-screen welcome window; the preflight checks (battery, network).
    row(Step::Welcome, "welcome", "progress.preflight", UiGroup::Prepare, false, Some(30), HINT_DIALOG),
    // agentBootstrap.json, the package (path or download), signature, the agent's credentials
    // file, install (uncovering a Full Disk Access prompt): agent_install.rs.
    row(Step::InstallAgent, "install_agent", "progress.installing_agent", UiGroup::Agent, true, Some(60), HINT_AGENT),
    // `systemKey` in jcagent.conf (bounded; one kickstart half-way): agent_install.rs.
    row(Step::WaitAgent, "wait_agent", "progress.waiting_agent", UiGroup::Agent, true, Some(60), HINT_AGENT),
    // `EnrollmentGroupID`, confirmed.
    row(Step::JoinGroup, "join_group", "progress.joining_group", UiGroup::Agent, true, Some(60), HINT_JUMPCLOUD),
    // Org ID, API key, password policy.
    row(Step::ReadOrg, "read_org", "progress.reading_policy", UiGroup::Agent, true, Some(60), HINT_JUMPCLOUD),
    // Ask, search, check the secret; attempts and a cool-down that survive restarts:
    // identity.rs (or preset.rs).
    row(Step::Identify, "identify", "progress.identity", UiGroup::Identity, false, None, HINT_NONE),
    // Policy checked locally, confirmation, set once; activate staged users: password.rs.
    row(Step::Password, "password", "progress.password", UiGroup::Password, false, None, HINT_NONE),
    // Bind the user to this Mac, confirmed; name the Mac (naming.rs).
    row(Step::Bind, "bind", "progress.binding", UiGroup::Account, true, Some(60), HINT_JUMPCLOUD),
    // `User updates complete` (or `Processing user updates` and a quiet log) after our bind,
    // and `id -u` succeeds; at most one agent restart: takeover.rs.
    row(Step::WaitAccount, "wait_account", "progress.waiting_account", UiGroup::Account, true, Some(60), "check /var/log/jcagent.log and the user's bind in JumpCloud"),
    // Tell the employee, hide the setup accounts, log the setup account out (confirmed at the
    // console; `bootout gui/UID` as the fallback): handover.rs, logout.rs.
    row(Step::Handover, "handover", "progress.handover", UiGroup::Finish, false, Some(30), HINT_DIALOG),
    // The employee at the console, with a Secure Token (`SecureTokenTimeoutSeconds`):
    // handover.rs.
    row(Step::WaitLogin, "wait_login", "progress.handover", UiGroup::Finish, false, None, HINT_NONE),
    // Move groups, refresh the FileVault unlock list, delete the setup accounts (safely, a
    // bounded number of tries), report: removal.rs.
    row(Step::RemoveSetup, "remove_setup", "progress.cleanup", UiGroup::Finish, false, Some(60), "check the setup account with `sysadminctl` and `dscl`"),
    // The receipt and the plan of the finishing touches; once Done is persisted, the touches:
    // the API key in the keychain, the local configuration holding a secret, the LaunchDaemon
    // plist, and `launchctl bootout` ourselves, last: finish.rs.
    row(Step::Cleanup, "cleanup", "progress.cleanup", UiGroup::Finish, false, Some(30), HINT_STATE),
    // Not a step: where an enrollment ends.
    row(Step::Done, "done", "progress.done", UiGroup::Finish, false, None, HINT_NONE),
];

/// How many steps an enrollment has (Done, where it ends, is not one of them).
pub const TOTAL: usize = STEPS.len() - 1;

// The table is in the order of the enum: `Step::info` indexes it by discriminant.
const _: () = {
    let mut i = 0;
    while i < STEPS.len() {
        assert!(
            STEPS[i].step as usize == i,
            "STEPS lists the steps in the order of Step"
        );
        i += 1;
    }
};

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
        Step::InstallAgent => super::agent_install::install_agent(e).await,
        Step::WaitAgent => super::agent_install::wait_agent(e).await,
        Step::JoinGroup => join_group(e).await,
        Step::ReadOrg => read_org(e).await,
        Step::Identify => super::identity::identify(e).await,
        Step::Password => super::password::password(e).await,
        Step::Bind => {
            bind(e).await?;
            super::naming::apply(e).await
        }
        Step::WaitAccount => super::takeover::wait_account(e).await,
        Step::Handover => super::handover::handover(e).await,
        Step::WaitLogin => super::handover::wait_login(e).await,
        Step::RemoveSetup => super::removal::remove_setup(e).await,
        Step::Cleanup => super::finish::cleanup(e),
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
                s.identity.setup_user = Some(user.clone());
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
    super::progress::show_progress(e, Step::Welcome).await?;
    super::webhooks::notify(e, WebhookEvent::Started, Step::Welcome, None);
    super::preflight::check(e).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. Join the enrollment group

async fn join_group(e: &mut Engine) -> Result<(), StepError> {
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

pub(super) fn group_error(err: JcError, key: &str, group: &crate::config::ObjectId) -> StepError {
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
    if e.state.org.id.is_none() && e.config.org_id.is_none() {
        let facts = e.dir.system().await?;
        e.record("effect", format!("org {}", facts.organization), |s| {
            s.org.id = Some(facts.organization.clone());
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
        s.org.policy = Some(policy);
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
        .or_else(|| e.state.org.id.clone())
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
pub(super) async fn report(e: &mut Engine, line: &str) {
    if !e.config.report_to_directory || e.state.agent.system_key.is_none() {
        return;
    }
    if let Err(err) = e.dir.report(line).await {
        warn!(error = %err, "could not report progress to JumpCloud (ReportToDirectory)");
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Bind

async fn bind(e: &mut Engine) -> Result<(), StepError> {
    let user = super::employee(e)?;
    let log_offset = if let Some(offset) = e.state.bind.log_offset() {
        offset
    } else {
        let offset =
            crate::host::agent::LogFollower::at_end(e.root.resolve(mac::JC_AGENT_LOG)).offset();
        e.record("effect", format!("agent log at {offset}"), |s| {
            s.bind = BindPhase::LogMarked { log_offset: offset };
        })?;
        offset
    };
    let sudo = e.config.admin;
    let bound = |list: &[crate::jumpcloud::Binding]| list.iter().any(|b| b.user_id == user.id);
    if matches!(
        e.state.bind,
        BindPhase::Sent { .. } | BindPhase::Confirmed { .. }
    ) {
        // Uncertain: the earlier send may have worked.
        let list = e.dir.bound_users().await?;
        if bound(&list) {
            e.record("effect", "bind confirmed", |s| {
                let takeover_started_ms =
                    s.bind.takeover_started_ms().unwrap_or_else(clock::now_ms);
                s.bind = BindPhase::Confirmed {
                    log_offset,
                    takeover_started_ms,
                };
            })?;
            return Ok(());
        }
    }
    e.record("effect", "binding", |s| {
        s.bind = BindPhase::Sent { log_offset };
    })?;
    e.dir.bind_user(&user.id, sudo).await?;
    // A 2xx or "already bound" (409; SPEC §5) is definite: no read-back (issue 11). Only a
    // send whose answer was lost (`Sent`, above) is read back.
    e.record("effect", "bind confirmed", |s| {
        s.bind = BindPhase::Confirmed {
            log_offset,
            takeover_started_ms: clock::now_ms(),
        };
    })?;
    Ok(())
}
