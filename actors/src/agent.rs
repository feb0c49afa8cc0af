//! `AgentActor`: one agent's presence. Its state is reloaded from the store whenever it starts.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use uuid::Uuid;

use crate::store::entity::agent;
use crate::{store, Alive, Shared};

pub struct AgentActor;

pub struct AgentArgs {
    pub agent_id: Uuid,
    /// The agent as its squad just loaded it; `None` makes the actor read it from the store.
    pub initial: Option<agent::Model>,
    pub shared: Arc<Shared>,
}

pub enum AgentMsg {
    Presence(RpcReplyPort<agent::Model>),
    #[cfg(feature = "test-hooks")]
    Panic,
}

pub struct AgentState {
    agent: agent::Model,
    _alive: Alive,
}

impl Actor for AgentActor {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = AgentArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<AgentMsg>,
        args: AgentArgs,
    ) -> Result<AgentState, ActorProcessingErr> {
        let agent = match args.initial {
            Some(agent) => agent,
            None => store::squads::agent(&args.shared.db, args.agent_id)
                .await?
                .ok_or("agent not found")?,
        };
        Ok(AgentState {
            agent,
            _alive: Alive::new("agent"),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AgentMsg::Presence(reply) => {
                let _ = reply.send(state.agent.clone());
            }
            #[cfg(feature = "test-hooks")]
            AgentMsg::Panic => panic!("test hook: agent {} panics", state.agent.id),
        }
        Ok(())
    }
}
