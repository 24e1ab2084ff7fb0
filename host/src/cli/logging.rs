//! A subscriber built on first use.

use std::sync::OnceLock;

use tracing::level_filters::LevelFilter;
use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};

type Inner = Box<dyn Subscriber + Send + Sync>;

/// Stands in for the subscriber `build` makes until something at `level` or above is logged:
/// tracing's macros skip anything below `level` before asking any subscriber, so a command
/// that logs nothing never builds it. `current_span` is not forwarded: nothing in `host` asks
/// the dispatcher for it (the fmt layer asks its own span registry).
pub(crate) struct Lazy<F> {
    level: LevelFilter,
    build: F,
    inner: OnceLock<Inner>,
    dispatch: OnceLock<Dispatch>,
}

impl<F: Fn() -> Inner> Lazy<F> {
    /// `level` must be the most verbose level the built subscriber enables.
    pub(crate) fn new(level: LevelFilter, build: F) -> Self {
        Self {
            level,
            build,
            inner: OnceLock::new(),
            dispatch: OnceLock::new(),
        }
    }

    fn inner(&self) -> &Inner {
        self.inner.get_or_init(|| {
            let inner = (self.build)();
            if let Some(dispatch) = self.dispatch.get() {
                inner.on_register_dispatch(dispatch);
            }
            inner
        })
    }
}

impl<F: Fn() -> Inner + Send + Sync + 'static> Subscriber for Lazy<F> {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.clone());
    }
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if *metadata.level() > self.level {
            return Interest::never();
        }
        self.inner().register_callsite(metadata)
    }
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.level && self.inner().enabled(metadata)
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.level)
    }
    fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
        self.inner().new_span(span)
    }
    fn record(&self, span: &span::Id, values: &span::Record<'_>) {
        self.inner().record(span, values)
    }
    fn record_follows_from(&self, span: &span::Id, follows: &span::Id) {
        self.inner().record_follows_from(span, follows)
    }
    fn event_enabled(&self, event: &Event<'_>) -> bool {
        self.inner().event_enabled(event)
    }
    fn event(&self, event: &Event<'_>) {
        self.inner().event(event)
    }
    fn enter(&self, span: &span::Id) {
        self.inner().enter(span)
    }
    fn exit(&self, span: &span::Id) {
        self.inner().exit(span)
    }
    fn clone_span(&self, id: &span::Id) -> span::Id {
        self.inner().clone_span(id)
    }
    fn try_close(&self, id: span::Id) -> bool {
        self.inner().try_close(id)
    }
}

/// Formats a log line's fields with every character a terminal would act on removed (a
/// message may quote a database's error, a file name, a server's answer), newlines and tabs
/// kept; the subscriber's own colours are untouched. The `log.*` fields of records forwarded
/// from the `log` crate are left out, as the default formatter does.
pub(crate) fn safe_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let name = field.name();
        if name.starts_with("log.") {
            return Ok(());
        }
        let text = crate::util::text::terminal_text(&format!("{value:?}"), 20_000);
        if name == "message" {
            write!(writer, "{text}")
        } else {
            write!(writer, "{name}={text}")
        }
    })
    .delimited(" ")
}
