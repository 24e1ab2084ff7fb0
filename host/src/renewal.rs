//! Renewal: when and how a stored credential is renewed, above the [`Store`] (which only
//! persists, seals and locks).
//!
//! [`fresh`] hands out a credential valid for at least a skew; when it is due, it is renewed
//! under the record's lock, so concurrent callers (threads, processes, machines sharing a
//! database) make one renewal between them and the others read its result. How depends on
//! the flow that made it:
//! - a flow that needs a person renews with its refresh token ([`AuthFlow::refresh`]);
//! - an unattended flow (client credentials, a JWT bearer assertion, a token exchange:
//!   [`AuthFlow::unattended`]) runs its grant again ([`AuthFlow::obtain`]), and obtains the
//!   first credential the same way when none is stored, so no login is ever needed.
//!
//! The rules are the same for native and plugin flows, because they are decided on the
//! [`FlowError`] kind alone:
//! - a renewal is sent only once the record has proved writable, and its result is stored
//!   before it is handed out (a rotated refresh token would otherwise be lost);
//! - a refresh the provider refuses marks the record: later calls say "log in again" without
//!   sending the dead token;
//! - when the renewal fails for a passing reason ([`FlowError::Transient`], or
//!   [`FlowError::NoAnswer`]: the provider answered neither a token nor an OAuth2 error) and
//!   the current token is still valid, it is handed out with a warning; so it is when another
//!   process holds the record past the lock's wait;
//! - a token another caller renewed while this one waited for the lock is handed out even when
//!   it lives less than the skew (a provider's tokens may live less than a minute): renewing
//!   it again would make one renewal per waiter.

use std::time::Duration;

use crate::flow::{AuthFlow, Credential, FlowError};
use crate::providers::provider::Provider;
use crate::store::{Prepared, Record, RecordLock, Store, StoreError};
use crate::util::secret::SecretString;

/// Why [`fresh`] or [`renew_now`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenewError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The flow that renews the credential cannot be had.
    #[error(transparent)]
    Flow(#[from] crate::providers::provider::ProviderError),
    /// The renewal failed.
    #[error("cannot {action} the credential for provider `{provider}`")]
    Renew {
        /// The provider.
        provider: String,
        /// What was tried: `refresh` (with the refresh token) or `obtain` (an unattended
        /// grant run again).
        action: &'static str,
        /// Why.
        #[source]
        source: FlowError,
    },
}

impl RenewError {
    /// Whether a person must log in (again): nothing is stored and the provider's flow needs
    /// a person, or the provider refused the credential.
    pub fn needs_login(&self) -> bool {
        match self {
            RenewError::Store(e) => e.needs_login(),
            RenewError::Renew { source, .. } => source.needs_login(),
            RenewError::Flow(_) => false,
        }
    }

    /// The flow's error, when the renewal itself failed.
    pub fn flow_error(&self) -> Option<&FlowError> {
        match self {
            RenewError::Renew { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The credential of `provider`'s `account`, valid for at least `skew`: renewed first when
/// due, or obtained when none is stored and the provider's default flow is unattended (see the
/// [module](self)).
pub async fn fresh(
    store: &Store,
    provider: &Provider,
    account: &str,
    skew: chrono::Duration,
) -> Result<Record, RenewError> {
    let Some(before) = store.load(provider.name(), account).await? else {
        return first(store, provider, account, skew).await;
    };
    if !before.expires_within(skew) {
        return Ok(before);
    }
    let mut lock = match store.lock(provider.name(), account).await {
        Ok(lock) => lock,
        // Another process holds the record past the lock's wait (a slow provider, a plugin
        // taking its time, a stopped process): the token read before is still valid, so it
        // is the answer, as when a renewal fails for a passing reason.
        Err(e @ (StoreError::LockTimeout { .. } | StoreError::Busy { .. }))
            if !before.expires_within(chrono::Duration::zero()) =>
        {
            warn_current(provider, &e.to_string(), &before);
            return Ok(before);
        }
        Err(e) => return Err(e.into()),
    };
    #[cfg(debug_assertions)]
    if std::env::var(crate::util::private_fs::FAULT_ENV).as_deref() == Ok("hang-holding-lock") {
        // Lets a test kill a process that holds the lock and has sent nothing.
        eprintln!("holding the lock");
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    // Someone may have renewed, logged in again or logged out while we waited. A token
    // replaced meanwhile is the answer even if it lives less than the skew.
    let Some(record) = lock.load().await? else {
        drop(lock);
        return first(store, provider, account, skew).await;
    };
    if !record.expires_within(skew)
        || (record.replaces(&before) && !record.expires_within(chrono::Duration::zero()))
    {
        return Ok(record);
    }
    renew_or_current(store, provider, lock, record, skew).await
}

/// Renews the credential now, whatever its expiry says (the provider refused `stale`'s access
/// token, say with a 401): under the record's lock, unless someone already replaced that
/// access token, which is then returned without a request.
pub async fn renew_now(
    store: &Store,
    provider: &Provider,
    account: &str,
    stale: &Record,
) -> Result<Record, RenewError> {
    let mut lock = store.lock(provider.name(), account).await?;
    let record = lock.get().await?;
    if record.replaces(stale) {
        return Ok(record);
    }
    renew_locked(store, provider, lock, record, chrono::Duration::MAX).await
}

/// No record is stored: one is obtained under the record's lock when the provider's default
/// flow is unattended (once for all concurrent callers); otherwise a person must log in.
async fn first(
    store: &Store,
    provider: &Provider,
    account: &str,
    skew: chrono::Duration,
) -> Result<Record, RenewError> {
    let not_found = || StoreError::NotFound {
        provider: provider.name().to_owned(),
        account: account.to_owned(),
    };
    let Some(name) = provider.default_flow() else {
        return Err(not_found().into());
    };
    let flow = provider.flow(name).await?;
    if !flow.unattended() {
        return Err(not_found().into());
    }
    let mut lock = store.lock(provider.name(), account).await?;
    if let Some(record) = lock.load().await? {
        // Someone obtained one (or logged in) while we waited.
        if !record.expires_within(chrono::Duration::zero()) {
            return Ok(record);
        }
        return renew_or_current(store, provider, lock, record, skew).await;
    }
    let prepared = lock.prepare().await?;
    store.keys(true)?;
    let credential = flow.obtain().await.map_err(|source| RenewError::Renew {
        provider: provider.name().to_owned(),
        action: "obtain",
        source,
    })?;
    let record = Record::new(provider.name(), account, name, credential);
    lock.commit(&record, prepared).await?;
    Ok(record)
}

/// Renews `record` under `lock`; a passing failure leaves the current token the answer while
/// it is valid.
async fn renew_or_current(
    store: &Store,
    provider: &Provider,
    lock: RecordLock,
    record: Record,
    skew: chrono::Duration,
) -> Result<Record, RenewError> {
    let current = record.clone();
    match renew_locked(store, provider, lock, record, skew).await {
        // A passing failure (an outage, or no token answer at all: a maintenance page, a
        // redirect) leaves the current token the best answer while it is valid. An answer
        // refused (its id_token, its shape) is an error.
        Err(RenewError::Renew { source, .. })
            if passing(&source) && !current.expires_within(chrono::Duration::zero()) =>
        {
            warn_current(provider, &source.chain(), &current);
            Ok(current)
        }
        outcome => outcome,
    }
}

/// Renews `record` under `lock`: refused at once when the provider refused its refresh token
/// before; sent only once the record has proved writable; the new credential stored before it
/// is returned; a refusal remembered in the record.
async fn renew_locked(
    store: &Store,
    provider: &Provider,
    mut lock: RecordLock,
    mut record: Record,
    skew: chrono::Duration,
) -> Result<Record, RenewError> {
    // The flow that made the credential renews it; built only now, when needed.
    let flow = provider.flow(&record.flow).await?;
    let unattended = flow.unattended();
    let name = record.provider.clone();
    let refused = |source| RenewError::Renew {
        provider: name.clone(),
        action: if unattended { "obtain" } else { "refresh" },
        source,
    };
    if !unattended && let Some(reason) = &record.login_required {
        return Err(refused(FlowError::LoginRequired {
            reason: "an earlier refresh was refused",
            source: Some(reason.clone().into()),
        }));
    }
    // Proves the record can be written (and the key had) before the provider rotates
    // anything.
    let prepared = lock.prepare().await?;
    store.keys(true)?;
    let renewed = if unattended {
        flow.obtain().await
    } else {
        flow.refresh(&record.credential).await
    };
    match renewed {
        Ok(credential) => {
            let sent = std::mem::replace(&mut record.credential, credential);
            record.login_required = None;
            store_renewed(store, provider, lock, prepared, record, &sent, skew).await
        }
        Err(source) => Err(refused(
            remember_refusal(flow.as_ref(), lock, prepared, &mut record, source).await,
        )),
    }
}

/// Stores a renewed `record` (with any rotated refresh token) before it is handed out.
async fn store_renewed(
    store: &Store,
    provider: &Provider,
    lock: RecordLock,
    prepared: Prepared,
    record: Record,
    sent: &Credential,
    skew: chrono::Duration,
) -> Result<Record, RenewError> {
    match lock.commit(&record, prepared).await {
        Ok(()) => Ok(record),
        // Someone wrote the record without its lock meanwhile: theirs stays. If it is fresh,
        // it is the answer; our tokens are not written over it.
        Err(StoreError::Conflict { .. }) => {
            let theirs = store.get(provider.name(), &record.account).await?;
            if theirs.expires_within(skew) {
                Err(StoreError::Conflict {
                    provider: record.provider.clone(),
                    account: record.account.clone(),
                }
                .into())
            } else {
                Ok(theirs)
            }
        }
        // The write failed with the provider's new tokens in hand (a database connection
        // dropped, say): tried again, under a new lock.
        Err(e) => store_after_failed_commit(store, provider, record, sent, e).await,
    }
}

/// What a refused renewal leaves in the record: a refresh token the refused answer rotated
/// (or the next refresh would replay one the provider retired), and "log in again" when the
/// provider refused the refresh token. Returns the error to report.
async fn remember_refusal(
    flow: &dyn AuthFlow,
    lock: RecordLock,
    prepared: Prepared,
    record: &mut Record,
    source: FlowError,
) -> FlowError {
    let mut keep = false;
    let source = match source {
        FlowError::RefreshRefused {
            refresh_token,
            source,
        } => {
            if let Credential::OAuth2(token) = &mut record.credential {
                token.refresh_token = Some(refresh_token);
                keep = true;
            }
            *source
        }
        other => other,
    };
    // An unattended grant refused is not a login to redo: running it again is the renewal.
    if source.needs_login() && !flow.unattended() {
        record.login_required = Some(source.chain());
        keep = true;
    }
    if keep && let Err(e) = lock.commit(record, prepared).await {
        tracing::warn!("cannot store what the refused refresh left: {e}");
    }
    source
}

/// A refreshed `record` whose write failed (`first`), written under a new lock (for the
/// PostgreSQL store, a new connection) if the stored record still holds the tokens it was
/// refreshed from (`sent`: its access and refresh token; another process may only have marked
/// it "log in again" after the provider refused the same refresh token): nobody stored a newer
/// login or refresh meanwhile, and the provider may have retired the refresh token that was
/// sent. Otherwise the stored record stands and is the answer while valid. A credential
/// without a refresh token is never written this way: nothing tells its renewal from a new
/// login.
async fn store_after_failed_commit(
    store: &Store,
    provider: &Provider,
    record: Record,
    sent: &Credential,
    first: StoreError,
) -> Result<Record, RenewError> {
    if refresh_token_of(sent).is_none() {
        return Err(first.into());
    }
    tracing::warn!(
        "cannot store the refreshed credential of `{}` ({first}); trying again",
        record.provider
    );
    // Tried again until the lock's wait runs out: a database restarting takes seconds.
    let deadline = std::time::Instant::now() + store.options().lock_timeout;
    let mut pause = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut lock = store.lock(provider.name(), &record.account).await?;
            match lock.load().await? {
                Some(stored)
                    if same_tokens(&stored.credential, sent) && stored.flow == record.flow =>
                {
                    lock.save(&record).await?;
                    Ok(Some(record.clone()))
                }
                Some(stored) if !stored.expires_within(chrono::Duration::zero()) => {
                    Ok(Some(stored))
                }
                _ => Ok::<_, StoreError>(None),
            }
        };
        match attempt.await {
            Ok(Some(answer)) => return Ok(answer),
            // A logout, a newer login or refresh meanwhile: theirs stands.
            Ok(None) => return Err(first.into()),
            Err(e) if std::time::Instant::now() + pause < deadline => {
                tracing::debug!("storing the refreshed credential again failed ({e}); retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(_) => {
                tracing::error!(
                    "the provider's new tokens for `{}` could not be stored: the stored refresh token may no longer work (log in again if the next refresh is refused)",
                    record.provider
                );
                return Err(first.into());
            }
        }
    }
}

/// A credential's refresh token, if it has one.
fn refresh_token_of(credential: &Credential) -> Option<&SecretString> {
    credential.as_oauth2()?.refresh_token.as_ref()
}

/// Whether two credentials hold the same access and refresh tokens, compared in constant time
/// without copying them out of their secret strings.
fn same_tokens(a: &Credential, b: &Credential) -> bool {
    fn same(x: Option<&SecretString>, y: Option<&SecretString>) -> bool {
        match (x, y) {
            (Some(x), Some(y)) => x.ct_eq(y.expose()),
            (None, None) => true,
            _ => false,
        }
    }
    same(a.secret(), b.secret()) && same(refresh_token_of(a), refresh_token_of(b))
}

/// Whether a renewal failed for a reason that may pass by itself: a temporary failure, or no
/// token answer at all. Decided on the kind alone, so native and plugin flows are alike.
fn passing(source: &FlowError) -> bool {
    matches!(source, FlowError::Transient { .. } | FlowError::NoAnswer(_))
}

/// Says that the current token is handed out because it could not be renewed (`why`).
fn warn_current(provider: &Provider, why: &str, current: &Record) {
    tracing::warn!(
        "cannot renew the credential for `{}` ({why}); using the current token, valid until {}",
        provider.name(),
        current
            .expires_at()
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    );
}
