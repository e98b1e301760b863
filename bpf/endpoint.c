// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Policy enforcement on the host side of an endpoint's veth. Attached twice per endpoint:
 *   tc ingress of the host-side veth = packets leaving the pod  = the endpoint's EGRESS  (mesh_from_endpoint)
 *   tc egress  of the host-side veth = packets entering the pod = the endpoint's INGRESS (mesh_to_endpoint)
 * and once on each of the node's own devices (tc ingress, mesh_from_network), where traffic from other nodes that a
 * local endpoint's L7 ingress policy covers is handed to the node's proxy.
 *
 * L7 policy: an allow entry that names a proxy sends its traffic through the node's proxy (lib/proxy.h). Only tc
 * ingress can hand a packet to a socket, so the decision is taken where a packet enters the node: on the source
 * pod's veth for its own egress rules and for the ingress rules of a destination identity this node holds, on the
 * node's devices for traffic from elsewhere. The proxy judges the request and opens its own connection to the
 * original destination, from the pod's address and marked MARK_FROM_PROXY; the destination's ingress program lets
 * such a connection through an entry that names a proxy, and drops one that bypassed the proxy (REASON_NO_PROXY).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/drop_reasons.h"
#include "lib/maps.h"
#include "lib/endpoints.h"
#include "lib/ipcache.h"
#include "lib/policy.h"
#include "lib/conntrack.h"
#include "lib/flow.h"
#include "lib/proxy.h"

#define IP_FRAG_OFFSET 0x1fff
#define IDENTITY_INIT 5   /* Cilium's reserved:init: an endpoint whose identity is not known yet */

struct l4_ports {
	__be16 sport;   /* network byte order */
	__be16 dport;   /* network byte order */
};

static __always_inline int has_ports(__u8 protocol)
{
	return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_SCTP;
}

static __always_inline struct endpoint_info *endpoint_lookup(__u32 gen, __u32 ifindex)
{
	struct endpoint_key key = { .gen = gen, .ifindex = ifindex };

	return bpf_map_lookup_elem(&mesh_endpoints, &key);
}

/**
 * load_ports() - the L4 ports of a packet with ports
 * @skb: the packet
 * @ip: its IPv4 header, inside the packet's linear data
 * @ports: receives the ports, network byte order
 *
 * Reads them in place when the linear data holds them (the common case), else copies them out.
 * Returns 0, or -1 when the packet is too short to hold them.
 */
static __always_inline int load_ports(struct __sk_buff *skb, struct iphdr *ip, struct l4_ports *ports)
{
	void *data_end = (void *)(long)skb->data_end;
	__u32 offset = ip->ihl * 4;
	struct l4_ports *l4 = (void *)ip + offset;

	if ((void *)(l4 + 1) <= data_end) {
		*ports = *l4;
		return 0;
	}
	return bpf_skb_load_bytes(skb, sizeof(struct ethhdr) + offset, ports, sizeof(*ports)) ? -1 : 0;
}

/**
 * handle_ipv4() - judge one packet of an endpoint
 * @skb: the packet, on the host-side veth of the endpoint
 * @dir: enum traffic_direction from the endpoint's point of view
 *
 * Returns TC_ACT_OK or TC_ACT_SHOT. Packets on interfaces that are not endpoints of the active generation, and
 * non-IPv4 packets (ARP; IPv6 follows with the same map layout), pass untouched, unless the interface is held
 * (mesh_held: a pod attached before its endpoint is enforced): then every packet is dropped, and an IPv4 one is
 * reported as NOT_ENFORCED with the pod's side as reserved:init.
 *
 * The steady state of a connection costs one conntrack lookup: replies, and forward packets whose connection
 * the active version already allowed, pass without looking at the endpoint, the ipcache or the policy. The
 * endpoint is looked up only when something has to be judged. A forward entry stamped with the active version
 * was judged on an endpoint of that version; a reply entry was made on an endpoint, and a reply passes whether
 * or not its interface is still one, and is counted as forwarded either way.
 *
 * A packet the endpoint's enforced policy forwards is judged again by the identity's audit layer when it has one
 * (policy_audit): what the audit layer would drop passes as AUDIT and is tracked like any allowed connection, so
 * like a forwarded one it is reported once, by its first packet, and the rest passes on conntrack (a new version
 * judges its next forward packet again, and counts it, without a second event). Conntrack keeps the enforced
 * policy's rule, the one that let the connection pass.
 */
static __always_inline int handle_ipv4(struct __sk_buff *skb, __u8 dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct endpoint_info *ep;
	struct l4_ports ports = {};
	struct policy_result r;
	struct flow_event ev = {};
	struct ct_key ct = {};
	struct ct_entry *ce;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct bpf_sock_tuple tuple;
	struct policy_result dest;
	__u32 gen, peer, enforced, audit_enforced, allowed_rule;
	__u64 version;
	__u8 proxy = PROXY_NONE, replies_to_proxy;

	if (gen_load(&gen, &version))
		return TC_ACT_OK;

	eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return endpoint_held(skb->ifindex) && !endpoint_lookup(gen, skb->ifindex) ? TC_ACT_SHOT : TC_ACT_OK;
	ip = (void *)(eth + 1);
	/* Claims IPv4 but is shorter than its header: an endpoint never gets it unjudged. */
	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		return endpoint_lookup(gen, skb->ifindex) || endpoint_held(skb->ifindex) ? TC_ACT_SHOT : TC_ACT_OK;

	/* Later fragments carry no L4 header: they are judged with port 0, like protocols without ports. */
	if (has_ports(ip->protocol) && !(ip->frag_off & bpf_htons(IP_FRAG_OFFSET))) {
		if (load_ports(skb, ip, &ports))
			return endpoint_lookup(gen, skb->ifindex) || endpoint_held(skb->ifindex) ? TC_ACT_SHOT : TC_ACT_OK;
	}

	ct.saddr = ip->saddr;
	ct.daddr = ip->daddr;
	ct.sport = ports.sport;
	ct.dport = ports.dport;
	ct.protocol = ip->protocol;
	ct.direction = dir;
	ct.ifindex = skb->ifindex;

	tuple = tuple4(ip->saddr, ip->daddr, ports.sport, ports.dport);
	/* A new version has another number, so it re-judges every open connection. */
	ce = bpf_map_lookup_elem(&mesh_ct, &ct);
	if (ce && ce->kind == CT_REPLY) {
		/* A reply to a connection a proxy opened belongs to the proxy's socket, not to the pod whose address the
		 * proxy used; with that socket gone it has nowhere to go. */
		if (ce->proxy && dir == DIR_EGRESS && !assign_connected(skb, &tuple, ip->protocol)) {
			flow_count(VERDICT_DROPPED, skb->len);
			return TC_ACT_SHOT;
		}
		flow_count(VERDICT_FORWARDED, skb->len);
		return TC_ACT_OK;
	}
	/* A connection through a proxy goes on to the proxy's socket; when no proxy takes it, it is judged below,
	 * which drops and reports it. */
	if (ce && ce->allowed_version == version &&
	    (!ce->proxy || dir != DIR_EGRESS || !proxy_assign(skb, &tuple, ip->protocol, ce->proxy))) {
		flow_count(VERDICT_FORWARDED, skb->len);
		return TC_ACT_OK;
	}

	ep = endpoint_lookup(gen, skb->ifindex);
	if (!ep && endpoint_held(skb->ifindex)) {
		peer = ipcache_identity4(gen, dir == DIR_EGRESS ? ip->daddr : ip->saddr);
		r.verdict = VERDICT_DROPPED;
		r.reason = REASON_NOT_ENFORCED;
		r.rule_index = RULE_NONE;
		ev.src_identity = dir == DIR_EGRESS ? IDENTITY_INIT : peer;
		ev.dst_identity = dir == DIR_EGRESS ? peer : IDENTITY_INIT;
		goto report;
	}
	if (!ep)
		return TC_ACT_OK;
	if (ct_is_reply(&ct)) {
		flow_count(VERDICT_FORWARDED, skb->len);
		return TC_ACT_OK;
	}

	peer = ipcache_identity4(gen, dir == DIR_EGRESS ? ip->daddr : ip->saddr);
	enforced = ep->flags & (dir == DIR_EGRESS ? ENDPOINT_EGRESS_ENFORCED : ENDPOINT_INGRESS_ENFORCED);
	r = policy_decide(gen, ep->identity, peer, dir, ip->protocol, ports.dport, enforced != 0);
	allowed_rule = r.rule_index;
	if (r.verdict == VERDICT_FORWARDED && (ep->flags & ENDPOINT_AUDITED)) {
		audit_enforced = ep->flags & (dir == DIR_EGRESS ? ENDPOINT_AUDIT_EGRESS_ENFORCED : ENDPOINT_AUDIT_INGRESS_ENFORCED);
		r = policy_audit(r, gen, ep->identity, peer, dir, ip->protocol, ports.dport, audit_enforced != 0);
	}

	if (r.verdict != VERDICT_DROPPED) {
		if (dir == DIR_EGRESS) {
			/* The pod's own egress rules, else the ingress rules of a destination identity this node holds
			 * (a pod on this node, or one elsewhere with the identity of a pod here: judged by the same rules). */
			proxy = r.proxy;
			if (!proxy) {
				dest = policy_decide(gen, peer, ep->identity, DIR_INGRESS, ip->protocol, ports.dport, 0);
				if (dest.verdict == VERDICT_FORWARDED)
					proxy = dest.proxy;
			}
			if (proxy && proxy_assign(skb, &tuple, ip->protocol, proxy)) {
				r.verdict = VERDICT_DROPPED;
				r.reason = REASON_NO_PROXY;
			}
		} else if (r.proxy && !from_proxy(skb)) {
			/* The allow holds only for what the proxy judged, and this packet did not come through it. */
			r.verdict = VERDICT_DROPPED;
			r.reason = REASON_NO_PROXY;
		}
	}

	ev.src_identity = dir == DIR_EGRESS ? ep->identity : peer;
	ev.dst_identity = dir == DIR_EGRESS ? peer : ep->identity;
report:
	ev.version = version;
	ev.ifindex = skb->ifindex;
	ev.saddr = ip->saddr;
	ev.daddr = ip->daddr;
	ev.rule_index = r.rule_index;
	ev.sport = ports.sport;
	ev.dport = ports.dport;
	ev.protocol = ip->protocol;
	ev.direction = dir;
	ev.verdict = r.verdict;
	ev.reason = r.reason;

	flow_count(r.verdict, skb->len);
	if (r.verdict == VERDICT_DROPPED) {
		flow_emit(&ev);
		return TC_ACT_SHOT;
	}
	replies_to_proxy = dir == DIR_INGRESS && from_proxy(skb);
	if (ct_allow(&ct, ce, version, allowed_rule, proxy, replies_to_proxy))
		flow_emit(&ev);
	return TC_ACT_OK;
}

SEC("tc")
int mesh_from_endpoint(struct __sk_buff *skb)
{
	return handle_ipv4(skb, DIR_EGRESS);
}

SEC("tc")
int mesh_to_endpoint(struct __sk_buff *skb)
{
	return handle_ipv4(skb, DIR_INGRESS);
}

/**
 * mesh_from_network() - tc ingress of the node's own devices: traffic from other nodes and the world
 * @skb: the packet
 *
 * Judges nothing itself (the destination endpoint's mesh_to_endpoint does), except where a proxy must step in:
 *   - a packet of a connection a proxy holds (an accepted redirected connection, or the reply to one the proxy
 *     opened from a pod's address) goes to the proxy's socket;
 *   - a new connection or datagram that the destination identity's ingress entry sends through a proxy goes to the
 *     proxy, or is dropped with REASON_NO_PROXY when none runs.
 */
SEC("tc")
int mesh_from_network(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct l4_ports ports = {};
	struct flow_event ev = {};
	struct bpf_sock_tuple tuple;
	struct policy_result r;
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 gen, src, dst;
	__u64 version;

	if (gen_load(&gen, &version))
		return TC_ACT_OK;
	eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		return TC_ACT_OK;
	if ((ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP) || (ip->frag_off & bpf_htons(IP_FRAG_OFFSET)))
		return TC_ACT_OK;
	if (load_ports(skb, ip, &ports))
		return TC_ACT_OK;

	tuple = tuple4(ip->saddr, ip->daddr, ports.sport, ports.dport);
	if (assign_connected(skb, &tuple, ip->protocol))
		return TC_ACT_OK;

	src = ipcache_identity4(gen, ip->saddr);
	dst = ipcache_identity4(gen, ip->daddr);
	r = policy_decide(gen, dst, src, DIR_INGRESS, ip->protocol, ports.dport, 0);
	if (r.verdict != VERDICT_FORWARDED || !r.proxy || !proxy_assign(skb, &tuple, ip->protocol, r.proxy))
		return TC_ACT_OK;

	ev.version = version;
	ev.ifindex = skb->ifindex;
	ev.saddr = ip->saddr;
	ev.daddr = ip->daddr;
	ev.src_identity = src;
	ev.dst_identity = dst;
	ev.rule_index = r.rule_index;
	ev.sport = ports.sport;
	ev.dport = ports.dport;
	ev.protocol = ip->protocol;
	ev.direction = DIR_INGRESS;
	ev.verdict = VERDICT_DROPPED;
	ev.reason = REASON_NO_PROXY;
	flow_count(VERDICT_DROPPED, skb->len);
	flow_emit(&ev);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
