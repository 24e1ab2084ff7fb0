//! The one hardened HTTP client every token, device and revocation request goes through.
//!
//! - redirects are never followed (a 307 from a token endpoint would re-send the client secret
//!   and the PKCE verifier elsewhere): the 3xx response is returned for the caller to refuse;
//! - connect and total timeouts: a server that hangs or trickles fails in seconds;
//! - the response body is capped: an endless or huge body fails fast with bounded memory;
//! - a proxy only when the policy names one (the configuration takes it from `[http] proxy` or,
//!   as every peer does, from `HTTPS_PROXY`/`ALL_PROXY` and `NO_PROXY`); loopback never goes
//!   through a proxy;
//! - with [`HttpPolicy::public_addresses_only`] (plugins), a name must resolve to a public
//!   address: checked on the addresses connected to, or, for a request the proxy carries, on
//!   the addresses the name has here before it is handed to the proxy (the proxy resolves it
//!   again: see SECURITY.md). The proxy's own address is the configuration's choice, not
//!   checked;
//! - `https` is required unless the host is loopback (`127.0.0.0/8`, `::1`, `localhost`);
//!   servers are checked against the platform's roots, read on the first handshake
//!   (see `tls.rs`).
//!
//! Errors never carry URLs with query strings or bodies: only the host.

use std::time::Duration;

use url::Url;

/// Limits and options of the [`HttpClient`]. `Debug` hides a proxy's password.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpPolicy {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for the whole exchange, body included.
    pub timeout: Duration,
    /// Largest accepted response body, in bytes.
    pub max_body: usize,
    /// The proxy for every request, if any. The library never reads the environment itself:
    /// [`Config`](crate::config::Config) resolves `[http] proxy` and the proxy variables into this.
    pub proxy: Option<Url>,
    /// Hosts reached without the proxy (`NO_PROXY` syntax); loopback always is.
    pub no_proxy: Option<String>,
    /// Connect only to public addresses after resolving a name (plugins: DNS rebinding and
    /// SSRF defence). Loopback is still allowed when `allow_loopback` is set. A request through
    /// the proxy is refused when its host resolves here to any other address; one whose host
    /// does not resolve here is left to the proxy.
    pub public_addresses_only: bool,
    /// With `public_addresses_only`, whether names may resolve to loopback.
    pub allow_loopback: bool,
}

impl std::fmt::Debug for HttpPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proxy = self.proxy.as_ref().map(|p| {
            let mut shown = p.clone();
            if shown.password().is_some() {
                let _ = shown.set_password(Some("[redacted]"));
            }
            shown.to_string()
        });
        f.debug_struct("HttpPolicy")
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .field("proxy", &proxy)
            .field("no_proxy", &self.no_proxy)
            .field("public_addresses_only", &self.public_addresses_only)
            .field("allow_loopback", &self.allow_loopback)
            .finish()
    }
}

impl HttpPolicy {
    /// The proxy as reqwest takes it, loopback always bypassing it; `None` without one. The one
    /// place a proxy is set up, for the hardened client and API sessions alike.
    pub(crate) fn reqwest_proxy(&self) -> Result<Option<reqwest::Proxy>, HttpError> {
        let Some(proxy) = &self.proxy else {
            return Ok(None);
        };
        let proxy = reqwest::Proxy::all(proxy.as_str())
            .map_err(|e| HttpError::Setup(e.without_url()))?
            .no_proxy(reqwest::NoProxy::from_string(&self.bypass()));
        Ok(Some(proxy))
    }

    /// The hosts reached without the proxy (`NO_PROXY` syntax): `no_proxy` and loopback.
    fn bypass(&self) -> String {
        match &self.no_proxy {
            Some(list) if !list.trim().is_empty() => format!("{list},{LOOPBACK_HOSTS}"),
            _ => LOOPBACK_HOSTS.to_owned(),
        }
    }
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body: 1024 * 1024,
            proxy: None,
            no_proxy: None,
            public_addresses_only: false,
            allow_loopback: true,
        }
    }
}

/// A transport failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL is not `https` and its host is not loopback.
    #[error("refusing to send credentials over plain http to {host}: use https")]
    InsecureUrl {
        /// The host named in the URL.
        host: String,
    },
    /// The URL cannot be used (no host, an unsupported scheme).
    #[error("unusable URL: {0}")]
    BadUrl(String),
    /// No answer within the timeout.
    #[error("{host} did not answer within {timeout:?}")]
    Timeout {
        /// The host.
        host: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The connection failed (refused, reset, a DNS failure, TLS).
    #[error("cannot reach {host}")]
    Connect {
        /// The host.
        host: String,
        /// What failed, without the URL.
        #[source]
        source: reqwest::Error,
    },
    /// The response body is larger than allowed.
    #[error("the response from {host} is larger than {limit} bytes")]
    TooLarge {
        /// The host.
        host: String,
        /// The cap.
        limit: usize,
    },
    /// The host resolves to a private or reserved address, which the policy refuses (only, or
    /// among others for a request the proxy would carry).
    #[error("{host} resolves to a private or reserved address")]
    NotPublic {
        /// The host.
        host: String,
    },
    /// The client could not be built (a bad proxy URL, TLS set-up).
    #[error("cannot set up the HTTP client")]
    Setup(#[source] reqwest::Error),
    /// TLS could not be set up.
    #[error("cannot set up TLS")]
    Tls(#[source] rustls::Error),
}

impl HttpError {
    /// Whether trying again later may work (a timeout, a failed connection).
    pub fn is_transient(&self) -> bool {
        matches!(self, HttpError::Timeout { .. } | HttpError::Connect { .. })
    }
}

/// Hosts that never go through a proxy: every address plain http is allowed to
/// ([`is_loopback_url`](crate::net::address::is_loopback_url)), not only `127.0.0.1`.
const LOOPBACK_HOSTS: &str = "localhost,127.0.0.0/8,::1";

/// The hardened HTTP client. Cheap to clone. `Debug` shows its policy only.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: HttpPolicy,
    /// With `public_addresses_only` and a proxy: which requests the proxy carries (reqwest's
    /// own rules), whose host is checked here first.
    proxied: Option<std::sync::Arc<hyper_util::client::proxy::matcher::Matcher>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("policy", &self.policy)
            .finish()
    }
}

impl HttpClient {
    /// A client with these limits.
    pub fn new(policy: HttpPolicy) -> Result<Self, HttpError> {
        Self::with_tls(
            policy,
            crate::net::tls::client_config().map_err(HttpError::Tls)?,
        )
    }

    /// A client with these limits that presents a client certificate on every TLS connection
    /// (RFC 8705 `tls_client_auth`): `certs` (the certificate, then its chain) and their `key`.
    pub fn with_client_certificate(
        policy: HttpPolicy,
        certs: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Result<Self, HttpError> {
        let config =
            crate::net::tls::client_config_with_identity(certs, key).map_err(HttpError::Tls)?;
        Self::with_tls(policy, config)
    }

    fn with_tls(policy: HttpPolicy, tls: rustls::ClientConfig) -> Result<Self, HttpError> {
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .no_proxy()
            .user_agent(concat!("host/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = policy.reqwest_proxy()? {
            builder = builder.proxy(proxy);
        }
        let mut proxied = None;
        if policy.public_addresses_only {
            // The proxy's own name is resolved by the same resolver: it is trusted as configured.
            let proxy_host = policy.proxy.as_ref().and_then(|p| p.host_str()).map(|h| {
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase()
            });
            builder = builder.dns_resolver(std::sync::Arc::new(GuardedResolver {
                allow_loopback: policy.allow_loopback,
                proxy_host,
            }));
            proxied = policy.proxy.as_ref().map(|proxy| {
                std::sync::Arc::new(
                    hyper_util::client::proxy::matcher::Matcher::builder()
                        .all(proxy.as_str())
                        .no(policy.bypass())
                        .build(),
                )
            });
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Setup(e.without_url()))?;
        Ok(Self {
            client,
            policy,
            proxied,
        })
    }

    /// The limits in force.
    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// Sends a request and reads the whole (capped) response. 3xx responses are returned as they
    /// are, never followed.
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        let url = Url::parse(&request.uri().to_string())
            .map_err(|_| HttpError::BadUrl("not an absolute URL".into()))?;
        self.send_to(url, request).await
    }

    /// [`send`](Self::send) for a request whose URI the caller has already parsed as `url`
    /// (a plugin's request, checked against its allow-list first): it is not parsed again.
    pub(crate) async fn send_to(
        &self,
        url: Url,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        require_secure(&url)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        if let Some(matcher) = &self.proxied {
            let carried = url
                .as_str()
                .parse::<http::Uri>()
                .ok()
                .is_some_and(|uri| matcher.intercept(&uri).is_some());
            if carried {
                self.check_before_proxy(&url, &host).await?;
            }
        }
        let (parts, body) = request.into_parts();
        let mut builder = self.client.request(parts.method, url).body(body);
        for (name, value) in &parts.headers {
            builder = builder.header(name, value);
        }
        let mut response = builder.send().await.map_err(|e| self.transport(&host, e))?;
        let limit = self.policy.max_body;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(HttpError::TooLarge { host, limit });
        }
        let mut out = http::Response::builder().status(response.status());
        if let Some(headers) = out.headers_mut() {
            headers.extend(
                response
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport(&host, e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(HttpError::TooLarge { host, limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(out
            .body(body)
            .expect("a status and headers taken from a response build a response"))
    }

    /// For a request the proxy carries: refused when its host resolves here to any address the
    /// policy refuses (the proxy, resolving it again, may pick that one). A host that does not
    /// resolve here (within the connect timeout) is left to the proxy, which may be the only
    /// one that can resolve it.
    async fn check_before_proxy(&self, url: &Url, host: &str) -> Result<(), HttpError> {
        let literal = |ip| Some(vec![std::net::SocketAddr::new(ip, 0)]);
        let resolved: Option<Vec<std::net::SocketAddr>> = match url.host() {
            Some(url::Host::Domain(name)) => {
                let lookup = tokio::net::lookup_host((name, 0));
                match tokio::time::timeout(self.policy.connect_timeout, lookup).await {
                    Ok(Ok(addrs)) => Some(addrs.collect()),
                    _ => None,
                }
            }
            Some(url::Host::Ipv4(ip)) => literal(ip.into()),
            Some(url::Host::Ipv6(ip)) => literal(ip.into()),
            None => None,
        };
        if may_hand_to_proxy(resolved.as_deref(), self.policy.allow_loopback) {
            if resolved.is_none() {
                tracing::debug!(
                    host,
                    "the host does not resolve here; the proxy resolves it"
                );
            }
            Ok(())
        } else {
            Err(HttpError::NotPublic {
                host: host.to_owned(),
            })
        }
    }

    fn transport(&self, host: &str, e: reqwest::Error) -> HttpError {
        if e.is_timeout() {
            return HttpError::Timeout {
                host: host.to_owned(),
                timeout: self.policy.timeout,
            };
        }
        // The guarded resolver refused every address the name has: that is the reason, not a
        // connection failure (the message used to say only "cannot reach").
        let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
        while let Some(c) = cause {
            if c.downcast_ref::<OnlyPrivateAddresses>().is_some() {
                return HttpError::NotPublic {
                    host: host.to_owned(),
                };
            }
            cause = c.source();
        }
        HttpError::Connect {
            host: host.to_owned(),
            source: e.without_url(),
        }
    }
}

/// The guarded resolver's refusal: the name resolves only to addresses the policy refuses.
#[derive(Debug, thiserror::Error)]
#[error("the name resolves only to private or reserved addresses")]
struct OnlyPrivateAddresses;

impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>,
    >;

    /// Sends a request the `oauth2` crate built (see `OAuth2Flow::client`), with every limit of
    /// this client.
    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// The addresses among `addrs` a policy with `public_addresses_only` connects to: public ones,
/// and loopback when allowed.
fn allowed(addrs: Vec<std::net::SocketAddr>, allow_loopback: bool) -> Vec<std::net::SocketAddr> {
    addrs
        .into_iter()
        .filter(|a| {
            crate::net::address::is_public(a.ip()) || (allow_loopback && a.ip().is_loopback())
        })
        .collect()
}

/// Whether a request the proxy carries may go to it, its host having resolved here to
/// `resolved` (`None`: it did not resolve): only when every address is one the policy allows,
/// or there are none to check.
fn may_hand_to_proxy(resolved: Option<&[std::net::SocketAddr]>, allow_loopback: bool) -> bool {
    resolved.is_none_or(|addrs| allowed(addrs.to_vec(), allow_loopback).len() == addrs.len())
}

/// Resolves names with the system resolver, then drops every address that is not public
/// (loopback kept when allowed); a name left with none fails. The configured proxy's name is
/// resolved as it is.
struct GuardedResolver {
    allow_loopback: bool,
    proxy_host: Option<String>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        let trusted = self
            .proxy_host
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(name.as_str()));
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if trusted {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let allowed = allowed(addrs, allow_loopback);
            if allowed.is_empty() {
                return Err(
                    Box::new(OnlyPrivateAddresses) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Refuses a URL that is neither `https` nor plain `http` to a loopback host.
pub(crate) fn require_secure(url: &Url) -> Result<(), HttpError> {
    let host = url
        .host_str()
        .ok_or_else(|| HttpError::BadUrl("the URL has no host".into()))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::net::address::is_loopback_url(url) => Ok(()),
        "http" => Err(HttpError::InsecureUrl {
            host: host.to_owned(),
        }),
        other => Err(HttpError::BadUrl(format!("unsupported scheme `{other}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxied_host_must_resolve_here_only_to_allowed_addresses_or_not_at_all() {
        let addrs = |list: &[&str]| -> Vec<std::net::SocketAddr> {
            list.iter()
                .map(|ip| std::net::SocketAddr::new(ip.parse().unwrap(), 0))
                .collect()
        };
        let public = addrs(&["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]);
        assert!(may_hand_to_proxy(None, false), "left to the proxy");
        assert!(may_hand_to_proxy(Some(&[]), false));
        assert!(may_hand_to_proxy(Some(&public), false));
        for refused in [
            &["10.0.0.5"][..],
            &["169.254.169.254"],
            &["::1"],
            &["127.0.0.1"],
            &["93.184.215.14", "192.168.1.10"],
        ] {
            assert!(
                !may_hand_to_proxy(Some(&addrs(refused)), false),
                "{refused:?}"
            );
        }
        assert!(may_hand_to_proxy(Some(&addrs(&["127.0.0.1"])), true));
        assert!(!may_hand_to_proxy(
            Some(&addrs(&["127.0.0.1", "10.0.0.5"])),
            true
        ));
    }

    #[test]
    fn debug_hides_a_proxy_password() {
        let policy = HttpPolicy {
            proxy: Some(Url::parse("http://me:hunter2@proxy.example:3128").unwrap()),
            ..HttpPolicy::default()
        };
        let client = HttpClient::new(policy).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("proxy.example"), "{shown}");
    }

    #[test]
    fn https_or_loopback_only() {
        let ok = [
            "https://github.com/x",
            "http://127.0.0.1:9/x",
            "http://[::1]/",
            "http://localhost/",
        ];
        for u in ok {
            assert!(require_secure(&Url::parse(u).unwrap()).is_ok(), "{u}");
        }
        for u in [
            "http://github.com/x",
            "http://127.0.0.1.example.com/",
            "ftp://127.0.0.1/",
        ] {
            assert!(require_secure(&Url::parse(u).unwrap()).is_err(), "{u}");
        }
    }
}
