//! Operations: health, readiness, metrics, request ids, the OpenAPI documents, the dashboard
//! page, and a graceful shutdown that ends live streams.

use reqwest::Method;

use crate::helpers::{body, eventually, on_postgres, spawn_app, start, DbProxy, TestDb};

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let app = spawn_app().await;
    let res = app.anon(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let res = app.anon(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["status"], "ready");
    let res = app
        .anon(Method::GET, "/healthz")
        .header("x-request-id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["x-request-id"],
        "trace-me",
        "a caller's request id is kept"
    );
}

#[tokio::test]
async fn metrics_cover_requests_actors_live_and_auth() {
    let app = spawn_app().await;
    let squad = app.squad("Metered", &["Writer"]).await;
    let id = squad["id"].as_str().unwrap();
    app.get(&format!("/api/squads/{id}")).await;
    app.as_token("pk_wrong", Method::GET, "/api/squads")
        .send()
        .await
        .unwrap();
    let _ws = app.ws(&app.admin).await;
    let text = app
        .anon(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "squadron_http_requests_total{class=\"default\",route=\"/api/squads\",method=\"POST\",status=\"201\"}",
        "squadron_http_request_duration_seconds_bucket{class=\"default\",route=\"/api/squads/{id}\"",
        "squadron_actors_alive{kind=\"squad\"}",
        "squadron_actors_alive{kind=\"agent\"}",
        "squadron_events_published_total",
        "squadron_auth_failures_total{reason=\"invalid\"}",
        "squadron_live_connections{transport=\"ws\"}",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}");
    }
}

#[tokio::test]
async fn the_openapi_documents_cover_every_route() {
    let app = spawn_app().await;
    for path in ["/api/schema", "/api/v1/openapi.json"] {
        let res = app.anon(Method::GET, path).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let doc = body(res).await;
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        for (route, method) in [
            ("/api/squads", "get"),
            ("/api/squads", "post"),
            ("/api/squads/{id}", "get"),
            ("/api/squads/{id}/agents", "get"),
            ("/api/squads/{id}/agents", "post"),
            ("/api/live", "get"),
            ("/api/live/tickets", "post"),
            ("/api/squad/events", "get"),
            ("/api/v1/tokens", "get"),
            ("/api/v1/tokens", "post"),
            ("/api/v1/tokens/{id}/revoke", "post"),
            ("/api/v1/tokens/{id}", "delete"),
            ("/healthz", "get"),
            ("/readyz", "get"),
            ("/metrics", "get"),
            ("/api/setup/{squad_id}", "get"),
            ("/v1/models", "get"),
            ("/v1/modelmap", "get"),
            ("/v1/chat/completions", "post"),
            ("/v1/embeddings", "post"),
            ("/v1/core/providers", "get"),
            ("/v1/core/add/provider", "post"),
            ("/v1/core/delete/provider", "post"),
            ("/v1/core/models", "post"),
            ("/v1/core/add/model", "post"),
            ("/v1/core/delete/model", "post"),
            ("/v1/core/agents", "get"),
            ("/v1/core/add/agent", "post"),
            ("/v1/core/delete/agent", "post"),
            ("/api/v1/agents", "get"),
            ("/api/v1/agents/{id}", "get"),
            ("/api/v1/chat/{agent_id}", "post"),
            ("/api/v1/conversations", "get"),
            ("/api/v1/conversations/{id}", "get"),
            ("/api/v1/conversations/{id}", "patch"),
            ("/api/v1/conversations/{id}/messages", "get"),
            ("/v1/core/config", "get"),
            ("/v1/core/generate/prompt", "post"),
            ("/v1/core/agent-workflow", "post"),
            ("/v1/core/scrape-url", "post"),
            ("/api/squads/{id}/agents/{agent_id}", "patch"),
            ("/api/squads/{id}/agents/{agent_id}", "delete"),
            ("/api/heartbeat", "post"),
            ("/api/agents/me", "get"),
            ("/api/tasks", "get"),
            ("/api/tasks", "post"),
            ("/api/tasks/queue", "get"),
            ("/api/tasks/{id}", "get"),
            ("/api/tasks/{id}", "patch"),
            ("/api/tasks/{id}", "delete"),
            ("/api/tasks/{id}/claim", "post"),
            ("/api/tasks/{id}/comments", "get"),
            ("/api/tasks/{id}/comments", "post"),
            ("/api/tasks/{id}/assignees", "get"),
            ("/api/tasks/{id}/assignees", "post"),
            ("/api/tasks/{id}/assignees", "delete"),
            ("/api/notifications", "get"),
            ("/api/notifications/{id}", "patch"),
            ("/api/notifications/health", "get"),
            ("/api/notifications/stream", "get"),
            ("/api/squad/agents", "get"),
            ("/api/squad/tasks", "get"),
            ("/api/squad/activities", "get"),
            ("/api/documents", "get"),
            ("/api/documents", "post"),
            ("/api/documents/{id}", "get"),
            ("/api/documents/{id}", "patch"),
            ("/api/documents/{id}", "delete"),
            ("/api/watch-items", "get"),
            ("/api/watch-items", "post"),
            ("/api/watch-items/{id}", "get"),
            ("/api/watch-items/{id}", "patch"),
            ("/api/watch-items/{id}", "delete"),
        ] {
            assert!(
                paths.get(route).and_then(|p| p.get(method)).is_some(),
                "{path} lacks {method} {route}"
            );
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for schema in [
            "SetupView",
            "HeartbeatInput",
            "HeartbeatView",
            "TaskView",
            "CreateTask",
            "PatchTask",
            "CommentView",
            "NotificationView",
            "DocumentView",
            "WatchItemView",
            "ActivityView",
            "CreateSquad",
            "SquadView",
            "AgentView",
            "CreateToken",
            "TokenView",
        ] {
            assert!(schemas.contains_key(schema), "{path} lacks schema {schema}");
        }
    }
}

/// A schema that says nothing of its fields: no `$ref`, no composition, no properties.
fn untyped(schema: &serde_json::Value) -> bool {
    if ["$ref", "allOf", "oneOf", "anyOf"]
        .iter()
        .any(|k| schema.get(k).is_some())
    {
        return false;
    }
    match schema["type"].as_str() {
        Some("array") => untyped(&schema["items"]),
        Some("object") | None => {
            schema["properties"]
                .as_object()
                .is_none_or(|p| p.is_empty())
                && schema.get("additionalProperties").is_none()
        }
        _ => false,
    }
}

/// Clients are generated from the document, so every JSON body it describes, sent or received,
/// names its fields: a route answering a bare `Object` (or nothing) is a client that cannot
/// read the reply.
#[tokio::test]
async fn every_operation_types_its_request_and_reply_bodies() {
    let app = spawn_app().await;
    let doc = body(app.anon(Method::GET, "/api/schema").send().await.unwrap()).await;
    let mut untyped_bodies = Vec::new();
    for (route, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let named = format!("{} {route}", method.to_uppercase());
            if let Some(request) = op.get("requestBody") {
                for (kind, content) in request["content"].as_object().unwrap() {
                    if untyped(&content["schema"]) {
                        untyped_bodies.push(format!("{named}: request {kind}"));
                    }
                }
            }
            for (status, reply) in op["responses"].as_object().unwrap() {
                if !status.starts_with('2') || status == "204" {
                    continue;
                }
                let Some(content) = reply["content"].as_object() else {
                    untyped_bodies.push(format!("{named}: {status} has no content"));
                    continue;
                };
                for (kind, content) in content {
                    if kind.starts_with("application/json") && untyped(&content["schema"]) {
                        untyped_bodies.push(format!("{named}: {status} {kind}"));
                    }
                }
            }
        }
    }
    assert!(
        untyped_bodies.is_empty(),
        "untyped bodies: {untyped_bodies:#?}"
    );
}

#[tokio::test]
async fn the_dashboard_page_is_served() {
    let app = spawn_app().await;
    let res = app.anon(Method::GET, "/").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(res.text().await.unwrap().contains("Squadron"));
}

#[tokio::test]
async fn graceful_shutdown_ends_open_streams() {
    let app = spawn_app().await;
    let squad = app.squad("Team", &[]).await;
    let id = squad["id"].as_str().unwrap().to_owned();
    let mut ws = app.ws(&app.admin).await;
    ws.subscribe(&id, None).await;
    let mut sse = app.sse(&app.admin, &id, None).await;
    sse.next().await;
    // Would hang (and fail on its timeout) if either stream kept the server up.
    app.stop().await;
}

#[tokio::test]
async fn a_lost_database_is_a_503_not_a_500_and_recovers() {
    if !on_postgres() {
        // SQLite is a file in-process: there is no connection to cut.
        eprintln!("skipped on SQLite: needs a database behind a network connection");
        return;
    }
    let db = TestDb::fresh().await;
    let proxy = DbProxy::start(&db.url).await;
    let url = proxy.url.clone();
    let app = start(db, None, move |c| c.database_url = Some(url)).await;
    assert_eq!(app.get("/api/squads").await.status(), 200);

    proxy.cut();
    let res = app.anon(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(res.status(), 503);
    let res = app.get("/api/squads").await;
    assert_eq!(res.status(), 503);
    assert_eq!(body(res).await["code"], "SERVICE_UNAVAILABLE");

    proxy.restore();
    eventually("the server is ready again", || async {
        app.anon(Method::GET, "/readyz")
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
    assert_eq!(app.get("/api/squads").await.status(), 200);
}
