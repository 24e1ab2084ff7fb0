//! Where each value came from: the figment layers, each tagged with its source, and the
//! lookup that reads a value's origin back from those tags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value as FigValue};
use figment::{Figment, Metadata, Profile, Provider};

use super::env::{Alias, ENV_PREFIX, FIELD_PREFIX, NOT_CONFIG, env_name, env_value, insert_path};
use super::settings::TOP_LEVEL;
use crate::providers::app_credentials::{Origin, OriginLookup};

pub(super) struct FigmentOrigins {
    pub(super) figment: Figment,
    pub(super) file: PathBuf,
    pub(super) aliases: Vec<Alias>,
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

/// A figment layer with its own metadata (so origins can be told apart).
pub(super) struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Layer {
    pub(super) fn defaults(value: FigValue) -> Self {
        Self {
            metadata: Metadata::named(DEFAULTS_NAME),
            dict: value.into_dict().unwrap_or_default(),
        }
    }

    /// The configuration file's settings, reported as coming from that file.
    pub(super) fn file(path: &Path, dict: Dict) -> Self {
        Self {
            metadata: Metadata::from("TOML file", path),
            dict,
        }
    }

    pub(super) fn env(env: &BTreeMap<String, String>) -> Self {
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

    pub(super) fn alias(alias: &Alias, value: &str) -> Self {
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

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}
