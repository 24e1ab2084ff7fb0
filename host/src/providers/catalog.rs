//! The provider catalog: well-known OAuth2 and OpenID Connect providers as data
//! (`catalog/providers.toml`, compiled in, one entry per provider, each citing the provider's
//! own documentation).
//!
//! An entry is the defaults of a `[providers.NAME]` section: a user enables one with just a
//! client id (`[providers.google] client_id = "…"`, or `GOOGLE_CLIENT_ID`), and anything the
//! section sets overrides the entry. Tenant- or host-specific endpoints use placeholders
//! (`https://login.microsoftonline.com/{tenant}/…`) filled from the section's keys of the same
//! name (`tenant = "contoso.onmicrosoft.com"`), or their default.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::flow::binding::Binding;
use crate::oauth2::{ClientAuth, TokenRequestFormat};

/// The catalog's source, as compiled in.
pub const SOURCE: &str = include_str!("../../catalog/providers.toml");

/// One provider of the catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CatalogEntry {
    /// The provider's name for people ("Google").
    pub display_name: String,
    /// The provider's own documentation page the entry was checked against.
    pub docs: String,
    /// The authorization endpoint (may hold placeholders); none for an entry whose flow is
    /// unattended (`flow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    /// The default flow, when not the browser's: an unattended one (`jwt_bearer`, …) for an
    /// entry made for machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// The token endpoint.
    pub token_url: String,
    /// The device authorization endpoint (RFC 8628).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_url: Option<String>,
    /// The revocation endpoint (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    /// The OpenID Connect issuer (discovery and `id_token` validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Other `iss` values the provider's `id_token`s carry for the same issuer (Google's
    /// `accounts.google.com` beside `https://accounts.google.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_issuers: Option<Vec<String>>,
    /// Scopes asked for when the user names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// What joins scopes, when not a space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_separator: Option<String>,
    /// `false` for a provider that refuses PKCE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce: Option<bool>,
    /// How the client authenticates at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// Extra authorization parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_params: Option<BTreeMap<String, String>>,
    /// Extra token-request parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_params: Option<BTreeMap<String, String>>,
    /// How token and revocation requests are encoded, when not a form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_request: Option<TokenRequestFormat>,
    /// The authorization parameter that carries the scopes, when not `scope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_param: Option<String>,
    /// The device authorization parameter that carries the scopes, when not `scope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_scope_param: Option<String>,
    /// Where the token is nested in the token response (a JSON pointer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_pointer: Option<String>,
    /// The provider's own names for bearer tokens (Slack's `bot`, `user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_types: Option<Vec<String>>,
    /// The API's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Where the current user is, with the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identify_url: Option<String>,
    /// The JSON pointer of the login name in `identify_url`'s answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identify_pointer: Option<String>,
    /// How the token goes on API requests, when not as a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<Binding>,
    /// What a user must know to set the provider up (an app setting to turn on, a flow the
    /// provider enables only on request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The placeholders the URLs use.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub placeholders: BTreeMap<String, Placeholder>,
}

/// A part of an entry's endpoints that differs per tenant, domain or host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Placeholder {
    /// What the user puts there.
    pub description: String,
    /// A realistic value.
    pub example: String,
    /// The value when the user gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl CatalogEntry {
    /// The entry as the defaults of a provider section: every setting, and the placeholders'
    /// defaults under their own names.
    pub fn section_defaults(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            for key in ["display_name", "docs", "placeholders", "notes"] {
                map.remove(key);
            }
            for (name, p) in &self.placeholders {
                if let Some(default) = &p.default {
                    map.insert(name.clone(), Value::String(default.clone()));
                }
            }
        }
        value
    }

    /// Whether the entry names a device authorization endpoint (an entry with an issuer may
    /// also get one from discovery).
    pub fn has_device_flow(&self) -> bool {
        self.device_authorization_url.is_some()
    }
}

/// Every entry, by name.
#[derive(Debug)]
pub struct Catalog {
    entries: BTreeMap<String, CatalogEntry>,
}

impl Catalog {
    /// Parses a catalog (the compiled-in one is [`catalog`]).
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        Ok(Self {
            entries: toml::from_str(text)?,
        })
    }

    /// The entry `name`.
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.get(name)
    }

    /// Every entry, sorted by name.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &CatalogEntry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The names of the compiled-in entries, in order, found by scanning the source for its
/// top-level tables: no TOML is parsed (a command that names no catalog provider pays
/// nothing for the catalog).
pub fn names() -> impl Iterator<Item = &'static str> {
    SOURCE.lines().filter_map(|line| {
        let name = line.strip_prefix('[')?.strip_suffix(']')?;
        (!name.contains('.') && !name.is_empty()).then_some(name)
    })
}

/// Whether the catalog has an entry `name` (no TOML is parsed).
pub fn contains(name: &str) -> bool {
    names().any(|n| n == name)
}

/// The entry `name`, parsed alone from its part of the source (its table and subtables): what
/// enabling one provider costs. The same as `catalog().get(name)`, without parsing the rest.
pub fn entry(name: &str) -> Option<CatalogEntry> {
    let header = format!("[{name}]");
    let start = SOURCE.lines().position(|l| l == header)?;
    let sub = format!("[{name}.");
    let text: Vec<&str> = SOURCE
        .lines()
        .skip(start)
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !l.starts_with('[') || l.starts_with(&sub))
        .map(|(_, l)| l)
        .collect();
    let table: BTreeMap<String, CatalogEntry> = toml::from_str(&text.join("\n")).ok()?;
    table.into_values().next()
}

/// The compiled-in catalog, parsed on first use.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // A test parses and checks every entry: a failure here is a build that skipped them.
        Catalog::parse(SOURCE).expect("the compiled-in provider catalog is valid")
    })
}

/// The environment variable that sets a catalog provider's client id (`GOOGLE_CLIENT_ID`,
/// `GITLAB_SELF_MANAGED_CLIENT_ID`), with `suffix` `CLIENT_ID` or `CLIENT_SECRET`.
pub fn env_var(provider: &str, suffix: &str) -> String {
    format!(
        "{}_{suffix}",
        provider.to_ascii_uppercase().replace('-', "_")
    )
}

/// The `{name}` placeholders in `text`, in order.
pub fn placeholders_in(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        {
            out.push(name);
        }
        rest = &after[end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found() {
        assert_eq!(
            placeholders_in("https://{host}/realms/{realm}/x{"),
            vec!["host", "realm"]
        );
        assert!(placeholders_in("https://a/{Not}/{}").is_empty());
        assert_eq!(
            env_var("gitlab-self-managed", "CLIENT_ID"),
            "GITLAB_SELF_MANAGED_CLIENT_ID"
        );
    }
}
