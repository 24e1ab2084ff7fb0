//! A plugin whose app-credentials schema is not usable: it refers to a remote schema (`$ref`
//! to an https URL), which the host never fetches. Every flow step is unsupported.

wit_bindgen::generate!({ world: "plugin", path: "../../../wit/v0.1.0" });

use exports::integrations::auth::auth_flow::Guest;
use integrations::auth::types::{Authorization, AuthorizeRequest, Credential, FlowError, PluginMetadata};

struct RemoteRef;

impl Guest for RemoteRef {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            display_name: "Remote schema".into(),
            version: "1.0.0".into(),
            allowed_hosts: vec!["127.0.0.1".into()],
            app_credentials_schema: r#"{"type": "object", "properties": {"client": {"$ref": "https://schemas.example/client.json"}}}"#.into(),
        }
    }

    fn authorize(_app: String, _req: AuthorizeRequest) -> Result<Authorization, FlowError> {
        Err(FlowError::Unsupported("never gets this far".into()))
    }

    fn exchange(_app: String, _pending: Vec<u8>, _input: Vec<(String, String)>) -> Result<Credential, FlowError> {
        Err(FlowError::Unsupported("never gets this far".into()))
    }

    fn refresh(_app: String, _credential: Credential) -> Result<Credential, FlowError> {
        Err(FlowError::Unsupported("never gets this far".into()))
    }

    fn revoke(_app: String, _credential: Credential) -> Result<bool, FlowError> {
        Ok(false)
    }
}

export!(RemoteRef);
