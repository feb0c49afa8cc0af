//! The OpenAI-compatible gateway against a fake upstream: providers (sealed, masked), models,
//! chat completions streamed and not, upstream failures, cancellation, embeddings.

use std::sync::atomic::Ordering;

use base64::Engine;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use squadron_actors::store::tokens::Role;

use crate::helpers::{body, eventually, spawn_with, TestApp};
use crate::upstream::{self, FakeUpstream};

const KEY: &str = "sk-test-0123456789abcd";

/// A server whose account has provider `fake` and a model for each behaviour of the fake.
async fn gateway() -> (TestApp, FakeUpstream) {
    let app = spawn_with(|c| c.upstream_timeout_secs = 1).await;
    let fake = upstream::start().await;
    let res = app
        .post(
            "/v1/core/add/provider",
            json!({
                "name": "fake", "base_url": fake.base_url, "api_key": KEY,
                "headers": { "X-Org-Secret": "org-secret-value-42" },
            }),
        )
        .await;
    assert_eq!(res.status(), 200, "provider added");
    for (name, upstream_model, kind) in [
        ("gpt", "gpt-fake", "chat"),
        ("flaky-429", "fail-429", "chat"),
        ("flaky-500", "fail-500", "chat"),
        ("stuck", "stall", "chat"),
        ("broken", "broken", "chat"),
        ("slow", "slow", "chat"),
        ("unhurried", "slow-brief", "chat"),
        ("running", "running-usage", "chat"),
        ("embedder", "embed-fake", "embedding"),
    ] {
        let mut model =
            json!({ "name": name, "provider": "fake", "model": upstream_model, "kind": kind });
        if kind == "embedding" {
            model["dimensions"] = json!(8);
        }
        assert_eq!(
            app.post("/v1/core/add/model", model).await.status(),
            200,
            "{name}"
        );
    }
    (app, fake)
}

/// A small chat request for `model`, streamed or not.
pub(crate) fn chat(model: &str, stream: bool) -> Value {
    json!({ "model": model, "stream": stream, "messages": [
        { "role": "system", "content": "be brief" }, { "role": "user", "content": "hello brave new world" },
    ]})
}

#[tokio::test]
async fn provider_secrets_are_sealed_at_rest_and_masked_in_reads() {
    let (app, fake) = gateway().await;
    let list = body(app.get("/v1/core/providers").await).await;
    assert_eq!(list["object"], "list");
    let provider = &list["data"][0];
    assert_eq!(provider["api_key"], "sk-...abcd");
    assert_eq!(provider["headers"]["X-Org-Secret"], "org...e-42");
    let text = app.get("/v1/core/providers").await.text().await.unwrap();
    assert!(!text.contains(KEY) && !text.contains("org-secret-value-42"));

    let db = squadron_actors::store::connect(app.config.database_url.as_ref().unwrap())
        .await
        .unwrap();
    let org = squadron_actors::store::orgs::find_by_name(&db, "default")
        .await
        .unwrap()
        .unwrap();
    let row = squadron_actors::store::gateway::providers(&db, org.id)
        .await
        .unwrap()
        .remove(0);
    let sealed = row.api_key_sealed.unwrap();
    assert!(
        sealed.starts_with("v1:") && !sealed.contains(KEY),
        "sealed at rest"
    );
    assert!(!row.headers_sealed.unwrap().contains("org-secret"));

    // The real key and headers go upstream.
    let res = app.post("/v1/chat/completions", chat("gpt", false)).await;
    assert_eq!(res.status(), 200);
    let (headers, _) = fake.recorder.last();
    assert_eq!(headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(headers["x-org-secret"], "org-secret-value-42");

    let res = app
        .post(
            "/v1/core/add/provider",
            json!({ "name": "fake", "base_url": fake.base_url }),
        )
        .await;
    assert_eq!(res.status(), 409);
    let res = app
        .post(
            "/v1/core/add/provider",
            json!({ "name": "ftp", "base_url": "ftp://x" }),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(body(res).await["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn models_are_listed_mapped_and_guard_their_provider() {
    let (app, fake) = gateway().await;
    let models = body(app.get("/v1/models").await).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"gpt") && ids.contains(&"embedder"), "{ids:?}");
    assert_eq!(models["data"][0]["object"], "model");
    let map = body(app.get("/v1/modelmap").await).await;
    let gpt = map["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "gpt")
        .unwrap();
    assert_eq!(
        (
            gpt["provider"].as_str(),
            gpt["upstream_model"].as_str(),
            gpt["kind"].as_str()
        ),
        (Some("fake"), Some("gpt-fake"), Some("chat"))
    );
    let upstream = body(
        app.post("/v1/core/models", json!({ "provider": "fake" }))
            .await,
    )
    .await;
    assert_eq!(upstream["data"][0]["id"], "gpt-fake");

    assert_eq!(
        app.post(
            "/v1/core/add/model",
            json!({ "name": "gpt", "provider": "fake", "model": "x" })
        )
        .await
        .status(),
        409
    );
    assert_eq!(
        app.post(
            "/v1/core/add/model",
            json!({ "name": "new", "provider": "nope", "model": "x" })
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        app.post(
            "/v1/core/add/model",
            json!({ "name": "new", "provider": "fake", "model": "x", "kind": "audio" })
        )
        .await
        .status(),
        400
    );
    let res = app
        .post("/v1/core/delete/provider", json!({ "name": "fake" }))
        .await;
    assert_eq!(res.status(), 409, "models still use it");
    // A model the server has resolved (and cached) is gone once deleted, and a new model of
    // the same name maps where the new one says.
    let res = app.post("/v1/chat/completions", chat("gpt", false)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.post("/v1/core/delete/model", json!({ "name": "gpt" }))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post("/v1/core/delete/model", json!({ "name": "gpt" }))
            .await
            .status(),
        404
    );
    let res = app.post("/v1/chat/completions", chat("gpt", false)).await;
    assert_eq!(
        res.status(),
        404,
        "a deleted model is not served from a cache"
    );
    let res = app
        .post(
            "/v1/core/add/model",
            json!({ "name": "gpt", "provider": "fake", "model": "gpt-second" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app.post("/v1/chat/completions", chat("gpt", false)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(fake.recorder.last().1["model"], "gpt-second");

    // Another organization sees none of it, and a squad key may not use the gateway.
    let theirs = app.org_token("rival", Role::Admin).await;
    let res = app
        .as_token(&theirs, Method::GET, "/v1/models")
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["data"], json!([]));
    let res = app
        .as_token(&theirs, Method::POST, "/v1/chat/completions")
        .json(&chat("embedder", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let squad = app.set_up_squad(&["Writer"]).await;
    let res = app
        .as_agent(&squad.squad_key, "Writer", Method::GET, "/v1/models")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn chat_completions_pass_through_with_the_upstream_model() {
    let (app, fake) = gateway().await;
    let mut request = chat("gpt", false);
    request["top_k"] = json!(5);
    request["vendor_extension"] = json!({ "keep": true });
    let res = app.post("/v1/chat/completions", request).await;
    assert_eq!(res.status(), 200);
    let completion = body(res).await;
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "world new brave hello "
    );
    assert_eq!(completion["usage"]["prompt_tokens"], 7);
    let (_, sent) = fake.recorder.last();
    assert_eq!(sent["model"], "gpt-fake");
    assert_eq!(sent["top_k"], 5, "unknown parameters pass through");
    assert_eq!(sent["vendor_extension"], json!({ "keep": true }));

    for (payload, status) in [
        (json!({ "messages": [] }), 400),
        (json!({ "model": "gpt" }), 400),
        (json!({ "model": "no-such", "messages": [] }), 404),
        (json!({ "model": "embedder", "messages": [] }), 404),
    ] {
        let res = app.post("/v1/chat/completions", payload.clone()).await;
        assert_eq!(res.status(), status, "{payload}");
        assert!(body(res).await["error"]["message"].is_string());
    }
}

/// The `data:` payloads of an SSE response, in order.
async fn sse_data(res: reqwest::Response) -> Vec<String> {
    let text = res.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: ").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn streams_end_with_done_and_usage_only_when_asked() {
    let (app, fake) = gateway().await;
    let tokens_before = app
        .metric("squadron_gateway_tokens_total{direction=\"out\"}")
        .await;
    let res = app.post("/v1/chat/completions", chat("gpt", true)).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = sse_data(res).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "world new brave hello ");
    assert!(
        chunks.iter().all(|c| c["usage"].is_null()),
        "no usage chunk unless asked"
    );
    let (_, sent) = fake.recorder.last();
    assert_eq!(
        sent["stream_options"]["include_usage"], true,
        "usage is always asked of the upstream"
    );
    assert!(
        app.metric("squadron_gateway_tokens_total{direction=\"out\"}")
            .await
            >= tokens_before + 4.0
    );
    for series in [
        "squadron_gateway_requests_total{status=\"200\"}",
        "squadron_gateway_overhead_seconds_count",
        "squadron_gateway_upstream_seconds_count",
        "squadron_gateway_time_to_first_token_seconds_count",
        "squadron_gateway_streams_in_flight",
    ] {
        let text = app
            .anon(Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains(series), "/metrics lacks {series}");
    }

    let mut asked = chat("gpt", true);
    asked["stream_options"] = json!({ "include_usage": true });
    let events = sse_data(app.post("/v1/chat/completions", asked).await).await;
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    assert_eq!(usage["choices"], json!([]));

    // Running totals on every chunk are counted once: the last one. (Metrics name no model,
    // and other tests count beside this one: at least the 4, the exact count is not ours.)
    let tokens_before = app
        .metric("squadron_gateway_tokens_total{direction=\"out\"}")
        .await;
    let events = sse_data(
        app.post("/v1/chat/completions", chat("running", true))
            .await,
    )
    .await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert!(
        app.metric("squadron_gateway_tokens_total{direction=\"out\"}")
            .await
            >= tokens_before + 4.0
    );
}

#[tokio::test]
async fn upstream_failures_keep_openais_error_shape() {
    let (app, _fake) = gateway().await;
    let res = app
        .post("/v1/chat/completions", chat("flaky-429", false))
        .await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "7");
    let err = body(res).await;
    assert_eq!(err["error"]["type"], "rate_limit_error");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("slow down"));

    let res = app
        .post("/v1/chat/completions", chat("flaky-500", true))
        .await;
    assert_eq!(res.status(), 502);
    assert_eq!(body(res).await["error"]["type"], "server_error");

    let started = std::time::Instant::now();
    let res = app.post("/v1/chat/completions", chat("stuck", false)).await;
    assert_eq!(res.status(), 504);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the upstream timeout (1 s) applies"
    );

    // A stream broken mid-way ends with an error object instead of [DONE].
    let events = sse_data(app.post("/v1/chat/completions", chat("broken", true)).await).await;
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "server_error");
    assert!(!events.contains(&"[DONE]".to_owned()));
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_stream() {
    let (app, fake) = gateway().await;
    let res = app.post("/v1/chat/completions", chat("slow", true)).await;
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    stream.next().await.expect("a first chunk").unwrap();
    drop(stream);
    eventually("the upstream stream is dropped", || async {
        fake.recorder.dropped_streams.load(Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test]
async fn a_squados_reply_is_kept_when_its_reader_leaves_and_a_v1_turn_is_cancelled() {
    let (app, fake) = gateway().await;
    let agent = body(
        app.post(
            "/v1/core/add/agent",
            json!({ "name": "Patient", "model": "unhurried" }),
        )
        .await,
    )
    .await;
    let path = format!("/api/v1/chat/{}", agent["id"].as_str().unwrap());
    let mut dashboard = app.ws(&app.admin).await;
    dashboard
        .subscribe(agent["squad_id"].as_str().unwrap(), None)
        .await;

    // SquadOS: the reader leaves after the first event; the turn runs on and is kept.
    let res = app
        .post(&path, json!({ "message": "wait for it", "stream": true }))
        .await;
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    stream.next().await.expect("a first event").unwrap();
    drop(stream);
    let conversation = body(app.get("/api/v1/conversations").await).await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let messages = format!("/api/v1/conversations/{conversation}/messages");
    eventually("the reply is kept", || async {
        body(app.get(&messages).await).await["data"]
            .as_array()
            .is_some_and(|m| m.len() == 2)
    })
    .await;
    let kept = body(app.get(&messages).await).await;
    let reply = kept["data"][1]["content"].as_str().unwrap();
    assert!(
        reply.starts_with("it for wait ") && reply.ends_with("tick "),
        "{reply}"
    );
    assert!(
        kept["data"][1]["usage"]["completion_tokens"].is_u64(),
        "{kept}"
    );
    assert_eq!(fake.recorder.dropped_streams.load(Ordering::SeqCst), 0);

    // `/v1`: a client that leaves ends the turn, and the squad is told it was cancelled.
    let res = app
        .post("/v1/chat/completions", chat("Patient", true))
        .await;
    let mut stream = res.bytes_stream();
    stream.next().await.expect("a first chunk").unwrap();
    drop(stream);
    eventually("the upstream stream is dropped", || async {
        fake.recorder.dropped_streams.load(Ordering::SeqCst) == 1
    })
    .await;
    let mut outcomes = Vec::new();
    while outcomes.len() < 2 {
        let msg = dashboard.next().await;
        if msg["event"]["kind"] == "agent.completion.finished" {
            outcomes.push(msg["event"]["outcome"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(outcomes, ["completed", "cancelled"]);
}

#[tokio::test]
async fn embeddings_in_float_and_base64_and_the_seeds_refusals() {
    let (app, fake) = gateway().await;
    let res = app
        .post(
            "/v1/embeddings",
            json!({ "model": "embedder", "input": ["abc", "hello"] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let floats = body(res).await;
    assert_eq!(floats["model"], "embedder");
    assert_eq!(floats["data"][1]["embedding"][0], 5.0 / 8.0);
    assert_eq!(fake.recorder.last().1["model"], "embed-fake");

    let res = app
        .post(
            "/v1/embeddings",
            json!({ "model": "embedder", "input": "hello", "encoding_format": "base64" }),
        )
        .await;
    let encoded = body(res).await["data"][0]["embedding"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let first = f32::from_le_bytes(bytes[..4].try_into().unwrap());
    assert_eq!((bytes.len(), first), (32, 5.0 / 8.0));

    let res = app
        .post(
            "/v1/embeddings",
            json!({ "model": "text-embedding-3-large", "input": "x" }),
        )
        .await;
    assert_eq!(res.status(), 400);
    let message = body(res).await["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    for name in [
        "text-embedding-3-small",
        "nomic-embed-text-v1.5",
        "embedder",
    ] {
        assert!(message.contains(name), "{message}");
    }
    for bad in [
        json!({ "model": "gpt", "input": "x" }),
        json!({ "model": "embedder", "input": [] }),
        json!({ "model": "embedder", "input": "x", "encoding_format": "hex" }),
        json!({ "model": "embedder", "input": "x", "dimensions": 9 }),
    ] {
        assert_eq!(
            app.post("/v1/embeddings", bad.clone()).await.status(),
            400,
            "{bad}"
        );
    }
}

/// The official `openai` Python package, unchanged, against our /v1. `scripts/test` installs
/// it and names its interpreter in `SQUADRON_TEST_PYTHON`.
#[tokio::test]
async fn the_official_openai_python_sdk_works_unchanged() {
    let Some(python) = std::env::var_os("SQUADRON_TEST_PYTHON") else {
        eprintln!(
            "skipped: set SQUADRON_TEST_PYTHON to a python with `openai` (scripts/test does)"
        );
        return;
    };
    let (app, _fake) = gateway().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_compat.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .env("OPENAI_BASE_URL", app.url("/v1"))
        .env("OPENAI_API_KEY", &app.admin)
        .output()
        .await
        .expect("python runs");
    assert!(
        out.status.success(),
        "the openai SDK failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn agents_answer_with_their_prompt_and_defaults_and_are_mirrored_live() {
    let (app, fake) = gateway().await;
    let res = app
        .post("/v1/core/add/agent", json!({
            "name": "Pirate", "model": "gpt", "system_prompt": "Talk like a pirate.", "temperature": 0.2,
        }))
        .await;
    assert_eq!(res.status(), 200);
    let agent = body(res).await;
    assert_eq!(
        (
            agent["model"].as_str(),
            agent["params"]["temperature"].as_f64()
        ),
        (Some("gpt"), Some(0.2))
    );
    let squad_id = agent["squad_id"].as_str().unwrap().to_owned();

    let listed = body(app.get("/v1/models").await).await;
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "Pirate" && m["owned_by"] == "agent"));
    let core = body(app.get("/v1/core/agents").await).await;
    assert_eq!(core["data"][0]["system_prompt"], "Talk like a pirate.");

    // A dashboard watching the agent's squad sees the completion as it happens.
    let mut dashboard = app.ws(&app.admin).await;
    dashboard.subscribe(&squad_id, None).await;
    let events = sse_data(app.post("/v1/chat/completions", chat("Pirate", true)).await).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let (_, sent) = fake.recorder.last();
    assert_eq!(sent["model"], "gpt-fake");
    assert_eq!(
        sent["messages"][0],
        json!({ "role": "system", "content": "Talk like a pirate." })
    );
    assert_eq!(
        sent["messages"][1]["content"], "be brief",
        "the client's own messages follow"
    );
    assert_eq!(sent["temperature"], 0.2, "the agent's default fills in");

    let mut kinds = Vec::new();
    let mut text = String::new();
    while !kinds.contains(&"agent.completion.finished".to_owned()) {
        let msg = dashboard.next().await;
        let kind = msg["event"]["kind"].as_str().unwrap().to_owned();
        if kind == "agent.completion.delta" {
            text.push_str(msg["event"]["text"].as_str().unwrap());
        }
        if kind == "agent.completion.finished" {
            assert!(
                msg["seq"].is_i64(),
                "the finished completion is a stored event"
            );
            assert_eq!(msg["event"]["outcome"], "completed");
            assert_eq!(msg["event"]["usage"]["completion_tokens"], 4);
        }
        kinds.push(kind);
    }
    assert_eq!(kinds[0], "agent.completion.started");
    assert_eq!(
        text, "world new brave hello ",
        "the deltas add up to the answer"
    );

    // A client's own temperature wins over the default.
    let mut warm = chat("Pirate", false);
    warm["temperature"] = json!(0.9);
    assert_eq!(app.post("/v1/chat/completions", warm).await.status(), 200);
    assert_eq!(fake.recorder.last().1["temperature"], 0.9);
}

#[tokio::test]
async fn models_and_agents_share_one_namespace() {
    let (app, _fake) = gateway().await;
    let res = app
        .post(
            "/v1/core/add/agent",
            json!({ "name": "gpt", "model": "gpt" }),
        )
        .await;
    assert_eq!(res.status(), 409, "an agent may not take a model's name");
    assert_eq!(
        app.post(
            "/v1/core/add/agent",
            json!({ "name": "Helper", "model": "gpt" })
        )
        .await
        .status(),
        200
    );
    let res = app
        .post(
            "/v1/core/add/model",
            json!({ "name": "Helper", "provider": "fake", "model": "x" }),
        )
        .await;
    assert_eq!(res.status(), 409, "nor a model an agent's");
    assert_eq!(
        app.post(
            "/v1/core/add/agent",
            json!({ "name": "helper", "model": "gpt" })
        )
        .await
        .status(),
        409
    );
    for bad in [
        json!({ "name": "X1", "model": "no-such" }),
        json!({ "name": "X2", "model": "embedder" }),
    ] {
        assert_eq!(
            app.post("/v1/core/add/agent", bad.clone()).await.status(),
            404,
            "{bad}"
        );
    }
    assert_eq!(
        app.post(
            "/v1/core/add/agent",
            json!({ "name": "X3", "model": "gpt", "mood": "sunny" })
        )
        .await
        .status(),
        400
    );
    assert_eq!(
        app.post("/v1/core/delete/model", json!({ "name": "gpt" }))
            .await
            .status(),
        409,
        "an agent uses it"
    );
    assert_eq!(
        app.post("/v1/core/delete/agent", json!({ "name": "Helper" }))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post("/v1/chat/completions", chat("Helper", false))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.post("/v1/core/delete/model", json!({ "name": "gpt" }))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn squados_lists_the_organizations_agents() {
    let (app, _fake) = gateway().await;
    app.post(
        "/v1/core/add/agent",
        json!({ "name": "Pirate", "model": "gpt" }),
    )
    .await;
    let squad = app.set_up_squad(&["Writer"]).await;
    let res = app.get("/api/v1/agents").await;
    assert_eq!(res.status(), 200);
    let agents = body(res).await["data"].as_array().unwrap().clone();
    let names: Vec<&str> = agents.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"Pirate") && names.contains(&"Writer"),
        "{names:?}"
    );
    let pirate = agents.iter().find(|a| a["name"] == "Pirate").unwrap();
    assert_eq!(pirate["model"], "gpt");
    let id = pirate["id"].as_str().unwrap();
    let one = body(app.get(&format!("/api/v1/agents/{id}")).await).await;
    assert_eq!(one["data"]["name"], "Pirate");

    let theirs = app.org_token("rival", Role::Admin).await;
    let res = app
        .as_token(&theirs, Method::GET, &format!("/api/v1/agents/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .as_token(&theirs, Method::GET, "/api/v1/agents")
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["meta"]["count"], 0);
    let writer = squad.setup["agents"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/agents/{writer}")).await.status(),
        200
    );
}

#[tokio::test]
async fn squados_chat_keeps_conversations_and_sends_their_history() {
    let (app, fake) = gateway().await;
    let agent = body(
        app.post(
            "/v1/core/add/agent",
            json!({ "name": "Pirate", "model": "gpt", "system_prompt": "Arr." }),
        )
        .await,
    )
    .await;
    let id = agent["id"].as_str().unwrap();
    let path = format!("/api/v1/chat/{id}");

    let res = app.post(&path, json!({ "message": "hello there" })).await;
    assert_eq!(res.status(), 200);
    let first = body(res).await["data"].clone();
    assert_eq!(first["message"]["role"], "assistant");
    assert_eq!(first["message"]["content"], "there hello ");
    let conversation = first["conversation_id"].as_str().unwrap().to_owned();

    // Continuing sends the history, after the agent's prompt.
    let res = app
        .post(
            &path,
            json!({ "message": "and again", "conversation_id": conversation }),
        )
        .await;
    assert_eq!(
        body(res).await["data"]["conversation_id"],
        conversation.as_str()
    );
    let (_, sent) = fake.recorder.last();
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["system", "user", "assistant", "user"]);
    assert_eq!(sent["messages"][3]["content"], "and again");

    // Streamed: the conversation first, deltas, then done; the reply is stored.
    let res = app
        .post(
            &path,
            json!({ "message": "one two", "conversation_id": conversation, "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let events: Vec<(&str, Value)> = text
        .split("\n\n")
        .filter_map(|frame| {
            let kind = frame.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((kind, serde_json::from_str(data).unwrap()))
        })
        .collect();
    assert_eq!(events[0].0, "conversation");
    let streamed: String = events
        .iter()
        .filter(|(k, _)| *k == "delta")
        .map(|(_, d)| d["content"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, "two one ");
    let (kind, done) = events.last().unwrap();
    assert_eq!(*kind, "done");
    assert_eq!(done["usage"]["completion_tokens"], 2);

    let messages = body(
        app.get(&format!("/api/v1/conversations/{conversation}/messages"))
            .await,
    )
    .await;
    let contents: Vec<&str> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        vec![
            "hello there",
            "there hello ",
            "and again",
            "again and ",
            "one two",
            "two one "
        ]
    );

    // Listing, filtering, renaming and archiving.
    app.post(&path, json!({ "message": "a second conversation" }))
        .await;
    let all = body(
        app.get(&format!("/api/v1/conversations?agent_id={id}&limit=1"))
            .await,
    )
    .await;
    assert_eq!(
        (all["meta"]["count"].as_u64(), all["meta"]["total"].as_u64()),
        (Some(1), Some(2))
    );
    let res = app
        .req(
            Method::PATCH,
            &format!("/api/v1/conversations/{conversation}"),
        )
        .json(
            &json!({ "title": "Pirate talk", "status": "archived", "metadata": { "ticket": 42 } }),
        )
        .send()
        .await
        .unwrap();
    let patched = body(res).await["data"].clone();
    assert_eq!(
        (patched["title"].as_str(), patched["status"].as_str()),
        (Some("Pirate talk"), Some("archived"))
    );
    assert_eq!(patched["metadata"]["ticket"], 42);
    let archived = body(app.get("/api/v1/conversations?status=archived").await).await;
    assert_eq!(archived["meta"]["total"], 1);
    let res = app
        .post(
            &path,
            json!({ "message": "still there?", "conversation_id": conversation }),
        )
        .await;
    assert_eq!(
        res.status(),
        409,
        "an archived conversation takes no more messages"
    );

    for (payload, status) in [
        (json!({ "message": "  " }), 400),
        (
            json!({ "message": "hi", "conversation_id": uuid::Uuid::new_v4() }),
            404,
        ),
    ] {
        assert_eq!(
            app.post(&path, payload.clone()).await.status(),
            status,
            "{payload}"
        );
    }
    assert_eq!(
        app.post(
            &format!("/api/v1/chat/{}", uuid::Uuid::new_v4()),
            json!({ "message": "hi" })
        )
        .await
        .status(),
        404
    );
    let squad = app.set_up_squad(&["Writer"]).await;
    let writer = squad.setup["agents"][0]["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/api/v1/chat/{writer}"),
            json!({ "message": "hi" }),
        )
        .await;
    assert_eq!(
        res.status(),
        400,
        "a squad agent without a model cannot chat"
    );

    let theirs = app.org_token("rival", Role::Admin).await;
    let res = app
        .as_token(
            &theirs,
            Method::GET,
            &format!("/api/v1/conversations/{conversation}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .as_token(&theirs, Method::POST, &path)
        .json(&json!({ "message": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn core_utilities_config_prompt_and_workflow() {
    let (app, _fake) = gateway().await;
    let config = body(app.get("/v1/core/config").await).await;
    assert_eq!(config["embedding_models"]["account"], json!(["embedder"]));
    assert_eq!(
        config["unsupported_embedding_models"],
        json!(["text-embedding-3-large"])
    );
    assert!(config["rate_limits_per_minute"]["gateway"].is_u64());
    assert!(!config.to_string().contains(KEY), "no secrets");

    // The fake answers with the words reversed: enough to see what went where.
    let res = app
        .post(
            "/v1/core/generate/prompt",
            json!({ "model": "gpt", "description": "careful code reviewer" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["prompt"], "reviewer code careful");

    for name in ["First", "Second"] {
        app.post(
            "/v1/core/add/agent",
            json!({ "name": name, "model": "gpt" }),
        )
        .await;
    }
    let res = app
        .post(
            "/v1/core/agent-workflow",
            json!({ "agents": ["First", "Second"], "input": "one two three" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let run = body(res).await;
    assert_eq!(run["steps"][0]["output"], "three two one ");
    assert_eq!(
        run["output"], "one two three ",
        "the second reversed the first's output"
    );

    let res = app
        .post(
            "/v1/core/agent-workflow",
            json!({ "agents": ["First", "Ghost"], "input": "a b", "stream": true }),
        )
        .await;
    let text = res.text().await.unwrap();
    let kinds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(kinds, vec!["step", "error", "done"], "{text}");
    for bad in [
        json!({ "agents": [], "input": "x" }),
        json!({ "agents": ["First"], "input": " " }),
    ] {
        assert_eq!(
            app.post("/v1/core/agent-workflow", bad.clone())
                .await
                .status(),
            400,
            "{bad}"
        );
    }
    let res = app
        .post(
            "/v1/core/agent-workflow",
            json!({ "agents": ["Ghost"], "input": "x" }),
        )
        .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn scraping_refuses_private_targets_unless_allowed() {
    let (app, fake) = gateway().await;
    let site = fake.base_url.trim_end_matches("/v1").to_owned();
    let member = app.org_token("default", Role::Member).await;
    let res = app
        .as_token(&member, Method::POST, "/v1/core/scrape-url")
        .json(&json!({ "url": format!("{site}/page") }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        400,
        "loopback is refused to members by default"
    );
    assert!(body(res).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("private"));
    for bad in ["ftp://example.com/x", "not a url"] {
        assert_eq!(
            app.post("/v1/core/scrape-url", json!({ "url": bad }))
                .await
                .status(),
            400,
            "{bad}"
        );
    }

    // `--scrape-allow-private` lets members too.
    let allowed = spawn_with(|c| c.scrape_allow_private = true).await;
    let member = allowed.org_token("default", Role::Member).await;
    let res = allowed
        .as_token(&member, Method::POST, "/v1/core/scrape-url")
        .json(&json!({ "url": format!("{site}/hop") }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = body(res).await;
    assert_eq!(page["title"], "Fake page");
    assert_eq!(
        page["text"], "Hello readable text",
        "scripts and markup are gone"
    );
    assert!(
        page["url"].as_str().unwrap().ends_with("/page"),
        "redirects are followed"
    );
    let res = allowed
        .post(
            "/v1/core/scrape-url",
            json!({ "url": format!("{site}/big") }),
        )
        .await;
    assert_eq!(res.status(), 400, "the size limit holds");
}
