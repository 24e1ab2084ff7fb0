//! OAuth2 helpers: an authorization URL with state and S256 PKCE, the callback check, token
//! requests, and lenient token-response parsing.
//!
//! ```no_run
//! use plugin_sdk::prelude::*;
//! use plugin_sdk::oauth2::{self, ClientAuth};
//!
//! # struct App { authorize_url: String, token_url: String, client_id: String, client_secret: Option<String> }
//! # fn authorize(app: &App, req: AuthorizeRequest) -> Result<Authorization> {
//! // authorize: a URL with fresh state and PKCE; the state rides in `pending`.
//! oauth2::AuthorizationUrl::new(&app.authorize_url, &app.client_id).request(&req).build()
//! # }
//! # fn exchange(app: &App, pending: Pending, input: Input) -> Result<Credential> {
//! // exchange: check the callback, send the code with the verifier, read the token.
//! let state: oauth2::LoginState = pending.decode()?;
//! let code = oauth2::callback_code(&input, &state)?;
//! let token = oauth2::token_request(&app.token_url)
//!     .client(&app.client_id, app.client_secret.as_deref(), ClientAuth::RequestBody)
//!     .authorization_code(code, &state)
//!     .send()?
//!     .token()?;
//! Ok(Credential::OAuth2(token))
//! # }
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroize;

use crate::http;
use crate::types::{Authorization, AuthorizeRequest, Error, Input, Result, Token};

/// Bytes of randomness in `state` and the PKCE verifier.
const RANDOM_BYTES: usize = 32;

fn random_token() -> Result<String> {
    use base64::Engine;
    let mut bytes = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What `authorize` keeps for `exchange`: the state, the PKCE verifier, the redirect URI and
/// the scopes asked for. Secret: the host stores it and never prints it; here it is read
/// through accessors, redacted in `Debug` and its state and verifier zeroed when dropped.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginState {
    state: String,
    verifier: String,
    redirect_uri: Option<String>,
    scopes: Vec<String>,
}

impl LoginState {
    /// The `state` sent with the authorization request.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The PKCE verifier.
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    /// The redirect URI sent (the token request must repeat it).
    pub fn redirect_uri(&self) -> Option<&str> {
        self.redirect_uri.as_deref()
    }

    /// The scopes asked for.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

impl Drop for LoginState {
    fn drop(&mut self) {
        self.state.zeroize();
        self.verifier.zeroize();
    }
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState")
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Builds an authorization URL (`response_type=code`, fresh `state`, S256 PKCE).
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthorizationUrl {
    endpoint: String,
    client_id: String,
    redirect_uri: Option<String>,
    scopes: Vec<String>,
    separator: String,
    scope_param: String,
    params: Vec<(String, String)>,
}

impl AuthorizationUrl {
    /// For this endpoint and client.
    pub fn new(authorize_url: &str, client_id: &str) -> Self {
        Self {
            endpoint: authorize_url.to_owned(),
            client_id: client_id.to_owned(),
            redirect_uri: None,
            scopes: Vec::new(),
            separator: " ".into(),
            scope_param: "scope".into(),
            params: Vec::new(),
        }
    }

    /// Takes the redirect URI and scopes from the host's request.
    pub fn request(mut self, req: &AuthorizeRequest) -> Self {
        self.redirect_uri = req.redirect_uri.clone();
        if !req.scopes.is_empty() {
            self.scopes = req.scopes.clone();
        }
        self
    }

    /// Scopes used when the host's request names none.
    pub fn default_scopes<S: AsRef<str>>(mut self, scopes: &[S]) -> Self {
        if self.scopes.is_empty() {
            self.scopes = scopes.iter().map(|s| s.as_ref().to_owned()).collect();
        }
        self
    }

    /// How scopes are joined (`" "` by the RFC; some providers want `","`).
    pub fn scope_separator(mut self, separator: &str) -> Self {
        self.separator = separator.to_owned();
        self
    }

    /// The query parameter that carries the scopes (`scope`; Slack's user scopes go in
    /// `user_scope`).
    pub fn scope_param(mut self, name: &str) -> Self {
        self.scope_param = name.to_owned();
        self
    }

    /// An extra query parameter.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The redirect authorization, with its [`LoginState`] as pending state.
    pub fn build(self) -> Result<Authorization> {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let mut url = url::Url::parse(&self.endpoint).map_err(|e| {
            Error::InvalidAppCredentials(format!("the authorization URL is invalid: {e}"))
        })?;
        let state = random_token()?;
        let verifier = random_token()? + &random_token()?;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id);
            if let Some(r) = &self.redirect_uri {
                q.append_pair("redirect_uri", r);
            }
            if !self.scopes.is_empty() {
                q.append_pair(&self.scope_param, &self.scopes.join(&self.separator));
            }
            q.append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            for (k, v) in &self.params {
                q.append_pair(k, v);
            }
        }
        let pending = LoginState {
            state,
            verifier,
            redirect_uri: self.redirect_uri,
            scopes: self.scopes,
        };
        Authorization::redirect(url.to_string()).with_pending(&pending)
    }
}

/// Checks a redirect callback against the login state and returns the code: the `state` must
/// match (compared in constant time, on error callbacks too), `access_denied` becomes
/// [`Error::AccessDenied`], other errors [`Error::Provider`], duplicates are refused.
pub fn callback_code<'a>(input: &'a Input, login: &LoginState) -> Result<&'a str> {
    let state = input
        .get("state")?
        .ok_or_else(|| Error::invalid_input("the callback carries no `state`"))?;
    if !constant_time_eq(state.as_bytes(), login.state.as_bytes()) {
        return Err(Error::invalid_input(
            "the callback's `state` does not match this login",
        ));
    }
    let code = input.get("code")?;
    if let Some(error) = input.get("error")? {
        if code.is_some() {
            return Err(Error::invalid_input(
                "the callback carries both `code` and `error`",
            ));
        }
        let description = input.get("error_description")?.map(str::to_owned);
        return Err(if error == "access_denied" {
            Error::AccessDenied(description)
        } else {
            Error::provider(error, description, 0)
        });
    }
    code.filter(|c| !c.is_empty())
        .ok_or_else(|| Error::invalid_input("the callback carries no `code`"))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`).
    #[default]
    Basic,
    /// In the form body (`client_secret_post`).
    RequestBody,
}

/// Starts a token request to `token_url`.
pub fn token_request(token_url: &str) -> TokenRequest {
    TokenRequest {
        url: token_url.to_owned(),
        params: Vec::new(),
        basic: None,
    }
}

/// A token request being built. Its parameters (code, verifier, refresh token, client secret)
/// are zeroed when it drops.
#[derive(Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct TokenRequest {
    url: String,
    params: Vec<(String, String)>,
    basic: Option<(String, String)>,
}

impl Drop for TokenRequest {
    fn drop(&mut self) {
        for (_, value) in &mut self.params {
            value.zeroize();
        }
        if let Some((_, secret)) = &mut self.basic {
            secret.zeroize();
        }
    }
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("TokenRequest")
            .field("url", &self.url)
            .field("params", &names)
            .finish()
    }
}

impl TokenRequest {
    /// The client's credentials; a public client (no secret) always sends its id in the body.
    pub fn client(
        mut self,
        client_id: &str,
        client_secret: Option<&str>,
        auth: ClientAuth,
    ) -> Self {
        match (client_secret, auth) {
            (Some(secret), ClientAuth::Basic) => {
                self.basic = Some((client_id.to_owned(), secret.to_owned()))
            }
            (secret, _) => {
                self = self.param("client_id", client_id);
                if let Some(secret) = secret {
                    self = self.param("client_secret", secret);
                }
            }
        }
        self
    }

    /// An extra form parameter.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `grant_type=authorization_code` with the code, the redirect URI and the PKCE verifier.
    pub fn authorization_code(self, code: &str, login: &LoginState) -> Self {
        let mut r = self
            .param("grant_type", "authorization_code")
            .param("code", code)
            .param("code_verifier", &login.verifier);
        if let Some(uri) = &login.redirect_uri {
            r = r.param("redirect_uri", uri);
        }
        r
    }

    /// `grant_type=refresh_token`.
    pub fn refresh_token(self, refresh_token: &str) -> Self {
        self.param("grant_type", "refresh_token")
            .param("refresh_token", refresh_token)
    }

    /// Sends it. An error body (`{"error": …}`, or Slack's `{"ok": false, …}`) becomes
    /// [`Error::Provider`] whatever the HTTP status.
    pub fn send(self) -> Result<TokenResponse> {
        let mut request = http::post(&self.url)
            .header("accept", "application/json")
            .form(&self.params);
        if let Some((id, secret)) = &self.basic {
            request = request.basic_auth(id, secret);
        }
        let response = request.send()?;
        TokenResponse::from_http(response.status, &response.body)
    }
}

/// A token endpoint's successful JSON answer.
#[derive(Clone)]
pub struct TokenResponse {
    body: Map<String, Value>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("fields", &self.body.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenResponse {
    /// Classifies a raw answer: errors inside any status, non-JSON bodies, non-objects.
    pub fn from_http(status: u16, body: &[u8]) -> Result<Self> {
        if (300..400).contains(&status) {
            return Err(Error::protocol(format!(
                "the token endpoint redirected (HTTP {status}); not followed"
            )));
        }
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let Some(Value::Object(map)) = parsed else {
            let message =
                format!("the token endpoint answered HTTP {status} without a JSON object");
            return Err(if (200..300).contains(&status) {
                Error::protocol(message)
            } else {
                Error::for_status(status, message)
            });
        };
        if let Some(code) = map.get("error") {
            let code = code.as_str().unwrap_or("unknown_error");
            let description = map
                .get("error_description")
                .and_then(Value::as_str)
                .map(str::to_owned);
            return Err(Error::provider(code, description, status));
        }
        if map.get("ok") == Some(&Value::Bool(false)) {
            return Err(Error::provider("unknown_error", None, status));
        }
        if !(200..300).contains(&status) {
            return Err(Error::for_status(
                status,
                format!("the token endpoint failed with HTTP {status}"),
            ));
        }
        Ok(Self { body: map })
    }

    /// The raw JSON object.
    pub fn json(&self) -> &Map<String, Value> {
        &self.body
    }

    /// The token at the top level.
    pub fn token(&self) -> Result<Token> {
        parse_token(&self.body)
    }

    /// The token inside a nested object, by JSON pointer (Slack's user token is at
    /// `/authed_user`).
    pub fn token_at(&self, pointer: &str) -> Result<Token> {
        // The first step is taken in the body itself: wrapping the body in a `Value` to call
        // `pointer` would copy all of it.
        let found = pointer.strip_prefix('/').and_then(|path| {
            let (first, rest) = path
                .split_once('/')
                .map_or((path, None), |(f, r)| (f, Some(r)));
            let value = self
                .body
                .get(&first.replace("~1", "/").replace("~0", "~"))?;
            match rest {
                Some(rest) => value.pointer(&format!("/{rest}")),
                None => Some(value),
            }
        });
        match found {
            Some(Value::Object(map)) => parse_token(map),
            _ => Err(Error::protocol(format!(
                "the token response has no object at `{pointer}`"
            ))),
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Reads a lifetime: a number or a numeric string; zero or negative is "unknown".
fn seconds(v: Option<&Value>) -> Result<Option<i64>> {
    let n = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| Error::protocol("`expires_in` is not a number"))?,
        Some(_) => return Err(Error::protocol("`expires_in` is not a number")),
    };
    Ok((n.is_finite() && n >= 1.0).then(|| n.min(1e12) as i64))
}

/// Lenient parsing of one token object: `expires_in` as a number or string, scopes
/// space- or comma-separated or a list; everything else kept as extras.
pub fn parse_token(map: &Map<String, Value>) -> Result<Token> {
    let access_token = match map.get("access_token") {
        Some(Value::String(s)) if !s.is_empty() && !s.chars().any(char::is_control) => s.clone(),
        Some(_) => {
            return Err(Error::protocol(
                "the token response's `access_token` is unusable",
            ));
        }
        None => return Err(Error::protocol("the token response has no `access_token`")),
    };
    let refresh_token = match map.get("refresh_token") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let expires_at = seconds(map.get("expires_in"))?.map(|s| now().saturating_add(s));
    let scopes = match map.get("scope") {
        Some(Value::String(s)) => s
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    // Only the fields kept as extras are copied, not the whole object.
    let extra = map
        .iter()
        .filter(|(name, _)| !TOKEN_FIELDS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    Ok(Token {
        access_token: access_token.into(),
        refresh_token: refresh_token.map(Into::into),
        expires_at,
        scopes,
        extra,
    })
}

/// The fields [`parse_token`] reads; the others are the token's extras.
const TOKEN_FIELDS: [&str; 5] = [
    "access_token",
    "token_type",
    "refresh_token",
    "expires_in",
    "scope",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpError;
    use serde_json::json;

    fn resp(status: u16, v: Value) -> Result<TokenResponse> {
        TokenResponse::from_http(status, v.to_string().as_bytes())
    }

    #[test]
    fn lenient_parsing() {
        let t = resp(200, json!({"access_token":"a","token_type":"bearer","expires_in":"3600","scope":"a,b c","team":"x"}))
            .unwrap()
            .token()
            .unwrap();
        assert_eq!(t.scopes, vec!["a", "b", "c"]);
        assert!(t.expires_at.unwrap() - now() > 3590);
        assert_eq!(t.extra["team"], "x");
        // The token's own fields are not repeated among the extras.
        assert_eq!(t.extra.keys().collect::<Vec<_>>(), ["team"]);
        let zero = resp(200, json!({"access_token":"a","expires_in":0}))
            .unwrap()
            .token()
            .unwrap();
        assert_eq!(zero.expires_at, None);
    }

    #[test]
    fn errors_inside_200_and_nested_tokens() {
        let e = resp(200, json!({"ok": false, "error": "invalid_code"})).unwrap_err();
        assert_eq!(e, Error::provider("invalid_code", None, 200));
        let e = resp(
            400,
            json!({"error": "invalid_grant", "error_description": "expired"}),
        )
        .unwrap_err();
        assert!(
            matches!(e, Error::Provider { ref code, status: 400, .. } if code == "invalid_grant")
        );
        let slack = resp(
            200,
            json!({"ok": true, "authed_user": {"access_token": "xoxp", "scope": "a,b"}}),
        )
        .unwrap();
        assert_eq!(
            slack.token_at("/authed_user").unwrap().access_token(),
            "xoxp"
        );
        assert!(slack.token().is_err());
        // Deeper pointers and escaped keys (`~1` is `/`, `~0` is `~`); a missing step fails.
        let nested = resp(
            200,
            json!({"a/b": {"c~d": {"access_token": "deep"}}, "flat": "x"}),
        )
        .unwrap();
        assert_eq!(
            nested.token_at("/a~1b/c~0d").unwrap().access_token(),
            "deep"
        );
        assert!(nested.token_at("/a~1b/missing").is_err());
        assert!(nested.token_at("/flat").is_err());
        assert!(nested.token_at("a~1b").is_err());
        assert!(TokenResponse::from_http(200, b"<html>").is_err());
        assert!(TokenResponse::from_http(307, b"").is_err());
    }

    #[test]
    fn callback_checks() {
        let login = LoginState {
            state: "s".into(),
            verifier: "v".into(),
            redirect_uri: None,
            scopes: vec![],
        };
        assert_eq!(
            callback_code(&Input::new([("state", "s"), ("code", "c")]), &login).unwrap(),
            "c"
        );
        assert!(callback_code(&Input::new([("state", "x"), ("code", "c")]), &login).is_err());
        assert!(
            callback_code(
                &Input::new([("state", "s"), ("state", "s"), ("code", "c")]),
                &login
            )
            .is_err()
        );
        assert!(matches!(
            callback_code(
                &Input::new([("state", "s"), ("error", "access_denied")]),
                &login
            ),
            Err(Error::AccessDenied(None))
        ));
        assert!(callback_code(&Input::new([("state", "s")]), &login).is_err());
    }

    #[test]
    fn authorization_url_has_state_and_pkce() {
        let auth = AuthorizationUrl::new("https://id.example/authorize", "cid")
            .request(&AuthorizeRequest {
                redirect_uri: Some("http://127.0.0.1:1/callback".into()),
                scopes: vec![],
            })
            .default_scopes(&["a", "b"])
            .scope_separator(",")
            .build()
            .unwrap();
        let wit: crate::__private::wit::Authorization = auth.clone().into();
        let crate::__private::wit::Interaction::Redirect(url) = wit.interaction else {
            panic!()
        };
        let url = url::Url::parse(&url).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["scope"], "a,b");
        assert_eq!(q["code_challenge_method"], "S256");
        let login: LoginState = serde_json::from_slice(auth.pending()).unwrap();
        assert_eq!(q["state"], login.state());
        assert!(login.state().len() >= 43);
        assert_eq!(login.redirect_uri(), Some("http://127.0.0.1:1/callback"));
        assert_eq!(login.scopes(), ["a", "b"]);
        // The state is in the URL by design; the verifier never leaves the plugin and the host.
        let shown = format!("{login:?} {auth:?}");
        assert!(!shown.contains(login.verifier()), "{shown}");
    }

    #[test]
    fn transient_failures_are_network_errors_protocol_errors_are_not() {
        let raw = |status, body: &[u8]| TokenResponse::from_http(status, body).unwrap_err();
        // Worth trying again later: the host backs off and polls again.
        for e in [raw(502, b""), raw(503, b"<html>"), raw(429, b"slow down")] {
            assert!(matches!(e, Error::Network(_)), "{e:?}");
        }
        // Trying again gives the same answer: the host stops.
        for e in [
            raw(200, b"<html>not json</html>"),
            raw(307, b""),
            raw(404, b"{}"),
            raw(400, b"nope"),
        ] {
            assert!(matches!(e, Error::Protocol(_)), "{e:?}");
        }
        // A JSON object without an OAuth2 error: the status decides.
        assert!(matches!(
            resp(500, json!({})).unwrap_err(),
            Error::Network(_)
        ));
        assert!(matches!(
            resp(401, json!({"message": "no"})).unwrap_err(),
            Error::Protocol(_)
        ));
        // Missing or malformed fields of a token response.
        for body in [
            json!({"token_type": "bearer"}),
            json!({"access_token": 42}),
            json!({"access_token": ""}),
            json!({"access_token": "a", "expires_in": "soon"}),
        ] {
            let e = resp(200, body).unwrap().token().unwrap_err();
            assert!(matches!(e, Error::Protocol(_)), "{e:?}");
        }
        let e = resp(200, json!({"ok": true}))
            .unwrap()
            .token_at("/authed_user");
        assert!(matches!(e, Err(Error::Protocol(_))), "{e:?}");
        // Not a JSON object at all.
        assert!(matches!(
            resp(200, json!([1])).unwrap_err(),
            Error::Protocol(_)
        ));
        // An OAuth2 error stays the provider's, whatever the status.
        let e = resp(400, json!({"error": "authorization_pending"})).unwrap_err();
        assert_eq!(e, Error::provider("authorization_pending", None, 400));
        // Transport: a timeout may pass, a denied request will not.
        assert!(matches!(Error::from(HttpError::Timeout), Error::Network(_)));
        assert!(matches!(
            Error::from(HttpError::Denied("x".into())),
            Error::Protocol(_)
        ));
    }
}
