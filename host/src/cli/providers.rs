//! `host providers`: every provider, its flows, configuration status and stored accounts.

use crate::provider::ProviderSource;
use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Context, describe_expiry};

#[derive(Debug, Args)]
pub(crate) struct ProvidersArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    /// List every provider the program knows: the built-in ones and the catalog's, enabled
    /// with just a client id.
    #[arg(long)]
    all: bool,
    /// With --all: print the catalog as the Markdown table of docs/providers.md.
    #[arg(long, requires = "all")]
    markdown: bool,
}

/// The flow names of a listed provider.
fn flows_of(p: &Value) -> Vec<&str> {
    p["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The flows a catalog entry is known to have: the browser flow, and the device flow when it
/// names a device endpoint (one with an issuer may also get one from discovery).
fn catalog_flows(entry: &crate::catalog::CatalogEntry) -> Vec<&str> {
    if let Some(flow) = &entry.flow {
        let mut flows = vec![flow.as_str()];
        if entry.authorize_url.is_some() {
            flows.push(crate::configured::OAUTH2_FLOW);
        }
        return flows;
    }
    let mut flows = vec![crate::configured::OAUTH2_FLOW];
    if entry.has_device_flow() {
        flows.push(crate::configured::DEVICE_FLOW);
    }
    flows
}

/// The catalog as a Markdown table (docs/providers.md lists this output).
pub(crate) fn catalog_markdown() -> String {
    let mut out = String::from(
        "| Name | Provider | Flows | Set also | Notes | Documentation |\n|---|---|---|---|---|---|\n",
    );
    for (name, entry) in crate::catalog::catalog().entries() {
        let flows = catalog_flows(entry);
        let mut also: Vec<String> = entry
            .placeholders
            .iter()
            .map(|(p, ph)| match &ph.default {
                Some(d) => format!("`{p}` (default `{d}`)"),
                None => format!("`{p}`"),
            })
            .collect();
        if entry.issuer.is_some() {
            also.push("OpenID Connect".into());
        }
        out.push_str(&format!(
            "| `{name}` | {} | {} | {} | {} | [docs]({}) |\n",
            entry.display_name.replace('|', "\\|"),
            flows.join(", "),
            if also.is_empty() {
                "".to_owned()
            } else {
                also.join(", ")
            },
            entry
                .notes
                .as_deref()
                .unwrap_or_default()
                .replace('|', "\\|"),
            entry.docs
        ));
    }
    out
}

fn run_all(ctx: &Context, args: &ProvidersArgs) -> anyhow::Result<()> {
    if args.markdown {
        outln!("{}", catalog_markdown().trim_end());
        return Ok(());
    }
    let configured: std::collections::BTreeSet<&str> = ctx.app.config().provider_names().collect();
    let mut out = vec![json!({
        "name": crate::github::NAME,
        "display_name": "GitHub",
        "source": "built-in",
        "flows": [crate::github::OAUTH2_FLOW, crate::github::DEVICE_FLOW],
        "enabled": true,
        "docs": "https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps",
    })];
    for (name, entry) in crate::catalog::catalog().entries() {
        let flows = catalog_flows(entry);
        out.push(json!({
            "name": name,
            "display_name": entry.display_name,
            "source": "catalog",
            "flows": flows,
            "enabled": configured.contains(name),
            "docs": entry.docs,
            "issuer": entry.issuer,
            "placeholders": entry.placeholders.iter().map(|(p, ph)| json!({
                "name": p,
                "description": ph.description,
                "default": ph.default,
            })).collect::<Vec<_>>(),
            "env": crate::catalog::env_var(name, "CLIENT_ID"),
            "notes": entry.notes,
        }));
    }
    if args.json {
        super::write_json(&Value::Array(out), true)?;
        return Ok(());
    }
    let mut text = String::new();
    for p in &out {
        let flows = flows_of(p);
        pushln!(
            text,
            "{:<22} {:<28} {}{}",
            p["name"].as_str().unwrap_or_default(),
            p["display_name"].as_str().unwrap_or_default(),
            flows.join(", "),
            if p["enabled"] == json!(true) {
                "  (enabled)"
            } else {
                ""
            }
        );
        for ph in p["placeholders"].as_array().into_iter().flatten() {
            pushln!(
                text,
                "{:<22}   needs {}: {}",
                "",
                ph["name"].as_str().unwrap_or_default(),
                ph["description"].as_str().unwrap_or_default()
            );
        }
        if let Some(notes) = p["notes"].as_str() {
            pushln!(text, "{:<22}   note: {notes}", "");
        }
    }
    pushln!(
        text,
        "\nEnable one with its client id: `[providers.NAME] client_id = \"…\"` in the configuration file, or NAME_CLIENT_ID (e.g. GOOGLE_CLIENT_ID)."
    );
    super::write_out(&text);
    Ok(())
}

/// One line of `host providers` (an element of its JSON).
#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    /// `built-in`, `configured`, `catalog`, `code`, `not configured`, or the plugin's path.
    source: std::borrow::Cow<'a, str>,
    flows: Flows<'a>,
    default_flow: Option<&'a str>,
    credentials: AppStatus,
    accounts: Vec<Account>,
}

/// A listed provider's flow names, read from it as they are written (no list per provider).
struct Flows<'a>(Option<&'a crate::Provider>);

impl Flows<'_> {
    fn names(&self) -> impl Iterator<Item = &str> {
        self.0.into_iter().flat_map(|p| p.flow_names())
    }
}

impl Serialize for Flows<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

/// Whether the provider's app credentials check out.
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum AppStatus {
    Unchecked,
    Valid,
    Invalid { problems: Vec<String> },
    Missing,
}

/// A stored account, or why it cannot be shown.
#[derive(Serialize)]
#[serde(untagged)]
enum Account {
    Stored {
        account: String,
        flow: String,
        identity: Option<String>,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    Unreadable {
        account: String,
        error: String,
    },
}

pub(crate) async fn run(ctx: &Context, args: ProvidersArgs) -> anyhow::Result<()> {
    if args.all {
        return run_all(ctx, &args);
    }
    let store = ctx.app.store();
    let with_records = store.providers_with_records().await?;
    let providers = ctx.app.registry().providers();
    let mut out = Vec::with_capacity(providers.len());
    for provider in &providers {
        let source = match provider.source() {
            ProviderSource::BuiltIn => "built-in".into(),
            ProviderSource::Plugin(path) => path.to_string_lossy(),
            ProviderSource::Configured => "configured".into(),
            ProviderSource::Catalog => "catalog".into(),
            _ => "code".into(),
        };
        let credentials = match provider.check_app_credentials() {
            None => AppStatus::Unchecked,
            Some(Ok(())) => AppStatus::Valid,
            Some(Err(e)) => AppStatus::Invalid {
                problems: e.issues.iter().map(ToString::to_string).collect(),
            },
        };
        let names = if with_records.contains(provider.name()) {
            store.accounts(provider.name()).await?
        } else {
            Vec::new()
        };
        let mut accounts = Vec::new();
        for account in names {
            accounts.push(match store.load(provider.name(), &account).await {
                Ok(Some(r)) => Account::Stored {
                    expires_at: r.expires_at(),
                    account,
                    flow: r.flow,
                    identity: r.identity,
                },
                Ok(None) => Account::Unreadable {
                    account,
                    error: "vanished".into(),
                },
                Err(e) => Account::Unreadable {
                    account,
                    error: e.to_string(),
                },
            });
        }
        out.push(Listed {
            name: provider.name(),
            source,
            flows: Flows(Some(provider)),
            default_flow: provider.default_flow(),
            credentials,
            accounts,
        });
    }
    // Credentials stored for a provider the configuration no longer names.
    for name in &with_records {
        if ctx.app.provider(name).is_err() {
            let accounts = store.accounts(name).await?;
            if accounts.is_empty() {
                continue;
            }
            out.push(Listed {
                name,
                source: "not configured".into(),
                flows: Flows(None),
                default_flow: None,
                credentials: AppStatus::Missing,
                accounts: accounts
                    .into_iter()
                    .map(|account| Account::Unreadable {
                        account,
                        error: "its provider is not configured".into(),
                    })
                    .collect(),
            });
        }
    }
    if args.json {
        return super::write_json(&out, true);
    }
    // Written a block of lines at a time, not a line per write (that cost 4 µs a provider
    // with many plugin files), nor all at once (a thousand plugin files made 160 KB of text).
    const BLOCK: usize = 32 * 1024;
    let mut text = String::with_capacity(BLOCK + 1024);
    for p in &out {
        if text.len() >= BLOCK {
            super::write_out(&text);
            text.clear();
        }
        pushln!(text, "{}  ({})", p.name, p.source);
        text.push_str("  flows: ");
        for (i, flow) in p.flows.names().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            text.push_str(flow);
        }
        text.push('\n');
        match &p.credentials {
            AppStatus::Invalid { problems } => {
                pushln!(text, "  app credentials: invalid");
                for problem in problems {
                    pushln!(text, "    - {problem}");
                }
            }
            AppStatus::Unchecked => pushln!(text, "  app credentials: unchecked"),
            AppStatus::Valid => pushln!(text, "  app credentials: valid"),
            AppStatus::Missing => pushln!(text, "  app credentials: missing"),
        }
        if p.accounts.is_empty() {
            pushln!(
                text,
                "  accounts: none (log in with `host run --provider {}`)",
                p.name
            );
        }
        for a in &p.accounts {
            match a {
                Account::Unreadable { account, error } => {
                    pushln!(text, "  account {account}: {error}")
                }
                Account::Stored {
                    account,
                    identity,
                    expires_at,
                    ..
                } => {
                    let who = identity
                        .as_deref()
                        .map(|i| format!(" ({i})"))
                        .unwrap_or_default();
                    pushln!(
                        text,
                        "  account {account}{who}: token {}",
                        describe_expiry(*expires_at)
                    );
                }
            }
        }
    }
    super::write_out(&text);
    Ok(())
}
