//! A plugin that misbehaves on demand: the `mode` in its app credentials picks how, when
//! `authorize` is called.

use serde_json::{Value, json};

wit_bindgen::generate!({ world: "plugin", path: "../../../wit/v0.1.0" });

use exports::integrations::auth::auth_flow::Guest;
use integrations::auth::http::{self, Method, Request};
use integrations::auth::types::{Authorization, AuthorizeRequest, Credential, FlowError, Interaction, PluginMetadata};

struct Hostile;

/// Calls this instance has served: a fresh instance per call always starts at 0.
static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    // Scalars only: every frame lives on the wasm stack, not the shadow stack in memory.
    std::hint::black_box(recurse(std::hint::black_box(n + 1))).wrapping_mul(3)
}

fn get(url: &str) -> Result<String, FlowError> {
    let headers = vec![("content-type".into(), "application/x-www-form-urlencoded".into())];
    let r = http::send(&Request { method: Method::Post, url: url.into(), headers, body: b"grant_type=x".to_vec() })
        .map_err(|e| FlowError::Network(format!("{e:?}")))?;
    Err(FlowError::Network(format!("got HTTP {}", r.status)))
}

/// A GET through `wasi:http/outgoing-handler` (what JavaScript's `fetch` uses).
fn wasi_http_get(url: &str) -> Result<String, FlowError> {
    use wasi::http::types::{Fields, Method as WMethod, OutgoingRequest, Scheme};
    let (scheme, rest) = url.split_once("://").ok_or_else(|| FlowError::Internal("bad url".into()))?;
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let request = OutgoingRequest::new(Fields::new());
    request.set_method(&WMethod::Get).unwrap();
    request
        .set_scheme(Some(&if scheme == "https" { Scheme::Https } else { Scheme::Http }))
        .unwrap();
    request.set_authority(Some(authority)).unwrap();
    request.set_path_with_query(Some(&path)).unwrap();
    let future = wasi::http::outgoing_handler::handle(request, None)
        .map_err(|e| FlowError::Network(format!("wasi:http refused: {e:?}")))?;
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => Err(FlowError::Network(format!("wasi:http got HTTP {}", response.status()))),
        Some(Ok(Err(code))) => Err(FlowError::Network(format!("wasi:http error: {code:?}"))),
        other => Err(FlowError::Internal(format!("wasi:http: {other:?}"))),
    }
}

impl Guest for Hostile {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            display_name: "Hostile".into(),
            version: "6.6.6".into(),
            allowed_hosts: vec!["127.0.0.1".into()],
            app_credentials_schema: json!({"type": "object", "required": ["mode"], "properties": {"mode": {"type": "string"}, "url": {"type": "string"}, "exchange": {"type": "string"}, "color": {"type": "string", "pattern": "^\u{1b}\\[31m\u{202e}red$"}}}).to_string(),
        }
    }

    fn authorize(app: String, _req: AuthorizeRequest) -> Result<Authorization, FlowError> {
        let app: Value = serde_json::from_str(&app).unwrap();
        let url = app["url"].as_str().unwrap_or_default();
        match app["mode"].as_str().unwrap_or_default() {
            "loop" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => {
                std::hint::black_box(recurse(0));
                unreachable!()
            }
            "panic" => panic!("the plugin panicked on purpose"),
            "fetch" => get(url).map(|_| unreachable!()),
            // The same server, asked for another virtual host.
            "host-header" => {
                let headers = vec![("host".into(), "internal-admin.example".into())];
                let r = http::send(&Request { method: Method::Get, url: url.into(), headers, body: vec![] })
                    .map_err(|e| FlowError::Network(format!("{e:?}")))?;
                Err(FlowError::Network(format!("got HTTP {}", r.status)))
            }
            "wasi-http" => wasi_http_get(url).map(|_| unreachable!()),
            "probe" => {
                // What can it see? Nothing, if the sandbox holds.
                let file = std::fs::read_to_string("/etc/passwd").map(|s| s.len()).map_err(|e| e.to_string());
                let dir = std::fs::read_dir("/").map(|d| d.count()).map_err(|e| e.to_string());
                let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                let home = std::env::var("HOME").ok();
                // Against the test's trap (`url` is its address: a TCP listener and a UDP socket
                // on one port, recording anything that arrives), so that a refusal is the
                // sandbox's, not a closed port's.
                let socket = std::net::TcpStream::connect(url).map(|_| ()).map_err(|e| e.to_string());
                let datagram = std::net::UdpSocket::bind("127.0.0.1:0")
                    .and_then(|s| s.send_to(b"from the plugin", url))
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let lookup = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 443))
                    .map(|a| a.count())
                    .map_err(|e| e.to_string());
                println!("hello from the plugin's stdout");
                eprintln!("hello from the plugin's stderr");
                let report = json!({
                    "file": format!("{file:?}"), "dir": format!("{dir:?}"), "env": env, "home": home,
                    "socket": format!("{socket:?}"), "datagram": format!("{datagram:?}"),
                    "lookup": format!("{lookup:?}")
                });
                // Carried in an https URL's query (a redirect must be https to be shown at all).
                let encoded: String = report
                    .to_string()
                    .bytes()
                    .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
                    .collect();
                Ok(Authorization {
                    interaction: Interaction::Redirect(format!("https://probe.invalid/?report={encoded}")),
                    pending: vec![],
                })
            }
            "chatty" => {
                for i in 0..5_000 {
                    println!("line {i} of a very chatty plugin that tries to flood the host's log");
                }
                Err(FlowError::Internal("done talking".into()))
            }
            // URLs a desktop opener must never get.
            "redirect-js" => Ok(Authorization {
                interaction: Interaction::Redirect("javascript:alert(document.cookie)".into()),
                pending: vec![],
            }),
            "redirect-file" => Ok(Authorization { interaction: Interaction::Redirect("file:///etc/passwd".into()), pending: vec![] }),
            "device-data" => Ok(Authorization {
                interaction: Interaction::DeviceCode(integrations::auth::types::DeviceCode {
                    user_code: "ABCD-EFGH".into(),
                    verification_uri: "https://device.example/".into(),
                    verification_uri_complete: Some("data:text/html,<script>alert(1)</script>".into()),
                    interval_secs: 1,
                    expires_in_secs: 60,
                }),
                pending: vec![],
            }),
            // Escapes and bidi overrides in every text the host shows.
            "escapes" => Err(FlowError::InvalidInput("\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}evil\u{2066}".repeat(50))),
            "log-flood" => {
                let line = "x".repeat(2000);
                for _ in 0..20_000 {
                    integrations::auth::log::log(integrations::auth::log::Level::Error, &line);
                }
                Err(FlowError::Internal("done logging".into()))
            }
            // Host calls that all return at once: the guest never waits on anything.
            "log-spin" => loop {
                integrations::auth::log::log(integrations::auth::log::Level::Error, "");
            },
            // A string that is not UTF-8, handed to the host.
            "bad-utf8-log" => {
                // SAFETY: deliberately not UTF-8; the host must refuse it, not trust it.
                let bytes = std::hint::black_box(vec![0xffu8, 0xfe, b'x']);
                let text = unsafe { std::str::from_utf8_unchecked(&bytes) };
                integrations::auth::log::log(integrations::auth::log::Level::Error, text);
                Err(FlowError::Internal("the host took it".into()))
            }
            "exit" => std::process::exit(3),
            // Waiting is not computing: this must not count against the CPU limit.
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3));
                Err(FlowError::Internal("slept well".into()))
            }
            "huge-pending" => Ok(Authorization {
                interaction: Interaction::Prompt(vec![]),
                pending: vec![7u8; 1 << 20],
            }),
            // A login whose exchange returns what `mode` says.
            "login" => {
                CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(Authorization {
                interaction: Interaction::Prompt(vec![integrations::auth::types::PromptField {
                    name: "key".into(),
                    label: "Key".into(),
                    secret: true,
                }]),
                pending: vec![],
            })
            }
            other => Err(FlowError::InvalidAppCredentials(format!("unknown mode {other}"))),
        }
    }

    fn exchange(app: String, _pending: Vec<u8>, _input: Vec<(String, String)>) -> Result<Credential, FlowError> {
        let app: Value = serde_json::from_str(&app).unwrap();
        let calls = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let with_extra = |access_token: String, extra_json: String| {
            Credential::Oauth2(integrations::auth::types::Oauth2Token {
                access_token,
                token_type: "bearer".into(),
                refresh_token: Some("hostile-refresh".into()),
                expires_at: None,
                scopes: vec![],
                extra_json,
            })
        };
        let token = |scopes: Vec<String>, expires_at: Option<i64>| {
            Credential::Oauth2(integrations::auth::types::Oauth2Token {
                access_token: "hostile-token".into(),
                token_type: "bearer".into(),
                refresh_token: Some("hostile-refresh".into()),
                expires_at,
                scopes,
                extra_json: String::new(),
            })
        };
        // `extra-N`: extra-json of exactly N bytes (`{"pad":"xxx…"}`).
        if let Some(n) = app["exchange"].as_str().and_then(|e| e.strip_prefix("extra-")) {
            let n: usize = n.parse().unwrap();
            return Ok(with_extra("extra-token".into(), format!("{{\"pad\":\"{}\"}}", "x".repeat(n - 10))));
        }
        match app["exchange"].as_str().unwrap_or_default() {
            "scopes-flood" => Ok(token((0..1_000_000).map(|i| format!("s{i}")).collect(), None)),
            "expires-min" => Ok(token(vec![], Some(i64::MIN))),
            "expires-max" => Ok(token(vec![], Some(i64::MAX))),
            // How many calls this instance served, the authorization's included.
            "count-calls" => Ok(with_extra(format!("calls-{calls}"), String::new())),
            _ => Err(FlowError::Unsupported("hostile".into())),
        }
    }

    fn refresh(_app: String, _credential: Credential) -> Result<Credential, FlowError> {
        Err(FlowError::Unsupported("hostile".into()))
    }

    fn revoke(_app: String, _credential: Credential) -> Result<bool, FlowError> {
        Ok(false)
    }
}

export!(Hostile);
