//! Leases over one store shared by "replicas" (two `Windows` on the same counters): the store
//! is asked once per lease, the replicas together never pass a limit, and one replica alone
//! admits exactly what the store would.

use std::sync::{Arc, Mutex};

use super::*;
use crate::limits::counters::Counters;

const START: i64 = 1_800_000_000;

fn store() -> Arc<Counters> {
    Arc::new(Counters::Memory(Mutex::default()))
}

fn rpm(limit: i64) -> RateLimits {
    RateLimits {
        requests: Some(limit),
        tokens: None,
    }
}

/// The store's own counts for the scope, read by adding nothing.
async fn in_store(counters: &Counters) -> (i64, i64) {
    let count = counters
        .take_window("key:k", START, 60, (0, 0), (i64::MAX, i64::MAX))
        .await
        .unwrap();
    (count.requests, count.tokens)
}

#[tokio::test]
async fn a_lease_serves_many_requests_from_one_store_call() {
    let counters = store();
    let windows = Windows::new(Arc::clone(&counters), 60, 0.1);
    let first = windows.take("key:k", START, 5, rpm(100)).await.unwrap();
    assert!(first.admitted);
    assert_eq!(
        first.requests, 1,
        "the headers count this request, not the lease"
    );
    assert_eq!(
        in_store(&counters).await.0,
        11,
        "one request and a lease of 10"
    );
    for n in 2..=11 {
        let count = windows.take("key:k", START, 5, rpm(100)).await.unwrap();
        assert!(count.admitted);
        assert_eq!(count.requests, n);
    }
    assert_eq!(in_store(&counters).await.0, 11, "spent from the lease");
    windows.take("key:k", START, 5, rpm(100)).await.unwrap();
    assert_eq!(in_store(&counters).await.0, 22, "the next lease");
    // A new window starts a new lease.
    let next = windows
        .take("key:k", START + 60, 5, rpm(100))
        .await
        .unwrap();
    assert_eq!(next.requests, 1);
}

#[tokio::test]
async fn replicas_together_never_pass_the_limit_and_one_alone_reaches_it() {
    let counters = store();
    let a = Windows::new(Arc::clone(&counters), 60, 0.1);
    let b = Windows::new(Arc::clone(&counters), 60, 0.1);
    let mut admitted = 0;
    for turn in 0..60 {
        let replica = if turn % 3 == 0 { &a } else { &b };
        if replica
            .take("key:k", START, 1, rpm(50))
            .await
            .unwrap()
            .admitted
        {
            admitted += 1;
        }
    }
    assert!(admitted <= 50, "{admitted} admitted");
    assert!(
        admitted >= 45,
        "{admitted}: at most one lease of 5 left unspent"
    );
    assert!(in_store(&counters).await.0 <= 50);

    let alone = Windows::new(store(), 60, 0.1);
    let mut admitted = 0;
    for _ in 0..60 {
        if alone
            .take("key:k", START, 1, rpm(50))
            .await
            .unwrap()
            .admitted
        {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 50, "a single replica admits exactly the limit");
}

#[tokio::test]
async fn tokens_follow_the_estimate_then_the_real_usage() {
    let counters = store();
    let windows = Windows::new(Arc::clone(&counters), 60, 0.1);
    let limits = RateLimits {
        requests: None,
        tokens: Some(100),
    };
    // 30 + a lease of 10 in the store; 30 counted.
    let first = windows.take("key:k", START, 30, limits).await.unwrap();
    assert_eq!((first.admitted, first.tokens), (true, 30));
    assert_eq!(in_store(&counters).await.1, 40);
    // It used 10: 20 come back to this replica, the store is not told.
    assert_eq!(windows.settle("key:k", START, -20), None);
    assert_eq!(in_store(&counters).await.1, 40);
    let second = windows.take("key:k", START, 30, limits).await.unwrap();
    assert_eq!((second.admitted, second.tokens), (true, 40));
    assert_eq!(in_store(&counters).await.1, 40, "served from the lease");
    // It used 50 beyond its estimate with the lease spent: all 50 go to the store.
    assert_eq!(windows.settle("key:k", START, 50), Some(50));
    // Too large for the limit on its own: refused without touching the store.
    let huge = Windows::new(Arc::clone(&counters), 60, 0.1);
    let refused = huge.take("key:k", START + 60, 101, limits).await.unwrap();
    assert!(!refused.admitted);
    let count = counters
        .take_window("key:k", START + 60, 60, (0, 0), (i64::MAX, i64::MAX))
        .await
        .unwrap();
    assert_eq!(count.tokens, 0);
}

#[tokio::test]
async fn a_refused_budget_gives_the_request_back_to_the_lease() {
    let counters = store();
    let windows = Windows::new(Arc::clone(&counters), 60, 0.1);
    assert!(
        windows
            .take("key:k", START, 1, rpm(10))
            .await
            .unwrap()
            .admitted
    );
    windows.give_back("key:k", START, 1).await;
    let again = windows.take("key:k", START, 1, rpm(10)).await.unwrap();
    assert_eq!(again.requests, 1);
    assert_eq!(
        in_store(&counters).await.0,
        2,
        "one request and a lease of 1"
    );
}

#[tokio::test]
async fn without_a_fraction_every_request_goes_to_the_store() {
    let counters = store();
    let windows = Windows::new(Arc::clone(&counters), 60, 0.0);
    for _ in 0..3 {
        windows.take("key:k", START, 7, rpm(100)).await.unwrap();
    }
    assert_eq!(in_store(&counters).await, (3, 21));
    assert_eq!(windows.settle("key:k", START, -5), Some(-5));
}
