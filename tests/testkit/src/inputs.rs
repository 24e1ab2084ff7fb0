//! Whether a built test plugin is still the build of what goes into it: a digest of every
//! input (the app's source, every file of the WIT folder, the tool's version and its build
//! script), kept beside the component. A change to any of them (a WIT edit, a new pinned
//! tool) rebuilds it; a newer modification time alone does not decide.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The digest of the build's inputs: the files (each with its name), every file under the
/// folders (sorted, recursively) and `extra` (the tool's version, a build script).
pub(crate) fn digest(files: &[&Path], folders: &[&Path], extra: &[&str]) -> String {
    let mut all: Vec<PathBuf> = files.iter().map(|f| f.to_path_buf()).collect();
    for folder in folders {
        collect(folder, &mut all);
    }
    let mut hasher = Sha256::new();
    for file in &all {
        let bytes = std::fs::read(file)
            .unwrap_or_else(|e| panic!("cannot read the build input {}: {e}", file.display()));
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    for text in extra {
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn collect(folder: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("cannot read the build input {}: {e}", folder.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Where the digest of `out`'s inputs is kept.
fn key_file(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".inputs");
    PathBuf::from(name)
}

/// Whether `out` exists and was built from inputs with this `digest`.
pub(crate) fn up_to_date(out: &Path, digest: &str) -> bool {
    out.is_file() && std::fs::read_to_string(key_file(out)).is_ok_and(|kept| kept == digest)
}

/// Records that `out` was just built from inputs with this `digest`.
pub(crate) fn built(out: &Path, digest: &str) {
    std::fs::write(key_file(out), digest)
        .unwrap_or_else(|e| panic!("cannot record the inputs of {}: {e}", out.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_input_changes_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app.py");
        let wit = dir.path().join("wit");
        std::fs::create_dir_all(wit.join("deps")).unwrap();
        std::fs::write(&app, "a").unwrap();
        std::fs::write(wit.join("world.wit"), "w").unwrap();
        std::fs::write(wit.join("deps/x.wit"), "x").unwrap();
        let first = digest(&[&app], &[&wit], &["1.0"]);
        assert_eq!(first, digest(&[&app], &[&wit], &["1.0"]), "stable");
        assert_ne!(first, digest(&[&app], &[&wit], &["1.1"]), "tool version");
        std::fs::write(wit.join("deps/x.wit"), "y").unwrap();
        let second = digest(&[&app], &[&wit], &["1.0"]);
        assert_ne!(first, second, "a nested WIT file");
        std::fs::write(&app, "b").unwrap();
        assert_ne!(second, digest(&[&app], &[&wit], &["1.0"]), "the source");
        let out = dir.path().join("app.wasm");
        assert!(!up_to_date(&out, &second));
        std::fs::write(&out, "component").unwrap();
        built(&out, &second);
        assert!(up_to_date(&out, &second));
        assert!(!up_to_date(&out, &first));
    }
}
