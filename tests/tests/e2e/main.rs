//! End-to-end tests: the real binaries, run as a technician or a
//! data-centre operator would run them.

mod attacks;
mod boxlab;
mod broker;
mod browser;
mod chromium;
mod clock;
mod config;
mod crash;
mod dashboard;
mod dc_access;
mod demo;
mod doctor;
mod dossier;
mod downstream;
mod fleet;
mod identity;
mod kiosk;
mod network;
mod provision;
mod runbook;
mod selftest;
mod service;
mod sync;
