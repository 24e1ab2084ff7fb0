//! Builds the test components for wasm32-wasip2 and exposes their paths as constants, so that
//! `cargo test` alone is enough:
//! - the test guests in tests/guests (a workspace of its own);
//! - the example plugins in plugins/ (members of the main workspace, built with plugin-sdk).
//!
//! They get their own target folder (target/guests): a nested cargo on the outer target folder
//! would wait forever on its lock.

use std::path::{Path, PathBuf};
use std::process::Command;

const GUESTS: &[&str] = &[
    "flow-good",
    "hostile",
    "wrong-version",
    "missing-export",
    "device-plugin",
    "unknown-import",
    "remote-ref",
];
const PLUGINS: &[&str] = &["api-key", "slack"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    // tests/testkit → tests → the repository.
    let tests = manifest.parent().unwrap().to_path_buf();
    let root = tests.parent().unwrap().to_path_buf();
    let guests = tests.join("guests");
    for dir in [
        guests.clone(),
        root.join("wit"),
        root.join("plugins"),
        root.join("plugin-sdk/src"),
    ] {
        println!("cargo:rerun-if-changed={}", dir.display());
    }

    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out: target/ is four levels up.
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target = out
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out.join("t"));
    let guest_target = target.join("guests");

    ensure_wasm_target();

    build(&guests.join("Cargo.toml"), &guest_target, "release", &[]);
    // The example plugins with the main workspace's `plugin` profile (whole-program optimised,
    // as a plugin's own release profile should be).
    let mut packages = Vec::new();
    for plugin in PLUGINS {
        packages.extend(["-p", plugin]);
    }
    build(&root.join("Cargo.toml"), &guest_target, "plugin", &packages);

    let release = guest_target.join("wasm32-wasip2/release");
    let plugins = guest_target.join("wasm32-wasip2/plugin");
    let mut consts = String::new();
    for guest in GUESTS {
        let file = format!("guest_{}.wasm", guest.replace('-', "_"));
        consts.push_str(&constant(guest, &release.join(file)));
    }
    for plugin in PLUGINS {
        let file = format!("{}.wasm", plugin.replace('-', "_"));
        consts.push_str(&constant(&format!("{plugin}-plugin"), &plugins.join(file)));
    }
    std::fs::write(out.join("guests.rs"), consts).unwrap();
}

/// Installs the `wasm32-wasip2` target when the toolchain lacks it, so that `cargo test` works on
/// a machine with nothing but rustup (rustup installs the targets of `rust-toolchain.toml` only
/// with a toolchain it installs itself, not into one already there).
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot.is_some_and(|s| s.join("lib/rustlib").join(WASM_TARGET).is_dir());
    if installed {
        return;
    }
    println!("cargo:warning=installing the {WASM_TARGET} target (rustup target add {WASM_TARGET})");
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", WASM_TARGET]);
    // Inside a build script RUSTUP_TOOLCHAIN names the toolchain that runs the build.
    let status = cmd.status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "the {WASM_TARGET} target is missing and `rustup target add {WASM_TARGET}` failed; install it and try again"
    );
}

/// The target the test components are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

fn constant(name: &str, path: &Path) -> String {
    assert!(path.is_file(), "missing component {}", path.display());
    let ident = name.replace('-', "_").to_uppercase();
    format!(
        "/// The `{name}` component.\npub const {ident}: &str = {:?};\n",
        path.display().to_string()
    )
}

fn build(manifest: &Path, target_dir: &Path, profile: &str, packages: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--profile",
        profile,
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(manifest)
    .arg("--target-dir")
    .arg(target_dir)
    .args(packages);
    // Settings meant for the outer build must not leak into the components' build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo for the test components");
    assert!(
        status.success(),
        "building the test components failed; is the target installed? `rustup target add wasm32-wasip2`"
    );
}
