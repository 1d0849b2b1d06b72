//! The web UI (docs/ui.md) as a browser meets it, over HTTP against the real server: pages and
//! their security headers, the runs list with its filters and paging, a run's page, the cancel
//! form and its CSRF token, the embedded assets and their caching, refusals as pages. The
//! browser login itself is tests/auth.rs's; the real browser is tests/browser/.

mod common;

use common::{TestApp, spawn_app, spawn_app_with};
use spe_core::RunId;
use spe_core::secret::DatabaseUrl;
use spe_core::time::Timestamp;
use spe_store::{EgressOutcome, EgressState, NewEgressFile, NewRun, SharePrincipal, Store};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn assert_page_headers(res: &reqwest::Response, what: &str) {
    let h = res.headers();
    assert_eq!(h["content-security-policy"], CSP, "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    // Not `no-referrer`: browsers would then post forms with `Origin: null` (docs/ui.md).
    assert_eq!(h["referrer-policy"], "same-origin", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
}

/// A page: asserts the status, HTML and the UI's headers; returns the body.
async fn page(app: &TestApp, path: &str, status: u16) -> String {
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), status, "{path}");
    assert_page_headers(&res, path);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
    res.text().await.unwrap()
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_of(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    body[at..].split('"').next().unwrap().to_owned()
}

fn no_inline_script_or_style(body: &str) {
    assert!(!body.contains("<script>"), "inline script");
    assert!(!body.contains("style="), "inline style");
    assert!(!body.contains("<style"), "inline style");
    // An inline event handler: ` on<letters>=` inside a tag.
    let handler = body.match_indices(" on").any(|(i, _)| {
        let rest = &body[i + 3..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase())
            .collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    });
    assert!(!handler, "an inline event handler");
}

#[tokio::test]
async fn the_start_page_links_what_the_callers_roles_allow_under_a_strict_policy() {
    let app = spawn_app_with(&[]).await;
    let body = page(&app, "/", 200).await;
    no_inline_script_or_style(&body);
    // `auth: disabled`: the one local user holds every role.
    for heading in ["Researcher", "Data controller", "Collaborator", "Operator"] {
        assert!(body.contains(&format!(">{heading}</h2>")), "{heading}");
    }
    assert!(body.contains("href=\"/ui/runs\""));
    assert!(body.contains("<main id=\"main\""));
    assert!(body.contains("<nav aria-label=\"Main\">"));
    // Without browser login there is nothing to log out of.
    assert!(!body.contains("/auth/logout"));
}

#[tokio::test]
async fn the_runs_page_lists_filters_and_pages_and_polls_the_wes_list_with_the_same_query() {
    let app = spawn_app_with(&[("SPE__SERVER__DEFAULT_PAGE_SIZE", "2")]).await;
    app.register_examples().await;
    let a = app.submit_ok(r#"{"project": "p1"}"#).await;
    let b = app.submit_ok(r#"{"project": "p2"}"#).await;
    let c = app.submit_ok(r#"{"project": "p1"}"#).await;
    let first = page(&app, "/ui/runs", 200).await;
    no_inline_script_or_style(&first);
    // Newest first, two a page, each with its state in a live badge.
    assert!(first.contains(&format!(
        "<span class=\"state state-queued\" data-run-id=\"{c}\">QUEUED</span>"
    )));
    assert!(first.contains(&b) && !first.contains(&a));
    assert!(
        first.contains("data-poll=\"/ga4gh/wes/v1/runs?page_size=2\""),
        "{first}"
    );
    let next = first
        .split("href=\"")
        .find_map(|s| s.strip_prefix("/ui/runs?page_token="))
        .map(|s| s.split('"').next().unwrap().to_owned())
        .expect("a next page link");
    let second = page(&app, &format!("/ui/runs?page_token={next}"), 200).await;
    assert!(second.contains(&a) && !second.contains(&b) && !second.contains(&c));
    assert!(second.contains(">First page</a>"));
    assert!(!second.contains("rel=\"next\""));
    // The tag filter, kept in the form and in the polled URL.
    let p1 = page(&app, "/ui/runs?state=&tag=project%3Ap1", 200).await;
    assert!(p1.contains(&a) && p1.contains(&c) && !p1.contains(&b));
    assert!(p1.contains("value=\"project:p1\""));
    assert!(
        p1.contains("data-poll=\"/ga4gh/wes/v1/runs?page_size=2&#38;tag=project%3Ap1\""),
        "{p1}"
    );
    // The state filter.
    let complete = page(&app, "/ui/runs?state=COMPLETE", 200).await;
    assert!(complete.contains("No runs match."));
    assert!(complete.contains("<option value=\"COMPLETE\" selected>"));
    // Bad filters are a 400 page naming the field.
    let bad = page(&app, "/ui/runs?state=finished", 400).await;
    assert!(bad.contains("state: unknown state"), "{bad}");
    let bad = page(&app, "/ui/runs?tag=nocolon", 400).await;
    assert!(bad.contains("tag:"), "{bad}");
}

#[tokio::test]
async fn a_runs_page_shows_its_history_and_cancels_only_with_the_forms_csrf_token() {
    let app = spawn_app().await;
    let id = app.submit_ok(r#"{"project": "p1"}"#).await;
    let body = page(&app, &format!("/ui/runs/{id}"), 200).await;
    no_inline_script_or_style(&body);
    assert!(body.contains(&format!("data-poll=\"/ga4gh/wes/v1/runs/{id}/status\"")));
    assert!(
        body.contains("<td>QUEUED</td>"),
        "the QUEUED event in the history"
    );
    assert!(body.contains("project: p1"));
    assert!(body.contains(&format!("action=\"/ui/runs/{id}/cancel\"")));
    let token = csrf_of(&body);
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cancel = format!("{}/ui/runs/{id}/cancel", app.base);
    // Without the token, or with another: 403 as a page, and the run goes on.
    for form in [vec![], vec![("csrf", "forged")]] {
        let res = no_redirect.post(&cancel).form(&form).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 403);
        assert_page_headers(&res, "refused cancel");
        let text = res.text().await.unwrap();
        assert!(text.contains("this form has expired or did not come from this service"));
    }
    let (_, status) = app.get_json(&format!("/runs/{id}/status")).await;
    assert_eq!(status["state"], "QUEUED");
    // With it: back to the run's page, which shows the run canceled and no cancel form.
    let res = no_redirect
        .post(&cancel)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"], format!("/ui/runs/{id}"));
    let body = page(&app, &format!("/ui/runs/{id}"), 200).await;
    assert!(body.contains(">CANCELED</span>"));
    assert!(!body.contains("/cancel\""));
    assert!(body.contains("canceled before it was submitted to the scheduler"));
    // A second cancel: 409 as a page naming the state.
    let res = no_redirect
        .post(&cancel)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 409);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("has already ended (CANCELED)")
    );
    // A run that does not exist, or an id that is none: 404 pages alike.
    for other in ["0b0e5a4e-8c1e-4c57-9a55-3b1f3a1d2c10", "nonsense"] {
        let body = page(&app, &format!("/ui/runs/{other}"), 404).await;
        assert!(body.contains(&format!("run {other} not found")), "{body}");
    }
}

#[tokio::test]
async fn assets_are_served_from_the_binary_with_a_year_of_cache_under_their_version() {
    let app = spawn_app_with(&[]).await;
    let home = page(&app, "/", 200).await;
    for (name, kind) in [("ui.css", "text/css"), ("ui.js", "text/javascript")] {
        let href = home
            .split('"')
            .find(|s| s.starts_with(&format!("/ui/assets/{name}?v=")))
            .unwrap_or_else(|| panic!("{name} linked with its version"))
            .to_owned();
        let version = href.rsplit('=').next().unwrap().to_owned();
        assert_eq!(version.len(), 16);
        let res = app
            .client
            .get(format!("{}{href}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert_page_headers(&res, name);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        assert_eq!(
            res.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(etag, format!("\"{version}\""));
        assert!(!res.bytes().await.unwrap().is_empty());
        // Without the version: revalidated, and 304 for the same ETag.
        let res = app
            .client
            .get(format!("{}/ui/assets/{name}", app.base))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 304);
        assert_eq!(res.headers()["cache-control"], "no-cache");
    }
    let res = app
        .client
        .get(format!("{}/ui/assets/..%2FCargo.toml", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
}

#[tokio::test]
async fn an_anonymous_browser_gets_a_401_page_offering_the_login_and_the_api_its_json() {
    // OIDC configured (no provider needed: a request without a token is refused before any).
    let app = spawn_app_with(&[
        ("SPE__AUTH__OIDC__ISSUER", "http://127.0.0.1:9"),
        ("SPE__AUTH__OIDC__AUDIENCE", "spe-api"),
    ])
    .await;
    for path in [
        "/",
        "/ui/runs",
        "/ui/runs/0b0e5a4e-8c1e-4c57-9a55-3b1f3a1d2c10",
    ] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{path}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"spe\"");
        assert_page_headers(&res, path);
        let body = res.text().await.unwrap();
        assert!(
            body.contains("<a class=\"button\" href=\"/auth/login\">Log in</a>"),
            "{body}"
        );
        assert!(!body.contains("Signed in as"));
    }
    // The API itself still answers JSON.
    let res = app.client.get(app.wes("/runs")).send().await.unwrap();
    common::error_msg(res, 401).await;
}

#[tokio::test]
async fn the_submit_form_is_made_from_the_params_schema_and_submits_through_admission() {
    let app = spawn_app().await;
    app.register_dataset("demo-2").await;
    let res = app
        .post_json("/admin/datasets/demo-2/retire", serde_json::json!({}))
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let list = page(&app, "/ui/submit", 200).await;
    assert!(list.contains("href=\"/ui/submit/quals/1.0.0\""), "{list}");
    let form = page(&app, "/ui/submit/quals/1.0.0", 200).await;
    no_inline_script_or_style(&form);
    // The schema's number: its bounds, default and description; the dataset: a picker of the
    // active datasets only; the engine parameters narrowed to the deployment's bounds (cores: the
    // manifest allows 4, the dev deployment 2).
    assert!(form.contains(
        "<input type=\"number\" id=\"f-min_qual\" name=\"param.min_qual\" value=\"30\" step=\"any\" min=\"0\" max=\"100\" aria-describedby=\"d-min_qual\">"
    ), "{form}");
    assert!(form.contains("QUAL threshold for the `passing` column."));
    assert!(form.contains("<option value=\"demo-1\">demo-1 — synthetic test data</option>"));
    assert!(!form.contains("demo-2"), "a retired dataset is offered");
    assert!(
        form.contains("name=\"engine.cores\" value=\"1\" step=\"1\" min=\"1\" max=\"2\""),
        "{form}"
    );
    assert!(form.contains("<input type=\"hidden\" name=\"workflow_type_version\" value=\"9\">"));
    let token = csrf_of(&form);
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}/ui/submit/quals/1.0.0", app.base);
    let post = |fields: Vec<(&'static str, String)>| {
        let req = no_redirect.post(&url).form(&fields);
        async move { req.send().await.unwrap() }
    };
    let good = |min_qual: &str, csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("param.dataset", "demo-1".to_owned()),
            ("param.min_qual", min_qual.to_owned()),
            ("workflow_type_version", "9".to_owned()),
            ("engine.cores", "2".to_owned()),
            ("engine.partition", "debug".to_owned()),
            ("tags", "project:p7, cohort:c1".to_owned()),
        ]
    };
    // No token: 403, nothing stored.
    let res = post(good("12.5", "forged")).await;
    assert_eq!(res.status().as_u16(), 403);
    // Out of the schema's bounds: the form again, with admission's reason and what was typed.
    let res = post(good("150", &token)).await;
    assert_eq!(res.status().as_u16(), 400);
    assert_page_headers(&res, "refused submission");
    let again = res.text().await.unwrap();
    assert!(again.contains("Not submitted: workflow_params"), "{again}");
    assert!(again.contains("value=\"150\""));
    assert!(again.contains("value=\"project:p7, cohort:c1\""));
    let res = post(good("many", &token)).await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Not submitted: min_qual: must be a number")
    );
    let (_, list) = app.get_json("/runs").await;
    assert_eq!(list["runs"], serde_json::json!([]));
    // Within them: the run's page, and the run as the API shows it.
    let res = post(good("12.5", &token)).await;
    assert_eq!(res.status().as_u16(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let id = location
        .strip_prefix("/ui/runs/")
        .expect("the run's page")
        .to_owned();
    let (status, run) = app.get_json(&format!("/runs/{id}")).await;
    assert_eq!(status, 200);
    let request = &run["request"];
    assert_eq!(request["workflow_url"], "quals@1.0.0");
    assert_eq!(
        request["workflow_params"],
        serde_json::json!({"dataset": "demo-1", "min_qual": 12.5})
    );
    assert_eq!(
        request["tags"],
        serde_json::json!({"project": "p7", "cohort": "c1"})
    );
    assert_eq!(request["workflow_engine_parameters"]["cores"], "2");
    // A version that is not approved (or not there) has no form.
    let body = page(&app, "/ui/submit/quals/9.9.9", 404).await;
    assert!(body.contains("no approved workflow quals@9.9.9"));
}

/// A run of `owner` whose outputs, as the crawler recorded them, are held for review and on
/// disk in its run directory, with these contents.
async fn run_with_held(app: &TestApp, owner: spe_core::Subject, files: &[(&str, &[u8])]) -> RunId {
    let db = app.data_dir.parent().unwrap().join("spe.db");
    let store = Store::connect(&DatabaseUrl::new(format!("sqlite://{}", db.display())), 2)
        .await
        .unwrap();
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let id = RunId::new_random();
    let run_dir = app.data_dir.join(id.to_string());
    store
        .insert_run(&NewRun {
            id,
            owner,
            submission: spe_test_support::store::submission("quals@1.0.0", &[]),
            run_dir: run_dir.display().to_string(),
            created_at: now,
        })
        .await
        .unwrap();
    let mut held = Vec::new();
    for (path, body) in files {
        let file = run_dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, body).unwrap();
        held.push(NewEgressFile {
            path: (*path).into(),
            state: EgressState::Held,
            size: body.len() as i64,
            reason: Some("matches a review rule".into()),
        });
    }
    store.record_egress_scan(id, &held, now).await.unwrap();
    id
}

#[tokio::test]
async fn data_controllers_review_held_outputs_with_previews_and_vote_from_the_page() {
    let app = spawn_app().await;
    let other = spe_core::Subject::new("https://login.example", "someone-else").unwrap();
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>"#;
    let theirs = run_with_held(
        &app,
        other,
        &[
            ("results/table.csv", b"site,n\nA,12\nB,40\n".as_slice()),
            ("plots/quals.svg", svg.as_slice()),
        ],
    )
    .await;
    let mine = run_with_held(
        &app,
        spe_core::Subject::local_dev_user(),
        &[("notes.txt", b"my own".as_slice())],
    )
    .await;
    // The queue, oldest first; a bad filter is a 400 page.
    let queue = page(&app, "/ui/reviews", 200).await;
    no_inline_script_or_style(&queue);
    let (a, b) = (
        queue.find(&theirs.to_string()),
        queue.find(&mine.to_string()),
    );
    assert!(a.is_some() && b.is_some() && a < b, "{queue}");
    assert!(
        page(&app, "/ui/reviews?state=returned", 200)
            .await
            .contains("No review request in this state.")
    );
    page(&app, "/ui/reviews?state=closed", 400).await;
    // A request: the table as a table, the image inline (a data: URL the CSP allows), a vote
    // form per held file.
    let body = page(&app, &format!("/ui/reviews/{theirs}"), 200).await;
    no_inline_script_or_style(&body);
    assert!(
        body.contains("<th scope=\"col\">site</th><th scope=\"col\">n</th>"),
        "{body}"
    );
    assert!(body.contains("<td>A</td><td>12</td>"));
    assert!(body.contains("<img src=\"data:image/svg+xml;base64,"));
    assert_eq!(body.matches("/votes\"").count(), 2);
    assert!(body.contains("matches a review rule"));
    // Their own run: no vote form, and a vote is refused.
    let own = page(&app, &format!("/ui/reviews/{mine}"), 200).await;
    assert!(own.contains("This is your own run"));
    assert!(!own.contains("/votes\"") && !own.contains("/return\""));
    let token = csrf_of(&body);
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let vote = |run: RunId, fields: Vec<(&'static str, String)>| {
        let req = no_redirect
            .post(format!("{}/ui/reviews/{run}/votes", app.base))
            .form(&fields);
        async move { req.send().await.unwrap() }
    };
    let res = vote(
        mine,
        vec![
            ("csrf", token.clone()),
            ("path", "notes.txt".into()),
            ("vote", "approve".into()),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 403);
    // Without the token: 403; a rejection without a comment: 400 naming it.
    let res = vote(
        theirs,
        vec![
            ("path", "plots/quals.svg".into()),
            ("vote", "approve".into()),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 403);
    let res = vote(
        theirs,
        vec![
            ("csrf", token.clone()),
            ("path", "results/table.csv".into()),
            ("vote", "reject".into()),
            ("comment", " ".into()),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("comment: required"));
    // Returning the request needs a comment; with one, the request is returned, the exchange
    // shows on the review page and on the run's page (the answer form only for the run's owner,
    // who alone may answer).
    let ret = format!("{}/ui/reviews/{theirs}/return", app.base);
    let res = no_redirect
        .post(&ret)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let res = no_redirect
        .post(&ret)
        .form(&[("csrf", token.as_str()), ("comment", "what does n count?")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let body = page(&app, &format!("/ui/reviews/{theirs}"), 200).await;
    assert!(
        body.contains("A data controller returned the request"),
        "{body}"
    );
    assert!(body.contains("what does n count?"));
    assert!(
        !body.contains("/return\""),
        "no second return while returned"
    );
    let (_, returned) = app.get_json("/admin/reviews?state=returned").await;
    assert_eq!(returned["requests"][0]["run_id"], theirs.to_string());
    let run_page = page(&app, &format!("/ui/runs/{theirs}"), 200).await;
    assert!(run_page.contains("what does n count?"));
    assert!(!run_page.contains("/answer\""), "only the owner answers");
    let res = no_redirect
        .post(format!("{}/ui/runs/{theirs}/answer", app.base))
        .form(&[("csrf", token.as_str()), ("comment", "counts of samples")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // Approve the plot, reject the table with a reason: back to the page, which shows both.
    let res = vote(
        theirs,
        vec![
            ("csrf", token.clone()),
            ("path", "plots/quals.svg".into()),
            ("vote", "approve".into()),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"], format!("/ui/reviews/{theirs}"));
    let res = vote(
        theirs,
        vec![
            ("csrf", token.clone()),
            ("path", "results/table.csv".into()),
            ("vote", "reject".into()),
            ("comment", "site A is small".into()),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    let body = page(&app, &format!("/ui/reviews/{theirs}"), 200).await;
    assert!(
        body.contains("Decision: <strong>approved</strong>"),
        "{body}"
    );
    assert!(body.contains("Decision: <strong>rejected</strong>"));
    assert!(body.contains("site A is small"));
    assert_eq!(
        body.matches("/votes\"").count(),
        0,
        "nothing is held any more"
    );
    // The API agrees.
    let (_, egress) = app.get_json(&format!("/runs/{theirs}/egress")).await;
    let states: Vec<(String, String)> = egress["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["decision"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("plots/quals.svg".to_owned(), "approved".to_owned()),
            ("results/table.csv".to_owned(), "rejected".to_owned())
        ]
    );
}

#[tokio::test]
async fn data_controllers_approve_and_retire_workflow_versions_from_the_registry_page() {
    let app = spawn_app_with(&[]).await;
    let quals = common::repo_root().join("workflows/quals");
    let res = app
        .post_json(
            "/admin/workflows",
            serde_json::json!({"source_dir": quals.display().to_string()}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let body = page(&app, "/ui/workflows", 200).await;
    no_inline_script_or_style(&body);
    assert!(
        body.contains("<span class=\"egress wf-draft\">draft</span>"),
        "{body}"
    );
    assert!(body.contains("action=\"/ui/workflows/quals/1.0.0/approve\""));
    let token = csrf_of(&body);
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |what: &str, fields: Vec<(&'static str, String)>| {
        let req = no_redirect
            .post(format!("{}/ui/workflows/quals/1.0.0/{what}", app.base))
            .form(&fields);
        async move { req.send().await.unwrap() }
    };
    assert_eq!(post("approve", vec![]).await.status().as_u16(), 403);
    let res = post("approve", vec![("csrf", token.clone())]).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"], "/ui/workflows");
    let body = page(&app, "/ui/workflows", 200).await;
    assert!(body.contains("<span class=\"egress wf-approved\">approved</span>"));
    assert!(body.contains("<dt>Approved</dt>"));
    assert!(!body.contains("/approve\""));
    let (_, v) = app.get_json("/workflows/quals/1.0.0").await;
    assert_eq!(v["name"], "quals", "approved and offered to researchers");
    // Approving again: the registry's refusal as a page.
    let res = post("approve", vec![("csrf", token.clone())]).await;
    assert_eq!(res.status().as_u16(), 409);
    let res = post(
        "retire",
        vec![
            ("csrf", token.clone()),
            ("reason", "superseded by 1.1.0".into()),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    let body = page(&app, "/ui/workflows", 200).await;
    assert!(body.contains("<span class=\"egress wf-retired\">retired</span>"));
    assert!(body.contains(": superseded by 1.1.0"), "{body}");
    assert!(!body.contains("/retire\""));
    let (status, _) = app.get_json("/workflows/quals/1.0.0").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_registry_page_shows_the_four_eyes_rule_to_the_registrar() {
    let app = spawn_app_with(&[("SPE__WORKFLOWS__REQUIRE_DISTINCT_APPROVER", "true")]).await;
    let quals = common::repo_root().join("workflows/quals");
    let res = app
        .post_json(
            "/admin/workflows",
            serde_json::json!({"source_dir": quals.display().to_string()}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let body = page(&app, "/ui/workflows", 200).await;
    assert!(body.contains("You registered this version: another data controller must approve it."));
    assert!(!body.contains("/approve\""));
    let token = csrf_of(&body);
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/ui/workflows/quals/1.0.0/approve", app.base))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert_page_headers(&res, "four eyes");
}

fn quals_tar_gz(version: &str) -> Vec<u8> {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("quals");
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(common::repo_root().join("workflows/quals"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(copied.success());
    let manifest = std::fs::read_to_string(copy.join("workflow.yaml")).unwrap();
    let manifest = manifest.replace("version: 1.0.0", &format!("version: {version}"));
    std::fs::write(copy.join("workflow.yaml"), manifest).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all("quals", &copy).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn data_controllers_register_a_version_from_its_tar_gz_and_read_its_files_before_approving() {
    let app = spawn_app_with(&[]).await;
    let body = page(&app, "/ui/workflows", 200).await;
    assert!(
        body.contains(
            r#"<form method="post" action="/ui/workflows" enctype="multipart/form-data">"#
        )
    );
    assert!(body.contains(r#"<input type="file" id="register-archive" name="archive""#));
    let token = csrf_of(&body);
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |csrf: Option<&str>, archive: Option<Vec<u8>>, folder: Option<&str>| {
        let mut form = reqwest::multipart::Form::new();
        if let Some(csrf) = csrf {
            form = form.text("csrf", csrf.to_owned());
        }
        if let Some(folder) = folder {
            form = form.text("source_dir", folder.to_owned());
        }
        form = form.part(
            "archive",
            reqwest::multipart::Part::bytes(archive.unwrap_or_default())
                .file_name("quals.tar.gz")
                .mime_str("application/gzip")
                .unwrap(),
        );
        let req = no_redirect
            .post(format!("{}/ui/workflows", app.base))
            .multipart(form);
        async move { req.send().await.unwrap() }
    };
    let text_of = |res: reqwest::Response| async move { res.text().await.unwrap() };
    // Without the form's token nothing is unpacked or registered.
    let res = post(None, Some(quals_tar_gz("1.2.0")), None).await;
    assert_eq!(res.status().as_u16(), 403);
    let (status, _) = app.get_json("/admin/workflows/quals/1.2.0").await;
    assert_eq!(status, 404);
    // Neither a file nor a folder, both, or something that is not a tar.gz: the page says why.
    let res = post(Some(&token), None, None).await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(text_of(res).await.contains(
        "choose the tar.gz of the workflow&#39;s folder (or give a folder on the cluster)"
    ));
    let res = post(Some(&token), Some(quals_tar_gz("1.2.0")), Some("/tmp/x")).await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(text_of(res).await.contains("not both"));
    let res = post(Some(&token), Some(b"not gzip".to_vec()), None).await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(
        text_of(res)
            .await
            .contains("not a gzip-compressed tar archive")
    );
    // Registered from the upload: a draft, and its page.
    let res = post(Some(&token), Some(quals_tar_gz("1.2.0")), None).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"], "/ui/workflows/quals/1.2.0");
    let (status, v) = app.get_json("/admin/workflows/quals/1.2.0").await;
    assert_eq!(status, 200);
    assert_eq!(v["state"], "draft");
    let digest = v["registered_digest"].as_str().unwrap().to_owned();
    let registry = page(&app, "/ui/workflows", 200).await;
    assert!(
        registry.contains(r#"<a href="/ui/workflows/quals/1.2.0"><code>quals@1.2.0</code></a>"#)
    );
    // The version's page: facts, the files its digest covers, the manifest shown first.
    let body = page(&app, "/ui/workflows/quals/1.2.0", 200).await;
    no_inline_script_or_style(&body);
    assert!(body.contains(&format!("<dt>Digest</dt><dd><code>{digest}</code></dd>")));
    assert!(body.contains("<dt>Entry point</dt><dd><code>Snakefile</code></dd>"));
    assert!(body.contains(r#"<h2 id="shown-heading"><code>workflow.yaml</code></h2>"#));
    assert!(body.contains("version: 1.2.0"), "{body}");
    assert!(body.contains(
        r#"<a href="/ui/workflows/quals/1.2.0?file=Snakefile"><code>Snakefile</code></a>"#
    ));
    assert!(body.contains(r#"action="/ui/workflows/quals/1.2.0/approve""#));
    // Any other file it covers, as text; nothing it does not cover.
    let snakefile =
        std::fs::read_to_string(common::repo_root().join("workflows/quals/Snakefile")).unwrap();
    let first_line = snakefile.lines().find(|l| !l.trim().is_empty()).unwrap();
    let body = page(&app, "/ui/workflows/quals/1.2.0?file=Snakefile", 200).await;
    assert!(body.contains(r#"<strong aria-current="page"><code>Snakefile</code></strong>"#));
    let escaped = first_line
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;");
    assert!(body.contains(&escaped), "{first_line} in {body}");
    let body = page(&app, "/ui/workflows/quals/1.2.0?file=..%2F..%2Fspe.db", 404).await;
    assert!(
        body.contains("workflow quals@1.2.0 has no file &#34;../../spe.db&#34;"),
        "{body}"
    );
    page(&app, "/ui/workflows/quals/1.2.0?path=Snakefile", 400).await;
    page(&app, "/ui/workflows/quals/9.9.9", 404).await;
    // The same version again: the registry's refusal.
    let res = post(Some(&token), Some(quals_tar_gz("1.2.0")), None).await;
    assert_eq!(res.status().as_u16(), 409);
}

/// The store of a test app (its SQLite file).
async fn store_of(app: &TestApp) -> Store {
    let db = app.data_dir.parent().unwrap().join("spe.db");
    Store::connect(&DatabaseUrl::new(format!("sqlite://{}", db.display())), 2)
        .await
        .unwrap()
}

/// Posts a form (with this service's `Origin`, as a browser does) without following redirects.
async fn post_form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}{path}", app.base))
        .header("origin", &app.base)
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// A run of `owner` whose outputs the crawler settled: `results/report.txt` released as it
/// is, `results/secret.txt` released stored Crypt4GH-encrypted, `results/table.csv` held.
async fn run_with_released(store: &Store, owner: spe_core::Subject) -> RunId {
    let now = || Timestamp::from_datetime(chrono::Utc::now());
    let id = RunId::new_random();
    store
        .insert_run(&NewRun {
            id,
            owner,
            submission: spe_test_support::store::submission("quals@1.0.0", &[]),
            run_dir: format!("/nonexistent/{id}"),
            created_at: now(),
        })
        .await
        .unwrap();
    let file = |path: &str, state: EgressState| NewEgressFile {
        path: path.into(),
        state,
        size: 10,
        reason: None,
    };
    store
        .record_egress_scan(
            id,
            &[
                file("results/report.txt", EgressState::Pending),
                file("results/secret.txt", EgressState::Pending),
                file("results/table.csv", EgressState::Held),
            ],
            now(),
        )
        .await
        .unwrap();
    let sha = "ab".repeat(32);
    for (path, outcome) in [
        (
            "results/report.txt",
            EgressOutcome::Released {
                sha256: &sha,
                size: 12,
            },
        ),
        (
            "results/secret.txt",
            EgressOutcome::ReleasedEncrypted {
                sha256: &sha,
                size: 7,
                with: spe_core::manifest::OutputEncryption::Crypt4gh,
            },
        ),
    ] {
        let lease = Timestamp::from_micros(now().micros() + 60_000_000);
        store
            .claim_egress_file(id, path, "test-crawler", now(), lease)
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .finish_egress_file(id, path, "test-crawler", outcome, now())
                .await
                .unwrap()
        );
    }
    id
}

#[tokio::test]
async fn collaborators_see_shared_results_and_download_released_files_through_short_lived_links() {
    let Some(s3) = spe_test_support::peers::s3_url() else {
        return;
    };
    let app = spawn_app_with(&[("SPE__CRAWLER__ENDPOINT", s3.as_str())]).await;
    let store = store_of(&app).await;
    let owner = spe_core::Subject::new("https://login.example", "owner-of-run").unwrap();
    let shared = run_with_released(&store, owner.clone()).await;
    let unshared = run_with_released(&store, owner.clone()).await;
    let now = Timestamp::from_datetime(chrono::Utc::now());
    assert!(
        store
            .add_share(
                shared,
                &SharePrincipal::User(spe_core::Subject::local_dev_user()),
                &owner,
                now,
            )
            .await
            .unwrap()
    );
    // The list: the shared run with its owner, not the other one.
    let list = page(&app, "/ui/results", 200).await;
    no_inline_script_or_style(&list);
    assert!(
        list.contains(&format!("href=\"/ui/results/{shared}\"")),
        "{list}"
    );
    assert!(!list.contains(&unshared.to_string()));
    assert!(list.contains(&owner.to_string()));
    // (Who reaches a run's results is `SharedResults`, the API's guard, tested in
    // tests/results.rs; the one local user here is an operator too.)
    // Its released files only; the plaintext one with a link form, the encrypted one with the
    // API's bound download and the steps to decrypt it.
    let files = page(&app, &format!("/ui/results/{shared}"), 200).await;
    no_inline_script_or_style(&files);
    assert!(files.contains("<code>results/report.txt</code>"));
    assert!(
        !files.contains("results/table.csv"),
        "held files are not listed"
    );
    assert!(files.contains(&format!("action=\"/ui/results/{shared}/link\"")));
    assert!(files.contains(&format!(
        "href=\"/ga4gh/wes/v1/results/{shared}/crypt4gh?path=results%2Fsecret.txt\""
    )));
    assert!(files.contains("You have no Crypt4GH key here yet"));
    assert!(
        files.contains("crypt4gh decrypt --sk me.sec &lt; file.c4gh &gt; file"),
        "{files}"
    );
    assert!(files.contains(&format!("spectl results download {shared} --decrypt")));
    let csrf = csrf_of(&files);
    let link = format!("/ui/results/{shared}/link");
    // No token, no link.
    let res = post_form(&app, &link, &[("path", "results/report.txt")]).await;
    assert_eq!(res.status().as_u16(), 403);
    // A held file is not signed; an encrypted one leaves only bound to its reader.
    let res = post_form(
        &app,
        &link,
        &[("csrf", &csrf), ("path", "results/table.csv")],
    )
    .await;
    assert_eq!(res.status().as_u16(), 404);
    let res = post_form(
        &app,
        &link,
        &[("csrf", &csrf), ("path", "results/secret.txt")],
    )
    .await;
    assert_eq!(res.status().as_u16(), 409);
    assert!(res.text().await.unwrap().contains("Crypt4GH-encrypted"));
    // The released file: a 303 to a presigned GET of its object, which downloads it.
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&s3)
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "spe-test-access",
                "spe-test-secret-key",
                None,
                None,
                "test",
            ))
            .build(),
    );
    client
        .put_object()
        .bucket("spe-results")
        .key(format!("{shared}/results/report.txt"))
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"the report\n",
        ))
        .send()
        .await
        .unwrap();
    let res = post_form(
        &app,
        &link,
        &[("csrf", &csrf), ("path", "results/report.txt")],
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_page_headers(&res, "link");
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with(&format!("{s3}/spe-results/{shared}/results/report.txt?")),
        "{to}"
    );
    assert!(to.contains("X-Amz-Signature="));
    let got = reqwest::get(&to).await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.text().await.unwrap(), "the report\n");
    // Registering a key from the page: a bad one is refused with the reason, a good one is
    // shown by its fingerprint.
    let key_form = format!("/ui/results/{shared}/key");
    let res = post_form(
        &app,
        &key_form,
        &[("csrf", &csrf), ("public_key", "not a key")],
    )
    .await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("not a Crypt4GH public key")
    );
    let key = spe_crypt4gh::SecretKey::generate().unwrap().public_key();
    let res = post_form(
        &app,
        &key_form,
        &[("csrf", &csrf), ("public_key", &key.to_pem())],
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"], format!("/ui/results/{shared}"));
    let files = page(&app, &format!("/ui/results/{shared}"), 200).await;
    assert!(files.contains(&key.fingerprint()), "{files}");
    assert!(!files.contains("You have no Crypt4GH key here yet"));
}

#[tokio::test]
async fn owners_share_a_runs_results_with_users_and_groups_from_its_page_and_stop_sharing() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let id = run_with_released(&store, spe_core::Subject::local_dev_user()).await;
    let run_page = format!("/ui/runs/{id}");
    let body = page(&app, &run_page, 200).await;
    no_inline_script_or_style(&body);
    assert!(body.contains("Not shared with anyone."));
    assert!(
        body.contains(&format!("<a href=\"/ui/results/{id}\">2 released</a>")),
        "{body}"
    );
    let csrf = csrf_of(&body);
    let shares = format!("/ui/runs/{id}/shares");
    let res = post_form(&app, &shares, &[("kind", "subject"), ("value", "alice")]).await;
    assert_eq!(res.status().as_u16(), 403);
    // The API's rules: a group is a URN.
    let res = post_form(
        &app,
        &shares,
        &[("csrf", &csrf), ("kind", "group"), ("value", "friends")],
    )
    .await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("an eduperson_entitlement URN")
    );
    let group = "urn:geant:lifescience-ri.eu:group:vo:sub#login.example";
    for (kind, value) in [("subject", "alice"), ("group", group)] {
        let res = post_form(
            &app,
            &shares,
            &[("csrf", &csrf), ("kind", kind), ("value", value)],
        )
        .await;
        assert_eq!(res.status().as_u16(), 303, "{kind}");
        assert_eq!(res.headers()["location"], run_page);
    }
    let body = page(&app, &run_page, 200).await;
    assert!(body.contains("<code>alice</code>"));
    assert!(body.contains("<code>urn:geant:lifescience-ri.eu:group:vo:sub#login.example</code>"));
    // As the API lists them.
    let (status, listed) = app.get_json(&format!("/runs/{id}/shares")).await;
    assert_eq!(status, 200);
    assert_eq!(listed["shares"].as_array().unwrap().len(), 2, "{listed}");
    // Stop sharing with alice; a second time there is no such share.
    let remove = format!("/ui/runs/{id}/shares/remove");
    let issuer = spe_core::Subject::local_dev_user().issuer().to_owned();
    let fields = [
        ("csrf", csrf.as_str()),
        ("kind", "subject"),
        ("value", "alice"),
        ("issuer", issuer.as_str()),
    ];
    let res = post_form(&app, &remove, &fields[1..]).await;
    assert_eq!(res.status().as_u16(), 403);
    let res = post_form(&app, &remove, &fields).await;
    assert_eq!(res.status().as_u16(), 303);
    let res = post_form(&app, &remove, &fields).await;
    assert_eq!(res.status().as_u16(), 404);
    let body = page(&app, &run_page, 200).await;
    assert!(!body.contains("<code>alice</code>"));
    assert!(body.contains("Stop sharing with urn:geant"));
}

#[tokio::test]
async fn data_controllers_see_datasets_with_their_accepted_uploads() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let grant = spe_store::NewUploadGrant {
        id: "grant-1".into(),
        dataset_id: "demo-1".into(),
        token_sha256: "00".repeat(32),
        granted_to: spe_core::Subject::local_dev_user(),
        files: vec!["a.vcf.c4gh".into(), "b.vcf.c4gh".into()],
        created_at: now,
        expires_at: Timestamp::from_micros(now.micros() + 3_600_000_000),
    };
    store.create_upload_grant(&grant).await.unwrap();
    let stored = store.upload_grant("grant-1").await.unwrap().unwrap();
    assert!(
        store
            .claim_upload("grant-1", "a.vcf.c4gh", now)
            .await
            .unwrap()
    );
    let sha = "cd".repeat(32);
    store
        .finish_upload(
            &stored,
            "a.vcf.c4gh",
            spe_store::UploadOutcome::Accepted {
                sha256: &sha,
                size: 4242,
            },
            now,
        )
        .await
        .unwrap();
    let body = page(&app, "/ui/datasets", 200).await;
    no_inline_script_or_style(&body);
    assert!(body.contains("<code>demo-1</code>"), "{body}");
    assert!(body.contains(">active</span>"));
    // The accepted upload with its checksum; the one still expected is not listed.
    assert!(
        body.contains("<code>a.vcf.c4gh</code></td><td>4242</td>"),
        "{body}"
    );
    assert!(body.contains(&sha));
    assert!(!body.contains("b.vcf.c4gh"));
}

#[tokio::test]
async fn the_audit_page_pages_newest_first_and_loads_whether_the_whole_chain_verifies() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    // Records: the examples' registrations, approvals, the dataset, and some shares.
    let owner = spe_core::Subject::local_dev_user();
    let id = run_with_released(&store, owner.clone()).await;
    for n in 0..60 {
        let who = spe_core::Subject::new(owner.issuer(), format!("friend-{n}")).unwrap();
        let at = Timestamp::from_datetime(chrono::Utc::now());
        store
            .add_share(id, &SharePrincipal::User(who), &owner, at)
            .await
            .unwrap();
    }
    let head = spe_store::audit::head(&store).await.unwrap().unwrap();
    assert!(head.seq > 60);
    let body = page(&app, "/ui/audit", 200).await;
    no_inline_script_or_style(&body);
    // The verdict is its own page, which the script puts in place of the status line.
    assert!(
        body.contains(r#"<p id="chain-status" class="notice" role="status" data-fill-from="/ui/audit/verification">"#),
        "{body}"
    );
    assert!(body.contains(r#"<a href="/ui/audit/verification">See the verification</a>"#));
    assert!(!body.contains("Chain verified"));
    let verdict = page(&app, "/ui/audit/verification", 200).await;
    no_inline_script_or_style(&verdict);
    assert!(
        verdict.contains(r#"<p id="chain-status" class="notice" role="status">"#),
        "{verdict}"
    );
    assert!(
        verdict.contains("<strong>Chain verified:</strong>"),
        "{verdict}"
    );
    assert!(verdict.contains(&format!("head {head}")));
    // Newest first, 50 a page.
    let first_row = format!("<tr><td>{}</td>", head.seq);
    let last_row = format!("<tr><td>{}</td>", head.seq - 49);
    assert!(body.contains(&first_row) && body.contains(&last_row));
    assert!(body.find(&first_row) < body.find(&last_row));
    assert!(!body.contains(&format!("<tr><td>{}</td>", head.seq - 50)));
    assert!(body.contains("friend-59"));
    let older = format!("/ui/audit?upto={}", head.seq - 50);
    assert!(
        body.contains(&format!("href=\"{older}\" rel=\"next\"")),
        "{body}"
    );
    assert!(!body.contains("Newer records"));
    let second = page(&app, &older, 200).await;
    assert!(second.contains(&format!("<tr><td>{}</td>", head.seq - 50)));
    assert!(second.contains(&format!("href=\"/ui/audit?upto={}\"", head.seq)));
    page(&app, "/ui/audit?upto=-1", 400).await;
    page(&app, "/ui/audit?after=3", 400).await;
    // A record changed in the database (by an administrator who first dropped the
    // append-only trigger): the page says where the chain breaks.
    for sql in [
        "DROP TRIGGER audit_log_no_update",
        "UPDATE audit_log SET details = '{}' WHERE seq = 2",
    ] {
        store.debug_execute(sql).await.unwrap();
    }
    let body = page(&app, "/ui/audit/verification", 200).await;
    assert!(body.contains(r#"<p id="chain-status" class="notice error" role="status">"#));
    assert!(body.contains("<strong>Chain broken:</strong>"));
    assert!(
        body.contains("record 2 was changed: its fields no longer give its SHA-256"),
        "{body}"
    );
}
