//! The `prestage` binary: parse the command line, run, print one line on error.
//!
//! Under a fake Mac's root (tests, `prestage demo`) the same binary also plays the macOS tools
//! and swiftDialog: invoked through a link such as `<root>/usr/sbin/sysadminctl` it acts as that
//! tool. Both dispatchers answer only when `<root>/.fakemac/` exists, so on a real Mac nothing
//! but `prestage` itself ever runs here.

fn main() -> std::process::ExitCode {
    // Run as `<root>/usr/local/bin/dialog` of a fake Mac: be the fake swiftDialog.
    if let Some(code) = prestage::ui::fake_dialog::dispatch_from_argv0() {
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // Run as one of the other fake macOS tools (`<root>/usr/bin/id`, ...): be that tool.
    let mut cmdline = std::env::args_os();
    if let Some(argv0) = cmdline.next() {
        let args: Vec<String> = cmdline.map(|a| a.to_string_lossy().into_owned()).collect();
        if let Some(code) = prestage::host::fake::dispatch(std::path::Path::new(&argv0), &args) {
            return std::process::ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1));
        }
    }
    prestage::cli::main()
}
