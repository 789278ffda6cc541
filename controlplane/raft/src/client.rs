//! `MetaClient`: the gateway's and workers' handle on the metadata groups.
//!
//! The client's logic (routing, leader discovery, retries, list merging) is independent of the
//! runtime: its requests go through a [`MetaTransport`], which sends one framed request and waits
//! for its answer, and pauses between retries. [`TokioTransport`] (the default) runs on tokio;
//! the gateway runs its own on each monoio executor, so a request needs no thread hop there.
//!
//! # Model
//!
//! The client knows the meta nodes' addresses (and zones) and the partition count P. It routes an
//! object command or query by the consistent-hash ring over `bucket/key` ([`crate::ring`]) to a
//! partition group, bucket and access-key commands to the bucket-service group and storage-node
//! commands to the node-registry group, and computes each group's 3 replicas the way the nodes
//! do ([`crate::placement`]), so it dials only those. It remembers each group's leader address; a
//! request goes there (or, when unknown, to the group's next replica in turn), a
//! `ForwardToLeader` answer redirects it at once, and an unavailable group (election in
//! progress, node down, timeout) is retried on the next replica after a capped exponential
//! backoff with jitter, until the operation's deadline.
//!
//! Before its first request the client checks its configuration against the layout the
//! partition-map group recorded at bootstrap ([`MetaClient::verify_layout`]) and refuses to run
//! with another partition count, other nodes or other zones.
//!
//! [`MetaClient::write_many`] sends many commands as one ClientWriteBatch per group (bulk loads,
//! multi-object deletes): one request carries them all, and the leader's group commit
//! ([`crate::proposer`]) proposes them as one log entry (a `Command::Batch`, several past its
//! caps of 256 commands or 4 MiB), so one fsync per replica commits them. Single writes from
//! many concurrent clients share entries the same way.
//!
//! Reads are linearizable: the node serving a `ClientRead` is the leader and runs a read-index
//! check (`Raft::ensure_linearizable`) before answering from its state machine, so a read observes
//! every write acknowledged before the read began (read-after-write, -overwrite, -delete and
//! list-after-write hold).
//!
//! ListObjects fans out to every partition with the same start position and merges the ordered
//! pages (see [`MetaClient::list_objects`]); the continuation token is the meta-state
//! `ListPosition` token, which names a key or common prefix rather than a partition, so it is the
//! same format whether one partition or P answered.
//!
//! # Retries and duplicates
//!
//! A write whose answer was lost (timeout, dropped connection, leader change while the entry was
//! in flight) may or may not have been applied, and the retry may apply it a second time. The
//! meta-state commands the PUT path uses are idempotent by design (PrepareWrite by its idempotency
//! token, CommitWrite reports `retried`); callers of other commands should treat a retried
//! success accordingly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_meta_state::{
    BucketStats, ClusterLayout, Command, ListObjectsPage, ListObjectsRequest, ListPosition,
    ListUploadsPage, ListUploadsRequest, ListVersionsPage, ListVersionsRequest, MAX_LIST_KEYS,
    MetaError, ObjectSummary, Output, Query, Response, Scope, UploadSummary, VersionSummary,
    decode_record, encode_record,
};

use crate::layout::{LayoutComparison, check_layout, cluster_layout};
use crate::network::{CallFailure, ConnectionPool};
use crate::placement::{Placement, effective_zones};
use crate::ring::PartitionRing;
use crate::types::{GroupId, NodeId};
use crate::wire::{Envelope, MessageKind, Status, decode_batch_answers, encode_batch};

/// How a client reaches the cluster and how patiently it retries.
#[derive(Clone, Debug)]
pub struct MetaClientConfig {
    /// Every meta node's RPC address (id → `host:port`); the same map as the nodes' `peers`.
    pub nodes: BTreeMap<NodeId, String>,
    /// Availability zone of each node, as given to the nodes (empty: every node its own zone).
    /// With `nodes` it determines each group's replicas ([`crate::placement`]).
    pub zones: BTreeMap<NodeId, String>,
    /// When set, the client dials only these nodes (placement is still computed from all of
    /// `nodes`): a redirect to a leader outside the set counts as a failed attempt. Tests use it
    /// to talk to one replica cut off from the others and see what it answers. (The one-time
    /// layout check, [`MetaClient::verify_layout`], may use any replica.)
    pub dial_only: Option<BTreeSet<NodeId>>,
    /// P, as configured on the nodes.
    pub partition_count: u32,
    /// Deadline of one attempt (one request to one node).
    pub attempt_timeout_ms: u64,
    /// Deadline of a whole operation across retries.
    pub operation_timeout_ms: u64,
    /// First retry delay; doubles per failed attempt up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// The global bucket service of a multi-region deployment: when set, bucket and access-key
    /// commands and queries (the `BUCKET_SERVICE` group) go to this other cluster (the region
    /// that holds the bucket directory), so bucket names are unique across regions; object
    /// partitions and the node registry stay in this (regional) cluster.
    pub global_bucket_service: Option<Box<MetaClientConfig>>,
    /// This process's cluster identity (`cairn ca issue`): the client dials the replicas with
    /// mutual TLS under it. Processes that also reach storage nodes (workers, heartbeats, the
    /// gateway) dial them with the same identity. `None`: plaintext, only against replicas
    /// started without TLS.
    pub identity: Option<std::sync::Arc<cairn_tls::Identity>>,
}

impl MetaClientConfig {
    pub fn new(nodes: BTreeMap<NodeId, String>, partition_count: u32) -> Self {
        MetaClientConfig {
            nodes,
            zones: BTreeMap::new(),
            dial_only: None,
            partition_count,
            attempt_timeout_ms: 2_000,
            operation_timeout_ms: 15_000,
            backoff_initial_ms: 20,
            backoff_max_ms: 500,
            global_bucket_service: None,
            identity: None,
        }
    }
}

/// Why an operation failed without an answer from the state machine.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{group} unavailable after {attempts} attempts: {last_error}")]
    Unavailable {
        group: GroupId,
        attempts: u32,
        last_error: String,
    },
    #[error("cannot route {0}: it names no bucket/key; use the *_to / *_from variant")]
    Unroutable(&'static str),
    #[error("node refused the request: {0}")]
    Rejected(String),
    #[error("undecodable answer: {0}")]
    BadAnswer(String),
    #[error("the meta client's runtime has stopped")]
    RuntimeStopped,
}

/// Largest encoded command the client sends. A log entry must fit in one replication frame with
/// room to spare ([`crate::wire::MAX_FRAME_BYTES`]); metadata commands are far smaller, so a
/// larger one is a caller bug, refused before it reaches the log.
pub const MAX_COMMAND_BYTES: usize = 16 << 20;

/// The metadata client. Share it (`Arc`) across tasks; every method takes `&self`.
/// How a [`MetaClient`] reaches the meta nodes: one request/response exchange on the runtime
/// the client runs on, and a pause between retries.
pub trait MetaTransport: Sized {
    /// A transport that dials with `identity`'s mutual TLS (plaintext when `None`).
    fn new(identity: Option<&cairn_tls::Identity>) -> Self;

    /// Sends `request` to `address` and waits at most `deadline` for its answer
    /// ([`CallFailure::Timeout`] past it).
    fn call(
        &self,
        address: &str,
        request: Envelope,
        deadline: Duration,
    ) -> impl Future<Output = Result<Envelope, CallFailure>>;

    /// Waits `duration`.
    fn sleep(duration: Duration) -> impl Future<Output = ()>;
}

/// [`MetaTransport`] on tokio: a pool of connections shared by every task of the client.
pub struct TokioTransport {
    pool: ConnectionPool,
}

impl MetaTransport for TokioTransport {
    fn new(identity: Option<&cairn_tls::Identity>) -> Self {
        TokioTransport {
            pool: ConnectionPool::new(identity),
        }
    }

    async fn call(
        &self,
        address: &str,
        request: Envelope,
        deadline: Duration,
    ) -> Result<Envelope, CallFailure> {
        tokio::time::timeout(deadline, self.pool.call(address, request))
            .await
            .unwrap_or(Err(CallFailure::Timeout))
    }

    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

pub struct MetaClient<T: MetaTransport = TokioTransport> {
    config: MetaClientConfig,
    ring: PartitionRing,
    placement: Placement,
    /// The layout this client's configuration implies, checked once against the recorded one.
    layout: ClusterLayout,
    layout_check: Mutex<LayoutCheck>,
    /// Last known leader address per group.
    leaders: Mutex<HashMap<GroupId, String>>,
    transport: T,
    /// The client of the global bucket service ([`MetaClientConfig::global_bucket_service`]).
    global: Option<Box<MetaClient<T>>>,
}

/// Whether the client's configuration was found to match the cluster's recorded layout.
#[derive(Clone, Debug)]
enum LayoutCheck {
    Unchecked,
    Verified,
    Refused(String),
}

/// Which nodes a request may go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialing {
    /// The group's replicas, restricted to [`MetaClientConfig::dial_only`] when set.
    AsConfigured,
    /// Any replica of the group: the layout check is about the cluster, not about the nodes
    /// this client's requests are meant for.
    AnyReplica,
}

/// One attempt's outcome.
enum Attempt {
    Answer(Vec<u8>),
    Redirect(String),
    Retry(String),
    Rejected(String),
}

impl MetaClient {
    /// A client on tokio.
    pub fn new(config: MetaClientConfig) -> MetaClient {
        MetaClient::with_transport(config)
    }
}

impl<T: MetaTransport> MetaClient<T> {
    /// A client whose requests go through a `T`.
    pub fn with_transport(config: MetaClientConfig) -> MetaClient<T> {
        let ring = PartitionRing::new(config.partition_count);
        let placement = Placement::compute(
            effective_zones(config.nodes.keys().copied(), &config.zones),
            config.partition_count,
        );
        let layout = cluster_layout(&placement, config.partition_count);
        let global = config
            .global_bucket_service
            .as_ref()
            .map(|global| Box::new(MetaClient::with_transport((**global).clone())));
        let transport = T::new(config.identity.as_deref());
        MetaClient {
            global,
            config,
            ring,
            placement,
            layout,
            layout_check: Mutex::new(LayoutCheck::Unchecked),
            leaders: Mutex::new(HashMap::new()),
            transport,
        }
    }

    /// The global bucket service's client when `group` is the bucket service and this client
    /// belongs to a region that does not hold the bucket directory itself.
    fn global_for(&self, group: GroupId) -> Option<&MetaClient<T>> {
        self.global
            .as_deref()
            .filter(|_| group == GroupId::BUCKET_SERVICE)
    }

    /// Where every group lives, as this client computed it from its configuration.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// The addresses this client dials for `group`: the group's replicas (restricted to
    /// [`MetaClientConfig::dial_only`] when `restricted` and set).
    fn replica_addresses(&self, group: GroupId, restricted: bool) -> Vec<String> {
        let dial_only = self.config.dial_only.as_ref().filter(|_| restricted);
        self.placement
            .replicas(group)
            .iter()
            .filter(|node_id| dial_only.is_none_or(|allowed| allowed.contains(node_id)))
            .filter_map(|node_id| self.config.nodes.get(node_id).cloned())
            .collect()
    }

    /// The partition group owning `bucket/key`.
    pub fn partition_of(&self, bucket: &str, key: &str) -> GroupId {
        GroupId::partition(self.ring.partition_of(bucket, key))
    }

    /// Every object-partition group.
    pub fn partitions(&self) -> Vec<GroupId> {
        (0..self.config.partition_count)
            .map(GroupId::partition)
            .collect()
    }

    /// The group a command goes to, or `None` when it names no single bucket/key
    /// (`PurgeGarbage`: send it with [`MetaClient::write_to`] to the partition that listed the
    /// garbage).
    pub fn group_for_command(&self, command: &Command) -> Option<GroupId> {
        let (bucket, key) = match command {
            Command::PrepareWrite(c) => (&c.bucket, &c.key),
            Command::CommitWrite(c) => (&c.bucket, &c.key),
            Command::AbortWrite(c) => (&c.bucket, &c.key),
            Command::DeleteObject(c) => (&c.bucket, &c.key),
            Command::ReplicaDeleteMarker { delete, .. } => (&delete.bucket, &delete.key),
            Command::UpdateShardMap(c) => (&c.bucket, &c.key),
            Command::CreateMultipartUpload(c) => (&c.bucket, &c.key),
            Command::UploadPart(c) => (&c.bucket, &c.key),
            Command::CompleteMultipartUpload(c) => (&c.bucket, &c.key),
            Command::AbortMultipartUpload(c) => (&c.bucket, &c.key),
            Command::PutObjectAttribute { bucket, key, .. } => (bucket, key),
            Command::RewrapObjectEncryption { bucket, key, .. } => (bucket, key),
            Command::RewrapUploadEncryption { bucket, key, .. } => (bucket, key),
            Command::ReportSuspect { bucket, key, .. } => (bucket, key),
            Command::PurgeGarbage { .. }
            | Command::ResolveSuspects { .. }
            | Command::ResolveReplication { .. } => return None,
            // Built by a group's leader from queued writes; nodes refuse one from a client.
            Command::Batch(_) => return None,
            Command::Read(query) => return self.group_for_query(query),
            // A condition is checked where its command applies.
            Command::Conditional { command, .. } => return self.group_for_command(command),
            Command::BypassGovernanceRetention { command }
            | Command::QueueReplication { command, .. } => {
                return self.group_for_command(command);
            }
            other => {
                return Some(match other.scope() {
                    Scope::Node => GroupId::NODE_REGISTRY,
                    Scope::Layout => GroupId::PARTITION_MAP,
                    Scope::Bucket | Scope::Object => {
                        debug_assert_eq!(other.scope(), Scope::Bucket);
                        GroupId::BUCKET_SERVICE
                    }
                });
            }
        };
        Some(self.partition_of(bucket, key))
    }

    /// The group a query goes to, or `None` when it spans partitions (ListObjects: use
    /// [`MetaClient::list_objects`]; ListVersions, ListUploads, the janitor's and garbage queries
    /// and BucketUsage: ask each of [`MetaClient::partitions`] with [`MetaClient::read_from`]).
    pub fn group_for_query(&self, query: &Query) -> Option<GroupId> {
        match query {
            Query::GetObject { bucket, key, .. } | Query::GetUpload { bucket, key, .. } => {
                Some(self.partition_of(bucket, key))
            }
            Query::ListParts(request) => Some(self.partition_of(&request.bucket, &request.key)),
            Query::ListObjects(_)
            | Query::ListVersions(_)
            | Query::ListUploads(_)
            | Query::ListStalePreparing { .. }
            | Query::ListGarbage { .. }
            | Query::ListSuspects { .. }
            | Query::ListReplicationQueue { .. }
            | Query::BucketUsage { .. }
            | Query::BucketStats { .. } => None,
            Query::GetBucket { .. }
            | Query::ListBuckets { .. }
            | Query::GetAccessKey { .. }
            | Query::ListAccessKeys { .. }
            | Query::Kms(_) => Some(GroupId::BUCKET_SERVICE),
            Query::GetNode { .. } | Query::ListNodes => Some(GroupId::NODE_REGISTRY),
            Query::GetLayout => Some(GroupId::PARTITION_MAP),
        }
    }

    /// Applies `command` through the Raft log of the group it belongs to.
    pub async fn write(&self, command: Command) -> Result<Output, ClientError> {
        let group = self
            .group_for_command(&command)
            .ok_or(ClientError::Unroutable(command.name()))?;
        self.write_to(group, command).await
    }

    /// Checks, once per client, that this client's configuration (partition count, meta nodes,
    /// zones) matches the layout the partition-map group recorded at bootstrap; every request
    /// to another group runs it first. A mismatch is final: this and every later request fail
    /// with [`ClientError::Rejected`] naming the differences, since a client with another
    /// layout would send keys to the wrong partitions. While no layout is recorded yet (the
    /// cluster is bootstrapping) it retries until the operation deadline.
    pub async fn verify_layout(&self) -> Result<(), ClientError> {
        let state = self
            .layout_check
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        match state {
            LayoutCheck::Verified => return Ok(()),
            LayoutCheck::Refused(message) => return Err(ClientError::Rejected(message)),
            LayoutCheck::Unchecked => {}
        }
        let started = Instant::now();
        let operation_deadline = Duration::from_millis(self.config.operation_timeout_ms);
        let recorded = loop {
            match self
                .read_unverified(
                    GroupId::PARTITION_MAP,
                    Query::GetLayout,
                    Dialing::AnyReplica,
                )
                .await?
            {
                Ok(Response::Layout(Some(recorded))) => break recorded,
                Ok(Response::Layout(None)) if started.elapsed() < operation_deadline => {
                    T::sleep(Duration::from_millis(100)).await;
                }
                Ok(Response::Layout(None)) => {
                    return Err(ClientError::Unavailable {
                        group: GroupId::PARTITION_MAP,
                        attempts: 1,
                        last_error: "no cluster layout recorded yet".to_owned(),
                    });
                }
                other => {
                    return Err(ClientError::BadAnswer(format!(
                        "GetLayout answered {other:?}"
                    )));
                }
            }
        };
        let outcome = check_layout(&self.layout, &recorded, LayoutComparison::Full);
        let mut state = self
            .layout_check
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match outcome {
            Ok(()) => {
                *state = LayoutCheck::Verified;
                Ok(())
            }
            Err(message) => {
                tracing::error!(%message, "meta client refused by the cluster layout");
                *state = LayoutCheck::Refused(message.clone());
                Err(ClientError::Rejected(message))
            }
        }
    }

    /// Applies `command` through the Raft log of `group`.
    pub async fn write_to(&self, group: GroupId, command: Command) -> Result<Output, ClientError> {
        if let Some(global) = self.global_for(group) {
            return Box::pin(global.write_to(group, command)).await;
        }
        if group != GroupId::PARTITION_MAP {
            self.verify_layout().await?;
        }
        let answer = self
            .call_group(
                group,
                MessageKind::ClientWrite,
                encode_record(&command),
                Dialing::AsConfigured,
            )
            .await?;
        decode_record::<Output>(&answer).map_err(|error| ClientError::BadAnswer(error.to_string()))
    }

    /// Applies `commands` through the Raft log of `group`, in the order given, in one request
    /// (see the module header for what that saves); the leader's group commit puts them in one
    /// log entry when they fit its caps ([`crate::proposer`]).
    /// Returns each command's output, or why it was not applied (then it may or may not have
    /// been: treat it like a failed [`MetaClient::write_to`]). Keep a batch to a few thousand
    /// small commands: the whole request must stay under [`MAX_COMMAND_BYTES`].
    pub async fn write_batch_to(
        &self,
        group: GroupId,
        commands: &[Command],
    ) -> Result<Vec<Result<Output, ClientError>>, ClientError> {
        if let Some(global) = self.global_for(group) {
            return Box::pin(global.write_batch_to(group, commands)).await;
        }
        if group != GroupId::PARTITION_MAP {
            self.verify_layout().await?;
        }
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let encoded: Vec<Vec<u8>> = commands.iter().map(encode_record).collect();
        let payload = encode_batch(encoded.iter().map(Vec::as_slice));
        let answer = self
            .call_group(
                group,
                MessageKind::ClientWriteBatch,
                payload,
                Dialing::AsConfigured,
            )
            .await?;
        let answers = decode_batch_answers(&answer)
            .map_err(|error| ClientError::BadAnswer(error.to_string()))?;
        if answers.len() != commands.len() {
            return Err(ClientError::BadAnswer(format!(
                "{} answers to {} commands",
                answers.len(),
                commands.len()
            )));
        }
        Ok(answers
            .into_iter()
            .map(|answer| match answer {
                Ok(bytes) => decode_record::<Output>(&bytes)
                    .map_err(|error| ClientError::BadAnswer(error.to_string())),
                Err(message) => Err(ClientError::Unavailable {
                    group,
                    attempts: 1,
                    last_error: message,
                }),
            })
            .collect())
    }

    /// Applies `commands` (each routed like [`MetaClient::write`]) with one
    /// [`MetaClient::write_batch_to`] per group, all groups at once; the answers come back in the
    /// order of `commands`. Commands for one group keep their relative order; a group that
    /// cannot be reached fails its own commands only.
    pub async fn write_many(
        &self,
        commands: Vec<Command>,
    ) -> Result<Vec<Result<Output, ClientError>>, ClientError> {
        let mut by_group: BTreeMap<GroupId, (Vec<usize>, Vec<Command>)> = BTreeMap::new();
        for (position, command) in commands.into_iter().enumerate() {
            let group = self
                .group_for_command(&command)
                .ok_or(ClientError::Unroutable(command.name()))?;
            let (positions, group_commands) = by_group.entry(group).or_default();
            positions.push(position);
            group_commands.push(command);
        }
        let total: usize = by_group
            .values()
            .map(|(positions, _)| positions.len())
            .sum();
        let batches = by_group
            .iter()
            .map(|(&group, (_, group_commands))| self.write_batch_to(group, group_commands));
        let answers = futures::future::join_all(batches).await;
        let mut ordered: Vec<Option<Result<Output, ClientError>>> =
            (0..total).map(|_| None).collect();
        for ((group, (positions, _)), answers) in by_group.into_iter().zip(answers) {
            match answers {
                Ok(answers) => {
                    for (position, answer) in positions.into_iter().zip(answers) {
                        ordered[position] = Some(answer);
                    }
                }
                // One group's failure fails its own commands only.
                Err(error) => {
                    let last_error = error.to_string();
                    for position in positions {
                        ordered[position] = Some(Err(ClientError::Unavailable {
                            group,
                            attempts: 0,
                            last_error: last_error.clone(),
                        }));
                    }
                }
            }
        }
        Ok(ordered
            .into_iter()
            .map(|answer| answer.expect("every position answered"))
            .collect())
    }

    /// Linearizable read of `query` from the group it belongs to.
    pub async fn read(&self, query: Query) -> Result<Result<Response, MetaError>, ClientError> {
        let group = self
            .group_for_query(&query)
            .ok_or(ClientError::Unroutable(query.name()))?;
        self.read_from(group, query).await
    }

    /// Linearizable read of `query` from `group`.
    pub async fn read_from(
        &self,
        group: GroupId,
        query: Query,
    ) -> Result<Result<Response, MetaError>, ClientError> {
        if let Some(global) = self.global_for(group) {
            return Box::pin(global.read_from(group, query)).await;
        }
        if group != GroupId::PARTITION_MAP {
            self.verify_layout().await?;
        }
        self.read_unverified(group, query, Dialing::AsConfigured)
            .await
    }

    async fn read_unverified(
        &self,
        group: GroupId,
        query: Query,
        dialing: Dialing,
    ) -> Result<Result<Response, MetaError>, ClientError> {
        let payload = encode_record(&Command::Read(query));
        let answer = self
            .call_group(group, MessageKind::ClientRead, payload, dialing)
            .await?;
        let output = decode_record::<Output>(&answer)
            .map_err(|error| ClientError::BadAnswer(error.to_string()))?;
        Ok(output.result)
    }

    /// ListObjectsV2 over every partition, merged into S3 order (see [`ListObjectsMerge`]).
    ///
    /// Each partition is first asked for a share of the page (a quarter more than an even
    /// share), not for a whole page: with keys spread by hash, a whole page from each of P
    /// partitions read, encoded and sent P times what the page holds. A second round asks
    /// the partitions that have more only when the first could not decide the page.
    pub async fn list_objects(
        &self,
        request: ListObjectsRequest,
    ) -> Result<Result<ListObjectsPage, MetaError>, ClientError> {
        if let Some(token) = &request.continuation_token
            && let Err(error) = ListPosition::from_token(token)
        {
            return Ok(Err(error));
        }
        self.merge_in_rounds(ListObjectsMerge::new(request, self.partitions().len()))
            .await
    }

    /// Runs a [`PagedMerge`] to its page: each round's requests go to their partitions at once.
    async fn merge_in_rounds<L: PartitionListing>(
        &self,
        mut merge: PagedMerge<L>,
    ) -> Result<Result<L::Page, MetaError>, ClientError> {
        let partitions = self.partitions();
        loop {
            let requests = merge.requests();
            if requests.is_empty() {
                return Ok(Ok(merge.finish()));
            }
            let reads = requests.into_iter().map(|(index, request)| {
                let read = self.read_from(partitions[index], L::query(request));
                async move { (index, read.await) }
            });
            for (index, answer) in futures::future::join_all(reads).await {
                match answer? {
                    Ok(response) => match L::page_in(response) {
                        Ok(page) => merge.add(index, page),
                        Err(other) => {
                            return Err(ClientError::BadAnswer(format!(
                                "{} answered {other:?}",
                                L::NAME
                            )));
                        }
                    },
                    Err(error) => return Ok(Err(error)),
                }
            }
        }
    }

    /// ListObjectVersions over every partition, merged into S3 order (keys ascending, each
    /// key's versions newest first; a key's versions all live in one partition), in rounds as
    /// [`MetaClient::list_objects`]; the markers name the last entry returned.
    pub async fn list_versions(
        &self,
        request: ListVersionsRequest,
    ) -> Result<Result<ListVersionsPage, MetaError>, ClientError> {
        self.merge_in_rounds(ListVersionsMerge::new(request, self.partitions().len()))
            .await
    }

    /// ListMultipartUploads over every partition, merged in (key, upload id) order.
    pub async fn list_uploads(
        &self,
        request: ListUploadsRequest,
    ) -> Result<Result<ListUploadsPage, MetaError>, ClientError> {
        let max_uploads = request.max_uploads.min(MAX_LIST_KEYS);
        let query = || {
            Query::ListUploads(ListUploadsRequest {
                max_uploads,
                ..request.clone()
            })
        };
        let pages = self
            .ask_every_partition("ListUploads", query, |response| match response {
                Response::UploadList(page) => Ok(page),
                other => Err(Box::new(other)),
            })
            .await?;
        Ok(pages.map(|pages| merge_upload_pages(pages, max_uploads)))
    }

    /// Whether any partition holds versions or uploads of `bucket` (ask before DeleteBucket).
    pub async fn bucket_usage(
        &self,
        bucket: &str,
    ) -> Result<Result<(bool, bool), MetaError>, ClientError> {
        let query = || Query::BucketUsage {
            bucket: bucket.to_owned(),
        };
        let usages = self
            .ask_every_partition("BucketUsage", query, |response| match response {
                Response::BucketUsage {
                    has_versions,
                    has_uploads,
                } => Ok((has_versions, has_uploads)),
                other => Err(Box::new(other)),
            })
            .await?;
        Ok(usages.map(|usages| {
            usages
                .into_iter()
                .fold((false, false), |(versions, uploads), usage| {
                    (versions || usage.0, uploads || usage.1)
                })
        }))
    }

    /// What every partition stores of `bucket`, summed (exact as of each partition's read: every
    /// command a partition applied before its read-index is counted). Quotas compare this with
    /// their limits.
    pub async fn bucket_stats(
        &self,
        bucket: &str,
    ) -> Result<Result<BucketStats, MetaError>, ClientError> {
        let query = || Query::BucketStats {
            bucket: bucket.to_owned(),
        };
        let answers = self
            .ask_every_partition("BucketStats", query, |response| match response {
                Response::BucketStats(stats) => Ok(stats),
                other => Err(Box::new(other)),
            })
            .await?;
        Ok(answers.map(|answers| {
            answers
                .iter()
                .fold(BucketStats::default(), |sum, stats| sum.plus(stats))
        }))
    }

    /// Sends `query()` to every partition at once and extracts each answer with `extract`
    /// (which hands back a response of the wrong kind). A state-machine refusal from any
    /// partition is the result; a wrong kind of answer is a [`ClientError::BadAnswer`].
    async fn ask_every_partition<A>(
        &self,
        name: &str,
        query: impl Fn() -> Query,
        extract: impl Fn(Response) -> Result<A, Box<Response>>,
    ) -> Result<Result<Vec<A>, MetaError>, ClientError> {
        let reads = self
            .partitions()
            .into_iter()
            .map(|group| self.read_from(group, query()));
        let mut answers = Vec::new();
        for answer in futures::future::join_all(reads).await {
            match answer? {
                Ok(response) => match extract(response) {
                    Ok(value) => answers.push(value),
                    Err(other) => {
                        return Err(ClientError::BadAnswer(format!("{name} answered {other:?}")));
                    }
                },
                Err(error) => return Ok(Err(error)),
            }
        }
        Ok(Ok(answers))
    }

    // -----------------------------------------------------------------------------------------

    fn known_leader(&self, group: GroupId) -> Option<String> {
        self.leaders
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&group)
            .cloned()
    }

    fn set_leader(&self, group: GroupId, address: Option<String>) {
        let mut leaders = self
            .leaders
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match address {
            Some(address) => leaders.insert(group, address),
            None => leaders.remove(&group),
        };
    }

    async fn attempt(&self, address: &str, request: Envelope) -> Attempt {
        let deadline = Duration::from_millis(self.config.attempt_timeout_ms);
        let response = match self.transport.call(address, request, deadline).await {
            Err(CallFailure::Timeout) => {
                return Attempt::Retry(format!("{address}: no answer in {deadline:?}"));
            }
            Err(CallFailure::Unreachable(error)) => {
                return Attempt::Retry(format!("connect {address}: {error}"));
            }
            Err(CallFailure::Network(error)) => {
                return Attempt::Retry(format!("call {address}: {error}"));
            }
            Ok(response) => response,
        };
        match response.status {
            Status::Ok => Attempt::Answer(response.payload),
            // The leader's address as this client knows it wins over the one the node reports:
            // nodes may reach each other by other addresses (another network, a proxy) than
            // clients do.
            Status::ForwardToLeader
                if let Some(address) = self.config.nodes.get(&response.leader_id) =>
            {
                Attempt::Redirect(address.clone())
            }
            Status::ForwardToLeader if !response.leader_address.is_empty() => {
                Attempt::Redirect(response.leader_address)
            }
            Status::ForwardToLeader => Attempt::Retry(format!("{address}: no leader known")),
            Status::BadRequest => Attempt::Rejected(response.error_message),
            Status::UnknownGroup | Status::Unavailable | Status::ApiError => {
                Attempt::Retry(format!(
                    "{address}: {:?} {}",
                    response.status, response.error_message
                ))
            }
        }
    }

    /// Sends one request to `group`'s leader, following redirects and retrying with backoff.
    async fn call_group(
        &self,
        group: GroupId,
        kind: MessageKind,
        payload: Vec<u8>,
        dialing: Dialing,
    ) -> Result<Vec<u8>, ClientError> {
        let restricted = dialing == Dialing::AsConfigured && self.config.dial_only.is_some();
        if payload.len() > MAX_COMMAND_BYTES {
            return Err(ClientError::Rejected(format!(
                "command of {} bytes exceeds the {MAX_COMMAND_BYTES}-byte limit",
                payload.len()
            )));
        }
        let started = Instant::now();
        let operation_deadline = Duration::from_millis(self.config.operation_timeout_ms);
        let mut backoff = Duration::from_millis(self.config.backoff_initial_ms);
        let backoff_max = Duration::from_millis(self.config.backoff_max_ms);
        let addresses = self.replica_addresses(group, restricted);
        let mut next_node = (group.0 as usize) % addresses.len().max(1);
        // A remembered leader may have joined after the placement was computed (membership
        // changes move groups); it is dialed unless the client is restricted to some nodes.
        let mut target = self
            .known_leader(group)
            .filter(|address| !restricted || addresses.contains(address));
        let mut attempts = 0u32;
        let mut redirects_in_a_row = 0usize;
        loop {
            let address = match target.take() {
                Some(address) => address,
                None => {
                    let Some(address) = addresses.get(next_node).cloned() else {
                        return Err(ClientError::Unavailable {
                            group,
                            attempts,
                            last_error: "no replica of the group to dial".to_owned(),
                        });
                    };
                    next_node = (next_node + 1) % addresses.len();
                    address
                }
            };
            attempts += 1;
            let request = Envelope::request(group, kind, payload.clone());
            let last_error = match self.attempt(&address, request).await {
                Attempt::Answer(answer) => {
                    self.set_leader(group, Some(address));
                    return Ok(answer);
                }
                Attempt::Rejected(message) => return Err(ClientError::Rejected(message)),
                Attempt::Redirect(leader_address)
                    if restricted && !addresses.contains(&leader_address) =>
                {
                    redirects_in_a_row = 0;
                    format!("{address}: leader {leader_address} is not a node this client dials")
                }
                Attempt::Redirect(leader_address) => {
                    redirects_in_a_row += 1;
                    self.set_leader(group, Some(leader_address.clone()));
                    // Follow a redirect at once, unless nodes keep pointing at each other (stale
                    // views during an election): then back off like any other failure.
                    if redirects_in_a_row <= addresses.len() {
                        target = Some(leader_address);
                        continue;
                    }
                    target = Some(leader_address);
                    format!("redirect loop for {group}")
                }
                Attempt::Retry(error) => {
                    redirects_in_a_row = 0;
                    self.set_leader(group, None);
                    error
                }
            };
            if started.elapsed() + backoff > operation_deadline {
                return Err(ClientError::Unavailable {
                    group,
                    attempts,
                    last_error,
                });
            }
            tracing::debug!(%group, attempts, %last_error, ?backoff, "meta request retry");
            T::sleep(with_jitter(backoff)).await;
            backoff = (backoff * 2).min(backoff_max);
        }
    }
}

/// `delay` scaled by a factor in [0.5, 1.0), so clients that failed together do not retry in
/// lockstep. The sub-second clock is random enough for spreading retries.
fn with_jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    let factor = 0.5 + f64::from(nanos % 1000) / 2000.0;
    delay.mul_f64(factor)
}

/// Merges the pages P partitions returned for the same ListObjectsV2 request (each asked for
/// `max_keys` entries from the same position) into the page one partition holding every key
/// would have returned: the first `max_keys` of the union, truncated when entries were left
/// over or a partition had more. Exact, because a partition that returned a full, truncated
/// page has at least `max_keys` entries at or before its last one.
pub fn merge_list_pages(pages: Vec<ListObjectsPage>, max_keys: u32) -> ListObjectsPage {
    merge_whole_pages::<ObjectListing>(pages, max_keys)
}

/// Merges the ListObjectVersions pages of P partitions (same request, `max_keys` each) into the
/// page one partition holding every key would have returned (as [`merge_list_pages`]).
pub fn merge_version_pages(pages: Vec<ListVersionsPage>, max_keys: u32) -> ListVersionsPage {
    merge_whole_pages::<VersionListing>(pages, max_keys)
}

fn merge_whole_pages<L: PartitionListing>(pages: Vec<L::Page>, max_keys: u32) -> L::Page {
    let mut entries = Vec::new();
    let mut any_partition_truncated = false;
    for page in pages {
        any_partition_truncated |= L::is_truncated(&page);
        L::push_entries(&mut entries, page);
    }
    sort_entries::<L>(&mut entries);
    L::page_of(entries, any_partition_truncated, max_keys)
}

/// A listing the client merges over partitions: its request, page and entry types, and how to
/// take a page apart and build one.
pub trait PartitionListing {
    type Request: Clone;
    type Page;
    type Entry;
    /// The query's name, for errors.
    const NAME: &'static str;
    fn query(request: Self::Request) -> Query;
    /// The page in a partition's answer, or the unexpected answer.
    fn page_in(response: Response) -> Result<Self::Page, Box<Response>>;
    fn max_keys(request: &Self::Request) -> u32;
    fn with_max_keys(request: &Self::Request, max_keys: u32) -> Self::Request;
    /// `request` resumed after the last entry of `page`, a truncated answer to it.
    fn resumed(request: &Self::Request, page: &Self::Page) -> Self::Request;
    fn is_truncated(page: &Self::Page) -> bool;
    /// The string of the page's last entry (a key, or a common prefix).
    fn last_entry(page: &Self::Page) -> Option<String>;
    /// Appends the page's entries, each with the string it sorts by.
    fn push_entries(entries: &mut Vec<(String, Self::Entry)>, page: Self::Page);
    /// Whether two entries with equal strings are one (a common prefix several partitions
    /// reported), as opposed to two versions of one key.
    fn same(left: &Self::Entry, right: &Self::Entry) -> bool;
    /// The page of the first `max_keys` of sorted, complete `entries`; `more` when some
    /// partition has entries after the ones given.
    fn page_of(entries: Vec<(String, Self::Entry)>, more: bool, max_keys: u32) -> Self::Page;
}

/// Sorts merged entries (stably: a key's versions come from one partition, newest first, and
/// keep that order) and drops a common prefix reported by several partitions.
fn sort_entries<L: PartitionListing>(entries: &mut Vec<(String, L::Entry)>) {
    entries.sort_by(|left, right| left.0.cmp(&right.0));
    entries.dedup_by(|next, previous| next.0 == previous.0 && L::same(&next.1, &previous.1));
}

/// An entry of a ListObjects or ListObjectVersions page.
pub enum ListEntry<T> {
    Item(T),
    Prefix(String),
}

fn push_listed<T>(
    entries: &mut Vec<(String, ListEntry<T>)>,
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    prefixes: Vec<String>,
) {
    entries.extend(
        items
            .into_iter()
            .map(|item| (key(&item), ListEntry::Item(item))),
    );
    entries.extend(
        prefixes
            .into_iter()
            .map(|prefix| (prefix.clone(), ListEntry::Prefix(prefix))),
    );
}

/// The larger of a page's last item key and last common prefix.
fn last_listed(last_key: Option<&String>, last_prefix: Option<&String>) -> Option<String> {
    last_key.max(last_prefix).cloned()
}

/// ListObjectsV2 (see [`PartitionListing`]).
pub enum ObjectListing {}

impl PartitionListing for ObjectListing {
    type Request = ListObjectsRequest;
    type Page = ListObjectsPage;
    type Entry = ListEntry<ObjectSummary>;
    const NAME: &'static str = "ListObjects";

    fn query(request: ListObjectsRequest) -> Query {
        Query::ListObjects(request)
    }

    fn page_in(response: Response) -> Result<ListObjectsPage, Box<Response>> {
        match response {
            Response::ObjectList(page) => Ok(page),
            other => Err(Box::new(other)),
        }
    }

    fn max_keys(request: &ListObjectsRequest) -> u32 {
        request.max_keys
    }

    fn with_max_keys(request: &ListObjectsRequest, max_keys: u32) -> ListObjectsRequest {
        ListObjectsRequest {
            max_keys,
            ..request.clone()
        }
    }

    fn resumed(request: &ListObjectsRequest, page: &ListObjectsPage) -> ListObjectsRequest {
        ListObjectsRequest {
            continuation_token: page.next_continuation_token.clone(),
            start_after: None,
            ..request.clone()
        }
    }

    fn is_truncated(page: &ListObjectsPage) -> bool {
        page.is_truncated
    }

    fn last_entry(page: &ListObjectsPage) -> Option<String> {
        last_listed(
            page.contents.last().map(|object| &object.key),
            page.common_prefixes.last(),
        )
    }

    fn push_entries(entries: &mut Vec<(String, Self::Entry)>, page: ListObjectsPage) {
        push_listed(
            entries,
            page.contents,
            |object| object.key.clone(),
            page.common_prefixes,
        );
    }

    fn same(_: &Self::Entry, _: &Self::Entry) -> bool {
        // A key never equals a common prefix (such a key rolls up into it), so equal strings
        // are the same prefix reported by several partitions.
        true
    }

    fn page_of(entries: Vec<(String, Self::Entry)>, more: bool, max_keys: u32) -> ListObjectsPage {
        let cut = cut_page(entries, more, max_keys);
        let next_continuation_token = cut.resume_after().map(|last| match last {
            ListEntry::Item(object) => ListPosition::AfterKey(object.key.clone()).to_token(),
            ListEntry::Prefix(prefix) => ListPosition::AfterPrefix(prefix).to_token(),
        });
        ListObjectsPage {
            key_count: (cut.items.len() + cut.prefixes.len()) as u32,
            is_truncated: cut.truncated,
            next_continuation_token,
            contents: cut.items,
            common_prefixes: cut.prefixes,
        }
    }
}

/// ListObjectVersions (see [`PartitionListing`]). All versions of a key live in one partition.
pub enum VersionListing {}

impl PartitionListing for VersionListing {
    type Request = ListVersionsRequest;
    type Page = ListVersionsPage;
    type Entry = ListEntry<VersionSummary>;
    const NAME: &'static str = "ListVersions";

    fn query(request: ListVersionsRequest) -> Query {
        Query::ListVersions(request)
    }

    fn page_in(response: Response) -> Result<ListVersionsPage, Box<Response>> {
        match response {
            Response::VersionList(page) => Ok(page),
            other => Err(Box::new(other)),
        }
    }

    fn max_keys(request: &ListVersionsRequest) -> u32 {
        request.max_keys
    }

    fn with_max_keys(request: &ListVersionsRequest, max_keys: u32) -> ListVersionsRequest {
        ListVersionsRequest {
            max_keys,
            ..request.clone()
        }
    }

    fn resumed(request: &ListVersionsRequest, page: &ListVersionsPage) -> ListVersionsRequest {
        ListVersionsRequest {
            key_marker: page.next_key_marker.clone(),
            version_id_marker: page.next_version_id_marker,
            ..request.clone()
        }
    }

    fn is_truncated(page: &ListVersionsPage) -> bool {
        page.is_truncated
    }

    fn last_entry(page: &ListVersionsPage) -> Option<String> {
        last_listed(
            page.versions.last().map(|version| &version.key),
            page.common_prefixes.last(),
        )
    }

    fn push_entries(entries: &mut Vec<(String, Self::Entry)>, page: ListVersionsPage) {
        push_listed(
            entries,
            page.versions,
            |version| version.key.clone(),
            page.common_prefixes,
        );
    }

    fn same(left: &Self::Entry, right: &Self::Entry) -> bool {
        matches!((left, right), (ListEntry::Prefix(_), ListEntry::Prefix(_)))
    }

    fn page_of(entries: Vec<(String, Self::Entry)>, more: bool, max_keys: u32) -> ListVersionsPage {
        let cut = cut_page(entries, more, max_keys);
        let (next_key_marker, next_version_id_marker) = match cut.resume_after() {
            Some(ListEntry::Item(version)) => (Some(version.key.clone()), Some(version.version_id)),
            Some(ListEntry::Prefix(prefix)) => (Some(prefix), None),
            None => (None, None),
        };
        ListVersionsPage {
            versions: cut.items,
            common_prefixes: cut.prefixes,
            is_truncated: cut.truncated,
            next_key_marker,
            next_version_id_marker,
        }
    }
}

/// A merged page cut at `max_keys` (see [`cut_page`]).
struct CutPage<T> {
    items: Vec<T>,
    prefixes: Vec<String>,
    /// Entries were left over, or a partition has more.
    truncated: bool,
    /// The page's last entry is a common prefix (else an item, if any).
    last_is_prefix: bool,
}

impl<T> CutPage<T> {
    /// The entry a truncated page resumes after: its last one.
    fn resume_after(&self) -> Option<ListEntry<&T>> {
        if !self.truncated {
            return None;
        }
        if self.last_is_prefix {
            return self.prefixes.last().cloned().map(ListEntry::Prefix);
        }
        self.items.last().map(ListEntry::Item)
    }
}

/// The first `max_keys` of sorted, complete `entries`, split into items and common prefixes;
/// `more` when some partition has entries after the ones given.
fn cut_page<T>(mut entries: Vec<(String, ListEntry<T>)>, more: bool, max_keys: u32) -> CutPage<T> {
    let left_over = entries.len() > max_keys as usize;
    entries.truncate(max_keys as usize);
    let mut cut = CutPage {
        items: Vec::new(),
        prefixes: Vec::new(),
        truncated: left_over || more,
        last_is_prefix: matches!(entries.last(), Some((_, ListEntry::Prefix(_)))),
    };
    for (_, entry) in entries {
        match entry {
            ListEntry::Item(item) => cut.items.push(item),
            ListEntry::Prefix(prefix) => cut.prefixes.push(prefix),
        }
    }
    cut
}

/// A ListObjectsV2 page over P partitions, decided in rounds (see [`PagedMerge`]).
pub type ListObjectsMerge = PagedMerge<ObjectListing>;

/// A ListObjectVersions page over P partitions, decided in rounds (see [`PagedMerge`]).
pub type ListVersionsMerge = PagedMerge<VersionListing>;

/// A listing page over P partitions, decided in rounds (sans I/O; the client sends
/// [`PagedMerge::requests`] and feeds the answers to [`PagedMerge::add`]).
///
/// Round one asks every partition for `ceil(5 * max_keys / (4 * P)) + 16` entries (at most
/// `max_keys`) from the request's position. After each round, let `bound` be the smallest last
/// entry among the partitions that have more: every entry at or before `bound` is known, from
/// every partition (a key's versions all live in one partition, and that partition's answers
/// are in order). When at least `max_keys` merged entries are at or before it, or no partition
/// has more, the page is decided: the first `max_keys` merged entries, truncated when entries
/// were left over or a partition has more (as [`merge_list_pages`] decides it). Otherwise every
/// partition that has more is asked, from its own last entry, for as many entries as the page
/// still lacks. Without common prefixes seen by several partitions, two rounds always decide:
/// the partition that set `bound` held at most its first share at or before it, so its second
/// answer alone brings the count to `max_keys`. Every round moves each asked partition forward
/// by at least one entry, so the rounds end.
pub struct PagedMerge<L: PartitionListing> {
    request: L::Request,
    max_keys: u32,
    progress: Vec<Progress<L::Request>>,
    entries: Vec<(String, L::Entry)>,
    /// Entries asked of each partition in the first round.
    first_share: u32,
}

/// Where one partition stands in a [`PagedMerge`].
enum Progress<R> {
    /// Not answered yet.
    Waiting,
    /// Listed everything after the request's position.
    Done,
    /// Has more: `resumed` continues after its last entry (page size to be set), whose
    /// string is `last`.
    More { resumed: R, last: String },
}

impl<L: PartitionListing> PagedMerge<L> {
    pub fn new(request: L::Request, partitions: usize) -> PagedMerge<L> {
        let max_keys = L::max_keys(&request).min(MAX_LIST_KEYS);
        PagedMerge {
            request,
            max_keys,
            progress: (0..if max_keys == 0 { 0 } else { partitions })
                .map(|_| Progress::Waiting)
                .collect(),
            entries: Vec::new(),
            first_share: Self::first_share(max_keys, partitions),
        }
    }

    /// The same merge with another first-round share (1 to `max_keys`; tests use small ones to
    /// make the later rounds run).
    pub fn with_first_share(mut self, share: u32) -> PagedMerge<L> {
        self.first_share = share.clamp(1, self.max_keys.max(1));
        self
    }

    /// The entries the first round asks each of `partitions` for.
    pub fn first_share(max_keys: u32, partitions: usize) -> u32 {
        let partitions = partitions.max(1) as u64;
        let share = (5 * u64::from(max_keys)).div_ceil(4 * partitions) + 16;
        share.min(u64::from(max_keys)) as u32
    }

    /// The last entry among the partitions that have more, if any.
    fn bound(&self) -> Option<&str> {
        self.progress
            .iter()
            .filter_map(|progress| match progress {
                Progress::More { last, .. } => Some(last.as_str()),
                Progress::Waiting | Progress::Done => None,
            })
            .min()
    }

    /// Merged entries at or before the bound (all of them when no partition has more).
    fn known(&self) -> usize {
        match self.bound() {
            None => self.entries.len(),
            Some(bound) => self
                .entries
                .partition_point(|(text, _)| text.as_str() <= bound),
        }
    }

    /// What to ask now, by partition index; empty when the page is decided.
    pub fn requests(&mut self) -> Vec<(usize, L::Request)> {
        // Once per round: the answers were appended as they came.
        sort_entries::<L>(&mut self.entries);
        if self
            .progress
            .iter()
            .all(|progress| matches!(progress, Progress::Waiting))
        {
            let request = L::with_max_keys(&self.request, self.first_share);
            return (0..self.progress.len())
                .map(|index| (index, request.clone()))
                .collect();
        }
        let known = self.known();
        if self.bound().is_none() || known >= self.max_keys as usize {
            return Vec::new();
        }
        let lacking = self.max_keys - known as u32;
        self.progress
            .iter()
            .enumerate()
            .filter_map(|(index, progress)| {
                let Progress::More { resumed, .. } = progress else {
                    return None;
                };
                Some((index, L::with_max_keys(resumed, lacking)))
            })
            .collect()
    }

    /// One partition's answer to the request [`PagedMerge::requests`] gave for it.
    pub fn add(&mut self, partition: usize, page: L::Page) {
        self.progress[partition] = match L::last_entry(&page) {
            Some(last) if L::is_truncated(&page) => Progress::More {
                resumed: L::resumed(&self.request, &page),
                last,
            },
            _ => Progress::Done,
        };
        L::push_entries(&mut self.entries, page);
    }

    /// The decided page (call when [`PagedMerge::requests`] is empty; the entries are sorted).
    pub fn finish(self) -> L::Page {
        let more = self.bound().is_some();
        L::page_of(self.entries, more, self.max_keys)
    }
}

/// Merges the ListMultipartUploads pages of P partitions (same request, `max_uploads` each).
pub fn merge_upload_pages(pages: Vec<ListUploadsPage>, max_uploads: u32) -> ListUploadsPage {
    let mut uploads: Vec<UploadSummary> = Vec::new();
    let mut any_partition_truncated = false;
    for page in pages {
        any_partition_truncated |= page.is_truncated;
        uploads.extend(page.uploads);
    }
    uploads.sort_by(|left, right| (&left.key, left.upload_id).cmp(&(&right.key, right.upload_id)));
    let left_over = uploads.len() > max_uploads as usize;
    uploads.truncate(max_uploads as usize);
    let mut page = ListUploadsPage {
        is_truncated: left_over || any_partition_truncated,
        ..ListUploadsPage::default()
    };
    if page.is_truncated
        && let Some(last) = uploads.last()
    {
        page.next_key_marker = Some(last.key.clone());
        page.next_upload_id_marker = Some(last.upload_id);
    }
    page.uploads = uploads;
    page
}

/// A [`MetaClient`] running on its own small tokio runtime, usable from any executor.
///
/// The gateway, the edge and the storage nodes run monoio/glommio, where tokio's I/O cannot
/// run. This handle spawns each operation onto a dedicated tokio runtime (its own threads) and
/// hands back a future that only waits on a oneshot channel, which any executor can poll: two
/// cross-thread wake-ups per call, so the gateway's executors send their requests' calls through
/// clients of their own ([`MetaTransport`]) and keep this handle for the rarer ones. Dropping
/// the handle stops the runtime without waiting for operations in flight.
pub struct DetachedMetaClient {
    client: std::sync::Arc<MetaClient>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl DetachedMetaClient {
    /// Starts the runtime (`worker_threads` threads, at least 1) and the client.
    pub fn start(config: MetaClientConfig, worker_threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .thread_name("cairn-meta-client")
            .enable_all()
            .build()?;
        Ok(DetachedMetaClient {
            client: std::sync::Arc::new(MetaClient::new(config)),
            runtime: Some(runtime),
        })
    }

    /// The client itself, for synchronous helpers such as [`MetaClient::partition_of`].
    pub fn client(&self) -> &MetaClient {
        &self.client
    }

    /// Runs `operation` on the client's runtime; the returned future can be awaited anywhere.
    pub fn run<F, Fut, T>(
        &self,
        operation: F,
    ) -> impl std::future::Future<Output = Result<T, ClientError>> + Send + 'static
    where
        F: FnOnce(std::sync::Arc<MetaClient>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        if let Some(runtime) = &self.runtime {
            let client = std::sync::Arc::clone(&self.client);
            runtime.spawn(async move {
                // The caller may have given up waiting; nothing to do then.
                let _ = sender.send(operation(client).await);
            });
        }
        async move { receiver.await.map_err(|_| ClientError::RuntimeStopped) }
    }

    /// [`MetaClient::write`] from any executor.
    pub fn write(
        &self,
        command: Command,
    ) -> impl std::future::Future<Output = Result<Output, ClientError>> + Send + 'static {
        let result = self.run(move |client| async move { client.write(command).await });
        async move { result.await? }
    }

    /// [`MetaClient::read`] from any executor.
    pub fn read(
        &self,
        query: Query,
    ) -> impl std::future::Future<Output = Result<Result<Response, MetaError>, ClientError>>
    + Send
    + 'static {
        let result = self.run(move |client| async move { client.read(query).await });
        async move { result.await? }
    }

    /// [`MetaClient::list_objects`] from any executor.
    pub fn list_objects(
        &self,
        request: ListObjectsRequest,
    ) -> impl std::future::Future<Output = Result<Result<ListObjectsPage, MetaError>, ClientError>>
    + Send
    + 'static {
        let result = self.run(move |client| async move { client.list_objects(request).await });
        async move { result.await? }
    }
}

impl Drop for DetachedMetaClient {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime blocks until its tasks stop, which is not allowed on an async
            // thread; shutting down in the background is.
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod routing_tests {
    use super::*;
    use cairn_meta_state::VersionSelector;

    #[test]
    fn only_the_bucket_service_goes_to_the_global_cluster() {
        let regional = BTreeMap::from([(1, "127.0.0.1:7401".to_owned())]);
        let global = BTreeMap::from([(1, "127.0.0.1:8401".to_owned())]);
        let mut config = MetaClientConfig::new(regional, 4);
        config.global_bucket_service = Some(Box::new(MetaClientConfig::new(global, 8)));
        let client = MetaClient::new(config);
        let global = client
            .global_for(GroupId::BUCKET_SERVICE)
            .expect("bucket service is global");
        assert_eq!(global.config.nodes[&1], "127.0.0.1:8401");
        assert_eq!(global.config.partition_count, 8);
        for group in [
            GroupId::NODE_REGISTRY,
            GroupId::PARTITION_MAP,
            GroupId::partition(0),
        ] {
            assert!(client.global_for(group).is_none(), "{group}");
        }
        let plain = MetaClient::new(MetaClientConfig::new(
            BTreeMap::from([(1, "127.0.0.1:7401".to_owned())]),
            4,
        ));
        assert!(plain.global_for(GroupId::BUCKET_SERVICE).is_none());
    }

    #[test]
    fn object_commands_go_to_the_key_partition_and_bucket_commands_to_the_bucket_service() {
        let nodes = (1..=3)
            .map(|id| (id as NodeId, format!("127.0.0.1:{}", 7400 + id)))
            .collect();
        let client = MetaClient::new(MetaClientConfig::new(nodes, 8));
        for key in ["a", "b/c", "z"] {
            let attribute = Command::PutObjectAttribute {
                bucket: "photos".to_owned(),
                key: key.to_owned(),
                version: VersionSelector::Current,
                name: "tagging".to_owned(),
                value: None,
            };
            assert_eq!(
                client.group_for_command(&attribute),
                Some(client.partition_of("photos", key))
            );
        }
        let bucket_attribute = Command::PutBucketAttribute {
            bucket: "photos".to_owned(),
            name: "policy".to_owned(),
            value: None,
        };
        assert_eq!(
            client.group_for_command(&bucket_attribute),
            Some(GroupId::BUCKET_SERVICE)
        );
    }
}
