//! What every page of the web UI shares (docs/ui.md): the response headers, the page guard that
//! answers refusals as HTML, CSRF tokens, and rendering. The pages themselves are askama
//! templates (`templates/ui/`, checked at compile time, HTML-escaped) filled from the view
//! structs of [`pages`]; the handlers are in `routes::ui`.

pub mod assets;
pub mod pages;
pub mod params_form;

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use askama::Template;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::routes::table::{Guard, RunScope};
use crate::session::Sessions;

/// The Content-Security-Policy of every page: only this service's own script, styles, images
/// and connections; no inline script or style (the templates have none); never framed. Images
/// may also be `data:` URLs: a reviewer's preview of a held image (an `<img>` runs no script,
/// SVG included).
/// `form-action` is left out on purpose: logout's redirect to the identity provider's
/// end-session endpoint follows a form post, which `form-action 'self'` would block.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The headers of every UI response (pages, errors, assets). The referrer policy is
/// `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` with a
/// form post (the Fetch standard), which the session's `Origin` check would refuse; other sites
/// still get no referrer.
pub fn secure_headers(res: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    res.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(("cross-origin-opener-policy", "same-origin"))
}

/// A page: HTML, never cached (it shows one person's data), with the UI's headers.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    secure_headers(&mut res)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// Renders a template into a 200 page.
pub fn render(page: &impl Template) -> Result<HttpResponse, PageError> {
    let body = page.render().map_err(ApiError::internal)?;
    Ok(html(StatusCode::OK, body))
}

/// A 303 to another page of the UI (after a form post).
pub fn see_other(to: &str) -> HttpResponse {
    let mut res = HttpResponse::SeeOther();
    secure_headers(&mut res)
        .insert_header((header::LOCATION, to.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A refusal or failure answered as a page: the same status, message and `WWW-Authenticate`
/// challenge as the API's `ErrorResponse`, shown as HTML with a way on (log in, go home).
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<spe_store::StoreError> for PageError {
    fn from(e: spe_store::StoreError) -> Self {
        PageError(e.into())
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let page = pages::ErrorPage::new(status, &self.0.to_string());
        let body = page
            .render()
            .unwrap_or_else(|_| "<!doctype html><title>Error</title>".to_owned());
        let mut res = html(status, body);
        // The API's challenge and retry hints, as its ErrorResponse carries them.
        let api = self.0.error_response();
        for name in [header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
            if let Some(value) = api.headers().get(&name) {
                res.headers_mut().insert(name, value.clone());
            }
        }
        res
    }
}

/// A page's guard: guard `G` (`Authorized<A>`, `VisibleRun<A>`, ...) whose refusals are
/// answered as pages. It stands in the route table as `G` does (same action and run scope).
pub struct Page<G>(pub G);

impl<G: Guard> Guard for Page<G> {
    type Action = G::Action;
    const RUN: RunScope = G::RUN;
}

impl<G> FromRequest for Page<G>
where
    G: FromRequest<Error = ApiError> + 'static,
{
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let guard = G::from_request(req, payload);
        Box::pin(async move { guard.await.map(Page).map_err(PageError) })
    }
}

/// The token a request's forms carry: its browser session's; without a session (a bearer
/// token, or `auth: disabled` in development) one random token of this process, which a page
/// of another site cannot read either.
pub fn csrf_token(req: &HttpRequest) -> String {
    static PROCESS: OnceLock<String> = OnceLock::new();
    req.app_data::<actix_web::web::Data<Sessions>>()
        .and_then(|s| s.csrf_token(req))
        .unwrap_or_else(|| PROCESS.get_or_init(spe_auth::random_secret).clone())
}

/// Refuses (403) a form whose `csrf` field is not the request's token. Compared as SHA-256
/// digests, so the comparison's time says nothing about the token.
pub fn check_csrf(req: &HttpRequest, submitted: Option<&str>) -> Result<(), PageError> {
    let expected = Sha256::digest(csrf_token(req).as_bytes());
    let given = Sha256::digest(submitted.unwrap_or_default().as_bytes());
    if submitted.is_some() && expected == given {
        Ok(())
    } else {
        Err(PageError(ApiError::new(
            StatusCode::FORBIDDEN,
            "this form has expired or did not come from this service's pages; reload the page \
             and try again",
        )))
    }
}

/// The fields of a posted form (`application/x-www-form-urlencoded`, at most 16 KiB).
pub fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>, PageError> {
    if body.len() > 16 * 1024 {
        return Err(PageError(ApiError::payload_too_large(16 * 1024)));
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|e| PageError(ApiError::bad_request(format!("malformed form: {e}"))))
}

/// A posted form's fields, once its `csrf` field is the request's token: how every form
/// handler starts.
pub fn checked_form(req: &HttpRequest, body: &[u8]) -> Result<Vec<(String, String)>, PageError> {
    let fields = form_fields(body)?;
    check_csrf(req, field(&fields, "csrf"))?;
    Ok(fields)
}

/// A posted `multipart/form-data` form (a form with a file): its text fields and its files.
pub struct MultipartForm {
    pub fields: Vec<(String, String)>,
    /// (field name, content) of each file chosen; a file input left empty is not here.
    pub files: Vec<(String, Vec<u8>)>,
}

impl MultipartForm {
    /// The content of the file chosen in input `name`.
    pub fn take_file(&mut self, name: &str) -> Option<Vec<u8>> {
        let at = self.files.iter().position(|(n, _)| n == name)?;
        Some(self.files.swap_remove(at).1)
    }
}

/// Most parts a multipart form of the UI has.
const MAX_MULTIPART_PARTS: usize = 16;

/// A posted multipart form, read whole (at most `limit` bytes) and returned only once its
/// `csrf` field is the request's token: how a form with a file upload starts.
pub async fn checked_multipart(
    req: &HttpRequest,
    payload: actix_web::web::Payload,
    limit: usize,
) -> Result<MultipartForm, PageError> {
    use futures_util::StreamExt;
    if crate::http::media_type(req) != "multipart/form-data" {
        return Err(PageError(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "this form is posted as multipart/form-data",
        )));
    }
    let bad = |e: actix_multipart::MultipartError| {
        PageError(ApiError::bad_request(format!(
            "malformed multipart/form-data: {e}"
        )))
    };
    let mut parts = actix_multipart::Multipart::new(req.headers(), payload);
    let mut form = MultipartForm {
        fields: Vec::new(),
        files: Vec::new(),
    };
    let (mut total, mut count) = (0usize, 0usize);
    while let Some(part) = parts.next().await {
        let mut part = part.map_err(bad)?;
        count += 1;
        if count > MAX_MULTIPART_PARTS {
            return Err(PageError(ApiError::bad_request(format!(
                "more than {MAX_MULTIPART_PARTS} form parts"
            ))));
        }
        let disposition = part.content_disposition().cloned();
        let name = disposition
            .as_ref()
            .and_then(|d| d.get_name())
            .map(str::to_owned)
            .ok_or_else(|| PageError(ApiError::bad_request("a form part has no name")))?;
        let is_file = disposition
            .as_ref()
            .and_then(|d| d.get_filename())
            .is_some();
        let mut value = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(bad)?;
            total += chunk.len();
            if total > limit {
                return Err(PageError(ApiError::payload_too_large(limit)));
            }
            value.extend_from_slice(&chunk);
        }
        if is_file {
            if !value.is_empty() {
                form.files.push((name, value));
            }
        } else {
            let text = String::from_utf8(value).map_err(|_| {
                PageError(ApiError::bad_request(format!(
                    "{}: must be UTF-8 text",
                    name.chars().take(64).collect::<String>()
                )))
            })?;
            form.fields.push((name, text));
        }
    }
    check_csrf(req, field(&form.fields, "csrf"))?;
    Ok(form)
}

/// The value of `name` in a form's fields.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
