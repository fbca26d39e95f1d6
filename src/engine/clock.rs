//! Wall-clock time for persisted timestamps (milliseconds since the Unix epoch). Waiting uses
//! tokio's monotonic clock; only what must survive a restart uses this one.
//!
//! # One injection point, scoped
//!
//! The engine reads the time through the free function [`now_ms`]. Which [`Clock`] answers is
//! decided in one place: [`Engine::run`](super::Engine::run) runs its work inside
//! [`scope`], a `tokio::task_local!` holding the engine's clock (set with
//! [`Engine::with_clock`](super::Engine::with_clock), [`SystemClock`] by default). This is the
//! pattern of tracing's default dispatcher (`tracing::dispatcher::with_default`): the value is
//! bound to the running task for the duration of a future, and there is no global mutable
//! state, so two engines in one process (tests) never see each other's clock.
//!
//! - Called from within the engine's task (the future `run` awaits, and everything it awaits
//!   inline), [`now_ms`] reads the engine's clock.
//! - Called anywhere else (another task, another thread, before `run`), it reads the system
//!   clock. A task the engine starts with `tokio::spawn` or `spawn_blocking` does **not**
//!   inherit the scope. None of them needs the clock, because only the engine's task persists
//!   timestamps (checked for this change): the webhook sender
//!   ([`super::webhooks::Outbox::start`]) waits with `tokio::time::Instant` and persists no
//!   timestamp (its messages' facts are taken on the engine's task in
//!   [`super::webhooks::facts`]); swiftDialog's watcher and command-file resender
//!   (`ui/dialog.rs`), the `caffeinate` reaper (`host/mac.rs`) and the blocking keychain,
//!   staging and file reads (`config/keychain.rs`, `host/staging.rs`, `host/untrusted.rs`)
//!   never call [`now_ms`].
//!
//! [`sync_scope`] does the same for synchronous code (tests wrap [`super::Engine::new`] in it so
//! the start line of the journal reads the same clock as the run).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The real wall clock (0 if it reads before 1970).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        system_now_ms()
    }
}

/// A wall-clock anchor taken at creation plus the `tokio::time::Instant` time elapsed since, so
/// a paused tokio clock (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`) drives
/// it, and auto-advance moves it as far as the sleeps it skips. Needs a tokio runtime to be
/// created and read (as `tokio::time::Instant::now` does under paused time).
#[cfg(feature = "sim")]
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    anchor_ms: u64,
    start: tokio::time::Instant,
}

#[cfg(feature = "sim")]
impl TokioClock {
    /// Anchored at the system clock's now.
    pub fn new() -> Self {
        Self::at(system_now_ms())
    }

    /// Anchored at `anchor_ms` (a fixed epoch makes journal timestamps predictable).
    pub fn at(anchor_ms: u64) -> Self {
        Self {
            anchor_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

#[cfg(feature = "sim")]
impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "sim")]
impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.anchor_ms.saturating_add(elapsed)
    }
}

tokio::task_local! {
    static CLOCK: Arc<dyn Clock>;
}

/// Runs `fut` with `clock` as the clock [`now_ms`] reads inside it.
pub async fn scope<F: std::future::Future>(clock: Arc<dyn Clock>, fut: F) -> F::Output {
    CLOCK.scope(clock, fut).await
}

/// Runs `f` with `clock` as the clock [`now_ms`] reads inside it (synchronous code).
pub fn sync_scope<R>(clock: Arc<dyn Clock>, f: impl FnOnce() -> R) -> R {
    CLOCK.sync_scope(clock, f)
}

/// Milliseconds since the Unix epoch: the scoped clock's (see the module's documentation), or
/// the system clock's outside any scope.
pub fn now_ms() -> u64 {
    CLOCK
        .try_with(|c| c.now_ms())
        .unwrap_or_else(|_| system_now_ms())
}

fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// RFC 3339 form of a timestamp, for `status` and the receipt.
pub fn rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(String::new, |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Fixed(u64);
    impl Clock for Fixed {
        fn now_ms(&self) -> u64 {
            self.0
        }
    }

    #[tokio::test]
    async fn now_ms_reads_the_scoped_clock_and_the_system_clock_outside() {
        let before = system_now_ms();
        assert_eq!(scope(Arc::new(Fixed(42)), async { now_ms() }).await, 42);
        // Across an await inside the scope too.
        let inner = scope(Arc::new(Fixed(7)), async {
            tokio::task::yield_now().await;
            now_ms()
        })
        .await;
        assert_eq!(inner, 7);
        // Outside: the system clock again.
        assert!(now_ms() >= before);
        assert_eq!(sync_scope(Arc::new(Fixed(9)), now_ms), 9);
    }

    #[tokio::test]
    async fn nested_scopes_take_the_innermost_and_restore_the_outer() {
        let got = scope(Arc::new(Fixed(1)), async {
            let inner = scope(Arc::new(Fixed(2)), async { now_ms() }).await;
            (inner, now_ms())
        })
        .await;
        assert_eq!(got, (2, 1));
    }

    #[tokio::test]
    async fn a_spawned_task_does_not_inherit_the_scope() {
        let before = system_now_ms();
        let spawned = scope(Arc::new(Fixed(5)), async {
            tokio::spawn(async { now_ms() })
                .await
                .expect("the task does not panic")
        })
        .await;
        assert!(spawned >= before, "a spawned task reads the system clock");
    }

    #[cfg(feature = "sim")]
    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let c = TokioClock::at(1_000);
        assert_eq!(c.now_ms(), 1_000);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(c.now_ms(), 91_000);
        // Auto-advance: a sleep in paused time moves it by the sleep's length.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(c.now_ms(), 3_691_000);
        let scoped = scope(Arc::new(c), async { now_ms() }).await;
        assert_eq!(scoped, 3_691_000);
    }
}
