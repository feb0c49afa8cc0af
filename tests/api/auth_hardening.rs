//! Authentication under attack and under load: failed attempts throttled per client address
//! before any look-up, unknown credentials answered from memory, one credential per request,
//! a look-up that fails is a 503 (never a 401), and `/metrics` that names no account's things.

use reqwest::Method;
use serde_json::{json, Value};
use squadron_actors::store::tokens::Role;
use uuid::Uuid;

use crate::helpers::{body, on_postgres, spawn_with, start, DbProxy, TestApp, TestDb};
use crate::upstream;

/// A request from another loopback address than the default client's 127.0.0.1.
fn from(addr: &str, app: &TestApp, token: &str, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::builder()
        .local_address(addr.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
        .get(app.url(path))
        .bearer_auth(token)
}

async fn status_and_body(req: reqwest::RequestBuilder) -> (u16, Value, Option<String>) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, body(res).await, retry_after)
}

#[tokio::test]
async fn failed_authentication_is_throttled_per_address_before_any_look_up() {
    let app = spawn_with(|c| {
        c.auth_fail_burst = 3;
        c.auth_fail_per_minute = 2;
    })
    .await;
    // Known before the failures: a cached valid token is never throttled.
    assert_eq!(app.get("/api/squads").await.status(), 200);
    let unused = app.org_token("default", Role::Member).await;

    for i in 0..3 {
        let res = app
            .as_token(&format!("pk_guess{i}"), Method::GET, "/api/squads")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "attempt {i} is within the burst");
    }
    let (status, err, retry_after) =
        status_and_body(app.as_token("pk_guess3", Method::GET, "/api/squads")).await;
    assert_eq!(status, 429);
    assert_eq!(err["code"], "RATE_LIMITED");
    let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=30).contains(&wait), "one interval, 30 s: {wait}");

    let (status, err, retry_after) =
        status_and_body(app.as_token("msq-guess", Method::GET, "/v1/models")).await;
    assert_eq!(status, 429);
    assert_eq!(err["error"]["type"], "rate_limit_error");
    assert_eq!(err["error"]["code"], "rate_limited");
    assert!(retry_after.is_some());

    // Refused before the look-up: even a valid token not yet seen waits with the address.
    let (status, _, _) = status_and_body(app.as_token(&unused, Method::GET, "/api/squads")).await;
    assert_eq!(status, 429, "no look-up for a throttled address");
    assert_eq!(app.get("/api/squads").await.status(), 200);

    // Another address has its own budget.
    let (status, _, _) = status_and_body(from("127.0.0.2", &app, "pk_other", "/api/squads")).await;
    assert_eq!(status, 401);
    let (status, _, _) = status_and_body(from("127.0.0.2", &app, &unused, "/api/squads")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn credentials_are_unambiguous() {
    let app = spawn_with(|_| {}).await;
    let admin = app.admin.as_str();
    for (why, headers) in [
        (
            "an empty x-api-key does not hide the Bearer",
            [
                ("x-api-key", String::new()),
                ("authorization", format!("Bearer {admin}")),
            ],
        ),
        (
            "an empty Bearer does not hide x-api-key",
            [
                ("authorization", "Bearer ".into()),
                ("x-api-key", admin.into()),
            ],
        ),
        (
            "the same credential twice is one",
            [
                ("authorization", format!("Bearer {admin}")),
                ("x-api-key", admin.into()),
            ],
        ),
    ] {
        let mut req = app.anon(Method::GET, "/api/squads");
        for (name, value) in headers {
            req = req.header(name, value);
        }
        assert_eq!(req.send().await.unwrap().status(), 200, "{why}");
    }

    let other = app.org_token("default", Role::Admin).await;
    let (status, err, _) = status_and_body(
        app.req(Method::GET, "/api/squads")
            .header("x-api-key", &other),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["code"], "VALIDATION_ERROR");
    assert!(err["error"]
        .as_str()
        .unwrap()
        .contains("two different credentials"));
    let (status, err, _) = status_and_body(
        app.req(Method::GET, "/v1/models")
            .header("x-api-key", "msq-something-else"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["type"], "invalid_request_error");

    let (status, err, _) = status_and_body(
        app.anon(Method::GET, "/api/squads")
            .header("x-api-key", " ")
            .header("authorization", "Bearer"),
    )
    .await;
    assert_eq!(status, 401);
    assert!(err["error"].as_str().unwrap().contains("missing API key"));
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let app = spawn_with(|c| c.metrics_token = Some("scrape-me-0123".into())).await;
    let res = app.anon(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(body(res).await["code"], "UNAUTHORIZED");
    let res = app.req(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(res.status(), 401, "an API token is not the metrics token");
    let res = app
        .as_token("scrape-me-0123", Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("squadron_http_requests_total"));
}

#[tokio::test]
async fn metrics_name_no_accounts_models_squads_agents_or_tools() {
    let app = spawn_with(|_| {}).await;
    let fake = upstream::start().await;
    let marker = Uuid::new_v4().simple().to_string()[..12].to_owned();
    let (model, squad, agent) = (
        format!("model-{marker}"),
        format!("squad-{marker}"),
        format!("agent-{marker}"),
    );
    let provider = format!("provider-{marker}");
    let res = app
        .post(
            "/v1/core/add/provider",
            json!({ "name": provider, "base_url": fake.base_url, "api_key": "sk-test-0123456789abcd" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .post(
            "/v1/core/add/model",
            json!({ "name": model, "provider": provider, "model": "gpt-fake", "kind": "chat" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    for stream in [false, true] {
        let res = app
            .post(
                "/v1/chat/completions",
                json!({ "model": model, "stream": stream, "messages": [{ "role": "user", "content": "hi" }] }),
            )
            .await;
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
    }
    app.squad(&squad, &[&agent]).await;

    let text = app.metrics_text().await;
    assert!(
        !text.contains(&marker),
        "/metrics names an account's model, provider, squad or agent"
    );
    for series in [
        "squadron_gateway_tokens_total{direction=\"out\"}",
        "squadron_gateway_requests_total{status=\"200\"}",
    ] {
        assert!(text.contains(series), "/metrics lacks {series}");
    }
    // A method a client made up is not a label either.
    let res = app
        .req(
            Method::from_bytes(format!("M{marker}").as_bytes()).unwrap(),
            "/api/squads",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert!(!app.metrics_text().await.contains(&marker));
}

/// A server whose credential look-ups can be made to fail: on PostgreSQL its connection is
/// cut (a proxy in between), on SQLite (a file, nothing to cut) the tables are moved away.
struct Breakable {
    app: TestApp,
    proxy: Option<DbProxy>,
}

impl Breakable {
    async fn start() -> Breakable {
        let db = TestDb::fresh().await;
        if !on_postgres() {
            return Breakable {
                app: start(db, None, |_| {}).await,
                proxy: None,
            };
        }
        let proxy = DbProxy::start(&db.url).await;
        let url = proxy.url.clone();
        Breakable {
            app: start(db, None, move |c| c.database_url = Some(url)).await,
            proxy: Some(proxy),
        }
    }

    async fn break_look_ups(&self) {
        use sea_orm::ConnectionTrait;
        match &self.proxy {
            Some(proxy) => proxy.cut(),
            None => {
                let db =
                    squadron_actors::store::connect(self.app.config.database_url.as_ref().unwrap())
                        .await
                        .unwrap();
                for table in ["api_tokens", "squad_keys"] {
                    db.execute_unprepared(&format!("ALTER TABLE {table} RENAME TO {table}_away"))
                        .await
                        .unwrap();
                }
            }
        }
    }
}

#[tokio::test]
async fn a_look_up_that_fails_is_a_503_never_a_401() {
    let broken = Breakable::start().await;
    let app = &broken.app;
    let valid = app.org_token("default", Role::Admin).await;
    broken.break_look_ups().await;
    for (path, token) in [("/api/squads", &valid), ("/v1/models", &valid)] {
        let (status, err, _) = status_and_body(app.as_token(token, Method::GET, path)).await;
        assert_eq!(
            status, 503,
            "{path}: a valid token the database could not check: {err}"
        );
    }
    let (status, err, _) = status_and_body(app.as_token(&valid, Method::GET, "/v1/models")).await;
    assert_eq!(status, 503);
    assert_eq!(err["error"]["type"], "server_error");
    let (status, _, _) =
        status_and_body(app.as_token("mc_x_y", Method::GET, "/api/agents/me")).await;
    assert_eq!(status, 503, "a squad key the database could not check");
}

#[tokio::test]
async fn a_recent_unknown_credential_is_answered_from_memory() {
    let broken = Breakable::start().await;
    let app = &broken.app;
    let mut made = Vec::new();
    for name in ["to-delete", "to-revoke"] {
        let res = app.post("/api/v1/tokens", json!({ "name": name })).await;
        let token = body(res).await["data"].clone();
        let secret = token["token"].as_str().unwrap().to_owned();
        let (status, _, _) =
            status_and_body(app.as_token(&secret, Method::GET, "/api/squads")).await;
        assert_eq!(status, 200);
        made.push((token["id"].as_str().unwrap().to_owned(), secret));
    }
    let [(deleted_id, deleted), (revoked_id, revoked)] = <[_; 2]>::try_from(made).unwrap();
    let res = app
        .req(Method::DELETE, &format!("/api/v1/tokens/{deleted_id}"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let res = app
        .req(Method::POST, &format!("/api/v1/tokens/{revoked_id}/revoke"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());

    let unknown = ["pk_never_issued", "msq-never-issued", "mc_never_issued"];
    for token in unknown
        .iter()
        .copied()
        .chain([deleted.as_str(), revoked.as_str()])
    {
        let res = app
            .as_token(token, Method::GET, "/api/squads")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{token} is refused");
    }
    broken.break_look_ups().await;
    for _ in 0..3 {
        for token in unknown.iter().copied().chain([deleted.as_str()]) {
            let (status, err, _) =
                status_and_body(app.as_token(token, Method::GET, "/api/squads")).await;
            assert_eq!(
                status, 401,
                "{token} is refused from memory, with no look-up: {err}"
            );
        }
        let (status, err, _) =
            status_and_body(app.as_token(&revoked, Method::GET, "/v1/models")).await;
        assert_eq!(status, 401);
        assert!(err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"));
    }
    let (status, _, _) =
        status_and_body(app.as_token("pk_not_seen_yet", Method::GET, "/api/squads")).await;
    assert_eq!(status, 503, "one not seen before needs the database");
}
