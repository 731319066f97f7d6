/*
 * floor: the whole-process kernel floor of ctnet-bench.
 *
 * The in-process floor (src/systems/floor.rs) times the kernel calls alone, from a
 * process that is already running. But ctnet, netavark and the CNI plugins are each a
 * process the caller starts and reaps, so the honest floor of such an operation is a
 * process too: this minimal static program, making the same kernel calls as the
 * in-process floor (the same netlink messages, byte for byte, in the same round
 * trips), timed from fork+exec to reap. What a real system costs above it is its own.
 *
 *   floor attach NETNS_PATH HOST_VETH BRIDGE_IFINDEX ADDRESS PREFIX_LEN GATEWAY
 *   floor detach HOST_VETH
 *   floor detach-wait HOST_VETH
 *
 * attach: a veth pair, the peer made as "eth0" inside the namespace, the host side up
 * and a port of the bridge (one message); IPv6 off on the host side (sysctl); then,
 * from a socket opened inside the namespace, the index of eth0 and one pipelined round
 * trip: no IPv6 link-local on eth0, lo up, eth0 up, the address, the default route.
 * detach: delete the host side (the peer goes with it), and return once the kernel has
 * announced the link gone (RTM_DELLINK to RTNLGRP_LINK): the deleting send itself does
 * not return until an RCU barrier has passed (~20 ms), so a child process sends it and
 * sits that out, as ctnet's detach does (ctnet_kernel::reclaim). detach-wait sends it
 * itself and waits for the kernel's answer, as any simple program does. IPv4 only.
 * A failure prints "floor: <step>: <error>" and exits 1; success prints nothing.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

static _Alignas(4) char out[2048]; /* requests to send, one after another */
static _Alignas(4) char in[65536]; /* one reply datagram, as RtSocket receives them */
static size_t outlen;
static uint32_t seq; /* per socket, from 1, as RtSocket numbers its requests */

static void die(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("floor: ", stderr);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, ": %s\n", strerror(err));
	va_end(ap);
	exit(1);
}

/* Starts a message at the end of `out`: header, then the family header `fam`. */
static struct nlmsghdr *msg(uint16_t type, uint16_t flags, const void *fam, size_t len)
{
	struct nlmsghdr *h = (struct nlmsghdr *)(out + outlen);
	memset(h, 0, NLMSG_SPACE(len));
	h->nlmsg_len = NLMSG_SPACE(len);
	h->nlmsg_type = type;
	h->nlmsg_flags = flags;
	h->nlmsg_seq = ++seq;
	memcpy(NLMSG_DATA(h), fam, len);
	return h;
}

/* Appends an attribute (padded, as netlink-packet-route pads every one). */
static struct rtattr *attr(struct nlmsghdr *h, uint16_t type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)h + h->nlmsg_len);
	memset(a, 0, RTA_SPACE(len));
	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	h->nlmsg_len += RTA_SPACE(len);
	return a;
}

static void attr_u32(struct nlmsghdr *h, uint16_t type, uint32_t v) { attr(h, type, &v, 4); }
static void attr_str(struct nlmsghdr *h, uint16_t type, const char *s) { attr(h, type, s, strlen(s) + 1); }
static void nest_end(struct nlmsghdr *h, struct rtattr *a) { a->rta_len = (char *)h + h->nlmsg_len - (char *)a; }
static void msg_end(struct nlmsghdr *h) { outlen += h->nlmsg_len; }

/* As RtSocket::open: socket, bind (the kernel picks the port id), connect to the
 * kernel, strict checking. */
static int rtnl_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t salen = sizeof sa;
	int one = 1;
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		die(errno, "open rtnetlink socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
		die(errno, "bind rtnetlink socket");
	sa.nl_pid = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die(errno, "connect rtnetlink socket");
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one);
	seq = 0;
	return fd;
}

/* Sends everything in `out` in one send(2), as RtSocket::send_buf does. */
static void send_out(int fd, const char *what)
{
	if (send(fd, out, outlen, 0) < 0)
		die(errno, "%s: send netlink request", what);
	outlen = 0;
}

/* One datagram into `in`, as RtSocket::receive_datagram. */
static int receive(int fd, const char *what)
{
	ssize_t len = recv(fd, in, sizeof in, MSG_TRUNC);
	if (len < 0 || (size_t)len > sizeof in)
		die(len < 0 ? errno : EMSGSIZE, "%s: receive netlink reply", what);
	return (int)len;
}

/* Collects the acks of requests first..first+n-1, as RtSocket::execute_all: all of
 * them, then fails on the first refusal. */
static void acks(int fd, uint32_t first, uint32_t n, const char *const *what)
{
	uint32_t pending = n;
	int err = 0;
	const char *failed = NULL;
	while (pending > 0) {
		int len = receive(fd, what[0]);
		for (struct nlmsghdr *h = (struct nlmsghdr *)in; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			uint32_t i = h->nlmsg_seq - first;
			if (i >= n || h->nlmsg_type != NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(int)))
				continue; /* stale, or not an ack */
			pending--;
			int code = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (code && !failed) {
				failed = what[i];
				err = -code;
			}
		}
	}
	if (failed)
		die(err, "%s", failed);
}

/* Sends the one request in `out` (the socket's first) and waits for its ack. */
static void execute_one(int fd, const char *what)
{
	const char *ops[] = { what };
	send_out(fd, what);
	acks(fd, 1, 1, ops);
}

/* The index of link `name`, as link::index_of: RTM_GETLINK by name, no statistics,
 * no ack; only the index is read from the reply. (Not if_nametoindex, which is an
 * SIOCGIFINDEX ioctl on a fresh socket: the netlink query is what the floor pays.) */
static int index_of(int fd, const char *name)
{
	struct ifinfomsg ifi = { 0 };
	struct nlmsghdr *h = msg(RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
	uint32_t want = h->nlmsg_seq;
	attr_str(h, IFLA_IFNAME, name);
	attr_u32(h, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	msg_end(h);
	send_out(fd, "look up link eth0");
	for (;;) {
		int len = receive(fd, "look up link eth0");
		for (h = (struct nlmsghdr *)in; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != want)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR)
				die(-((struct nlmsgerr *)NLMSG_DATA(h))->error, "look up link %s", name);
			return ((struct ifinfomsg *)NLMSG_DATA(h))->ifi_index;
		}
	}
}

/* As sysctl::disable_ipv6: read the setting, write "1" only if it holds something
 * else; a missing file with no conf folder for the device means no IPv6 state. */
static void disable_ipv6(const char *ifname)
{
	char path[80], dir[64], buf[16];
	struct stat st;
	snprintf(dir, sizeof dir, "/proc/sys/net/ipv6/conf/%s", ifname);
	snprintf(path, sizeof path, "%s/disable_ipv6", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && stat(dir, &st) < 0)
			return;
		die(errno, "read sysctl net.ipv6.conf.%s.disable_ipv6", ifname);
	}
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n < 0)
		die(errno, "read sysctl net.ipv6.conf.%s.disable_ipv6", ifname);
	close(fd);
	buf[n] = 0;
	if (strcmp(buf, "1\n") == 0 || strcmp(buf, "1") == 0)
		return;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1", 1) != 1)
		die(errno, "set sysctl net.ipv6.conf.%s.disable_ipv6 = 1", ifname);
	close(fd);
}

static void check_name(const char *name)
{
	if (!*name || strlen(name) >= IFNAMSIZ)
		die(EINVAL, "bad interface name %s", name);
}

/* link::set_up_request: IFF_UP in flags and change mask, by index. */
static void set_up(uint32_t index)
{
	struct ifinfomsg ifi = { .ifi_index = (int)index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
	msg_end(msg(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, &ifi, sizeof ifi));
}

static void attach(char **argv)
{
	const char *path = argv[0], *host = argv[1];
	struct in_addr address, gateway;
	char *end;
	check_name(host);
	errno = 0;
	unsigned long master = strtoul(argv[2], &end, 10);
	if (errno || *end || master == 0 || master > UINT32_MAX)
		die(EINVAL, "bad bridge index %s", argv[2]);
	unsigned long prefix = strtoul(argv[4], &end, 10);
	if (errno || *end || !*argv[4] || prefix > 32)
		die(EINVAL, "bad prefix length %s", argv[4]);
	if (inet_pton(AF_INET, argv[3], &address) != 1 || inet_pton(AF_INET, argv[5], &gateway) != 1)
		die(EINVAL, "bad address %s or gateway %s", argv[3], argv[5]);

	/* As Netns::open: open it and check it is a network namespace. */
	int ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		die(errno, "open network namespace %s", path);
	if (ioctl(ns, NS_GET_NSTYPE) != CLONE_NEWNET)
		die(EINVAL, "%s is not a network namespace", path);

	/* The veth pair in one message (link::create_veth_request). */
	int fd = rtnl_open();
	struct ifinfomsg up = { .ifi_flags = IFF_UP, .ifi_change = IFF_UP }, none = { 0 };
	struct nlmsghdr *h = msg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &up, sizeof up);
	attr_str(h, IFLA_IFNAME, host);
	attr_u32(h, IFLA_NUM_TX_QUEUES, 1);
	attr_u32(h, IFLA_NUM_RX_QUEUES, 1);
	attr_u32(h, IFLA_MASTER, (uint32_t)master);
	struct rtattr *info = attr(h, IFLA_LINKINFO, NULL, 0);
	attr_str(h, IFLA_INFO_KIND, "veth");
	struct rtattr *data = attr(h, IFLA_INFO_DATA, NULL, 0);
	struct rtattr *peer = attr(h, VETH_INFO_PEER, &none, sizeof none);
	attr_str(h, IFLA_IFNAME, "eth0");
	attr_u32(h, IFLA_NET_NS_FD, (uint32_t)ns);
	attr_u32(h, IFLA_NUM_TX_QUEUES, 1);
	attr_u32(h, IFLA_NUM_RX_QUEUES, 1);
	nest_end(h, peer);
	nest_end(h, data);
	nest_end(h, info);
	msg_end(h);
	char what[64];
	snprintf(what, sizeof what, "create veth %s with peer eth0", host);
	execute_one(fd, what);

	disable_ipv6(host);

	/* Inside the namespace: its own socket, eth0's index, one pipelined round trip. */
	if (setns(ns, CLONE_NEWNET) < 0)
		die(errno, "enter network namespace %s", path);
	fd = rtnl_open();
	uint32_t eth0 = (uint32_t)index_of(fd, "eth0");
	uint32_t first = seq + 1;

	/* link::no_ipv6_link_local_request: IFLA_AF_SPEC / AF_INET6 / ADDR_GEN_MODE none. */
	h = msg(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, &none, sizeof none);
	attr_str(h, IFLA_IFNAME, "eth0");
	struct rtattr *spec = attr(h, IFLA_AF_SPEC, NULL, 0);
	struct rtattr *inet6 = attr(h, AF_INET6, NULL, 0);
	uint8_t mode = IN6_ADDR_GEN_MODE_NONE;
	attr(h, IFLA_INET6_ADDR_GEN_MODE, &mode, 1);
	nest_end(h, inet6);
	nest_end(h, spec);
	msg_end(h);

	set_up(1);
	set_up(eth0);

	/* addr::add_request: local, address and, below /31, broadcast. */
	struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = (uint8_t)prefix, .ifa_index = eth0 };
	h = msg(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
	attr(h, IFA_LOCAL, &address, 4);
	attr(h, IFA_ADDRESS, &address, 4);
	if (prefix < 31) {
		uint32_t host_bits = (uint32_t)((1ull << (32 - prefix)) - 1);
		struct in_addr brd = { htonl(ntohl(address.s_addr) | host_bits) };
		attr(h, IFA_BROADCAST, &brd, 4);
	}
	msg_end(h);

	/* route::add_default_request: main table, boot protocol, universe scope, unicast. */
	struct rtmsg rtm = { .rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_BOOT,
			     .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST };
	h = msg(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof rtm);
	attr(h, RTA_GATEWAY, &gateway, 4);
	msg_end(h);

	char add[64], route[64];
	snprintf(add, sizeof add, "add address %s/%lu to eth0", argv[3], prefix);
	snprintf(route, sizeof route, "add default route via %s", argv[5]);
	const char *ops[] = { "turn off IPv6 link-local addressing on eth0", "bring lo up", "bring eth0 up",
			      add, route };
	send_out(fd, ops[0]);
	acks(fd, first, 5, ops);
}

/* The RTM_DELLINK request for `host`, in `out`. */
static void dellink_request(const char *host)
{
	struct ifinfomsg none = { 0 };
	struct nlmsghdr *h = msg(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, &none, sizeof none);
	attr_str(h, IFLA_IFNAME, host);
	msg_end(h);
}

/* link::delete: RTM_DELLINK by name, waiting for the kernel's answer. */
static void detach_wait(const char *host)
{
	check_name(host);
	int fd = rtnl_open();
	dellink_request(host);
	char what[48];
	snprintf(what, sizeof what, "delete link %s", host);
	execute_one(fd, what);
}

/* True when the datagram in `in` announces link `host` deleted. */
static int announces_gone(int len, const char *host)
{
	for (struct nlmsghdr *h = (struct nlmsghdr *)in; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
		if (h->nlmsg_type != RTM_DELLINK)
			continue;
		struct ifinfomsg *ifi = NLMSG_DATA(h);
		int alen = h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi);
		for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
			if (a->rta_type == IFLA_IFNAME && strcmp(RTA_DATA(a), host) == 0)
				return 1;
	}
	return 0;
}

/* As reclaim::delete_links: listen for link announcements, let a child send the
 * delete (it closes the caller's pipes, so nobody waits for it), return once the link
 * is announced gone, or fail with the child's error if the kernel refused. */
static void detach(const char *host)
{
	check_name(host);
	int watch = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	if (watch < 0 || bind(watch, (struct sockaddr *)&sa, sizeof sa) < 0)
		die(errno, "listen for link announcements");
	int status[2];
	if (pipe2(status, O_CLOEXEC) < 0)
		die(errno, "make a pipe");
	pid_t child = fork();
	if (child < 0)
		die(errno, "fork");
	if (child == 0) {
		int null = open("/dev/null", O_RDWR);
		for (int std = 0; std <= 2; std++)
			dup2(null, std);
		int fd = rtnl_open();
		dellink_request(host);
		int err = send(fd, out, outlen, 0) < 0 ? errno : 0;
		if (!err) {
			int len = receive(fd, "delete");
			struct nlmsghdr *h = (struct nlmsghdr *)in;
			if (NLMSG_OK(h, len) && h->nlmsg_type == NLMSG_ERROR)
				err = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
		}
		if (write(status[1], &err, sizeof err) < 0)
			_exit(1);
		_exit(0);
	}
	close(status[1]);
	struct pollfd fds[2] = { { .fd = watch, .events = POLLIN }, { .fd = status[0], .events = POLLIN } };
	for (;;) {
		if (poll(fds, 2, 10000) <= 0)
			die(errno ? errno : ETIMEDOUT, "wait for link %s to go", host);
		if (fds[0].revents & POLLIN && announces_gone(receive(watch, "link announcement"), host))
			return;
		if (fds[1].revents) {
			int err = 0;
			if (read(status[0], &err, sizeof err) != sizeof err)
				err = EPIPE;
			if (err)
				die(err, "delete link %s", host);
			fds[1].fd = -1; /* answered before the announcement was read: keep reading */
		}
	}
}

int main(int argc, char **argv)
{
	if (argc == 8 && strcmp(argv[1], "attach") == 0)
		attach(argv + 2);
	else if (argc == 3 && strcmp(argv[1], "detach") == 0)
		detach(argv[2]);
	else if (argc == 3 && strcmp(argv[1], "detach-wait") == 0)
		detach_wait(argv[2]);
	else {
		fputs("floor: usage: floor attach NETNS_PATH HOST_VETH BRIDGE_IFINDEX ADDRESS PREFIX_LEN GATEWAY\n"
		      "              floor detach HOST_VETH\n"
		      "              floor detach-wait HOST_VETH\n", stderr);
		return 1;
	}
	return 0;
}
