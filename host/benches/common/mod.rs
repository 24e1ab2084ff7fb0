//! What the benchmarks share.

use host::{DeviceCode, LoginUi};

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
