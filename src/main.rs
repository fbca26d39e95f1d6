//! The `prestage` binary: parse the command line, run, print one line on error.

fn main() -> std::process::ExitCode {
    // Run as `<root>/usr/local/bin/dialog` of a fake Mac: be the fake swiftDialog (tests, demo).
    if let Some(code) = prestage::ui::fake_dialog::dispatch_from_argv0() {
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    prestage::cli::main()
}
