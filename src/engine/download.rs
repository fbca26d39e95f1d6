//! Streams the JumpCloud agent package to disk (`Agent.PackageURL`), with a progress callback.

use std::path::Path;

use futures_util::StreamExt;
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use url::Url;

#[derive(Debug, Error)]
pub enum DownloadError {
    #[error("downloading {url} failed: {detail}")]
    Http {
        url: String,
        detail: String,
        /// The HTTP status, when the server answered.
        status: Option<u16>,
    },
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// `url` without credentials or query (a presigned link or `user:pass@` stays out of logs).
impl DownloadError {
    /// The server answered 4xx: the URL is wrong, gone or not ours to fetch.
    pub fn is_client_error(&self) -> bool {
        matches!(self, DownloadError::Http { status: Some(s), .. } if (400..500).contains(s))
    }
}

pub fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(Some("…"));
    }
    shown.to_string()
}

/// Downloads `url` to `dest` (through a temp file renamed at the end), calling `progress` with
/// bytes done and the total when known.
pub async fn download(
    url: &Url,
    dest: &Path,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<(), DownloadError> {
    let shown = redacted(url);
    let http = |detail: String| DownloadError::Http {
        url: shown.clone(),
        detail,
        status: None,
    };
    let io = |source: std::io::Error| DownloadError::Io {
        path: dest.display().to_string(),
        source,
    };
    let client = reqwest::Client::builder()
        .user_agent(crate::USER_AGENT)
        .connect_timeout(std::time::Duration::from_secs(10))
        // A connection that stalls mid-body (Wi-Fi roaming during Setup) fails and is retried
        // instead of hanging forever.
        .read_timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| http(e.without_url().to_string()))?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| http(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(DownloadError::Http {
            url: shown.clone(),
            detail: format!("HTTP {}", response.status()),
            status: Some(response.status().as_u16()),
        });
    }
    let total = response.content_length();
    let tmp = dest.with_extension("part");
    let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
    let mut done = 0u64;
    let mut last_report = 0u64;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| http(e.without_url().to_string()))?;
        file.write_all(&chunk).await.map_err(io)?;
        done += chunk.len() as u64;
        if done - last_report >= 4 << 20 {
            progress(done, total);
            last_report = done;
        }
    }
    file.sync_all().await.map_err(io)?;
    drop(file);
    if let Some(total) = total {
        if done != total {
            return Err(http(format!("got {done} of {total} bytes")));
        }
    }
    progress(done, total);
    tokio::fs::rename(&tmp, dest).await.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_and_query() {
        let url = Url::parse("https://user:pw@cdn.example.com/a.pkg?X-Amz-Signature=abc").unwrap();
        let shown = redacted(&url);
        assert!(
            !shown.contains("pw") && !shown.contains("abc") && !shown.contains("user"),
            "{shown}"
        );
        assert!(
            shown.starts_with("https://cdn.example.com/a.pkg"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_failed_download_does_not_name_the_query() {
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = Url::parse(&format!(
            "http://127.0.0.1:{port}/a.pkg?X-Amz-Signature=s3cr3t"
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = download(&url, &dir.path().join("a.pkg"), |_, _| {})
            .await
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(err.contains(&format!("127.0.0.1:{port}/a.pkg")), "{err}");
    }
}
