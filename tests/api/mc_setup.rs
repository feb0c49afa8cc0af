//! Mission Control setup and identity: one-time setup tokens, squad and agent keys bound to
//! agent names, organization tokens acting as people, per-agent rate limits, agent specs.

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{body, spawn_app, spawn_with};

#[tokio::test]
async fn setup_hands_out_soul_md_and_keys_once() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/squads",
            json!({
                "name": "Content Team", "workflow": "content-creation",
                "agents": [
                    { "name": "Writer", "role": "Content Specialist", "personality": "Creative", "expertise": ["blog posts"], "heartbeat_interval_secs": 60 },
                    { "name": "Editor", "role": "Editor", "heartbeat_interval_secs": 60 },
                    { "name": "Critic", "role": "Critic", "heartbeat_interval_secs": 60 },
                ]
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let squad = body(res).await["data"].clone();
    let id = squad["id"].as_str().unwrap();
    let token = squad["setup_token"].as_str().unwrap();
    let url = squad["setup_url"].as_str().unwrap();
    assert!(
        url.ends_with(&format!("/api/setup/{id}?token={token}")),
        "{url}"
    );
    assert!(squad["agents"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["activated"] == false));

    let res = app
        .anon(Method::GET, &format!("/api/setup/{id}"))
        .header("x-setup-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let setup = body(res).await["data"].clone();
    assert_eq!(setup["squad"]["workflow"], "content-creation");
    assert!(setup["api_key"].as_str().unwrap().starts_with("mc_"));
    let agents = setup["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3);
    let writer = &agents[0];
    let soul = writer["soul_md"].as_str().unwrap();
    assert!(soul.starts_with("# SOUL.md — Writer Agent"), "{soul}");
    assert!(soul.contains("Content Specialist") && soul.contains("blog posts"));
    assert_eq!(
        writer["soul_md_hash"],
        hex::encode(Sha256::digest(soul.as_bytes()))
    );
    let offsets: Vec<i64> = agents
        .iter()
        .map(|a| a["heartbeat_offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![0, 20, 40], "staggered across the interval");
    let keys: Vec<&str> = agents
        .iter()
        .map(|a| a["api_key"].as_str().unwrap())
        .collect();
    assert!(keys
        .iter()
        .all(|k| k.starts_with("mc_") && *k != setup["api_key"]));

    // Single use.
    let again = app
        .anon(Method::GET, &format!("/api/setup/{id}"))
        .header("x-setup-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    assert_eq!(body(again).await["code"], "UNAUTHORIZED");
    // The agents now carry their SOUL.md.
    let listed = body(app.get(&format!("/api/squads/{id}/agents")).await).await;
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["activated"] == true));
}

#[tokio::test]
async fn setup_tokens_are_checked_and_the_query_form_still_works() {
    let app = spawn_app().await;
    let squad = app.squad("T", &["Writer"]).await;
    let id = squad["id"].as_str().unwrap();
    let path = format!("/api/setup/{id}");
    let res = app.anon(Method::GET, &path).send().await.unwrap();
    assert_eq!(res.status(), 400, "no token at all");
    let res = app
        .anon(Method::GET, &path)
        .header("x-setup-token", "st_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .anon(Method::GET, &format!("/api/setup/{}", uuid::Uuid::new_v4()))
        .header("x-setup-token", squad["setup_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "an unknown squad looks like a bad token");
    // The deprecated ?token= form, straight from setup_url.
    let url = squad["setup_url"].as_str().unwrap();
    let path_and_query = &url[url.find("/api/setup").unwrap()..];
    let res = app.anon(Method::GET, path_and_query).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn expired_setup_tokens_are_refused() {
    let app = spawn_with(|c| c.setup_ttl_secs = 0).await;
    let squad = app.squad("T", &["Writer"]).await;
    let res = app
        .anon(
            Method::GET,
            &format!("/api/setup/{}", squad["id"].as_str().unwrap()),
        )
        .header("x-setup-token", squad["setup_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn agent_keys_act_only_as_their_agent_and_squad_keys_as_any() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor"]).await;
    let writer_key = squad.key("Writer");

    let me = |key: &str, name: Option<&str>| {
        let mut req = app.as_token(key, Method::GET, "/api/agents/me");
        if let Some(name) = name {
            req = req.header("x-agent-name", name);
        }
        req.send()
    };
    let res = me(writer_key, None).await.unwrap();
    assert_eq!(res.status(), 200, "a per-agent key needs no name");
    assert_eq!(body(res).await["data"]["name"], "Writer");
    assert_eq!(
        me(writer_key, Some("writer")).await.unwrap().status(),
        200,
        "names match in any case"
    );
    let res = me(writer_key, Some("Editor")).await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(body(res).await["code"], "FORBIDDEN");

    let res = me(&squad.squad_key, Some("EDITOR")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["data"]["name"], "Editor");
    assert_eq!(
        me(&squad.squad_key, Some("Ghost")).await.unwrap().status(),
        403
    );
    assert_eq!(
        me(&squad.squad_key, None).await.unwrap().status(),
        400,
        "the squad key must name its agent"
    );
    assert_eq!(
        me("mc_0000000000_forged", Some("Writer"))
            .await
            .unwrap()
            .status(),
        401
    );

    // Keys are for Mission Control's agent routes, not for managing the organization.
    let res = app
        .as_agent(writer_key, "Writer", Method::GET, "/api/squads")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .as_agent(writer_key, "Writer", Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn organization_tokens_act_as_people_on_a_named_squad() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer"]).await;
    let res = app
        .post("/api/tasks", json!({ "title": "No squad named" }))
        .await;
    assert_eq!(res.status(), 400);
    assert!(body(res).await["error"]
        .as_str()
        .unwrap()
        .contains("X-Squad-Id"));

    let res = app
        .as_human(&squad.squad_id, Method::POST, "/api/tasks")
        .json(&json!({ "title": "Plan" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let task = body(res).await["data"]["id"].as_str().unwrap().to_owned();
    let res = app
        .as_human(
            &squad.squad_id,
            Method::POST,
            &format!("/api/tasks/{task}/comments"),
        )
        .json(&json!({ "content": "Looks good" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let comment = body(res).await["data"].clone();
    assert_eq!(comment["from_human"], true);
    assert!(comment["from_agent"].is_null());
    // People do not heartbeat.
    let res = app
        .as_human(&squad.squad_id, Method::POST, "/api/heartbeat")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn agents_sharing_a_squad_key_have_their_own_rate_buckets() {
    let app = spawn_with(|c| c.rate_heartbeat = 2).await;
    let squad = app.set_up_squad(&["Writer", "Editor"]).await;
    let beat = |agent: &'static str| {
        app.as_agent(&squad.squad_key, agent, Method::POST, "/api/heartbeat")
            .json(&json!({}))
            .send()
    };
    assert_eq!(beat("Writer").await.unwrap().status(), 200);
    assert_eq!(beat("Writer").await.unwrap().status(), 200);
    let res = beat("Writer").await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(body(res).await["code"], "RATE_LIMITED");
    assert_eq!(
        beat("Editor").await.unwrap().status(),
        200,
        "Editor is not starved by Writer"
    );
}

#[tokio::test]
async fn agent_specs_can_be_changed_and_removed() {
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Writer", "Editor"]).await;
    let id = &squad.squad_id;
    let editor = squad.setup["agents"][1]["id"].as_str().unwrap().to_owned();
    let old_hash = squad.setup["agents"][1]["soul_md_hash"]
        .as_str()
        .unwrap()
        .to_owned();

    let res = app
        .req(Method::PATCH, &format!("/api/squads/{id}/agents/{editor}"))
        .json(&json!({ "role": "Chief Editor", "expertise": ["grammar"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["data"]["role"], "Chief Editor");
    // The Editor learns of its new SOUL.md from its next heartbeat.
    let res = app
        .as_agent(
            squad.key("Editor"),
            "Editor",
            Method::POST,
            "/api/heartbeat",
        )
        .json(&json!({ "local_soul_md_hash": old_hash }))
        .send()
        .await
        .unwrap();
    let beat = body(res).await["data"].clone();
    assert_eq!(beat["soul_md_changed"], true);
    assert!(beat["soul_md"].as_str().unwrap().contains("Chief Editor"));

    // An agent added after setup gets its key at once.
    let res = app
        .post(
            &format!("/api/squads/{id}/agents"),
            json!({ "name": "Critic" }),
        )
        .await;
    let critic = body(res).await["data"].clone();
    let critic_key = critic["api_key"].as_str().unwrap();
    let res = app
        .as_token(critic_key, Method::GET, "/api/agents/me")
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["data"]["name"], "Critic");

    let res = app
        .req(Method::DELETE, &format!("/api/squads/{id}/agents/{editor}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .as_token(squad.key("Editor"), Method::GET, "/api/agents/me")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a removed agent's key stops working");
    let res = app
        .as_agent(&squad.squad_key, "Editor", Method::GET, "/api/agents/me")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "and the squad key cannot act as it");
    let res = app
        .req(Method::DELETE, &format!("/api/squads/{id}/agents/{editor}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
