//! Another local user with write access to the data folder (the careless set-up SECURITY.md
//! says `host` survives): what they plant where `host` keeps its own files is ignored, rebuilt
//! and warned about, never used.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{HostEnv, browser_redirect};
use host_testkit::guests;

/// The co-tenant's user and group id (`nobody`).
const OTHER: u32 = 65534;

/// Runs `script` with `sh` as the other local user, as they would; it must succeed.
async fn as_other_user(script: &str) {
    let out = tokio::process::Command::new("setpriv")
        .args([
            &format!("--reuid={OTHER}"),
            &format!("--regid={OTHER}"),
            "--clear-groups",
            "--",
            "sh",
            "-c",
            script,
        ])
        .output()
        .await
        .expect("setpriv runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Gives every file and folder under `root` to the other user, as if they had made them.
fn give_to_other(root: &Path) {
    let status = std::process::Command::new("chown")
        .args(["-R", &format!("{OTHER}:{OTHER}"), root.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Opens the data folder to every local user, as a careless set-up does (the folders above
/// it can be passed through).
fn open_data_folder(env: &HostEnv) {
    let data = env.data_dir();
    for dir in data
        .ancestors()
        .take_while(|d| d.starts_with(env.home.path()))
    {
        chmod(dir, 0o711);
    }
    chmod(&data, 0o777);
}

/// `host plugin inspect --json FILE` with the debug log: the plugin as `host` sees it, and the
/// log.
async fn inspect(env: &HostEnv, file: &Path) -> (Value, String) {
    let out = env
        .output_debug(&["plugin", "inspect", "--json", file.to_str().unwrap()])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    (serde_json::from_str(&out.stdout).unwrap(), out.stderr)
}

/// What a plugin's inspection shows that a planted cache could change.
fn shown(info: &Value) -> (Value, Value, Value) {
    (
        info["display_name"].clone(),
        info["allowed_hosts"].clone(),
        info["api_base_url"].clone(),
    )
}

/// The cache's MAC of `parts` for the file `name` under `key`, as `host` frames it.
fn mac(key: &[u8; 32], kind: &str, name: &str, body: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(b"host-cache-v2\0");
    hasher.update(kind.as_bytes());
    hasher.update(b"\0");
    hasher.update(name.as_bytes());
    hasher.update(b"\0");
    hasher.update(body);
    hasher.finalize().to_hex().to_string()
}

fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    found
}

/// Builds, in `cache` (a copy of a real cache), what a co-tenant would plant: the api-key
/// plugin's index entry saying its allowed hosts are every host and its API is theirs, and its
/// artifact replaced by another component's. Everything carries a MAC under the cache's real
/// key (more than a co-tenant can do, who cannot read it): only whose files they are gives them
/// away.
fn plant(cache: &Path, genuine_artifact: &Path, other_artifact: &Path) {
    let plugins = cache.join("plugins");
    let key: [u8; 32] = std::fs::read(plugins.join("key"))
        .unwrap()
        .try_into()
        .unwrap();
    for entry in std::fs::read_dir(plugins.join("index")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let (_, json) = text.split_once('\n').unwrap();
        let mut entry: Value = serde_json::from_str(json).unwrap();
        if let Some(meta) = entry["metadata"].as_object_mut() {
            meta.insert(
                "allowed_hosts".into(),
                serde_json::json!(["127.0.0.1", "collector.example"]),
            );
            meta.insert("api_base_url".into(), "https://collector.example/".into());
        }
        let json = serde_json::to_string(&entry).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let mac = mac(&key, "index", name, json.as_bytes());
        std::fs::write(&path, format!("{mac}\n{json}")).unwrap();
    }
    // The other component's code under the api-key plugin's name, with a MAC for that name.
    let target = plugins.join(genuine_artifact.file_name().unwrap());
    let bytes = std::fs::read(other_artifact).unwrap();
    let name = target.file_name().unwrap().to_str().unwrap();
    std::fs::write(&target, &bytes).unwrap();
    let mut mac_file = target.clone().into_os_string();
    mac_file.push(".mac");
    let digest = blake3::Hasher::new_keyed(&key)
        .update(b"host-cache-v2\0artifact\0")
        .update(name.as_bytes())
        .update(b"\0")
        .update(&bytes)
        .finalize();
    std::fs::write(&mac_file, digest.as_bytes()).unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .args(["-a", from.to_str().unwrap(), to.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The co-tenant's move: the data folder open to all (a careless set-up), a copy of the cache
/// changed by `plant` and given to the other user, then, as that user, the real cache moved
/// aside (`cache.moved`) and the copy put in its place.
async fn replace_cache(env: &HostEnv, plant: impl FnOnce(&Path)) {
    open_data_folder(env);
    let data = env.data_dir();
    let staging = env.home.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    copy_tree(&data.join("cache"), &staging.join("cache"));
    plant(&staging.join("cache"));
    give_to_other(&staging);
    chmod(env.home.path(), 0o711);
    as_other_user(&format!(
        "mv '{}/cache' '{}/cache.moved' && mv '{}/cache' '{}/cache'",
        data.display(),
        data.display(),
        staging.display(),
        data.display()
    ))
    .await;
}

#[tokio::test]
async fn a_plugin_cache_planted_by_another_user_is_ignored_and_rebuilt() {
    let env = HostEnv::start().await;
    env.install_plugin("ak", guests::API_KEY_PLUGIN);
    let plugin = env.plugins_dir().join("ak.wasm");
    // The index vouches for a plugin file only once it has settled (2 s).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (genuine, log) = inspect(&env, &plugin).await;
    assert!(log.contains("compiling the plugin"), "{log}");
    let (_, log) = inspect(&env, &plugin).await;
    assert!(log.contains("from the cache (indexed)"), "{log}");
    // Another component compiled in the same cache: the code a co-tenant would slip in.
    let (other, _) = inspect(&env, Path::new(guests::DEVICE_PLUGIN)).await;
    assert_ne!(other["display_name"], genuine["display_name"]);
    let cache = env.data_dir().join("cache");
    let artifacts = files_with_extension(&cache.join("plugins"), "cwasm");
    assert_eq!(artifacts.len(), 2, "{artifacts:?}");
    let genuine_digest = blake3::hash(&std::fs::read(&plugin).unwrap())
        .to_hex()
        .to_string();
    let (mine, theirs): (Vec<_>, Vec<_>) = artifacts.iter().partition(|a| {
        a.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&genuine_digest)
    });

    // The co-tenant moves the cache aside and puts their own in its place.
    let data = env.data_dir();
    replace_cache(&env, |cache| plant(cache, mine[0], theirs[0])).await;

    let (seen, log) = inspect(&env, &plugin).await;
    assert_eq!(shown(&seen), shown(&genuine), "the planted entry was used");
    assert!(
        log.contains("compiling the plugin"),
        "the planted artifact was used: {log}"
    );
    assert!(
        log.contains("ignoring the plugin cache folder")
            && log.contains("belongs to another user (uid 65534)"),
        "{log}"
    );
    assert_eq!(
        log.matches("ignoring the plugin cache folder").count(),
        1,
        "warned once: {log}"
    );
    assert!(
        log.contains(&format!(
            "the folder {} is writable by other users",
            data.display()
        )),
        "the open data folder is warned about: {log}"
    );
    assert!(log.contains("chmod 700"), "with the fix: {log}");

    // Put back and closed again, the cache is ours: but what the co-tenant could do to our
    // own files (an entry edited without the key, another plugin's artifact under this one's
    // name, both ours and MAC'd for their own names) is refused too.
    let planted = data.join("cache");
    std::fs::rename(&planted, data.join("cache.planted")).unwrap();
    std::fs::rename(data.join("cache.moved"), &planted).unwrap();
    chmod(&data, 0o700);
    let plugins = planted.join("plugins");
    for entry in std::fs::read_dir(plugins.join("index")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replace(
            "\"allowed_hosts\":[",
            "\"allowed_hosts\":[\"collector.example\",",
        );
        assert_ne!(edited, text);
        std::fs::write(&path, edited).unwrap();
    }
    let (seen, log) = inspect(&env, &plugin).await;
    assert_eq!(shown(&seen), shown(&genuine), "the edited entry was used");
    assert!(log.contains("its MAC does not check"), "{log}");
    let mut their_mac = theirs[0].clone().into_os_string();
    their_mac.push(".mac");
    let mut my_mac = mine[0].clone().into_os_string();
    my_mac.push(".mac");
    std::fs::copy(theirs[0], mine[0]).unwrap();
    std::fs::copy(&their_mac, &my_mac).unwrap();
    // A new file identity: the index entry no longer vouches for it, its MAC is checked.
    let (seen, log) = inspect(&env, &plugin).await;
    assert_eq!(
        shown(&seen),
        shown(&genuine),
        "the swapped artifact was run"
    );
    assert!(log.contains("compiling the plugin"), "{log}");
    assert!(log.contains("its MAC does not check"), "{log}");
    let (_, log) = inspect(&env, &plugin).await;
    assert!(
        log.contains("from the cache"),
        "rebuilt and used again: {log}"
    );
}

#[tokio::test]
async fn a_discovery_document_planted_by_another_user_is_ignored_and_fetched_again() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    env.write_config(&format!(
        "[providers.corp]\nissuer = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n",
        p.issuer(),
        host_testkit::CLIENT_ID,
        host_testkit::CLIENT_SECRET
    ));
    let login = async || {
        env.login_as("corp", &["--json", "--timeout", "20"], async |url| {
            vec![browser_redirect(&url).await]
        })
        .await
    };
    let (out, _) = login().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let hits = p.discovery_hits();

    // The co-tenant's token endpoint, which would get the code, the PKCE verifier and the
    // client secret.
    let (port, seen) = crate::support::raw_server(async |_, _, _| {}).await;
    replace_cache(&env, |cache| {
        for entry in std::fs::read_dir(cache.join("oidc")).unwrap() {
            let path = entry.unwrap().path();
            let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            doc["document"]["token_endpoint"] = format!("http://127.0.0.1:{port}/token").into();
            std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        }
    })
    .await;

    let (out, _) = login().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "the planted endpoint was used"
    );
    assert_eq!(
        p.discovery_hits(),
        hits + 1,
        "the document was fetched again"
    );
    assert!(
        out.stderr.contains("belongs to another user (uid 65534)") && out.stderr.contains("oidc"),
        "{out:?}"
    );
}
