//! The built-in `github` provider: OAuth apps and GitHub Apps (user-to-server tokens).
//!
//! - github.com endpoints by default; every one can be overridden for GitHub Enterprise Server
//!   (`https://HOST/login/oauth/authorize`, `https://HOST/api/v3`) or tests.
//! - `GITHUB_CLIENT_ID` and `GITHUB_CLIENT_SECRET` set `providers.github.client_id` and
//!   `providers.github.client_secret`.
//! - GitHub answers token errors with HTTP 200; its codes map to [`GitHubErrorCode`] and to the
//!   standard [`ErrorKind`] (a `bad_refresh_token` is an `invalid_grant`: log in again).
//! - GitHub App user tokens expire (8 hours) and come with a refresh token that expires too
//!   (`refresh_token_expires_in`, about 6 months): [`GitHubTokenExtra`] keeps its absolute expiry.
//! - Scopes come back comma-separated (`repo,gist`); they are split.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use url::Url;

use std::sync::Arc;

use crate::config::{Alias, Config, Defaults};
use crate::flow::{
    AuthFlow, Authorization, AuthorizeRequest, Credential, ExchangeInput, FlowError, Pending,
};
use crate::net::http::{HttpClient, HttpPolicy};
use crate::oauth2::{ErrorKind, Grant, OAuth2AppCredentials, OAuth2Flow, TokenClass, TokenError};
use crate::providers::app_credentials::ValidationError;
use crate::providers::provider::{
    Provider, ProviderBuilder, ProviderContext, ProviderError, ProviderSource,
};
use crate::util::text::sanitize;

/// The provider's name.
pub const NAME: &str = "github";
/// The name of its authorization-code (browser) flow.
pub const OAUTH2_FLOW: &str = "oauth2";
/// The name of its device flow.
pub const DEVICE_FLOW: &str = "device";

/// GitHub's app credentials: the OAuth2 ones plus the REST API's base URL.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GitHubAppCredentials {
    /// The OAuth2 settings.
    #[serde(flatten)]
    pub oauth2: OAuth2AppCredentials,
    /// The REST API (`https://api.github.com`, or `https://HOST/api/v3` on Enterprise Server).
    pub api_url: Url,
}

crate::providers::app_credentials::compiled_schema!(
    GitHubAppCredentials,
    GitHubSchema,
    "schemas/github.json"
);

/// The built-in defaults and aliases.
pub fn defaults() -> Defaults {
    Defaults {
        path: format!("providers.{NAME}"),
        values: json!({
            "authorize_url": "https://github.com/login/oauth/authorize",
            "token_url": "https://github.com/login/oauth/access_token",
            "device_authorization_url": "https://github.com/login/device/code",
            "api_url": "https://api.github.com",
            "client_auth": "request_body",
        }),
        aliases: vec![
            Alias::new("GITHUB_CLIENT_ID", format!("providers.{NAME}.client_id")),
            Alias::new(
                "GITHUB_CLIENT_SECRET",
                format!("providers.{NAME}.client_secret"),
            ),
        ],
    }
}

/// The `github` provider, configured from `config`.
pub fn provider(config: &Config) -> Provider {
    builder(config).build()
}

/// A typed handle on the `github` provider (see `App::github`): its flows as
/// [`GitHubFlow`]s, built on first access and cached like every flow.
#[derive(Debug, Clone)]
pub struct GitHub {
    provider: Arc<Provider>,
}

impl GitHub {
    /// The handle on a registered `github` provider.
    pub fn new(provider: Arc<Provider>) -> Self {
        Self { provider }
    }

    /// The provider underneath.
    pub fn provider(&self) -> &Arc<Provider> {
        &self.provider
    }

    /// The browser flow (authorization code with PKCE): the same instance on every call.
    pub async fn oauth2(&self) -> Result<Arc<GitHubFlow>, ProviderError> {
        self.provider.flow_as(OAUTH2_FLOW).await
    }

    /// The device flow.
    pub async fn device(&self) -> Result<Arc<GitHubFlow>, ProviderError> {
        self.provider.flow_as(DEVICE_FLOW).await
    }

    /// The app credentials, validated.
    pub fn app_credentials(
        &self,
    ) -> Result<GitHubAppCredentials, crate::providers::app_credentials::ValidationError> {
        app_credentials(self.provider.context())
    }
}

/// The provider's app credentials, checked with their compiled validator.
fn app_credentials(ctx: &ProviderContext) -> Result<GitHubAppCredentials, ValidationError> {
    ctx.section().parse_compiled()
}

/// The `github` provider's builder, for adding flows.
pub(crate) fn builder(config: &Config) -> ProviderBuilder {
    let policy = config.http_policy();
    Provider::builder(NAME, config.provider_section(NAME))
        .source(ProviderSource::BuiltIn)
        // Checked by the validator generated for the type at build time (its own, not a list's).
        .checker(|section| section.parse_compiled::<GitHubAppCredentials>().map(drop))
        .flow(OAUTH2_FLOW, {
            let policy = policy.clone();
            move |ctx| {
                let policy = policy.clone();
                async move { GitHubFlow::new(ctx.name(), app_credentials(&ctx)?, policy) }
            }
        })
        .flow(DEVICE_FLOW, move |ctx| {
            let policy = policy.clone();
            async move { GitHubFlow::device(ctx.name(), app_credentials(&ctx)?, policy) }
        })
        .default_flow(OAUTH2_FLOW)
}

/// A GitHub flow (browser or device): [`OAuth2Flow`] with GitHub's token class, plus GitHub's
/// own token deletion API for revocation and its user API for the login name.
#[derive(Debug)]
pub struct GitHubFlow {
    inner: Grant<GitHubToken>,
    api_url: Url,
}

impl GitHubFlow {
    /// The browser (authorization code) flow for these app credentials.
    pub fn new(
        provider: &str,
        app: GitHubAppCredentials,
        policy: HttpPolicy,
    ) -> Result<Self, FlowError> {
        Self::build(provider, app, policy, false)
    }

    /// The device flow for these app credentials.
    pub fn device(
        provider: &str,
        app: GitHubAppCredentials,
        policy: HttpPolicy,
    ) -> Result<Self, FlowError> {
        Self::build(provider, app, policy, true)
    }

    fn build(
        provider: &str,
        app: GitHubAppCredentials,
        policy: HttpPolicy,
        device: bool,
    ) -> Result<Self, FlowError> {
        crate::net::http::require_secure(&app.api_url).map_err(|e| FlowError::InvalidConfig {
            message: format!("providers.{provider}.api_url"),
            source: Some(Box::new(e)),
        })?;
        let http = HttpClient::new(policy).map_err(|e| FlowError::InvalidConfig {
            message: "cannot set up the HTTP client".into(),
            source: Some(Box::new(e)),
        })?;
        let code = OAuth2Flow::with_class(provider, app.oauth2, GitHubToken, http)?;
        let inner = Grant::new(code, device)?;
        Ok(Self {
            inner,
            api_url: app.api_url,
        })
    }

    /// The OAuth2 flow underneath (its configured client, its HTTP client).
    pub fn oauth2(&self) -> &OAuth2Flow<GitHubToken> {
        self.inner.oauth2()
    }

    /// The REST API's base URL.
    pub fn api_url(&self) -> &Url {
        &self.api_url
    }

    fn api(&self, path: &str) -> String {
        format!("{}/{}", self.api_url.as_str().trim_end_matches('/'), path)
    }
}

#[async_trait::async_trait]
impl AuthFlow for GitHubFlow {
    async fn authorize(&self, req: AuthorizeRequest) -> Result<Authorization, FlowError> {
        self.inner.flow().authorize(req).await
    }

    fn redirect_uri(&self) -> Option<url::Url> {
        self.inner.flow().redirect_uri()
    }

    async fn exchange(
        &self,
        pending: Pending,
        input: ExchangeInput,
    ) -> Result<Credential, FlowError> {
        self.inner.flow().exchange(pending, input).await
    }

    /// Refreshes, unless the refresh token is known to have expired (GitHub App refresh
    /// tokens live about six months): then the user must log in again, without a request.
    async fn refresh(&self, credential: &Credential) -> Result<Credential, FlowError> {
        let expired = credential
            .as_oauth2()
            .and_then(|t| t.extra_as::<GitHubTokenExtra>().ok())
            .and_then(|e| e.refresh_token_expires_at)
            .is_some_and(|at| at <= chrono::Utc::now());
        if expired {
            return Err(FlowError::LoginRequired {
                reason: "the refresh token has expired",
                source: None,
            });
        }
        self.inner.oauth2().refresh(credential).await
    }

    /// The configured `revocation_url` (RFC 7009) when set; otherwise GitHub's
    /// `DELETE /applications/{client_id}/token`, authenticated with the app's id and secret,
    /// which ends the whole authorization. A 503 is retried (honouring `Retry-After`).
    async fn revoke(&self, credential: &Credential) -> Result<bool, FlowError> {
        let oauth2 = self.inner.oauth2();
        if oauth2.app_credentials().revocation_url.is_some() {
            return oauth2.revoke_rfc7009(credential).await;
        }
        let app = oauth2.app_credentials();
        let Some(token) = credential.as_oauth2() else {
            return Ok(false);
        };
        let Some(secret) = &app.client_secret else {
            return Err(FlowError::Unsupported(
                "revoking a GitHub token needs the app's client secret (providers.github.client_secret); the user can also revoke it under Settings > Applications".into(),
            ));
        };
        let body = serde_json::to_vec(&json!({ "access_token": token.access_token.expose() }))
            .map_err(|e| FlowError::internal("cannot encode the request", e))?;
        let path = format!(
            "applications/{}/token",
            url::form_urlencoded::byte_serialize(app.client_id.as_bytes()).collect::<String>()
        );
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let request = http::Request::delete(self.api(&path))
                .header(
                    http::header::AUTHORIZATION,
                    crate::oauth2::basic_auth(&app.client_id, secret.expose()),
                )
                .header(http::header::ACCEPT, "application/vnd.github+json")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .map_err(|e| FlowError::internal("cannot build the request", e))?;
            let response = oauth2
                .http_client()
                .send(request)
                .await
                .map_err(TokenError::from)?;
            let status = response.status().as_u16();
            match status {
                // 404: the token is already gone.
                204 | 200 | 404 => return Ok(true),
                503 if attempt < ATTEMPTS => {
                    let wait = crate::oauth2::revocation_retry_wait(response.headers());
                    tokio::time::sleep(wait).await;
                }
                status => {
                    return Err(TokenError::Status {
                        status,
                        content_type: None,
                    }
                    .into());
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The login name from `GET /user` (the caller bounds the wait).
    async fn identify(&self, credential: &Credential) -> Option<String> {
        self.verify(credential).await.ok().flatten()
    }

    /// `GET /user` with the token: 2xx is valid (with the login), 401 is refused.
    async fn verify(&self, credential: &Credential) -> Result<Option<String>, FlowError> {
        let user = self
            .inner
            .oauth2()
            .get_as_user(&self.api("user"), credential, "application/vnd.github+json")
            .await?;
        Ok(user
            .get("login")
            .and_then(Value::as_str)
            .map(|l| sanitize(l, 64)))
    }
}

/// GitHub's error codes (sent with HTTP 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GitHubErrorCode {
    /// The code is wrong or expired.
    BadVerificationCode,
    /// The refresh token is wrong, expired or revoked.
    BadRefreshToken,
    /// The client id or secret is wrong.
    IncorrectClientCredentials,
    /// The redirect URI does not match the app's.
    RedirectUriMismatch,
    /// The user has not verified their email.
    UnverifiedUserEmail,
    /// The device code is wrong.
    IncorrectDeviceCode,
    /// The device flow is not enabled for the app.
    DeviceFlowDisabled,
    /// The grant type is not supported (e.g. refresh on an OAuth app).
    UnsupportedGrantType,
    /// The user or app is suspended.
    ApplicationSuspended,
}

impl GitHubErrorCode {
    /// The typed code of a GitHub error code string.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "bad_verification_code" => Self::BadVerificationCode,
            "bad_refresh_token" => Self::BadRefreshToken,
            "incorrect_client_credentials" => Self::IncorrectClientCredentials,
            "redirect_uri_mismatch" => Self::RedirectUriMismatch,
            "unverified_user_email" => Self::UnverifiedUserEmail,
            "incorrect_device_code" => Self::IncorrectDeviceCode,
            "device_flow_disabled" => Self::DeviceFlowDisabled,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "application_suspended" => Self::ApplicationSuspended,
            _ => return None,
        })
    }

    /// The GitHub error code a token error carries, if any.
    pub fn of(error: &TokenError) -> Option<Self> {
        error
            .provider_error()
            .and_then(|e| Self::from_code(&e.code))
    }

    /// Its standard OAuth2 meaning.
    pub fn kind(self) -> ErrorKind {
        match self {
            Self::BadVerificationCode | Self::BadRefreshToken | Self::IncorrectDeviceCode => {
                ErrorKind::InvalidGrant
            }
            Self::IncorrectClientCredentials => ErrorKind::InvalidClient,
            Self::RedirectUriMismatch => ErrorKind::InvalidRequest,
            Self::UnverifiedUserEmail | Self::ApplicationSuspended => ErrorKind::AccessDenied,
            Self::DeviceFlowDisabled => ErrorKind::UnauthorizedClient,
            Self::UnsupportedGrantType => ErrorKind::UnsupportedGrantType,
        }
    }
}

/// GitHub's token class.
#[derive(Debug, Clone, Copy, Default)]
pub struct GitHubToken;

/// GitHub's extra token fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitHubTokenExtra {
    /// When the refresh token expires (GitHub App user tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
}

impl TokenClass for GitHubToken {
    type Extra = GitHubTokenExtra;

    fn parse_extra(
        &self,
        fields: &Map<String, Value>,
        received_at: DateTime<Utc>,
    ) -> Result<Self::Extra, TokenError> {
        let seconds = crate::oauth2::lifetime(
            fields.get("refresh_token_expires_in").cloned(),
            "refresh_token_expires_in",
        )?;
        let refresh_token_expires_at = seconds.and_then(|s| {
            let s = i64::try_from(s).ok()?;
            received_at.checked_add_signed(chrono::Duration::try_seconds(s)?)
        });
        Ok(GitHubTokenExtra {
            refresh_token_expires_at,
        })
    }

    fn error_kind(&self, code: &str) -> Option<ErrorKind> {
        GitHubErrorCode::from_code(code).map(GitHubErrorCode::kind)
    }

    fn keep_on_refresh(&self, old: &Self::Extra, new: &mut Self::Extra) {
        if new.refresh_token_expires_at.is_none() {
            new.refresh_token_expires_at = old.refresh_token_expires_at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema file the compiled validator is generated from is what schemars makes of the
    /// type now (`HOST_WRITE_SCHEMAS=1 cargo test -p host schema_file` writes it again).
    #[test]
    fn the_compiled_schema_file_is_the_types_schema() {
        let stale = crate::providers::app_credentials::stale_schema_file::<GitHubAppCredentials>(
            "schemas/github.json",
        );
        assert!(stale.is_none(), "{stale:?}");
    }

    #[test]
    fn the_compiled_validator_finds_what_the_run_time_one_finds() {
        crate::providers::schema::compiled_tests::agrees_with_the_run_time_validator::<
            GitHubAppCredentials,
        >();
    }
}
