//! One endpoint checked against the kernel (CNI's CHECK): is everything the store says
//! ctnet made for it still there?

use std::net::IpAddr;

use ctnet_kernel::{addr, link, route, RtSocket};

use crate::driver::bridge::port_rules;
use crate::driver::routes;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ContainerRef, Endpoint, NetworkName, RowState};
use crate::ops::endpoint::container_object;
use crate::state;

impl Engine {
    /// Checks an endpoint against the kernel (CNI's CHECK): the host side is a port of the
    /// network's bridge; inside the container the interface is up with its address, and
    /// the default route goes via the gateway if this endpoint set it; ctnet's firewall
    /// table is in place and maps each published port to this container. The error names
    /// what is missing.
    pub fn check_endpoint(
        &mut self,
        network: &NetworkName,
        container: &ContainerRef,
    ) -> Result<Endpoint> {
        // Only reads: a CHECK must not create the default network.
        let net = self.find_network(network)?.ok_or_else(|| {
            Error::not_found(
                format!("network {:?}", network.as_str()),
                "attach the container first (CNI: ADD)",
            )
        })?;
        let netns = self.open_container(container)?;
        let inode = netns
            .inode()
            .map_err(|e| Error::kernel(container_object(&container.label()), e))?;
        let ep = state::endpoints_in_netns(self.store.read(), inode)?
            .into_iter()
            // A runtime's container is its id: a row another container left with this
            // inode (its namespace gone, the number reused) is not this one's.
            .find(|e| {
                &e.network == network
                    && e.state == RowState::Ready
                    && (!matches!(container, ContainerRef::Runtime { .. })
                        || e.container == container.label())
            })
            .ok_or_else(|| {
                Error::not_found(
                    container_object(&container.label()),
                    format!("attach it to network {:?} first", network.as_str()),
                )
            })?;
        let object = format!(
            "{} on network {:?}",
            container_object(&ep.container),
            network.as_str()
        );
        let broken = |what: String| {
            Error::new(
                ErrorKind::NotFound,
                &object,
                what,
                "detach and attach it again (CNI: DEL, then ADD)",
            )
        };
        let host = self.host()?;
        let kernel = |e| Error::kernel(&object, e);
        let bridge = link::index_of(host, net.bridge.as_str()).map_err(kernel)?;
        let host_side = link::get(host, ep.host_ifname.as_str()).map_err(kernel)?;
        if host_side.as_ref().and_then(|l| l.master) != bridge || bridge.is_none() {
            return Err(broken(format!(
                "host side {} is missing or not a port of bridge {}",
                ep.host_ifname, net.bridge
            )));
        }
        let ifname = ep.ifname.clone();
        let ips = ep.ips.clone();
        let gateways: Vec<(IpAddr, u32)> = routes::installed(&net, &ep);
        let inside = netns
            .run(move || {
                let mut sock = RtSocket::open()?;
                let Some(link) = link::get(&mut sock, ifname.as_str())? else {
                    return Ok(Some(format!("interface {ifname} is missing")));
                };
                if !link.up {
                    return Ok(Some(format!("interface {ifname} is down")));
                }
                let held = addr::list_all(&mut sock)?;
                if let Some(ip) = ips.iter().find(|ip| {
                    !held
                        .iter()
                        .any(|a| a.index == link.index && a.address == **ip)
                }) {
                    return Ok(Some(format!("interface {ifname} lacks address {ip}")));
                }
                let listed = route::list_all(&mut sock)?;
                if let Some((gateway, metric)) = gateways
                    .iter()
                    .find(|(g, m)| !routes::is_present(&listed, *g, *m, Some(link.index)))
                {
                    return Ok(Some(format!(
                        "the default route via {gateway} metric {metric} is missing"
                    )));
                }
                Ok(None)
            })
            .map_err(kernel)?;
        if let Some(what) = inside {
            return Err(broken(what));
        }
        if !self.firewall.is_current().map_err(kernel)? {
            return Err(broken("ctnet's nftables table is missing or stale".into()));
        }
        if let Some(port) = self
            .firewall
            .missing_ports(&port_rules(&ep))
            .map_err(kernel)?
            .first()
        {
            return Err(broken(format!(
                "published port {} is missing from ctnet's nftables maps",
                port.port
            )));
        }
        Ok(ep)
    }
}
