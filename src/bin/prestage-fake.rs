//! `prestage-fake`: the fake macOS tools and swiftDialog of a simulated Mac, one multi-call
//! binary (never shipped; built with the `sim` feature). Every tool path under a test root links
//! to the root's shim, which runs `prestage-fake sim-tool <tool path> <arguments>`.

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let first = args.next();
    // `sim-tool` is what the shim passes first (the same shim also runs `prestage sim-tool`).
    let tool = match first {
        Some(a) if a == prestage::host::fake::SHIM_SUBCOMMAND => args.next(),
        other => other,
    };
    let Some(tool) = tool else {
        eprintln!("usage: prestage-fake sim-tool <tool path under a simulated Mac> [ARGS...]");
        return std::process::ExitCode::from(64);
    };
    let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    let code = prestage::host::fake::run(std::path::Path::new(&tool), &rest);
    std::process::ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1))
}
