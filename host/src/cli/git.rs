//! git integration: `host git-credential` (git's credential-helper protocol) and
//! `host setup-git`, as `gh auth git-credential` and `gh auth setup-git` do.

use std::io::BufRead;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

use super::{Context, Target};

#[derive(Debug, Args)]
pub(crate) struct CredentialArgs {
    /// What git asks.
    operation: Operation,
    /// Only this provider (default: whichever provider serves the host git asks about).
    #[arg(long, short = 'p')]
    provider: Option<String>,
    /// The account name.
    #[arg(long, short = 'a', default_value = crate::store::DEFAULT_ACCOUNT)]
    account: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Operation {
    Get,
    Store,
    Erase,
}

#[derive(Debug, Args)]
pub(crate) struct SetupArgs {
    #[command(flatten)]
    target: Target,
}

/// The host (and port) git uses for a provider: the section's `git_host`, or for github the
/// host of its authorization endpoint (`github.com`, or the Enterprise server).
fn git_host(ctx: &Context, provider: &str) -> Option<String> {
    let section = ctx.app.provider(provider).ok()?.context().section().clone();
    if let Some(host) = section.value().get("git_host").and_then(|h| h.as_str()) {
        return Some(host.to_owned());
    }
    if provider != crate::github::NAME {
        return None;
    }
    let url = section.value().get("authorize_url")?.as_str()?;
    let url = url::Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

pub(crate) async fn credential(ctx: &Context, args: CredentialArgs) -> anyhow::Result<()> {
    let mut asked = std::collections::BTreeMap::new();
    for line in std::io::stdin().lock().split(b'\n') {
        let line = line.context("cannot read git's request")?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.is_empty() {
            break;
        }
        // Git passes paths as they are (`path=` with credential.useHttpPath): a line that is
        // not UTF-8 is one this helper does not need (a host that is not is no host of ours).
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if let Some((k, v)) = line.split_once('=') {
            asked.insert(k.to_owned(), v.to_owned());
        }
    }
    // We keep tokens ourselves: git's `store` and `erase` change nothing here.
    if !matches!(args.operation, Operation::Get) {
        return Ok(());
    }
    let (Some(protocol), Some(host)) = (asked.get("protocol"), asked.get("host")) else {
        return Ok(());
    };
    if protocol != "https" {
        return Ok(());
    }
    let candidates: Vec<String> = match &args.provider {
        Some(p) => vec![p.clone()],
        None => ctx
            .app
            .store()
            .providers_with_records()
            .await?
            .into_iter()
            .collect(),
    };
    let Some(provider) = candidates
        .into_iter()
        .find(|p| git_host(ctx, p).is_some_and(|h| h.eq_ignore_ascii_case(host)))
    else {
        // Not ours: say nothing, so that git asks the next helper.
        return Ok(());
    };
    let target = Target {
        provider: Some(provider),
        account: args.account,
    };
    let record = super::fresh_record(ctx, &target, Duration::from_secs(60)).await?;
    let secret = record
        .credential
        .secret()
        .context("the stored credential is not a token")?;
    outln!(
        "protocol=https\nhost={host}\nusername=x-access-token\npassword={}",
        secret.expose()
    );
    Ok(())
}

pub(crate) async fn setup(ctx: &Context, args: SetupArgs) -> anyhow::Result<()> {
    let mut target = args.target;
    target.provider(ctx).await?;
    let name = target.name().to_owned();
    let Some(host) = git_host(ctx, &name) else {
        bail!("`{name}` has no git host; set [providers.{name}] git_host = \"git.example.com\"");
    };
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    // The helper is pinned to what was set up: the provider and account (another provider
    // with the same git host is never asked), and the configuration file and plugins folder
    // when they are not the defaults (git runs the helper without this shell's options or
    // environment).
    let config = ctx.app.config();
    let mut pinned = Vec::new();
    if config.file_origin().is_some() {
        pinned.push(("--config", config.file().to_owned()));
    }
    if config.plugins_dir() != config.data_dir().join("plugins") {
        pinned.push(("--plugins-dir", config.plugins_dir()));
    }
    let mut helper = format!("!{}", shell_quote(&exe.display().to_string()));
    for (option, path) in &pinned {
        let path = std::path::absolute(path)
            .with_context(|| format!("cannot find the absolute path of {}", path.display()))?;
        helper.push_str(&format!(
            " {option} {}",
            shell_quote(&path.display().to_string())
        ));
    }
    helper.push_str(&format!(
        " git-credential --provider {}",
        shell_quote(&name)
    ));
    if target.account != crate::store::DEFAULT_ACCOUNT {
        helper.push_str(&format!(" --account {}", shell_quote(&target.account)));
    }
    let key = format!("credential.https://{host}.helper");
    // An empty helper first resets helpers configured elsewhere for this host, as gh does.
    git(&["config", "--global", "--replace-all", &key, ""])?;
    git(&["config", "--global", "--add", &key, &helper])?;
    ctx.say(format!(
        "git now asks `host` for credentials for https://{host} (provider `{name}`{}).",
        if target.account == crate::store::DEFAULT_ACCOUNT {
            String::new()
        } else {
            format!(", account `{}`", target.account)
        }
    ));
    Ok(())
}

/// `s` in single quotes for the shell git runs a `!` helper with.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn git(args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("git")
        .args(args)
        .status()
        .context("cannot run git")?;
    if !status.success() {
        bail!("`git {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
