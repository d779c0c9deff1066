//! ADD, rollback, DEL, GC and CHECK without root: the plugin's logic run on the fake kernel
//! (`kernel::fake`), proving what tests/netns proves against the real one.

mod add;
mod address_families;
mod del;
mod drift;
mod drift_message;
mod existing_objects;
mod gc;
mod kill;
mod rollback;
mod support;
