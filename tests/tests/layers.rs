//! Layers point one way (docs/layout.md): the decoder engine is a crate that depends on no other
//! crate of the workspace, no two files of the engine import each other in a circle, and no two
//! top modules of siren-core do either.
//!
//! Imports are read from the source: every `crate::name` path and every name in a
//! `use crate::{...}` group (and `super::name` in the engine, whose modules are the crate's
//! top level), outside `#[cfg(test)]` code and comments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The workspace's own crates (path dependencies in `[workspace.dependencies]`).
fn workspace_crates() -> BTreeSet<String> {
    let cfg: toml::Table = toml::from_str(&read(&root().join("Cargo.toml"))).unwrap();
    let deps = cfg["workspace"]["dependencies"].as_table().unwrap();
    let own: BTreeSet<String> = deps
        .iter()
        .filter(|(_, v)| v.get("path").is_some())
        .map(|(k, _)| k.clone())
        .collect();
    assert!(
        own.contains("siren-core") && own.contains("siren-engine"),
        "{own:?}"
    );
    own
}

/// Every dependency a manifest names, with the table that names it.
fn dependencies(manifest: &str) -> Vec<(String, String)> {
    let manifest: toml::Table = toml::from_str(&read(&root().join(manifest))).unwrap();
    let mut tables = vec![];
    for key in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(t) = manifest.get(key).and_then(|t| t.as_table()) {
            tables.push((key.to_string(), t.clone()));
        }
    }
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        for (cfg, t) in targets {
            for key in ["dependencies", "dev-dependencies", "build-dependencies"] {
                if let Some(d) = t.get(key).and_then(|d| d.as_table()) {
                    tables.push((format!("target.{cfg}.{key}"), d.clone()));
                }
            }
        }
    }
    tables
        .into_iter()
        .flat_map(|(key, deps)| {
            deps.keys()
                .map(move |n| (key.clone(), n.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_engine_crate_depends_on_no_other_crate_of_the_workspace() {
    let own = workspace_crates();
    let deps = dependencies("siren-engine/Cargo.toml");
    assert!(
        !deps.is_empty(),
        "siren-engine/Cargo.toml lists no dependencies"
    );
    for (key, name) in deps {
        assert!(
            !own.contains(&name) && !name.starts_with("siren"),
            "siren-engine/Cargo.toml [{key}] depends on `{name}`, a crate above the engine"
        );
    }
}

#[test]
fn the_cli_reaches_plugins_only_through_the_registry() {
    // The plugin crates: those under plugins/ (their collection `siren-plugins` excepted).
    let cfg: toml::Table = toml::from_str(&read(&root().join("Cargo.toml"))).unwrap();
    let plugin_crates: BTreeSet<String> = cfg["workspace"]["dependencies"]
        .as_table()
        .unwrap()
        .iter()
        .filter(|(k, v)| {
            v.get("path")
                .and_then(|p| p.as_str())
                .is_some_and(|p| p.starts_with("plugins/"))
                && k.as_str() != "siren-plugins"
        })
        .map(|(k, _)| k.clone())
        .collect();
    assert!(
        plugin_crates.contains("siren-trainers"),
        "{plugin_crates:?}"
    );
    let deps = dependencies("siren-cli/Cargo.toml");
    assert!(deps.iter().any(|(_, n)| n == "siren-plugins"), "{deps:?}");
    for (key, name) in deps {
        assert!(
            !plugin_crates.contains(&name),
            "siren-cli/Cargo.toml [{key}] depends on the plugin crate `{name}`: the CLI builds \
             plugins by name through the registry (`siren-plugins` links them all)"
        );
    }
}

/// Source text without comments and without the code after the first `#[cfg(test)]`.
fn code(path: &Path) -> String {
    let text = read(path);
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first path segments a file's code reaches through `prefix` (`crate::` or `super::`),
/// including every name of a `prefix{a, b::c}` group.
fn reached(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let body = &group[..group.find(';').unwrap_or(group.len())];
            let mut depth = 0;
            let mut start = true;
            for (j, c) in body.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        start = true;
                        continue;
                    }
                    _ => {}
                }
                if start && depth == 0 && (c.is_ascii_alphabetic() || c == '_') {
                    out.insert(ident_at(&body[j..]).to_string());
                    start = false;
                } else if !c.is_whitespace() {
                    start = false;
                }
            }
        } else {
            out.insert(ident_at(rest).to_string());
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The top modules of `src` (files and folders beside `lib.rs`) and, for each, the other top
/// modules its files reach, with one file that does so.
fn module_graph(src: &Path, super_is_root: bool) -> BTreeMap<String, BTreeMap<String, String>> {
    let tops: BTreeSet<String> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "lib")
        .collect();
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" {
            continue;
        }
        let code = code(&file);
        let mut names = reached(&code, "crate::");
        if super_is_root && rel.components().count() == 1 {
            names.extend(reached(&code, "super::"));
        }
        let edges = graph.entry(top.clone()).or_default();
        for n in names {
            if n != top && tops.contains(&n) {
                edges.entry(n).or_insert_with(|| rel.display().to_string());
            }
        }
    }
    graph
}

/// Every circle of the graph (its strongly connected parts of more than one module), each
/// with the edges that close it.
fn circles(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<String> {
    let nodes: Vec<&String> = graph.keys().collect();
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for m in graph.get(&n).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = vec![];
    for n in &nodes {
        if done.contains(*n) || !reaches[n].contains(*n) {
            continue;
        }
        let part: BTreeSet<&String> = nodes
            .iter()
            .copied()
            .filter(|m| reaches[n].contains(*m) && reaches[*m].contains(*n))
            .collect();
        let mut edges = vec![];
        for a in &part {
            for (b, file) in &graph[*a] {
                if part.contains(b) {
                    edges.push(format!("{a} -> {b} ({file})"));
                }
            }
            done.insert((*a).clone());
        }
        out.push(edges.join("; "));
    }
    out
}

#[test]
fn no_two_files_of_the_engine_import_each_other_in_a_circle() {
    let graph = module_graph(&root().join("siren-engine/src"), true);
    assert!(graph.len() > 10, "only {} engine modules read", graph.len());
    let found = circles(&graph);
    assert!(
        found.is_empty(),
        "import circles in siren-engine: {found:#?}"
    );
}

#[test]
fn no_two_top_modules_of_siren_core_import_each_other_in_a_circle() {
    let graph = module_graph(&root().join("siren-core/src"), false);
    assert!(
        graph.len() > 15,
        "only {} siren-core modules read",
        graph.len()
    );
    let found = circles(&graph);
    assert!(found.is_empty(), "import circles in siren-core: {found:#?}");
}

#[test]
fn the_import_reader_sees_paths_groups_and_circles() {
    let code = "use crate::{a::X, b, c::{D, E}};\nfn f() { crate::d::g(); my_crate::e(); }";
    let got: Vec<String> = reached(code, "crate::").into_iter().collect();
    assert_eq!(got, ["a", "b", "c", "d"]);
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    g.entry("a".into())
        .or_default()
        .insert("b".into(), "a.rs".into());
    g.entry("b".into())
        .or_default()
        .insert("c".into(), "b.rs".into());
    g.entry("c".into()).or_default();
    assert!(circles(&g).is_empty());
    g.entry("c".into())
        .or_default()
        .insert("a".into(), "c.rs".into());
    assert_eq!(circles(&g).len(), 1, "{:?}", circles(&g));
}
