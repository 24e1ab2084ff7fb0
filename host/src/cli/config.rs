//! `host config`: the effective settings, where each comes from, secrets redacted.

use clap::Args;
use serde_json::json;

use super::Context;

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Only this provider's settings.
    #[arg(long, short = 'p')]
    provider: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(ctx: &Context, args: ConfigArgs) -> anyhow::Result<()> {
    let config = ctx.app.config();
    let mut settings = config.settings()?;
    if let Some(p) = &args.provider {
        ctx.app.provider(p)?;
        let prefix = format!("providers.{p}.");
        settings.retain(|s| s.key.starts_with(&prefix));
    }
    if args.json {
        let out: Vec<_> = settings
            .iter()
            .map(|s| json!({ "key": s.key, "value": s.value, "from": s.origin_text() }))
            .collect();
        // Keys and values may hold anything the file does: escaped like every JSON we print.
        let all = json!({ "file": config.file(), "data_dir": config.data_dir(), "settings": out });
        return super::write_json(&all, true);
    }
    outln!(
        "# configuration file: {}{}",
        config.file().display(),
        if config.file().is_file() {
            ""
        } else {
            " (absent)"
        }
    );
    outln!("# data folder: {}", config.data_dir().display());
    for s in settings {
        // Keys and values come from the file, which may hold anything (a section named with
        // escapes): JSON escapes control characters in values, not in keys, nor bidirectional
        // overrides anywhere.
        let line = format!("{} = {}  # from {}", s.key, s.value, s.origin_text());
        outln!("{}", crate::util::text::terminal_text(&line, 100_000));
    }
    Ok(())
}
