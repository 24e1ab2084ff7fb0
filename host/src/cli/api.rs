//! `host api`: call a provider's API with the stored credential, like `gh api`.

use std::io::{Read, Write};

use anyhow::{Context as _, bail};
use clap::Args;

use super::{Context, Target};

#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    #[command(flatten)]
    target: Target,
    /// A path (resolved against the provider's API base URL) or a full URL on the API's origin.
    #[arg(value_name = "PATH|URL")]
    endpoint: String,
    /// The HTTP method.
    #[arg(short = 'X', long = "method", default_value = "GET")]
    method: String,
    /// A request header (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// A field (repeatable): a query parameter for GET, a JSON body member otherwise.
    #[arg(short = 'f', long = "field", value_name = "KEY=VALUE")]
    fields: Vec<String>,
    /// The request body, from a file or `-` for standard input.
    #[arg(long, value_name = "FILE", conflicts_with = "fields")]
    input: Option<String>,
    /// Follow `Link: rel="next"` and join the pages' JSON arrays.
    #[arg(long)]
    paginate: bool,
    /// Print the status line and the response headers first.
    #[arg(short = 'i', long = "include")]
    include: bool,
    /// Allow a full URL on another origin than the API's (the credential goes there).
    #[arg(long)]
    allow_origin: bool,
}

pub(crate) async fn run(ctx: &Context, mut args: ApiArgs) -> anyhow::Result<()> {
    args.target.provider(ctx).await?;
    let session = ctx
        .app
        .session(args.target.name(), &args.target.account)
        .await?;
    let method = http::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .with_context(|| format!("`{}` is not an HTTP method", args.method))?;
    let mut url = session.url(&args.endpoint, args.allow_origin)?;
    let mut body = Vec::new();
    let mut json_body = false;
    let pairs = args
        .fields
        .iter()
        .map(|f| {
            f.split_once('=')
                .with_context(|| format!("`{f}`: expected KEY=VALUE"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if pairs.is_empty() {
        // Nothing to add: the URL stays as given (no empty `?`).
    } else if matches!(method, http::Method::GET | http::Method::HEAD) {
        url.query_pairs_mut().extend_pairs(&pairs);
    } else {
        let object: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect();
        body = serde_json::to_vec(&object)?;
        json_body = true;
    }
    if let Some(input) = &args.input {
        body = if input == "-" {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            buf
        } else {
            std::fs::read(input).with_context(|| format!("cannot read {input}"))?
        };
    }
    let mut pages: Vec<serde_json::Value> = Vec::new();
    // With --paginate: the pages stay on the first page's origin, none is fetched twice, and
    // together they are bounded.
    let origin = url.origin();
    let mut visited = std::collections::HashSet::new();
    let mut paginated = 0usize;
    loop {
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(url.as_str())
            .header(http::header::ACCEPT, "application/json");
        if json_body {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        for h in &args.headers {
            let (name, value) = h
                .split_once(':')
                .with_context(|| format!("`{h}`: expected NAME: VALUE"))?;
            request = request.header(name.trim(), value.trim());
        }
        let request = request
            .body(body.clone())
            .context("cannot build the request")?;
        let mut response = session.send(request).await?;
        let status = response.status();
        if args.include {
            let mut head = format!("{:?} {status}\n", response.version());
            for (k, v) in response.headers() {
                head.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("[binary]")));
            }
            outln!("{head}");
        }
        let next = next_link(response.headers());
        if !status.is_success() {
            // Only what is shown is read: an endless error body cannot fill the memory.
            let (bytes, _) = read_at_most(&mut response, ERROR_SHOWN)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            eprintln!("{}", host::terminal_text(&text, ERROR_SHOWN));
            bail!("the API answered HTTP {status}");
        }
        if args.paginate {
            visited.insert(url.clone());
            let left = PAGINATE_LIMIT - paginated;
            let (bytes, complete) = read_at_most(&mut response, left)
                .await
                .context("the answer broke off")?;
            if !complete {
                bail!(
                    "with --paginate, the pages add up to more than {} MiB; fetch them one at a time instead",
                    PAGINATE_LIMIT >> 20
                );
            }
            paginated += bytes.len();
            let page: serde_json::Value = serde_json::from_slice(&bytes)
                .context("with --paginate, every page must be JSON")?;
            match page {
                serde_json::Value::Array(items) => pages.extend(items),
                other => pages.push(other),
            }
            match next {
                Some(n) if matches!(method, http::Method::GET) => {
                    // A relative link is resolved against the page that gave it. Links are
                    // not quoted in errors: with a query binding the API may repeat the
                    // credential in them.
                    let next = url.join(&n).context("the next-page link is not a URL")?;
                    if next.origin() != origin {
                        bail!(
                            "the next page is on another origin ({}); with --paginate the credential stays on {}",
                            next.origin().ascii_serialization(),
                            origin.ascii_serialization()
                        );
                    }
                    if visited.contains(&next) {
                        bail!("the next-page link leads back to a page already fetched");
                    }
                    url = session.url(next.as_str(), args.allow_origin)?;
                    continue;
                }
                _ => break,
            }
        }
        // The body goes out as it comes.
        let mut stdout = std::io::stdout().lock();
        while let Some(chunk) = response.chunk().await.context("the answer broke off")? {
            stdout.write_all(&chunk)?;
        }
        stdout.flush()?;
        return Ok(());
    }
    super::write_json(&serde_json::Value::Array(pages), false)?;
    Ok(())
}

/// The most of an error answer's body read and shown.
const ERROR_SHOWN: usize = 64 * 1024;

/// The most `--paginate` reads, all pages together: they are joined in memory.
const PAGINATE_LIMIT: usize = 256 << 20;

/// Up to `limit` bytes of the body, and whether that was all of it.
async fn read_at_most(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"))
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}
