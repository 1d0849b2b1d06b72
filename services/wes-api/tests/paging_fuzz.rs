//! Page tokens and page sizes are client input: random and crafted values sent to every paged
//! endpoint of the real server (a debug build, where integer overflow panics) get 200 or 400,
//! never a 5xx or a dropped connection.
//!
//! A seeded random loop rather than a property-testing crate: the inputs that matter are few
//! shapes (foreign bytes, well-formed tokens with extreme numbers, sizes at and past every
//! bound), and a fixed seed makes a failure reproducible from its printed input.

mod common;

use serde_json::Value;
use spe_core::RunId;
use spe_core::page::OffsetToken;
use spe_core::secret::DatabaseUrl;
use spe_core::slurm::SlurmJobId;
use spe_core::time::Timestamp;
use spe_store::Store;

/// xorshift64*: small, deterministic, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn b64(plain: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(plain)
}

/// Numbers where arithmetic breaks: the ends of every integer type a token or size passes.
fn extreme(rng: &mut Rng) -> String {
    let edges: [i128; 14] = [
        0,
        1,
        -1,
        499,
        500,
        501,
        i32::MAX as i128,
        u32::MAX as i128,
        u32::MAX as i128 + 1,
        i64::MAX as i128,
        i64::MIN as i128,
        u64::MAX as i128,
        u64::MAX as i128 - 499,
        u64::MAX as i128 + 1,
    ];
    match rng.below(3) {
        0 => edges[rng.below(edges.len() as u64) as usize].to_string(),
        1 => (rng.next() as i64).to_string(),
        _ => "9".repeat(1 + rng.below(40) as usize),
    }
}

fn page_token(rng: &mut Rng) -> String {
    match rng.below(7) {
        0 => String::new(),
        1 => b64(format!("t1:{}", extreme(rng)).as_bytes()),
        2 => b64(format!("r1:{}:{}", extreme(rng), RunId::new_random()).as_bytes()),
        3 => b64(format!("r1:{}:{}", extreme(rng), rng.pick(&["", "x", "0", "-"])).as_bytes()),
        4 => {
            let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            b64(&bytes)
        }
        5 => (0..rng.below(300))
            .map(|_| char::from(32 + rng.below(95) as u8))
            .collect(),
        _ => OffsetToken(usize::MAX - rng.below(1000) as usize).encode(),
    }
}

fn page_size(rng: &mut Rng) -> Option<String> {
    match rng.below(5) {
        0 => None,
        1 => Some(
            rng.pick(&["", "ten", "1.5", "0x10", "+5", " 5", "1e3"])
                .to_owned(),
        ),
        _ => Some(extreme(rng)),
    }
}

/// Writes a Snakemake log with `n` jobs into a folder and records it as the run's log folder
/// (as the submitter does once Slurm has the job); the run stays QUEUED, a live run.
async fn give_tasks(store: &Store, run: &str, n: usize) {
    // The log folder lies inside the run's directory: the API reads job files only beneath it.
    let run_dir = store
        .get_run(run.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .run_dir;
    let dir = std::path::Path::new(&run_dir).join(".weskit/20261122T175849");
    let dir = dir.as_path();
    let mut log = String::new();
    for i in 0..n {
        log.push_str(&format!(
            "[Sun Nov 22 17:58:49 2026]\nrule step:\n    jobid: {i}\n[Sun Nov 22 17:58:50 2026]\nFinished jobid: {i} (Rule: step)\n"
        ));
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("stderr"), log).unwrap();
    let recorded = store
        .record_submission(
            run.parse().unwrap(),
            &"4242".parse::<SlurmJobId>().unwrap(),
            &dir.display().to_string(),
            Timestamp::from_micros(1_764_000_000_000_000),
        )
        .await
        .unwrap();
    assert!(recorded);
}

#[tokio::test]
async fn random_page_tokens_and_sizes_get_200_or_400_on_every_paged_endpoint() {
    let db_dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/spe.db", db_dir.path().display());
    let app = common::spawn_app_with(&[("SPE__DATABASE__URL", &db_url)]).await;
    app.register_examples().await;
    let mut runs = Vec::new();
    for i in 0..7 {
        runs.push(app.submit_ok(&format!(r#"{{"n": "{i}"}}"#)).await);
    }
    let store = Store::connect(&DatabaseUrl::new(db_url.clone()), 1)
        .await
        .unwrap();
    let tasks_run = &runs[3];
    give_tasks(&store, tasks_run, 23).await;

    // Paging through the tasks with the tokens the server issues yields each task once, in order.
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let res = app
            .client
            .get(app.wes(&format!("/runs/{tasks_run}/tasks")))
            .query(&[("page_size", "5"), ("page_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let page: Value = res.json().await.unwrap();
        for task in page["task_logs"].as_array().unwrap() {
            ids.push(task["id"].as_str().unwrap().to_owned());
        }
        token = page["next_page_token"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    let expected: Vec<String> = (0..23).map(|i| i.to_string()).collect();
    assert_eq!(ids, expected);

    // The crafted token that overflowed `start + page_size` (a panic in a debug build): now an
    // empty last page.
    for offset in [usize::MAX, usize::MAX - 499, usize::MAX - 4] {
        let res = app
            .client
            .get(app.wes(&format!("/runs/{tasks_run}/tasks")))
            .query(&[
                ("page_size", "500"),
                ("page_token", &OffsetToken(offset).encode()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "offset {offset}");
        let page: Value = res.json().await.unwrap();
        assert_eq!(
            page,
            serde_json::json!({"task_logs": [], "next_page_token": ""})
        );
    }
    // An offset past usize is not a token this service issued.
    let res = app
        .client
        .get(app.wes(&format!("/runs/{tasks_run}/tasks")))
        .query(&[("page_token", b64(b"t1:18446744073709551616"))])
        .send()
        .await
        .unwrap();
    let msg = common::error_msg(res, 400).await;
    assert!(
        msg.contains("page_token is not one this service issued"),
        "{msg}"
    );

    let endpoints = [
        "/runs".to_owned(),
        format!("/runs/{tasks_run}/tasks"),
        format!("/runs/{}/tasks", runs[0]),
    ];
    let mut rng = Rng(0x5eed_0017_cafe_f00d);
    let mut seen = [0usize; 2];
    for i in 0..600 {
        let path = &endpoints[i % endpoints.len()];
        let mut query = Vec::new();
        if let Some(size) = page_size(&mut rng) {
            query.push(("page_size", size));
        }
        if rng.below(4) != 0 {
            query.push(("page_token", page_token(&mut rng)));
        }
        let res = app
            .client
            .get(app.wes(path))
            .query(&query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path} {query:?}: no answer: {e}"));
        let status = res.status().as_u16();
        let body: Value = res
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path} {query:?}: not JSON: {e}"));
        match status {
            200 => {
                seen[0] += 1;
                let items = body["runs"].as_array().or(body["task_logs"].as_array());
                assert!(
                    items.is_some_and(|i| i.len() <= 500),
                    "{path} {query:?}: {body}"
                );
            }
            400 => {
                seen[1] += 1;
                assert!(body["msg"].is_string(), "{path} {query:?}: {body}");
            }
            other => panic!("{path} {query:?}: {other} {body}"),
        }
    }
    // Both kinds of answer were exercised, so the loop tested both the paths and the refusals.
    assert!(seen[0] > 50 && seen[1] > 50, "{seen:?}");
}
