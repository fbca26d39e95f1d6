//! `Preflight` (SPEC §3): before the long part of the enrollment, the welcome window makes
//! sure the Mac will not run out of battery and can reach JumpCloud.
//!
//! - On battery below `Preflight.MinimumBatteryPercent` (`pmset -g batt`), the window asks for
//!   the charger and the run waits, one `pmset` every two tool gaps, until AC is reported.
//! - With no network path to `APIBaseURL` (a TCP connection to its host and port fails), the
//!   window asks the employee to connect to the internet and the run waits, trying one
//!   connection at a time with a growing pause (at most a minute), instead of every step
//!   retrying its requests.
//!
//! Jamf Setup Manager has the same two checks (its `ConfigurationProfile.md`); both are
//! cheap, and neither stops the enrollment: a Mac without a battery, or a `pmset` that
//! answers nothing we know, passes.

use std::time::Duration;

use tracing::{info, warn};

use super::progress::progress_for;
use super::state::Step;
use super::{Engine, StepError};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest pause between two connection attempts while offline.
const OFFLINE_CAP: Duration = Duration::from_secs(60);

/// Runs both checks, showing the welcome window's status while waiting.
pub async fn check(e: &mut Engine) -> Result<(), StepError> {
    wait_for_power(e).await?;
    wait_for_network(e).await
}

async fn wait_for_power(e: &mut Engine) -> Result<(), StepError> {
    let minimum = e.config.preflight.minimum_battery_percent;
    if minimum == 0 {
        return Ok(());
    }
    let mut pacer = super::wait::Pacer::new(e.timing.tool_gap * 2);
    let mut asked = false;
    loop {
        pacer.tick().await;
        let power = match e.host.power().await {
            Ok(p) => p,
            Err(err) => {
                warn!(error = %err, "could not read the power source; not waiting for a charger");
                return Ok(());
            }
        };
        let low = power.on_battery && power.percent.is_some_and(|p| p < minimum);
        if !low {
            if asked {
                info!("the charger is in; continuing");
                super::progress::show_progress(e, Step::Welcome).await?;
            }
            return Ok(());
        }
        if !asked {
            let percent = power.percent.unwrap_or(0);
            info!(
                percent,
                minimum,
                "on battery below Preflight.MinimumBatteryPercent; waiting for the charger"
            );
            let progress = progress_for(
                Step::Welcome,
                "preflight.battery",
                vec![
                    ("percent", percent.to_string()),
                    ("minimum", minimum.to_string()),
                ],
            );
            e.ui.progress(&progress).await?;
            e.window_open = true;
            asked = true;
        }
    }
}

async fn wait_for_network(e: &mut Engine) -> Result<(), StepError> {
    let url = e.config.api_base_url.clone();
    let Some(host) = url.host_str().map(str::to_owned) else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let mut backoff = super::wait::Backoff::new(e.timing.backoff_base, OFFLINE_CAP);
    let mut asked = false;
    loop {
        if reachable(&host, port).await {
            if asked {
                info!(host = %host, "network path to JumpCloud is back; continuing");
                super::progress::show_progress(e, Step::Welcome).await?;
            }
            return Ok(());
        }
        if !asked {
            warn!(host = %host, port, "no network path to APIBaseURL; asking the employee to connect to the internet");
            let progress = progress_for(Step::Welcome, "preflight.offline", Vec::new());
            e.ui.progress(&progress).await?;
            e.window_open = true;
            asked = true;
        }
        // At least a tool gap between attempts, growing to a minute.
        tokio::time::sleep(backoff.next_delay().max(e.timing.tool_gap)).await;
    }
}

/// Whether a TCP connection to `host:port` can be made (name resolution included).
pub async fn reachable(host: &str, port: u16) -> bool {
    matches!(
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((host, port))
        )
        .await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_closed_port_is_not_reachable_an_open_one_is() {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(super::reachable("127.0.0.1", port).await);
        drop(l);
        assert!(!super::reachable("127.0.0.1", port).await);
    }
}
