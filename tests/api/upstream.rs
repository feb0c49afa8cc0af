//! A small OpenAI-compatible upstream for the gateway tests. It records what it is sent and
//! injects faults chosen by the upstream model name: `fail-429`, `fail-500`, `stall`, `broken`
//! (a stream cut off mid-way), `slow` (a long stream, to test cancellation) and `slow-brief`
//! (the same for about a second, to see a stream finish unread). Embedding
//! models: `embed-fake` (8 numbers from the input's length), `embed-words` (64-dimensional
//! bags of words, so texts that share words are near), `embed-flaky` (`embed-words` that
//! answers every other call with a 429), `embed-slow` (`embed-words` after 150 ms),
//! `embed-refused` (always a 400) and `embed-refused-once` (a 400 the first time only).
//! `running-usage` streams like `gpt-fake` with running usage totals on every chunk.
//! `fail-401` answers 401 (a provider refusing its key), `fail-400-long` a 400 whose message
//! runs on past its first sentence. Under `/r307/v1` every route answers a 307 to `/v1`.
//! Tool models: `tool-caller` reads a last user message `call NAME {ARGS}` and proposes that
//! tool call, then answers with the tool results it was given; `tool-looper` proposes it
//! again every time, until told `tool_choice: none`. Streamed, a call comes in pieces (its
//! arguments split in two) and an answer word by word.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Default)]
pub struct Recorder {
    /// (headers, body) of every request, in order.
    pub requests: Mutex<Vec<(HeaderMap, Value)>>,
    /// Streams whose client went away before the end.
    pub dropped_streams: AtomicUsize,
    /// Calls to `/v1/embeddings`.
    pub embed_calls: AtomicUsize,
    /// Calls to `embed-refused-once`.
    pub refused_once: AtomicUsize,
}

impl Recorder {
    pub fn last(&self) -> (HeaderMap, Value) {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request reached the upstream")
    }
}

pub struct FakeUpstream {
    /// The base URL to register as a provider (`http://127.0.0.1:PORT/v1`).
    pub base_url: String,
    pub recorder: Arc<Recorder>,
}

pub async fn start() -> FakeUpstream {
    let recorder = Arc::new(Recorder::default());
    let app = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .route("/page", get(|| async {
            axum::response::Html("<html><head><title>Fake page</title><script>track()</script></head><body><h1>Hello</h1><p>readable <i>text</i></p></body></html>")
        }))
        .route("/big", get(|| async { "x".repeat(3 * 1024 * 1024) }))
        .route("/hop", get(|| async { axum::response::Redirect::temporary("/page") }))
        .route(
            "/r307/v1/{*rest}",
            axum::routing::any(|axum::extract::Path(rest): axum::extract::Path<String>| async move {
                axum::response::Redirect::temporary(&format!("/v1/{rest}"))
            }),
        )
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeUpstream { base_url, recorder }
}

async fn models() -> Json<Value> {
    Json(json!({ "object": "list", "data": [
        { "id": "gpt-fake", "object": "model", "created": 0, "owned_by": "fake" },
        { "id": "embed-fake", "object": "model", "created": 0, "owned_by": "fake" },
    ]}))
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(
            json!({ "error": { "message": message, "type": "fake", "param": null, "code": null } }),
        ),
    )
        .into_response()
}

/// Answers with the last user message, reversed word by word.
fn reply(body: &Value) -> Vec<String> {
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    let text = last["content"].as_str().unwrap_or("").to_owned();
    text.split_whitespace()
        .rev()
        .map(|w| format!("{w} "))
        .collect()
}

/// The tool models' answer: a tool call, or the tool results they were given.
fn tool_reply(model: &str, body: &Value) -> Option<Value> {
    if model != "tool-caller" && model != "tool-looper" {
        return None;
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let results: Vec<String> = messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or("").to_owned())
        .collect();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let again = model == "tool-looper" || messages.last().is_some_and(|m| m["role"] == "user");
    if body["tool_choice"] != "none" && again {
        if let Some(call) = last_user.strip_prefix("call ") {
            let (name, arguments) = call.split_once(' ').unwrap_or((call, "{}"));
            return Some(json!({
                "role": "assistant", "content": null,
                "tool_calls": [{
                    "id": format!("call_{}", results.len()), "type": "function",
                    "function": { "name": name, "arguments": arguments },
                }],
            }));
        }
    }
    Some(json!({
        "role": "assistant",
        "content": format!("{} tool results: {}", results.len(), results.join(" | ")),
    }))
}

/// A tool model's reply as chunks: a call in pieces, or an answer word by word; then usage.
fn stream_tool_reply(model: &str, message: Value, finish: &str) -> Response {
    let mut frames = vec![chunk(model, json!({ "role": "assistant" }), Value::Null)];
    if let Some(call) = message["tool_calls"].get(0) {
        let arguments = call["function"]["arguments"].as_str().unwrap_or("");
        let (first, second) = arguments.split_at(arguments.len() / 2);
        frames.push(chunk(
            model,
            json!({ "tool_calls": [{ "index": 0, "id": call["id"], "type": "function",
            "function": { "name": call["function"]["name"], "arguments": "" } }] }),
            Value::Null,
        ));
        for piece in [first, second] {
            frames.push(chunk(
                model,
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] }),
                Value::Null,
            ));
        }
    } else {
        let text = message["content"].as_str().unwrap_or("");
        for word in text.split_inclusive(' ') {
            frames.push(chunk(model, json!({ "content": word }), Value::Null));
        }
    }
    frames.push(chunk(model, json!({}), json!(finish)));
    let usage = json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [],
        "usage": { "prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8 } });
    frames.push(format!("data: {usage}\n\n"));
    frames.push("data: [DONE]\n\n".to_owned());
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(frames.concat()))
        .unwrap()
}

fn chunk(model: &str, delta: Value, finish: Value) -> String {
    let chunk = json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    });
    format!("data: {chunk}\n\n")
}

/// Counts a stream as dropped unless it reached its end.
struct Finish(Arc<Recorder>, bool);

impl Drop for Finish {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped_streams.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn chat(
    State(recorder): State<Arc<Recorder>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    recorder
        .requests
        .lock()
        .unwrap()
        .push((headers, body.clone()));
    let model = body["model"].as_str().unwrap_or("").to_owned();
    match model.as_str() {
        "fail-429" => {
            let mut res = error(StatusCode::TOO_MANY_REQUESTS, "slow down");
            res.headers_mut()
                .insert("retry-after", "7".parse().unwrap());
            return res;
        }
        "fail-500" => return error(StatusCode::INTERNAL_SERVER_ERROR, "it broke"),
        "fail-401" => return error(StatusCode::UNAUTHORIZED, "Incorrect API key provided: sk-k"),
        "fail-400-long" => {
            return error(
                StatusCode::BAD_REQUEST,
                "This request is refused. The upstream's private notes follow: SECRET-NOTES",
            )
        }
        "stall" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return error(StatusCode::INTERNAL_SERVER_ERROR, "too late");
        }
        _ => {}
    }
    if let Some(message) = tool_reply(&model, &body) {
        let finish = if message["tool_calls"].is_null() {
            "stop"
        } else {
            "tool_calls"
        };
        if body["stream"].as_bool() == Some(true) {
            return stream_tool_reply(&model, message, finish);
        }
        return Json(json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
            "usage": { "prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8 },
        }))
        .into_response();
    }
    let words = reply(&body);
    let usage = json!({ "prompt_tokens": 7, "completion_tokens": words.len(), "total_tokens": 7 + words.len() });
    if body["stream"].as_bool() != Some(true) {
        return Json(json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": words.concat() }, "finish_reason": "stop" }],
            "usage": usage,
        }))
        .into_response();
    }
    let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let stream = async_stream::stream! {
        let mut finish = Finish(recorder.clone(), false);
        yield Ok::<Bytes, std::io::Error>(Bytes::from(chunk(&model, json!({ "role": "assistant" }), Value::Null)));
        let count = match model.as_str() {
            "slow" => 400,
            "slow-brief" => 40,
            _ => words.len(),
        };
        for i in 0..count {
            if model.starts_with("slow") {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            if model == "broken" && i == 1 {
                // Let the headers and first chunks go out, so the break is mid-stream.
                tokio::time::sleep(Duration::from_millis(100)).await;
                yield Err(std::io::Error::other("connection reset"));
                return;
            }
            let word = words.get(i).cloned().unwrap_or_else(|| "tick ".into());
            if model == "running-usage" {
                // Running totals on every chunk, as some providers send them.
                let frame = json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                    "choices": [{ "index": 0, "delta": { "content": word }, "finish_reason": null }],
                    "usage": { "prompt_tokens": 7, "completion_tokens": i + 1, "total_tokens": 8 + i } });
                yield Ok(Bytes::from(format!("data: {frame}\n\n")));
                continue;
            }
            yield Ok(Bytes::from(chunk(&model, json!({ "content": word }), Value::Null)));
        }
        yield Ok(Bytes::from(chunk(&model, json!({}), json!("stop"))));
        if include_usage {
            let last = json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [], "usage": usage });
            yield Ok(Bytes::from(format!("data: {last}\n\n")));
        }
        yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
        finish.1 = true;
    };
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Deterministic 8-dimensional vectors: the input's length and bytes, scaled.
async fn embeddings(
    State(recorder): State<Arc<Recorder>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    recorder
        .requests
        .lock()
        .unwrap()
        .push((headers, body.clone()));
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or("").to_owned())
            .collect(),
        _ => return error(StatusCode::BAD_REQUEST, "bad input"),
    };
    let call = recorder.embed_calls.fetch_add(1, Ordering::SeqCst);
    let model = body["model"].as_str().unwrap_or_default();
    match model {
        "embed-flaky" if call % 2 == 0 => {
            return error(StatusCode::TOO_MANY_REQUESTS, "slow down");
        }
        "embed-slow" => tokio::time::sleep(Duration::from_millis(150)).await,
        "embed-refused" => return error(StatusCode::BAD_REQUEST, "this input is refused"),
        "embed-refused-once" if recorder.refused_once.fetch_add(1, Ordering::SeqCst) == 0 => {
            return error(StatusCode::BAD_REQUEST, "this input is refused, this time");
        }
        _ => {}
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let v = if model == "embed-fake" {
                (0..8).map(|d| (text.len() + d) as f32 / 8.0).collect()
            } else {
                words_vector(text)
            };
            json!({ "object": "embedding", "index": i, "embedding": v })
        })
        .collect();
    Json(json!({ "object": "list", "data": data, "model": body["model"], "usage": { "prompt_tokens": inputs.len(), "total_tokens": inputs.len() } }))
        .into_response()
}

/// A text's words hashed into 64 buckets and scaled to length 1.
pub fn words_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; 64];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
    {
        let hash = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100000001b3)
            });
        v[(hash % 64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}
