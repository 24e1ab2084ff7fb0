//! `host providers`: every provider, its flows, configuration status and stored accounts.

use clap::Args;
use host::ProviderSource;
use serde_json::{Value, json};

use super::{Context, describe_expiry};

#[derive(Debug, Args)]
pub(crate) struct ProvidersArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(ctx: &Context, args: ProvidersArgs) -> anyhow::Result<()> {
    let mut out = Vec::new();
    let store = ctx.app.store();
    let with_records = store.providers_with_records();
    for provider in ctx.app.registry().providers() {
        let source = match provider.source() {
            ProviderSource::BuiltIn => json!("built-in"),
            ProviderSource::Plugin(path) => json!(path),
            _ => json!("code"),
        };
        let credentials = match provider.check_app_credentials() {
            None => json!({ "status": "unchecked" }),
            Some(Ok(())) => json!({ "status": "valid" }),
            Some(Err(e)) => json!({
                "status": "invalid",
                "problems": e.issues.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
        };
        let names = if with_records.contains(provider.name()) {
            store.accounts(provider.name())
        } else {
            Vec::new()
        };
        let accounts: Vec<Value> = names
            .into_iter()
            .map(|account| match store.load(provider.name(), &account) {
                Ok(Some(r)) => json!({
                    "account": account,
                    "flow": r.flow,
                    "identity": r.identity,
                    "expires_at": r.expires_at(),
                }),
                Ok(None) => json!({ "account": account, "error": "vanished" }),
                Err(e) => json!({ "account": account, "error": e.to_string() }),
            })
            .collect();
        out.push(json!({
            "name": provider.name(),
            "source": source,
            "flows": provider.flow_names().collect::<Vec<_>>(),
            "default_flow": provider.default_flow(),
            "credentials": credentials,
            "accounts": accounts,
        }));
    }
    if args.json {
        outln!("{:#}", Value::Array(out));
        return Ok(());
    }
    for p in &out {
        let flows: Vec<&str> = p["flows"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        outln!(
            "{}  ({})",
            p["name"].as_str().unwrap_or_default(),
            p["source"].as_str().unwrap_or_default()
        );
        outln!("  flows: {}", flows.join(", "));
        match p["credentials"]["status"].as_str() {
            Some("invalid") => {
                outln!("  app credentials: invalid");
                for problem in p["credentials"]["problems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    outln!("    - {}", problem.as_str().unwrap_or_default());
                }
            }
            Some(status) => outln!("  app credentials: {status}"),
            None => {}
        }
        let accounts = p["accounts"].as_array().cloned().unwrap_or_default();
        if accounts.is_empty() {
            outln!(
                "  accounts: none (log in with `host run --provider {}`)",
                p["name"].as_str().unwrap_or_default()
            );
        }
        for a in accounts {
            let name = a["account"].as_str().unwrap_or_default();
            if let Some(e) = a["error"].as_str() {
                outln!("  account {name}: {e}");
                continue;
            }
            let who = a["identity"]
                .as_str()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default();
            let expiry = a["expires_at"].as_str().and_then(|s| s.parse().ok());
            outln!("  account {name}{who}: token {}", describe_expiry(expiry));
        }
    }
    Ok(())
}
