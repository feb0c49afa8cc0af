//! Shared by the test suite (`tests/api`) and the benchmarks (`benches/common`), which are
//! separate crates: each includes this file as a module.

/// `postgres://u@h:p/db?x` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let root = &base[..base
        .rfind('/')
        .filter(|i| *i > "postgres://".len())
        .unwrap_or(base.len())];
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}
