//! The `prestage` binary: parse the command line, run, print one line on error.

fn main() -> std::process::ExitCode {
    // Invoked as a fake macOS tool under a test root (`<root>/usr/bin/id`, ...): be that tool.
    let mut cmdline = std::env::args_os();
    if let Some(argv0) = cmdline.next() {
        let args: Vec<String> = cmdline.map(|a| a.to_string_lossy().into_owned()).collect();
        if let Some(code) = prestage::host::fake::dispatch(std::path::Path::new(&argv0), &args) {
            return std::process::ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1));
        }
    }
    prestage::cli::main()
}
