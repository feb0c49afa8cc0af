use sea_orm::entity::prelude::*;

/// A piece of a file's text in a vector store. Its vector is `embedding` (little-endian f32)
/// on SQLite; on PostgreSQL it is the pgvector column `vec`, which the entity does not map.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "chunks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub vector_store_id: Uuid,
    pub file_id: Uuid,
    pub seq: i32,
    pub text: String,
    pub tokens: i32,
    pub dims: i32,
    pub embedding: Option<Vec<u8>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
