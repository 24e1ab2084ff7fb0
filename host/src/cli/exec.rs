//! `host exec`: run a command with a fresh token in its environment.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::{Context, Target};

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    #[command(flatten)]
    target: Target,
    /// The variable that carries the token (default: the provider's `env` setting, else
    /// `GITHUB_TOKEN` for github and `<PROVIDER>_TOKEN` otherwise).
    #[arg(long, value_name = "NAME")]
    env: Option<String>,
    /// Refresh first when the token expires within this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    min_valid: u32,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

pub(crate) async fn run(ctx: &Context, mut args: ExecArgs) -> anyhow::Result<ExitCode> {
    let provider = args.target.provider(ctx).await?;
    let name = args.target.name().to_owned();
    let var = match &args.env {
        Some(v) => {
            if let Some(problem) = crate::util::names::env_name_problem(v) {
                anyhow::bail!(
                    "--env `{}` {problem}",
                    crate::util::text::terminal_text(v, 64)
                );
            }
            v.clone()
        }
        None => match provider.context().section().exec_env()? {
            Some(v) => v.to_owned(),
            None => default_env(&name),
        },
    };
    // The variable is checked before the token is had: nothing is refreshed for a command
    // that will not run.
    let min_valid = Duration::from_secs(u64::from(args.min_valid));
    let record = super::fresh_record(ctx, &args.target, min_valid).await?;
    let secret = record
        .credential
        .secret()
        .with_context(|| format!("the credential for `{name}` is not a token"))?;
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut command = std::process::Command::new(program);
    command.args(rest).env(&var, secret.expose());
    // On Unix the command takes this process's place, as a shell's `exec` does: a signal
    // sent to it (a supervisor stopping it, `timeout`) reaches the command, and its exit
    // status is its own. Waiting on a child instead left it running when `host` was stopped.
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let e = command.exec();
        Err(e).with_context(|| format!("cannot run `{program}`"))
    }
    #[cfg(not(unix))]
    {
        let status = command
            .status()
            .with_context(|| format!("cannot run `{program}`"))?;
        Ok(exit_code(status))
    }
}

/// `GITHUB_TOKEN` for github, `<PROVIDER>_TOKEN` for the others (`acme-key` → `ACME_KEY_TOKEN`).
fn default_env(provider: &str) -> String {
    format!("{}_TOKEN", super::env_var_name(provider))
}

/// The child's exit status as ours: its code, or 128 + the signal that ended it (as shells say).
#[cfg(not(unix))]
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return ExitCode::from(u8::try_from(128 + signal).unwrap_or(1));
        }
    }
    ExitCode::from(1)
}
