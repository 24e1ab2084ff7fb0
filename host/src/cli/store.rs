//! `host store`: the credential store's key, schema, rekeying and moving records between
//! backends.

use crate::store::seal::{KeySource, StoreKey};
use crate::{Store, store::BackendKind};
use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

use super::Context;

#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Print a new random store key (standard base64) on stdout: put it in a file (chmod 600)
    /// named by [store] key_file, or in HOST_STORE_KEY.
    Keygen,
    /// Create or update the database schema (the postgres store; it also happens on first use).
    Migrate,
    /// Seal every record under a new key. Without --new-key-file the key file is replaced by a
    /// new key (the old one is kept as `<key file>.previous` until every record has moved).
    Rekey {
        /// The new key's file (made with `host store keygen`); then point the configuration
        /// at it.
        #[arg(long)]
        new_key_file: Option<std::path::PathBuf>,
    },
    /// Copy every record to the other backend, read each back and compare.
    Copy {
        /// The backend to copy to.
        #[arg(long, value_enum)]
        to: BackendArg,
        /// The database URL (default: [store] url, or HOST_STORE__URL).
        #[arg(long)]
        url: Option<String>,
        /// Write over records the destination holds with a different credential (by default
        /// they are kept and named: they may be newer).
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BackendArg {
    File,
    Postgres,
}

pub(crate) async fn run(ctx: &Context, args: StoreArgs) -> anyhow::Result<()> {
    let store = ctx.app.store();
    match args.command {
        StoreCommand::Keygen => {
            let key = StoreKey::generate(KeySource::Env)?;
            outln!("{}", key.to_base64().as_str());
        }
        StoreCommand::Migrate => {
            if store.backend_name() == "file" {
                ctx.say("The file store has no schema; nothing to do.");
                return Ok(());
            }
            let applied = store.migrate().await?;
            if applied.is_empty() {
                ctx.say("The store's schema is current.");
            } else {
                ctx.say(format!(
                    "Applied migration{} {}.",
                    if applied.len() == 1 { "" } else { "s" },
                    applied
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        StoreCommand::Rekey { new_key_file } => {
            let report = store.rekey(new_key_file.as_deref()).await?;
            let plural = if report.resealed == 1 { "" } else { "s" };
            if report.resumed {
                ctx.say(format!(
                    "Resumed the earlier rekey: sealed {} record{plural} under the current key.",
                    report.resealed
                ));
            } else {
                ctx.say(format!(
                    "Sealed {} record{plural} under the new key.",
                    report.resealed
                ));
            }
            if let Some(file) = &new_key_file {
                ctx.say(format!(
                    "Now point the configuration at the new key: [store] key_file = \"{}\" (or HOST_STORE_KEY).",
                    file.display()
                ));
            }
            if !report.failed.is_empty() {
                for f in &report.failed {
                    eprintln!("  not resealed: {f}");
                }
                if let Some(previous) = &report.previous_key {
                    eprintln!(
                        "  the previous key is kept in {}: do not remove it until a rekey reports every record sealed",
                        previous.display()
                    );
                    if new_key_file.is_some() {
                        eprintln!(
                            "  with the new key in HOST_STORE_KEY, give that kept key in HOST_STORE_PREVIOUS_KEY for the rekey run again (a key_file finds it beside itself)"
                        );
                    }
                }
                anyhow::bail!(
                    "{} record(s) were left as they are; run `host store rekey` again to take them up",
                    report.failed.len()
                );
            }
            if let Some(previous) = &report.previous_key {
                ctx.say(format!(
                    "Every record is sealed under the current key. The previous key is kept in {}; remove it once every process and machine uses the current one.",
                    previous.display()
                ));
            }
        }
        StoreCommand::Copy { to, url, replace } => {
            let mut options = store.options().clone();
            options.backend = match to {
                BackendArg::File => BackendKind::File,
                BackendArg::Postgres => BackendKind::Postgres(
                    url.or_else(|| ctx.app.config().store_url().map(str::to_owned))
                        .context(
                            "--to postgres needs a database: --url, [store] url or HOST_STORE__URL",
                        )?,
                ),
            };
            if options.backend == store.options().backend {
                anyhow::bail!("the store already is the {} backend", store.backend_name());
            }
            // The same key seals the copies (the file store's own key file when none is set).
            if options.key.is_none() && options.key_file.is_none() {
                options.key_file = store.key_file();
            }
            let target = Store::open(options)?;
            let report = store.copy_to(&target, replace).await?;
            ctx.say(format!(
                "Copied {} record{} from the {} store to the {} store; each read back the same.",
                report.copied,
                if report.copied == 1 { "" } else { "s" },
                store.backend_name(),
                target.backend_name()
            ));
            for k in &report.kept {
                ctx.say(format!("  kept: {k}"));
            }
            if !report.kept.is_empty() {
                ctx.say(format!(
                    "{} record(s) the destination holds differ and were kept; `--replace` writes over them",
                    report.kept.len()
                ));
            }
            if !report.failed.is_empty() {
                for f in &report.failed {
                    eprintln!("  not copied: {f}");
                }
                anyhow::bail!("{} record(s) were not copied", report.failed.len());
            }
        }
    }
    Ok(())
}
