//! The store's integration tests: real SQLite files in temporary
//! directories, the real writer thread.

mod corruption;
mod journal;
mod model;
mod support;
mod writer;
