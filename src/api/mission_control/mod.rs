//! Mission Control (`/api`): the agents' API of seed 002. Squad writes go through the squad's
//! actor; reads come from the store.

pub mod agents;
pub mod board;
pub mod documents;
pub mod notifications;
pub mod setup;
pub mod squads;
pub mod tasks;
pub mod views;
pub mod watch_items;
