//! `host logout`: revoke at the provider where possible, delete the local record.

use clap::Args;

use super::{Context, Target};

#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    #[command(flatten)]
    target: Target,
}

pub(crate) async fn run(ctx: &Context, args: LogoutArgs) -> anyhow::Result<()> {
    let provider = args.target.provider(ctx)?;
    let Target {
        provider: name,
        account,
    } = &args.target;
    let store = ctx.app.store();
    let record = store.get(name, account)?;
    let revoked = match provider.flow(&record.flow).await {
        Ok(flow) => flow
            .revoke(&record.credential)
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    store.delete(name, account)?;
    match revoked {
        Ok(true) => ctx.say(format!("Revoked the token at {name} and deleted the local credential (account `{account}`).")),
        Ok(false) => ctx.say(format!(
            "{name} offers no way to revoke this token; deleted the local credential only (account `{account}`)."
        )),
        Err(e) => ctx.say(format!(
            "Could not revoke the token at {name} ({e:#}); deleted the local credential anyway (account `{account}`)."
        )),
    }
    Ok(())
}
