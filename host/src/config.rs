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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::value::{Dict, Map, Value as FigValue};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::net::http::HttpPolicy;
use crate::providers::app_credentials::{Origin, OriginLookup};
use crate::providers::section::ProviderSection;

/// The prefix of the configuration's environment variables.
pub const ENV_PREFIX: &str = "HOST_";

/// Prompt answers (`HOST_FIELD_API_KEY`), not configuration keys.
pub const FIELD_PREFIX: &str = "HOST_FIELD_";

/// `HOST_` variables that are not configuration keys.
const NOT_CONFIG: &[&str] = &[
    "HOST_CONFIG",
    "HOST_LOG",
    "HOST_PROVIDER",
    "HOST_STORE_KEY",
    "HOST_STORE_PREVIOUS_KEY",
];

/// The configuration's top-level keys (`[plugins]` is read only with the `plugins` feature).
const TOP_LEVEL: &[&str] = &[
    "default_provider",
    "http",
    "plugins",
    "plugins_dir",
    "providers",
    "store",
];

/// A top-level key of `file` that is not a setting, named with the nearest one.
fn unknown_top_level(file: &Path, dict: &Dict) -> Option<ConfigError> {
    let key = dict.keys().find(|k| !TOP_LEVEL.contains(&k.as_str()))?;
    let nearest = crate::util::text::nearest(key, TOP_LEVEL.iter().copied())
        .map(|k| format!("did you mean `{k}`? "))
        .unwrap_or_default();
    Some(ConfigError::Invalid(format!(
        "{}: `{}` is not a setting ({nearest}the settings are {})",
        file.display(),
        crate::util::text::sanitize(key, 64),
        TOP_LEVEL.join(", ")
    )))
}

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

/// Built-in defaults and aliases contributed by a built-in provider.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// The configuration path of the values, e.g. `providers.github`.
    pub path: String,
    /// The default values (a JSON object).
    pub values: serde_json::Value,
    /// Variables that set values under `path`.
    pub aliases: Vec<Alias>,
}

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

/// Loads a [`Config`].
#[derive(Debug, Clone)]
pub struct ConfigLoader {
    env: BTreeMap<String, String>,
    file: Option<PathBuf>,
    defaults: Vec<Defaults>,
}

impl ConfigLoader {
    /// A loader over this process's environment.
    pub fn from_process_env() -> Self {
        Self::with_env(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// A loader over the given environment variables only.
    pub fn with_env<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            env: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            file: None,
            defaults: Vec::new(),
        }
    }

    /// Reads this file instead of the default one (`--config`); it must exist.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Adds built-in defaults (and their aliases).
    pub fn defaults(mut self, defaults: impl IntoIterator<Item = Defaults>) -> Self {
        self.defaults.extend(defaults);
        self
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn absolute_var(&self, name: &str) -> Option<PathBuf> {
        self.var(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    }

    fn base_dir(&self, xdg: &str, fallback: &str) -> Result<PathBuf, ConfigError> {
        if let Some(dir) = self.absolute_var(xdg) {
            return Ok(dir);
        }
        let home = self.absolute_var("HOME").ok_or(ConfigError::NoHome)?;
        Ok(home.join(fallback))
    }

    /// The proxy: `[http] proxy` (`none` for none), else `HTTPS_PROXY` / `ALL_PROXY` (either
    /// case) with `NO_PROXY`, as curl and every peer read them.
    fn proxy(
        &self,
        settings: &Settings,
        figment: &Figment,
    ) -> Result<Option<ProxySetting>, ConfigError> {
        let configured = settings.http.proxy.as_deref().map(str::trim);
        let (text, origin) = match configured {
            Some(p) if p.eq_ignore_ascii_case("none") || p.is_empty() => return Ok(None),
            Some(p) => {
                let origin = figment
                    .find_metadata("http.proxy")
                    .map(|m| match &m.source {
                        Some(figment::Source::File(f)) => Origin::File(f.clone()),
                        _ => Origin::EnvVar("HOST_HTTP__PROXY".into()),
                    })
                    .unwrap_or(Origin::Default);
                (p.to_owned(), origin)
            }
            None => {
                let found = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
                    .iter()
                    .find_map(|v| {
                        self.var(v)
                            .map(|p| (p.to_owned(), Origin::EnvVar((*v).into())))
                    });
                match found {
                    Some(found) => found,
                    None => return Ok(None),
                }
            }
        };
        let url = Url::parse(&text).map_err(|_| {
            ConfigError::Invalid(format!("http.proxy (from {origin}) is not a valid URL"))
        })?;
        let no_proxy = ["NO_PROXY", "no_proxy"]
            .iter()
            .find_map(|v| self.var(v))
            .map(str::to_owned);
        Ok(Some(ProxySetting {
            url,
            no_proxy,
            origin,
        }))
    }

    /// `NAME_CLIENT_ID` and `NAME_CLIENT_SECRET` for every catalog provider whose variable is
    /// set: setting one enables the provider. The catalog is not even parsed when no such
    /// variable is set.
    fn catalog_aliases(&self) -> Vec<Alias> {
        let builtin: Vec<&str> = self
            .defaults
            .iter()
            .flat_map(|d| d.aliases.iter().map(|a| a.var.as_str()))
            .collect();
        let any = self.env.keys().any(|k| {
            (k.ends_with("_CLIENT_ID") || k.ends_with("_CLIENT_SECRET"))
                && !k.starts_with(ENV_PREFIX)
                && !builtin.contains(&k.as_str())
        });
        if !any {
            return Vec::new();
        }
        crate::providers::catalog::names()
            .flat_map(catalog_alias_pair)
            .filter(|alias| self.var(&alias.var).is_some())
            .collect()
    }

    /// Loads every layer.
    pub fn load(self) -> Result<Config, ConfigError> {
        let config_dir = self.base_dir("XDG_CONFIG_HOME", ".config")?.join("host");
        let data_dir = self.base_dir("XDG_DATA_HOME", ".local/share")?.join("host");
        let (file, file_origin) = match (&self.file, self.var("HOST_CONFIG")) {
            (Some(f), _) => (f.clone(), Some(Origin::Flag("--config".into()))),
            (None, Some(f)) => (PathBuf::from(f), Some(Origin::EnvVar("HOST_CONFIG".into()))),
            (None, None) => (config_dir.join("host.toml"), None),
        };
        // A file named explicitly must be there; the default one may be absent. Either must be
        // a file when something is there (a folder is not silently taken for "no settings").
        match std::fs::metadata(&file) {
            Ok(meta) if !meta.is_file() => {
                return Err(ConfigError::NotAFile {
                    path: file,
                    origin: file_origin,
                });
            }
            Err(_) => {
                if let Some(origin) = &file_origin {
                    return Err(ConfigError::FileMissing {
                        path: file,
                        origin: origin.clone(),
                    });
                }
            }
            Ok(_) => {}
        }

        let mut figment = Figment::new();
        for d in &self.defaults {
            let value: FigValue = serde_json::from_value(d.values.clone())
                .map_err(|e| ConfigError::Invalid(format!("built-in defaults: {e}")))?;
            figment = figment.merge(Layer::defaults(figment::util::nest(&d.path, value)));
        }
        // The default file is optional; one named explicitly was checked above. It is read
        // and parsed once: what was checked is what is used.
        if file.is_file() {
            let dict = read_toml(&file)?;
            if let Some(e) = unknown_top_level(&file, &dict) {
                return Err(e);
            }
            figment = figment.merge(Layer::file(&file, dict));
        }
        figment = figment.merge(Layer::env(&self.env));
        let mut aliases: Vec<Alias> = self
            .defaults
            .iter()
            .flat_map(|d| d.aliases.clone())
            .collect();
        aliases.extend(self.catalog_aliases());
        for alias in &aliases {
            if let Some(value) = self.var(&alias.var) {
                figment = figment.merge(Layer::alias(alias, value));
            }
        }
        let settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(e)))?;
        let proxy = self.proxy(&settings, &figment)?;
        let origins = Arc::new(FigmentOrigins {
            figment: figment.clone(),
            file: file.clone(),
            aliases,
        });
        let default_provider = match self.var("HOST_PROVIDER") {
            Some(p) => Some((p.to_owned(), Origin::EnvVar("HOST_PROVIDER".into()))),
            None => settings.default_provider.clone().map(|p| {
                let origin = origins
                    .origin(&["default_provider"])
                    .unwrap_or(Origin::Default);
                (p, origin)
            }),
        };
        let store_key = self
            .var(crate::store::seal::KEY_ENV)
            .map(|k| zeroize::Zeroizing::new(k.to_owned()));
        let store_previous_key = self
            .var(crate::store::seal::PREVIOUS_KEY_ENV)
            .map(|k| zeroize::Zeroizing::new(k.to_owned()));
        Ok(Config {
            store_previous_key,
            figment,
            origins,
            proxy,
            default_provider,
            settings: Arc::new(settings),
            file,
            file_origin,
            data_dir,
            store_key,
        })
    }
}

/// The configuration file's settings. A syntax error is reported by place (file, line,
/// column, key) and not, as the parser would, by quoting the line: it may hold a secret.
fn read_toml(file: &Path) -> Result<Dict, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_owned(),
        source,
    })?;
    // Parsed as TOML proper (an integer beyond 64 bits is an error, as the specification
    // says), then taken as figment's values.
    let e = match text.parse::<toml::Table>() {
        Ok(table) => {
            return toml::Value::Table(table).try_into::<Dict>().map_err(|_| {
                ConfigError::Invalid(format!("{}: settings that cannot be read", file.display()))
            });
        }
        Err(e) => e,
    };
    let offset = e.span().map_or(0, |s| s.start).min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or_default();
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches(['"', '\'']))
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
        .map(str::to_owned);
    let mut problem =
        crate::util::text::sanitize(e.message().lines().next().unwrap_or("invalid TOML"), 120);
    // The parser may quote the value (`invalid type: integer `123…` as i128`): not when it
    // may be a secret's.
    if key.as_deref().is_none_or(is_secret) {
        problem = without_quoted(&problem);
    }
    Err(ConfigError::Syntax {
        file: file.to_owned(),
        line,
        column,
        key,
        problem,
    })
}

/// `text` with whatever sits between backticks replaced by `…`.
fn without_quoted(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { "…" } else { part })
        .collect::<Vec<_>>()
        .join("`")
}

/// A figment error without values (it may quote a secret): its kind, path and source.
fn describe(e: figment::Error) -> String {
    let mut out = String::new();
    for e in e {
        // `found` values are shown by their kind only (`string`, not the string itself).
        let kind_of = |found: &figment::error::Actual| {
            found
                .to_string()
                .split(' ')
                .next()
                .unwrap_or("value")
                .to_owned()
        };
        let kind = match &e.kind {
            figment::error::Kind::InvalidType(found, expected)
            | figment::error::Kind::InvalidValue(found, expected) => {
                format!("expected {expected}, found {}", kind_of(found))
            }
            figment::error::Kind::UnknownVariant(_, expected) => {
                format!("expected one of {}", expected.join(", "))
            }
            figment::error::Kind::Message(m) => m.clone(),
            other => other.to_string(),
        };
        let path = e.path.join(".");
        let source = e.metadata.as_ref().map(|m| match &m.source {
            Some(figment::Source::File(p)) => format!(" in {}", p.display()),
            _ => format!(" in {}", m.name),
        });
        out.push_str(&format!(
            "{}{kind}{}",
            if path.is_empty() {
                String::new()
            } else {
                format!("{path}: ")
            },
            source.unwrap_or_default()
        ));
        out.push_str("; ");
    }
    out.trim_end_matches("; ").to_owned()
}

/// HTTP limits, `[http]` in the file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct HttpSettings {
    #[serde(default = "default_connect")]
    connect_timeout_secs: u64,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_max_body")]
    max_body_bytes: usize,
    /// A proxy URL, or `none` for no proxy even when the environment names one.
    #[serde(default)]
    proxy: Option<String>,
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
struct StoreSettings {
    #[serde(default = "default_lock_timeout")]
    lock_timeout_secs: u64,
    /// `file` or `postgres`.
    #[serde(default)]
    backend: StoreBackendSetting,
    /// The PostgreSQL connection URL.
    #[serde(default)]
    url: Option<String>,
    /// The file holding the store's key.
    #[serde(default)]
    key_file: Option<PathBuf>,
}

fn default_lock_timeout() -> u64 {
    crate::store::DEFAULT_LOCK_TIMEOUT.as_secs()
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum StoreBackendSetting {
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
struct Settings {
    #[serde(default)]
    store: StoreSettings,
    #[serde(default)]
    plugins_dir: Option<PathBuf>,
    /// The provider commands use when none is named.
    #[serde(default)]
    default_provider: Option<String>,
    #[serde(default)]
    http: HttpSettings,
    #[cfg(feature = "plugins")]
    #[serde(default)]
    plugins: crate::plugin::PluginSettings,
    #[serde(default)]
    providers: BTreeMap<String, serde_json::Value>,
}

/// The proxy in force and where it came from.
#[derive(Debug, Clone)]
struct ProxySetting {
    url: Url,
    no_proxy: Option<String>,
    origin: Origin,
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

/// Keys whose values are never shown (also a URL's query parameters of these names): any
/// `…secret`, `…password`, `…passphrase`, `…token` (`bot_token`, `refresh_token`), `key` or
/// `…_key` (`private_key`, `api_key`), `apikey`; and, as a key is often misspelt where it
/// matters most, any key holding `secret`, `passw` or `passphrase`, or a word one typing slip
/// from `secret` or `password` (`client_secrett`, `secret_client`, `client_secert`).
pub(crate) fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key == "key"
        || [
            "secret",
            "password",
            "passphrase",
            "token",
            "_key",
            "apikey",
        ]
        .iter()
        .any(|s| key.ends_with(s))
    {
        return true;
    }
    let letters: String = key.chars().filter(char::is_ascii_alphanumeric).collect();
    if ["secret", "passw", "passphrase"]
        .iter()
        .any(|m| letters.contains(m))
    {
        return true;
    }
    // One slip (a letter added, dropped, changed, or two swapped) from a marker word.
    ["secret", "password"].iter().any(|marker| {
        (marker.len() - 1..=marker.len() + 1).any(|width| {
            letters.len() >= width
                && (0..=letters.len() - width)
                    .any(|at| strsim::damerau_levenshtein(&letters[at..at + width], marker) <= 1)
        })
    })
}

/// A URL value with a password (`http://user:pass@proxy:3128`) or a query parameter named
/// like a secret keeps everything but those values; a text that looks like a URL with
/// credentials but does not parse loses everything between `://` and `@`.
fn redact_url_password(value: serde_json::Value) -> serde_json::Value {
    if let Some(text) = value.as_str()
        && url::Url::parse(text).is_err()
        && let Some((scheme, rest)) = text.split_once("://")
        && let Some((_, host)) = rest.rsplit_once('@')
    {
        return serde_json::Value::String(format!("{scheme}://[redacted]@{host}"));
    }
    let Some(mut url) = value.as_str().and_then(|s| url::Url::parse(s).ok()) else {
        return value;
    };
    let mut redacted = url.password().is_some() && url.set_password(Some("redacted")).is_ok();
    // A secret in the query (`postgres://…?password=…`, `https://…?api_key=…`).
    if url.query_pairs().any(|(name, _)| is_secret(&name)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_secret(&name) {
                    "redacted".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        redacted = true;
    }
    if redacted {
        serde_json::Value::String(url.to_string())
    } else {
        value
    }
}

/// Every leaf under `dict`; a value under a secret key (`client_secret = { value = "…" }`)
/// is secret however deep it sits.
fn walk(prefix: &str, dict: &Dict, out: &mut Vec<(String, serde_json::Value)>) {
    walk_under(prefix, dict, false, out);
}

fn walk_under(prefix: &str, dict: &Dict, secret: bool, out: &mut Vec<(String, serde_json::Value)>) {
    for (key, value) in dict {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let secret = secret || is_secret(key);
        match value {
            FigValue::Dict(_, child) => walk_under(&path, child, secret, out),
            leaf => {
                let shown = if secret {
                    serde_json::Value::from("[redacted]")
                } else {
                    redact_url_password(leaf.deserialize::<serde_json::Value>().unwrap_or_default())
                };
                out.push((path, shown));
            }
        }
    }
}

struct FigmentOrigins {
    figment: Figment,
    file: PathBuf,
    aliases: Vec<Alias>,
}

const DEFAULTS_NAME: &str = "built-in defaults";
const ENV_NAME: &str = "environment variable";

impl OriginLookup for FigmentOrigins {
    fn origin(&self, path: &[&str]) -> Option<Origin> {
        let md = self.figment.find_metadata(&path.join("."))?;
        Some(match (&md.source, md.name.as_ref()) {
            (Some(figment::Source::File(p)), _) => Origin::File(p.clone()),
            (_, DEFAULTS_NAME) => Origin::Default,
            (_, ENV_NAME) => Origin::EnvVar(md.interpolate(&Profile::Default, path)),
            _ => Origin::Code,
        })
    }

    fn where_to_set(&self, path: &[&str]) -> Vec<Origin> {
        let dotted = path.join(".");
        let mut out = vec![Origin::File(self.file.clone())];
        // A name with `-` (provider `api-key`) has no environment-variable spelling.
        let spellable = path
            .iter()
            .all(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if spellable {
            out.push(Origin::EnvVar(env_name(path)));
        }
        out.extend(
            self.aliases
                .iter()
                .filter(|a| a.path == dotted)
                .map(|a| Origin::EnvVar(a.var.clone())),
        );
        // A catalog provider's client id and secret have their own variables.
        if let ["providers", name, key @ ("client_id" | "client_secret")] = path
            && crate::providers::catalog::contains(name)
        {
            let var = crate::providers::catalog::env_var(name, &key.to_ascii_uppercase());
            if !out.contains(&Origin::EnvVar(var.clone())) {
                out.push(Origin::EnvVar(var));
            }
        }
        out
    }
}

/// A catalog provider's `NAME_CLIENT_ID` and `NAME_CLIENT_SECRET`.
fn catalog_alias_pair(name: &str) -> [Alias; 2] {
    ["client_id", "client_secret"].map(|key| {
        Alias::new(
            crate::providers::catalog::env_var(name, &key.to_ascii_uppercase()),
            format!("providers.{name}.{key}"),
        )
    })
}

fn env_name<S: AsRef<str>>(path: &[S]) -> String {
    let keys: Vec<String> = path
        .iter()
        .map(|k| k.as_ref().to_ascii_uppercase())
        .collect();
    format!("{ENV_PREFIX}{}", keys.join("__"))
}

/// A figment layer with its own metadata (so origins can be told apart).
struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Layer {
    fn defaults(value: FigValue) -> Self {
        Self {
            metadata: Metadata::named(DEFAULTS_NAME),
            dict: value.into_dict().unwrap_or_default(),
        }
    }

    /// The configuration file's settings, reported as coming from that file.
    fn file(path: &Path, dict: Dict) -> Self {
        Self {
            metadata: Metadata::from("TOML file", path),
            dict,
        }
    }

    fn env(env: &BTreeMap<String, String>) -> Self {
        let mut dict = Dict::new();
        for (k, v) in env {
            let Some(rest) = k.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if NOT_CONFIG.contains(&k.as_str()) || rest.is_empty() || k.starts_with(FIELD_PREFIX) {
                continue;
            }
            let key = rest.to_ascii_lowercase();
            let keys: Vec<&str> = key.split("__").collect();
            // `HOST_` is a common prefix: a variable naming no setting is another program's.
            if keys.iter().any(|k| k.is_empty()) || !TOP_LEVEL.contains(&keys[0]) {
                continue;
            }
            insert_path(&mut dict, &keys, env_value(v));
        }
        let metadata =
            Metadata::named(ENV_NAME).interpolater(|_: &Profile, k: &[&str]| env_name(k));
        Self { metadata, dict }
    }

    fn alias(alias: &Alias, value: &str) -> Self {
        let var = alias.var.clone();
        let metadata =
            Metadata::named(ENV_NAME).interpolater(move |_: &Profile, _: &[&str]| var.clone());
        let value = FigValue::from(value.to_owned());
        Self {
            metadata,
            dict: figment::util::nest(&alias.path, value)
                .into_dict()
                .unwrap_or_default(),
        }
    }
}

/// An environment variable's value, read like a TOML value (`true`, `30`, `[repo, gist]`),
/// except that a number written otherwise than its own plain form (`0042`, `+7`, `1.10`,
/// `-0`) stays the text it was: a client id or secret made of digits reaches the provider as
/// written, not as the number it looks like.
fn env_value(text: &str) -> FigValue {
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
fn insert_path(dict: &mut Dict, keys: &[&str], value: FigValue) {
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

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_passwords_and_secret_keys_are_hidden() {
        let shown = redact_url_password(json!("http://me:hunter2@proxy.example:3128/"));
        assert_eq!(shown, json!("http://me:redacted@proxy.example:3128/"));
        assert_eq!(
            redact_url_password(json!("https://api.github.com")),
            json!("https://api.github.com")
        );
        assert!(
            is_secret("client_secret") && is_secret("refresh_token") && !is_secret("token_url")
        );
        // Misspelt secrets are secrets; the usual settings are not.
        for key in [
            "client_secrett",
            "clientsecret",
            "secret_client",
            "client_secert",
            "client_secrt",
            "Client-Secret",
            "pasword",
            "db_passwd",
            "bot_token",
        ] {
            assert!(is_secret(key), "{key}");
        }
        for key in [
            "client_id",
            "token_url",
            "authorize_url",
            "device_authorization_url",
            "revocation_url",
            "redirect_uri",
            "scopes",
            "client_auth",
            "issuer",
            "token_pointer",
            "bearer_token_types",
            "identify_url",
            "api_url",
            "verify_url",
            "git_host",
            "lock_timeout_secs",
            "key_file",
            "proxy",
        ] {
            assert!(!is_secret(key), "{key}");
        }
        // Not a URL, but credentials all the same.
        let shown = redact_url_password(json!("http://me:hunter2@proxy example:3128/"));
        assert_eq!(shown, json!("http://[redacted]@proxy example:3128/"));
    }

    fn load(toml: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("host.toml");
        std::fs::write(&file, toml).unwrap();
        ConfigLoader::with_env([("HOME", dir.path().to_str().unwrap())])
            .file(&file)
            .load()
    }

    /// The file is read once and its values are reported as set there; a TOML date-time is
    /// a setting's text (figment's own TOML reader had shown it as a private inner table).
    #[test]
    fn the_files_values_come_from_the_file_a_date_time_as_its_text() {
        let config = load(
            "[providers.github]\nclient_id = \"abc\"\nnot_before = 1979-05-27T07:32:00Z\n[http]\ntimeout_secs = 12\n",
        )
        .unwrap();
        let settings = config.settings().unwrap();
        let find = |key: &str| settings.iter().find(|s| s.key == key);
        for key in ["providers.github.client_id", "http.timeout_secs"] {
            let setting = find(key).unwrap_or_else(|| panic!("{key}: {settings:?}"));
            assert!(
                matches!(&setting.origin, Some(Origin::File(f)) if f.ends_with("host.toml")),
                "{key}: {:?}",
                setting.origin
            );
        }
        assert_eq!(find("http.timeout_secs").unwrap().value, json!(12));
        let when = find("providers.github.not_before").expect("the date-time, by its own key");
        assert_eq!(when.value, json!("1979-05-27T07:32:00Z"));
        // A number too large for TOML's 64-bit integers is an error, as the specification says.
        let err = load("[http]\ntimeout_secs = 123456789012345678901234\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
    }

    #[test]
    fn toml_syntax_errors_name_the_place_never_the_text() {
        for (toml, line, key) in [
            (
                "[providers.github]\nclient_id = \"x\"\nclient_secret = abc123secret\n",
                3,
                "client_secret",
            ),
            (
                "[providers.github]\nclient_secret = \"abc123secret\n",
                2,
                "client_secret",
            ),
            (
                "[providers.github]\nclient_secret = \"a\"\nclient_secret = \"abc123secret\"\n",
                3,
                "client_secret",
            ),
        ] {
            let err = load(toml).expect_err("a syntax error");
            let text = err.to_string();
            assert!(!text.contains("abc123"), "{text}");
            assert!(text.contains(&format!("line {line}")), "{text}");
            assert!(text.contains(&format!("key `{key}`")), "{text}");
            assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
        }
    }

    #[test]
    fn nested_values_under_a_secret_key_are_redacted() {
        let config = load("[providers.acme]\nclient_secret = { value = \"hunter2\", nested = { deeper = \"hunter3\" } }\nclient_id = \"visible\"\n").unwrap();
        let shown = format!("{:?}", config.settings().unwrap());
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(shown.contains("visible"), "{shown}");
    }
}
