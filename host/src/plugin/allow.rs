//! Which hosts a plugin may reach: Spin-style patterns, and address checks after resolution.

use std::fmt;
use std::net::IpAddr;

use url::Url;

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
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        if text.contains("://") || text.contains('/') {
            return Err(format!("`{text}`: give a host, not a URL"));
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("`{text}`: bad port"))?;
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
            return Err(format!("`{text}`: not a host pattern"));
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
pub struct AllowList {
    declared: Vec<HostPattern>,
    granted: Option<Vec<HostPattern>>,
    allow_http_loopback: bool,
}

impl AllowList {
    /// The plugin's declared patterns; `granted` (from the configuration) narrows them.
    pub fn new(
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
    pub fn check(&self, url: &Url) -> Result<(), String> {
        let host = url.host_str().ok_or("the URL has no host")?;
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let loopback = crate::http::is_loopback(url);
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

    /// Whether an address is public (see [`is_public`]).
    pub fn is_public_address(ip: IpAddr) -> bool {
        is_public(ip)
    }

    /// Whether loopback addresses may be connected to (a name resolving to loopback is
    /// otherwise refused).
    pub fn allows_loopback(&self) -> bool {
        self.allow_http_loopback
    }
}

/// Whether an address is public: not loopback, private, link-local, shared, documentation,
/// multicast or unspecified. Names that resolve to anything else are refused (DNS rebinding).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || s[0] == 0x2001 && s[1] == 0x0db8)
        }
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

    #[test]
    fn public_addresses() {
        for ip in [
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "100.64.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["140.82.112.3", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
