//! `spectl doctor --config <file>`: checks a deployment from the services' own config file and
//! says what is wrong, one line per check: the config itself, the database's migrations, the
//! keys, Slurm, the results bucket and the OIDC provider. Nothing is changed except one empty
//! object, `.spe/readyz`, written to the bucket to prove the write key (the object the
//! services' readiness checks look at).

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use serde_json::{Value, json};
use spe_core::config::{AuthConfig, Config, CrawlerConfig};

/// How long one network check may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The bucket object written and read back (the one the services' readiness checks ask about).
const PROBE_KEY: &str = spe_core::bucket::READINESS_KEY;

/// One check's verdict: what was found, or what is wrong.
struct Line {
    check: &'static str,
    verdict: Result<String, String>,
}

/// Runs every check and prints one line each (or a JSON array); fails when one failed.
pub async fn command(config_path: &Path, json_out: bool) -> Result<(), String> {
    let mut lines = Vec::new();
    match Config::load(config_path, std::env::vars()) {
        Ok(config) => {
            lines.push(Line {
                check: "config",
                verdict: Ok(format!("{} parsed and checked", config_path.display())),
            });
            lines.push(database(&config).await);
            lines.extend(keys(&config));
            lines.extend(slurm(&config).await);
            lines.push(bucket(config.crawler.as_ref()).await);
            lines.push(oidc(&config.auth).await);
        }
        Err(e) => lines.push(Line {
            check: "config",
            verdict: Err(e.to_string()),
        }),
    }
    let failed = lines.iter().filter(|l| l.verdict.is_err()).count();
    if json_out {
        let all: Vec<Value> = lines
            .iter()
            .map(|l| match &l.verdict {
                Ok(what) => json!({"check": l.check, "ok": true, "detail": what}),
                Err(why) => json!({"check": l.check, "ok": false, "detail": why}),
            })
            .collect();
        println!("{}", Value::Array(all));
    } else {
        for l in &lines {
            match &l.verdict {
                Ok(what) => println!("ok    {:<10} {what}", l.check),
                Err(why) => println!("FAIL  {:<10} {why}", l.check),
            }
        }
    }
    match failed {
        0 => Ok(()),
        1 => Err("1 check failed".to_owned()),
        n => Err(format!("{n} checks failed")),
    }
}

async fn database(config: &Config) -> Line {
    let verdict = match spe_store::migration_status(&config.database.url, TIMEOUT).await {
        Err(e) => Err(e.to_string()),
        Ok(s) if !s.unknown.is_empty() => Err(format!(
            "migrations {:?} are newer than this spectl knows: the database is a newer release's",
            s.unknown
        )),
        Ok(s) if !s.failed.is_empty() || !s.changed.is_empty() => Err(format!(
            "migrations failed {:?}, changed since applied {:?}",
            s.failed, s.changed
        )),
        Ok(s) if !s.pending.is_empty() => Err(format!(
            "{} applied, {} pending ({:?}): wes-api applies them when it starts",
            s.applied,
            s.pending.len(),
            s.pending
        )),
        Ok(s) => Ok(format!(
            "{} ({} migrations applied, none pending)",
            config.database.url.redacted(),
            s.applied
        )),
    };
    Line {
        check: "database",
        verdict,
    }
}

fn keys(config: &Config) -> Vec<Line> {
    let mut lines = Vec::new();
    let c4gh = &config.crypt4gh;
    if let Some(path) = &c4gh.public_key {
        lines.push(Line {
            check: "keys",
            verdict: spe_crypt4gh::PublicKey::load(path)
                .map(|_| format!("crypt4gh.public_key {} reads", path.display()))
                .map_err(|e| format!("crypt4gh.public_key {}: {e}", path.display())),
        });
    }
    if !c4gh.secret_keys.is_empty() {
        let verdict = match c4gh.passphrase() {
            None => Err("crypt4gh.secret_keys: set passphrase_file or passphrase_env".to_owned()),
            Some(source) => {
                let passphrase = match source {
                    spe_core::runspec::PassphraseSource::File(p) => {
                        spe_crypt4gh::service_keys::Passphrase::File(p)
                    }
                    spe_core::runspec::PassphraseSource::Env(v) => {
                        spe_crypt4gh::service_keys::Passphrase::Env(v)
                    }
                };
                spe_crypt4gh::service_keys::load(&c4gh.secret_keys, &passphrase)
                    .map(|k| {
                        format!(
                            "{} crypt4gh secret key(s) open with the passphrase",
                            k.len()
                        )
                    })
                    .map_err(|e| format!("crypt4gh: {e}"))
            }
        };
        lines.push(Line {
            check: "keys",
            verdict,
        });
    }
    for (name, path) in [
        ("receipts.signing_key", &config.receipts.signing_key),
        ("receipts.public_key", &config.receipts.public_key),
    ] {
        if let Some(path) = path {
            lines.push(Line {
                check: "keys",
                verdict: std::fs::read(path)
                    .map(|_| format!("{name} {} reads", path.display()))
                    .map_err(|e| format!("{name} {}: {e}", path.display())),
            });
        }
    }
    if lines.is_empty() {
        lines.push(Line {
            check: "keys",
            verdict: Ok("none configured (no Crypt4GH, unsigned receipts)".to_owned()),
        });
    }
    lines
}

/// Runs a Slurm command through the configured prefix; its stdout, or why it failed.
async fn slurm_command(config: &Config, program: &str, args: &[String]) -> Result<String, String> {
    let argv = spe_core::slurm::command_argv(&config.slurm.command_prefix, program, args);
    let mut command = tokio::process::Command::new(&argv[0]);
    command.args(&argv[1..]).kill_on_drop(true);
    let out = tokio::time::timeout(TIMEOUT, command.output())
        .await
        .map_err(|_| format!("{program}: no answer within {} s", TIMEOUT.as_secs()))?
        .map_err(|e| format!("{program}: cannot run {}: {e}", argv[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "{program}: {} ({})",
            stderr.lines().last().unwrap_or("no message").trim(),
            out.status
        ))
    }
}

async fn slurm(config: &Config) -> Vec<Line> {
    if !config.slurm.enabled {
        return vec![Line {
            check: "slurm",
            verdict: Ok("slurm.enabled is false: runs stay QUEUED".to_owned()),
        }];
    }
    let partitions = slurm_command(config, "sinfo", &["-h".into(), "-o".into(), "%P %a".into()])
        .await
        .and_then(|out| {
            let up: Vec<&str> = out
                .lines()
                .filter_map(|l| l.split_once(' '))
                .filter(|(_, state)| state.trim() == "up")
                .map(|(p, _)| p)
                .collect();
            if up.is_empty() {
                Err(format!("sinfo: no partition is up ({})", out.trim()))
            } else {
                Ok(format!("sinfo: partitions up: {}", up.join(", ")))
            }
        });
    let mut args = vec![
        "--test-only".to_owned(),
        "--wrap=true".to_owned(),
        "--output=/dev/null".to_owned(),
    ];
    if let Some(account) = &config.slurm.account {
        args.push(format!("--account={account}"));
    }
    if let Some(partition) = &config.slurm.partition {
        args.push(format!("--partition={partition}"));
    }
    let test = slurm_command(config, "sbatch", &args).await.map(|_| {
        "sbatch --test-only accepts a job with the configured account and partition".to_owned()
    });
    vec![
        Line {
            check: "slurm",
            verdict: partitions,
        },
        Line {
            check: "slurm",
            verdict: test,
        },
    ]
}

/// Why an S3 call failed, in a few words: the status S3 answered, or why nothing answered.
fn s3_failure<E: std::error::Error + 'static>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    match e.raw_response().map(|r| r.status().as_u16()) {
        Some(404) => "not found (404)".to_owned(),
        Some(403) => "forbidden (403): check the keys and the bucket policy".to_owned(),
        Some(status) => format!("HTTP {status}"),
        None => DisplayErrorContext(e).to_string(),
    }
}

async fn bucket(crawler: Option<&CrawlerConfig>) -> Line {
    let Some(c) = crawler else {
        return Line {
            check: "s3",
            verdict: Ok("no crawler: section: results are not released".to_owned()),
        };
    };
    let client = spe_s3::client(c).await;
    let name = &c.bucket;
    let verdict = async {
        client
            .head_bucket()
            .bucket(name)
            .send()
            .await
            .map_err(|e| format!("bucket {name}: HeadBucket: {}", s3_failure(&e)))?;
        client
            .put_object()
            .bucket(name)
            .key(PROBE_KEY)
            .body(Vec::new().into())
            .send()
            .await
            .map_err(|e| format!("bucket {name}: writing {PROBE_KEY}: {}", s3_failure(&e)))?;
        let ttl = PresigningConfig::expires_in(Duration::from_secs(60))
            .map_err(|e| format!("presigning: {e}"))?;
        let link = client
            .get_object()
            .bucket(name)
            .key(PROBE_KEY)
            .presigned(ttl)
            .await
            .map_err(|e| format!("bucket {name}: presigning a GET: {}", s3_failure(&e)))?;
        let res = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?
            .get(link.uri())
            .send()
            .await
            .map_err(|e| format!("bucket {name}: fetching a presigned link: {e}"))?;
        if !res.status().is_success() {
            return Err(format!(
                "bucket {name}: a presigned link answered {}",
                res.status()
            ));
        }
        Ok(format!(
            "bucket {name} exists; write ({PROBE_KEY}) and a presigned read work"
        ))
    };
    Line {
        check: "s3",
        verdict: tokio::time::timeout(TIMEOUT * 3, verdict)
            .await
            .unwrap_or_else(|_| Err(format!("bucket {name}: no answer within 30 s"))),
    }
}

async fn oidc(auth: &AuthConfig) -> Line {
    let AuthConfig::Oidc(oidc) = auth else {
        return Line {
            check: "oidc",
            verdict: Err("auth: disabled: only for tests; never with real data".to_owned()),
        };
    };
    let issuer = oidc.issuer.trim_end_matches('/');
    let verdict = async {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let get = |url: String| {
            let http = http.clone();
            async move {
                let res = http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                if !res.status().is_success() {
                    return Err(format!("{url}: {}", res.status()));
                }
                res.json::<Value>()
                    .await
                    .map_err(|e| format!("{url}: not JSON: {e}"))
            }
        };
        let discovery = get(format!("{issuer}/.well-known/openid-configuration")).await?;
        if discovery["issuer"]
            .as_str()
            .map(|i| i.trim_end_matches('/'))
            != Some(issuer)
        {
            return Err(format!(
                "discovery names issuer {} instead of {issuer}",
                discovery["issuer"]
            ));
        }
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .ok_or_else(|| format!("{issuer}: the discovery document has no jwks_uri"))?;
        let jwks = get(jwks_uri.to_owned()).await?;
        let n = jwks["keys"].as_array().map_or(0, Vec::len);
        if n == 0 {
            return Err(format!("{jwks_uri}: no keys"));
        }
        Ok(format!("{issuer}: discovery and JWKS ({n} keys) answer"))
    };
    Line {
        check: "oidc",
        verdict: verdict.await,
    }
}
