//! OpenAI's search `filters` on file attributes: comparisons (`eq`, `ne`, `gt`, `gte`, `lt`,
//! `lte`, `in`, `nin`) and their compounds (`and`, `or`).

use serde_json::Value;

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare { op: Op, key: String, value: Value },
    All(Vec<Filter>),
    Any(Vec<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
}

/// Compound filters may nest this deep.
const MAX_DEPTH: usize = 8;

impl Filter {
    pub fn parse(value: &Value) -> Result<Filter, ApiError> {
        Self::parse_at(value, 0)
    }

    /// A request's optional `filters` (absent or null: none).
    pub fn optional(value: Option<&Value>) -> Result<Option<Filter>, ApiError> {
        value
            .filter(|f| !f.is_null())
            .map(Filter::parse)
            .transpose()
    }

    fn parse_at(value: &Value, depth: usize) -> Result<Filter, ApiError> {
        let bad = |m: String| ApiError::Validation(format!("filters: {m}"));
        if depth > MAX_DEPTH {
            return Err(bad(format!("nested more than {MAX_DEPTH} deep")));
        }
        let kind = value["type"]
            .as_str()
            .ok_or_else(|| bad("each filter needs a type".into()))?;
        let op = match kind {
            "and" | "or" => {
                let filters = value["filters"]
                    .as_array()
                    .ok_or_else(|| bad(format!("an {kind:?} filter needs a filters array")))?
                    .iter()
                    .map(|f| Self::parse_at(f, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if kind == "and" {
                    Filter::All(filters)
                } else {
                    Filter::Any(filters)
                });
            }
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "in" => Op::In,
            "nin" => Op::Nin,
            other => return Err(bad(format!("unknown type {other:?}"))),
        };
        let key = value["key"]
            .as_str()
            .ok_or_else(|| bad(format!("a {kind:?} filter needs a key")))?
            .to_owned();
        let value = value
            .get("value")
            .filter(|v| !v.is_null())
            .cloned()
            .ok_or_else(|| bad(format!("a {kind:?} filter needs a value")))?;
        let list = matches!(op, Op::In | Op::Nin);
        if list != value.is_array() || value.is_object() {
            return Err(bad(format!(
                "the value of a {kind:?} filter must be {}",
                if list {
                    "an array"
                } else {
                    "a string, number or boolean"
                }
            )));
        }
        Ok(Filter::Compare { op, key, value })
    }

    /// Whether a file with `attributes` passes.
    pub fn matches(&self, attributes: &Value) -> bool {
        match self {
            Filter::All(filters) => filters.iter().all(|f| f.matches(attributes)),
            Filter::Any(filters) => filters.iter().any(|f| f.matches(attributes)),
            Filter::Compare { op, key, value } => {
                let Some(actual) = attributes.get(key) else {
                    return *op == Op::Ne || *op == Op::Nin;
                };
                let order = || compare(actual, value);
                match op {
                    Op::Eq => same(actual, value),
                    Op::Ne => !same(actual, value),
                    Op::Gt => order().is_some_and(|o| o.is_gt()),
                    Op::Gte => order().is_some_and(|o| o.is_ge()),
                    Op::Lt => order().is_some_and(|o| o.is_lt()),
                    Op::Lte => order().is_some_and(|o| o.is_le()),
                    Op::In => value
                        .as_array()
                        .is_some_and(|vs| vs.iter().any(|v| same(actual, v))),
                    Op::Nin => !value
                        .as_array()
                        .is_some_and(|vs| vs.iter().any(|v| same(actual, v))),
                }
            }
        }
    }
}

/// Numbers compare by value (so 1 equals 1.0); everything else as JSON.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comparisons_and_compounds() {
        let attrs = json!({ "author": "ada", "year": 2024, "draft": false });
        let f = |v: Value| Filter::parse(&v).unwrap().matches(&attrs);
        assert!(f(json!({ "type": "eq", "key": "author", "value": "ada" })));
        assert!(!f(json!({ "type": "eq", "key": "author", "value": "bob" })));
        assert!(f(json!({ "type": "gte", "key": "year", "value": 2024.0 })));
        assert!(!f(json!({ "type": "gt", "key": "year", "value": 2024 })));
        assert!(f(json!({ "type": "ne", "key": "missing", "value": 1 })));
        assert!(f(
            json!({ "type": "in", "key": "author", "value": ["bob", "ada"] })
        ));
        assert!(f(json!({ "type": "and", "filters": [
            { "type": "eq", "key": "draft", "value": false },
            { "type": "or", "filters": [
                { "type": "lt", "key": "year", "value": 2000 },
                { "type": "eq", "key": "author", "value": "ada" },
            ]},
        ]})));
        for bad in [
            json!({ "type": "eq", "key": "a" }),
            json!({ "type": "in", "key": "a", "value": "x" }),
            json!({ "type": "near", "key": "a", "value": 1 }),
            json!({ "type": "and" }),
        ] {
            assert!(Filter::parse(&bad).is_err(), "{bad}");
        }
    }
}
