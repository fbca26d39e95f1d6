//! The table at the end of the enrollment bench: each figure next to issue 11's "before" and
//! its target.

use std::time::Duration;

use super::{bytes_to_mb, kib_to_mb, latency, median, HappyRun, Waiting};

pub(super) fn print_summary(
    happy: &[HappyRun],
    paced: &[HappyRun],
    realistic: &[HappyRun],
    idle: &Waiting,
    size: u64,
    stripped: bool,
) {
    let walls: Vec<Duration> = happy.iter().map(|r| r.wall).collect();
    let paced_walls: Vec<Duration> = paced.iter().map(|r| r.wall).collect();
    let real_walls: Vec<Duration> = realistic.iter().map(|r| r.wall).collect();
    let cpus: Vec<Duration> = happy.iter().map(|r| r.cpu).collect();
    let real_cpus: Vec<Duration> = realistic.iter().map(|r| r.cpu).collect();
    let all = || happy.iter().chain(paced).chain(realistic);
    let peak = all()
        .map(|r| r.peak_rss_kib)
        .chain([idle.peak_rss_kib])
        .max()
        .unwrap_or(0);
    let most_tools = happy
        .iter()
        .chain(realistic)
        .map(|r| r.tool_calls)
        .max()
        .unwrap_or(0);
    let most_requests = happy
        .iter()
        .chain(realistic)
        .map(|r| r.requests)
        .max()
        .unwrap_or(0);
    let worst = |f: fn(&latency::Latencies) -> Option<Duration>| {
        realistic.iter().filter_map(|r| f(&r.latency)).max()
    };
    let within = |d: Option<Duration>, limit: Duration| d.is_some_and(|d| d <= limit);
    let worst_welcome = worst(|l| l.login_to_welcome);
    let worst_deletion = worst(|l| l.login_to_deletion);
    let per_minute = |n: usize| {
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let n = n as f64;
        n * 60.0 / idle.window.as_secs_f64().max(1.0)
    };
    let cpu_per_minute = idle.cpu.as_secs_f64() * 60.0 / idle.window.as_secs_f64().max(1.0);
    let wall = median(&walls);
    let lat = |f: fn(&latency::Latencies) -> Option<Duration>| {
        latency::median_secs(realistic.iter().map(|r| f(&r.latency)))
    };
    let secs =
        |d: Option<Duration>| d.map_or("–".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()));
    let rows = [
        (
            "happy path wall time, instant fakes (median)".to_owned(),
            format!("{:.2} s", wall.as_secs_f64()),
            "about 7 s",
            "< 3 s",
            wall < Duration::from_secs(3),
        ),
        (
            "happy path wall time, realistic login delays (median)".to_owned(),
            format!("{:.2} s", median(&real_walls).as_secs_f64()),
            "–",
            "-",
            true,
        ),
        (
            "setup account's login → welcome window (median; worst)".to_owned(),
            format!("{}; {}", lat(|l| l.login_to_welcome), secs(worst_welcome)),
            "up to 2 s",
            "≤ 0.3 s",
            within(worst_welcome, Duration::from_millis(300)),
        ),
        (
            "bind → Done screen (median)".to_owned(),
            lat(|l| l.bind_to_done),
            "–",
            "-",
            true,
        ),
        (
            "employee's login → setup account deleted (median; worst)".to_owned(),
            format!("{}; {}", lat(|l| l.login_to_deletion), secs(worst_deletion)),
            "up to 2 s",
            "≤ 0.3 s",
            within(worst_deletion, Duration::from_millis(300)),
        ),
        (
            "tool processes, happy path (most of any run)".to_owned(),
            most_tools.to_string(),
            "29",
            "≤ 20",
            most_tools <= 20,
        ),
        (
            "requests, happy path (most of any run)".to_owned(),
            most_requests.to_string(),
            "14",
            "≤ 10",
            most_requests <= 10,
        ),
        (
            "happy path wall time, demo-speed fakes (median)".to_owned(),
            format!("{:.2} s", median(&paced_walls).as_secs_f64()),
            "5.30 s",
            "-",
            true,
        ),
        (
            "happy path CPU time, instant fakes; realistic (medians)".to_owned(),
            format!(
                "{:.3} s; {:.3} s",
                median(&cpus).as_secs_f64(),
                median(&real_cpus).as_secs_f64()
            ),
            "–",
            "-",
            true,
        ),
        (
            format!(
                "CPU time, {:.0} s waiting for login (per minute)",
                idle.window.as_secs_f64()
            ),
            format!(
                "{:.3} s (schedstat {:.1} ms); {:.3} s/min",
                idle.cpu.as_secs_f64(),
                idle.cpu_fine.as_secs_f64() * 1000.0,
                cpu_per_minute
            ),
            "0.010 s",
            "< 0.1 s/min",
            cpu_per_minute < 0.1,
        ),
        (
            format!(
                "tool processes, {:.0} s waiting (per minute)",
                idle.window.as_secs_f64()
            ),
            format!(
                "{}; {:.1}/min",
                idle.tool_calls,
                per_minute(idle.tool_calls)
            ),
            "29",
            "≤ 1/min",
            per_minute(idle.tool_calls) <= 1.0,
        ),
        (
            "peak RSS (VmHWM, all runs)".to_owned(),
            format!("{:.1} MB", kib_to_mb(peak)),
            "9.9 MB",
            "< 25 MB",
            kib_to_mb(peak) < 25.0,
        ),
        (
            format!(
                "binary size ({})",
                if stripped { "stripped" } else { "NOT stripped" }
            ),
            format!("{:.2} MB", bytes_to_mb(size)),
            "–",
            "-",
            true,
        ),
    ];
    println!();
    println!("| figure | measured | before (issue 11) | target | met |");
    println!("|---|---|---|---|---|");
    for (name, value, before, target, ok) in rows {
        let met = if target == "-" {
            "-"
        } else if ok {
            "yes"
        } else {
            "NO"
        };
        println!("| {name} | {value} | {before} | {target} | {met} |");
    }
}
