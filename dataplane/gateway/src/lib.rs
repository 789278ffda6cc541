//! Cairn's regional S3 gateway.
//!
//! Model: a thin I/O shell ([`server`]: monoio executors, hyper HTTP/1.1) around the sans-I/O
//! cores it composes — `cairn-s3-proto` (routing, SigV4, aws-chunked, XML, errors), `cairn-ec`
//! (stripe encoder/decoder), [`placement`] (pure) — and the metadata client (`cairn-raft`),
//! whose futures run on their own tokio threads. One `match` on `Endpoint` dispatches to one
//! handler file per operation family: [`bucket`], [`object`], [`list`], [`multipart`].
//!
//! Invariants: every response carries `x-amz-request-id`; S3 error codes and statuses come only
//! from `S3Error` via [`errors`]; no body is ever held whole in memory (a PUT holds at most two
//! stripes, a GET at most a few); nothing is committed before the body, its signatures and its
//! checksums verified.
//!
//! Entry points for the `cairn` binary: [`run_gateway`] (blocking) and [`start_gateway`]
//! (returns once listening, for `cairn dev` and tests).

mod auth;
mod body;
mod bucket;
pub mod config;
pub mod errors;
mod list;
mod multipart;
mod object;
pub mod placement;
mod request_id;
mod server;
mod storage;

pub use config::{GatewayConfig, RootCredentials, StorageNodeConfig};
pub use errors::GatewayError;
pub use server::{GatewayHandle, run_gateway, start_gateway};
