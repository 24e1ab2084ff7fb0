//! `host token`: print a valid access token, refreshing first when needed.

use anyhow::bail;
use clap::Args;
use host::flow::Credential;
use host::store::{FreshError, check_name};

use super::{Context, Target};

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    target: Target,
    /// Refresh first when the token expires within this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    min_valid: u32,
}

pub(crate) async fn run(ctx: &Context, args: TokenArgs) -> anyhow::Result<()> {
    let Target {
        provider: name,
        account,
    } = &args.target;
    check_name(account)?;
    let provider = ctx.registry.get(name)?;
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
    match &record.credential {
        Credential::OAuth2(t) => outln!("{}", t.access_token.expose()),
        Credential::ApiKey { key } => outln!("{}", key.expose()),
        _ => bail!("the credential for `{name}` is not a token"),
    }
    Ok(())
}
