//! One upload's ETag MD5, hashed together with this executor's other uploads
//! ([`cairn_s3_proto::md5_lanes`]).
//!
//! Model: every executor owns one [`Md5Lanes`]; each upload holds a lane for its lifetime. When a
//! push fills the lane to the threshold, the upload yields once before it runs the pass: the
//! executor's other runnable uploads then push the chunks they already hold, so the pass finds
//! their lanes filled too and hashes them in the same SIMD groups. Nothing waits on a timer, and
//! a lone upload pays one extra trip through the run queue per threshold of bytes. Dropping an
//! unfinished upload (an error, a client gone) closes its lane.

use std::cell::RefCell;
use std::rc::Rc;

use cairn_s3_proto::md5_lanes::{LaneId, Md5Lanes};

use crate::metrics::ExecutorMetrics;

pub struct UploadMd5 {
    lanes: Rc<RefCell<Md5Lanes>>,
    lane: Option<LaneId>,
}

impl UploadMd5 {
    pub fn open(lanes: &Rc<RefCell<Md5Lanes>>) -> UploadMd5 {
        UploadMd5 {
            lane: Some(lanes.borrow_mut().open()),
            lanes: Rc::clone(lanes),
        }
    }

    /// Adds body bytes; runs a pass (for every upload of the executor that is ready) when this
    /// lane has a pass's worth.
    pub async fn push(&mut self, bytes: &[u8], metrics: &ExecutorMetrics) {
        let Some(lane) = self.lane else {
            return;
        };
        if !self.lanes.borrow_mut().push(lane, bytes) {
            return;
        }
        futures_lite::future::yield_now().await;
        // Another upload's pass may have taken this lane's bytes meanwhile; then this finds
        // nothing (or only others) to hash, which is as correct.
        metrics.md5_pass(self.lanes.borrow_mut().hash_ready());
    }

    /// The MD5 of every byte pushed. What the lane still holds goes through one more pass
    /// when it is large enough to share one.
    pub fn finish(mut self, metrics: &ExecutorMetrics) -> [u8; 16] {
        let lane = self.lane.take().expect("finish runs once");
        let mut lanes = self.lanes.borrow_mut();
        if lanes.wants_final_pass(lane) {
            metrics.md5_pass(lanes.hash_ready());
        }
        lanes.finish(lane)
    }
}

impl Drop for UploadMd5 {
    fn drop(&mut self) {
        if let Some(lane) = self.lane.take() {
            self.lanes.borrow_mut().close(lane);
        }
    }
}
