//! `host run`: log in through a provider's flow and store the credential.

use std::sync::Mutex;
use std::time::Duration;

use crate::{
    LoginOptions, LoginUi, Provider, flow::CallbackError, flow::DeviceCode, flow::PromptField,
    login::LoginError, login::Waiting,
};
use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::{Context, Target, describe_expiry, prompt};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// The flow to run (default: the provider's default flow).
    #[arg(long)]
    flow: Option<String>,
    /// A scope to ask for instead of the configured ones (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Print the URL but open no browser.
    #[arg(long)]
    no_browser: bool,
    /// The loopback port for the redirect (default: any free port, or the port of the
    /// provider's `redirect_uri` when one is set).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Give up after this many seconds (default: 300 for a browser login, the code's lifetime
    /// for a device login).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Answer a prompt field without asking (repeatable). Secrets are better passed through
    /// HOST_FIELD_<NAME> or typed at the prompt: arguments show up in process listings.
    #[arg(long = "field", value_name = "NAME=VALUE", value_parser = parse_field)]
    fields: Vec<(String, String)>,
}

pub(crate) async fn run(ctx: &Context, mut args: RunArgs) -> anyhow::Result<()> {
    let provider = args.target.provider(ctx).await?;
    let name = args.target.name();
    let account = &args.target.account;
    let flow_name = match &args.flow {
        Some(f) => f.clone(),
        None => pick_flow(ctx, &provider, args.no_browser).await?,
    };
    let mut options = LoginOptions::default()
        .scopes(args.scopes.clone())
        .port(args.port);
    if let Some(secs) = args.timeout {
        options = options.timeout(Duration::from_secs(secs));
    }
    let ui = Terminal {
        ctx,
        open_browser: !args.no_browser,
        given: &args.fields,
        spinner: Mutex::new(None),
    };
    let record = ctx
        .app
        .login(name, account, Some(&flow_name), &options, &ui)
        .await
        .map_err(|e| match e {
            crate::AppError::Login(e @ LoginError::TimedOut { waiting, limit }) => {
                // The same command again (its flow and scopes too); raising --timeout helps only
                // when --timeout was the limit, not a device code's lifetime.
                let mut again = format!("host run --provider {name} --flow {flow_name}");
                for scope in &args.scopes {
                    again.push_str(&format!(" --scope {scope}"));
                }
                again.push_str(&args.target.account_flag());
                let ours = match waiting {
                    Waiting::DeviceCode => args.timeout.is_some_and(|t| t <= limit.as_secs()),
                    _ => true,
                };
                let raise = if ours { ", or raise --timeout" } else { "" };
                anyhow::anyhow!("{e} (run `{again}` again{raise})")
            }
            e => e.into(),
        })?;
    let path = ctx.app.store().location(name, account)?;

    let scopes = record
        .credential
        .as_oauth2()
        .map(|t| t.scopes.clone())
        .unwrap_or_default();
    if args.json {
        let summary = json!({
            "provider": name,
            "account": account,
            "flow": flow_name,
            "identity": record.identity,
            "scopes": scopes,
            "expires_at": record.expires_at(),
            "stored_at": path,
        });
        super::write_json(&summary, true)?;
    }
    let who = record
        .identity
        .as_deref()
        .map(|i| format!(" as {i}"))
        .unwrap_or_default();
    if unattended(&provider, &flow_name).await {
        ctx.say(format!(
            "Obtained a token from {name} with {flow_name} (account `{account}`)."
        ));
    } else {
        ctx.say(format!("Logged in to {name}{who} (account `{account}`)."));
    }
    if !scopes.is_empty() {
        ctx.say(format!("  scopes: {}", scopes.join(", ")));
    }
    ctx.say(format!("  token {}", describe_expiry(record.expires_at())));
    ctx.say(format!("  stored in {path}"));
    Ok(())
}

/// The terminal as a login front end: URLs and codes on stderr (even with --quiet: without
/// them there is no login), a browser when one can be opened, a spinner with the time left,
/// prompt answers from flags, `HOST_FIELD_*`, the terminal or standard input.
struct Terminal<'a> {
    ctx: &'a Context,
    open_browser: bool,
    given: &'a [(String, String)],
    spinner: Mutex<Option<ProgressBar>>,
}

#[async_trait::async_trait]
impl LoginUi for Terminal<'_> {
    fn show_url(&self, url: &str) {
        self.ctx.say("Open this URL in your browser to log in:");
        eprintln!("{url}");
        if self.open_browser {
            open_browser(self.ctx, url);
        }
    }

    fn show_device_code(&self, code: &DeviceCode) {
        eprintln!("First copy your one-time code: {}", code.user_code);
        eprintln!("Then open this URL in a browser (on any device) and enter it:");
        eprintln!("{}", code.verification_uri);
        if self.open_browser {
            let url = code
                .verification_uri_complete
                .as_deref()
                .unwrap_or(&code.verification_uri);
            open_browser(self.ctx, url);
        }
    }

    async fn answer(
        &self,
        fields: &[PromptField],
        refused: Option<&str>,
    ) -> Result<Vec<(String, String)>, LoginError> {
        prompt::answers(self.ctx, fields, self.given, refused)
    }

    fn waiting(&self, what: Waiting, left: Duration) {
        let mut spinner = self.spinner.lock().unwrap_or_else(|e| e.into_inner());
        let spinner = spinner.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(
                None,
                if self.ctx.quiet {
                    ProgressDrawTarget::hidden()
                } else {
                    ProgressDrawTarget::stderr()
                },
            );
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("static"));
            bar
        });
        let message = match what {
            Waiting::Browser => "Waiting for the browser",
            Waiting::TokenEndpoint => "Waiting for the provider's token endpoint",
            _ => "Waiting for the code to be entered",
        };
        let left = left.as_secs();
        spinner.set_message(format!("{message}… {}:{:02} left", left / 60, left % 60));
        spinner.tick();
    }

    fn done_waiting(&self) {
        if let Some(spinner) = self
            .spinner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            spinner.finish_and_clear();
        }
    }

    fn callback_rejected(&self, error: &CallbackError) {
        tracing::debug!("a request to the callback was refused: {error}");
    }
}

/// The flow used when none is named: the provider's default, except that where no browser can
/// be opened (no display, an SSH session) and the provider has a device flow, that one, saying
/// so. `--no-browser` keeps the default: it only means "print the URL, open nothing".
async fn pick_flow(ctx: &Context, provider: &Provider, no_browser: bool) -> anyhow::Result<String> {
    let default = provider
        .default_flow()
        .context("the provider has no flows")?
        .to_owned();
    let has_device = provider.flow_names().any(|f| f == DEVICE);
    if !no_browser
        && default != DEVICE
        && has_device
        && !browser_available()
        && !unattended(provider, &default).await
    {
        ctx.say(format!(
            "No browser can be opened here: using the device flow (pass --flow {default} for the browser flow)."
        ));
        return Ok(DEVICE.to_owned());
    }
    Ok(default)
}

/// Whether the flow needs nobody (then no browser is needed either); a flow that cannot be
/// built is not, and fails where it is run.
async fn unattended(provider: &Provider, flow: &str) -> bool {
    provider.flow(flow).await.is_ok_and(|f| f.unattended())
}

/// The device flow's conventional name.
const DEVICE: &str = "device";

/// Whether a browser can be opened: a desktop session, not an SSH login without a display.
fn browser_available() -> bool {
    let var = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let display = var("DISPLAY") || var("WAYLAND_DISPLAY");
    let ssh = var("SSH_CONNECTION") || var("SSH_TTY");
    if cfg!(any(target_os = "macos", windows)) {
        !ssh
    } else {
        display
    }
}

fn parse_field(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or("expected NAME=VALUE")?;
    if name.is_empty() {
        return Err("the field name is empty".into());
    }
    Ok((name.to_owned(), value.to_owned()))
}

fn open_browser(ctx: &Context, url: &str) {
    if !browser_available() {
        ctx.say("No browser can be opened here (no display): open the URL above yourself.");
        return;
    }
    match open::that_detached(url) {
        Ok(()) => ctx.say("Opened your browser."),
        Err(e) => ctx.say(format!(
            "Could not open a browser ({e}): open the URL above yourself."
        )),
    }
}
