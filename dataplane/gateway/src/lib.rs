//! Cairn's regional S3 gateway.
//!
//! Model: a thin I/O shell (`server`: monoio executors, hyper HTTP/1.1) around the sans-I/O
//! cores it composes — `cairn-s3-proto` (routing, SigV4, aws-chunked, XML, errors), `cairn-ec`
//! (stripe encoder/decoder), [`placement`] (pure) — and the metadata client (`cairn-raft`):
//! each executor runs its own over [`meta_transport`] for the writes, reads and object listings
//! of requests; the rarer calls (version and upload listings, bucket statistics, background
//! reports) go through a shared client on its own tokio threads. One `match` on `Endpoint` dispatches to one
//! handler file per operation family: `bucket`, `object`, `list`, `multipart`.
//!
//! Invariants: every response carries `x-amz-request-id`; S3 error codes and statuses come only
//! from `S3Error` via [`errors`]; no body is ever held whole in memory (a PUT holds at most two
//! stripes, a GET at most a few); nothing is committed before the body, its signatures and its
//! checksums verified.
//!
//! Entry points for the `cairn` binary: [`run_gateway`] (blocking) and [`start_gateway`]
//! (returns once listening, for `cairn dev` and tests). Both must be called from a plain thread
//! (not a tokio worker): start-up registers the root key synchronously.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use cairn_gateway::{GatewayConfig, RootCredentials, StorageNodeConfig, run_gateway};
//! use cairn_raft::MetaClientConfig;
//!
//! // Six storage nodes in three zones, one metadata replica with 8 partitions.
//! let storage_nodes = (0..6u64)
//!     .map(|index| {
//!         let address = format!("127.0.0.1:{}", 7601 + index).parse().unwrap();
//!         StorageNodeConfig::new(index + 1, address, format!("az{}", index % 3))
//!     })
//!     .collect();
//! let meta = MetaClientConfig::new(BTreeMap::from([(1, "127.0.0.1:7401".to_owned())]), 8);
//! let mut config = GatewayConfig::new("127.0.0.1:9000".parse()?, storage_nodes, meta);
//! let (root, generated) =
//!     RootCredentials::from_env_or_file(std::path::Path::new("/var/lib/cairn/root-credentials"))?;
//! if generated {
//!     println!("access key {} secret {}", root.access_key_id, root.secret_access_key);
//! }
//! config.root_credentials = Some(root);
//! run_gateway(config)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod acl;
mod admin;
mod attributes;
mod auth;
mod balance;
mod body;
mod bucket;
mod bucket_encryption;
pub mod config;
mod cors;
mod encryption;
pub mod errors;
mod kms;
mod lifecycle;
mod list;
mod master_key;
pub mod meta_transport;
pub mod metrics;
mod multipart;
mod object;
mod object_lock;
mod policy;
mod post_object;
mod quota;
pub mod read_ahead;
pub mod region;
mod replication;
mod request_id;
mod server;
mod storage;
mod suspects;
mod tagging;
mod upload_md5;
mod users;
pub use master_key::current_ring as master_key_ring;
pub use users::open_stored_secret;

pub use cairn_common::placement;
pub use config::{GatewayConfig, RootCredentials, StorageNodeConfig};
pub use errors::GatewayError;
pub use server::{
    EDGE_CLIENT_IP_HEADER, GatewayHandle, accept_with_backoff, run_gateway, start_gateway,
};
