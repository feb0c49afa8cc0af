//! Calling an account's upstream provider: its base URL, its (unsealed) key and extra headers,
//! and the mapping of its failures onto our errors. Every call goes through the server's
//! outward policy ([`crate::outbound`]): no redirects, bounded answers, and private
//! addresses only for providers an admin stored.

use axum::http::StatusCode;
use squadron_actors::store::entity::provider;

use squadron_actors::secrets::Sealer;

use super::usage::record_usage;
use crate::error::ApiError;
use crate::outbound::{clip, read_limited, refusal_in, Outbound, MAX_ANSWER_BYTES};

/// A provider ready to call.
pub struct Upstream {
    pub name: String,
    base_url: String,
    api_key: Option<String>,
    headers: Vec<(String, String)>,
    /// The outward client for the addresses its calls may reach.
    client: reqwest::Client,
    /// Why it may not be called at all (a base URL the policy refuses), if so.
    refused: Option<String>,
}

impl Upstream {
    /// The stored provider `p`, its secrets opened with `sealer`, called through `outbound`.
    pub fn open(
        sealer: &Sealer,
        outbound: &Outbound,
        p: provider::Model,
    ) -> Result<Upstream, ApiError> {
        let unseal = |sealed: &Option<String>| -> Result<Option<String>, ApiError> {
            sealed
                .as_deref()
                .map(|s| {
                    sealer.open(s).ok_or_else(|| {
                        ApiError::Internal(anyhow::anyhow!(
                            "provider {} secrets do not open with this server's key",
                            p.id
                        ))
                    })
                })
                .transpose()
        };
        let headers = match unseal(&p.headers_sealed)? {
            Some(json) => serde_json::from_str::<std::collections::BTreeMap<String, String>>(&json)
                .map_err(|e| ApiError::Internal(e.into()))?
                .into_iter()
                .collect(),
            None => Vec::new(),
        };
        let reach = outbound.reach_stored(p.allow_private);
        // Checked once here: a literal address or a query in the base URL cannot change.
        let refused = match check_base_url(&p.base_url) {
            Err(why) => Some(why),
            Ok(url) => outbound
                .check_literal(&url, reach)
                .err()
                .map(|e| e.to_string()),
        };
        Ok(Upstream {
            name: p.name.clone(),
            base_url: p.base_url.clone(),
            api_key: unseal(&p.api_key_sealed)?,
            headers,
            client: outbound.client(reach).clone(),
            refused,
        })
    }

    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// A request to `path` under the provider's base URL, with its key and headers.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!(
            "{}/{}",
            self.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let mut req = self.client.request(method, url);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        req
    }

    /// Sends `req`; a response that is not a success becomes our error.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        if let Some(why) = &self.refused {
            return Err(self.bad_gateway(format!("provider {} is not called: {why}", self.name)));
        }
        let response = req.send().await.map_err(|e| self.transport_error(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.status_error(response).await)
    }

    /// A whole answer read as JSON, at most `max` bytes of it.
    pub async fn json(
        &self,
        response: reqwest::Response,
        max: usize,
    ) -> Result<serde_json::Value, ApiError> {
        let bytes = read_limited(response, max).await.map_err(|e| match e {
            Some(err) => self.transport_error(err),
            None => self.bad_gateway(format!(
                "provider {} answered with more than {max} bytes",
                self.name
            )),
        })?;
        serde_json::from_slice(&bytes).map_err(|_| {
            self.bad_gateway(format!(
                "provider {} answered with something not JSON",
                self.name
            ))
        })
    }

    /// A whole (not streamed) chat completion of `body`, its usage recorded.
    pub async fn complete(&self, body: &serde_json::Value) -> Result<serde_json::Value, ApiError> {
        let request = self
            .request(reqwest::Method::POST, "chat/completions")
            .json(body);
        let completion = self
            .json(self.send(request).await?, MAX_ANSWER_BYTES)
            .await?;
        if !completion.is_object() {
            return Err(self.bad_gateway(format!(
                "provider {} answered with something not a completion",
                self.name
            )));
        }
        record_usage(&completion["usage"]);
        Ok(completion)
    }

    /// Why a stream that had begun ended early, for the client's error object.
    pub fn broke_off(provider: &str, err: impl std::fmt::Display) -> String {
        format!("provider {provider} broke off the stream: {err}")
    }

    pub fn bad_gateway(&self, message: String) -> ApiError {
        ApiError::Upstream {
            status: StatusCode::BAD_GATEWAY,
            message,
            retry_after: None,
        }
    }

    /// The failure of a request that got no answer. Its text never carries the URL (whose
    /// userinfo or query may hold secrets): only the deepest cause (`Connection refused`).
    pub fn transport_error(&self, err: reqwest::Error) -> ApiError {
        if err.is_timeout() {
            return ApiError::Upstream {
                status: StatusCode::GATEWAY_TIMEOUT,
                message: format!("provider {} did not answer in time", self.name),
                retry_after: None,
            };
        }
        if let Some(refusal) = refusal_in(&err) {
            return self.bad_gateway(format!(
                "provider {} is not called: {refusal}, which only organization admins' providers may use",
                self.name
            ));
        }
        let mut cause: &(dyn std::error::Error + 'static) = &err;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let cause = if std::ptr::eq(cause, &err as &dyn std::error::Error) {
            err.without_url().to_string()
        } else {
            cause.to_string()
        };
        self.bad_gateway(format!(
            "provider {} could not be reached: {}",
            self.name,
            clip(&cause)
        ))
    }

    /// An upstream's failure as ours. Its 401 and 403 are the provider's key problem, never
    /// the caller's (a 401 would make an OpenAI SDK blame the caller's own key): 502. A
    /// redirect is not followed: 502. Its message is cut to a sentence.
    async fn status_error(&self, response: reqwest::Response) -> ApiError {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .cloned();
        let message = if status.is_redirection() {
            format!(
                "provider {} answered {} (a redirect), which this server does not follow; \
                 give its final URL as base_url",
                self.name,
                status.as_u16()
            )
        } else if matches!(status.as_u16(), 401 | 403) {
            format!(
                "the provider {} rejected its API key ({})",
                self.name,
                status.as_u16()
            )
        } else {
            let body: serde_json::Value = read_limited(response, 64 * 1024)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let detail = body["error"]["message"].as_str().map(clip);
            format!(
                "provider {} answered {}: {}",
                self.name,
                status.as_u16(),
                detail.as_deref().unwrap_or("no details")
            )
        };
        let status = if status.is_server_error()
            || status.is_redirection()
            || matches!(status.as_u16(), 401 | 403)
        {
            StatusCode::BAD_GATEWAY
        } else {
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
        };
        ApiError::Upstream {
            status,
            message,
            retry_after,
        }
    }
}

/// A provider's base URL as stored: http(s), at most 2,000 characters, and no query or
/// fragment (a `?x=` at its end would turn every path we append into a parameter, reading
/// any path of the host).
pub fn check_base_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host() && raw.len() <= 2_000)
        .ok_or_else(|| "base_url must be an http(s) URL".to_owned())?;
    if url.query().is_some() || url.fragment().is_some() || raw.contains(['?', '#']) {
        return Err("base_url must not have a query or fragment".into());
    }
    Ok(url)
}
