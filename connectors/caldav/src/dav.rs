//! One account's HTTP client: every request goes through [`Dav::request`], which signs it
//! (Basic, or Bearer with one refresh on a 401), follows redirects itself (reqwest would
//! turn a redirected PROPFIND into a GET) and turns transport failures into typed errors.
//! Statuses are left to the caller, which knows what it expected.

use std::sync::Arc;
use std::time::Duration;

use concierge_connector_sdk::{AccessTokenSource, ConnectorError, FieldError, OutboundPolicy, Secret};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue, IF_MATCH};
use url::Url;

use crate::classify;

/// How requests are signed.
pub(crate) enum Auth {
    Basic {
        username: String,
        password: Secret,
    },
    /// The gateway's token source keeps tokens fresh; we ask it before each request.
    Bearer {
        tokens: Arc<dyn AccessTokenSource>,
    },
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    /// Where the answer came from, after redirects: hrefs resolve against it.
    pub url: Url,
    pub etag: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request body with its content type.
pub(crate) struct Body<'a> {
    pub content_type: &'static str,
    pub text: &'a str,
    /// Write only over this version (`If-Match`): the server answers 412 when the resource
    /// has another ETag, or none.
    pub if_match: Option<&'a str>,
}

pub(crate) struct Dav {
    /// Resolves names through `outbound`.
    pub client: reqwest::Client,
    /// The certificate the client's last handshake refused, if it refused one.
    pub refused: concierge_connector_sdk::trust::Refused,
    pub auth: Auth,
    /// Which addresses the start URL, redirects and discovered URLs may reach.
    pub outbound: OutboundPolicy,
}

const MAX_REDIRECTS: usize = 5;

impl Dav {
    /// Sends one request (`depth` is the WebDAV Depth header) and reads the answer.
    pub async fn request(&self, method: &str, url: &Url, depth: Option<&str>, body: Option<Body<'_>>) -> Result<Reply, ConnectorError> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| classify::protocol("request", "bad method"))?;
        let mut url = url.clone();
        let mut refreshed: Option<Secret> = None;
        let mut redirects = 0;
        loop {
            // The client's resolver checks names; an IP literal skips it, so it is checked
            // here, before each request and each redirect. Nothing is sent to a refused one.
            if let Err(refusal) = self.outbound.check_literal(url.host_str().unwrap_or_default()) {
                return Err(ConnectorError::Settings(FieldError::new("url", refusal.to_string())));
            }
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some(depth) = depth {
                request = request.header("Depth", depth);
            }
            if let Some(body) = &body {
                request = request.header(CONTENT_TYPE, HeaderValue::from_static(body.content_type)).body(body.text.to_owned());
                if let Some(etag) = body.if_match {
                    request = request.header(IF_MATCH, etag);
                }
            }
            request = match &self.auth {
                Auth::Basic { username, password } => request.basic_auth(username, Some(password.expose())),
                Auth::Bearer { tokens } => match &refreshed {
                    Some(token) => request.bearer_auth(token.expose()),
                    None => request.bearer_auth(tokens.access_token().await?.expose()),
                },
            };
            let host = host_of(&url);
            let response = request.send().await.map_err(|e| match self.refused.take() {
                Some(certificate) => classify::untrusted(&host, certificate),
                None => classify::transport(&host, &e),
            })?;
            let status = response.status().as_u16();

            if let (401, None, Auth::Bearer { tokens }) = (status, &refreshed, &self.auth) {
                // The access token may have expired early or been revoked: one fresh token,
                // one more try; a second 401 is the caller's Authentication error.
                refreshed = Some(tokens.refresh().await?);
                continue;
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let target = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| classify::protocol(&host, "redirect without a usable Location"))?;
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(classify::protocol(&host, "too many redirects"));
                }
                // Credentials never go from https to http.
                if url.scheme() == "https" && target.scheme() != "https" {
                    return Err(classify::protocol(&host, "redirected from https to http"));
                }
                url = target;
                continue;
            }
            let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let etag = header("etag");
            let retry_after = classify::retry_after(header("retry-after").as_deref());
            let final_url = response.url().clone();
            let body = read_body(response, &host).await?;
            return Ok(Reply { status, url: final_url, etag, retry_after, body });
        }
    }
}

/// More than any calendar answer needs (a multiget of 100 large events is a few MiB).
const MAX_BODY: usize = 64 << 20;

/// The body as text, read in chunks so an endless answer stops at [`MAX_BODY`].
async fn read_body(mut response: reqwest::Response, host: &str) -> Result<String, ConnectorError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify::transport(host, &e))? {
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(classify::protocol(host, "answer larger than 64 MiB"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// `host:port` for messages.
pub(crate) fn host_of(url: &Url) -> String {
    format!("{}:{}", url.host_str().unwrap_or("?"), url.port_or_known_default().unwrap_or(0))
}
