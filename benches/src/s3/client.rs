//! The benchmark's own small S3 client: SigV4 header signing with `UNSIGNED-PAYLOAD` (the client
//! spends no CPU hashing bodies, so it measures the server), path-style or virtual-host-style
//! addressing, one keep-alive connection pool per worker. It implements only what the workloads
//! need and reads list/multipart XML by plain string search.

use super::sigv4::{Signer, UNSIGNED_PAYLOAD};
use anyhow::Context;
use clap::{Args, ValueEnum};
use std::cell::RefCell;
use std::io::Read;
use std::time::{Duration, SystemTime};

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `http://host/bucket/key`
    Path,
    /// `http://bucket.host/key`
    VirtualHost,
}

/// Where the load goes.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Endpoint, e.g. http://127.0.0.1:9000.
    #[arg(long)]
    pub endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY")]
    pub secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    #[arg(long, default_value = "cairn-bench")]
    pub bucket: String,
    #[arg(long, value_enum, default_value = "path")]
    pub addressing: Addressing,
    /// PEM CA certificates to trust for `https://` endpoints (both targets of `compare`); the
    /// system's web roots are not used.
    #[arg(long, env = "AWS_CA_BUNDLE")]
    pub ca_bundle: Option<std::path::PathBuf>,
}

/// One worker's client: the target, its signer and its own keep-alive agent.
pub struct Client {
    target: TargetArgs,
    signer: RefCell<Signer>,
    agent: ureq::Agent,
    /// Where GET bodies are read to (and dropped).
    read_buffer: RefCell<Vec<u8>>,
}

/// Keys listed and pages fetched by one full listing.
pub struct Listing {
    pub keys: u64,
    pub pages: u64,
}

impl Client {
    pub fn new(target: &TargetArgs) -> Client {
        Client {
            target: target.clone(),
            signer: RefCell::new(Signer::new(
                &target.access_key,
                &target.secret_key,
                &target.region,
            )),
            agent: {
                // Timeouts per socket read and write, set once per connection: an overall
                // timeout makes ureq set the socket's timeout again before every read.
                let builder = ureq::AgentBuilder::new()
                    .timeout_connect(Duration::from_secs(30))
                    .timeout_read(Duration::from_secs(300))
                    .timeout_write(Duration::from_secs(300))
                    .max_idle_connections_per_host(4);
                match &target.ca_bundle {
                    Some(path) => builder.tls_config(tls_config(path)),
                    None => builder,
                }
                .build()
            },
            read_buffer: RefCell::new(vec![0; 256 << 10]),
        }
    }

    /// The URL of `key` (already URI-safe; `None` for the bucket) with `query` (already encoded).
    fn url(&self, key: Option<&str>, query: &str) -> String {
        let endpoint = self.target.endpoint.trim_end_matches('/');
        let mut url = match self.target.addressing {
            Addressing::Path => format!("{endpoint}/{}", self.target.bucket),
            Addressing::VirtualHost => {
                let (scheme, host) = endpoint.split_once("://").unwrap_or(("http", endpoint));
                format!("{scheme}://{}.{host}", self.target.bucket)
            }
        };
        if let Some(key) = key {
            url.push('/');
            url.push_str(key);
        } else if self.target.addressing == Addressing::VirtualHost {
            url.push('/');
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    fn request(
        &self,
        method: &str,
        key: Option<&str>,
        query: &str,
    ) -> anyhow::Result<ureq::Request> {
        let url = self.url(key, query);
        let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        let (host, path_and_query) = after_scheme
            .find('/')
            .map_or((after_scheme, "/"), |slash| after_scheme.split_at(slash));
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(path, _)| path);
        let signed = self
            .signer
            .borrow_mut()
            .sign(method, host, path, query, SystemTime::now());
        Ok(self
            .agent
            .request(method, &url)
            .set("x-amz-content-sha256", UNSIGNED_PAYLOAD)
            .set("x-amz-date", &signed.amz_date)
            .set("authorization", &signed.authorization))
    }

    /// Creates the bucket; one that already exists (owned by us) is fine.
    pub fn create_bucket(&self) -> anyhow::Result<()> {
        match self.request("PUT", None, "")?.call() {
            Ok(_) | Err(ureq::Error::Status(409, _)) => Ok(()),
            Err(error) => Err(error).context("create the benchmark bucket"),
        }
    }

    pub fn put(&self, key: &str, body: &[u8]) -> anyhow::Result<()> {
        self.request("PUT", Some(key), "")?
            .set("content-length", &body.len().to_string())
            .send_bytes(body)
            .with_context(|| format!("PUT {key}"))?;
        Ok(())
    }

    /// GETs `key` (or the inclusive byte `range` of it), reads the body and returns its length.
    pub fn get(&self, key: &str, range: Option<(u64, u64)>) -> anyhow::Result<u64> {
        let mut request = self.request("GET", Some(key), "")?;
        if let Some((first, last)) = range {
            request = request.set("range", &format!("bytes={first}-{last}"));
        }
        let response = request.call().with_context(|| format!("GET {key}"))?;
        let mut reader = response.into_reader();
        // Reads as large as the buffer go straight from the socket (past ureq's 8 KiB buffer):
        // one read per 256 KiB rather than per 8 KiB of a large object.
        let mut buffer = self.read_buffer.borrow_mut();
        let mut read = 0u64;
        loop {
            match reader.read(&mut buffer) {
                Ok(0) => return Ok(read),
                Ok(length) => read += length as u64,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error).with_context(|| format!("GET {key} body")),
            }
        }
    }

    pub fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.request("DELETE", Some(key), "")?
            .call()
            .with_context(|| format!("DELETE {key}"))?;
        Ok(())
    }

    /// Lists every key under `prefix` with ListObjectsV2, following continuation tokens.
    pub fn list(&self, prefix: &str, page_size: u32) -> anyhow::Result<Listing> {
        let mut listing = Listing { keys: 0, pages: 0 };
        let mut token: Option<String> = None;
        loop {
            // Parameters in the canonical (sorted) order.
            let mut query = String::new();
            if let Some(token) = &token {
                query.push_str(&format!("continuation-token={}&", encode(token)));
            }
            query.push_str(&format!(
                "list-type=2&max-keys={page_size}&prefix={}",
                encode(prefix)
            ));
            let body = self
                .request("GET", None, &query)?
                .call()
                .with_context(|| format!("LIST {prefix}"))?
                .into_string()?;
            listing.pages += 1;
            listing.keys += body.matches("<Key>").count() as u64;
            let truncated = element(&body, "IsTruncated").is_some_and(|value| value == "true");
            match element(&body, "NextContinuationToken") {
                Some(next) if truncated => token = Some(unescape(next)),
                _ => return Ok(listing),
            }
        }
    }

    /// Uploads `body` as `key` in parts of `part_size` bytes (create, parts, complete); returns
    /// the number of parts.
    pub fn multipart(&self, key: &str, body: &[u8], part_size: usize) -> anyhow::Result<u64> {
        let created = self
            .request("POST", Some(key), "uploads")?
            .call()
            .with_context(|| format!("CreateMultipartUpload {key}"))?
            .into_string()?;
        let upload_id = unescape(
            element(&created, "UploadId").context("no UploadId in CreateMultipartUpload")?,
        );
        let mut complete = String::from("<CompleteMultipartUpload>");
        let mut parts = 0u64;
        for (index, part) in body.chunks(part_size.max(1)).enumerate() {
            let number = index + 1;
            let response = self
                .request(
                    "PUT",
                    Some(key),
                    &format!("partNumber={number}&uploadId={}", encode(&upload_id)),
                )?
                .set("content-length", &part.len().to_string())
                .send_bytes(part)
                .with_context(|| format!("UploadPart {key} #{number}"))?;
            let etag = response.header("etag").context("UploadPart without ETag")?;
            complete.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
                etag.replace('&', "&amp;").replace('"', "&quot;")
            ));
            parts += 1;
        }
        complete.push_str("</CompleteMultipartUpload>");
        let mut response = String::new();
        self.request(
            "POST",
            Some(key),
            &format!("uploadId={}", encode(&upload_id)),
        )?
        .send_string(&complete)
        .with_context(|| format!("CompleteMultipartUpload {key}"))?
        .into_reader()
        .read_to_string(&mut response)?;
        // CompleteMultipartUpload may fail inside a 200 response.
        anyhow::ensure!(
            !response.contains("<Error>"),
            "CompleteMultipartUpload {key}: {response}"
        );
        Ok(parts)
    }
}

/// The text of the first `<name>…</name>` in `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

/// Undoes the five XML entity escapes.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Percent-encodes everything but the RFC 3986 unreserved characters, as SigV4 expects.
pub fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A rustls client configuration trusting the certificates in `ca_bundle` (PEM). The bundle is
/// read once per worker; a missing or unreadable file is fatal to the benchmark.
fn tls_config(ca_bundle: &std::path::Path) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(ca_bundle)
        .unwrap_or_else(|error| panic!("--ca-bundle {}: {error}", ca_bundle.display()));
    for certificate in certificates {
        let certificate = certificate
            .unwrap_or_else(|error| panic!("--ca-bundle {}: {error}", ca_bundle.display()));
        roots
            .add(certificate)
            .unwrap_or_else(|error| panic!("--ca-bundle {}: {error}", ca_bundle.display()));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(addressing: Addressing) -> TargetArgs {
        TargetArgs {
            endpoint: "http://127.0.0.1:9000/".into(),
            access_key: "a".into(),
            secret_key: "b".into(),
            region: "us-east-1".into(),
            bucket: "bench".into(),
            addressing,
            ca_bundle: None,
        }
    }

    #[test]
    fn urls_in_both_addressing_styles() {
        let path = Client::new(&target(Addressing::Path));
        assert_eq!(path.url(Some("k/1"), ""), "http://127.0.0.1:9000/bench/k/1");
        assert_eq!(
            path.url(None, "list-type=2"),
            "http://127.0.0.1:9000/bench?list-type=2"
        );
        let virtual_host = Client::new(&target(Addressing::VirtualHost));
        assert_eq!(
            virtual_host.url(Some("k"), "uploads"),
            "http://bench.127.0.0.1:9000/k?uploads"
        );
        assert_eq!(virtual_host.url(None, ""), "http://bench.127.0.0.1:9000/");
    }

    #[test]
    fn xml_elements_and_encoding() {
        let xml = "<R><IsTruncated>true</IsTruncated><NextContinuationToken>a&amp;b</NextContinuationToken></R>";
        assert_eq!(element(xml, "IsTruncated"), Some("true"));
        assert_eq!(
            unescape(element(xml, "NextContinuationToken").unwrap()),
            "a&b"
        );
        assert_eq!(encode("a b/c+=~"), "a%20b%2Fc%2B%3D~");
    }
}
