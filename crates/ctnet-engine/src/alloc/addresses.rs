//! Address management: which subnet a new network gets and which address a container gets.
//!
//! Pure functions over what is taken; the caller reads "what is taken" inside the same
//! database transaction that records the choice, so two processes never get the same.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::{Error, ErrorKind, Result};
use crate::model::Subnet;

/// Something that already uses address space: another network or a host route.
#[derive(Debug, Clone)]
pub struct TakenRange {
    /// The range.
    pub net: Ipv4Net,
    /// Who holds it, in words: `network "blue"` or `route 10.0.0.0/8 dev eth0 on this host`.
    pub holder: String,
}

/// Docker's default address pools: 172.17.0.0/16 … 172.31.0.0/16, then the /20 blocks
/// of 192.168.0.0/16.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let wide =
        (17u8..=31).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid /16"));
    let narrow =
        (0u8..16).map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).expect("valid /20"));
    wide.chain(narrow)
}

/// The first default pool that overlaps nothing taken.
pub fn choose_subnet(taken: &[TakenRange]) -> Result<Subnet> {
    default_pools()
        .map(|net| Subnet::new(net).expect("pools are large enough"))
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
pub fn check_gateway(subnet: &Subnet, gateway: Ipv4Addr) -> Result<()> {
    if subnet.is_host(gateway) {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("gateway {gateway}"),
            format!("is not a usable address of subnet {subnet}"),
            format!("pick an address inside {subnet} other than its network and broadcast address, e.g. {}", subnet.first_host()),
        ))
    }
}

/// The next free host address after `last` (the address this network handed out last),
/// wrapping round to the start of the subnet, skipping the gateway. `held` says whether
/// an address is taken.
///
/// Docker (libnetwork's serial allocator), Podman and CNI's host-local all allocate this
/// way: a released address is not handed out again while others are free, so a
/// neighbour's ARP cache that still maps it to the container that left does not
/// misdirect the next one. It also keeps an allocation to a look-up or two however many
/// containers the network holds, where "the lowest free address" means reading them all.
pub fn allocate(
    subnet: &Subnet,
    gateway: Ipv4Addr,
    last: Option<Ipv4Addr>,
    mut held: impl FnMut(Ipv4Addr) -> Result<bool>,
) -> Result<Ipv4Addr> {
    for ip in candidates_after(subnet, last).filter(|ip| *ip != gateway) {
        if !held(ip)? {
            return Ok(ip);
        }
    }
    Err(Error::new(
        ErrorKind::Exhausted,
        format!("subnet {subnet}"),
        format!(
            "has no free address left (all {} besides the gateway are in use)",
            host_count(subnet) - 1
        ),
        "detach unused containers or create a network with a larger subnet",
    ))
}

/// Every host address of the subnet once, starting just after `last` and wrapping round
/// (from the first host address when `last` is none or outside the subnet).
fn candidates_after(subnet: &Subnet, last: Option<Ipv4Addr>) -> impl Iterator<Item = Ipv4Addr> {
    let net = subnet.net();
    let first = u32::from(net.network()) + 1;
    let end = u32::from(net.broadcast()) - 1;
    let start = last
        .map(|ip| u32::from(ip).wrapping_add(1))
        .filter(|n| (first..=end).contains(n))
        .unwrap_or(first);
    (start..=end).chain(first..start).map(Ipv4Addr::from)
}

/// The number of host addresses (all but the network and broadcast address).
fn host_count(subnet: &Subnet) -> u64 {
    (1u64 << (32 - subnet.net().prefix_len())) - 2
}

/// Checks a static address request against the subnet and what is taken.
pub fn check_static(
    subnet: &Subnet,
    gateway: Ipv4Addr,
    ip: Ipv4Addr,
    holder: Option<&str>,
) -> Result<()> {
    let object = format!("address {ip}");
    if !subnet.is_host(ip) {
        return Err(Error::invalid(
            object,
            format!("is not a usable address of subnet {subnet}"),
            format!("pick an address inside {subnet}, or omit --ip to get a free one"),
        ));
    }
    if ip == gateway {
        return Err(Error::new(
            ErrorKind::Conflict,
            object,
            "is the network's gateway",
            "pick another address, or omit --ip to get a free one",
        ));
    }
    if let Some(holder) = holder {
        return Err(Error::new(
            ErrorKind::Conflict,
            object,
            format!("is already taken by {holder}"),
            "pick another address, or omit --ip to get a free one",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

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
    }

    #[test]
    fn overlap_names_the_holder() {
        let s = Subnet::parse("10.1.0.0/16").unwrap();
        let e =
            check_subnet_free(&s, &[taken("10.0.0.0/8", "route 10.0.0.0/8 dev eth0")]).unwrap_err();
        assert!(e.to_string().contains("route 10.0.0.0/8 dev eth0"), "{e}");
    }

    fn held_by(used: &HashSet<Ipv4Addr>) -> impl FnMut(Ipv4Addr) -> Result<bool> + '_ {
        |ip| Ok(used.contains(&ip))
    }

    #[test]
    fn allocation_skips_gateway_and_used() {
        let s = Subnet::parse("10.0.0.0/29").unwrap();
        let gw = s.first_host();
        let mut used = HashSet::new();
        let ip = |n| Ipv4Addr::new(10, 0, 0, n);
        assert_eq!(allocate(&s, gw, None, held_by(&used)).unwrap(), ip(2));
        used.insert(ip(2));
        assert_eq!(allocate(&s, gw, None, held_by(&used)).unwrap(), ip(3));
        for i in 3..=6 {
            used.insert(ip(i));
        }
        let full = allocate(&s, gw, Some(ip(6)), held_by(&used)).unwrap_err();
        assert_eq!(full.kind, ErrorKind::Exhausted);
        assert!(
            full.to_string().contains("all 5 besides the gateway"),
            "{full}"
        );
    }

    #[test]
    fn allocation_resumes_after_the_last_address_and_wraps_round() {
        let s = Subnet::parse("10.0.0.0/29").unwrap();
        let gw = s.first_host();
        let ip = |n| Ipv4Addr::new(10, 0, 0, n);
        // .2 was released, .3 is held: the next is .4, not the lowest free (.2).
        let used: HashSet<_> = [ip(3)].into();
        assert_eq!(
            allocate(&s, gw, Some(ip(3)), held_by(&used)).unwrap(),
            ip(4)
        );
        // After the last host address (.6) it starts again at the bottom, past the gateway.
        assert_eq!(
            allocate(&s, gw, Some(ip(6)), held_by(&used)).unwrap(),
            ip(2)
        );
        // A cursor outside the subnet (a network re-made with another subnet) is ignored.
        let elsewhere = Some(Ipv4Addr::new(192, 0, 2, 9));
        assert_eq!(allocate(&s, gw, elsewhere, held_by(&used)).unwrap(), ip(2));
    }

    #[test]
    fn allocation_asks_about_each_address_once_at_most() {
        let s = Subnet::parse("10.0.0.0/24").unwrap();
        let mut asked = Vec::new();
        let got = allocate(&s, s.first_host(), Some(Ipv4Addr::new(10, 0, 0, 9)), |ip| {
            asked.push(ip);
            Ok(asked.len() < 3)
        })
        .unwrap();
        assert_eq!(got, Ipv4Addr::new(10, 0, 0, 12));
        assert_eq!(asked.len(), 3);
        let mut count = 0;
        let all_taken = allocate(&s, s.first_host(), None, |_| {
            count += 1;
            Ok(true)
        });
        assert!(all_taken.is_err());
        assert_eq!(count, 253);
    }

    #[test]
    fn static_checks() {
        let s = Subnet::parse("10.0.0.0/24").unwrap();
        let gw = s.first_host();
        assert!(check_static(&s, gw, "10.0.0.9".parse().unwrap(), None).is_ok());
        assert!(check_static(&s, gw, "10.0.1.9".parse().unwrap(), None).is_err());
        assert!(check_static(&s, gw, gw, None).is_err());
        assert!(check_static(&s, gw, "10.0.0.9".parse().unwrap(), Some("c1")).is_err());
    }
}
