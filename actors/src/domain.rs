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
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    pub name: AgentName,
    pub role: String,
    pub personality: String,
    pub expertise: Vec<String>,
    /// How often the agent means to heartbeat; it is marked offline after 1.5x this.
    pub heartbeat_interval_secs: i32,
    /// Set for agents that answer in the gateway.
    pub llm: Option<LlmSettings>,
}

/// How an agent answers in the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmSettings {
    pub model_id: uuid::Uuid,
    pub system_prompt: Option<String>,
    /// Generation defaults, a JSON object.
    pub params: serde_json::Value,
}

impl AgentSpec {
    pub const MAX_EXPERTISE: usize = 20;
    pub const DEFAULT_HEARTBEAT_SECS: i32 = 60;

    pub fn parse(
        name: &str,
        role: Option<&str>,
        personality: Option<&str>,
        expertise: &[String],
        heartbeat_interval_secs: Option<i64>,
    ) -> Result<Self, Invalid> {
        let interval = heartbeat_interval_secs.unwrap_or(Self::DEFAULT_HEARTBEAT_SECS as i64);
        if !(1..=86_400).contains(&interval) {
            return Err(Invalid("heartbeat_interval_secs must be 1 to 86400".into()));
        }
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
            heartbeat_interval_secs: interval as i32,
            llm: None,
        })
    }
}

/// A squad to create, with the specs of its first agents.
#[derive(Debug, Clone, PartialEq)]
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

/// Declares a closed set of lowercase words: `parse` from a client, `as_str` to store and show.
macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal, [$($variant:ident = $word:literal),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            pub fn parse(raw: &str) -> Result<Self, Invalid> {
                match raw.trim().to_ascii_lowercase().as_str() {
                    $($word => Ok($name::$variant),)+
                    other => Err(Invalid(format!(
                        "{} must be one of {}, not {:?}",
                        $what,
                        [$($word),+].join(", "),
                        other
                    ))),
                }
            }
        }
    };
}

word_enum!(
    /// Where a task stands on the board, in board order.
    TaskStatus, "status",
    [Inbox = "inbox", Assigned = "assigned", InProgress = "in_progress", Review = "review", Done = "done", Blocked = "blocked"]
);

word_enum!(
    /// Listed lowest first: the work queue sorts by the reverse.
    Priority, "priority",
    [Low = "low", Normal = "normal", High = "high", Urgent = "urgent"]
);

word_enum!(
    DocKind,
    "type",
    [
        Deliverable = "deliverable",
        Research = "research",
        Protocol = "protocol",
        Draft = "draft"
    ]
);

word_enum!(
    AgentStatus,
    "status",
    [
        Active = "active",
        Idle = "idle",
        Busy = "busy",
        Offline = "offline"
    ]
);

word_enum!(
    WatchStatus,
    "status",
    [
        Watching = "watching",
        Triggered = "triggered",
        Resolved = "resolved"
    ]
);

/// Checks a free-text field: at most `max_chars`, no control characters but newlines and tabs.
pub fn text(field: &str, value: &str, max_chars: usize) -> Result<String, Invalid> {
    bounded(field, value, max_chars)
}

/// A required, trimmed title of 1 to `max_chars` characters.
pub fn title(field: &str, value: &str, max_chars: usize) -> Result<String, Invalid> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Invalid(format!("{field} must not be empty")));
    }
    bounded(field, value, max_chars)
}

/// What a comment @mentions: agent name keys (case-folded) and whether it says `@all`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mentions {
    pub names: Vec<String>,
    pub all: bool,
}

impl Mentions {
    /// Finds `@Name` tokens: an `@` at the start or after a non-name character, then a name.
    /// Each name counts once, whatever its case.
    pub fn parse(text: &str) -> Mentions {
        let mut found = Mentions::default();
        let chars: Vec<char> = text.chars().collect();
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let mut i = 0;
        while i < chars.len() {
            let starts = chars[i] == '@' && (i == 0 || !is_name(chars[i - 1]));
            if starts {
                let end = (i + 1..chars.len())
                    .find(|&j| !is_name(chars[j]))
                    .unwrap_or(chars.len());
                let word: String = chars[i + 1..end]
                    .iter()
                    .collect::<String>()
                    .to_ascii_lowercase();
                let word = word.trim_end_matches(['-', '_']).to_owned();
                if word == "all" {
                    found.all = true;
                } else if word.starts_with(|c: char| c.is_ascii_alphabetic())
                    && !found.names.contains(&word)
                {
                    found.names.push(word);
                }
                i = end;
            } else {
                i += 1;
            }
        }
        found
    }

    /// How many mentions this is, for the per-message limit (`@all` counts as one).
    pub fn count(&self) -> usize {
        self.names.len() + usize::from(self.all)
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
        let spec = |n| AgentSpec::parse(n, None, None, &[], None).unwrap();
        let err = NewSquad::parse("Team", None, None, vec![spec("Writer"), spec("writer")]);
        assert!(err.unwrap_err().0.contains("twice"));
    }

    #[test]
    fn squad_names_are_trimmed_and_bounded() {
        assert_eq!(SquadName::parse("  Team ").unwrap().as_ref(), "Team");
        assert!(SquadName::parse("   ").is_err());
        assert!(SquadName::parse(&"n".repeat(101)).is_err());
    }

    #[test]
    fn mentions_are_found_once_each_and_not_inside_emails() {
        let m = Mentions::parse("@Writer please ask @editor, cc @writer and me@example.com. @all!");
        assert_eq!(m.names, vec!["writer", "editor"]);
        assert!(m.all);
        assert_eq!(m.count(), 3);
        assert_eq!(Mentions::parse("no one here @ all"), Mentions::default());
        assert_eq!(Mentions::parse("(@Code-Bot)").names, vec!["code-bot"]);
    }

    #[test]
    fn word_enums_parse_case_insensitively_and_name_the_choices() {
        assert_eq!(
            TaskStatus::parse("In_Progress").unwrap(),
            TaskStatus::InProgress
        );
        let err = Priority::parse("asap").unwrap_err().0;
        assert!(err.contains("low, normal, high, urgent"), "{err}");
        assert!(Priority::Urgent > Priority::Low);
    }
}
