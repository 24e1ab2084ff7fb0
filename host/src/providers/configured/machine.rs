//! A configured provider's unattended flows (client credentials, JWT bearer, token
//! exchange), built from its settings; and [`ProviderTokens`], which lends a token exchange
//! another provider's token.

use std::path::PathBuf;
use std::sync::Arc;

use url::Url;

use super::client_auth::{client_key, endpoint_http, private_key};
use super::service_account::ServiceAccount;
use super::settings::{FlowKind, OneOrMany, SubjectTokenSource, settings};
use crate::flow::FlowError;
use crate::net::http::HttpPolicy;
use crate::oauth2::machine::{
    JwtBearer, MachineFlow, MachineGrant, SubjectSource, SubjectToken, TokenExchange,
    token_type_uri,
};
use crate::oauth2::{OAuth2AppCredentials, OAuth2Flow};
use crate::providers::section::ProviderSection;
use crate::util::secret::SecretString;
use crate::util::text::sanitize;

/// Another provider's fresh access token, for a token exchange's `subject_provider`: what
/// the [`App`](crate::app::App) hands its configured providers.
#[crate::flow::async_trait]
pub trait ProviderTokens: Send + Sync {
    /// `provider`'s access token, renewed first when due.
    async fn access_token(&self, provider: &str) -> Result<SecretString, FlowError>;
}

/// `subject_provider`'s token, through [`ProviderTokens`].
struct FromProvider {
    tokens: Arc<dyn ProviderTokens>,
    provider: String,
}

#[crate::flow::async_trait]
impl SubjectSource for FromProvider {
    async fn subject_token(&self) -> Result<SecretString, FlowError> {
        self.tokens.access_token(&self.provider).await
    }
}

/// An unattended flow of a configured provider.
pub(super) async fn build_machine(
    section: &ProviderSection,
    policy: HttpPolicy,
    cache_dir: Option<PathBuf>,
    kind: FlowKind,
    tokens: Option<Arc<dyn ProviderTokens>>,
) -> Result<MachineFlow, FlowError> {
    let name = section.provider();
    let s = settings(section)?;
    let http = endpoint_http(name, &s, policy)?;
    let account = match &s.service_account_file {
        Some(path) => Some(ServiceAccount::read(name, path)?),
        None => None,
    };
    let mut token_url = s.token_url.clone();
    let mut revocation_url = s.revocation_url.clone();
    if let Some(uri) = account.as_ref().and_then(|a| a.token_uri.clone()) {
        token_url.get_or_insert(uri);
    }
    if let Some(issuer) = &s.issuer {
        let meta = crate::oidc::discover(issuer, &http, cache_dir.as_deref())
            .await
            .map_err(|e| e.into_flow_error(name))?;
        token_url.get_or_insert(meta.token_endpoint);
        revocation_url = revocation_url.or(meta.revocation_endpoint);
    }
    let token_url = token_url.ok_or_else(|| {
        FlowError::config(format!(
            "providers.{name} needs token_url, an issuer or a service_account_file"
        ))
    })?;
    for (field, url) in [
        ("token_url", Some(&token_url)),
        ("revocation_url", revocation_url.as_ref()),
    ] {
        if let Some(url) = url {
            crate::net::http::require_secure(url).map_err(|e| FlowError::InvalidConfig {
                message: format!("providers.{name}.{field}"),
                source: Some(Box::new(e)),
            })?;
        }
    }
    // No authorization endpoint: nobody is sent anywhere. The token endpoint stands in.
    let mut app = OAuth2AppCredentials::new(s.client_id.clone(), token_url.clone(), token_url);
    app.client_secret = s.client_secret.clone();
    app.revocation_url = revocation_url;
    app.scopes = s.scopes.clone();
    app.client_auth = s.client_auth;
    app.token_params = s.token_params.clone();
    app.token_request = s.token_request;
    app.scope_separator = s.scope_separator.clone();
    app.token_pointer = s.token_pointer.clone();
    app.bearer_token_types = s.bearer_token_types.clone();
    app.client_key = client_key(name, &s, account.as_ref())?;
    // A JWT bearer grant or a token exchange needs no client authentication: without a
    // secret or a `client_auth`, none is sent, not even the client id.
    app.anonymous =
        kind != FlowKind::ClientCredentials && s.client_auth.is_none() && s.client_secret.is_none();
    let oauth2 = OAuth2Flow::with_class(name, app, Default::default(), http)?;
    let grant = match kind {
        FlowKind::JwtBearer => {
            let key = Arc::new(private_key(name, &s, account.as_ref())?);
            let issuer = s
                .assertion_issuer
                .clone()
                .or_else(|| account.as_ref().map(|a| a.client_email.clone()))
                .unwrap_or_else(|| s.client_id.clone());
            let mut bearer = JwtBearer::new(key, issuer);
            bearer.subject = s.assertion_subject.clone();
            bearer.audience = s.assertion_audience.clone();
            bearer.scope_claim = account.is_some();
            MachineGrant::JwtBearer(bearer)
        }
        FlowKind::TokenExchange => {
            let mut sources = Vec::new();
            if let Some(path) = &s.subject_token_file {
                sources.push(SubjectToken::File(path.clone()));
            }
            if let Some(var) = &s.subject_token_env {
                sources.push(SubjectToken::Env(var.clone()));
            }
            if let Some(provider) = &s.subject_provider {
                if provider == name {
                    return Err(FlowError::config(format!(
                        "providers.{name}.subject_provider names the provider itself"
                    )));
                }
                let tokens = tokens.clone().ok_or_else(|| {
                    FlowError::config(format!(
                        "providers.{name}.subject_provider: no other provider can be reached from here"
                    ))
                })?;
                sources.push(SubjectToken::Source(Arc::new(FromProvider {
                    tokens,
                    provider: provider.clone(),
                })));
            }
            if let Some(SubjectTokenSource::GithubActions) = s.subject_token_source {
                sources.push(SubjectToken::GithubActions {
                    audience: s.audience.clone(),
                });
            }
            let github = s.subject_token_source.is_some();
            let subject = match sources.len() {
                1 => sources.pop().expect("one"),
                0 => {
                    return Err(FlowError::config(format!(
                        "providers.{name}: token_exchange needs one of subject_token_file, subject_token_env, subject_provider or subject_token_source"
                    )));
                }
                _ => {
                    return Err(FlowError::config(format!(
                        "providers.{name}: set only one of subject_token_file, subject_token_env, subject_provider and subject_token_source"
                    )));
                }
            };
            let default_type = if github { "jwt" } else { "access_token" };
            MachineGrant::TokenExchange(TokenExchange {
                subject,
                subject_token_type: token_type_uri(
                    s.subject_token_type.as_deref().unwrap_or(default_type),
                ),
                requested_token_type: s.requested_token_type.as_deref().map(token_type_uri),
            })
        }
        _ => MachineGrant::ClientCredentials,
    };
    let resources = s
        .resource
        .as_ref()
        .map(OneOrMany::values)
        .unwrap_or_default();
    for resource in &resources {
        let ok = Url::parse(resource).is_ok_and(|u| u.fragment().is_none());
        if !ok {
            return Err(FlowError::config(format!(
                "providers.{name}.resource: `{}` is not an absolute URI without a fragment (RFC 8707)",
                sanitize(resource, 100)
            )));
        }
    }
    Ok(MachineFlow::new(oauth2, grant)
        .audience(s.audience.clone())
        .resources(resources))
}
