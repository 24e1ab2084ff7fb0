//! Call a provider's API with the stored credential: refreshed when due, and once more after a
//! 401. `cargo run --example api -- /user` after `host run --provider github`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "/user".into());
    let session = host::App::load_default()?
        .session("github", "default")
        .await?;
    let url = session.url(&path, false)?;
    let response = session
        .send(http::Request::get(url.as_str()).body(Vec::new())?)
        .await?;
    println!("{}", response.text().await?);
    Ok(())
}
