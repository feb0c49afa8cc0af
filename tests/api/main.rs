//! End-to-end tests: each starts a real server in-process and talks HTTP, WebSocket and SSE.

mod actors;
mod architecture;
mod auth_hardening;
mod conformance;
mod dashboard;
mod errors;
mod gateway;
mod helpers;
mod isolation;
mod knowledge;
mod limits;
mod live;
mod live_limits;
mod load;
mod mc_board;
mod mc_notify;
mod mc_setup;
mod ops;
mod outbound;
mod paging;
mod tokens;
mod tools;
mod upstream;
