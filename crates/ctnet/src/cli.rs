//! The command line, as clap types. Values arrive here as text; `commands/` parses each
//! into the engine's checked types (names, subnets, addresses, ports) before anything else.
//!
//! Arguments are read as OS strings: a command's arguments (`ctnet run -- …`, `netns
//! exec`) pass through to exec byte for byte, and any other value that is not UTF-8 is
//! refused by [`Utf8`] with the argument it was given for.

use std::ffi::{OsStr, OsString};
use std::net::IpAddr;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Args, FromArgMatches, Parser, Subcommand, ValueEnum};
use ctnet_engine::model::Family;
use ctnet_engine::paths::{ENV_NETNS_DIR, ENV_RUN_DIR, ENV_STATE_DIR};

/// Container networking for Linux: bridges, NAT and network namespaces, over netlink.
#[derive(Parser, Debug)]
#[command(name = "ctnet", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub dirs: Dirs,
    #[command(subcommand)]
    pub command: Command,
}

/// The version `--version` shows: the package's, and the git commit it was built from
/// when the build had one (see build.rs).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("CTNET_BUILD_COMMIT"));

/// Where ctnet keeps its state, its runtime files and named namespaces: flags that go
/// anywhere on the line, or the environment.
///
/// The environment gives the defaults here rather than through clap's `env`: clap counts
/// a value from the environment as given on the line, and then printed these flags as
/// required in the usage line of every error.
#[derive(Args, Debug)]
pub struct Dirs {
    /// Folder for the state database [env: CTNET_STATE_DIR].
    #[arg(long, global = true, default_value_os_t = env_or(ENV_STATE_DIR, "/var/lib/ctnet"))]
    pub state_dir: PathBuf,
    /// Folder for runtime files [env: CTNET_RUN_DIR].
    #[arg(long, global = true, default_value_os_t = env_or(ENV_RUN_DIR, "/run/ctnet"))]
    pub run_dir: PathBuf,
    /// Folder of named network namespaces, where `ip netns` looks [env: CTNET_NETNS_DIR].
    #[arg(long, global = true, default_value_os_t = env_or(ENV_NETNS_DIR, "/run/netns"))]
    pub netns_dir: PathBuf,
}

/// The folder an environment variable names (unless unset or empty), else `default`.
fn env_or(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Reads a value as an OS string and refuses one that is not UTF-8, naming the argument
/// (clap's own check names none, and the standard library's `args()` panics).
#[derive(Clone, Copy, Debug)]
pub struct Utf8;

impl TypedValueParser for Utf8 {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        value.to_str().map(str::to_string).ok_or_else(|| {
            let what = arg.map_or_else(|| "argument".to_string(), argument_name);
            let fix = if what.ends_with("name") {
                "give a name of letters, digits, '-', '_' or '.'"
            } else {
                "give it as UTF-8 text"
            };
            let err = ctnet_engine::Error::invalid(
                format!("{what} {value:?}"),
                "is not valid UTF-8",
                fix,
            );
            clap::Error::raw(clap::error::ErrorKind::InvalidUtf8, format!("{err}\n")).with_cmd(cmd)
        })
    }
}

/// How an argument is named in a message: `--subnet`, or `network name` for a
/// positional one.
fn argument_name(arg: &clap::Arg) -> String {
    match (arg.get_long(), arg.get_id().as_str()) {
        (Some(long), _) => format!("--{long}"),
        (None, "name" | "names") => "name".into(),
        (None, id) => format!("{id} name"),
    }
}

impl Cli {
    /// Parses a command line (`args[0]` is the program), exiting with clap's message on
    /// a bad one, as [`Parser::parse_from`] does.
    ///
    /// clap builds every subcommand's arguments before it parses anything: a fifth of
    /// the instructions of a whole `ctnet attach`. Container engines run attach and
    /// detach once per container, so those two are first parsed against their own
    /// arguments and the directory flags alone. That narrower parser accepts exactly
    /// the lines the whole tree accepts for them (the arguments are the same derived
    /// definitions); anything it does not accept, `--help` and mistakes included, is
    /// parsed again by the whole tree, so every message and help text is the usual one.
    pub fn parse_args(args: Vec<OsString>) -> Cli {
        parse_leaf(&args).unwrap_or_else(|| Cli::parse_from(args))
    }
}

/// `ctnet attach …` or `ctnet detach …` parsed without the rest of the command tree;
/// None when the line is anything else or does not parse.
fn parse_leaf(args: &[OsString]) -> Option<Cli> {
    let name = args.get(1)?.to_str()?;
    let arguments: fn(clap::Command) -> clap::Command = match name {
        "attach" => AttachArgs::augment_args,
        "detach" => DetachArgs::augment_args,
        _ => return None,
    };
    let leaf = Dirs::augment_args(arguments(clap::Command::new("ctnet")));
    let line = std::iter::once(&args[0]).chain(&args[2..]);
    let matches = leaf.try_get_matches_from(line).ok()?;
    let command = match name {
        "attach" => Command::Attach(AttachArgs::from_arg_matches(&matches).ok()?),
        _ => Command::Detach(DetachArgs::from_arg_matches(&matches).ok()?),
    };
    Some(Cli {
        dirs: Dirs::from_arg_matches(&matches).ok()?,
        command,
    })
}

/// Output format of listing commands.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for programs.
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage named network namespaces.
    #[command(subcommand)]
    Netns(NetnsCommand),
    /// Attach a container (network namespace) to a network.
    #[command(visible_alias = "connect")]
    Attach(AttachArgs),
    /// Detach a container from a network.
    #[command(visible_alias = "disconnect")]
    Detach(DetachArgs),
    /// List attached containers.
    Ls(FormatArgs),
    /// Network policies: which containers may reach which (Kubernetes NetworkPolicy
    /// ingress semantics), as nftables set elements.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run a command in a fresh network namespace attached to a network; everything is
    /// removed when the command exits.
    Run(RunArgs),
    /// Repair what interrupted ctnet processes left behind, and the kernel objects of
    /// the store's networks and endpoints (bridges, veths, ctnet's nftables table).
    Gc(GcArgs),
    /// Finish a `detach --no-wait` (run by ctnet itself, in the background).
    #[command(hide = true)]
    ReapEndpoint {
        /// Endpoint row id.
        id: i64,
    },
    /// The host agent (ctnet-agent): container-name DNS and firewall repair.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Report what on this host will silently drop ctnet's traffic, each with the fix.
    /// Exits non-zero when it finds a problem.
    Doctor(FormatArgs),
    /// Show one container as the kernel holds it: its namespace, interfaces with
    /// counters, routes, neighbours, veth peers and bridge ports, forwarding entries,
    /// tracked connections with their NAT, published ports, and where the kernel
    /// disagrees with what ctnet recorded.
    Inspect(InspectArgs),
    /// Show the whole host's container networking: networks, bridges, veth pairs,
    /// VXLAN devices, namespaces with their interfaces and addresses, published ports,
    /// each once, marked where the kernel and what ctnet recorded disagree; as a tree,
    /// Graphviz text, an SVG picture or JSON.
    Topology(TopologyArgs),
    /// Send one real packet from FROM to TO and show every hop the kernel took it
    /// through: interfaces, bridge, routing decision, each nftables chain and rule that
    /// matched, NAT, the interface it left by, and whether an answer came back; when it
    /// is dropped, where and why. Leaves nothing behind.
    Trace(TraceArgs),
    /// Print a shell completion script (e.g. `ctnet completion bash > /etc/bash_completion.d/ctnet`).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page, in roff (e.g. `ctnet man | man -l -`), or write one page
    /// per command into a folder.
    Man {
        /// Folder to write ctnet.1, ctnet-network.1, ctnet-network-create.1, ... into.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Add a policy. A container selected by the --to of any allow policy then accepts
    /// only what some allow policy admits, plus replies; a --deny policy drops what it
    /// matches whatever allows it. New connections at once; established ones continue.
    Add(PolicyAddArgs),
    /// List policies with the containers they select now.
    Ls(FormatArgs),
    /// Remove policies.
    Rm {
        /// Policy names.
        #[arg(required = true, value_parser = Utf8)]
        names: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct PolicyAddArgs {
    /// The policy's name.
    #[arg(value_parser = Utf8)]
    pub name: String,
    /// The network whose containers it selects.
    #[arg(long, value_parser = Utf8)]
    pub network: String,
    /// The containers it governs: KEY=VALUE[,KEY=VALUE...] (all must match),
    /// name=CONTAINER, or all.
    #[arg(long, value_parser = Utf8, value_name = "SELECTOR")]
    pub to: String,
    /// Where admitted traffic comes from: a selector of the network's containers, or a
    /// CIDR block (another network, the wan). Repeatable; none: from anywhere.
    #[arg(long, value_parser = Utf8, value_name = "SELECTOR|CIDR")]
    pub from: Vec<String>,
    /// Container ports: PORT[-END][/tcp|/udp|/sctp] (tcp when no protocol is given).
    /// Repeatable; none: every port of every protocol.
    #[arg(long = "port", value_parser = Utf8, value_name = "PORT")]
    pub ports: Vec<String>,
    /// Drop what the policy matches instead, whatever allows it.
    #[arg(long)]
    pub deny: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Whether the host agent runs, since when, what it serves, and its last errors.
    /// Exits 0 either way.
    Status(FormatArgs),
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Remove ctnet's bridges and nftables elements that no network in the state
    /// database explains (after the database was lost: containers on them lose their
    /// network).
    #[arg(long)]
    pub discard_unknown: bool,
}

#[derive(Args, Debug)]
pub struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a bridge, macvlan or overlay network.
    Create(NetworkCreateArgs),
    /// List networks.
    Ls(FormatArgs),
    /// Show one network and its containers.
    Inspect {
        /// Network name.
        #[arg(value_parser = Utf8)]
        name: String,
        #[command(flatten)]
        format: FormatArgs,
        /// The etcd cluster to show an overlay network's hosts from.
        #[arg(long, env = "CTNET_ETCD_ENDPOINTS", value_name = "URL[,URL...]", value_parser = Utf8)]
        etcd: Option<String>,
    },
    /// Remove networks that no container uses (an overlay: on every host, from etcd).
    Rm {
        /// Network names.
        #[arg(required = true, value_parser = Utf8)]
        names: Vec<String>,
        /// The etcd cluster overlay networks live in.
        #[arg(long, env = "CTNET_ETCD_ENDPOINTS", value_name = "URL[,URL...]", value_parser = Utf8)]
        etcd: Option<String>,
    },
    /// Attach a container to a network, as `ctnet attach` (Docker's `network connect`,
    /// with its argument order: NETWORK, then the container).
    Connect(AttachArgs),
    /// Detach a container from a network, as `ctnet detach` (Docker's `network disconnect`).
    Disconnect(DetachArgs),
}

#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    /// Network name.
    #[arg(value_parser = Utf8)]
    pub name: String,
    /// Subnet in CIDR form, at most one per family (repeat for an IPv6 one); a free one
    /// from the default pools (IPv4) or a unique local /64 (IPv6) when omitted.
    #[arg(long, value_parser = Utf8)]
    pub subnet: Vec<String>,
    /// Gateway address (the bridge's own), at most one per family; the subnet's first
    /// address when omitted.
    #[arg(long, value_parser = Utf8)]
    pub gateway: Vec<String>,
    /// Give the network IPv6 as well (dual stack), or alone with `--ipv4 false`.
    #[arg(long)]
    pub ipv6: bool,
    /// Whether the network has IPv4 (`--ipv4 false` with `--ipv6`: IPv6 only).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "true|false")]
    pub ipv4: bool,
    /// Bridge device name (at most 15 bytes); `br-` and 12 hex digits of the id when omitted.
    #[arg(long, value_parser = Utf8)]
    pub bridge: Option<String>,
    /// MTU of the bridge and the containers' interfaces.
    #[arg(long)]
    pub mtu: Option<u32>,
    /// No masquerade: containers reach nothing outside the bridge.
    #[arg(long)]
    pub internal: bool,
    /// Whether containers on this network may talk to each other (Docker's enable_icc).
    /// `--icc false` isolates every container port of the bridge.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "true|false")]
    pub icc: bool,
    /// Driver: `bridge` (containers on a Linux bridge), `macvlan` (containers straight
    /// on the LAN of `--parent`) or `overlay` (one subnet across hosts over VXLAN, kept
    /// in etcd; see docs/overlay.md).
    #[arg(long, default_value = "bridge", value_parser = Utf8, value_name = "bridge|macvlan|overlay")]
    pub driver: String,
    /// Overlay: its VXLAN network identifier (1 to 16777215); the lowest free one when
    /// omitted.
    #[arg(long, value_name = "N")]
    pub vni: Option<u32>,
    /// Overlay: the prefix length of the block each host leases (24 when omitted).
    #[arg(long, value_name = "LEN")]
    pub host_prefix: Option<u8>,
    /// Overlay: the etcd cluster it is written to (client URLs, comma-separated).
    #[arg(long, env = "CTNET_ETCD_ENDPOINTS", value_name = "URL[,URL...]", value_parser = Utf8)]
    pub etcd: Option<String>,
    /// The host interface a macvlan network's containers sit on (macvlan only; required there).
    #[arg(long, value_parser = Utf8, value_name = "IF")]
    pub parent: Option<String>,
    /// Macvlan mode: bridge (default), private, vepa, passthru or source (macvlan only).
    #[arg(long, value_parser = Utf8, value_name = "MODE")]
    pub macvlan_mode: Option<String>,
    /// Which networks this one may talk to: `strict` (none, the default), `true` (only
    /// open ones), `false` (open: every network that is not strict).
    #[arg(long, default_value = "strict", value_parser = Utf8, value_name = "true|false|strict")]
    pub isolate: String,
    /// Metric of the default routes the network gives its containers (lower wins).
    #[arg(long, value_name = "N")]
    pub metric: Option<u32>,
    /// Who gives containers their addresses: `ctnet` (from the subnets) or `none` (no
    /// addresses).
    #[arg(long, default_value = "ctnet", value_parser = Utf8, value_name = "ctnet|none")]
    pub ipam: String,
    /// Whether the host agent answers the names of the network's containers (`--name`,
    /// the namespace name, `--alias`) on its gateways, and containers are told to use it
    /// (Docker's user-defined networks; on by default).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "true|false")]
    pub dns: bool,
    /// The same as `--dns false` (Podman's `--disable-dns`).
    #[arg(long, conflicts_with = "dns")]
    pub disable_dns: bool,
}

#[derive(Subcommand, Debug)]
pub enum NetnsCommand {
    /// Create a named network namespace with loopback up (like `ip netns add`).
    Add {
        /// Namespace name.
        #[arg(value_parser = Utf8)]
        name: String,
    },
    /// List named network namespaces.
    Ls(FormatArgs),
    /// Detach a namespace from its networks and delete it.
    Rm {
        /// Namespace names.
        #[arg(required = true, value_parser = Utf8)]
        names: Vec<String>,
    },
    /// Run a command inside a named namespace (like `ip netns exec`).
    Exec {
        /// Namespace name.
        #[arg(value_parser = Utf8)]
        name: String,
        /// The command and its arguments, passed to it byte for byte.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
}

/// Which container a command acts on: a named namespace, a namespace file, or a process.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// Named network namespace (in the netns dir).
    #[arg(conflicts_with_all = ["netns_path", "pid"], required_unless_present_any = ["netns_path", "pid"], value_parser = Utf8)]
    pub namespace: Option<String>,
    /// Path of a network namespace file, e.g. /proc/1234/ns/net.
    #[arg(long)]
    pub netns_path: Option<PathBuf>,
    /// Pid of a process whose network namespace to use.
    #[arg(long)]
    pub pid: Option<u32>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Where the probe is sent from: a container, `host`, or an address the host or a
    /// namespace in the netns dir holds.
    #[arg(value_parser = Utf8)]
    pub from: String,
    /// Where it goes: a container, `host` or an address, then `:PORT` and
    /// `/tcp`, `/udp` or `/icmp` (e.g. `web:80/tcp`, `192.0.2.1:8080`, `[2001:db8::1]:53/udp`).
    /// Without a port an ICMP echo is sent; a port without a protocol means TCP.
    #[arg(value_parser = Utf8)]
    pub to: String,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 1.0)]
    pub wait: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct TopologyArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: TopologyFormat,
}

/// Output format of `ctnet topology`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TopologyFormat {
    /// A tree for people (stable: no MACs, indexes or inodes).
    #[default]
    Text,
    /// Graphviz text, e.g. for `dot -Tpng`.
    Dot,
    /// An SVG picture, drawn by ctnet.
    Svg,
    /// JSON for programs.
    Json,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Network name.
    #[arg(value_parser = Utf8)]
    pub network: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Static IPv4 address inside the network's subnet.
    #[arg(long, value_parser = Utf8)]
    pub ip: Option<String>,
    /// Static IPv6 address inside the network's IPv6 subnet.
    #[arg(long, value_parser = Utf8)]
    pub ip6: Option<String>,
    /// Interface name inside the container (default eth0, eth1, ...).
    #[arg(long, value_parser = Utf8)]
    pub ifname: Option<String>,
    /// MAC address of the container's interface (default 02:42 and the IPv4 address).
    #[arg(long, value_parser = Utf8)]
    pub mac: Option<String>,
    /// Publish a container port: [HOST_IP:][HOST_PORT[-END]]:CONTAINER_PORT[-END][/tcp|/udp],
    /// or just CONTAINER_PORT for a free host port. Repeatable.
    #[arg(short = 'p', long = "publish", value_name = "PORT", value_parser = Utf8)]
    pub publish: Vec<String>,
    /// Another name the container answers to in the network's DNS (Docker's
    /// `--network-alias`; the network needs DNS). Repeatable. A named namespace answers
    /// to its own name as well, when that is a valid DNS name.
    #[arg(long = "alias", value_name = "NAME", value_parser = Utf8)]
    pub aliases: Vec<String>,
    /// A label policies select the container by: KEY=VALUE. Repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = Utf8)]
    pub labels: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct DetachArgs {
    /// Network name.
    #[arg(value_parser = Utf8)]
    pub network: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Return as soon as the container is cut off (the host side of its veth down); a
    /// background ctnet process then withdraws its published ports, deletes the veth and
    /// releases the address. A plain detach takes only a few milliseconds more, and when
    /// it returns everything is gone.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Network: a network name, `host`, `none` or `container:NAME`. Repeat for several
    /// networks. Default: the default bridge network.
    #[arg(long = "network", alias = "net", value_parser = Utf8)]
    pub networks: Vec<String>,
    /// Name of the network namespace (and of the container in listings); on networks
    /// with DNS also the name other containers resolve (then it must be a valid DNS name).
    #[arg(long, value_parser = Utf8)]
    pub name: Option<String>,
    /// Another name the container answers to in DNS, on every network of the run that
    /// has DNS (Docker applies `--network-alias` to the first network only). Repeatable.
    #[arg(long = "alias", value_name = "NAME", value_parser = Utf8)]
    pub aliases: Vec<String>,
    /// Static IPv4 address on the first network.
    #[arg(long, value_parser = Utf8)]
    pub ip: Option<String>,
    /// Static IPv6 address on the first network.
    #[arg(long, value_parser = Utf8)]
    pub ip6: Option<String>,
    /// Publish a container port: [HOST_IP:][HOST_PORT[-END]]:CONTAINER_PORT[-END][/tcp|/udp],
    /// or just CONTAINER_PORT for a free host port. Repeatable; on the first network.
    #[arg(short = 'p', long = "publish", value_name = "PORT", value_parser = Utf8)]
    pub publish: Vec<String>,
    /// A label policies select the container by: KEY=VALUE, on every network of the
    /// run. Repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = Utf8)]
    pub labels: Vec<String>,
    /// The command and its arguments, passed to it byte for byte.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

/// Parses a user-given address of one family for a flag.
pub fn parse_ip(flag: &str, text: &str, family: Family) -> ctnet_engine::Result<IpAddr> {
    ctnet_engine::model::parse_ip(flag, text, Some(family))
}

/// The static addresses of `--ip` and `--ip6`.
pub fn static_ips(ip: Option<&str>, ip6: Option<&str>) -> ctnet_engine::Result<Vec<IpAddr>> {
    let mut ips = Vec::new();
    if let Some(ip) = ip {
        ips.push(parse_ip("--ip", ip, Family::V4)?);
    }
    if let Some(ip6) = ip6 {
        ips.push(parse_ip("--ip6", ip6, Family::V6)?);
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Vec<OsString> {
        std::iter::once("ctnet")
            .chain(text.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    /// Every line the narrow parser takes, it reads exactly as the whole tree does.
    #[test]
    fn attach_and_detach_read_the_same_without_the_whole_tree() {
        for text in [
            "attach blue c1",
            "attach blue c1 -p 8080:80 -p 127.0.0.1:53:53/udp --ip 10.0.0.9 --ifname eth3",
            "attach --state-dir /tmp/s blue --netns-path /proc/1/ns/net --format json",
            "attach blue --pid 42 --mac 02:42:0a:00:00:09 --run-dir /tmp/r --netns-dir /tmp/n",
            "attach blue c1 --alias web --alias www.example",
            "detach blue c1",
            "detach --no-wait blue --pid 7 --state-dir=/x",
        ] {
            let narrow = parse_leaf(&line(text)).unwrap_or_else(|| panic!("{text}: refused"));
            let whole = Cli::try_parse_from(line(text)).unwrap();
            assert_eq!(format!("{narrow:?}"), format!("{whole:?}"), "{text}");
        }
    }

    /// What the whole tree refuses or answers with help, the narrow parser hands over
    /// to it rather than answering itself; other commands never take the narrow path.
    #[test]
    fn anything_else_goes_to_the_whole_tree() {
        for text in [
            "attach",
            "attach blue",
            "attach blue c1 --pid 3",
            "attach blue c1 --bogus",
            "attach blue c1 --alias",
            "attach --help",
            "detach -h",
            "detach blue c1 --version",
            "attach blue c1 extra",
        ] {
            assert!(parse_leaf(&line(text)).is_none(), "{text}: taken");
            assert!(
                Cli::try_parse_from(line(text)).is_err(),
                "{text}: the tree takes it"
            );
        }
        for text in [
            "network ls",
            "ls",
            "--state-dir /x attach blue c1",
            "run -- true",
        ] {
            assert!(parse_leaf(&line(text)).is_none(), "{text}: taken");
        }
    }
}
