//! `spectl`: the SPE from the command line. Data controllers register, approve and retire
//! workflow versions and register datasets; researchers submit, follow and cancel runs, share
//! and download their results; collaborators download what is shared with them. Every command
//! is one or a few calls of the service's WES API (docs/spectl.md).
//!
//! Exit codes: 0 success; 2 the service refused the request (4xx) or the command line is
//! wrong; 3 `run wait` saw the run end other than COMPLETE; 1 anything else.

mod api;
mod archive;
mod audit;
mod doctor;
mod download;
mod encrypted;
mod keys;
mod login;
mod output;
mod results;
mod review;
mod submit;
mod upload;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, CommandFactory, Parser, Subcommand};
use serde_json::{Map, Value, json};

use api::{Api, Body, Failure, is_forbidden};
use output::{Table, field, short_digest};

#[derive(Parser)]
#[command(
    name = "spectl",
    version,
    about = "Command-line client of the Secure Processing Environment (GA4GH WES API)",
    after_help = "Exit codes: 0 success; 2 refused by the service (4xx) or bad usage; \
                  3 `run wait` saw another end than COMPLETE; 1 anything else."
)]
struct Cli {
    /// The service URL.
    #[arg(
        long,
        env = "SPE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// A bearer token, sent as `Authorization: Bearer`. Never printed. Without it, the token
    /// cached by `spectl login` is used.
    #[arg(long, env = "SPE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print the service's JSON instead of tables and lines.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Workflow versions: register, list, show, approve, retire (data controllers).
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Datasets: add, list, retire (data controllers; researchers may list).
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Runs: submit, list, status, show, logs, tasks, egress, answer, cancel, wait, share
    /// (researchers).
    #[command(subcommand)]
    Run(RunCommand),
    /// Released results: list and download (researchers, collaborators).
    #[command(subcommand)]
    Results(results::ResultsCommand),
    /// The egress review of held outputs: list, show, approve, reject, return, revoke (data
    /// controllers).
    #[command(subcommand)]
    Review(review::ReviewCommand),
    /// Your use (runs, live runs, cores, memory, wall and core hours per workflow) and quota
    /// limits; operators see every user's use.
    Usage {
        /// Since this time (RFC 3339; default the last 30 days).
        #[arg(long)]
        since: Option<String>,
    },
    /// Crypt4GH keys: generate a key pair (docs/crypt4gh.md).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Print a shell completion script, e.g. `spectl completion bash > ~/.local/share/bash-completion/completions/spectl`.
    Completion { shell: clap_complete::Shell },
    /// Log in with the identity provider (device flow: open the printed address, enter the
    /// code); tokens are cached for later commands (SPE_TOKEN_FILE, default
    /// ~/.config/spe/tokens.json, mode 0600).
    Login {
        /// The OpenID Connect issuer the service trusts.
        #[arg(long, env = "SPE_ISSUER")]
        issuer: String,
        /// This client's id at the issuer.
        #[arg(long = "client-id", env = "SPE_CLIENT_ID", default_value = "spectl")]
        client_id: String,
        /// Scopes to ask for.
        #[arg(
            long,
            default_value = "openid offline_access profile email eduperson_entitlement ga4gh_passport_v1"
        )]
        scope: String,
    },
    /// Forget the cached tokens (and revoke the refresh token where the issuer allows).
    Logout,
    /// Check a deployment from the services' config file (operators): the config, database
    /// migrations, keys, Slurm (sinfo, sbatch --test-only), the results bucket (exists, write,
    /// presigned read) and the OIDC provider (discovery, JWKS); one line each.
    Doctor {
        /// The config file wes-api and the crawler read (`SPE__...` variables apply too).
        #[arg(long, value_name = "PATH")]
        config: std::path::PathBuf,
    },
    /// The audit hash chain: verify it here, or export it as JSON lines for a SIEM
    /// (operators, data controllers).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

#[derive(Subcommand)]
enum WorkflowCommand {
    /// Register the workflow in DIR (holding workflow.yaml) as a draft.
    Register {
        /// The workflow folder. Without --upload its absolute path is sent: it must be on the
        /// cluster's file system, where the service reads it.
        dir: PathBuf,
        /// Send the folder itself, as a tar.gz built here.
        #[arg(long)]
        upload: bool,
    },
    /// List workflow versions (researchers see approved ones only).
    List {
        #[arg(long, value_parser = ["draft", "approved", "retired"])]
        state: Option<String>,
    },
    /// Show one version: NAME@VERSION.
    Show { workflow: String },
    /// Approve a draft: NAME@VERSION.
    Approve { workflow: String },
    /// Retire a version: NAME@VERSION.
    Retire {
        workflow: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Register a dataset under ID.
    Add {
        id: String,
        /// Absolute path on the cluster's shared file system.
        #[arg(long)]
        location: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The data is Crypt4GH-encrypted.
        #[arg(long)]
        crypt4gh: bool,
        /// The GA4GH visa value that grants access.
        #[arg(long)]
        visa: Option<String>,
    },
    /// List datasets (researchers see active ones, without locations).
    List,
    /// Upload Crypt4GH files into a Crypt4GH dataset: a time-limited grant for exactly these
    /// files, then each streamed with a progress bar. The service keeps a file only if its
    /// header opens with the service's key (encrypt to `GET /keys/service.pub`).
    Upload {
        id: String,
        /// The files (already Crypt4GH-encrypted), kept under their file names.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// How long the grant lasts (60 to 604800 seconds; default 3600).
        #[arg(long = "expires-in", value_name = "SECONDS")]
        expires_in: Option<u64>,
    },
    /// Retire a dataset.
    Retire {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
enum RunCommand {
    /// Submit a run of an approved workflow NAME@VERSION; prints the run id.
    Submit(SubmitArgs),
    /// List your runs, newest first.
    List {
        /// Only runs in these states (repeatable, or comma-separated).
        #[arg(long, value_delimiter = ',')]
        state: Vec<String>,
        /// Only runs carrying this tag, KEY=VALUE (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        tag: Vec<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print a run's state.
    Status { run_id: String },
    /// Show a run: request, state, log.
    Show { run_id: String },
    /// Print the engine's stdout (or --stderr) of a run (its last MiB). Logs are egress: a run's
    /// owner reads one only once it was released through review; operators and data
    /// controllers read every log of runs they do not own.
    Logs {
        run_id: String,
        #[arg(long)]
        stderr: bool,
    },
    /// List a run's tasks (Snakemake jobs or Nextflow processes).
    Tasks { run_id: String },
    /// Share a run's released results with a user (--subject) or a group (--group).
    Share(ShareArgs),
    /// Stop sharing a run's results with a user or group.
    Unshare(ShareArgs),
    /// List whom a run's results are shared with.
    Shares { run_id: String },
    /// Cancel a run.
    Cancel { run_id: String },
    /// Delete an ended run's data now: its directory (and, where the service is configured
    /// so, its released objects); recorded in the audit chain.
    Delete { run_id: String },
    /// Where each output of a run stands (released, held for review, rejected...) and why.
    Egress { run_id: String },
    /// Answer a review a data controller returned to you.
    Answer {
        run_id: String,
        #[arg(long)]
        comment: String,
    },
    /// Wait until a run ends, printing each state change; exit 0 only on COMPLETE.
    Wait {
        run_id: String,
        /// Seconds between polls.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Give up (exit 1) after this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
    },
}

#[derive(Args)]
struct ShareArgs {
    run_id: String,
    /// A user, by their `sub` at the issuer.
    #[arg(long, required_unless_present = "group", conflicts_with = "group")]
    subject: Option<String>,
    /// A group, by its exact eduperson_entitlement URN.
    #[arg(long)]
    group: Option<String>,
    /// The issuer of the user or group (default: your own).
    #[arg(long)]
    issuer: Option<String>,
}

#[derive(Args)]
struct SubmitArgs {
    /// The workflow, as NAME@VERSION.
    workflow: String,
    /// The workflow language (default: the registry's, for NAME@VERSION).
    #[arg(long = "type", value_name = "TYPE", value_parser = ["SMK", "NFL"])]
    workflow_type: Option<String>,
    /// The language version, e.g. 9 for Snakemake, DSL2 for Nextflow (default: the one the
    /// service accepts for the language, when it accepts one).
    #[arg(long = "type-version", value_name = "VERSION")]
    type_version: Option<String>,
    /// The engine, when the service offers several for the language.
    #[arg(long)]
    engine: Option<String>,
    /// The engine version (default: the service's choice).
    #[arg(long = "engine-version", value_name = "VERSION")]
    engine_version: Option<String>,
    /// A workflow parameter: KEY=VALUE (a string) or KEY:=JSON (e.g. min_qual:=30). Repeatable;
    /// wins over --params-file.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// A JSON object of workflow parameters.
    #[arg(long = "params-file", value_name = "FILE")]
    params_file: Option<PathBuf>,
    /// An engine parameter, KEY=VALUE (e.g. cores=2). Repeatable.
    #[arg(long = "engine-param", value_name = "KEY=VALUE")]
    engine_params: Vec<String>,
    /// A tag, KEY=VALUE. Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    tag: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Login {
            issuer,
            client_id,
            scope,
        } => login::login(&issuer, &client_id, &scope).await,
        Command::Logout => login::logout().await,
        Command::Keys(c) => keys::command(c),
        Command::Doctor { config } => doctor::command(&config, cli.json)
            .await
            .map_err(Failure::Other),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "spectl", &mut std::io::stdout());
            Ok(())
        }
        command => {
            let token = match cli.token.clone().filter(|t| !t.is_empty()) {
                Some(token) => Ok(Some(token)),
                None => login::cached_token().await,
            };
            match token.and_then(|token| Api::new(&cli.url, token)) {
                Ok(api) => run(&api, cli.json, command).await,
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spectl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(api: &Api, json: bool, command: Command) -> Result<(), Failure> {
    match command {
        Command::Workflow(c) => workflow(api, json, c).await,
        Command::Dataset(c) => dataset(api, json, c).await,
        Command::Run(c) => run_command(api, json, c).await,
        Command::Results(c) => results::command(api, json, c).await,
        Command::Review(c) => review::command(api, json, c).await,
        Command::Audit(c) => audit::command(api, json, c).await,
        Command::Usage { since } => usage(api, json, since).await,
        Command::Login { .. }
        | Command::Logout
        | Command::Keys(_)
        | Command::Doctor { .. }
        | Command::Completion { .. } => Ok(()),
    }
}

async fn usage(api: &Api, json: bool, since: Option<String>) -> Result<(), Failure> {
    let query: Vec<(&str, String)> = since.map(|s| ("since", s)).into_iter().collect();
    let v = api.get(&["usage"], &query).await?;
    if json {
        print_json(&v);
        return Ok(());
    }
    let l = &v["limits"];
    println!(
        "limits: {} live runs, {} cores, {} MB live; {} runs a day, {} a minute",
        field(l, "live_runs"),
        field(l, "live_cores"),
        field(l, "live_memory_mb"),
        field(l, "runs_per_day"),
        field(l, "submissions_per_minute")
    );
    let mut table = Table::new(&[
        "USER",
        "WORKFLOW",
        "RUNS",
        "LIVE",
        "CORES",
        "MEMORY MB",
        "WALL H",
        "CORE H",
    ]);
    for u in v["usage"].as_array().cloned().unwrap_or_default() {
        table.row(vec![
            field(&u["owner"], "sub"),
            field(&u, "workflow"),
            field(&u, "runs"),
            field(&u, "live_runs"),
            field(&u, "live_cores"),
            field(&u, "live_memory_mb"),
            format!("{:.2}", u["wall_hours"].as_f64().unwrap_or(0.0)),
            format!("{:.2}", u["core_hours"].as_f64().unwrap_or(0.0)),
        ]);
    }
    table.print();
    Ok(())
}

pub(crate) fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// The token of the page after `page`, if there is one.
fn next_page_token(page: &Value) -> Option<String> {
    page["next_page_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The service's answer as JSON with `--json`, else one line of text about it.
fn report(json: bool, v: &Value, text: impl FnOnce() -> String) {
    if json {
        print_json(v);
    } else {
        println!("{}", text());
    }
}

/// `NAME@VERSION` as the two path segments.
pub(crate) fn split_ref(workflow: &str) -> Result<(&str, &str), Failure> {
    workflow
        .split_once('@')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "{workflow:?}: name a workflow version as NAME@VERSION, e.g. quals@1.0.0"
            ))
        })
}

/// The absolute form of a folder path, as the service needs it: the real path when it exists
/// here, else the path made absolute as written (the folder may exist only on the cluster).
fn absolute(dir: &Path) -> Result<PathBuf, Failure> {
    dir.canonicalize()
        .or_else(|_| std::path::absolute(dir))
        .map_err(|e| Failure::Usage(format!("{}: {e}", dir.display())))
}

fn reason_body(reason: Option<String>) -> Body {
    Body::Json(match reason {
        Some(r) => json!({ "reason": r }),
        None => json!({}),
    })
}

async fn workflow(api: &Api, json: bool, command: WorkflowCommand) -> Result<(), Failure> {
    match command {
        WorkflowCommand::Register { dir, upload } => {
            let body = if upload {
                let data = archive::tar_gz(&dir).map_err(Failure::Usage)?;
                Body::Bytes {
                    content_type: "application/gzip",
                    data,
                }
            } else {
                let dir = absolute(&dir)?;
                let text = dir.to_str().ok_or_else(|| {
                    Failure::Usage(format!("{}: the path must be UTF-8", dir.display()))
                })?;
                Body::Json(json!({ "source_dir": text }))
            };
            let v = api.post(&["admin", "workflows"], body).await?;
            report(json, &v, || {
                format!(
                    "registered {} as {} (digest {})\nsource_dir: {}",
                    field(&v, "workflow_url"),
                    field(&v, "state"),
                    field(&v, "registered_digest"),
                    field(&v, "source_dir")
                )
            });
        }
        WorkflowCommand::List { state } => {
            let query: Vec<(&str, String)> = state.iter().map(|s| ("state", s.clone())).collect();
            let (v, admin) = match api.get(&["admin", "workflows"], &query).await {
                Ok(v) => (v, true),
                // A researcher: the approved versions are what there is to see.
                Err(e) if is_forbidden(&e) && state.as_deref().is_none_or(|s| s == "approved") => {
                    (api.get(&["workflows"], &[]).await?, false)
                }
                Err(e) => return Err(e),
            };
            if json {
                print_json(&v);
                return Ok(());
            }
            let items = v["workflows"].as_array().cloned().unwrap_or_default();
            let mut table = if admin {
                Table::new(&[
                    "WORKFLOW",
                    "STATE",
                    "TYPE",
                    "DIGEST",
                    "REGISTERED BY",
                    "DESCRIPTION",
                ])
            } else {
                Table::new(&["WORKFLOW", "TYPE", "DIGEST", "DESCRIPTION"])
            };
            for w in &items {
                let digest = if admin {
                    short_digest(
                        w.get("digest")
                            .filter(|d| !d.is_null())
                            .unwrap_or(&w["registered_digest"]),
                    )
                } else {
                    short_digest(&w["digest"])
                };
                let mut row = vec![field(w, "workflow_url")];
                if admin {
                    row.push(field(w, "state"));
                }
                row.push(field(w, "workflow_type"));
                row.push(digest);
                if admin {
                    row.push(field(w, "registered_by"));
                }
                row.push(field(w, "description"));
                table.row(row);
            }
            table.print();
        }
        WorkflowCommand::Show { workflow } => {
            let (name, version) = split_ref(&workflow)?;
            let v = match api.get(&["admin", "workflows", name, version], &[]).await {
                Err(e) if is_forbidden(&e) => api.get(&["workflows", name, version], &[]).await?,
                other => other?,
            };
            if json {
                print_json(&v);
                return Ok(());
            }
            for key in [
                "workflow_url",
                "state",
                "workflow_type",
                "engine_version",
                "description",
                "source_dir",
                "entry_point",
                "registered_digest",
                "digest",
                "registered_by",
                "registered_at",
                "approved_by",
                "approved_at",
                "retired_by",
                "retired_at",
                "retire_reason",
            ] {
                if v.get(key).is_some_and(|x| !x.is_null()) {
                    println!("{key}: {}", field(&v, key));
                }
            }
            if let Some(files) = v["files"].as_array() {
                println!("files:");
                for f in files {
                    println!("  {}", f.as_str().unwrap_or_default());
                }
            }
            if let Some(params) = v["dataset_params"].as_array() {
                let names: Vec<String> = params.iter().map(|p| field(p, "name")).collect();
                println!("dataset_params: {}", names.join(", "));
            }
            // The researcher's view has the schema and the deployment's effective engine
            // parameters; a draft or retired version has only its manifest's.
            let published = if v.get("params_schema").is_some() {
                Some(v.clone())
            } else if v["state"] == "approved" {
                submit::published(api, name, version).await?
            } else {
                None
            };
            let (schema, engine) = match &published {
                Some(p) => (&p["params_schema"], &p["engine_parameters"]),
                None => (
                    &v["manifest"]["params"],
                    &v["manifest"]["engine_parameters"],
                ),
            };
            println!();
            submit::params_table(schema).print();
            println!();
            submit::engine_table(engine).print();
        }
        WorkflowCommand::Approve { workflow } => {
            let (name, version) = split_ref(&workflow)?;
            let v = api
                .post(
                    &["admin", "workflows", name, version, "approve"],
                    Body::Json(json!({})),
                )
                .await?;
            report(json, &v, || {
                format!(
                    "approved {} (digest {})",
                    field(&v, "workflow_url"),
                    field(&v, "digest")
                )
            });
        }
        WorkflowCommand::Retire { workflow, reason } => {
            let (name, version) = split_ref(&workflow)?;
            let v = api
                .post(
                    &["admin", "workflows", name, version, "retire"],
                    reason_body(reason),
                )
                .await?;
            report(json, &v, || {
                format!("retired {}", field(&v, "workflow_url"))
            });
        }
    }
    Ok(())
}

async fn dataset(api: &Api, json: bool, command: DatasetCommand) -> Result<(), Failure> {
    match command {
        DatasetCommand::Add {
            id,
            location,
            description,
            crypt4gh,
            visa,
        } => {
            let mut body = json!({
                "id": id,
                "location": location,
                "description": description,
                "crypt4gh": crypt4gh,
            });
            if let Some(visa) = visa {
                body["visa"] = Value::String(visa);
            }
            let v = api.post(&["admin", "datasets"], Body::Json(body)).await?;
            report(json, &v, || {
                format!(
                    "added dataset {} at {}",
                    field(&v, "id"),
                    field(&v, "location")
                )
            });
        }
        DatasetCommand::List => {
            let (v, admin) = match api.get(&["admin", "datasets"], &[]).await {
                Ok(v) => (v, true),
                Err(e) if is_forbidden(&e) => (api.get(&["datasets"], &[]).await?, false),
                Err(e) => return Err(e),
            };
            if json {
                print_json(&v);
                return Ok(());
            }
            let mut table = if admin {
                Table::new(&["ID", "STATE", "CRYPT4GH", "LOCATION", "DESCRIPTION"])
            } else {
                Table::new(&["ID", "CRYPT4GH", "DESCRIPTION"])
            };
            for d in v["datasets"].as_array().cloned().unwrap_or_default() {
                let row = if admin {
                    vec![
                        field(&d, "id"),
                        field(&d, "state"),
                        field(&d, "crypt4gh"),
                        field(&d, "location"),
                        field(&d, "description"),
                    ]
                } else {
                    vec![
                        field(&d, "id"),
                        field(&d, "crypt4gh"),
                        field(&d, "description"),
                    ]
                };
                table.row(row);
            }
            table.print();
        }
        DatasetCommand::Upload {
            id,
            files,
            expires_in,
        } => upload::upload(api, json, &id, &files, expires_in).await?,
        DatasetCommand::Retire { id, reason } => {
            let v = api
                .post(&["admin", "datasets", &id, "retire"], reason_body(reason))
                .await?;
            report(json, &v, || format!("retired dataset {}", field(&v, "id")));
        }
    }
    Ok(())
}

/// `KEY=VALUE` pairs as a map of strings.
fn pairs(option: &str, given: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for item in given {
        let (k, v) = item
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| Failure::Usage(format!("{option} {item:?}: expected KEY=VALUE")))?;
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

/// `workflow_params` from `--params-file` and then `--param` (`KEY=text` or `KEY:=JSON`).
fn workflow_params(file: Option<&Path>, given: &[String]) -> Result<Map<String, Value>, Failure> {
    let mut params = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("--params-file {}: {e}", path.display())))?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(Failure::Usage(format!(
                        "--params-file {}: must hold a JSON object",
                        path.display()
                    )));
                }
                Err(e) => {
                    return Err(Failure::Usage(format!(
                        "--params-file {}: not JSON: {e}",
                        path.display()
                    )));
                }
            }
        }
        None => Map::new(),
    };
    for item in given {
        let bad = |why: &str| Failure::Usage(format!("--param {item:?}: {why}"));
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE or KEY:=JSON"))?;
        let (key, value) = match k.strip_suffix(':') {
            Some(key) => (
                key,
                serde_json::from_str(v).map_err(|e| bad(&format!("not JSON: {e}")))?,
            ),
            None => (k, Value::String(v.to_owned())),
        };
        if key.is_empty() {
            return Err(bad("the key is empty"));
        }
        params.insert(key.to_owned(), value);
    }
    Ok(params)
}

/// The share's `subject` or `group`, and `issuer`, as given.
fn share_fields(args: &ShareArgs) -> Vec<(&'static str, String)> {
    [
        ("subject", &args.subject),
        ("group", &args.group),
        ("issuer", &args.issuer),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
    .collect()
}

/// `user SUB` or `group URN`, as a share record names its grantee.
fn share_name(share: &Value) -> String {
    match share.get("subject").filter(|s| !s.is_null()) {
        Some(_) => format!("user {}", field(share, "subject")),
        None => format!("group {}", field(share, "group")),
    }
}

fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "COMPLETE" | "EXECUTOR_ERROR" | "SYSTEM_ERROR" | "CANCELED"
    )
}

async fn run_command(api: &Api, json: bool, command: RunCommand) -> Result<(), Failure> {
    match command {
        RunCommand::Submit(args) => {
            let params = workflow_params(args.params_file.as_deref(), &args.params)?;
            let (workflow_type, type_version) =
                submit::language(api, &args.workflow, args.workflow_type, args.type_version)
                    .await?;
            let mut body = json!({
                "workflow_url": args.workflow,
                "workflow_type": workflow_type,
                "workflow_type_version": type_version,
                "workflow_params": params,
            });
            let engine_params = pairs("--engine-param", &args.engine_params)?;
            if !engine_params.is_empty() {
                body["workflow_engine_parameters"] = json!(engine_params);
            }
            let tags = pairs("--tag", &args.tag)?;
            if !tags.is_empty() {
                body["tags"] = json!(tags);
            }
            if let Some(engine) = args.engine {
                body["workflow_engine"] = Value::String(engine);
            }
            if let Some(version) = args.engine_version {
                body["workflow_engine_version"] = Value::String(version);
            }
            let v = api.post(&["runs"], Body::Json(body)).await?;
            report(json, &v, || field(&v, "run_id"));
        }
        RunCommand::List { state, tag, limit } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if !state.is_empty() {
                query.push(("state", state.join(",")));
            }
            for (k, v) in pairs("--tag", &tag)? {
                query.push(("tag", format!("{k}:{v}")));
            }
            let mut runs: Vec<Value> = Vec::new();
            let mut token = String::new();
            while runs.len() < limit {
                let mut q = query.clone();
                q.push(("page_size", (limit - runs.len()).clamp(1, 500).to_string()));
                if !token.is_empty() {
                    q.push(("page_token", token.clone()));
                }
                let page = api.get(&["runs"], &q).await?;
                runs.extend(page["runs"].as_array().cloned().unwrap_or_default());
                match next_page_token(&page) {
                    Some(next) => token = next,
                    None => break,
                }
            }
            runs.truncate(limit);
            if json {
                print_json(&json!({ "runs": runs }));
                return Ok(());
            }
            let mut table = Table::new(&["RUN ID", "STATE", "START", "END", "TAGS"]);
            for r in &runs {
                let tags = r["tags"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                table.row(vec![
                    field(r, "run_id"),
                    field(r, "state"),
                    field(r, "start_time"),
                    field(r, "end_time"),
                    tags,
                ]);
            }
            table.print();
        }
        RunCommand::Status { run_id } => {
            let v = api.get(&["runs", &run_id, "status"], &[]).await?;
            report(json, &v, || {
                format!("{} {}", field(&v, "run_id"), field(&v, "state"))
            });
        }
        RunCommand::Show { run_id } => {
            let v = api.get(&["runs", &run_id], &[]).await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let request = &v["request"];
            let log = &v["run_log"];
            for (key, value) in [
                ("run_id", field(&v, "run_id")),
                ("state", field(&v, "state")),
                ("workflow_url", field(request, "workflow_url")),
                ("workflow_type", field(request, "workflow_type")),
                ("workflow_params", request["workflow_params"].to_string()),
                ("start_time", field(log, "start_time")),
                ("end_time", field(log, "end_time")),
                ("exit_code", field(log, "exit_code")),
                ("stdout", field(log, "stdout")),
                ("stderr", field(log, "stderr")),
            ] {
                if !value.is_empty() && value != "null" {
                    println!("{key}: {value}");
                }
            }
            if let Some(outputs) = v["outputs"].as_object().filter(|o| !o.is_empty()) {
                println!("outputs: {}", Value::Object(outputs.clone()));
            }
        }
        RunCommand::Logs { run_id, stderr } => {
            let stream = if stderr { "stderr" } else { "stdout" };
            let text = api.get_text(&["runs", &run_id, "logs", stream]).await?;
            if json {
                print_json(&json!({ "run_id": run_id, "stream": stream, "text": text }));
            } else {
                print!("{}", output::log_text(&text));
            }
        }
        RunCommand::Tasks { run_id } => {
            let mut tasks: Vec<Value> = Vec::new();
            let mut token = String::new();
            loop {
                let mut q = vec![("page_size", "500".to_owned())];
                if !token.is_empty() {
                    q.push(("page_token", token.clone()));
                }
                let page = api.get(&["runs", &run_id, "tasks"], &q).await?;
                tasks.extend(page["task_logs"].as_array().cloned().unwrap_or_default());
                match next_page_token(&page) {
                    Some(next) => token = next,
                    None => break,
                }
            }
            if json {
                print_json(&json!({ "task_logs": tasks }));
                return Ok(());
            }
            let mut table = Table::new(&["ID", "NAME", "START", "END", "EXIT"]);
            for t in &tasks {
                table.row(vec![
                    field(t, "id"),
                    field(t, "name"),
                    field(t, "start_time"),
                    field(t, "end_time"),
                    field(t, "exit_code"),
                ]);
            }
            table.print();
        }
        RunCommand::Share(args) => {
            let mut body = json!({});
            for (key, value) in share_fields(&args) {
                body[key] = Value::String(value);
            }
            let v = api
                .post(&["runs", &args.run_id, "shares"], Body::Json(body))
                .await?;
            report(json, &v, || {
                format!("shared run {} with {}", args.run_id, share_name(&v))
            });
        }
        RunCommand::Unshare(args) => {
            let query = share_fields(&args);
            api.delete(&["runs", &args.run_id, "shares"], &query)
                .await?;
            if json {
                let removed: Map<String, Value> = query
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
                    .collect();
                print_json(&json!({ "run_id": args.run_id, "removed": removed }));
            } else {
                let whom: Vec<String> = query.iter().map(|(k, v)| format!("{k} {v}")).collect();
                println!(
                    "stopped sharing run {} with {}",
                    args.run_id,
                    whom.join(", ")
                );
            }
        }
        RunCommand::Shares { run_id } => {
            let v = api.get(&["runs", &run_id, "shares"], &[]).await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let mut table = Table::new(&["WITH", "ISSUER", "BY", "SINCE"]);
            for share in v["shares"].as_array().cloned().unwrap_or_default() {
                table.row(vec![
                    share_name(&share),
                    field(&share, "issuer"),
                    field(&share, "created_by"),
                    field(&share, "created_at"),
                ]);
            }
            table.print();
        }
        RunCommand::Egress { run_id } => review::egress(api, json, &run_id).await?,
        RunCommand::Answer { run_id, comment } => {
            review::answer(api, json, &run_id, comment).await?
        }
        RunCommand::Cancel { run_id } => {
            api.post(&["runs", &run_id, "cancel"], Body::None).await?;
            let v = api.get(&["runs", &run_id, "status"], &[]).await?;
            report(json, &v, || {
                format!("{} {}", field(&v, "run_id"), field(&v, "state"))
            });
        }
        RunCommand::Wait {
            run_id,
            interval,
            timeout,
        } => wait(api, json, &run_id, interval, timeout).await?,
        RunCommand::Delete { run_id } => {
            let v = api.delete(&["runs", &run_id], &[]).await?;
            report(json, &v, || {
                format!(
                    "{}: run directory {}, {} files, {} bytes; released objects deleted: {}",
                    field(&v, "run_id"),
                    if v["run_directory_deleted"] == true {
                        "deleted"
                    } else {
                        "already gone"
                    },
                    field(&v, "files"),
                    field(&v, "bytes"),
                    v["released_objects_deleted"]
                        .as_array()
                        .map_or(0, |a| a.len())
                )
            });
        }
    }
    Ok(())
}

/// Polls a run's status until it ends. A few consecutive transient failures (the service
/// restarting) are waited out; a refusal (unknown run) is not.
async fn wait(
    api: &Api,
    json: bool,
    run_id: &str,
    interval: f64,
    timeout: Option<f64>,
) -> Result<(), Failure> {
    const MAX_TRANSIENT: u32 = 5;
    let seconds = |s: f64, what: &str| {
        Duration::try_from_secs_f64(s)
            .map_err(|_| Failure::Usage(format!("--{what}: must be a number of seconds")))
    };
    let interval = seconds(interval, "interval")?.max(Duration::from_millis(100));
    let deadline = timeout
        .map(|t| seconds(t, "timeout"))
        .transpose()?
        .map(|t| Instant::now() + t);
    let mut last = String::new();
    let mut transient = 0;
    loop {
        match api.get(&["runs", run_id, "status"], &[]).await {
            Ok(v) => {
                transient = 0;
                let state = field(&v, "state");
                if state != last {
                    if json {
                        println!("{v}");
                    } else {
                        println!("{} {state}", field(&v, "run_id"));
                    }
                    last = state.clone();
                }
                if is_terminal(&state) {
                    return if state == "COMPLETE" {
                        Ok(())
                    } else {
                        Err(Failure::RunEnded {
                            run_id: run_id.to_owned(),
                            state,
                        })
                    };
                }
            }
            Err(e) if e.is_transient() && transient < MAX_TRANSIENT => {
                transient += 1;
                eprintln!("spectl: {e}; trying again");
            }
            Err(e) => return Err(e),
        }
        if deadline.is_some_and(|d| Instant::now() + interval > d) {
            return Err(Failure::Other(format!(
                "gave up waiting for run {run_id} (still {})",
                if last.is_empty() { "unknown" } else { &last }
            )));
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_text_or_json() {
        let p = workflow_params(
            None,
            &[
                "dataset=demo-1".into(),
                "min_qual:=30".into(),
                "names:=[\"a\"]".into(),
                "eq=a=b".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"dataset": "demo-1", "min_qual": 30, "names": ["a"], "eq": "a=b"})
        );
        for bad in ["novalue", "=x", ":=1", "x:=not json"] {
            assert!(workflow_params(None, &[bad.into()]).is_err(), "{bad}");
        }
        assert!(pairs("--tag", &["a=b".into()]).is_ok());
        assert!(pairs("--tag", &["ab".into()]).is_err());
        assert!(split_ref("quals@1.0.0").is_ok());
        assert!(split_ref("quals").is_err());
        assert!(split_ref("@1").is_err());
    }

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
