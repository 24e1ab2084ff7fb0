//! Layered configuration and validation errors that name the field and its source.

use std::path::Path;

use host::github::GitHubAppCredentials;
use host::provider::Origin;
use host::{Config, ConfigLoader};

fn load(home: &Path, extra: &[(&str, &str)]) -> Config {
    let mut env = vec![("HOME".to_owned(), home.to_str().unwrap().to_owned())];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    ConfigLoader::with_env(env)
        .defaults(host::builtin_defaults())
        .load()
        .unwrap()
}

fn write_config(home: &Path, text: &str) -> std::path::PathBuf {
    let dir = home.join(".config/host");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("host.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test]
async fn missing_client_id_names_the_field_and_the_variable() {
    let home = tempfile::tempdir().unwrap();
    let config = load(home.path(), &[]);
    let app = host::App::from_config(config).expect("store settings");
    let registry = app.registry();
    let err = registry
        .get("github")
        .unwrap()
        .flow("oauth2")
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    let source = std::error::Error::source(&err)
        .map(|s| s.to_string())
        .unwrap_or_default();
    let full = format!("{text}\n{source}");
    assert!(
        full.contains("providers.github.client_id is missing"),
        "{full}"
    );
    assert!(full.contains("GITHUB_CLIENT_ID"), "{full}");
    assert!(full.contains("HOST_PROVIDERS__GITHUB__CLIENT_ID"), "{full}");
    assert!(full.contains(".config/host/host.toml"), "{full}");
}

#[test]
fn layers_apply_in_order_and_each_value_knows_its_origin() {
    let home = tempfile::tempdir().unwrap();
    let file = write_config(
        home.path(),
        r#"
[providers.github]
client_id = "from-file"
client_secret = "file-secret"
token_url = "https://ghe.example/login/oauth/access_token"
scopes = ["repo"]
"#,
    );
    // File only.
    let config = load(home.path(), &[]);
    let app: GitHubAppCredentials = config.provider_section("github").parse().unwrap();
    assert_eq!(app.oauth2.client_id, "from-file");
    assert_eq!(
        app.oauth2.token_url.as_str(),
        "https://ghe.example/login/oauth/access_token"
    );
    assert_eq!(
        app.oauth2.authorize_url.as_str(),
        "https://github.com/login/oauth/authorize"
    );
    assert_eq!(
        config.origin("providers.github.client_id"),
        Some(Origin::File(file.clone()))
    );
    assert_eq!(
        config.origin("providers.github.authorize_url"),
        Some(Origin::Default)
    );

    // HOST_ variables beat the file; aliases beat HOST_ variables.
    let config = load(
        home.path(),
        &[
            ("HOST_PROVIDERS__GITHUB__CLIENT_ID", "from-host-env"),
            ("HOST_PROVIDERS__GITHUB__SCOPES", "[repo, gist]"),
            ("GITHUB_CLIENT_SECRET", "alias-secret"),
        ],
    );
    let app: GitHubAppCredentials = config.provider_section("github").parse().unwrap();
    assert_eq!(app.oauth2.client_id, "from-host-env");
    assert_eq!(app.oauth2.scopes, vec!["repo", "gist"]);
    assert_eq!(app.oauth2.client_secret.unwrap().expose(), "alias-secret");
    assert_eq!(
        config.origin("providers.github.client_id"),
        Some(Origin::EnvVar("HOST_PROVIDERS__GITHUB__CLIENT_ID".into()))
    );
    assert_eq!(
        config.origin("providers.github.client_secret"),
        Some(Origin::EnvVar("GITHUB_CLIENT_SECRET".into()))
    );
    // Digits that only look like a number reach the provider as written; plain numbers and
    // booleans are still read as such.
    for (written, seen) in [
        ("0042", "0042"),
        ("+7", "+7"),
        ("1.10", "1.10"),
        ("42", "42"),
    ] {
        let config = load(
            home.path(),
            &[
                ("HOST_PROVIDERS__GITHUB__CLIENT_ID", written),
                ("HOST_HTTP__TIMEOUT_SECS", "7"),
            ],
        );
        let app: GitHubAppCredentials = config.provider_section("github").parse().unwrap();
        assert_eq!(app.oauth2.client_id, seen, "{written}");
        assert_eq!(
            config.http_policy().timeout,
            std::time::Duration::from_secs(7)
        );
    }
    let config = load(
        home.path(),
        &[
            ("GITHUB_CLIENT_ID", "alias"),
            ("HOST_PROVIDERS__GITHUB__CLIENT_ID", "host"),
        ],
    );
    let app: GitHubAppCredentials = config.provider_section("github").parse().unwrap();
    assert_eq!(app.oauth2.client_id, "alias");
}

#[test]
fn a_numeric_client_id_from_the_environment_is_a_string() {
    let home = tempfile::tempdir().unwrap();
    let config = load(
        home.path(),
        &[
            ("GITHUB_CLIENT_ID", "12345"),
            ("HOST_PROVIDERS__GITHUB__CLIENT_SECRET", "678"),
        ],
    );
    let app: GitHubAppCredentials = config.provider_section("github").parse().unwrap();
    assert_eq!(app.oauth2.client_id, "12345");
    assert_eq!(app.oauth2.client_secret.unwrap().expose(), "678");
}

#[test]
fn wrong_types_name_field_and_source_without_the_value() {
    let home = tempfile::tempdir().unwrap();
    let file = write_config(
        home.path(),
        r#"
[providers.github]
client_id = "x"
client_secret = ["s3cret-in-a-list"]
"#,
    );
    let config = load(
        home.path(),
        &[("HOST_PROVIDERS__GITHUB__TOKEN_URL", "not a url s3cret")],
    );
    let err = config
        .provider_section("github")
        .parse::<GitHubAppCredentials>()
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.issues.len(), 2, "{text}");
    assert!(
        text.contains(&format!(
            "providers.github.client_secret must be of type string or null (from file {})",
            file.display()
        )),
        "{text}"
    );
    assert!(text.contains("providers.github.token_url must be a valid uri (from environment variable HOST_PROVIDERS__GITHUB__TOKEN_URL)"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn broken_files_are_reported_with_their_path() {
    let home = tempfile::tempdir().unwrap();
    let file = write_config(home.path(), "[providers.github\nclient_id = 1");
    let err = ConfigLoader::with_env([("HOME", home.path().to_str().unwrap())])
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains(&file.display().to_string()), "{err}");

    let err = ConfigLoader::with_env([("HOME", home.path().to_str().unwrap())])
        .file(home.path().join("nope.toml"))
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope.toml") && err.contains("--config"),
        "{err}"
    );
    let err = ConfigLoader::with_env([
        ("HOME", home.path().to_str().unwrap()),
        ("HOST_CONFIG", "/nonexistent/h.toml"),
    ])
    .load()
    .unwrap_err()
    .to_string();
    assert!(err.contains("HOST_CONFIG"), "{err}");
}

#[test]
fn unknown_top_level_keys_are_errors_in_the_file_and_other_programs_variables_in_the_environment() {
    let home = tempfile::tempdir().unwrap();
    let file = write_config(home.path(), "[htp]\ntimeout_secs = 5\n");
    let err = ConfigLoader::with_env([("HOME", home.path().to_str().unwrap())])
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&file.display().to_string())
            && err.contains("`htp` is not a setting (did you mean `http`?"),
        "{err}"
    );
    let err = {
        write_config(home.path(), "default_provder = \"acme\"\n");
        ConfigLoader::with_env([("HOME", home.path().to_str().unwrap())])
            .load()
            .unwrap_err()
            .to_string()
    };
    assert!(err.contains("did you mean `default_provider`?"), "{err}");

    // A `HOST_` variable that names no setting is another program's: ignored, not shown.
    std::fs::remove_file(&file).unwrap();
    let config = load(
        home.path(),
        &[("HOST_IP", "10.0.0.1"), ("HOST_HTTP__TIMEOUT_SECS", "7")],
    );
    let settings = config.settings().unwrap();
    assert!(!settings.iter().any(|s| s.key == "ip"), "{settings:?}");
    // Every setting in force is listed, the defaults of what nothing set included.
    let find = |key: &str| settings.iter().find(|s| s.key == key).cloned();
    let timeout = find("http.timeout_secs").expect("listed");
    assert_eq!(timeout.value, 7);
    assert_eq!(
        timeout.origin_text(),
        "environment variable HOST_HTTP__TIMEOUT_SECS"
    );
    let lock = find("store.lock_timeout_secs").expect("a default is listed");
    assert_eq!(lock.value, 30);
    assert_eq!(lock.origin, Some(Origin::Default));
}
