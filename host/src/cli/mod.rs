//! Command-line definitions and the commands.

/// `println!` that ends the process quietly when stdout is closed (`host … | head`), instead of
/// panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        // Formatted first, written once: stdout is line-buffered, and a long JSON document
        // would otherwise cost a write per line.
        let mut text = format!($($arg)*);
        text.push('\n');
        $crate::cli::write_out(&text);
    }};
}

/// `writeln!` into a `String` (which cannot fail): a listing is built as one text, then written
/// with [`write_out`].
macro_rules! pushln {
    ($text:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($text, $($arg)*);
    }};
}

/// Writes `text` to stdout in one call; a closed stdout ends the process quietly (exit 0),
/// another failure with a message (exit 1). A command printing many lines formats them into
/// one text first: one write, not one per line.
pub(crate) fn write_out(text: &str) {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

mod api;
mod config;
mod exec;
mod git;
mod logging;
mod logout;
#[cfg(feature = "plugins")]
mod plugin;
mod prompt;
mod providers;
// docs/cli.md and docs/man/ describe the program as shipped: with `host plugin`.
#[cfg(all(test, feature = "plugins"))]
mod reference;
mod run;
mod status;
mod store;
mod terminal;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{App, ConfigLoader};
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  # Log in to GitHub in the browser and store the token
  GITHUB_CLIENT_ID=Iv1.0123456789abcdef host run --provider github

  # Use the token in a script (refreshed first when it is about to expire)
  curl -H \"Authorization: Bearer $(host token --provider github)\" https://api.github.com/user

  # What is configured, and where each value comes from
  host providers
  host config --provider github";

/// A sandboxed auth-flow runtime: log in once, get fresh API credentials forever.
#[derive(Debug, Parser)]
#[command(name = "host", version, about, after_help = EXAMPLES, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Read this configuration file instead of $XDG_CONFIG_HOME/host/host.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Look for plugins here instead of $XDG_DATA_HOME/host/plugins.
    #[arg(long, global = true, value_name = "DIR")]
    plugins_dir: Option<PathBuf>,
    /// More logging on stderr (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub(crate) verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

// Each subcommand's arguments are built only when it is the one invoked (or for help and
// completions): `host token` does not build the other twelve.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
enum Command {
    /// Log in: run a provider's flow in the browser and store the credential.
    #[command(
        after_help = "Examples:\n  host run --provider github\n  host run --provider github --scope repo --scope read:org --account work\n  host run --provider github --no-browser --port 8765"
    )]
    Run(run::RunArgs),
    /// Print a valid access token (refreshing it first when it is about to expire).
    #[command(
        after_help = "Examples:\n  host token --provider github\n  export GH_TOKEN=$(host token --provider github --account work)"
    )]
    Token(token::TokenArgs),
    /// Call the provider's API with the stored credential (like `gh api`).
    #[command(
        after_help = "Examples:\n  host api /user\n  host api -X POST /repos/o/r/issues -f title=Bug -f body=Details\n  host api --paginate /user/repos"
    )]
    Api(api::ApiArgs),
    /// Run a command with a fresh token in its environment (on Unix the command takes the
    /// place of `host`: its signals and exit status are its own).
    #[command(
        after_help = "Examples:\n  host exec --provider github -- gh repo list\n  host exec --env API_TOKEN -- ./deploy.sh"
    )]
    Exec(exec::ExecArgs),
    /// Every stored account: provider, login, scopes, expiry, refresh state (--check asks the
    /// provider whether the token still works).
    Status(status::StatusArgs),
    /// git's credential helper (`get`, `store`, `erase` on standard input); see `setup-git`.
    #[command(name = "git-credential", hide = true)]
    GitCredential(git::CredentialArgs),
    /// Make git use `host` for the provider's git host (like `gh auth setup-git`).
    #[command(name = "setup-git")]
    SetupGit(git::SetupArgs),
    /// List providers, their flows, configuration status and stored accounts.
    Providers(providers::ProvidersArgs),
    /// Revoke a stored credential at the provider and delete it locally.
    Logout(logout::LogoutArgs),
    /// Show the effective configuration and where each value comes from (secrets redacted).
    Config(config::ConfigArgs),
    /// The credential store: make a key, migrate the database, rekey, copy between backends.
    #[command(
        after_help = "Examples:\n  host store keygen > ~/.config/host/store.key && chmod 600 ~/.config/host/store.key\n  host store copy --to postgres --url postgres://host@db.internal/host?sslmode=verify-full"
    )]
    Store(store::StoreArgs),
    /// Inspect or install plugins (WebAssembly components).
    #[cfg(feature = "plugins")]
    #[command(
        after_help = "Examples:\n  host plugin inspect ./acme.wasm\n  host plugin install ./acme.wasm"
    )]
    Plugin(plugin::PluginArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  host completions bash > ~/.local/share/bash-completion/completions/host"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

// The provider and account a command is about. (A comment, not a doc comment: flattened into a
// deferred subcommand, a doc comment would become that subcommand's `about`.)
#[derive(Debug, Args)]
struct Target {
    /// The provider (see `host providers`); default: `HOST_PROVIDER`, `default_provider`, or the
    /// only provider logged in to.
    #[arg(long, short = 'p')]
    provider: Option<String>,
    /// The account name, for several logins with one provider.
    #[arg(long, short = 'a', default_value = crate::store::DEFAULT_ACCOUNT)]
    account: String,
}

impl Target {
    /// Checks the account name and finds the provider (the default one when none is named);
    /// its name is filled in.
    async fn provider(&mut self, ctx: &Context) -> anyhow::Result<std::sync::Arc<crate::Provider>> {
        crate::util::names::check_name(&self.account)?;
        let name = match &self.provider {
            Some(name) => name.clone(),
            None => ctx.app.default_provider().await?,
        };
        let provider = ctx.app.provider(&name)?;
        self.provider = Some(name);
        Ok(provider)
    }

    /// The provider's name, once [`Target::provider`] has found it.
    fn name(&self) -> &str {
        self.provider.as_deref().unwrap_or_default()
    }

    /// ` --account NAME` unless it is the default account, for messages that suggest a command.
    fn account_flag(&self) -> String {
        if self.account == crate::store::DEFAULT_ACCOUNT {
            String::new()
        } else {
            format!(" --account {}", self.account)
        }
    }
}

/// Logging on stderr: `HOST_LOG` (an `EnvFilter`), else warnings (`-q`: errors; `-v`: host's
/// debug messages; `-vv`: everything a release build keeps, see the `cli` feature).
///
/// With neither `HOST_LOG` nor `-v` the subscriber is built on the first warning or error, not
/// at start: most commands log nothing, and building it (the filter, the span registry) is a
/// tenth of what `host token` costs in its own code.
pub(crate) fn init_tracing(verbose: u8, quiet: bool) {
    use tracing::level_filters::LevelFilter;
    // The default filter, and the level it enables at most when that is one level for all.
    let (default, level) = match (quiet, verbose) {
        (true, _) => ("error", Some(LevelFilter::ERROR)),
        // The database driver's own warnings (a statement slower than a second, which is every
        // process waiting for another's refresh; server notices) are not the user's business.
        (false, 0) => ("warn,sqlx=error", Some(LevelFilter::WARN)),
        (false, 1) => ("host=debug,info", None),
        (false, _) => ("trace", None),
    };
    let build = move || -> Box<dyn tracing::Subscriber + Send + Sync> {
        let filter = tracing_subscriber::EnvFilter::try_from_env("HOST_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        // Colours only for a person at a terminal who has not asked for none (no-color.org).
        let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Box::new(
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_ansi(colour)
                .with_target(false)
                .fmt_fields(logging::safe_fields())
                .finish(),
        )
    };
    // `HOST_LOG` may enable anything: then the subscriber is built at once.
    let level = level.filter(|_| std::env::var_os("HOST_LOG").is_none());
    // `init` also forwards the `log` crate's records (wasmtime's, rustls') up to that level.
    use tracing_subscriber::util::SubscriberInitExt as _;
    match level {
        Some(level) => logging::Lazy::new(level, build).init(),
        None => build().init(),
    }
}

/// `value` as JSON for stdout (`pretty`: indented), every character a terminal would act on
/// that JSON leaves raw inside strings (C1 controls, bidirectional overrides, zero-width and
/// separator characters) written as a `\uXXXX` escape: the same JSON to a parser, nothing a
/// provider, plugin or API chose acts on the terminal.
pub(crate) fn json_text<T: serde::Serialize + ?Sized>(
    value: &T,
    pretty: bool,
) -> anyhow::Result<String> {
    // Serialized as it is (a struct keeps its fields' order), not through a `Value`.
    let text = if pretty {
        serde_json::to_string_pretty(value)?
    } else {
        serde_json::to_string(value)?
    };
    Ok(escape_for_terminal(text))
}

/// Writes `value` as [`json_text`] and a newline to stdout, in one write.
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(
    value: &T,
    pretty: bool,
) -> anyhow::Result<()> {
    let mut text = json_text(value, pretty)?;
    text.push('\n');
    write_out(&text);
    Ok(())
}

/// Serialized JSON with its terminal-unsafe characters escaped (see [`json_text`]).
fn escape_for_terminal(text: String) -> String {
    // Printable ASCII and the indentation's newlines (serde_json escapes those inside
    // strings) need nothing: the text is scanned as bytes and kept as it is unless something
    // else occurs (a listing of a thousand plugins was 230 KB, decoded a character at a time).
    let plain = |b: u8| b == b'\n' || (0x20..0x7f).contains(&b);
    // A block at a time, without stopping at each byte, so that the check is vectorized.
    let mut first = None;
    for (n, block) in text.as_bytes().chunks(64).enumerate() {
        if !block.iter().fold(true, |all, &b| all & plain(b)) {
            first = block.iter().position(|&b| !plain(b)).map(|i| n * 64 + i);
            break;
        }
    }
    let Some(first) = first else {
        return text;
    };
    // Everything before `first` is ASCII, so `first` is a character boundary.
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        // Raw newlines are the indentation's.
        if c != '\n' && crate::util::text::is_unsafe_char(c) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `TEXT` as an environment variable's spelling: letters and digits upper-cased, anything
/// else `_` (`api-key` → `API_KEY`).
pub(crate) fn env_var_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// An error that means the user must log in (again): the process exits with 4.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct LoginNeeded(pub(crate) String);

/// Whether `error` means the user must log in (again).
pub(crate) fn needs_login(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.is::<LoginNeeded>()
            || e.downcast_ref::<crate::AppError>()
                .is_some_and(|a| a.needs_login() || a.not_logged_in())
            || e.downcast_ref::<crate::SessionError>()
                .is_some_and(crate::SessionError::needs_login)
            || e.downcast_ref::<crate::renewal::RenewError>()
                .is_some_and(crate::renewal::RenewError::needs_login)
            || e.downcast_ref::<crate::StoreError>()
                .is_some_and(crate::StoreError::needs_login)
    })
}

/// What to run when the library says nothing is stored, or what was stored is gone (its
/// messages describe the situation; the command to run is the program's to say).
fn login_hint(error: &anyhow::Error) -> String {
    let store_error = error.chain().find_map(|e| {
        e.downcast_ref::<crate::StoreError>()
            .or_else(|| match e.downcast_ref::<crate::renewal::RenewError>() {
                Some(crate::renewal::RenewError::Store(s)) => Some(s),
                _ => None,
            })
            .or_else(|| match e.downcast_ref::<crate::AppError>() {
                Some(crate::AppError::Store(s))
                | Some(crate::AppError::Renew(crate::renewal::RenewError::Store(s))) => Some(s),
                _ => None,
            })
    });
    match store_error {
        Some(crate::StoreError::NotFound { provider, account }) => format!(
            "; run `host run --provider {}{}` first",
            crate::util::text::terminal_text(provider, 64),
            account_flag(account)
        ),
        Some(crate::StoreError::Corrupt { .. }) => "; run `host run` to log in again".to_owned(),
        _ => String::new(),
    }
}

/// ` --account NAME`, unless the account is the default one.
fn account_flag(account: &str) -> String {
    if account == crate::store::DEFAULT_ACCOUNT {
        String::new()
    } else {
        format!(
            " --account {}",
            crate::util::text::terminal_text(account, 64)
        )
    }
}

/// Whether `error` is about how the command was called (no provider named, none assumed).
pub(crate) fn is_usage_error(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        matches!(
            e.downcast_ref::<crate::AppError>(),
            Some(crate::AppError::DefaultProvider { .. })
        )
    })
}

/// A fresh token for `target`, or an error that says how to log in (exit 4).
async fn fresh_record(
    ctx: &Context,
    target: &Target,
    min_valid: std::time::Duration,
) -> anyhow::Result<crate::Record> {
    let name = target.name();
    match ctx.app.token(name, &target.account, min_valid).await {
        Ok(record) => Ok(record),
        Err(e) if e.needs_login() => {
            let source = e.flow_error().expect("needs_login comes from a flow error");
            // The sentence ends by saying how to log in again: its causes need not each say so.
            let why = source.chain().replace("; log in again", "");
            Err(LoginNeeded(format!(
                "the stored credential for `{name}` can no longer be refreshed ({why}); run `host run --provider {name}{}` to log in again",
                target.account_flag()
            ))
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// What every command works with.
struct Context {
    app: App,
    quiet: bool,
}

impl Context {
    fn load(cli: &Cli) -> anyhow::Result<Self> {
        let mut loader = ConfigLoader::from_process_env().defaults(crate::builtin_defaults());
        if let Some(file) = &cli.config {
            loader = loader.file(file);
        }
        let mut config = loader.load().context("cannot load the configuration")?;
        // One command makes one or two plugin calls: no instance pool to set up.
        #[cfg(feature = "plugins")]
        config.default_plugin_instance_pool(false);
        if let Some(dir) = &cli.plugins_dir {
            config.set_plugins_dir(dir.clone());
        }
        Ok(Self {
            app: App::from_config(config)?,
            quiet: cli.quiet,
        })
    }

    /// Prints a human message on stderr unless `--quiet`.
    fn say(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Completions { shell } = &cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(*shell, &mut command, "host", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    let ctx = Context::load(&cli)?;
    let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    let outcome = match cli.command {
        Command::Run(args) => done(run::run(&ctx, args).await),
        Command::Token(args) => done(token::run(&ctx, args).await),
        Command::Api(args) => done(api::run(&ctx, args).await),
        Command::Exec(args) => exec::run(&ctx, args).await,
        Command::Status(args) => status::run(&ctx, args).await,
        Command::GitCredential(args) => done(git::credential(&ctx, args).await),
        Command::SetupGit(args) => done(git::setup(&ctx, args).await),
        Command::Providers(args) => done(providers::run(&ctx, args).await),
        Command::Logout(args) => done(logout::run(&ctx, args).await),
        Command::Config(args) => done(config::run(&ctx, args)),
        Command::Store(args) => done(store::run(&ctx, args).await),
        #[cfg(feature = "plugins")]
        Command::Plugin(args) => done(plugin::run(&ctx, args).await),
        Command::Completions { .. } => unreachable!("handled above"),
    };
    // The process ends now, and the system takes its memory back at once: freeing every
    // provider, section and flow one by one was 15 % of `host providers` with 1000 plugin
    // files. Nothing in the context does work when dropped (locks and temporary files are
    // released by the commands themselves; sockets close with the process).
    std::mem::forget(ctx);
    outcome
}

/// Formats an expiry for people: "in 7h 59m", "expired 3m ago", "never".
fn describe_expiry(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    let Some(at) = at else {
        return "no expiry".into();
    };
    let secs = (at - chrono::Utc::now()).num_seconds();
    let span = |s: i64| {
        let s = s.abs();
        match s {
            0..60 => format!("{s}s"),
            60..3600 => format!("{}m", s / 60),
            3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
            _ => format!("{}d", s / 86400),
        }
    };
    if secs >= 0 {
        format!("expires in {}", span(secs))
    } else {
        format!("expired {} ago", span(secs))
    }
}

/// The `host` command: parses the arguments, runs the command on a one-thread runtime, prints
/// the error chain and exits 0, 1 (a failure), 2 (a usage error) or 4 (log in again).
pub fn main() -> ExitCode {
    let args = match Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing(args.verbose, args.quiet);
    // One thread: a command is one task at a time (a login's listener and its polling are
    // concurrent, not parallel), and starting worker threads costs more than `host token`
    // itself. Blocking work (file locks, compiling a plugin) goes to the blocking pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}{}", error_text(&e), login_hint(&e));
            // 4: the user must log in (again), as `gh` says it; 1: any other failure.
            if needs_login(&e) {
                ExitCode::from(4)
            } else if is_usage_error(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// The error and its causes, each once (`crate::util::text::error_chain`), made safe for the terminal: a
/// cause may quote a database's, a file name's or a server's text.
fn error_text(e: &anyhow::Error) -> String {
    let error: &(dyn std::error::Error + 'static) = e.as_ref();
    crate::util::text::terminal_text(&crate::util::text::error_chain(error), 8_000)
}

#[cfg(test)]
mod tests {
    /// The whole command line, every deferred subcommand built: clap's own consistency checks,
    /// and each subcommand keeps its own description (a flattened argument group's doc
    /// comment, applied when the subcommand is built, would replace it).
    #[test]
    fn every_subcommand_is_consistent_and_described_by_its_own_text() {
        let mut command = <super::Cli as clap::CommandFactory>::command();
        command.build();
        command.clone().debug_assert();
        let mut seen = std::collections::BTreeMap::new();
        for sub in command.get_subcommands() {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            assert!(!about.is_empty(), "`{}` has no description", sub.get_name());
            if let Some(other) = seen.insert(about.clone(), sub.get_name().to_owned()) {
                panic!(
                    "`{}` and `{other}` share the description {about:?}",
                    sub.get_name()
                );
            }
        }
    }

    /// Plain JSON comes back as it is; past the first character that is not printable ASCII
    /// (a safe `é` included), each unsafe one is escaped and nothing else changes.
    #[test]
    fn json_for_the_terminal_escapes_only_what_a_terminal_acts_on() {
        let plain = super::json_text(&serde_json::json!({"a": ["b", 1]}), true).unwrap();
        assert_eq!(plain, "{\n  \"a\": [\n    \"b\",\n    1\n  ]\n}");
        let value = serde_json::json!(["ok", "caf\u{e9} \u{202e}x\u{7f}", "\u{9b}\u{1b}"]);
        let text = super::json_text(&value, false).unwrap();
        assert_eq!(
            text,
            "[\"ok\",\"caf\u{e9} \\u202ex\\u007f\",\"\\u009b\\u001b\"]"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
