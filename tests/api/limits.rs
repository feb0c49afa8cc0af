//! Rate limits per credential and route class, with the headers clients need to back off.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{body, spawn_with};

#[tokio::test]
async fn a_credential_over_its_limit_gets_429_with_retry_after() {
    let app = spawn_with(|c| c.rate_default = 3).await;
    for remaining in ["2", "1", "0"] {
        let res = app.get("/api/squads").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-ratelimit-limit"], "3");
        assert_eq!(res.headers()["x-ratelimit-remaining"], remaining);
    }
    let res = app.get("/api/squads").await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "retry after {retry} s");
    let err = body(res).await;
    assert_eq!(err["code"], "RATE_LIMITED");

    // Another credential of the same organization has its own bucket.
    let res = app.post("/api/v1/tokens", json!({ "name": "other" })).await;
    assert_eq!(
        res.status(),
        429,
        "the admin's bucket is empty for SquadOS too (same class)"
    );
    let other = app
        .org_token("default", squadron_actors::store::tokens::Role::Member)
        .await;
    let res = app
        .as_token(&other, Method::GET, "/api/squads")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
