//! Agents with knowledge: before an agent answers, its knowledge bases are searched for the
//! latest user message, and the best excerpts are given to the model in a system message
//! placed just before that message. The reply names the files used.

use serde_json::{json, Value};
use squadron_actors::store::entity::agent;
use squadron_actors::store::knowledge as kb;

use super::vector_stores::search_store;
use super::{file_id, store_id};
use crate::error::ApiError;
use crate::state::AppState;

/// Excerpts given to the model per turn, over all of the agent's bases.
const EXCERPTS: usize = 4;
/// Excerpts less similar than this are left out.
const MIN_SCORE: f32 = 0.1;

/// The text of the last user message in `messages` (string content, or its text parts).
fn last_user_text(messages: &[Value]) -> Option<(usize, String)> {
    let (at, message) = messages
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m["role"] == "user")?;
    let text = match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    };
    (!text.trim().is_empty()).then_some((at, text))
}

/// Searches `agent`'s bases and adds the excerpts to `body["messages"]`; returns the files
/// used (`[{file_id, filename, vector_store_id, score}]`), best first. A base that cannot be
/// searched (its model is down) is skipped with a warning: the agent still answers.
pub async fn consult(
    state: &AppState,
    agent: &agent::Model,
    body: &mut Value,
) -> Result<Vec<Value>, ApiError> {
    let bases = kb::agent_knowledge(state.db(), agent.id).await?;
    if bases.is_empty() {
        return Ok(Vec::new());
    }
    let Some((at, question)) = body["messages"].as_array().and_then(|m| last_user_text(m)) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for base in &bases {
        match search_store(
            state,
            base,
            vec![question.clone()],
            EXCERPTS,
            None,
            MIN_SCORE,
        )
        .await
        {
            Ok(hits) => found.extend(hits.into_iter().map(|h| (base.id, h))),
            Err(err) => {
                metrics::counter!("squadron_knowledge_consult_failures_total").increment(1);
                tracing::warn!(agent = %agent.id, base = %base.id, error = %err, "a knowledge base could not be searched");
            }
        }
    }
    found.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
    found.truncate(EXCERPTS);
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let mut excerpts = String::from(
        "Excerpts from your knowledge bases that may help with the next message. Use them when \
         they are relevant and name the file you draw on.\n",
    );
    for (i, (_, hit)) in found.iter().enumerate() {
        excerpts.push_str(&format!("\n[{}] {}:\n{}\n", i + 1, hit.filename, hit.text));
    }
    if let Some(messages) = body["messages"].as_array_mut() {
        messages.insert(at, json!({ "role": "system", "content": excerpts }));
    }
    Ok(found
        .into_iter()
        .map(|(base, hit)| {
            json!({
                "file_id": file_id(hit.file_id), "filename": hit.filename,
                "vector_store_id": store_id(base), "score": hit.score,
            })
        })
        .collect())
}
