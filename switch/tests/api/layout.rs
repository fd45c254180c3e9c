//! The crate's layout: its top-level modules depend on each other one way (no import
//! circle), every module opens with its documentation, and the pipeline's entry module is
//! the ordered list of steps, not the steps themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a source file belongs to (`pipeline` for `pipeline/card.rs`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The top-level modules a file names through `crate::`.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + 7..];
        if let Some(list) = rest.strip_prefix('{') {
            // `use crate::{a::b, c};`: every first segment in the braces.
            let end = list.find('}').unwrap_or(list.len());
            for item in list[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

#[test]
fn top_level_modules_depend_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(m) = module_of(&src, f) else {
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        let deps = graph.entry(m.clone()).or_default();
        for u in uses(&text) {
            if u != m && !matches!(u.as_str(), "Config" | "Running" | "start") {
                deps.insert(u);
            }
        }
    }
    // The layers the README's crate map draws: nothing below may name what is above it.
    for (low, high) in [
        ("model", "journal"),
        ("journal", "state"),
        ("journal", "pipeline"),
        ("state", "pipeline"),
        ("issuer", "saf"),
        ("issuer", "pipeline"),
        ("saf", "pipeline"),
        ("pipeline", "server"),
        ("pipeline", "daemon"),
        ("config", "pipeline"),
    ] {
        assert!(
            !graph.get(low).is_some_and(|d| d.contains(high)),
            "{low} must not use {high}: {:?}",
            graph.get(low)
        );
    }
    // No circle at all: a depth-first search finds none.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(i) = path.iter().position(|p| p == m) {
            panic!("import circle: {} -> {m}", path[i..].join(" -> "));
        }
        path.push(m.to_owned());
        for d in graph.get(m).into_iter().flatten() {
            visit(d, graph, path, done);
        }
        path.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
    assert!(graph.len() >= 15, "modules found: {:?}", graph.keys());
}

#[test]
fn every_module_opens_with_its_documentation() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not open with a module doc",
            f.display()
        );
    }
}

#[test]
fn the_pipeline_entry_is_the_ordered_steps() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/pipeline/mod.rs"))
            .unwrap();
    let lines = text.lines().count();
    assert!(lines < 500, "pipeline/mod.rs has {lines} lines");
}
