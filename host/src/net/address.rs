//! Address classes: which hosts count as loopback, which addresses as public.

use std::net::IpAddr;

use url::Url;

/// Whether the URL's host is loopback, literally: `127.0.0.0/8`, `::1` or `localhost`.
///
/// `*.localhost` is not: the system resolver may send it to DNS, and what is trusted as
/// loopback gets plain http (a client secret in clear text).
pub(crate) fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
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
            // An IPv4 address inside an IPv6 one is judged as that IPv4 address: mapped
            // (`::ffff:0:0/96`), compatible (`::/96`), NAT64 (`64:ff9b::/96`) and 6to4
            // (`2002::/16`, the address in bits 16–48) all reach it.
            if let Some(v4) = embedded_ipv4(v6) {
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

/// The longest URL shown to the user or handed to the desktop's opener.
pub(crate) const MAX_URL_LEN: usize = 4096;

/// A URL a provider or plugin wants the user to open (an authorization URL, a device
/// verification URI), made safe to print and to hand to the desktop's opener: `https`, or
/// plain `http` to a literal loopback host when `allow_loopback_http`; never `javascript:`,
/// `file:`, `data:` or any other scheme. The URL is re-serialized, so control characters
/// come out percent-encoded.
pub(crate) fn openable_url(text: &str, allow_loopback_http: bool) -> Result<String, &'static str> {
    if text.len() > MAX_URL_LEN {
        return Err("is too long");
    }
    let url = Url::parse(text.trim()).map_err(|_| "is not a URL")?;
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if allow_loopback_http && is_loopback_url(&url) => {}
        "http" => return Err("is plain http (only https may be opened)"),
        _ => return Err("does not use https"),
    }
    let shown = url.to_string();
    if shown.chars().any(crate::util::text::is_unsafe_char) {
        return Err("contains control or formatting characters");
    }
    Ok(shown)
}

fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    let from = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        std::net::Ipv4Addr::new(a, b, c, d)
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    match s {
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(from(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(from(hi, lo)),
        [0x2002, hi, lo, ..] => Some(from(hi, lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "::7f00:1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "140.82.112.3",
            "2606:4700::1111",
            "64:ff9b::8c52:7003",
            "2002:8c52:7003::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    /// One address of each class that is not public, each refused by its own clause only,
    /// and the public addresses just outside the classes with ranges (so a clause that is
    /// dropped, or joined to another, is seen).
    #[test]
    fn every_class_that_is_not_public_is_refused_and_its_neighbours_are_not() {
        for ip in [
            "0.0.0.0",         // unspecified
            "0.1.2.3",         // "this network"
            "127.1.2.3",       // loopback
            "10.0.0.1",        // private
            "172.31.255.255",  // private
            "192.168.255.1",   // private
            "169.254.1.1",     // link-local
            "255.255.255.255", // broadcast
            "192.0.2.1",       // documentation
            "198.51.100.7",    // documentation
            "203.0.113.9",     // documentation
            "224.0.0.1",       // multicast
            "100.64.0.1",      // shared (carrier-grade NAT)
            "100.127.255.254", // shared
            "198.18.0.1",      // benchmarking
            "198.19.255.254",  // benchmarking
            "240.0.0.1",       // reserved
            "::",              // unspecified
            "::1",             // loopback
            "ff02::1",         // multicast
            "fc00::1",         // unique local
            "fdff::1",         // unique local
            "fe80::1",         // link-local
            "febf::1",         // link-local
            "2001:db8::1",     // documentation
            "::ffff:192.168.1.1",
            "64:ff9b::c0a8:101",
            "2002:c0a8:101::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} is not public");
        }
        for ip in [
            "1.1.1.1",
            "11.0.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.254",
            "2001:db9::1",
            "fec0::1",
            "fb00::1",
            "2a00:1450::1",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn only_https_urls_are_openable() {
        assert_eq!(
            openable_url("https://x.example/a?b=c", false).unwrap(),
            "https://x.example/a?b=c"
        );
        // Control characters end up percent-encoded, never raw.
        let shown = openable_url("https://x.example/\u{1b}[2J", false).unwrap();
        assert!(!shown.contains('\u{1b}'), "{shown}");
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "data:text/html,<script>",
            "http://x.example/",
            "vscode://open",
        ] {
            assert!(openable_url(bad, true).is_err(), "{bad}");
        }
        // Each refusal says why.
        assert_eq!(
            openable_url("http://x.example/", true),
            Err("is plain http (only https may be opened)")
        );
        assert_eq!(
            openable_url("javascript:alert(1)", true),
            Err("does not use https")
        );
        // The length limit is the longest URL that is shown, not one less.
        let at_limit = format!("https://x.example/{}", "a".repeat(MAX_URL_LEN - 18));
        assert_eq!(at_limit.len(), MAX_URL_LEN);
        assert!(openable_url(&at_limit, false).is_ok());
        assert_eq!(
            openable_url(&format!("{at_limit}a"), false),
            Err("is too long")
        );
        assert!(openable_url("http://127.0.0.1:9/cb", true).is_ok());
        assert!(openable_url("http://127.0.0.1:9/cb", false).is_err());
        assert!(openable_url(&format!("https://x.example/{}", "a".repeat(5000)), false).is_err());
    }

    #[test]
    fn loopback_urls() {
        for u in ["http://127.0.0.1:9/", "http://[::1]/", "http://localhost/"] {
            assert!(is_loopback_url(&Url::parse(u).unwrap()), "{u}");
        }
        for u in [
            "http://127.0.0.1.example.com/",
            "https://github.com/",
            "http://evil.localhost/",
        ] {
            assert!(!is_loopback_url(&Url::parse(u).unwrap()), "{u}");
        }
    }
}
