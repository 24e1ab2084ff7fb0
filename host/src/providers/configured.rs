//! Providers made of configuration: any `[providers.NAME]` section with `authorize_url` and
//! `token_url`, or with an OpenID Connect `issuer`, is an OAuth2 provider with the native flows
//! (browser with PKCE; `device` when a device endpoint is known), alone or on top of a
//! [`crate::providers::catalog`] entry.
//!
//! With `issuer`, discovery (OpenID Connect's, else the RFC 8414 metadata of a plain OAuth2
//! server) fills every endpoint the section does not set, and the callback must carry `iss`
//! when the provider says it sends it (RFC 9207). With OpenID Connect each `id_token` is
//! validated ([`crate::oidc`]) and its claims name the account.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::config::Config;
use crate::flow::{
    AuthFlow, Authorization, AuthorizeRequest, Credential, ExchangeInput, FlowError, Pending,
};
use crate::net::http::{HttpClient, HttpPolicy};
use crate::oauth2::assertion::{KeyFileError, SigningKey, read_private_file};
use crate::oauth2::machine::{
    JwtBearer, MachineFlow, MachineGrant, SubjectSource, SubjectToken, TokenExchange,
    token_type_uri,
};
use crate::oauth2::{
    ClientAuth, Grant, ID_TOKEN_CLAIMS, OAuth2AppCredentials, OAuth2Flow, StandardToken,
    TokenRequestFormat,
};
use crate::oidc::{IdTokenClaims, IdTokenVerifier, MetadataKind};
use crate::providers::app_credentials::ValidationError;
use crate::providers::catalog;
use crate::providers::provider::{Provider, ProviderBuilder, ProviderSource};
use crate::providers::section::ProviderSection;
use crate::util::secret::SecretString;
use crate::util::text::sanitize;

/// The browser (authorization code) flow's name.
pub const OAUTH2_FLOW: &str = "oauth2";
/// The device flow's name.
pub const DEVICE_FLOW: &str = "device";

/// The settings of a configured provider: its section, after the catalog's defaults and with
/// placeholders filled.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct ProviderSettings {
    /// The client id registered with the provider.
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// The client secret; absent for a public client (PKCE only).
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// The issuer: its metadata (OpenID Connect discovery, else RFC 8414) fills the endpoints
    /// not set here; with OpenID Connect, `id_token`s are validated.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub issuer: Option<String>,
    /// Other `iss` values the issuer's `id_token`s may carry (Google's `accounts.google.com`);
    /// only with `issuer`.
    #[serde(default)]
    pub id_token_issuers: Vec<String>,
    /// The authorization endpoint.
    #[serde(default)]
    pub authorize_url: Option<Url>,
    /// The token endpoint.
    #[serde(default)]
    pub token_url: Option<Url>,
    /// The device authorization endpoint (RFC 8628).
    #[serde(default)]
    pub device_authorization_url: Option<Url>,
    /// The revocation endpoint (RFC 7009).
    #[serde(default)]
    pub revocation_url: Option<Url>,
    /// A fixed redirect URI (the one registered with the provider): a login listens where it
    /// points (a loopback `http` URI: `127.0.0.1`, `[::1]` or `localhost`, its port and path)
    /// instead of on a free port.
    #[serde(default)]
    pub redirect_uri: Option<Url>,
    /// Scopes asked for when the login names none (`["openid"]` with an OpenID Connect issuer).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// What joins scopes in requests, when not a space.
    #[serde(default)]
    #[schemars(length(min = 1, max = 4))]
    pub scope_separator: Option<String>,
    /// Whether the authorization request uses PKCE (on unless the provider refuses it).
    #[serde(default = "yes")]
    pub pkce: bool,
    /// How the client authenticates at the token endpoint (every grant, and revocation):
    /// `basic` (HTTP Basic; an empty password without a secret), `request_body`,
    /// `private_key_jwt` (an assertion signed with `private_key_file`), `client_secret_jwt`
    /// (an assertion signed with the client secret), `tls_client_auth` or `none`; unset, Basic
    /// with a secret and the `client_id` in the body without one.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// The provider's default flow: `oauth2` (the browser's, the default), `device`, or an
    /// unattended grant with no person involved: `client_credentials`, `jwt_bearer` or
    /// `token_exchange`. With an unattended grant, `host token` obtains a token when none is
    /// stored or the stored one is due, by running the grant again.
    #[serde(default)]
    pub flow: Option<FlowKind>,
    /// The private key that signs assertions (`private_key_jwt`, `jwt_bearer`): PEM (PKCS#8,
    /// PKCS#1 or SEC1; RSA, EC P-256/P-384, Ed25519) or a JWK or JWKS JSON file, owner-only.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// The key id (`kid`) put in assertions, and the key picked from a JWKS; default the JWK's
    /// own `kid`, else the key's RFC 7638 thumbprint.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub private_key_id: Option<String>,
    /// The assertions' signing algorithm (`RS256`, `PS256`, `ES256`, `ES384`, `EdDSA`,
    /// `HS256`, …); default the key type's.
    #[serde(default)]
    #[schemars(length(min = 1, max = 10))]
    pub signing_alg: Option<String>,
    /// The `audience` parameter of client-credentials, JWT-bearer and token-exchange requests.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub audience: Option<String>,
    /// The `resource` parameter(s) of those requests (RFC 8707): absolute URIs.
    #[serde(default)]
    pub resource: Option<OneOrMany>,
    /// `jwt_bearer`: the assertion's `iss` (default the client id).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub assertion_issuer: Option<String>,
    /// `jwt_bearer`: the assertion's `sub`, when the token is for someone else (a user a
    /// service account acts for).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub assertion_subject: Option<String>,
    /// `jwt_bearer`: the assertion's `aud` (default the token endpoint URL).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub assertion_audience: Option<String>,
    /// A Google service-account JSON key (`client_email`, `private_key`, `private_key_id`,
    /// `token_uri`), owner-only: fills the JWT bearer grant's key, issuer and token endpoint.
    #[serde(default)]
    pub service_account_file: Option<PathBuf>,
    /// `tls_client_auth`: the client certificate (PEM, then its chain) presented on the
    /// connections to the provider's endpoints.
    #[serde(default)]
    pub tls_client_cert_file: Option<PathBuf>,
    /// `tls_client_auth`: its private key (PEM), owner-only.
    #[serde(default)]
    pub tls_client_key_file: Option<PathBuf>,
    /// `token_exchange`: a file holding the subject token (read at each exchange).
    #[serde(default)]
    pub subject_token_file: Option<PathBuf>,
    /// `token_exchange`: an environment variable holding the subject token.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub subject_token_env: Option<String>,
    /// `token_exchange`: another provider whose fresh access token is the subject token.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub subject_provider: Option<String>,
    /// `token_exchange`: a built-in source of the subject token: `github-actions` (the job's
    /// OpenID Connect token, asked for with `audience`).
    #[serde(default)]
    pub subject_token_source: Option<SubjectTokenSource>,
    /// `token_exchange`: the subject token's type: `access_token` (the default), `jwt`,
    /// `id_token`, `refresh_token`, or a full `urn:…` URI.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub subject_token_type: Option<String>,
    /// `token_exchange`: the `requested_token_type`, in the same forms.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub requested_token_type: Option<String>,
    /// Extra authorization parameters.
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// Extra parameters of every token request (code exchange, refresh, device polls), such
    /// as Shopify's `{ expiring = "1" }`; never one the flow sets itself.
    #[serde(default)]
    pub token_params: BTreeMap<String, String>,
    /// How token, device and revocation requests are encoded: `form` (the default) or `json`.
    #[serde(default)]
    pub token_request: TokenRequestFormat,
    /// The authorization parameter that carries the scopes, when not `scope` (Slack's
    /// `user_scope`).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub scope_param: Option<String>,
    /// The device authorization parameter that carries the scopes, when not `scope` (Twitch's
    /// `scopes`).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub device_scope_param: Option<String>,
    /// Where the token sits in the token response, as a JSON pointer (`"/authed_user"`).
    #[serde(default)]
    #[schemars(regex(pattern = "^/"))]
    pub token_pointer: Option<String>,
    /// The provider's own names for bearer tokens, accepted as `token_type` (Slack:
    /// `["bot", "user"]`).
    #[serde(default)]
    pub bearer_token_types: Vec<String>,
    /// The API's base URL (`host api`, sessions).
    #[serde(default)]
    pub api_url: Option<Url>,
    /// Where the current user is (GET with the token), for the account's name and
    /// `host status --check`; the userinfo endpoint when the issuer's discovery names one.
    #[serde(default)]
    pub identify_url: Option<Url>,
    /// The JSON pointer of the login name in `identify_url`'s answer (`"/login"`); without
    /// one, the first of `email`, `preferred_username`, `login`, `username`, `name`.
    #[serde(default)]
    #[schemars(regex(pattern = "^/"))]
    pub identify_pointer: Option<String>,
}

/// A provider's default flow (`flow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlowKind {
    /// The browser's (authorization code with PKCE).
    Oauth2,
    /// The device grant (RFC 8628).
    Device,
    /// The client credentials grant (RFC 6749 §4.4): the client's own identity.
    ClientCredentials,
    /// The JWT bearer grant (RFC 7523 §2.1): a signed assertion.
    JwtBearer,
    /// Token exchange (RFC 8693): another token traded for this provider's.
    TokenExchange,
}

impl FlowKind {
    /// The flow's name (`host run --flow NAME`).
    pub fn name(self) -> &'static str {
        match self {
            FlowKind::Oauth2 => OAUTH2_FLOW,
            FlowKind::Device => DEVICE_FLOW,
            FlowKind::ClientCredentials => "client_credentials",
            FlowKind::JwtBearer => "jwt_bearer",
            FlowKind::TokenExchange => "token_exchange",
        }
    }

    /// Whether it needs no person.
    pub fn unattended(self) -> bool {
        !matches!(self, FlowKind::Oauth2 | FlowKind::Device)
    }
}

/// One value or several.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values.
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one.clone()],
            OneOrMany::Many(many) => many.clone(),
        }
    }
}

/// A built-in source of a token exchange's subject token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SubjectTokenSource {
    /// The GitHub Actions job's OpenID Connect token (`ACTIONS_ID_TOKEN_REQUEST_URL`,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; the job needs `permissions: id-token: write`).
    GithubActions,
}

crate::providers::app_credentials::compiled_schema!(
    ProviderSettings,
    ProviderSettingsSchema,
    "schemas/configured.json"
);

fn yes() -> bool {
    true
}

/// The section over its catalog entry's defaults, when the catalog has one by its name.
pub fn with_catalog(section: ProviderSection) -> ProviderSection {
    match catalog::entry(section.provider()) {
        Some(entry) => {
            let origin =
                crate::providers::app_credentials::Origin::Catalog(section.provider().to_owned());
            section.over_defaults(entry.section_defaults(), origin)
        }
        None => section,
    }
}

/// Whether `section` describes an OAuth2 provider, by itself (endpoints or an issuer) or as a
/// catalog entry.
pub(crate) fn is_oauth2_section(section: &ProviderSection) -> bool {
    if catalog::contains(section.provider()) {
        return true;
    }
    let has = |k: &str| section.value().get(k).is_some();
    has("issuer") || has("authorize_url") || has("token_url") || has("service_account_file")
}

/// The section's settings: placeholders filled (from the section's keys of the same name, else
/// the catalog's defaults), then checked against [`ProviderSettings`]'s schema.
pub fn settings(section: &ProviderSection) -> Result<ProviderSettings, ValidationError> {
    let mut value = section.value().clone();
    let Some(map) = value.as_object_mut() else {
        return section.parse_compiled();
    };
    // A service account is its own client: its `client_email` is the client id unless one is
    // set.
    if !map.contains_key("client_id")
        && let Some(Value::String(path)) = map.get("service_account_file")
    {
        let account = ServiceAccount::read(section.provider(), std::path::Path::new(path))
            .map_err(|e| {
                section.field_error(&["service_account_file".to_owned()], e.to_string())
            })?;
        map.insert("client_id".into(), Value::String(account.client_email));
    }
    // Every `{name}` in a text setting, with the first setting that uses it.
    let mut used: BTreeMap<String, String> = BTreeMap::new();
    // Secrets are never templates: a `{` in a client secret is part of it (and a message
    // about a missing placeholder would quote a piece of it).
    for (key, v) in map.iter().filter(|(k, _)| !crate::config::is_secret(k)) {
        let texts: Vec<&str> = match v {
            Value::String(s) => vec![s.as_str()],
            Value::Object(o) => o.values().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for text in texts {
            for name in catalog::placeholders_in(text) {
                used.entry(name.to_owned()).or_insert_with(|| key.clone());
            }
        }
    }
    // A placeholder is a name of its own (`{tenant}`), never a setting (filling it would use
    // the setting up) nor a secret (which would end up in a URL).
    let settings_schema =
        <ProviderSettings as crate::providers::app_credentials::CompiledSchema>::schema()
            .get("properties");
    let mut fills = BTreeMap::new();
    for (name, used_by) in &used {
        if crate::config::is_secret(name) || settings_schema.is_some_and(|p| p.get(name).is_some())
        {
            return Err(section.field_error(
                std::slice::from_ref(used_by),
                format!(
                    "names the setting `{name}` as a placeholder; placeholders are names of their own (like `{{tenant}}`)"
                ),
            ));
        }
        let fill = match map.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(
                    section.field_error(std::slice::from_ref(name), "must be a string".to_owned())
                );
            }
            None => {
                // What goes there, from the catalog entry: read only for this message.
                let what = catalog::entry(section.provider())
                    .and_then(|e| e.placeholders.get(name).map(|p| p.description.clone()))
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                return Err(section.missing_error(
                    std::slice::from_ref(name),
                    &format!("`{{{name}}}` in {used_by} needs it{what}"),
                ));
            }
        };
        let safe = !fill.is_empty()
            && fill.len() <= 255
            && !fill
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "/?#@\\{}".contains(c));
        if !safe {
            return Err(section.field_error(
                std::slice::from_ref(name),
                "must be a plain name (no spaces, `/`, `?`, `#`, `@` or braces)".to_owned(),
            ));
        }
        fills.insert(name.clone(), fill);
    }
    for name in fills.keys() {
        map.remove(name);
    }
    let fill = |text: &str| {
        let mut out = text.to_owned();
        for (name, value) in &fills {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    };
    for (_, v) in map.iter_mut().filter(|(k, _)| !crate::config::is_secret(k)) {
        match v {
            Value::String(s) => *s = fill(s),
            Value::Object(o) => {
                for inner in o.values_mut() {
                    if let Value::String(s) = inner {
                        *s = fill(s);
                    }
                }
            }
            _ => {}
        }
    }
    let filled = section.with_value(value);
    let settings: ProviderSettings = filled.parse_compiled()?;
    // Plain http only to loopback, as every request will insist: said here, where the setting
    // is named (`host providers` shows the section invalid, not "valid" until a login fails).
    let issuer = settings.issuer.as_deref().and_then(|i| Url::parse(i).ok());
    for (field, url) in [
        ("issuer", issuer.as_ref()),
        ("authorize_url", settings.authorize_url.as_ref()),
        ("token_url", settings.token_url.as_ref()),
        (
            "device_authorization_url",
            settings.device_authorization_url.as_ref(),
        ),
        ("revocation_url", settings.revocation_url.as_ref()),
        ("identify_url", settings.identify_url.as_ref()),
        ("api_url", settings.api_url.as_ref()),
    ] {
        if let Some(url) = url
            && url.scheme() == "http"
            && !crate::net::address::is_loopback_url(url)
        {
            return Err(section.field_error(
                &[field.to_owned()],
                "is plain http to a host that is not loopback; use https".to_owned(),
            ));
        }
    }
    let unattended = settings.flow.is_some_and(FlowKind::unattended);
    if unattended {
        if settings.issuer.is_none()
            && settings.token_url.is_none()
            && settings.service_account_file.is_none()
        {
            return Err(section.missing_error(
                &["token_url".to_owned()],
                "an unattended flow needs token_url, an issuer or a service_account_file",
            ));
        }
    } else if settings.issuer.is_none() {
        for (field, set) in [
            ("authorize_url", settings.authorize_url.is_some()),
            ("token_url", settings.token_url.is_some()),
        ] {
            if !set {
                return Err(section.missing_error(
                    &[field.to_owned()],
                    "an OAuth2 provider needs authorize_url and token_url, or an issuer",
                ));
            }
        }
    }
    Ok(settings)
}

/// The provider `name` from its section (with its catalog entry's defaults, which the
/// configuration merged in).
pub(crate) fn builder(
    config: &Config,
    name: &str,
    tokens: Option<Arc<dyn ProviderTokens>>,
) -> ProviderBuilder {
    let section = with_catalog(config.provider_section(name));
    let kind = section
        .value()
        .get("flow")
        .and_then(|v| serde_json::from_value::<FlowKind>(v.clone()).ok());
    let in_catalog = catalog::contains(name);
    let device = section.value().get("device_authorization_url").is_some()
        || section.value().get("issuer").is_some();
    let policy = config.http_policy();
    let cache = config.data_dir().join("cache").join("oidc");
    // A provider made for machines has no browser flow unless it names where to send one.
    let browser = !kind.is_some_and(FlowKind::unattended)
        || section.value().get("authorize_url").is_some()
        || section.value().get("issuer").is_some();
    let mut builder = Provider::builder(name, section)
        .source(if in_catalog {
            ProviderSource::Catalog
        } else {
            ProviderSource::Configured
        })
        .checker(|section| settings(section).map(drop));
    if browser {
        builder = builder.flow(OAUTH2_FLOW, {
            let policy = policy.clone();
            let cache = cache.clone();
            move |ctx| {
                let policy = policy.clone();
                let cache = cache.clone();
                async move { ConfiguredFlow::build(ctx.section(), policy, Some(cache), false).await }
            }
        });
    }
    if device {
        builder = builder.flow(DEVICE_FLOW, {
            let policy = policy.clone();
            let cache = cache.clone();
            move |ctx| {
                let policy = policy.clone();
                let cache = cache.clone();
                async move { ConfiguredFlow::build(ctx.section(), policy, Some(cache), true).await }
            }
        });
    }
    match kind {
        Some(kind) if kind.unattended() => builder
            .flow(kind.name(), move |ctx| {
                let policy = policy.clone();
                let cache = cache.clone();
                let tokens = tokens.clone();
                async move { build_machine(ctx.section(), policy, Some(cache), kind, tokens).await }
            })
            .default_flow(kind.name()),
        Some(FlowKind::Device) if device => builder.default_flow(DEVICE_FLOW),
        _ => builder.default_flow(OAUTH2_FLOW),
    }
}

/// Another provider's fresh access token, for a token exchange's `subject_provider`: what
/// the [`App`](crate::app::App) hands its configured providers.
#[crate::flow::async_trait]
pub trait ProviderTokens: Send + Sync {
    /// `provider`'s access token, renewed first when due.
    async fn access_token(&self, provider: &str) -> Result<SecretString, FlowError>;
}

/// `subject_provider`'s token, through [`ProviderTokens`].
struct FromProvider {
    tokens: Arc<dyn ProviderTokens>,
    provider: String,
}

#[crate::flow::async_trait]
impl SubjectSource for FromProvider {
    async fn subject_token(&self) -> Result<SecretString, FlowError> {
        self.tokens.access_token(&self.provider).await
    }
}

/// A Google service-account JSON key: who it is, its key, where it gets tokens.
struct ServiceAccount {
    client_email: String,
    private_key: SecretString,
    private_key_id: Option<String>,
    token_uri: Option<Url>,
}

impl ServiceAccount {
    /// Reads it (owner-only, like every key file), naming the setting in errors.
    fn read(provider: &str, path: &std::path::Path) -> Result<Self, KeyFileError> {
        let setting = format!("providers.{provider}.service_account_file");
        let bytes = read_private_file(&setting, path)?;
        let bad = |reason: &str| KeyFileError::Malformed {
            setting: setting.clone(),
            path: Some(path.to_owned()),
            reason: reason.to_owned(),
        };
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|_| bad("is not a service-account JSON key (not JSON)"))?;
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let client_email =
            text("client_email").ok_or_else(|| bad("is a JSON file without `client_email`"))?;
        let private_key = SecretString::new(
            text("private_key").ok_or_else(|| bad("is a JSON file without `private_key`"))?,
        );
        let token_uri = match text("token_uri") {
            Some(uri) => {
                Some(Url::parse(&uri).map_err(|_| bad("has a `token_uri` that is not a URL"))?)
            }
            None => None,
        };
        Ok(Self {
            client_email,
            private_key,
            private_key_id: text("private_key_id"),
            token_uri,
        })
    }
}

/// The key that signs client assertions, for `client_auth = "private_key_jwt"` (the
/// `private_key_file`, else the service account's key) or `"client_secret_jwt"` (the secret).
fn client_key(
    name: &str,
    s: &ProviderSettings,
    account: Option<&ServiceAccount>,
) -> Result<Option<Arc<SigningKey>>, FlowError> {
    match s.client_auth {
        Some(ClientAuth::PrivateKeyJwt) => Ok(Some(Arc::new(private_key(name, s, account)?))),
        Some(ClientAuth::ClientSecretJwt) => {
            let secret = s.client_secret.as_ref().ok_or_else(|| {
                FlowError::config(format!(
                    "providers.{name}: client_auth = \"client_secret_jwt\" needs client_secret"
                ))
            })?;
            let key = SigningKey::hmac(secret, s.signing_alg.as_deref())
                .map_err(|e| FlowError::config(format!("providers.{name}: {e}")))?;
            Ok(Some(Arc::new(key)))
        }
        _ => Ok(None),
    }
}

/// The private key of `private_key_file`, else of the service account.
fn private_key(
    name: &str,
    s: &ProviderSettings,
    account: Option<&ServiceAccount>,
) -> Result<SigningKey, FlowError> {
    let kid = s.private_key_id.as_deref();
    let alg = s.signing_alg.as_deref();
    if let Some(path) = &s.private_key_file {
        return Ok(SigningKey::from_file(
            &format!("providers.{name}.private_key_file"),
            path,
            kid,
            alg,
        )?);
    }
    if let Some(account) = account {
        let kid = kid.or(account.private_key_id.as_deref());
        return SigningKey::from_bytes(account.private_key.expose().as_bytes(), kid, alg).map_err(
            |reason| {
                KeyFileError::Malformed {
                    setting: format!("providers.{name}.service_account_file"),
                    path: s.service_account_file.clone(),
                    reason: format!("its `private_key` {reason}"),
                }
                .into()
            },
        );
    }
    Err(FlowError::config(format!(
        "providers.{name}: signing needs private_key_file (or service_account_file)"
    )))
}

/// The HTTP client of a provider's endpoints: with `client_auth = "tls_client_auth"`, one that
/// presents `tls_client_cert_file` and `tls_client_key_file` (the key owner-only, as every key
/// file), and only for this provider's flows.
fn endpoint_http(
    name: &str,
    s: &ProviderSettings,
    policy: HttpPolicy,
) -> Result<HttpClient, FlowError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let setup = |e| FlowError::InvalidConfig {
        message: "cannot set up the HTTP client".into(),
        source: Some(Box::new(e)),
    };
    if s.client_auth != Some(ClientAuth::TlsClientAuth) {
        return HttpClient::new(policy).map_err(setup);
    }
    let (Some(cert_file), Some(key_file)) = (&s.tls_client_cert_file, &s.tls_client_key_file)
    else {
        return Err(FlowError::config(format!(
            "providers.{name}: client_auth = \"tls_client_auth\" needs tls_client_cert_file and tls_client_key_file"
        )));
    };
    let bad = |setting: &str, path: &std::path::Path, reason: &str| -> FlowError {
        KeyFileError::Malformed {
            setting: format!("providers.{name}.{setting}"),
            path: Some(path.to_owned()),
            reason: reason.to_owned(),
        }
        .into()
    };
    let pem = std::fs::read(cert_file).map_err(|source| {
        FlowError::from(KeyFileError::Io {
            setting: format!("providers.{name}.tls_client_cert_file"),
            path: cert_file.clone(),
            source,
        })
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("tls_client_cert_file", cert_file, "is not PEM certificates"))?;
    if certs.is_empty() {
        return Err(bad(
            "tls_client_cert_file",
            cert_file,
            "holds no certificate",
        ));
    }
    let key_pem = read_private_file(&format!("providers.{name}.tls_client_key_file"), key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| bad("tls_client_key_file", key_file, "holds no PEM private key"))?;
    HttpClient::with_client_certificate(policy, certs, key).map_err(|e| match e {
        crate::net::http::HttpError::Tls(_) => bad(
            "tls_client_key_file",
            key_file,
            "does not fit the certificate, or is of a type TLS cannot use",
        ),
        e => setup(e),
    })
}

/// An unattended flow of a configured provider.
async fn build_machine(
    section: &ProviderSection,
    policy: HttpPolicy,
    cache_dir: Option<PathBuf>,
    kind: FlowKind,
    tokens: Option<Arc<dyn ProviderTokens>>,
) -> Result<MachineFlow, FlowError> {
    let name = section.provider();
    let s = settings(section)?;
    let http = endpoint_http(name, &s, policy)?;
    let account = match &s.service_account_file {
        Some(path) => Some(ServiceAccount::read(name, path)?),
        None => None,
    };
    let mut token_url = s.token_url.clone();
    let mut revocation_url = s.revocation_url.clone();
    if let Some(uri) = account.as_ref().and_then(|a| a.token_uri.clone()) {
        token_url.get_or_insert(uri);
    }
    if let Some(issuer) = &s.issuer {
        let meta = crate::oidc::discover(issuer, &http, cache_dir.as_deref())
            .await
            .map_err(|e| e.into_flow_error(name))?;
        token_url.get_or_insert(meta.token_endpoint);
        revocation_url = revocation_url.or(meta.revocation_endpoint);
    }
    let token_url = token_url.ok_or_else(|| {
        FlowError::config(format!(
            "providers.{name} needs token_url, an issuer or a service_account_file"
        ))
    })?;
    for (field, url) in [
        ("token_url", Some(&token_url)),
        ("revocation_url", revocation_url.as_ref()),
    ] {
        if let Some(url) = url {
            crate::net::http::require_secure(url).map_err(|e| FlowError::InvalidConfig {
                message: format!("providers.{name}.{field}"),
                source: Some(Box::new(e)),
            })?;
        }
    }
    // No authorization endpoint: nobody is sent anywhere. The token endpoint stands in.
    let mut app = OAuth2AppCredentials::new(s.client_id.clone(), token_url.clone(), token_url);
    app.client_secret = s.client_secret.clone();
    app.revocation_url = revocation_url;
    app.scopes = s.scopes.clone();
    app.client_auth = s.client_auth;
    app.token_params = s.token_params.clone();
    app.token_request = s.token_request;
    app.scope_separator = s.scope_separator.clone();
    app.token_pointer = s.token_pointer.clone();
    app.bearer_token_types = s.bearer_token_types.clone();
    app.client_key = client_key(name, &s, account.as_ref())?;
    // A JWT bearer grant or a token exchange needs no client authentication: without a
    // secret or a `client_auth`, none is sent, not even the client id.
    app.anonymous =
        kind != FlowKind::ClientCredentials && s.client_auth.is_none() && s.client_secret.is_none();
    let oauth2 = OAuth2Flow::with_class(name, app, Default::default(), http)?;
    let grant = match kind {
        FlowKind::JwtBearer => {
            let key = Arc::new(private_key(name, &s, account.as_ref())?);
            let issuer = s
                .assertion_issuer
                .clone()
                .or_else(|| account.as_ref().map(|a| a.client_email.clone()))
                .unwrap_or_else(|| s.client_id.clone());
            let mut bearer = JwtBearer::new(key, issuer);
            bearer.subject = s.assertion_subject.clone();
            bearer.audience = s.assertion_audience.clone();
            bearer.scope_claim = account.is_some();
            MachineGrant::JwtBearer(bearer)
        }
        FlowKind::TokenExchange => {
            let mut sources = Vec::new();
            if let Some(path) = &s.subject_token_file {
                sources.push(SubjectToken::File(path.clone()));
            }
            if let Some(var) = &s.subject_token_env {
                sources.push(SubjectToken::Env(var.clone()));
            }
            if let Some(provider) = &s.subject_provider {
                if provider == name {
                    return Err(FlowError::config(format!(
                        "providers.{name}.subject_provider names the provider itself"
                    )));
                }
                let tokens = tokens.clone().ok_or_else(|| {
                    FlowError::config(format!(
                        "providers.{name}.subject_provider: no other provider can be reached from here"
                    ))
                })?;
                sources.push(SubjectToken::Source(Arc::new(FromProvider {
                    tokens,
                    provider: provider.clone(),
                })));
            }
            if let Some(SubjectTokenSource::GithubActions) = s.subject_token_source {
                sources.push(SubjectToken::GithubActions {
                    audience: s.audience.clone(),
                });
            }
            let github = s.subject_token_source.is_some();
            let subject = match sources.len() {
                1 => sources.pop().expect("one"),
                0 => {
                    return Err(FlowError::config(format!(
                        "providers.{name}: token_exchange needs one of subject_token_file, subject_token_env, subject_provider or subject_token_source"
                    )));
                }
                _ => {
                    return Err(FlowError::config(format!(
                        "providers.{name}: set only one of subject_token_file, subject_token_env, subject_provider and subject_token_source"
                    )));
                }
            };
            let default_type = if github { "jwt" } else { "access_token" };
            MachineGrant::TokenExchange(TokenExchange {
                subject,
                subject_token_type: token_type_uri(
                    s.subject_token_type.as_deref().unwrap_or(default_type),
                ),
                requested_token_type: s.requested_token_type.as_deref().map(token_type_uri),
            })
        }
        _ => MachineGrant::ClientCredentials,
    };
    let resources = s
        .resource
        .as_ref()
        .map(OneOrMany::values)
        .unwrap_or_default();
    for resource in &resources {
        let ok = Url::parse(resource).is_ok_and(|u| u.fragment().is_none());
        if !ok {
            return Err(FlowError::config(format!(
                "providers.{name}.resource: `{}` is not an absolute URI without a fragment (RFC 8707)",
                sanitize(resource, 100)
            )));
        }
    }
    Ok(MachineFlow::new(oauth2, grant)
        .audience(s.audience.clone())
        .resources(resources))
}

/// A configured provider's flow: [`OAuth2Flow`] (or its device grant) with the provider's
/// endpoints and quirks, `id_token` validation with an issuer, and the identify endpoint.
#[derive(Debug)]
pub struct ConfiguredFlow {
    grant: Grant<StandardToken>,
    identify: Option<(Url, Option<String>)>,
    api_url: Option<Url>,
}

impl ConfiguredFlow {
    /// Builds the flow from a provider section: settings checked, discovery run (and cached
    /// under `cache_dir`) when there is an issuer.
    pub async fn build(
        section: &ProviderSection,
        policy: HttpPolicy,
        cache_dir: Option<PathBuf>,
        device: bool,
    ) -> Result<Self, FlowError> {
        let name = section.provider();
        let s = settings(section)?;
        let http = endpoint_http(name, &s, policy)?;
        let mut verifier = None;
        let mut userinfo = None;
        let mut require_iss = false;
        let mut openid = false;
        let (mut authorize_url, mut token_url) = (s.authorize_url.clone(), s.token_url.clone());
        let (mut device_url, mut revocation_url) =
            (s.device_authorization_url.clone(), s.revocation_url.clone());
        if let Some(issuer) = &s.issuer {
            let meta = crate::oidc::discover(issuer, &http, cache_dir.as_deref())
                .await
                .map_err(|e| e.into_flow_error(name))?;
            authorize_url.get_or_insert(meta.authorization_endpoint);
            token_url.get_or_insert(meta.token_endpoint);
            device_url = device_url.or(meta.device_authorization_endpoint);
            revocation_url = revocation_url.or(meta.revocation_endpoint);
            userinfo = meta.userinfo_endpoint;
            require_iss = meta.authorization_response_iss_parameter_supported;
            // An OpenID Connect provider's id_tokens are validated; a plain OAuth2 server
            // (RFC 8414 metadata) issues none, and nothing it sends is taken as one.
            if let (MetadataKind::OpenIdConnect, Some(jwks_uri)) = (meta.kind, meta.jwks_uri) {
                openid = true;
                verifier = Some(Arc::new(
                    IdTokenVerifier::new(
                        issuer.clone(),
                        s.client_id.clone(),
                        jwks_uri,
                        http.clone(),
                    )
                    .also_issued_as(s.id_token_issuers.clone()),
                ));
            } else if s.scopes.iter().any(|scope| scope == "openid")
                || !s.id_token_issuers.is_empty()
            {
                // The section expects OpenID Connect: its id_tokens are not to go unchecked
                // because the discovery document is missing (a misconfigured proxy's 404).
                return Err(FlowError::config(format!(
                    "providers.{name} asks for OpenID Connect (`openid` in scopes, or id_token_issuers), but the issuer publishes only OAuth2 metadata (RFC 8414), no OpenID Connect discovery document"
                )));
            } else {
                tracing::debug!(
                    "providers.{name}: the issuer is a plain OAuth2 server (RFC 8414 metadata)"
                );
            }
        }
        let (Some(authorize_url), Some(token_url)) = (authorize_url, token_url) else {
            return Err(FlowError::config(format!(
                "providers.{name} needs authorize_url and token_url, or an issuer"
            )));
        };
        let mut app = OAuth2AppCredentials::new(s.client_id.clone(), authorize_url, token_url);
        app.client_secret = s.client_secret.clone();
        app.device_authorization_url = device_url;
        app.revocation_url = revocation_url;
        app.redirect_uri = s.redirect_uri.clone();
        app.scopes = if s.scopes.is_empty() && openid {
            vec!["openid".to_owned()]
        } else {
            s.scopes.clone()
        };
        app.client_auth = s.client_auth;
        let account = match &s.service_account_file {
            Some(path) => Some(ServiceAccount::read(name, path)?),
            None => None,
        };
        app.client_key = client_key(name, &s, account.as_ref())?;
        app.authorize_params = s.authorize_params.clone();
        app.token_params = s.token_params.clone();
        app.token_request = s.token_request;
        app.scope_param = s.scope_param.clone();
        app.device_scope_param = s.device_scope_param.clone();
        app.issuer = s.issuer.clone();
        app.require_iss = require_iss;
        app.pkce = s.pkce;
        app.scope_separator = s.scope_separator.clone();
        app.token_pointer = s.token_pointer.clone();
        app.bearer_token_types = s.bearer_token_types.clone();
        for (field, url) in [("api_url", &s.api_url), ("identify_url", &s.identify_url)] {
            if let Some(url) = url {
                crate::net::http::require_secure(url).map_err(|e| FlowError::InvalidConfig {
                    message: format!("providers.{name}.{field}"),
                    source: Some(Box::new(e)),
                })?;
            }
        }
        let mut flow = OAuth2Flow::with_class(name, app, Default::default(), http)?;
        if let Some(verifier) = verifier {
            flow = flow.with_id_token_verifier(verifier);
        }
        let grant = Grant::new(flow, device)?;
        let identify = s
            .identify_url
            .clone()
            .map(|u| (u, s.identify_pointer.clone()))
            .or_else(|| userinfo.map(|u| (u, None)));
        Ok(Self {
            grant,
            identify,
            api_url: s.api_url,
        })
    }

    /// The OAuth2 flow underneath.
    pub fn oauth2(&self) -> &OAuth2Flow {
        self.grant.oauth2()
    }

    /// The API's base URL, when configured.
    pub fn api_url(&self) -> Option<&Url> {
        self.api_url.as_ref()
    }

    fn flow(&self) -> &dyn AuthFlow {
        self.grant.flow()
    }
}

/// The claims of the validated `id_token` a credential carries.
pub fn id_token_claims(credential: &Credential) -> Option<IdTokenClaims> {
    let claims = credential.as_oauth2()?.extra.0.get(ID_TOKEN_CLAIMS)?;
    serde_json::from_value(claims.clone()).ok()
}

#[async_trait::async_trait]
impl AuthFlow for ConfiguredFlow {
    async fn authorize(&self, req: AuthorizeRequest) -> Result<Authorization, FlowError> {
        self.flow().authorize(req).await
    }

    fn redirect_uri(&self) -> Option<url::Url> {
        self.flow().redirect_uri()
    }

    async fn exchange(
        &self,
        pending: Pending,
        input: ExchangeInput,
    ) -> Result<Credential, FlowError> {
        self.flow().exchange(pending, input).await
    }

    async fn refresh(&self, credential: &Credential) -> Result<Credential, FlowError> {
        self.oauth2().refresh(credential).await
    }

    async fn revoke(&self, credential: &Credential) -> Result<bool, FlowError> {
        self.oauth2().revoke_rfc7009(credential).await
    }

    /// The validated `id_token`'s email, login name, name or subject; else the identify
    /// endpoint's answer (the caller bounds the wait).
    async fn identify(&self, credential: &Credential) -> Option<String> {
        if let Some(claims) = id_token_claims(credential) {
            return Some(claims.label());
        }
        self.verify(credential).await.ok().flatten()
    }

    /// A GET of the identify endpoint with the token: 2xx is valid (with the login name),
    /// 401 is refused.
    async fn verify(&self, credential: &Credential) -> Result<Option<String>, FlowError> {
        let Some((url, pointer)) = &self.identify else {
            return Err(FlowError::Unsupported(
                "the provider has no identify_url (nor a userinfo endpoint) to check a credential with".into(),
            ));
        };
        let user = self
            .oauth2()
            .get_as_user(url.as_str(), credential, "application/json")
            .await?;
        let found = match pointer {
            Some(p) => user.pointer(p),
            None => [
                "/email",
                "/preferred_username",
                "/login",
                "/username",
                "/name",
            ]
            .iter()
            .find_map(|p| user.pointer(p).filter(|v| v.is_string())),
        };
        Ok(found
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .map(|s| sanitize(&s, 100)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema file the compiled validator is generated from is what schemars makes of the
    /// type now (`HOST_WRITE_SCHEMAS=1 cargo test -p host schema_file` writes it again).
    #[test]
    fn the_compiled_schema_file_is_the_types_schema() {
        let stale = crate::providers::app_credentials::stale_schema_file::<ProviderSettings>(
            "schemas/configured.json",
        );
        assert!(stale.is_none(), "{stale:?}");
    }

    #[test]
    fn the_compiled_validator_finds_what_the_run_time_one_finds() {
        crate::providers::section::compiled_tests::agrees_with_the_run_time_validator::<
            ProviderSettings,
        >();
    }
}
