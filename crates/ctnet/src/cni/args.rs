//! `CNI_ARGS`: `KEY=VALUE` pairs joined by `;`, read once at the edge.
//!
//! What runtimes send: ctr 1.6 nothing; containerd's CRI
//! `IgnoreUnknown=1;K8S_POD_NAMESPACE=…;K8S_POD_NAME=…;K8S_POD_INFRA_CONTAINER_ID=…;K8S_POD_UID=…`;
//! Podman `IgnoreUnknown=1;K8S_POD_NAME=…` (and `IP=…` for a static address). The
//! convention (which the reference plugins follow) is that a key a plugin does not know is
//! an error unless `IgnoreUnknown` is true, so a setting meant for another plugin is never
//! dropped without a word. ctnet reads `IP` (requested addresses, host-local's key) and
//! takes the `K8S_POD_*` keys as the pod's labels, which ask for nothing.

use super::types::code;
use super::Failure;

/// The keys that only label the pod (containerd's CRI sends them; Podman sends the name).
const POD_LABELS: &[&str] = &[
    "K8S_POD_NAMESPACE",
    "K8S_POD_NAME",
    "K8S_POD_INFRA_CONTAINER_ID",
    "K8S_POD_UID",
];

/// What ctnet takes from `CNI_ARGS`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CniArgs {
    /// Requested addresses (`IP=a,b`, each with or without a prefix), as given.
    pub ips: Vec<String>,
    /// `K8S_POD_NAME`: the pod's name (containerd's CRI) or the container's (Podman's
    /// CNI backend), its DNS name on a network with ctnet's DNS when it is one.
    pub pod_name: Option<String>,
}

/// Parses `CNI_ARGS`. Refuses a pair without `=` or with an empty key, an `IgnoreUnknown`
/// that is not a boolean, and, unless `IgnoreUnknown` is true, any key ctnet does not read.
pub fn parse(text: &str) -> Result<CniArgs, Failure> {
    let mut args = CniArgs::default();
    let mut ignore_unknown = false;
    let mut unknown = Vec::new();
    for pair in text.split(';').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(Failure::new(
                code::INVALID_ENVIRONMENT,
                format!("CNI_ARGS: {pair:?} is not a KEY=VALUE pair"),
                "give CNI_ARGS as KEY=VALUE pairs joined by ';', e.g. IgnoreUnknown=1;IP=10.88.0.5",
            ));
        };
        match key {
            "IgnoreUnknown" => ignore_unknown = boolean(value)?,
            "IP" => args.ips.extend(value.split(',').map(str::to_string)),
            "K8S_POD_NAME" if !value.is_empty() => args.pod_name = Some(value.to_string()),
            k if POD_LABELS.contains(&k) => {}
            k => unknown.push(k.to_string()),
        }
    }
    if !ignore_unknown && !unknown.is_empty() {
        return Err(Failure::new(
            code::INVALID_ENVIRONMENT,
            format!(
                "CNI_ARGS: ctnet does not read {} (it reads IP, IgnoreUnknown and the K8S_POD_* labels)",
                unknown.join(", ")
            ),
            "remove the key, or add IgnoreUnknown=1 to CNI_ARGS to have keys meant for other plugins passed over",
        ));
    }
    Ok(args)
}

/// A boolean as libcni's `UnmarshallableBool` reads it.
fn boolean(value: &str) -> Result<bool, Failure> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(Failure::new(
            code::INVALID_ENVIRONMENT,
            format!("CNI_ARGS: IgnoreUnknown={value:?} is not a boolean"),
            "give IgnoreUnknown=1 (or true), or 0 (or false)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Failure {
        match parse(text) {
            Ok(args) => panic!("{text:?} accepted as {args:?}"),
            Err(f) => {
                assert_eq!(f.code, code::INVALID_ENVIRONMENT, "{text:?}");
                assert!(!f.details.is_empty());
                f
            }
        }
    }

    #[test]
    fn what_containerd_cri_and_podman_send_is_read() {
        let cri = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;\
                   K8S_POD_INFRA_CONTAINER_ID=0123abcd;K8S_POD_UID=4f2c-11";
        assert_eq!(parse(cri).unwrap().ips, Vec::<String>::new());
        let podman = "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.88.0.5";
        assert_eq!(parse(podman).unwrap().ips, ["10.88.0.5"]);
        assert_eq!(parse(podman).unwrap().pod_name.as_deref(), Some("web"));
        assert_eq!(parse("").unwrap(), CniArgs::default());
        // The pod labels ask for nothing, so they need no IgnoreUnknown.
        assert!(parse("K8S_POD_NAME=web").is_ok());
    }

    #[test]
    fn addresses_come_from_ip_pairs() {
        let args = parse("IP=10.88.0.5/16,fd00::5;IgnoreUnknown=true;").unwrap();
        assert_eq!(args.ips, ["10.88.0.5/16", "fd00::5"]);
    }

    #[test]
    fn unknown_keys_are_refused_unless_ignore_unknown() {
        let f = refused("MAC=02:42:0a:00:00:05;FOO=1");
        assert!(f.msg.contains("MAC, FOO"), "{}", f.msg);
        assert!(f.details.contains("IgnoreUnknown=1"), "{}", f.details);
        refused("IgnoreUnknown=0;FOO=1");
        refused("FOO=1;IgnoreUnknown=false");
        // IgnoreUnknown counts wherever it stands.
        assert!(parse("FOO=1;IgnoreUnknown=1").is_ok());
        assert!(parse("IgnoreUnknown=TRUE;FOO=1").is_ok());
    }

    #[test]
    fn malformed_pairs_are_refused() {
        assert!(refused("IgnoreUnknown")
            .msg
            .contains("not a KEY=VALUE pair"));
        refused("=1");
        refused("IgnoreUnknown=1;IP");
        assert!(refused("IgnoreUnknown=yes").msg.contains("not a boolean"));
    }
}
