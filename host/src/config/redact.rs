//! Secrets kept out of sight: which keys are secret, and settings, URLs and parse errors
//! shown without their values.

use figment::value::{Dict, Value as FigValue};

/// Keys whose values are never shown (also a URL's query parameters of these names): any
/// `…secret`, `…password`, `…passphrase`, `…token` (`bot_token`, `refresh_token`), `key` or
/// `…_key` (`private_key`, `api_key`), `apikey`; and, as a key is often misspelt where it
/// matters most, any key holding `secret`, `passw` or `passphrase`, or a word one typing slip
/// from `secret` or `password` (`client_secrett`, `secret_client`, `client_secert`).
pub(crate) fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key == "key"
        || [
            "secret",
            "password",
            "passphrase",
            "token",
            "_key",
            "apikey",
        ]
        .iter()
        .any(|s| key.ends_with(s))
    {
        return true;
    }
    let letters: String = key.chars().filter(char::is_ascii_alphanumeric).collect();
    if ["secret", "passw", "passphrase"]
        .iter()
        .any(|m| letters.contains(m))
    {
        return true;
    }
    // One slip (a letter added, dropped, changed, or two swapped) from a marker word.
    ["secret", "password"].iter().any(|marker| {
        (marker.len() - 1..=marker.len() + 1).any(|width| {
            letters.len() >= width
                && (0..=letters.len() - width)
                    .any(|at| strsim::damerau_levenshtein(&letters[at..at + width], marker) <= 1)
        })
    })
}

/// A URL value with a password (`http://user:pass@proxy:3128`) or a query parameter named
/// like a secret keeps everything but those values; a text that looks like a URL with
/// credentials but does not parse loses everything between `://` and `@`.
pub(super) fn redact_url_password(value: serde_json::Value) -> serde_json::Value {
    if let Some(text) = value.as_str()
        && url::Url::parse(text).is_err()
        && let Some((scheme, rest)) = text.split_once("://")
        && let Some((_, host)) = rest.rsplit_once('@')
    {
        return serde_json::Value::String(format!("{scheme}://[redacted]@{host}"));
    }
    let Some(mut url) = value.as_str().and_then(|s| url::Url::parse(s).ok()) else {
        return value;
    };
    let mut redacted = url.password().is_some() && url.set_password(Some("redacted")).is_ok();
    // A secret in the query (`postgres://…?password=…`, `https://…?api_key=…`).
    if url.query_pairs().any(|(name, _)| is_secret(&name)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_secret(&name) {
                    "redacted".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        redacted = true;
    }
    if redacted {
        serde_json::Value::String(url.to_string())
    } else {
        value
    }
}

/// Every leaf under `dict`; a value under a secret key (`client_secret = { value = "…" }`)
/// is secret however deep it sits.
pub(super) fn walk(prefix: &str, dict: &Dict, out: &mut Vec<(String, serde_json::Value)>) {
    walk_under(prefix, dict, false, out);
}

fn walk_under(prefix: &str, dict: &Dict, secret: bool, out: &mut Vec<(String, serde_json::Value)>) {
    for (key, value) in dict {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let secret = secret || is_secret(key);
        match value {
            FigValue::Dict(_, child) => walk_under(&path, child, secret, out),
            leaf => {
                let shown = if secret {
                    serde_json::Value::from("[redacted]")
                } else {
                    redact_url_password(leaf.deserialize::<serde_json::Value>().unwrap_or_default())
                };
                out.push((path, shown));
            }
        }
    }
}

/// `text` with whatever sits between backticks replaced by `…`.
pub(super) fn without_quoted(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { "…" } else { part })
        .collect::<Vec<_>>()
        .join("`")
}

/// A figment error without values (it may quote a secret): its kind, path and source.
pub(super) fn describe(e: figment::Error) -> String {
    let mut out = String::new();
    for e in e {
        // `found` values are shown by their kind only (`string`, not the string itself).
        let kind_of = |found: &figment::error::Actual| {
            found
                .to_string()
                .split(' ')
                .next()
                .unwrap_or("value")
                .to_owned()
        };
        let kind = match &e.kind {
            figment::error::Kind::InvalidType(found, expected)
            | figment::error::Kind::InvalidValue(found, expected) => {
                format!("expected {expected}, found {}", kind_of(found))
            }
            figment::error::Kind::UnknownVariant(_, expected) => {
                format!("expected one of {}", expected.join(", "))
            }
            figment::error::Kind::Message(m) => m.clone(),
            other => other.to_string(),
        };
        let path = e.path.join(".");
        let source = e.metadata.as_ref().map(|m| match &m.source {
            Some(figment::Source::File(p)) => format!(" in {}", p.display()),
            _ => format!(" in {}", m.name),
        });
        out.push_str(&format!(
            "{}{kind}{}",
            if path.is_empty() {
                String::new()
            } else {
                format!("{path}: ")
            },
            source.unwrap_or_default()
        ));
        out.push_str("; ");
    }
    out.trim_end_matches("; ").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_passwords_and_secret_keys_are_hidden() {
        let shown = redact_url_password(json!("http://me:hunter2@proxy.example:3128/"));
        assert_eq!(shown, json!("http://me:redacted@proxy.example:3128/"));
        assert_eq!(
            redact_url_password(json!("https://api.github.com")),
            json!("https://api.github.com")
        );
        assert!(
            is_secret("client_secret") && is_secret("refresh_token") && !is_secret("token_url")
        );
        // Misspelt secrets are secrets; the usual settings are not.
        for key in [
            "client_secrett",
            "clientsecret",
            "secret_client",
            "client_secert",
            "client_secrt",
            "Client-Secret",
            "pasword",
            "db_passwd",
            "bot_token",
        ] {
            assert!(is_secret(key), "{key}");
        }
        for key in [
            "client_id",
            "token_url",
            "authorize_url",
            "device_authorization_url",
            "revocation_url",
            "redirect_uri",
            "scopes",
            "client_auth",
            "issuer",
            "token_pointer",
            "bearer_token_types",
            "identify_url",
            "api_url",
            "verify_url",
            "git_host",
            "lock_timeout_secs",
            "key_file",
            "proxy",
        ] {
            assert!(!is_secret(key), "{key}");
        }
        // Not a URL, but credentials all the same.
        let shown = redact_url_password(json!("http://me:hunter2@proxy example:3128/"));
        assert_eq!(shown, json!("http://[redacted]@proxy example:3128/"));
    }
}
