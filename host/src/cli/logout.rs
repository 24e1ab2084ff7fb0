//! `host logout`: revoke at the provider where possible, delete the local record.

use crate::FlowError;
use anyhow::bail;
use clap::Args;

use super::{Context, Target};

#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    #[command(flatten)]
    target: Target,
}

pub(crate) async fn run(ctx: &Context, mut args: LogoutArgs) -> anyhow::Result<()> {
    let provider = match args.target.provider(ctx).await {
        Ok(provider) => provider,
        Err(e) => return forget_unknown(ctx, &args.target, e).await,
    };
    let name = args.target.name();
    let account = &args.target.account;
    // Under the record's lock: a refresh in flight finishes first, and what it stored is what
    // gets revoked; nothing can write the record back afterwards.
    let mut lock = ctx.app.store().lock(name, account).await?;
    let record = match lock.get().await {
        Ok(record) => record,
        // A record this machine cannot open (another key): logging out deletes it without
        // revoking, and says so.
        Err(crate::StoreError::Sealed { key, reason, .. }) => {
            lock.delete().await?;
            ctx.say(format!(
                "Deleted the stored credential of `{name}` (account `{account}`) without revoking it: it does not open with the key from {key} ({reason})."
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let revoked = match provider.flow(&record.flow).await {
        Ok(flow) => flow
            .revoke(&record.credential)
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    lock.delete().await?;
    match revoked {
        Ok(true) => ctx.say(format!(
            "Revoked the token at {name} and deleted the local credential (account `{account}`)."
        )),
        Ok(false) => ctx.say(format!(
            "{name} offers no way to revoke this token; deleted the local credential only (account `{account}`)."
        )),
        Err(e) if matches!(e.downcast_ref(), Some(FlowError::Unsupported(_))) => ctx.say(format!(
            "Cannot revoke the token here: {}. Deleted the local credential only (account `{account}`).",
            e.downcast_ref::<FlowError>()
                .map(ToString::to_string)
                .unwrap_or_default()
                .trim_start_matches("unsupported: ")
        )),
        // Printed even with --quiet, and the exit status says it: the token may still work.
        Err(e) => bail!(
            "could not revoke the token at {name} ({e:#}); the local credential was deleted anyway (account `{account}`)"
        ),
    }
    Ok(())
}

/// A provider that is no longer configured (its section or plugin removed) cannot revoke, but
/// its stored record can still be deleted: it is, and the message says it was not revoked.
/// Any other failure to find the provider is the error.
async fn forget_unknown(ctx: &Context, target: &Target, e: anyhow::Error) -> anyhow::Result<()> {
    let unknown = matches!(
        e.downcast_ref::<crate::provider::ProviderError>(),
        Some(
            crate::provider::ProviderError::UnknownProvider { .. }
                | crate::provider::ProviderError::NotConfigured { .. }
        )
    );
    let Some(name) = target.provider.as_deref().filter(|_| unknown) else {
        return Err(e);
    };
    let account = &target.account;
    if crate::util::names::check_name(name).is_err()
        || !ctx.app.store().accounts(name).await?.contains(account)
    {
        return Err(e);
    }
    ctx.app.store().lock(name, account).await?.delete().await?;
    ctx.say(format!(
        "Deleted the stored credential of `{name}` (account `{account}`) without revoking it: the provider is no longer configured."
    ));
    Ok(())
}
