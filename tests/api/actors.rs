//! Supervision: a panicking actor comes back with its state reloaded while its siblings keep
//! serving; idle actors stop and come back on demand.

use serde_json::{json, Value};

use crate::helpers::{body, eventually, spawn_app, spawn_with, TestApp};

async fn live(app: &TestApp, squad_id: &str) -> Value {
    let res = app.get(&format!("/api/squads/{squad_id}")).await;
    assert_eq!(res.status(), 200);
    body(res).await["data"]["live"].clone()
}

#[tokio::test]
async fn a_panicking_squad_restarts_with_its_state_and_siblings_keep_serving() {
    let app = spawn_app().await;
    let a = app.squad("A", &["Writer"]).await;
    let b = app.squad("B", &["Editor"]).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    app.add_agent(a, "Critic").await;
    let before = live(&app, a).await;
    assert_eq!(before["last_seq"], 2, "squad.created, then agent.created");
    assert_eq!(before["agents_running"], 2);
    let b_actor = live(&app, b).await["actor"].clone();
    let restarts = app
        .metric("squadron_actor_restarts_total{kind=\"squad\"}")
        .await;

    let res = app
        .post(&format!("/api/_test/squads/{a}/panic"), json!({}))
        .await;
    assert_eq!(res.status(), 202);

    eventually("the squad is running again under a new actor", || async {
        let now = live(&app, a).await;
        now["actor"] != before["actor"]
    })
    .await;
    let after = live(&app, a).await;
    assert_eq!(after["last_seq"], 2, "sequence reloaded from the store");
    assert_eq!(after["agents_running"], 2, "agents respawned");
    assert!(
        app.metric("squadron_actor_restarts_total{kind=\"squad\"}")
            .await
            > restarts
    );

    // The sibling never noticed; the restarted squad writes on from where it was.
    assert_eq!(live(&app, b).await["actor"], b_actor);
    app.add_agent(b, "Reviewer").await;
    app.add_agent(a, "Planner").await;
    assert_eq!(live(&app, a).await["last_seq"], 3);
}

#[tokio::test]
async fn a_panicking_agent_is_restarted_by_its_squad() {
    let app = spawn_app().await;
    let squad = app.squad("Team", &["Writer", "Editor"]).await;
    let id = squad["id"].as_str().unwrap();
    let writer = squad["agents"][0]["id"].as_str().unwrap();
    let before = live(&app, id).await;
    let restarts = app
        .metric("squadron_actor_restarts_total{kind=\"agent\"}")
        .await;

    let res = app
        .post(
            &format!("/api/_test/squads/{id}/agents/{writer}/panic"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 202);
    eventually("the agent restart is counted", || async {
        app.metric("squadron_actor_restarts_total{kind=\"agent\"}")
            .await
            > restarts
    })
    .await;
    let after = live(&app, id).await;
    assert_eq!(
        after["actor"], before["actor"],
        "the squad itself did not fail"
    );
    assert_eq!(after["agents_running"], 2);
}

#[tokio::test]
async fn idle_squads_stop_and_come_back_on_demand() {
    let app = spawn_with(|c| c.actor_idle_secs = 1).await;
    let squad = app.squad("Sleepy", &["Writer"]).await;
    let id = squad["id"].as_str().unwrap();
    let first = live(&app, id).await;
    let path = format!("/api/_test/squads/{id}/running");
    let running = || async { body(app.get(&path).await).await["data"].as_bool().unwrap() };
    assert!(running().await);
    eventually("the idle squad stops", || async { !running().await }).await;

    let again = live(&app, id).await;
    assert_ne!(again["actor"], first["actor"], "a new actor");
    assert_eq!(again["last_seq"], first["last_seq"]);
    app.add_agent(id, "Editor").await;
    assert_eq!(live(&app, id).await["last_seq"], 2);
}

#[tokio::test]
async fn squads_of_unknown_ids_are_404s() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4();
    for path in [
        format!("/api/squads/{id}"),
        format!("/api/squads/{id}/agents"),
    ] {
        let res = app.get(&path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(body(res).await["code"], "NOT_FOUND");
    }
    let res = app
        .post(
            &format!("/api/squads/{id}/agents"),
            json!({ "name": "Ghost" }),
        )
        .await;
    assert_eq!(res.status(), 404);
}
