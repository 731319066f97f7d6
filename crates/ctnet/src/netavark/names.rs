//! The DNS names a runtime's container gets on a ctnet DNS network, from the names the
//! runtime gave it (Podman: `container_name` and `network_options[NET].aliases`, which
//! always hold the container's 12-digit short id; CNI: `K8S_POD_NAME` and the `aliases`
//! capability).
//!
//! A runtime's names are not all DNS names: Podman allows `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
//! aardvark-dns 1.4 (what netavark 1.4 starts) answers any name it is given, `my_ctr`
//! included, and gives every container with a shared alias (round robin). ctnet keeps
//! only checked DNS names (`DnsName`: letters, digits and '-') and a name to one container
//! per network (the engine refuses a second, after releasing a holder whose namespace is
//! gone). So a front end never fails a container for its name: a name that is not a DNS
//! name is left out before the attach, one that another container holds is left out when
//! the attach refuses it (and the attach is made again), and the caller says so on stderr.

use ctnet_engine::model::DnsName;
use ctnet_engine::{AttachSpec, Endpoint, Engine, Error, ErrorKind};

/// The names to register, and what was left out (one message each).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chosen {
    pub name: Option<DnsName>,
    pub aliases: Vec<DnsName>,
    pub left_out: Vec<String>,
}

impl Chosen {
    /// Leaves out the name or alias an engine error is about (its object is `name "x"`
    /// or `alias "x"`); false when the error is about none of them.
    pub fn drop_named(&mut self, object: &str) -> bool {
        if self
            .name
            .as_ref()
            .is_some_and(|n| object == format!("name {:?}", n.as_str()))
        {
            self.name = None;
            return true;
        }
        let before = self.aliases.len();
        self.aliases
            .retain(|a| object != format!("alias {:?}", a.as_str()));
        self.aliases.len() != before
    }
}

/// Chooses the names of a container on a DNS network: `name` (the container's own) and
/// `aliases`, each kept when it is a valid DNS name. An alias equal to the name or to an
/// earlier alias is dropped without a word (Podman passes duplicates as they come).
pub fn choose(name: Option<&str>, aliases: &[String]) -> Chosen {
    let mut out = Chosen::default();
    let keep = |text: &str, what: &str, out: &mut Chosen| match DnsName::new(text) {
        Ok(dns) => Some(dns),
        Err(e) => {
            out.left_out.push(format!(
                "{what} {text:?} {}; other containers cannot look it up by it",
                e.cause
            ));
            None
        }
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

/// Attaches with `spec` and the `chosen` names; a name or alias another container holds
/// is left out (its reason added to `chosen.left_out`) and the attach made again without
/// it. Any other error is the attach's. Bounded: each retry has one name fewer.
pub fn attach_naming(
    engine: &mut Engine,
    spec: AttachSpec,
    chosen: &mut Chosen,
) -> Result<Endpoint, Error> {
    loop {
        let mut attempt = spec.clone();
        attempt.name = chosen.name.clone();
        attempt.aliases = chosen.aliases.clone();
        match engine.attach(attempt) {
            Err(e) if e.kind == ErrorKind::Conflict && chosen.drop_named(&e.object) => {
                chosen.left_out.push(format!(
                    "{} {}; it stays that container's",
                    e.object, e.cause
                ));
            }
            other => return other,
        }
    }
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
        let c = choose(Some("c1"), &texts(&["web", "5a4fe40e5e8e", "C1", "Web"]));
        assert_eq!(c.name, Some(dns("c1")));
        assert_eq!(c.aliases, vec![dns("web"), dns("5a4fe40e5e8e")]);
        assert!(c.left_out.is_empty(), "{:?}", c.left_out);
    }

    #[test]
    fn a_podman_name_that_is_no_dns_name_is_left_out_and_said() {
        let c = choose(Some("my_ctr"), &texts(&["ok3", "a..b"]));
        assert_eq!(c.name, None);
        assert_eq!(c.aliases, vec![dns("ok3")]);
        assert_eq!(c.left_out.len(), 2, "{:?}", c.left_out);
        assert!(
            c.left_out[0].starts_with("name \"my_ctr\""),
            "{}",
            c.left_out[0]
        );
        // Dotted names are DNS names.
        assert_eq!(choose(Some("c2.dot"), &[]).name, Some(dns("c2.dot")));
        assert_eq!(choose(Some(""), &[]), Chosen::default());
        assert_eq!(choose(None, &[]), Chosen::default());
    }

    #[test]
    fn the_name_an_engine_error_is_about_is_the_one_left_out() {
        let mut c = choose(Some("c1"), &texts(&["web", "own"]));
        assert!(c.drop_named("alias \"web\""));
        assert_eq!(c.aliases, vec![dns("own")]);
        assert!(!c.drop_named("alias \"web\""));
        assert!(!c.drop_named("address 10.0.0.2"));
        assert!(c.drop_named("name \"c1\""));
        assert_eq!(c.name, None);
        assert_eq!(c.aliases, vec![dns("own")]);
    }
}
