//! The names a container answers to in its network's DNS: which of those asked for an
//! endpoint gets, and that no other container on the network answers to one of them.
//!
//! The host agent (crates/ctnet-agent) serves them; here they are only decided and
//! recorded with the endpoint, in the attach's own transaction.

use rusqlite::Connection;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{DnsName, Network};
use crate::ops::endpoint::container_object;
use crate::state;

/// The name and aliases an endpoint on `net` gets: on a network with DNS, `name` and the
/// aliases, each once (an alias equal to the name, or given twice, adds nothing); on a
/// network without DNS no names at all, and aliases are refused rather than dropped
/// (asked for explicitly, they would silently never resolve). A container's name is
/// not refused there: every container has one (a namespace name, Podman's), and only
/// DNS networks serve it.
pub(crate) fn names_for(
    net: &Network,
    name: Option<&DnsName>,
    aliases: &[DnsName],
) -> Result<(Option<DnsName>, Vec<DnsName>)> {
    if !net.dns {
        if let Some(alias) = aliases.first() {
            return Err(Error::invalid(
                format!("alias {:?}", alias.as_str()),
                format!(
                    "network {:?} has DNS off; aliases need DNS",
                    net.name.as_str()
                ),
                "create a network with DNS (`ctnet network create NAME`, DNS is on by default) \
                 and attach the container to it, or leave --alias out",
            ));
        }
        return Ok((None, Vec::new()));
    }
    let mut kept: Vec<DnsName> = Vec::new();
    for alias in aliases {
        if Some(alias) != name && !kept.contains(alias) {
            kept.push(alias.clone());
        }
    }
    Ok((name.cloned(), kept))
}

/// Refuses a name or alias another container on `net` answers to already (its name or
/// one of its aliases; names are stored lower-case, so this compares without regard to
/// case). One index look-up per name, inside the attach's transaction. A Conflict: the
/// holder may be a container whose namespace is gone, which the attach releases and
/// then tries again (see ops/stale.rs).
pub(crate) fn check_names_free(
    tx: &Connection,
    net: &Network,
    name: Option<&DnsName>,
    aliases: &[DnsName],
) -> Result<()> {
    let asked = name
        .map(|n| ("name", n))
        .into_iter()
        .chain(aliases.iter().map(|a| ("alias", a)));
    for (what, wanted) in asked {
        if let Some(holder) = state::dns_name_holder(tx, &net.name, wanted)? {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("{what} {:?}", wanted.as_str()),
                format!(
                    "is already used by {} on network {:?} (as its name or an alias); \
                     a name resolves to one container",
                    container_object(&holder),
                    net.name.as_str()
                ),
                "choose another name or alias, or detach that container first",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::bridge::tests::network;

    fn names(list: &[&str]) -> Vec<DnsName> {
        list.iter().map(|n| DnsName::alias(n).unwrap()).collect()
    }

    #[test]
    fn a_dns_network_keeps_the_name_and_each_alias_once() {
        let mut net = network(&[("10.1.0.0/24", "10.1.0.1")]);
        net.dns = true;
        let web = DnsName::new("web").unwrap();
        let (name, aliases) =
            names_for(&net, Some(&web), &names(&["www", "web", "www", "api"])).unwrap();
        assert_eq!(name, Some(web));
        assert_eq!(aliases, names(&["www", "api"]));
        let (name, aliases) = names_for(&net, None, &[]).unwrap();
        assert_eq!((name, aliases), (None, Vec::new()));
    }

    #[test]
    fn a_network_without_dns_records_no_names_and_refuses_aliases() {
        let net = network(&[("10.1.0.0/24", "10.1.0.1")]);
        assert!(!net.dns);
        let web = DnsName::new("web").unwrap();
        let (name, aliases) = names_for(&net, Some(&web), &[]).unwrap();
        assert_eq!((name, aliases), (None, Vec::new()));
        let e = names_for(&net, Some(&web), &names(&["www"])).unwrap_err();
        assert_eq!(e.object, "alias \"www\"");
        assert!(e.cause.contains("network \"blue\" has DNS off"), "{e}");
        assert!(e.fix.contains("ctnet network create"), "{e}");
    }
}
