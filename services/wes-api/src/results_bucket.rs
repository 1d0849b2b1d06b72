//! Presigned download links for released results (aws-sdk-s3 presigning), configured by the
//! shared `crawler:` section (endpoint, region, path style, keys). The bucket stays private:
//! a link is a short-lived, signed GET of one object, handed out only for released files.
//! Neither the credentials nor a link (its signature) are ever logged.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use spe_core::config::CrawlerConfig;

#[derive(Clone, Debug)]
pub struct ResultsBucket {
    client: Client,
    bucket: String,
    ttl: Duration,
}

/// A presigned GET. `Debug` does not show the URL.
pub struct PresignedLink {
    pub url: String,
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for PresignedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresignedLink")
            .field("url", &"(redacted)")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl ResultsBucket {
    /// Links to objects of the bucket of `crawler.*`, through the client every service builds
    /// (spe-s3).
    pub async fn connect(config: &CrawlerConfig) -> ResultsBucket {
        ResultsBucket {
            client: spe_s3::client(config).await,
            bucket: config.bucket.clone(),
            ttl: Duration::from_secs(config.presign_ttl_seconds),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A GET of `key` signed now, valid for the configured TTL.
    pub async fn presign_get(&self, key: &str) -> Result<PresignedLink, String> {
        let now = SystemTime::now();
        let presigning = PresigningConfig::builder()
            .start_time(now)
            .expires_in(self.ttl)
            .build()
            .map_err(|e| format!("presigning config: {e}"))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|e| format!("presign GetObject: {}", DisplayErrorContext(&e)))?;
        Ok(PresignedLink {
            url: request.uri().to_owned(),
            expires_at: now + self.ttl,
        })
    }

    /// Whether the bucket answers a HEAD of `key` with these credentials (200 or 404).
    pub async fn answers(&self, key: &str) -> Result<(), String> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(()),
            Err(e) => Err(format!(
                "HeadObject {}/{key}: {}",
                self.bucket,
                DisplayErrorContext(&e)
            )),
        }
    }

    /// The first `len` bytes of `key` (fewer when the object is shorter): an encrypted
    /// result's header, read without its body.
    pub async fn first_bytes(&self, key: &str, len: u64) -> Result<Vec<u8>, String> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes=0-{}", len.saturating_sub(1)))
            .send()
            .await
            .map_err(|e| format!("GetObject {key}: {}", DisplayErrorContext(&e)))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| format!("GetObject {key}: {e}"))?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// `key` from byte `from` to its end, streamed: its length and the bytes as they arrive.
    pub async fn stream_from(
        &self,
        key: &str,
        from: u64,
    ) -> Result<(u64, aws_sdk_s3::primitives::ByteStream), String> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={from}-"))
            .send()
            .await
            .map_err(|e| format!("GetObject {key}: {}", DisplayErrorContext(&e)))?;
        let len = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| format!("GetObject {key}: no content length"))?;
        Ok((len, out.body))
    }

    /// Removes `key` (a revoked release). Removing an object that is not there succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), String> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("DeleteObject: {}", DisplayErrorContext(&e)))
    }

    /// Writes `body` at `key` (an audit chain anchor). With S3 Object Lock on the bucket (a
    /// default retention in compliance mode), the object cannot be overwritten or deleted
    /// until its retention ends.
    pub async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), String> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("PutObject: {}", DisplayErrorContext(&e)))
    }
}
