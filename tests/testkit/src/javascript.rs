//! Building the JavaScript test plugin with componentize-js, bootstrapped on demand.
//!
//! As for the Python plugin: the first run installs the pinned componentize-js with the
//! machine's npm into a folder under the target folder (from the npm registry); later runs
//! reuse it. Nothing installed globally is used, so every machine builds with the same version.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The componentize-js version the JavaScript plugin is built with.
pub const COMPONENTIZE_JS: &str = "0.23.0";

/// Serializes the bootstrap between the tests of one process.
static BOOTSTRAP: Mutex<()> = Mutex::new(());

/// Node's side of the build: the app's source, the WIT folder and the world `plugin` in, the
/// component out. Only what the contract gives is linked (no WASI random, stdio, clocks or
/// HTTP of the engine's own).
const BUILD: &str = r#"import { componentize } from '@bytecodealliance/componentize-js';
import { readFile, writeFile } from 'node:fs/promises';
const [src, wit, out] = process.argv.slice(2);
const { component } = await componentize(await readFile(src, 'utf8'), {
  witPath: wit,
  worldName: 'plugin',
  disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
});
await writeFile(out, component);
"#;

/// Builds the component of `source/app.js` (world `plugin` of the WIT folder `wit`) into `out`,
/// unless `out` was built from the same inputs (the app, every WIT file, the tool's version
/// and the build script). Panics with the reason when Node.js, npm or the npm registry is not
/// available: the test needs them.
pub fn componentize(source: &Path, wit: &Path, out: &Path, target_dir: &Path) -> PathBuf {
    let _guard = BOOTSTRAP.lock().unwrap_or_else(|e| e.into_inner());
    let app = source.join("app.js");
    let inputs = crate::inputs::digest(
        &[&app],
        &[wit],
        &["componentize-js", COMPONENTIZE_JS, BUILD],
    );
    if crate::inputs::up_to_date(out, &inputs) {
        return out.to_owned();
    }
    let dir = bootstrap(target_dir);
    let script = dir.join("build.mjs");
    std::fs::write(&script, BUILD).expect("write the build script");
    let status = Command::new("node")
        .arg(&script)
        .arg(&app)
        .arg(wit)
        .arg(out)
        .current_dir(&dir)
        .status()
        .unwrap_or_else(|e| panic!("cannot run node (is Node.js installed?): {e}"));
    assert!(status.success(), "componentize-js failed: {status}");
    crate::inputs::built(out, &inputs);
    out.to_owned()
}

/// The folder under `target_dir` holding the pinned componentize-js, installed first when
/// missing.
fn bootstrap(target_dir: &Path) -> PathBuf {
    let dir = target_dir.join(format!("componentize-js-{COMPONENTIZE_JS}"));
    let ready = dir.join(".installed");
    if ready.is_file() {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("make the componentize-js folder");
    let status = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&dir)
        .arg(format!(
            "@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"
        ))
        .status()
        .unwrap_or_else(|e| panic!("cannot run npm (is Node.js installed?): {e}"));
    assert!(
        status.success(),
        "installing componentize-js {COMPONENTIZE_JS} with npm failed: {status}"
    );
    std::fs::write(&ready, COMPONENTIZE_JS).expect("mark componentize-js installed");
    dir
}
