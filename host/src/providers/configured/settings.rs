//! A configured provider's settings: the flow names, [`ProviderSettings`] and its compiled
//! schema, the catalog's defaults under a section, and [`settings()`], which fills
//! placeholders and checks the section.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::service_account::ServiceAccount;
use crate::oauth2::{ClientAuth, TokenRequestFormat};
use crate::providers::app_credentials::ValidationError;
use crate::providers::catalog;
use crate::providers::section::ProviderSection;
use crate::util::secret::SecretString;

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
        crate::providers::schema::compiled_tests::agrees_with_the_run_time_validator::<
            ProviderSettings,
        >();
    }
}
