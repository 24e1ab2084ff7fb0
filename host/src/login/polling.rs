//! Polling a device-code authorization to completion (RFC 8628 §3.4–3.5), for native and
//! plugin flows alike: a flow's `exchange` makes one poll, this module keeps the schedule.
//!
//! - wait the interval before every poll, the first one included;
//! - [`FlowError::Pending`] (`authorization_pending`): poll again at the same interval;
//! - [`FlowError::SlowDown`]: add 5 seconds to the interval, for every later poll;
//! - [`FlowError::Transient`] (a network error, a 5xx, a 429): back off (double the interval,
//!   at most a minute; a `Retry-After` is honoured), never polling faster again;
//! - anything else ([`FlowError::Denied`], [`FlowError::Expired`], a protocol error), or the
//!   code's lifetime running out: stop.

use std::time::Duration;

use tokio::time::Instant;

use crate::flow::{AuthFlow, Credential, ExchangeInput, FlowError, Pending};

/// What `slow_down` adds to the interval.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest interval back-off reaches.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Polls `flow` with `pending` until the user has authorized, refused, or `deadline` passes
/// ([`FlowError::Expired`] then, returned at the deadline; the same error returned before it
/// is the provider's `expired_token`).
pub async fn poll_device(
    flow: &dyn AuthFlow,
    pending: Pending,
    interval: Duration,
    deadline: Instant,
) -> Result<Credential, FlowError> {
    let mut interval = interval.max(Duration::from_secs(1));
    loop {
        let wake = Instant::now() + interval;
        if wake > deadline {
            // No poll fits before the deadline: the wait ends at the deadline, not before (the
            // caller tells this from the provider's own `expired_token` by the time).
            tokio::time::sleep_until(deadline).await;
            return Err(FlowError::Expired);
        }
        tokio::time::sleep_until(wake).await;
        match flow
            .exchange(pending.clone(), ExchangeInput::default())
            .await
        {
            Ok(credential) => return Ok(credential),
            Err(FlowError::Pending) => {
                tracing::debug!("authorization pending; polling again in {interval:?}");
            }
            Err(FlowError::SlowDown) => {
                interval += SLOW_DOWN_STEP;
                tracing::debug!("asked to slow down; polling every {interval:?} from now on");
            }
            Err(error @ FlowError::Transient { retry_after, .. }) => {
                interval = backed_off(interval, retry_after);
                tracing::warn!(
                    "polling failed ({}); trying again in {interval:?}",
                    crate::util::text::error_chain(&error)
                );
            }
            Err(error) => return Err(error),
        }
    }
}

/// The interval after a temporary failure: doubled up to [`MAX_INTERVAL`], never shorter than
/// it was (a `slow_down` may have taken it past that cap: polling faster again would break
/// RFC 8628 §3.5), nor than the provider's `Retry-After`.
fn backed_off(interval: Duration, retry_after: Option<Duration>) -> Duration {
    (interval * 2)
        .min(MAX_INTERVAL)
        .max(interval)
        .max(retry_after.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_failure_never_makes_polling_faster() {
        let s = Duration::from_secs;
        assert_eq!(backed_off(s(5), None), s(10));
        assert_eq!(backed_off(s(40), None), MAX_INTERVAL);
        // Past the cap by slow_down: kept, not brought back to it.
        assert_eq!(backed_off(s(65), None), s(65));
        assert_eq!(backed_off(s(5), Some(s(30))), s(30));
        assert_eq!(backed_off(s(65), Some(s(120))), s(120));
    }
}
