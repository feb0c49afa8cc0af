//! Squadron's database schema as ordered sea-orm migrations. They run at start-up and by
//! `squadron migrate`, on SQLite and on PostgreSQL alike.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_foundation;
mod m20261123_000002_mission_control;
mod m20261123_000003_gateway;
mod m20261123_000004_gateway_agents;
mod m20261123_000005_conversations;
mod m20261128_000006_knowledge;
mod m20261129_000007_tools;
mod m20261201_000008_outbound_reach;
mod util;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_foundation::Migration),
            Box::new(m20261123_000002_mission_control::Migration),
            Box::new(m20261123_000003_gateway::Migration),
            Box::new(m20261123_000004_gateway_agents::Migration),
            Box::new(m20261123_000005_conversations::Migration),
            Box::new(m20261128_000006_knowledge::Migration),
            Box::new(m20261129_000007_tools::Migration),
            Box::new(m20261201_000008_outbound_reach::Migration),
        ]
    }
}
