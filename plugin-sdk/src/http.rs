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
use zeroize::Zeroize;

use crate::__private::bindings::integrations::auth::http as wit;
use crate::types::Error;

/// A request being built. Its header values and body (which carry credentials) are zeroed
/// when it drops or has been sent.
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

impl Drop for RequestBuilder {
    fn drop(&mut self) {
        zeroize_request(&mut self.headers, &mut self.body);
    }
}

fn zeroize_request(headers: &mut [(String, String)], body: &mut Vec<u8>) {
    for (_, value) in headers {
        value.zeroize();
    }
    body.zeroize();
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
    pub fn send(mut self) -> Result<Response, HttpError> {
        let mut request = wit::Request {
            method: self.method,
            url: std::mem::take(&mut self.url),
            headers: std::mem::take(&mut self.headers),
            body: std::mem::take(&mut self.body),
        };
        let result = wit::send(&request);
        zeroize_request(&mut request.headers, &mut request.body);
        match result {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &[u8]) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.to_vec(),
        }
    }

    fn kind(e: &Error) -> &'static str {
        match e {
            Error::Network(_) => "network",
            Error::Protocol(_) => "protocol",
            _ => "other",
        }
    }

    #[test]
    fn transport_failures_that_may_pass_are_network_errors() {
        assert_eq!(kind(&HttpError::Timeout.into()), "network");
        assert_eq!(
            kind(&HttpError::Connect("refused".into()).into()),
            "network"
        );
        for e in [
            HttpError::Denied("undeclared host".into()),
            HttpError::InvalidUrl("no scheme".into()),
            HttpError::TooLarge(1 << 20),
        ] {
            assert_eq!(kind(&e.into()), "protocol");
        }
    }

    #[test]
    fn statuses_and_bodies_are_classified() {
        let status = |s| response(s, b"").error_for_status().map(|_| ());
        assert!(status(200).is_ok() && status(204).is_ok());
        for s in [500, 503, 429] {
            assert_eq!(kind(&status(s).unwrap_err()), "network", "{s}");
        }
        for s in [302, 307, 400, 401, 404] {
            assert_eq!(kind(&status(s).unwrap_err()), "protocol", "{s}");
        }
        let json = |s, body: &[u8]| response(s, body).json::<serde_json::Value>();
        assert_eq!(json(200, b"{\"a\":1}").unwrap()["a"], 1);
        // A 2xx that is not JSON will not become JSON by asking again.
        assert_eq!(kind(&json(200, b"<html>").unwrap_err()), "protocol");
        assert_eq!(kind(&json(302, b"").unwrap_err()), "protocol");
        assert_eq!(kind(&json(404, b"not found").unwrap_err()), "protocol");
        // An error page from an overloaded server may pass.
        assert_eq!(kind(&json(502, b"<html>").unwrap_err()), "network");
    }

    #[test]
    fn debug_shows_no_credentials() {
        let request = post("https://id.example/token")
            .bearer("at-1")
            .basic_auth("id", "cs-1")
            .form(&[("refresh_token", "rt-1")]);
        let shown = format!(
            "{request:?} {:?}",
            response(200, b"{\"access_token\":\"at-2\"}")
        );
        for secret in ["at-1", "cs-1", "rt-1", "at-2"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
