//! The results bucket, through aws-sdk-s3. An object becomes visible under its key only when a
//! PutObject or CompleteMultipartUpload succeeds, so a crash mid-upload never leaves a partial
//! object under a final key (an unfinished multipart upload is invisible, and aborted on the
//! next attempt).

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use spe_core::config::CrawlerConfig;

/// Object metadata key (`x-amz-meta-sha256`) holding the SHA-256 (hex) of the bytes sent.
pub const SHA256_METADATA: &str = "sha256";

#[derive(Debug, thiserror::Error)]
#[error("S3 {op}: {message}")]
pub struct S3Error {
    pub op: &'static str,
    pub message: String,
}

fn err<E>(op: &'static str, e: E) -> S3Error
where
    E: std::error::Error,
{
    S3Error {
        op,
        message: DisplayErrorContext(&e).to_string(),
    }
}

/// What a HEAD says of an object already there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub size: i64,
    pub sha256: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Bucket {
    client: Client,
    bucket: String,
    /// `crawler.server_side_encryption` (and its KMS key): asked of every object written.
    sse: Option<(aws_sdk_s3::types::ServerSideEncryption, Option<String>)>,
}

impl Bucket {
    /// The bucket of `crawler.*`, through the client every service builds (spe-s3).
    pub async fn connect(config: &CrawlerConfig) -> Bucket {
        use spe_core::config::ServerSideEncryption as Sse;
        Bucket {
            client: spe_s3::client(config).await,
            bucket: config.bucket.clone(),
            sse: config.server_side_encryption.map(|mode| match mode {
                Sse::Aes256 => (aws_sdk_s3::types::ServerSideEncryption::Aes256, None),
                Sse::Kms => (
                    aws_sdk_s3::types::ServerSideEncryption::AwsKms,
                    config.sse_kms_key_id.clone(),
                ),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// `None` when no object has the key.
    pub async fn head(&self, key: &str) -> Result<Option<Existing>, S3Error> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(Existing {
                size: out.content_length().unwrap_or_default(),
                sha256: out.metadata().and_then(|m| m.get(SHA256_METADATA)).cloned(),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(err("HeadObject", e)),
        }
    }

    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        sha256: &str,
        content_type: &str,
    ) -> Result<(), S3Error> {
        let len = i64::try_from(body.len()).unwrap_or(i64::MAX);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(len)
            .metadata(SHA256_METADATA, sha256)
            .set_server_side_encryption(self.sse.as_ref().map(|(mode, _)| mode.clone()))
            .set_ssekms_key_id(self.sse.as_ref().and_then(|(_, key)| key.clone()))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| err("PutObject", e))?;
        Ok(())
    }

    pub async fn create_multipart(
        &self,
        key: &str,
        sha256: &str,
        content_type: &str,
    ) -> Result<String, S3Error> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .metadata(SHA256_METADATA, sha256)
            .set_server_side_encryption(self.sse.as_ref().map(|(mode, _)| mode.clone()))
            .set_ssekms_key_id(self.sse.as_ref().and_then(|(_, key)| key.clone()))
            .send()
            .await
            .map_err(|e| err("CreateMultipartUpload", e))?;
        out.upload_id().map(str::to_owned).ok_or(S3Error {
            op: "CreateMultipartUpload",
            message: "no upload id in the answer".into(),
        })
    }

    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
    ) -> Result<CompletedPart, S3Error> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| err("UploadPart", e))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_owned))
            .build())
    }

    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<(), S3Error> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| err("CompleteMultipartUpload", e))?;
        Ok(())
    }

    /// Aborts an unfinished multipart upload; one that is gone already is not an error.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(()),
            Err(e) => Err(err("AbortMultipartUpload", e)),
        }
    }

    /// Reads a whole object (tests and benchmarks).
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let body = out.body.collect().await.map_err(|e| S3Error {
                    op: "GetObject",
                    message: e.to_string(),
                })?;
                Ok(Some(body.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(err("GetObject", e)),
        }
    }

    /// Every key under `prefix` (tests and benchmarks).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, S3Error> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| err("ListObjectsV2", e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated().unwrap_or(false) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(keys)
    }
}

/// A content type from the file name; `application/octet-stream` when unknown. Markup that a
/// browser would run (HTML) is served as plain text.
pub fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "csv" => "text/csv",
        "tsv" | "tab" => "text/tab-separated-values",
        "txt" | "log" | "md" | "html" | "htm" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "pdf" => "application/pdf",
        "gz" | "tgz" => "application/gzip",
        "zip" => "application/zip",
        "vcf" => "text/x-vcf",
        "bam" | "cram" | "bai" => "application/octet-stream",
        _ => "application/octet-stream",
    }
}
