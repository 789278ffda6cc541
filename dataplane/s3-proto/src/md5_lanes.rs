//! The ETag MD5 of several concurrent uploads, computed together in SIMD lanes.
//!
//! MD5 is one serial chain per message: a single upload cannot hash faster than one block after
//! another (about 0.64 GB/s on this machine's cores), and the ETag covers every body byte, so on a
//! 16 MiB PUT it was the gateway's largest cost (29 % of all samples, session 12's profile). Many
//! uploads at once are many independent chains, and md5-many compresses up to 16 of them in one
//! pass of AVX-512 lanes. This module is the bookkeeping that lets one executor's uploads share
//! those passes (what MinIO does with its multi-buffer MD5 server). It does no I/O and knows no
//! runtime; the gateway decides when to call [`Md5Lanes::hash_ready`].
//!
//! # Model
//!
//! Each upload is a lane: an MD5 state plus the bytes it has received and not hashed yet
//! (`pending`, copied in: holding the body's own buffers would pin the HTTP read buffers). A lane
//! whose pending bytes reach the threshold asks for a pass ([`Md5Lanes::push`] returns `true`);
//! the caller first lets the executor's other runnable uploads push what they have, then calls
//! [`Md5Lanes::hash_ready`]. A pass takes every lane holding at least a quarter of the threshold
//! and hashes the same number of bytes of each (the smallest of their pending lengths, in whole
//! 64-byte blocks), so every lane of a SIMD group carries data for the whole pass. Groups are
//! filled to 8 or 16 lanes with throw-away copies: a pass over 8 lanes costs the same with 3 real
//! streams as with 8, and measured on this machine that beats the batch engine's own handling of
//! odd counts (`benches/results/README.md`). A lane alone is hashed by the single-stream
//! compressor. [`Md5Lanes::finish`] hashes a lane's remainder (less than a pass) and returns the
//! digest.
//!
//! # Invariants
//!
//! - Bytes reach a lane's state in the order they were pushed, exactly once.
//! - Outside `finish`, a state has absorbed a whole number of 64-byte blocks: passes hash
//!   multiples of 64 bytes, so every state is aligned when a pass starts (what md5-many's
//!   lock-step kernels require).
//! - A lane holds fewer than `threshold + pushed chunk` pending bytes once its caller has run the
//!   pass its push asked for. With a budget ([`Md5Lanes::with_budget`]) the threshold is the
//!   budget shared among the open lanes (bounded below and above), so the lanes of one executor
//!   hold about the budget however many uploads run.

use md5_many::{Md5Many, Md5State};

/// One lane's handle; valid until [`Md5Lanes::finish`] or [`Md5Lanes::close`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneId(usize);

#[derive(Debug)]
struct Lane {
    state: Md5State,
    pending: Vec<u8>,
}

/// The lanes of one executor (see the module header).
#[derive(Debug)]
pub struct Md5Lanes {
    engine: Md5Many,
    /// The threshold with few lanes open, and the least it falls to with many
    /// ([`Md5Lanes::threshold_bytes`]).
    max_threshold_bytes: usize,
    min_threshold_bytes: usize,
    /// Pending bytes the lanes may hold together before the threshold shrinks.
    budget_bytes: usize,
    lanes: Vec<Option<Lane>>,
    free: Vec<usize>,
}

/// The block MD5 works in.
const BLOCK_BYTES: usize = 64;

/// Pending bytes at which a lane asks for a pass, by default. HTTP hands the body over in large
/// chunks (about 400 KiB on loopback), so a lane's pending bytes move in steps of that size; with
/// a threshold of five such chunks the other lanes hold a quarter of it most of the time, and a
/// pass over 8 uploads of 16 MiB at concurrency 8 (2 executors) takes 3.2 lanes on average
/// against 1.4 with 512 KiB (`cairn_gateway_md5_pass_lanes_total`). The cost is memory: up to the
/// threshold plus a chunk per upload, which [`DEFAULT_BUDGET_BYTES`] bounds per executor.
pub const DEFAULT_THRESHOLD_BYTES: usize = 2 * 1024 * 1024;

/// What the lanes of one executor may hold pending together, by default, before the threshold
/// shrinks: the threshold is this divided among the open lanes, between
/// [`MIN_THRESHOLD_BYTES`] and the configured threshold. Up to 16 uploads per executor keep the
/// full 2 MiB: the measured cases (c8 and c32 on 2 executors) are unchanged. Beyond that, passes
/// take smaller steps; how many lanes they then hold was not measured.
pub const DEFAULT_BUDGET_BYTES: usize = 32 * 1024 * 1024;

/// The least the threshold falls to with many lanes open.
pub const MIN_THRESHOLD_BYTES: usize = 256 * 1024;

impl Md5Lanes {
    /// Lanes with a fixed threshold.
    pub fn new(threshold_bytes: usize) -> Md5Lanes {
        Md5Lanes::with_budget(threshold_bytes, usize::MAX)
    }

    /// Lanes whose threshold is `budget_bytes` divided among the open lanes, at most
    /// `max_threshold_bytes` and at least [`MIN_THRESHOLD_BYTES`] (or `max_threshold_bytes` when
    /// that is smaller): the memory the lanes hold stays near the budget however many uploads
    /// run, plus [`MIN_THRESHOLD_BYTES`] and a chunk per lane beyond it.
    pub fn with_budget(max_threshold_bytes: usize, budget_bytes: usize) -> Md5Lanes {
        // At least four blocks, so a quarter of it is at least one block.
        let max_threshold_bytes = max_threshold_bytes.max(4 * BLOCK_BYTES);
        Md5Lanes {
            engine: Md5Many::new(),
            max_threshold_bytes,
            min_threshold_bytes: MIN_THRESHOLD_BYTES.min(max_threshold_bytes),
            budget_bytes,
            lanes: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Pending bytes at which a lane asks for a pass now.
    pub fn threshold_bytes(&self) -> usize {
        (self.budget_bytes / self.open_lanes().max(1))
            .clamp(self.min_threshold_bytes, self.max_threshold_bytes)
    }

    pub fn open(&mut self) -> LaneId {
        let lane = Lane {
            state: Md5State::new(),
            pending: Vec::new(),
        };
        match self.free.pop() {
            Some(index) => {
                self.lanes[index] = Some(lane);
                LaneId(index)
            }
            None => {
                self.lanes.push(Some(lane));
                LaneId(self.lanes.len() - 1)
            }
        }
    }

    /// Lanes open now.
    pub fn open_lanes(&self) -> usize {
        self.lanes.len() - self.free.len()
    }

    /// Appends body bytes to a lane. Returns `true` when the lane now holds a pass's worth: the
    /// caller should run [`Md5Lanes::hash_ready`] (after letting other uploads push theirs).
    pub fn push(&mut self, lane: LaneId, bytes: &[u8]) -> bool {
        let threshold_bytes = self.threshold_bytes();
        let lane = self.lane_mut(lane);
        lane.pending.extend_from_slice(bytes);
        lane.pending.len() >= threshold_bytes
    }

    /// One pass: every lane with at least a quarter of the threshold pending gives the same
    /// number of whole blocks, hashed together. Returns how many lanes it hashed: none when no
    /// lane qualifies.
    pub fn hash_ready(&mut self) -> usize {
        let minimum = self.threshold_bytes() / 4;
        let mut amount = usize::MAX;
        let mut ready = Vec::new();
        for (index, lane) in self.lanes.iter().enumerate() {
            if let Some(lane) = lane
                && lane.pending.len() >= minimum
            {
                amount = amount.min(lane.pending.len());
                ready.push(index);
            }
        }
        if ready.is_empty() {
            return 0;
        }
        let amount = amount / BLOCK_BYTES * BLOCK_BYTES;
        for group in ready.chunks(16) {
            self.hash_group(group, amount);
        }
        for index in &ready {
            if let Some(lane) = &mut self.lanes[*index] {
                lane.pending.drain(..amount);
            }
        }
        ready.len()
    }

    /// Hashes the first `amount` pending bytes (whole blocks) of each lane of `group`.
    fn hash_group(&mut self, group: &[usize], amount: usize) {
        if let [index] = group {
            if let Some(lane) = &mut self.lanes[*index] {
                lane.state.update(&lane.pending[..amount]);
            }
            return;
        }
        let width = if group.len() <= 8 { 8 } else { 16 };
        let mut states = [Md5State::new(); 16];
        let mut inputs: [&[u8]; 16] = [&[]; 16];
        for (slot, index) in group.iter().enumerate() {
            let lane = self.lanes[*index].as_ref().expect("ready lanes are open");
            debug_assert_eq!(lane.state.bytes_hashed() % BLOCK_BYTES as u64, 0);
            states[slot] = lane.state;
            inputs[slot] = &lane.pending[..amount];
        }
        // Throw-away lanes carry a copy of the first lane's input, so the group is equal-length.
        for slot in group.len()..width {
            inputs[slot] = inputs[0];
        }
        self.engine
            .update_many(&mut states[..width], &inputs[..width]);
        for (slot, index) in group.iter().enumerate() {
            if let Some(lane) = &mut self.lanes[*index] {
                lane.state = states[slot];
            }
        }
    }

    /// Whether the lane holds enough for a pass of its own: before [`Md5Lanes::finish`], a pass
    /// ([`Md5Lanes::hash_ready`]) hashes most of it in SIMD lanes instead of alone.
    pub fn wants_final_pass(&self, lane: LaneId) -> bool {
        let minimum = self.threshold_bytes() / 4;
        self.lanes[lane.0]
            .as_ref()
            .is_some_and(|lane| lane.pending.len() >= minimum)
    }

    /// Hashes what the lane still holds and returns its digest; the lane is closed.
    pub fn finish(&mut self, lane: LaneId) -> [u8; 16] {
        let mut lane = self.take(lane);
        lane.state.update(&lane.pending);
        lane.state.finalize()
    }

    /// Closes a lane without a digest (the upload failed).
    pub fn close(&mut self, lane: LaneId) {
        self.take(lane);
    }

    fn take(&mut self, lane: LaneId) -> Lane {
        let taken = self.lanes[lane.0].take().expect("an open lane");
        self.free.push(lane.0);
        taken
    }

    fn lane_mut(&mut self, lane: LaneId) -> &mut Lane {
        self.lanes[lane.0].as_mut().expect("an open lane")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::md5_digest;
    use proptest::prelude::*;

    fn body(stream: usize, length: usize) -> Vec<u8> {
        (0..length)
            .map(|index| (index as u8).wrapping_mul(31) ^ (stream as u8).wrapping_mul(97))
            .collect()
    }

    /// Streams of random lengths pushed in random pieces in a random interleaving, with passes
    /// whenever a push asks for one and at random other points: every digest is the MD5 of its
    /// stream, whatever the lane count (1, within 8, within 16, over 16).
    fn run(lengths: &[usize], steps: &[(usize, usize, bool)], threshold: usize) {
        let mut lanes = Md5Lanes::new(threshold);
        let bodies: Vec<Vec<u8>> = lengths
            .iter()
            .enumerate()
            .map(|(stream, length)| body(stream, *length))
            .collect();
        let ids: Vec<LaneId> = bodies.iter().map(|_| lanes.open()).collect();
        let mut offsets = vec![0usize; bodies.len()];
        let mut digests: Vec<Option<[u8; 16]>> = vec![None; bodies.len()];
        let mut step = 0;
        while digests.iter().any(Option::is_none) {
            let (pick, piece, extra_pass) = steps[step % steps.len()];
            step += 1;
            let unfinished: Vec<usize> = (0..bodies.len())
                .filter(|stream| digests[*stream].is_none())
                .collect();
            let stream = unfinished[(pick + step) % unfinished.len()];
            let rest = bodies[stream].len() - offsets[stream];
            if rest == 0 {
                if lanes.wants_final_pass(ids[stream]) {
                    lanes.hash_ready();
                }
                digests[stream] = Some(lanes.finish(ids[stream]));
                continue;
            }
            let take = piece.clamp(1, rest);
            let piece = &bodies[stream][offsets[stream]..offsets[stream] + take];
            offsets[stream] += take;
            if lanes.push(ids[stream], piece) || extra_pass {
                lanes.hash_ready();
            }
        }
        assert_eq!(lanes.open_lanes(), 0);
        for (stream, digest) in digests.into_iter().enumerate() {
            assert_eq!(digest, Some(md5_digest(&bodies[stream])), "stream {stream}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn every_lane_digest_is_the_md5_of_its_stream(
            lengths in prop::collection::vec(0usize..40_000, 1..20),
            steps in prop::collection::vec((0usize..20, 1usize..9_000, any::<bool>()), 1..40),
            threshold in 256usize..20_000,
        ) {
            run(&lengths, &steps, threshold);
        }
    }

    #[test]
    fn passes_take_every_lane_with_a_quarter_and_the_same_blocks_from_each() {
        let mut lanes = Md5Lanes::new(4096);
        let a = lanes.open();
        let b = lanes.open();
        let c = lanes.open();
        assert!(!lanes.push(a, &[1; 3000]));
        assert!(!lanes.push(b, &[2; 1100]));
        assert!(!lanes.push(c, &[3; 1000]), "below a quarter: waits");
        assert!(lanes.push(a, &[1; 1200]));
        assert_eq!(lanes.hash_ready(), 2);
        // 1100 bytes rounded down to whole blocks (1088) left a and b.
        assert_eq!(lanes.lane_mut(a).pending.len(), 4200 - 1088);
        assert_eq!(lanes.lane_mut(b).pending.len(), 1100 - 1088);
        assert_eq!(lanes.lane_mut(c).pending.len(), 1000);
        assert_eq!(lanes.hash_ready(), 1, "only a still qualifies");
        assert_eq!(lanes.lane_mut(a).pending.len(), 3112 % 64);
        let mut expected = vec![1u8; 4200];
        assert_eq!(lanes.finish(a), md5_digest(&expected));
        expected = vec![2u8; 1100];
        assert_eq!(lanes.finish(b), md5_digest(&expected));
        lanes.close(c);
        assert_eq!(lanes.open_lanes(), 0);
        // Closed slots are reused.
        assert_eq!(lanes.open(), LaneId(2));
    }

    #[test]
    fn the_threshold_shares_the_budget_among_the_open_lanes() {
        const MIB: usize = 1024 * 1024;
        let mut lanes = Md5Lanes::with_budget(2 * MIB, 32 * MIB);
        let first = lanes.open();
        assert_eq!(
            lanes.threshold_bytes(),
            2 * MIB,
            "few lanes: the full threshold"
        );
        let mut others: Vec<LaneId> = (1..16).map(|_| lanes.open()).collect();
        assert_eq!(lanes.threshold_bytes(), 2 * MIB);
        assert!(!lanes.push(first, &vec![1; MIB]));
        others.extend((16..64).map(|_| lanes.open()));
        assert_eq!(lanes.threshold_bytes(), 512 * 1024, "64 lanes share 32 MiB");
        assert!(
            lanes.push(first, &[1; 1]),
            "1 MiB is past the shrunk threshold"
        );
        others.extend((64..1000).map(|_| lanes.open()));
        assert_eq!(lanes.threshold_bytes(), MIN_THRESHOLD_BYTES);
        for lane in others {
            lanes.close(lane);
        }
        assert_eq!(lanes.threshold_bytes(), 2 * MIB);
        assert_eq!(lanes.finish(first), md5_digest(&vec![1; MIB + 1]));
    }

    #[test]
    fn seventeen_lanes_fill_a_group_of_sixteen_and_one_alone() {
        let lengths = vec![300_000; 17];
        run(&lengths, &[(0, 65_536, false)], 256 * 1024);
    }
}
