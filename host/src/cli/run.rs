//! `host run`: log in through a provider's flow and store the credential.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use host::flow::{
    AuthFlow, AuthorizeRequest, Credential, DeviceCode, ExchangeInput, FlowError, Interaction,
    Pending,
};
use host::loopback::{Loopback, Page};
use host::store::Record;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::{Context, Target, describe_expiry, prompt};

/// How long the login-name lookup after a login may take.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(3);

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
    /// The loopback port for the redirect (default: any free port).
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

pub(crate) async fn run(ctx: &Context, args: RunArgs) -> anyhow::Result<()> {
    let provider = args.target.provider(ctx)?;
    let Target {
        provider: name,
        account,
    } = &args.target;
    let flow_name = match &args.flow {
        Some(f) => f.clone(),
        None => pick_flow(ctx, &provider, args.no_browser)?,
    };
    let flow = provider.flow(&flow_name).await?;
    let mut listener = Loopback::bind(args.port)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let request =
        AuthorizeRequest::with_redirect(listener.redirect_uri()).scopes(args.scopes.clone());
    let auth = flow
        .authorize(request)
        .await
        .context("cannot start the login")?;
    let credential = match auth.interaction {
        Interaction::Redirect { url } => {
            ctx.say("Open this URL in your browser to log in:");
            // The URL goes out even with --quiet: without it there is no login.
            eprintln!("{url}");
            if !args.no_browser {
                open_browser(ctx, &url);
            }
            let timeout = Duration::from_secs(args.timeout.unwrap_or(DEFAULT_TIMEOUT));
            let outcome =
                wait_for_callback(ctx, &mut listener, flow.as_ref(), auth.pending, timeout).await;
            listener.shutdown().await;
            outcome?
        }
        Interaction::DeviceCode(code) => {
            listener.shutdown().await;
            device_login(ctx, flow.as_ref(), code, auth.pending, &args).await?
        }
        Interaction::Prompt { fields } => {
            listener.shutdown().await;
            prompt::run(ctx, flow.as_ref(), &fields, &args.fields, auth.pending).await?
        }
        _ => bail!("flow `{flow_name}` asks for an interaction `host run` does not support yet"),
    };

    let identity = tokio::time::timeout(IDENTIFY_TIMEOUT, flow.identify(&credential))
        .await
        .ok()
        .flatten();
    let mut record = Record::new(name, account, &flow_name, credential);
    record.identity = identity;
    let path = ctx.store.save(&record)?;

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
        outln!("{summary:#}");
    }
    let who = record
        .identity
        .as_deref()
        .map(|i| format!(" as {i}"))
        .unwrap_or_default();
    ctx.say(format!("Logged in to {name}{who} (account `{account}`)."));
    if !scopes.is_empty() {
        ctx.say(format!("  scopes: {}", scopes.join(", ")));
    }
    ctx.say(format!("  token {}", describe_expiry(record.expires_at())));
    ctx.say(format!("  stored in {}", path.display()));
    Ok(())
}

/// How long a browser login waits for its callback unless --timeout says otherwise.
const DEFAULT_TIMEOUT: u64 = 300;

/// The flow used when none is named: the provider's default, except that where no browser can
/// be opened (no display, an SSH session) and the provider has a device flow, that one, saying
/// so. `--no-browser` keeps the default: it only means "print the URL, open nothing".
fn pick_flow(
    ctx: &Context,
    provider: &host::provider::Provider,
    no_browser: bool,
) -> anyhow::Result<String> {
    let default = provider
        .default_flow()
        .context("the provider has no flows")?
        .to_owned();
    let has_device = provider.flow_names().any(|f| f == DEVICE);
    if !no_browser && default != DEVICE && has_device && !browser_available() {
        ctx.say(format!(
            "No browser can be opened here: using the device flow (pass --flow {default} for the browser flow)."
        ));
        return Ok(DEVICE.to_owned());
    }
    Ok(default)
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

/// Shows the code and the URL, offers the browser, then polls until the user has entered it.
async fn device_login(
    ctx: &Context,
    flow: &dyn AuthFlow,
    code: DeviceCode,
    pending: Pending,
    args: &RunArgs,
) -> anyhow::Result<Credential> {
    // The code and the URL go out even with --quiet: without them there is no login.
    eprintln!("First copy your one-time code: {}", code.user_code);
    eprintln!("Then open this URL in a browser (on any device) and enter it:");
    eprintln!("{}", code.verification_uri);
    if !args.no_browser {
        open_browser(
            ctx,
            code.verification_uri_complete
                .as_deref()
                .unwrap_or(&code.verification_uri),
        );
    }
    let limit = args.timeout.unwrap_or(code.expires_in).min(code.expires_in);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(limit);
    let interval = Duration::from_secs(code.interval);
    let poll = host::device::poll(flow, pending, interval, deadline);
    let outcome = with_spinner(ctx, deadline, "Waiting for the code to be entered", poll).await;
    outcome.map_err(|e| match e {
        FlowError::Expired => anyhow::anyhow!(
            "the code was not entered within {}s; nothing was stored (run `host run` again)",
            limit
        ),
        e @ FlowError::AccessDenied { .. } => {
            anyhow::Error::new(e).context("the login was refused")
        }
        e => anyhow::Error::new(e).context("the login failed"),
    })
}

/// Runs `work` with a spinner showing the time left until `deadline`.
async fn with_spinner<T>(
    ctx: &Context,
    deadline: tokio::time::Instant,
    message: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
    let spinner = ProgressBar::with_draw_target(
        None,
        if ctx.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("static template"));
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = tick.tick() => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now()).as_secs();
                spinner.set_message(format!("{message}… {}:{:02} left", left / 60, left % 60));
                spinner.tick();
            }
        }
    };
    spinner.finish_and_clear();
    result
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

async fn wait_for_callback(
    ctx: &Context,
    listener: &mut Loopback,
    flow: &dyn AuthFlow,
    pending: Pending,
    timeout: Duration,
) -> anyhow::Result<Credential> {
    let deadline = tokio::time::Instant::now() + timeout;
    let wait = async {
        loop {
            let callback = tokio::select! {
                callback = listener.next() => callback.context("the callback listener stopped")?,
                _ = tokio::time::sleep_until(deadline) => anyhow::bail!(
                    "no login callback arrived within {}s; nothing was stored (run `host run` again, or raise --timeout)",
                    timeout.as_secs()
                ),
            };
            match flow
                .exchange(pending.clone(), ExchangeInput::from_query(&callback.query))
                .await
            {
                Ok(credential) => {
                    callback.reply(Page::Success);
                    return Ok(credential);
                }
                Err(FlowError::Callback(e)) => {
                    // Not our callback (a forged or stray request): say so, keep waiting.
                    tracing::warn!("ignored a request to the callback: {e}");
                    callback.reply(Page::Rejected(format!(
                        "This request was not accepted: {e}."
                    )));
                }
                Err(e @ FlowError::AccessDenied { .. }) => {
                    callback.reply(Page::Failed(
                        "Access was denied. You can close this tab.".into(),
                    ));
                    return Err(anyhow::Error::new(e).context("the login was refused"));
                }
                Err(e) => {
                    callback.reply(Page::Failed(
                        "The login failed; the terminal says why.".into(),
                    ));
                    return Err(anyhow::Error::new(e).context("the login failed"));
                }
            }
        }
    };
    with_spinner(ctx, deadline, "Waiting for the browser", wait).await
}
