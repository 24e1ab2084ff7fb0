//! Sessions: an HTTP client for a provider's API that carries a stored credential.
//!
//! A [`Session`] applies the provider's [`Binding`] to each request, refreshes the credential
//! ahead of its expiry through the store's single flight (the lock `host token` takes, so a
//! library user and the CLI never race), and on a 401 refreshes once and sends the request
//! again (its body is bytes, so it can always be replayed). It is not the locked-down
//! token-endpoint client: API answers may be large and may redirect, but a redirect is
//! followed only within the same origin, so the credential never travels elsewhere.

use std::sync::Arc;

use url::Url;

use crate::flow::binding::{Applied, Binding};
use crate::providers::provider::Provider;
use crate::renewal::{self, RenewError};
use crate::store::{Record, Store};

/// How long before its expiry a session refreshes the credential.
const REFRESH_AHEAD: chrono::Duration = chrono::Duration::seconds(60);

/// Why a session request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The credential cannot be had (nothing stored, the refresh failed).
    #[error(transparent)]
    Credential(#[from] RenewError),
    /// The provider refused the credential, after a refresh when it has a refresh token: log
    /// in again.
    #[error(
        "the provider refused the credential for `{provider}` {}; log in again",
        if *.refreshed { "even after a refresh" } else { "and it could not be refreshed" }
    )]
    Refused {
        /// The provider.
        provider: String,
        /// Whether a refresh happened (else the flow could not refresh the credential: no
        /// refresh token, or the provider refused it).
        refreshed: bool,
    },
    /// A relative path, and the provider has no API base URL.
    #[error("`{provider}` has no API base URL: give a full URL")]
    NoBaseUrl {
        /// The provider.
        provider: String,
    },
    /// A URL that cannot be used (not http(s), not on the API's origin).
    #[error("{0}")]
    BadUrl(String),
    /// The credential does not fit the binding (basic credentials in a header binding).
    #[error(
        "the credential for `{provider}` does not fit how requests are to carry it; set [providers.{provider}] binding to one that fits (\"bearer\" or a header for a token, \"basic\" for a username and password)"
    )]
    NoBinding {
        /// The provider.
        provider: String,
    },
    /// The client could not be set up (a bad proxy).
    #[error("cannot set up the API client")]
    Setup(#[source] crate::net::http::HttpError),
    /// The request failed.
    #[error("the request failed")]
    Http(#[source] reqwest::Error),
}

impl SessionError {
    /// Whether the user must log in (again).
    pub fn needs_login(&self) -> bool {
        match self {
            SessionError::Refused { .. } => true,
            SessionError::Credential(e) => e.needs_login(),
            _ => false,
        }
    }
}

/// An authenticated HTTP client for one provider account. Cheap to clone.
///
/// The credential is sent over https, or plain http to a loopback address only, whatever
/// named the URL; redirects are followed on the same origin only. A request fails when the
/// server sends nothing for the policy's `timeout` (a long answer that keeps coming is not cut
/// off).
#[derive(Clone)]
pub struct Session {
    provider: Arc<Provider>,
    account: String,
    store: Store,
    binding: Option<Binding>,
    base: Option<Url>,
    client: reqwest::Client,
    /// The credential last used, reused while it stays valid beyond the refresh margin: one
    /// store read per refresh, not per request.
    current: Arc<std::sync::Mutex<Option<Record>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("provider", &self.provider.name())
            .field("account", &self.account)
            .field("binding", &self.binding)
            .field("base", &self.base)
            .finish()
    }
}

impl Session {
    pub(crate) fn new(
        provider: Arc<Provider>,
        account: &str,
        store: Store,
        binding: Option<Binding>,
        base: Option<Url>,
        policy: &crate::net::http::HttpPolicy,
    ) -> Result<Self, SessionError> {
        let tls = crate::net::tls::client_config()
            .map_err(|e| SessionError::Setup(crate::net::http::HttpError::Tls(e)))?;
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .user_agent(concat!("host/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(policy.connect_timeout)
            // An API that stops sending fails the request; a large answer that keeps coming
            // is not cut off (`host api` streams it).
            .read_timeout(policy.timeout)
            // A redirect must not repeat the first URL (a query binding's credential) in a
            // `Referer`.
            .referer(false)
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same_origin = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if attempt.previous().len() >= 10 || !same_origin {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }))
            .no_proxy();
        if let Some(proxy) = policy.reqwest_proxy().map_err(SessionError::Setup)? {
            builder = builder.proxy(proxy);
        }
        let client = builder.build().map_err(SessionError::Http)?;
        Ok(Self {
            provider,
            account: account.to_owned(),
            store,
            binding,
            base,
            client,
            current: Arc::default(),
        })
    }

    /// The credential to send: the one in hand while it stays valid beyond the margin, else
    /// the store's (refreshed there when due).
    async fn credential(&self) -> Result<Record, SessionError> {
        if let Some(record) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|r| !r.expires_within(REFRESH_AHEAD))
        {
            return Ok(record.clone());
        }
        let record =
            renewal::fresh(&self.store, &self.provider, &self.account, REFRESH_AHEAD).await?;
        self.remember(&record);
        Ok(record)
    }

    fn remember(&self, record: &Record) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(record.clone());
    }

    /// The API base URL paths are resolved against, if the provider has one.
    pub fn base_url(&self) -> Option<&Url> {
        self.base.as_ref()
    }

    /// `path_or_url` as a URL: a path is resolved against the API base URL; a full URL must be
    /// on the API's origin unless `any_origin`.
    pub fn url(&self, path_or_url: &str, any_origin: bool) -> Result<Url, SessionError> {
        let name = self.provider.name();
        let url = match Url::parse(path_or_url) {
            Ok(url) => {
                if !any_origin
                    && self
                        .base
                        .as_ref()
                        .is_none_or(|b| b.origin() != url.origin())
                {
                    return Err(SessionError::BadUrl(format!(
                        "{} is not on {name}'s API origin; the credential is sent there only with --allow-origin",
                        url.origin().ascii_serialization()
                    )));
                }
                url
            }
            Err(_) => {
                let base = self.base.as_ref().ok_or_else(|| SessionError::NoBaseUrl {
                    provider: name.to_owned(),
                })?;
                let joined = format!(
                    "{}/{}",
                    base.as_str().trim_end_matches('/'),
                    path_or_url.trim_start_matches('/')
                );
                Url::parse(&joined).map_err(|_| {
                    SessionError::BadUrl(format!("cannot use the path {path_or_url}"))
                })?
            }
        };
        if !matches!(url.scheme(), "https" | "http") {
            return Err(SessionError::BadUrl(format!(
                "the scheme `{}` is not http(s)",
                url.scheme()
            )));
        }
        Ok(url)
    }

    /// Sends a request with the credential applied: refreshed first when due; after a 401,
    /// refreshed once and sent again. The credential replaces any header (or query parameter)
    /// of its binding's name the request carries.
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<reqwest::Response, SessionError> {
        let name = self.provider.name().to_owned();
        let record = self.credential().await?;
        let response = self.send_with(&request, &record).await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        tracing::debug!("the API answered 401; refreshing once and sending again");
        let record =
            match renewal::renew_now(&self.store, &self.provider, &self.account, &record).await {
                Ok(record) => {
                    self.remember(&record);
                    record
                }
                Err(RenewError::Renew { source, .. }) if source.needs_login() => {
                    return Err(SessionError::Refused {
                        provider: name,
                        refreshed: false,
                    });
                }
                Err(e) => return Err(e.into()),
            };
        let response = self.send_with(&request, &record).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(SessionError::Refused {
                provider: name,
                refreshed: true,
            });
        }
        Ok(response)
    }

    async fn send_with(
        &self,
        request: &http::Request<Vec<u8>>,
        record: &Record,
    ) -> Result<reqwest::Response, SessionError> {
        let binding = Binding::for_credential(self.binding.as_ref(), &record.credential)
            .ok_or_else(|| SessionError::NoBinding {
                provider: self.provider.name().to_owned(),
            })?;
        let mut url = Url::parse(&request.uri().to_string())
            .map_err(|_| SessionError::BadUrl("not an absolute URL".into()))?;
        // Whatever named the URL (the API base URL, a plugin, --allow-origin, a next-page
        // link), the credential goes over https, or plain http to loopback only.
        crate::net::http::require_secure(&url).map_err(|e| SessionError::BadUrl(e.to_string()))?;
        // The credential replaces whatever the request carried under the binding's header or
        // query parameter (a stale token beside the fresh one would be sent first).
        let mut headers = request.headers().clone();
        match binding.apply(&record.credential) {
            Some(Applied::Header(name, value)) => {
                let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    SessionError::BadUrl("the binding names an invalid header".into())
                })?;
                let mut value = http::HeaderValue::from_str(value.expose()).map_err(|_| {
                    SessionError::BadUrl(
                        "the credential holds characters a header cannot carry".into(),
                    )
                })?;
                value.set_sensitive(true);
                headers.insert(name, value);
            }
            Some(Applied::Query(name, value)) => {
                // The rest of the query is rewritten only when it held the parameter.
                if url.query_pairs().any(|(k, _)| k == name.as_str()) {
                    let kept: Vec<(String, String)> = url
                        .query_pairs()
                        .filter(|(k, _)| k != name.as_str())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    url.query_pairs_mut().clear().extend_pairs(&kept);
                }
                url.query_pairs_mut().append_pair(&name, value.expose());
            }
            _ => {
                return Err(SessionError::NoBinding {
                    provider: self.provider.name().to_owned(),
                });
            }
        }
        self.client
            .request(request.method().clone(), url)
            .headers(headers)
            .body(request.body().clone())
            .send()
            .await
            .map_err(|e| SessionError::Http(e.without_url()))
    }
}
