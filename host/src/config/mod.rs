//! Layered configuration with figment, and where every value came from.
//!
//! Layers, lowest first:
//! 1. built-in defaults (e.g. github.com's endpoints);
//! 2. the configuration file: `--config FILE`, else `$HOST_CONFIG`, else
//!    `$XDG_CONFIG_HOME/host/host.toml` (`~/.config/host/host.toml`);
//! 3. `HOST_`-prefixed environment variables, `__` separating levels
//!    (`HOST_PROVIDERS__GITHUB__TOKEN_URL`); values are parsed like TOML values, so
//!    `HOST_PROVIDERS__GITHUB__SCOPES='[repo, gist]'` is a list;
//! 4. provider aliases (`GITHUB_CLIENT_ID`, `GITHUB_CLIENT_SECRET`).
//!
//! ```toml
//! plugins_dir = "/opt/host/plugins"
//!
//! [http]
//! timeout_secs = 30
//!
//! [providers.github]
//! client_id = "Iv1.0123456789abcdef"
//! scopes = ["repo", "read:org"]
//! ```
//!
//! The environment is read once, into a snapshot, so tests can hand in their own.

mod env;
mod loader;
mod origins;
mod redact;
mod settings;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::{Figment, Profile, Provider};

use crate::net::http::HttpPolicy;
use crate::providers::app_credentials::{Origin, OriginLookup};
use crate::providers::section::ProviderSection;

pub use env::{Alias, ENV_PREFIX, FIELD_PREFIX};
pub use loader::{ConfigLoader, Defaults};
use origins::FigmentOrigins;
pub(crate) use redact::is_secret;
use redact::{describe, redact_url_password, walk};
use settings::{HttpSettings, ProxySetting, Settings, StoreBackendSetting, StoreSettings};

/// Why the configuration cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A configuration file named explicitly does not exist.
    #[error("the configuration file {} (from {origin}) does not exist", .path.display())]
    FileMissing {
        /// The file.
        path: PathBuf,
        /// Who named it.
        origin: Origin,
    },
    /// Something other than a file (a folder, a device) is where the configuration file
    /// should be.
    #[error("the configuration file {}{} is not a regular file", .path.display(), .origin.as_ref().map(|o| format!(" (from {o})")).unwrap_or_default())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// Who named it, when not the default.
        origin: Option<Origin>,
    },
    /// The configuration file is not valid TOML. The message names the place, never the text
    /// there (it may be a secret).
    #[error("{} line {line}, column {column}{}: {problem}", .file.display(), .key.as_deref().map(|k| format!(" (key `{k}`)")).unwrap_or_default())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
        /// The key on that line, when there is one.
        key: Option<String>,
        /// What the parser says is wrong (its first line).
        problem: String,
    },
    /// The file cannot be read.
    #[error("cannot read the configuration file {}", .file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration cannot be parsed or has the wrong shape.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// Neither `$HOME` nor the XDG variables say where configuration lives.
    #[error("cannot find the home directory: set HOME or XDG_CONFIG_HOME and XDG_DATA_HOME")]
    NoHome,
    /// The `[store]` settings describe a store that cannot be opened (a malformed database
    /// URL, a backend this build lacks).
    #[error("invalid [store] settings")]
    Store(#[source] Box<crate::store::StoreError>),
}

/// The loaded configuration.
#[derive(Clone)]
pub struct Config {
    figment: Figment,
    origins: Arc<FigmentOrigins>,
    proxy: Option<ProxySetting>,
    default_provider: Option<(String, Origin)>,
    settings: Arc<Settings>,
    file: PathBuf,
    /// What named the file (`--config`, `HOST_CONFIG`); `None` for the default one.
    file_origin: Option<Origin>,
    data_dir: PathBuf,
    store_key: Option<zeroize::Zeroizing<String>>,
    store_previous_key: Option<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("file", &self.file)
            .field("data_dir", &self.data_dir)
            .field(
                "providers",
                &self.settings.providers.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Config {
    /// The configuration file consulted (it may not exist).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// What named the configuration file (`--config`, `HOST_CONFIG`); `None` when it is the
    /// default one, which a program run later finds by itself.
    pub fn file_origin(&self) -> Option<&Origin> {
        self.file_origin.as_ref()
    }

    /// `$XDG_DATA_HOME/host`: the credential store, the compile cache.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The provider to use when a command names none: `HOST_PROVIDER`, else the file's
    /// `default_provider`; with where it was set.
    pub fn default_provider(&self) -> Option<(&str, &Origin)> {
        self.default_provider.as_ref().map(|(p, o)| (p.as_str(), o))
    }

    /// How long to wait for a credential's lock (`[store] lock_timeout_secs`).
    pub fn lock_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.store.lock_timeout_secs)
    }

    /// How the credential store is set up (`[store]`, `HOST_STORE_KEY`). Errors name the
    /// setting, never a value.
    pub fn store_options(&self) -> Result<crate::store::StoreOptions, ConfigError> {
        let s = &self.settings.store;
        let backend = match (s.backend, &s.url) {
            (StoreBackendSetting::File, _) => crate::store::BackendKind::File,
            (StoreBackendSetting::Postgres, Some(url)) => {
                crate::store::BackendKind::Postgres(url.clone())
            }
            (StoreBackendSetting::Postgres, None) => {
                return Err(ConfigError::Invalid(
                    "[store] backend = \"postgres\" needs [store] url (or HOST_STORE__URL)".into(),
                ));
            }
        };
        if s.key_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            return Err(ConfigError::Invalid(
                "[store] key_file is empty: name the key file, or leave the setting out".into(),
            ));
        }
        let mut options = crate::store::StoreOptions::file(&self.data_dir);
        options.backend = backend;
        options.key_file = s.key_file.clone();
        options.key = self.store_key.clone();
        options.previous_key = self.store_previous_key.clone();
        options.lock_timeout = self.lock_timeout();
        Ok(options)
    }

    /// `[store] url`, the PostgreSQL store's database, when set.
    pub fn store_url(&self) -> Option<&str> {
        self.settings.store.url.as_deref()
    }

    /// Where plugins are looked for.
    pub fn plugins_dir(&self) -> PathBuf {
        self.settings
            .plugins_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("plugins"))
    }

    /// The HTTP limits.
    pub fn http_policy(&self) -> HttpPolicy {
        let h = &self.settings.http;
        HttpPolicy {
            connect_timeout: Duration::from_secs(h.connect_timeout_secs),
            timeout: Duration::from_secs(h.timeout_secs),
            max_body: h.max_body_bytes,
            proxy: self.proxy.as_ref().map(|p| p.url.clone()),
            no_proxy: self.proxy.as_ref().and_then(|p| p.no_proxy.clone()),
            ..HttpPolicy::default()
        }
    }

    /// The `[plugins]` settings.
    #[cfg(feature = "plugins")]
    pub fn plugin_settings(&self) -> crate::plugin::PluginSettings {
        self.settings.plugins.clone()
    }

    /// Sets `plugins.instance_pool` when the configuration leaves it unset: a program says
    /// whether it makes many plugin calls (pooled instances) or a few (on demand).
    #[cfg(feature = "plugins")]
    pub fn default_plugin_instance_pool(&mut self, pooled: bool) {
        let settings = Arc::make_mut(&mut self.settings);
        settings.plugins.instance_pool.get_or_insert(pooled);
    }

    /// Where precompiled plugins are cached.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache").join("plugins")
    }

    /// Uses this plugins folder instead of the configured one (`--plugins-dir`).
    pub fn set_plugins_dir(&mut self, dir: PathBuf) {
        Arc::make_mut(&mut self.settings).plugins_dir = Some(dir);
    }

    /// The names of the configured provider sections.
    pub fn provider_names(&self) -> impl Iterator<Item = &str> {
        self.settings.providers.keys().map(String::as_str)
    }

    /// Provider `name`'s section (`[providers.<name>]`) with the origin of each value; an empty
    /// object when there is none.
    pub fn provider_section(&self, name: &str) -> ProviderSection {
        let value = self
            .settings
            .providers
            .get(name)
            .cloned()
            .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
        ProviderSection::of_provider(
            name,
            value,
            Arc::clone(&self.origins) as Arc<dyn OriginLookup>,
        )
    }

    /// Where the value at a dotted `path` came from.
    pub fn origin(&self, path: &str) -> Option<Origin> {
        let parts: Vec<&str> = path.split('.').collect();
        self.origins.origin(&parts)
    }

    /// Every setting in force with where it came from (the defaults of the `[http]`,
    /// `[store]` and `[plugins]` settings nothing set included), secrets redacted (by key
    /// name, and passwords inside URLs), sorted by key: what `host config` shows.
    pub fn settings(&self) -> Result<Vec<Setting>, ConfigError> {
        let data = self
            .figment
            .data()
            .map_err(|e| ConfigError::Invalid(describe(e)))?;
        let mut out = Vec::new();
        if let Some(dict) = data.get(&Profile::Default) {
            walk("", dict, &mut out);
        }
        out.retain(|(key, _)| key != "http.proxy");
        let mut settings: Vec<Setting> = out
            .into_iter()
            .map(|(key, value)| {
                let origin = self.origin(&key);
                Setting { key, value, origin }
            })
            .collect();
        // The defaults of what nothing set, so that every setting in force is shown.
        let defaults = [
            ("http", serde_json::to_value(HttpSettings::default())),
            ("store", serde_json::to_value(StoreSettings::default())),
            #[cfg(feature = "plugins")]
            (
                "plugins",
                serde_json::to_value(crate::plugin::PluginSettings::default()),
            ),
        ];
        for (section, value) in defaults {
            let Ok(serde_json::Value::Object(map)) = value else {
                continue;
            };
            for (key, value) in map {
                let key = format!("{section}.{key}");
                if value.is_null() || key == "http.proxy" || settings.iter().any(|s| s.key == key) {
                    continue;
                }
                settings.push(Setting {
                    key,
                    value,
                    origin: Some(Origin::Default),
                });
            }
        }
        // The proxy in force, wherever it came from (the environment included).
        let (value, origin) = match &self.proxy {
            Some(p) => (
                redact_url_password(serde_json::Value::String(p.url.to_string())),
                Some(p.origin.clone()),
            ),
            None => (serde_json::Value::from("none"), Some(Origin::Default)),
        };
        settings.push(Setting {
            key: "http.proxy".into(),
            value,
            origin,
        });
        settings.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(settings)
    }
}

/// One effective setting, as [`Config::settings`] reports it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Setting {
    /// The dotted key, e.g. `providers.github.client_id`.
    pub key: String,
    /// The value, `"[redacted]"` for secrets.
    pub value: serde_json::Value,
    /// Where it came from.
    pub origin: Option<Origin>,
}

impl Setting {
    /// Where it came from, for people (`unknown` when that cannot be said).
    pub fn origin_text(&self) -> String {
        self.origin
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string)
    }
}
