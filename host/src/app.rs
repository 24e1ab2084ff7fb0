//! The composition root: configuration, providers, store (and the plugin host) put together
//! once, as the `host` CLI, the tests and the benchmarks all use them.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ConfigError, ConfigLoader, Defaults};
use crate::flow::FlowError;
use crate::login::{LoginError, LoginOptions, LoginUi, login};
use crate::providers::github::{self, GitHub};
use crate::providers::provider::{Provider, ProviderError, Registry};
use crate::renewal::{self, RenewError};
use crate::store::{Record, Store, StoreError};
use crate::util::names::BadName;

/// How close to its expiry a token is refreshed by [`App::token`].
pub const DEFAULT_MIN_VALID: Duration = Duration::from_secs(60);

/// The defaults and aliases of every built-in provider, for a [`ConfigLoader`].
pub fn builtin_defaults() -> Vec<Defaults> {
    vec![github::defaults()]
}

/// Everything a program needs to log in and keep tokens fresh: the configuration, every
/// provider (built-in, from plugin files, and the plugin flows the configuration binds), and
/// the credential store.
///
/// Building it reads the plugins folder's names and nothing more: no flow is built, no app
/// credentials are validated, no plugin is compiled until something asks.
#[derive(Debug)]
pub struct App {
    config: Config,
    registry: Registry,
    store: Store,
    #[cfg(feature = "plugins")]
    plugins: Arc<crate::plugin::PluginHost>,
}

impl App {
    /// The configuration from the process environment and the default file
    /// (`$XDG_CONFIG_HOME/host/host.toml`, or `$HOST_CONFIG`).
    pub fn load_default() -> Result<Self, ConfigError> {
        let config = ConfigLoader::from_process_env()
            .defaults(builtin_defaults())
            .load()?;
        Self::from_config(config)
    }

    /// Puts everything together from a loaded configuration (load it with
    /// [`builtin_defaults`] so the built-in providers get theirs).
    pub fn from_config(config: Config) -> Result<Self, ConfigError> {
        let store =
            Store::open(config.store_options()?).map_err(|e| ConfigError::Store(Box::new(e)))?;
        #[cfg(feature = "plugins")]
        {
            let plugins = Arc::new(crate::plugin::PluginHost::new(
                config.plugin_settings(),
                config.http_policy(),
                Some(config.plugin_cache_dir()),
            ));
            let registry = Registry::with_resolver(AppResolver {
                config: config.clone(),
                store: store.clone(),
                depth: 0,
                plugins: Arc::clone(&plugins),
                plugins_dir: config.plugins_dir(),
            });
            Ok(Self {
                config,
                registry,
                store,
                plugins,
            })
        }
        #[cfg(not(feature = "plugins"))]
        {
            let registry = Registry::with_resolver(AppResolver {
                config: config.clone(),
                store: store.clone(),
                depth: 0,
            });
            Ok(Self {
                config,
                registry,
                store,
            })
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every provider.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The credential store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The plugin host (its engine starts when a plugin is first used).
    #[cfg(feature = "plugins")]
    pub fn plugins(&self) -> &Arc<crate::plugin::PluginHost> {
        &self.plugins
    }

    /// The provider `name` (a plugin, a configured one).
    pub fn provider(&self, name: &str) -> Result<Arc<Provider>, ProviderError> {
        self.registry.get(name)
    }

    /// The provider a command means when it names none: the configured default
    /// (`HOST_PROVIDER`, `default_provider`), else the only provider with stored credentials.
    /// When that is ambiguous, the error lists the choices.
    pub async fn default_provider(&self) -> Result<String, AppError> {
        if let Some((name, origin)) = self.config.default_provider() {
            self.provider(name).map_err(|e| AppError::DefaultProvider {
                reason: format!(
                    "the default provider `{}` (from {origin}) does not exist: {e}",
                    crate::util::text::sanitize(name, 64)
                ),
            })?;
            return Ok(name.to_owned());
        }
        let stored: Vec<String> = self
            .store
            .providers_with_records()
            .await?
            .into_iter()
            .collect();
        match stored.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(AppError::DefaultProvider {
                reason: format!(
                    "no provider named and none logged in; name one with --provider ({})",
                    self.registry.names().join(", ")
                ),
            }),
            several => Err(AppError::DefaultProvider {
                reason: format!(
                    "several providers have stored credentials ({}); name one with --provider, or set default_provider",
                    several.join(", ")
                ),
            }),
        }
    }

    /// How `provider`'s credential goes on API requests: its section's `binding`, else what
    /// its plugin declares (0.2.0 plugins), else `None` (the credential's own: bearer for
    /// OAuth2 tokens).
    pub async fn binding(
        &self,
        provider: &str,
    ) -> Result<Option<crate::flow::binding::Binding>, AppError> {
        let handle = self.provider(provider)?;
        if let Some(b) = handle.context().section().binding()? {
            return Ok(Some(b));
        }
        // A plugin's binding, its `{field}`s filled from the app credentials, is checked
        // only now.
        let binding = self.plugin_flow(&handle).await?.and_then(|f| f.binding());
        if let Some(Err((part, problem))) = binding.as_ref().map(|b| b.check()) {
            return Err(AppError::PluginBinding {
                provider: crate::util::text::sanitize(provider, 64),
                part,
                problem,
            });
        }
        Ok(binding)
    }

    /// `provider`'s API base URL: its section's `api_url`, else what its plugin declares.
    pub async fn api_base_url(&self, provider: &str) -> Result<Option<url::Url>, AppError> {
        let handle = self.provider(provider)?;
        if matches!(
            handle.source(),
            crate::providers::provider::ProviderSource::Configured
                | crate::providers::provider::ProviderSource::Catalog
        ) {
            // Its placeholders filled (`https://{domain}/api/v1`).
            return crate::providers::configured::settings(handle.context().section())
                .map(|s| s.api_url)
                .map_err(AppError::from);
        }
        let configured = handle
            .context()
            .section()
            .value()
            .get("api_url")
            .and_then(|u| u.as_str())
            .map(str::to_owned);
        let text = match configured {
            Some(text) => Some(text),
            None => self
                .plugin_flow(&handle)
                .await?
                .and_then(|f| f.api_base_url()),
        };
        text.map(|u| {
            url::Url::parse(&u).map_err(|source| AppError::ApiUrl {
                provider: crate::util::text::sanitize(provider, 64),
                source,
            })
        })
        .transpose()
    }

    #[cfg(feature = "plugins")]
    async fn plugin_flow(
        &self,
        provider: &Provider,
    ) -> Result<Option<Arc<crate::plugin::WasmFlow>>, AppError> {
        if !matches!(
            provider.source(),
            crate::providers::provider::ProviderSource::Plugin(_)
        ) {
            return Ok(None);
        }
        let flow = provider
            .default_flow()
            .unwrap_or(crate::plugin::PLUGIN_FLOW);
        Ok(Some(
            provider.flow_as::<crate::plugin::WasmFlow>(flow).await?,
        ))
    }

    #[cfg(not(feature = "plugins"))]
    async fn plugin_flow(&self, _provider: &Provider) -> Result<Option<NoPlugin>, AppError> {
        Ok(None)
    }

    /// An HTTP client for `provider`'s API that carries `account`'s credential (see
    /// [`Session`](crate::session::Session)): paths resolve against [`App::api_base_url`], the
    /// credential goes on as [`App::binding`] says.
    pub async fn session(
        &self,
        provider: &str,
        account: &str,
    ) -> Result<crate::session::Session, AppError> {
        crate::util::names::check_name(account)?;
        let handle = self.provider(provider)?;
        let binding = self.binding(provider).await?;
        let base = self.api_base_url(provider).await?;
        let policy = self.config.http_policy();
        Ok(crate::session::Session::new(
            handle,
            account,
            self.store.clone(),
            binding,
            base,
            &policy,
        )?)
    }

    /// The built-in `github` provider, typed.
    pub fn github(&self) -> GitHub {
        GitHub::new(
            self.registry
                .get(github::NAME)
                .expect("the built-in github provider is always registered"),
        )
    }

    /// Logs in to `provider` with its flow `flow` (its default flow when `None`), and stores
    /// the credential as `account`, with who it belongs to when the provider says (looked up
    /// for at most a few seconds, never failing the login).
    pub async fn login(
        &self,
        provider: &str,
        account: &str,
        flow: Option<&str>,
        options: &LoginOptions,
        ui: &dyn LoginUi,
    ) -> Result<Record, AppError> {
        crate::util::names::check_name(account)?;
        let handle = self.provider(provider)?;
        let flow_name = match flow {
            Some(f) => f.to_owned(),
            None => handle
                .default_flow()
                .ok_or_else(|| ProviderError::UnknownFlow {
                    provider: provider.to_owned(),
                    flow: "(default)".into(),
                    known: Vec::new(),
                })?
                .to_owned(),
        };
        // Before the flow is built (an issuer's discovery) and the provider issues anything:
        // tokens that could not be stored would be lost, and left live.
        self.store.check_save(provider, account).await?;
        let flow = handle.flow(&flow_name).await?;
        let credential = login(flow.as_ref(), options, ui).await?;
        let identity = tokio::time::timeout(IDENTIFY_TIMEOUT, flow.identify(&credential))
            .await
            .ok()
            .flatten();
        let mut record = Record::new(provider, account, &flow_name, credential);
        record.identity = identity;
        // Under the record's lock: a refresh of the old login in flight cannot replace it.
        if let Some(old) = self.store.save(&record).await?
            && !old.credential.shares_a_secret_with(&record.credential)
        {
            // The login it replaces is over: revoke it (best effort) rather than leave a live
            // grant nobody holds. Not when the provider answered with a token of the old login
            // (some give the same tokens to each new authorization): that grant is the new one.
            let revoked = match handle.flow(&old.flow).await {
                Ok(flow) => flow.revoke(&old.credential).await.map_err(|e| e.chain()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = revoked {
                tracing::warn!("cannot revoke the credential this login replaced: {e}");
            }
        }
        Ok(record)
    }

    /// The stored credential of `provider`'s `account`, valid for at least `min_valid`:
    /// refreshed first when needed (through the flow that made it), concurrent callers in this
    /// and other processes sharing one refresh.
    pub async fn token(
        &self,
        provider: &str,
        account: &str,
        min_valid: Duration,
    ) -> Result<Record, AppError> {
        let handle = self.provider(provider)?;
        let skew = chrono::Duration::from_std(min_valid).unwrap_or(chrono::Duration::MAX);
        Ok(renewal::fresh(&self.store, &handle, account, skew).await?)
    }
}

/// Without the plugin runtime there is no plugin flow to ask.
#[cfg(not(feature = "plugins"))]
enum NoPlugin {}

#[cfg(not(feature = "plugins"))]
impl NoPlugin {
    fn binding(&self) -> Option<crate::flow::binding::Binding> {
        match *self {}
    }
    fn api_base_url(&self) -> Option<String> {
        match *self {}
    }
}

/// How long the identity lookup after a login may take.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an [`App`] operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// An unusable account or provider name.
    #[error(transparent)]
    BadName(#[from] BadName),
    /// The provider or flow cannot be had.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The login failed.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored credential cannot be had fresh.
    #[error(transparent)]
    Renew(#[from] RenewError),
    /// A provider's section is unusable (its settings, its binding).
    #[error(transparent)]
    Section(#[from] crate::providers::app_credentials::ValidationError),
    /// The binding a plugin declares is unusable.
    #[error("providers.{provider}: the binding the plugin declares has a {part} that {problem}")]
    PluginBinding {
        /// The provider.
        provider: String,
        /// Which part of the binding.
        part: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The provider's API base URL is not a URL.
    #[error("the API base URL of `{provider}` is not a URL")]
    ApiUrl {
        /// The provider.
        provider: String,
        /// Why.
        #[source]
        source: url::ParseError,
    },
    /// The session's HTTP client cannot be set up.
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    /// No provider was named and none can be assumed.
    #[error("{reason}")]
    DefaultProvider {
        /// Why, with the choices.
        reason: String,
    },
}

impl AppError {
    /// The flow error at the bottom of this one, if a flow failed.
    pub fn flow_error(&self) -> Option<&FlowError> {
        match self {
            AppError::Renew(RenewError::Renew { source, .. }) => Some(source),
            AppError::Login(
                LoginError::Start(e) | LoginError::Refused(e) | LoginError::Failed(e),
            ) => Some(e),
            _ => None,
        }
    }

    /// Whether the user must log in again.
    pub fn needs_login(&self) -> bool {
        self.flow_error().is_some_and(FlowError::needs_login)
    }

    /// Whether nothing is stored for the provider and account: the user must log in first.
    pub fn not_logged_in(&self) -> bool {
        match self {
            AppError::Store(e) => e.needs_login(),
            AppError::Renew(RenewError::Store(e)) => e.needs_login(),
            _ => false,
        }
    }
}

/// Finds each provider by its name alone, on first access: the built-in `github`, else the
/// plugin file `<plugins folder>/<name>.wasm`, else a configured section (an OAuth2 provider by
/// its endpoints, issuer or catalog entry, or a provider made only of the plugin flows it
/// binds).
#[derive(Clone)]
struct AppResolver {
    config: Config,
    /// The store, for the tokens of other providers a token exchange trades.
    store: Store,
    /// How many `subject_provider` links led here.
    depth: u8,
    #[cfg(feature = "plugins")]
    plugins: Arc<crate::plugin::PluginHost>,
    #[cfg(feature = "plugins")]
    plugins_dir: std::path::PathBuf,
}

impl AppResolver {
    /// Adds the plugin flows the builder's section binds (none without the plugin runtime).
    fn with_bound_flows(
        &self,
        builder: crate::providers::provider::ProviderBuilder,
    ) -> crate::providers::provider::ProviderBuilder {
        #[cfg(feature = "plugins")]
        {
            crate::plugin::bind_plugin_flows(builder, &self.plugins, &self.plugins_dir)
        }
        #[cfg(not(feature = "plugins"))]
        {
            builder
        }
    }

    fn binds_plugins(&self, section: &crate::providers::section::ProviderSection) -> bool {
        #[cfg(feature = "plugins")]
        {
            !section.bound_plugin_flows(&self.plugins_dir).is_empty()
        }
        #[cfg(not(feature = "plugins"))]
        {
            let _ = section;
            false
        }
    }

    /// The plugins folder's files, but one a built-in provider's name hides (with a warning).
    #[cfg(feature = "plugins")]
    fn plugin_files(&self) -> Vec<crate::plugin::PluginFile> {
        let mut files = crate::plugin::discover(&self.plugins_dir);
        files.retain(|file| {
            let hidden = file.name == github::NAME;
            if hidden {
                tracing::warn!(
                    "plugin {} is ignored: a built-in provider is called `{}`",
                    file.path.display(),
                    file.name
                );
            }
            !hidden
        });
        files
    }

    fn configured(&self, name: &str) -> Option<Provider> {
        if !self.config.provider_names().any(|n| n == name) {
            return None;
        }
        // A name no record could be stored under (nor printed safely) provides nothing.
        if let Err(e) = crate::util::names::check_name(name) {
            tracing::warn!("a [providers] section is ignored: {e}");
            return None;
        }
        let section = self.config.provider_section(name);
        let builder = if crate::providers::configured::is_oauth2_section(&section) {
            let tokens: Arc<dyn crate::providers::configured::ProviderTokens> =
                Arc::new(OtherProviders {
                    resolver: AppResolver {
                        depth: self.depth + 1,
                        ..self.clone()
                    },
                    registry: std::sync::OnceLock::new(),
                });
            crate::providers::configured::builder(&self.config, name, Some(tokens))
        } else if self.binds_plugins(&section) {
            Provider::builder(name, section)
                .source(crate::providers::provider::ProviderSource::Code)
        } else {
            return None;
        };
        Some(self.with_bound_flows(builder).build())
    }
}

/// The providers a token exchange's `subject_provider` names: found as the App finds them,
/// one link further down a chain that may be at most [`MAX_SUBJECT_CHAIN`] long (a chain that
/// comes back to itself ends there too).
struct OtherProviders {
    resolver: AppResolver,
    registry: std::sync::OnceLock<Registry>,
}

/// The longest chain of `subject_provider` links.
const MAX_SUBJECT_CHAIN: u8 = 4;

#[crate::flow::async_trait]
impl crate::providers::configured::ProviderTokens for OtherProviders {
    async fn access_token(
        &self,
        provider: &str,
    ) -> Result<crate::util::secret::SecretString, FlowError> {
        if self.resolver.depth > MAX_SUBJECT_CHAIN {
            return Err(FlowError::config(format!(
                "subject_provider links lead through more than {MAX_SUBJECT_CHAIN} providers (or back to one of them)"
            )));
        }
        let registry = self
            .registry
            .get_or_init(|| Registry::with_resolver(self.resolver.clone()));
        let handle = registry
            .get(provider)
            .map_err(|e| FlowError::InvalidConfig {
                message: format!(
                    "subject_provider `{}`",
                    crate::util::text::sanitize(provider, 64)
                ),
                source: Some(Box::new(e)),
            })?;
        let record = renewal::fresh(
            &self.resolver.store,
            &handle,
            crate::store::DEFAULT_ACCOUNT,
            chrono::Duration::seconds(60),
        )
        .await
        .map_err(|e| FlowError::InvalidConfig {
            message: format!(
                "cannot have the subject token from provider `{}`",
                crate::util::text::sanitize(provider, 64)
            ),
            source: Some(Box::new(e)),
        })?;
        record.credential.secret().cloned().ok_or_else(|| {
            FlowError::config(format!(
                "subject_provider `{}` holds no access token",
                crate::util::text::sanitize(provider, 64)
            ))
        })
    }
}

impl crate::providers::provider::Resolver for AppResolver {
    fn resolve(&self, name: &str) -> Option<Provider> {
        crate::util::names::check_name(name).ok()?;
        if name == github::NAME {
            return Some(self.with_bound_flows(github::builder(&self.config)).build());
        }
        #[cfg(feature = "plugins")]
        {
            // One look at one name: the folder is not listed. Whatever is there is the plugin
            // (a FIFO or a device is refused with a clear error when the flow is built).
            let path = self.plugins_dir.join(format!("{name}.wasm"));
            if std::fs::symlink_metadata(&path).is_ok() {
                let file = crate::plugin::PluginFile {
                    name: name.to_owned(),
                    path,
                };
                let section = self.config.provider_section(name);
                return Some(crate::plugin::plugin_provider(
                    file,
                    section,
                    &self.plugins,
                    &self.plugins_dir,
                ));
            }
        }
        self.configured(name)
    }

    fn all(&self, loaded: &dyn Fn(&str) -> bool) -> Vec<Provider> {
        let mut out = Vec::new();
        if !loaded(github::NAME) {
            out.extend(self.resolve(github::NAME));
        }
        // The folder's entries are the plugins: no second look at each file. They are pushed
        // in name order, so the stretch of `out` they fill is searched below to skip
        // configured sections of the same name (a loaded plugin's name is skipped as loaded).
        #[cfg(feature = "plugins")]
        let plugins_at = {
            let files = self.plugin_files();
            let start = out.len();
            out.reserve(files.len());
            for file in files {
                if !loaded(&file.name) {
                    let section = self.config.provider_section(&file.name);
                    out.push(crate::plugin::plugin_provider(
                        file,
                        section,
                        &self.plugins,
                        &self.plugins_dir,
                    ));
                }
            }
            start..out.len()
        };
        #[cfg(not(feature = "plugins"))]
        let plugins_at = 0..0;
        for name in self.config.provider_names() {
            let seen = name == github::NAME
                || out[plugins_at.clone()]
                    .binary_search_by(|p| p.name().cmp(name))
                    .is_ok();
            if !seen && !loaded(name) {
                out.extend(self.configured(name));
            }
        }
        out
    }

    fn names(&self) -> Vec<String> {
        let mut names = vec![github::NAME.to_owned()];
        #[cfg(feature = "plugins")]
        names.extend(self.plugin_files().into_iter().map(|f| f.name));
        for name in self.config.provider_names() {
            if !names.iter().any(|n| n == name) && self.configured(name).is_some() {
                names.push(name.to_owned());
            }
        }
        names
    }
}
