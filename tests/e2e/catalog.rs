//! The provider catalog: every entry checked, every template resolved, docs/providers.md list in
//! step with the data.

use std::collections::{BTreeMap, BTreeSet};

use host::ProviderSection;
use host::catalog::{CatalogEntry, catalog, placeholders_in};
use serde_json::{Value, json};

/// Every text setting of an entry that is a URL.
fn urls(entry: &CatalogEntry) -> Vec<(&'static str, &str)> {
    let mut out = vec![("token_url", entry.token_url.as_str())];
    for (field, value) in [
        ("authorize_url", &entry.authorize_url),
        ("device_authorization_url", &entry.device_authorization_url),
        ("revocation_url", &entry.revocation_url),
        ("issuer", &entry.issuer),
        ("api_url", &entry.api_url),
        ("identify_url", &entry.identify_url),
    ] {
        if let Some(v) = value {
            out.push((field, v.as_str()));
        }
    }
    out
}

fn example_fill(entry: &CatalogEntry, text: &str) -> String {
    let mut out = text.to_owned();
    for (name, p) in &entry.placeholders {
        out = out.replace(&format!("{{{name}}}"), &p.example);
    }
    out
}

#[test]
fn every_entry_is_complete_and_safe() {
    // Names unique: the raw text, not the parsed map (which would keep one of two).
    let mut seen = BTreeSet::new();
    for line in host::catalog::SOURCE.lines() {
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .filter(|n| !n.contains('.'))
        {
            assert!(seen.insert(name.to_owned()), "`{name}` appears twice");
        }
    }
    // Parsing with unknown fields denied is the "known fields only" check.
    let catalog = host::catalog::Catalog::parse(host::catalog::SOURCE).expect("the catalog parses");
    assert!(catalog.len() >= 50, "only {} entries", catalog.len());
    assert_eq!(seen.len(), catalog.len());
    let mut problems = Vec::new();
    for (name, entry) in catalog.entries() {
        let mut problem = |p: String| problems.push(format!("{name}: {p}"));
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            problem("the name is not lowercase letters, digits and `-`".into());
        }
        if name == host::github::NAME {
            problem("github is built in".into());
        }
        if entry.display_name.trim().is_empty() {
            problem("no display_name".into());
        }
        match url::Url::parse(&entry.docs) {
            Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
            _ => problem("docs is not an https URL".into()),
        }
        let mut used = BTreeSet::new();
        for (field, text) in urls(entry) {
            used.extend(placeholders_in(text).into_iter().map(str::to_owned));
            let filled = example_fill(entry, text);
            match url::Url::parse(&filled) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
                _ => problem(format!("{field} is not an https URL once filled")),
            }
            if filled.contains('{') || filled.contains('}') {
                problem(format!("{field} uses an undeclared placeholder"));
            }
        }
        for value in entry.authorize_params.iter().flat_map(|p| p.values()) {
            used.extend(placeholders_in(value).into_iter().map(str::to_owned));
        }
        let declared: BTreeSet<String> = entry.placeholders.keys().cloned().collect();
        if used != declared {
            problem(format!(
                "placeholders used {used:?} but declared {declared:?}"
            ));
        }
        for (p, ph) in &entry.placeholders {
            if ph.description.trim().len() < 10 {
                problem(format!("placeholder `{p}` is not described"));
            }
            if ph.example.trim().is_empty() {
                problem(format!("placeholder `{p}` has no example"));
            }
        }
        if entry.identify_url.is_some() != entry.identify_pointer.is_some() {
            problem("identify_url and identify_pointer go together".into());
        }
        for pointer in [&entry.token_pointer, &entry.identify_pointer]
            .into_iter()
            .flatten()
        {
            if !pointer.starts_with('/') {
                problem(format!("`{pointer}` is not a JSON pointer"));
            }
        }
        if let Some(params) = &entry.token_params {
            for reserved in [
                "grant_type",
                "code",
                "code_verifier",
                "redirect_uri",
                "refresh_token",
                "device_code",
                "client_id",
                "client_secret",
                "scope",
            ] {
                if params.contains_key(reserved) {
                    problem(format!("token_params sets `{reserved}`"));
                }
            }
        }
        if let Some(params) = &entry.authorize_params {
            for reserved in [
                "response_type",
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "code_challenge",
                "code_challenge_method",
                "nonce",
            ] {
                if params.contains_key(reserved) {
                    problem(format!("authorize_params sets `{reserved}`"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The section a user writes to enable an entry: its defaults (as the configuration merges
/// them), a client id, and `fills`.
fn section(name: &str, entry: &CatalogEntry, fills: &BTreeMap<String, String>) -> ProviderSection {
    let mut value = entry.section_defaults();
    let map = value.as_object_mut().unwrap();
    map.insert("client_id".into(), json!("my-client"));
    for (k, v) in fills {
        map.insert(k.clone(), Value::String(v.clone()));
    }
    ProviderSection::from_code(name, value)
}

#[test]
fn every_entry_resolves_and_templates_need_their_placeholders() {
    let mut templated = 0;
    for (name, entry) in catalog().entries() {
        let examples: BTreeMap<String, String> = entry
            .placeholders
            .iter()
            .map(|(k, p)| (k.clone(), p.example.clone()))
            .collect();
        let settings = host::configured::settings(&section(name, entry, &examples))
            .unwrap_or_else(|e| panic!("{name} does not resolve: {e}"));
        // An entry for machines has no authorization endpoint: its token endpoint stands in.
        let unattended = entry.flow.is_some() && entry.authorize_url.is_none();
        let authorize = match settings.authorize_url {
            Some(url) => url,
            None if unattended => settings.token_url.clone().expect("a token_url"),
            None => panic!("{name}: no authorize_url"),
        };
        assert!(!authorize.as_str().contains("%7B"), "{name}: {authorize}");
        assert_eq!(authorize.scheme(), "https", "{name}");
        for (p, ph) in &entry.placeholders {
            assert!(
                authorize.as_str().contains(&ph.example)
                    || settings
                        .token_url
                        .as_ref()
                        .is_some_and(|t| t.as_str().contains(&ph.example))
                    || urls(entry)
                        .iter()
                        .any(|(_, u)| u.contains(&format!("{{{p}}}"))),
                "{name}: `{p}` is filled in"
            );
        }
        // Without a value, a placeholder with no default is an error that names it.
        for (p, ph) in entry
            .placeholders
            .iter()
            .filter(|(_, ph)| ph.default.is_none())
        {
            templated += 1;
            let mut partial = examples.clone();
            partial.remove(p);
            let mut value = section(name, entry, &partial).value().clone();
            value.as_object_mut().unwrap().remove(p);
            let err = host::configured::settings(&ProviderSection::from_code(name, value))
                .expect_err("an unfilled placeholder is refused");
            let text = err.to_string();
            assert!(
                text.contains(&format!("providers.{name}.{p} is missing"))
                    && text.contains(&format!("`{{{p}}}`"))
                    && text.contains(ph.description.trim_end_matches('.')),
                "{name}: {text}"
            );
        }
    }
    assert!(
        templated >= 3,
        "tenant-, domain- and host-specific entries exist"
    );
}

#[test]
fn a_placeholder_value_cannot_change_the_url_structure() {
    let entry = catalog()
        .entries()
        .find(|(_, e)| e.placeholders.values().any(|p| p.default.is_none()))
        .expect("a templated entry");
    let (name, entry) = entry;
    for bad in ["evil.test/x", "a b", "x?y=1", "u@evil.test", "#frag"] {
        let fills: BTreeMap<String, String> = entry
            .placeholders
            .keys()
            .map(|k| (k.clone(), bad.to_owned()))
            .collect();
        let err = host::configured::settings(&section(name, entry, &fills)).expect_err("refused");
        assert!(err.to_string().contains("must be a plain name"), "{err}");
        assert!(
            !err.to_string().contains(bad),
            "the value is not echoed: {err}"
        );
    }
}

#[test]
fn the_docs_list_the_catalog_as_generated() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/providers.md"))
            .expect("docs/providers.md");
    let start = "<!-- catalog:start (generated by `host providers --all --markdown`) -->\n";
    let end = "<!-- catalog:end -->";
    let from = readme
        .find(start)
        .expect("docs/providers.md has the catalog markers")
        + start.len();
    let to = readme[from..].find(end).expect("end marker") + from;
    let listed = &readme[from..to];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["providers", "--all", "--markdown"])
        .env_clear()
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("run host");
    assert!(out.status.success(), "{out:?}");
    let generated = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        listed.trim(),
        generated.trim(),
        "the catalog list in docs/providers.md drifted from catalog/providers.toml: regenerate it with `host providers --all --markdown`"
    );
    for (name, _) in catalog().entries() {
        assert!(listed.contains(&format!("| `{name}` |")), "{name} listed");
    }
}

#[test]
fn entries_parsed_alone_equal_the_whole_catalog() {
    let names: Vec<&str> = host::catalog::names().collect();
    let all: Vec<&str> = catalog().entries().map(|(n, _)| n).collect();
    assert_eq!(names, all);
    for (name, entry) in catalog().entries() {
        let alone = host::catalog::entry(name).unwrap_or_else(|| panic!("{name} parses alone"));
        assert_eq!(
            serde_json::to_value(&alone).unwrap(),
            serde_json::to_value(entry).unwrap(),
            "{name}"
        );
        assert!(host::catalog::contains(name));
    }
    assert!(!host::catalog::contains("github") && host::catalog::entry("nope").is_none());
}
