//! Logging: a file log under `--root` at `/var/log/prestage.log`, stderr, text or JSON lines,
//! `-v`/`-vv`, and on macOS the unified log (subsystem `io.prestage.enroll`).
//!
//! Under launchd, stdout and stderr are redirected into the same log file by the LaunchDaemon
//! plist; `run` then writes through the file layer only (when stderr is not a terminal and no
//! `-v` was given, as under launchd), so every line appears once.

use std::fs::{self, OpenOptions};
use std::io::IsTerminal;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::paths::{mac, Root};

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// What the caller wants logged, and where.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub format: LogFormat,
    /// 0: info to the file, warnings to stderr; 1: info everywhere; 2+: debug everywhere.
    pub verbosity: u8,
    /// Also write `/var/log/prestage.log` under this root.
    pub file_root: Option<Root>,
    /// Skip stderr when it is not a terminal (launchd sends it to the same file), unless -v/-vv
    /// asked for more.
    pub quiet_stderr_when_piped: bool,
}

/// A file writer shared by all threads (append mode; 0640 root:wheel: the log names employees,
/// though it holds no secret by construction; the package creates it the same way).
#[derive(Clone)]
struct FileWriter(Arc<Mutex<fs::File>>);

impl std::io::Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut f) => f.write(buf),
            Err(poisoned) => poisoned.into_inner().write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = FileWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn level(verbosity: u8, base: LevelFilter) -> LevelFilter {
    match verbosity {
        0 => base,
        1 => LevelFilter::INFO.max(base),
        _ => LevelFilter::DEBUG,
    }
}

fn boxed_fmt<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_target(false)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .with_target(false)
            .boxed(),
    }
}

/// Hands `L` the events that happen outside every span, and nothing else (no span, no event
/// inside one): what the unified-log layer can take.
///
/// tracing-oslog 0.3.0 looks up the current span of each event it gets and panics when that
/// span is not one it saw opened (`OsLogger::on_event`: `ctx.span(..).expect("invalid span, this
/// shouldn't happen")`; Absolucy/tracing-oslog#20, open). Behind its own level filter it never
/// sees the debug spans that h2 opens around its warnings with `-vv`, yet `Context::current_span`
/// still names them (tokio-rs/tracing#2396), and the release build aborts on a panic. prestage
/// opens no span of its own, so none of its lines is lost; a dependency's warning inside its
/// spans still reaches the file log and stderr.
#[cfg(any(target_os = "macos", test))]
struct OutsideSpans<L>(L);

#[cfg(any(target_os = "macos", test))]
impl<S, L> Layer<S> for OutsideSpans<L>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if ctx.current_span().id().is_none() {
            self.0.on_event(event, ctx);
        }
    }
}

/// Installs the global subscriber. Returns a note when the file log could not be opened (the
/// caller prints it; logging still goes to stderr).
pub fn init(opts: &LogOptions) -> Option<String> {
    let mut layers: Vec<Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>> = Vec::new();
    let mut note = None;
    if let Some(root) = &opts.file_root {
        let path = root.resolve(mac::LOG_FILE);
        let opened = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o640)
                    .open(&path)
            });
        match opened {
            Ok(file) => {
                let writer = FileWriter(Arc::new(Mutex::new(file)));
                layers.push(
                    boxed_fmt(opts.format, writer, false)
                        .with_filter(level(opts.verbosity, LevelFilter::INFO))
                        .boxed(),
                );
            }
            Err(e) => note = Some(format!("cannot open {}: {e}", path.display())),
        }
    }
    let stderr_tty = std::io::stderr().is_terminal();
    // launchd runs `prestage run` without -v; an explicit -v/-vv always reaches stderr.
    let quiet = opts.quiet_stderr_when_piped
        && opts.verbosity == 0
        && !stderr_tty
        && opts.file_root.is_some();
    if !quiet {
        layers.push(
            boxed_fmt(opts.format, std::io::stderr, stderr_tty)
                .with_filter(level(opts.verbosity, LevelFilter::WARN))
                .boxed(),
        );
    }
    #[cfg(target_os = "macos")]
    layers.push(
        OutsideSpans(tracing_oslog::OsLogger::new(mac::LABEL, "default"))
            .with_filter(LevelFilter::INFO)
            .boxed(),
    );
    // RUST_LOG can narrow further (e.g. silence a noisy dependency); it never widens past -vv.
    let env = EnvFilter::builder()
        .with_default_directive(LevelFilter::TRACE.into())
        .from_env_lossy()
        .add_directive("hyper=warn".parse().expect("static directive"))
        .add_directive("reqwest=warn".parse().expect("static directive"))
        .add_directive("rustls=warn".parse().expect("static directive"));
    let _ = tracing_subscriber::registry()
        .with(layers)
        .with(env)
        .try_init();
    note
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tracing_subscriber::layer::Context;
    use tracing_subscriber::registry::LookupSpan;

    use super::*;

    /// What tracing-oslog 0.3.0's `OsLogger::on_event` does with an event's span (src/logger.rs:
    /// `if let Some(parent_id) = ctx.current_span().id() { let span = ctx.span(parent_id)
    /// .expect("invalid span, this shouldn't happen"); ... }`), counting what it would log.
    struct LikeOsLogger(Arc<AtomicUsize>);

    impl<S> Layer<S> for LikeOsLogger
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        fn on_event(&self, _event: &tracing::Event<'_>, ctx: Context<'_, S>) {
            if let Some(parent_id) = ctx.current_span().id() {
                let _span = ctx
                    .span(parent_id)
                    .expect("invalid span, this shouldn't happen");
            }
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A warning inside a debug span, as h2 logs one, with a debug layer beside the unified log
    /// (as with `-vv`) so that the span exists; then a line outside any span.
    fn log_like_h2<L>(unified_log: L)
    where
        L: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    {
        let debug_layer = tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .with_filter(LevelFilter::DEBUG);
        let subscriber = tracing_subscriber::registry()
            .with(unified_log.with_filter(LevelFilter::INFO))
            .with(debug_layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::debug_span!("Connection", peer = "client");
            span.in_scope(|| tracing::warn!("recv PING ack that we never sent"));
            tracing::info!("enrollment finished");
        });
    }

    #[test]
    fn the_unified_log_gets_lines_outside_spans_and_never_a_span_it_did_not_see() {
        let logged = Arc::new(AtomicUsize::new(0));
        log_like_h2(OutsideSpans(LikeOsLogger(Arc::clone(&logged))));
        assert_eq!(logged.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_unified_log_layer_alone_panics_on_a_warning_inside_a_span_it_did_not_see() {
        let logged = Arc::new(AtomicUsize::new(0));
        let layer = LikeOsLogger(Arc::clone(&logged));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| log_like_h2(layer)));
        assert!(outcome.is_err(), "expected the panic OutsideSpans prevents");
    }
}
