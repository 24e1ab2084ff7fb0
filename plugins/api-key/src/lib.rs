//! An API-key flow: the user pastes a key, the plugin checks it with one request, and the key
//! is the credential.
//!
//! ```toml
//! [providers.api-key]
//! verify_url = "https://api.example.com/v1/me"   # answers 2xx to a valid key
//! header = "authorization"                        # optional; the default
//! prefix = "Bearer "                              # optional; the default
//! ```

use plugin_sdk::prelude::*;

/// The plugin's `[providers.<name>]` section.
#[derive(Deserialize, JsonSchema)]
struct App {
    /// An endpoint that answers 2xx to a request carrying a valid key.
    #[schemars(url)]
    verify_url: String,
    /// The header that carries the key.
    #[serde(default = "default_header")]
    header: String,
    /// What goes before the key in that header.
    #[serde(default = "default_prefix")]
    prefix: String,
}

fn default_header() -> String {
    "authorization".into()
}

fn default_prefix() -> String {
    "Bearer ".into()
}

struct ApiKey;

impl Flow for ApiKey {
    type App = App;

    fn authorize(_app: &App, _req: AuthorizeRequest) -> Result<Authorization> {
        Ok(Authorization::prompt([Field::secret("api_key", "API key")]))
    }

    fn exchange(app: &App, _pending: Pending, input: Input) -> Result<Credential> {
        let key = input.require("api_key")?.trim();
        let response = http::get(&app.verify_url)
            .header(&app.header, &format!("{}{key}", app.prefix))
            .send()?;
        match response.status {
            200..=299 => Ok(Credential::api_key(key)),
            401 | 403 => Err(Error::invalid_input(format!(
                "the API key was refused (HTTP {})",
                response.status
            ))),
            status => Err(Error::for_status(
                status,
                format!("cannot check the key: HTTP {status}"),
            )),
        }
    }
}

plugin_sdk::register!(ApiKey {
    name: "API key",
    version: env!("CARGO_PKG_VERSION"),
    hosts: ["{verify_url}"],
    // `host api` and `host token --header` put the key where `verify_url` expects it.
    binding: Binding::header("{header}", "{prefix}"),
});
