//! A lane's condition as two small state machines: the backend's [`Health`] (how its calls
//! go) and the lane's [`Admission`] (whether it keeps the writer's new batches).

use std::sync::Arc;

use crate::statistics::BackendState;
use audit_format::error::Error;

/// The backend's health as the lane's worker last saw it; `BackendStatistics.state` shows it.
/// Anything but `Ok` sends new batches to the spool (when there is one).
///
/// ```text
///   Ok ──a sync-mode call outlasts the flush interval──► Stalled ──the call returns──► Ok
///   Ok, Stalled, Retrying ──a retryable failure──► Retrying ──a flush succeeds──► Ok
///   any ──a fatal failure or an unreadable spool──► Fatal (until restart)
/// ```
///
/// A stall while `Retrying` stays `Retrying`, which already spools new batches.
#[derive(Debug, Clone, Default)]
pub(crate) enum Health {
    #[default]
    Ok,
    /// Sync mode: a call has taken longer than the flush interval; what the worker holds
    /// was copied to the spool and new batches go there until the call returns.
    Stalled,
    /// A retryable failure: retried after a back-off.
    Retrying(Arc<Error>),
    /// Not called again until restart.
    Fatal(Arc<Error>),
}

impl Health {
    /// What `BackendStatistics.state` shows.
    pub(crate) fn state(&self) -> BackendState {
        match self {
            Self::Ok => BackendState::Ok,
            Self::Stalled => BackendState::Stalled,
            Self::Retrying(_) => BackendState::Retrying,
            Self::Fatal(_) => BackendState::Fatal,
        }
    }

    /// The name `BackendStatistics.state` shows.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &'static str {
        self.state().as_str()
    }

    /// New batches go to the spool rather than to memory.
    pub(crate) fn spools(&self) -> bool {
        !matches!(self, Self::Ok)
    }

    pub(crate) fn is_fatal(&self) -> bool {
        matches!(self, Self::Fatal(_))
    }

    pub(crate) fn is_retrying(&self) -> bool {
        matches!(self, Self::Retrying(_))
    }

    /// The failure behind a `Retrying` or `Fatal` state.
    pub(crate) fn error(&self) -> Option<&Arc<Error>> {
        match self {
            Self::Retrying(e) | Self::Fatal(e) => Some(e),
            Self::Ok | Self::Stalled => None,
        }
    }

    /// A call outlasted the flush interval and what it carries is spooled.
    pub(crate) fn stall(&mut self) {
        if matches!(self, Self::Ok) {
            *self = Self::Stalled;
        }
    }

    /// The call that stalled returned.
    pub(crate) fn call_returned(&mut self) {
        if matches!(self, Self::Stalled) {
            *self = Self::Ok;
        }
    }

    /// A retryable failure; a fatal lane stays fatal.
    pub(crate) fn retry(&mut self, e: Arc<Error>) {
        if !self.is_fatal() {
            *self = Self::Retrying(e);
        }
    }

    /// A fatal failure. Returns whether it is the first.
    pub(crate) fn fail(&mut self, e: Arc<Error>) -> bool {
        let first = !self.is_fatal();
        *self = Self::Fatal(e);
        first
    }

    /// A flush succeeded. Returns whether the lane was retrying.
    pub(crate) fn recover(&mut self) -> bool {
        let retrying = self.is_retrying();
        if retrying {
            *self = Self::Ok;
        }
        retrying
    }
}

/// Whether the lane keeps the writer's new batches. Only a required backend refuses, only
/// one that is not required drops.
///
/// ```text
///   Open ──required: a batch cannot be kept, or a call failed with no spool──► Refusing
///   Refusing ──the worker delivered and the backend flushed──► Open
///   Open ──not required: a batch cannot be kept (logged once)──► Dropping
///   Dropping ──a batch was kept again──► Open
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Admission {
    #[default]
    Open,
    /// The trail refuses new events because of this lane.
    Refusing,
    /// Events it cannot keep are dropped and counted.
    Dropping,
}

impl Admission {
    pub(crate) fn refuse(&mut self) {
        *self = Self::Refusing;
    }

    /// Events are being dropped. Returns whether this starts an episode (to log it once).
    pub(crate) fn start_dropping(&mut self) -> bool {
        let first = *self != Self::Dropping;
        *self = Self::Dropping;
        first
    }

    /// A batch was kept: a drop episode ends (a refusal lasts until a delivery).
    pub(crate) fn kept(&mut self) {
        if *self == Self::Dropping {
            *self = Self::Open;
        }
    }

    /// The backend took and flushed a delivery. Returns whether the lane was refusing.
    pub(crate) fn delivered(&mut self) -> bool {
        let refusing = *self == Self::Refusing;
        if refusing {
            *self = Self::Open;
        }
        refusing
    }
}

/// Fatal: a plugin's `Fatal` or `Config` error, or a panic.
pub(crate) fn is_fatal(e: &Error) -> bool {
    match e {
        Error::PluginCall { kind, .. } => {
            !matches!(kind, audit_format::error::CallErrorKind::Retryable)
        }
        Error::Fatal { .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn err(m: &str) -> Arc<Error> {
        Arc::new(Error::backend(m))
    }

    #[test]
    fn a_stall_ends_when_the_call_returns_and_a_retry_when_a_flush_succeeds() {
        let mut h = Health::default();
        assert!(!h.spools() && h.as_str() == "ok");
        h.stall();
        assert!(matches!(h, Health::Stalled) && h.spools() && h.error().is_none());
        h.call_returned();
        assert!(matches!(h, Health::Ok));
        h.retry(err("down"));
        assert!(h.is_retrying() && h.spools() && h.as_str() == "retrying");
        h.stall();
        h.call_returned();
        assert!(h.is_retrying(), "a stall while retrying stays retrying");
        h.retry(err("still down"));
        assert!(
            matches!(h.error(), Some(e) if audit_format::error::chain(e).contains("still down"))
        );
        assert!(h.recover() && matches!(h, Health::Ok));
        assert!(!h.recover(), "nothing to recover from");
    }

    #[test]
    fn fatal_is_final_and_keeps_the_latest_error() {
        let mut h = Health::default();
        h.retry(err("down"));
        assert!(h.fail(err("gone")));
        assert!(!h.fail(err("gone again")), "only the first is new");
        h.retry(err("retryable"));
        h.stall();
        h.call_returned();
        assert!(!h.recover());
        assert!(h.is_fatal() && h.as_str() == "fatal");
        assert!(
            matches!(h.error(), Some(e) if audit_format::error::chain(e).contains("gone again"))
        );
    }

    #[test]
    fn a_refusal_lasts_until_a_delivery_and_a_drop_episode_until_a_batch_is_kept() {
        let mut a = Admission::default();
        assert!(!a.delivered());
        a.refuse();
        a.kept();
        assert_eq!(
            a,
            Admission::Refusing,
            "keeping a batch does not end a refusal"
        );
        assert!(a.delivered() && a == Admission::Open);

        assert!(a.start_dropping(), "a new episode is logged");
        assert!(!a.start_dropping(), "once");
        assert!(!a.delivered() && a == Admission::Dropping);
        a.kept();
        assert_eq!(a, Admission::Open);
        assert!(a.start_dropping(), "the next episode is logged again");
    }

    #[test]
    fn plugin_errors_are_fatal_unless_retryable() {
        assert!(is_fatal(&Error::Fatal {
            message: "panic".into()
        }));
        assert!(!is_fatal(&Error::backend("timeout")));
    }
}
