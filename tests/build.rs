//! Builds the test guests (tests/guests, a workspace of its own) for wasm32-wasip2 and exposes
//! their paths as constants, so that `cargo test` alone is enough.
//!
//! The guests get their own target folder (target/guests): a nested cargo on the outer target
//! folder would wait forever on its lock.

use std::path::{Path, PathBuf};
use std::process::Command;

const GUESTS: &[&str] = &["flow-good", "hostile", "wrong-version", "missing-export"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let guests = manifest.join("guests");
    let wit = manifest.parent().unwrap().join("wit");
    println!("cargo:rerun-if-changed={}", guests.display());
    println!("cargo:rerun-if-changed={}", wit.display());

    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out: target/ is four levels up.
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target = out
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out.join("t"));
    let guest_target = target.join("guests");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(guests.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&guest_target);
    // Settings meant for the outer build must not leak into the guests' build.
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
    let status = cmd.status().expect("run cargo for the test guests");
    assert!(
        status.success(),
        "building the test guests failed; is the target installed? `rustup target add wasm32-wasip2`"
    );

    let mut consts = String::new();
    for guest in GUESTS {
        let file = format!("guest_{}.wasm", guest.replace('-', "_"));
        let path = guest_target.join("wasm32-wasip2/release").join(file);
        assert!(path.is_file(), "missing guest {}", path.display());
        let name = guest.replace('-', "_").to_uppercase();
        consts.push_str(&format!(
            "/// The `{guest}` test guest component.\npub const {name}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    std::fs::write(out.join("guests.rs"), consts).unwrap();
}
