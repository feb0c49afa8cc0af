//! Organization API tokens (seed 001): made once, listed by prefix, revoked for good, counted.

use reqwest::Method;
use serde_json::json;
use squadron_actors::store::tokens::Role;

use crate::helpers::{body, spawn_app, spawn_with, start};

async fn create_token(
    app: &crate::helpers::TestApp,
    body_json: serde_json::Value,
) -> serde_json::Value {
    let res = app.post("/api/v1/tokens", body_json).await;
    assert_eq!(res.status(), 201);
    body(res).await["data"].clone()
}

#[tokio::test]
async fn a_token_is_shown_once_then_listed_by_prefix_only() {
    let app = spawn_app().await;
    let made = create_token(&app, json!({ "name": "Marketing site" })).await;
    let secret = made["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pk_") && secret.len() > 40, "{secret}");
    assert_eq!(made["prefix"], format!("{}...", &secret[..11]));
    assert_eq!(made["status"], "active");
    assert_eq!(made["role"], "member");

    let res = app.get("/api/v1/tokens").await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        !text.contains(&secret),
        "the list never shows a whole token"
    );
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["meta"]["count"], 2, "bootstrap admin + new token");
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == made["id"])
        .unwrap()
        .clone();
    assert_eq!(row["name"], "Marketing site");
    assert_eq!(row["calls"], 0);
    assert!(row["last_used_at"].is_null());
    assert!(row.get("token").is_none() && row.get("token_hash").is_none());

    // Usable both ways, on Mission Control and SquadOS routes; each call counted.
    let by_header = app
        .anon(Method::GET, "/api/squads")
        .header("x-api-key", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);
    let by_bearer = app
        .as_token(&secret, Method::GET, "/api/squads")
        .send()
        .await
        .unwrap();
    assert_eq!(by_bearer.status(), 200);
    let list = body(app.get("/api/v1/tokens").await).await;
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == made["id"])
        .unwrap()
        .clone();
    assert_eq!(row["calls"], 2);
    assert!(row["last_used_at"].is_string());
}

#[tokio::test]
async fn msq_tokens_work_like_pk_tokens() {
    let app = spawn_app().await;
    let made = create_token(
        &app,
        json!({ "name": "sdk", "format": "msq", "role": "admin" }),
    )
    .await;
    let secret = made["token"].as_str().unwrap();
    assert!(secret.starts_with("msq-"));
    let res = app
        .as_token(secret, Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "an admin msq token manages tokens");
}

#[tokio::test]
async fn only_admins_manage_tokens() {
    let app = spawn_app().await;
    let member = create_token(&app, json!({ "name": "member" })).await;
    let member = member["token"].as_str().unwrap();
    for (method, path) in [
        (Method::POST, "/api/v1/tokens"),
        (Method::GET, "/api/v1/tokens"),
    ] {
        let res = app
            .as_token(member, method, path)
            .json(&json!({ "name": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(body(res).await["code"], "FORBIDDEN");
    }
}

#[tokio::test]
async fn bad_token_requests_are_refused_with_reasons() {
    let app = spawn_app().await;
    for (payload, needle) in [
        (json!({ "name": "  " }), "name"),
        (json!({ "name": "x", "role": "owner" }), "role"),
        (json!({ "name": "x", "format": "jwt" }), "format"),
        (json!({}), "name"),
    ] {
        let res = app.post("/api/v1/tokens", payload.clone()).await;
        assert_eq!(res.status(), 400, "{payload}");
        let err = body(res).await;
        assert_eq!(err["code"], "VALIDATION_ERROR");
        assert!(err["error"].as_str().unwrap().contains(needle), "{err}");
    }
}

#[tokio::test]
async fn revoked_is_final_and_keeps_the_record_delete_removes_it() {
    let app = spawn_app().await;
    let made = create_token(&app, json!({ "name": "leaky" })).await;
    let (id, secret) = (
        made["id"].as_str().unwrap(),
        made["token"].as_str().unwrap(),
    );
    assert_eq!(
        app.as_token(secret, Method::GET, "/api/squads")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let res = app
        .post(&format!("/api/v1/tokens/{id}/revoke"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let revoked = body(res).await["data"].clone();
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(revoked["calls"], 1, "history kept");

    let res = app
        .as_token(secret, Method::GET, "/api/squads")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a revoked token stops working at once");
    let err = body(res).await;
    assert_eq!(err["code"], "UNAUTHORIZED");
    assert!(err["error"].as_str().unwrap().contains("revoked"));

    // Revoking again changes nothing; the record is still listed.
    let again = body(
        app.post(&format!("/api/v1/tokens/{id}/revoke"), json!({}))
            .await,
    )
    .await;
    assert_eq!(again["data"]["revoked_at"], revoked["revoked_at"]);
    let list = body(app.get("/api/v1/tokens").await).await;
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == id && t["status"] == "revoked"));

    let res = app
        .req(Method::DELETE, &format!("/api/v1/tokens/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let list = body(app.get("/api/v1/tokens").await).await;
    assert!(!list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == id));
    let res = app
        .req(Method::DELETE, &format!("/api/v1/tokens/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn deleting_an_active_token_stops_it_at_once() {
    let app = spawn_app().await;
    let made = create_token(&app, json!({ "name": "short-lived" })).await;
    let secret = made["token"].as_str().unwrap();
    assert_eq!(
        app.as_token(secret, Method::GET, "/api/squads")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let id = made["id"].as_str().unwrap();
    assert_eq!(
        app.req(Method::DELETE, &format!("/api/v1/tokens/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        app.as_token(secret, Method::GET, "/api/squads")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn usage_counted_in_memory_survives_a_graceful_shutdown() {
    let app = spawn_app().await;
    let made = create_token(&app, json!({ "name": "counted" })).await;
    let secret = made["token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(
            app.as_token(&secret, Method::GET, "/api/squads")
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    // The flush interval is an hour in tests: only the shutdown flush can have written these.
    let (db, admin) = app.stop().await;
    let app = start(db, Some(admin), |_| {}).await;
    let list = body(app.get("/api/v1/tokens").await).await;
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == made["id"])
        .unwrap()
        .clone();
    assert_eq!(row["calls"], 3);
    assert!(row["last_used_at"].is_string());
}

#[tokio::test]
async fn usage_is_flushed_in_batches_while_running() {
    let app = spawn_with(|c| c.usage_flush_ms = 50).await;
    let made = create_token(&app, json!({ "name": "batched" })).await;
    let secret = made["token"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        app.as_token(&secret, Method::GET, "/api/squads")
            .send()
            .await
            .unwrap();
    }
    let id: uuid::Uuid = made["id"].as_str().unwrap().parse().unwrap();
    let db = squadron_actors::store::connect(app.config.database_url.as_ref().unwrap())
        .await
        .unwrap();
    crate::helpers::eventually("usage written to the database", || async {
        let org = squadron_actors::store::orgs::find_by_name(&db, "default")
            .await
            .unwrap()
            .unwrap();
        let row = squadron_actors::store::tokens::get(&db, org.id, id)
            .await
            .unwrap()
            .unwrap();
        row.calls == 5
    })
    .await;
}

#[tokio::test]
async fn the_cli_prints_a_token_alone_for_a_new_organization() {
    let app = spawn_app().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squadron"))
        .args([
            "token", "create", "--org", "acme", "--name", "ci", "--role", "member", "--format",
            "msq",
        ])
        .env("DATABASE_URL", app.config.database_url.as_ref().unwrap())
        .env("RUST_LOG", "warn")
        .output()
        .expect("squadron runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "the token alone: {stdout:?}");
    assert!(token.starts_with("msq-"));
    // It works, as a member of its own organization.
    let res = app
        .as_token(token, Method::GET, "/api/squads")
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["meta"]["count"], 0);
    let res = app
        .as_token(token, Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Organizations made by the CLI and by the API helper are the same thing.
    let admin = app.org_token("acme", Role::Admin).await;
    let list = body(
        app.as_token(&admin, Method::GET, "/api/v1/tokens")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["meta"]["count"], 2);
}

#[tokio::test]
async fn help_names_every_setting_with_its_variable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squadron"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "SQUADRON_BIND",
        "DATABASE_URL",
        "SQUADRON_DATA_DIR",
        "SQUADRON_LOG_FORMAT",
        "SQUADRON_RATE_HEARTBEAT",
        "SQUADRON_RATE_TASKS",
        "SQUADRON_RATE_DEFAULT",
        "SQUADRON_RATE_GATEWAY",
        "SQUADRON_BODY_LIMIT_API",
        "SQUADRON_BODY_LIMIT_GATEWAY",
    ] {
        assert!(help.contains(var), "--help mentions {var}");
    }
}
