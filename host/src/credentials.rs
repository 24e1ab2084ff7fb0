//! App credentials: immutable, typed, schema-validated values, and the secret newtype.
//!
//! Every provider describes its app credentials (client id, endpoints, …) as a Rust type that
//! derives [`serde::Deserialize`] and [`schemars::JsonSchema`]. Before any flow is built, the
//! raw configuration section is validated against that type's JSON schema, and a failure lists
//! **every** failing field by its configuration path together with where the value came from
//! (which file, which environment variable) or where a missing value can be set.
//!
//! Validation messages never quote the offending value: a mistyped secret must not end up in a
//! terminal, a log or a bug report.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A secret string (client secret, access token, API key).
///
/// `Debug` prints `SecretString([redacted])` and `Display` prints `[redacted]`; the value is read
/// only through [`SecretString::expose`]. There is deliberately no `PartialEq`: compare secrets
/// in constant time with [`SecretString::ct_eq`].
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Every call site is a place where the secret leaves its wrapper.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares two secrets in constant time (for equal lengths).
    pub fn ct_eq(&self, other: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A type usable as a provider's app credentials: deserializable and described by a JSON schema.
///
/// Implemented for every such type; derive `Deserialize` and `JsonSchema` and you are done.
pub trait AppCredentials: DeserializeOwned + JsonSchema + Send + Sync + 'static {}

impl<T: DeserializeOwned + JsonSchema + Send + Sync + 'static> AppCredentials for T {}

/// Where a configuration value came from, or where it could be set.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A built-in default of the program.
    Default,
    /// A configuration file.
    File(PathBuf),
    /// An environment variable, by name.
    EnvVar(String),
    /// A command-line flag, by name.
    Flag(String),
    /// Set by code (a library user building a provider by hand).
    Code,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in default"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::EnvVar(name) => write!(f, "environment variable {name}"),
            Origin::Flag(name) => write!(f, "flag {name}"),
            Origin::Code => f.write_str("code"),
        }
    }
}

/// Answers where a configuration value came from and where a missing one could be set.
///
/// Implemented by the layered [`Config`](crate::config::Config); library users who build
/// providers from code can use [`CodeOrigins`].
pub trait OriginLookup: Send + Sync {
    /// Where the value at `path` (e.g. `["providers", "github", "client_id"]`) came from.
    fn origin(&self, path: &[&str]) -> Option<Origin>;
    /// Where a value at `path` could be set, most natural first.
    fn where_to_set(&self, path: &[&str]) -> Vec<Origin>;
}

/// The [`OriginLookup`] for values given by code: everything comes from [`Origin::Code`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CodeOrigins;

impl OriginLookup for CodeOrigins {
    fn origin(&self, _path: &[&str]) -> Option<Origin> {
        Some(Origin::Code)
    }
    fn where_to_set(&self, _path: &[&str]) -> Vec<Origin> {
        vec![Origin::Code]
    }
}

/// One failing field of an app-credentials set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// The full configuration path, e.g. `providers.github.client_id`.
    pub path: String,
    /// What is wrong, without quoting the value (e.g. `is missing`, `must be a string`).
    pub problem: String,
    /// Where the failing value came from.
    pub origin: Option<Origin>,
    /// Where a missing value could be set (empty when the value is present).
    pub set_with: Vec<Origin>,
}

impl fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path, self.problem)?;
        if let Some(origin) = &self.origin {
            write!(f, " (from {origin})")?;
        } else if !self.set_with.is_empty() {
            f.write_str("; set it in ")?;
            for (i, origin) in self.set_with.iter().enumerate() {
                if i > 0 {
                    f.write_str(if i + 1 == self.set_with.len() {
                        " or "
                    } else {
                        ", "
                    })?;
                }
                write!(f, "{origin}")?;
            }
        }
        Ok(())
    }
}

/// App credentials that do not satisfy their schema: every failing field, with its source.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid app credentials for provider `{provider}`:{}", list(.issues))]
pub struct ValidationError {
    /// The provider whose credentials failed.
    pub provider: String,
    /// Each failing field.
    pub issues: Vec<FieldIssue>,
}

fn list(issues: &[FieldIssue]) -> String {
    issues.iter().map(|i| format!("\n  - {i}")).collect()
}

/// A provider's raw app-credentials section, as configured, with the origin of each value.
#[derive(Clone)]
pub struct RawAppCredentials {
    provider: String,
    section: Vec<String>,
    value: Value,
    origins: Arc<dyn OriginLookup>,
}

impl fmt::Debug for RawAppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The section may hold a client secret: show only which keys are set.
        let keys: Vec<&str> = match &self.value {
            Value::Object(map) => map.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        f.debug_struct("RawAppCredentials")
            .field("provider", &self.provider)
            .field("keys", &keys)
            .finish()
    }
}

impl RawAppCredentials {
    /// A section for `provider` found at `section` (e.g. `["providers", "github"]`).
    pub fn new(
        provider: impl Into<String>,
        section: Vec<String>,
        value: Value,
        origins: Arc<dyn OriginLookup>,
    ) -> Self {
        Self {
            provider: provider.into(),
            section,
            value,
            origins,
        }
    }

    /// Credentials given directly by code, for library users and tests.
    pub fn from_code(provider: impl Into<String>, value: Value) -> Self {
        let provider = provider.into();
        let section = vec!["providers".to_owned(), provider.clone()];
        Self::new(provider, section, value, Arc::new(CodeOrigins))
    }

    /// The same section with another value (same provider, path and origins).
    pub fn with_value(&self, value: Value) -> Self {
        Self {
            value,
            ..self.clone()
        }
    }

    /// The provider these credentials belong to.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The raw JSON value (may contain secrets: never print it).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Validates against `C`'s JSON schema, then builds the typed value.
    pub fn parse<C: AppCredentials>(&self) -> Result<C, ValidationError> {
        let schema = schemars::schema_for!(C);
        let value = self.validate_against(schema.as_value())?;
        serde_json::from_value(value).map_err(|e| {
            // serde's message may quote the value; keep only its position-free category.
            let problem = match e.classify() {
                serde_json::error::Category::Data => "does not have the expected shape",
                _ => "could not be read",
            };
            self.error(vec![self.issue(&[], problem.to_owned())])
        })
    }

    /// Validates against a JSON schema given as a value (e.g. one a plugin exports), and returns
    /// the validated value.
    ///
    /// A number or boolean given where the schema wants a string (a numeric client id from an
    /// environment variable or a TOML file) is taken as that string first.
    pub fn validate_against(&self, schema: &Value) -> Result<Value, ValidationError> {
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|_| {
                self.error(vec![
                    self.issue(&[], "has an invalid JSON schema".to_owned()),
                ])
            })?;
        let value = coerce_to_strings(&self.value, schema);
        let mut issues = Vec::new();
        for error in validator.iter_errors(&value) {
            let at: Vec<String> = error
                .instance_path()
                .iter()
                .map(|s| s.to_string())
                .collect();
            use jsonschema::error::ValidationErrorKind as K;
            match error.kind() {
                K::Required { property } => {
                    let mut path = at.clone();
                    path.push(property.as_str().unwrap_or_default().to_owned());
                    issues.push(self.missing(&path));
                }
                K::AdditionalProperties { unexpected } => {
                    for name in unexpected {
                        let mut path = at.clone();
                        path.push(name.clone());
                        issues.push(self.issue(&path, "is not a known setting".to_owned()));
                    }
                }
                kind => issues.push(self.issue(&at, describe(kind))),
            }
        }
        if issues.is_empty() {
            Ok(value)
        } else {
            Err(self.error(issues))
        }
    }

    fn error(&self, issues: Vec<FieldIssue>) -> ValidationError {
        ValidationError {
            provider: self.provider.clone(),
            issues,
        }
    }

    fn full_path<'a>(&'a self, rel: &'a [String]) -> Vec<&'a str> {
        self.section.iter().chain(rel).map(String::as_str).collect()
    }

    /// A present value that is wrong, with where it came from.
    fn issue(&self, rel: &[String], problem: String) -> FieldIssue {
        let full = self.full_path(rel);
        let origin = if rel.is_empty() {
            None
        } else {
            self.origins.origin(&full)
        };
        FieldIssue {
            path: full.join("."),
            problem,
            origin,
            set_with: vec![],
        }
    }

    /// A missing value, with where it could be set.
    fn missing(&self, rel: &[String]) -> FieldIssue {
        let full = self.full_path(rel);
        let set_with = self.origins.where_to_set(&full);
        FieldIssue {
            path: full.join("."),
            problem: "is missing".to_owned(),
            origin: None,
            set_with,
        }
    }
}

/// Turns top-level numbers and booleans into strings where the schema's property wants a string.
fn coerce_to_strings(value: &Value, schema: &Value) -> Value {
    let mut value = value.clone();
    let (Some(map), Some(props)) = (value.as_object_mut(), schema.get("properties")) else {
        return value;
    };
    for (key, v) in map.iter_mut() {
        let wants_string = props.get(key).is_some_and(|p| accepts_string(p, schema, 0));
        if wants_string && (v.is_number() || v.is_boolean()) {
            *v = Value::String(v.to_string());
        }
    }
    value
}

/// Whether a (sub)schema accepts a string, following local `$ref`s and `anyOf`/`oneOf`.
fn accepts_string(sub: &Value, root: &Value, depth: u8) -> bool {
    if depth > 8 {
        return false;
    }
    let string = Value::from("string");
    match sub.get("type") {
        Some(t) if *t == string => return true,
        Some(Value::Array(types)) if types.contains(&string) => return true,
        _ => {}
    }
    if let Some(target) = sub
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
    {
        return root
            .pointer(target)
            .is_some_and(|t| accepts_string(t, root, depth + 1));
    }
    ["anyOf", "oneOf"].iter().any(|k| {
        sub.get(*k)
            .and_then(Value::as_array)
            .is_some_and(|alts| alts.iter().any(|a| accepts_string(a, root, depth + 1)))
    })
}

/// A value-free description of a schema violation.
fn describe(kind: &jsonschema::error::ValidationErrorKind) -> String {
    use jsonschema::error::{TypeKind, ValidationErrorKind as K};
    match kind {
        K::Type {
            kind: TypeKind::Single(t),
        } => format!("must be of type {t}"),
        K::Type {
            kind: TypeKind::Multiple(ts),
        } => {
            let names: Vec<String> = ts.iter().map(|t| t.to_string()).collect();
            format!("must be one of the types {}", names.join(", "))
        }
        K::Format { format } => format!("must be a valid {format}"),
        K::Enum { options } => format!("must be one of {options}"),
        K::Constant { expected_value } => format!("must be {expected_value}"),
        K::MinLength { limit: 1 } => "must not be empty".to_owned(),
        K::MinLength { limit } => format!("must be at least {limit} characters long"),
        K::MaxLength { limit } => format!("must be at most {limit} characters long"),
        K::MinItems { limit } => format!("must have at least {limit} items"),
        K::MaxItems { limit } => format!("must have at most {limit} items"),
        K::Minimum { limit } => format!("must be at least {limit}"),
        K::Maximum { limit } => format!("must be at most {limit}"),
        K::Pattern { pattern } => format!("must match the pattern {pattern}"),
        K::AnyOf { context } | K::OneOfNotValid { context } => {
            // `Option<T>` and enums become `anyOf`/`oneOf`: name the accepted types.
            let mut types: Vec<String> = Vec::new();
            for error in context.iter().flatten() {
                if let K::Type {
                    kind: TypeKind::Single(t),
                } = error.kind()
                {
                    let t = t.to_string();
                    if !types.contains(&t) {
                        types.push(t);
                    }
                } else {
                    return "does not match any of the accepted forms".to_owned();
                }
            }
            format!("must be of type {}", types.join(" or "))
        }
        other => format!("is invalid (violates `{}`)", other.keyword()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Creds {
        client_id: String,
        client_secret: Option<SecretString>,
        port: u16,
    }

    #[test]
    fn secret_is_redacted() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?}"), "SecretString([redacted])");
        assert_eq!(s.to_string(), "[redacted]");
        assert!(s.ct_eq("hunter2"));
        assert!(!s.ct_eq("hunter3"));
    }

    #[test]
    fn every_failing_field_is_listed_without_its_value() {
        let raw = RawAppCredentials::from_code(
            "acme",
            serde_json::json!({ "client_secret": [42], "port": "s3cr3t-port" }),
        );
        let err = raw.parse::<Creds>().err().expect("must fail");
        let text = err.to_string();
        assert_eq!(err.issues.len(), 3, "{text}");
        assert!(
            text.contains("providers.acme.client_id is missing"),
            "{text}"
        );
        assert!(
            text.contains("providers.acme.client_secret must be"),
            "{text}"
        );
        assert!(text.contains("providers.acme.port must be"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn valid_credentials_parse() {
        let raw = RawAppCredentials::from_code(
            "acme",
            serde_json::json!({ "client_id": "id", "port": 8080 }),
        );
        let c = raw.parse::<Creds>().expect("valid");
        assert_eq!(c.client_id, "id");
        assert_eq!(c.port, 8080);
    }
}
