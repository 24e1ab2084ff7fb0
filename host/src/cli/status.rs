//! `host status`: every stored account, and (with --check) whether its token still works.

use std::process::ExitCode;
use std::time::Duration;

use crate::renewal::{self, RenewError};
use crate::{FlowError, Provider};
use clap::Args;
use serde_json::{Value, json};

use super::{Context, describe_expiry};

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Only this provider.
    #[arg(long, short = 'p')]
    provider: Option<String>,
    /// Ask each provider whether the token still works.
    #[arg(long)]
    check: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// How long one question to the provider may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// A token expiring within this is refreshed before it is checked, as `host token` would.
const REFRESH_AHEAD: chrono::Duration = chrono::Duration::seconds(60);

pub(crate) async fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.app.store();
    let mut rows = Vec::new();
    // A record that cannot be read (another key, a provider no longer configured) fails the
    // command, as a login needed does: a script checking the status must see it.
    let mut unreadable = false;
    let providers: Vec<std::sync::Arc<Provider>> = match &args.provider {
        Some(p) => vec![ctx.app.provider(p)?],
        // The providers with stored credentials: no other provider is looked up. Records of a
        // provider no longer configured are listed as such, not hidden.
        None => {
            let mut found = Vec::new();
            for name in store.providers_with_records().await? {
                match ctx.app.provider(&name) {
                    Ok(provider) => found.push(provider),
                    Err(e) => {
                        for account in store.accounts(&name).await? {
                            unreadable = true;
                            rows.push(json!({
                                "provider": name,
                                "account": account,
                                "error": format!("{e}; `host logout --provider {name}` deletes it"),
                            }));
                        }
                    }
                }
            }
            found
        }
    };
    let mut login_needed = false;
    for provider in providers {
        for account in store.accounts(provider.name()).await? {
            let record = match store.load(provider.name(), &account).await {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    unreadable = true;
                    rows.push(json!({"provider": provider.name(), "account": account, "error": e.to_string()}));
                    continue;
                }
            };
            // Checked first: a check may refresh the token (the row then shows the new one).
            let (record, checked) = if args.check {
                let (record, state, detail) = check(ctx, &provider, record).await;
                login_needed |= state == "rejected";
                (record, Some(json!({"state": state, "detail": detail})))
            } else {
                (record, None)
            };
            let token = record.credential.as_oauth2();
            let refresh = match (&record.login_required, token) {
                (Some(reason), _) => {
                    login_needed = true;
                    format!("log in again ({reason})")
                }
                (None, Some(t)) if t.refresh_token.is_some() => "refreshable".into(),
                (None, Some(_)) => "no refresh token".into(),
                (None, None) => "does not expire".into(),
            };
            let mut row = json!({
                "provider": provider.name(),
                "account": account,
                "flow": record.flow,
                "identity": record.identity,
                "scopes": token.map(|t| t.scopes.clone()).unwrap_or_default(),
                "expires_at": record.expires_at(),
                "refresh": refresh,
            });
            if let Some(checked) = checked {
                row["check"] = checked;
            }
            rows.push(row);
        }
    }
    if args.json {
        super::write_json(&Value::Array(rows), true)?;
    } else if rows.is_empty() {
        outln!("No stored credentials; log in with `host run --provider NAME`.");
    } else {
        for row in &rows {
            print_row(row);
        }
    }
    Ok(if login_needed {
        ExitCode::from(4)
    } else if unreadable {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Asks the provider whether the login works as `host api` would use it: `valid`, `rejected`
/// (log in again) or `unknown` (it cannot say now). A token due is refreshed first (as `host
/// token` would), and one the provider refuses is refreshed once and asked about again; the
/// record returned is the one asked about.
async fn check(
    ctx: &Context,
    provider: &Provider,
    record: crate::Record,
) -> (crate::Record, &'static str, String) {
    let store = ctx.app.store();
    let failed = |e: RenewError| {
        if e.needs_login() {
            ("rejected", e.to_string())
        } else {
            ("unknown", format!("{:#}", anyhow::Error::from(e)))
        }
    };
    // Never cut short by the check's time limit: a refresh stopped after the provider
    // answered would lose a rotated refresh token. The provider's own timeouts bound it.
    let record = match renewal::fresh(store, provider, &record.account, REFRESH_AHEAD).await {
        Ok(fresh) => fresh,
        Err(e) => {
            let (state, detail) = failed(e);
            return (record, state, detail);
        }
    };
    let (state, detail) = verify(provider, &record).await;
    // Refused: refreshed once and asked again, as a session does after a 401 (whatever the
    // flow can refresh with; a plugin may need no refresh token).
    if state != "rejected" {
        return (record, state, detail);
    }
    match renewal::renew_now(store, provider, &record.account, &record).await {
        Ok(fresh) => {
            let (state, detail) = verify(provider, &fresh).await;
            (fresh, state, detail)
        }
        Err(e) => {
            let (state, detail) = failed(e);
            (record, state, detail)
        }
    }
}

/// One question to the provider about `record`'s credential.
async fn verify(provider: &Provider, record: &crate::Record) -> (&'static str, String) {
    let flow = match provider.flow(&record.flow).await {
        Ok(flow) => flow,
        Err(e) => return ("unknown", e.to_string()),
    };
    match tokio::time::timeout(CHECK_TIMEOUT, flow.verify(&record.credential)).await {
        Err(_) => ("unknown", "the provider did not answer in time".into()),
        Ok(Ok(who)) => (
            "valid",
            who.map(|w| format!("accepted as {w}"))
                .unwrap_or_else(|| "accepted".into()),
        ),
        Ok(Err(e @ FlowError::LoginRequired { .. })) => ("rejected", e.to_string()),
        Ok(Err(e)) => ("unknown", e.chain()),
    }
}

fn print_row(row: &Value) {
    let text = |k: &str| row[k].as_str().unwrap_or_default().to_owned();
    if let Some(e) = row["error"].as_str() {
        outln!("{} (account `{}`): {e}", text("provider"), text("account"));
        return;
    }
    let who = row["identity"]
        .as_str()
        .map(|i| format!(" as {i}"))
        .unwrap_or_default();
    outln!("{}{who} (account `{}`)", text("provider"), text("account"));
    let scopes: Vec<&str> = row["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !scopes.is_empty() {
        outln!("  scopes: {}", scopes.join(", "));
    }
    let expiry = row["expires_at"].as_str().and_then(|s| s.parse().ok());
    outln!("  token {}; {}", describe_expiry(expiry), text("refresh"));
    if let Some(state) = row["check"]["state"].as_str() {
        outln!(
            "  check: {state} ({})",
            row["check"]["detail"].as_str().unwrap_or_default()
        );
    }
}
