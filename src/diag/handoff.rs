//! A bounded queue between the dump's two threads, allocated once.
//!
//! Sending and receiving never allocate, whatever the timing: a channel of the
//! standard library allocates the first time a side waits, which made the
//! allocation count of a dump depend on scheduling.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Items in flight one way between two threads; either side may close it.
pub struct Handoff<T> {
    state: Mutex<(VecDeque<T>, bool)>,
    ready: Condvar,
}

impl<T> Handoff<T> {
    /// A queue for at most `cap` items: more are never in flight, as the
    /// items are the buffers of a fixed ring.
    pub fn new(cap: usize) -> Handoff<T> {
        Handoff {
            state: Mutex::new((VecDeque::with_capacity(cap), false)),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (VecDeque<T>, bool)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`; gives it back when the queue is closed.
    pub fn send(&self, item: T) -> Result<(), T> {
        let mut s = self.lock();
        if s.1 {
            return Err(item);
        }
        s.0.push_back(item);
        drop(s);
        self.ready.notify_one();
        Ok(())
    }

    /// The next item, waiting for one; `None` once the queue is closed and empty.
    pub fn recv(&self) -> Option<T> {
        self.take(VecDeque::pop_front)
    }

    /// The item queued last, waiting for one: for a pool of buffers, the one
    /// used most recently, whose pages are resident already.
    pub fn recv_last(&self) -> Option<T> {
        self.take(VecDeque::pop_back)
    }

    fn take(&self, pop: fn(&mut VecDeque<T>) -> Option<T>) -> Option<T> {
        let mut s = self.lock();
        loop {
            if let Some(item) = pop(&mut s.0) {
                return Some(item);
            }
            if s.1 {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// No more items: the receiver gets what is queued, then `None`; senders
    /// get their items back.
    pub fn close(&self) {
        self.lock().1 = true;
        self.ready.notify_all();
    }
}

/// Closes the queue when dropped, so that a side that returns early (or
/// panics) never leaves the other waiting.
pub struct CloseOnDrop<'a, T>(pub &'a Handoff<T>);

impl<T> Drop for CloseOnDrop<'_, T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_cross_in_order_and_closing_ends_both_sides() {
        let q = Handoff::new(4);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _close = CloseOnDrop(&q);
                for i in 0..1000 {
                    q.send(i).unwrap();
                    if i % 3 == 0 {
                        std::thread::yield_now();
                    }
                }
            });
            let got: Vec<i32> = std::iter::from_fn(|| q.recv()).collect();
            assert_eq!(got, (0..1000).collect::<Vec<_>>());
        });
        assert_eq!(q.send(1), Err(1));
    }
}
