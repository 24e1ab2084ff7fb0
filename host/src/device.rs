//! Polling a device-code authorization to completion (RFC 8628 §3.4–3.5), for native and
//! plugin flows alike: a flow's `exchange` makes one poll, this module keeps the schedule.
//!
//! - wait the interval before every poll, the first one included;
//! - `authorization_pending`: poll again at the same interval;
//! - `slow_down`: add 5 seconds to the interval, for every later poll;
//! - a network error, a 5xx, a 429: back off (double the interval, at most a minute; a
//!   `Retry-After` is honoured), never polling faster again;
//! - `access_denied`, `expired_token`, the code's lifetime running out, any other error: stop.

use std::time::Duration;

use tokio::time::Instant;

use crate::flow::{AuthFlow, Credential, ExchangeInput, FlowError, Pending};
use crate::http::HttpError;
use crate::oauth2::{ErrorKind, TokenError};

/// The interval when the provider gives none (RFC 8628 §3.5), in seconds.
pub const DEFAULT_INTERVAL: u64 = 5;
/// Bounds on the interval a provider or plugin may ask for, in seconds.
pub const INTERVAL_BOUNDS: (u64, u64) = (1, 60);
/// Bounds on a device code's lifetime, in seconds.
pub const LIFETIME_BOUNDS: (u64, u64) = (10, 3600);

/// What `slow_down` adds to the interval.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest interval back-off reaches.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

enum Next {
    Again,
    SlowDown,
    BackOff(Option<Duration>),
    Stop,
}

fn next(error: &FlowError) -> Next {
    let token = match error {
        FlowError::Token(token) => token,
        // A plugin's own network failure: worth trying again, later.
        FlowError::Plugin(crate::plugin::PluginError::Failed { network: true, .. }) => {
            return Next::BackOff(None);
        }
        _ => return Next::Stop,
    };
    match token {
        TokenError::Provider(p) => match p.kind {
            ErrorKind::AuthorizationPending => Next::Again,
            ErrorKind::SlowDown => Next::SlowDown,
            ErrorKind::ServerError | ErrorKind::TemporarilyUnavailable => Next::BackOff(None),
            _ => Next::Stop,
        },
        TokenError::Http(HttpError::Timeout { .. } | HttpError::Connect { .. }) => {
            Next::BackOff(None)
        }
        TokenError::Unavailable { retry_after, .. } => Next::BackOff(*retry_after),
        TokenError::Status { status, .. } if *status >= 500 => Next::BackOff(None),
        _ => Next::Stop,
    }
}

/// Polls `flow` with `pending` until the user has authorized, refused, or `deadline` passes.
pub async fn poll(
    flow: &dyn AuthFlow,
    pending: Pending,
    interval: Duration,
    deadline: Instant,
) -> Result<Credential, FlowError> {
    let mut interval = interval.max(Duration::from_secs(1));
    loop {
        let wake = Instant::now() + interval;
        if wake > deadline {
            return Err(FlowError::Expired);
        }
        tokio::time::sleep_until(wake).await;
        let error = match flow
            .exchange(pending.clone(), ExchangeInput::default())
            .await
        {
            Ok(credential) => return Ok(credential),
            Err(e) => e,
        };
        match next(&error) {
            Next::Again => tracing::debug!("authorization pending; polling again in {interval:?}"),
            Next::SlowDown => {
                interval += SLOW_DOWN_STEP;
                tracing::debug!("asked to slow down; polling every {interval:?} from now on");
            }
            Next::BackOff(retry_after) => {
                interval = (interval * 2)
                    .min(MAX_INTERVAL)
                    .max(retry_after.unwrap_or_default());
                tracing::warn!("polling failed ({error}); trying again in {interval:?}");
            }
            Next::Stop => {
                return Err(match &error {
                    FlowError::Token(TokenError::Provider(p))
                        if p.kind == ErrorKind::AccessDenied =>
                    {
                        FlowError::AccessDenied {
                            description: p.description.clone(),
                        }
                    }
                    FlowError::Token(TokenError::Provider(p))
                        if p.kind == ErrorKind::ExpiredToken =>
                    {
                        FlowError::Expired
                    }
                    _ => error,
                });
            }
        }
    }
}
