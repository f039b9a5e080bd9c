//! The architecture as a test: every `crate::…` reference in the library's code points to a
//! module on a lower layer, so no import runs back up the stack and no cycle can form.
//! `cargo nextest run --test module_layers --no-capture` prints the module graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom; a module may use modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["server"],
    &["api"],
    &["core"],
    &["session"],
    &["plugins"],
    &["services"],
    &["events"],
    &["media"],
    // The admin panel's pages manage the registry, so web sits above storage.
    &["web"],
    &["audio_file", "rtp", "storage"],
    &["config"],
    &["auth", "ids", "logging"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is on no layer: add it to LAYERS"))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::name` references outside comments.
fn references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split(" //").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs").to_string();
        // The binary's own modules (main, cli) sit above the library.
        if module == "main" || module == "cli" || module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(references(&text).into_iter().filter(|m| *m != module));
    }
    let mut wrong = Vec::new();
    for (module, uses) in &graph {
        println!(
            "{module} -> {}",
            uses.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for used in uses {
            if layer_of(used) <= layer_of(module) {
                wrong.push(format!("{module} uses {used}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports running up or across the stack: {wrong:?}"
    );
    assert!(graph.contains_key("services") && graph.contains_key("rtp"));
}
