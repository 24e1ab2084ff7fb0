//! The crate's structure: no module imports another that (through any chain) imports it back,
//! and the flow model imports none of its implementations. Read from the sources: every path
//! a module names (`use` lines and paths in code, `crate::`, `super::`, `self::`, `host::`, a
//! child module's name), resolved through the re-exports of `lib.rs` and `mod.rs` files, whose
//! own `pub use` lines are a facade, not a dependency. Test code is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module: its path from its crate's root (`#bin` first for the program's modules).
type Module = Vec<String>;

struct Source {
    file: PathBuf,
    module: Module,
    text: String,
}

fn sources(src: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    let bin_modules: BTreeSet<String> = module_declarations(&code(
        &std::fs::read_to_string(src.join("main.rs")).unwrap(),
    ));
    files
        .into_iter()
        .map(|file| {
            let rel = file.strip_prefix(src).unwrap();
            let mut module: Module = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|l| l == "mod" || l == "lib") {
                module.pop();
            }
            if module == ["main"] {
                module = vec!["#bin".into()];
            } else if module.first().is_some_and(|m| bin_modules.contains(m)) {
                module.insert(0, "#bin".into());
            }
            let text = code(&std::fs::read_to_string(&file).unwrap());
            Source { file, module, text }
        })
        .collect()
}

/// The source without comments, string and character literals, and `#[cfg(test)]` items.
fn code(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let rest = |k: usize| b.get(i + k).copied().unwrap_or('\0');
        if b[i] == '/' && rest(1) == '/' {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if b[i] == '/' && rest(1) == '*' {
            i += 2;
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == 'r'
            && (rest(1) == '"' || (rest(1) == '#' && (rest(2) == '"' || rest(2) == '#')))
            && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_'))
        {
            let mut hashes = 0;
            let mut j = i + 1;
            while b[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if b[j] == '"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&'#')) {
                    i = j + 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
        } else if b[i] == '"' {
            i += 1;
            while b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == '\''
            && (rest(2) == '\''
                || (rest(1) == '\\' && b[i + 2..].iter().take(10).any(|&c| c == '\'')))
        {
            // A character literal (a lifetime has no closing quote this close).
            let mut j = i + 1;
            if b[j] == '\\' {
                j += 2;
            } else {
                j += 1;
            }
            while b[j] != '\'' {
                j += 1;
            }
            i = j + 1;
            out.push_str("' '");
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    // `#[cfg(test)]` items: through the end of their block (or their `;`).
    while let Some(at) = out.find("#[cfg(test)]") {
        let after: Vec<char> = out[at..].chars().collect();
        let mut depth = 0;
        let mut end = after.len();
        for (k, &c) in after.iter().enumerate() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = k + 1;
                    break;
                }
                _ => {}
            }
        }
        let cut: usize = after[..end].iter().map(|c| c.len_utf8()).sum();
        out.replace_range(at..at + cut, "");
    }
    out
}

/// The modules a file declares (`mod name;`).
fn module_declarations(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim();
        let line = line
            .strip_prefix("pub(crate) ")
            .or_else(|| line.strip_prefix("pub "))
            .unwrap_or(line);
        if let Some(name) = line.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            found.insert(name.trim().to_owned());
        }
    }
    found
}

/// The paths of a `use` tree (`a::{b, c::{d, e as f}}` → `a::b`, `a::c::d`, `a::c::e`).
fn use_paths(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let split_top = |s: &str| {
        let mut parts = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        for (k, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(s[start..k].to_owned());
                    start = k + 1;
                }
                _ => {}
            }
        }
        parts.push(s[start..].to_owned());
        parts
    };
    if let Some(open) = tree.find('{') {
        let prefix: Vec<String> = tree[..open]
            .trim_end_matches("::")
            .split("::")
            .filter(|s| !s.is_empty())
            .map(|s| s.trim().to_owned())
            .collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        split_top(inner)
            .iter()
            .filter(|p| !p.trim().is_empty())
            .flat_map(|p| use_paths(p))
            .map(|p| prefix.iter().cloned().chain(p).collect())
            .collect()
    } else {
        let path = tree.split(" as ").next().unwrap();
        vec![
            path.split("::")
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        ]
    }
}

/// Paths named in code outside `use` lines: `crate::…`, `super::…`, `self::…`, `host::…`.
fn code_paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        if ident(chars[i]) && (i == 0 || !(ident(chars[i - 1]) || chars[i - 1] == ':')) {
            let mut j = i;
            let mut segs = Vec::new();
            loop {
                let start = j;
                while j < chars.len() && ident(chars[j]) {
                    j += 1;
                }
                segs.push(chars[start..j].iter().collect::<String>());
                if chars.get(j) == Some(&':')
                    && chars.get(j + 1) == Some(&':')
                    && chars.get(j + 2).is_some_and(|&c| ident(c))
                {
                    j += 2;
                } else {
                    break;
                }
            }
            if segs.len() > 1 && ["crate", "super", "self", "host"].contains(&segs[0].as_str()) {
                found.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

#[test]
fn no_module_of_the_crate_imports_its_way_back_to_itself() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sources = sources(&src);
    let modules: BTreeMap<Module, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.module.clone(), i))
        .collect();
    // Each module's re-exports: name → the module the name comes from.
    let mut reexports: BTreeMap<(Module, String), Vec<String>> = BTreeMap::new();
    let statements = |text: &str| -> Vec<(bool, String)> {
        let mut out = Vec::new();
        for (k, _) in text.match_indices("use ") {
            let before = text[..k].trim_end();
            let line_start = before.rfind(['\n', ';', '{', '}']).map_or(0, |p| p + 1);
            let head = text[line_start..k].trim();
            if !(head.is_empty() || head.starts_with("pub")) {
                continue;
            }
            if k > 0
                && text[..k]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            let end = k + text[k..].find(';').unwrap();
            out.push((head.starts_with("pub"), text[k + 4..end].to_owned()));
        }
        out
    };
    for s in &sources {
        for (public, tree) in statements(&s.text) {
            if public {
                for path in use_paths(&tree) {
                    if let Some(name) = path.last() {
                        reexports.insert((s.module.clone(), name.clone()), path);
                    }
                }
            }
        }
    }
    let root = |m: &Module| -> Module {
        if m.first().is_some_and(|f| f == "#bin") {
            vec!["#bin".into()]
        } else {
            Vec::new()
        }
    };
    let is_dir_module = |s: &Source| {
        s.file
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs")
    };
    // The module a path leads to, from module `at` (of file `s`).
    let resolve = |s: &Source, path: &[String]| -> Option<Module> {
        fn walk(
            start: Module,
            path: &[String],
            modules: &BTreeMap<Module, usize>,
            reexports: &BTreeMap<(Module, String), Vec<String>>,
            depth: usize,
        ) -> Option<Module> {
            let mut cur = start;
            for seg in path {
                let mut child = cur.clone();
                child.push(seg.clone());
                if modules.contains_key(&child) {
                    cur = child;
                    continue;
                }
                // An item: where the module re-exports it from, if it does.
                if let Some(from) = reexports.get(&(cur.clone(), seg.clone()))
                    && depth < 8
                {
                    let mut base = cur.clone();
                    let mut rest: &[String] = from;
                    match rest.first().map(String::as_str) {
                        Some("crate") => {
                            base = if cur.first().is_some_and(|f| f == "#bin") {
                                vec!["#bin".into()]
                            } else {
                                Vec::new()
                            };
                            rest = &rest[1..];
                        }
                        Some("self") => rest = &rest[1..],
                        Some("super") => {
                            base.pop();
                            rest = &rest[1..];
                        }
                        _ => {}
                    }
                    if let Some(m) = walk(
                        base,
                        &rest[..rest.len().saturating_sub(1)],
                        modules,
                        reexports,
                        depth + 1,
                    ) {
                        return Some(m);
                    }
                }
                return Some(cur);
            }
            Some(cur)
        }
        let here = s.module.clone();
        let parent = if is_dir_module(s) {
            here.clone()
        } else {
            here[..here.len() - 1].to_vec()
        };
        let (start, rest) = match path[0].as_str() {
            "crate" => (root(&here), &path[1..]),
            "host" => (Vec::new(), &path[1..]),
            "self" => (here.clone(), &path[1..]),
            "super" => {
                // `super` of `a/b.rs` is `a`; of `a/mod.rs`, `a`'s parent.
                let mut m = parent.clone();
                let mut rest = &path[1..];
                if is_dir_module(s) {
                    m.pop();
                }
                while rest.first().is_some_and(|r| r == "super") {
                    m.pop();
                    rest = &rest[1..];
                }
                (m, rest)
            }
            // A child module of a directory module (`use runtime::…` in plugin/mod.rs).
            first => {
                let mut child = here.clone();
                child.push(first.to_owned());
                if !modules.contains_key(&child) {
                    return None;
                }
                (here.clone(), path)
            }
        };
        walk(start, rest, &modules, &reexports, 0)
    };
    let mut edges: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (i, s) in sources.iter().enumerate() {
        let mut paths: Vec<Vec<String>> = Vec::new();
        for (public, tree) in statements(&s.text) {
            if !public {
                paths.extend(use_paths(&tree));
            }
        }
        let without_use: String = {
            let mut t = s.text.clone();
            for (_, tree) in statements(&s.text) {
                t = t.replacen(&format!("use {tree};"), "", 1);
            }
            t
        };
        paths.extend(code_paths(&without_use));
        for path in paths {
            if path.is_empty() {
                continue;
            }
            if let Some(target) = resolve(s, &path)
                && let Some(&j) = modules.get(&target)
                && j != i
            {
                edges.entry(i).or_default().insert(j);
            }
        }
    }
    // Strongly connected components (Tarjan): any with more than one file is a circle.
    let circles: Vec<Vec<String>> = components(sources.len(), &edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut names: Vec<String> = c
                .iter()
                .map(|&i| {
                    sources[i]
                        .file
                        .strip_prefix(&src)
                        .unwrap()
                        .display()
                        .to_string()
                })
                .collect();
            names.sort();
            names
        })
        .collect();
    // The graph was read at all: a sample of edges the crate certainly has.
    let edge = |from: &str, to: &str| {
        let find = |f: &str| sources.iter().position(|s| s.file.ends_with(f)).unwrap();
        edges
            .get(&find(from))
            .is_some_and(|e| e.contains(&find(to)))
    };
    assert!(edge("app.rs", "store/mod.rs"), "the graph was not read");
    assert!(
        edge("plugin/runtime.rs", "plugin/cache.rs"),
        "the graph was not read"
    );
    assert!(
        edge("providers/github.rs", "oauth2/flow.rs"),
        "re-exports were not followed"
    );
    assert!(circles.is_empty(), "import circles: {circles:#?}");
    // One layer per folder, each importing only from the layers below it (or its own): the
    // folders show the layers the imports have.
    let layer = |module: &[String]| -> Option<usize> {
        let path = module.join("::");
        LAYERS.iter().position(|layer| {
            layer
                .iter()
                .any(|m| path == *m || path.starts_with(&format!("{m}::")))
        })
    };
    let mut upward = Vec::new();
    for s in &sources {
        let Some(from) = layer(&s.module) else {
            continue;
        };
        for &j in edges.get(&modules[&s.module]).into_iter().flatten() {
            let to = &sources[j].module;
            if layer(to).is_some_and(|to| to > from) {
                upward.push(format!("{} -> {}", s.module.join("::"), to.join("::")));
            }
        }
    }
    upward.retain(|arrow| !ALLOWED_UPWARD.contains(&arrow.as_str()));
    assert!(
        upward.is_empty(),
        "imports that run up a layer: {upward:#?}"
    );
    // The flow model (flow/) names none of the flows that implement it, and the store none of
    // the providers or the renewal above it: both by the layers, checked on the graph read.
    assert!(edge("renewal.rs", "store/mod.rs"), "the graph was not read");
}

/// The crate's layers, from the bottom up: a module (and what it holds) may import from its own
/// layer and those below.
const LAYERS: &[&[&str]] = &[
    &["util"],
    &["net", "providers::app_credentials"],
    &["flow"],
    &["login", "oauth2", "oidc", "store"],
    &[
        "config",
        "providers::section",
        "providers::schema",
        "providers::provider",
        "providers::catalog",
    ],
    &["providers"],
    &["plugin", "renewal"],
    &["session"],
    &["app"],
];

/// Upward imports that are known and accepted, with why.
const ALLOWED_UPWARD: &[&str] = &[
    // The configuration reads `[plugins]` into the plugin runtime's own settings type.
    "config -> plugin",
    "config::settings -> plugin",
];

/// The strongly connected components of a graph of `n` nodes (Tarjan's algorithm).
fn components(n: usize, edges: &BTreeMap<usize, BTreeSet<usize>>) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<usize, BTreeSet<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        found: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            let edges = self.edges;
            for &w in edges.get(&v).into_iter().flatten() {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(i) if self.on_stack[w] => self.low[v] = self.low[v].min(i),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                self.found.push(component);
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    t.found
}

/// The crate root is the names most programs need, at most 25 of them (modules aside): the
/// rest are in documented modules, and the command's helpers are private to the crate.
#[test]
fn the_crate_root_re_exports_at_most_25_names() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let is_module = |name: &str| {
        let found = |dir: &Path| {
            dir.join(format!("{name}.rs")).is_file() || dir.join(name).join("mod.rs").is_file()
        };
        std::fs::read_dir(&src)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .chain([src.clone()])
            .any(|dir| found(&dir))
    };
    let mut names = Vec::new();
    // Top-level `pub use` statements only (a `pub mod x { pub use … }` block is a module).
    let mut depth = 0usize;
    let mut statement: Option<String> = None;
    for line in lib.lines() {
        if let Some(text) = statement.as_mut() {
            text.push_str(line);
        } else if depth == 0 && line.starts_with("pub use ") {
            statement = Some(line.to_owned());
        }
        if let Some(text) = statement.take_if(|t| t.trim_end().ends_with(';')) {
            let items = match (text.find('{'), text.rfind('}')) {
                (Some(a), Some(b)) => text[a + 1..b].to_owned(),
                _ => text
                    .rsplit("::")
                    .next()
                    .unwrap()
                    .trim_end_matches(';')
                    .to_owned(),
            };
            names.extend(
                items
                    .split(',')
                    .map(|n| n.trim().rsplit("::").next().unwrap().to_owned())
                    .filter(|n| !n.is_empty() && !is_module(n)),
            );
        }
        depth += line.matches('{').count();
        depth -= line.matches('}').count();
    }
    assert!(
        names.contains(&"App".to_owned()),
        "the root was read: {names:?}"
    );
    assert!(
        names.len() <= 25,
        "{} names at the crate root: {names:?}",
        names.len()
    );
    for private in [
        "terminal_text",
        "error_chain",
        "check_name",
        "is_unsafe_char",
    ] {
        assert!(!names.contains(&private.to_owned()), "{private} is public");
    }
}
