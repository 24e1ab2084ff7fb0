//! HTTP through the host: its hardened client, limited to the hosts the plugin declares.
//!
//! ```no_run
//! # fn demo() -> plugin_sdk::Result<()> {
//! use plugin_sdk::http;
//! let user: serde_json::Value = http::get("https://api.example.com/user")
//!     .bearer("token")
//!     .header("accept", "application/json")
//!     .send()?
//!     .error_for_status()?
//!     .json()?;
//! # Ok(()) }
//! ```
//!
//! The host never follows redirects (a 3xx comes back as it is), applies timeouts and a
//! response size cap, and refuses hosts the plugin did not declare.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::bindings::integrations::auth::http as wit;
use crate::types::Error;

/// A request being built.
#[derive(Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct RequestBuilder {
    method: wit::Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers and bodies carry credentials: show their names and size only.
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("RequestBuilder")
            .field("url", &self.url)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

fn request(method: wit::Method, url: &str) -> RequestBuilder {
    RequestBuilder {
        method,
        url: url.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// A `GET`.
pub fn get(url: &str) -> RequestBuilder {
    request(wit::Method::Get, url)
}

/// A `POST`.
pub fn post(url: &str) -> RequestBuilder {
    request(wit::Method::Post, url)
}

/// A `PUT`.
pub fn put(url: &str) -> RequestBuilder {
    request(wit::Method::Put, url)
}

/// A `DELETE`.
pub fn delete(url: &str) -> RequestBuilder {
    request(wit::Method::Delete, url)
}

impl RequestBuilder {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// `Authorization: Basic …` (RFC 6749 §2.3.1 encoding: each part form-urlencoded first).
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        use base64::Engine;
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(user),
            enc(password)
        ));
        self.header("authorization", &format!("Basic {pair}"))
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .finish();
        self.body = body.into_bytes();
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// A JSON body.
    pub fn json<T: Serialize>(mut self, value: &T) -> Result<Self, Error> {
        self.body = serde_json::to_vec(value).map_err(|e| Error::internal(e.to_string()))?;
        Ok(self.header("content-type", "application/json"))
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request through the host.
    pub fn send(self) -> Result<Response, HttpError> {
        let request = wit::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
        };
        match wit::send(&request) {
            Ok(r) => Ok(Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            Err(wit::HttpError::Denied(why)) => Err(HttpError::Denied(why)),
            Err(wit::HttpError::InvalidUrl(why)) => Err(HttpError::InvalidUrl(why)),
            Err(wit::HttpError::Timeout) => Err(HttpError::Timeout),
            Err(wit::HttpError::TooLarge(n)) => Err(HttpError::TooLarge(n)),
            Err(wit::HttpError::Connect(why)) => Err(HttpError::Connect(why)),
        }
    }
}

/// A response (any status; 3xx included, as redirects are never followed).
#[derive(Clone)]
pub struct Response {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|_| {
            let message = format!("HTTP {}: the body is not the expected JSON", self.status);
            if self.is_success() {
                Error::protocol(message)
            } else {
                Error::for_status(self.status, message)
            }
        })
    }

    /// An error for a non-2xx status: [`Error::Network`] (worth retrying) for a 5xx or 429,
    /// [`Error::Protocol`] otherwise.
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(Error::for_status(
                self.status,
                format!("HTTP {}", self.status),
            ))
        }
    }
}

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The host refused: an undeclared host, plain http, a private address.
    Denied(String),
    /// The URL cannot be parsed.
    InvalidUrl(String),
    /// No answer in time.
    Timeout,
    /// The response body is larger than the host's cap.
    TooLarge(u64),
    /// The connection failed.
    Connect(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Denied(why) => write!(f, "request denied: {why}"),
            HttpError::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::TooLarge(n) => write!(f, "the response is larger than {n} bytes"),
            HttpError::Connect(why) => write!(f, "cannot connect: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A timeout or a failed connection may pass ([`Error::Network`]); a denied request, a bad URL
/// or an oversized answer will not ([`Error::Protocol`]).
impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Timeout | HttpError::Connect(_) => Error::Network(e.to_string()),
            _ => Error::Protocol(e.to_string()),
        }
    }
}
