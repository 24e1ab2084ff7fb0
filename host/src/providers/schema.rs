//! Checking a provider section against an app-credentials JSON schema, with a validator built
//! at run time (a plugin's schema) or generated at build time (a built-in type's): each
//! failing field an issue naming where its value came from, and each key the schema does not
//! know named with the nearest known one.

use serde_json::Value;

use crate::providers::app_credentials::{
    AppCredentials, CompiledSchema, FieldIssue, ValidationError, coerce_to_strings, describe,
};
use crate::providers::section::{HOST_KEYS, ProviderSection};
use crate::util::text::sanitize;

/// The validator [`ProviderSection::validate_against`] checks a section with, for an app
/// credentials schema given as a value; `Err` says why it is not a valid JSON schema (a
/// remote `$ref`, which is never fetched, an unknown keyword value), sanitized.
pub(crate) fn schema_validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| sanitize(&e.to_string(), 300))
}

impl ProviderSection {
    /// Validates against `C`'s JSON schema (the one schemars makes, with a validator built now),
    /// then builds the typed value.
    pub fn parse<C: AppCredentials>(&self) -> Result<C, ValidationError> {
        let value = self.validate_against(schemars::schema_for!(C).as_value())?;
        self.typed(value)
    }

    /// [`parse`](Self::parse) for a built-in type whose validator was generated at build time
    /// (the same schema, the same issues, without building a validator): what the provider
    /// that owns the type calls.
    pub(crate) fn parse_compiled<C: CompiledSchema>(&self) -> Result<C, ValidationError> {
        let schema = C::schema();
        let value = coerce_to_strings(&self.value, schema);
        let issues = self.issues(C::iter_errors(&value));
        let value = self.checked(value, schema, issues)?;
        self.typed(value)
    }

    /// The typed value of a validated section.
    fn typed<C: AppCredentials>(&self, value: Value) -> Result<C, ValidationError> {
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
        let validator = schema_validator(schema).map_err(|e| {
            format!(
                "cannot be checked: its app-credentials schema is not a valid JSON schema ({e})"
            )
        });
        self.validate_with(schema, validator.as_ref().map_err(Clone::clone))
    }

    /// [`validate_against`](Self::validate_against) with the validator [`schema_validator`]
    /// built for `schema` (`Err`: why the schema cannot check anything, said of the section).
    pub(crate) fn validate_with(
        &self,
        schema: &Value,
        validator: Result<&jsonschema::Validator, String>,
    ) -> Result<Value, ValidationError> {
        let validator = validator.map_err(|problem| self.error(vec![self.issue(&[], problem)]))?;
        let value = coerce_to_strings(&self.value, schema);
        let issues = self.issues(validator.iter_errors(&value));
        self.checked(value, schema, issues)
    }

    /// The validator's `errors` as issues of this section.
    fn issues(&self, errors: jsonschema::ErrorIterator<'_>) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        for error in errors {
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
                // Reported below, with the nearest known key, for the top level; nested
                // objects say which property is unexpected.
                K::AdditionalProperties { unexpected } if !at.is_empty() => {
                    for name in unexpected {
                        let mut path = at.clone();
                        path.push(name.clone());
                        issues.push(self.issue(&path, "is not a known setting".to_owned()));
                    }
                }
                K::AdditionalProperties { .. } => {}
                kind => issues.push(self.issue(&at, describe(kind))),
            }
        }
        issues
    }

    /// The validated value, or every issue: the validator's and the keys `schema` does not
    /// know.
    fn checked(
        &self,
        value: Value,
        schema: &Value,
        mut issues: Vec<FieldIssue>,
    ) -> Result<Value, ValidationError> {
        issues.extend(self.unknown_keys(&value, schema));
        if issues.is_empty() {
            Ok(value)
        } else {
            Err(self.error(issues))
        }
    }

    /// Keys the schema does not know (a misspelt `client_secert` would otherwise be ignored and
    /// the login go on as a public client), each with the nearest known key. Schemas that
    /// allow other properties explicitly, or list none, are left alone.
    fn unknown_keys(&self, value: &Value, schema: &Value) -> Vec<FieldIssue> {
        let (Some(map), Some(known)) = (
            value.as_object(),
            schema.get("properties").and_then(Value::as_object),
        ) else {
            return Vec::new();
        };
        if schema
            .get("additionalProperties")
            .is_some_and(|a| *a != Value::Bool(false))
        {
            return Vec::new();
        }
        map.keys()
            .filter(|k| !known.contains_key(*k) && !HOST_KEYS.contains(&k.as_str()))
            .map(|key| {
                let nearest = crate::util::text::nearest(key, known.keys().map(String::as_str))
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                self.issue(
                    std::slice::from_ref(key),
                    format!("is not a known setting{nearest}"),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::app_credentials::CodeOrigins;
    use crate::util::secret::SecretString;
    use schemars::JsonSchema;
    use serde::Deserialize;
    use std::sync::Arc;

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Creds {
        client_id: String,
        client_secret: Option<SecretString>,
        port: u16,
    }

    #[test]
    fn every_failing_field_is_listed_without_its_value() {
        let raw = ProviderSection::from_code(
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
    fn a_misspelt_key_is_an_error_naming_the_nearest_known_one() {
        let raw = ProviderSection::from_code(
            "acme",
            serde_json::json!({ "client_id": "id", "port": 1, "client_secert": "s3cr3t", "flows": {} }),
        );
        let err = raw.parse::<Creds>().err().expect("must fail");
        let text = err.to_string();
        assert!(
            text.contains("providers.acme.client_secert is not a known setting (did you mean `client_secret`?)"),
            "{text}"
        );
        assert!(
            !text.contains("s3cr3t") && !text.contains("flows"),
            "{text}"
        );
    }

    /// A section made elsewhere than `providers.<name>` names its own path; one made there
    /// names that (the path is then not stored, only derived).
    #[test]
    fn a_field_is_named_by_where_its_section_is() {
        let value = serde_json::json!({ "port": 1 });
        for (section, expected) in [
            (
                vec!["apps", "acme", "prod"],
                "apps.acme.prod.client_id is missing",
            ),
            (
                vec!["providers", "acme"],
                "providers.acme.client_id is missing",
            ),
            (
                vec!["providers", "other"],
                "providers.other.client_id is missing",
            ),
        ] {
            let raw = ProviderSection::new(
                "acme",
                section.iter().map(|s| s.to_string()).collect(),
                value.clone(),
                Arc::new(CodeOrigins),
            );
            let text = raw.parse::<Creds>().err().expect("must fail").to_string();
            assert!(text.contains(expected), "{section:?}: {text}");
        }
    }

    #[test]
    fn valid_credentials_parse() {
        let raw = ProviderSection::from_code(
            "acme",
            serde_json::json!({ "client_id": "id", "port": 8080 }),
        );
        let c = raw.parse::<Creds>().expect("valid");
        assert_eq!(c.client_id, "id");
        assert_eq!(c.port, 8080);
    }

    #[test]
    fn a_json_pointer_must_start_with_a_slash() {
        let section = |pointer: &str| {
            ProviderSection::from_code(
                "acme",
                serde_json::json!({
                    "client_id": "id",
                    "authorize_url": "https://a.example/authorize",
                    "token_url": "https://a.example/token",
                    "token_pointer": pointer,
                }),
            )
        };
        let Err(err) = section("authed_user").parse::<crate::oauth2::OAuth2AppCredentials>() else {
            panic!("a pointer without a leading slash must fail");
        };
        assert!(
            err.to_string()
                .contains("providers.acme.token_pointer must start with `/`"),
            "{err}"
        );
        for ok in ["/authed_user", "/a/b", "/", "/a~1b/0"] {
            let app = section(ok)
                .parse::<crate::oauth2::OAuth2AppCredentials>()
                .expect(ok);
            assert_eq!(app.token_pointer.as_deref(), Some(ok));
        }
    }
}

/// What the owners of compiled schemas test with (`github`, `configured`).
#[cfg(test)]
pub(crate) mod compiled_tests {
    use super::*;

    /// `parse_compiled` finds what `parse` (a validator built at run time from the same schema)
    /// finds, issue for issue, and accepts what it accepts, for valid and broken sections; no
    /// message quotes a secret.
    pub(crate) fn agrees_with_the_run_time_validator<C: CompiledSchema>() {
        let same = |value: Value| -> Result<(), String> {
            let section = ProviderSection::from_code("acme", value);
            let compiled = section
                .parse_compiled::<C>()
                .map(drop)
                .map_err(|e| e.to_string());
            let built = section.parse::<C>().map(drop).map_err(|e| e.to_string());
            assert_eq!(compiled, built);
            compiled
        };
        let good = serde_json::json!({
            "client_id": "id",
            "client_secret": "s3cr3t",
            "authorize_url": "https://a.example/authorize",
            "token_url": "https://a.example/token",
            "api_url": "https://api.a.example",
        });
        same(good).expect("valid");
        let bad = [
            serde_json::json!({}),
            serde_json::json!({ "client_id": "", "token_url": 7, "authorize_url": "no url" }),
            serde_json::json!({ "client_id": 12345, "authorize_url": "https://a.example/a",
                "token_url": "https://a.example/t", "api_url": "https://x.example",
                "client_secert": "s3cr3t", "token_pointer": "nested", "client_auth": "post",
                "scope_separator": "", "scopes": "one", "authorize_params": { "a": 1 } }),
            serde_json::json!({ "client_id": "id", "authorize_url": "https://a.example/a",
                "token_url": "https://a.example/t", "api_url": "https://x.example",
                "identify_pointer": "login", "pkce": "yes", "require_iss": 1 }),
        ];
        for value in bad {
            let err = same(value).unwrap_err();
            assert!(err.contains("providers.acme."), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
    }
}
