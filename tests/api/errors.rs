//! Every error comes in its family's shape with a message that names the problem: never
//! axum's plain-text defaults, never a 500 for what a client sent.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app};

fn assert_api_error(err: &Value, code: &str, needle: &str) {
    assert_eq!(err["code"], code, "{err}");
    let message = err["error"]
        .as_str()
        .unwrap_or_else(|| panic!("message in {err}"));
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_use_the_family_shape() {
    let app = spawn_app().await;
    let res = app.get("/api/no-such-thing").await;
    assert_eq!(res.status(), 404);
    assert_api_error(&body(res).await, "NOT_FOUND", "/api/no-such-thing");

    let res = app.get("/v1/no-such-thing").await;
    assert_eq!(res.status(), 404);
    let err = body(res).await;
    assert_eq!(err["error"]["type"], "not_found_error", "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v1/no-such-thing"));
    assert!(err["error"].get("param").is_some() && err["error"].get("code").is_some());

    let res = app.req(Method::PUT, "/api/squads").send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_api_error(&body(res).await, "METHOD_NOT_ALLOWED", "method");
}

#[tokio::test]
async fn bad_bodies_are_400s_that_say_what_is_wrong() {
    let app = spawn_app().await;
    let post_raw = |body: &'static str, content_type: &'static str| {
        app.req(Method::POST, "/api/squads")
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let res = post_raw("{\"name\":", "application/json").await.unwrap();
    assert_eq!(res.status(), 400);
    assert_api_error(&body(res).await, "VALIDATION_ERROR", "malformed JSON");

    let res = post_raw("{\"description\":\"no name\"}", "application/json")
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_api_error(&body(res).await, "VALIDATION_ERROR", "name");

    let res = post_raw("{\"name\": 5}", "application/json").await.unwrap();
    assert_eq!(res.status(), 400);
    assert_api_error(&body(res).await, "VALIDATION_ERROR", "name");

    let res = post_raw("name=x", "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_api_error(&body(res).await, "VALIDATION_ERROR", "application/json");

    let res = app
        .post(
            "/api/squads",
            json!({ "name": "T", "agents": [{ "name": "has space" }] }),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_api_error(&body(res).await, "VALIDATION_ERROR", "agent name");
}

#[tokio::test]
async fn bodies_over_the_mission_control_limit_are_refused() {
    let app = spawn_app().await;
    let res = app
        .post("/api/squads", json!({ "name": "x".repeat(11 * 1024) }))
        .await;
    assert_eq!(res.status(), 400);
    assert_api_error(&body(res).await, "VALIDATION_ERROR", "10240 bytes");
    // SquadOS has the larger limit: the same size is only a bad name there.
    let res = app
        .post("/api/v1/tokens", json!({ "name": "x".repeat(11 * 1024) }))
        .await;
    assert_eq!(res.status(), 400);
    assert_api_error(&body(res).await, "VALIDATION_ERROR", "1 to 100 characters");
}

#[tokio::test]
async fn missing_or_unknown_credentials_are_401s() {
    let app = spawn_app().await;
    let res = app.anon(Method::GET, "/api/squads").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_api_error(&body(res).await, "UNAUTHORIZED", "missing API key");
    let res = app
        .as_token("pk_not_a_real_token", Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_api_error(&body(res).await, "UNAUTHORIZED", "invalid");
    let res = app
        .anon(Method::GET, "/api/squads")
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn malformed_path_ids_are_400s_not_500s() {
    let app = spawn_app().await;
    let res = app.get("/api/squads/not-a-uuid").await;
    assert_eq!(res.status(), 400);
    assert_eq!(body(res).await["code"], "VALIDATION_ERROR");
}

#[tokio::test]
async fn duplicate_agent_names_conflict_case_insensitively() {
    let app = spawn_app().await;
    let squad = app.squad("Team", &["Writer"]).await;
    let id = squad["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/api/squads/{id}/agents"),
            json!({ "name": "WRITER" }),
        )
        .await;
    assert_eq!(res.status(), 409);
    assert_api_error(&body(res).await, "CONFLICT", "WRITER");
}
