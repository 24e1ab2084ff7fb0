//! Providers own app credentials and named, lazily built flows; a [`Registry`] holds providers.
//!
//! A flow is built by its factory on first access and cached: every later access returns the
//! same [`Arc`], and concurrent first accesses run the factory exactly once. A flow nobody asks
//! for costs nothing.
//!
//! ```
//! use host::oauth2::{OAuth2AppCredentials, OAuth2Flow};
//! use host::{Provider, ProviderSection, Registry};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let app = ProviderSection::from_code("acme", serde_json::json!({
//!     "client_id": "my-app",
//!     "authorize_url": "https://id.acme.test/authorize",
//!     "token_url": "https://id.acme.test/token",
//! }));
//! let mut registry = Registry::new();
//! registry.register(
//!     Provider::builder("acme", app)
//!         .flow("oauth2", |ctx| async move {
//!             let app: OAuth2AppCredentials = ctx.app_credentials()?;
//!             OAuth2Flow::new(ctx.name(), app)
//!         })
//!         .build(),
//! );
//! let acme = registry.get("acme")?;
//! let flow = acme.flow("oauth2").await?;
//! // The same flow, typed: its configured `oauth2` client is one call away.
//! let typed: std::sync::Arc<OAuth2Flow> = acme.flow_as("oauth2").await?;
//! let _client = typed.client();
//! # let _ = flow; Ok(()) }
//! ```

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::OnceCell;

use crate::flow::{AuthFlow, FlowError};
use crate::providers::app_credentials::{AppCredentials, ValidationError};
use crate::providers::section::ProviderSection;

/// What a flow factory gets: the provider's name and its raw app credentials.
#[derive(Debug, Clone)]
pub struct ProviderContext {
    name: Arc<str>,
    app: Arc<ProviderSection>,
}

impl ProviderContext {
    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The provider's configuration section (validate its app credentials with
    /// [`ProviderContext::app_credentials`]).
    pub fn section(&self) -> &ProviderSection {
        &self.app
    }

    /// The app credentials, validated against `C`'s schema and parsed.
    pub fn app_credentials<C: AppCredentials>(&self) -> Result<C, ValidationError> {
        self.app.parse()
    }
}

/// A built flow, as the trait object and as its concrete type (for [`Provider::flow_as`]).
#[derive(Clone)]
struct BuiltFlow {
    flow: Arc<dyn AuthFlow>,
    any: Arc<dyn Any + Send + Sync>,
}

type Factory =
    Box<dyn Fn(ProviderContext) -> BoxFuture<'static, Result<BuiltFlow, FlowError>> + Send + Sync>;

struct FlowSlot {
    /// Flow names are mostly constants: borrowed, not copied per provider.
    name: Cow<'static, str>,
    factory: Factory,
    cell: OnceCell<BuiltFlow>,
}

/// Where a provider comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderSource {
    /// Compiled into the program.
    BuiltIn,
    /// Registered by library code, or a configuration section whose flows are all plugins
    /// (`[providers.NAME.flows.FLOW] plugin = "…"`).
    Code,
    /// A plugin file.
    Plugin(std::path::PathBuf),
    /// A configuration section naming its own endpoints (or issuer).
    Configured,
    /// An entry of the provider catalog, enabled (and possibly overridden) by configuration.
    Catalog,
}

type Checker = Box<dyn Fn(&ProviderSection) -> Result<(), ValidationError> + Send + Sync>;

/// A provider: app credentials plus named, lazily built flows.
pub struct Provider {
    ctx: ProviderContext,
    source: ProviderSource,
    checker: Option<Checker>,
    default_flow: Option<Cow<'static, str>>,
    /// Sorted by name. A provider has a handful of flows: a vector, not a map (a map's node
    /// for one flow is 1.4 KiB, which `host providers` paid per plugin file).
    flows: Vec<FlowSlot>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.ctx.name())
            .field("source", &self.source)
            .field("flows", &self.flow_names().collect::<Vec<_>>())
            .finish()
    }
}

impl Provider {
    /// Starts building a provider named `name` with these app credentials.
    pub fn builder(name: impl Into<String>, app: ProviderSection) -> ProviderBuilder {
        let name: String = name.into();
        // The section usually belongs to the provider of that name: its name is shared, not
        // copied again.
        let name = match app.provider_name() {
            shared if **shared == *name => Arc::clone(shared),
            _ => name.into(),
        };
        ProviderBuilder {
            provider: Provider {
                ctx: ProviderContext {
                    name,
                    app: Arc::new(app),
                },
                source: ProviderSource::Code,
                checker: None,
                default_flow: None,
                flows: Vec::new(),
            },
        }
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        self.ctx.name()
    }

    /// Where the provider comes from.
    pub fn source(&self) -> &ProviderSource {
        &self.source
    }

    /// The provider's context (name and app credentials).
    pub fn context(&self) -> &ProviderContext {
        &self.ctx
    }

    /// The names of its flows, sorted.
    pub fn flow_names(&self) -> impl Iterator<Item = &str> {
        self.flows.iter().map(|s| &*s.name)
    }

    /// The flow used when none is named: the one set with [`ProviderBuilder::default_flow`], else
    /// the first registered.
    pub fn default_flow(&self) -> Option<&str> {
        self.default_flow.as_deref()
    }

    /// Validates the app credentials against the type declared with
    /// [`ProviderBuilder::app_credentials`], without building any flow. `None` when no type was
    /// declared (the flows validate on first access).
    pub fn check_app_credentials(&self) -> Option<Result<(), ValidationError>> {
        self.checker.as_ref().map(|check| check(&self.ctx.app))
    }

    /// The slot of the flow `name`.
    fn slot(&self, name: &str) -> Option<&FlowSlot> {
        self.flows
            .binary_search_by(|s| (*s.name).cmp(name))
            .ok()
            .map(|i| &self.flows[i])
    }

    /// Whether the flow `name` has been built already.
    pub fn is_flow_built(&self, name: &str) -> bool {
        self.slot(name).is_some_and(|s| s.cell.initialized())
    }

    /// The flow `name`, built on first access and the same instance afterwards.
    ///
    /// A failing factory caches nothing: the next access tries again.
    pub async fn flow(&self, name: &str) -> Result<Arc<dyn AuthFlow>, ProviderError> {
        Ok(self.built(name).await?.flow)
    }

    /// The flow `name` as its concrete type `T` (the same cached instance as
    /// [`Provider::flow`]): for what only that type offers, such as
    /// [`OAuth2Flow::client`](crate::oauth2::OAuth2Flow::client).
    pub async fn flow_as<T: AuthFlow + 'static>(
        &self,
        name: &str,
    ) -> Result<Arc<T>, ProviderError> {
        self.built(name)
            .await?
            .any
            .downcast::<T>()
            .map_err(|_| ProviderError::FlowType {
                provider: self.name().to_owned(),
                flow: name.to_owned(),
                expected: std::any::type_name::<T>(),
            })
    }

    async fn built(&self, name: &str) -> Result<BuiltFlow, ProviderError> {
        let slot = self.slot(name).ok_or_else(|| ProviderError::UnknownFlow {
            provider: self.name().to_owned(),
            flow: name.to_owned(),
            known: self.flow_names().map(str::to_owned).collect(),
        })?;
        let flow = slot
            .cell
            .get_or_try_init(|| (slot.factory)(self.ctx.clone()))
            .await
            .map_err(|source| ProviderError::Build {
                provider: self.name().to_owned(),
                flow: name.to_owned(),
                source: Box::new(source),
            })?;
        Ok(flow.clone())
    }
}

/// Builds a [`Provider`].
pub struct ProviderBuilder {
    provider: Provider,
}

impl ProviderBuilder {
    /// The section the provider is built from.
    #[cfg(feature = "plugins")]
    pub(crate) fn section(&self) -> &ProviderSection {
        self.provider.ctx.section()
    }

    /// Adds a flow built by `factory` on first access.
    pub fn flow<F, Fut, T>(mut self, name: impl Into<Cow<'static, str>>, factory: F) -> Self
    where
        F: Fn(ProviderContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, FlowError>> + Send + 'static,
        T: AuthFlow + 'static,
    {
        let name = name.into();
        let factory: Factory = Box::new(move |ctx| {
            let fut = factory(ctx);
            Box::pin(async move {
                let flow = Arc::new(fut.await?);
                Ok(BuiltFlow {
                    flow: Arc::clone(&flow) as Arc<dyn AuthFlow>,
                    any: flow,
                })
            })
        });
        if self.provider.default_flow.is_none() {
            self.provider.default_flow = Some(name.clone());
        }
        let slot = FlowSlot {
            name,
            factory,
            cell: OnceCell::new(),
        };
        let flows = &mut self.provider.flows;
        match flows.binary_search_by(|s| s.name.cmp(&slot.name)) {
            Ok(i) => flows[i] = slot,
            Err(i) => flows.insert(i, slot),
        }
        self
    }

    /// Declares how the app credentials are checked without building a flow, when that is more
    /// than one type's schema.
    pub(crate) fn checker(
        mut self,
        check: impl Fn(&ProviderSection) -> Result<(), ValidationError> + Send + Sync + 'static,
    ) -> Self {
        self.provider.checker = Some(Box::new(check));
        self
    }

    /// Declares the app-credentials type, so they can be checked without building a flow.
    pub fn app_credentials<C: AppCredentials>(mut self) -> Self {
        self.provider.checker = Some(Box::new(|raw| raw.parse::<C>().map(drop)));
        self
    }

    /// Names the flow used when none is asked for.
    pub fn default_flow(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.provider.default_flow = Some(name.into());
        self
    }

    /// Says where the provider comes from.
    pub fn source(mut self, source: ProviderSource) -> Self {
        self.provider.source = source;
        self
    }

    /// Finishes the provider.
    pub fn build(self) -> Provider {
        self.provider
    }
}

/// Why a provider or flow could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No provider by that name.
    #[error("unknown provider `{}`{}", crate::util::text::sanitize(.name, 64), known_list(.known))]
    UnknownProvider {
        /// The name asked for.
        name: String,
        /// The providers there are.
        known: Vec<String>,
    },
    /// A catalog provider that is not configured yet: it needs a client id of the user's own
    /// (and the values its endpoints leave open, such as a tenant's domain).
    #[error(
        "provider `{name}` is in the catalog but not configured yet: register an app with it and set its client id ({env}, or client_id in [providers.{name}] of the configuration file){}",
        if .settings.is_empty() { String::new() } else { format!(", and {}", .settings.join(", ")) }
    )]
    NotConfigured {
        /// The catalog entry's name.
        name: String,
        /// The environment variable that sets its client id.
        env: String,
        /// The settings it needs besides, described.
        settings: Vec<String>,
    },
    /// The provider has no flow by that name.
    #[error("provider `{provider}` has no flow `{flow}`{}", known_list(.known))]
    UnknownFlow {
        /// The provider.
        provider: String,
        /// The flow asked for.
        flow: String,
        /// The flows it has.
        known: Vec<String>,
    },
    /// The flow is not of the type asked for.
    #[error("flow `{flow}` of provider `{provider}` is not a {expected}")]
    FlowType {
        /// The provider.
        provider: String,
        /// The flow.
        flow: String,
        /// The type asked for.
        expected: &'static str,
    },
    /// The flow's factory failed.
    #[error("cannot set up flow `{flow}` of provider `{provider}`")]
    Build {
        /// The provider.
        provider: String,
        /// The flow.
        flow: String,
        /// Why.
        #[source]
        source: Box<FlowError>,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        let known: Vec<String> = known
            .iter()
            .map(|n| crate::util::text::sanitize(n, 64))
            .collect();
        format!(" (known: {})", known.join(", "))
    }
}

/// Finds a provider by name when it is first asked for (the [`App`](crate::app::App)'s: built-in,
/// plugin file, configured section), so that a command naming one provider touches only that
/// one.
pub(crate) trait Resolver: Send + Sync {
    /// The provider `name`, if there is one (nothing else is looked at).
    fn resolve(&self, name: &str) -> Option<Provider>;
    /// Every name [`Resolver::resolve`] would answer (this may list folders).
    fn names(&self) -> Vec<String>;
    /// Every provider, skipping `loaded` ones: what [`Resolver::resolve`] would give for each
    /// of [`Resolver::names`], without looking each one up again.
    fn all(&self, loaded: &dyn Fn(&str) -> bool) -> Vec<Provider> {
        self.names()
            .iter()
            .filter(|n| !loaded(n))
            .filter_map(|n| self.resolve(n))
            .collect()
    }
}

/// Providers by name: registered ones, and (in an [`App`](crate::app::App)) the ones found on first
/// access. The same name always gives the same [`Arc<Provider>`], so flows stay cached.
#[derive(Default)]
pub struct Registry {
    /// Keyed by the providers' own names (shared, not copied).
    providers: std::sync::Mutex<BTreeMap<Arc<str>, Arc<Provider>>>,
    resolver: Option<Box<dyn Resolver>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("loaded", &self.loaded())
            .field("lazy", &self.resolver.is_some())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry that finds providers with `resolver` on first access.
    pub(crate) fn with_resolver(resolver: impl Resolver + 'static) -> Self {
        Self {
            providers: Default::default(),
            resolver: Some(Box::new(resolver)),
        }
    }

    fn loaded_map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Arc<str>, Arc<Provider>>> {
        self.providers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds (or replaces) a provider.
    pub fn register(&mut self, provider: Provider) -> Arc<Provider> {
        let provider = Arc::new(provider);
        self.loaded_map()
            .insert(Arc::clone(&provider.ctx.name), Arc::clone(&provider));
        provider
    }

    /// The provider `name`: looked up by that name alone (a built-in name never lists the
    /// plugins folder; a plugin is found by its file name).
    pub fn get(&self, name: &str) -> Result<Arc<Provider>, ProviderError> {
        {
            let mut loaded = self.loaded_map();
            if let Some(p) = loaded.get(name) {
                return Ok(Arc::clone(p));
            }
            if let Some(p) = self.resolver.as_ref().and_then(|r| r.resolve(name)) {
                let p = Arc::new(p);
                // Kept under the name asked for (the provider's own, shared, when they agree).
                let key = if p.name() == name {
                    Arc::clone(&p.ctx.name)
                } else {
                    Arc::from(name)
                };
                loaded.insert(key, Arc::clone(&p));
                return Ok(p);
            }
        }
        // A catalog entry is a provider once it has a client id: say what to set, not that the
        // name is unknown.
        if let Some(entry) = crate::providers::catalog::entry(name) {
            let mut settings = Vec::new();
            for (placeholder, p) in &entry.placeholders {
                if p.default.is_none() {
                    settings.push(format!(
                        "`{placeholder}` ({}, e.g. `{}`)",
                        p.description, p.example
                    ));
                }
            }
            return Err(ProviderError::NotConfigured {
                name: name.to_owned(),
                env: crate::providers::catalog::env_var(name, "CLIENT_ID"),
                settings,
            });
        }
        Err(ProviderError::UnknownProvider {
            name: name.to_owned(),
            known: self.names(),
        })
    }

    /// The names of the providers looked up (or registered) so far, sorted.
    pub fn loaded(&self) -> Vec<String> {
        self.loaded_map().keys().map(|k| k.to_string()).collect()
    }

    /// Every provider's name, sorted (this lists the plugins folder).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.loaded();
        if let Some(r) = &self.resolver {
            names.extend(r.names());
        }
        names.sort();
        names.dedup();
        names
    }

    /// Every provider, sorted by name (this lists the plugins folder; no flow is built).
    pub fn providers(&self) -> Vec<Arc<Provider>> {
        let mut loaded = self.loaded_map();
        if let Some(r) = &self.resolver {
            let found = r.all(&|name| loaded.contains_key(name));
            if !found.is_empty() {
                // Built in one pass from sorted runs (the resolver's are sorted in stretches),
                // not inserted one by one: with a thousand plugin files that was a thousand
                // searches of the tree. `all` skips loaded names, so keys do not repeat; were
                // one to, the loaded provider is kept (the sort is stable, the last one wins).
                let found = found.into_iter().map(|p| {
                    let p = Arc::new(p);
                    (Arc::clone(&p.ctx.name), p)
                });
                let before = std::mem::take(&mut *loaded);
                *loaded = found.chain(before).collect();
            }
        }
        loaded.values().cloned().collect()
    }
}
