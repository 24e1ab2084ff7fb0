//! A device-flow plugin written with plugin-sdk: `authorize` asks the provider for a code,
//! each `exchange` makes one poll (the host keeps the schedule).

use plugin_sdk::oauth2::{self, ClientAuth};
use plugin_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct App {
    client_id: String,
    client_secret: String,
    device_url: String,
    token_url: String,
}

#[derive(Deserialize)]
struct Code {
    device_code: String,
    user_code: String,
    verification_uri: String,
    interval: u64,
    expires_in: u64,
}

#[derive(Serialize, Deserialize)]
struct Poll {
    device_code: String,
}

struct Device;

impl Flow for Device {
    type App = App;

    fn authorize(app: &App, _req: AuthorizeRequest) -> Result<Authorization> {
        let code: Code = http::post(&app.device_url)
            .header("accept", "application/json")
            .form(&[("client_id", app.client_id.as_str())])
            .send()?
            .error_for_status()?
            .json()?;
        Authorization::device_code(DeviceCode {
            user_code: code.user_code,
            verification_uri: code.verification_uri,
            verification_uri_complete: None,
            interval_secs: code.interval,
            expires_in_secs: code.expires_in,
        })
        .with_pending(&Poll { device_code: code.device_code })
    }

    fn exchange(app: &App, pending: Pending, _input: Input) -> Result<Credential> {
        let poll: Poll = pending.decode()?;
        let token = oauth2::token_request(&app.token_url)
            .client(&app.client_id, Some(&app.client_secret), ClientAuth::RequestBody)
            .param("grant_type", "urn:ietf:params:oauth:grant-type:device_code")
            .param("device_code", &poll.device_code)
            .send()?
            .token()?;
        Ok(Credential::OAuth2(token))
    }
}

plugin_sdk::register!(Device {
    name: "Device test plugin",
    version: "1.0.0",
    hosts: ["{device_url}", "{token_url}"],
});
