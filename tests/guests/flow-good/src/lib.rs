//! A well-behaved OAuth2 flow (authorization code with PKCE) written against the raw WIT
//! bindings: what the plugin SDK will hide.

use std::hash::{BuildHasher, Hasher};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

wit_bindgen::generate!({ world: "plugin", path: "../../../wit/v0.1.0" });

use exports::integrations::auth::auth_flow::Guest;
use integrations::auth::http::{self, Method, Request};
use integrations::auth::log::{self, Level};
use integrations::auth::types::{
    Authorization, AuthorizeRequest, Credential, FlowError, Interaction, PluginMetadata, Oauth2Token,
    ProviderError,
};

struct Flow;

fn random_token() -> String {
    let mut bytes = Vec::new();
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        bytes.extend_from_slice(&h.finish().to_le_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

fn app(app: &str) -> Result<Value, FlowError> {
    serde_json::from_str(app).map_err(|e| FlowError::InvalidAppCredentials(e.to_string()))
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, FlowError> {
    v[name].as_str().ok_or_else(|| FlowError::InvalidAppCredentials(format!("no {name}")))
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('%', "%25").replace('&', "%26").replace('=', "%3D").replace('+', "%2B").replace(' ', "%20").replace(':', "%3A").replace('/', "%2F")))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn token_request(app: &Value, params: &[(&str, &str)]) -> Result<Credential, FlowError> {
    let mut params = params.to_vec();
    params.push(("client_id", field(app, "client_id")?));
    let secret = app["client_secret"].as_str().unwrap_or_default().to_owned();
    if !secret.is_empty() {
        params.push(("client_secret", &secret));
    }
    let response = http::send(&Request {
        method: Method::Post,
        url: field(app, "token_url")?.to_owned(),
        headers: vec![
            ("content-type".into(), "application/x-www-form-urlencoded".into()),
            ("accept".into(), "application/json".into()),
        ],
        body: form(&params),
    })
    .map_err(|e| FlowError::Network(format!("{e:?}")))?;
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|_| FlowError::Network(format!("HTTP {}: not JSON", response.status)))?;
    if let Some(code) = body["error"].as_str() {
        return Err(FlowError::Provider(ProviderError {
            code: code.to_owned(),
            description: body["error_description"].as_str().map(str::to_owned),
            status: response.status,
        }));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    Ok(Credential::Oauth2(Oauth2Token {
        access_token: field(&body, "access_token").map_err(|_| FlowError::Network("no access_token".into()))?.to_owned(),
        token_type: body["token_type"].as_str().unwrap_or("bearer").to_owned(),
        refresh_token: body["refresh_token"].as_str().map(str::to_owned),
        expires_at: body["expires_in"].as_i64().map(|s| now + s),
        scopes: body["scope"].as_str().map(|s| s.split(' ').map(str::to_owned).collect()).unwrap_or_default(),
        extra_json: json!({"via": "flow-good"}).to_string(),
    }))
}

impl Guest for Flow {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            display_name: "Test OAuth2 flow".into(),
            version: "1.0.0".into(),
            allowed_hosts: vec!["127.0.0.1".into()],
            app_credentials_schema: json!({
                "type": "object",
                "required": ["client_id", "authorize_url", "token_url"],
                "properties": {
                    "client_id": {"type": "string", "minLength": 1},
                    "client_secret": {"type": "string"},
                    "authorize_url": {"type": "string", "format": "uri"},
                    "token_url": {"type": "string", "format": "uri"},
                    "scopes": {"type": "array", "items": {"type": "string"}}
                }
            })
            .to_string(),
        }
    }

    fn authorize(app_json: String, req: AuthorizeRequest) -> Result<Authorization, FlowError> {
        let app = app(&app_json)?;
        let state = random_token();
        let verifier = random_token() + &random_token();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let redirect = req.redirect_uri.unwrap_or_default();
        let scopes = if req.scopes.is_empty() {
            app["scopes"].as_array().map(|a| a.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join(" ")).unwrap_or_default()
        } else {
            req.scopes.join(" ")
        };
        let url = format!(
            "{}?response_type=code&client_id={}&redirect_uri={}&state={state}&code_challenge={challenge}&code_challenge_method=S256&scope={}",
            field(&app, "authorize_url")?,
            field(&app, "client_id")?,
            String::from_utf8(form(&[("x", &redirect)])).unwrap().trim_start_matches("x="),
            scopes.replace(' ', "%20"),
        );
        log::log(Level::Trace, "state and verifier made");
        log::log(Level::Info, "authorization URL built");
        let pending = json!({"state": state, "verifier": verifier, "redirect": redirect}).to_string();
        Ok(Authorization { interaction: Interaction::Redirect(url), pending: pending.into_bytes() })
    }

    fn exchange(app_json: String, pending: Vec<u8>, input: Vec<(String, String)>) -> Result<Credential, FlowError> {
        let app = app(&app_json)?;
        let pending: Value = serde_json::from_slice(&pending).map_err(|e| FlowError::Internal(e.to_string()))?;
        let get = |name: &str| input.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if get("state") != pending["state"].as_str() {
            return Err(FlowError::InvalidInput("state mismatch".into()));
        }
        if let Some(e) = get("error") {
            return Err(FlowError::AccessDenied(Some(e.to_owned())));
        }
        let code = get("code").ok_or_else(|| FlowError::InvalidInput("no code".into()))?;
        token_request(&app, &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending["redirect"].as_str().unwrap_or_default()),
            ("code_verifier", pending["verifier"].as_str().unwrap_or_default()),
        ])
    }

    fn refresh(app_json: String, credential: Credential) -> Result<Credential, FlowError> {
        let app = app(&app_json)?;
        let Credential::Oauth2(token) = credential else {
            return Err(FlowError::Unsupported("not an OAuth2 token".into()));
        };
        let rt = token.refresh_token.ok_or_else(|| FlowError::Unsupported("no refresh token".into()))?;
        token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &rt)])
    }

    fn revoke(_app: String, _credential: Credential) -> Result<bool, FlowError> {
        Ok(false)
    }
}

export!(Flow);
