//! Podman 4.3 with ctnet as its netavark resolves container names with ctnet's agent in
//! place of aardvark-dns: on a `podman network create` network (DNS on by default) two
//! containers resolve each other by name and by `--network-alias` (busybox nslookup,
//! through the resolv.conf Podman writes from the status ctnet returns), a container whose
//! name is not a valid DNS name still runs and is found by its alias, a `--disable-dns`
//! network gets no DNS server, and no aardvark-dns process runs in the sandbox while
//! ctnet-agent does.

mod support;

use std::time::Duration;

use support::podman::{Backend, Podman, PodmanOptions, IMAGE};
use support::{wait_until, Sandbox};

/// A Podman whose ctnet uses the sandbox's state and run dirs (the agent's lock and
/// socket are in the run dir), so the snapshot sees what it made.
fn podman(sb: &Sandbox) -> Podman<'_> {
    Podman::with_options(
        sb,
        PodmanOptions {
            ctnet_env: true,
            ..PodmanOptions::new(Backend::Netavark)
        },
    )
}

/// A container that sleeps on `network`, with extra `podman run` flags.
fn sleeper(podman: &Podman, name: &str, network: &str, flags: &str) {
    podman.run_detached(&format!(
        "--name {name} --network {network} {flags} {IMAGE} sleep 300"
    ));
}

/// Whether `name` resolves to `ip` from container `from`, within 3 s (the agent learns
/// of a container by a datagram, or at its next re-read of the store).
fn resolves_to(podman: &Podman, from: &str, name: &str, ip: &str) -> bool {
    wait_until(Duration::from_secs(3), || {
        podman.lookup(from, name).as_deref() == Some(ip)
    })
}

/// The pid of the agent serving the sandbox's run dir, if one runs.
fn agent_pid(sb: &Sandbox) -> Option<String> {
    let out = sb.run(
        "p=$(head -n1 \"$CTNET_RUN_DIR/agent.lock\" 2>/dev/null) && \
         [ \"$(cat /proc/$p/comm 2>/dev/null)\" = ctnet-agent ] && echo $p",
    );
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!pid.is_empty()).then_some(pid)
}

#[test]
fn podman_containers_resolve_names_and_aliases_through_ctnet_without_aardvark() {
    let sb = Sandbox::with_host_sys();
    // ctnet keeps its table (and the default network) once made, as Docker keeps its
    // chains: the snapshot is taken once they exist.
    sb.ok("ctnet run -- true");
    let before = sb.snapshot();
    {
        let podman = podman(&sb);
        podman.ok("network create dn >/dev/null");
        let conf = sb.ok(&format!("cat {}/netconf/dn.json", podman.dir));
        assert!(conf.contains("\"dns_enabled\": true"), "{conf}");
        sleeper(&podman, "c1", "dn", "--network-alias web1");
        sleeper(&podman, "c2", "dn", "--network-alias web2");
        let (ip1, ip2) = (podman.ip_of("c1", "dn"), podman.ip_of("c2", "dn"));
        let gateway = sb.ok(&format!(
            "{} network inspect -f '{{{{range .Subnets}}}}{{{{.Gateway}}}}{{{{end}}}}' dn",
            podman.podman
        ));
        let gateway = gateway.trim();

        // Podman wrote the resolv.conf from ctnet's status: the gateway first, and
        // Podman's search domain.
        let resolv = podman.ok("exec c1 cat /etc/resolv.conf");
        let first = resolv.lines().find(|l| l.starts_with("nameserver"));
        assert_eq!(
            first,
            Some(format!("nameserver {gateway}").as_str()),
            "{resolv}"
        );
        assert!(resolv.lines().any(|l| l == "search dns.podman"), "{resolv}");

        assert!(resolves_to(&podman, "c1", "c2", &ip2), "c2 from c1");
        assert!(resolves_to(&podman, "c2", "c1", &ip1), "c1 from c2");
        assert!(
            resolves_to(&podman, "c1", "web2", &ip2),
            "alias web2 from c1"
        );
        assert!(
            resolves_to(&podman, "c2", "web1", &ip1),
            "alias web1 from c2"
        );
        assert!(
            resolves_to(&podman, "c1", "c2.dns.podman", &ip2),
            "c2.dns.podman"
        );

        // A Podman name that is no DNS name ('_') does not fail the container: it is
        // found by its alias, and not by its name.
        sleeper(&podman, "my_ctr", "dn", "--network-alias ok3");
        let ip3 = podman.ip_of("my_ctr", "dn");
        assert!(resolves_to(&podman, "c1", "ok3", &ip3), "alias ok3 from c1");
        assert_eq!(podman.lookup("c1", "my_ctr"), None);

        // ctnet's agent answers; Podman started no aardvark-dns, nor did ctnet.
        assert!(
            agent_pid(&sb).is_some(),
            "no ctnet-agent runs for the run dir"
        );
        assert_eq!(podman.aardvark_pids(), Vec::<String>::new());

        // A network made with --disable-dns: no DNS server in the container's
        // resolv.conf (only what Podman copies from the host), no search domain.
        podman.ok("network create --disable-dns plain >/dev/null");
        let conf = sb.ok(&format!("cat {}/netconf/plain.json", podman.dir));
        assert!(conf.contains("\"dns_enabled\": false"), "{conf}");
        sleeper(&podman, "c4", "plain", "");
        let plain_gw = sb.ok(&format!(
            "{} network inspect -f '{{{{range .Subnets}}}}{{{{.Gateway}}}}{{{{end}}}}' plain",
            podman.podman
        ));
        let resolv = podman.ok("exec c4 cat /etc/resolv.conf");
        assert!(
            !resolv.contains(&format!("nameserver {}", plain_gw.trim()))
                && !resolv.contains("dns.podman"),
            "{resolv}"
        );
        assert_eq!(podman.aardvark_pids(), Vec::<String>::new());

        podman.ok("rm -f -t 0 c1 c2 my_ctr c4 >/dev/null");
        podman.ok("network rm dn plain >/dev/null");
    }
    assert_eq!(sb.snapshot(), before, "podman rm left something");
}
