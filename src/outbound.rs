//! The one policy for every request this server makes outward: providers (chat, embeddings,
//! their model lists), MCP servers over HTTP, scraping, and later webhooks.
//!
//! - **No redirects are followed**: an upstream that answers 3xx gets no second request (a
//!   307 would have us re-POST a body, key included, wherever it points).
//! - **Timeouts and sizes are bounded**: a connect timeout, a read timeout between bytes,
//!   and [`read_limited`] for every answer read whole.
//! - **Private, loopback and link-local addresses** are refused for members' URLs. Admins
//!   may use them (a local Ollama is common), unless the operator forbids private upstreams
//!   for everyone (`--upstream-forbid-private`). The older `--scrape-allow-private` and
//!   `--mcp-allow-private` still let members too reach private addresses for those two
//!   kinds of call; `--upstream-forbid-private` wins over both.
//!
//! A URL is checked when it is stored (so a member hears at once that it is refused) and
//! again at every call, because DNS can change its answer: members' calls go through a
//! client whose resolver refuses private answers, so the address connected to is the one
//! that was checked (pinned), and IP-literal hosts, which skip the resolver, are checked
//! before the request is sent.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use squadron_actors::store::tokens::Role;

use crate::config::Config;

/// The largest answer read whole from an upstream (a completion, a batch of embeddings).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// The largest model list read from a provider.
pub const MAX_LIST_BYTES: usize = 4 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which addresses a call may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Public addresses only.
    Public,
    /// Any address, private ones included.
    Any,
}

impl Reach {
    pub fn allows_private(self) -> bool {
        self == Reach::Any
    }
}

/// Why a URL was refused, for the caller.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Invalid(String),
    #[error("{host} does not resolve")]
    Unresolved { host: String },
    #[error("{host} is a private, loopback or link-local address; {why}")]
    Private { host: String, why: &'static str },
}

/// The outward clients and the operator's choice about private addresses.
pub struct Outbound {
    /// Its resolver refuses private answers: members' calls.
    public: reqwest::Client,
    /// Reaches any address: admins' upstreams.
    any: reqwest::Client,
    forbid_private: bool,
    read_timeout: Duration,
}

impl Outbound {
    pub fn new(config: &Config) -> anyhow::Result<Outbound> {
        let read_timeout = Duration::from_secs(config.upstream_timeout_secs.max(1));
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(read_timeout)
        };
        Ok(Outbound {
            public: builder().dns_resolver(Arc::new(PublicOnly)).build()?,
            any: builder().build()?,
            forbid_private: config.upstream_forbid_private,
            read_timeout,
        })
    }

    /// What a caller of `role` may store or reach. `members_too` is an operator's older
    /// option that lets members reach private addresses for one kind of call.
    pub fn reach_for(&self, role: Role, members_too: bool) -> Reach {
        if self.forbid_private {
            Reach::Public
        } else if role == Role::Admin || members_too {
            Reach::Any
        } else {
            Reach::Public
        }
    }

    /// What a stored URL may reach at call time: what it was granted when stored, unless the
    /// operator has since forbidden private upstreams.
    pub fn reach_stored(&self, allow_private: bool) -> Reach {
        if allow_private && !self.forbid_private {
            Reach::Any
        } else {
            Reach::Public
        }
    }

    fn why(&self) -> &'static str {
        if self.forbid_private {
            "this server reaches none (--upstream-forbid-private)"
        } else {
            "only organization admins may use them"
        }
    }

    /// Checks `url` for `reach` now: http(s), a host that resolves, and no private address
    /// unless allowed. Returns the host and the address checked, to pin a call to it.
    pub async fn vet(
        &self,
        url: &reqwest::Url,
        reach: Reach,
    ) -> Result<(String, SocketAddr), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Invalid("url must be http(s)".into()));
        }
        let host = url
            .host_str()
            .ok_or_else(|| Refused::Invalid("url has no host".into()))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs: Vec<_> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|_| Refused::Unresolved { host: host.clone() })?
            .collect();
        let Some(addr) = addrs.first().copied() else {
            return Err(Refused::Unresolved { host });
        };
        if !reach.allows_private() && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(Refused::Private {
                host,
                why: self.why(),
            });
        }
        Ok((host, addr))
    }

    /// The client for calls that may reach `reach`: for [`Reach::Public`], one whose resolver
    /// refuses private answers, so a name is checked as it is connected to.
    pub fn client(&self, reach: Reach) -> &reqwest::Client {
        match reach {
            Reach::Public => &self.public,
            Reach::Any => &self.any,
        }
    }

    /// An IP-literal host skips DNS, so the resolver never sees it: it is checked here, once
    /// for a URL that does not change.
    pub fn check_literal(&self, url: &reqwest::Url, reach: Reach) -> Result<(), Refused> {
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        if reach == Reach::Public && !is_public(literal) {
            return Err(Refused::Private {
                host: literal.to_string(),
                why: self.why(),
            });
        }
        Ok(())
    }

    /// A client bound to the one address `vet` checked for `host` (scraping, which vets
    /// each hop of a redirect itself), with an overall `timeout`.
    pub fn pinned(
        &self,
        host: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host, addr)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(self.read_timeout)
            .timeout(timeout)
            .build()
    }
}

/// The policy for MCP servers over HTTP, checked before every connection. (The MCP client
/// makes its own requests, so the address is checked, not pinned; it follows redirects only
/// to the same origin.)
pub fn mcp_guard(outbound: Arc<Outbound>) -> squadron_actors::tools::UrlGuard {
    squadron_actors::tools::UrlGuard(Arc::new(move |url: String, allow_private: bool| {
        let outbound = outbound.clone();
        Box::pin(async move {
            let url = reqwest::Url::parse(&url).map_err(|e| format!("url: {e}"))?;
            let reach = outbound.reach_stored(allow_private);
            outbound
                .vet(&url, reach)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }))
}

/// Whether `err` (or what caused it) is this policy's refusal of a private DNS answer.
pub fn refusal_in(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(private) = e.downcast_ref::<PrivateAnswer>() {
            return Some(private.to_string());
        }
        cause = e.source();
    }
    None
}

/// A resolver that refuses a name with any private answer, so what a member's call connects
/// to is what was checked (a name cannot turn private between the check and the connect).
struct PublicOnly;

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to a private, loopback or link-local address")]
struct PrivateAnswer(String);

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(Box::new(PrivateAnswer(host)) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether an address is one the server may reach on a member's say-so.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

/// The whole body of `response`, or `Err(None)` once it passes `max` bytes (`Err(Some)` when
/// reading failed).
pub async fn read_limited(
    response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, Option<reqwest::Error>> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(None);
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        body.extend_from_slice(&chunk.map_err(Some)?);
        if body.len() > max {
            return Err(None);
        }
    }
    Ok(body)
}

/// `url` with its secrets hidden, for every read API: the password (and user) of its
/// userinfo, and the values of its query parameters.
pub fn mask_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        // Not a URL we can take apart: show only up to where secrets could start.
        return match raw.find(['@', '?', '#']) {
            Some(at) => format!("{}***", &raw[..at]),
            None => raw.to_owned(),
        };
    };
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("***");
        let _ = url.set_password(None);
    }
    if url.query().is_some() {
        let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let masked: Vec<String> = names.iter().map(|k| format!("{k}=***")).collect();
        url.set_query(Some(&masked.join("&")));
    }
    if url.fragment().is_some() {
        url.set_fragment(Some("***"));
    }
    let shown = url.to_string();
    // `Url` adds a `/` to a bare origin; stored base URLs have none, so keep their shape.
    if !raw.ends_with('/') && url.path() == "/" && !raw.contains(['?', '#']) {
        return shown.trim_end_matches('/').to_owned();
    }
    shown
}

/// An upstream's message, cut to its first sentence and 200 characters: enough to say what
/// went wrong, never a way to read the upstream's body through us.
pub fn clip(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let sentence = match line.find(". ") {
        Some(end) => &line[..=end],
        None => line,
    };
    let mut clipped: String = sentence.chars().take(200).collect();
    if clipped.len() < sentence.len() {
        clipped.push('…');
    }
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_shown_without_their_secrets() {
        assert_eq!(
            mask_url("http://user:pass@host:8080/v1?api-key=abc&x=1"),
            "http://***@host:8080/v1?api-key=***&x=***"
        );
        assert_eq!(
            mask_url("https://api.openai.com/v1"),
            "https://api.openai.com/v1"
        );
        assert_eq!(mask_url("http://host:1"), "http://host:1");
    }

    #[test]
    fn messages_are_clipped_to_a_sentence() {
        assert_eq!(clip("Bad key. Here is /etc/passwd: root:x"), "Bad key.");
        assert_eq!(clip("line one\nline two"), "line one");
        assert_eq!(clip(&"x".repeat(500)).chars().count(), 201);
    }
}
