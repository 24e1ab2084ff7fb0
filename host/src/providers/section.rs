//! A provider's configuration section, `[providers.<name>]`: its app credentials (validated
//! against a schema before any flow is built) and the keys that belong to the host.
//!
//! The host owns these keys of every section and never hands them to a flow or plugin:
//! `flows` (`[providers.X.flows.Y] plugin = "file.wasm"` binds a plugin flow), `sandbox`
//! (`allowed_hosts` narrows what a plugin may reach), `binding` (how the credential goes on a
//! request), `env` (the variable `host exec` puts the token in) and `git_host` (the host git
//! asks `host git-credential` about).

use std::fmt;
#[cfg(feature = "plugins")]
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::providers::app_credentials::{CodeOrigins, FieldIssue, OriginLookup, ValidationError};
use crate::util::text::sanitize;

/// Keys of a provider section that belong to the host, never handed to a flow.
pub(crate) const HOST_KEYS: &[&str] = &["flows", "sandbox", "binding", "env", "git_host"];

/// A provider's raw app-credentials section, as configured, with the origin of each value.
#[derive(Clone)]
pub struct ProviderSection {
    provider: Arc<str>,
    /// Where the section is, when not at `providers.<provider>`: the usual place is derived,
    /// not stored (`host providers` makes a section for every plugin file it lists).
    section: Option<Vec<String>>,
    pub(super) value: Value,
    origins: Arc<dyn OriginLookup>,
}

impl fmt::Debug for ProviderSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The section may hold a client secret: show only which keys are set.
        let keys: Vec<&str> = match &self.value {
            Value::Object(map) => map.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        f.debug_struct("ProviderSection")
            .field("provider", &self.provider)
            .field("keys", &keys)
            .finish()
    }
}

impl ProviderSection {
    /// A section for `provider` found at `section` (e.g. `["providers", "github"]`).
    pub fn new(
        provider: impl Into<String>,
        section: Vec<String>,
        value: Value,
        origins: Arc<dyn OriginLookup>,
    ) -> Self {
        let provider: String = provider.into();
        let at_home = matches!(section.as_slice(), [p, n] if p == "providers" && *n == provider);
        Self {
            provider: provider.into(),
            section: (!at_home).then_some(section),
            value,
            origins,
        }
    }

    /// The section `[providers.<provider>]`.
    pub(crate) fn of_provider(
        provider: &str,
        value: Value,
        origins: Arc<dyn OriginLookup>,
    ) -> Self {
        Self {
            provider: provider.into(),
            section: None,
            value,
            origins,
        }
    }

    /// Credentials given directly by code, for library users and tests.
    pub fn from_code(provider: impl Into<String>, value: Value) -> Self {
        Self::of_provider(&provider.into(), value, Arc::new(CodeOrigins))
    }

    /// The same section with another value (same provider, path and origins).
    pub fn with_value(&self, value: Value) -> Self {
        Self {
            value,
            ..self.clone()
        }
    }

    /// The section on top of `defaults` (a catalog entry's values): what the section sets wins,
    /// tables are merged key by key, and a value only the defaults have is reported as coming
    /// from `origin`.
    pub(crate) fn over_defaults(
        &self,
        defaults: Value,
        origin: crate::providers::app_credentials::Origin,
    ) -> Self {
        let mut value = defaults.clone();
        merge(&mut value, self.value.clone());
        Self {
            value,
            origins: Arc::new(DefaultedOrigins {
                inner: Arc::clone(&self.origins),
                section: self.section_path().map(str::to_owned).collect(),
                defaults,
                origin,
            }),
            ..self.clone()
        }
    }

    /// The provider these credentials belong to.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The provider's name, shared (a [`Provider`](crate::providers::provider::Provider) built from the section
    /// takes it rather than a copy).
    pub(crate) fn provider_name(&self) -> &Arc<str> {
        &self.provider
    }

    /// Where the section is: `providers`, `<provider>` unless it was made elsewhere.
    fn section_path(&self) -> impl Iterator<Item = &str> {
        let (home, elsewhere) = match &self.section {
            Some(path) => (None, path.as_slice()),
            None => (Some(["providers", &*self.provider]), &[][..]),
        };
        home.into_iter()
            .flatten()
            .chain(elsewhere.iter().map(String::as_str))
    }

    /// The raw JSON value (may contain secrets: never print it).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The app credentials alone: the section without the keys the host owns.
    pub fn app_credentials_only(&self) -> Self {
        let mut value = self.value.clone();
        if let Some(map) = value.as_object_mut() {
            for key in HOST_KEYS {
                map.remove(*key);
            }
        }
        self.with_value(value)
    }

    #[cfg(feature = "plugins")]
    /// `[providers.NAME.flows.FLOW] plugin = "file.wasm"` entries, paths resolved against the
    /// plugins folder.
    pub(crate) fn bound_plugin_flows(&self, plugins_dir: &Path) -> Vec<(String, PathBuf)> {
        let Some(flows) = self.value.get("flows").and_then(|f| f.as_object()) else {
            return Vec::new();
        };
        flows
            .iter()
            .filter_map(|(flow, v)| {
                let file = PathBuf::from(v.get("plugin")?.as_str()?);
                Some((flow.clone(), plugins_dir.join(file)))
            })
            .collect()
    }

    #[cfg(feature = "plugins")]
    /// `sandbox.allowed_hosts` as written, if the section narrows what its plugins may reach:
    /// `Err` names the setting when it is not a list of strings.
    pub(crate) fn sandbox_allowed_hosts(&self) -> Result<Option<Vec<&str>>, String> {
        let Some(list) = self.value.pointer("/sandbox/allowed_hosts") else {
            return Ok(None);
        };
        let setting = format!("providers.{}.sandbox.allowed_hosts", self.provider);
        list.as_array()
            .ok_or_else(|| format!("{setting} must be a list of host patterns"))?
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| format!("{setting} must be a list of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The section's `binding`, when it sets one; `Err` names the setting when it is not a
    /// binding.
    pub fn binding(&self) -> Result<Option<crate::flow::binding::Binding>, ValidationError> {
        let Some(value) = self.value.get("binding") else {
            return Ok(None);
        };
        let binding: crate::flow::binding::Binding =
            serde_json::from_value(value.clone()).map_err(|_| {
                self.error(vec![self.issue(
                    &["binding".to_owned()],
                    "must be \"bearer\", \"basic\", { header = \"…\", prefix = \"…\" } or { query = \"…\" }".to_owned(),
                )])
            })?;
        binding.check().map_err(|(part, problem)| {
            self.error(vec![self.issue(
                &["binding".to_owned(), part.to_owned()],
                problem.to_owned(),
            )])
        })?;
        Ok(Some(binding))
    }

    /// The section's `env`: the variable `host exec` sets, when it names one; `Err` names the
    /// setting when it is not a string or names a variable the loader or a shell interprets.
    pub fn exec_env(&self) -> Result<Option<&str>, ValidationError> {
        let Some(value) = self.value.get("env") else {
            return Ok(None);
        };
        let problem = match value.as_str() {
            None => "must be a string",
            Some(name) => match crate::util::names::env_name_problem(name) {
                None => return Ok(Some(name)),
                Some(problem) => problem,
            },
        };
        Err(self.error(vec![self.issue(&["env".to_owned()], problem.to_owned())]))
    }

    /// An error about the value at `rel` (relative to the section), naming where it came from.
    pub(crate) fn field_error(&self, rel: &[String], problem: String) -> ValidationError {
        self.error(vec![self.issue(rel, problem)])
    }

    /// An error for the missing value at `rel`, saying why it is needed and where to set it.
    pub(crate) fn missing_error(&self, rel: &[String], why: &str) -> ValidationError {
        let mut issue = self.missing(rel);
        issue.problem = format!("is missing ({})", sanitize(why, 300));
        self.error(vec![issue])
    }

    pub(super) fn error(&self, issues: Vec<FieldIssue>) -> ValidationError {
        ValidationError {
            provider: self.provider.to_string(),
            issues,
        }
    }

    fn full_path<'a>(&'a self, rel: &'a [String]) -> Vec<&'a str> {
        self.section_path()
            .chain(rel.iter().map(String::as_str))
            .collect()
    }

    /// A present value that is wrong, with where it came from.
    pub(super) fn issue(&self, rel: &[String], problem: String) -> FieldIssue {
        let full = self.full_path(rel);
        let origin = if rel.is_empty() {
            None
        } else {
            self.origins.origin(&full)
        };
        // A plugin's schema chose the property names and the texts (patterns, enums): they
        // reach the terminal only sanitized and capped.
        FieldIssue {
            path: sanitize(&full.join("."), 200),
            problem: sanitize(&problem, 300),
            origin,
            set_with: vec![],
        }
    }

    /// A missing value, with where it could be set.
    pub(super) fn missing(&self, rel: &[String]) -> FieldIssue {
        let full = self.full_path(rel);
        let set_with = self.origins.where_to_set(&full);
        FieldIssue {
            path: sanitize(&full.join("."), 200),
            problem: "is missing".to_owned(),
            origin: None,
            set_with,
        }
    }
}

/// `top` over `base`: objects merged key by key, anything else replaced.
fn merge(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, top) => *slot = top,
    }
}

/// Origins of a section laid over defaults: the section's own, else the defaults'.
struct DefaultedOrigins {
    inner: Arc<dyn OriginLookup>,
    section: Vec<String>,
    defaults: Value,
    origin: crate::providers::app_credentials::Origin,
}

impl OriginLookup for DefaultedOrigins {
    fn origin(&self, path: &[&str]) -> Option<crate::providers::app_credentials::Origin> {
        self.inner.origin(path).or_else(|| {
            let rest = path.strip_prefix(
                self.section
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .as_slice(),
            )?;
            let mut at = &self.defaults;
            for key in rest {
                at = at.get(*key)?;
            }
            Some(self.origin.clone())
        })
    }

    fn where_to_set(&self, path: &[&str]) -> Vec<crate::providers::app_credentials::Origin> {
        self.inner.where_to_set(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_that_cannot_go_on_a_request_is_named_by_its_part() {
        let with = |binding: serde_json::Value| {
            ProviderSection::from_code("acme", serde_json::json!({ "binding": binding }))
                .binding()
                .map_err(|e| e.to_string())
        };
        assert!(matches!(
            with(serde_json::json!({"header": "X-Api-Key", "prefix": "Token "})),
            Ok(Some(_))
        ));
        let bad = [
            (
                serde_json::json!({"header": "X Api Key"}),
                "providers.acme.binding.header is not an HTTP header name",
            ),
            (
                serde_json::json!({"header": "X-K\u{e9}y"}),
                "providers.acme.binding.header is not an HTTP header name",
            ),
            (
                serde_json::json!({"header": "X-Key", "prefix": "a\nb"}),
                "providers.acme.binding.prefix holds a control or non-ASCII character",
            ),
            (
                serde_json::json!({"query": ""}),
                "providers.acme.binding.query is empty",
            ),
            (
                serde_json::json!({"cookie": "k"}),
                "providers.acme.binding must be",
            ),
        ];
        for (binding, expected) in bad {
            let text = with(binding.clone()).expect_err("must fail");
            assert!(text.contains(expected), "{binding}: {text}");
        }
    }
}
