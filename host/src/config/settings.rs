//! The typed settings: the configuration's top-level keys, its `[http]` and `[store]`
//! sections as read (with their defaults), and the proxy in force.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::net::http::HttpPolicy;
use crate::providers::app_credentials::Origin;

/// The configuration's top-level keys (`[plugins]` is read only with the `plugins` feature).
pub(super) const TOP_LEVEL: &[&str] = &[
    "default_provider",
    "http",
    "plugins",
    "plugins_dir",
    "providers",
    "store",
];

/// HTTP limits, `[http]` in the file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpSettings {
    #[serde(default = "default_connect")]
    pub(super) connect_timeout_secs: u64,
    #[serde(default = "default_timeout")]
    pub(super) timeout_secs: u64,
    #[serde(default = "default_max_body")]
    pub(super) max_body_bytes: usize,
    /// A proxy URL, or `none` for no proxy even when the environment names one.
    #[serde(default)]
    pub(super) proxy: Option<String>,
}

fn default_connect() -> u64 {
    HttpPolicy::default().connect_timeout.as_secs()
}
fn default_timeout() -> u64 {
    HttpPolicy::default().timeout.as_secs()
}
fn default_max_body() -> usize {
    HttpPolicy::default().max_body
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout_secs: default_connect(),
            timeout_secs: default_timeout(),
            max_body_bytes: default_max_body(),
            proxy: None,
        }
    }
}

/// Store settings, `[store]` in the file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct StoreSettings {
    #[serde(default = "default_lock_timeout")]
    pub(super) lock_timeout_secs: u64,
    /// `file` or `postgres`.
    #[serde(default)]
    pub(super) backend: StoreBackendSetting,
    /// The PostgreSQL connection URL.
    #[serde(default)]
    pub(super) url: Option<String>,
    /// The file holding the store's key.
    #[serde(default)]
    pub(super) key_file: Option<PathBuf>,
}

fn default_lock_timeout() -> u64 {
    crate::store::DEFAULT_LOCK_TIMEOUT.as_secs()
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum StoreBackendSetting {
    #[default]
    File,
    Postgres,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            lock_timeout_secs: default_lock_timeout(),
            backend: StoreBackendSetting::File,
            url: None,
            key_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Settings {
    #[serde(default)]
    pub(super) store: StoreSettings,
    #[serde(default)]
    pub(super) plugins_dir: Option<PathBuf>,
    /// The provider commands use when none is named.
    #[serde(default)]
    pub(super) default_provider: Option<String>,
    #[serde(default)]
    pub(super) http: HttpSettings,
    #[cfg(feature = "plugins")]
    #[serde(default)]
    pub(super) plugins: crate::plugin::PluginSettings,
    #[serde(default)]
    pub(super) providers: BTreeMap<String, serde_json::Value>,
}

/// The proxy in force and where it came from.
#[derive(Debug, Clone)]
pub(super) struct ProxySetting {
    pub(super) url: Url,
    pub(super) no_proxy: Option<String>,
    pub(super) origin: Origin,
}
