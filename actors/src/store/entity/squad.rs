use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "squads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub workflow: Option<String>,
    pub created_at: DateTimeUtc,
    /// SHA-256 of the one-time setup token.
    pub setup_token_hash: Option<String>,
    pub setup_expires_at: Option<DateTimeUtc>,
    pub setup_used_at: Option<DateTimeUtc>,
    /// The account's default squad, which agents made through the gateway join.
    pub is_default: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
