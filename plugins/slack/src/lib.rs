//! Slack-style OAuth2 ("Sign in with Slack" user tokens), with the real-world quirks the SDK
//! absorbs: the token is nested under `authed_user`, scopes are comma-separated (and asked for
//! in `user_scope`), errors come as `{"ok": false, "error": …}` with HTTP 200, and the team the
//! token belongs to is kept in the credential as typed extras.
//!
//! ```toml
//! [providers.slack]
//! client_id = "…"
//! client_secret = "…"
//! user_scopes = ["users:read", "chat:write"]
//! ```

use plugin_sdk::oauth2::{self, ClientAuth, LoginState, TokenResponse};
use plugin_sdk::prelude::*;

/// The plugin's `[providers.<name>]` section.
#[derive(Deserialize, JsonSchema)]
struct App {
    /// The app's client id.
    client_id: String,
    /// The app's client secret.
    client_secret: String,
    /// Scopes of the user token.
    #[serde(default)]
    user_scopes: Vec<String>,
    /// The authorization endpoint.
    #[serde(default = "default_authorize_url")]
    #[schemars(url)]
    authorize_url: String,
    /// The token endpoint (`oauth.v2.access`).
    #[serde(default = "default_token_url")]
    #[schemars(url)]
    token_url: String,
}

fn default_authorize_url() -> String {
    "https://slack.com/oauth/v2/authorize".into()
}

fn default_token_url() -> String {
    "https://slack.com/api/oauth.v2.access".into()
}

/// The workspace a token belongs to, kept with the token.
#[derive(Serialize, Deserialize)]
struct Team {
    team_id: String,
    team_name: String,
}

/// Slack's user token sits under `authed_user`; the team at the top.
fn user_token(response: &TokenResponse) -> Result<Token> {
    let token = response
        .token_at("/authed_user")
        .or_else(|_| response.token())?;
    let team = &response.json()["team"];
    match (team["id"].as_str(), team["name"].as_str()) {
        (Some(id), Some(name)) => token.with_extra(&Team {
            team_id: id.into(),
            team_name: name.into(),
        }),
        _ => Ok(token),
    }
}

struct Slack;

impl Flow for Slack {
    type App = App;

    fn authorize(app: &App, req: AuthorizeRequest) -> Result<Authorization> {
        oauth2::AuthorizationUrl::new(&app.authorize_url, &app.client_id)
            .request(&req)
            .default_scopes(&app.user_scopes)
            .scope_param("user_scope")
            .scope_separator(",")
            .build()
    }

    fn exchange(app: &App, pending: Pending, input: Input) -> Result<Credential> {
        let login: LoginState = pending.decode()?;
        let code = oauth2::callback_code(&input, &login)?;
        let response = oauth2::token_request(&app.token_url)
            .client(
                &app.client_id,
                Some(&app.client_secret),
                ClientAuth::RequestBody,
            )
            .authorization_code(code, &login)
            .send()?;
        user_token(&response).map(Credential::OAuth2)
    }

    fn refresh(app: &App, credential: Credential) -> Result<Credential> {
        let old = credential.into_token()?;
        let refresh_token = old
            .refresh_token()
            .ok_or_else(|| Error::unsupported("no refresh token"))?;
        let response = oauth2::token_request(&app.token_url)
            .client(
                &app.client_id,
                Some(&app.client_secret),
                ClientAuth::RequestBody,
            )
            .refresh_token(refresh_token)
            .send()?;
        let mut token = user_token(&response)?;
        if !token.extra.contains_key("team_id") {
            token.extra = old.extra; // keep the team when the refresh response omits it
        }
        Ok(Credential::OAuth2(token))
    }
}

plugin_sdk::register!(Slack {
    name: "Slack (user token)",
    version: env!("CARGO_PKG_VERSION"),
    hosts: ["{token_url}"],
});
