use sea_orm::entity::prelude::*;

/// An account's Model Context Protocol server, whose tools its agents may use.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mcp_servers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// `http` (streamable HTTP at `url`) or `stdio` (`command` with `args`, run by us).
    pub transport: String,
    pub url: Option<String>,
    pub command: Option<String>,
    /// The program's arguments, a JSON array of strings.
    pub args: Json,
    /// HTTP headers or the program's environment, a JSON object, sealed.
    pub secrets_sealed: Option<String>,
    /// Whether calls to it may reach private addresses (granted to admins when stored).
    pub allow_private: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
