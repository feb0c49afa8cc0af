//! Agent tools against a real MCP server nobody here wrote: `@modelcontextprotocol/server-everything`
//! from npm (installed into `tests/npm` by `scripts/test`), over stdio and streamable HTTP.
//! The fake upstream's `tool-caller` and `tool-looper` models propose the tool calls. One
//! test adds `tests/npm/mcp-growing.mjs` (on the official SDK), whose tool list grows when
//! asked, to see the list follow the server's announcements.

use reqwest::Method;
use serde_json::{json, Value};
use squadron_actors::store::tokens::Role;

use crate::helpers::{body, eventually, spawn_with, TestApp, Ws, WAIT};
use crate::upstream::{self, FakeUpstream};

/// The server's entry point, or `None` (test skipped) when `tests/npm` was not installed.
/// Under `scripts/test` (which installs it) a missing install fails instead.
fn everything() -> Option<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
    );
    if std::path::Path::new(path).exists() {
        return Some(path.to_owned());
    }
    assert!(
        std::env::var_os("SQUADRON_TEST_NPM").is_none(),
        "scripts/test installs tests/npm, yet {path} is missing"
    );
    eprintln!("skipped: run `npm ci` in tests/npm (scripts/test does)");
    None
}

/// A server that allows stdio MCP servers, with provider `fake` and the tool models.
async fn tools_app(tweak: impl FnOnce(&mut squadron::config::Config)) -> (TestApp, FakeUpstream) {
    let app = spawn_with(|c| {
        c.allow_stdio_servers = true;
        c.mcp_allow_private = true;
        c.mcp_backoff_ms = 50;
        tweak(c);
    })
    .await;
    let fake = upstream::start().await;
    let res = app
        .post(
            "/v1/core/add/provider",
            json!({ "name": "fake", "base_url": fake.base_url }),
        )
        .await;
    assert_eq!(res.status(), 200);
    for model in ["tool-caller", "tool-looper", "fail-429"] {
        let res = app
            .post(
                "/v1/core/add/model",
                json!({ "name": model, "provider": "fake", "model": model }),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    (app, fake)
}

/// Adds the stdio server `name` running server-everything (through `sh`, which first writes
/// its pid to `pid_file` when given) and waits until it is connected.
async fn add_stdio(app: &TestApp, name: &str, index: &str, pid_file: Option<&str>) -> Value {
    let script = match pid_file {
        Some(pid_file) => format!("echo $$ > {pid_file}; exec node {index} stdio"),
        None => format!("exec node {index} stdio"),
    };
    let res = app
        .post(
            "/v1/core/add/server",
            json!({ "name": name, "command": "sh", "args": ["-c", script], "env": { "EVERYTHING_TOKEN": "env-secret-value-99" } }),
        )
        .await;
    assert_eq!(res.status(), 200, "stdio server added");
    let server = body(res).await;
    assert_eq!(server["transport"], "stdio");
    assert!(
        server["status"] == "connecting" || server["status"] == "connected",
        "a new server is on its way up: {server}"
    );
    assert_eq!(server["secrets"]["EVERYTHING_TOKEN"], "env...e-99");
    connected(app, name).await
}

/// Waits until server `name` is connected, and returns it.
async fn connected(app: &TestApp, name: &str) -> Value {
    eventually(&format!("{name} connects"), || async {
        server_named(app, name).await["status"] == "connected"
    })
    .await;
    server_named(app, name).await
}

async fn server_named(app: &TestApp, name: &str) -> Value {
    let list = body(app.get("/v1/core/servers").await).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_default()
}

async fn add_agent(app: &TestApp, name: &str, model: &str, tools: Value) -> Value {
    let res = app
        .post(
            "/v1/core/add/agent",
            json!({ "name": name, "model": model, "tools": tools }),
        )
        .await;
    assert_eq!(res.status(), 200, "agent added");
    body(res).await
}

fn ask(model: &str, text: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": text }] })
}

/// The text of `model`'s answer to `text`, asked through `/v1/chat/completions`.
async fn answer(app: &TestApp, model: &str, text: &str) -> Value {
    let res = app.post("/v1/chat/completions", ask(model, text)).await;
    body(res).await["choices"][0]["message"]["content"].clone()
}

/// The next live event of `kind` on `ws`.
async fn event_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let msg = ws.next().await;
        if msg["type"] == "event" && msg["event"]["kind"] == kind {
            return msg["event"].clone();
        }
    }
}

#[tokio::test]
async fn an_agent_calls_stdio_server_tools_and_the_model_gets_their_results() {
    let Some(index) = everything() else { return };
    let (app, fake) = tools_app(|_| {}).await;
    let server = add_stdio(&app, "everything", &index, None).await;
    assert!(server["tools"].as_u64().unwrap() >= 5, "{server}");

    let tools = body(app.get("/v1/core/tools").await).await;
    let echo = tools["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "echo")
        .expect("echo is listed")
        .clone();
    assert_eq!(echo["server"], "everything");
    assert_eq!(echo["available"], true);
    assert_eq!(echo["input_schema"]["type"], "object");
    assert!(echo["input_schema"]["properties"]["message"].is_object());

    let agent = add_agent(
        &app,
        "helper",
        "tool-caller",
        json!(["everything/echo", "everything/get-sum"]),
    )
    .await;
    assert_eq!(
        agent["tools"],
        json!(["everything/echo", "everything/get-sum"])
    );
    let mut ws = app.ws(&app.admin).await;
    ws.subscribe(agent["squad_id"].as_str().unwrap(), None)
        .await;

    let res = app
        .post(
            "/v1/chat/completions",
            ask(
                "helper",
                r#"call everything__echo {"message":"hello tools"}"#,
            ),
        )
        .await;
    assert_eq!(res.status(), 200);
    let completion = body(res).await;
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "1 tool results: Echo: hello tools"
    );
    assert_eq!(
        completion["usage"]["total_tokens"], 16,
        "both rounds' usage"
    );

    // The model was offered exactly the agent's two tools, and got the result back.
    let requests = fake.recorder.requests.lock().unwrap().clone();
    let (_, first) = &requests[requests.len() - 2];
    let mut offered: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    offered.sort();
    assert_eq!(offered, ["everything__echo", "everything__get-sum"]);
    let (_, second) = requests.last().unwrap();
    let messages = second["messages"].as_array().unwrap();
    assert_eq!(
        messages[messages.len() - 2]["tool_calls"][0]["id"],
        "call_0"
    );
    assert_eq!(messages[messages.len() - 1]["role"], "tool");
    assert_eq!(messages[messages.len() - 1]["tool_call_id"], "call_0");

    // Calls and results are live events of the agent's squad.
    let called = event_of(&mut ws, "agent.tool.called").await;
    assert_eq!(called["server"], "everything");
    assert_eq!(called["tool"], "echo");
    assert_eq!(called["arguments"], r#"{"message":"hello tools"}"#);
    let result = event_of(&mut ws, "agent.tool.result").await;
    assert_eq!(result["is_error"], false);
    assert_eq!(result["content"], "Echo: hello tools");

    // A tool that errors: its error goes to the model as the result.
    let res = app
        .post(
            "/v1/chat/completions",
            ask(
                "helper",
                r#"call everything__get-sum {"a":"not a number","b":2}"#,
            ),
        )
        .await;
    let completion = body(res).await;
    let content = completion["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(content.starts_with("1 tool results: "), "{content}");
    assert!(content.to_lowercase().contains("invalid"), "{content}");
    let result = event_of(&mut ws, "agent.tool.result").await;
    assert_eq!(result["is_error"], true, "{result}");

    // Streamed: every round streams upstream; the call arrives in pieces and is put back
    // together, and the answer reaches the client word by word, then usage and [DONE].
    let mut request = ask("helper", r#"call everything__get-sum {"a":2,"b":3}"#);
    request["stream"] = json!(true);
    request["stream_options"] = json!({ "include_usage": true });
    let text = app
        .post("/v1/chat/completions", request)
        .await
        .text()
        .await
        .unwrap();
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let words: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(words.len() >= 5, "token by token: {words:?}");
    assert!(
        words
            .concat()
            .starts_with("1 tool results: The sum of 2 and 3 is 5"),
        "{words:?}"
    );
    let finish = chunks
        .iter()
        .find(|c| !c["choices"][0]["finish_reason"].is_null())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        chunks.last().unwrap()["usage"]["total_tokens"],
        16,
        "both rounds"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let requests = fake.recorder.requests.lock().unwrap().clone();
    let (_, call_round) = &requests[requests.len() - 2];
    assert_eq!(call_round["stream"], true);
    let (_, answer_round) = requests.last().unwrap();
    let sent = answer_round["messages"].as_array().unwrap();
    assert_eq!(
        sent[sent.len() - 2]["tool_calls"][0]["function"]["arguments"],
        r#"{"a":2,"b":3}"#,
        "the pieces of the call, put together"
    );

    assert!(
        app.metric(r#"squadron_tool_calls_total{outcome="ok"}"#)
            .await
            >= 1.0
    );
    assert!(
        app.metric(r#"squadron_tool_calls_total{outcome="error"}"#)
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn a_model_that_keeps_calling_tools_is_stopped_at_the_step_bound() {
    let Some(index) = everything() else { return };
    let (app, fake) = tools_app(|c| c.tool_max_steps = 3).await;
    add_stdio(&app, "everything", &index, None).await;
    add_agent(&app, "looper", "tool-looper", json!(["everything"])).await;
    let before = fake.recorder.requests.lock().unwrap().len();
    let res = app
        .post(
            "/v1/chat/completions",
            ask("looper", r#"call everything__echo {"message":"again"}"#),
        )
        .await;
    assert_eq!(res.status(), 200);
    let completion = body(res).await;
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "3 tool results: Echo: again | Echo: again | Echo: again"
    );
    let requests = fake.recorder.requests.lock().unwrap().clone();
    assert_eq!(
        requests.len() - before,
        4,
        "3 rounds of calls, then the answer"
    );
    assert_eq!(requests.last().unwrap().1["tool_choice"], "none");

    // A streamed turn whose upstream refuses the first round answers with that refusal.
    add_agent(&app, "limited", "fail-429", json!(["everything"])).await;
    let mut request = ask("limited", "hello");
    request["stream"] = json!(true);
    let res = app.post("/v1/chat/completions", request).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "7");
}

#[tokio::test]
async fn a_server_that_dies_mid_call_gives_the_model_an_error_and_comes_back() {
    let Some(index) = everything() else { return };
    let (app, _fake) = tools_app(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let pid_file = pid_file.to_str().unwrap();
    add_stdio(&app, "everything", &index, Some(pid_file)).await;
    let agent = add_agent(&app, "worker", "tool-caller", json!(["everything"])).await;
    let mut ws = app.ws(&app.admin).await;
    ws.subscribe(agent["squad_id"].as_str().unwrap(), None)
        .await;

    let chat = app
        .req(Method::POST, "/v1/chat/completions")
        .json(&ask(
            "worker",
            r#"call everything__trigger-long-running-operation {"duration":30,"steps":30}"#,
        ))
        .send();
    let chat = tokio::spawn(chat);
    event_of(&mut ws, "agent.tool.called").await;
    let pid = std::fs::read_to_string(pid_file).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());

    let res = tokio::time::timeout(WAIT, chat)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), 200);
    let completion = body(res).await;
    let content = completion["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(content.starts_with("1 tool results: error: "), "{content}");
    let result = event_of(&mut ws, "agent.tool.result").await;
    assert_eq!(result["is_error"], true);

    // The server actor reconnects on its own (a new program, a new pid).
    eventually("the server is started again", || async {
        std::fs::read_to_string(pid_file).is_ok_and(|p| p != pid)
    })
    .await;
    connected(&app, "everything").await;
    assert_eq!(
        answer(
            &app,
            "worker",
            r#"call everything__echo {"message":"back"}"#
        )
        .await,
        "1 tool results: Echo: back"
    );
}

/// server-everything over streamable HTTP on a free port; killed when dropped.
async fn http_everything(index: &str) -> (tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new("node")
        .args([index, "streamableHttp"])
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    (child, format!("http://127.0.0.1:{port}/mcp"))
}

#[tokio::test]
async fn http_servers_work_and_one_that_is_down_harms_no_other() {
    let Some(index) = everything() else { return };
    let (app, _fake) = tools_app(|_| {}).await;
    let (_node, url) = http_everything(&index).await;
    let res = app
        .post(
            "/v1/core/add/server",
            json!({ "name": "remote", "url": url, "headers": { "Authorization": "Bearer http-secret-token-77" } }),
        )
        .await;
    assert_eq!(res.status(), 200);
    // Nothing listens on this one.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/mcp", dead.local_addr().unwrap());
    drop(dead);
    let res = app
        .post(
            "/v1/core/add/server",
            json!({ "name": "nowhere", "url": dead_url }),
        )
        .await;
    assert_eq!(res.status(), 200);

    let remote = connected(&app, "remote").await;
    assert_eq!(remote["transport"], "http");
    assert_eq!(remote["secrets"]["Authorization"], "Bea...n-77");
    let text = app.get("/v1/core/servers").await.text().await.unwrap();
    assert!(!text.contains("http-secret-token-77"));
    eventually("the dead server is reported down", || async {
        let nowhere = server_named(&app, "nowhere").await;
        nowhere["status"] == "down" && nowhere["error"].as_str().is_some_and(|e| !e.is_empty())
    })
    .await;

    add_agent(
        &app,
        "caller",
        "tool-caller",
        json!(["remote/echo", "nowhere"]),
    )
    .await;
    assert_eq!(
        answer(
            &app,
            "caller",
            r#"call remote__echo {"message":"over http"}"#
        )
        .await,
        "1 tool results: Echo: over http"
    );
    let remote = connected(&app, "remote").await;
    assert_eq!(
        remote["status"], "connected",
        "still up beside the dead one"
    );
}

#[tokio::test]
async fn squados_chat_keeps_tool_calls_in_the_conversation() {
    let Some(index) = everything() else { return };
    let (app, fake) = tools_app(|_| {}).await;
    add_stdio(&app, "everything", &index, None).await;
    let agent = add_agent(&app, "keeper", "tool-caller", json!(["everything/echo"])).await;
    let path = format!("/api/v1/chat/{}", agent["id"].as_str().unwrap());
    let res = app
        .post(
            &path,
            json!({ "message": r#"call everything__echo {"message":"remember me"}"# }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let reply = body(res).await;
    assert_eq!(
        reply["data"]["message"]["content"],
        "1 tool results: Echo: remember me"
    );
    let conversation = reply["data"]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let messages = body(
        app.get(&format!("/api/v1/conversations/{conversation}/messages"))
            .await,
    )
    .await;
    let answer = &messages["data"][1];
    assert_eq!(answer["role"], "assistant");
    assert_eq!(
        answer["steps"][0]["tool_calls"][0]["function"]["name"],
        "everything__echo"
    );
    assert_eq!(answer["steps"][1]["role"], "tool");
    assert_eq!(answer["steps"][1]["content"], "Echo: remember me");

    // The next turn replays the calls and results to the model, in order.
    let res = app
        .post(
            &path,
            json!({ "message": "what did you find?", "conversation_id": conversation, "stream": true }),
        )
        .await;
    let text = res.text().await.unwrap();
    assert!(text.contains("event: done"), "{text}");
    let (_, last) = fake
        .recorder
        .requests
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    let roles: Vec<&str> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant", "user"]);
}

#[tokio::test]
async fn servers_belong_to_their_account_and_stdio_needs_an_admin() {
    let Some(index) = everything() else { return };
    let (app, fake) = tools_app(|_| {}).await;
    add_stdio(&app, "everything", &index, None).await;

    // Another account sees none of it and cannot name it.
    let other = app.org_token("other-org", Role::Admin).await;
    let list = body(
        app.as_token(&other, Method::GET, "/v1/core/servers")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["data"], json!([]));
    let tools = body(
        app.as_token(&other, Method::GET, "/v1/core/tools")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(tools["data"], json!([]));
    let res = app
        .as_token(&other, Method::POST, "/v1/core/add/provider")
        .json(&json!({ "name": "fake", "base_url": fake.base_url }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .as_token(&other, Method::POST, "/v1/core/add/model")
        .json(&json!({ "name": "m", "provider": "fake", "model": "tool-caller" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .as_token(&other, Method::POST, "/v1/core/add/agent")
        .json(&json!({ "name": "thief", "model": "m", "tools": ["everything"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .as_token(&other, Method::POST, "/v1/core/delete/server")
        .json(&json!({ "name": "everything" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // A member may add HTTP servers, not programs.
    let member = app.org_token("default", Role::Member).await;
    let res = app
        .as_token(&member, Method::POST, "/v1/core/add/server")
        .json(&json!({ "name": "prog", "command": "node", "args": [index, "stdio"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Bad input is a 400, a taken name a 409.
    for bad in [
        json!({ "name": "x" }),
        json!({ "name": "x", "url": "ftp://example.com" }),
        json!({ "name": "x", "url": "http://example.com", "command": "ls" }),
        json!({ "name": "bad name!", "url": "http://example.com" }),
        json!({ "name": "x", "transport": "carrier-pigeon", "url": "http://example.com" }),
    ] {
        let res = app.post("/v1/core/add/server", bad.clone()).await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    let res = app
        .post(
            "/v1/core/add/server",
            json!({ "name": "everything", "url": "http://127.0.0.1:1/mcp" }),
        )
        .await;
    assert_eq!(res.status(), 409);

    // A server an agent uses stays until the agent goes.
    add_agent(&app, "user-of-it", "tool-caller", json!(["everything"])).await;
    let res = app
        .post("/v1/core/delete/server", json!({ "name": "everything" }))
        .await;
    assert_eq!(res.status(), 409);
    let res = app
        .post("/v1/core/delete/agent", json!({ "name": "user-of-it" }))
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .post("/v1/core/delete/server", json!({ "name": "everything" }))
        .await;
    assert_eq!(res.status(), 200);
    let tools = body(app.get("/v1/core/tools").await).await;
    assert_eq!(tools["data"], json!([]));
}

#[tokio::test]
async fn stdio_servers_and_private_addresses_are_refused_where_the_configuration_says_so() {
    let app = spawn_with(|_| {}).await;
    // Private addresses are for admins' servers (and members' with --mcp-allow-private).
    let member = app.org_token("default", Role::Member).await;
    for url in [
        "http://127.0.0.1:3001/mcp",
        "http://169.254.169.254/latest",
        "http://10.0.0.8/mcp",
        "http://[::1]:80/mcp",
    ] {
        let res = app
            .as_token(&member, Method::POST, "/v1/core/add/server")
            .json(&json!({ "name": "inside", "url": url }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{url}");
        let text = res.text().await.unwrap();
        assert!(
            text.contains("private") && text.contains("admins"),
            "{text}"
        );
    }
    let res = app
        .post(
            "/v1/core/add/server",
            json!({ "name": "prog", "command": "node", "args": ["x.js"] }),
        )
        .await;
    assert_eq!(res.status(), 403);
    let text = res.text().await.unwrap();
    assert!(text.contains("allow-stdio-servers"), "{text}");
}

#[tokio::test]
async fn a_clients_own_tools_pass_through_to_a_model_untouched() {
    let (app, fake) = tools_app(|_| {}).await;
    let client_tools = json!([{ "type": "function", "function": {
        "name": "lookup", "description": "the client's own", "parameters": { "type": "object", "properties": {} },
    }}]);
    let mut request = ask("tool-caller", "call lookup {}");
    request["tools"] = client_tools.clone();
    let res = app.post("/v1/chat/completions", request).await;
    assert_eq!(res.status(), 200);
    let completion = body(res).await;
    assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        completion["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "lookup"
    );
    let (_, sent) = fake.recorder.last();
    assert_eq!(sent["tools"], client_tools);
}

#[tokio::test]
async fn a_servers_tool_list_follows_its_announcements() {
    if everything().is_none() {
        return;
    }
    let growing = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/npm/mcp-growing.mjs");
    let (app, _fake) = tools_app(|_| {}).await;
    let res = app
        .post(
            "/v1/core/add/server",
            json!({ "name": "growing", "command": "node", "args": [growing] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    connected(&app, "growing").await;
    let names = || async {
        let tools = body(app.get("/v1/core/tools").await).await;
        tools["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names().await, ["add_tool"]);

    add_agent(&app, "grower", "tool-caller", json!(["growing"])).await;
    assert_eq!(
        answer(&app, "grower", "call growing__add_tool {}").await,
        "1 tool results: added extra_1"
    );
    // The server announced the new tool; nobody asked for the list again.
    eventually("the new tool is listed", || async {
        names().await.contains(&"extra_1".to_owned())
    })
    .await;
    // And the agent (granted the whole server) can use it at once.
    assert_eq!(
        answer(&app, "grower", "call growing__extra_1 {}").await,
        "1 tool results: extra_1 ran"
    );
}
