//! Group commit of client writes: one proposer per group on every node turns the writes that
//! queue up while the previous log entry is being flushed into one entry.
//!
//! # Model
//!
//! openraft 0.9.25 flushes each log entry on its own (`RaftCore` runs its storage commands after
//! every API message, and `append_to_log` waits for the flush callback), so a group commits at
//! most one entry per fsync. Proposing one entry per command therefore caps a group at one
//! command per fsync; proposing one entry per *batch* of commands lets one fsync commit many.
//!
//! The listener hands every ClientWrite and ClientWriteBatch request to its group's
//! [`Proposer`] instead of calling `Raft::client_write`. The proposer task:
//! 1. waits for a free proposal slot (at most [`RaftTiming::proposals_in_flight`] entries of
//!    this proposer are being flushed and replicated at once);
//! 2. takes every request queued so far, up to [`MAX_BATCH_COMMANDS`] commands and
//!    [`MAX_BATCH_BYTES`] encoded bytes (a request is never split, except one that alone exceeds
//!    a cap, which is cut into consecutive chunks when it is queued);
//! 3. proposes ONE entry: the command itself when a single command was queued (so an idle group
//!    writes exactly the entries it wrote before group commit existed), otherwise a
//!    `Command::Batch` of them in queue order;
//! 4. hands the entry to openraft before it takes the next one (`client_write_ff`), so entries
//!    enter the log in queue order, and answers each request with its own outputs when the entry
//!    is applied. While the entry is being flushed and replicated, new requests queue up: that
//!    is the group commit.
//!
//! The region's version tag: the proposer of an object partition is given its node's
//! configured tag and puts `Command::SetVersionTag` in front of the commands of every entry it
//! proposes until one such entry is applied (the tag is then the partition's state, and later
//! ones would be no-ops). Its output is not any request's: the requests get theirs as before.
//! Ids therefore come from the log, never from a replica's configuration, and a refusal (the
//! partition already has another region's tag) is logged once.
//!
//! A failure of the proposal as a whole (this node does not lead: ForwardToLeader; no quorum in
//! time: Unavailable; openraft stopped) is the answer of every request in it. A request whose
//! answer is lost (timeout, leader change after the entry was appended) may still be applied; the
//! client retries it like any unanswered write, and the state machine's idempotency tokens make
//! PrepareWrite/CommitWrite/CompleteMultipartUpload retries no-ops, exactly as for a single
//! entry whose answer was lost. A batch is all-or-nothing in the log (one entry), so no prefix of
//! it can be applied without the rest.
//!
//! # Invariants
//!
//! - Requests are proposed in the order they were queued; the commands of one request stay in
//!   order and in consecutive positions of the log's apply order.
//! - Every queued request is answered exactly once (its outputs, or the proposal's failure), or
//!   its waiter gave up first (the listener's client timeout).
//! - At most `proposals_in_flight` entries of a proposer are in openraft at once.
//!
//! [`RaftTiming::proposals_in_flight`]: crate::node::RaftTiming::proposals_in_flight

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cairn_meta_state::{Command, MetaError, Output, Response};
use openraft::BasicNode;
use openraft::error::ClientWriteError;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::disk::DiskReserve;
use crate::types::{MetaRequest, NodeId, Raft};

/// Most commands one proposal (log entry) carries.
pub const MAX_BATCH_COMMANDS: usize = 256;

/// Most encoded command bytes one proposal carries (a single larger command goes alone).
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Requests waiting for a proposal, per group. A full queue makes writers wait.
const QUEUE_DEPTH: usize = 4096;

/// Why a proposal failed as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalError {
    /// This node does not lead the group.
    ForwardToLeader {
        leader_id: Option<NodeId>,
        leader_node: Option<BasicNode>,
    },
    /// Not answered (timeout, openraft stopped, an entry that produced no output).
    Unavailable(String),
}

/// One queued request: its commands (in order) and where their outputs go.
struct Request {
    commands: Vec<Command>,
    encoded_bytes: usize,
    answer: oneshot::Sender<Result<Vec<Output>, ProposalError>>,
}

/// The sending side of a group's proposal queue (cheap to clone).
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Request>,
    /// The node's disk reserve: below it, client writes are answered without being proposed.
    disk: Option<Arc<DiskReserve>>,
}

impl Proposer {
    /// Starts the proposer task of one group. `timeout` bounds how long a proposal waits to be
    /// applied before its requests are answered Unavailable (and its slot freed).
    /// `disk`: the node's disk reserve (`None`: never refuse for space).
    /// `version_tag`: the region's tag to set in this group (an object partition), if any.
    pub fn start(
        raft: Raft,
        timeout: Duration,
        in_flight: usize,
        disk: Option<Arc<DiskReserve>>,
        version_tag: Option<u8>,
    ) -> (Proposer, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let version_tag = version_tag.map(|tag| PendingTag {
            tag,
            pending: Arc::new(AtomicBool::new(true)),
        });
        let task = tokio::spawn(run(raft, receiver, timeout, in_flight.max(1), version_tag));
        (
            Proposer {
                queue: sender,
                disk,
            },
            task,
        )
    }

    /// Proposes `commands` (each with its encoded length) and waits for their outputs: one
    /// answer per command, in order. Commands beyond the caps are queued as consecutive chunks,
    /// each answered on its own (a chunk's failure is the answer of each of its commands).
    /// While the disk is below its reserve, a command [`DiskReserve::refusal`] refuses is
    /// answered with that refusal and not proposed; the others are proposed as usual.
    pub async fn write(
        &self,
        commands: Vec<(Command, usize)>,
    ) -> Vec<Result<Output, ProposalError>> {
        let Some(free_bytes) = self.disk.as_ref().and_then(|disk| disk.shortfall()) else {
            return self.propose(commands).await;
        };
        let refusals: Vec<Option<MetaError>> = commands
            .iter()
            .map(|(command, _)| DiskReserve::refusal(command, free_bytes))
            .collect();
        let admitted: Vec<(Command, usize)> = commands
            .into_iter()
            .zip(&refusals)
            .filter(|(_, refusal)| refusal.is_none())
            .map(|(command, _)| command)
            .collect();
        let mut answers = self.propose(admitted).await.into_iter();
        refusals
            .into_iter()
            .map(|refusal| match refusal {
                Some(error) => Ok(Output {
                    result: Err(error),
                    new_garbage: Vec::new(),
                }),
                None => answers.next().expect("one answer per admitted command"),
            })
            .collect()
    }

    async fn propose(&self, commands: Vec<(Command, usize)>) -> Vec<Result<Output, ProposalError>> {
        let total = commands.len();
        let mut chunks = Vec::new();
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        for (command, encoded_bytes) in commands {
            if !chunk.is_empty()
                && (chunk.len() == MAX_BATCH_COMMANDS
                    || chunk_bytes + encoded_bytes > MAX_BATCH_BYTES)
            {
                chunks.push((std::mem::take(&mut chunk), chunk_bytes));
                chunk_bytes = 0;
            }
            chunk.push(command);
            chunk_bytes += encoded_bytes;
        }
        if !chunk.is_empty() {
            chunks.push((chunk, chunk_bytes));
        }
        // Every chunk is queued before any answer is awaited, so they propose back to back.
        let mut pending = Vec::with_capacity(chunks.len());
        for (commands, encoded_bytes) in chunks {
            let count = commands.len();
            pending.push((count, self.enqueue(commands, encoded_bytes).await));
        }
        let mut answers = Vec::with_capacity(total);
        for (count, queued) in pending {
            let outcome = match queued {
                Err(error) => Err(error),
                Ok(receiver) => receiver.await.unwrap_or_else(|_dropped| Err(stopped())),
            };
            match outcome {
                Ok(outputs) => answers.extend(outputs.into_iter().map(Ok)),
                Err(error) => answers.extend(std::iter::repeat_n(Err(error), count)),
            }
        }
        answers
    }

    async fn enqueue(
        &self,
        commands: Vec<Command>,
        encoded_bytes: usize,
    ) -> Result<oneshot::Receiver<Result<Vec<Output>, ProposalError>>, ProposalError> {
        let (answer, receiver) = oneshot::channel();
        let request = Request {
            commands,
            encoded_bytes,
            answer,
        };
        self.queue
            .send(request)
            .await
            .map_err(|_closed| stopped())?;
        Ok(receiver)
    }
}

/// A version tag to put in front of the next entries until one is applied.
#[derive(Clone)]
struct PendingTag {
    tag: u8,
    pending: Arc<AtomicBool>,
}

impl PendingTag {
    /// Takes the output of the tag's command out of an applied entry's outputs.
    fn settle(&self, outputs: &mut Vec<Output>) {
        let output = outputs.remove(0);
        if let Err(error) = output.result {
            tracing::warn!(
                tag = self.tag,
                %error,
                "the partition keeps its version tag; this node is configured for another region"
            );
        }
        self.pending.store(false, Ordering::Relaxed);
    }
}

fn stopped() -> ProposalError {
    ProposalError::Unavailable("the group's proposer stopped".to_owned())
}

async fn run(
    raft: Raft,
    mut queue: mpsc::Receiver<Request>,
    timeout: Duration,
    in_flight: usize,
    version_tag: Option<PendingTag>,
) {
    let slots = Arc::new(Semaphore::new(in_flight));
    // Proposals being applied; dropping the set (the task aborted) ends them too.
    let mut proposals = tokio::task::JoinSet::new();
    // A request taken from the queue that did not fit the previous proposal.
    let mut carried: Option<Request> = None;
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(request) => request,
            None => match queue.recv().await {
                Some(request) => request,
                None => break,
            },
        };
        let mut commands_count = first.commands.len();
        let mut encoded_bytes = first.encoded_bytes;
        let mut requests = vec![first];
        while commands_count < MAX_BATCH_COMMANDS {
            let Ok(request) = queue.try_recv() else {
                break;
            };
            if commands_count + request.commands.len() > MAX_BATCH_COMMANDS
                || encoded_bytes + request.encoded_bytes > MAX_BATCH_BYTES
            {
                carried = Some(request);
                break;
            }
            commands_count += request.commands.len();
            encoded_bytes += request.encoded_bytes;
            requests.push(request);
        }
        let mut sizes = Vec::with_capacity(requests.len());
        let mut answers = Vec::with_capacity(requests.len());
        let mut commands = Vec::with_capacity(commands_count + 1);
        let tag = version_tag
            .as_ref()
            .filter(|tag| tag.pending.load(Ordering::Relaxed))
            .cloned();
        if let Some(tag) = &tag {
            commands.push(Command::SetVersionTag { tag: tag.tag });
            commands_count += 1;
        }
        for request in requests {
            sizes.push(request.commands.len());
            answers.push(request.answer);
            commands.extend(request.commands);
        }
        let batched = commands_count > 1;
        let entry = if batched {
            Command::Batch(commands)
        } else {
            commands
                .pop()
                .expect("a request holds at least one command")
        };
        // Handing the entry to openraft here, before the next one is taken, keeps queue order.
        let submitted = raft.client_write_ff(MetaRequest(entry)).await;
        proposals.spawn(async move {
            let outcome = match submitted {
                Err(fatal) => Err(ProposalError::Unavailable(fatal.to_string())),
                Ok(receiver) => match tokio::time::timeout(timeout, receiver).await {
                    Err(_elapsed) => Err(ProposalError::Unavailable("write timed out".to_owned())),
                    Ok(Err(_dropped)) => Err(ProposalError::Unavailable(
                        "raft stopped before answering".to_owned(),
                    )),
                    Ok(Ok(Err(ClientWriteError::ForwardToLeader(forward)))) => {
                        Err(ProposalError::ForwardToLeader {
                            leader_id: forward.leader_id,
                            leader_node: forward.leader_node,
                        })
                    }
                    Ok(Ok(Err(error))) => Err(ProposalError::Unavailable(error.to_string())),
                    Ok(Ok(Ok(written))) => split_outputs(written.data.0, batched, commands_count)
                        .map(|mut outputs| {
                            if let Some(tag) = &tag {
                                tag.settle(&mut outputs);
                            }
                            outputs
                        }),
                },
            };
            drop(slot);
            answer_all(answers, &sizes, outcome);
        });
        // Reap finished proposals so the set does not grow.
        while proposals.try_join_next().is_some() {}
    }
    // The queue closed (every sender dropped): let the proposals in flight answer.
    while proposals.join_next().await.is_some() {}
}

/// The per-command outputs of an applied entry.
fn split_outputs(
    output: Option<Output>,
    batched: bool,
    commands_count: usize,
) -> Result<Vec<Output>, ProposalError> {
    let unexpected = |what: String| Err(ProposalError::Unavailable(what));
    match output {
        None => unexpected("entry produced no output".to_owned()),
        Some(output) if !batched => Ok(vec![output]),
        Some(Output {
            result: Ok(Response::Batch(outputs)),
            ..
        }) if outputs.len() == commands_count => Ok(outputs),
        Some(other) => unexpected(format!(
            "a batch of {commands_count} commands was answered {:?}",
            other
                .result
                .map(|response| std::mem::discriminant(&response))
        )),
    }
}

/// Answers each request with its slice of `outcome` (or the shared failure). A request whose
/// waiter is gone is skipped.
fn answer_all(
    answers: Vec<oneshot::Sender<Result<Vec<Output>, ProposalError>>>,
    sizes: &[usize],
    outcome: Result<Vec<Output>, ProposalError>,
) {
    match outcome {
        Err(error) => {
            for answer in answers {
                let _ = answer.send(Err(error.clone()));
            }
        }
        Ok(outputs) => {
            let mut outputs = outputs.into_iter();
            for (answer, &size) in answers.into_iter().zip(sizes) {
                let _ = answer.send(Ok(outputs.by_ref().take(size).collect()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_meta_state::MetaError;

    fn output(count: u32) -> Output {
        Output {
            result: Ok(Response::Purged {
                purged_count: count,
            }),
            new_garbage: Vec::new(),
        }
    }

    #[test]
    fn outputs_split_per_request_in_order() {
        let (senders, mut receivers): (Vec<_>, Vec<_>) = (0..3).map(|_| oneshot::channel()).unzip();
        let outputs = split_outputs(
            Some(Output {
                result: Ok(Response::Batch((0..6).map(output).collect())),
                new_garbage: Vec::new(),
            }),
            true,
            6,
        );
        answer_all(senders, &[1, 3, 2], outputs);
        let answers: Vec<Vec<Output>> = receivers
            .iter_mut()
            .map(|receiver| receiver.try_recv().unwrap().unwrap())
            .collect();
        assert_eq!(
            answers,
            vec![
                vec![output(0)],
                vec![output(1), output(2), output(3)],
                vec![output(4), output(5)]
            ]
        );
    }

    #[test]
    fn a_failed_or_malformed_proposal_answers_every_request_alike() {
        let (senders, mut receivers): (Vec<_>, Vec<_>) = (0..2).map(|_| oneshot::channel()).unzip();
        let forward = ProposalError::ForwardToLeader {
            leader_id: Some(2),
            leader_node: None,
        };
        answer_all(senders, &[1, 1], Err(forward.clone()));
        for receiver in &mut receivers {
            assert_eq!(receiver.try_recv().unwrap(), Err(forward.clone()));
        }
        // A single command's output passes through whole, refusals included.
        let refused = Output {
            result: Err(MetaError::NoSuchBucket {
                bucket: "b".to_owned(),
            }),
            new_garbage: Vec::new(),
        };
        assert_eq!(
            split_outputs(Some(refused.clone()), false, 1),
            Ok(vec![refused.clone()])
        );
        // A batch answered with the wrong number of outputs, or not as a batch, is a failure.
        assert!(matches!(
            split_outputs(Some(refused), true, 2),
            Err(ProposalError::Unavailable(_))
        ));
        assert!(matches!(
            split_outputs(
                Some(Output {
                    result: Ok(Response::Batch(vec![output(1)])),
                    new_garbage: Vec::new()
                }),
                true,
                2
            ),
            Err(ProposalError::Unavailable(_))
        ));
        assert!(matches!(
            split_outputs(None, false, 1),
            Err(ProposalError::Unavailable(_))
        ));
    }
}
