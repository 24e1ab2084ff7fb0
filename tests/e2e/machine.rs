//! Machines get credentials too: client credentials with every client authentication, the JWT
//! bearer grant (a key file, a service account), token exchange (another provider, a file, a
//! GitHub Actions job), renewal by running the grant again under the single-flight lock, and
//! keys kept secret. Through the real binary against the test provider, which checks every
//! assertion's signature, `aud`, `exp` and `jti`.

use std::path::Path;
use std::time::Duration;

use crate::support::{HostEnv, Output};
use host_testkit::{
    ACCESS_TOKEN_TYPE, ACTIONS_SUBJECT, CLIENT_CREDENTIALS_GRANT, CLIENT_ID, CLIENT_SECRET,
    ClientAuthMethod, JWT_BEARER_GRANT, JWT_TOKEN_TYPE, KeyKind, SERVICE_ACCOUNT_EMAIL,
    TOKEN_EXCHANGE_GRANT, TestKey, test_key,
};

/// Appends `toml` to the configuration file (after a `[store]` section, say).
fn append_config(env: &HostEnv, toml: &str) {
    let path = env.home.path().join("config/host/host.toml");
    let before = std::fs::read_to_string(&path).unwrap_or_default();
    env.write_config(&format!("{before}\n{toml}"));
}

/// `[providers.acme]` with the test provider's token endpoint, `flow` and `extra` lines.
fn section(env: &HostEnv, flow: &str, extra: &str) -> String {
    format!(
        "[providers.acme]\nclient_id = \"{CLIENT_ID}\"\ntoken_url = \"{}\"\nrevocation_url = \"{}\"\napi_url = \"{}\"\nflow = \"{flow}\"\nscopes = [\"read\", \"write\"]\n{extra}\n",
        env.provider.url("/token"),
        env.provider.url("/revoke"),
        env.provider.url("/api"),
    )
}

async fn token(env: &HostEnv, provider: &str) -> Output {
    env.output(&["token", "--provider", provider]).await
}

fn keys_dir(env: &HostEnv) -> std::path::PathBuf {
    let dir = env.home.path().join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn toml_path(path: &Path) -> String {
    path.display().to_string()
}

/// `client_auth = "private_key_jwt"` with `key` as the `private_key_file`.
fn signed_with(key: &Path) -> String {
    format!(
        "client_auth = \"private_key_jwt\"\nprivate_key_file = \"{}\"",
        toml_path(key)
    )
}

#[tokio::test]
async fn client_credentials_with_each_client_authentication() {
    struct Case {
        name: &'static str,
        auth: String,
        method: ClientAuthMethod,
        /// The key the provider must see the assertion signed with, and its expected `kid`.
        key: Option<(KeyKind, String)>,
    }
    let env = HostEnv::start().await;
    let dir = keys_dir(&env);
    let rsa = test_key(KeyKind::Rsa, &dir);
    let p256 = test_key(KeyKind::P256, &dir);
    let p384 = test_key(KeyKind::P384, &dir);
    let ed = test_key(KeyKind::Ed25519, &dir);
    let key_auth = |key: &TestKey, file: &Path, kid: &str| Case {
        name: "private_key_jwt",
        auth: format!(
            "client_auth = \"private_key_jwt\"\nprivate_key_file = \"{}\"",
            toml_path(file)
        ),
        method: ClientAuthMethod::PrivateKeyJwt,
        key: Some((key.kind, kid.to_owned())),
    };
    let cases = [
        Case {
            name: "basic",
            auth: format!("client_secret = \"{CLIENT_SECRET}\"\nclient_auth = \"basic\""),
            method: ClientAuthMethod::ClientSecretBasic,
            key: None,
        },
        Case {
            name: "request_body",
            auth: format!("client_secret = \"{CLIENT_SECRET}\"\nclient_auth = \"request_body\""),
            method: ClientAuthMethod::ClientSecretPost,
            key: None,
        },
        Case {
            name: "client_secret_jwt",
            auth: format!(
                "client_secret = \"{CLIENT_SECRET}\"\nclient_auth = \"client_secret_jwt\""
            ),
            method: ClientAuthMethod::ClientSecretJwt,
            key: None,
        },
        // PKCS#8 PEM: the kid is the key's RFC 7638 thumbprint.
        key_auth(&rsa, &rsa.private_pem, &rsa.thumbprint),
        // PKCS#1 and SEC1 PEM.
        key_auth(&rsa, rsa.traditional_pem.as_ref().unwrap(), &rsa.thumbprint),
        key_auth(
            &p256,
            p256.traditional_pem.as_ref().unwrap(),
            &p256.thumbprint,
        ),
        // A JWK and a JWKS: the kid is the JWK's own.
        key_auth(&ed, &ed.private_jwk, &ed.kid),
        key_auth(&p384, &p384.private_jwks, &p384.kid),
    ];
    for key in [&rsa, &p256, &p384, &ed] {
        env.provider.register_client_key(key);
    }
    for (i, case) in cases.iter().enumerate() {
        let name = format!("m{i}");
        env.write_config(
            &section(
                &env,
                "client_credentials",
                &format!(
                    "{}\naudience = \"https://api.example\"\nresource = [\"https://api.example/v1\", \"https://api.example/v2\"]",
                    case.auth
                ),
            )
            .replace("[providers.acme]", &format!("[providers.{name}]")),
        );
        let grants = env.provider.grants(CLIENT_CREDENTIALS_GRANT);
        // No login first: the first `host token` obtains one.
        let out = token(&env, &name).await;
        assert_eq!(out.code, Some(0), "{}: {out:?}", case.name);
        let issued = out.stdout.trim().to_owned();
        assert!(issued.starts_with("at-"), "{}: {issued}", case.name);
        let grant = env.provider.machine_grants().pop().unwrap();
        assert_eq!(grant.client_auth, Some(case.method), "{}", case.name);
        assert_eq!(grant.access_token, issued);
        assert_eq!(grant.scope.as_deref(), Some("read write"));
        assert_eq!(grant.audience, ["https://api.example"]);
        assert_eq!(
            grant.resource,
            ["https://api.example/v1", "https://api.example/v2"]
        );
        if let Some((kind, kid)) = &case.key {
            let seen = env.provider.client_assertions().pop().unwrap();
            assert!(seen.accepted, "{}: {seen:?}", case.name);
            assert_eq!(seen.alg, Some(format!("{:?}", kind.alg())), "{}", case.name);
            assert_eq!(seen.kid.as_deref(), Some(kid.as_str()), "{}", case.name);
            assert_eq!(seen.claims["aud"], env.provider.url("/token"));
            assert_eq!(seen.claims["iss"], CLIENT_ID);
            let (iat, exp) = (
                seen.claims["iat"].as_i64().unwrap(),
                seen.claims["exp"].as_i64().unwrap(),
            );
            assert!(exp > iat && exp - iat <= 300, "{}: {iat} {exp}", case.name);
        }
        // The second asks nothing: the stored token is still good.
        let again = token(&env, &name).await;
        assert_eq!(again.stdout.trim(), issued, "{}: {again:?}", case.name);
        assert_eq!(
            env.provider.grants(CLIENT_CREDENTIALS_GRANT),
            grants + 1,
            "{}: one grant for two `host token`",
            case.name
        );
        let stored = env.stored(&name, "default").await.unwrap();
        assert_eq!(stored["flow"], "client_credentials");
        assert!(stored["credential"]["refresh_token"].is_null(), "{stored}");
    }
    // Every jti was fresh: the provider refuses a replayed one, and none was refused.
    assert!(env.provider.client_assertions().iter().all(|a| a.accepted));
}

#[tokio::test]
async fn a_due_token_is_replaced_by_a_new_grant_and_the_bindings_use_it() {
    let env = HostEnv::start().await;
    env.write_config(&section(
        &env,
        "client_credentials",
        &format!("client_secret = \"{CLIENT_SECRET}\""),
    ));
    // `host run` obtains one and says so, without a browser or a prompt.
    let out = env.output(&["run", "--provider", "acme"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Obtained a token"), "{}", out.stderr);
    let first = token(&env, "acme").await.stdout.trim().to_owned();
    // A token due within the skew is replaced by running the grant again.
    let out = env
        .output(&["token", "--provider", "acme", "--min-valid", "99999"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let second = out.stdout.trim().to_owned();
    assert_ne!(first, second);
    assert_eq!(env.provider.grants(CLIENT_CREDENTIALS_GRANT), 2);
    assert_eq!(env.provider.refresh_count(), 0, "nothing was refreshed");
    // Tokens that live less than the skew: each `host token` is a new grant.
    env.provider.set_ttl(30);
    let a = env
        .output(&["token", "--provider", "acme", "--min-valid", "99999"])
        .await
        .stdout;
    let b = token(&env, "acme").await.stdout;
    assert_ne!(a, b);
    assert_eq!(env.provider.grants(CLIENT_CREDENTIALS_GRANT), 4);
    env.provider.set_ttl(3600);
    let current = token(&env, "acme").await.stdout.trim().to_owned();
    // `host api` and `host status --check` use it unchanged.
    let out = env.output(&["api", "--provider", "acme", "/user"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = env.output(&["status", "--check"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("acme"), "{out:?}");
    // `host logout` revokes it where the provider can.
    let out = env.output(&["logout", "--provider", "acme"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        env.provider.revoked().contains(&current),
        "{:?}",
        env.provider.revoked()
    );
    assert!(env.stored("acme", "default").await.is_none());
}

#[tokio::test]
async fn fifty_processes_on_a_due_token_make_one_grant() {
    let env = HostEnv::start().await;
    env.write_config(&section(
        &env,
        "client_credentials",
        &format!("client_secret = \"{CLIENT_SECRET}\""),
    ));
    // Nothing stored: fifty at once make one grant.
    env.provider.set_grant_delay(Duration::from_millis(300));
    let outs = futures_util::future::join_all((0..50).map(|_| token(&env, "acme"))).await;
    for out in &outs {
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout, outs[0].stdout);
    }
    assert_eq!(env.provider.grants(CLIENT_CREDENTIALS_GRANT), 1);
    // An expired one (it lived 30 s, less than the skew): one more grant for fifty.
    env.provider.set_ttl(30);
    let out = env
        .output(&["token", "--provider", "acme", "--min-valid", "99999"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    env.provider.set_ttl(3600);
    let outs = futures_util::future::join_all((0..50).map(|_| token(&env, "acme"))).await;
    for out in &outs {
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout, outs[0].stdout);
    }
    assert_eq!(env.provider.grants(CLIENT_CREDENTIALS_GRANT), 3);
}

#[tokio::test]
async fn four_machines_on_postgres_make_one_grant_for_a_hundred_processes() {
    let (machines, _db) = crate::pg_support::four_machines().await;
    let p = &machines[0].provider;
    for m in &machines {
        append_config(
            m,
            &section(
                m,
                "client_credentials",
                &format!("client_secret = \"{CLIENT_SECRET}\""),
            ),
        );
    }
    p.set_grant_delay(Duration::from_millis(300));
    let mut calls = Vec::new();
    for m in &machines {
        for _ in 0..25 {
            calls.push(token(m, "acme"));
        }
    }
    let outs = futures_util::future::join_all(calls).await;
    for out in &outs {
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(
            out.stdout, outs[0].stdout,
            "every process prints the same token"
        );
    }
    assert_eq!(p.grants(CLIENT_CREDENTIALS_GRANT), 1, "exactly one grant");
}

#[tokio::test]
async fn a_refused_client_authentication_is_explained_and_nothing_is_stored() {
    let env = HostEnv::start().await;
    let dir = keys_dir(&env);
    // A key the provider does not know.
    let unknown = test_key(KeyKind::Rsa, &dir);
    env.write_config(&section(
        &env,
        "client_credentials",
        &signed_with(&unknown.private_pem),
    ));
    let out = token(&env, "acme").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    for says in [
        "refused the client authentication",
        "private_key_jwt",
        unknown.thumbprint.as_str(),
        "invalid_client",
    ] {
        assert!(out.stderr.contains(says), "{says}: {}", out.stderr);
    }
    assert!(env.stored("acme", "default").await.is_none());
    // A wrong secret too, saying how it was sent.
    env.write_config(&section(
        &env,
        "client_credentials",
        "client_secret = \"not-the-secret\"\nclient_auth = \"request_body\"",
    ));
    let out = token(&env, "acme").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("in the request body") && !out.stderr.contains("not-the-secret"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn key_files_are_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let env = HostEnv::start().await;
    let dir = keys_dir(&env);
    let key = test_key(KeyKind::P256, &dir);
    env.provider.register_client_key(&key);
    let pem = std::fs::read_to_string(&key.private_pem).unwrap();
    let body: String = pem.lines().nth(1).unwrap().to_owned();
    env.write_config(&section(
        &env,
        "client_credentials",
        &signed_with(&key.private_pem),
    ));
    // Open to others: refused, named, before anything is sent.
    std::fs::set_permissions(&key.private_pem, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = token(&env, "acme").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("providers.acme.private_key_file")
            && out.stderr.contains("open to other users"),
        "{}",
        out.stderr
    );
    assert!(env.provider.token_requests().is_empty());
    // Malformed: named, never quoted.
    let broken = dir.join("broken.pem");
    std::fs::write(&broken, pem.replace("PRIVATE KEY", "PRIVATE KAY")).unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o600)).unwrap();
    let missing = dir.join("missing.pem");
    for (file, says) in [(&broken, "not a private key"), (&missing, "cannot read")] {
        env.write_config(&section(&env, "client_credentials", &signed_with(file)));
        let out = token(&env, "acme").await;
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr.contains(says) && out.stderr.contains(&file.display().to_string()),
            "{says}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains(&body), "{}", out.stderr);
    }
    // `host config` names the file, and `-v` logs never show the key.
    std::fs::set_permissions(&key.private_pem, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.write_config(&section(
        &env,
        "client_credentials",
        &signed_with(&key.private_pem),
    ));
    let out = env.output_debug(&["token", "--provider", "acme"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stderr.contains(&body), "{}", out.stderr);
    let assertion = env.provider.token_requests().pop().unwrap().form["client_assertion"].clone();
    assert!(
        !out.stderr.contains(&assertion),
        "the assertion is a secret too"
    );
    let out = env.output(&["config"]).await;
    assert!(!out.stdout.contains(&body), "{}", out.stdout);
}

#[tokio::test]
async fn jwt_bearer_with_a_key_file_and_with_a_service_account() {
    let env = HostEnv::start().await;
    let dir = keys_dir(&env);
    let key = test_key(KeyKind::Rsa, &dir);
    env.provider.register_client_key(&key);
    env.write_config(&section(
        &env,
        "jwt_bearer",
        &format!(
            "private_key_file = \"{}\"\nassertion_subject = \"user@example.com\"",
            toml_path(&key.private_jwk)
        ),
    ));
    let out = token(&env, "acme").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let grant = env.provider.machine_grants().pop().unwrap();
    assert_eq!(grant.grant_type, JWT_BEARER_GRANT);
    let claims = grant.assertion.unwrap();
    assert_eq!(claims["iss"], CLIENT_ID);
    assert_eq!(claims["sub"], "user@example.com");
    assert_eq!(claims["aud"], env.provider.url("/token"));
    assert_eq!(grant.scope.as_deref(), Some("read write"));
    assert_eq!(grant.access_token, out.stdout.trim());

    // A service-account file is all it takes: no client id, no token URL.
    let sa_key = test_key(KeyKind::Rsa, &dir);
    let file = env.provider.service_account_file(&sa_key, &dir);
    env.write_config(&format!(
        "[providers.robot]\nflow = \"jwt_bearer\"\nservice_account_file = \"{}\"\nscopes = [\"https://www.googleapis.com/auth/cloud-platform\"]\n",
        toml_path(&file)
    ));
    let out = token(&env, "robot").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let grant = env.provider.machine_grants().pop().unwrap();
    let claims = grant.assertion.unwrap();
    assert_eq!(claims["iss"], SERVICE_ACCOUNT_EMAIL);
    assert_eq!(
        claims["scope"], "https://www.googleapis.com/auth/cloud-platform",
        "the scopes go in the assertion, as Google asks"
    );
    let seen = env.provider.grant_assertions().pop().unwrap();
    assert_eq!(seen.kid.as_deref(), Some(sa_key.kid.as_str()));
    assert!(seen.accepted, "{seen:?}");

    // The catalog entry: the file and nothing else (here, Google's token endpoint is the test
    // provider's).
    env.write_config(&format!(
        "[providers.google-service-account]\nservice_account_file = \"{}\"\ntoken_url = \"{}\"\n",
        toml_path(&file),
        env.provider.url("/token")
    ));
    let out = token(&env, "google-service-account").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let claims = env
        .provider
        .machine_grants()
        .pop()
        .unwrap()
        .assertion
        .unwrap();
    assert_eq!(claims["iss"], SERVICE_ACCOUNT_EMAIL);
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
}

#[tokio::test]
async fn token_exchange_from_another_provider_a_file_and_a_github_actions_job() {
    let env = HostEnv::start().await;
    // The subject: another provider's fresh token (itself from client credentials).
    env.write_config(&format!(
        "{}{}",
        section(&env, "client_credentials", &format!("client_secret = \"{CLIENT_SECRET}\""))
            .replace("[providers.acme]", "[providers.upstream]"),
        section(
            &env,
            "token_exchange",
            "subject_provider = \"upstream\"\naudience = \"https://cloud.example\"\nrequested_token_type = \"access_token\""
        )
    ));
    let out = token(&env, "acme").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let upstream = token(&env, "upstream").await.stdout.trim().to_owned();
    let grant = env.provider.machine_grants().pop().unwrap();
    assert_eq!(grant.grant_type, TOKEN_EXCHANGE_GRANT);
    assert_eq!(grant.subject_token.as_deref(), Some(upstream.as_str()));
    assert_eq!(grant.subject_token_type.as_deref(), Some(ACCESS_TOKEN_TYPE));
    assert_eq!(
        grant.requested_token_type.as_deref(),
        Some(ACCESS_TOKEN_TYPE)
    );
    assert_eq!(grant.audience, ["https://cloud.example"]);
    assert_eq!(grant.access_token, out.stdout.trim());

    // From a file.
    let file = env.home.path().join("subject.token");
    std::fs::write(&file, format!("{upstream}\n")).unwrap();
    env.write_config(&section(
        &env,
        "token_exchange",
        &format!("subject_token_file = \"{}\"", toml_path(&file)),
    ));
    let out = token(&env, "acme").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let grant = env.provider.machine_grants().pop().unwrap();
    assert_eq!(grant.subject_token.as_deref(), Some(upstream.as_str()));

    // From a GitHub Actions job's OpenID Connect token, for the audience asked.
    env.write_config(&section(
        &env,
        "token_exchange",
        "subject_token_source = \"github-actions\"\naudience = \"//iam.example/pools/ci\"",
    ));
    let vars = env.provider.actions_env();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = env
        .output_with(
            &["token", "--provider", "acme", "--min-valid", "99999"],
            &vars,
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        env.provider.actions_audiences(),
        [Some("//iam.example/pools/ci".to_owned())],
        "{out:?}"
    );
    let grant = env.provider.machine_grants().pop().unwrap();
    assert_eq!(grant.subject_token_type.as_deref(), Some(JWT_TOKEN_TYPE));
    assert_eq!(grant.subject.as_deref(), Some(ACTIONS_SUBJECT));
    assert_eq!(grant.audience, ["//iam.example/pools/ci"]);
    // Outside a job: said, nothing sent.
    let before = env.provider.token_requests().len();
    let out = env
        .output(&["token", "--provider", "acme", "--min-valid", "99999"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("ACTIONS_ID_TOKEN_REQUEST_URL"),
        "{}",
        out.stderr
    );
    assert_eq!(env.provider.token_requests().len(), before);
}

#[tokio::test]
async fn tls_client_auth_presents_the_client_certificate() {
    use std::os::unix::fs::PermissionsExt;
    let env = HostEnv::start().await;
    let tls = host_testkit::tls::TlsTokenServer::start_mtls().await;
    let configure = |cert: &Path, key: &Path| {
        env.write_config(&format!(
            "[providers.acme]\nclient_id = \"{CLIENT_ID}\"\ntoken_url = \"{}\"\nflow = \"client_credentials\"\nclient_auth = \"tls_client_auth\"\ntls_client_cert_file = \"{}\"\ntls_client_key_file = \"{}\"\n",
            tls.url("/token"),
            toml_path(cert),
            toml_path(key)
        ))
    };
    let ca = tls.ca_cert();
    let trusted = [("SSL_CERT_FILE", ca.to_str().unwrap())];
    configure(&tls.client_cert(), &tls.client_key());
    let out = env
        .output_with(&["token", "--provider", "acme"], &trusted)
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("tls-token-"), "{out:?}");
    assert_eq!(tls.presented_cns(), [Some(CLIENT_ID.to_owned())]);
    // A certificate the provider does not trust: refused, said how.
    configure(&tls.rogue_client_cert(), &tls.rogue_client_key());
    let out = env
        .output_with(
            &["token", "--provider", "acme", "--min-valid", "99999"],
            &trusted,
        )
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("refused the client authentication")
            && out.stderr.contains("tls_client_auth"),
        "{}",
        out.stderr
    );
    // Its key open to others: refused before any connection.
    let answered = tls.mtls_requests().len();
    let key = env.home.path().join("client.key");
    std::fs::copy(tls.client_key(), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    configure(&tls.client_cert(), &key);
    let out = env
        .output_with(
            &["token", "--provider", "acme", "--min-valid", "99999"],
            &trusted,
        )
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("tls_client_key_file") && out.stderr.contains("open to other users"),
        "{}",
        out.stderr
    );
    assert_eq!(tls.mtls_requests().len(), answered);
}

#[tokio::test]
async fn the_library_obtains_renews_and_sends_with_machine_tokens() {
    use host::AuthFlow as _;
    use host::oauth2::machine::{MachineFlow, MachineGrant};
    let env = HostEnv::start().await;
    env.write_config(&section(
        &env,
        "client_credentials",
        &format!("client_secret = \"{CLIENT_SECRET}\""),
    ));
    let app = env.app();
    // No login: the App obtains one, and a session sends with it.
    let record = app
        .token("acme", "default", Duration::from_secs(60))
        .await
        .unwrap();
    let issued = record.credential.secret().unwrap().expose().to_owned();
    assert_eq!(record.flow, "client_credentials");
    let session = app.session("acme", "default").await.unwrap();
    let request = http::Request::get(env.provider.url("/api/user"))
        .body(Vec::new())
        .unwrap();
    let response = session.send(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(env.provider.grants(CLIENT_CREDENTIALS_GRANT), 1);
    // The typed handle: the provider's flow as what it is.
    let provider = app.provider("acme").unwrap();
    let flow = provider
        .flow_as::<MachineFlow>("client_credentials")
        .await
        .unwrap();
    assert!(matches!(flow.grant(), MachineGrant::ClientCredentials));
    assert!(flow.unattended());
    // Any OAuth2Flow can be given a grant of its own.
    let oauth2 = crate::support::flow(&env.provider);
    let own = MachineFlow::new(oauth2, MachineGrant::ClientCredentials);
    let credential = own.obtain().await.unwrap();
    assert_ne!(credential.secret().unwrap().expose(), issued);
    assert_eq!(env.provider.grants(CLIENT_CREDENTIALS_GRANT), 2);
}
