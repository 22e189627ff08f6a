//! A worker's batch: a list that gathers items while the batch is open and
//! hands them out, in the order they came, when it closes. The reply batch
//! (clients to write to once a server connection's replies are handed out,
//! `client.rs`) and the write batch (server connections to write to once
//! the hub's round ends, `write_batch.rs`) are two of these.

use std::cell::RefCell;
use std::thread::LocalKey;

/// The items gathered in a thread's open batch.
pub struct Batch<T> {
    open: bool,
    items: Vec<T>,
}

/// A thread's batch of `T` (a `thread_local!`).
pub type Slot<T> = LocalKey<RefCell<Batch<T>>>;

impl<T> Batch<T> {
    /// A closed, empty batch.
    pub const fn new() -> Batch<T> {
        Batch {
            open: false,
            items: Vec::new(),
        }
    }
}

/// An open batch: when it drops, the batch closes and its items go to
/// `each`, in the order they came.
pub struct Guard<T: 'static> {
    slot: &'static Slot<T>,
    each: fn(T),
}

impl<T: 'static> Guard<T> {
    /// Opens the batch in `slot`; `None` when one is open already (batches
    /// do not nest: the inner one joins the outer).
    pub fn open(slot: &'static Slot<T>, each: fn(T)) -> Option<Guard<T>> {
        let opened = slot.with(|b| !std::mem::replace(&mut b.borrow_mut().open, true));
        opened.then_some(Guard { slot, each })
    }
}

impl<T: 'static> Drop for Guard<T> {
    fn drop(&mut self) {
        close(self.slot, self.each);
    }
}

/// Adds the item `make` makes to the open batch; `false` (and nothing made)
/// when no batch is open.
pub fn add<T: 'static>(slot: &'static Slot<T>, make: impl FnOnce() -> T) -> bool {
    slot.with(|b| {
        let mut b = b.borrow_mut();
        if b.open {
            b.items.push(make());
        }
        b.open
    })
}

/// Whether the batch holds any item.
pub fn any<T: 'static>(slot: &'static Slot<T>) -> bool {
    slot.with(|b| !b.borrow().items.is_empty())
}

/// Closes the batch and hands its items to `each`, in the order they came.
/// The batch is closed meanwhile: nothing joins it.
fn close<T: 'static>(slot: &'static Slot<T>, each: fn(T)) {
    let mut items = slot.with(|b| {
        let mut b = b.borrow_mut();
        b.open = false;
        std::mem::take(&mut b.items)
    });
    for item in items.drain(..) {
        each(item);
    }
    // The list goes back with its capacity: no allocation per batch.
    slot.with(|b| {
        let mut b = b.borrow_mut();
        if b.items.is_empty() {
            b.items = items;
        }
    });
}
