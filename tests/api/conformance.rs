//! Small points of the contracts that clients trip on: a model by id, OpenAI's error shape for
//! a form that is not one, and request bodies whose unknown fields are refused, not ignored.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{body, spawn_app};
use crate::upstream;

#[tokio::test]
async fn a_model_is_shown_by_its_id() {
    let app = spawn_app().await;
    let fake = upstream::start().await;
    let res = app
        .post(
            "/v1/core/add/provider",
            json!({ "name": "fake", "base_url": fake.base_url }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let model = json!({ "name": "gpt", "provider": "fake", "model": "gpt-fake", "kind": "chat" });
    assert_eq!(app.post("/v1/core/add/model", model).await.status(), 200);

    let res = app.get("/v1/models/gpt").await;
    assert_eq!(res.status(), 200);
    let shown = body(res).await;
    assert_eq!(shown["id"], "gpt");
    assert_eq!(shown["object"], "model");
    assert_eq!(shown["owned_by"], "fake");

    let res = app.get("/v1/models/nope").await;
    assert_eq!(res.status(), 404);
    let err = body(res).await;
    assert_eq!(err["error"]["type"], "not_found_error", "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn an_upload_that_is_not_a_form_gets_openais_error() {
    let app = spawn_app().await;
    for (content_type, raw) in [
        ("application/json", "{\"purpose\":\"assistants\"}"),
        ("multipart/form-data", "--x\r\n"),
        (
            "multipart/form-data; boundary=x",
            "--x\r\nContent-Disposition: form-da",
        ),
    ] {
        let res = app
            .req(Method::POST, "/v1/files")
            .header("content-type", content_type)
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{content_type}");
        let err: serde_json::Value = res.json().await.expect("a JSON error");
        assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
        assert!(err["error"]["message"].is_string(), "{err}");
    }
}

#[tokio::test]
async fn unknown_fields_in_request_bodies_are_400s_naming_them() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Ann"]).await;
    let res = app
        .as_agent(&squad.squad_key, "Ann", Method::POST, "/api/tasks")
        .json(&json!({ "title": "t" }))
        .send()
        .await
        .unwrap();
    let task = body(res).await["data"]["id"].as_str().unwrap().to_owned();

    // A typo in a PATCH would otherwise change nothing and answer 200.
    let res = app
        .as_agent(
            &squad.squad_key,
            "Ann",
            Method::PATCH,
            &format!("/api/tasks/{task}"),
        )
        .json(&json!({ "statsu": "done" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err = body(res).await;
    assert_eq!(err["code"], "VALIDATION_ERROR");
    assert!(err["error"].as_str().unwrap().contains("statsu"), "{err}");

    let res = app
        .post(
            "/api/squads",
            json!({ "name": "S", "agents": [{ "name": "Bo", "rol": "x" }] }),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(body(res).await["error"].as_str().unwrap().contains("rol"));

    let res = app
        .post("/api/v1/tokens", json!({ "name": "t", "rol": "admin" }))
        .await;
    assert_eq!(res.status(), 400);
    assert!(body(res).await["error"].as_str().unwrap().contains("rol"));
}
