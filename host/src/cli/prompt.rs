//! Prompt interactions: fields the user fills (an API key, a user name and password).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context as _, anyhow, bail};
use host::config::FIELD_PREFIX;
use host::flow::{
    AuthFlow, CallbackError, Credential, ExchangeInput, FlowError, Pending, PromptField,
};

use super::Context;

/// Attempts at an interactive prompt before giving up.
const ATTEMPTS: usize = 3;

/// Collects the answers (flags, then `HOST_FIELD_*`, then the terminal or standard input),
/// checks them, and exchanges them for a credential.
pub(crate) async fn run(
    ctx: &Context,
    flow: &dyn AuthFlow,
    fields: &[PromptField],
    given: &[(String, String)],
    pending: Pending,
) -> anyhow::Result<Credential> {
    for (name, _) in given {
        if !fields.iter().any(|f| f.name == *name) {
            let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            bail!(
                "this flow asks for {}; it has no field `{name}`",
                known.join(", ")
            );
        }
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    for attempt in 1..=ATTEMPTS {
        let answers = answers(fields, given, interactive)?;
        match flow
            .exchange(pending.clone(), ExchangeInput::new(answers))
            .await
        {
            Ok(credential) => return Ok(credential),
            Err(FlowError::Callback(CallbackError::Rejected(why)))
                if interactive && attempt < ATTEMPTS =>
            {
                ctx.say(format!("Not accepted: {why}. Try again."));
            }
            Err(FlowError::Callback(CallbackError::Rejected(why))) => {
                bail!("what was entered was not accepted: {why}")
            }
            Err(e) => return Err(anyhow::Error::new(e).context("the login failed")),
        }
    }
    unreachable!("the last attempt returns")
}

/// `HOST_FIELD_API_KEY` for `api_key` (`api-key` too).
fn env_name(field: &str) -> String {
    let name: String = field
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{FIELD_PREFIX}{name}")
}

fn answers(
    fields: &[PromptField],
    given: &[(String, String)],
    interactive: bool,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut stdin_lines =
        (!interactive && !std::io::stdin().is_terminal()).then(|| std::io::stdin().lock().lines());
    let mut answers = Vec::new();
    for field in fields {
        let var = env_name(&field.name);
        let value = match given.iter().rev().find(|(n, _)| *n == field.name) {
            Some((_, v)) => Some(v.clone()),
            None => std::env::var(&var).ok(),
        };
        let value = match value {
            Some(v) => v,
            None if interactive => ask(field)?,
            // Piped input: one line per missing field (`host run --provider x < key.txt`).
            None => match stdin_lines.as_mut().and_then(|l| l.next()).transpose()? {
                Some(line) => line,
                None => {
                    return Err(anyhow!(
                        "`{}` ({}) is needed: pass --field {}=…, set {var}, or run in a terminal to be asked",
                        field.name,
                        field.label,
                        field.name
                    ));
                }
            },
        };
        let value = value.trim().to_owned();
        if value.is_empty() {
            bail!("`{}` ({}) must not be empty", field.name, field.label);
        }
        if value.chars().any(char::is_control) {
            bail!(
                "`{}` ({}) contains control characters",
                field.name,
                field.label
            );
        }
        answers.push((field.name.clone(), value));
    }
    Ok(answers)
}

fn ask(field: &PromptField) -> anyhow::Result<String> {
    let label = format!("{}: ", field.label);
    if field.secret {
        // Read from the terminal with echo off.
        return rpassword::prompt_password(&label).context("cannot read from the terminal");
    }
    eprint!("{label}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read from the terminal")?;
    Ok(line)
}
