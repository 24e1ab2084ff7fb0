//! The plugin sandbox policy: which hosts a plugin may reach (Spin-style patterns, declared by
//! the plugin and narrowed by the configuration), checked before every request; addresses are
//! checked again after resolution by the HTTP client.

use std::fmt;
use std::net::IpAddr;

use url::Url;

use crate::net::address::{is_loopback_url, is_public};
use crate::util::text::sanitize;

/// A host pattern that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{pattern}`: {problem}")]
pub struct HostPatternError {
    /// The pattern (sanitized and capped).
    pub pattern: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// One allowed-host pattern: `api.example.com`, `*.example.com` (subdomains only, not
/// `example.com` itself), `127.0.0.1`, `[::1]`, each optionally with `:port` (no port: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses a pattern.
    pub fn parse(text: &str) -> Result<Self, HostPatternError> {
        let text = text.trim().to_ascii_lowercase();
        let error = |problem| HostPatternError {
            pattern: sanitize(&text, 100),
            problem,
        };
        if text.contains("://") || text.contains('/') {
            return Err(error("give a host, not a URL"));
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => {
                let port = p.parse::<u16>().map_err(|_| error("bad port"))?;
                (h.to_owned(), Some(port))
            }
            _ => (text.clone(), None),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(rest) => (rest.to_owned(), true),
            None => (host, false),
        };
        if host.is_empty() || host.contains('*') {
            return Err(error("not a host pattern"));
        }
        // What a URL's host can be: a name (an internationalized one in its `xn--` form), an
        // IPv4 address, or an IPv6 one in brackets. Anything else would only be shown.
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
        {
            return Err(error(
                "a host has only letters, digits, `-`, `_` and `.` (an internationalized name in its xn-- form)",
            ));
        }
        Ok(Self {
            host,
            wildcard,
            port,
        })
    }

    /// Whether the pattern admits `host` and `port`.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if self.wildcard {
            host.len() > self.host.len() + 1
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// The hosts one plugin may reach: what it declares, narrowed by what the configuration
/// grants.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowList {
    declared: Vec<HostPattern>,
    granted: Option<Vec<HostPattern>>,
    allow_http_loopback: bool,
}

impl AllowList {
    /// The plugin's declared patterns; `granted` (from the configuration) narrows them.
    pub(crate) fn new(
        declared: Vec<HostPattern>,
        granted: Option<Vec<HostPattern>>,
        allow_http_loopback: bool,
    ) -> Self {
        Self {
            declared,
            granted,
            allow_http_loopback,
        }
    }

    /// Checks a URL before any connection: scheme, host, port. Returns why it is refused.
    pub(crate) fn check(&self, url: &Url) -> Result<(), String> {
        let host = url.host_str().ok_or("the URL has no host")?;
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let loopback = is_loopback_url(url);
        if loopback && !self.allow_http_loopback {
            return Err(format!(
                "{host} is a loopback host, not allowed (set `plugins.allow_http_loopback = true` for local testing)"
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(format!("plain http to {host} is not allowed: use https")),
            other => return Err(format!("scheme `{other}` is not allowed")),
        }
        if !self.declared.iter().any(|p| p.matches(host, port)) {
            return Err(format!(
                "{host}:{port} is not among the hosts the plugin declares"
            ));
        }
        if let Some(granted) = &self.granted
            && !granted.iter().any(|p| p.matches(host, port))
        {
            return Err(format!(
                "{host}:{port} is not among the hosts the configuration allows this plugin"
            ));
        }
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            && !loopback
            && !is_public(ip)
        {
            return Err(format!("{ip} is a private or reserved address"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn patterns() {
        assert!(p("api.example.com").matches("api.example.com", 443));
        assert!(p("api.example.com").matches("API.example.com", 8443));
        assert!(!p("api.example.com:443").matches("api.example.com", 8443));
        assert!(p("*.example.com").matches("a.b.example.com", 443));
        assert!(!p("*.example.com").matches("example.com", 443));
        assert!(!p("*.example.com").matches("badexample.com", 443));
        assert!(p("127.0.0.1").matches("127.0.0.1", 8080));
        assert!(p("[::1]:80").matches("[::1]", 80));
        assert!(HostPattern::parse("https://x.com").is_err());
        assert!(HostPattern::parse("*").is_err());
        assert!(p("xn--bcher-kva.example").matches("xn--bcher-kva.example", 443));
        for bad in [
            "\u{1b}]0;pwned\u{7}api.example.com",
            "api.example.com\u{202e}",
            "bücher.example",
            "api example.com",
            "api.\nexample.com",
        ] {
            let e = HostPattern::parse(bad).expect_err(bad);
            assert!(
                e.to_string()
                    .chars()
                    .all(|c| !c.is_control() && c != '\u{202e}'),
                "{e}"
            );
        }
    }

    #[test]
    fn allow_list() {
        let list = AllowList::new(vec![p("api.example.com"), p("127.0.0.1")], None, false);
        assert!(
            list.check(&Url::parse("https://api.example.com/x").unwrap())
                .is_ok()
        );
        assert!(
            list.check(&Url::parse("http://api.example.com/x").unwrap())
                .is_err()
        );
        assert!(
            list.check(&Url::parse("https://evil.example.com/x").unwrap())
                .is_err()
        );
        assert!(
            list.check(&Url::parse("http://127.0.0.1:9/x").unwrap())
                .is_err()
        );
        let list = AllowList::new(vec![p("127.0.0.1"), p("10.0.0.1")], None, true);
        assert!(
            list.check(&Url::parse("http://127.0.0.1:9/x").unwrap())
                .is_ok()
        );
        assert!(
            list.check(&Url::parse("https://10.0.0.1/x").unwrap())
                .is_err()
        );
        let narrowed = AllowList::new(
            vec![p("*.example.com")],
            Some(vec![p("api.example.com")]),
            false,
        );
        assert!(
            narrowed
                .check(&Url::parse("https://api.example.com/").unwrap())
                .is_ok()
        );
        assert!(
            narrowed
                .check(&Url::parse("https://www.example.com/").unwrap())
                .is_err()
        );
    }
}
