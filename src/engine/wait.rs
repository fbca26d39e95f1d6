//! Waiting without fixed sleeps: a pacer that keeps tool processes at most one every
//! [`TOOL_GAP`], and exponential backoff with full jitter for retries.

use std::time::Duration;

use tokio::time::Instant;

/// The smallest gap between two tool processes while waiting (the issue: at most one tool
/// process every 2 s).
pub const TOOL_GAP: Duration = Duration::from_millis(2_050);

/// How often files (jcagent.conf, jcagent.log) are looked at while waiting: changes are noticed
/// within 1 s without spawning anything.
pub const FILE_POLL: Duration = Duration::from_millis(250);

/// Spaces out tool processes during waits: at most one every gap. The first call does not
/// wait; [`Pacer::react`] lets the one follow-up check that a change just seen calls for go at
/// once.
#[derive(Debug)]
pub struct Pacer {
    gap: Duration,
    last: Option<Instant>,
}

impl Pacer {
    pub fn new(gap: Duration) -> Self {
        Self { gap, last: None }
    }

    /// Waits until the gap since the previous call has passed.
    pub async fn tick(&mut self) {
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + self.gap).await;
        }
        self.last = Some(Instant::now());
    }

    /// Lets one tool process start at once, without waiting, and counts it: for the single
    /// follow-up check that a change just seen calls for (the console user just became the
    /// employee: look for the Secure Token now, not a gap later). The next [`tick`](Self::tick)
    /// waits a full gap from now, so a wait in which nothing changes still spawns at most one
    /// process per gap; only an observed change buys an immediate one.
    pub fn react(&mut self) {
        self.last = Some(Instant::now());
    }
}

/// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
/// Jitter"): the n-th wait is uniform in `[0, min(cap, base * 2^n)]`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The ceiling of the next wait (before jitter).
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next wait, jittered; advances the attempt count.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=millis))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_cap_with_jitter_below_ceiling() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            let ceiling = b.ceiling();
            let delay = b.next_delay();
            assert!(delay <= ceiling);
            ceilings.push(ceiling.as_secs());
        }
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_calls() {
        let mut p = Pacer::new(TOOL_GAP);
        let start = Instant::now();
        p.tick().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        p.tick().await;
        p.tick().await;
        assert!(start.elapsed() >= TOOL_GAP * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn react_goes_at_once_and_the_next_tick_waits_a_full_gap() {
        let mut p = Pacer::new(TOOL_GAP);
        p.tick().await;
        let start = Instant::now();
        p.react();
        assert_eq!(start.elapsed(), Duration::ZERO);
        let reacted = Instant::now();
        p.tick().await;
        assert!(reacted.elapsed() >= TOOL_GAP);
    }
}
