//! Client connections spread evenly over the gateway's executors.
//!
//! Every executor accepts on its own SO_REUSEPORT listener, and the kernel picks the listener by
//! a hash of the connection's addresses. Over many short connections that evens out; over the
//! few long-lived ones of an SDK's keep-alive pool or a benchmark's workers it does not (with
//! a uniform hash, 8 connections on 2 executors split 6 to 2 or worse 29 % of the time, by the
//! binomial count; a PUT 16 MiB c8 run measured the two gateway threads at 72 % and 26 % of a
//! core), and one executor then does most of the work on one core.
//!
//! # Model
//!
//! Each executor's open connections are counted here. An executor that accepts an S3 connection
//! while another executor serves fewer than it does hands the socket over, before reading a byte
//! of it, to the executor that serves the fewest ([`choose`]); the receiving executor
//! serves it as if it had accepted it. The count of the receiver goes up when the decision is
//! made, so two executors deciding at once see each other's choices. Counts are plain atomics
//! read without a lock: a decision on a count that moves meanwhile is at worst one connection
//! off, which the next accept corrects.
//!
//! # Invariants
//!
//! - A connection is counted on exactly one executor from acceptance to its end.
//! - A hand-off that cannot be delivered (the receiving executor is gone) is served where it was
//!   accepted, and its count moves back.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};

/// An accepted socket on its way to another executor.
pub struct Handoff {
    pub stream: std::net::TcpStream,
    pub peer: SocketAddr,
}

pub struct ConnectionBalance {
    open: Vec<AtomicUsize>,
    handoffs: Mutex<Vec<Option<UnboundedSender<Handoff>>>>,
}

/// The executor a connection accepted by `accepted_by` should be served on, given every
/// executor's open connections (the new one not counted yet): the one with the fewest, when it
/// has fewer than `accepted_by`; `None` keeps it. Counts therefore never differ by more than
/// one because of where the kernel put connections.
pub fn choose(open: &[usize], accepted_by: usize) -> Option<usize> {
    let own = *open.get(accepted_by)?;
    let (least, fewest) = open
        .iter()
        .copied()
        .enumerate()
        .min_by_key(|(index, count)| (*count, *index != accepted_by))?;
    (least != accepted_by && fewest < own).then_some(least)
}

impl ConnectionBalance {
    pub fn new(executors: usize) -> ConnectionBalance {
        ConnectionBalance {
            open: (0..executors).map(|_| AtomicUsize::new(0)).collect(),
            handoffs: Mutex::new((0..executors).map(|_| None).collect()),
        }
    }

    /// Executor `index` takes hand-offs from now on, from the returned receiver.
    pub fn register(&self, index: usize) -> UnboundedReceiver<Handoff> {
        let (sender, receiver) = unbounded();
        if let Some(slot) = self
            .handoffs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(index)
        {
            *slot = Some(sender);
        }
        receiver
    }

    /// Connections executor `index` serves now.
    pub fn open(&self, index: usize) -> usize {
        self.open
            .get(index)
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }

    pub fn opened(&self, index: usize) {
        if let Some(count) = self.open.get(index) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn closed(&self, index: usize) {
        if let Some(count) = self.open.get(index) {
            count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Where a connection accepted by `accepted_by` goes; a chosen executor's count already
    /// includes it (hand it over with [`ConnectionBalance::hand_off`]).
    pub fn route(&self, accepted_by: usize) -> Option<usize> {
        let open: Vec<usize> = (0..self.open.len()).map(|index| self.open(index)).collect();
        let target = choose(&open, accepted_by)?;
        self.opened(target);
        Some(target)
    }

    /// Sends `handoff` to executor `to`; gives it back (with `to`'s count restored) when `to`
    /// takes no hand-offs.
    pub fn hand_off(&self, to: usize, handoff: Handoff) -> Result<(), Handoff> {
        let sender = self
            .handoffs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(to)
            .cloned()
            .flatten();
        let delivered = match sender {
            Some(sender) => sender
                .unbounded_send(handoff)
                .map_err(|error| error.into_inner()),
            None => Err(handoff),
        };
        if delivered.is_err() {
            self.closed(to);
        }
        delivered
    }

    /// `cairn_gateway_open_connections{executor}` for the metrics document.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP cairn_gateway_open_connections Client connections each executor serves.\n\
             # TYPE cairn_gateway_open_connections gauge\n",
        );
        for index in 0..self.open.len() {
            out.push_str(&format!(
                "cairn_gateway_open_connections{{executor=\"{index}\"}} {}\n",
                self.open(index)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_moves_only_to_an_executor_with_fewer() {
        assert_eq!(choose(&[0, 0], 0), None);
        assert_eq!(choose(&[1, 0], 0), Some(1));
        assert_eq!(choose(&[1, 1], 1), None);
        assert_eq!(
            choose(&[5, 3, 4, 3], 0),
            Some(1),
            "the fewest, the first of equals"
        );
        assert_eq!(choose(&[3, 5, 3], 1), Some(0));
        assert_eq!(
            choose(&[3, 4, 3], 0),
            None,
            "the accepting executor is among the fewest"
        );
        assert_eq!(choose(&[3, 4, 3], 1), Some(0));
        assert_eq!(choose(&[4], 0), None);
        assert_eq!(choose(&[], 0), None);
    }

    #[test]
    fn accepting_every_connection_on_one_executor_still_spreads_them_evenly() {
        let balance = ConnectionBalance::new(2);
        let _receivers = [balance.register(0), balance.register(1)];
        for _ in 0..16 {
            match balance.route(0) {
                Some(target) => assert_eq!(target, 1),
                None => balance.opened(0),
            }
        }
        assert_eq!((balance.open(0), balance.open(1)), (8, 8));
    }

    #[test]
    fn an_undeliverable_hand_off_comes_back_and_uncounts() {
        let balance = ConnectionBalance::new(2);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let stream = std::net::TcpStream::connect(address).unwrap();
        balance.opened(1);
        let back = balance
            .hand_off(
                1,
                Handoff {
                    stream,
                    peer: address,
                },
            )
            .expect_err("executor 1 takes no hand-offs");
        assert_eq!(back.peer, address);
        assert_eq!(balance.open(1), 0);
    }
}
