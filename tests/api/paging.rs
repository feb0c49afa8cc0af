//! Lists come a page at a time, and every number a client sends is checked: out of range is
//! a 400 naming the parameter, never a panic or a dropped connection.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{body, spawn_app};

#[tokio::test]
async fn offsets_and_limits_out_of_range_are_400s_naming_them() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Ann"]).await;
    let too_far = "offset=9223372036854775808";
    for path in [
        format!("/api/squad/activities?{too_far}"),
        format!("/api/tasks?{too_far}"),
        format!("/api/documents?{too_far}"),
        format!("/api/watch-items?{too_far}"),
    ] {
        let res = app
            .as_agent(&squad.squad_key, "Ann", Method::GET, &path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: the connection dropped: {e}"));
        assert_eq!(res.status(), 400, "{path}");
        let err = body(res).await;
        assert!(
            err["error"].as_str().unwrap().contains("offset"),
            "{path}: {err}"
        );
    }
    for path in [
        format!("/api/v1/conversations?{too_far}"),
        "/api/v1/conversations?offset=99999999999999999999999".to_owned(),
        "/api/v1/conversations?limit=0".to_owned(),
        "/api/v1/conversations?limit=-1".to_owned(),
    ] {
        let res = app.get(&path).await;
        assert_eq!(res.status(), 400, "{path}");
        let err = body(res).await;
        let name = if path.contains("offset") {
            "offset"
        } else {
            "limit"
        };
        assert!(
            err["error"].as_str().unwrap().contains(name),
            "{path}: {err}"
        );
    }
    let res = app
        .as_agent(
            &squad.squad_key,
            "Ann",
            Method::GET,
            "/api/squad/tasks?limit=501",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

async fn page(app: &crate::helpers::TestApp, key: &str, query: &str) -> Value {
    let res = app
        .as_agent(key, "Ann", Method::GET, &format!("/api/tasks?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{query}");
    body(res).await
}

#[tokio::test]
async fn tasks_come_a_page_at_a_time_with_the_total() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Ann"]).await;
    let key = &squad.squad_key;
    let mut created = Vec::new();
    for i in 0..7 {
        let res = app
            .as_agent(key, "Ann", Method::POST, "/api/tasks")
            .json(&json!({ "title": format!("task {i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        created.push(body(res).await["data"]["id"].as_str().unwrap().to_owned());
    }

    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let reply = page(&app, key, &format!("limit=3&offset={offset}")).await;
        let items = reply["data"].as_array().unwrap();
        assert!(items.len() <= 3);
        assert_eq!(reply["meta"]["count"], items.len());
        assert_eq!(reply["meta"]["total"], 7);
        seen.extend(items.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        offset += items.len();
        if !reply["meta"]["has_more"].as_bool().unwrap() {
            break;
        }
        assert!(offset < 7, "has_more after the last task");
    }
    // Every task once, in board order (here: the order they were made).
    assert_eq!(seen, created);

    // The default page holds them all here; a filter pages what it matches.
    let all = page(&app, key, "").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 7);
    assert_eq!(all["meta"]["has_more"], false);
    let none = page(&app, key, "status=done&limit=2").await;
    assert_eq!(none["meta"]["total"], 0);

    // The board caps each column and says how many each holds.
    let res = app
        .as_agent(key, "Ann", Method::GET, "/api/squad/tasks?limit=2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let board = body(res).await;
    assert_eq!(board["data"]["inbox"].as_array().unwrap().len(), 2);
    assert_eq!(board["meta"]["totals"]["inbox"], 7);
    assert_eq!(board["meta"]["totals"]["done"], 0);
}

#[tokio::test]
async fn comments_and_activities_are_paged() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Ann"]).await;
    let key = &squad.squad_key;
    let res = app
        .as_agent(key, "Ann", Method::POST, "/api/tasks")
        .json(&json!({ "title": "talk" }))
        .send()
        .await
        .unwrap();
    let task = body(res).await["data"]["id"].as_str().unwrap().to_owned();
    for i in 0..5 {
        let res = app
            .as_agent(
                key,
                "Ann",
                Method::POST,
                &format!("/api/tasks/{task}/comments"),
            )
            .json(&json!({ "content": format!("comment {i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let res = app
        .as_agent(
            key,
            "Ann",
            Method::GET,
            &format!("/api/tasks/{task}/comments?limit=2&offset=4"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let reply = body(res).await;
    assert_eq!(reply["data"].as_array().unwrap().len(), 1);
    assert_eq!(reply["data"][0]["content"], "comment 4");
    assert_eq!(reply["meta"]["total"], 5);
    assert_eq!(reply["meta"]["has_more"], false);

    let res = app
        .as_agent(key, "Ann", Method::GET, "/api/squad/activities?limit=2")
        .send()
        .await
        .unwrap();
    let reply = body(res).await;
    assert_eq!(reply["data"].as_array().unwrap().len(), 2);
    assert_eq!(reply["meta"]["has_more"], true);
    assert!(reply["meta"]["total"].as_u64().unwrap() >= 6);
}
