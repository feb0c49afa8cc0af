//! The one policy for requests the server makes outward (`src/outbound.rs`): private
//! addresses for admins only (or nobody, if the operator says so), checked when a URL is
//! stored and again at every call; no redirects; upstream bodies not reflected; the
//! provider's key failures are the provider's; stored URLs masked; and the seed's embedding
//! rule held for what is served.

use reqwest::Method;
use serde_json::{json, Value};
use squadron_actors::store::{self, gateway, tokens::Role};
use uuid::Uuid;

use crate::helpers::{body, eventually, spawn_app, spawn_with, TestApp};
use crate::upstream::{self, FakeUpstream};

async fn post_as(app: &TestApp, token: &str, path: &str, json: Value) -> reqwest::Response {
    app.as_token(token, Method::POST, path)
        .json(&json)
        .send()
        .await
        .unwrap()
}

fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The fake's origin, `http://127.0.0.1:PORT`.
fn site(fake: &FakeUpstream) -> String {
    fake.base_url.trim_end_matches("/v1").to_owned()
}

/// Adds provider `name` at `base_url` and a model for each `(name, upstream, kind, dims)`.
async fn provider(app: &TestApp, name: &str, base_url: &str, models: &[(&str, &str, &str, i32)]) {
    let res = app
        .post(
            "/v1/core/add/provider",
            json!({ "name": name, "base_url": base_url, "api_key": "sk-test-0123456789abcd" }),
        )
        .await;
    assert_eq!(res.status(), 200, "provider {name}");
    for (model, upstream_model, kind, dims) in models {
        let mut body_ =
            json!({ "name": model, "provider": name, "model": upstream_model, "kind": kind });
        if *dims > 0 {
            body_["dimensions"] = json!(dims);
        }
        let res = app.post("/v1/core/add/model", body_).await;
        assert_eq!(res.status(), 200, "model {model}");
    }
}

/// The database of `app`, and its `default` organization.
async fn db_of(app: &TestApp) -> (sea_orm::DatabaseConnection, Uuid) {
    let db = store::connect(app.config.database_url.as_ref().unwrap())
        .await
        .unwrap();
    let org = store::orgs::find_by_name(&db, "default")
        .await
        .unwrap()
        .unwrap();
    (db, org.id)
}

/// A provider row written straight to the store, as one stored before the policy (or whose
/// name resolves elsewhere since) would be.
async fn stored_provider(app: &TestApp, name: &str, base_url: &str, allow_private: bool) {
    let (db, org) = db_of(app).await;
    gateway::insert_provider(
        &db,
        org,
        gateway::NewProvider {
            name: name.into(),
            base_url: base_url.into(),
            api_key_sealed: None,
            headers_sealed: None,
            allow_private,
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn members_cannot_point_providers_at_private_addresses_admins_can() {
    let app = spawn_app().await;
    let fake = upstream::start().await;
    let member = app.org_token("default", Role::Member).await;
    let port = fake
        .base_url
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches("/v1");
    for base_url in [
        fake.base_url.clone(),
        format!("http://localhost:{port}/v1"),
        format!("http://[::1]:{port}/v1"),
        "http://169.254.169.254/latest".to_owned(),
    ] {
        let res = post_as(
            &app,
            &member,
            "/v1/core/add/provider",
            json!({ "name": "local", "base_url": base_url }),
        )
        .await;
        assert_eq!(res.status(), 400, "{base_url}");
        let text = message(&body(res).await);
        assert!(text.contains("private"), "{text}");
    }
    // A query or fragment would swallow the paths appended to the base URL.
    for base_url in [
        format!("{}?x=", fake.base_url),
        format!("{}#x", fake.base_url),
    ] {
        let res = app
            .post(
                "/v1/core/add/provider",
                json!({ "name": "local", "base_url": base_url }),
            )
            .await;
        assert_eq!(res.status(), 400, "{base_url}");
        assert!(message(&body(res).await).contains("query or fragment"));
    }

    // An admin's local provider is fine, and its members use it.
    provider(
        &app,
        "local",
        &fake.base_url,
        &[("gpt", "gpt-fake", "chat", 0)],
    )
    .await;
    let res = post_as(
        &app,
        &member,
        "/v1/core/models",
        json!({ "provider": "local" }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let models = body(res).await;
    assert_eq!(models["object"], "list");
    // Only the model ids come back, never the rest of what the provider answered.
    assert_eq!(
        models["data"][0],
        json!({ "id": "gpt-fake", "object": "model", "owned_by": "local" })
    );
    let res = post_as(
        &app,
        &member,
        "/v1/chat/completions",
        json!({ "model": "gpt", "messages": [{ "role": "user", "content": "hi there" }] }),
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_stored_provider_is_checked_again_at_every_call() {
    let app = spawn_app().await;
    let fake = upstream::start().await;
    let port = fake
        .base_url
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches("/v1");
    // Not granted private addresses when stored: a literal address, and a name that resolves
    // to loopback now (as a public name rebound to 127.0.0.1 would).
    stored_provider(&app, "literal", &fake.base_url, false).await;
    stored_provider(
        &app,
        "rebound",
        &format!("http://localhost:{port}/v1"),
        false,
    )
    .await;
    // Stored before base URLs with a query were refused.
    stored_provider(&app, "query", &format!("{}?x=", fake.base_url), true).await;
    for name in ["literal", "rebound", "query"] {
        let res = app
            .post("/v1/core/models", json!({ "provider": name }))
            .await;
        assert_eq!(res.status(), 502, "{name}");
        let text = res.text().await.unwrap();
        assert!(!text.contains("gpt-fake"), "{name}: {text}");
    }
    assert!(
        fake.recorder.requests.lock().unwrap().is_empty(),
        "nothing reached the local service"
    );
}

#[tokio::test]
async fn the_operator_can_forbid_private_upstreams_for_everyone() {
    let app = spawn_with(|c| c.upstream_forbid_private = true).await;
    let fake = upstream::start().await;
    let res = app
        .post(
            "/v1/core/add/provider",
            json!({ "name": "local", "base_url": fake.base_url }),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(message(&body(res).await).contains("--upstream-forbid-private"));
    let res = app
        .post(
            "/v1/core/add/server",
            json!({ "name": "mcp", "url": format!("{}/mcp", site(&fake)) }),
        )
        .await;
    assert_eq!(res.status(), 400);
    let res = app
        .post(
            "/v1/core/scrape-url",
            json!({ "url": format!("{}/page", site(&fake)) }),
        )
        .await;
    assert_eq!(res.status(), 400);
    // A provider an admin stored before the operator said so is refused at call time.
    stored_provider(&app, "earlier", &fake.base_url, true).await;
    let res = app
        .post("/v1/core/models", json!({ "provider": "earlier" }))
        .await;
    assert_eq!(res.status(), 502);
    assert!(fake.recorder.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn scrape_and_mcp_servers_follow_the_same_policy() {
    let app = spawn_app().await;
    let fake = upstream::start().await;
    let member = app.org_token("default", Role::Member).await;
    let page = json!({ "url": format!("{}/page", site(&fake)) });
    let res = post_as(&app, &member, "/v1/core/scrape-url", page.clone()).await;
    assert_eq!(res.status(), 400, "a member's scrape stays public");
    let res = app.post("/v1/core/scrape-url", page).await;
    assert_eq!(res.status(), 200, "an admin may read a local page");
    assert_eq!(body(res).await["title"], "Fake page");

    let server = json!({ "name": "mcp", "url": format!("{}/mcp", site(&fake)) });
    let res = post_as(&app, &member, "/v1/core/add/server", server.clone()).await;
    assert_eq!(res.status(), 400, "a member's MCP server stays public");
    let res = app.post("/v1/core/add/server", server).await;
    assert_eq!(res.status(), 200, "an admin may add a local MCP server");
}

#[tokio::test]
async fn redirects_from_an_upstream_are_not_followed() {
    let app = spawn_app().await;
    let fake = upstream::start().await;
    let base = format!("{}/r307/v1", site(&fake));
    provider(&app, "hops", &base, &[("gpt", "gpt-fake", "chat", 0)]).await;
    for stream in [false, true] {
        let res = app
            .post("/v1/chat/completions", crate::gateway::chat("gpt", stream))
            .await;
        assert_eq!(res.status(), 502, "stream: {stream}");
        assert!(message(&body(res).await).contains("redirect"));
    }
    let res = app
        .post("/v1/core/models", json!({ "provider": "hops" }))
        .await;
    assert_eq!(res.status(), 502);
    assert!(
        fake.recorder.requests.lock().unwrap().is_empty(),
        "the body was not sent on to where the redirect pointed"
    );
}

#[tokio::test]
async fn a_provider_rejecting_its_key_is_a_502_naming_the_provider() {
    let app = spawn_app().await;
    let fake = upstream::start().await;
    provider(
        &app,
        "fake",
        &fake.base_url,
        &[
            ("keyless", "fail-401", "chat", 0),
            ("chatty", "fail-400-long", "chat", 0),
        ],
    )
    .await;
    for stream in [false, true] {
        let res = app
            .post(
                "/v1/chat/completions",
                crate::gateway::chat("keyless", stream),
            )
            .await;
        assert_eq!(res.status(), 502, "stream: {stream}");
        let error = body(res).await;
        assert!(
            message(&error).contains("the provider fake rejected its API key"),
            "{error}"
        );
        assert!(!message(&error).contains("sk-k"), "{error}");
    }
    // Other refusals keep their status, their message cut to its first sentence.
    let res = app
        .post(
            "/v1/chat/completions",
            crate::gateway::chat("chatty", false),
        )
        .await;
    assert_eq!(res.status(), 400);
    let error = message(&body(res).await);
    assert!(error.contains("This request is refused."), "{error}");
    assert!(!error.contains("SECRET-NOTES"), "{error}");
}

#[tokio::test]
async fn secrets_in_stored_urls_are_masked_in_every_read() {
    let app = spawn_app().await;
    let fake = upstream::start().await;
    let with_user = fake.base_url.replace("http://", "http://user:hunter2pass@");
    let res = app
        .post(
            "/v1/core/add/provider",
            json!({ "name": "userinfo", "base_url": with_user }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let added = body(res).await;
    assert_eq!(
        added["base_url"],
        fake.base_url.replace("http://", "http://***@")
    );
    stored_provider(
        &app,
        "query",
        &format!("{}?api-key=querysecret123", fake.base_url),
        true,
    )
    .await;
    let listed = app.get("/v1/core/providers").await.text().await.unwrap();
    assert!(listed.contains("api-key=***"), "{listed}");
    assert!(
        !listed.contains("hunter2pass") && !listed.contains("querysecret123"),
        "{listed}"
    );

    let url = format!("{}/mcp?token=mcpsecret456", site(&fake));
    let res = app
        .post("/v1/core/add/server", json!({ "name": "mcp", "url": url }))
        .await;
    assert_eq!(res.status(), 200);
    assert!(!res.text().await.unwrap().contains("mcpsecret456"));
    eventually("the MCP server's first attempt ends", || async {
        let servers = body(app.get("/v1/core/servers").await).await;
        servers["data"][0]["status"] != "connecting"
    })
    .await;
    let servers = app.get("/v1/core/servers").await.text().await.unwrap();
    assert!(servers.contains("token=***"), "{servers}");
    assert!(!servers.contains("mcpsecret456"), "{servers}");
}

#[tokio::test]
async fn text_embedding_3_large_is_refused_whatever_it_is_called() {
    let app = spawn_app().await;
    let fake = upstream::start().await;
    provider(&app, "fake", &fake.base_url, &[]).await;
    for (name, upstream_model) in [
        ("text-embedding-3-large", "embed-fake"),
        ("big", "text-embedding-3-large"),
    ] {
        let res = app
            .post(
                "/v1/core/add/model",
                json!({ "name": name, "provider": "fake", "model": upstream_model, "kind": "embedding" }),
            )
            .await;
        assert_eq!(res.status(), 400, "{name} -> {upstream_model}");
        assert!(message(&body(res).await).contains("text-embedding-3-large"));
    }
    // One stored before this rule is refused when called.
    let (db, org) = db_of(&app).await;
    let provider_id = gateway::provider_by_name(&db, org, "fake")
        .await
        .unwrap()
        .unwrap()
        .id;
    gateway::insert_model(
        &db,
        org,
        gateway::NewModel {
            name: "legacy-big".into(),
            provider_id,
            upstream_model: "text-embedding-3-large".into(),
            kind: "embedding".into(),
            dimensions: None,
        },
    )
    .await
    .unwrap();
    let res = app
        .post(
            "/v1/embeddings",
            json!({ "model": "legacy-big", "input": "hello" }),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(fake.recorder.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn vectors_of_the_wrong_size_fail_the_call_and_the_ingest() {
    let app = spawn_with(|c| c.ingest_backoff_ms = 10).await;
    let fake = upstream::start().await;
    // `embed-fake` answers 8 numbers; this model says 3072.
    provider(
        &app,
        "fake",
        &fake.base_url,
        &[("wide", "embed-fake", "embedding", 3072)],
    )
    .await;
    let res = app
        .post(
            "/v1/embeddings",
            json!({ "model": "wide", "input": "hello" }),
        )
        .await;
    assert_eq!(res.status(), 502);
    let error = message(&body(res).await);
    assert!(
        error.contains("8 dimensions") && error.contains("3072"),
        "{error}"
    );

    let form = reqwest::multipart::Form::new()
        .text("purpose", "assistants")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"some words to embed".to_vec()).file_name("a.txt"),
        );
    let res = app
        .req(Method::POST, "/v1/files")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let file = body(res).await["id"].as_str().unwrap().to_owned();
    let res = app
        .post(
            "/v1/vector_stores",
            json!({ "file_ids": [file], "embedding_model": "wide" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let vs = body(res).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/vector_stores/{vs}/files/{file}");
    eventually("the file's ingest ends", || async {
        body(app.get(&path).await).await["status"] != "in_progress"
    })
    .await;
    let entry = body(app.get(&path).await).await;
    assert_eq!(entry["status"], "failed", "{entry}");
    assert!(
        entry["last_error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("dimensions"),
        "{entry}"
    );
}
