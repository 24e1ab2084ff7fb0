//! The `host` command: parse, run, print the error chain, exit 0 / 1 / 2 / 4. The command
//! lives in the library (`host::cli`, feature `cli`), so its helpers stay private to the crate.

fn main() -> std::process::ExitCode {
    host::cli::main()
}
