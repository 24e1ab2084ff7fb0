//! Helpers shared by the tests.

use std::time::Duration;

use host::ProviderSection;
use host::oauth2::{OAuth2AppCredentials, OAuth2Flow, StandardToken};
use host::{
    AuthFlow, Credential, flow::AuthorizeRequest, flow::ExchangeInput, flow::Interaction,
    flow::Pending,
};
use host::{HttpClient, http::HttpPolicy};
use host_testkit::TestProvider;
use serde_json::Value;

/// The redirect URI the tests claim (nothing listens there: the test "browser" stops at the
/// provider's redirect).
pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// Tight limits so hanging or trickling servers fail within seconds.
pub(crate) fn tight_http() -> HttpClient {
    let mut policy = HttpPolicy::default();
    policy.connect_timeout = Duration::from_secs(2);
    policy.timeout = Duration::from_secs(2);
    policy.max_body = 64 * 1024;
    HttpClient::new(policy).expect("client")
}

/// An OAuth2 flow against the test provider, with app credentials patched by `patch`.
pub(crate) fn flow_with(provider: &TestProvider, patch: impl FnOnce(&mut Value)) -> OAuth2Flow {
    let mut app = provider.app_credentials();
    patch(&mut app);
    let app: OAuth2AppCredentials = ProviderSection::from_code("test", app)
        .parse()
        .expect("valid app credentials");
    OAuth2Flow::with_class("test", app, StandardToken, tight_http()).expect("flow")
}

/// An OAuth2 flow against the test provider.
pub(crate) fn flow(provider: &TestProvider) -> OAuth2Flow {
    flow_with(provider, |_| {})
}

/// Runs authorize, then the test browser's approval: the pending state, the authorization URL
/// and the callback's query string.
pub(crate) async fn approved(flow: &dyn AuthFlow) -> (Pending, String, String) {
    let auth = flow
        .authorize(AuthorizeRequest::with_redirect(REDIRECT))
        .await
        .expect("authorize");
    let Interaction::Redirect { url } = auth.interaction else {
        panic!("expected a redirect")
    };
    let query = host_testkit::approve(&url).await;
    (auth.pending, url, query)
}

/// Runs authorize → approve (the test browser) → exchange.
pub(crate) async fn login(flow: &dyn AuthFlow) -> Credential {
    let (pending, _, query) = approved(flow).await;
    flow.exchange(pending, ExchangeInput::from_query(&query))
        .await
        .expect("exchange")
}
/// Asserts that neither `Display` nor `Debug` of `value` shows any of `secrets`.
pub(crate) fn assert_no_secrets<E: std::fmt::Display + std::fmt::Debug>(
    value: &E,
    secrets: &[&str],
) {
    let shown = format!("{value} / {value:?}");
    for s in secrets {
        assert!(!shown.contains(s), "secret {s:?} leaked into: {shown}");
    }
}

/// Asserts that `Debug` of `value` shows none of `secrets`.
pub(crate) fn assert_debug_no_secrets<T: std::fmt::Debug>(value: &T, secrets: &[&str]) {
    let shown = format!("{value:?}");
    for s in secrets {
        assert!(!shown.contains(s), "secret {s:?} leaked into: {shown}");
    }
}

/// A temp home for the real `host` binary, wired to a test provider.
pub(crate) struct HostEnv {
    pub(crate) home: tempfile::TempDir,
    pub(crate) provider: std::sync::Arc<TestProvider>,
}

impl HostEnv {
    pub(crate) async fn start() -> Self {
        Self {
            home: tempfile::tempdir().expect("temp home"),
            provider: std::sync::Arc::new(TestProvider::start().await),
        }
    }

    /// Another machine: its own home (configuration, data), the same provider.
    pub(crate) fn another_machine(&self) -> Self {
        Self {
            home: tempfile::tempdir().expect("temp home"),
            provider: std::sync::Arc::clone(&self.provider),
        }
    }

    pub(crate) fn data_dir(&self) -> std::path::PathBuf {
        self.home.path().join("data/host")
    }

    /// Takes the file lock of `account`'s github record as a stopped process would hold it:
    /// held until the returned file is dropped.
    pub(crate) fn hold_record_lock(&self, account: &str) -> std::fs::File {
        let holder = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.record_path(account).with_extension("lock"))
            .unwrap();
        holder.lock().unwrap();
        holder
    }

    pub(crate) fn record_path(&self, account: &str) -> std::path::PathBuf {
        self.data_dir()
            .join(format!("credentials/github/{account}.json"))
    }

    /// The stored record of `provider`/`account`, opened with the store's key, as JSON (the
    /// file on disk is sealed).
    pub(crate) async fn stored(&self, provider: &str, account: &str) -> Option<serde_json::Value> {
        let record = self
            .app()
            .store()
            .load(provider, account)
            .await
            .expect("readable")?;
        Some(serde_json::to_value(record).unwrap())
    }

    /// The plugins folder `host` uses by default.
    pub(crate) fn plugins_dir(&self) -> std::path::PathBuf {
        self.data_dir().join("plugins")
    }

    /// Copies the component `wasm` into the plugins folder as provider `name`; its path.
    pub(crate) fn install_plugin(&self, name: &str, wasm: &str) -> std::path::PathBuf {
        let path = self.install_raw(name, b"");
        std::fs::copy(wasm, &path).unwrap();
        path
    }

    /// Writes `bytes` into the plugins folder as provider `name`'s file (a broken plugin);
    /// its path.
    pub(crate) fn install_raw(&self, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = self.plugins_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Writes the configuration `toml` and builds the library's app over it, with a plugin
    /// host of its own: what a new process would have.
    pub(crate) fn app_with(
        &self,
        toml: &str,
    ) -> (host::App, std::sync::Arc<host::plugin::PluginHost>) {
        self.write_config(toml);
        let app = self.app();
        let plugins = std::sync::Arc::clone(app.plugins());
        (app, plugins)
    }

    /// Writes the configuration file `host` reads by default.
    pub(crate) fn write_config(&self, toml: &str) {
        let dir = self.home.path().join("config/host");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("host.toml"), toml).unwrap();
    }

    /// The library's [`host::App`] over the same configuration and store as [`HostEnv::host`].
    pub(crate) fn app(&self) -> host::App {
        let home = self.home.path();
        let config = host::ConfigLoader::with_env(self.provider.github_env(home))
            .defaults(host::builtin_defaults())
            .load()
            .expect("configuration");
        host::App::from_config(config).expect("store settings")
    }

    /// `host ARGS` with a clean environment: only the temp home and the github provider's
    /// settings pointed at the test provider.
    pub(crate) fn host(&self, args: &[&str]) -> tokio::process::Command {
        self.command(env!("CARGO_BIN_EXE_host"), args)
    }

    /// Any program with the same clean environment as [`HostEnv::host`].
    pub(crate) fn command(&self, program: &str, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.provider.github_env(self.home.path()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `host ARGS` to completion.
    pub(crate) async fn output(&self, args: &[&str]) -> Output {
        Self::finish(&mut self.host(args)).await
    }

    /// `host [BEFORE…] run --provider PROVIDER --no-browser --timeout 1`: a login that opens no
    /// browser and gives up after a second, for what `run` says before it waits, or why it
    /// cannot start.
    pub(crate) async fn run_briefly(&self, before: &[&str], provider: &str) -> Output {
        self.run_briefly_with(before, provider, &[]).await
    }

    /// [`HostEnv::run_briefly`] with more `run` options after its own (`--port N`, …).
    pub(crate) async fn run_briefly_with(
        &self,
        before: &[&str],
        provider: &str,
        after: &[&str],
    ) -> Output {
        let run = [
            "run",
            "--provider",
            provider,
            "--no-browser",
            "--timeout",
            "1",
        ];
        let args: Vec<&str> = before
            .iter()
            .copied()
            .chain(run)
            .chain(after.iter().copied())
            .collect();
        self.output(&args).await
    }

    /// Runs `host ARGS` to completion with these environment variables set as well.
    pub(crate) async fn output_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut command = self.host(args);
        command.envs(vars.iter().copied());
        Self::finish(&mut command).await
    }

    /// Runs `host ARGS` to completion with `HOST_LOG=host=debug` (its log in `stderr`).
    pub(crate) async fn output_debug(&self, args: &[&str]) -> Output {
        Self::finish(self.host(args).env("HOST_LOG", "host=debug")).await
    }

    /// [`HostEnv::output`] for a command that would hang if the code under test regressed:
    /// the test fails if it has not ended within a minute, instead of hanging.
    pub(crate) async fn output_bounded(&self, args: &[&str]) -> Output {
        Self::finish_bounded(&mut self.host(args)).await
    }

    /// Runs `cmd` to completion, failing the test if it has not ended within a minute.
    pub(crate) async fn finish_bounded(cmd: &mut tokio::process::Command) -> Output {
        tokio::time::timeout(Duration::from_secs(60), Self::finish(cmd))
            .await
            .expect("host ends within a minute")
    }

    async fn finish(cmd: &mut tokio::process::Command) -> Output {
        let out = cmd.output().await.expect("run host");
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `host run --provider github --no-browser ARGS`, driven by the test "browser": `visit`
    /// gets the authorization URL and returns the callback URLs to request, in order; returns
    /// the run's outcome and the listener's answers.
    pub(crate) async fn login(
        &self,
        extra: &[&str],
        visit: impl AsyncFnOnce(String) -> Vec<String>,
    ) -> (Output, Vec<(u16, String)>) {
        self.login_as("github", extra, visit).await
    }

    /// [`HostEnv::login`] with another provider.
    pub(crate) async fn login_as(
        &self,
        provider: &str,
        extra: &[&str],
        visit: impl AsyncFnOnce(String) -> Vec<String>,
    ) -> (Output, Vec<(u16, String)>) {
        use tokio::io::AsyncReadExt;
        let mut args = vec!["run", "--provider", provider, "--no-browser"];
        args.extend_from_slice(extra);
        let mut child = self.host(&args).spawn().expect("spawn host run");
        let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
        let (url, seen) = read_url(&mut stderr).await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut answers = Vec::new();
        for callback in visit(url).await {
            let r = client
                .get(&callback)
                .send()
                .await
                .expect("callback request");
            answers.push((r.status().as_u16(), r.text().await.unwrap_or_default()));
        }
        let mut rest = String::new();
        let mut stdout = String::new();
        let mut out_pipe = child.stdout.take().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), async {
            let _ = stderr.read_to_string(&mut rest).await;
            let _ = out_pipe.read_to_string(&mut stdout).await;
            child.wait().await
        })
        .await
        .expect("host run ends")
        .unwrap();
        (
            Output {
                code: status.code(),
                stdout,
                stderr: seen + &rest,
            },
            answers,
        )
    }

    /// A full, successful login; returns its JSON summary.
    pub(crate) async fn login_ok(&self) -> serde_json::Value {
        let (out, answers) = self
            .login(&["--json", "--timeout", "20"], async |url| {
                vec![browser_redirect(&url).await]
            })
            .await;
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(answers[0].0, 200, "{answers:?}");
        serde_json::from_str(&out.stdout).expect("JSON summary")
    }
}

/// Reads a process's stderr up to the first line that is a URL (the authorization URL a login
/// prints); returns it and everything read.
pub(crate) async fn read_url(
    stderr: &mut tokio::io::BufReader<tokio::process::ChildStderr>,
) -> (String, String) {
    use tokio::io::AsyncBufReadExt;
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(20), stderr.read_line(&mut line))
            .await
            .expect("the URL is printed in time")
            .unwrap();
        assert!(n > 0, "the process ended before printing a URL: {seen}");
        seen.push_str(&line);
        if line.starts_with("http://") {
            return (line.trim().to_owned(), seen);
        }
    }
}

/// A loopback port that refuses connections for as long as the returned socket is kept: bound
/// but never listening, so no other process can take the port meanwhile (a port bound and
/// released at once could be anyone's by the time it is used).
pub(crate) fn closed_port() -> (u16, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    (socket.local_addr().unwrap().port(), socket)
}

/// A loopback port free now, for `host` to listen on itself (released at once: `host` must
/// be able to bind it).
pub(crate) fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

/// What the browser gets when it lands on `callback` (the loopback listener's page): its
/// status.
pub(crate) async fn land_on(callback: &str) -> u16 {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(callback)
        .send()
        .await
        .expect("the callback answers")
        .status()
        .as_u16()
}

/// The callback URL the provider sends the browser to.
pub(crate) async fn browser_redirect(authorization_url: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let r = client.get(authorization_url).send().await.unwrap();
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// What a finished `host` process said.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// The first lines of the requests a [`raw_server`] received, in order.
pub(crate) type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A TCP server on 127.0.0.1 speaking just enough HTTP/1.1 for hostile answers: for each
/// connection it records the request line, reads the head, and hands the head (the request
/// line first) and the stream to `answer`. Returns its port and what it saw.
pub(crate) async fn raw_server<F, Fut>(answer: F) -> (u16, Seen)
where
    F: Fn(u16, String, tokio::net::TcpStream) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use tokio::io::AsyncBufReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Seen::default();
    let record = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (record, answer) = (std::sync::Arc::clone(&record), answer.clone());
            tokio::spawn(async move {
                let mut reader = tokio::io::BufReader::new(stream);
                let mut first = String::new();
                let _ = reader.read_line(&mut first).await;
                record.lock().unwrap().push(first.trim().to_owned());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) <= 2 {
                        break;
                    }
                    first.push_str(&line);
                }
                answer(port, first, reader.into_inner()).await;
            });
        }
    });
    (port, seen)
}

/// Writes a store key file as `host` wants it: the key on a line, owner-only (`0600`).
pub(crate) fn write_key_file(path: &std::path::Path, key: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{}\n", key.trim())).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Makes a FIFO at `path` (where a regular file is expected: a reader that opened it would
/// block).
pub(crate) fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Runs `cmd` with `input` on its standard input (then closed) to completion: what it said.
/// The one way the tests feed a process (`git credential fill`, `host git-credential get`, a
/// key piped to `host run`).
pub(crate) async fn fed(mut cmd: tokio::process::Command, input: &[u8]) -> Output {
    use tokio::io::AsyncWriteExt;
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("the command starts");
    let mut stdin = child.stdin.take().unwrap();
    // A process that exits without reading all of it is not an error here.
    let _ = stdin.write_all(input).await;
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Characters that must never reach a terminal from a plugin or provider.
pub(crate) const UNSAFE: &[char] = &[
    '\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\u{2066}', '\u{200b}',
];

/// Fails the test when `text` holds a character of [`UNSAFE`].
pub(crate) fn assert_clean(text: &str) {
    for c in UNSAFE {
        assert!(!text.contains(*c), "{c:?} reached the terminal: {text:?}");
    }
}

/// A home with the hostile test plugin installed as provider `evil`, configured with `section`.
pub(crate) async fn hostile(section: &str) -> HostEnv {
    let env = HostEnv::start().await;
    env.install_plugin("evil", host_testkit::guests::HOSTILE);
    env.write_config(&format!(
        "[plugins]\nallow_http_loopback = true\n[providers.evil]\n{section}\n"
    ));
    env
}

/// `host token` that must refresh (the token lives an hour; it must be valid for more).
pub(crate) const DUE: &[&str] = &["token", "--provider", "github", "--min-valid", "4000"];

/// A logged-in home whose GitHub revocation goes to the RFC 7009 endpoint.
pub(crate) async fn logged_in() -> HostEnv {
    let env = HostEnv::start().await;
    env.write_config(&format!(
        "[providers.github]\nrevocation_url = \"{}\"\n",
        env.provider.url("/revoke")
    ));
    env.login_ok().await;
    env
}
