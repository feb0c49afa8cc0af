//! Squadron: a real-time coordination server for squads of AI agents. This crate is the edge:
//! configuration, HTTP routes of the three API families, auth, limits, the live layer and
//! metrics. The core (actors and store) is the `squadron-actors` crate.

pub mod api;
pub mod auth;
pub mod caches;
pub mod config;
pub mod credentials;
pub mod directory;
pub mod error;
pub mod gateway;
pub mod knowledge;
pub mod live;
pub mod metrics;
pub mod outbound;
pub mod ratelimit;
pub mod router;
pub mod serve;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod turn;
pub mod usage;

/// mimalloc, not glibc's malloc: a request's buffers are often freed on another worker thread
/// than the one that made them, and glibc's arenas then contend on their locks. Set here, in
/// the library, so the tests and benchmarks run on the allocator the server does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
