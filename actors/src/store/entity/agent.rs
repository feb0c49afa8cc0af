use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub squad_id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// `name` lowercased: agent names are case-insensitive within a squad.
    pub name_key: String,
    pub role: String,
    pub personality: String,
    /// A JSON array of strings.
    pub expertise: Json,
    pub status: String,
    pub heartbeat_interval_secs: i32,
    pub last_heartbeat_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub soul_md: String,
    pub soul_md_hash: String,
    /// Seconds into each heartbeat interval this agent is meant to beat, staggered across the squad.
    pub heartbeat_offset: i32,
    pub current_task_id: Option<Uuid>,
    /// When setup gave the agent its identity (SOUL.md, key); `None` before.
    pub activated_at: Option<DateTimeUtc>,
    /// For agents that answer in the gateway: their model, system prompt and generation
    /// defaults (a JSON object such as `{"temperature": 0.2}`).
    pub model_id: Option<Uuid>,
    pub system_prompt: Option<String>,
    pub params: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
