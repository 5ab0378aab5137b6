//! Requests to addresses the configuration names for things other than HubSpot and Stripe:
//! `call_webhook` (the customer's provisioning endpoint), `notify_slack` and the dead-letter
//! alert. They carry customer data and signatures, so:
//!
//! - redirects are never followed (a 3xx is an answer, not a new destination: following it
//!   would send the signed body, and its signature header, wherever the answer says);
//! - with `[outbound] allow_hosts`, only the listed hosts are called;
//! - private addresses (loopback, RFC 1918, link-local and cloud metadata, CGNAT, unique
//!   local IPv6…) are refused unless their host is listed, both when the URL names an
//!   address and when a name resolves to one (checked on the addresses actually connected
//!   to, so a name cannot pass the check and then resolve elsewhere);
//! - environment proxies (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) are not used: through a
//!   proxy, the client would resolve and connect to the proxy only and the proxy would
//!   resolve the target, so a name resolving to 127.0.0.1 or 169.254.169.254 would pass the
//!   check above. These calls connect directly or not at all (HubSpot and Stripe, whose
//!   hosts the configuration fixes, still honour the proxy variables).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::OutboundSettings;

/// Which hosts may be called.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `host` (any port) or `host:port`, lowercase.
    allow: Vec<String>,
}

impl Policy {
    pub fn new(settings: &OutboundSettings) -> Self {
        Self {
            allow: settings
                .allow_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether `host` is listed (for any port when `port` is None).
    fn listed(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.allow.iter().any(|entry| {
            let (h, p) = split_host_port(entry);
            h == host && (p.is_none() || port.is_none() || p == port)
        })
    }

    /// Whether a request to `url` may be sent; the error says why not and how to allow it.
    pub fn check(&self, url: &str) -> Result<(), String> {
        let parsed = Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("scheme {} is not http(s)", parsed.scheme()));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| "the URL has no host".to_owned())?
            .to_ascii_lowercase();
        let port = parsed.port_or_known_default();
        let listed = self.listed(&host, port);
        let shown = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        if !self.allow.is_empty() && !listed {
            return Err(format!(
                "host {shown} is not in outbound.allow_hosts (add it there to allow it)"
            ));
        }
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>();
        if let Ok(ip) = literal
            && is_private(ip)
            && !listed
        {
            return Err(format!(
                "{shown} is a private address; add it to outbound.allow_hosts to allow it"
            ));
        }
        Ok(())
    }

    /// The HTTP client for these requests: no redirects, no proxy, the address check on
    /// every resolution, a bounded time.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // reqwest uses the environment's proxies unless told not to: "System proxies are
            // enabled by default. […] disabled by calling `ClientBuilder::no_proxy()`", which
            // "also disables the automatic usage of the 'system' proxy" (reqwest 0.12 docs,
            // https://docs.rs/reqwest/0.12/reqwest/#proxies and
            // https://docs.rs/reqwest/0.12/reqwest/struct.ClientBuilder.html#method.no_proxy).
            // Through a proxy, `Guard` would resolve only the proxy's name, never the
            // target's: fail closed by connecting directly.
            .no_proxy()
            .dns_resolver(Arc::new(Guard {
                policy: self.clone(),
            }))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("paybridge/", env!("CARGO_PKG_VERSION")))
            .build()?)
    }
}

fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        let (h, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (h, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

/// Addresses no outbound request goes to unless listed: not globally routable.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || (first == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}

/// The resolver of outbound requests: drops private addresses of names not listed.
struct Guard {
    policy: Policy,
}

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to private addresses; add it to outbound.allow_hosts to allow it")]
struct PrivateOnly(String);

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let listed = self.policy.listed(&host, None);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| listed || !is_private(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(PrivateOnly(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// A request error with its causes (reqwest's own text leaves them out), without the URL.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> Policy {
        Policy::new(&OutboundSettings {
            allow_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        })
    }

    #[test]
    fn private_addresses_need_to_be_listed() {
        let open = policy(&[]);
        assert!(open.check("https://hooks.slack.com/services/T/B/x").is_ok());
        for url in [
            "http://127.0.0.1:8089/_sandbox/inbox/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/x",
            "http://192.168.1.1/x",
            "http://172.16.0.1/x",
            "http://100.64.0.1/x",
            "http://[::1]:8080/x",
            "http://[fd00::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://0.0.0.0/x",
        ] {
            let e = open.check(url).expect_err(url);
            assert!(e.contains("outbound.allow_hosts"), "{url}: {e}");
        }
        let local = policy(&["127.0.0.1:8089"]);
        assert!(local.check("http://127.0.0.1:8089/x").is_ok());
        assert!(
            local.check("http://127.0.0.1:9090/x").is_err(),
            "another port"
        );
        assert!(
            policy(&["127.0.0.1"])
                .check("http://127.0.0.1:9090/x")
                .is_ok()
        );
        assert!(policy(&["[::1]"]).check("http://[::1]:1/x").is_ok());
    }

    #[test]
    fn an_allowlist_allows_only_its_hosts() {
        let p = policy(&["hooks.slack.com", "app.example.com:8443"]);
        assert!(p.check("https://hooks.slack.com/services/x").is_ok());
        assert!(p.check("https://app.example.com:8443/provision").is_ok());
        assert!(p.check("https://app.example.com/provision").is_err());
        let e = p.check("https://evil.example/x").expect_err("not listed");
        assert!(
            e.contains("evil.example is not in outbound.allow_hosts"),
            "{e}"
        );
        assert!(p.check("ftp://hooks.slack.com/x").is_err());
    }

    #[test]
    fn public_addresses_are_not_private() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_private(ip.parse().expect("ip")), "{ip}");
        }
    }
}
