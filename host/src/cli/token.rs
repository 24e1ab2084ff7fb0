//! `host token`: print a valid access token, refreshing first when needed.

use anyhow::bail;
use clap::Args;
use host::flow::Credential;
use host::store::FreshError;

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
    let provider = args.target.provider(ctx)?;
    let Target {
        provider: name,
        account,
    } = &args.target;
    let skew = chrono::Duration::seconds(i64::from(args.min_valid));
    let fresh = ctx
        .store
        .fresh(name, account, skew, |flow| async move {
            provider.flow(&flow).await
        })
        .await;
    let record = match fresh {
        Ok(record) => record,
        Err(FreshError::Refresh { source, .. }) if source.needs_login() => {
            let flag = if account == host::store::DEFAULT_ACCOUNT {
                String::new()
            } else {
                format!(" --account {account}")
            };
            bail!(
                "the stored credential for `{name}` can no longer be refreshed ({source}); run `host run --provider {name}{flag}` to log in again"
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
