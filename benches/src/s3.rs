//! `cairn-bench s3`: a simple S3 load tool (until the full harness lands): PUT then GET of
//! fixed-size objects at a given concurrency against any S3 endpoint, SigV4-signed (payload
//! UNSIGNED-PAYLOAD, so the client spends no CPU hashing bodies), one keep-alive connection per
//! worker. JSON on stdout with medians of several runs.

use crate::load::{Phase, median, run_workers};
use anyhow::Context;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use clap::Args;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

#[derive(Args, Debug, Clone)]
pub struct S3Args {
    /// Endpoint, e.g. http://127.0.0.1:9000 (path-style requests).
    #[arg(long)]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY")]
    secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, default_value = "cairn-bench")]
    bucket: String,
    /// Object sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "4096,16777216")]
    sizes: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "8,32")]
    concurrency: Vec<usize>,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

struct Signer {
    args: S3Args,
    identity: Identity,
}

impl Signer {
    /// The URL and headers of a signed request for `method` on `path` (already URI-encoded).
    fn sign(&self, method: &str, path: &str) -> anyhow::Result<(String, Vec<(String, String)>)> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        settings.signature_location = SignatureLocation::Headers;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.args.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let url = format!("{}{}", self.args.endpoint.trim_end_matches('/'), path);
        let host = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_owned();
        let headers = [("host", host.as_str())];
        let signable = SignableRequest::new(
            method,
            &url,
            headers.into_iter(),
            SignableBody::UnsignedPayload,
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        let headers = instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Ok((url, headers))
    }

    fn request(
        &self,
        agent: &ureq::Agent,
        method: &str,
        path: &str,
    ) -> anyhow::Result<ureq::Request> {
        let (url, headers) = self.sign(method, path)?;
        let mut request = agent.request(method, &url);
        for (name, value) in headers {
            request = request.set(&name, &value);
        }
        Ok(request)
    }
}

/// Runs `concurrency` workers for `seconds`, one keep-alive HTTP agent each.
fn run_phase(
    signer: &Arc<Signer>,
    concurrency: usize,
    seconds: f64,
    operation: impl Fn(&Signer, &ureq::Agent, usize, u64) -> anyhow::Result<()> + Send + Sync + 'static,
) -> anyhow::Result<Phase> {
    let signer = signer.clone();
    run_workers(
        concurrency,
        seconds,
        |_| {
            Ok(ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(120))
                .build())
        },
        move |agent, worker, sequence| operation(&signer, agent, worker, sequence),
    )
}

fn phase_json(phase: &Phase, size: usize) -> Value {
    let ops = phase.operations as f64 / phase.seconds;
    json!({
        "operations": phase.operations,
        "ops_per_second": ops,
        "megabytes_per_second": ops * size as f64 / 1e6,
        "latency_ms_p50": phase.histogram.value_at_quantile(0.5) as f64 / 1e3,
        "latency_ms_p99": phase.histogram.value_at_quantile(0.99) as f64 / 1e3,
    })
}

pub fn run(args: S3Args) -> anyhow::Result<()> {
    let identity: Identity = Credentials::new(
        &args.access_key,
        &args.secret_key,
        None,
        None,
        "cairn-bench",
    )
    .into();
    let signer = Arc::new(Signer {
        args: args.clone(),
        identity,
    });
    let agent = ureq::AgentBuilder::new().build();
    let bucket_path = format!("/{}", args.bucket);
    match signer.request(&agent, "PUT", &bucket_path)?.call() {
        Ok(_) => {}
        Err(ureq::Error::Status(409, _)) => {} // already exists
        Err(error) => return Err(error).context("create the benchmark bucket"),
    }
    let mut cases = Vec::new();
    for &size in &args.sizes {
        let payload = Arc::new(payload_bytes(size));
        for &concurrency in &args.concurrency {
            let mut put_rates = Vec::new();
            let mut get_rates = Vec::new();
            let mut runs = Vec::new();
            for run in 0..args.runs {
                eprintln!("s3: size {size} concurrency {concurrency} run {run}");
                let prefix = format!("{}/size-{size}/c-{concurrency}/run-{run}", bucket_path);
                let written: Arc<Vec<AtomicU64>> =
                    Arc::new((0..concurrency).map(|_| AtomicU64::new(0)).collect());
                let put = {
                    let (payload, prefix, written) =
                        (payload.clone(), prefix.clone(), written.clone());
                    run_phase(
                        &signer,
                        concurrency,
                        args.seconds,
                        move |signer, agent, worker, sequence| {
                            let path = format!("{prefix}/w{worker:03}/{sequence:08}");
                            signer
                                .request(agent, "PUT", &path)?
                                .set("content-length", &payload.len().to_string())
                                .send_bytes(&payload)
                                .with_context(|| format!("PUT {path}"))?;
                            written[worker].store(sequence + 1, Ordering::Relaxed);
                            Ok(())
                        },
                    )?
                };
                let get = {
                    let (prefix, written) = (prefix.clone(), written.clone());
                    run_phase(
                        &signer,
                        concurrency,
                        args.seconds,
                        move |signer, agent, worker, sequence| {
                            let count = written[worker].load(Ordering::Relaxed).max(1);
                            let path = format!("{prefix}/w{worker:03}/{:08}", sequence % count);
                            let response = signer
                                .request(agent, "GET", &path)?
                                .call()
                                .with_context(|| format!("GET {path}"))?;
                            let mut reader = response.into_reader();
                            let read = std::io::copy(&mut reader, &mut std::io::sink())?;
                            anyhow::ensure!(read as usize == size, "GET {path}: {read} bytes");
                            Ok(())
                        },
                    )?
                };
                put_rates.push(put.operations as f64 / put.seconds);
                get_rates.push(get.operations as f64 / get.seconds);
                runs.push(json!({ "put": phase_json(&put, size), "get": phase_json(&get, size) }));
            }
            let (put_ops, get_ops) = (median(&mut put_rates), median(&mut get_rates));
            cases.push(json!({
                "object_size_bytes": size,
                "concurrency": concurrency,
                "put_ops_per_second_median": put_ops,
                "put_megabytes_per_second_median": put_ops * size as f64 / 1e6,
                "get_ops_per_second_median": get_ops,
                "get_megabytes_per_second_median": get_ops * size as f64 / 1e6,
                "runs": runs,
            }));
        }
    }
    let report = json!({
        "workload": "s3",
        "schema_version": 1,
        "endpoint": args.endpoint,
        "seconds_per_phase": args.seconds,
        "runs": args.runs,
        "cases": cases,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Incompressible-looking payload (xorshift), generated once per size.
fn payload_bytes(size: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes = Vec::with_capacity(size + 8);
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}
