//! `host config`: the effective settings, where each comes from, secrets redacted.

use clap::Args;
use figment::Provider as _;
use figment::value::{Dict, Value as FigValue};
use serde_json::{Value, json};

use super::Context;

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Only this provider's settings.
    #[arg(long, short = 'p')]
    provider: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Keys whose values are never shown.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "token"
        || [
            "secret",
            "password",
            "api_key",
            "apikey",
            "access_token",
            "refresh_token",
        ]
        .iter()
        .any(|s| key.ends_with(s))
}

/// A URL value with a password (`http://user:pass@proxy:3128`) keeps everything but the password.
fn redact_url_password(value: Value) -> Value {
    if let Some(mut url) = value.as_str().and_then(|s| url::Url::parse(s).ok())
        && url.password().is_some()
        && url.set_password(Some("redacted")).is_ok()
    {
        return Value::String(url.to_string());
    }
    value
}

fn walk(prefix: &str, dict: &Dict, out: &mut Vec<(String, Value)>) {
    for (key, value) in dict {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            FigValue::Dict(_, child) => walk(&path, child, out),
            leaf => {
                let shown = if is_secret(key) {
                    json!("[redacted]")
                } else {
                    redact_url_password(leaf.deserialize::<Value>().unwrap_or(Value::Null))
                };
                out.push((path, shown));
            }
        }
    }
}

pub(crate) fn run(ctx: &Context, args: ConfigArgs) -> anyhow::Result<()> {
    let data = ctx.config.figment().data()?;
    let mut settings = Vec::new();
    if let Some(dict) = data.get(&figment::Profile::Default) {
        walk("", dict, &mut settings);
    }
    if let Some(p) = &args.provider {
        ctx.registry.get(p)?;
        let prefix = format!("providers.{p}.");
        settings.retain(|(path, _)| path.starts_with(&prefix));
    }
    let rows: Vec<(String, Value, String)> = settings
        .into_iter()
        .map(|(path, value)| {
            let origin = ctx
                .config
                .origin(&path)
                .map(|o| o.to_string())
                .unwrap_or_else(|| "unknown".into());
            (path, value, origin)
        })
        .collect();
    if args.json {
        let out: Vec<Value> = rows
            .iter()
            .map(|(k, v, o)| json!({ "key": k, "value": v, "from": o }))
            .collect();
        outln!(
            "{:#}",
            json!({ "file": ctx.config.file(), "data_dir": ctx.config.data_dir(), "settings": out })
        );
        return Ok(());
    }
    outln!(
        "# configuration file: {}{}",
        ctx.config.file().display(),
        if ctx.config.file().is_file() {
            ""
        } else {
            " (absent)"
        }
    );
    outln!("# data folder: {}", ctx.config.data_dir().display());
    for (key, value, origin) in rows {
        outln!("{key} = {value}  # from {origin}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_and_secret_keys_are_hidden() {
        let shown = redact_url_password(json!("http://me:hunter2@proxy.example:3128/"));
        assert_eq!(shown, json!("http://me:redacted@proxy.example:3128/"));
        assert_eq!(
            redact_url_password(json!("https://api.github.com")),
            json!("https://api.github.com")
        );
        assert!(
            is_secret("client_secret") && is_secret("refresh_token") && !is_secret("token_url")
        );
    }
}
