//! Building the Python test plugin with componentize-py, bootstrapped on demand.
//!
//! `cargo test` must pass on a machine with nothing but rustup and python3: the first run makes
//! a virtual environment under the target folder and installs the pinned componentize-py
//! there (from the package index); later runs reuse it. An installed `componentize-py` on
//! `PATH` is not used, so every machine builds with the same version.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The componentize-py version the Python plugin is built with.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// Serializes the bootstrap between the tests of one process.
static BOOTSTRAP: Mutex<()> = Mutex::new(());

/// Builds the component of the Python app in `source` (module `app`, world `plugin` of the WIT
/// folder `wit`) into `out`, unless `out` was built from the same inputs (the app, every WIT
/// file, the tool's version). Panics with the reason when Python or the package index is not
/// available: the test needs it.
pub fn componentize(source: &Path, wit: &Path, out: &Path, target_dir: &Path) -> PathBuf {
    let _guard = BOOTSTRAP.lock().unwrap_or_else(|e| e.into_inner());
    let inputs = crate::inputs::digest(
        &[&source.join("app.py")],
        &[wit],
        &["componentize-py", COMPONENTIZE_PY],
    );
    if crate::inputs::up_to_date(out, &inputs) {
        return out.to_owned();
    }
    let tool = bootstrap(target_dir);
    let status = Command::new(&tool)
        .arg("-d")
        .arg(wit)
        .args(["-w", "plugin", "componentize", "app", "-o"])
        .arg(out)
        .current_dir(source)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    assert!(status.success(), "componentize-py failed: {status}");
    crate::inputs::built(out, &inputs);
    out.to_owned()
}

/// The componentize-py executable of the virtual environment under `target_dir`, created and
/// filled first when missing.
fn bootstrap(target_dir: &Path) -> PathBuf {
    let venv = target_dir.join(format!("componentize-py-{COMPONENTIZE_PY}"));
    if let Err(why) = venv_with(&venv, &[&format!("componentize-py=={COMPONENTIZE_PY}")]) {
        panic!("{why}");
    }
    let tool = venv.join("bin/componentize-py");
    assert!(
        tool.is_file(),
        "componentize-py missing after installing it"
    );
    tool
}

/// The Python of the virtual environment `venv` holding `requirements` (pip's spellings, pinned),
/// made with `$PYTHON` (default `python3`) and filled from the package index the first time;
/// later calls asking for the same requirements find it ready, and other requirements are
/// installed into it. `Err` says which step failed.
pub fn venv_with(venv: &Path, requirements: &[&str]) -> Result<PathBuf, String> {
    let python = venv.join("bin/python");
    // What was last installed completely: written only after pip succeeded.
    let ready = venv.join(".installed");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&ready).is_ok_and(|installed| installed == wanted) {
        return Ok(python);
    }
    let system = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    run(
        Command::new(&system).args(["-m", "venv"]).arg(venv),
        "create a Python virtual environment (is python3 with the venv module installed?)",
    )?;
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(requirements),
        &format!(
            "install {} into the virtual environment",
            requirements.join(" ")
        ),
    )?;
    std::fs::write(&ready, wanted)
        .map_err(|e| format!("cannot mark {} ready: {e}", venv.display()))?;
    Ok(python)
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("cannot {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cannot {what}: {status}"))
    }
}
