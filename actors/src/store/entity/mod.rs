//! sea-orm entities, one per table.

pub mod agent;
pub mod agent_knowledge;
pub mod agent_tool;
pub mod api_token;
pub mod chunk;
pub mod comment;
pub mod conversation;
pub mod document;
pub mod event;
pub mod file;
pub mod file_batch;
pub mod mcp_server;
pub mod message;
pub mod model;
pub mod notification;
pub mod organization;
pub mod provider;
pub mod squad;
pub mod squad_key;
pub mod task;
pub mod task_assignee;
pub mod task_subscription;
pub mod vector_store;
pub mod vector_store_file;
pub mod watch_item;
