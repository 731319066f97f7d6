//! Which address a container gets: handed out in turn, per family, from the network's
//! subnet of that family.
//!
//! Pure functions over what is taken; the caller reads "what is taken" inside the same
//! database transaction that records the choice, so two processes never get the same.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, ErrorKind, Result};
use crate::model::Subnet;

/// The next free host address after `last` (the address this subnet handed out last),
/// wrapping round to the start of the subnet, skipping the gateway. `held` says whether
/// an address is taken.
///
/// Docker (libnetwork's serial allocator), Podman and CNI's host-local all allocate this
/// way: a released address is not handed out again while others are free, so a
/// neighbour's ARP or neighbour cache that still maps it to the container that left does
/// not misdirect the next one. It also keeps an allocation to a look-up or two however
/// many containers the network holds, where "the lowest free address" means reading them
/// all. One algorithm for both families: addresses are counted as 128-bit numbers.
pub fn allocate(
    subnet: &Subnet,
    gateway: IpAddr,
    last: Option<IpAddr>,
    mut held: impl FnMut(IpAddr) -> Result<bool>,
) -> Result<IpAddr> {
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

/// The first and last host address of the subnet, as numbers: IPv4 leaves out the
/// network and broadcast address, IPv6 the network (subnet-router anycast) address.
fn host_bounds(subnet: &Subnet) -> (u128, u128) {
    match subnet {
        Subnet::V4(n) => (
            u128::from(u32::from(n.network())) + 1,
            u128::from(u32::from(n.broadcast())) - 1,
        ),
        Subnet::V6(n) => (u128::from(n.network()) + 1, u128::from(n.broadcast())),
    }
}

fn address(subnet: &Subnet, n: u128) -> IpAddr {
    match subnet {
        Subnet::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
        Subnet::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

fn number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Every host address of the subnet once, starting just after `last` and wrapping round
/// (from the first host address when `last` is none or outside the subnet).
fn candidates_after(subnet: &Subnet, last: Option<IpAddr>) -> impl Iterator<Item = IpAddr> + '_ {
    let (first, end) = host_bounds(subnet);
    let start = last
        .filter(|ip| subnet.is_host(*ip))
        .map(|ip| number(ip).wrapping_add(1))
        .filter(|n| (first..=end).contains(n))
        .unwrap_or(first);
    (start..=end)
        .chain(first..start)
        .map(move |n| address(subnet, n))
}

/// The number of host addresses.
fn host_count(subnet: &Subnet) -> u128 {
    let (first, end) = host_bounds(subnet);
    end - first + 1
}

/// Checks a static address request against the subnet and what is taken.
pub fn check_static(
    subnet: &Subnet,
    gateway: IpAddr,
    ip: IpAddr,
    holder: Option<&str>,
) -> Result<()> {
    let object = format!("address {ip}");
    let flag = match subnet {
        Subnet::V4(_) => "--ip",
        Subnet::V6(_) => "--ip6",
    };
    if !subnet.is_host(ip) {
        return Err(Error::invalid(
            object,
            format!("is not a usable address of subnet {subnet}"),
            format!("pick an address inside {subnet}, or omit {flag} to get a free one"),
        ));
    }
    if ip == gateway {
        return Err(Error::new(
            ErrorKind::Conflict,
            object,
            "is the network's gateway",
            format!("pick another address, or omit {flag} to get a free one"),
        ));
    }
    if let Some(holder) = holder {
        return Err(Error::new(
            ErrorKind::Conflict,
            object,
            format!("is already taken by {holder}"),
            format!("pick another address, or omit {flag} to get a free one"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn held_by(used: &HashSet<IpAddr>) -> impl FnMut(IpAddr) -> Result<bool> + '_ {
        |ip| Ok(used.contains(&ip))
    }

    #[test]
    fn allocation_skips_gateway_and_used() {
        let s = Subnet::parse("10.0.0.0/29").unwrap();
        let gw = s.first_host();
        let mut used = HashSet::new();
        let ip = |n| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
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
        let ip = |n| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
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
        let elsewhere = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)));
        assert_eq!(allocate(&s, gw, elsewhere, held_by(&used)).unwrap(), ip(2));
    }

    #[test]
    fn allocation_asks_about_each_address_once_at_most() {
        let s = Subnet::parse("10.0.0.0/24").unwrap();
        let mut asked = Vec::new();
        let got = allocate(
            &s,
            s.first_host(),
            Some(IpAddr::from([10, 0, 0, 9])),
            |ip| {
                asked.push(ip);
                Ok(asked.len() < 3)
            },
        )
        .unwrap();
        assert_eq!(got, IpAddr::from([10, 0, 0, 12]));
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

    fn v6(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv6_allocation_is_serial_and_wraps_round() {
        let s = Subnet::parse("fd00:1::/120").unwrap();
        let gw = s.first_host();
        let mut used = HashSet::new();
        assert_eq!(
            allocate(&s, gw, None, held_by(&used)).unwrap(),
            v6("fd00:1::2")
        );
        used.insert(v6("fd00:1::2"));
        // Resumes after the last one handed out, not at the lowest free address.
        assert_eq!(
            allocate(&s, gw, Some(v6("fd00:1::9")), held_by(&used)).unwrap(),
            v6("fd00:1::a")
        );
        // The last address of the prefix is a host address in IPv6 (no broadcast); after
        // it the cursor wraps round to the bottom, past the gateway and what is held.
        assert_eq!(
            allocate(&s, gw, Some(v6("fd00:1::fe")), held_by(&used)).unwrap(),
            v6("fd00:1::ff")
        );
        assert_eq!(
            allocate(&s, gw, Some(v6("fd00:1::ff")), held_by(&used)).unwrap(),
            v6("fd00:1::3")
        );
        // A cursor of the other family or outside the prefix is ignored.
        assert_eq!(
            allocate(&s, gw, Some(v6("10.0.0.5")), held_by(&used)).unwrap(),
            v6("fd00:1::3")
        );
    }

    #[test]
    fn ipv6_exhaustion_is_an_error_naming_the_subnet() {
        let s = Subnet::parse("fd00:1::/120").unwrap();
        let gw = s.first_host();
        let mut asked = 0;
        let e = allocate(&s, gw, None, |_| {
            asked += 1;
            Ok(true)
        })
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Exhausted);
        // 255 host addresses (::1 to ::ff), the gateway not asked about.
        assert_eq!(asked, 254);
        assert!(e.to_string().contains("fd00:1::/120"), "{e}");
        assert!(e.to_string().contains("all 254 besides the gateway"), "{e}");
        // A /64 is never read whole: the first free address is found at once.
        let big = Subnet::parse("fd00:2::/64").unwrap();
        assert_eq!(
            allocate(&big, big.first_host(), None, |_| Ok(false)).unwrap(),
            v6("fd00:2::2")
        );
    }

    #[test]
    fn ipv6_static_checks() {
        let s = Subnet::parse("fd00:1::/64").unwrap();
        let gw = s.first_host();
        assert!(check_static(&s, gw, v6("fd00:1::99"), None).is_ok());
        let outside = check_static(&s, gw, v6("fd00:2::99"), None).unwrap_err();
        assert!(outside.fix.contains("--ip6"), "{outside}");
        assert!(check_static(&s, gw, gw, None).is_err());
        assert!(check_static(&s, gw, v6("fd00:1::99"), Some("c1")).is_err());
    }
}
