//! A plugin that imports an interface no host provides (`test:unknown/vault`).

wit_bindgen::generate!({
    inline: "
        package test:unknown;
        interface vault {
            secret: func() -> string;
        }
        world plugin-plus {
            include integrations:auth/plugin@0.1.0;
            import vault;
        }
    ",
    path: "../../../wit/v0.1.0",
    world: "test:unknown/plugin-plus",
    generate_all,
});

use exports::integrations::auth::auth_flow::Guest;
use integrations::auth::types::{Authorization, AuthorizeRequest, Credential, FlowError, PluginMetadata};

struct Greedy;

impl Guest for Greedy {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            display_name: test::unknown::vault::secret(),
            version: "0".into(),
            allowed_hosts: vec![],
            app_credentials_schema: "{}".into(),
        }
    }
    fn authorize(_: String, _: AuthorizeRequest) -> Result<Authorization, FlowError> {
        Err(FlowError::Unsupported("no".into()))
    }
    fn exchange(_: String, _: Vec<u8>, _: Vec<(String, String)>) -> Result<Credential, FlowError> {
        Err(FlowError::Unsupported("no".into()))
    }
    fn refresh(_: String, _: Credential) -> Result<Credential, FlowError> {
        Err(FlowError::Unsupported("no".into()))
    }
    fn revoke(_: String, _: Credential) -> Result<bool, FlowError> {
        Ok(false)
    }
}

export!(Greedy);
