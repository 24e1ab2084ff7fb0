//! What the benchmarks share.

use std::path::Path;

use host::{LoginUi, flow::DeviceCode};
use host_testkit::TestProvider;

/// A token server answering as Slack does, never rotating refresh tokens (so a bench can
/// refresh the same credential again and again).
#[allow(dead_code)] // not every bench uses a plugin
pub(crate) async fn slack_server() -> TestProvider {
    let slack = TestProvider::start().await;
    slack.set_rotate(false);
    slack.set_slack_shape(true);
    slack
}

/// Installs the slack example plugin in `home`'s default plugins folder and configures it,
/// in `home`'s default configuration file, against `slack`.
#[allow(dead_code)] // not every bench uses a plugin
pub(crate) fn install_slack(home: &Path, slack: &TestProvider) {
    let plugins = home.join("data/host/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        host_testkit::guests::SLACK_PLUGIN,
        plugins.join("slack.wasm"),
    )
    .unwrap();
    std::fs::create_dir_all(home.join("config/host")).unwrap();
    std::fs::write(
        home.join("config/host/host.toml"),
        format!(
            "[plugins]\nallow_http_loopback = true\n[providers.slack]\nclient_id = \"{}\"\n\
             client_secret = \"{}\"\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\n",
            host_testkit::CLIENT_ID,
            host_testkit::CLIENT_SECRET,
            slack.url("/authorize"),
            slack.url("/token")
        ),
    )
    .unwrap();
}

/// Whether the bench's filter (its first free argument) leaves out a comparison named `title`
/// that criterion does not run itself (it filters only its own groups).
#[allow(dead_code)] // not every bench has such a comparison
pub(crate) fn filtered_out(title: &str) -> bool {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .is_some_and(|f| !title.contains(&f))
}

/// A "browser" that approves at once: it visits the authorization URL and follows the
/// provider's redirect to the callback.
pub(crate) struct Approver;

impl LoginUi for Approver {
    fn show_url(&self, url: &str) {
        let url = url.to_owned();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap();
            let to = client.get(&url).send().await.unwrap();
            let callback = to.headers()["location"].to_str().unwrap().to_owned();
            client.get(callback).send().await.unwrap();
        });
    }

    fn show_device_code(&self, _code: &DeviceCode) {}
}
