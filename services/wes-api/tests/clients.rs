//! The WES clients people already use, from PyPI (installed in the tools venv by
//! tests/peers/python-tools.sh; weskit-client, which needs Python >= 3.12, by its `--weskit`, in
//! a venv of its own linked into the tools venv's bin dir), driven against the real wes-api
//! binary on port 0 with real tokens from the OIDC test provider: Galaxy's gxy-wes, wes-service's
//! wes-client, ai4gh and WESkit's weskit-client. For each: service info, submit (where the client
//! can), list with paging (where it can), status, the run log, cancel. Slurm is off, so runs stay
//! QUEUED, which is all these steps need; a cancelled QUEUED run ends CANCELED at once.
//!
//! What a client cannot do against this service is asserted as what it does, with the reason.
//! The Python scripts under tests/clients/ use the clients' libraries where their command lines
//! stop short (gxy-wes's CLI sends only Galaxy's API key; wes-client's CLI has no status or
//! cancel); each prints its answers as one JSON object, asserted here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use spe_test_support::oidc as support;
use spe_test_support::process::{Service, TextOutput};
use spe_test_support::{peers, repo_root, skip};

/// wes-api (the binary) on the dev config, trusting the test provider, with a database and
/// data folder of its own and Slurm off; `quals@1.0.0` registered and approved by a data
/// controller.
struct Deployment {
    _service: Service,
    /// The server's root, e.g. `http://127.0.0.1:40123`.
    base: String,
    port: u16,
    http: reqwest::Client,
    researcher: String,
    dir: tempfile::TempDir,
}

impl Deployment {
    async fn start(peer: &support::Peer) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("spe.yaml");
        std::fs::write(&config, peer.dev_yaml()).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_wes-api"));
        command
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(repo_root())
            .env(
                "SPE__DATABASE__URL",
                format!("sqlite://{}/spe.db", dir.path().display()),
            )
            .env("SPE__DATA_DIR", dir.path().join("runs"))
            .env("SPE__SLURM__ENABLED", "false")
            .env("SPE__SERVER__WORKERS", "1")
            .stderr(Stdio::null());
        let service = Service::start(command);
        let port = service.port();
        let d = Deployment {
            _service: service,
            base: format!("http://127.0.0.1:{port}"),
            port,
            http: reqwest::Client::new(),
            researcher: peer.token("researcher").await,
            dir,
        };
        let controller = peer.token("controller").await;
        let quals = repo_root().join("workflows/quals");
        for (path, body) in [
            (
                "/admin/workflows",
                json!({"source_dir": quals.display().to_string()}),
            ),
            ("/admin/workflows/quals/1.0.0/approve", json!({})),
        ] {
            let res = d
                .http
                .post(format!("{}/ga4gh/wes/v1{path}", d.base))
                .bearer_auth(&controller)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        }
        d
    }

    /// Submits `n` runs of quals as the researcher (multipart, as WES specifies).
    async fn submit_runs(&self, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for _ in 0..n {
            let form = reqwest::multipart::Form::new()
                .text("workflow_type", "SMK")
                .text("workflow_type_version", "9")
                .text("workflow_url", "quals@1.0.0")
                .text("workflow_params", r#"{"min_qual": 10}"#);
            let res = self
                .http
                .post(format!("{}/ga4gh/wes/v1/runs", self.base))
                .bearer_auth(&self.researcher)
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            ids.push(body["run_id"].as_str().unwrap().to_owned());
        }
        ids
    }
}

/// The tools venv's bin folder, when it holds `program` (else the test is reported skipped,
/// or fails under CI).
fn client(program: &str, why_missing: &str) -> Option<PathBuf> {
    let bin = peers::tools_bin()?;
    let found = if bin.join(program).is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{program} is not in {}: {why_missing}",
            bin.display()
        ))
    };
    skip::require(program, found)
}

const INSTALLED_BY: &str = "tests/peers/python-tools.sh installs it";

fn run(command: &mut Command) -> TextOutput {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    out.into()
}

fn json_of(out: &TextOutput) -> Value {
    assert_eq!(out.code, 0, "{out:?}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// A Python script of tests/clients/ run with the venv's interpreter.
fn script(bin: &Path, name: &str) -> Command {
    let mut command = Command::new(bin.join("python"));
    command.arg(
        repo_root()
            .join("services/wes-api/tests/clients")
            .join(name),
    );
    command
}

fn ids_of(runs: &Value) -> BTreeSet<String> {
    runs.as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_owned())
        .collect()
}

/// What the library scripts of gxy-wes and ai4gh answer alike: three runs submitted, listed
/// in two pages of two and one, the first shown QUEUED with its request, then cancelled.
fn assert_session(out: &Value, first_params: Value) {
    assert_eq!(
        out["service_info"]["supported_wes_versions"],
        json!(["1.1.0"])
    );
    let submitted: BTreeSet<String> = out["submitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(submitted.len(), 3, "{out}");
    let pages = out["pages"].as_array().unwrap();
    assert_eq!(pages[0]["runs"].as_array().unwrap().len(), 2, "{out}");
    assert_ne!(pages[0]["next_page_token"], "", "{out}");
    assert_eq!(pages[1]["runs"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(pages[1]["next_page_token"], "", "{out}");
    let listed: BTreeSet<String> = ids_of(&pages[0]["runs"])
        .union(&ids_of(&pages[1]["runs"]))
        .cloned()
        .collect();
    assert_eq!(listed, submitted);
    let first = out["submitted"][0].as_str().unwrap();
    assert_eq!(out["status"], json!({"run_id": first, "state": "QUEUED"}));
    let run = &out["run"];
    assert_eq!(run["run_id"], first);
    assert_eq!(run["state"], "QUEUED");
    assert_eq!(run["request"]["workflow_url"], "quals@1.0.0");
    assert_eq!(run["request"]["workflow_params"], first_params);
    assert_eq!(run["run_log"]["name"], "quals@1.0.0");
    assert_eq!(
        out["status_after_cancel"],
        json!({"run_id": first, "state": "CANCELED"})
    );
}

/// Galaxy's gxy-wes: its library does every step (submitting as
/// application/x-www-form-urlencoded); its CLI reaches only what needs no token, because it
/// authenticates with Galaxy's `x-api-key` header alone.
#[tokio::test]
async fn galaxy_gxy_wes_submits_lists_pages_shows_and_cancels() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(bin) = client("gxy-wes", INSTALLED_BY) else {
        return;
    };
    let d = Deployment::start(&peer).await;

    let info = json_of(&run(Command::new(bin.join("gxy-wes")).args([
        "service-info",
        "--galaxy-url",
        &d.base,
    ])));
    assert_eq!(info["supported_wes_versions"], json!(["1.1.0"]));
    assert_eq!(
        info["workflow_type_versions"]["SMK"]["workflow_type_version"],
        json!(["9"])
    );
    // The token as Galaxy's API key is no bearer token: refused, and the CLI says so.
    let out = run(Command::new(bin.join("gxy-wes")).args([
        "list",
        "--galaxy-url",
        &d.base,
        "--api-key",
        &d.researcher,
    ]));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("runs -> HTTP 401"), "{out:?}");

    let out = json_of(&run(script(&bin, "gxy_wes_session.py")
        .env("SPE_WES_URL", &d.base)
        .env("SPE_WES_TOKEN", &d.researcher)));
    assert_session(&out, json!({"min_qual": 20}));
    assert_eq!(
        out["run"]["request"]["workflow_engine_parameters"]["cores"],
        "1"
    );
    assert_eq!(
        out["tasks"],
        json!({"task_logs": [], "next_page_token": ""})
    );
    assert_eq!(out["cancel"], json!({"run_id": out["submitted"][0]}));
    // A second cancel of the ended run.
    assert_eq!(out["second_cancel"], 409);
}

/// ai4gh's WES client (JSON run requests): every step through its library; its CLI's WES
/// compliance suite passes (it calls without a token, so `GET /runs` answers 401, which the
/// suite accepts, and it skips the runs format check).
#[tokio::test]
async fn ai4gh_submits_lists_pages_shows_and_cancels_and_its_compliance_suite_passes() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(bin) = client("ai4gh", INSTALLED_BY) else {
        return;
    };
    let d = Deployment::start(&peer).await;

    let out = json_of(&run(script(&bin, "ai4gh_session.py")
        .env("SPE_WES_URL", &d.base)
        .env("SPE_WES_TOKEN", &d.researcher)));
    assert_session(&out, json!({"min_qual": 40}));
    assert_eq!(out["run"]["request"]["tags"], json!({"client": "ai4gh"}));
    assert_eq!(out["cancel"], out["submitted"][0]);

    let out = run(Command::new(bin.join("ai4gh")).args(["test", "wes", &d.base]));
    assert_eq!(out.code, 0, "{out:?}");
    for line in [
        "Failed: 0",
        "Errors: 0",
        "[PASS] test_service_info",
        "[PASS] test_list_runs",
    ] {
        assert!(out.stdout.contains(line), "{line}: {out:?}");
    }
}

/// wes-service's wes-client: info, list, the run log and (through its library, as its CLI has
/// neither) status and cancel. It cannot submit here: its `run` leaves the auth header out of
/// the POST (commented out in wes_client/util.py), so the submission is refused with 401 and
/// the test submits the runs itself. `--log` fetches `run_log.stderr` as a URL, which a run
/// that has not started has none of (the optional field is left out), so it fails there. Its list does not page: the CLI
/// parses `--page` and `--page-size` but never sends them.
#[tokio::test]
async fn wes_client_shows_lists_and_cancels_but_cannot_submit_with_a_token() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(bin) = client("wes-client", INSTALLED_BY) else {
        return;
    };
    let d = Deployment::start(&peer).await;
    let host = format!("127.0.0.1:{}", d.port);
    let auth = format!("Bearer {}", d.researcher);
    let wes_client = |args: &[&str]| {
        let mut command = Command::new(bin.join("wes-client"));
        command
            .args(["--host", &host, "--proto", "http", "--auth", &auth])
            .args(args)
            .current_dir(d.dir.path());
        run(&mut command)
    };

    let info = json_of(&wes_client(&["--info"]));
    assert_eq!(info["supported_wes_versions"], json!(["1.1.0"]));

    let clients = repo_root().join("services/wes-api/tests/clients");
    let out = wes_client(&[
        "--no-wait",
        clients.join("quals.cwl").to_str().unwrap(),
        clients.join("quals.params.json").to_str().unwrap(),
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("'status_code': 401"), "{out:?}");

    let submitted: BTreeSet<String> = d.submit_runs(3).await.into_iter().collect();
    let list = json_of(&wes_client(&["--list"]));
    assert_eq!(ids_of(&list["runs"]), submitted);
    assert_eq!(list["next_page_token"], "");

    let first = submitted.iter().next().unwrap().clone();
    let run_log = json_of(&wes_client(&["--get", &first]));
    assert_eq!(run_log["state"], "QUEUED");
    assert_eq!(run_log["request"]["workflow_url"], "quals@1.0.0");
    assert!(run_log["run_log"].get("stderr").is_none(), "{run_log}");
    let out = wes_client(&["--log", &first]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("KeyError: 'stderr'"), "{out:?}");

    let out = json_of(&run(script(&bin, "wes_client_library.py")
        .arg(&first)
        .env("SPE_WES_HOST", &host)
        .env("SPE_WES_TOKEN", &d.researcher)));
    assert_eq!(out["status"], json!({"run_id": first, "state": "QUEUED"}));
    assert_eq!(out["cancel"], json!({"run_id": first}));
    assert_eq!(
        out["status_after_cancel"],
        json!({"run_id": first, "state": "CANCELED"})
    );
}

/// WESkit's weskit-client (the seed stack's client), pointed at `<root>/` as its docs say, so
/// that every URL it builds has a doubled slash: service info, the workflows of
/// `/weskit/v1/wf-info`, `exec` of a registered workflow (a form-urlencoded submission) and one
/// run; its run list needs runs that have started (below). It has no status, cancel or log text
/// command; its token is the `.weskit_access_key` file of the folder it runs in.
#[tokio::test]
async fn weskit_client_lists_workflows_and_execs_a_registered_one() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(bin) = client(
        "weskit-client",
        "tests/peers/python-tools.sh --weskit installs it (in a venv of its own: it needs \
         Python >= 3.12, which tests/peers/python312.sh builds where the machine has none)",
    ) else {
        return;
    };
    // Found is not enough: under a Python older than 3.12 the program cannot even be parsed
    // (PEP 701 f-strings). Its help needs only the API URL set (it checks that first; nothing is
    // sent there).
    let help = run(Command::new(bin.join("weskit-client"))
        .arg("--help")
        .env("WESKIT_API_URL", "http://127.0.0.1:9/"));
    let runs = if help.code == 0 && help.stdout.contains("exec") {
        Ok(())
    } else {
        Err(format!(
            "{}/weskit-client does not run (it needs Python >= 3.12; \
             tests/peers/python-tools.sh --weskit links it from a venv of its own): {help:?}",
            bin.display()
        ))
    };
    if skip::require("weskit-client", runs).is_none() {
        return;
    }
    let d = Deployment::start(&peer).await;
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join(".weskit_access_key"), &d.researcher).unwrap();
    std::fs::write(cwd.path().join("quals.yaml"), "min_qual: 35\n").unwrap();
    let weskit = |args: &[&str]| {
        let mut command = Command::new(bin.join("weskit-client"));
        command
            .args(args)
            .env("WESKIT_API_URL", format!("{}/", d.base))
            .current_dir(cwd.path());
        run(&mut command)
    };
    let weskit_ok = |args: &[&str]| {
        let out = weskit(args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        out.stdout
    };

    let info = weskit_ok(&["service-info"]);
    assert!(
        info.contains("'supported_wes_versions': ['1.1.0']"),
        "{info}"
    );
    let workflows = weskit_ok(&["workflows"]);
    let row = workflows
        .lines()
        .find(|l| l.contains("quals@1.0.0"))
        .unwrap_or_else(|| panic!("{workflows}"));
    assert!(row.contains("SMK") && row.contains("Summarise"), "{row}");

    let out = weskit_ok(&["exec", "--name", "quals@1.0.0", "--config", "quals.yaml"]);
    let run_id = out
        .trim()
        .rsplit("Run-id: ")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(cwd.path().join(format!(".{run_id}")).is_file(), "{out}");
    let res = d
        .http
        .get(format!("{}/ga4gh/wes/v1/runs/{run_id}", d.base))
        .bearer_auth(&d.researcher)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let run: Value = res.json().await.unwrap();
    assert_eq!(run["request"]["workflow_params"], json!({"min_qual": 35}));
    assert_eq!(run["state"], "QUEUED");

    // Its run list prints each run's `run_log.start_time`, which a run that has not started
    // has none of (the spec's Log fields are optional strings, so it is left out, not null):
    // with Slurm off the run stays QUEUED, and the list stops there.
    let out = weskit(&["runs"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("KeyError: 'start_time'"), "{out:?}");
    let one = weskit_ok(&["runs", "--rid", &run_id]);
    assert!(one.contains("'state': 'QUEUED'"), "{one}");
}
