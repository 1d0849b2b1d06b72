//! `spectl dataset upload`: asks the service for an upload grant naming the files, then sends
//! each file under it, streamed from disk with a progress bar. The service keeps a file only
//! if its Crypt4GH header opens with the service's key; the grant's token goes in a header and
//! is never printed.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::api::{Api, Body, Failure, describe};

/// Bytes read from disk per piece of the request body.
const CHUNK: usize = 256 * 1024;

fn name_of(path: &Path) -> Result<String, Failure> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| Failure::Usage(format!("{}: not a file name", path.display())))
}

pub async fn upload(
    api: &Api,
    json: bool,
    dataset: &str,
    files: &[PathBuf],
    expires_in: Option<u64>,
) -> Result<(), Failure> {
    let mut names = Vec::new();
    for f in files {
        let meta =
            std::fs::metadata(f).map_err(|e| Failure::Usage(format!("{}: {e}", f.display())))?;
        if !meta.is_file() {
            return Err(Failure::Usage(format!(
                "{}: not a regular file",
                f.display()
            )));
        }
        names.push(name_of(f)?);
    }
    let mut body = json!({ "files": names });
    if let Some(s) = expires_in {
        body["expires_in_seconds"] = s.into();
    }
    let grant = api
        .post(&["admin", "datasets", dataset, "uploads"], Body::Json(body))
        .await?;
    let (Some(id), Some(token)) = (grant["grant_id"].as_str(), grant["token"].as_str()) else {
        return Err(Failure::Other(
            "the service's grant lacks its id or token".into(),
        ));
    };
    let mut done = Vec::new();
    for (path, name) in files.iter().zip(&names) {
        let accepted = send(api, id, token, path, name, !json).await?;
        if !json {
            println!(
                "{name}: accepted into {dataset} ({} bytes, SHA-256 {})",
                accepted["size"],
                accepted["sha256"].as_str().unwrap_or("?")
            );
        }
        done.push(accepted);
    }
    if json {
        crate::print_json(&json!({ "dataset_id": dataset, "grant_id": id, "files": done }));
    }
    Ok(())
}

async fn send(
    api: &Api,
    grant: &str,
    token: &str,
    path: &Path,
    name: &str,
    progress: bool,
) -> Result<Value, Failure> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = crate::download::progress_bar(progress, size, name);
    let shown = path.display().to_string();
    let counter = bar.clone();
    let stream = futures_util::stream::unfold((), move |()| {
        let mut buf = vec![0u8; CHUNK];
        let read = file.read(&mut buf);
        let counter = counter.clone();
        let shown = shown.clone();
        async move {
            match read {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    counter.inc(n as u64);
                    Some((Ok::<_, std::io::Error>(buf), ()))
                }
                Err(e) => Some((Err(std::io::Error::other(format!("{shown}: {e}"))), ())),
            }
        }
    });
    let url = api.url(&["uploads", grant], &[("name", name.to_owned())])?;
    let res = api
        .raw_client()
        .post(url)
        .header("x-spe-upload-token", token)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .map_err(|e| Failure::Other(format!("uploading {name}: {}", describe(e))))?;
    bar.finish_and_clear();
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(Failure::Api {
            status: status.as_u16(),
            msg: v["msg"]
                .as_str()
                .unwrap_or("the upload was refused")
                .to_owned(),
        });
    }
    Ok(v)
}
