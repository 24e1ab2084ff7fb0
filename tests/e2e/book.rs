//! The manual in docs/ is an mdBook: its table of contents (docs/SUMMARY.md) links every
//! Markdown file there, and only files that exist (mdBook would leave the others out of the
//! book, or make an empty chapter).

use std::collections::BTreeSet;
use std::path::Path;

/// Every `.md` file under `dir`, by its path from `root` with `/` separators.
fn markdown_files(root: &Path, dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            markdown_files(root, &path, found);
        } else if path.extension().is_some_and(|e| e == "md") {
            let rel = path.strip_prefix(root).unwrap();
            let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
            found.insert(parts.join("/"));
        }
    }
}

/// The targets of `[title](target)` links in `text`.
fn link_targets(text: &str) -> BTreeSet<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')'))
        .map(|(target, _)| target.split('#').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_books_table_of_contents_links_every_chapter() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let summary = std::fs::read_to_string(docs.join("SUMMARY.md")).expect("docs/SUMMARY.md");
    let linked = link_targets(&summary);
    let mut files = BTreeSet::new();
    markdown_files(&docs, &docs, &mut files);
    files.remove("SUMMARY.md");

    let unlinked: Vec<_> = files.difference(&linked).collect();
    assert!(
        unlinked.is_empty(),
        "docs/SUMMARY.md links no chapter to {unlinked:?}: add a line for each"
    );
    let missing: Vec<_> = linked.difference(&files).collect();
    assert!(
        missing.is_empty(),
        "docs/SUMMARY.md links files that are not in docs/: {missing:?}"
    );
}

#[test]
fn links_are_read_from_the_table_of_contents() {
    let toc = "# Summary\n\n- [A](a.md)\n- [B](part/b.md#top)\n  - [C](c.md)\n";
    let want: BTreeSet<String> = ["a.md", "part/b.md", "c.md"].map(String::from).into();
    assert_eq!(link_targets(toc), want);
}
