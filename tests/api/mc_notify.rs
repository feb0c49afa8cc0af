//! Comments, @mentions and notifications: who is notified (never the author, never for a done
//! task, subscribers of the thread), acknowledged delivery that is never repeated, push over
//! SSE and WebSocket, presence and an agent going offline.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{body, eventually, spawn_app, SetUp, TestApp, Ws, WAIT};

async fn task(
    app: &TestApp,
    squad: &SetUp,
    agent: &str,
    title: &str,
    assignees: &[&str],
) -> String {
    let res = app
        .as_agent(squad.key(agent), agent, Method::POST, "/api/tasks")
        .json(&json!({ "title": title, "assignees": assignees }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    body(res).await["data"]["id"].as_str().unwrap().to_owned()
}

async fn comment(app: &TestApp, squad: &SetUp, agent: &str, task: &str, content: &str) -> Value {
    let res = app
        .as_agent(
            squad.key(agent),
            agent,
            Method::POST,
            &format!("/api/tasks/{task}/comments"),
        )
        .json(&json!({ "content": content }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    body(res).await["data"].clone()
}

async fn pending(app: &TestApp, squad: &SetUp, agent: &str) -> Vec<Value> {
    let res = app
        .as_agent(squad.key(agent), agent, Method::GET, "/api/notifications")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    body(res).await["data"].as_array().unwrap().clone()
}

async fn heartbeat(app: &TestApp, squad: &SetUp, agent: &str, beat: Value) -> Value {
    let res = app
        .as_agent(squad.key(agent), agent, Method::POST, "/api/heartbeat")
        .json(&beat)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    body(res).await["data"].clone()
}

#[tokio::test]
async fn mentions_notify_the_mentioned_never_the_author_and_subscribe_them() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor", "Critic"]).await;
    let t = task(&app, &squad, "Writer", "Post", &[]).await;
    let c = comment(
        &app,
        &squad,
        "Writer",
        &t,
        "<script>alert(1)</script><b onclick=\"x()\">Draft</b> done. @Editor please review, and @Writer notes to self",
    )
    .await;
    let content = c["content"].as_str().unwrap();
    assert!(
        !content.contains("<script") && !content.contains("onclick"),
        "sanitized: {content}"
    );
    assert!(
        content.contains("<b>Draft</b>"),
        "harmless markup stays: {content}"
    );
    assert_eq!(c["from_agent"]["name"], "Writer");
    assert_eq!(c["from_human"], false);

    let editor = pending(&app, &squad, "Editor").await;
    assert_eq!(editor.len(), 1);
    assert_eq!(editor[0]["kind"], "mention");
    assert_eq!(editor[0]["task_id"], t);
    assert_eq!(editor[0]["message_id"], c["id"]);
    assert!(editor[0]["content"]
        .as_str()
        .unwrap()
        .contains("@Editor please review"));
    assert!(
        pending(&app, &squad, "Writer").await.is_empty(),
        "the author is never notified"
    );
    assert!(pending(&app, &squad, "Critic").await.is_empty());

    // The Editor is now subscribed: the Writer's next comment reaches it as a thread comment.
    comment(&app, &squad, "Writer", &t, "Also fixed the title").await;
    let editor = pending(&app, &squad, "Editor").await;
    assert_eq!(editor.len(), 2);
    assert_eq!(editor[1]["kind"], "comment");
    // And the Editor's reply reaches the Writer, who subscribed by commenting.
    comment(&app, &squad, "Editor", &t, "On it").await;
    let writer = pending(&app, &squad, "Writer").await;
    assert_eq!(writer.len(), 1);
    assert_eq!(writer[0]["kind"], "comment");
    assert!(writer[0]["content"]
        .as_str()
        .unwrap()
        .contains("Editor commented"));
}

#[tokio::test]
async fn at_all_reaches_everyone_but_the_author_and_done_tasks_wake_no_one() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor", "Critic"]).await;
    let t = task(&app, &squad, "Writer", "Standup", &[]).await;
    comment(&app, &squad, "Writer", &t, "@all standup in 5").await;
    assert_eq!(pending(&app, &squad, "Editor").await.len(), 1);
    assert_eq!(pending(&app, &squad, "Critic").await.len(), 1);
    assert!(pending(&app, &squad, "Writer").await.is_empty());

    let done = task(&app, &squad, "Writer", "Shipped", &[]).await;
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::PATCH,
            &format!("/api/tasks/{done}"),
        )
        .json(&json!({ "status": "done" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    comment(&app, &squad, "Writer", &done, "@Editor @Critic thanks all").await;
    assert_eq!(
        pending(&app, &squad, "Editor").await.len(),
        1,
        "nothing new for a done task"
    );
    assert_eq!(pending(&app, &squad, "Critic").await.len(), 1);
}

#[tokio::test]
async fn assignment_notifies_the_assignee() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor"]).await;
    let t = task(&app, &squad, "Writer", "Edit", &["Editor", "Writer"]).await;
    let editor = pending(&app, &squad, "Editor").await;
    assert_eq!(editor.len(), 1);
    assert_eq!(editor[0]["kind"], "assignment");
    assert!(
        pending(&app, &squad, "Writer").await.is_empty(),
        "assigning yourself is no news"
    );
    // Assignees are subscribed to the thread.
    comment(&app, &squad, "Writer", &t, "Ready").await;
    assert_eq!(pending(&app, &squad, "Editor").await.len(), 2);
}

#[tokio::test]
async fn a_delivered_notification_is_never_handed_out_again() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor"]).await;
    let t = task(&app, &squad, "Writer", "Post", &[]).await;
    comment(&app, &squad, "Writer", &t, "@Editor one").await;
    comment(&app, &squad, "Writer", &t, "@Editor two").await;

    // Handed out on every heartbeat until acknowledged...
    for _ in 0..2 {
        let beat = heartbeat(&app, &squad, "Editor", json!({ "status": "active" })).await;
        assert_eq!(beat["notifications"].as_array().unwrap().len(), 2);
    }
    let first = pending(&app, &squad, "Editor").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ack = |id: String| {
        app.as_agent(
            squad.key("Editor"),
            "Editor",
            Method::PATCH,
            &format!("/api/notifications/{id}"),
        )
        .json(&json!({ "delivered": true }))
        .send()
    };
    let res = ack(first.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["data"]["newly_delivered"], true);
    // ...and never after: not by heartbeat, not by poll, not after the actor restarts.
    let beat = heartbeat(&app, &squad, "Editor", json!({})).await;
    let ids: Vec<&str> = beat["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    assert!(!ids.contains(&first.as_str()));
    let res = ack(first.clone()).await.unwrap();
    assert_eq!(res.status(), 200, "acknowledging again is harmless");
    assert_eq!(body(res).await["data"]["newly_delivered"], false);

    let res = app
        .post(
            &format!("/api/_test/squads/{}/panic", squad.squad_id),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 202);
    eventually("the squad is back", || async {
        app.get(&format!("/api/squads/{}", squad.squad_id))
            .await
            .status()
            == 200
    })
    .await;
    let left = pending(&app, &squad, "Editor").await;
    assert_eq!(left.len(), 1);
    assert_ne!(left[0]["id"], first.as_str());

    let health = app
        .as_agent(
            squad.key("Editor"),
            "Editor",
            Method::GET,
            "/api/notifications/health",
        )
        .send()
        .await
        .unwrap();
    let health = body(health).await["data"].clone();
    assert_eq!(health["pending_count"], 1);
    assert_eq!(health["failed_count"], 0);
    assert!(health["oldest_pending"].is_string());

    let res = ack(uuid::Uuid::new_v4().to_string()).await.unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .as_agent(
            squad.key("Editor"),
            "Editor",
            Method::PATCH,
            &format!("/api/notifications/{first}"),
        )
        .json(&json!({ "delivered": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Another agent cannot acknowledge the Editor's notification.
    let other = left[0]["id"].as_str().unwrap();
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::PATCH,
            &format!("/api/notifications/{other}"),
        )
        .json(&json!({ "delivered": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn notifications_of_a_deleted_task_fail_instead_of_waking_anyone() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor"]).await;
    let t = task(&app, &squad, "Writer", "Doomed", &[]).await;
    comment(&app, &squad, "Writer", &t, "@Editor look").await;
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::DELETE,
            &format!("/api/tasks/{t}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    eventually("the notification leaves the queue", || async {
        pending(&app, &squad, "Editor").await.is_empty()
    })
    .await;
    let health = app
        .as_agent(
            squad.key("Editor"),
            "Editor",
            Method::GET,
            "/api/notifications/health",
        )
        .send()
        .await
        .unwrap();
    let health = body(health).await["data"].clone();
    assert_eq!(
        (
            health["pending_count"].as_u64(),
            health["failed_count"].as_u64()
        ),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn the_mentioned_agent_is_pushed_its_notification_over_sse_and_websocket() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor"]).await;
    let t = task(&app, &squad, "Writer", "Post", &[]).await;

    let res = app
        .as_token(
            squad.key("Editor"),
            Method::GET,
            "/api/notifications/stream",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut sse = crate::helpers::Sse::from_response(res);
    let mut request = app.ws_url("").into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", squad.key("Editor")).parse().unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut ws = Ws(socket);

    let c = comment(&app, &squad, "Writer", &t, "@Editor ping").await;
    let pushed = sse.next().await;
    assert_eq!(pushed.event.as_deref(), Some("notification"));
    let pushed: Value = serde_json::from_str(&pushed.data).unwrap();
    assert_eq!(pushed["notification"]["message_id"], c["id"]);
    let over_ws = ws.next().await;
    assert_eq!(over_ws["type"], "notification");
    assert_eq!(over_ws["notification"]["message_id"], c["id"]);

    // Reconnecting, what is still undelivered comes first.
    drop(sse);
    let res = app
        .as_token(
            squad.key("Editor"),
            Method::GET,
            "/api/notifications/stream",
        )
        .send()
        .await
        .unwrap();
    let mut again = crate::helpers::Sse::from_response(res);
    let replayed: Value = serde_json::from_str(&again.next().await.data).unwrap();
    assert_eq!(replayed["notification"]["message_id"], c["id"]);

    // A squad key's socket watches only its own squad.
    let other = app.set_up_squad(&["Spy"]).await;
    ws.subscribe(&other.squad_id, Some(0)).await;
    let mut msg = ws.subscribe(&other.squad_id, None).await;
    while msg["type"] == "notification" {
        msg = ws.next().await;
    }
    assert_eq!(msg["code"], "NOT_FOUND");
}

#[tokio::test]
async fn heartbeats_report_presence_and_a_silent_agent_goes_offline() {
    let app = spawn_app().await;
    let squad = app
        .set_up(json!({ "name": "S", "agents": [
            { "name": "Writer", "heartbeat_interval_secs": 1 },
            { "name": "Editor", "heartbeat_interval_secs": 3600 },
        ]}))
        .await;
    let t = task(&app, &squad, "Editor", "Draft", &[]).await;
    let mut watcher = app.ws(&app.admin).await;
    watcher.subscribe(&squad.squad_id, None).await;

    let beat = heartbeat(
        &app,
        &squad,
        "Writer",
        json!({ "status": "busy", "current_task_id": t }),
    )
    .await;
    assert_eq!(beat["agent"]["status"], "busy");
    assert_eq!(beat["soul_md_changed"], false);
    let me = body(
        app.as_token(squad.key("Writer"), Method::GET, "/api/agents/me")
            .send()
            .await
            .unwrap(),
    )
    .await["data"]
        .clone();
    assert_eq!(me["current_task_id"], t);
    assert!(me["soul_md"].as_str().unwrap().starts_with("# SOUL.md"));
    let beat = heartbeat(
        &app,
        &squad,
        "Writer",
        json!({ "local_soul_md_hash": me["soul_md_hash"] }),
    )
    .await;
    assert_eq!(beat["soul_md_changed"], false);
    assert!(beat.get("soul_md").is_none());
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::POST,
            "/api/heartbeat",
        )
        .json(&json!({ "current_task_id": uuid::Uuid::new_v4() }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "not a task of this squad");
    let res = app
        .as_agent(
            squad.key("Writer"),
            "Writer",
            Method::POST,
            "/api/heartbeat",
        )
        .json(&json!({ "status": "napping" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let squad_view = || async {
        let res = app
            .as_agent(
                squad.key("Editor"),
                "Editor",
                Method::GET,
                "/api/squad/agents",
            )
            .send()
            .await
            .unwrap();
        body(res).await["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "Writer")
            .unwrap()
            .clone()
    };
    let writer = squad_view().await;
    assert_eq!(writer["status"], "active");
    assert_eq!(writer["current_task"]["title"], "Draft");
    assert!(writer["last_heartbeat_at"].is_string());

    // Silent for over 1.5 s (1.5x its interval): offline, and that is an event.
    let started = std::time::Instant::now();
    let offline = loop {
        let msg = watcher.next().await;
        if msg["event"]["kind"] == "agent.status_changed" && msg["event"]["to"] == "offline" {
            break msg;
        }
    };
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1_200) && waited < WAIT,
        "offline after {waited:?}"
    );
    assert_eq!(offline["event"]["agent"]["name"], "Writer");
    assert!(offline["seq"].is_i64(), "status changes are stored events");
    eventually("the squad view shows it offline", || async {
        squad_view().await["status"] == "offline"
    })
    .await;
    // The Editor, with an hour's interval, is untouched.
    let res = app
        .as_agent(
            squad.key("Editor"),
            "Editor",
            Method::GET,
            "/api/squad/agents",
        )
        .send()
        .await
        .unwrap();
    let editor = body(res).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Editor")
        .unwrap()
        .clone();
    assert_eq!(editor["status"], "offline", "it never came online");
}

#[tokio::test]
async fn presence_survives_a_restart() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer"]).await;
    heartbeat(&app, &squad, "Writer", json!({ "status": "idle" })).await;
    let (db, admin) = app.stop().await;
    let app = crate::helpers::start(db, Some(admin), |_| {}).await;
    let res = app
        .as_agent(&squad.squad_key, "Writer", Method::GET, "/api/agents/me")
        .send()
        .await
        .unwrap();
    let me = body(res).await["data"].clone();
    assert_eq!(me["status"], "idle", "written at shutdown");
    assert!(me["last_heartbeat_at"].is_string());
}

#[tokio::test]
async fn every_change_is_an_event_and_a_dashboard_that_reconnects_misses_none() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor"]).await;
    let mut ws = app.ws(&app.admin).await;
    let ack = ws.subscribe(&squad.squad_id, None).await;
    let start = ack["last_seq"].as_i64().unwrap();

    let t = task(&app, &squad, "Writer", "Post", &["Editor"]).await;
    let kinds = |msgs: &[Value]| {
        msgs.iter()
            .map(|m| m["event"]["kind"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let msg = ws.next().await;
        if msg["seq"].is_i64() {
            seen.push(msg);
        }
    }
    assert_eq!(kinds(&seen), vec!["task.created", "notification.created"]);
    drop(ws);

    // While the dashboard is away: a claim, a comment, a delivery, a document, a watch item.
    let claim = app
        .as_agent(
            squad.key("Editor"),
            "Editor",
            Method::POST,
            &format!("/api/tasks/{t}/claim"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(claim.status(), 200);
    comment(&app, &squad, "Editor", &t, "@Writer done").await;
    let note = pending(&app, &squad, "Writer")
        .await
        .into_iter()
        .find(|n| n["kind"] == "mention")
        .unwrap();
    app.as_agent(
        squad.key("Writer"),
        "Writer",
        Method::PATCH,
        &format!("/api/notifications/{}", note["id"].as_str().unwrap()),
    )
    .json(&json!({ "delivered": true }))
    .send()
    .await
    .unwrap();
    let as_writer = |m: Method, p: &str| app.as_agent(squad.key("Writer"), "Writer", m, p);
    as_writer(Method::POST, "/api/documents")
        .json(&json!({ "title": "D", "type": "draft" }))
        .send()
        .await
        .unwrap();
    as_writer(Method::POST, "/api/watch-items")
        .json(&json!({ "title": "W" }))
        .send()
        .await
        .unwrap();
    as_writer(Method::PATCH, &format!("/api/tasks/{t}"))
        .json(&json!({ "status": "review" }))
        .send()
        .await
        .unwrap();

    let mut ws = app.ws(&app.admin).await;
    let last = seen.last().unwrap()["seq"].as_i64().unwrap();
    assert_eq!(last, start + 2);
    ws.subscribe(&squad.squad_id, Some(last)).await;
    let expected = [
        "task.claimed",
        "comment.created",
        "notification.created",
        "notification.delivered",
        "document.created",
        "watch_item.created",
        "task.status_changed",
    ];
    let mut missed = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while missed.len() < expected.len() && tokio::time::Instant::now() < deadline {
        let msg = ws.next().await;
        if msg["seq"].is_i64() {
            missed.push(msg);
        }
    }
    assert_eq!(kinds(&missed), expected);
    let seqs: Vec<i64> = missed.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        ((last + 1)..=(last + expected.len() as i64)).collect::<Vec<_>>(),
        "gapless"
    );
}
