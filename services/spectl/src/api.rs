//! The WES API as spectl speaks it: one request, one JSON answer or one [`Failure`].

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// The API's base path below the service URL.
const BASE_PATH: [&str; 3] = ["ga4gh", "wes", "v1"];

/// The longest one file's download may take (a day; a stalled one fails by the read timeout).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Why a command failed, and so how spectl exits.
#[derive(Debug)]
pub enum Failure {
    /// The API refused the request: the ErrorResponse's message and the HTTP status.
    Api { status: u16, msg: String },
    /// The user's own input was wrong (before anything was sent).
    Usage(String),
    /// Anything else: the service unreachable, a reply that is not JSON, a local file.
    Other(String),
    /// `run wait`: the run ended in a state other than COMPLETE.
    RunEnded { run_id: String, state: String },
    /// `results verify`: the downloaded results are not what the service signed.
    Verify(String),
}

impl Failure {
    /// 2 for a refused request (4xx) or bad input, 3 for a run that did not complete, 1 for
    /// everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Api { status, .. } if (400..500).contains(status) => 2,
            Failure::Usage(_) => 2,
            Failure::RunEnded { .. } => 3,
            Failure::Verify(_) => 4,
            _ => 1,
        }
    }

    /// Whether trying again later may help (the service down or overloaded).
    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Api { status, .. } => *status >= 500,
            Failure::Other(_) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Api { status, msg } => write!(f, "{msg} (HTTP {status})"),
            Failure::Usage(msg) | Failure::Other(msg) => f.write_str(msg),
            Failure::RunEnded { run_id, state } => write!(f, "run {run_id} ended {state}"),
            Failure::Verify(msg) => write!(f, "verification failed: {msg}"),
        }
    }
}

/// A request body.
pub enum Body {
    None,
    Json(Value),
    Bytes {
        content_type: &'static str,
        data: Vec<u8>,
    },
}

pub struct Api {
    /// The service URL with the WES base path, ending without a slash.
    base: Url,
    /// Sent as `Authorization: Bearer`; never printed.
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub fn new(url: &str, token: Option<String>) -> Result<Api, Failure> {
        let bad = |why: &str| Failure::Usage(format!("--url {url:?}: {why}"));
        let mut base = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(bad("must be an http:// or https:// URL"));
        }
        base.set_query(None);
        base.set_fragment(None);
        let present: Vec<String> = base
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        // The service URL, or already its WES base path.
        if !present.ends_with(&BASE_PATH.map(str::to_owned)) {
            base.path_segments_mut()
                .map_err(|()| bad("cannot hold a path"))?
                .pop_if_empty()
                .extend(BASE_PATH);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            // A download may take longer than any total timeout; a silent peer may not.
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("spectl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Other(format!("cannot set up HTTP: {e}")))?;
        Ok(Api {
            base,
            token: token.filter(|t| !t.is_empty()),
            http,
        })
    }

    /// The URL of a resource below the base path; segments are escaped, so a name can never
    /// change which resource is meant.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, Failure> {
        // The url crate drops `.` and `..` segments rather than escape them.
        if let Some(bad) = segments.iter().find(|s| matches!(**s, "" | "." | "..")) {
            return Err(Failure::Usage(format!("{bad:?} is not a valid name or id")));
        }
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    /// One request; the status and the body as text, whatever the status.
    async fn call_raw(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Body,
    ) -> Result<(StatusCode, String), Failure> {
        let url = self.url(segments, query)?;
        let mut req = self.http.request(method, url.clone());
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Bytes { content_type, data } => req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(data),
        };
        let res = self.send(req, &url).await?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| Failure::Other(format!("reading the reply: {}", describe(e))))?;
        Ok((status, text))
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<reqwest::Response, Failure> {
        req.send().await.map_err(|e| {
            Failure::Other(format!(
                "cannot reach {}: {}",
                url.origin().ascii_serialization(),
                describe(e)
            ))
        })
    }

    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Body,
    ) -> Result<Value, Failure> {
        let (status, text) = self.call_raw(method, segments, query, body).await?;
        if status == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        if !status.is_success() {
            return Err(refusal(status, &text));
        }
        serde_json::from_str(&text).map_err(|_| {
            Failure::Other(format!(
                "the service answered {status} with a body that is not JSON"
            ))
        })
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value, Failure> {
        self.call(Method::GET, segments, query, Body::None).await
    }

    /// A GET whose answer is text (a run's log), not JSON.
    pub async fn get_text(&self, segments: &[&str]) -> Result<String, Failure> {
        let (status, text) = self
            .call_raw(Method::GET, segments, &[], Body::None)
            .await?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(refusal(status, &text))
        }
    }

    pub async fn post(&self, segments: &[&str], body: Body) -> Result<Value, Failure> {
        self.call(Method::POST, segments, &[], body).await
    }

    pub async fn delete(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, Failure> {
        self.call(Method::DELETE, segments, query, Body::None).await
    }

    /// The HTTP client, for a request the helpers here do not shape (an upload authorised by
    /// a grant's token rather than the bearer token).
    pub fn raw_client(&self) -> &reqwest::Client {
        &self.http
    }

    /// An authenticated GET of an API path whose answer is a file, not JSON: the response to
    /// stream when it succeeded, the service's refusal otherwise.
    pub async fn get_file(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, Failure> {
        let url = self.url(segments, query)?;
        let mut req = self.http.get(url.clone()).timeout(DOWNLOAD_TIMEOUT);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let res = self.send(req, &url).await?;
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let text = res.text().await.unwrap_or_default();
        Err(refusal(status, &text))
    }

    /// A GET of a URL outside the API (a presigned S3 link), from byte `from` on. No bearer
    /// token: the link carries its own signature, and the token is not S3's business.
    pub async fn get_link(&self, link: &Url, from: u64) -> Result<reqwest::Response, Failure> {
        // A large file takes what it takes: only the read timeout and a day's cap hold.
        let mut req = self.http.get(link.clone()).timeout(DOWNLOAD_TIMEOUT);
        if from > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        self.send(req, link).await
    }
}

/// The API's refusal as a [`Failure`]: its ErrorResponse message, else the status's reason.
fn refusal(status: StatusCode, text: &str) -> Failure {
    let msg = serde_json::from_str::<Value>(text)
        .ok()
        .as_ref()
        .and_then(|v| v.get("msg"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    Failure::Api {
        status: status.as_u16(),
        msg,
    }
}

/// Whether a failure is the API saying the caller's role does not allow the action.
pub fn is_forbidden(f: &Failure) -> bool {
    matches!(f, Failure::Api { status, .. } if *status == StatusCode::FORBIDDEN.as_u16())
}

/// A reqwest error with its causes, which say what actually went wrong (refused, timed out).
/// Without the URL: a presigned link's signature is a credential until it expires.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_path_is_added_once_and_segments_are_escaped() {
        for given in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/ga4gh/wes/v1",
            "http://127.0.0.1:8080/ga4gh/wes/v1/",
        ] {
            let api = Api::new(given, None).unwrap();
            assert_eq!(
                api.url(&["runs", "x"], &[]).unwrap().as_str(),
                "http://127.0.0.1:8080/ga4gh/wes/v1/runs/x",
                "{given}"
            );
        }
        let api = Api::new("https://spe.example/prefix", None).unwrap();
        assert_eq!(
            api.url(
                &["admin", "workflows", "../x", "a/b"],
                &[("state", "a&b".into())]
            )
            .unwrap()
            .as_str(),
            "https://spe.example/prefix/ga4gh/wes/v1/admin/workflows/..%2Fx/a%2Fb?state=a%26b"
        );
        assert!(api.url(&["runs", ".."], &[]).is_err());
        assert!(Api::new("127.0.0.1:8080", None).is_err());
        assert!(Api::new("file:///etc", None).is_err());
    }

    #[test]
    fn exit_codes() {
        let api = |status| Failure::Api {
            status,
            msg: String::new(),
        };
        assert_eq!(api(404).exit_code(), 2);
        assert_eq!(api(409).exit_code(), 2);
        assert_eq!(api(503).exit_code(), 1);
        assert_eq!(Failure::Other(String::new()).exit_code(), 1);
        assert_eq!(Failure::Usage(String::new()).exit_code(), 2);
    }
}
