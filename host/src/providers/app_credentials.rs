//! App credentials: immutable, typed, schema-validated values, and where each value came from.
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

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A type usable as a provider's app credentials: deserializable and described by a JSON schema.
///
/// Implemented for every such type; derive `Deserialize` and `JsonSchema` and you are done.
pub trait AppCredentials: DeserializeOwned + JsonSchema + Send + Sync + 'static {}

impl<T: DeserializeOwned + JsonSchema + Send + Sync + 'static> AppCredentials for T {}

/// App credentials of a built-in provider whose JSON schema is also compiled into the program:
/// checked by a validator `jsonschema` generated at build time, not one built at run time.
///
/// Building a validator is most of what checking app credentials costs a short-lived process
/// (~200 µs cold, against ~10 µs for the generated one), and schemars making the schema another
/// ~50 µs. The schema is kept as a file under `host/schemas/`, which a test holds equal to what
/// schemars makes of the type (`compiled_schema!` declares both). The provider that owns the
/// type checks its sections with
/// [`ProviderSection::parse_compiled`](crate::providers::section::ProviderSection::parse_compiled): no list here
/// names the types (a list of implementations in this low module would import every provider
/// and close a circle).
pub(crate) trait CompiledSchema: AppCredentials {
    /// The type's schema (parsed once per process).
    fn schema() -> &'static Value;
    /// Every way `value` fails the schema, from the generated validator.
    fn iter_errors(value: &Value) -> jsonschema::ErrorIterator<'_>;
}

/// Declares [`CompiledSchema`] for `$ty` with the schema file `$file` (relative to `host/`): the
/// validator generated from it, and the schema itself read from the program's own copy.
macro_rules! compiled_schema {
    ($ty:ty, $validator:ident, $file:literal) => {
        #[jsonschema::validator(path = $file, validate_formats = true)]
        struct $validator;

        impl crate::providers::app_credentials::CompiledSchema for $ty {
            fn schema() -> &'static serde_json::Value {
                static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
                SCHEMA.get_or_init(|| {
                    serde_json::from_str(include_str!(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/",
                        $file
                    )))
                    .expect("the schema file is JSON (checked by the tests)")
                })
            }

            fn iter_errors(value: &serde_json::Value) -> jsonschema::ErrorIterator<'_> {
                $validator::iter_errors(value)
            }
        }
    };
}
pub(crate) use compiled_schema;

/// Whether the schema file `file` a type's validator is generated from is what schemars makes
/// of the type now: `None` when it is; else what is stale. With `HOST_WRITE_SCHEMAS` set, a
/// stale file is written again (and still reported: the next build generates the validator
/// from it, the next run checks it). Each owner of a [`CompiledSchema`] type tests its own.
#[cfg(test)]
pub(crate) fn stale_schema_file<C: CompiledSchema>(file: &str) -> Option<String> {
    let now = serde_json::to_value(schemars::schema_for!(C)).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("JSON");
    if kept != now && std::env::var_os("HOST_WRITE_SCHEMAS").is_some() {
        let text = serde_json::to_string_pretty(&now).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        return Some(format!(
            "{file} (written again: build and run the test again)"
        ));
    }
    // The program's own copy is the file (read from it at build time).
    assert_eq!(C::schema(), &kept, "{file}: the program's copy");
    (kept != now).then(|| {
        format!(
            "{file} no longer matches its type: HOST_WRITE_SCHEMAS=1 cargo test -p host schema_file"
        )
    })
}

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
    /// The provider catalog's entry for this provider.
    Catalog(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in default"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::EnvVar(name) => write!(f, "environment variable {name}"),
            Origin::Flag(name) => write!(f, "flag {name}"),
            Origin::Code => f.write_str("code"),
            Origin::Catalog(name) => write!(f, "the provider catalog's `{name}` entry"),
        }
    }
}

/// Answers where a configuration value came from and where a missing one could be set.
///
/// Implemented by the layered [`Config`](crate::config::Config); library users who build providers
/// from code can use [`CodeOrigins`].
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

/// Turns top-level numbers and booleans into strings where the schema's property wants a string.
pub(crate) fn coerce_to_strings(value: &Value, schema: &Value) -> Value {
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
pub(crate) fn describe(kind: &jsonschema::error::ValidationErrorKind) -> String {
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
        // JSON pointers (`token_pointer`, `identify_pointer`) are checked by the pattern `^/`.
        K::Pattern { pattern } if pattern == "^/" => "must start with `/`".to_owned(),
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
