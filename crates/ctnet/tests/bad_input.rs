//! Bad input: each case exits non-zero with a message naming the object and the fix, and
//! leaves the kernel and the database exactly as they were.

mod support;

use support::{refused, Sandbox};

/// A sandbox with the default network, a network `blue` (10.7.0.0/24) and a container
/// `c1` attached to it at 10.7.0.2.
fn world() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.7.0.0/24 && ctnet netns add c1 && ctnet netns add c2 && ctnet attach blue c1");
    sb
}

#[test]
fn malformed_subnets_and_gateways() {
    let sb = world();
    refused(
        &sb,
        "ctnet network create x --subnet 10.0.0/33",
        &[
            "subnet \"10.0.0/33\"",
            "is not a CIDR",
            "e.g. 172.18.0.0/16",
        ],
    );
    refused(
        &sb,
        "ctnet network create x --subnet banana",
        &["subnet \"banana\"", "ADDRESS/PREFIX"],
    );
    refused(
        &sb,
        "ctnet network create x --subnet 10.9.0.5/16",
        &["host bits", "10.9.0.0/16"],
    );
    refused(
        &sb,
        "ctnet network create x --subnet 10.9.0.0/31",
        &["too small", "/30"],
    );
    refused(
        &sb,
        "ctnet network create x --subnet 10.9.0.0/24 --gateway 10.9.1.1",
        &[
            "gateway 10.9.1.1",
            "not a usable address of subnet 10.9.0.0/24",
            "e.g. 10.9.0.1",
        ],
    );
    refused(
        &sb,
        "ctnet network create x --subnet 10.9.0.0/24 --gateway 10.9.0.255",
        &["gateway 10.9.0.255", "broadcast"],
    );
    refused(
        &sb,
        "ctnet network create x --subnet 10.9.0.0/24 --gateway nope",
        &["gateway \"nope\"", "is not an IP address"],
    );
    refused(
        &sb,
        "ctnet network create x --gateway 10.9.0.1",
        &["gateway 10.9.0.1", "--subnet"],
    );
    refused(
        &sb,
        "ctnet network create x --mtu 20",
        &["network \"x\"", "MTU 20", "68"],
    );
}

/// Ranges with a meaning of their own (loopback, multicast, "this network", reserved,
/// link-local) are refused with what they are, through the CLI as in the type.
#[test]
fn special_subnets_are_refused_with_the_reason() {
    let sb = world();
    for (subnet, why) in [
        ("127.0.0.0/8", "loopback"),
        ("224.0.0.0/4", "multicast"),
        ("0.0.0.0/8", "this network"),
        ("240.0.0.0/4", "reserved"),
        ("255.255.255.252/30", "255.255.255.255"),
        ("169.254.0.0/16", "link-local"),
    ] {
        refused(
            &sb,
            &format!("ctnet network create x --subnet {subnet}"),
            &[&format!("subnet \"{subnet}\""), why, "use a private range"],
        );
    }
    for (subnet, why) in [
        ("::/64", "unspecified"),
        ("fe80::/64", "link-local"),
        ("ff02::/64", "multicast"),
    ] {
        refused(
            &sb,
            &format!("ctnet network create x --ipv6 --subnet {subnet}"),
            &[&format!("subnet \"{subnet}\""), why],
        );
    }
}

#[test]
fn overlapping_subnets_name_the_clash() {
    let mut sb = world();
    refused(
        &sb,
        "ctnet network create x --subnet 10.7.0.128/25",
        &[
            "subnet 10.7.0.128/25",
            "overlaps network \"blue\"",
            "choose a subnet",
        ],
    );
    refused(
        &sb,
        "ctnet network create x --subnet 10.0.0.0/8",
        &["overlaps network \"blue\""],
    );
    // A route the host already has (two routes for one subnet) is refused by name.
    sb.with_wan();
    sb.ok("ip route add 10.200.0.0/16 via 203.0.113.2");
    refused(
        &sb,
        "ctnet network create x --subnet 10.200.5.0/24",
        &[
            "subnet 10.200.5.0/24",
            "overlaps route 10.200.0.0/16 via 203.0.113.2 dev uplink on this host",
        ],
    );
    refused(
        &sb,
        "ctnet network create x --subnet 203.0.113.0/24",
        &["overlaps route 203.0.113.0/24 dev uplink"],
    );
    // Automatic subnets step around routes: 172.18.0.0/16 is routed, so 172.19 is next.
    sb.ok("ip route add 172.18.0.0/16 via 203.0.113.2");
    sb.ok("ctnet network create auto");
    let listed = sb.ok("ctnet network inspect auto --format json");
    assert!(listed.contains("\"subnet\": \"172.19.0.0/16\""), "{listed}");
}

#[test]
fn duplicate_and_bad_network_names() {
    let sb = world();
    refused(
        &sb,
        "ctnet network create blue",
        &[
            "network \"blue\"",
            "already exists",
            "ctnet network rm blue",
        ],
    );
    refused(
        &sb,
        "ctnet network create ''",
        &["network name \"\"", "is empty"],
    );
    refused(
        &sb,
        "ctnet network create ../x",
        &["network name \"../x\"", "contains '/'"],
    );
    refused(
        &sb,
        "ctnet network create a/b",
        &["network name \"a/b\"", "contains '/'"],
    );
    let long = "n".repeat(65);
    refused(
        &sb,
        &format!("ctnet network create {long}"),
        &["is 65 characters long", "1 to 64"],
    );
    refused(
        &sb,
        "ctnet network create host",
        &["network name \"host\"", "reserved"],
    );
    refused(
        &sb,
        "ctnet network rm nosuch",
        &["network \"nosuch\"", "does not exist", "ctnet network ls"],
    );
    // A name that can never be a network's is refused as a name, not looked up, and
    // before any network of the same command is removed.
    for cmd in [
        "ctnet network rm ../x",
        "ctnet network inspect ../x",
        "ctnet network rm blue ../x",
    ] {
        refused(&sb, cmd, &["network name \"../x\"", "letters, digits"]);
    }
}

#[test]
fn bad_namespace_and_interface_names() {
    let sb = world();
    refused(
        &sb,
        "ctnet netns add ''",
        &["network namespace name \"\"", "is empty"],
    );
    refused(
        &sb,
        "ctnet netns add ../x",
        &["network namespace name \"../x\"", "contains '/'"],
    );
    refused(&sb, "ctnet netns add a/b", &["contains '/'"]);
    refused(
        &sb,
        &format!("ctnet netns add {}", "x".repeat(65)),
        &["is 65 characters long"],
    );
    refused(
        &sb,
        "ctnet netns add c1",
        &[
            "network namespace \"c1\"",
            "already exists",
            "ctnet netns rm c1",
        ],
    );
    refused(
        &sb,
        "ctnet network create x --bridge abcdefghijklmnop",
        &["interface name \"abcdefghijklmnop\"", "16 bytes long", "15"],
    );
    refused(
        &sb,
        "ctnet network create x --bridge 'a b'",
        &["interface name \"a b\""],
    );
    refused(
        &sb,
        "ctnet network create x --bridge lo",
        &["bridge lo", "already exists on this host", "--bridge"],
    );
    refused(
        &sb,
        "ctnet attach blue c2 --ifname abcdefghijklmnop",
        &["interface name \"abcdefghijklmnop\"", "15"],
    );
    refused(
        &sb,
        "ctnet run --name ../x -- true",
        &["network namespace name \"../x\""],
    );
}

#[test]
fn bad_static_addresses() {
    let sb = world();
    refused(
        &sb,
        "ctnet attach blue c2 --ip 10.8.0.5",
        &[
            "address 10.8.0.5",
            "not a usable address of subnet 10.7.0.0/24",
            "omit --ip",
        ],
    );
    refused(
        &sb,
        "ctnet attach blue c2 --ip 10.7.0.2",
        &[
            "address 10.7.0.2",
            "already taken by container \"c1\"",
            "omit --ip",
        ],
    );
    refused(
        &sb,
        "ctnet attach blue c2 --ip 10.7.0.1",
        &["address 10.7.0.1", "gateway"],
    );
    refused(
        &sb,
        "ctnet attach blue c2 --ip 10.7.0.255",
        &["address 10.7.0.255", "not a usable address"],
    );
    refused(
        &sb,
        "ctnet attach blue c2 --ip ten",
        &["--ip \"ten\"", "IPv4 address"],
    );
    // A good static address works, and is then refused to the next one.
    sb.ok("ctnet attach blue c2 --ip 10.7.0.50");
    assert_eq!(sb.addr_of("c2", "eth0"), "10.7.0.50");
}

#[test]
fn attach_to_missing_things_and_removing_a_busy_network() {
    let sb = world();
    refused(
        &sb,
        "ctnet attach blue ghost",
        &[
            "container \"ghost\"",
            "does not exist",
            "ctnet netns add ghost",
        ],
    );
    refused(
        &sb,
        "ctnet attach blue --pid 999999999",
        &["container \"pid:999999999\"", "running process"],
    );
    refused(
        &sb,
        "ctnet attach blue --netns-path /etc/hostname",
        &["container \"/etc/hostname\"", "not a network namespace"],
    );
    refused(
        &sb,
        "ctnet attach nosuch c2",
        &[
            "network \"nosuch\"",
            "does not exist",
            "ctnet network create",
        ],
    );
    refused(
        &sb,
        "ctnet attach blue c1",
        &[
            "container \"c1\"",
            "already attached to network \"blue\"",
            "ctnet detach blue c1",
        ],
    );
    refused(
        &sb,
        "ctnet detach blue c2",
        &["container \"c2\"", "not attached to network \"blue\""],
    );
    refused(
        &sb,
        "ctnet network rm blue",
        &[
            "network \"blue\"",
            "1 attached container(s): c1",
            "ctnet detach blue c1",
        ],
    );
    refused(
        &sb,
        "ctnet network rm bridge",
        &["network \"bridge\"", "default network"],
    );
    refused(
        &sb,
        "ctnet run --network nosuch -- true",
        &["network \"nosuch\"", "does not exist"],
    );
    refused(
        &sb,
        "ctnet run --network host --network blue -- true",
        &["mixes a mode"],
    );
}

#[test]
fn exhausted_subnet_is_refused_and_rolls_back() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create tiny --subnet 10.6.0.0/30 && ctnet netns add a && ctnet netns add b && ctnet attach tiny a");
    refused(
        &sb,
        "ctnet attach tiny b",
        &["subnet 10.6.0.0/30", "no free address", "larger subnet"],
    );
}

#[test]
fn bad_and_clashing_published_ports() {
    let sb = world();
    sb.ok("ctnet attach bridge c2 -p 8080:80");
    refused(
        &sb,
        "ctnet attach bridge c1 -p 8080:81",
        &[
            "host port 0.0.0.0:8080/tcp",
            "already published by container \"c2\" on network \"bridge\"",
            "choose another host port",
        ],
    );
    // A specific address clashes with the same port on every address.
    refused(
        &sb,
        "ctnet attach bridge c1 -p 127.0.0.1:8080:81",
        &["already published by container \"c2\""],
    );
    refused(
        &sb,
        "ctnet attach bridge c1 -p 8000-8002:80-81",
        &[
            "published port \"8000-8002:80-81\"",
            "unequal length",
            "HOST_PORT",
        ],
    );
    for garbage in [
        "80:0",
        "70000:80",
        "x:80",
        "80/sctp",
        "1.2.3:80:80",
        "90-80:80",
    ] {
        refused(
            &sb,
            &format!("ctnet attach bridge c1 -p {garbage}"),
            &[&format!("published port \"{garbage}\""), "e.g. 8080:80"],
        );
    }
    sb.ok("ctnet network create secret --internal");
    refused(
        &sb,
        "ctnet attach secret c1 -p 9000:80",
        &["network \"secret\"", "is internal", "non-internal network"],
    );
    refused(
        &sb,
        "ctnet run --network host -p 9000:80 -- true",
        &["--publish", "needs a bridge network"],
    );
}

/// A bridge takes 1,023 ports. The kernel refuses the next with "Exchange full"; ctnet
/// names the network and its bridge and says what to do instead, and leaves no veth,
/// address or row behind. (The ports are filled with bare veths made by `ip`, so the test
/// does not have to attach a thousand containers.)
#[test]
fn a_full_bridge_is_refused_by_name() {
    let sb = world();
    sb.ok("ctnet network create wide --subnet 10.8.0.0/16 --bridge ctwide && \
           for i in $(seq 1 1023); do echo \"link add fill$i master ctwide type veth peer name fillp$i\"; done \
           | ip -batch -");
    refused(
        &sb,
        "ctnet attach wide c2",
        &[
            "network \"wide\"",
            "bridge ctwide has 1,023 ports",
            "attach the container to another network",
        ],
    );
}
