//! SquadOS (`/api/v1`): the integration API of seed 001.

pub mod agents;
pub mod bases;
pub mod conversations;
pub mod tokens;
