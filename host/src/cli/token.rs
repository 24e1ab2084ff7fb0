//! `host token`: print a valid access token, refreshing first when needed.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use host::Credential;

use super::{Context, Target};

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    target: Target,
    /// Refresh first when the token expires within this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    min_valid: u32,
    /// Print `{"access_token", "token_type", "expires_at", "scopes"}` as JSON instead.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(ctx: &Context, args: TokenArgs) -> anyhow::Result<()> {
    args.target.provider(ctx)?;
    let Target {
        provider: name,
        account,
    } = &args.target;
    let min_valid = Duration::from_secs(u64::from(args.min_valid));
    let record = match ctx.app.token(name, account, min_valid).await {
        Ok(record) => record,
        Err(e) if e.needs_login() => {
            let source = e.flow_error().expect("needs_login comes from a flow error");
            bail!(
                "the stored credential for `{name}` can no longer be refreshed ({}); run `host run --provider {name}{}` to log in again",
                chain(source),
                args.target.account_flag()
            )
        }
        Err(e) => return Err(e.into()),
    };
    let (token, kind) = match &record.credential {
        Credential::OAuth2(t) => (t.access_token.expose(), "bearer"),
        Credential::ApiKey { key } => (key.expose(), "api_key"),
        _ => bail!("the credential for `{name}` is not a token"),
    };
    if args.json {
        let scopes = record
            .credential
            .as_oauth2()
            .map(|t| t.scopes.clone())
            .unwrap_or_default();
        let out = serde_json::json!({
            "access_token": token,
            "token_type": kind,
            "expires_at": record.expires_at(),
            "scopes": scopes,
        });
        outln!("{out}");
    } else {
        outln!("{token}");
    }
    Ok(())
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}
