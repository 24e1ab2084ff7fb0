//! Loading: finding the configuration file, reading it, and merging the layers (built-in
//! defaults, the file, `HOST_` variables, aliases) into a `Config`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::Figment;
use figment::value::{Dict, Value as FigValue};
use url::Url;

use super::env::{Alias, ENV_PREFIX};
use super::origins::{FigmentOrigins, Layer};
use super::redact::{describe, is_secret, without_quoted};
use super::settings::{ProxySetting, Settings, TOP_LEVEL};
use super::{Config, ConfigError};
use crate::providers::app_credentials::{Origin, OriginLookup};

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

/// A catalog provider's `NAME_CLIENT_ID` and `NAME_CLIENT_SECRET`.
fn catalog_alias_pair(name: &str) -> [Alias; 2] {
    ["client_id", "client_secret"].map(|key| {
        Alias::new(
            crate::providers::catalog::env_var(name, &key.to_ascii_uppercase()),
            format!("providers.{name}.{key}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
