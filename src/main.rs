//! The `prestage` binary: parse the command line, run, print one line on error.

fn main() -> std::process::ExitCode {
    prestage::cli::main()
}
