//! sea-orm entities, one per table.

pub mod agent;
pub mod api_token;
pub mod event;
pub mod organization;
pub mod squad;
