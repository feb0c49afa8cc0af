//! Knowledge: files, vector stores ingested by actors (retries, cancellation, resumption
//! after a stop) and search, against the fake upstream's embedding models. The same tests run
//! on SQLite's exact scan and on pgvector's HNSW, with the same expected answers.

use std::sync::atomic::Ordering;

use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde_json::{json, Value};
use squadron::config::Config;
use squadron_actors::store::tokens::Role;

use crate::helpers::{body, eventually, start, while_progressing, TestApp, TestDb};
use crate::upstream::{self, FakeUpstream};

/// A server whose account has provider `fake` and embedding models `words`, `flaky`, `slow`
/// and `refused`.
async fn knowledge_with(tweak: impl FnOnce(&mut Config)) -> (TestApp, FakeUpstream) {
    let app = start(TestDb::fresh().await, None, |c| {
        c.ingest_backoff_ms = 10;
        tweak(c);
    })
    .await;
    let fake = upstream::start().await;
    register(&app, &fake).await;
    (app, fake)
}

async fn register(app: &TestApp, fake: &FakeUpstream) {
    let res = app
        .post(
            "/v1/core/add/provider",
            json!({ "name": "fake", "base_url": fake.base_url, "api_key": "sk-k" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    for (name, upstream_model) in [
        ("words", "embed-words"),
        ("flaky", "embed-flaky"),
        ("slow", "embed-slow"),
        ("refused", "embed-refused"),
        ("refused-once", "embed-refused-once"),
    ] {
        let res = app
            .post(
                "/v1/core/add/model",
                json!({ "name": name, "provider": "fake", "model": upstream_model,
                        "kind": "embedding", "dimensions": 64 }),
            )
            .await;
        assert_eq!(res.status(), 200, "{name}");
    }
    let res = app
        .post(
            "/v1/core/add/model",
            json!({ "name": "gpt", "provider": "fake", "model": "gpt-fake" }),
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn upload_as(
    app: &TestApp,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
    purpose: &str,
) -> reqwest::Response {
    let form = Form::new()
        .text("purpose", purpose.to_owned())
        .part("file", Part::bytes(bytes).file_name(name.to_owned()));
    app.as_token(token, Method::POST, "/v1/files")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// Uploads a file for the admin; returns its id.
async fn upload(app: &TestApp, name: &str, text: &str) -> String {
    let res = upload_as(
        app,
        &app.admin,
        name,
        text.as_bytes().to_vec(),
        "assistants",
    )
    .await;
    assert_eq!(res.status(), 200);
    body(res).await["id"].as_str().unwrap().to_owned()
}

async fn store(app: &TestApp, body_: Value) -> String {
    let res = app.post("/v1/vector_stores", body_).await;
    assert_eq!(res.status(), 200);
    body(res).await["id"].as_str().unwrap().to_owned()
}

/// Waits until no file of the store is in progress; returns the store.
async fn settled(app: &TestApp, store: &str) -> Value {
    let path = format!("/v1/vector_stores/{store}");
    // Progress: files finishing, and chunks being stored (the store's bytes).
    while_progressing("the store's ingests end", || async {
        let store = body(app.get(&path).await).await;
        let done = store["file_counts"]["in_progress"] == 0;
        (
            done,
            (store["file_counts"].clone(), store["usage_bytes"].clone()),
        )
    })
    .await;
    body(app.get(&path).await).await
}

async fn search(app: &TestApp, store: &str, request: Value) -> Value {
    let res = app
        .post(&format!("/v1/vector_stores/{store}/search"), request)
        .await;
    assert_eq!(res.status(), 200);
    body(res).await
}

fn filenames(results: &Value) -> Vec<String> {
    results["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["filename"].as_str().unwrap().to_owned())
        .collect()
}

const CATS: &str = "Cats purr when content. A cat will chase mice, nap in the sun and purr again.";
const ROCKETS: &str =
    "Rockets burn fuel to reach orbit. A rocket engine pushes exhaust down to climb.";
const GARDEN: &str = "Gardens need water, sun and patient gardeners who pull weeds from the soil.";

#[tokio::test]
async fn files_are_uploaded_listed_read_and_deleted() {
    let (app, _fake) = knowledge_with(|c| c.max_file_bytes = 4096).await;
    let first = upload(&app, "notes.md", "# Notes\nhello").await;
    assert!(first.starts_with("file-"), "{first}");
    let shown = body(app.get(&format!("/v1/files/{first}")).await).await;
    assert_eq!(
        (
            shown["object"].as_str(),
            shown["filename"].as_str(),
            shown["bytes"].as_i64(),
            shown["purpose"].as_str()
        ),
        (Some("file"), Some("notes.md"), Some(13), Some("assistants"))
    );
    let res = app.get(&format!("/v1/files/{first}/content")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"# Notes\nhello");

    // Pages, newest first by default, with a purpose filter.
    let res = upload_as(&app, &app.admin, "b.txt", b"b".to_vec(), "user_data").await;
    assert_eq!(res.status(), 200);
    let third = upload(&app, "c.txt", "c").await;
    let page = body(app.get("/v1/files?limit=2").await).await;
    assert_eq!(page["object"], "list");
    assert_eq!(page["has_more"], true);
    assert_eq!(page["first_id"], third.as_str());
    let after = page["last_id"].as_str().unwrap();
    let rest = body(app.get(&format!("/v1/files?limit=2&after={after}")).await).await;
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest["data"][0]["id"], first.as_str());
    let mine = body(app.get("/v1/files?purpose=user_data").await).await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        body(app.get("/v1/files?order=asc&limit=1").await).await["data"][0]["id"],
        first.as_str()
    );
    assert_eq!(app.get("/v1/files?limit=0").await.status(), 400);

    // Refusals: no purpose, an unknown one, too large, no file.
    let form = Form::new().part("file", Part::bytes(b"x".to_vec()).file_name("x.txt"));
    let res = app
        .req(Method::POST, "/v1/files")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(body(res).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("purpose"));
    let res = upload_as(&app, &app.admin, "x.txt", b"x".to_vec(), "memes").await;
    assert_eq!(res.status(), 400);
    let res = upload_as(&app, &app.admin, "big.txt", vec![b'x'; 5000], "assistants").await;
    assert_eq!(res.status(), 413);
    let res = app
        .req(Method::POST, "/v1/files")
        .multipart(Form::new().text("purpose", "assistants"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        body(app.get("/v1/files?limit=100").await).await["data"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "refused uploads leave nothing"
    );

    // Another account sees none of it.
    let theirs = app.org_token("rival", Role::Admin).await;
    let res = app
        .as_token(&theirs, Method::GET, &format!("/v1/files/{first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let res = app
        .req(Method::DELETE, &format!("/v1/files/{first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(res).await,
        json!({ "id": first, "object": "file", "deleted": true })
    );
    assert_eq!(app.get(&format!("/v1/files/{first}")).await.status(), 404);
    assert_eq!(
        app.get(&format!("/v1/files/{first}/content"))
            .await
            .status(),
        404
    );
    assert_eq!(app.get("/v1/files/not-an-id").await.status(), 404);
}

#[tokio::test]
async fn stores_ingest_files_and_find_the_nearest_chunks() {
    let (app, _fake) = knowledge_with(|_| {}).await;
    let cats = upload(&app, "cats.md", CATS).await;
    let rockets = upload(&app, "rockets.txt", ROCKETS).await;
    let garden = upload(
        &app,
        "garden.html",
        &format!("<html><body><p>{GARDEN}</p><script>rocket()</script></body></html>"),
    )
    .await;
    let vs = store(
        &app,
        json!({ "name": "zoo", "file_ids": [cats, rockets], "embedding_model": "words",
                "metadata": { "team": "blue" } }),
    )
    .await;
    assert!(vs.starts_with("vs_"));
    let settled_store = settled(&app, &vs).await;
    assert_eq!(settled_store["file_counts"]["completed"], 2);
    assert_eq!(settled_store["status"], "completed");
    assert_eq!(settled_store["metadata"]["team"], "blue");
    assert!(settled_store["usage_bytes"].as_i64().unwrap() > 0);

    // A file with attributes, added to the store; adding it twice is a conflict.
    let path = format!("/v1/vector_stores/{vs}/files");
    let res = app
        .post(
            &path,
            json!({ "file_id": garden, "attributes": { "kind": "plants", "year": 2024 } }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["status"], "in_progress");
    assert_eq!(
        app.post(&path, json!({ "file_id": garden })).await.status(),
        409
    );
    settled(&app, &vs).await;
    let entry = body(app.get(&format!("{path}/{garden}")).await).await;
    assert_eq!(entry["status"], "completed");
    assert_eq!(entry["object"], "vector_store.file");

    // The nearest chunk first; the HTML's script is not text.
    let found = search(&app, &vs, json!({ "query": "why do cats purr" })).await;
    assert_eq!(found["object"], "vector_store.search_results.page");
    assert_eq!(filenames(&found)[0], "cats.md");
    assert_eq!(found["data"][0]["content"][0]["text"], CATS);
    let found = search(
        &app,
        &vs,
        json!({ "query": ["rocket engine fuel"], "max_num_results": 2 }),
    )
    .await;
    assert_eq!(filenames(&found)[0], "rockets.txt");
    assert_eq!(
        found["data"].as_array().unwrap().len(),
        2,
        "max_num_results"
    );
    let found = search(&app, &vs, json!({ "query": "water the soil" })).await;
    assert_eq!(filenames(&found)[0], "garden.html");
    assert_eq!(found["data"][0]["attributes"]["kind"], "plants");

    // Filters on attributes, and a score threshold.
    let found = search(
        &app,
        &vs,
        json!({ "query": "cats purr",
        "filters": { "type": "and", "filters": [
            { "type": "eq", "key": "kind", "value": "plants" },
            { "type": "gte", "key": "year", "value": 2020 } ] } }),
    )
    .await;
    assert_eq!(filenames(&found), vec!["garden.html".to_owned()]);
    let found = search(
        &app,
        &vs,
        json!({ "query": "cats purr", "ranking_options": { "score_threshold": 0.99 } }),
    )
    .await;
    assert!(found["data"].as_array().unwrap().is_empty(), "{found}");
    for bad in [
        json!({ "query": "" }),
        json!({ "query": 3 }),
        json!({ "query": "x", "max_num_results": 0 }),
        json!({ "query": "x", "filters": { "type": "near", "key": "k", "value": 1 } }),
        json!({ "query": "x", "ranking_options": { "score_threshold": 2 } }),
    ] {
        let res = app
            .post(&format!("/v1/vector_stores/{vs}/search"), bad.clone())
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }

    // Listing by status, per-file details, the account's collections.
    let listed = body(app.get(&format!("{path}?filter=completed")).await).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
    let details = body(
        app.get(&format!("/v1/vector_stores/{vs}/file-details"))
            .await,
    )
    .await;
    let rows = details["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["chunk_count"].as_i64() == Some(1) && r["status"] == "completed"),
        "{details}"
    );
    let collections = body(app.get("/v1/user-collections").await).await;
    assert_eq!(collections["data"][0]["id"], vs.as_str());
    assert_eq!(collections["data"][0]["embedding_model"], "words");

    // A file removed from the store is no longer found; the file itself stays.
    let res = app
        .req(Method::DELETE, &format!("{path}/{cats}"))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["deleted"], true);
    let found = search(&app, &vs, json!({ "query": "why do cats purr" })).await;
    assert!(
        !filenames(&found).contains(&"cats.md".to_owned()),
        "{found}"
    );
    assert_eq!(app.get(&format!("/v1/files/{cats}")).await.status(), 200);
    // Deleting a file takes it out of its stores.
    app.req(Method::DELETE, &format!("/v1/files/{rockets}"))
        .send()
        .await
        .unwrap();
    assert_eq!(app.get(&format!("{path}/{rockets}")).await.status(), 404);

    // Update, list, delete.
    let res = app
        .post(
            &format!("/v1/vector_stores/{vs}"),
            json!({ "name": "zoo 2", "expires_after": { "anchor": "last_active_at", "days": 7 } }),
        )
        .await;
    let updated = body(res).await;
    assert_eq!(updated["name"], "zoo 2");
    assert!(updated["expires_at"].as_i64().unwrap() > updated["last_active_at"].as_i64().unwrap());
    let stores = body(app.get("/v1/vector_stores").await).await;
    assert_eq!(stores["data"][0]["id"], vs.as_str());
    // Once its expiry has passed, a store is reported expired and no longer used.
    let db = squadron_actors::store::connect(app.config.database_url.as_deref().unwrap())
        .await
        .unwrap();
    let id = vs.trim_start_matches("vs_").parse::<uuid::Uuid>().unwrap();
    {
        use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
        use squadron_actors::store::entity::vector_store::{Column, Entity};
        let past = chrono::Utc::now() - chrono::Duration::seconds(1);
        Entity::update_many()
            .col_expr(Column::ExpiresAt, Expr::value(past))
            .filter(Column::Id.eq(id))
            .exec(&db)
            .await
            .unwrap();
    }
    assert_eq!(
        body(app.get(&format!("/v1/vector_stores/{vs}")).await).await["status"],
        "expired"
    );
    let res = app
        .post(
            &format!("/v1/vector_stores/{vs}/search"),
            json!({ "query": "cats" }),
        )
        .await;
    assert_eq!(res.status(), 400);
    let res = app
        .req(Method::DELETE, &format!("/v1/vector_stores/{vs}"))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["object"], "vector_store.deleted");
    assert_eq!(
        app.get(&format!("/v1/vector_stores/{vs}")).await.status(),
        404
    );

    // Bad requests and other accounts.
    for bad in [
        json!({ "embedding_model": "nope" }),
        json!({ "chunking_strategy": { "type": "static", "static": { "max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0 } } }),
        json!({ "expires_after": { "anchor": "created_at", "days": 1 } }),
        json!({ "metadata": { "k": 1 } }),
    ] {
        assert_eq!(
            app.post("/v1/vector_stores", bad.clone()).await.status(),
            400,
            "{bad}"
        );
    }
    assert_eq!(
        app.post("/v1/vector_stores", json!({ "file_ids": ["file-nope"] }))
            .await
            .status(),
        404
    );
    let theirs = app.org_token("rival", Role::Admin).await;
    let res = app
        .as_token(&theirs, Method::POST, "/v1/vector_stores")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        400,
        "the rival account has no embedding model"
    );
}

#[tokio::test]
async fn unreadable_files_fail_with_openais_codes() {
    let (app, _fake) = knowledge_with(|_| {}).await;
    let exe = upload(&app, "tool.exe", "MZ").await;
    let json_ = upload(&app, "data.json", "{ not json").await;
    let ok = upload(&app, "ok.txt", CATS).await;
    let vs = store(&app, json!({ "file_ids": [exe, json_, ok] })).await;
    let settled_store = settled(&app, &vs).await;
    assert_eq!(settled_store["file_counts"]["failed"], 2);
    assert_eq!(settled_store["file_counts"]["completed"], 1);
    let entry = body(
        app.get(&format!("/v1/vector_stores/{vs}/files/{exe}"))
            .await,
    )
    .await;
    assert_eq!(entry["status"], "failed");
    assert_eq!(entry["last_error"]["code"], "unsupported_file");
    let entry = body(
        app.get(&format!("/v1/vector_stores/{vs}/files/{json_}"))
            .await,
    )
    .await;
    assert_eq!(entry["last_error"]["code"], "invalid_file");
    let failed = body(
        app.get(&format!("/v1/vector_stores/{vs}/files?filter=failed"))
            .await,
    )
    .await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 2);

    // A model that refuses (a 400, not worth retrying) fails the file as a server error.
    let vs = store(
        &app,
        json!({ "file_ids": [ok], "embedding_model": "refused" }),
    )
    .await;
    settled(&app, &vs).await;
    let entry = body(app.get(&format!("/v1/vector_stores/{vs}/files/{ok}")).await).await;
    assert_eq!(entry["status"], "failed");
    assert_eq!(entry["last_error"]["code"], "server_error");
    assert!(
        entry["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{entry}"
    );
}

/// About `n` chunks of 100 tokens of distinct words.
fn long_text(n: usize) -> String {
    (0..n * 50).map(|i| format!("w{i} ")).collect()
}

#[tokio::test]
async fn ingests_retry_429s_and_stop_promptly_when_cancelled() {
    let (app, fake) = knowledge_with(|_| {}).await;
    let small = upload(&app, "cats.txt", CATS).await;
    let vs = store(
        &app,
        json!({ "file_ids": [small], "embedding_model": "flaky" }),
    )
    .await;
    let settled_store = settled(&app, &vs).await;
    assert_eq!(
        settled_store["file_counts"]["completed"], 1,
        "{settled_store}"
    );
    assert!(
        fake.recorder.embed_calls.load(Ordering::SeqCst) >= 2,
        "the 429 was retried"
    );
    assert!(app.metric("squadron_ingest_embed_retries_total").await >= 1.0);

    // A long file on a slow model, cancelled mid-way: it stops and leaves no chunks.
    let big = upload(&app, "big.txt", &long_text(600)).await;
    let vs = store(
        &app,
        json!({ "file_ids": [big], "embedding_model": "slow",
                "chunking_strategy": { "type": "static", "static": { "max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0 } } }),
    )
    .await;
    let details = format!("/v1/vector_stores/{vs}/file-details");
    eventually("some chunks are written", || async {
        body(app.get(&details).await).await["data"][0]["chunk_count"].as_i64() > Some(0)
    })
    .await;
    let res = app
        .post("/v1/vector_stores/cancel", json!({ "vector_store_id": vs }))
        .await;
    assert_eq!(res.status(), 200);
    let cancelled = body(res).await;
    assert_eq!(cancelled["cancelled"], 1);
    assert_eq!(cancelled["file_counts"]["cancelled"], 1);
    eventually("the cancelled job's chunks are gone", || async {
        body(app.get(&details).await).await["data"][0]["chunk_count"] == 0
    })
    .await;
    let calls = fake.recorder.embed_calls.load(Ordering::SeqCst);
    let entry = body(
        app.get(&format!("/v1/vector_stores/{vs}/files/{big}"))
            .await,
    )
    .await;
    assert_eq!(entry["status"], "cancelled");
    // Cancelling twice finds nothing running.
    let again = body(
        app.post("/v1/vector_stores/cancel", json!({ "vector_store_id": vs }))
            .await,
    )
    .await;
    assert_eq!(again["cancelled"], 0);
    assert!(
        fake.recorder.embed_calls.load(Ordering::SeqCst) <= calls + 2,
        "the job stopped calling"
    );
}

#[tokio::test]
async fn an_ingest_cut_off_by_a_stop_resumes_at_the_next_start_without_duplicates() {
    let (app, fake) = knowledge_with(|_| {}).await;
    let big = upload(&app, "big.txt", &long_text(400)).await;
    let vs = store(
        &app,
        json!({ "file_ids": [big], "embedding_model": "slow",
                "chunking_strategy": { "type": "static", "static": { "max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0 } } }),
    )
    .await;
    let details = format!("/v1/vector_stores/{vs}/file-details");
    eventually("some chunks are written", || async {
        body(app.get(&details).await).await["data"][0]["chunk_count"].as_i64() > Some(0)
    })
    .await;
    let (db, admin) = app.stop().await;

    let app = start(db, Some(admin), |c| c.ingest_backoff_ms = 10).await;
    let settled_store = settled(&app, &vs).await;
    assert_eq!(
        settled_store["file_counts"]["completed"], 1,
        "{settled_store}"
    );
    // The chunks in the store are exactly those the finished job counted: none left over
    // from the job that was cut off.
    let row = &body(app.get(&details).await).await["data"][0];
    assert_eq!(row["chunk_count"], row["chunks_recorded"], "{row}");
    assert!(
        row["chunk_count"].as_i64().unwrap() > 64,
        "more than one batch: {row}"
    );
    assert!(fake.recorder.embed_calls.load(Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn squados_bases_are_vector_stores_seen_another_way() {
    let (app, _fake) = knowledge_with(|_| {}).await;
    let res = app
        .post(
            "/api/v1/bases",
            json!({ "name": "handbook", "embedding_model": "words" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let base = body(res).await["data"].clone();
    let id = base["id"].as_str().unwrap().to_owned();
    let vs = base["vector_store_id"].as_str().unwrap().to_owned();
    assert_eq!(
        body(app.get(&format!("/v1/vector_stores/{vs}")).await).await["name"],
        "handbook"
    );
    // Either id reaches it on either API.
    assert_eq!(
        body(app.get(&format!("/v1/vector_stores/{id}")).await).await["name"],
        "handbook"
    );
    let by_vs = app.get(&format!("/api/v1/bases/{vs}")).await;
    assert_eq!(by_vs.status(), 200);
    assert_eq!(body(by_vs).await["data"]["id"], base["id"]);
    let res = app.get("/api/v1/bases/vs_not-a-uuid").await;
    assert_eq!(res.status(), 400);

    let items = format!("/api/v1/bases/{id}/items");
    let res = app
        .post(&items, json!({ "title": "Cats", "content": CATS }))
        .await;
    assert_eq!(res.status(), 201);
    let text_item = body(res).await["data"].clone();
    assert_eq!(text_item["type"], "text");
    let rockets = upload(&app, "rockets.txt", ROCKETS).await;
    let res = app
        .post(&items, json!({ "type": "file", "file_id": rockets }))
        .await;
    assert_eq!(res.status(), 201);
    let file_item = body(res).await["data"].clone();
    assert_eq!(file_item["title"], "rockets.txt");
    settled(&app, &vs).await;
    // The items are the store's files.
    let files = body(app.get(&format!("/v1/vector_stores/{vs}/files")).await).await;
    assert_eq!(files["data"].as_array().unwrap().len(), 2);
    let listed = body(app.get(&items).await).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);

    let query = format!("/api/v1/bases/{id}/query");
    let found = body(
        app.post(&query, json!({ "query": "why do cats purr", "limit": 1 }))
            .await,
    )
    .await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["title"], "Cats");
    assert_eq!(found["data"][0]["item_id"], text_item["id"]);
    assert_eq!(found["data"][0]["content"], CATS);

    // New text is ingested again, and found by what it now says.
    let item = format!("{items}/{}", text_item["id"].as_str().unwrap());
    let res = app
        .req(Method::PATCH, &item)
        .json(&json!({ "content": GARDEN, "metadata": { "topic": "plants" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    settled(&app, &vs).await;
    let found = body(
        app.post(&query, json!({ "query": "water the soil", "limit": 1 }))
            .await,
    )
    .await;
    assert_eq!(found["data"][0]["title"], "Cats");
    assert_eq!(found["data"][0]["content"], GARDEN);
    let shown = body(app.get(&item).await).await["data"].clone();
    assert_eq!(
        (
            shown["status"].as_str(),
            shown["metadata"]["topic"].as_str()
        ),
        (Some("completed"), Some("plants"))
    );

    // Refusals.
    let file_item_path = format!("{items}/{}", file_item["id"].as_str().unwrap());
    let res = app
        .req(Method::PATCH, &file_item_path)
        .json(&json!({ "content": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "a file item has no text to change");
    for bad in [
        json!({ "content": "  " }),
        json!({ "type": "video", "content": "x" }),
        json!({ "type": "file" }),
    ] {
        assert_eq!(app.post(&items, bad.clone()).await.status(), 400, "{bad}");
    }
    assert_eq!(
        app.post(&query, json!({ "query": "x", "limit": 0 }))
            .await
            .status(),
        400
    );
    assert_eq!(
        app.post("/api/v1/bases", json!({ "name": " " }))
            .await
            .status(),
        400
    );
    let theirs = app.org_token("rival", Role::Admin).await;
    let res = app
        .as_token(&theirs, Method::GET, &format!("/api/v1/bases/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Deleting a text item takes its file; deleting the base leaves uploaded files.
    let text_file = shown["file_id"].as_str().unwrap().to_owned();
    let res = app.req(Method::DELETE, &item).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.get(&format!("/v1/files/{text_file}")).await.status(),
        404
    );
    let res = app
        .req(Method::DELETE, &format!("/api/v1/bases/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(app.get(&format!("/api/v1/bases/{id}")).await.status(), 404);
    assert_eq!(
        app.get(&format!("/v1/vector_stores/{vs}")).await.status(),
        404
    );
    assert_eq!(app.get(&format!("/v1/files/{rockets}")).await.status(), 200);
}

#[tokio::test]
async fn collections_are_diagnosed_and_recovered() {
    let (app, _fake) = knowledge_with(|_| {}).await;
    let cats = upload(&app, "cats.md", CATS).await;
    let vs = store(
        &app,
        json!({ "name": "docs", "file_ids": [cats], "embedding_model": "refused-once" }),
    )
    .await;
    settled(&app, &vs).await;

    let listed = body(app.get("/v1/core/collections").await).await;
    assert_eq!(listed["data"][0]["name"], "docs");
    let diagnostics = body(app.get("/v1/core/collections/docs/diagnostics").await).await;
    assert_eq!(diagnostics["healthy"], false, "{diagnostics}");
    assert_eq!(diagnostics["failed"].as_array().unwrap().len(), 1);
    assert_eq!(diagnostics["failed"][0]["file_id"], cats.as_str());
    assert_eq!(diagnostics["chunks"], 0);

    let res = app
        .post("/v1/core/collections/docs/recover", json!({}))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["restarted"], 1);
    settled(&app, &vs).await;
    let diagnostics = body(app.get("/v1/core/collections/docs/diagnostics").await).await;
    assert_eq!(diagnostics["healthy"], true, "{diagnostics}");
    assert_eq!(diagnostics["chunks"], 1);
    assert_eq!(diagnostics["dimensions"], 64);
    assert_eq!(diagnostics["index"]["present"], true, "{diagnostics}");

    let found = body(
        app.post(
            "/v1/core/collections/docs/search",
            json!({ "query": "cats purr" }),
        )
        .await,
    )
    .await;
    assert_eq!(found["data"][0]["filename"], "cats.md");
    assert_eq!(
        app.get("/v1/core/collections/nope/diagnostics")
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn agents_answer_with_excerpts_from_their_knowledge() {
    let (app, fake) = knowledge_with(|_| {}).await;
    let cats = upload(&app, "cats.md", CATS).await;
    let rockets = upload(&app, "rockets.txt", ROCKETS).await;
    let vs = store(
        &app,
        json!({ "name": "zoo", "file_ids": [cats, rockets], "embedding_model": "words" }),
    )
    .await;
    settled(&app, &vs).await;
    let res = app
        .post(
            "/v1/core/add/agent",
            json!({ "name": "Librarian", "model": "gpt", "knowledge_bases": ["zoo"] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let agent = body(res).await;
    assert_eq!(agent["knowledge_bases"], json!([vs]));
    let res = app
        .post(
            "/v1/core/add/agent",
            json!({ "name": "Lost", "model": "gpt", "knowledge_bases": ["nope"] }),
        )
        .await;
    assert_eq!(res.status(), 404);

    let question = json!({ "model": "Librarian", "messages": [{ "role": "user", "content": "why do cats purr" }] });
    let completion = body(app.post("/v1/chat/completions", question.clone()).await).await;
    assert_eq!(
        completion["sources"][0]["filename"], "cats.md",
        "{completion}"
    );
    assert_eq!(completion["sources"][0]["vector_store_id"], vs.as_str());
    // The model was given the excerpt, just before the question.
    let sent = fake.recorder.last().1;
    let messages = sent["messages"].as_array().unwrap();
    let excerpt = &messages[messages.len() - 2];
    assert_eq!(excerpt["role"], "system");
    assert!(
        excerpt["content"].as_str().unwrap().contains(CATS),
        "{sent}"
    );
    assert_eq!(messages.last().unwrap()["content"], "why do cats purr");

    // Streaming: a first chunk names the sources.
    let mut streamed = question.clone();
    streamed["stream"] = json!(true);
    let text = app
        .post("/v1/chat/completions", streamed)
        .await
        .text()
        .await
        .unwrap();
    let first = text.lines().find(|l| l.starts_with("data: ")).unwrap();
    let first: Value = serde_json::from_str(&first["data: ".len()..]).unwrap();
    assert_eq!(first["sources"][0]["filename"], "cats.md", "{text}");
    assert_eq!(first["choices"], json!([]));
    assert!(text.trim_end().ends_with("data: [DONE]"));

    // SquadOS chat says which files were used too.
    let id = agent["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/api/v1/chat/{id}"),
            json!({ "message": "tell me about rocket fuel" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let reply = body(res).await;
    assert_eq!(
        reply["data"]["sources"][0]["filename"], "rockets.txt",
        "{reply}"
    );
}

#[tokio::test]
async fn ingest_progress_is_published_live_to_the_accounts_default_squad() {
    let (app, _fake) = knowledge_with(|_| {}).await;
    // A gateway agent makes the account's default squad, where dashboards watch knowledge.
    let res = app
        .post(
            "/v1/core/add/agent",
            json!({ "name": "Scribe", "model": "gpt" }),
        )
        .await;
    let squad = body(res).await["squad_id"].as_str().unwrap().to_owned();
    let mut ws = app.ws(&app.admin).await;
    assert_eq!(ws.subscribe(&squad, None).await["type"], "subscribed");

    let cats = upload(&app, "cats.md", CATS).await;
    let vs = store(
        &app,
        json!({ "file_ids": [cats], "embedding_model": "words" }),
    )
    .await;
    let mut kinds = Vec::new();
    loop {
        let msg = ws.next().await;
        let Some(kind) = msg["event"]["kind"].as_str() else {
            continue;
        };
        if !kind.starts_with("knowledge.") {
            continue;
        }
        assert_eq!(msg["event"]["vector_store_id"], vs.as_str(), "{msg}");
        assert_eq!(msg["event"]["file_id"], cats.as_str());
        kinds.push(kind.to_owned());
        if kind == "knowledge.ingest.finished" {
            assert_eq!(msg["event"]["status"], "completed");
            assert_eq!(msg["event"]["chunks"], 1);
            break;
        }
        assert_eq!(msg["event"]["chunks_done"], 1);
        assert_eq!(msg["event"]["chunks_total"], 1);
    }
    assert_eq!(
        kinds,
        ["knowledge.ingest.progress", "knowledge.ingest.finished"]
    );
}

#[tokio::test]
async fn file_batches_are_followed_and_cancelled_together() {
    let (app, _fake) = knowledge_with(|_| {}).await;
    let cats = upload(&app, "cats.md", CATS).await;
    let rockets = upload(&app, "rockets.txt", ROCKETS).await;
    let vs = store(&app, json!({ "embedding_model": "words" })).await;
    let batches = format!("/v1/vector_stores/{vs}/file_batches");
    let res = app
        .post(
            &batches,
            json!({ "file_ids": [cats, rockets, cats], "attributes": { "set": "a" } }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let batch = body(res).await;
    assert!(batch["id"].as_str().unwrap().starts_with("vsfb_"));
    assert_eq!(batch["object"], "vector_store.files_batch");
    assert_eq!(batch["file_counts"]["total"], 2);
    let path = format!("{batches}/{}", batch["id"].as_str().unwrap());
    while_progressing("the batch completes", || async {
        let batch = body(app.get(&path).await).await;
        (batch["status"] == "completed", batch["file_counts"].clone())
    })
    .await;
    let files = body(app.get(&format!("{path}/files")).await).await;
    assert_eq!(files["data"].as_array().unwrap().len(), 2);
    assert_eq!(files["data"][0]["attributes"]["set"], "a");
    assert_eq!(
        app.post(&batches, json!({ "file_ids": [] })).await.status(),
        400
    );
    assert_eq!(app.get(&format!("{batches}/vsfb_nope")).await.status(), 404);

    // A slow batch, cancelled: its files stop.
    let big = upload(&app, "big.txt", &long_text(300)).await;
    let slow = store(&app, json!({ "embedding_model": "slow" })).await;
    let batches = format!("/v1/vector_stores/{slow}/file_batches");
    let batch = body(app.post(&batches, json!({ "file_ids": [big] })).await).await;
    assert_eq!(batch["status"], "in_progress");
    let path = format!("{batches}/{}", batch["id"].as_str().unwrap());
    let cancelled = body(app.post(&format!("{path}/cancel"), json!({})).await).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["file_counts"]["cancelled"], 1);
}

#[tokio::test]
async fn search_ranks_as_exact_cosine_on_either_backend() {
    let (app, _fake) = knowledge_with(|_| {}).await;
    const WORDS: [&str; 24] = [
        "apple", "river", "stone", "cloud", "tiger", "piano", "garden", "rocket", "silver",
        "forest", "candle", "engine", "harbor", "meadow", "violin", "desert", "falcon", "marble",
        "orchid", "canyon", "lantern", "glacier", "copper", "thunder",
    ];
    // Forty small files, each a different mix of words (one chunk each).
    let mut texts = std::collections::HashMap::new();
    let mut ids = Vec::new();
    for i in 0..40usize {
        let text: Vec<&str> = (0..6)
            .map(|j| WORDS[(i * 7 + j * j * 3 + i / 5) % WORDS.len()])
            .collect();
        let text = text.join(" ");
        let name = format!("f{i}.txt");
        ids.push(upload(&app, &name, &text).await);
        texts.insert(name, text);
    }
    let vs = store(&app, json!({ "file_ids": ids, "embedding_model": "words" })).await;
    assert_eq!(settled(&app, &vs).await["file_counts"]["completed"], 40);
    let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for query in [
        "apple river stone",
        "violin piano candle",
        "thunder glacier copper canyon",
    ] {
        let q = upstream::words_vector(query);
        let mut expected: Vec<f32> = texts
            .values()
            .map(|t| cosine(&q, &upstream::words_vector(t)))
            .collect();
        expected.sort_by(|a, b| b.total_cmp(a));
        let found = search(&app, &vs, json!({ "query": query })).await;
        let hits = found["data"].as_array().unwrap();
        assert_eq!(hits.len(), 10);
        for (rank, hit) in hits.iter().enumerate() {
            let score = hit["score"].as_f64().unwrap() as f32;
            let own = cosine(
                &q,
                &upstream::words_vector(&texts[hit["filename"].as_str().unwrap()]),
            );
            assert!((score - own).abs() < 1e-4, "{query}: {hit} scores {own}");
            assert!(
                (score - expected[rank]).abs() < 1e-4,
                "{query}: rank {rank} is {score}, exact {}",
                expected[rank]
            );
        }
    }
}

/// The embedded index keeps searched stores' vectors in memory (SQLite): a file added or
/// removed after a search is seen by the next one, with the default memory and with none
/// (`--vector-cache-mb 0`, every search loads afresh). On PostgreSQL this checks pgvector.
#[tokio::test]
async fn a_search_sees_files_added_and_removed_after_the_last_one() {
    for cache_mb in [256, 0] {
        let (app, _fake) = knowledge_with(|c| c.vector_cache_mb = cache_mb).await;
        let first = upload(&app, "first.txt", "apple river stone").await;
        let vs = store(
            &app,
            json!({ "file_ids": [first], "embedding_model": "words" }),
        )
        .await;
        settled(&app, &vs).await;
        let query = json!({ "query": "violin piano" });
        assert_eq!(
            filenames(&search(&app, &vs, query.clone()).await),
            ["first.txt"]
        );

        let second = upload(&app, "second.txt", "violin piano candle").await;
        let path = format!("/v1/vector_stores/{vs}/files");
        let res = app.post(&path, json!({ "file_id": second })).await;
        assert_eq!(res.status(), 200, "cache {cache_mb} MiB");
        settled(&app, &vs).await;
        let found = filenames(&search(&app, &vs, query.clone()).await);
        assert_eq!(found, ["second.txt", "first.txt"], "cache {cache_mb} MiB");

        let res = app
            .req(Method::DELETE, &format!("{path}/{second}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let found = filenames(&search(&app, &vs, query).await);
        assert_eq!(found, ["first.txt"], "cache {cache_mb} MiB");
    }
}
