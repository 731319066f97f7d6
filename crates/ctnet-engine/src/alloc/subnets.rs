//! Which subnet a new network gets: Docker's default IPv4 pools, and for IPv6 a unique
//! local /64 with a random global ID (RFC 4193), each checked against every network and
//! every route the host already has.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::error::{Error, ErrorKind, Result};
use crate::model::{Family, Subnet};

/// Something that already uses address space: another network or a host route.
#[derive(Debug, Clone)]
pub struct TakenRange {
    /// The range.
    pub net: IpNet,
    /// Who holds it, in words: `network "blue"` or `route 10.0.0.0/8 dev eth0 on this host`.
    pub holder: String,
}

/// Docker's default address pools: 172.17.0.0/16 … 172.31.0.0/16, then the /20 blocks
/// of 192.168.0.0/16.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let wide = (17u8..=31)
        .map(|b| Ipv4Net::new(std::net::Ipv4Addr::new(172, b, 0, 0), 16).expect("valid /16"));
    let narrow = (0u8..16).map(|i| {
        Ipv4Net::new(std::net::Ipv4Addr::new(192, 168, i * 16, 0), 20).expect("valid /20")
    });
    wide.chain(narrow)
}

/// The first default pool that overlaps nothing taken.
pub fn choose_subnet(taken: &[TakenRange]) -> Result<Subnet> {
    default_pools()
        .map(|net| Subnet::new(IpNet::V4(net)).expect("pools are large enough"))
        .find(|candidate| taken.iter().all(|t| !candidate.overlaps(&t.net)))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Exhausted,
                "default address pools",
                "every pool (172.17-31.0.0/16, 192.168.0.0/16 in /20 blocks) overlaps a network or a host route",
                "give the network an explicit --subnet, or remove unused networks",
            )
        })
}

/// How many random global IDs are tried before giving up.
const ULA_TRIES: usize = 16;

/// A unique local IPv6 /64 (RFC 4193: fd00::/8, a random 40-bit global ID, subnet 0)
/// that overlaps nothing taken. `random_id` gives the 40 bits; a clash (another network,
/// a host route) draws again.
pub fn choose_ula(taken: &[TakenRange], mut random_id: impl FnMut() -> [u8; 5]) -> Result<Subnet> {
    for _ in 0..ULA_TRIES {
        let id = random_id();
        let mut octets = [0u8; 16];
        octets[0] = 0xfd;
        octets[1..6].copy_from_slice(&id);
        let net = Ipv6Net::new(Ipv6Addr::from(octets), 64).expect("valid /64");
        let candidate = Subnet::new(IpNet::V6(net)).expect("a /64 is allowed");
        if taken.iter().all(|t| !candidate.overlaps(&t.net)) {
            return Ok(candidate);
        }
    }
    Err(Error::new(
        ErrorKind::Exhausted,
        "IPv6 unique local pool fd00::/8",
        format!("{ULA_TRIES} random /64s all overlapped a network or a host route"),
        "give the network an explicit IPv6 --subnet",
    ))
}

/// Refuses a user-given subnet that overlaps anything taken, naming the first clash.
pub fn check_subnet_free(subnet: &Subnet, taken: &[TakenRange]) -> Result<()> {
    match taken.iter().find(|t| subnet.overlaps(&t.net)) {
        None => Ok(()),
        Some(clash) => Err(Error::new(
            ErrorKind::Conflict,
            format!("subnet {subnet}"),
            format!("overlaps {}", clash.holder),
            "choose a subnet that overlaps no network and no host route (or omit --subnet to get a free one)",
        )),
    }
}

/// Checks a user-given gateway: a host address of the subnet.
pub fn check_gateway(subnet: &Subnet, gateway: IpAddr) -> Result<()> {
    if subnet.is_host(gateway) {
        return Ok(());
    }
    let fix = match subnet.family() {
        Family::V4 => format!(
            "pick an address inside {subnet} other than its network and broadcast address, e.g. {}",
            subnet.first_host()
        ),
        Family::V6 => format!(
            "pick an address inside {subnet} other than its network address, e.g. {}",
            subnet.first_host()
        ),
    };
    Err(Error::invalid(
        format!("gateway {gateway}"),
        format!("is not a usable address of subnet {subnet}"),
        fix,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(net: &str, holder: &str) -> TakenRange {
        TakenRange {
            net: net.parse().unwrap(),
            holder: holder.into(),
        }
    }

    #[test]
    fn first_free_pool_skips_routes_and_networks() {
        let s = choose_subnet(&[]).unwrap();
        assert_eq!(s.to_string(), "172.17.0.0/16");
        let s =
            choose_subnet(&[taken("172.17.0.0/16", "a"), taken("172.18.5.0/24", "route")]).unwrap();
        assert_eq!(s.to_string(), "172.19.0.0/16");
        let s = choose_subnet(&[taken("172.16.0.0/12", "route")]).unwrap();
        assert_eq!(s.to_string(), "192.168.0.0/20");
        assert!(choose_subnet(&[taken("0.0.0.0/0", "everything")]).is_err());
        // IPv6 routes take nothing from the IPv4 pools.
        assert_eq!(
            choose_subnet(&[taken("::/0", "v6")]).unwrap().to_string(),
            "172.17.0.0/16"
        );
    }

    /// Random IDs handed out from a list, in turn.
    fn ids(list: &[[u8; 5]]) -> impl FnMut() -> [u8; 5] + '_ {
        let mut i = 0;
        move || {
            i += 1;
            list[(i - 1) % list.len()]
        }
    }

    #[test]
    fn ula_choice_skips_networks_and_host_routes() {
        let a = [0x12, 0x34, 0x56, 0x78, 0x9a];
        let b = [0xab, 0xcd, 0xef, 0x01, 0x23];
        let c = [0x00, 0x00, 0x00, 0x00, 0x01];
        let s = choose_ula(&[], ids(&[a])).unwrap();
        assert_eq!(s.to_string(), "fd12:3456:789a::/64");
        // The first draw overlaps a network, the second a host route: the third is taken.
        let clash = [
            taken("fd12:3456:789a::/64", "network \"blue\""),
            taken("fdab:cdef:123::/48", "route fdab:cdef:123::/48 dev eth0"),
        ];
        let s = choose_ula(&clash, ids(&[a, b, c])).unwrap();
        assert_eq!(s.to_string(), "fd00:0:1::/64");
        // IPv4 ranges never clash with it.
        assert!(choose_ula(&[taken("0.0.0.0/0", "v4")], ids(&[a])).is_ok());
        // A route over all of fd00::/8 leaves nothing.
        let e = choose_ula(&[taken("fd00::/8", "route fd00::/8")], ids(&[a, b])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Exhausted);
        assert!(e.fix.contains("--subnet"), "{e}");
    }

    #[test]
    fn overlap_names_the_holder() {
        let s = Subnet::parse("10.1.0.0/16").unwrap();
        let e =
            check_subnet_free(&s, &[taken("10.0.0.0/8", "route 10.0.0.0/8 dev eth0")]).unwrap_err();
        assert!(e.to_string().contains("route 10.0.0.0/8 dev eth0"), "{e}");
        let s6 = Subnet::parse("fd00:1::/64").unwrap();
        let e = check_subnet_free(&s6, &[taken("fd00::/16", "network \"red\"")]).unwrap_err();
        assert!(e.to_string().contains("network \"red\""), "{e}");
        assert!(check_subnet_free(&s6, &[taken("10.0.0.0/8", "v4")]).is_ok());
    }

    #[test]
    fn gateways() {
        let s6 = Subnet::parse("fd00:1::/64").unwrap();
        assert!(check_gateway(&s6, "fd00:1::1".parse().unwrap()).is_ok());
        assert!(check_gateway(&s6, "fd00:2::1".parse().unwrap()).is_err());
        assert!(check_gateway(&s6, "fd00:1::".parse().unwrap()).is_err());
        assert!(check_gateway(&s6, "10.0.0.1".parse().unwrap()).is_err());
    }
}
