//! The CNI wire format (spec 1.0.0 / 1.1.0): what arrives on stdin, what goes to stdout.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Spec versions this plugin speaks; results are written in the caller's version.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// Error codes from the spec ("Well-known Error Codes").
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENVIRONMENT: u32 = 4;
    /// I/O failure.
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content.
    pub const DECODING_FAILURE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin is not available.
    pub const NOT_AVAILABLE: u32 = 50;
    /// Plugin-specific (100 and up): no address left in the subnet.
    pub const ADDRESS_EXHAUSTED: u32 = 100;
    /// Plugin-specific: a requested address or port is taken.
    pub const TAKEN: u32 = 101;
}

/// The network configuration on stdin (one plugin's entry of a conflist, with `name`
/// and `cniVersion` filled in by the runtime).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    /// Spec version of this config and of the result to write.
    pub cni_version: String,
    /// Network name: the ctnet network attached to.
    pub name: String,
    /// Plugin type; "ctnet".
    #[serde(rename = "type")]
    pub kind: String,
    /// Bridge device (made if the network does not exist yet).
    #[serde(default)]
    pub bridge: Option<String>,
    /// Subnet in CIDR form, if not given through `ipam`.
    #[serde(default)]
    pub subnet: Option<String>,
    /// Gateway address.
    #[serde(default)]
    pub gateway: Option<String>,
    /// MTU of the bridge and veths.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// No masquerade, nothing in or out of the bridge.
    #[serde(default)]
    pub internal: bool,
    /// ctnet's key: the network (made on first use) has ctnet's container-name DNS
    /// server on its gateways, and the result names them in `dns.nameservers`.
    #[serde(default, rename = "ctnetDns")]
    pub ctnet_dns: bool,
    /// The spec's DNS settings for the container (`nameservers`, `domain`, `search`,
    /// `options`), passed into the result as the reference plugins do.
    #[serde(default)]
    pub dns: Option<Value>,
    /// IPAM: ctnet's own when absent or `{"type": "ctnet"}`; `subnet` may be set here.
    #[serde(default)]
    pub ipam: Option<Ipam>,
    /// Dynamic data from the runtime for capabilities.
    #[serde(default)]
    pub runtime_config: RuntimeConfig,
    /// The `args` convention (`args.cni.ips`: requested addresses, as host-local reads).
    #[serde(default)]
    pub args: Option<Value>,
    /// The previous plugin's result in a chain.
    #[serde(default)]
    pub prev_result: Option<Value>,
    /// GC: the attachments that must stay.
    #[serde(default, rename = "cni.dev/valid-attachments")]
    pub valid_attachments: Option<Vec<Attachment>>,
}

/// The `ipam` section.
#[derive(Debug, Default, Deserialize)]
pub struct Ipam {
    /// IPAM plugin type.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Subnet, in host-local's simple form.
    #[serde(default)]
    pub subnet: Option<String>,
    /// Gateway, in host-local's simple form.
    #[serde(default)]
    pub gateway: Option<String>,
    /// host-local's `ranges`: one list per address the container gets (one per family
    /// here); ctnet uses the first entry of each list.
    #[serde(default)]
    pub ranges: Vec<Vec<RangeEntry>>,
}

/// One entry of `ipam.ranges`.
#[derive(Debug, Default, Deserialize)]
pub struct RangeEntry {
    /// Subnet in CIDR form.
    pub subnet: String,
    /// Gateway.
    #[serde(default)]
    pub gateway: Option<String>,
}

/// `runtimeConfig`: the capabilities this plugin declares.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    /// `portMappings` capability.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// `ips` capability: requested addresses in CIDR form.
    #[serde(default)]
    pub ips: Vec<String>,
    /// `mac` capability.
    #[serde(default)]
    pub mac: Option<String>,
    /// `aliases` capability (Podman's CNI backend: network name to the container's
    /// `--network-alias` names, as the dnsname plugin reads it).
    #[serde(default)]
    pub aliases: BTreeMap<String, Vec<String>>,
    /// Every other entry: capabilities ctnet does not do (`bandwidth`, `dns`, `ipRanges`,
    /// ...), refused by ADD when they ask for something.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One entry of `portMappings`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
    /// "tcp" or "udp".
    #[serde(default = "tcp")]
    pub protocol: String,
    /// Host address; every address when empty.
    #[serde(default, rename = "hostIP")]
    pub host_ip: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

/// A container attachment named in GC's valid list.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// Container id.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// Interface name inside the container.
    pub ifname: String,
}

/// An ADD result.
#[derive(Debug, Serialize)]
pub struct CniResult {
    /// The caller's spec version.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Interfaces, the previous plugins' first.
    pub interfaces: Vec<Value>,
    /// Addresses.
    pub ips: Vec<Value>,
    /// Routes.
    pub routes: Vec<Value>,
    /// DNS settings: the configuration's (or the previous plugin's), with the gateways of
    /// a network with ctnet's DNS first among the nameservers.
    pub dns: Value,
}

/// An error, as the spec wants it on stdout.
#[derive(Debug, Serialize)]
pub struct CniError {
    /// The caller's spec version (or the newest one).
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Error code.
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Longer explanation, with the fix.
    pub details: String,
}

/// An interface entry of a result.
pub fn interface(name: &str, mac: &str, sandbox: Option<&str>) -> Value {
    let mut v = serde_json::json!({ "name": name, "mac": mac });
    if let Some(sandbox) = sandbox {
        v["sandbox"] = Value::String(sandbox.into());
    }
    v
}

/// An address entry of a result.
pub fn ip(address: IpAddr, prefix: u8, gateway: IpAddr, interface: usize) -> Value {
    serde_json::json!({
        "address": format!("{address}/{prefix}"),
        "gateway": gateway.to_string(),
        "interface": interface,
    })
}
