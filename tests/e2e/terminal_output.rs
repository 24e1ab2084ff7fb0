//! What an API answers reaches a terminal escaped: `host api` writes the bytes as they are to
//! a pipe or a file, and shows a terminal what would act on it (escape sequences, control,
//! bidirectional and invisible characters) as visible escapes, unless `--raw`.

use crate::support::HostEnv;

/// The hostile body: an OSC 52 clipboard write, a window title, clear-screen, a C1 CSI, a
/// right-to-left override and a zero-width space, around plain text.
const HOSTILE: &str = "start \x1b]52;c;ZWNobyBwd25lZA==\x07 \x1b]0;title\x07\x1b[2J \u{9b}31m red \u{202e}txt.exe\u{200b} end\n";

/// An API on its own 127.0.0.1 port answering every request with [`HOSTILE`].
async fn hostile_api() -> String {
    use tokio::io::AsyncWriteExt;
    let (port, _) = crate::support::raw_server(
        async |_: u16, _: String, mut stream: tokio::net::TcpStream| {
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{HOSTILE}",
                HOSTILE.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        },
    )
    .await;
    format!("http://127.0.0.1:{port}/raw/file")
}

/// `host api … URL` with a terminal for its standard output (`script` gives it one); what the
/// terminal received.
async fn through_a_terminal(env: &HostEnv, url: &str, extra: &[&str]) -> String {
    let mut command = vec![
        env!("CARGO_BIN_EXE_host"),
        "api",
        "--provider",
        "github",
        "--allow-origin",
    ];
    command.extend_from_slice(extra);
    command.push(url);
    let line = command
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = env
        .command("script", &["-q", "-e", "-c", &line, "/dev/null"])
        .output()
        .await
        .expect("script runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn an_apis_escape_sequences_are_shown_escaped_on_a_terminal_and_kept_in_a_pipe() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let url = hostile_api().await;

    let shown = through_a_terminal(&env, &url, &[]).await;
    for raw in ['\x1b', '\x07', '\u{9b}', '\u{202e}', '\u{200b}'] {
        assert!(
            !shown.contains(raw),
            "{raw:?} reached the terminal: {shown:?}"
        );
    }
    for escaped in [
        "\\x1b]52;c;ZWNobyBwd25lZA==\\x07",
        "\\x1b]0;title\\x07",
        "\\x1b[2J",
        "\\u{009b}31m red",
        "\\u{202e}txt.exe\\u{200b}",
    ] {
        assert!(shown.contains(escaped), "{escaped}: {shown:?}");
    }
    assert!(
        shown.contains("start ") && shown.contains(" end"),
        "{shown:?}"
    );

    // --raw: the bytes as they are, to a terminal too.
    let raw = through_a_terminal(&env, &url, &["--raw"]).await;
    assert!(raw.contains("\x1b]52;c;ZWNobyBwd25lZA==\x07"), "{raw:?}");

    // A pipe gets the bytes.
    let out = env
        .output(&["api", "--provider", "github", "--allow-origin", &url])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, HOSTILE);
}
