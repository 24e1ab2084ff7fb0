//! The values a flow works with: friendly Rust types over the WIT ones.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

use crate::__private::wit;

/// What the host asks `authorize` for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// Where the provider should send the user back (the host's loopback listener).
    pub redirect_uri: Option<String>,
    /// Scopes asked for; empty means "your defaults".
    pub scopes: Vec<String>,
}

/// A field the user fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name the answer comes back under.
    pub name: String,
    /// What the user is shown.
    pub label: String,
    /// Read without echo and never printed.
    pub secret: bool,
}

impl Field {
    /// A plain field.
    pub fn text(name: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            secret: false,
        }
    }

    /// A secret field (an API key, a password).
    pub fn secret(name: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            secret: true,
        }
    }
}

/// A device authorization (RFC 8628) for the user to complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// The code the user types.
    pub user_code: String,
    /// Where they type it.
    pub verification_uri: String,
    /// A URL that already carries the code.
    pub verification_uri_complete: Option<String>,
    /// Seconds between polls.
    pub interval_secs: u64,
    /// Seconds until the code expires.
    pub expires_in_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Interaction {
    Redirect(String),
    DeviceCode(DeviceCode),
    Prompt(Vec<Field>),
}

/// What `authorize` returns: what the user must do, and the state `exchange` will need.
///
/// The pending state may hold secrets (a PKCE verifier, a device code): it is read through
/// [`Authorization::pending`], redacted in `Debug` and zeroed when dropped.
#[derive(Clone)]
pub struct Authorization {
    interaction: Interaction,
    pending: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("interaction", &self.interaction)
            .field(
                "pending",
                &format_args!("[redacted; {} bytes]", self.pending.len()),
            )
            .finish()
    }
}

impl Authorization {
    /// Send the user's browser to `url`.
    pub fn redirect(url: impl Into<String>) -> Self {
        Self {
            interaction: Interaction::Redirect(url.into()),
            pending: Zeroizing::default(),
        }
    }

    /// Ask the user to fill these fields.
    pub fn prompt(fields: impl IntoIterator<Item = Field>) -> Self {
        Self {
            interaction: Interaction::Prompt(fields.into_iter().collect()),
            pending: Zeroizing::default(),
        }
    }

    /// Ask the user to enter a device code.
    pub fn device_code(code: DeviceCode) -> Self {
        Self {
            interaction: Interaction::DeviceCode(code),
            pending: Zeroizing::default(),
        }
    }

    /// Attaches state for `exchange`, serialized as JSON ([`Pending::decode`] reads it back).
    pub fn with_pending<T: Serialize>(mut self, state: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(state).map_err(|e| Error::internal(e.to_string()))?;
        self.pending = Zeroizing::new(bytes);
        Ok(self)
    }

    /// The state handed back to `exchange` as [`Pending`] (empty when none was attached).
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }
}

impl From<Authorization> for wit::Authorization {
    fn from(a: Authorization) -> Self {
        let interaction = match a.interaction {
            Interaction::Redirect(url) => wit::Interaction::Redirect(url),
            Interaction::DeviceCode(d) => wit::Interaction::DeviceCode(wit::DeviceCode {
                user_code: d.user_code,
                verification_uri: d.verification_uri,
                verification_uri_complete: d.verification_uri_complete,
                interval_secs: d.interval_secs,
                expires_in_secs: d.expires_in_secs,
            }),
            Interaction::Prompt(fields) => wit::Interaction::Prompt(
                fields
                    .into_iter()
                    .map(|f| wit::PromptField {
                        name: f.name,
                        label: f.label,
                        secret: f.secret,
                    })
                    .collect(),
            ),
        };
        wit::Authorization {
            interaction,
            // The WIT record owns a plain list; our copy is zeroed as `a` drops.
            pending: a.pending.to_vec(),
        }
    }
}

/// The state `authorize` attached, handed back to `exchange`: redacted in `Debug`, zeroed when
/// dropped.
#[derive(Clone, Default)]
pub struct Pending(Zeroizing<Vec<u8>>);

impl Pending {
    /// Pending state from raw bytes (for tests; the host hands the real one in).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Reads back what [`Authorization::with_pending`] stored.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.0)
            .map_err(|_| Error::invalid_input("the pending login state cannot be read"))
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pending([redacted; {} bytes])", self.0.len())
    }
}

/// What came back from the user: callback query parameters or prompt answers, in order,
/// duplicates kept. Answers can be secrets (an API key, a code): `Debug` shows the names only,
/// and the values are zeroed when dropped.
#[derive(Clone, Default)]
pub struct Input(Vec<(String, String)>);

impl Drop for Input {
    fn drop(&mut self) {
        for (name, value) in &mut self.0 {
            name.zeroize();
            value.zeroize();
        }
    }
}

impl Input {
    /// Input from pairs (for tests).
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The single value of `name`: `None` when absent; an error when given more than once.
    pub fn get(&self, name: &str) -> Result<Option<&str>> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => Err(Error::invalid_input(format!(
                "`{name}` was given more than once"
            ))),
            (v, _) => Ok(v),
        }
    }

    /// The single, non-empty value of `name`, or an error saying it is missing.
    pub fn require(&self, name: &str) -> Result<&str> {
        match self.get(name)? {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(Error::invalid_input(format!("`{name}` is missing"))),
        }
    }

    /// All pairs.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Input").field("names", &names).finish()
    }
}

/// An OAuth2 token. The access and refresh tokens are read through [`Token::access_token`]
/// and [`Token::refresh_token`]; they are redacted in `Debug` and zeroed when dropped.
#[derive(Clone)]
pub struct Token {
    pub(crate) access_token: Zeroizing<String>,
    pub(crate) refresh_token: Option<Zeroizing<String>>,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at: Option<i64>,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// Provider-specific fields kept with the token (handed back on refresh).
    pub extra: Map<String, Value>,
}

impl Token {
    /// A bearer token with nothing else.
    pub fn bearer(access_token: impl Into<String>) -> Self {
        Self {
            access_token: Zeroizing::new(access_token.into()),
            refresh_token: None,
            expires_at: None,
            scopes: Vec::new(),
            extra: Map::new(),
        }
    }

    /// The access token.
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The refresh token, if any.
    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref().map(String::as_str)
    }

    /// The same token with this refresh token.
    pub fn with_refresh_token(mut self, refresh_token: Option<String>) -> Self {
        self.refresh_token = refresh_token.map(Zeroizing::new);
        self
    }

    /// The extras read as your own type.
    pub fn extra_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(Value::Object(self.extra.clone()))
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// Stores your own typed extras (merged over the existing ones).
    pub fn with_extra<T: Serialize>(mut self, extra: &T) -> Result<Self> {
        match serde_json::to_value(extra).map_err(|e| Error::internal(e.to_string()))? {
            Value::Object(map) => self.extra.extend(map),
            _ => return Err(Error::internal("token extras must serialize to an object")),
        }
        Ok(self)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A credential.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credential {
    /// An OAuth2 token.
    OAuth2(Token),
    /// An API key.
    ApiKey(ApiKey),
    /// A user name and password.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
}

/// An API key: redacted in `Debug`, zeroed when dropped, read through [`ApiKey::expose`].
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(Zeroizing::new(key.into()))
    }

    /// The key.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A secret string: redacted in `Debug`, zeroed when dropped, read through
/// [`Secret::expose`].
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Credential {
    /// An API-key credential.
    pub fn api_key(key: impl Into<String>) -> Self {
        Credential::ApiKey(ApiKey::new(key))
    }

    /// The OAuth2 token, if this is one.
    pub fn into_token(self) -> Result<Token> {
        match self {
            Credential::OAuth2(t) => Ok(t),
            _ => Err(Error::unsupported("not an OAuth2 token")),
        }
    }
}

impl From<Credential> for wit::Credential {
    fn from(c: Credential) -> Self {
        match c {
            Credential::OAuth2(t) => wit::Credential::Oauth2(wit::Oauth2Token {
                access_token: t.access_token().to_owned(),
                token_type: "bearer".into(),
                refresh_token: t.refresh_token().map(str::to_owned),
                expires_at: t.expires_at,
                scopes: t.scopes,
                extra_json: Value::Object(t.extra).to_string(),
            }),
            Credential::ApiKey(k) => wit::Credential::ApiKey(k.expose().to_owned()),
            Credential::Basic { username, password } => wit::Credential::Basic(wit::BasicAuth {
                username,
                password: password.expose().to_owned(),
            }),
        }
    }
}

impl From<wit::Credential> for Credential {
    fn from(c: wit::Credential) -> Self {
        match c {
            wit::Credential::Oauth2(t) => Credential::OAuth2(Token {
                access_token: Zeroizing::new(t.access_token),
                refresh_token: t.refresh_token.map(Zeroizing::new),
                expires_at: t.expires_at,
                scopes: t.scopes,
                extra: match serde_json::from_str(&t.extra_json) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                },
            }),
            wit::Credential::ApiKey(k) => Credential::ApiKey(ApiKey::new(k)),
            wit::Credential::Basic(b) => Credential::Basic {
                username: b.username,
                password: Secret::new(b.password),
            },
        }
    }
}

/// How the credential goes on API requests (`host api`, sessions, `host token --header`),
/// declared with [`register!`](crate::register). Texts may be `{field}`: the value of that
/// app-credentials field (or its schema default). The user's configuration may override it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Binding {
    /// `Authorization: Bearer <token or key>`.
    Bearer,
    /// `Authorization: Basic …`, from a basic credential.
    Basic,
    /// A header carrying the secret after a prefix.
    Header {
        /// The header's name.
        name: String,
        /// What goes before the secret.
        prefix: String,
    },
    /// A query parameter carrying the secret.
    Query(String),
}

impl Binding {
    /// A header binding.
    pub fn header(name: impl Into<String>, prefix: impl Into<String>) -> Self {
        Binding::Header {
            name: name.into(),
            prefix: prefix.into(),
        }
    }
}

impl From<Binding> for wit::Binding {
    fn from(b: Binding) -> Self {
        match b {
            Binding::Bearer => wit::Binding::Bearer,
            Binding::Basic => wit::Binding::Basic,
            Binding::Header { name, prefix } => {
                wit::Binding::Header(wit::HeaderBinding { name, prefix })
            }
            Binding::Query(q) => wit::Binding::Query(q),
        }
    }
}

/// A flow's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a flow call failed; the host shows it to the user, so say what to do.
///
/// The host acts on the kind: [`Error::Network`] is retried later where the host polls (the
/// device flow backs off and polls again), [`Error::Protocol`] and the others stop;
/// [`Error::Provider`] with `invalid_grant` on a refresh asks the user to log in again.
///
/// The rule the SDK's `http` and `oauth2` helpers follow, and yours should:
///
/// | what happened | kind | WIT `flow-error` |
/// | --- | --- | --- |
/// | no answer in time, the connection failed ([`HttpError::Timeout`], [`HttpError::Connect`]) | [`Error::Network`] | `network` |
/// | HTTP 5xx or 429 without an OAuth2 error body ([`Error::for_status`]) | [`Error::Network`] | `network` |
/// | an OAuth2 error body (`{"error": …}`, Slack's `{"ok": false, …}`), whatever the status | [`Error::Provider`] with its code | `provider` |
/// | a redirect (3xx; never followed), a body that is not the expected JSON, a missing or malformed field in a token response, another 4xx | [`Error::Protocol`] | `internal` (`protocol: …`) |
/// | a request the host refused, an invalid URL, an oversized answer ([`HttpError::Denied`], [`HttpError::InvalidUrl`], [`HttpError::TooLarge`]) | [`Error::Protocol`] | `internal` (`protocol: …`) |
///
/// Only what may pass by itself is [`Error::Network`]: the same request again gives the same
/// protocol error, so retrying it until the device code expires would only hide it.
///
/// [`HttpError::Timeout`]: crate::http::HttpError::Timeout
/// [`HttpError::Connect`]: crate::http::HttpError::Connect
/// [`HttpError::Denied`]: crate::http::HttpError::Denied
/// [`HttpError::InvalidUrl`]: crate::http::HttpError::InvalidUrl
/// [`HttpError::TooLarge`]: crate::http::HttpError::TooLarge
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The app credentials are unusable in a way their schema cannot express.
    InvalidAppCredentials(String),
    /// The callback or the answers are not acceptable; a host waiting for a redirect keeps
    /// waiting for the right one.
    InvalidInput(String),
    /// The user refused.
    AccessDenied(Option<String>),
    /// The provider answered with an OAuth2 error.
    Provider {
        /// `invalid_grant`, … (an `invalid_grant` on refresh means "log in again").
        code: String,
        /// The provider's explanation.
        description: Option<String>,
        /// The HTTP status (0 when not from HTTP).
        status: u16,
    },
    /// A request failed in a way that may pass: the connection failed or timed out, or the
    /// server answered 5xx or 429. The host backs off and tries again where it polls (the
    /// device flow).
    Network(String),
    /// The answer is unusable: a redirect, a body that is not the expected JSON, a missing or
    /// malformed field, a 4xx without an OAuth2 error. Trying again gives the same answer, so
    /// the host stops.
    Protocol(String),
    /// Not supported by this flow.
    Unsupported(String),
    /// Anything else.
    Internal(String),
}

impl Error {
    /// [`Error::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }
    /// [`Error::Network`].
    pub fn network(message: impl Into<String>) -> Self {
        Error::Network(message.into())
    }
    /// [`Error::Protocol`].
    pub fn protocol(message: impl Into<String>) -> Self {
        Error::Protocol(message.into())
    }
    /// [`Error::Network`] for a 5xx or 429, [`Error::Protocol`] for any other failing status.
    pub fn for_status(status: u16, message: impl Into<String>) -> Self {
        if status >= 500 || status == 429 {
            Error::Network(message.into())
        } else {
            Error::Protocol(message.into())
        }
    }
    /// [`Error::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::Unsupported(message.into())
    }
    /// [`Error::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }
    /// [`Error::Provider`].
    pub fn provider(code: impl Into<String>, description: Option<String>, status: u16) -> Self {
        Error::Provider {
            code: code.into(),
            description,
            status,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidAppCredentials(m) => write!(f, "invalid app credentials: {m}"),
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::AccessDenied(d) => write!(
                f,
                "access denied{}",
                d.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            ),
            Error::Provider {
                code, description, ..
            } => {
                write!(
                    f,
                    "the provider answered `{code}`{}",
                    description
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                )
            }
            Error::Network(m) => write!(f, "network: {m}"),
            Error::Protocol(m) => write!(f, "protocol: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::Internal(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for wit::FlowError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidAppCredentials(m) => wit::FlowError::InvalidAppCredentials(m),
            Error::InvalidInput(m) => wit::FlowError::InvalidInput(m),
            Error::AccessDenied(d) => wit::FlowError::AccessDenied(d),
            Error::Provider {
                code,
                description,
                status,
            } => wit::FlowError::Provider(wit::ProviderError {
                code,
                description,
                status,
            }),
            Error::Network(m) => wit::FlowError::Network(m),
            // WIT 0.1.0 has no variant of its own for it: `internal` stops the host as it
            // should, and the text says what it was.
            Error::Protocol(m) => wit::FlowError::Internal(format!("protocol: {m}")),
            Error::Unsupported(m) => wit::FlowError::Unsupported(m),
            Error::Internal(m) => wit::FlowError::Internal(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug_and_read_through_accessors() {
        let key = ApiKey::new("sk-live-1");
        assert_eq!(key.expose(), "sk-live-1");
        assert_eq!(format!("{key:?}"), "ApiKey([redacted])");
        let secret = Secret::new("hunter2");
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        let token = Token::bearer("at-1").with_refresh_token(Some("rt-1".into()));
        assert_eq!(token.access_token(), "at-1");
        assert_eq!(token.refresh_token(), Some("rt-1"));
        let pending = Pending::new(b"{\"verifier\":\"v-1\"}".to_vec());
        let auth = Authorization::redirect("https://id.example/")
            .with_pending(&"v-1")
            .unwrap();
        assert_eq!(auth.pending(), b"\"v-1\"");
        let input = Input::new([("api_key", "sk-live-1")]);
        let basic = Credential::Basic {
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!(
            "{:?} {token:?} {pending:?} {auth:?} {input:?} {basic:?} {:?}",
            Credential::ApiKey(key.clone()),
            Credential::OAuth2(token.clone()),
        );
        for secret in ["sk-live-1", "hunter2", "at-1", "rt-1", "v-1"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("api_key"), "{shown}");
    }

    #[test]
    fn credentials_cross_the_wit_boundary_intact() {
        let token = Token::bearer("at").with_refresh_token(Some("rt".into()));
        let back: Credential = wit::Credential::from(Credential::OAuth2(token)).into();
        let token = back.into_token().unwrap();
        assert_eq!(
            (token.access_token(), token.refresh_token()),
            ("at", Some("rt"))
        );
        let Credential::ApiKey(key) = wit::Credential::from(Credential::api_key("k")).into() else {
            panic!("not an API key")
        };
        assert_eq!(key.expose(), "k");
    }

    #[test]
    fn for_status_retries_only_what_may_pass() {
        for status in [500, 502, 503, 504, 429] {
            assert!(
                matches!(Error::for_status(status, "x"), Error::Network(_)),
                "{status}"
            );
        }
        for status in [301, 302, 307, 400, 401, 403, 404, 410, 418] {
            assert!(
                matches!(Error::for_status(status, "x"), Error::Protocol(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn kinds_map_onto_the_wit_variants() {
        let wit = |e: Error| wit::FlowError::from(e);
        assert!(matches!(wit(Error::network("t")), wit::FlowError::Network(m) if m == "t"));
        // WIT 0.1.0 has no `protocol` variant: `internal` stops the host, as it should.
        assert!(matches!(
            wit(Error::protocol("not JSON")),
            wit::FlowError::Internal(m) if m == "protocol: not JSON"
        ));
        assert!(matches!(
            wit(Error::provider("slow_down", None, 400)),
            wit::FlowError::Provider(p) if p.code == "slow_down" && p.status == 400
        ));
    }
}
