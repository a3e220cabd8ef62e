//! The egress policy: which hosts (grants, the platform's connector list) and which
//! addresses (public only, unless the operator allows a CIDR) outbound requests may
//! reach, and the limits every request runs under.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use tenantry_core::manifest::host_pattern_covers;
use tenantry_tls::rustls::pki_types::CertificateDer;

/// Operator-level egress settings.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    /// Non-public ranges the operator explicitly allows (e.g. an internal API).
    pub allow_cidrs: Vec<IpNet>,
    /// The platform's connector list (`[pilot] egress`): every request's host must
    /// also match one of these, whatever the install was granted. `None`: no cap.
    pub connectors: Option<Vec<String>>,
    /// Plain `http://` (no TLS). Off by default: credentials a plugin sends must not
    /// cross the network in the clear. For loopback test setups and internal APIs.
    pub allow_http: bool,
    /// CA certificates trusted besides the bundled web PKI roots (the operator's
    /// `tls_ca_file`).
    pub ca_certs: Vec<CertificateDer<'static>>,
    pub max_response_bytes: usize,
    /// Whole request, response body included (also capped by the invocation's
    /// remaining wall time).
    pub request_timeout: Duration,
    /// TCP connect plus TLS handshake, per address tried.
    pub connect_timeout: Duration,
    /// Redirects the 0.1.0 `http.fetch` follows (each one checked again). wasi:http
    /// never follows one: a guest client that does sends a new, checked request.
    pub max_redirects: u8,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            allow_cidrs: Vec::new(),
            connectors: None,
            allow_http: false,
            ca_certs: Vec::new(),
            max_response_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_redirects: 3,
        }
    }
}

/// A named address range in the tables below.
pub struct NamedRange {
    pub name: &'static str,
    pub net: IpNet,
}

const fn v4(name: &'static str, a: u8, b: u8, c: u8, d: u8, len: u8) -> NamedRange {
    NamedRange {
        name,
        net: IpNet::new_assert(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), len),
    }
}

const fn v6(name: &'static str, segments: [u16; 8], len: u8) -> NamedRange {
    let [a, b, c, d, e, f, g, h] = segments;
    NamedRange {
        name,
        net: IpNet::new_assert(IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)), len),
    }
}

/// IPv4 blocks refused by default: every entry of the IANA IPv4 Special-Purpose
/// Address Registry (<https://www.iana.org/assignments/iana-ipv4-special-registry/>)
/// that is not globally reachable, multicast (RFC 5771) and the reserved 240/4. The
/// anycast infrastructure blocks AS112, AMT and the deprecated 6to4 relay are
/// globally reachable but no plugin has business calling them, so they are refused
/// too; so are the PCP/TURN anycast /32s inside 192.0.0.0/24.
pub const REFUSED_V4: &[NamedRange] = &[
    v4("this network (RFC 791)", 0, 0, 0, 0, 8),
    v4("private-use 10/8 (RFC 1918)", 10, 0, 0, 0, 8),
    v4("shared address space / CGNAT (RFC 6598)", 100, 64, 0, 0, 10),
    v4("loopback (RFC 1122)", 127, 0, 0, 0, 8),
    v4(
        "link-local, incl. cloud metadata (RFC 3927)",
        169,
        254,
        0,
        0,
        16,
    ),
    v4("private-use 172.16/12 (RFC 1918)", 172, 16, 0, 0, 12),
    v4("IETF protocol assignments (RFC 6890)", 192, 0, 0, 0, 24),
    v4("documentation TEST-NET-1 (RFC 5737)", 192, 0, 2, 0, 24),
    v4("AS112-v4 (RFC 7535)", 192, 31, 196, 0, 24),
    v4("AMT (RFC 7450)", 192, 52, 193, 0, 24),
    v4(
        "deprecated 6to4 relay anycast (RFC 7526)",
        192,
        88,
        99,
        0,
        24,
    ),
    v4("private-use 192.168/16 (RFC 1918)", 192, 168, 0, 0, 16),
    v4("direct delegation AS112 (RFC 7534)", 192, 175, 48, 0, 24),
    v4("benchmarking (RFC 2544)", 198, 18, 0, 0, 15),
    v4("documentation TEST-NET-2 (RFC 5737)", 198, 51, 100, 0, 24),
    v4("documentation TEST-NET-3 (RFC 5737)", 203, 0, 113, 0, 24),
    v4("multicast (RFC 5771)", 224, 0, 0, 0, 4),
    v4("reserved (RFC 1112)", 240, 0, 0, 0, 4),
    v4("limited broadcast (RFC 919)", 255, 255, 255, 255, 32),
];

/// The only IPv6 space allowed by default: global unicast (RFC 4291, IANA IPv6
/// Address Space <https://www.iana.org/assignments/ipv6-address-space/>). Everything
/// outside it is refused: `::`, `::1`, IPv4-compatible `::/96`, NAT64
/// `64:ff9b::/96` and `64:ff9b:1::/48`, discard `100::/64`, unique-local
/// `fc00::/7`, site-local `fec0::/10`, link-local `fe80::/10`, multicast `ff00::/8`.
/// (IPv4-mapped `::ffff:0:0/96` is judged as its IPv4 address before this.)
pub const GLOBAL_UNICAST_V6: NamedRange = v6("global unicast", [0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// Blocks inside 2000::/3 refused by default, from the IANA IPv6 Special-Purpose
/// Address Registry (<https://www.iana.org/assignments/iana-ipv6-special-registry/>).
/// All of 2001::/23 is refused, including its few globally reachable anycast
/// assignments, and so are the tunnelling prefixes that embed an IPv4 address the
/// policy could not judge (Teredo, 6to4).
pub const REFUSED_V6: &[NamedRange] = &[
    v6(
        "IETF protocol assignments, incl. Teredo 2001::/32 and benchmarking (RFC 2928)",
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
    ),
    v6(
        "documentation 2001:db8::/32 (RFC 3849)",
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
    ),
    v6("6to4 (RFC 3056)", [0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
    v6(
        "documentation 3fff::/20 (RFC 9637)",
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
    ),
    v6(
        "segment routing SIDs (RFC 9602)",
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
    ),
];

/// The named range that makes an address non-public, or `None` if it is public.
/// This is an allow-list: IPv6 outside global unicast is refused whatever it is.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let ip = IpAddr::V4(v4);
            REFUSED_V4
                .iter()
                .find(|r| r.net.contains(&ip))
                .map(|r| r.name)
        }
        ip @ IpAddr::V6(_) => {
            if !GLOBAL_UNICAST_V6.net.contains(&ip) {
                return Some("IPv6 outside global unicast 2000::/3");
            }
            REFUSED_V6
                .iter()
                .find(|r| r.net.contains(&ip))
                .map(|r| r.name)
        }
    }
}

/// Whether an address is publicly routable (and so allowed by default).
pub fn is_public(ip: IpAddr) -> bool {
    refused_range(ip).is_none()
}

impl EgressPolicy {
    /// Whether outbound connections to `ip` are allowed: public, or inside one of
    /// the operator's `allow_cidrs`. An IPv4-mapped IPv6 address is judged (and
    /// matched against the CIDRs) as its IPv4 address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        is_public(ip) || self.allow_cidrs.iter().any(|n| n.contains(&ip))
    }

    /// Whether `host` (lower-case, no brackets) is covered by `granted` and, if the
    /// platform has a connector list, by it too.
    pub fn host_allowed(&self, granted: &[String], host: &str) -> bool {
        granted.iter().any(|p| host_pattern_covers(p, host))
            && self
                .connectors
                .as_deref()
                .is_none_or(|c| c.iter().any(|p| host_pattern_covers(p, host)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One example address per refused range, written out independently of the
    /// tables; every table entry must be hit by at least one example.
    const REFUSED_EXAMPLES: &[(&str, &str)] = &[
        ("this network 0/8", "0.1.2.3"),
        ("unspecified", "0.0.0.0"),
        ("private 10/8", "10.1.2.3"),
        ("CGNAT 100.64/10 (low end)", "100.64.0.1"),
        ("CGNAT 100.64/10 (high end)", "100.127.255.254"),
        ("loopback 127/8", "127.0.0.1"),
        ("loopback 127/8 (not .1)", "127.255.0.9"),
        ("link-local 169.254/16", "169.254.1.1"),
        ("cloud metadata", "169.254.169.254"),
        ("private 172.16/12 (low end)", "172.16.0.1"),
        ("private 172.16/12 (high end)", "172.31.255.254"),
        ("IETF protocol assignments 192.0.0/24", "192.0.0.8"),
        ("PCP anycast 192.0.0.9", "192.0.0.9"),
        ("TEST-NET-1 192.0.2/24", "192.0.2.10"),
        ("AS112 192.31.196/24", "192.31.196.1"),
        ("AMT 192.52.193/24", "192.52.193.1"),
        ("6to4 relay anycast 192.88.99/24", "192.88.99.1"),
        ("private 192.168/16", "192.168.1.1"),
        ("direct delegation AS112 192.175.48/24", "192.175.48.1"),
        ("benchmarking 198.18/15 (low)", "198.18.0.1"),
        ("benchmarking 198.18/15 (high)", "198.19.255.254"),
        ("TEST-NET-2 198.51.100/24", "198.51.100.7"),
        ("TEST-NET-3 203.0.113/24", "203.0.113.7"),
        ("multicast 224/4", "224.0.0.1"),
        ("multicast 224/4 (high end)", "239.255.255.250"),
        ("reserved 240/4", "240.0.0.1"),
        ("limited broadcast", "255.255.255.255"),
        ("IPv6 unspecified ::", "::"),
        ("IPv6 loopback ::1", "::1"),
        ("IPv4-compatible ::/96 (loopback)", "::7f00:1"),
        ("IPv4-compatible ::/96 (public v4 inside)", "::808:808"),
        ("IPv4-mapped loopback", "::ffff:127.0.0.1"),
        ("IPv4-mapped metadata", "::ffff:169.254.169.254"),
        ("IPv4-mapped private", "::ffff:10.0.0.1"),
        ("NAT64 64:ff9b::/96", "64:ff9b::a00:1"),
        ("local-use NAT64 64:ff9b:1::/48", "64:ff9b:1::1"),
        ("discard 100::/64", "100::1"),
        ("Teredo 2001::/32", "2001:0:4136:e378:8000:63bf:3fff:fdd2"),
        ("benchmarking 2001:2::/48", "2001:2::1"),
        ("ORCHIDv2 2001:20::/28", "2001:20::1"),
        ("top of 2001::/23", "2001:1ff:ffff::1"),
        ("documentation 2001:db8::/32", "2001:db8::1"),
        ("6to4 2002::/16 (embedding 192.168.0.1)", "2002:c0a8:1::1"),
        ("documentation 3fff::/20", "3fff::1"),
        ("SRv6 SIDs 5f00::/16", "5f00::1"),
        ("unique local fc00::/7", "fc00::1"),
        ("unique local fd00::/8", "fd00::1"),
        ("site-local fec0::/10 (deprecated)", "fec0::1"),
        ("link-local fe80::/10", "fe80::1"),
        ("multicast ff00::/8", "ff02::1"),
        ("reserved 4000::/2 (not yet allocated)", "4000::1"),
    ];

    const PUBLIC_EXAMPLES: &[&str] = &[
        "1.1.1.1",
        "8.8.8.8",
        "93.184.216.34",
        "100.63.255.255",
        "100.128.0.1",
        "172.32.0.1",
        "192.0.1.1",
        "198.20.0.1",
        "223.255.255.254",
        "::ffff:8.8.8.8",
        "2606:4700::1111",
        "2606:4700:4700::1111",
        "2a00:1450::1",
        "2001:200::1",
        "2003::1",
    ];

    #[test]
    fn every_special_purpose_range_is_refused_and_public_addresses_are_allowed() {
        for (name, ip) in REFUSED_EXAMPLES {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_public(ip), "{name}: {ip} must be refused");
            assert!(!EgressPolicy::default().allows(ip), "{name}: {ip}");
        }
        for ip in PUBLIC_EXAMPLES {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(refused_range(ip), None, "{ip} must stay allowed");
        }
    }

    #[test]
    fn every_table_entry_has_a_refused_example() {
        for r in REFUSED_V4.iter().chain(REFUSED_V6) {
            assert!(
                REFUSED_EXAMPLES.iter().any(|(_, ip)| r
                    .net
                    .contains(&ip.parse::<IpAddr>().unwrap().to_canonical())),
                "no example for {}",
                r.name
            );
        }
    }

    #[test]
    fn the_operator_allow_list_overrides_including_for_mapped_addresses() {
        let policy = EgressPolicy {
            allow_cidrs: vec!["10.0.0.0/8".parse().unwrap(), "fec0::/10".parse().unwrap()],
            ..Default::default()
        };
        assert!(policy.allows("10.1.2.3".parse().unwrap()));
        assert!(policy.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(policy.allows("fec0::1".parse().unwrap()));
        assert!(!policy.allows("127.0.0.1".parse().unwrap()));
        assert!(!policy.allows("::7f00:1".parse().unwrap()));
        assert!(policy.allows("8.8.8.8".parse().unwrap()));
    }
}
