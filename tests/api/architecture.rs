//! The shape of the source: no two modules import each other, directly or through a ring.
//!
//! A module is a file (`a/b.rs` or `a/b/mod.rs` is `a::b`). It imports another when it names
//! it in a `use` or a path: `crate::...`, `super::...`, `self::...`, or one of its own
//! submodules by name. The crate root (`lib.rs`) is left out: it is the table of contents that
//! every module reaches. A ring made only of a module and its own submodules is allowed (a
//! parent holds the types its parts share and calls into them); any other ring fails, and the
//! message names its modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

#[test]
fn no_two_modules_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rings = Vec::new();
    for crate_dir in ["src", "actors/src"] {
        let graph = imports(&root.join(crate_dir));
        for ring in rings_of(&graph) {
            let names: Vec<String> = ring.iter().map(|m| m.join("::")).collect();
            rings.push(format!("{crate_dir}: {}", names.join(", ")));
        }
    }
    assert!(
        rings.is_empty(),
        "modules that import each other (one ring per line):\n{}",
        rings.join("\n")
    );
}

#[test]
fn the_ring_finder_sees_a_ring_through_a_parent() {
    // state -> live::streams -> live -> state is a ring; tools <-> tools::server is a family.
    let edges = [
        ("state", "live::streams"),
        ("live::streams", "live"),
        ("live", "state"),
        ("tools", "tools::server"),
        ("tools::server", "tools"),
    ];
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    let module = |s: &str| s.split("::").map(str::to_owned).collect::<Module>();
    for (from, to) in edges {
        graph.entry(module(from)).or_default().insert(module(to));
        graph.entry(module(to)).or_default();
    }
    let rings = rings_of(&graph);
    assert_eq!(
        rings,
        vec![vec![
            module("live"),
            module("live::streams"),
            module("state")
        ]]
    );
}

/// Every module of the crate in `dir`, with the modules it imports.
fn imports(dir: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = BTreeMap::new();
    collect(dir, dir, &mut files);
    let modules: BTreeSet<Module> = files.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, source) in &files {
        if module.is_empty() {
            continue;
        }
        let tokens = tokens(&without_tests(&strip(source)));
        let children = declared_modules(&tokens);
        let mut targets = BTreeSet::new();
        for path in paths(&tokens) {
            let Some(full) = absolute(module, &children, &path) else {
                continue;
            };
            // The longest prefix that is a module (the rest names an item in it).
            let target = (0..=full.len())
                .rev()
                .map(|n| full[..n].to_vec())
                .find(|prefix| modules.contains(prefix))
                .unwrap_or_default();
            if !target.is_empty() && &target != module {
                targets.insert(target);
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<Module, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut module: Module = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            // `main.rs` of the server crate is a binary of its own, not a module.
            if path.file_name().is_some_and(|f| f == "main.rs") && module.is_empty() {
                continue;
            }
            files.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// `path` (as written in `module`) as a path from the crate root, if it is one of ours.
fn absolute(module: &Module, children: &BTreeSet<String>, path: &[String]) -> Option<Module> {
    let (first, rest) = path.split_first()?;
    let mut base = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.clone(),
        "super" => module[..module.len().checked_sub(1)?].to_vec(),
        name if children.contains(name) => {
            let mut own = module.clone();
            own.push(name.to_owned());
            return Some(own.into_iter().chain(rest.iter().cloned()).collect());
        }
        _ => return None,
    };
    let mut rest = rest;
    while let Some((next, tail)) = rest.split_first() {
        if next != "super" {
            break;
        }
        base.pop()?;
        rest = tail;
    }
    Some(base.into_iter().chain(rest.iter().cloned()).collect())
}

/// The source without comments, string literals and character literals.
fn strip(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && !ident_char(chars.get(i.wrapping_sub(1)))
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A character literal ('x', '\n', '\''), or else a lifetime.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The source without its `mod tests { ... }` blocks: tests are not the architecture.
fn without_tests(source: &str) -> String {
    let mut out = String::new();
    let mut rest = source;
    while let Some(at) = rest.find("mod tests {") {
        out.push_str(&rest[..at]);
        let body = &rest[at + "mod tests ".len()..];
        let mut depth = 0;
        let mut end = body.len();
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &body[end..];
    }
    out.push_str(rest);
    out
}

/// Identifiers and the punctuation paths are made of.
fn tokens(source: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".into());
            i += 2;
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            i += 1;
        }
    }
    tokens
}

/// The submodules a file declares (`mod name;`).
fn declared_modules(tokens: &[String]) -> BTreeSet<String> {
    tokens
        .windows(3)
        .filter(|w| w[0] == "mod" && w[2] == ";")
        .map(|w| w[1].clone())
        .collect()
}

/// Every path the tokens name: those of `use` trees (expanded) and any `a::b::c` elsewhere.
fn paths(tokens: &[String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "use" {
            let end = (i..tokens.len())
                .find(|&j| tokens[j] == ";")
                .unwrap_or(tokens.len());
            let mut at = i + 1;
            use_tree(&tokens[..end], &mut at, Vec::new(), &mut paths);
            i = end;
            continue;
        }
        let starts_path = is_ident(&tokens[i])
            && tokens.get(i + 1).is_some_and(|t| t == "::")
            && (i == 0 || tokens[i - 1] != "::");
        if starts_path {
            let mut path = vec![tokens[i].clone()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|t| t == "::")
                && tokens.get(j + 1).is_some_and(|t| is_ident(t))
            {
                path.push(tokens[j + 1].clone());
                j += 2;
            }
            paths.push(path);
            i = j;
            continue;
        }
        i += 1;
    }
    paths
}

/// One `use` tree starting at `at`, its paths under `prefix` pushed onto `out`.
fn use_tree(tokens: &[String], at: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    while *at < tokens.len() {
        let token = &tokens[*at];
        if token == "{" {
            *at += 1;
            while *at < tokens.len() && tokens[*at] != "}" {
                use_tree(tokens, at, path.clone(), out);
                if tokens.get(*at).is_some_and(|t| t == ",") {
                    *at += 1;
                }
            }
            *at += 1;
            return;
        } else if token == "::" {
            *at += 1;
        } else if token == "as" {
            *at += 2;
        } else if token == "," || token == "}" {
            break;
        } else {
            if token != "self" || path.is_empty() {
                path.push(token.clone());
            }
            *at += 1;
        }
    }
    out.push(path);
}

fn is_ident(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The rings of `graph` (its strongly connected parts of more than one module) that are not a
/// module with its own submodules, each sorted.
fn rings_of(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    // Tarjan's algorithm, iteratively over a small graph.
    struct Walk<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        parts: Vec<Vec<Module>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a Module) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.graph.get(v).into_iter().flatten() {
                if !self.graph.contains_key(w) {
                    continue;
                }
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut part = Vec::new();
                while let Some(w) = self.stack.pop() {
                    part.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                part.sort();
                self.parts.push(part);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        parts: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    let mut rings: Vec<Vec<Module>> = walk
        .parts
        .into_iter()
        .filter(|part| part.len() > 1)
        .filter(|part| {
            let family = part
                .iter()
                .any(|head| part.iter().all(|m| m.starts_with(head)));
            !family
        })
        .collect();
    rings.sort();
    rings
}
