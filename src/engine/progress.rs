//! What the employee sees of the steps: the progress window's percentage, status text and the
//! six lines of the step list, all derived from [`super::steps::STEPS`]. The runner shows a
//! step's progress before it runs (the table says which steps) and says when it retries.

use tracing::warn;

use super::state::Step;
use super::steps::TOTAL;
use super::{Engine, StepError};
use crate::ui::{ItemStatus, Progress, StepItem};

/// The lines of the progress window's step list: the employee sees six lines, not every step.
/// Each step of [`STEPS`](super::steps::STEPS) belongs to one; they follow each other in the order of the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UiGroup {
    Prepare,
    Agent,
    Identity,
    Password,
    Account,
    Finish,
}

impl UiGroup {
    /// Every line, top to bottom.
    pub const ALL: [UiGroup; 6] = [
        UiGroup::Prepare,
        UiGroup::Agent,
        UiGroup::Identity,
        UiGroup::Password,
        UiGroup::Account,
        UiGroup::Finish,
    ];

    /// The line's title (a UI string id).
    pub fn title_id(self) -> &'static str {
        match self {
            UiGroup::Prepare => "steps.prepare",
            UiGroup::Agent => "steps.agent",
            UiGroup::Identity => "steps.identity",
            UiGroup::Password => "steps.password",
            UiGroup::Account => "steps.account",
            UiGroup::Finish => "steps.finish",
        }
    }
}

/// Opens (or updates) the progress window for `step`.
pub async fn show_progress(e: &mut Engine, step: Step) -> Result<(), StepError> {
    let progress = progress_for(step, "", Vec::new());
    e.ui.progress(&progress).await?;
    e.window_open = true;
    Ok(())
}

/// Before `step` runs: the progress window, for the steps whose row in [`STEPS`](super::steps::STEPS) says so (the
/// others show it themselves when and if they need it, or never).
pub async fn before(e: &mut Engine, step: Step) -> Result<(), StepError> {
    if step.info().shows_progress {
        show_progress(e, step).await?;
    }
    Ok(())
}

/// Tells the employee we are retrying (best effort). Never once the setup account is logged
/// out: from then on the screen is the employee's own desktop (or the login window), and a
/// full-screen window on top of it would lock them out of their work.
pub async fn show_retrying(e: &mut Engine, step: Step) {
    if step < Step::Welcome || e.state.handover.setup_logged_out {
        return;
    }
    let progress = progress_for(step, "progress.retrying", Vec::new());
    if let Err(err) = e.ui.progress(&progress).await {
        warn!(error = %err, "could not update the progress window");
    }
}

/// The progress window's content at `step`: percentage, status text (the step's own when
/// `text_id` is empty) and the step list.
pub fn progress_for(
    step: Step,
    text_id: &'static str,
    args: Vec<(&'static str, String)>,
) -> Progress {
    let current = step.info().group;
    let steps = UiGroup::ALL
        .iter()
        .map(|&group| {
            let status = match group.cmp(&current) {
                std::cmp::Ordering::Less => ItemStatus::Success,
                std::cmp::Ordering::Equal => ItemStatus::Wait,
                std::cmp::Ordering::Greater => ItemStatus::Pending,
            };
            StepItem {
                title_id: group.title_id(),
                status,
            }
        })
        .collect();
    // swiftDialog draws 0 % as an endless spinner: start at 1 %.
    let percent =
        u8::try_from((step.number().saturating_sub(1) * 100 / TOTAL).max(1)).unwrap_or(100);
    let text_id = if text_id.is_empty() {
        step.info().text_id
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_table_keeps_the_old_groups_texts_and_percentages() {
        // What the hand-kept lists said before the table: each group's last step, each step's
        // text, and the percentage at a few steps.
        let last = [
            (UiGroup::Prepare, Step::Welcome),
            (UiGroup::Agent, Step::ReadOrg),
            (UiGroup::Identity, Step::Identify),
            (UiGroup::Password, Step::Password),
            (UiGroup::Account, Step::WaitAccount),
            (UiGroup::Finish, Step::Done),
        ];
        for (group, step) in last {
            assert_eq!(step.info().group, group, "{step}");
            if step != Step::Done {
                assert!(step.next().info().group > group, "{step}");
            }
        }
        assert_eq!(Step::Preflight.info().text_id, "progress.preflight");
        assert_eq!(Step::Welcome.info().text_id, "progress.preflight");
        assert_eq!(Step::WaitLogin.info().text_id, "progress.handover");
        assert_eq!(Step::Cleanup.info().text_id, "progress.cleanup");
        assert_eq!(progress_for(Step::Preflight, "", Vec::new()).percent, 1);
        assert_eq!(progress_for(Step::Bind, "", Vec::new()).percent, 60);
        assert_eq!(progress_for(Step::Cleanup, "", Vec::new()).percent, 93);
        // Every step of the enrollment has a percentage below 100 and Done has 100.
        assert_eq!(TOTAL, Step::ALL.len() - 1);
    }
}
