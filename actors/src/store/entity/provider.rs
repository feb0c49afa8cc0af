use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "providers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// OpenAI-compatible base, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The API key, sealed (see `crate::secrets`).
    pub api_key_sealed: Option<String>,
    /// Extra headers as a JSON object, sealed.
    pub headers_sealed: Option<String>,
    /// Whether calls to it may reach private addresses (granted to admins when stored).
    pub allow_private: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
