//! `host plugin inspect` and `host plugin install`.

use std::path::PathBuf;

use crate::plugin::{EXPORT, PluginError, WIT_VERSION};
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use super::Context;

#[derive(Debug, Args)]
pub(crate) struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Show a plugin's metadata, schema, hosts, imports and WIT version, without running a flow.
    Inspect {
        /// The `.wasm` file.
        file: PathBuf,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Check a plugin, precompile it, and copy it into the plugins folder.
    Install {
        /// The `.wasm` file.
        file: PathBuf,
        /// The provider name (default: the file name without `.wasm`).
        #[arg(long)]
        name: Option<String>,
        /// Replace an installed plugin of the same name.
        #[arg(long)]
        force: bool,
    },
}

pub(crate) async fn run(ctx: &Context, args: PluginArgs) -> anyhow::Result<()> {
    match args.command {
        PluginCommand::Inspect { file, json } => inspect(ctx, file, json).await,
        PluginCommand::Install { file, name, force } => install(ctx, file, name, force).await,
    }
}

async fn inspect(ctx: &Context, file: PathBuf, as_json: bool) -> anyhow::Result<()> {
    let plugin = ctx.app.plugins().load(&file).await?;
    let info = plugin.info();
    let (imports, exports) = plugin.interface_names();
    let hosts: Vec<String> = info.allowed_hosts.iter().map(ToString::to_string).collect();
    let wit = exports
        .iter()
        .find_map(|e| e.strip_prefix(&format!("{EXPORT}@")))
        .unwrap_or(WIT_VERSION)
        .to_owned();
    if as_json {
        let out = json!({
            "file": file,
            "display_name": info.display_name,
            "version": info.version,
            "wit": format!("integrations:auth@{wit}"),
            "allowed_hosts": hosts,
            "api_base_url": info.api_base_url,
            "app_credentials_schema": info.schema,
            "imports": imports,
            "exports": exports,
        });
        super::write_json(&out, true)?;
        return Ok(());
    }
    outln!(
        "{} {} ({})",
        info.display_name,
        info.version,
        file.display()
    );
    outln!("  contract: integrations:auth@{wit}");
    outln!(
        "  allowed hosts: {}",
        if hosts.is_empty() {
            "none".to_owned()
        } else {
            hosts.join(", ")
        }
    );
    outln!("  imports:");
    for i in &imports {
        outln!("    {i}");
    }
    outln!("  exports:");
    for e in &exports {
        outln!("    {e}");
    }
    outln!("  app credentials schema:");
    // The plugin wrote the schema: JSON escapes its control characters, not the rest of what
    // a terminal acts on (bidirectional overrides).
    for line in serde_json::to_string_pretty(&info.schema)?.lines() {
        outln!("    {}", crate::util::text::terminal_text(line, 2000));
    }
    Ok(())
}

async fn install(
    ctx: &Context,
    file: PathBuf,
    name: Option<String>,
    force: bool,
) -> anyhow::Result<()> {
    let name = match name {
        Some(n) => n,
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .context("cannot take a provider name from the file name; use --name")?
            .to_owned(),
    };
    crate::util::names::check_name(&name)?;
    let lower = name.to_ascii_lowercase();
    if ctx
        .app
        .provider(&lower)
        .is_ok_and(|p| matches!(p.source(), crate::provider::ProviderSource::BuiltIn))
    {
        bail!(
            "`{name}` is (or reads as) a built-in provider; install the plugin under another --name"
        );
    }
    // A provider the configuration makes (its endpoints, an issuer, a catalog entry) would be
    // replaced without a word, and its stored logins left to a flow that did not make them.
    if ctx.app.provider(&name).is_ok_and(|p| {
        matches!(
            p.source(),
            crate::provider::ProviderSource::Configured | crate::provider::ProviderSource::Catalog
        )
    }) {
        bail!(
            "`{name}` is an OAuth2 provider of the configuration ([providers.{name}]); install the plugin under another --name"
        );
    }
    let dir = ctx.app.config().plugins_dir();
    let (plugin, target) = match ctx.app.plugins().install(&file, &dir, &name, force).await {
        Ok(installed) => installed,
        Err(e @ PluginError::AlreadyInstalled { .. }) => bail!("{e}; pass --force to replace it"),
        Err(e) => return Err(e.into()),
    };
    ctx.say(format!(
        "Installed {} {} as provider `{name}` ({}).",
        plugin.info().display_name,
        plugin.info().version,
        target.display()
    ));
    ctx.say(format!(
        "Configure it under [providers.{name}] and log in with `host run --provider {name}`."
    ));
    Ok(())
}
