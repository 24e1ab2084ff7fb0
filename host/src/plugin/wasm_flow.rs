//! `WasmFlow`: an [`AuthFlow`] served by a plugin component, one fresh instance per call.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use wasmtime::Store;

use super::bindings::v0_2::integrations::auth::types as wit;
use super::engine::Pre;
use super::imports::StoreState;
use super::loaded::LoadedPlugin;
use super::runtime::PluginHost;
use super::sandbox::{AllowList, HostPattern};
use super::trap::trap;
use super::v0_1_compat;
use super::{PluginError, PluginSettings};
use crate::flow::{
    AuthFlow, Authorization, AuthorizeRequest, CallbackError, Credential, DeviceCode,
    ExchangeInput, FlowError, Interaction, OAuth2Token, Pending, PromptField, TokenExtras,
};
use crate::oauth2::{
    ErrorKind, MAX_SCOPES, OAuthError, TokenError, check_token_type, secret_text, token_text,
};
use crate::providers::provider::ProviderContext;
use crate::util::text::sanitize;

/// A flow served by a plugin.
pub struct WasmFlow {
    plugin: Arc<LoadedPlugin>,
    settings: PluginSettings,
    provider: String,
    flow: String,
    app_json: String,
    allow: AllowList,
}

impl std::fmt::Debug for WasmFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmFlow")
            .field("plugin", &self.plugin.path())
            .field("provider", &self.provider)
            .field("flow", &self.flow)
            .finish()
    }
}

/// The largest `extra-json` a plugin's token may carry.
const MAX_EXTRA_BYTES: usize = 64 * 1024;

/// One call in a fresh instance, for a plugin of either WIT version: `$current` for a 0.2.0
/// plugin; `$old` for a 0.1.0 one, whose answer `$up` turns into 0.2.0 values. With debug
/// logging on, where the call's time went is logged ([`CallTimes`]).
macro_rules! call {
    ($self:ident, $name:literal, |$store:ident, $guest:ident| $current:expr, $old:expr, $up:expr) => {{
        let mut times = CallTimes::start();
        let mut $store = $self.plugin.store(&$self.settings, $self.allow.clone());
        let limit = $self.settings.call_timeout();
        let outcome = tokio::time::timeout(limit, async {
            match &$self.plugin.pre {
                Pre::V0_2(pre) => {
                    let instance = pre.instantiate_async(&mut $store).await?;
                    times.instantiated($store.data().host_time());
                    let $guest = instance.integrations_auth_auth_flow();
                    $current.await
                }
                Pre::V0_1(pre) => {
                    let instance = pre.instantiate_async(&mut $store).await?;
                    times.instantiated($store.data().host_time());
                    let $guest = instance.integrations_auth_auth_flow();
                    $old.await
                        .map(|answer| answer.map($up).map_err(v0_1_compat::error))
                }
            }
        })
        .await;
        times.returned($store.data().host_time());
        let result = $self.finish($name, outcome, &$store);
        // Dropping the store releases the instance's memory and tables (to the pool, if any).
        drop($store);
        times.log($self.plugin.path(), $name);
        result
    }};
}

/// Where one plugin call's time went: making the fresh instance, the guest's own run, the host
/// functions it called (HTTP, WASI, the log), and finishing (its answer checked, its memory and
/// tables released). Measured only when debug logging is on; `host -v` shows it for each flow
/// call (not for reading a plugin's metadata).
struct CallTimes(Option<Marks>);

struct Marks {
    started: Instant,
    /// When the instance was ready, and the host time it had used by then (a component's
    /// start-up code may call host functions): that time counts as the instance's.
    instantiated: Option<(Instant, Duration)>,
    returned: Option<(Instant, Duration)>,
}

impl CallTimes {
    fn start() -> Self {
        Self(tracing::enabled!(tracing::Level::DEBUG).then(|| Marks {
            started: Instant::now(),
            instantiated: None,
            returned: None,
        }))
    }

    /// The instance is ready, having spent `in_host` in host functions.
    fn instantiated(&mut self, in_host: Duration) {
        if let Some(marks) = &mut self.0 {
            marks.instantiated = Some((Instant::now(), in_host));
        }
    }

    /// The guest returned (or trapped, or ran out of time), having spent `in_host` in host
    /// functions.
    fn returned(&mut self, in_host: Duration) {
        if let Some(marks) = &mut self.0 {
            marks.returned = Some((Instant::now(), in_host));
        }
    }

    /// Logs the split at debug level, each part in microseconds (`fresh_instance_us`,
    /// `guest_us`, `host_functions_us`, `finishing_us`; `benches/refresh.rs` reads them).
    fn log(self, plugin: &Path, call: &str) {
        let Some(marks) = self.0 else { return };
        let done = Instant::now();
        let total = done - marks.started;
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        match (marks.instantiated, marks.returned) {
            (Some((instantiated, before)), Some((returned, after))) => {
                // Host time while instantiating counts as the instance's.
                let in_host = after.saturating_sub(before);
                let instance = us(instantiated - marks.started);
                let guest = us((returned - instantiated).saturating_sub(in_host));
                let (host, finishing) = (us(in_host), us(done - returned));
                tracing::debug!(
                    plugin = %plugin.display(),
                    call,
                    fresh_instance_us = instance,
                    guest_us = guest,
                    host_functions_us = host,
                    finishing_us = finishing,
                    "plugin call took {total:?}"
                )
            }
            // It failed before it ran.
            _ => tracing::debug!(plugin = %plugin.display(), call, "plugin call took {total:?}"),
        }
    }
}

impl WasmFlow {
    /// Loads the plugin at `path` (compiling or taking it from the cache) and validates the
    /// provider's app credentials against the schema the plugin exports, before any flow call.
    pub async fn new(
        host: &PluginHost,
        path: &Path,
        ctx: &ProviderContext,
        flow: &str,
        granted: Option<Vec<HostPattern>>,
    ) -> Result<Self, FlowError> {
        let plugin = host.load(path).await?;
        let value = plugin.check_app_credentials(&ctx.section().app_credentials_only())?;
        let declared = plugin
            .info()
            .allowed_hosts
            .iter()
            .map(|spec| {
                spec.resolve(&value).map_err(|e| {
                    FlowError::config(format!(
                        "plugin {} declares the host {spec}, but providers.{}.{e}",
                        plugin.path().display(),
                        ctx.name()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let allow = AllowList::new(declared, granted, host.settings().allow_http_loopback);
        Ok(Self {
            settings: host.settings().clone(),
            plugin,
            provider: ctx.name().to_owned(),
            flow: flow.to_owned(),
            app_json: value.to_string(),
            allow,
        })
    }

    /// The loaded plugin.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    /// The binding the plugin declares, its `{field}` texts filled from the app credentials
    /// (or the defaults their schema gives).
    pub fn binding(&self) -> Option<crate::flow::binding::Binding> {
        use crate::flow::binding::Binding;
        let fill = |text: &str| self.fill(text);
        Some(match self.plugin.info().binding.clone()? {
            Binding::Header { header, prefix } => Binding::Header {
                header: fill(&header)?,
                prefix: fill(&prefix)?,
            },
            Binding::Query { query } => Binding::Query {
                query: fill(&query)?,
            },
            other => other,
        })
    }

    /// The API base URL the plugin declares, `{field}` filled in.
    pub fn api_base_url(&self) -> Option<String> {
        self.fill(self.plugin.info().api_base_url.as_deref()?)
    }

    /// `text`, or when it is `{field}`, that app-credentials field's value (or its schema
    /// default); `None` when the field has neither.
    fn fill(&self, text: &str) -> Option<String> {
        let Some(field) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
            return Some(text.to_owned());
        };
        let app: serde_json::Value = serde_json::from_str(&self.app_json).ok()?;
        let value = app.get(field).cloned().or_else(|| {
            self.plugin
                .info()
                .schema
                .pointer(&format!("/properties/{field}/default"))
                .cloned()
        })?;
        value.as_str().map(str::to_owned)
    }

    fn finish<R>(
        &self,
        call: &'static str,
        outcome: Result<wasmtime::Result<Result<R, wit::FlowError>>, tokio::time::error::Elapsed>,
        store: &Store<StoreState>,
    ) -> Result<R, FlowError> {
        store.data().flush_output(call);
        let path = self.plugin.path().to_owned();
        match outcome {
            Err(_) => Err(PluginError::Timeout {
                path,
                call,
                limit: self.settings.call_timeout(),
            }
            .into()),
            Ok(Err(e)) => Err(trap(&path, call, e, store.data()).into()),
            Ok(Ok(Err(e))) => Err(
                match (self.plugin_error(call, e), store.data().no_answer()) {
                    // The plugin failed on what its provider sent, and that was no answer at all
                    // (a maintenance page, a redirect): the same kind a native flow reports, so
                    // the same rules follow (a renewal hands out the current token meanwhile).
                    (FlowError::Failed(source), Some(heard)) => {
                        FlowError::NoAnswer(Box::new(PluginError::NoAnswer {
                            path,
                            call,
                            heard,
                            source,
                        }))
                    }
                    (mapped, _) => mapped,
                },
            ),
            Ok(Ok(Ok(r))) => Ok(r),
        }
    }

    /// The plugin's own error, mapped to the host's meaning.
    fn plugin_error(&self, call: &'static str, e: wit::FlowError) -> FlowError {
        let failed = |message: String| PluginError::Failed {
            path: self.plugin.path().to_owned(),
            call,
            message: sanitize(&message, 500),
        };
        match e {
            wit::FlowError::InvalidAppCredentials(m) => {
                failed(format!("invalid app credentials: {m}")).into()
            }
            wit::FlowError::InvalidInput(m) => CallbackError::Rejected(sanitize(&m, 300)).into(),
            wit::FlowError::AccessDenied(d) => FlowError::Denied {
                description: d.map(|d| sanitize(&d, 300)),
            },
            wit::FlowError::Provider(p) => {
                let code = sanitize(&p.code, 64);
                // The same meanings as a native flow's: `authorization_pending` polls again,
                // `invalid_grant` asks for a new login.
                TokenError::Provider(OAuthError {
                    kind: ErrorKind::from_code(&code),
                    code,
                    description: p.description.map(|d| sanitize(&d, 300)),
                    uri: None,
                    status: p.status,
                })
                .into()
            }
            // The plugin says a request failed in a way that may pass: back off and retry.
            wit::FlowError::Network(m) => FlowError::Transient {
                retry_after: None,
                source: Box::new(failed(format!("network: {m}"))),
            },
            wit::FlowError::Unsupported(m) => FlowError::Unsupported(sanitize(&m, 300)),
            wit::FlowError::Internal(m) => failed(m).into(),
        }
    }

    fn credential_from_wit(
        &self,
        call: &'static str,
        c: wit::Credential,
    ) -> Result<Credential, FlowError> {
        let bad = |reason: &str| {
            FlowError::from(PluginError::Failed {
                path: self.plugin.path().to_owned(),
                call,
                message: format!("returned an unusable credential: {reason}"),
            })
        };
        // The host's one rule for token values, as for a token endpoint's answer.
        let checked =
            |s: String, what: &'static str| token_text(s, what).map_err(|e| bad(&e.to_string()));
        Ok(match c {
            wit::Credential::Oauth2(t) => {
                check_token_type(&t.token_type).map_err(|e| bad(&e.to_string()))?;
                if t.scopes.len() > MAX_SCOPES {
                    return Err(bad(&format!("more than {MAX_SCOPES} scopes")));
                }
                if t.extra_json.len() > MAX_EXTRA_BYTES {
                    return Err(bad(&format!(
                        "extra-json is larger than {MAX_EXTRA_BYTES} bytes"
                    )));
                }
                let extra = match serde_json::from_str::<serde_json::Value>(&t.extra_json) {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ if t.extra_json.trim().is_empty() => Default::default(),
                    _ => return Err(bad("extra-json is not a JSON object")),
                };
                Credential::OAuth2(OAuth2Token {
                    access_token: checked(t.access_token, "access_token")?,
                    token_type: "bearer".into(),
                    refresh_token: t
                        .refresh_token
                        .map(|r| checked(r, "refresh_token"))
                        .transpose()?,
                    // A time before any clock can show (`i64::MIN`) is already past: treated
                    // as "no expiry" it would never be refreshed. One after (`i64::MAX`) is
                    // the end of year 9999, not the start of 1970.
                    expires_at: t.expires_at.map(|s| {
                        DateTime::<Utc>::from_timestamp(s, 0).unwrap_or(if s > 0 {
                            latest_time()
                        } else {
                            DateTime::UNIX_EPOCH
                        })
                    }),
                    scopes: t.scopes.iter().map(|s| sanitize(s, 200)).collect(),
                    extra: TokenExtras(extra),
                })
            }
            wit::Credential::ApiKey(k) => Credential::ApiKey {
                key: checked(k, "api_key")?,
            },
            wit::Credential::Basic(b) => Credential::Basic {
                username: sanitize(&b.username, 200),
                password: secret_text(b.password, "password").map_err(|e| bad(&e.to_string()))?,
            },
        })
    }

    fn credential_to_wit(c: &Credential) -> Result<wit::Credential, FlowError> {
        Ok(match c {
            Credential::OAuth2(t) => wit::Credential::Oauth2(wit::Oauth2Token {
                access_token: t.access_token.expose().to_owned(),
                token_type: t.token_type.clone(),
                refresh_token: t.refresh_token.as_ref().map(|r| r.expose().to_owned()),
                expires_at: t.expires_at.map(|at| at.timestamp()),
                scopes: t.scopes.clone(),
                extra_json: serde_json::to_string(&t.extra.0)
                    .expect("a map of JSON values serializes"),
            }),
            Credential::ApiKey { key } => wit::Credential::ApiKey(key.expose().to_owned()),
            Credential::Basic { username, password } => wit::Credential::Basic(wit::BasicAuth {
                username: username.clone(),
                password: password.expose().to_owned(),
            }),
        })
    }
}

#[async_trait]
impl AuthFlow for WasmFlow {
    async fn authorize(&self, req: AuthorizeRequest) -> Result<Authorization, FlowError> {
        let request = wit::AuthorizeRequest {
            redirect_uri: req.redirect_uri,
            scopes: req.scopes,
        };
        let app = self.app_json.clone();
        let auth = call!(
            self,
            "authorize",
            |store, guest| guest.call_authorize(&mut store, &app, &request),
            guest.call_authorize(&mut store, &app, &v0_1_compat::request(&request)),
            v0_1_compat::authorization
        )?;
        // A plugin never makes the user's desktop open anything but https (http to loopback
        // only when the configuration allows plain http to loopback).
        let loopback = self.settings.allow_http_loopback;
        let link = |url: &str, what: &str| {
            crate::net::address::openable_url(url, loopback).map_err(|why| {
                FlowError::from(PluginError::Failed {
                    path: self.plugin.path().to_owned(),
                    call: "authorize",
                    message: format!("returned a {what} that {why}"),
                })
            })
        };
        let interaction = match auth.interaction {
            wit::Interaction::Redirect(url) => Interaction::Redirect {
                url: link(&url, "redirect URL")?,
            },
            wit::Interaction::DeviceCode(d) => Interaction::DeviceCode(DeviceCode::new(
                &d.user_code,
                &link(&d.verification_uri, "verification URI")?,
                d.verification_uri_complete
                    .as_deref()
                    .map(|u| link(u, "verification URI"))
                    .transpose()?
                    .as_deref(),
                Some(d.interval_secs),
                d.expires_in_secs,
            )),
            wit::Interaction::Prompt(fields) => Interaction::Prompt {
                fields: fields
                    .into_iter()
                    .map(|f| PromptField {
                        name: sanitize(&f.name, 64),
                        label: sanitize(&f.label, 200),
                        secret: f.secret,
                    })
                    .collect(),
            },
        };
        Ok(Authorization {
            interaction,
            pending: Pending::seal(&self.provider, &self.flow, &auth.pending)?,
        })
    }

    async fn exchange(
        &self,
        pending: Pending,
        input: ExchangeInput,
    ) -> Result<Credential, FlowError> {
        let state = pending.open(&self.provider, &self.flow)?.to_vec();
        let app = self.app_json.clone();
        let params = input.params().to_vec();
        let credential = call!(
            self,
            "exchange",
            |store, guest| guest.call_exchange(&mut store, &app, &state, &params),
            guest.call_exchange(&mut store, &app, &state, &params),
            v0_1_compat::credential
        )?;
        self.credential_from_wit("exchange", credential)
    }

    async fn refresh(&self, credential: &Credential) -> Result<Credential, FlowError> {
        let app = self.app_json.clone();
        let old = Self::credential_to_wit(credential)?;
        let fresh = call!(
            self,
            "refresh",
            |store, guest| guest.call_refresh(&mut store, &app, &old),
            guest.call_refresh(&mut store, &app, &v0_1_compat::credential_down(&old)),
            v0_1_compat::credential
        )?;
        let mut fresh = self.credential_from_wit("refresh", fresh)?;
        // As for native flows: a refresh that returns no refresh token keeps the old one.
        if let (Credential::OAuth2(new), Credential::OAuth2(old)) = (&mut fresh, credential)
            && new.refresh_token.is_none()
        {
            new.refresh_token = old.refresh_token.clone();
        }
        Ok(fresh)
    }

    async fn revoke(&self, credential: &Credential) -> Result<bool, FlowError> {
        let app = self.app_json.clone();
        let old = Self::credential_to_wit(credential)?;
        call!(
            self,
            "revoke",
            |store, guest| guest.call_revoke(&mut store, &app, &old),
            guest.call_revoke(&mut store, &app, &v0_1_compat::credential_down(&old)),
            |revoked| revoked
        )
    }
}

/// The latest expiry kept: the end of year 9999 (later ones are written and read back the
/// same in every format the store uses).
fn latest_time() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).expect("9999-12-31T23:59:59Z is a time")
}
