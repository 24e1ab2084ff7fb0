//! Classifies a token endpoint's raw HTTP response (SECURITY.md, "Token endpoint").
//!
//! Real providers are lenient in what they send: errors inside HTTP 200 (GitHub), `expires_in`
//! as a string, comma-separated scopes, form-encoded bodies. This module accepts those and
//! refuses everything unsafe, and never puts a body into an error or a log: a body that failed
//! to parse can still contain a valid token.

use std::time::Duration;

use serde_json::{Map, Value};

use chrono::{DateTime, Utc};

use super::class::TokenClass;
use super::error::{ErrorKind, OAuthError, TokenError};
use crate::flow::{OAuth2Token, TokenExtras};
use crate::util::secret::SecretString;
use crate::util::text::sanitize;

/// The longest access or refresh token accepted.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The most scopes a token may carry.
pub(crate) const MAX_SCOPES: usize = 256;

/// A token response that passed every check, before the token class shapes its extras.
pub(crate) struct TokenFields {
    pub(crate) access_token: SecretString,
    pub(crate) refresh_token: Option<SecretString>,
    /// Seconds, strictly positive; `None` when absent or unusable (zero, negative).
    pub(crate) expires_in: Option<u64>,
    /// `None` when the provider did not say.
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) extra: Map<String, Value>,
}

impl TokenFields {
    /// The token, its extras shaped by the provider's class, its lifetime made absolute from
    /// `received_at` (checked arithmetic: an absurd lifetime means no known expiry), and the
    /// requested scopes when the provider did not say which it granted.
    pub(crate) fn into_token<C: TokenClass>(
        self,
        class: &C,
        received_at: DateTime<Utc>,
        requested_scopes: &[String],
    ) -> Result<OAuth2Token, TokenError> {
        let extra = class.parse_extra(&self.extra, received_at)?;
        let extra = match serde_json::to_value(extra) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let expires_at = self.expires_in.and_then(|s| {
            let d = chrono::Duration::try_seconds(i64::try_from(s).ok()?)?;
            received_at.checked_add_signed(d)
        });
        Ok(OAuth2Token {
            access_token: self.access_token,
            token_type: "bearer".into(),
            refresh_token: self.refresh_token,
            expires_at,
            scopes: self.scopes.unwrap_or_else(|| requested_scopes.to_vec()),
            extra: TokenExtras(extra),
        })
    }
}

/// Classifies a token endpoint's response. `kind_of` maps provider-specific error codes.
pub(crate) fn classify(
    response: &http::Response<Vec<u8>>,
    kind_of: &dyn Fn(&str) -> Option<ErrorKind>,
) -> Result<TokenFields, TokenError> {
    fields(json_object(response, kind_of)?, &[])
}

/// The first stage for every OAuth2 endpoint (token, device authorization): refuses redirects,
/// turns an `{"error": …}` body (whatever the status), 429/503 and other failures into typed
/// errors, and returns the JSON (or form-encoded) object of a successful answer.
pub(crate) fn json_object(
    response: &http::Response<Vec<u8>>,
    kind_of: &dyn Fn(&str) -> Option<ErrorKind>,
) -> Result<Map<String, Value>, TokenError> {
    let status = response.status();
    if status.is_redirection() {
        return Err(TokenError::Redirect {
            status: status.as_u16(),
        });
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| sanitize(v, 80));
    let body = parse_body(response.body(), content_type.as_deref());

    // `"error": null` (or empty) in an answer is no error: some providers always send the key.
    if let Some(Value::Object(map)) = &body
        && let Some(error) = map
            .get("error")
            .filter(|e| !e.is_null() && e.as_str() != Some(""))
    {
        return Err(TokenError::Provider(oauth_error(
            map,
            error,
            status.as_u16(),
            kind_of,
        )));
    }
    if status == http::StatusCode::TOO_MANY_REQUESTS
        || status == http::StatusCode::SERVICE_UNAVAILABLE
    {
        return Err(TokenError::Unavailable {
            status: status.as_u16(),
            retry_after: retry_after(response.headers()),
        });
    }
    if !status.is_success() {
        return Err(TokenError::Status {
            status: status.as_u16(),
            content_type,
        });
    }
    match body {
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(TokenError::NotObject {
            found: json_kind(&other),
        }),
        None => Err(TokenError::NotJson { content_type }),
    }
}

fn parse_body(body: &[u8], content_type: Option<&str>) -> Option<Value> {
    let form = content_type.is_some_and(|c| {
        c.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if form {
        let map: Map<String, Value> = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        return Some(Value::Object(map));
    }
    serde_json::from_slice(body).ok()
}

fn oauth_error(
    map: &Map<String, Value>,
    error: &Value,
    status: u16,
    kind_of: &dyn Fn(&str) -> Option<ErrorKind>,
) -> OAuthError {
    let code = sanitize(error.as_str().unwrap_or("(not a string)"), 64);
    let text = |name: &str, max: usize| {
        map.get(name)
            .and_then(Value::as_str)
            .map(|s| sanitize(s, max))
    };
    OAuthError {
        kind: kind_of(&code).unwrap_or_else(|| ErrorKind::from_code(&code)),
        description: text("error_description", 300),
        uri: text("error_uri", 200),
        code,
        status,
    }
}

fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(24 * 3600)))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The refresh token an answer carries, if it is a usable one, whatever else is wrong with the
/// answer: a provider that rotates refresh tokens has retired the one it was sent.
pub(crate) fn carried_refresh_token(map: &Map<String, Value>) -> Option<SecretString> {
    token_value(map.get("refresh_token").cloned(), "refresh_token")
        .ok()
        .flatten()
}

fn token_value(v: Option<Value>, field: &'static str) -> Result<Option<SecretString>, TokenError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => token_text(s, field).map(Some),
        Some(_) => Err(TokenError::Invalid {
            field,
            reason: "is not a string",
        }),
    }
}

/// The host's one rule for a token value, wherever it came from (a token endpoint, a plugin):
/// not empty, not absurdly long, visible ASCII only (RFC 6749 Appendix A: `1*VSCHAR`, less the
/// space): a token must go into a header, and no format character (U+202E…) may ride it to a
/// terminal.
pub(crate) fn token_text(s: String, field: &'static str) -> Result<SecretString, TokenError> {
    let s = secret_text(s, field)?;
    if !s.expose().bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::Invalid {
            field,
            reason: "contains characters other than visible ASCII",
        });
    }
    Ok(s)
}

/// The rule for a secret that is not a token (a password): not empty, not absurdly long, no
/// spaces, control or format characters.
pub(crate) fn secret_text(s: String, field: &'static str) -> Result<SecretString, TokenError> {
    if s.is_empty() {
        return Err(TokenError::Invalid {
            field,
            reason: "is empty",
        });
    }
    if s.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Invalid {
            field,
            reason: "is absurdly long",
        });
    }
    if s.chars()
        .any(|c| crate::util::text::is_unsafe_char(c) || c == ' ')
    {
        return Err(TokenError::Invalid {
            field,
            reason: "contains spaces, control or format characters",
        });
    }
    Ok(SecretString::new(s))
}

/// The object at `pointer` (a JSON pointer) in a token response: where providers that nest the
/// token keep it.
pub(crate) fn nested(
    map: Map<String, Value>,
    pointer: &str,
) -> Result<Map<String, Value>, TokenError> {
    match Value::Object(map).pointer_mut(pointer).map(Value::take) {
        Some(Value::Object(inner)) => Ok(inner),
        Some(_) => Err(TokenError::Invalid {
            field: "token_pointer",
            reason: "does not point at an object",
        }),
        None => Err(TokenError::Missing {
            field: "object at token_pointer",
        }),
    }
}

/// Reads the token fields; `bearer_types` are the provider's own names for bearer tokens
/// (Slack's `bot` and `user`), accepted besides `bearer`.
pub(crate) fn fields(
    mut map: Map<String, Value>,
    bearer_types: &[String],
) -> Result<TokenFields, TokenError> {
    let access_token =
        token_value(map.remove("access_token"), "access_token")?.ok_or(TokenError::Missing {
            field: "access_token",
        })?;
    match map.remove("token_type") {
        Some(Value::String(t)) if bearer_types.iter().any(|b| b.eq_ignore_ascii_case(&t)) => {}
        Some(Value::String(t)) => check_token_type(&t)?,
        Some(_) => {
            return Err(TokenError::Invalid {
                field: "token_type",
                reason: "is not a string",
            });
        }
        None => {
            return Err(TokenError::Missing {
                field: "token_type",
            });
        }
    }
    let refresh_token = token_value(map.remove("refresh_token"), "refresh_token")?;
    let expires_in = lifetime(map.remove("expires_in"), "expires_in")?;
    let scopes = match map.remove("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(split_scopes(&s)),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| v.as_str().map(|s| sanitize(s, 200)))
                .collect::<Option<Vec<_>>>()
                .ok_or(TokenError::Invalid {
                    field: "scope",
                    reason: "is not a list of strings",
                })?,
        ),
        Some(_) => {
            return Err(TokenError::Invalid {
                field: "scope",
                reason: "is not a string",
            });
        }
    };
    if scopes.as_ref().is_some_and(|s| s.len() > MAX_SCOPES) {
        return Err(TokenError::Invalid {
            field: "scope",
            reason: "lists too many scopes",
        });
    }
    Ok(TokenFields {
        access_token,
        refresh_token,
        expires_in,
        scopes,
        extra: map,
    })
}

/// The host's one rule for a token type: bearer, in any case.
pub(crate) fn check_token_type(token_type: &str) -> Result<(), TokenError> {
    if token_type.eq_ignore_ascii_case("bearer") {
        Ok(())
    } else {
        Err(TokenError::UnsupportedTokenType(sanitize(token_type, 40)))
    }
}

/// Reads a lifetime in seconds: a number or a numeric string. Zero or negative means "no usable
/// lifetime" (`None`): treating it as "expired now" would refresh on every use. Fractions are
/// truncated. Huge values are kept; turning them into a date uses checked arithmetic.
pub(crate) fn lifetime(v: Option<Value>, field: &'static str) -> Result<Option<u64>, TokenError> {
    let seconds: f64 = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.trim().parse::<f64>().map_err(|_| TokenError::Invalid {
            field,
            reason: "is not a number",
        })?,
        Some(_) => {
            return Err(TokenError::Invalid {
                field,
                reason: "is not a number",
            });
        }
    };
    if !seconds.is_finite() {
        return Err(TokenError::Invalid {
            field,
            reason: "is not a finite number",
        });
    }
    // `as` saturates: 1e300 becomes u64::MAX, which date arithmetic then treats as "never".
    Ok((seconds >= 1.0).then_some(seconds as u64))
}

/// Splits a scope string on spaces and commas (GitHub separates with commas).
pub(crate) fn split_scopes(s: &str) -> Vec<String> {
    s.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(|s| sanitize(s, 200))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_after_is_honoured_up_to_a_day() {
        let after = |value: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::RETRY_AFTER, value.parse().unwrap());
            retry_after(&h)
        };
        assert_eq!(after("7"), Some(Duration::from_secs(7)));
        assert_eq!(after("86400"), Some(Duration::from_secs(86_400)));
        assert_eq!(after("999999999"), Some(Duration::from_secs(24 * 3600)));
        assert_eq!(after("soon"), None);
        assert_eq!(retry_after(&http::HeaderMap::new()), None);
    }
    use serde_json::json;

    fn resp(status: u16, body: Value) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap()
    }

    fn run(status: u16, body: Value) -> Result<TokenFields, TokenError> {
        classify(&resp(status, body), &|_| None)
    }

    /// What mutation testing found unpinned: the token length limit, `"error": null`, the
    /// unavailable statuses, the kind named for a body that is no object, the extras kept,
    /// the carried refresh token.
    #[test]
    fn the_parsers_edges_are_where_they_are_said_to_be() {
        // 16 KiB of token is accepted, a byte more refused.
        assert_eq!(MAX_TOKEN_LEN, 16_384);
        assert!(token_text("a".repeat(MAX_TOKEN_LEN), "access_token").is_ok());
        assert!(token_text("a".repeat(MAX_TOKEN_LEN + 1), "access_token").is_err());
        // `"error": null` or empty is no error.
        for error in [json!(null), json!("")] {
            let t = run(
                200,
                json!({"access_token": "a", "token_type": "bearer", "error": error}),
            );
            assert!(t.is_ok(), "{error}");
        }
        // 429 and 503 are "try later", each of them.
        for status in [429, 503] {
            assert!(
                matches!(
                    run(status, json!({})),
                    Err(TokenError::Unavailable { status: s, .. }) if s == status
                ),
                "{status}"
            );
        }
        // What a body that is no object is, by name.
        for (body, kind) in [
            (json!([1]), "an array"),
            (json!("x"), "a string"),
            (json!(7), "a number"),
            (json!(true), "a boolean"),
            (json!(null), "null"),
        ] {
            assert!(
                matches!(run(200, body.clone()), Err(TokenError::NotObject { found }) if found == kind),
                "{body}"
            );
        }
        // The provider's other fields are kept as the token's extras.
        let fields = run(
            200,
            json!({"access_token": "a", "token_type": "bearer", "team": "T1"}),
        )
        .unwrap();
        let token = fields
            .into_token(&crate::oauth2::StandardToken, Utc::now(), &[])
            .unwrap();
        assert_eq!(token.extra.0.get("team"), Some(&json!("T1")));
        // A secret (an API key, a password) may not hold a space or a format character, each.
        assert!(secret_text("k3y-ü".into(), "key").is_ok());
        assert!(secret_text("a b".into(), "key").is_err());
        assert!(secret_text("a\u{202e}b".into(), "key").is_err());
        assert!(secret_text(String::new(), "key").is_err());
        // A nested token is found at its pointer, and only there.
        let answer =
            json!({"ok": true, "authed_user": {"access_token": "u", "token_type": "user"}});
        let inner = nested(answer.as_object().unwrap().clone(), "/authed_user").unwrap();
        assert_eq!(inner.get("access_token"), Some(&json!("u")));
        assert!(nested(answer.as_object().unwrap().clone(), "/ok").is_err());
        assert!(nested(answer.as_object().unwrap().clone(), "/missing").is_err());
        // A provider's own token types are accepted only when configured; bearer always.
        let typed = |t: &str, types: &[String]| {
            let map = json!({"access_token": "a", "token_type": t});
            super::fields(map.as_object().unwrap().clone(), types)
        };
        assert!(typed("user", &["User".to_owned()]).is_ok());
        assert!(typed("user", &[]).is_err());
        assert!(typed("BEARER", &[]).is_ok());
        // 256 scopes are kept, 257 refused.
        let scopes = |n: usize| {
            let list: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
            run(
                200,
                json!({"access_token": "a", "token_type": "bearer", "scope": list.join(" ")}),
            )
        };
        assert_eq!(
            scopes(MAX_SCOPES).unwrap().scopes.unwrap().len(),
            MAX_SCOPES
        );
        assert!(scopes(MAX_SCOPES + 1).is_err());
        // A refresh token carried by any answer is found.
        let map = json!({"refresh_token": "rt-1", "token_type": "mac"});
        let carried = carried_refresh_token(map.as_object().unwrap());
        assert_eq!(carried.as_ref().map(|s| s.expose()), Some("rt-1"));
    }

    #[test]
    fn lenient_where_providers_are() {
        let t = run(200, json!({"access_token":"a","token_type":"Bearer","expires_in":"3600","scope":"repo,gist"}))
            .unwrap();
        assert_eq!(t.expires_in, Some(3600));
        assert_eq!(t.scopes.unwrap(), vec!["repo", "gist"]);
        let t = run(
            200,
            json!({"access_token":"a","token_type":"bearer","expires_in":12.9}),
        )
        .unwrap();
        assert_eq!(t.expires_in, Some(12));
    }

    #[test]
    fn lifetimes_never_panic() {
        for (v, want) in [
            (json!(0), None),
            (json!(-5), None),
            (json!(1e300), Some(u64::MAX)),
            (json!("18446744073709551616"), Some(u64::MAX)),
        ] {
            assert_eq!(
                lifetime(Some(v.clone()), "expires_in").unwrap(),
                want,
                "{v}"
            );
        }
        assert!(lifetime(Some(json!("soon")), "expires_in").is_err());
    }

    #[test]
    fn error_inside_200_is_a_provider_error() {
        let e = run(
            200,
            json!({"error":"bad_verification_code","error_description":"x\u{1b}[2J"}),
        )
        .err()
        .unwrap();
        let TokenError::Provider(p) = e else {
            panic!("{e:?}")
        };
        assert_eq!(p.code, "bad_verification_code");
        assert_eq!(p.description.as_deref(), Some("x[2J"));
    }

    #[test]
    fn unsafe_tokens_refused() {
        for body in [
            json!({"token_type":"bearer"}),
            json!({"access_token":"","token_type":"bearer"}),
            json!({"access_token":"a\r\nSet-Cookie: x","token_type":"bearer"}),
            json!({"access_token":"AT\u{202e}gnp.exe","token_type":"bearer"}),
            json!({"access_token":"caf\u{e9}","token_type":"bearer"}),
            json!({"access_token":"a","refresh_token":"RT\u{2028}y","token_type":"bearer"}),
            json!({"access_token":"a".repeat(MAX_TOKEN_LEN + 1),"token_type":"bearer"}),
            json!({"access_token":"a","token_type":"mac"}),
            json!({"access_token":"a"}),
        ] {
            assert!(run(200, body.clone()).is_err(), "{body}");
        }
    }
}
