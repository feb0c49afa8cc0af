//! Server-sent events of chat completion chunks: finding frames in what an upstream sends,
//! the few fields read from them, the frames the gateway adds (sources, errors), and the relay
//! that passes an upstream's stream on as it came.

use std::sync::LazyLock;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use futures::StreamExt;
use memchr::memmem::Finder;
use serde_json::{json, Value};
use uuid::Uuid;

use super::upstream::Upstream;
use super::usage::{InFlight, UsageOnce};

/// How a stream is relayed.
pub struct Relay {
    /// Whether the client asked for the usage chunk.
    pub wants_usage: bool,
    /// When the upstream was asked.
    pub started: Instant,
}

/// What the relay reads of a chunk that carries usage: the usage, and whether it has
/// choices. Everything else is skipped unallocated; the chunk itself is relayed as it came.
#[derive(serde::Deserialize)]
struct ChunkPeek {
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    usage: Option<Value>,
}

/// The frame that ends a stream which failed after it began: an OpenAI error object.
pub fn error_frame(message: &str) -> String {
    let error = json!({ "error": {
        "message": message, "type": "server_error", "param": null, "code": "upstream_error",
    }});
    format!("data: {error}\n\n")
}

/// An SSE response of chat completion chunks.
pub fn response(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .expect("static headers are valid")
}

/// The chunk that names the files an agent's knowledge excerpts came from. Like the usage
/// chunk, it has no choices: clients that know it read it, the others skip it.
pub fn sources_chunk(model: &str, sources: Vec<Value>) -> String {
    let chunk = json!({
        "id": format!("chatcmpl-sources-{}", Uuid::new_v4().simple()),
        "object": "chat.completion.chunk",
        "created": chrono::Utc::now().timestamp(),
        "model": model,
        "choices": [],
        "sources": sources,
    });
    format!("data: {chunk}\n\n")
}

/// Relays the upstream's stream frame by frame as it came, without parsing it: only the usage
/// frame is read (to record it, and to drop it unless the client asked for it). Frames end with a blank line, `\n\n` or `\r\n\r\n`. A broken
/// upstream stream ends ours with an OpenAI error object.
pub fn relay(upstream: &Upstream, answer: reqwest::Response, relay: Relay) -> Response {
    let Relay {
        wants_usage,
        started,
    } = relay;
    let provider = upstream.name.clone();
    let mut body = answer.bytes_stream();
    let chunks = async_stream::stream! {
        let _in_flight = InFlight::count();
        let mut counted = UsageOnce::default();
        let mut first = true;
        let mut pending = bytes::BytesMut::new();
        while let Some(read) = body.next().await {
            let read = match read {
                Ok(read) => read,
                Err(err) => {
                    let error = error_frame(&Upstream::broke_off(&provider, err));
                    yield Ok::<Bytes, std::io::Error>(Bytes::from(error));
                    break;
                }
            };
            if first {
                first = false;
                metrics::histogram!("squadron_gateway_time_to_first_token_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            // The common case: the read is whole frames with no usage in them. It goes out
            // as it came, uncopied.
            if pending.is_empty() && ends_a_frame(&read) && !has_usage(&read) {
                yield Ok(read);
                continue;
            }
            pending.extend_from_slice(&read);
            // The complete frames of this read go out in one write; the rest waits.
            let mut out = bytes::BytesMut::new();
            while let Some(end) = frame_end(&pending) {
                let frame = pending.split_to(end);
                if let Some((usage, has_choices)) = usage_of(&frame) {
                    counted.usage = usage;
                    if !wants_usage && !has_choices {
                        continue;
                    }
                }
                if out.is_empty() {
                    out = frame;
                } else {
                    out.unsplit(frame);
                }
            }
            if !out.is_empty() {
                yield Ok(out.freeze());
            }
        }
        if !pending.is_empty() {
            yield Ok(pending.freeze());
        }
    };
    response(Body::from_stream(chunks))
}

/// Searchers for what the relay looks for in every frame, built once.
static BLANK_LINE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\n"));
static CRLF_BLANK_LINE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\r\n\r\n"));
static USAGE_FIELD: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));

/// Where the first complete SSE frame of `buffer` ends (after its blank line), if one has.
pub fn frame_end(buffer: &[u8]) -> Option<usize> {
    let lf = BLANK_LINE.find(buffer).map(|at| at + 2);
    // A CRLF frame end can come first only if it starts before the LF one ends.
    let before = lf.unwrap_or(buffer.len());
    let crlf = CRLF_BLANK_LINE.find(&buffer[..before]).map(|at| at + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A frame's data: its `data:` lines joined (`None` if it is not UTF-8).
pub fn frame_data(frame: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(frame).ok()?;
    Some(
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect(),
    )
}

/// Whether `bytes` end where a frame does.
fn ends_a_frame(bytes: &[u8]) -> bool {
    bytes.ends_with(b"\n\n") || bytes.ends_with(b"\r\n\r\n")
}

/// Whether any chunk in `bytes` carries usage: names `"usage"` (in a chunk's text the quotes
/// would be escaped) with a value other than `null`, which providers that report usage on the
/// last chunk send on every other one.
fn has_usage(bytes: &[u8]) -> bool {
    USAGE_FIELD.find_iter(bytes).any(|at| {
        let value = bytes[at + b"\"usage\"".len()..].trim_ascii_start();
        let value = value.strip_prefix(b":").unwrap_or(value).trim_ascii_start();
        !value.starts_with(b"null")
    })
}

/// The usage a frame's chunk carries, and whether it has choices too. Only a frame that
/// [`has_usage`] is parsed.
fn usage_of(frame: &[u8]) -> Option<(Value, bool)> {
    if !has_usage(frame) {
        return None;
    }
    let data = frame_data(frame)?;
    let chunk: ChunkPeek = serde_json::from_str(&data).ok()?;
    let usage = chunk.usage.filter(Value::is_object)?;
    Some((usage, chunk.choices.is_some_and(|c| !c.is_empty())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_end_at_a_blank_line_of_either_kind() {
        assert!(ends_a_frame(b"data: {}\n\n") && ends_a_frame(b"data: {}\r\n\r\n"));
        assert!(!ends_a_frame(b"data: {}\n") && !ends_a_frame(b"data: {}\r\n"));
        assert_eq!(frame_end(b"data: {}\n\ndata: x"), Some(10));
        assert_eq!(frame_end(b"data: {}\r\n\r\ndata: x\n\n"), Some(12));
        assert_eq!(frame_end(b"data: {}\n"), None);
    }

    #[test]
    fn only_chunks_with_usage_are_read_for_it() {
        let usage_only = br#"data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}

"#;
        let (usage, has_choices) = usage_of(usage_only).unwrap();
        assert_eq!(usage["completion_tokens"], 4);
        assert!(!has_choices, "dropped unless the client asked for usage");
        let last_content =
            br#"data: {"choices":[{"delta":{"content":"hi"}}],"usage":{"prompt_tokens":1}}

"#;
        assert!(usage_of(last_content).unwrap().1, "relayed: it has content");
        assert!(usage_of(br#"data: {"choices":[],"usage":null}"#).is_none());
        assert!(!has_usage(
            br#"data: {"choices":[{"delta":{"content":"hi"}}],"usage" : null}"#
        ));
        // A read of two frames: the second one's usage is seen past the first's null.
        let two = b"data: {\"choices\":[],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n";
        assert!(has_usage(two));
        // The word in a chunk's text is escaped, so it is not taken for the field.
        assert!(usage_of(br#"data: {"choices":[{"delta":{"content":"\"usage\""}}]}"#).is_none());
    }
}
