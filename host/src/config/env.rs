//! The environment's part of the configuration: which `HOST_` variables are settings, how a
//! setting's path is spelt as a variable, how a variable's value reads, and aliases.

use figment::value::{Dict, Value as FigValue};

/// The prefix of the configuration's environment variables.
pub const ENV_PREFIX: &str = "HOST_";

/// Prompt answers (`HOST_FIELD_API_KEY`), not configuration keys.
pub const FIELD_PREFIX: &str = "HOST_FIELD_";

/// `HOST_` variables that are not configuration keys.
pub(super) const NOT_CONFIG: &[&str] = &[
    "HOST_CONFIG",
    "HOST_LOG",
    "HOST_PROVIDER",
    "HOST_STORE_KEY",
    "HOST_STORE_PREVIOUS_KEY",
];

/// An environment variable that sets one configuration value (`GITHUB_CLIENT_ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The variable.
    pub var: String,
    /// The configuration path it sets, e.g. `providers.github.client_id`.
    pub path: String,
}

impl Alias {
    /// An alias for `path`.
    pub fn new(var: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            path: path.into(),
        }
    }
}

pub(super) fn env_name<S: AsRef<str>>(path: &[S]) -> String {
    let keys: Vec<String> = path
        .iter()
        .map(|k| k.as_ref().to_ascii_uppercase())
        .collect();
    format!("{ENV_PREFIX}{}", keys.join("__"))
}

/// An environment variable's value, read like a TOML value (`true`, `30`, `[repo, gist]`),
/// except that a number written otherwise than its own plain form (`0042`, `+7`, `1.10`,
/// `-0`) stays the text it was: a client id or secret made of digits reaches the provider as
/// written, not as the number it looks like.
pub(super) fn env_value(text: &str) -> FigValue {
    let value: FigValue = text
        .parse()
        .unwrap_or_else(|e: std::convert::Infallible| match e {});
    let FigValue::Num(..) = value else {
        return value;
    };
    let plain = value
        .to_i128()
        .map(|n| n.to_string())
        .or_else(|| value.to_u128().map(|n| n.to_string()))
        .or_else(|| value.to_f64().map(|f| f.to_string()));
    if plain.as_deref() == Some(text.trim()) {
        value
    } else {
        FigValue::from(text.to_owned())
    }
}

/// Inserts `value` at `keys`, creating (or replacing non-dict) parents.
pub(super) fn insert_path(dict: &mut Dict, keys: &[&str], value: FigValue) {
    let Some((first, rest)) = keys.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert((*first).to_owned(), value);
        return;
    }
    let child = dict
        .entry((*first).to_owned())
        .or_insert_with(|| FigValue::from(Dict::new()));
    if child.as_dict().is_none() {
        *child = FigValue::from(Dict::new());
    }
    if let FigValue::Dict(_, child) = child {
        insert_path(child, rest, value);
    }
}
