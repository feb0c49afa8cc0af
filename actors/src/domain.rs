//! Parsed input: a request becomes one of these through `parse`, so everything past the HTTP
//! layer can trust it.

use std::fmt;

/// Why input was refused, in words a client can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bounded(field: &str, value: &str, max_chars: usize) -> Result<String, Invalid> {
    if value.chars().count() > max_chars {
        return Err(Invalid(format!(
            "{field} must be at most {max_chars} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

/// A squad's display name: 1 to 100 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SquadName(String);

impl SquadName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(Invalid("name must not be empty".into()));
        }
        bounded("name", name, 100).map(SquadName)
    }
}

impl AsRef<str> for SquadName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An agent's name, which is also how it is @mentioned: a letter, then up to 31 letters,
/// digits, `_` or `-`. Unique per squad regardless of case; `all` is reserved for `@all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentName(String);

impl AgentName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && name.len() <= 32;
        if !valid {
            return Err(Invalid(format!(
                "agent name {name:?} must start with a letter and hold at most 32 letters, digits, '_' or '-'"
            )));
        }
        if name.eq_ignore_ascii_case("all") {
            return Err(Invalid("agent name \"all\" is reserved for @all".into()));
        }
        Ok(AgentName(name.to_owned()))
    }

    /// The case-folded form that uniqueness and lookups use.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl AsRef<str> for AgentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What an agent is meant to be, from which its SOUL.md is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    pub name: AgentName,
    pub role: String,
    pub personality: String,
    pub expertise: Vec<String>,
}

impl AgentSpec {
    pub const MAX_EXPERTISE: usize = 20;

    pub fn parse(
        name: &str,
        role: Option<&str>,
        personality: Option<&str>,
        expertise: &[String],
    ) -> Result<Self, Invalid> {
        if expertise.len() > Self::MAX_EXPERTISE {
            return Err(Invalid(format!(
                "expertise may list at most {} items",
                Self::MAX_EXPERTISE
            )));
        }
        Ok(AgentSpec {
            name: AgentName::parse(name)?,
            role: bounded("role", role.unwrap_or("").trim(), 100)?,
            personality: bounded("personality", personality.unwrap_or("").trim(), 2_000)?,
            expertise: expertise
                .iter()
                .map(|e| bounded("expertise item", e.trim(), 100))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A squad to create, with the specs of its first agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSquad {
    pub name: SquadName,
    pub description: Option<String>,
    pub workflow: Option<String>,
    pub agents: Vec<AgentSpec>,
}

impl NewSquad {
    pub const MAX_AGENTS: usize = 50;

    pub fn parse(
        name: &str,
        description: Option<&str>,
        workflow: Option<&str>,
        agents: Vec<AgentSpec>,
    ) -> Result<Self, Invalid> {
        if agents.len() > Self::MAX_AGENTS {
            return Err(Invalid(format!(
                "a squad may start with at most {} agents",
                Self::MAX_AGENTS
            )));
        }
        let mut keys: Vec<String> = agents.iter().map(|a| a.name.key()).collect();
        keys.sort();
        if let Some(dup) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(Invalid(format!("agent name {:?} is given twice", dup[0])));
        }
        Ok(NewSquad {
            name: SquadName::parse(name)?,
            description: description
                .map(|d| bounded("description", d, 2_000))
                .transpose()?,
            workflow: workflow.map(|w| bounded("workflow", w, 100)).transpose()?,
            agents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_are_mentionable_and_case_folded() {
        assert_eq!(AgentName::parse(" Writer ").unwrap().key(), "writer");
        assert!(AgentName::parse("code-bot_2").is_ok());
        for bad in ["", "2fast", "has space", "a@b", "All", &"x".repeat(33)] {
            assert!(AgentName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn duplicate_agent_names_differing_in_case_are_refused() {
        let spec = |n| AgentSpec::parse(n, None, None, &[]).unwrap();
        let err = NewSquad::parse("Team", None, None, vec![spec("Writer"), spec("writer")]);
        assert!(err.unwrap_err().0.contains("twice"));
    }

    #[test]
    fn squad_names_are_trimmed_and_bounded() {
        assert_eq!(SquadName::parse("  Team ").unwrap().as_ref(), "Team");
        assert!(SquadName::parse("   ").is_err());
        assert!(SquadName::parse(&"n".repeat(101)).is_err());
    }
}
