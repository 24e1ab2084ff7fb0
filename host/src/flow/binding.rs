//! Bindings: how a credential is applied to an HTTP request.

use serde::{Deserialize, Serialize};

use crate::flow::Credential;
use crate::util::secret::SecretString;

/// How a credential goes on a request: `Authorization: Bearer …` (OAuth2's default), an API key
/// in a named header with an optional prefix, an API key in a query parameter, or HTTP basic.
///
/// A provider section may set it (`[providers.acme] binding = { header = "X-Api-Key" }`);
/// otherwise OAuth2 tokens are bearer tokens and basic credentials are basic, and an API key
/// has no binding until one is configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
#[non_exhaustive]
pub enum Binding {
    /// `bearer` or `basic`.
    Scheme(Scheme),
    /// A header carrying the secret after an optional prefix.
    Header {
        /// The header's name.
        header: String,
        /// What goes before the secret (`"Bearer "`, `"token "`); none by default.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        prefix: String,
    },
    /// A query parameter carrying the secret.
    Query {
        /// The parameter's name.
        query: String,
    },
}

/// The schemes a binding can name by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scheme {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: Basic <base64(user:password)>`.
    Basic,
}

/// Where a binding puts the secret.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Applied {
    /// A header: its name and value (the value holds the secret).
    Header(String, SecretString),
    /// A query parameter: its name and value.
    Query(String, SecretString),
}

impl Binding {
    /// Checks that the binding can go on a request: a header name that is an HTTP token, a
    /// prefix of printable characters, a query parameter with a name. `Err` names the part
    /// (`header`, `prefix`, `query`) and what is wrong, never the text.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        match self {
            Binding::Scheme(_) => Ok(()),
            Binding::Header { header, prefix } => {
                if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err((
                        "header",
                        "is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)",
                    ));
                }
                if is_reserved_header(header) {
                    return Err((
                        "header",
                        "names a header that steers routing, connections or cookies (Host, Connection, Proxy-*, Cookie, Transfer-Encoding, …), which never carries a credential",
                    ));
                }
                if prefix.chars().any(|c| c.is_control() || !c.is_ascii()) {
                    return Err(("prefix", "holds a control or non-ASCII character"));
                }
                Ok(())
            }
            Binding::Query { query } if query.is_empty() => Err(("query", "is empty")),
            Binding::Query { .. } => Ok(()),
        }
    }

    /// The binding for `credential`: `configured` when given, else the credential's own.
    pub fn for_credential(configured: Option<&Binding>, credential: &Credential) -> Option<Self> {
        if let Some(b) = configured {
            return Some(b.clone());
        }
        match credential {
            Credential::OAuth2(_) => Some(Binding::Scheme(Scheme::Bearer)),
            Credential::Basic { .. } => Some(Binding::Scheme(Scheme::Basic)),
            _ => None,
        }
    }

    /// Applies the binding to `credential`; `None` when they do not fit together (basic
    /// credentials in a header binding, a token with the basic scheme).
    pub fn apply(&self, credential: &Credential) -> Option<Applied> {
        let header = |name: &str, value: String| {
            Some(Applied::Header(name.to_owned(), SecretString::new(value)))
        };
        match (self, credential) {
            (Binding::Scheme(Scheme::Basic), Credential::Basic { username, password }) => {
                use base64::Engine;
                let pair = format!("{username}:{}", password.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                header("Authorization", format!("Basic {encoded}"))
            }
            (_, Credential::Basic { .. }) | (Binding::Scheme(Scheme::Basic), _) => None,
            (Binding::Scheme(Scheme::Bearer), c) => {
                header("Authorization", format!("Bearer {}", c.secret()?.expose()))
            }
            (
                Binding::Header {
                    header: name,
                    prefix,
                },
                c,
            ) => header(name, format!("{prefix}{}", c.secret()?.expose())),
            (Binding::Query { query }, c) => Some(Applied::Query(
                query.clone(),
                SecretString::new(c.secret()?.expose()),
            )),
        }
    }
}

/// Headers a binding may not name: they steer where a request goes or how the connection and
/// its framing behave (hop-by-hop headers, RFC 9110 7.6.1; `Host`; proxies' own), or carry
/// state the client does not own (`Cookie`). A credential in one of them would be routed,
/// dropped or forwarded by intermediaries instead of reaching the API as a credential.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "cookie",
    "set-cookie",
    "forwarded",
    "via",
    "max-forwards",
];

/// Whether `name` (any case) is a header no binding may name: one of [`RESERVED_HEADERS`], any
/// `Proxy-*` header, or any `X-Forwarded-*` one.
pub(crate) fn is_reserved_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED_HEADERS.contains(&lower.as_str())
        || lower.starts_with("proxy-")
        || lower.starts_with("x-forwarded-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::OAuth2Token;

    #[test]
    fn bindings_apply_and_parse() {
        let token = Credential::OAuth2(OAuth2Token::bearer(SecretString::new("t")));
        let key = Credential::ApiKey {
            key: SecretString::new("k"),
        };
        let bearer = Binding::for_credential(None, &token).unwrap();
        let Some(Applied::Header(name, value)) = bearer.apply(&token) else {
            panic!()
        };
        assert_eq!(
            (name.as_str(), value.expose()),
            ("Authorization", "Bearer t")
        );
        assert!(Binding::for_credential(None, &key).is_none());
        let configured: Binding =
            serde_json::from_value(serde_json::json!({"header": "X-Api-Key"})).unwrap();
        let Some(Applied::Header(name, value)) = configured.apply(&key) else {
            panic!()
        };
        assert_eq!((name.as_str(), value.expose()), ("X-Api-Key", "k"));
        let query: Binding = serde_json::from_value(serde_json::json!({"query": "key"})).unwrap();
        assert!(matches!(query.apply(&key), Some(Applied::Query(n, _)) if n == "key"));
        let basic: Binding = serde_json::from_value(serde_json::json!("basic")).unwrap();
        assert!(basic.apply(&key).is_none());
        let creds = Credential::Basic {
            username: "u".into(),
            password: SecretString::new("p"),
        };
        let Some(Applied::Header(_, value)) = basic.apply(&creds) else {
            panic!()
        };
        assert_eq!(value.expose(), "Basic dTpw");
    }
}
