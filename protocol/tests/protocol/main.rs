//! The protocol crate's integration tests: one binary, one module per topic.

mod batch;
mod chain;
mod envelope;
mod support;
mod vectors;
