//! Log in to a provider, then print a fresh token: the library's whole promise in one program.
//!
//! ```sh
//! GITHUB_CLIENT_ID=… cargo run --example login -- github
//! ```
//!
//! The configuration is the `host` program's (`~/.config/host/host.toml`, `HOST_*`
//! variables), so is the store: a token this example stores, `host token` prints.

use host::{App, DEFAULT_MIN_VALID, LoginOptions, LoginUi, flow::DeviceCode};

/// What the person sees: lines on stderr.
struct Terminal;

impl LoginUi for Terminal {
    fn show_url(&self, url: &str) {
        eprintln!("Open this URL in your browser to log in:\n{url}");
    }

    fn show_device_code(&self, code: &DeviceCode) {
        eprintln!("Enter {} at {}", code.user_code, code.verification_uri);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = std::env::args().nth(1).unwrap_or_else(|| "github".into());
    let app = App::load_default()?;
    let login = app
        .login(
            &provider,
            "default",
            None,
            &LoginOptions::default(),
            &Terminal,
        )
        .await?;
    eprintln!("Logged in to {provider} (identity: {:?}).", login.identity);
    // In any later process: a token valid for at least a minute, refreshed first when due.
    let record = app.token(&provider, "default", DEFAULT_MIN_VALID).await?;
    let token = record.credential.secret().ok_or("not a token credential")?;
    println!("{}", token.expose());
    Ok(())
}
