//! `integrations:auth@0.1.0` values as the host's 0.2.0 ones, and back: a 0.1.0 plugin runs
//! unchanged; what 0.2.0 added (a binding, an API base URL) is simply absent.

use super::bindings::v0_1::integrations::auth::types as old;
use super::bindings::v0_2::integrations::auth::types as new;

pub(crate) fn metadata(m: old::PluginMetadata) -> new::PluginMetadata {
    new::PluginMetadata {
        display_name: m.display_name,
        version: m.version,
        allowed_hosts: m.allowed_hosts,
        app_credentials_schema: m.app_credentials_schema,
        binding: None,
        api_base_url: None,
    }
}

pub(crate) fn request(r: &new::AuthorizeRequest) -> old::AuthorizeRequest {
    old::AuthorizeRequest {
        redirect_uri: r.redirect_uri.clone(),
        scopes: r.scopes.clone(),
    }
}

pub(crate) fn authorization(a: old::Authorization) -> new::Authorization {
    let interaction = match a.interaction {
        old::Interaction::Redirect(url) => new::Interaction::Redirect(url),
        old::Interaction::DeviceCode(d) => new::Interaction::DeviceCode(new::DeviceCode {
            user_code: d.user_code,
            verification_uri: d.verification_uri,
            verification_uri_complete: d.verification_uri_complete,
            interval_secs: d.interval_secs,
            expires_in_secs: d.expires_in_secs,
        }),
        old::Interaction::Prompt(fields) => new::Interaction::Prompt(
            fields
                .into_iter()
                .map(|f| new::PromptField {
                    name: f.name,
                    label: f.label,
                    secret: f.secret,
                })
                .collect(),
        ),
    };
    new::Authorization {
        interaction,
        pending: a.pending,
    }
}

pub(crate) fn credential(c: old::Credential) -> new::Credential {
    match c {
        old::Credential::Oauth2(t) => new::Credential::Oauth2(new::Oauth2Token {
            access_token: t.access_token,
            token_type: t.token_type,
            refresh_token: t.refresh_token,
            expires_at: t.expires_at,
            scopes: t.scopes,
            extra_json: t.extra_json,
        }),
        old::Credential::ApiKey(k) => new::Credential::ApiKey(k),
        old::Credential::Basic(b) => new::Credential::Basic(new::BasicAuth {
            username: b.username,
            password: b.password,
        }),
    }
}

pub(crate) fn credential_down(c: &new::Credential) -> old::Credential {
    match c {
        new::Credential::Oauth2(t) => old::Credential::Oauth2(old::Oauth2Token {
            access_token: t.access_token.clone(),
            token_type: t.token_type.clone(),
            refresh_token: t.refresh_token.clone(),
            expires_at: t.expires_at,
            scopes: t.scopes.clone(),
            extra_json: t.extra_json.clone(),
        }),
        new::Credential::ApiKey(k) => old::Credential::ApiKey(k.clone()),
        new::Credential::Basic(b) => old::Credential::Basic(old::BasicAuth {
            username: b.username.clone(),
            password: b.password.clone(),
        }),
    }
}

pub(crate) fn error(e: old::FlowError) -> new::FlowError {
    match e {
        old::FlowError::InvalidAppCredentials(m) => new::FlowError::InvalidAppCredentials(m),
        old::FlowError::InvalidInput(m) => new::FlowError::InvalidInput(m),
        old::FlowError::AccessDenied(d) => new::FlowError::AccessDenied(d),
        old::FlowError::Provider(p) => new::FlowError::Provider(new::ProviderError {
            code: p.code,
            description: p.description,
            status: p.status,
        }),
        old::FlowError::Network(m) => new::FlowError::Network(m),
        old::FlowError::Unsupported(m) => new::FlowError::Unsupported(m),
        old::FlowError::Internal(m) => new::FlowError::Internal(m),
    }
}
