//! The server's map, as a tidy rule: `crates/server/src` is sorted into product areas (`sts`, `communication`,
//! `chat`, `face`, `admin`, `ops`) over two shared layers (`http` over `platform`), composed by the crate root
//! (`lib`, `app`, `server`). Read from the `crate::`, `super::` and `self::` paths each module uses (comments and
//! `#[cfg(test)]` code aside):
//!
//! - an area uses its own modules, `http` and `platform`, never another area nor the root;
//! - `http` uses `http` and `platform`; `platform` uses only `platform`;
//! - no modules use each other in a cycle;
//! - every module is in an area, a layer or the root: a new folder is put on the map first.

use crate::tidy::{FILES, assert_none, read};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const SERVER_SRC: &str = "crates/server/src";
const AREAS: [&str; 6] = ["sts", "communication", "chat", "face", "admin", "ops"];
/// The crate root's modules beside `lib.rs`: the composition.
const ROOT: [&str; 2] = ["app", "server"];

/// A module's path in the crate (`["chat", "events"]`; the root is empty).
type Module = Vec<String>;

/// The module a file under `crates/server/src` defines.
fn module_of(relative: &Path) -> Module {
    let mut parts: Module = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Where a module sits: an area's name, `http`, `platform`, `root`, or (a module the map does not name) none.
fn layer(module: &[String]) -> Option<&str> {
    match module.first().map(String::as_str) {
        None => Some("root"),
        Some(first @ ("http" | "platform")) => Some(first),
        Some(first) if AREAS.contains(&first) => Some(first),
        Some(first) if ROOT.contains(&first) && module.len() == 1 => Some("root"),
        Some(_) => None,
    }
}

/// Whether a module in `from` may use one in `to`.
fn allowed(from: &str, to: &str) -> bool {
    from == to
        || match from {
            "root" => true,
            "http" => to == "platform",
            "platform" => false,
            _area => matches!(to, "http" | "platform"),
        }
}

/// The code of a module that the rules read: up to its `#[cfg(test)]` part, without comments.
fn code_of(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path, absolute, that `code` names from `module` (whose child modules are `children`): `crate::a::{b,
/// c::d}` gives `a::b` and `a::c::d`; `super::`, `self::` and a child's name are read from `module`.
fn used_paths(module: &[String], children: &[&str], code: &str) -> Vec<Module> {
    let parent = module[..module.len().saturating_sub(1)].to_vec();
    let mut anchors = vec![
        ("crate::".to_owned(), Vec::new()),
        ("super::".to_owned(), parent),
        ("self::".to_owned(), module.to_vec()),
    ];
    anchors.extend(
        children
            .iter()
            .map(|child| (format!("{child}::"), [module, &[(*child).to_owned()]].concat())),
    );
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    for (anchor, base) in anchors {
        for (at, _) in code.match_indices(&anchor) {
            let starts_a_path =
                at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || b"_:".contains(&bytes[at - 1]));
            if !starts_a_path {
                continue;
            }
            let mut base = base.clone();
            let mut rest = &code[at + anchor.len()..];
            while let Some(after) = rest.strip_prefix("super::") {
                base.pop();
                rest = after;
            }
            tree(rest, base, &mut found);
        }
    }
    found
}

/// Reads one use tree at the start of `text` under `prefix`, pushing each full path; returns what follows it.
fn tree<'t>(mut text: &'t str, mut prefix: Module, found: &mut Vec<Module>) -> &'t str {
    loop {
        text = text.trim_start();
        if let Some(group) = text.strip_prefix('{') {
            text = group;
            loop {
                text = tree(text, prefix.clone(), found).trim_start();
                text = text.strip_prefix(',').map_or(text, str::trim_start);
                if let Some(closed) = text.strip_prefix('}') {
                    return closed;
                }
                if !text.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '{' || c == '*')
                {
                    return text;
                }
            }
        }
        let end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let (ident, after) = text.split_at(end);
        if ident.is_empty() || ident == "self" {
            found.push(prefix);
            return after;
        }
        prefix.push(ident.to_owned());
        match after.strip_prefix("::") {
            Some(more) => text = more,
            None => {
                found.push(prefix);
                let after = after.trim_start();
                // `x as y`: the alias names nothing new.
                return match after.strip_prefix("as ") {
                    Some(alias) => alias
                        .trim_start()
                        .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_'),
                    None => after,
                };
            }
        }
    }
}

/// Which module each of `sources` (module → code) uses, as the longest known module each path starts with.
fn graph(sources: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    sources
        .iter()
        .map(|(module, code)| {
            let children: Vec<&str> = sources
                .keys()
                .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
                .map(|m| m[module.len()].as_str())
                .collect();
            let used = used_paths(module, &children, code)
                .into_iter()
                .filter_map(|path| {
                    (0..=path.len())
                        .rev()
                        .map(|n| path[..n].to_vec())
                        .find(|prefix| sources.contains_key(prefix))
                })
                .filter(|target| target != module)
                .collect();
            (module.clone(), used)
        })
        .collect()
}

/// The rules' offences over `sources` (module → code).
fn offences(sources: &BTreeMap<Module, String>) -> Vec<String> {
    let name = |m: &Module| {
        if m.is_empty() {
            "crate".to_owned()
        } else {
            m.join("::")
        }
    };
    let graph = graph(sources);
    let mut offences = Vec::new();
    for (module, used) in &graph {
        let Some(from) = layer(module) else {
            offences.push(format!(
                "{} is in no area nor layer: put it in one, or add its area to the map (ARCHITECTURE.md, AREAS)",
                name(module)
            ));
            continue;
        };
        for target in used {
            match layer(target) {
                Some(to) if !allowed(from, to) => {
                    offences.push(format!(
                        "{} uses {} ({from} may not use {to})",
                        name(module),
                        name(target)
                    ));
                }
                _ => {}
            }
        }
    }
    for cycle in cycles(&graph) {
        offences.push(format!(
            "import cycle: {}",
            cycle.iter().map(name).collect::<Vec<_>>().join(" → ")
        ));
    }
    offences
}

/// One cycle through each strongly connected group of modules, found by depth-first search.
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    let mut reported: BTreeSet<Module> = BTreeSet::new();
    let mut found = Vec::new();
    for start in graph.keys() {
        if reported.contains(start) {
            continue;
        }
        // Paths from `start`, searched depth-first; a path that comes back to `start` is a cycle.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut visited = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    cycle.push(start.clone());
                    reported.extend(path.iter().cloned());
                    found.push(cycle);
                    stack.clear();
                    break;
                }
                if visited.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found
}

/// The server's modules and their code, as the repository holds them.
fn server_sources() -> BTreeMap<Module, String> {
    FILES
        .iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(SERVER_SRC).ok()?;
            (path.extension()? == "rs").then(|| (module_of(relative), code_of(&read(path))))
        })
        .collect()
}

#[test]
fn server_areas_use_only_the_layers_below_and_no_cycle() {
    let sources = server_sources();
    assert!(
        sources.contains_key(&vec!["chat".to_owned()]),
        "the server's areas are where the map says"
    );
    assert_none("crates/server/src breaks its map", &offences(&sources));
}

#[test]
fn the_rule_fails_on_a_crossing_a_cycle_or_an_unmapped_module() {
    let source = |entries: &[(&str, &str)]| -> BTreeMap<Module, String> {
        entries
            .iter()
            .map(|(file, code)| (module_of(Path::new(file)), code_of(code)))
            .collect()
    };
    let clean = source(&[
        ("lib.rs", "mod chat; mod face; mod platform;"),
        ("chat/mod.rs", "pub(crate) use events::Hub;"),
        (
            "chat/events.rs",
            "use crate::chat::views::{self, message_view as view};\nuse super::views::time;",
        ),
        (
            "chat/views.rs",
            "use crate::platform::state::AppState; // crate::face::x in a comment",
        ),
        ("face/mod.rs", "use crate::platform::{state::AppState, config};"),
        ("platform/mod.rs", ""),
        (
            "platform/state.rs",
            "#[cfg(test)]\nmod tests { use crate::face::x; }",
        ),
        ("platform/config.rs", "use super::state::AppState;"),
    ]);
    assert_eq!(offences(&clean), Vec::<String>::new());

    let mut crossing = clean.clone();
    crossing.insert(
        vec!["chat".into(), "views".into()],
        "use crate::{platform::state, face::{engine::Face}};".into(),
    );
    assert_eq!(
        offences(&crossing),
        ["chat::views uses face (chat may not use face)"]
    );

    let mut upward = clean.clone();
    upward.insert(
        vec!["platform".into(), "config".into()],
        "use crate::chat::Hub;".into(),
    );
    let found = offences(&upward);
    assert!(
        found.contains(&"platform::config uses chat (platform may not use chat)".to_owned()),
        "{found:?}"
    );

    let mut unmapped = clean.clone();
    unmapped.insert(vec!["billing".into(), "invoices".into()], String::new());
    assert_eq!(
        offences(&unmapped),
        [
            "billing::invoices is in no area nor layer: put it in one, or add its area to the map (ARCHITECTURE.md, AREAS)"
        ]
    );

    let mut cycle = clean;
    cycle.insert(
        vec!["chat".into(), "views".into()],
        "use super::events::Delivery;".into(),
    );
    assert_eq!(
        offences(&cycle),
        ["import cycle: chat::events → chat::views → chat::events"]
    );
}
