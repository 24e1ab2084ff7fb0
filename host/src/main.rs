//! The `host` command: parse, run, print the error chain, exit 0 / 1 / 2 / 4.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    cli::init_tracing(args.verbose, args.quiet);
    // One thread: a command is one task at a time (a login's listener and its polling are
    // concurrent, not parallel), and starting worker threads costs more than `host token`
    // itself. Blocking work (file locks, compiling a plugin) goes to the blocking pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            // 4: the user must log in (again), as `gh` says it; 1: any other failure.
            if cli::needs_login(&e) {
                ExitCode::from(4)
            } else if cli::is_usage_error(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// The error and its causes, each once (`host::error_chain`), made safe for the terminal: a
/// cause may quote a database's, a file name's or a server's text.
fn error_text(e: &anyhow::Error) -> String {
    let error: &(dyn std::error::Error + 'static) = e.as_ref();
    host::terminal_text(&host::error_chain(error), 8_000)
}
