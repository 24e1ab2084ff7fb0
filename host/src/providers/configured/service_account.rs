//! A Google service-account JSON key, read from `service_account_file`.

use serde_json::Value;
use url::Url;

use crate::oauth2::assertion::{KeyFileError, read_private_file};
use crate::util::secret::SecretString;

/// A Google service-account JSON key: who it is, its key, where it gets tokens.
pub(super) struct ServiceAccount {
    pub(super) client_email: String,
    pub(super) private_key: SecretString,
    pub(super) private_key_id: Option<String>,
    pub(super) token_uri: Option<Url>,
}

impl ServiceAccount {
    /// Reads it (owner-only, like every key file), naming the setting in errors.
    pub(super) fn read(provider: &str, path: &std::path::Path) -> Result<Self, KeyFileError> {
        let setting = format!("providers.{provider}.service_account_file");
        let bytes = read_private_file(&setting, path)?;
        let bad = |reason: &str| KeyFileError::Malformed {
            setting: setting.clone(),
            path: Some(path.to_owned()),
            reason: reason.to_owned(),
        };
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|_| bad("is not a service-account JSON key (not JSON)"))?;
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let client_email =
            text("client_email").ok_or_else(|| bad("is a JSON file without `client_email`"))?;
        let private_key = SecretString::new(
            text("private_key").ok_or_else(|| bad("is a JSON file without `private_key`"))?,
        );
        let token_uri = match text("token_uri") {
            Some(uri) => {
                Some(Url::parse(&uri).map_err(|_| bad("has a `token_uri` that is not a URL"))?)
            }
            None => None,
        };
        Ok(Self {
            client_email,
            private_key,
            private_key_id: text("private_key_id"),
            token_uri,
        })
    }
}
