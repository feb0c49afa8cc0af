//! The live layer: WebSocket and SSE subscribers see every event once, in order; reconnecting
//! with `since` / `Last-Event-ID` misses nothing; a slow subscriber is told to resync and never
//! holds the squad back.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{body, spawn_app, spawn_with, Ws};

#[tokio::test]
async fn a_subscriber_sees_each_event_once_in_order() {
    let app = spawn_app().await;
    let squad = app.squad("Team", &["Writer"]).await;
    let id = squad["id"].as_str().unwrap();
    let mut ws = app.ws(&app.admin).await;
    let ack = ws.subscribe(id, None).await;
    assert_eq!(ack["type"], "subscribed");
    assert_eq!(ack["last_seq"], 1);

    app.add_agent(id, "Editor").await;
    let event = ws.next().await;
    assert_eq!(event["type"], "event");
    assert_eq!(event["squad_id"], id);
    assert_eq!(event["seq"], 2);
    assert_eq!(event["event"]["kind"], "agent.created");
    assert_eq!(event["event"]["agent"]["name"], "Editor");

    app.add_agent(id, "Critic").await;
    app.add_agent(id, "Planner").await;
    assert_eq!(ws.seqs(2).await, vec![3, 4]);

    ws.send(json!({ "op": "ping" })).await;
    assert_eq!(ws.next().await["type"], "pong");
}

#[tokio::test]
async fn a_dashboard_that_reconnects_with_since_misses_nothing() {
    let app = spawn_app().await;
    let squad = app.squad("Team", &[]).await;
    let id = squad["id"].as_str().unwrap();
    let mut first = app.ws(&app.admin).await;
    first.subscribe(id, Some(0)).await;
    assert_eq!(
        first.seqs(1).await,
        vec![1],
        "since 0 replays squad.created"
    );
    app.add_agent(id, "A1").await;
    app.add_agent(id, "A2").await;
    let seen = first.seqs(2).await;
    drop(first);

    // While it is away, the squad moves on.
    app.add_agent(id, "A3").await;
    app.add_agent(id, "A4").await;

    let mut second = app.ws(&app.admin).await;
    let ack = second.subscribe(id, Some(*seen.last().unwrap())).await;
    assert_eq!(ack["last_seq"], 5);
    app.add_agent(id, "A5").await;
    assert_eq!(
        second.seqs(3).await,
        vec![4, 5, 6],
        "missed ones from the store, then live"
    );
}

#[tokio::test]
async fn unsubscribing_stops_events_and_bad_messages_get_errors() {
    let app = spawn_app().await;
    let squad = app.squad("Team", &[]).await;
    let id = squad["id"].as_str().unwrap();
    let mut ws = app.ws(&app.admin).await;
    ws.subscribe(id, None).await;
    ws.send(json!({ "op": "unsubscribe", "squad_id": id }))
        .await;
    assert_eq!(ws.next().await["type"], "unsubscribed");
    app.add_agent(id, "Quiet").await;
    ws.send(json!({ "op": "ping" })).await;
    assert_eq!(
        ws.next().await["type"],
        "pong",
        "no event arrived after unsubscribing"
    );

    ws.send(json!({ "op": "dance" })).await;
    let err = ws.next().await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str()),
        (Some("error"), Some("VALIDATION_ERROR"))
    );
    ws.send(json!({ "op": "subscribe", "squad_id": uuid::Uuid::new_v4() }))
        .await;
    assert_eq!(ws.next().await["code"], "NOT_FOUND");
}

async fn ws_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
        Err(other) => panic!("unexpected handshake error: {other}"),
    }
}

#[tokio::test]
async fn browsers_connect_with_a_single_use_ticket() {
    let app = spawn_app().await;
    let squad = app.squad("Team", &[]).await;
    let id = squad["id"].as_str().unwrap();
    let res = app.post("/api/live/tickets", json!({})).await;
    assert_eq!(res.status(), 201);
    let ticket = body(res).await["data"]["ticket"]
        .as_str()
        .unwrap()
        .to_owned();

    let url = app.ws_url(&format!("?ticket={ticket}"));
    let (socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("ticket accepted");
    let mut ws = Ws(socket);
    assert_eq!(ws.subscribe(id, None).await["type"], "subscribed");

    assert_eq!(ws_status(&url).await, 401, "a ticket works once");
    assert_eq!(ws_status(&app.ws_url("?ticket=lt_forged")).await, 401);
    assert_eq!(
        ws_status(&app.ws_url("")).await,
        401,
        "no ticket, no header"
    );
    let res = app
        .anon(Method::POST, "/api/live/tickets")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "tickets are for authenticated callers");
}

#[tokio::test]
async fn expired_tickets_are_refused() {
    let app = spawn_with(|c| c.ticket_ttl_secs = 0).await;
    let ticket = body(app.post("/api/live/tickets", json!({})).await).await["data"]["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ws_status(&app.ws_url(&format!("?ticket={ticket}"))).await,
        401
    );
}

#[tokio::test]
async fn sse_streams_events_and_resumes_from_last_event_id() {
    let app = spawn_app().await;
    let squad = app.squad("Team", &[]).await;
    let id = squad["id"].as_str().unwrap();
    let mut sse = app.sse(&app.admin, id, None).await;
    let first = sse.next().await;
    assert_eq!(first.event.as_deref(), Some("subscribed"));
    app.add_agent(id, "Writer").await;
    let event = sse.next().await;
    assert_eq!(event.id.as_deref(), Some("2"));
    let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["event"]["kind"], "agent.created");
    drop(sse);

    app.add_agent(id, "Editor").await;
    let mut resumed = app.sse(&app.admin, id, Some(2)).await;
    resumed.next().await; // subscribed
    let missed = resumed.next().await;
    assert_eq!(
        missed.id.as_deref(),
        Some("3"),
        "the event missed while away"
    );
    app.add_agent(id, "Critic").await;
    assert_eq!(resumed.next().await.id.as_deref(), Some("4"));

    let res = app.get("/api/squad/events").await;
    assert_eq!(res.status(), 400, "a squad must be named");
    let res = app
        .req(Method::GET, "/api/squad/events")
        .header("x-squad-id", id)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn a_slow_subscriber_is_told_to_resync_and_never_slows_the_squad() {
    let app = spawn_with(|c| c.live_buffer = 64).await;
    let squad = app.squad("Busy", &[]).await;
    let id = squad["id"].as_str().unwrap();

    // A client with a tiny receive window that reads nothing while the squad is busy.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let mut request = app.ws_url("").into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.admin).parse().unwrap(),
    );
    let (socket, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    let mut slow = Ws(socket);
    assert_eq!(slow.subscribe(id, None).await["last_seq"], 1);

    // 5,000 events of ~700 bytes: far more than the socket, outbox and channel can hold.
    let mut last_seq = 1;
    for _ in 0..100 {
        let res = app
            .post(&format!("/api/_test/squads/{id}/flood"), json!({ "n": 50 }))
            .await;
        assert_eq!(res.status(), 200);
        last_seq = body(res).await["data"].as_i64().unwrap();
    }
    assert_eq!(last_seq, 5_001);
    // The squad still answers at once, with the subscriber stuck.
    let started = std::time::Instant::now();
    app.add_agent(id, "StillHere").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let last_seq = last_seq + 1;

    // Now it reads: it was told to resync, and resubscribing with `since` fills the gap.
    let mut seen = BTreeSet::new();
    let mut resynced = false;
    while !(resynced && seen.contains(&last_seq)) {
        let msg = slow.next().await;
        match msg["type"].as_str().unwrap() {
            "event" => {
                seen.insert(msg["seq"].as_i64().unwrap());
            }
            "resync" => {
                resynced = true;
                let since = msg["last_seq"].as_i64().unwrap();
                slow.send(json!({ "op": "subscribe", "squad_id": id, "since": since }))
                    .await;
            }
            _ => {}
        }
    }
    let missing: Vec<i64> = (2..=last_seq).filter(|s| !seen.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "lost events: {:?}...",
        &missing[..missing.len().min(10)]
    );
    assert!(app.metric("squadron_live_resyncs_total").await >= 1.0);
}
