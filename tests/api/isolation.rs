//! Tenancy: no route lets one organization read, list or change another's data.

use reqwest::Method;
use serde_json::json;
use squadron_actors::store::tokens::Role;

use crate::helpers::{body, spawn_app};

#[tokio::test]
async fn one_organization_cannot_see_or_touch_anothers_data() {
    let app = spawn_app().await;
    let ours = app.squad("Ours", &["Writer"]).await;
    let squad_id = ours["id"].as_str().unwrap();
    let our_tokens = body(app.get("/api/v1/tokens").await).await;
    let our_token_id = our_tokens["data"][0]["id"].as_str().unwrap().to_owned();

    let theirs = app.org_token("rival", Role::Admin).await;
    let as_them = |method: Method, path: String| app.as_token(&theirs, method, &path);

    // Lists show only their own things.
    let squads = body(
        as_them(Method::GET, "/api/squads".into())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(squads["meta"]["count"], 0);
    let tokens = body(
        as_them(Method::GET, "/api/v1/tokens".into())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(tokens["meta"]["count"], 1);
    assert_ne!(tokens["data"][0]["id"], our_token_id.as_str());

    // Our things are not found, whatever the route.
    let not_found = [
        (Method::GET, format!("/api/squads/{squad_id}")),
        (Method::GET, format!("/api/squads/{squad_id}/agents")),
        (Method::POST, format!("/api/squads/{squad_id}/agents")),
        (
            Method::POST,
            format!("/api/v1/tokens/{our_token_id}/revoke"),
        ),
        (Method::DELETE, format!("/api/v1/tokens/{our_token_id}")),
        (Method::POST, format!("/api/_test/squads/{squad_id}/panic")),
    ];
    for (method, path) in not_found {
        let res = as_them(method.clone(), path.clone())
            .json(&json!({ "name": "Mole" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method} {path}");
    }
    let res = as_them(Method::GET, "/api/squad/events".into())
        .header("x-squad-id", squad_id)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let mut ws = app.ws(&theirs).await;
    assert_eq!(ws.subscribe(squad_id, Some(0)).await["code"], "NOT_FOUND");

    // And nothing of ours changed.
    let ours_now = body(app.get(&format!("/api/squads/{squad_id}/agents")).await).await;
    assert_eq!(ours_now["meta"]["count"], 1);
    let res = app.get("/api/squads").await;
    assert_eq!(res.status(), 200, "our admin token was not revoked");
}
