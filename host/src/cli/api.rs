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
    /// Write the answer's bytes to a terminal as they are. Without it, what a terminal would
    /// act on (escape sequences, control, bidirectional and invisible characters) is shown
    /// escaped when standard output is a terminal; a pipe or a file always gets the bytes.
    #[arg(long)]
    raw: bool,
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
    // The caller's headers, checked once; they replace the defaults of their names.
    let mut headers = Vec::with_capacity(args.headers.len());
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("`{h}`: expected NAME: VALUE"))?;
        let name = http::HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("`{h}`: not a header name"))?;
        let value = http::HeaderValue::from_str(value.trim())
            .with_context(|| format!("`{h}`: not a header value"))?;
        headers.push((name, value));
    }
    let given = |name: &http::HeaderName| headers.iter().any(|(n, _)| n == name);
    let mut defaults = vec![(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json"),
    )];
    if json_body {
        defaults.push((
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        ));
    }
    defaults.retain(|(name, _)| !given(name));
    // Each page's items as compact JSON, not as parsed values (which take many times the
    // memory of their text).
    let mut pages: Vec<Box<serde_json::value::RawValue>> = Vec::new();
    // With --paginate: the pages stay on the first page's origin, none is fetched twice, and
    // together they are bounded.
    let origin = url.origin();
    let mut visited = std::collections::HashSet::new();
    let mut paginated = 0usize;
    loop {
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(url.as_str());
        for (name, value) in defaults.iter().chain(&headers) {
            request = request.header(name, value);
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
            eprintln!("{}", crate::util::text::terminal_text(&text, ERROR_SHOWN));
            bail!("the API answered HTTP {status}");
        }
        if args.paginate {
            // Every page counts, an empty one too (its address is kept to be never fetched
            // again): an API answering 204 with a next link forever is stopped.
            if visited.len() == MAX_PAGES {
                bail!("with --paginate, more than {MAX_PAGES} pages; fetch them in parts instead");
            }
            paginated = paginated.saturating_add(url.as_str().len());
            visited.insert(url.clone());
            let left = PAGINATE_LIMIT.saturating_sub(paginated);
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
            // An empty page (a 204) has no items.
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                let page: serde_json::Value = serde_json::from_slice(&bytes)
                    .context("with --paginate, every page must be JSON")?;
                drop(bytes);
                let compact = |v: &serde_json::Value| {
                    serde_json::value::to_raw_value(v).context("cannot encode a page")
                };
                match page {
                    serde_json::Value::Array(items) => {
                        for item in &items {
                            pages.push(compact(item)?);
                        }
                    }
                    other => pages.push(compact(&other)?),
                }
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
        // The body goes out as it comes (a reader that stops early, `| head`, ends it
        // quietly); to a terminal, escaped unless --raw: the API's bytes are someone else's.
        let mut stdout = std::io::stdout().lock();
        let mut escaper = (!args.raw && std::io::IsTerminal::is_terminal(&stdout))
            .then(super::terminal::Escaper::default);
        let mut escaped = Vec::new();
        let mut write = |bytes: &[u8]| -> anyhow::Result<bool> {
            match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
                Err(e) => Err(e).context("cannot write to stdout"),
            }
        };
        while let Some(chunk) = response.chunk().await.context("the answer broke off")? {
            let shown = match &mut escaper {
                Some(escaper) => {
                    escaped.clear();
                    escaper.push(&chunk, &mut escaped);
                    &escaped[..]
                }
                None => &chunk[..],
            };
            if !write(shown)? {
                return Ok(());
            }
        }
        if let Some(escaper) = &mut escaper {
            escaped.clear();
            escaper.finish(&mut escaped);
            write(&escaped)?;
        }
        return Ok(());
    }
    super::write_json(&pages, false)?;
    Ok(())
}

/// The most of an error answer's body read and shown.
const ERROR_SHOWN: usize = 64 * 1024;

/// The most `--paginate` reads, all pages together (and their addresses): they are joined
/// in memory.
const PAGINATE_LIMIT: usize = 256 << 20;

/// The most pages `--paginate` fetches.
const MAX_PAGES: usize = 10_000;

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

/// The `rel="next"` target of the `Link` headers (RFC 8288): `<URI>; param=value; …`, links
/// separated by commas outside `<…>` and quoted strings, parameter names in any case, `rel` a
/// space-separated list of relation types.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(links)
        .find(|(_, rels)| rels.iter().any(|r| r.eq_ignore_ascii_case("next")))
        .map(|(target, _)| target)
}

/// The links of one `Link` header value: (target, relation types).
fn links(value: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        let Some(after) = rest.strip_prefix('<') else {
            return out;
        };
        let Some(end) = after.find('>') else {
            return out;
        };
        let target = after[..end].to_owned();
        rest = &after[end + 1..];
        let mut rels = Vec::new();
        let mut seen_rel = false;
        // Parameters up to the next comma outside a quoted string.
        loop {
            rest = rest.trim_start();
            let Some(param) = rest.strip_prefix(';') else {
                break;
            };
            let param = param.trim_start();
            let name_end = param
                .find(|c: char| c == '=' || c == ';' || c == ',' || c.is_ascii_whitespace())
                .unwrap_or(param.len());
            let name = &param[..name_end];
            rest = param[name_end..].trim_start();
            let mut value = String::new();
            if let Some(v) = rest.strip_prefix('=') {
                let v = v.trim_start();
                if let Some(quoted) = v.strip_prefix('"') {
                    let mut chars = quoted.char_indices();
                    let mut consumed = quoted.len();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some((_, escaped)) = chars.next() {
                                    value.push(escaped);
                                }
                            }
                            '"' => {
                                consumed = i + 1;
                                break;
                            }
                            c => value.push(c),
                        }
                    }
                    rest = &quoted[consumed..];
                } else {
                    let end = v.find([';', ',']).unwrap_or(v.len());
                    value = v[..end].trim().to_owned();
                    rest = &v[end..];
                }
            }
            // Only the first `rel` counts (RFC 8288 §3.3).
            if name.eq_ignore_ascii_case("rel") && !seen_rel {
                seen_rel = true;
                rels.extend(value.split_ascii_whitespace().map(str::to_owned));
            }
        }
        out.push((target, rels));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(values: &[&str]) -> Option<String> {
        let mut headers = reqwest::header::HeaderMap::new();
        for v in values {
            headers.append(reqwest::header::LINK, v.parse().unwrap());
        }
        next_link(&headers)
    }

    #[test]
    fn next_links_are_read_as_rfc_8288_writes_them() {
        assert_eq!(
            next(&[
                r#"<https://api.example/p?page=2>; rel="next", <https://api.example/p?page=9>; rel="last""#
            ]),
            Some("https://api.example/p?page=2".into())
        );
        // A comma inside the URI, and the next link second.
        assert_eq!(
            next(&[
                r#"</c?fields=id,name&page=1>; rel="prev", </c?fields=id,name&page=3>; rel="next""#
            ]),
            Some("/c?fields=id,name&page=3".into())
        );
        // Several relation types, a parameter name in capitals, a bare token, a comma and a
        // semicolon inside a quoted parameter.
        assert_eq!(next(&[r#"</p2>; rel="next last""#]), Some("/p2".into()));
        assert_eq!(next(&[r#"</p2>; REL="next""#]), Some("/p2".into()));
        assert_eq!(next(&["</p2>;rel=next"]), Some("/p2".into()));
        assert_eq!(
            next(&[r#"</a>; title="x, y; rel=next"; rel="prev", </b>; rel="next""#]),
            Some("/b".into())
        );
        // Two Link headers.
        assert_eq!(
            next(&[r#"</a>; rel="prev""#, r#"</b>; rel="next""#]),
            Some("/b".into())
        );
        // A second `rel` is ignored.
        assert_eq!(next(&[r#"</p2>; rel="prev"; rel="next""#]), None);
        // No next, or no link at all.
        assert_eq!(next(&[r#"</a>; rel="nextish""#]), None);
        assert_eq!(next(&["garbage"]), None);
        assert_eq!(next(&[]), None);
    }
}
