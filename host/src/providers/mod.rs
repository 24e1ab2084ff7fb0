//! Built-in providers, and the registry built from them and the configuration.

pub mod github;

use crate::config::{Config, Defaults};
use crate::provider::Registry;

/// The defaults and aliases of every built-in provider, for [`crate::config::ConfigLoader`].
pub fn builtin_defaults() -> Vec<Defaults> {
    vec![github::defaults()]
}

/// A registry with every built-in provider, configured from `config`. Nothing is validated,
/// built or fetched until a flow is first asked for.
pub fn builtin_registry(config: &Config) -> Registry {
    let mut registry = Registry::new();
    registry.register(github::provider(config));
    registry
}
