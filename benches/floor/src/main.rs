//! The floors of `host/benches/startup.rs`: a small program doing the least work a command
//! must do, so `host`'s figures can be read against it.
//!
//! - `host-bench-floor read RECORD`: read the JSON record, print its access token;
//! - `host-bench-floor refresh RECORD TOKEN_URL CLIENT_ID CLIENT_SECRET`: POST the record's
//!   refresh token to the token endpoint (plain http, one connection), put the new access
//!   token into the record, write it back (temporary file, fsync, rename, fsync of the folder),
//!   print it.

use std::io::Write;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("read") if args.len() == 3 => read(&args[2]),
        Some("refresh") if args.len() == 6 => refresh(&args[2], &args[3], &args[4], &args[5]),
        _ => {
            eprintln!(
                "usage: host-bench-floor read RECORD | refresh RECORD TOKEN_URL CLIENT_ID SECRET"
            );
            std::process::exit(2);
        }
    }
}

fn load(path: &str) -> serde_json::Value {
    let bytes = std::fs::read(path).expect("the record");
    serde_json::from_slice(&bytes).expect("JSON")
}

fn read(path: &str) {
    let record = load(path);
    println!(
        "{}",
        record["credential"]["access_token"]
            .as_str()
            .unwrap_or_default()
    );
}

fn refresh(path: &str, token_url: &str, client_id: &str, secret: &str) {
    let mut record = load(path);
    let refresh = record["credential"]["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body: serde_json::Value = rt.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let response = client
            .post(token_url)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=refresh_token&refresh_token={refresh}&client_id={client_id}&client_secret={secret}"
            ))
            .send()
            .await
            .expect("the token endpoint answers");
        serde_json::from_slice(&response.bytes().await.expect("a body")).expect("JSON")
    });
    record["credential"]["access_token"] = body["access_token"].clone();
    let path = Path::new(path);
    let temp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temp).expect("temporary file");
    file.write_all(&serde_json::to_vec(&record).expect("JSON"))
        .expect("write");
    file.sync_all().expect("fsync");
    std::fs::rename(&temp, path).expect("rename");
    std::fs::File::open(path.parent().expect("a folder"))
        .and_then(|d| d.sync_all())
        .expect("fsync of the folder");
    println!("{}", body["access_token"].as_str().unwrap_or_default());
}
