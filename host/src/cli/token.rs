//! `host token`: print a valid access token, refreshing first when needed.

use std::time::Duration;

use crate::Credential;
use anyhow::{Context as _, bail};
use clap::Args;

use super::{Context, Target};

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    target: Target,
    /// Refresh first when the token expires within this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    min_valid: u32,
    /// Print `{"access_token", "token_type", "expires_at", "scopes"}` as JSON instead.
    #[arg(long, conflicts_with = "header")]
    json: bool,
    /// Print the whole header line the provider's binding puts on a request
    /// (`Authorization: Bearer …`).
    #[arg(long)]
    header: bool,
}

pub(crate) async fn run(ctx: &Context, mut args: TokenArgs) -> anyhow::Result<()> {
    args.target.provider(ctx).await?;
    let name = args.target.name();
    let min_valid = Duration::from_secs(u64::from(args.min_valid));
    let record = super::fresh_record(ctx, &args.target, min_valid).await?;
    if args.header {
        let configured = ctx.app.binding(name).await?;
        let binding = crate::flow::Binding::for_credential(configured.as_ref(), &record.credential)
            .with_context(|| {
                format!(
                    "the credential for `{name}` has no known binding; set one in [providers.{name}] binding = {{ header = \"…\" }}"
                )
            })?;
        match binding.apply(&record.credential) {
            Some(crate::flow::Applied::Header(header, value)) => {
                outln!("{header}: {}", value.expose())
            }
            Some(crate::flow::Applied::Query(param, _)) => bail!(
                "the binding of `{name}` puts the secret in the query parameter `{param}`, not a header; use `host token` alone"
            ),
            _ => bail!("the binding of `{name}` does not fit its credential"),
        }
        return Ok(());
    }
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
        super::write_json(&out, false)?;
    } else {
        outln!("{token}");
    }
    Ok(())
}
