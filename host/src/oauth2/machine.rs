//! Unattended grants: a machine's own identity turned into a token with no person involved.
//!
//! - **client credentials** (RFC 6749 §4.4): the client authenticates (any of
//!   [`ClientAuth`](super::ClientAuth)'s ways) and gets a token for itself;
//! - **JWT bearer** (RFC 7523 §2.1): an assertion signed with a private key is the grant (a
//!   Google service account's way);
//! - **token exchange** (RFC 8693): a token from elsewhere (a file, a variable, another
//!   provider's fresh token, a GitHub Actions job's OpenID Connect token) is traded for one of
//!   this provider's (workload identity federation).
//!
//! A [`MachineFlow`] is [`unattended`](AuthFlow::unattended): [`obtain`](AuthFlow::obtain)
//! runs the grant, and [`renewal`](crate::renewal) runs it again when the token is due, under
//! the store's single-flight lock, so there is no login and no refresh token to keep.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use super::assertion::{ASSERTION_LIFETIME, SigningKey, new_jti};
use super::request::IdTokenCheck;
use super::{OAuth2Flow, TokenError};
use crate::flow::{
    AuthFlow, Authorization, AuthorizeRequest, Credential, ExchangeInput, FlowError, Pending,
    async_trait,
};
use crate::util::secret::SecretString;

/// The grant type of RFC 7523 §2.1.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The grant type of RFC 8693.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The largest subject token read from a file, a variable or an endpoint.
const MAX_SUBJECT_TOKEN: usize = 64 * 1024;

/// Which unattended grant, with what it needs.
#[derive(Debug)]
#[non_exhaustive]
pub enum MachineGrant {
    /// Client credentials: the client's authentication is the grant.
    ClientCredentials,
    /// A signed assertion is the grant.
    JwtBearer(JwtBearer),
    /// Another token is traded.
    TokenExchange(TokenExchange),
}

/// What a JWT bearer assertion says, and the key that signs it.
#[derive(Debug)]
#[non_exhaustive]
pub struct JwtBearer {
    /// The signing key.
    pub key: Arc<SigningKey>,
    /// `iss`.
    pub issuer: String,
    /// `sub`, when the token is for someone else.
    pub subject: Option<String>,
    /// `aud`; default the token endpoint URL.
    pub audience: Option<String>,
    /// Whether the scopes go in the assertion's `scope` claim (Google's way) rather than the
    /// request's `scope` parameter.
    pub scope_claim: bool,
}

impl JwtBearer {
    /// An assertion by `issuer`, signed with `key`; the rest at its default.
    pub fn new(key: Arc<SigningKey>, issuer: impl Into<String>) -> Self {
        Self {
            key,
            issuer: issuer.into(),
            subject: None,
            audience: None,
            scope_claim: false,
        }
    }
}

/// A token exchange: where the subject token comes from, and the token types.
#[derive(Debug)]
#[non_exhaustive]
pub struct TokenExchange {
    /// Where the subject token comes from.
    pub subject: SubjectToken,
    /// `subject_token_type` (a full URI).
    pub subject_token_type: String,
    /// `requested_token_type` (a full URI), when one is asked for.
    pub requested_token_type: Option<String>,
}

/// Where a token exchange's subject token comes from, read anew at each exchange.
#[non_exhaustive]
pub enum SubjectToken {
    /// A file (a Kubernetes projected token, say); it must not be writable by others.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// The GitHub Actions job's OpenID Connect token, for `audience` when given.
    GithubActions {
        /// The audience asked for.
        audience: Option<String>,
    },
    /// Something else: another provider's fresh access token, say.
    Source(Arc<dyn SubjectSource>),
}

impl std::fmt::Debug for SubjectToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubjectToken::File(path) => f.debug_tuple("File").field(path).finish(),
            SubjectToken::Env(name) => f.debug_tuple("Env").field(name).finish(),
            SubjectToken::GithubActions { audience } => f
                .debug_struct("GithubActions")
                .field("audience", audience)
                .finish(),
            SubjectToken::Source(_) => f.write_str("Source(..)"),
        }
    }
}

/// A source of subject tokens.
#[async_trait]
pub trait SubjectSource: Send + Sync {
    /// A subject token, fresh.
    async fn subject_token(&self) -> Result<SecretString, FlowError>;
}

/// The full URI of a token type named short (`access_token`, `jwt`, `id_token`, …; RFC 8693
/// §3), or the URI itself.
pub fn token_type_uri(name: &str) -> String {
    if name.contains(':') {
        name.to_owned()
    } else {
        format!("urn:ietf:params:oauth:token-type:{name}")
    }
}

/// An unattended grant on an [`OAuth2Flow`] (its token endpoint, client authentication,
/// scopes and extra token parameters).
#[derive(Debug)]
pub struct MachineFlow {
    oauth2: OAuth2Flow,
    grant: MachineGrant,
    audience: Option<String>,
    resources: Vec<String>,
}

impl MachineFlow {
    /// `grant` on `oauth2`'s token endpoint.
    pub fn new(oauth2: OAuth2Flow, grant: MachineGrant) -> Self {
        Self {
            oauth2,
            grant,
            audience: None,
            resources: Vec::new(),
        }
    }

    /// Sends `audience` with each request.
    pub fn audience(mut self, audience: Option<String>) -> Self {
        self.audience = audience;
        self
    }

    /// Sends these `resource`s (RFC 8707) with each request.
    pub fn resources(mut self, resources: Vec<String>) -> Self {
        self.resources = resources;
        self
    }

    /// The OAuth2 flow underneath (its configured client, its HTTP client).
    pub fn oauth2(&self) -> &OAuth2Flow {
        &self.oauth2
    }

    /// The grant.
    pub fn grant(&self) -> &MachineGrant {
        &self.grant
    }

    fn unattended_only(&self) -> FlowError {
        FlowError::Unsupported(
            "this flow is unattended: it obtains tokens without a login (`host token` gets one)"
                .into(),
        )
    }

    /// The subject token, read now.
    async fn subject_token(&self, subject: &SubjectToken) -> Result<SecretString, FlowError> {
        let token = match subject {
            SubjectToken::File(path) => read_subject_file(path)?,
            SubjectToken::Env(name) => {
                let value = std::env::var(name).map_err(|_| {
                    FlowError::config(format!(
                        "subject_token_env: the environment variable `{name}` is not set (or not UTF-8)"
                    ))
                })?;
                SecretString::new(value.trim().to_owned())
            }
            SubjectToken::GithubActions { audience } => {
                github_actions_token(&self.oauth2, audience.as_deref()).await?
            }
            SubjectToken::Source(source) => source.subject_token().await?,
        };
        if token.expose().is_empty() || token.expose().len() > MAX_SUBJECT_TOKEN {
            return Err(FlowError::config(
                "the subject token is empty or larger than 64 KiB",
            ));
        }
        Ok(token)
    }
}

/// A subject token file: read whole, trimmed; refused when others may write it (they could
/// put their own identity in its place).
fn read_subject_file(path: &std::path::Path) -> Result<SecretString, FlowError> {
    let unreadable = |e: std::io::Error| FlowError::InvalidConfig {
        message: format!("subject_token_file ({}): cannot read it", path.display()),
        source: Some(Box::new(e)),
    };
    let (file, meta) =
        crate::util::private_fs::open_regular(std::fs::OpenOptions::new().read(true), path, true)
            .map_err(unreadable)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o022 != 0 {
            return Err(FlowError::config(format!(
                "subject_token_file ({}): other users may write it; make it writable by its owner only",
                path.display()
            )));
        }
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    crate::util::private_fs::read_sized(&file, meta.len(), MAX_SUBJECT_TOKEN as u64, &mut bytes)
        .map_err(unreadable)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        FlowError::config(format!(
            "subject_token_file ({}): not UTF-8 text",
            path.display()
        ))
    })?;
    Ok(SecretString::new(text.trim().to_owned()))
}

/// The GitHub Actions job's OpenID Connect token: `GET $ACTIONS_ID_TOKEN_REQUEST_URL
/// &audience=…` with `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answered with
/// `{"value": "<jwt>"}`.
async fn github_actions_token(
    oauth2: &OAuth2Flow,
    audience: Option<&str>,
) -> Result<SecretString, FlowError> {
    let missing = || {
        FlowError::config(
            "subject_token_source = \"github-actions\": ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set (run inside a GitHub Actions job with `permissions: id-token: write`)",
        )
    };
    let url = std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL").map_err(|_| missing())?;
    let bearer = std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN").map_err(|_| missing())?;
    let mut url = url::Url::parse(&url).map_err(|e| FlowError::InvalidConfig {
        message: "ACTIONS_ID_TOKEN_REQUEST_URL is not a URL".into(),
        source: Some(Box::new(e)),
    })?;
    if let Some(audience) = audience {
        url.query_pairs_mut().append_pair("audience", audience);
    }
    let request = http::Request::get(url.as_str())
        .header(http::header::AUTHORIZATION, format!("Bearer {bearer}"))
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| FlowError::internal("cannot build the request", e))?;
    let response = oauth2
        .http_client()
        .send(request)
        .await
        .map_err(TokenError::from)?;
    // Refused or failing, the job's token cannot be had: said as such, not as a provider
    // outage that a still-valid token would paper over.
    if !response.status().is_success() {
        return Err(FlowError::Failed(
            format!(
                "the GitHub Actions token endpoint answered HTTP {} (is `permissions: id-token: write` set for the job?)",
                response.status().as_u16()
            )
            .into(),
        ));
    }
    let map = super::response::json_object(&response, &|_| None)?;
    match map.get("value").and_then(Value::as_str) {
        Some(value) if !value.is_empty() => Ok(SecretString::new(value.to_owned())),
        _ => Err(FlowError::Failed(
            "the GitHub Actions token endpoint answered without a `value`".into(),
        )),
    }
}

#[async_trait]
impl AuthFlow for MachineFlow {
    async fn authorize(&self, _req: AuthorizeRequest) -> Result<Authorization, FlowError> {
        Err(self.unattended_only())
    }

    async fn exchange(
        &self,
        _pending: Pending,
        _input: ExchangeInput,
    ) -> Result<Credential, FlowError> {
        Err(self.unattended_only())
    }

    fn unattended(&self) -> bool {
        true
    }

    async fn obtain(&self) -> Result<Credential, FlowError> {
        let app = self.oauth2.app_credentials();
        let separator = app.scope_separator.as_deref().unwrap_or(" ");
        let scope = app.scopes.join(separator);
        let mut params: Vec<(&str, String)> = Vec::new();
        let mut scope_in_form = !scope.is_empty();
        match &self.grant {
            MachineGrant::ClientCredentials => {
                params.push(("grant_type", "client_credentials".into()));
            }
            MachineGrant::JwtBearer(j) => {
                let now = chrono::Utc::now().timestamp();
                let mut claims = json!({
                    "iss": j.issuer,
                    "aud": j.audience.clone().unwrap_or_else(|| app.token_url.to_string()),
                    "iat": now,
                    "exp": now + ASSERTION_LIFETIME,
                    "jti": new_jti()?,
                });
                if let Some(sub) = &j.subject {
                    claims["sub"] = Value::String(sub.clone());
                }
                if j.scope_claim && !scope.is_empty() {
                    claims["scope"] = Value::String(app.scopes.join(" "));
                    scope_in_form = false;
                }
                params.push(("grant_type", JWT_BEARER_GRANT.into()));
                params.push(("assertion", j.key.sign(&claims)?));
            }
            MachineGrant::TokenExchange(t) => {
                let subject = self.subject_token(&t.subject).await?;
                params.push(("grant_type", TOKEN_EXCHANGE_GRANT.into()));
                params.push(("subject_token", subject.expose().to_owned()));
                params.push(("subject_token_type", t.subject_token_type.clone()));
                if let Some(requested) = &t.requested_token_type {
                    params.push(("requested_token_type", requested.clone()));
                }
            }
        }
        if scope_in_form {
            params.push(("scope", scope));
        }
        if let Some(audience) = &self.audience {
            params.push(("audience", audience.clone()));
        }
        for resource in &self.resources {
            params.push(("resource", resource.clone()));
        }
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let token = self
            .oauth2
            .token_request(&pairs, &app.scopes, IdTokenCheck::LENIENT)
            .await?;
        // Nothing to refresh with: renewal runs the grant again. A refresh token some
        // providers send anyway is dropped rather than kept unused.
        let mut token = token;
        token.refresh_token = None;
        Ok(Credential::OAuth2(token))
    }

    async fn refresh(&self, _credential: &Credential) -> Result<Credential, FlowError> {
        self.obtain().await
    }

    async fn revoke(&self, credential: &Credential) -> Result<bool, FlowError> {
        self.oauth2.revoke_rfc7009(credential).await
    }
}
