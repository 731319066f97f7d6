//! The DNS names a runtime's container gets on a ctnet DNS network, from the names the
//! runtime gave it (Podman: `container_name` and `network_options[NET].aliases`, which
//! always hold the container's 12-digit short id; CNI: `K8S_POD_NAME` and the `aliases`
//! capability).
//!
//! A runtime's names are not all DNS names: Podman allows `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
//! aardvark-dns 1.4 (what netavark 1.4 starts) answers any name it is given, `my_ctr`
//! included, and gives every container with a shared alias (round robin). ctnet keeps
//! only checked DNS names (`DnsName`: letters, digits and '-') and a name to one container
//! per network (the engine refuses a second). So a front end never fails a container for
//! its name: a name that is not a DNS name, or that another container on the network
//! already has, is left out, and the caller says so on stderr.

use ctnet_engine::model::DnsName;

/// The names to register, and what was left out (one message each).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chosen {
    pub name: Option<DnsName>,
    pub aliases: Vec<DnsName>,
    pub left_out: Vec<String>,
}

/// Chooses the names of a container on a DNS network: `name` (the container's own) and
/// `aliases`, each kept when it is a valid DNS name that no other container on the
/// network has (`taken`: every name and alias of the network's other endpoints). An
/// alias equal to the name or to an earlier alias is dropped without a word (Podman
/// passes the name's duplicates as they come).
pub fn choose(name: Option<&str>, aliases: &[String], taken: &[DnsName]) -> Chosen {
    let mut out = Chosen::default();
    let mut keep = |text: &str, what: &str, out: &mut Chosen| -> Option<DnsName> {
        let dns = match DnsName::new(text) {
            Ok(dns) => dns,
            Err(e) => {
                out.left_out.push(format!(
                    "{what} {text:?} {}; other containers cannot look it up by it",
                    e.cause
                ));
                return None;
            }
        };
        if taken.contains(&dns) {
            out.left_out.push(format!(
                "{what} {text:?} is already another container's name or alias on this network; it stays that container's"
            ));
            return None;
        }
        Some(dns)
    };
    out.name = name
        .filter(|n| !n.is_empty())
        .and_then(|n| keep(n, "name", &mut out));
    for alias in aliases {
        let Some(dns) = keep(alias, "alias", &mut out) else {
            continue;
        };
        if out.name.as_ref() != Some(&dns) && !out.aliases.contains(&dns) {
            out.aliases.push(dns);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(t: &str) -> DnsName {
        DnsName::new(t).unwrap()
    }

    fn texts(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn valid_names_are_kept_in_order_and_duplicates_dropped() {
        let c = choose(Some("c1"), &texts(&["web", "5a4fe40e5e8e", "C1", "Web"]), &[]);
        assert_eq!(c.name, Some(dns("c1")));
        assert_eq!(c.aliases, vec![dns("web"), dns("5a4fe40e5e8e")]);
        assert!(c.left_out.is_empty(), "{:?}", c.left_out);
    }

    #[test]
    fn a_podman_name_that_is_no_dns_name_is_left_out_and_said() {
        let c = choose(Some("my_ctr"), &texts(&["ok3", "a..b"]), &[]);
        assert_eq!(c.name, None);
        assert_eq!(c.aliases, vec![dns("ok3")]);
        assert_eq!(c.left_out.len(), 2, "{:?}", c.left_out);
        assert!(c.left_out[0].starts_with("name \"my_ctr\""), "{}", c.left_out[0]);
        // Dotted names are DNS names.
        assert_eq!(choose(Some("c2.dot"), &[], &[]).name, Some(dns("c2.dot")));
        assert_eq!(choose(Some(""), &[], &[]), Chosen::default());
        assert_eq!(choose(None, &[], &[]), Chosen::default());
    }

    #[test]
    fn a_name_another_container_has_stays_its() {
        let c = choose(Some("c1"), &texts(&["web", "own"]), &[dns("WEB"), dns("x")]);
        assert_eq!(c.name, Some(dns("c1")));
        assert_eq!(c.aliases, vec![dns("own")]);
        assert_eq!(c.left_out.len(), 1);
        assert!(c.left_out[0].contains("alias \"web\""), "{}", c.left_out[0]);
        assert_eq!(choose(Some("x"), &[], &[dns("x")]).name, None);
    }
}
