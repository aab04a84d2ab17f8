//! The store's integration tests: real SQLite files in temporary
//! directories, the real writer thread.

mod corruption;
mod full_disk;
mod journal;
mod model;
mod support;
mod writer;
