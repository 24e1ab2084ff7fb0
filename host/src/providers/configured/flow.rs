//! [`ConfiguredFlow`]: a configured provider's browser and device flows, with discovery,
//! `id_token` validation and the identify endpoint.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use url::Url;

use super::client_auth::{client_key, endpoint_http};
use super::service_account::ServiceAccount;
use super::settings::settings;
use crate::flow::{
    AuthFlow, Authorization, AuthorizeRequest, Credential, ExchangeInput, FlowError, Pending,
};
use crate::net::http::HttpPolicy;
use crate::oauth2::{
    ClientAuth, Grant, ID_TOKEN_CLAIMS, OAuth2AppCredentials, OAuth2Flow, StandardToken,
};
use crate::oidc::{IdTokenClaims, IdTokenVerifier, MetadataKind};
use crate::providers::section::ProviderSection;
use crate::util::text::sanitize;

/// A configured provider's flow: [`OAuth2Flow`] (or its device grant) with the provider's
/// endpoints and quirks, `id_token` validation with an issuer, and the identify endpoint.
#[derive(Debug)]
pub struct ConfiguredFlow {
    grant: Grant<StandardToken>,
    identify: Option<(Url, Option<String>)>,
    api_url: Option<Url>,
}

impl ConfiguredFlow {
    /// Builds the flow from a provider section: settings checked, discovery run (and cached
    /// under `cache_dir`) when there is an issuer.
    pub async fn build(
        section: &ProviderSection,
        policy: HttpPolicy,
        cache_dir: Option<PathBuf>,
        device: bool,
    ) -> Result<Self, FlowError> {
        let name = section.provider();
        let s = settings(section)?;
        let http = endpoint_http(name, &s, policy)?;
        let mut verifier = None;
        let mut userinfo = None;
        let mut require_iss = false;
        let mut openid = false;
        let (mut authorize_url, mut token_url) = (s.authorize_url.clone(), s.token_url.clone());
        let (mut device_url, mut revocation_url) =
            (s.device_authorization_url.clone(), s.revocation_url.clone());
        if let Some(issuer) = &s.issuer {
            let meta = crate::oidc::discover(issuer, &http, cache_dir.as_deref())
                .await
                .map_err(|e| e.into_flow_error(name))?;
            authorize_url.get_or_insert(meta.authorization_endpoint);
            token_url.get_or_insert(meta.token_endpoint);
            device_url = device_url.or(meta.device_authorization_endpoint);
            revocation_url = revocation_url.or(meta.revocation_endpoint);
            userinfo = meta.userinfo_endpoint;
            require_iss = meta.authorization_response_iss_parameter_supported;
            // An OpenID Connect provider's id_tokens are validated; a plain OAuth2 server
            // (RFC 8414 metadata) issues none, and nothing it sends is taken as one.
            if let (MetadataKind::OpenIdConnect, Some(jwks_uri)) = (meta.kind, meta.jwks_uri) {
                openid = true;
                verifier = Some(Arc::new(
                    IdTokenVerifier::new(
                        issuer.clone(),
                        s.client_id.clone(),
                        jwks_uri,
                        http.clone(),
                    )
                    .also_issued_as(s.id_token_issuers.clone()),
                ));
            } else if s.scopes.iter().any(|scope| scope == "openid")
                || !s.id_token_issuers.is_empty()
            {
                // The section expects OpenID Connect: its id_tokens are not to go unchecked
                // because the discovery document is missing (a misconfigured proxy's 404).
                return Err(FlowError::config(format!(
                    "providers.{name} asks for OpenID Connect (`openid` in scopes, or id_token_issuers), but the issuer publishes only OAuth2 metadata (RFC 8414), no OpenID Connect discovery document"
                )));
            } else {
                tracing::debug!(
                    "providers.{name}: the issuer is a plain OAuth2 server (RFC 8414 metadata)"
                );
            }
        }
        let (Some(authorize_url), Some(token_url)) = (authorize_url, token_url) else {
            return Err(FlowError::config(format!(
                "providers.{name} needs authorize_url and token_url, or an issuer"
            )));
        };
        let mut app = OAuth2AppCredentials::new(s.client_id.clone(), authorize_url, token_url);
        app.client_secret = s.client_secret.clone();
        app.device_authorization_url = device_url;
        app.revocation_url = revocation_url;
        app.redirect_uri = s.redirect_uri.clone();
        app.scopes = if s.scopes.is_empty() && openid {
            vec!["openid".to_owned()]
        } else {
            s.scopes.clone()
        };
        app.client_auth = s.client_auth;
        // A browser or device login reads a service account only for the key that signs its
        // client assertions, when no key file is named.
        let account = match &s.service_account_file {
            Some(path)
                if s.client_auth == Some(ClientAuth::PrivateKeyJwt)
                    && s.private_key_file.is_none() =>
            {
                Some(ServiceAccount::read(name, path)?)
            }
            _ => None,
        };
        app.client_key = client_key(name, &s, account.as_ref())?;
        app.authorize_params = s.authorize_params.clone();
        app.token_params = s.token_params.clone();
        app.token_request = s.token_request;
        app.scope_param = s.scope_param.clone();
        app.device_scope_param = s.device_scope_param.clone();
        app.issuer = s.issuer.clone();
        app.require_iss = require_iss;
        app.pkce = s.pkce;
        app.scope_separator = s.scope_separator.clone();
        app.token_pointer = s.token_pointer.clone();
        app.bearer_token_types = s.bearer_token_types.clone();
        for (field, url) in [("api_url", &s.api_url), ("identify_url", &s.identify_url)] {
            if let Some(url) = url {
                crate::net::http::require_secure(url).map_err(|e| FlowError::InvalidConfig {
                    message: format!("providers.{name}.{field}"),
                    source: Some(Box::new(e)),
                })?;
            }
        }
        let mut flow = OAuth2Flow::with_class(name, app, Default::default(), http)?;
        if let Some(verifier) = verifier {
            flow = flow.with_id_token_verifier(verifier);
        }
        let grant = Grant::new(flow, device)?;
        let identify = s
            .identify_url
            .clone()
            .map(|u| (u, s.identify_pointer.clone()))
            .or_else(|| userinfo.map(|u| (u, None)));
        Ok(Self {
            grant,
            identify,
            api_url: s.api_url,
        })
    }

    /// The OAuth2 flow underneath.
    pub fn oauth2(&self) -> &OAuth2Flow {
        self.grant.oauth2()
    }

    /// The API's base URL, when configured.
    pub fn api_url(&self) -> Option<&Url> {
        self.api_url.as_ref()
    }

    fn flow(&self) -> &dyn AuthFlow {
        self.grant.flow()
    }
}

/// The claims of the validated `id_token` a credential carries.
pub fn id_token_claims(credential: &Credential) -> Option<IdTokenClaims> {
    let claims = credential.as_oauth2()?.extra.0.get(ID_TOKEN_CLAIMS)?;
    serde_json::from_value(claims.clone()).ok()
}

#[async_trait::async_trait]
impl AuthFlow for ConfiguredFlow {
    async fn authorize(&self, req: AuthorizeRequest) -> Result<Authorization, FlowError> {
        self.flow().authorize(req).await
    }

    fn redirect_uri(&self) -> Option<url::Url> {
        self.flow().redirect_uri()
    }

    async fn exchange(
        &self,
        pending: Pending,
        input: ExchangeInput,
    ) -> Result<Credential, FlowError> {
        self.flow().exchange(pending, input).await
    }

    async fn refresh(&self, credential: &Credential) -> Result<Credential, FlowError> {
        self.oauth2().refresh(credential).await
    }

    async fn revoke(&self, credential: &Credential) -> Result<bool, FlowError> {
        self.oauth2().revoke_rfc7009(credential).await
    }

    /// The validated `id_token`'s email, login name, name or subject; else the identify
    /// endpoint's answer (the caller bounds the wait).
    async fn identify(&self, credential: &Credential) -> Option<String> {
        if let Some(claims) = id_token_claims(credential) {
            return Some(claims.label());
        }
        self.verify(credential).await.ok().flatten()
    }

    /// A GET of the identify endpoint with the token: 2xx is valid (with the login name),
    /// 401 is refused.
    async fn verify(&self, credential: &Credential) -> Result<Option<String>, FlowError> {
        let Some((url, pointer)) = &self.identify else {
            return Err(FlowError::Unsupported(
                "the provider has no identify_url (nor a userinfo endpoint) to check a credential with".into(),
            ));
        };
        let user = self
            .oauth2()
            .get_as_user(url.as_str(), credential, "application/json")
            .await?;
        let found = match pointer {
            Some(p) => user.pointer(p),
            None => [
                "/email",
                "/preferred_username",
                "/login",
                "/username",
                "/name",
            ]
            .iter()
            .find_map(|p| user.pointer(p).filter(|v| v.is_string())),
        };
        Ok(found
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .map(|s| sanitize(&s, 100)))
    }
}
