//! Flows are built lazily, once, and shared.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use host::ProviderSection;
use host::{
    AuthFlow, Credential, FlowError, async_trait, flow::Authorization, flow::AuthorizeRequest,
    flow::ExchangeInput, flow::Pending,
};
use host::{Provider, Registry};

/// A flow that does nothing; only its identity matters here.
struct CountingFlow;

#[async_trait]
impl AuthFlow for CountingFlow {
    async fn authorize(&self, _req: AuthorizeRequest) -> Result<Authorization, FlowError> {
        Err(FlowError::Unsupported("test".into()))
    }

    async fn exchange(&self, _p: Pending, _i: ExchangeInput) -> Result<Credential, FlowError> {
        Err(FlowError::Unsupported("test".into()))
    }
}

fn counting_provider(calls: Arc<AtomicUsize>, other_calls: Arc<AtomicUsize>) -> Provider {
    Provider::builder(
        "acme",
        ProviderSection::from_code("acme", serde_json::json!({})),
    )
    .flow("main", move |_ctx| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            // Give concurrent first accesses every chance to race.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok(CountingFlow)
        }
    })
    .flow("unused", move |_ctx| {
        let other_calls = Arc::clone(&other_calls);
        async move {
            other_calls.fetch_add(1, Ordering::SeqCst);
            Ok(CountingFlow)
        }
    })
    .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn factory_runs_once_under_100_concurrent_first_accesses() {
    let calls = Arc::new(AtomicUsize::new(0));
    let unused_calls = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    registry.register(counting_provider(
        Arc::clone(&calls),
        Arc::clone(&unused_calls),
    ));
    let registry = Arc::new(registry);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "registering builds nothing"
    );

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let registry = Arc::clone(&registry);
            tokio::spawn(async move { registry.get("acme").unwrap().flow("main").await.unwrap() })
        })
        .collect();
    let mut flows = Vec::new();
    for t in tasks {
        flows.push(t.await.unwrap());
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the factory must run exactly once"
    );
    assert!(
        flows.iter().all(|f| Arc::ptr_eq(f, &flows[0])),
        "every access shares one instance"
    );
    let later = registry.get("acme").unwrap().flow("main").await.unwrap();
    assert!(Arc::ptr_eq(&later, &flows[0]));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        unused_calls.load(Ordering::SeqCst),
        0,
        "a flow nobody asks for is never built"
    );
    assert!(!registry.get("acme").unwrap().is_flow_built("unused"));
}

#[tokio::test]
async fn a_failing_factory_is_retried_and_unknown_names_are_clear() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&attempts);
    let provider = Provider::builder(
        "acme",
        ProviderSection::from_code("acme", serde_json::json!({})),
    )
    .flow("flaky", move |_ctx| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(host::FlowError::config("first try fails"))
            } else {
                Ok(CountingFlow)
            }
        }
    })
    .build();
    let err = provider.flow("flaky").await.unwrap_err();
    assert!(format!("{err}").contains("flaky"), "{err}");
    provider.flow("flaky").await.expect("second access retries");
    assert_eq!(attempts.load(Ordering::SeqCst), 2);

    let err = provider.flow("nope").await.unwrap_err().to_string();
    assert!(
        err.contains("no flow `nope`") && err.contains("flaky"),
        "{err}"
    );
    let mut registry = Registry::new();
    registry.register(provider);
    let err = registry.get("nope").unwrap_err().to_string();
    assert!(
        err.contains("unknown provider `nope`") && err.contains("acme"),
        "{err}"
    );
}
