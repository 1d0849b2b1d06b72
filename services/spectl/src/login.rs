//! `spectl login` / `spectl logout`: the OAuth 2.0 device authorization grant (RFC 8628)
//! against the service's OpenID Connect issuer, and a token cache.
//!
//! The cache is one JSON file, `$SPE_TOKEN_FILE` or `$XDG_CONFIG_HOME/spe/tokens.json`
//! (`~/.config/spe/tokens.json`), written with mode 0600 (its folder 0700) through a temporary
//! file renamed into place. Commands use the cached access token when neither `--token` nor
//! `SPE_TOKEN` is given, refreshing it with the refresh token when it has expired. Tokens are
//! never printed.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::api::Failure;

/// Refresh a cached access token this many seconds before it expires.
const EXPIRY_MARGIN: i64 = 30;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where the token cache lives.
pub fn token_file() -> Result<PathBuf, Failure> {
    if let Some(path) = std::env::var_os("SPE_TOKEN_FILE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| {
            Failure::Usage("neither SPE_TOKEN_FILE, XDG_CONFIG_HOME nor HOME is set".into())
        })?;
    Ok(config.join("spe").join("tokens.json"))
}

fn http() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("spectl/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::Other(format!("cannot set up HTTP: {e}")))
}

/// GETs or POSTs and reads a JSON object; errors name the URL and status, never a token.
async fn json_of(req: reqwest::RequestBuilder, what: &str) -> Result<(u16, Value), Failure> {
    let res = req
        .send()
        .await
        .map_err(|e| Failure::Other(format!("{what}: {}", e.without_url())))?;
    let status = res.status().as_u16();
    let body: Value = res
        .json()
        .await
        .map_err(|_| Failure::Other(format!("{what}: the answer (HTTP {status}) is not JSON")))?;
    Ok((status, body))
}

struct Endpoints {
    device: String,
    token: String,
    revocation: Option<String>,
}

async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, Failure> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let (status, meta) = json_of(http.get(&url), &url).await?;
    if status != 200 {
        return Err(Failure::Other(format!("{url}: HTTP {status}")));
    }
    let text = |name: &str| meta.get(name).and_then(Value::as_str).map(str::to_owned);
    if text("issuer").as_deref().map(|i| i.trim_end_matches('/'))
        != Some(issuer.trim_end_matches('/'))
    {
        return Err(Failure::Other(format!(
            "{url}: the document names another issuer"
        )));
    }
    Ok(Endpoints {
        device: text("device_authorization_endpoint").ok_or_else(|| {
            Failure::Other(format!("{issuer} offers no device authorization endpoint"))
        })?,
        token: text("token_endpoint")
            .ok_or_else(|| Failure::Other(format!("{issuer} has no token endpoint")))?,
        revocation: text("revocation_endpoint"),
    })
}

/// `spectl login`: the device flow; prints where to go and the code on stderr, polls, caches.
pub async fn login(issuer: &str, client_id: &str, scope: &str) -> Result<(), Failure> {
    let http = http()?;
    let endpoints = discover(&http, issuer).await?;
    let (status, device) = json_of(
        http.post(&endpoints.device)
            .form(&[("client_id", client_id), ("scope", scope)]),
        "device authorization",
    )
    .await?;
    let text = |name: &str| device.get(name).and_then(Value::as_str).map(str::to_owned);
    if status != 200 {
        return Err(Failure::Other(format!(
            "device authorization refused (HTTP {status}): {}",
            text("error").unwrap_or_default()
        )));
    }
    let (Some(device_code), Some(user_code), Some(uri)) = (
        text("device_code"),
        text("user_code"),
        text("verification_uri"),
    ) else {
        return Err(Failure::Other(
            "the device authorization answer lacks device_code, user_code or verification_uri"
                .into(),
        ));
    };
    let expires_in = device
        .get("expires_in")
        .and_then(Value::as_u64)
        .unwrap_or(600);
    let mut interval = device.get("interval").and_then(Value::as_u64).unwrap_or(5);
    eprintln!("To log in, open {uri} and enter the code {user_code}");
    if let Some(complete) = text("verification_uri_complete") {
        eprintln!("(or open {complete})");
    }
    eprintln!("Waiting for you to log in...");
    let deadline = std::time::Instant::now() + Duration::from_secs(expires_in);
    loop {
        if std::time::Instant::now() >= deadline {
            return Err(Failure::Other(
                "the login code expired; run spectl login again".into(),
            ));
        }
        tokio::time::sleep(Duration::from_secs(interval.clamp(1, 60))).await;
        let (status, answer) = json_of(
            http.post(&endpoints.token).form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code.as_str()),
                ("client_id", client_id),
            ]),
            "token endpoint",
        )
        .await?;
        if status == 200 {
            let cache = cache_from(issuer, client_id, &endpoints, &answer, None)?;
            save(&cache)?;
            eprintln!("Logged in; tokens cached in {}", token_file()?.display());
            return Ok(());
        }
        match answer.get("error").and_then(Value::as_str).unwrap_or("") {
            "authorization_pending" => {}
            "slow_down" => interval += 5,
            "access_denied" => return Err(Failure::Other("login refused".into())),
            "expired_token" => {
                return Err(Failure::Other(
                    "the login code expired; run spectl login again".into(),
                ));
            }
            other => {
                return Err(Failure::Other(format!(
                    "login failed (HTTP {status}): {}",
                    other.chars().take(64).collect::<String>()
                )));
            }
        }
    }
}

/// The cache to write from a token answer (`previous` keeps a refresh token the answer omits).
fn cache_from(
    issuer: &str,
    client_id: &str,
    endpoints: &Endpoints,
    answer: &Value,
    previous_refresh: Option<&str>,
) -> Result<Value, Failure> {
    let access = answer
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::Other("the token answer has no access_token".into()))?;
    let refresh = answer
        .get("refresh_token")
        .and_then(Value::as_str)
        .or(previous_refresh);
    let expires_at = answer
        .get("expires_in")
        .and_then(Value::as_i64)
        .map(|s| now() + s);
    Ok(json!({
        "issuer": issuer,
        "client_id": client_id,
        "token_endpoint": endpoints.token,
        "revocation_endpoint": endpoints.revocation,
        "access_token": access,
        "refresh_token": refresh,
        "expires_at": expires_at,
    }))
}

fn save(cache: &Value) -> Result<(), Failure> {
    let path = token_file()?;
    let fail =
        |what: &str, e: std::io::Error| Failure::Other(format!("{what} {}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&dir)
            .map_err(|e| fail("cannot create the folder of", e))?;
    }
    let tmp = dir.join(format!(".tokens.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let _ = std::fs::remove_file(&tmp);
    let mut file = options.open(&tmp).map_err(|e| fail("cannot write", e))?;
    let text = serde_json::to_vec_pretty(cache).unwrap_or_default();
    std::io::Write::write_all(&mut file, &text)
        .and_then(|()| file.sync_all())
        .map_err(|e| fail("cannot write", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| fail("cannot write", e))
}

fn load() -> Result<Option<Value>, Failure> {
    let path = token_file()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|_| {
            Failure::Other(format!(
                "{} is not a token cache; run spectl login",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::Other(format!("{}: {e}", path.display()))),
    }
}

/// The cached access token, refreshed first when it has expired; `None` without a cache.
pub async fn cached_token() -> Result<Option<String>, Failure> {
    let Some(cache) = load()? else {
        return Ok(None);
    };
    let text = |name: &str| cache.get(name).and_then(Value::as_str).map(str::to_owned);
    let Some(access) = text("access_token") else {
        return Ok(None);
    };
    let expires_at = cache.get("expires_at").and_then(Value::as_i64);
    if expires_at.is_none_or(|at| at - EXPIRY_MARGIN > now()) {
        return Ok(Some(access));
    }
    let (Some(refresh), Some(token_endpoint), Some(issuer), Some(client_id)) = (
        text("refresh_token"),
        text("token_endpoint"),
        text("issuer"),
        text("client_id"),
    ) else {
        return Err(Failure::Usage(
            "your login has expired; run spectl login".into(),
        ));
    };
    let http = http()?;
    let (status, answer) = json_of(
        http.post(&token_endpoint).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", client_id.as_str()),
        ]),
        "token endpoint",
    )
    .await?;
    if status != 200 {
        return Err(Failure::Usage(
            "your login has expired and cannot be renewed; run spectl login".into(),
        ));
    }
    let endpoints = Endpoints {
        device: String::new(),
        token: token_endpoint,
        revocation: text("revocation_endpoint"),
    };
    let fresh = cache_from(&issuer, &client_id, &endpoints, &answer, Some(&refresh))?;
    save(&fresh)?;
    Ok(fresh
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned))
}

/// `spectl logout`: revokes the refresh token where the issuer allows it, deletes the cache.
pub async fn logout() -> Result<(), Failure> {
    let path = token_file()?;
    if let Some(cache) = load().ok().flatten() {
        let text = |name: &str| cache.get(name).and_then(Value::as_str).map(str::to_owned);
        if let (Some(url), Some(refresh), Some(client_id)) = (
            text("revocation_endpoint"),
            text("refresh_token"),
            text("client_id"),
        ) && let Ok(http) = http()
        {
            // Best effort: the local cache goes whatever the issuer says.
            let _ = http
                .post(&url)
                .form(&[
                    ("token", refresh.as_str()),
                    ("token_type_hint", "refresh_token"),
                    ("client_id", client_id.as_str()),
                ])
                .send()
                .await;
        }
    }
    match std::fs::remove_file(&path) {
        Ok(()) => eprintln!("Logged out; removed {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => eprintln!("Not logged in"),
        Err(e) => return Err(Failure::Other(format!("{}: {e}", path.display()))),
    }
    Ok(())
}
