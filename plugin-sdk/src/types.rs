//! The values a flow works with: friendly Rust types over the WIT ones.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    interaction: Interaction,
    /// State handed back to `exchange` as [`Pending`] (see [`Authorization::with_pending`]).
    pub pending: Vec<u8>,
}

impl Authorization {
    /// Send the user's browser to `url`.
    pub fn redirect(url: impl Into<String>) -> Self {
        Self {
            interaction: Interaction::Redirect(url.into()),
            pending: Vec::new(),
        }
    }

    /// Ask the user to fill these fields.
    pub fn prompt(fields: impl IntoIterator<Item = Field>) -> Self {
        Self {
            interaction: Interaction::Prompt(fields.into_iter().collect()),
            pending: Vec::new(),
        }
    }

    /// Ask the user to enter a device code.
    pub fn device_code(code: DeviceCode) -> Self {
        Self {
            interaction: Interaction::DeviceCode(code),
            pending: Vec::new(),
        }
    }

    /// Attaches state for `exchange`, serialized as JSON ([`Pending::decode`] reads it back).
    pub fn with_pending<T: Serialize>(mut self, state: &T) -> Result<Self> {
        self.pending = serde_json::to_vec(state).map_err(|e| Error::internal(e.to_string()))?;
        Ok(self)
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
            pending: a.pending,
        }
    }
}

/// The state `authorize` attached, handed back to `exchange`.
#[derive(Clone)]
pub struct Pending(pub(crate) Vec<u8>);

impl Pending {
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
/// duplicates kept.
#[derive(Clone, Default)]
pub struct Input(pub(crate) Vec<(String, String)>);

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

/// A flow's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a flow call failed; the host shows it to the user, so say what to do.
///
/// The host acts on the kind: [`Error::Network`] is retried later where the host polls,
/// [`Error::Protocol`] and the others stop; [`Error::Provider`] with `invalid_grant` on a
/// refresh asks the user to log in again. The SDK's `http` and `oauth2` helpers pick the kind
/// for you.
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
