//! Prompt interactions: fields the user fills (an API key, a user name and password).

use std::io::{BufRead, IsTerminal, Write};

use crate::{config::FIELD_PREFIX, flow::PromptField, login::LoginError};
use anyhow::Context as _;

use super::Context;

/// Answers for a prompt: flags, then `HOST_FIELD_*`, then the terminal (asked again after a
/// refusal) or standard input (one line per field; a refusal ends the login).
pub(crate) fn answers(
    ctx: &Context,
    fields: &[PromptField],
    given: &[(String, String)],
    refused: Option<&str>,
) -> Result<Vec<(String, String)>, LoginError> {
    for (name, _) in given {
        if !fields.iter().any(|f| f.name == *name) {
            let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            return Err(LoginError::Input(format!(
                "this flow asks for {}; it has no field `{name}`",
                known.join(", ")
            )));
        }
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if let Some(why) = refused {
        if !interactive {
            return Err(LoginError::NotAccepted(why.to_owned()));
        }
        ctx.say(format!("Not accepted: {why}. Try again."));
    }
    collect(fields, given, interactive).map_err(|e| LoginError::Input(format!("{e:#}")))
}

/// `HOST_FIELD_API_KEY` for `api_key` (`api-key` too).
fn env_name(field: &str) -> String {
    format!("{FIELD_PREFIX}{}", super::env_var_name(field))
}

fn collect(
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
                    return Err(anyhow::anyhow!(
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
            anyhow::bail!("`{}` ({}) must not be empty", field.name, field.label);
        }
        if value.chars().any(char::is_control) {
            anyhow::bail!(
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
