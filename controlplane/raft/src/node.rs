//! `MetaNode`: one `cairn meta` process hosting its share of the metadata Raft groups.
//!
//! # Model
//!
//! A cluster has the bucket-service group ([`GroupId::BUCKET_SERVICE`]: buckets and access keys),
//! the node-registry group ([`GroupId::NODE_REGISTRY`]: storage-node registrations and
//! heartbeats), the partition-map group ([`GroupId::PARTITION_MAP`]: the cluster layout) and P
//! object-partition groups (`GroupId::partition(0..P)`). Each group has 3
//! replicas (every node when the cluster has fewer), chosen by [`crate::placement`] from the peer
//! list and the peers' availability zones, in 3 distinct zones when there are 3; a node runs only
//! the groups placed on it, each an openraft instance with its own LMDB directory
//! `<data_dir>/group-<id>/`. One TCP listener serves every hosted group: each frame names its
//! group, and a frame for a group the node does not host is answered UnknownGroup.
//!
//! Bootstrap: when a group's storage is empty, each of its placed replicas calls `initialize`
//! with the same membership (the group's 3 replicas as voters), which openraft allows; whichever
//! election wins first commits it and the others' calls fail harmlessly. A node that restarts
//! with data keeps its log and vote and never re-initializes. Later membership changes go through
//! [`MetaNode::add_learner`] and [`MetaNode::change_membership`] on the group's leader; a node
//! started to join (`bootstrap: false`) hosts every group, empty, so it can be added to any.
//!
//! Layout check: once started, a node proposes its layout (partition count, ring and placement
//! parameters, peers and zones, group → replicas; see [`crate::layout`]) to the partition-map
//! group, which keeps the first one it commits, and compares the answer with its own. On a
//! mismatch (say `--partitions 3` in a cluster bootstrapped with 8) it logs the differences,
//! stops all Raft traffic, answers client requests with the refusal, and [`run_meta_node`]
//! returns [`NodeError::LayoutMismatch`], so `cairn meta` exits with that message. Clients run
//! the same check before their first request ([`crate::MetaClient::verify_layout`]).
//!
//! Requests the listener serves, per group: openraft's AppendEntries, Vote and InstallSnapshot
//! (chunked), ClientWrite and ClientWriteBatch (meta-state `Command`s through the log, queued on
//! the group's [`crate::proposer`], which commits the writes that arrive while an entry is being
//! flushed together in one entry; a follower answers ForwardToLeader with the leader's id and
//! address) and ClientRead (a `Query` answered from the
//! state machine after a read-index check — `Raft::ensure_linearizable` — on the leader, so a read
//! never returns state older than a write acknowledged before it started; concurrent reads of a
//! group share checks, each answered by a check that began after it arrived, see
//! [`crate::read_index`]).
//!
//! A local cluster of 6 nodes in 3 zones (each group on 3 of them, one per zone):
//!
//! ```text
//! PEERS=1=127.0.0.1:7401@az1,2=127.0.0.1:7402@az2,3=127.0.0.1:7403@az3,4=127.0.0.1:7404@az1,5=127.0.0.1:7405@az2,6=127.0.0.1:7406@az3
//! for n in 1 2 3 4 5 6; do cairn meta --id $n --listen 127.0.0.1:740$n --data /tmp/cairn-meta-$n --peers $PEERS & done
//! ```
//!
//! Read fence after a restart: openraft 0.9 restores a node that was leader when it stopped as
//! leader of the same term at once, without a new no-op entry, and its read index is
//! max(first entry of its term, committed index). The committed index it reloads may be older
//! than what it acknowledged before stopping (the store writes it lazily, see [`crate::store`]),
//! so a read could miss an acknowledged write. Every entry such a leader acknowledged is in its
//! own log, so while a group is still in the term it restarted in, it serves reads only once it
//! has applied its log as it was at startup ([`GroupHandle::read_fence_index`]). After any
//! election (a higher term) the fence no longer applies: the new leader's no-op entry covers
//! everything committed before, and the startup log may hold uncommitted entries that the new
//! leader truncated, which would otherwise hold reads back.
//!
//! # Invariants
//!
//! - A group's Raft instance exists before the listener accepts, so a peer never sees
//!   UnknownGroup from a live replica of that group.
//! - Every node and client computes the same placement from the same peer list and zones.
//! - Reads are served only by a leader that has just confirmed its leadership with a quorum and
//!   applied up to the commit index it saw at that moment.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn_meta_state::{Command, Output, Query, Response, Scope, decode_record, encode_record};
use openraft::error::{CheckIsLeaderError, ClientWriteError, InstallSnapshotError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, SnapshotPolicy};
use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::client::{MetaClient, MetaClientConfig};
use crate::layout::{LayoutComparison, check_layout, cluster_layout};
use crate::network::{ConnectionPool, NetworkFactory, PeerIsolation};
use crate::placement::{Placement, effective_zones};
use crate::proposer::{ProposalError, Proposer};
use crate::read_index::{ReadBarrier, ReadIndexError, ReadIndexStats};
use crate::store::{DEFAULT_MAP_SIZE_BYTES, StateReader, StoreError, open_group_storage};
use crate::types::{GroupId, NodeId, Raft};
use crate::wire::{
    Envelope, MessageKind, Status, WireError, decode_batch, encode_batch_answers, from_payload,
    read_envelope, to_payload, write_envelope,
};

/// Raft timing and log compaction of every group on a node.
#[derive(Clone, Debug)]
pub struct RaftTiming {
    /// Leader → follower heartbeat period.
    pub heartbeat_interval_ms: u64,
    /// A follower that hears no leader for a random time in [min, max] starts an election.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries were applied since the last one.
    pub snapshot_after_log_entries: u64,
    /// Log entries kept behind a snapshot (a follower that lags less catches up from the log).
    pub log_entries_kept_after_snapshot: u64,
    /// Size of one InstallSnapshot chunk.
    pub snapshot_chunk_size_bytes: u64,
    /// How long a node works on one client write or read before answering Unavailable. A leader
    /// cut off from its quorum would otherwise hold the request (and its connection) until it
    /// learns of a newer leader.
    pub client_request_timeout_ms: u64,
    /// Log entries of one group's proposer that may be in openraft at once (see
    /// [`crate::proposer`]): 1 proposes the next batch only once the previous entry is applied;
    /// 2 lets the next batch be appended while the previous one is replicated and applied.
    pub proposals_in_flight: usize,
    /// Concurrent reads of a group share read-index checks (see [`crate::read_index`]). Off,
    /// every read runs its own check, as openraft does; kept for side-by-side measurement.
    pub share_read_index_checks: bool,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_after_log_entries: 10_000,
            log_entries_kept_after_snapshot: 1_000,
            snapshot_chunk_size_bytes: 1 << 20,
            client_request_timeout_ms: 5_000,
            proposals_in_flight: 2,
            share_read_index_checks: true,
        }
    }
}

/// Configuration of one `cairn meta` replica. The CLI maps
/// `cairn meta --id N --listen ADDR --data DIR --peers 1=host:port,2=host:port,3=host:port
/// [--partitions P]` onto it.
#[derive(Clone, Debug)]
pub struct MetaNodeConfig {
    /// This node's Raft id (`--id`); non-zero, unique in the cluster, stable across restarts.
    pub node_id: NodeId,
    /// Where the RPC listener binds (`--listen`), e.g. `127.0.0.1:7401`.
    pub listen_address: SocketAddr,
    /// Root of this node's state (`--data`): one LMDB directory per group.
    pub data_dir: PathBuf,
    /// Every meta node of the cluster, this node included (`--peers`): id → `host:port`, the
    /// address other nodes and clients dial (so not 0.0.0.0). Each group's initial voters are
    /// the 3 of them that [`crate::placement`] chooses.
    pub peers: BTreeMap<NodeId, String>,
    /// Availability zone of each peer (`--peers 1=host:port@az1,...`). Empty: every node is a
    /// zone of its own. Placement puts a group's replicas in distinct zones.
    pub zones: BTreeMap<NodeId, String>,
    /// P, the number of object partitions (`--partitions`, default 8). Fixed for the cluster's
    /// life: the ring maps keys by it.
    pub partition_count: u32,
    pub timing: RaftTiming,
    /// Whether to initialize empty groups with `peers` as voters (`true` for the nodes of a new
    /// cluster). A node joining an existing cluster sets `false` (`cairn meta --join`) and waits
    /// to be added with [`MetaNode::add_learner`] + [`MetaNode::change_membership`] on a leader.
    pub bootstrap: bool,
    /// LMDB map size per group (virtual address space; the file grows with the data).
    pub map_size_bytes: usize,
    /// This replica's cluster identity (a meta-role certificate): the listener then accepts
    /// only mutual-TLS connections from the roles in `cairn_tls::META_CLIENTS`, and the replica
    /// dials its peers with it. `None`: plaintext (tests; `--insecure-plaintext-internal`).
    pub identity: Option<Arc<cairn_tls::Identity>>,
    /// Keep loopback connections encrypted. By default (with an `identity`) a connection whose
    /// both ends are loopback addresses continues in plaintext once mutual TLS has
    /// authenticated it, as storage RPC does (see `cairn_tls`).
    pub encrypt_loopback: bool,
    /// Free bytes under `data_dir` below which client writes are refused
    /// ([`crate::disk::DiskReserve`]).
    pub disk_reserve_bytes: u64,
    /// The region's version tag ([`cairn_meta_state::region_version_tag`] of its name), which
    /// this node's proposers set in the object partitions it leads
    /// ([`cairn_meta_state::Command::SetVersionTag`]): the top byte of the version ids they
    /// create, so that a replica in another region can keep its source's id. 0 (tests): none.
    pub version_tag: u8,
}

impl MetaNodeConfig {
    /// A config with default timing, 8 partitions and the default map size.
    pub fn new(
        node_id: NodeId,
        listen_address: SocketAddr,
        data_dir: PathBuf,
        peers: BTreeMap<NodeId, String>,
    ) -> Self {
        MetaNodeConfig {
            node_id,
            listen_address,
            data_dir,
            peers,
            zones: BTreeMap::new(),
            partition_count: 8,
            timing: RaftTiming::default(),
            bootstrap: true,
            map_size_bytes: DEFAULT_MAP_SIZE_BYTES,
            identity: None,
            encrypt_loopback: false,
            disk_reserve_bytes: crate::disk::DEFAULT_RESERVE_BYTES,
            version_tag: 0,
        }
    }

    /// Sets [`Self::version_tag`] for the region named `region` (its gateways' region).
    pub fn set_region(&mut self, region: &str) {
        self.version_tag = cairn_meta_state::region_version_tag(region);
    }

    /// Where every group of the deployment lives, computed from `peers` and `zones`.
    pub fn placement(&self) -> Placement {
        Placement::compute(
            effective_zones(self.peers.keys().copied(), &self.zones),
            self.partition_count,
        )
    }

    /// The groups this node hosts: those placed on it, or every group for a node that joins an
    /// existing cluster (it may be added to any group with [`MetaNode::add_learner`]).
    pub fn hosted_groups(&self) -> Vec<GroupId> {
        if self.bootstrap {
            self.placement().groups_on(self.node_id)
        } else {
            GroupId::all(self.partition_count)
        }
    }

    fn raft_config(&self) -> Result<Arc<Config>, NodeError> {
        let timing = &self.timing;
        let config = Config {
            cluster_name: "cairn-meta".to_owned(),
            heartbeat_interval: timing.heartbeat_interval_ms,
            election_timeout_min: timing.election_timeout_min_ms,
            election_timeout_max: timing.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(timing.snapshot_after_log_entries),
            max_in_snapshot_log_to_keep: timing.log_entries_kept_after_snapshot,
            snapshot_max_chunk_size: timing.snapshot_chunk_size_bytes,
            // A chunk is written to LMDB only at the end, but the deadline covers one chunk's
            // transfer plus the receiver's work on the last one (decode + fsync).
            install_snapshot_timeout: 2_000,
            ..Config::default()
        };
        config
            .validate()
            .map(Arc::new)
            .map_err(|error| NodeError::Config(error.to_string()))
    }
}

/// Parses the `--peers` syntax `1=127.0.0.1:7401,2=127.0.0.1:7402,3=127.0.0.1:7403` into
/// id → address, ignoring zones (see [`parse_peer_list`]).
pub fn parse_peers(spec: &str) -> Result<BTreeMap<NodeId, String>, NodeError> {
    parse_peer_list(spec).map(|(addresses, _zones)| addresses)
}

/// Parses `--peers`, optionally with an availability zone per node
/// (`1=127.0.0.1:7401@az1,2=127.0.0.1:7402@az2,...`), into (id → address, id → zone). Ids must
/// be non-zero and distinct; addresses are kept as written (host:port). Either every peer names
/// its zone or none does (then every node is its own zone and the zone map is empty): a cluster
/// where some nodes lack a zone is almost certainly a typo, and placement would treat each of
/// them as a zone of its own.
#[allow(clippy::type_complexity)]
pub fn parse_peer_list(
    spec: &str,
) -> Result<(BTreeMap<NodeId, String>, BTreeMap<NodeId, String>), NodeError> {
    let mut peers = BTreeMap::new();
    let mut zones = BTreeMap::new();
    for item in spec
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let Some((id, rest)) = item.split_once('=') else {
            return Err(NodeError::Config(format!(
                "peer {item:?} is not ID=HOST:PORT[@ZONE]"
            )));
        };
        let node_id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| NodeError::Config(format!("peer id {id:?} is not a number")))?;
        let (address, zone) = match rest.split_once('@') {
            Some((address, zone)) => (address.trim(), Some(zone.trim())),
            None => (rest.trim(), None),
        };
        if node_id == 0 || !address.contains(':') {
            return Err(NodeError::Config(format!(
                "peer {item:?}: id must be non-zero and the address HOST:PORT"
            )));
        }
        if peers.insert(node_id, address.to_owned()).is_some() {
            return Err(NodeError::Config(format!(
                "peer id {node_id} appears twice"
            )));
        }
        if let Some(zone) = zone {
            if zone.is_empty() {
                return Err(NodeError::Config(format!("peer {item:?}: empty zone")));
            }
            zones.insert(node_id, zone.to_owned());
        }
    }
    if peers.is_empty() {
        return Err(NodeError::Config("no peers given".to_owned()));
    }
    if !zones.is_empty() && zones.len() != peers.len() {
        return Err(NodeError::Config(
            "either every peer names its zone (ID=HOST:PORT@ZONE) or none does".to_owned(),
        ));
    }
    Ok((peers, zones))
}

/// Errors of a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("storage of {group}: {source}")]
    Store { group: GroupId, source: StoreError },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("this process hosts no group {0}")]
    UnknownGroup(GroupId),
    #[error("not the leader of {group}; leader is {leader:?}")]
    NotLeader {
        group: GroupId,
        leader: Option<NodeId>,
    },
    #[error("raft: {0}")]
    Raft(String),
    #[error("refused by the cluster: {0}")]
    LayoutMismatch(String),
}

/// Where a node stands with the cluster layout check (see [`crate::layout`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutStatus {
    /// Not answered yet (the partition-map group has no leader yet, or is unreachable).
    Pending,
    /// This node's configuration matches the recorded layout.
    Verified,
    /// It does not: the node has cut itself off from its peers and refuses client requests.
    Refused(String),
}

/// One group's replica state as this node sees it (for `cairn meta status` and health checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    pub group: GroupId,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub is_leader: bool,
    pub last_log_index: u64,
    pub last_applied_index: u64,
    /// Last log index covered by this replica's snapshot (0 without one).
    pub snapshot_index: u64,
    /// This process's latest checkpoint of the state machine to LMDB (see [`crate::store`]):
    /// records it wrote, microseconds it held the state lock, microseconds until durable (all 0
    /// before the first one).
    pub checkpoint_records_written: u64,
    pub checkpoint_locked_micros: u64,
    pub checkpoint_micros: u64,
    /// Reads that asked this replica for a read index since it started (a follower's answer is
    /// ForwardToLeader), and the read-index checks they shared (see [`crate::read_index`]):
    /// reads ÷ checks is how many reads a check served.
    pub read_index: ReadIndexStats,
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}

/// A running group replica.
#[derive(Clone)]
pub struct GroupHandle {
    pub raft: Raft,
    pub reader: StateReader,
    /// While the group is in term `read_fence_term`, reads wait until this log index is
    /// applied: the last log index and the vote's term found at startup (see the module header).
    pub read_fence_index: u64,
    pub read_fence_term: u64,
    /// Where client writes go: the group commit queue (see [`crate::proposer`]).
    pub proposer: Proposer,
    /// Where client reads get their read index: checks shared by concurrent reads (see
    /// [`crate::read_index`]).
    pub read_barrier: ReadBarrier,
}

type Groups = Arc<BTreeMap<GroupId, GroupHandle>>;

/// A running metadata replica. Dropping it without [`MetaNode::shutdown`] leaves the tasks running
/// until the runtime stops.
pub struct MetaNode {
    config: MetaNodeConfig,
    local_address: SocketAddr,
    groups: Groups,
    isolation: PeerIsolation,
    listener_task: JoinHandle<()>,
    layout_task: JoinHandle<()>,
    proposer_tasks: Vec<JoinHandle<()>>,
    layout_status: tokio::sync::watch::Receiver<LayoutStatus>,
}

/// Opens a group's storage, waiting briefly if a previous instance in this process is still
/// closing its LMDB environment (heed refuses to open one environment twice).
async fn open_storage_with_retry(
    config: &MetaNodeConfig,
    group: GroupId,
) -> Result<(crate::store::LogStore, crate::store::StateMachineStore), NodeError> {
    let dir = config.data_dir.join(format!("group-{}", group.0));
    let role = group.role(config.partition_count);
    let mut attempts_left = 50;
    loop {
        match open_group_storage(&dir, role, config.map_size_bytes) {
            Err(StoreError::Lmdb(heed::Error::EnvAlreadyOpened)) if attempts_left > 0 => {
                attempts_left -= 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(source) => return Err(NodeError::Store { group, source }),
            Ok(stores) => return Ok(stores),
        }
    }
}

impl MetaNode {
    /// Binds `config.listen_address` and starts the node.
    pub async fn start(config: MetaNodeConfig) -> Result<MetaNode, NodeError> {
        let listener = TcpListener::bind(config.listen_address).await?;
        MetaNode::start_with_listener(config, listener).await
    }

    /// Starts the node on an already bound listener (tests bind port 0 first to learn the port).
    pub async fn start_with_listener(
        config: MetaNodeConfig,
        listener: TcpListener,
    ) -> Result<MetaNode, NodeError> {
        if config.node_id == 0 {
            return Err(NodeError::Config("node id 0 is reserved".to_owned()));
        }
        if !config.peers.contains_key(&config.node_id) {
            return Err(NodeError::Config(format!(
                "peers must include this node ({})",
                config.node_id
            )));
        }
        if config.partition_count == 0 {
            return Err(NodeError::Config(
                "partition_count must be at least 1".to_owned(),
            ));
        }
        if !config.zones.is_empty() && !config.zones.keys().eq(config.peers.keys()) {
            return Err(NodeError::Config(
                "zones must name every peer and no other node".to_owned(),
            ));
        }
        let raft_config = config.raft_config()?;
        let local_address = listener.local_addr()?;

        let pool = Arc::new(ConnectionPool::new(config.identity.as_deref()));
        let tls = match &config.identity {
            Some(identity) => {
                let tls = identity
                    .server_tls(cairn_tls::META_CLIENTS)
                    .map_err(|error| NodeError::Config(error.to_string()))?;
                Some(if config.encrypt_loopback {
                    tls
                } else {
                    tls.with_meta_loopback_plaintext()
                })
            }
            None => None,
        };
        let isolation = PeerIsolation::default();
        let placement = config.placement();
        let peer_addresses = Arc::new(config.peers.clone());
        let mut groups = BTreeMap::new();
        let mut proposer_tasks = Vec::new();
        let client_request_timeout = Duration::from_millis(config.timing.client_request_timeout_ms);
        let disk_reserve = Arc::new(crate::disk::DiskReserve::new(
            config.data_dir.clone(),
            config.disk_reserve_bytes,
        ));
        for group in config.hosted_groups() {
            let (log_store, state_machine) = open_storage_with_retry(&config, group).await?;
            let reader = state_machine.reader();
            let (read_fence_index, read_fence_term) = log_store
                .last_log_index()
                .and_then(|index| Ok((index, log_store.stored_vote_term()?)))
                .map_err(|source| NodeError::Store { group, source })?;
            let network = NetworkFactory {
                local_node_id: config.node_id,
                peer_addresses: Arc::clone(&peer_addresses),
                group,
                pool: Arc::clone(&pool),
                isolation: isolation.clone(),
            };
            let raft = Raft::new(
                config.node_id,
                Arc::clone(&raft_config),
                network,
                log_store,
                state_machine,
            )
            .await
            .map_err(|error| NodeError::Raft(error.to_string()))?;
            // Object partitions get the region's version tag in front of their first entry.
            let version_tag = (config.version_tag != 0
                && group.role(config.partition_count).accepts(Scope::Object))
            .then_some(config.version_tag);
            let (proposer, proposer_task) = Proposer::start(
                raft.clone(),
                client_request_timeout,
                config.timing.proposals_in_flight,
                Some(Arc::clone(&disk_reserve)),
                version_tag,
            );
            proposer_tasks.push(proposer_task);
            let read_barrier = ReadBarrier::new(
                raft.clone(),
                client_request_timeout,
                config.timing.share_read_index_checks,
            );
            groups.insert(
                group,
                GroupHandle {
                    read_barrier,
                    raft,
                    reader,
                    read_fence_index,
                    read_fence_term,
                    proposer,
                },
            );
        }
        let groups: Groups = Arc::new(groups);
        let refusal: Refusal = Arc::new(std::sync::Mutex::new(None));
        let server = Server {
            groups: Arc::clone(&groups),
            isolation: isolation.clone(),
            refusal: Arc::clone(&refusal),
            client_request_timeout,
            tls,
        };
        let listener_task = tokio::spawn(serve(listener, Arc::new(server)));

        for (group, handle) in groups.iter() {
            let initialized = handle
                .raft
                .is_initialized()
                .await
                .map_err(|error| NodeError::Raft(error.to_string()))?;
            if config.bootstrap && !initialized {
                // Each group starts with its own placed replicas as voters.
                let members: BTreeMap<NodeId, BasicNode> = placement
                    .replicas(*group)
                    .iter()
                    .map(|node_id| (*node_id, BasicNode::new(&config.peers[node_id])))
                    .collect();
                // Another node's identical initialization may win first; that is the expected
                // outcome of everyone bootstrapping at once, not a failure.
                if let Err(error) = handle.raft.initialize(members).await {
                    tracing::debug!(%group, %error, "initialize not applied");
                }
            }
        }
        tracing::info!(node_id = config.node_id, %local_address, groups = groups.len(), "meta node started");
        let (status_sender, layout_status) = tokio::sync::watch::channel(LayoutStatus::Pending);
        let layout_task = tokio::spawn(check_cluster_layout(
            config.clone(),
            isolation.clone(),
            refusal,
            status_sender,
        ));
        Ok(MetaNode {
            config,
            local_address,
            groups,
            isolation,
            listener_task,
            layout_task,
            proposer_tasks,
            layout_status,
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    /// Where this node stands with the cluster layout check.
    pub fn layout_status(&self) -> LayoutStatus {
        self.layout_status.borrow().clone()
    }

    /// Waits until the layout check has an answer (verified or refused).
    pub async fn layout_checked(&self) -> LayoutStatus {
        let mut status = self.layout_status.clone();
        match status
            .wait_for(|status| *status != LayoutStatus::Pending)
            .await
        {
            Ok(status) => status.clone(),
            // The check task ended without an answer: the node is shutting down.
            Err(_closed) => LayoutStatus::Pending,
        }
    }

    /// The address the listener is bound to.
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    pub fn config(&self) -> &MetaNodeConfig {
        &self.config
    }

    /// Fault injection for tests: cut this node off from (or reconnect it to) every other
    /// replica. Client requests are still accepted, so a test can check what a cut-off replica
    /// answers.
    pub fn set_isolated_from_peers(&self, isolated: bool) {
        self.isolation.set(isolated);
    }

    /// The Raft instance and state reader of `group`, for tests and admin tools.
    pub fn group(&self, group: GroupId) -> Option<&GroupHandle> {
        self.groups.get(&group)
    }

    /// Every group's replica state, bucket service first.
    pub fn status(&self) -> Vec<GroupStatus> {
        self.groups
            .iter()
            .map(|(&group, handle)| {
                let metrics = handle.raft.metrics().borrow().clone();
                let membership = metrics.membership_config.membership();
                let checkpoint = handle.reader.last_checkpoint().unwrap_or_default();
                GroupStatus {
                    group,
                    leader: metrics.current_leader,
                    term: metrics.current_term,
                    is_leader: metrics.current_leader == Some(self.config.node_id),
                    last_log_index: metrics.last_log_index.unwrap_or(0),
                    last_applied_index: metrics.last_applied.map_or(0, |log_id| log_id.index),
                    snapshot_index: metrics.snapshot.map_or(0, |log_id| log_id.index),
                    checkpoint_records_written: checkpoint.records_written as u64,
                    checkpoint_locked_micros: (checkpoint.locked_seconds * 1e6) as u64,
                    checkpoint_micros: (checkpoint.total_seconds * 1e6) as u64,
                    read_index: handle.read_barrier.stats(),
                    voters: membership.voter_ids().collect(),
                    learners: membership.learner_ids().collect(),
                }
            })
            .collect()
    }

    /// The leader of `group` as this node currently believes.
    pub fn current_leader(&self, group: GroupId) -> Option<NodeId> {
        self.groups
            .get(&group)
            .and_then(|handle| handle.raft.metrics().borrow().current_leader)
    }

    fn handle(&self, group: GroupId) -> Result<&GroupHandle, NodeError> {
        self.groups
            .get(&group)
            .ok_or(NodeError::UnknownGroup(group))
    }

    /// Adds `node_id` at `address` as a learner of `group` and waits until it has caught up
    /// with the log. Must run on the group's leader.
    pub async fn add_learner(
        &self,
        group: GroupId,
        node_id: NodeId,
        address: &str,
    ) -> Result<(), NodeError> {
        let handle = self.handle(group)?;
        handle
            .raft
            .add_learner(node_id, BasicNode::new(address), true)
            .await
            .map(|_| ())
            .map_err(|error| write_error(group, error))
    }

    /// Makes `voters` the voter set of `group` (joint consensus under the hood). Voters not in
    /// the set are removed from the group entirely; new voters must already be learners. Must run
    /// on the group's leader.
    pub async fn change_membership(
        &self,
        group: GroupId,
        voters: BTreeSet<NodeId>,
    ) -> Result<(), NodeError> {
        let handle = self.handle(group)?;
        handle
            .raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters), false)
            .await
            .map(|_| ())
            .map_err(|error| write_error(group, error))
    }

    /// Stops every group and the listener. Storage is closed once openraft's tasks have exited.
    pub async fn shutdown(self) {
        self.layout_task.abort();
        self.listener_task.abort();
        let _ = self.listener_task.await;
        // Proposals still in flight are dropped with their tasks; their waiters were the
        // listener's connections, which are gone.
        for task in &self.proposer_tasks {
            task.abort();
        }
        for task in self.proposer_tasks {
            let _ = task.await;
        }
        for (group, handle) in self.groups.iter() {
            if let Err(error) = handle.raft.shutdown().await {
                tracing::warn!(%group, %error, "raft shutdown");
            }
        }
    }
}

fn write_error(
    group: GroupId,
    error: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
) -> NodeError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => NodeError::NotLeader {
            group,
            leader: forward.leader_id,
        },
        other => NodeError::Raft(other.to_string()),
    }
}

/// Runs a replica until SIGINT or SIGTERM, then shuts it down. This is what `cairn meta` calls
/// (from a multi-threaded tokio runtime).
pub async fn run_meta_node(config: MetaNodeConfig) -> Result<(), NodeError> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let node = MetaNode::start(config).await?;
    let mut refused = None;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted?,
        _ = terminate.recv() => {}
        status = node.layout_checked_refused() => refused = Some(status),
    }
    tracing::info!(node_id = node.node_id(), "meta node shutting down");
    node.shutdown().await;
    match refused {
        Some(message) => Err(NodeError::LayoutMismatch(message)),
        None => Ok(()),
    }
}

impl MetaNode {
    /// Resolves with the refusal message if the layout check refuses this node; never resolves
    /// otherwise.
    pub async fn layout_checked_refused(&self) -> String {
        match self.layout_checked().await {
            LayoutStatus::Refused(message) => message,
            LayoutStatus::Verified | LayoutStatus::Pending => std::future::pending().await,
        }
    }
}

/// Checks this node's configuration against the cluster layout and refuses to serve on a
/// mismatch. A bootstrapping node proposes its own layout (RecordLayout: the first proposal the
/// partition-map group commits is the cluster's); a joining node only reads the recorded one.
/// Retries until the partition-map group answers.
async fn check_cluster_layout(
    config: MetaNodeConfig,
    isolation: PeerIsolation,
    refusal: Refusal,
    status: tokio::sync::watch::Sender<LayoutStatus>,
) {
    let placement = config.placement();
    let ours = cluster_layout(&placement, config.partition_count);
    let (comparison, command) = if config.bootstrap {
        (LayoutComparison::Full, Command::RecordLayout(ours.clone()))
    } else {
        (
            LayoutComparison::ParametersOnly,
            Command::Read(Query::GetLayout),
        )
    };
    let mut client_config = MetaClientConfig::new(config.peers.clone(), config.partition_count);
    client_config.identity = config.identity.clone();
    client_config.zones = config.zones.clone();
    let client = MetaClient::new(client_config);
    let recorded = loop {
        let answer = match &command {
            Command::Read(query) => client
                .read_from(GroupId::PARTITION_MAP, query.clone())
                .await
                .map(|result| result.map_err(|error| error.to_string())),
            command => client
                .write_to(GroupId::PARTITION_MAP, command.clone())
                .await
                .map(|output| output.result.map_err(|error| error.to_string())),
        };
        match answer {
            Ok(Ok(Response::Layout(Some(recorded)))) => break recorded,
            Ok(other) => tracing::debug!(?other, "no cluster layout yet"),
            Err(error) => tracing::debug!(%error, "cluster layout check: retrying"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    match check_layout(&ours, &recorded, comparison) {
        Ok(()) => {
            tracing::info!(node_id = config.node_id, "cluster layout verified");
            let _ = status.send(LayoutStatus::Verified);
        }
        Err(message) => {
            tracing::error!(node_id = config.node_id, %message, "refusing to serve");
            // Raft traffic stops both ways before anyone learns of the refusal, so a
            // misconfigured node takes no further part in any group.
            isolation.set(true);
            *refusal.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(message.clone());
            let _ = status.send(LayoutStatus::Refused(message));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Listener

/// Set when the layout check refused this node: the reason client requests are answered with.
type Refusal = Arc<std::sync::Mutex<Option<String>>>;

/// What every connection task of the listener shares.
struct Server {
    groups: Groups,
    isolation: PeerIsolation,
    refusal: Refusal,
    client_request_timeout: Duration,
    /// Mutual TLS of the listener and the per-request re-check of the peer's certificate.
    tls: Option<cairn_tls::ServerTls>,
}

async fn serve(listener: TcpListener, server: Arc<Server>) {
    // Connection tasks live in this set so aborting the listener task ends them too.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&server)));
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Longest a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn serve_connection(stream: TcpStream, server: Arc<Server>) {
    use tokio::io::AsyncWriteExt;
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "set_nodelay");
    }
    let (stream, mut revalidation): (Box<dyn crate::network::RpcStream>, _) = match &server.tls {
        None => (Box::new(stream), None),
        Some(tls) => {
            let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
                return;
            };
            let generation = tls.check.before_handshake();
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config_for(local, peer));
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(mut stream)) => {
                    let Some(certificate) = tls
                        .check
                        .peer(generation, stream.get_ref().1.peer_certificates())
                    else {
                        return;
                    };
                    let revalidation = Some((&tls.check, certificate));
                    // An authenticated loopback connection continues in plaintext (the
                    // handshake selected it only when both ends are loopback; see `cairn_tls`).
                    if tls.switches(stream.get_ref().1.alpn_protocol()) {
                        let acknowledged = async {
                            stream.write_all(cairn_tls::LOOPBACK_PLAINTEXT_ACK).await?;
                            stream.flush().await
                        };
                        if let Err(error) = acknowledged.await {
                            tracing::debug!(%peer, %error, "dropping connection at the switch");
                            return;
                        }
                        let (stream, _) = stream.into_inner();
                        (Box::new(stream), revalidation)
                    } else {
                        (Box::new(stream), revalidation)
                    }
                }
                Ok(Err(error)) => {
                    tracing::info!(%peer, %error, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let mut stream = BufStream::new(stream);
    loop {
        let request = match read_envelope(&mut stream).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%error, "dropping connection");
                return;
            }
        };
        // A certificate revoked since the handshake: nothing more is served on this connection.
        if let Some((check, certificate)) = revalidation.as_mut()
            && !check.still_trusted(certificate)
        {
            tracing::info!("closing a connection whose client certificate is no longer trusted");
            return;
        }
        let response = dispatch(&server, &request).await;
        if let Err(error) = write_envelope(&mut stream, &response).await {
            tracing::debug!(%error, "dropping connection");
            return;
        }
    }
}

fn failure(request: &Envelope, status: Status, message: impl ToString) -> Envelope {
    let mut response = Envelope::response_to(request, status, Vec::new());
    response.error_message = message.to_string();
    response
}

fn forward_to_leader(
    request: &Envelope,
    leader_id: Option<NodeId>,
    leader_node: Option<BasicNode>,
) -> Envelope {
    let mut response = Envelope::response_to(request, Status::ForwardToLeader, Vec::new());
    response.leader_id = leader_id.unwrap_or(0);
    response.leader_address = leader_node.map(|node| node.addr).unwrap_or_default();
    response
}

fn bad_request(request: &Envelope, error: WireError) -> Envelope {
    failure(request, Status::BadRequest, error)
}

async fn dispatch(server: &Server, request: &Envelope) -> Envelope {
    let Some(handle) = server.groups.get(&request.group_id) else {
        return failure(request, Status::UnknownGroup, request.group_id);
    };
    let raft = &handle.raft;
    let is_peer_rpc = matches!(
        request.kind,
        MessageKind::AppendEntries | MessageKind::Vote | MessageKind::InstallSnapshot
    );
    if !is_peer_rpc
        && let Some(message) = server
            .refusal
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    {
        return failure(request, Status::BadRequest, message);
    }
    if is_peer_rpc && server.isolation.is_isolated() {
        return failure(
            request,
            Status::Unavailable,
            "isolated from peers (fault injection)",
        );
    }
    match request.kind {
        MessageKind::AppendEntries => match from_payload(&request.payload) {
            Err(error) => bad_request(request, error),
            Ok(rpc) => match raft.append_entries(rpc).await {
                Ok(response) => Envelope::response_to(request, Status::Ok, to_payload(&response)),
                Err(error) => failure(request, Status::Unavailable, error),
            },
        },
        MessageKind::Vote => match from_payload(&request.payload) {
            Err(error) => bad_request(request, error),
            Ok(rpc) => match raft.vote(rpc).await {
                Ok(response) => Envelope::response_to(request, Status::Ok, to_payload(&response)),
                Err(error) => failure(request, Status::Unavailable, error),
            },
        },
        MessageKind::InstallSnapshot => match from_payload(&request.payload) {
            Err(error) => bad_request(request, error),
            Ok(rpc) => match raft.install_snapshot(rpc).await {
                Ok(response) => Envelope::response_to(request, Status::Ok, to_payload(&response)),
                Err(RaftError::APIError(api_error)) => {
                    let api_error: InstallSnapshotError = api_error;
                    Envelope::response_to(request, Status::ApiError, to_payload(&api_error))
                }
                Err(error) => failure(request, Status::Unavailable, error),
            },
        },
        MessageKind::ClientWrite => match decode_record::<Command>(&request.payload) {
            Err(error) => failure(request, Status::BadRequest, error),
            Ok(Command::Batch(_)) => failure(request, Status::BadRequest, BATCH_FROM_CLIENT),
            Ok(command) => match tokio::time::timeout(
                server.client_request_timeout,
                handle
                    .proposer
                    .write(vec![(command, request.payload.len())]),
            )
            .await
            {
                Err(_elapsed) => failure(request, Status::Unavailable, "write timed out"),
                Ok(mut answers) => match answers.pop() {
                    Some(Ok(output)) => {
                        Envelope::response_to(request, Status::Ok, encode_record(&output))
                    }
                    Some(Err(ProposalError::ForwardToLeader {
                        leader_id,
                        leader_node,
                    })) => forward_to_leader(request, leader_id, leader_node),
                    Some(Err(ProposalError::Unavailable(message))) => {
                        failure(request, Status::Unavailable, message)
                    }
                    None => failure(request, Status::Unavailable, "write not answered"),
                },
            },
        },
        MessageKind::ClientWriteBatch => write_batch(server, handle, request).await,
        MessageKind::ClientRead => match decode_record::<Command>(&request.payload) {
            Err(error) => failure(request, Status::BadRequest, error),
            Ok(Command::Read(query)) => match handle.read_barrier.confirm().await {
                Err(ReadIndexError::TimedOut) => {
                    failure(request, Status::Unavailable, "read-index timed out")
                }
                Err(ReadIndexError::CheckFailed) => {
                    failure(request, Status::Unavailable, "read-index check failed")
                }
                Ok(_read_log_id) => {
                    let current_term = raft.metrics().borrow().current_term;
                    if current_term == handle.read_fence_term
                        && handle.reader.last_applied_index() < handle.read_fence_index
                    {
                        let fenced = raft
                            .wait(Some(server.client_request_timeout))
                            .applied_index_at_least(Some(handle.read_fence_index), "read fence")
                            .await;
                        if let Err(error) = fenced {
                            return failure(request, Status::Unavailable, error);
                        }
                    }
                    let output = Output {
                        result: handle.reader.query(&query),
                        new_garbage: Vec::new(),
                    };
                    Envelope::response_to(request, Status::Ok, encode_record(&output))
                }
                Err(ReadIndexError::Raft(error)) => match *error {
                    RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward)) => {
                        forward_to_leader(request, forward.leader_id, forward.leader_node)
                    }
                    error => failure(request, Status::Unavailable, error),
                },
            },
            Ok(other) => failure(
                request,
                Status::BadRequest,
                format!("ClientRead carries {}, not a Read", other.name()),
            ),
        },
    }
}

/// Why a client's `Command::Batch` is refused: only the leader's proposer builds batches (a
/// client's would be refused or not depending on what else was queued with it).
const BATCH_FROM_CLIENT: &str =
    "Command::Batch is built by the group's leader, not sent by clients";

/// Serves a ClientWriteBatch: the commands are queued together on the group's proposer, in
/// order, so they go into one log entry (or consecutive ones, past the batch caps) and one fsync.
async fn write_batch(server: &Server, handle: &GroupHandle, request: &Envelope) -> Envelope {
    let commands = match decode_batch(&request.payload).and_then(|items| {
        items
            .into_iter()
            .map(|item| {
                decode_record::<Command>(item)
                    .map(|command| (command, item.len()))
                    .map_err(|error| WireError::Invalid(error.to_string()))
            })
            .collect::<Result<Vec<(Command, usize)>, WireError>>()
    }) {
        Ok(commands) => commands,
        Err(error) => return bad_request(request, error),
    };
    if commands
        .iter()
        .any(|(command, _)| matches!(command, Command::Batch(_)))
    {
        return failure(request, Status::BadRequest, BATCH_FROM_CLIENT);
    }
    let answers = match tokio::time::timeout(
        server.client_request_timeout,
        handle.proposer.write(commands),
    )
    .await
    {
        Err(_elapsed) => return failure(request, Status::Unavailable, "write timed out"),
        Ok(answers) => answers,
    };
    // A node that does not lead refuses every command alike: redirect the whole batch.
    if let Some(Err(ProposalError::ForwardToLeader {
        leader_id,
        leader_node,
    })) = answers.first()
    {
        return forward_to_leader(request, *leader_id, leader_node.clone());
    }
    let answers: Vec<Result<Vec<u8>, String>> = answers
        .into_iter()
        .map(|answer| match answer {
            Ok(output) => Ok(encode_record(&output)),
            Err(ProposalError::ForwardToLeader { leader_id, .. }) => {
                Err(format!("not the leader; leader is {leader_id:?}"))
            }
            Err(ProposalError::Unavailable(message)) => Err(message),
        })
        .collect();
    Envelope::response_to(request, Status::Ok, encode_batch_answers(&answers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_reject_malformed_input() {
        let peers = parse_peers("1=127.0.0.1:7401, 2=127.0.0.1:7402,3=meta-3:7403").unwrap();
        assert_eq!(peers.len(), 3);
        assert_eq!(peers[&3], "meta-3:7403");
        for bad in ["", "1", "0=a:1", "x=a:1", "1=a:1,1=b:2", "1=nohostport"] {
            assert!(parse_peers(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn peers_with_zones_parse_and_zones_are_all_or_nothing() {
        let (peers, zones) =
            parse_peer_list("1=127.0.0.1:7401@az1,2=127.0.0.1:7402@az2, 3=meta-3:7403@az1")
                .unwrap();
        assert_eq!(peers[&3], "meta-3:7403");
        assert_eq!(zones[&1], "az1");
        assert_eq!(zones[&3], "az1");
        assert_eq!(parse_peers("1=a:1@z").unwrap()[&1], "a:1");
        let (_, no_zones) = parse_peer_list("1=a:1,2=b:2").unwrap();
        assert!(no_zones.is_empty());
        for bad in ["1=a:1@az1,2=b:2", "1=a:1@", "1=@az1"] {
            assert!(parse_peer_list(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn default_timing_builds_a_valid_raft_config() {
        let config = MetaNodeConfig::new(
            1,
            "127.0.0.1:0".parse().unwrap(),
            PathBuf::from("/nonexistent"),
            parse_peers("1=127.0.0.1:1").unwrap(),
        );
        let raft_config = config.raft_config().unwrap();
        assert_eq!(raft_config.heartbeat_interval, 100);
    }
}
