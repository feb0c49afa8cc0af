//! Mission Control's board: tasks through every status, racing claims, the work queue, the
//! Kanban view, the activity feed, documents, watch items, limits and tenant isolation.

use reqwest::Method;
use serde_json::{json, Value};
use squadron_actors::store::tokens::Role;

use crate::helpers::{body, spawn_app, SetUp, TestApp};

async fn create_task(app: &TestApp, squad: &SetUp, agent: &str, task: Value) -> Value {
    let res = app
        .as_agent(squad.key(agent), agent, Method::POST, "/api/tasks")
        .json(&task)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "task created");
    body(res).await["data"].clone()
}

async fn patch(app: &TestApp, squad: &SetUp, agent: &str, id: &str, change: Value) -> Value {
    let res = app
        .as_agent(
            squad.key(agent),
            agent,
            Method::PATCH,
            &format!("/api/tasks/{id}"),
        )
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "task updated");
    body(res).await["data"].clone()
}

#[tokio::test]
async fn a_task_moves_through_every_status_and_the_feed_tells_it() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor"]).await;
    let task = create_task(&app, &squad, "Writer", json!({
        "title": "Write blog post", "description": "About agents", "priority": "high", "assignees": ["Editor"],
    }))
    .await;
    assert_eq!(task["status"], "inbox", "created tasks start in the inbox");
    assert_eq!(task["priority"], "high");
    assert_eq!(task["assignees"][0]["name"], "Editor");
    let id = task["id"].as_str().unwrap();

    for status in [
        "assigned",
        "in_progress",
        "review",
        "blocked",
        "in_progress",
        "done",
    ] {
        assert_eq!(
            patch(&app, &squad, "Writer", id, json!({ "status": status })).await["status"],
            status
        );
    }
    let changed = patch(
        &app,
        &squad,
        "Writer",
        id,
        json!({ "priority": "urgent", "title": "Publish blog post" }),
    )
    .await;
    assert_eq!(
        (changed["priority"].as_str(), changed["title"].as_str()),
        (Some("urgent"), Some("Publish blog post"))
    );

    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::GET,
            &format!("/api/tasks/{id}"),
        )
        .send()
        .await
        .unwrap();
    let detail = body(res).await["data"].clone();
    assert_eq!(detail["status"], "done");
    assert!(detail["comments"].as_array().unwrap().is_empty());

    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::GET,
            "/api/squad/activities?limit=3",
        )
        .send()
        .await
        .unwrap();
    let feed = body(res).await["data"].clone();
    assert_eq!(feed.as_array().unwrap().len(), 3);
    assert_eq!(feed[0]["type"], "task_updated");
    assert_eq!(feed[1]["type"], "task_status_changed");
    assert_eq!(
        feed[1]["message"],
        "Writer moved \"Write blog post\" to done"
    );
    assert_eq!(feed[1]["agent"]["name"], "Writer");
    assert_eq!(feed[1]["task"]["id"], id);
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::GET,
            "/api/squad/activities?limit=2&offset=1",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(res).await["data"][0]["type"],
        "task_status_changed",
        "offset pages the feed"
    );

    // Soft delete: gone from every read, still in the feed.
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::DELETE,
            &format!("/api/tasks/{id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::GET,
            &format!("/api/tasks/{id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .as_agent(squad.key("Writer"), "Writer", Method::GET, "/api/tasks")
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["meta"]["count"], 0);
}

#[tokio::test]
async fn tasks_filter_and_the_board_is_grouped_in_position_order() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor"]).await;
    let a = create_task(
        &app,
        &squad,
        "Writer",
        json!({ "title": "A", "assignees": ["Editor"] }),
    )
    .await;
    let b = create_task(
        &app,
        &squad,
        "Writer",
        json!({ "title": "B", "priority": "low" }),
    )
    .await;
    let c = create_task(&app, &squad, "Writer", json!({ "title": "C" })).await;
    patch(
        &app,
        &squad,
        "Writer",
        c["id"].as_str().unwrap(),
        json!({ "status": "review" }),
    )
    .await;
    // Move B before A in the inbox.
    patch(
        &app,
        &squad,
        "Writer",
        b["id"].as_str().unwrap(),
        json!({ "position": -0 }),
    )
    .await;
    patch(
        &app,
        &squad,
        "Writer",
        a["id"].as_str().unwrap(),
        json!({ "position": 5 }),
    )
    .await;

    let get = |path: &'static str| {
        app.as_agent(squad.key("Writer"), "Writer", Method::GET, path)
            .send()
    };
    let titles = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let board = body(get("/api/squad/tasks").await.unwrap()).await["data"].clone();
    assert_eq!(titles(&board["inbox"]), vec!["B", "A"]);
    assert_eq!(titles(&board["review"]), vec!["C"]);
    for column in ["assigned", "in_progress", "done", "blocked"] {
        assert_eq!(board[column], json!([]), "{column}");
    }
    assert_eq!(
        titles(&body(get("/api/tasks?status=review").await.unwrap()).await["data"]),
        vec!["C"]
    );
    assert_eq!(
        titles(&body(get("/api/tasks?priority=low").await.unwrap()).await["data"]),
        vec!["B"]
    );
    assert_eq!(
        titles(&body(get("/api/tasks?assignee=editor").await.unwrap()).await["data"]),
        vec!["A"]
    );
    for bad in [
        "/api/tasks?status=later",
        "/api/tasks?priority=asap",
        "/api/tasks?assignee=Ghost",
    ] {
        assert_eq!(get(bad).await.unwrap().status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn exactly_one_of_racing_agents_wins_a_claim() {
    let app = spawn_app().await;
    let names = ["A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8"];
    let squad = app.set_up_squad(&names).await;
    let task = create_task(
        &app,
        &squad,
        "A1",
        json!({ "title": "Hot potato", "assignees": names }),
    )
    .await;
    let id = task["id"].as_str().unwrap();
    let claims = names.iter().map(|name| {
        app.as_agent(
            squad.key(name),
            name,
            Method::POST,
            &format!("/api/tasks/{id}/claim"),
        )
        .send()
    });
    let results = futures::future::join_all(claims).await;
    let statuses: Vec<u16> = results
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        names.len() - 1,
        "{statuses:?}"
    );

    let res = app
        .as_agent(
            squad.key("A1"),
            "A1",
            Method::GET,
            &format!("/api/tasks/{id}"),
        )
        .send()
        .await
        .unwrap();
    let task = body(res).await["data"].clone();
    assert_eq!(task["status"], "in_progress");
    assert!(task["claimed_by"].is_string());
}

#[tokio::test]
async fn the_queue_holds_an_agents_unclaimed_work_most_urgent_first() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor"]).await;
    for (title, priority) in [
        ("old normal", "normal"),
        ("low", "low"),
        ("urgent", "urgent"),
        ("new normal", "normal"),
    ] {
        create_task(
            &app,
            &squad,
            "Editor",
            json!({ "title": title, "priority": priority, "assignees": ["Writer"] }),
        )
        .await;
    }
    create_task(
        &app,
        &squad,
        "Editor",
        json!({ "title": "not mine", "priority": "urgent" }),
    )
    .await;
    let queue = |app: &TestApp| {
        app.as_agent(
            squad.key("Writer"),
            "Writer",
            Method::GET,
            "/api/tasks/queue",
        )
        .send()
    };
    let work = body(queue(&app).await.unwrap()).await["data"].clone();
    let titles: Vec<&str> = work
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["urgent", "old normal", "new normal", "low"]);

    let first = work[0]["id"].as_str().unwrap();
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::POST,
            &format!("/api/tasks/{first}/claim"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::POST,
            &format!("/api/tasks/{first}/claim"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "claiming twice");
    let work = body(queue(&app).await.unwrap()).await["data"].clone();
    assert_eq!(
        work.as_array().unwrap().len(),
        3,
        "claimed work leaves the queue"
    );
    // People have no queue.
    let res = app
        .as_human(&squad.squad_id, Method::GET, "/api/tasks/queue")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn assignees_are_listed_added_and_removed() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor", "Critic"]).await;
    let task = create_task(
        &app,
        &squad,
        "Writer",
        json!({ "title": "T", "assignees": ["Editor"] }),
    )
    .await;
    let id = task["id"].as_str().unwrap();
    let path = format!("/api/tasks/{id}/assignees");
    let res = app
        .as_agent(squad.key("Writer"), "Writer", Method::POST, &path)
        .json(&json!({ "agent_names": ["Critic", "editor"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let list = body(res).await["data"].clone();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Editor", "Critic"], "no duplicate for Editor");
    assert_eq!(list[0]["agent"]["role"], "Tester");
    let critic = list[1]["agent_id"].as_str().unwrap();

    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::DELETE,
            &format!("{path}?agent_id={critic}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::DELETE,
            &format!("{path}?agent_id={critic}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .as_agent(squad.key("Writer"), "Writer", Method::DELETE, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "agent_id is required");
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::DELETE,
            &format!("{path}?agent_id=nope"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .as_agent(squad.key("Writer"), "Writer", Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["meta"]["count"], 1);
    let res = app
        .as_agent(squad.key("Writer"), "Writer", Method::POST, &path)
        .json(&json!({ "agent_names": ["Ghost"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn documents_and_watch_items_have_full_crud() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer"]).await;
    let task = create_task(&app, &squad, "Writer", json!({ "title": "T" })).await;
    let as_writer =
        |method: Method, path: &str| app.as_agent(squad.key("Writer"), "Writer", method, path);

    let res = as_writer(Method::POST, "/api/documents")
        .json(&json!({ "title": "Blog Post Draft", "content": "# AI Agents", "type": "draft", "task_id": task["id"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let doc = body(res).await["data"].clone();
    assert_eq!(
        (doc["type"].as_str(), doc["created_by"]["name"].as_str()),
        (Some("draft"), Some("Writer"))
    );
    let doc_id = doc["id"].as_str().unwrap();
    as_writer(Method::POST, "/api/documents")
        .json(&json!({ "title": "Notes", "type": "research" }))
        .send()
        .await
        .unwrap();

    let list = body(
        as_writer(Method::GET, "/api/documents?type=draft")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["meta"]["count"], 1);
    assert!(
        list["data"][0].get("content").is_none(),
        "lists leave content out"
    );
    let by_task = format!("/api/documents?task_id={}", task["id"].as_str().unwrap());
    assert_eq!(
        body(as_writer(Method::GET, &by_task).send().await.unwrap()).await["meta"]["count"],
        1
    );
    let res = as_writer(Method::PATCH, &format!("/api/documents/{doc_id}"))
        .json(&json!({ "type": "deliverable", "task_id": null }))
        .send()
        .await
        .unwrap();
    let doc = body(res).await["data"].clone();
    assert_eq!(
        (doc["type"].as_str(), doc["content"].as_str()),
        (Some("deliverable"), Some("# AI Agents"))
    );
    assert!(doc["task_id"].is_null());
    for bad in [
        json!({ "title": "x" }),
        json!({ "title": "x", "type": "memo" }),
        json!({ "title": "x", "type": "draft", "task_id": uuid::Uuid::new_v4() }),
    ] {
        assert_eq!(
            as_writer(Method::POST, "/api/documents")
                .json(&bad)
                .send()
                .await
                .unwrap()
                .status(),
            400,
            "{bad}"
        );
    }
    assert_eq!(
        as_writer(Method::DELETE, &format!("/api/documents/{doc_id}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        as_writer(Method::GET, &format!("/api/documents/{doc_id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let res = as_writer(Method::POST, "/api/watch-items")
        .json(&json!({ "title": "Competitor Launch", "description": "Monitor", "url": "https://example.com/news" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let item = body(res).await["data"].clone();
    assert_eq!(item["status"], "watching");
    let item_id = item["id"].as_str().unwrap();
    let res = as_writer(Method::PATCH, &format!("/api/watch-items/{item_id}"))
        .json(&json!({ "status": "triggered" }))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["data"]["status"], "triggered");
    assert_eq!(
        body(
            as_writer(Method::GET, "/api/watch-items")
                .send()
                .await
                .unwrap()
        )
        .await["meta"]["count"],
        1
    );
    let res = as_writer(Method::POST, "/api/watch-items")
        .json(&json!({ "title": "x", "url": "javascript:alert(1)" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        as_writer(Method::DELETE, &format!("/api/watch-items/{item_id}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        as_writer(Method::GET, &format!("/api/watch-items/{item_id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn each_limit_is_a_400() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["A", "B", "C", "D", "E", "F"]).await;
    let task = create_task(&app, &squad, "A", json!({ "title": "T" })).await;
    let path = format!("/api/tasks/{}/comments", task["id"].as_str().unwrap());
    let comment = |content: String| {
        app.as_agent(squad.key("A"), "A", Method::POST, &path)
            .json(&json!({ "content": content }))
            .send()
    };

    let res = comment("x".repeat(10_001)).await.unwrap();
    assert_eq!(res.status(), 400);
    let err = body(res).await;
    assert_eq!(err["code"], "VALIDATION_ERROR");
    // A 10,001-character comment is also over the 10 KB body limit: either message is right.
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("10000") || message.contains("10240 bytes"),
        "{message}"
    );
    let res = comment("é".repeat(3_000) + &"x".repeat(4_000))
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        201,
        "7,000 characters in 10,000 bytes is fine"
    );

    let res = comment("@B @C @D @E @F @all".into()).await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(body(res).await["error"]
        .as_str()
        .unwrap()
        .contains("at most 5"));
    assert_eq!(
        comment("@B @C @D @E @F".into()).await.unwrap().status(),
        201
    );

    let res = app
        .as_agent(squad.key("A"), "A", Method::POST, "/api/tasks")
        .json(&json!({ "title": "T", "description": "d".repeat(10_300) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(body(res).await["error"]
        .as_str()
        .unwrap()
        .contains("10240 bytes"));
}

#[tokio::test]
async fn squads_and_organizations_cannot_reach_each_other() {
    let app = spawn_app().await;
    let ours = app.set_up_squad(&["Writer"]).await;
    let other = app.set_up_squad(&["Writer"]).await;
    let task = create_task(&app, &ours, "Writer", json!({ "title": "Ours" })).await;
    let task_id = task["id"].as_str().unwrap();

    // Another squad's key, even of the same organization, does not see our task.
    // Each with a body its route accepts, so only the squad can make it a 404.
    let paths = [
        (Method::GET, format!("/api/tasks/{task_id}"), json!({})),
        (
            Method::PATCH,
            format!("/api/tasks/{task_id}"),
            json!({ "status": "done" }),
        ),
        (Method::DELETE, format!("/api/tasks/{task_id}"), json!({})),
        (
            Method::POST,
            format!("/api/tasks/{task_id}/claim"),
            json!({}),
        ),
        (
            Method::GET,
            format!("/api/tasks/{task_id}/comments"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/tasks/{task_id}/comments"),
            json!({ "content": "mole" }),
        ),
        (
            Method::GET,
            format!("/api/tasks/{task_id}/assignees"),
            json!({}),
        ),
    ];
    for (method, path, payload) in &paths {
        let res = app
            .as_agent(other.key("Writer"), "Writer", method.clone(), path)
            .json(payload)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method} {path}");
    }
    let res = app
        .as_agent(other.key("Writer"), "Writer", Method::GET, "/api/tasks")
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["meta"]["count"], 0);

    // Another organization cannot name our squad.
    let theirs = app.org_token("rival", Role::Admin).await;
    let res = app
        .as_token(&theirs, Method::GET, "/api/tasks")
        .header("x-squad-id", &ours.squad_id)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .as_token(
            &theirs,
            Method::GET,
            &format!("/api/setup/{}", ours.squad_id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        400,
        "and setup wants a setup token, which it lacks"
    );
    // Our task is untouched.
    let res = app
        .as_agent(
            ours.key("Writer"),
            "Writer",
            Method::GET,
            &format!("/api/tasks/{task_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["data"]["status"], "inbox");
}
