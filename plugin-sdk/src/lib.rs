//! Write auth-flow plugins for `host` in Rust.
//!
//! A plugin is a WebAssembly component that `host` runs sandboxed. With this crate a plugin is
//! a short, typed file: describe your app credentials as a Rust type, implement [`Flow`], and
//! call [`register!`]. The WIT bindings stay hidden; the credentials' JSON schema is derived
//! from your type and exported for you, and your functions receive an already-parsed value.
//!
//! ```
//! use plugin_sdk::prelude::*;
//!
//! /// What the user configures under `[providers.<name>]`.
//! #[derive(Deserialize, JsonSchema)]
//! struct App {
//!     /// An endpoint that answers 200 to a valid key.
//!     verify_url: String,
//! }
//!
//! struct ApiKey;
//!
//! impl Flow for ApiKey {
//!     type App = App;
//!
//!     fn authorize(_app: &App, _req: AuthorizeRequest) -> Result<Authorization> {
//!         Ok(Authorization::prompt([Field::secret("api_key", "API key")]))
//!     }
//!
//!     fn exchange(app: &App, _pending: Pending, input: Input) -> Result<Credential> {
//!         let key = input.require("api_key")?;
//!         let response = http::get(&app.verify_url).bearer(key).send()?;
//!         if !response.is_success() {
//!             return Err(Error::invalid_input(format!("the key was refused (HTTP {})", response.status)));
//!         }
//!         Ok(Credential::api_key(key))
//!     }
//! }
//!
//! plugin_sdk::register!(ApiKey {
//!     name: "Example API key",
//!     version: "1.0.0",
//!     // `{verify_url}`: the host of the URL the user configured in that field.
//!     hosts: ["{verify_url}"],
//! });
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (crate type `cdylib`; with
//! `lto = true` and `codegen-units = 1` in `[profile.release]` the component is smaller and its
//! calls faster) and drop the `.wasm` into `host`'s plugins folder.
//!
//! Every call runs in a fresh instance: keep nothing in statics between calls. What a login
//! needs from `authorize` to `exchange` goes into [`Authorization::with_pending`], which the
//! host keeps and hands back as [`Pending`].
//!
//! Secrets ([`ApiKey`], [`Secret`], [`Token`]'s tokens, [`Pending`], [`Input`]'s answers) have
//! no public fields: they are read through accessors ([`ApiKey::expose`],
//! [`Token::access_token`], …), redacted in `Debug`, and zeroed when dropped.

#![deny(missing_docs)]

pub mod http;
pub mod log;
pub mod oauth2;
mod types;

pub use types::{
    ApiKey, Authorization, AuthorizeRequest, Binding, Credential, DeviceCode, Error, Field, Input,
    Pending, Result, Secret, Token,
};

/// Everything a plugin usually needs, in one `use`.
pub mod prelude {
    pub use crate::types::{
        Authorization, AuthorizeRequest, Binding, Credential, DeviceCode, Error, Field, Input,
        Pending, Result, Token,
    };
    pub use crate::{Flow, http, log, oauth2};
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
}

/// An auth flow. Implement it on a unit struct and export it with [`register!`].
pub trait Flow {
    /// The app credentials: the plugin's `[providers.<name>]` section. Its JSON schema is
    /// exported, and the host validates the section against it before calling the plugin.
    type App: serde::de::DeserializeOwned + schemars::JsonSchema;

    /// What the user must do: open a URL, enter a device code, or fill fields.
    fn authorize(app: &Self::App, req: AuthorizeRequest) -> Result<Authorization>;

    /// Turns what came back (callback parameters, prompt answers) into a credential.
    fn exchange(app: &Self::App, pending: Pending, input: Input) -> Result<Credential>;

    /// Renews a credential. By default: unsupported.
    fn refresh(app: &Self::App, credential: Credential) -> Result<Credential> {
        let _ = (app, credential);
        Err(Error::unsupported("this flow cannot refresh credentials"))
    }

    /// Revokes a credential at the provider; `Ok(false)` (the default) when it has no way to.
    fn revoke(app: &Self::App, credential: Credential) -> Result<bool> {
        let _ = (app, credential);
        Ok(false)
    }
}

/// Exports a [`Flow`] with its metadata.
///
/// ```text
/// plugin_sdk::register!(MyFlow {
///     name: "Acme",                              // shown to users
///     version: env!("CARGO_PKG_VERSION"),
///     hosts: ["api.acme.example", "{token_url}"], // what `http` may reach
/// });
/// ```
///
/// A host is `api.example.com`, `*.example.com` (subdomains only) or `127.0.0.1`, optionally
/// with `:port`; `{field}` stands for the host of the URL in the app-credentials field `field`.
#[macro_export]
macro_rules! register {
    ($flow:ty {
        name: $name:expr,
        version: $version:expr,
        hosts: [$($host:expr),* $(,)?]
        $(, binding: $binding:expr)?
        $(, api_base_url: $api:expr)?
        $(,)?
    }) => {
        #[doc(hidden)]
        struct __HostPluginExport;

        impl $crate::__private::Guest for __HostPluginExport {
            fn metadata() -> $crate::__private::wit::PluginMetadata {
                let binding: ::std::option::Option<$crate::Binding> = None;
                $(let binding = Some($binding);)?
                let api: ::std::option::Option<&str> = None;
                $(let api = Some($api);)?
                $crate::__private::metadata::<$flow>($name, $version, &[$($host),*], binding, api)
            }
            fn authorize(
                app: ::std::string::String,
                req: $crate::__private::wit::AuthorizeRequest,
            ) -> ::std::result::Result<$crate::__private::wit::Authorization, $crate::__private::wit::FlowError> {
                $crate::__private::authorize::<$flow>(app, req)
            }
            fn exchange(
                app: ::std::string::String,
                pending: ::std::vec::Vec<u8>,
                input: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::result::Result<$crate::__private::wit::Credential, $crate::__private::wit::FlowError> {
                $crate::__private::exchange::<$flow>(app, pending, input)
            }
            fn refresh(
                app: ::std::string::String,
                credential: $crate::__private::wit::Credential,
            ) -> ::std::result::Result<$crate::__private::wit::Credential, $crate::__private::wit::FlowError> {
                $crate::__private::refresh::<$flow>(app, credential)
            }
            fn revoke(
                app: ::std::string::String,
                credential: $crate::__private::wit::Credential,
            ) -> ::std::result::Result<bool, $crate::__private::wit::FlowError> {
                $crate::__private::revoke::<$flow>(app, credential)
            }
        }

        // Exported only when built as a component: a native build (tests, `cargo check` of a
        // workspace) links no component ABI symbols.
        #[cfg(target_family = "wasm")]
        $crate::__private::bindings::__export_auth_flow!(__HostPluginExport with_types_in $crate::__private::bindings);
        #[cfg(not(target_family = "wasm"))]
        const _: () = {
            use $crate::__private::Guest as _;
            let _ = __HostPluginExport::metadata;
            let _ = __HostPluginExport::authorize;
            let _ = __HostPluginExport::exchange;
            let _ = __HostPluginExport::refresh;
            let _ = __HostPluginExport::revoke;
        };
    };
}

/// Plumbing for [`register!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    /// The generated bindings.
    pub mod bindings {
        wit_bindgen::generate!({
            world: "plugin",
            path: "wit",
            pub_export_macro: true,
            export_macro_name: "__export_auth_flow",
            default_bindings_module: "plugin_sdk::__private::bindings",
        });
    }

    pub use bindings::exports::integrations::auth::auth_flow::Guest;
    pub use bindings::integrations::auth::types as wit;

    use crate::{Flow, Input, Pending};

    fn app<F: Flow>(json: &str) -> Result<F::App, wit::FlowError> {
        serde_json::from_str(json).map_err(|e| wit::FlowError::InvalidAppCredentials(e.to_string()))
    }

    pub fn metadata<F: Flow>(
        name: &str,
        version: &str,
        hosts: &[&str],
        binding: Option<crate::Binding>,
        api_base_url: Option<&str>,
    ) -> wit::PluginMetadata {
        let schema = schemars::schema_for!(F::App);
        wit::PluginMetadata {
            display_name: name.to_owned(),
            version: version.to_owned(),
            allowed_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            app_credentials_schema: serde_json::to_string(&schema).unwrap_or_else(|_| "{}".into()),
            binding: binding.map(Into::into),
            api_base_url: api_base_url.map(str::to_owned),
        }
    }

    pub fn authorize<F: Flow>(
        app_json: String,
        req: wit::AuthorizeRequest,
    ) -> Result<wit::Authorization, wit::FlowError> {
        let app = app::<F>(&app_json)?;
        let req = crate::AuthorizeRequest {
            redirect_uri: req.redirect_uri,
            scopes: req.scopes,
        };
        F::authorize(&app, req).map(Into::into).map_err(Into::into)
    }

    pub fn exchange<F: Flow>(
        app_json: String,
        pending: Vec<u8>,
        input: Vec<(String, String)>,
    ) -> Result<wit::Credential, wit::FlowError> {
        let app = app::<F>(&app_json)?;
        F::exchange(&app, Pending::new(pending), Input::new(input))
            .map(Into::into)
            .map_err(Into::into)
    }

    pub fn refresh<F: Flow>(
        app_json: String,
        c: wit::Credential,
    ) -> Result<wit::Credential, wit::FlowError> {
        let app = app::<F>(&app_json)?;
        F::refresh(&app, c.into())
            .map(Into::into)
            .map_err(Into::into)
    }

    pub fn revoke<F: Flow>(app_json: String, c: wit::Credential) -> Result<bool, wit::FlowError> {
        let app = app::<F>(&app_json)?;
        F::revoke(&app, c.into()).map_err(Into::into)
    }
}
