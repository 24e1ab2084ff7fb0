//! One entry of a plugin's allowed hosts as its metadata declares it ([`HostSpec`]): a fixed
//! pattern, or the host of the URL in an app-credentials field, resolved for a provider.

use super::sandbox::{HostPattern, HostPatternError};

/// One entry of a plugin's allowed hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSpec {
    /// A fixed pattern.
    Pattern(HostPattern),
    /// `{field}`: the host and port of the URL in this app-credentials field.
    Field(String),
}

impl HostSpec {
    pub(super) fn parse(text: &str) -> Result<Self, HostPatternError> {
        match text
            .trim()
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
        {
            Some(field)
                if !field.is_empty()
                    && field
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                Ok(HostSpec::Field(field.to_owned()))
            }
            Some(_) => Err(HostPatternError {
                pattern: crate::util::text::sanitize(text, 100),
                problem: "not a field name",
            }),
            None => HostPattern::parse(text).map(HostSpec::Pattern),
        }
    }

    /// The pattern for these (validated) app credentials; `Err` says which field is wrong.
    pub(crate) fn resolve(&self, app: &serde_json::Value) -> Result<HostPattern, String> {
        match self {
            HostSpec::Pattern(p) => Ok(p.clone()),
            HostSpec::Field(field) => {
                let text = app
                    .get(field)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| format!("`{field}` is not set"))?;
                let url = url::Url::parse(text).map_err(|_| format!("`{field}` is not a URL"))?;
                let host = url
                    .host_str()
                    .ok_or_else(|| format!("`{field}` has no host"))?;
                let port = url
                    .port_or_known_default()
                    .ok_or_else(|| format!("`{field}` has no port"))?;
                let host = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host.to_owned()
                };
                HostPattern::parse(&format!("{host}:{port}")).map_err(|e| e.to_string())
            }
        }
    }
}

impl std::fmt::Display for HostSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostSpec::Pattern(p) => p.fmt(f),
            HostSpec::Field(field) => write!(f, "{{{field}}}"),
        }
    }
}
