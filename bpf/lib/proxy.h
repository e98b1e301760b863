/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Steering traffic that an L7 policy covers into the node's proxies with bpf_sk_assign, keeping its original
 * destination (EBPF-NOTES section 4). Only a tc *ingress* hook can assign a socket: the host side of an endpoint's
 * veth for what the pod sends, and the node's own devices for what arrives from other nodes. */
#ifndef MESH_PROXY_H
#define MESH_PROXY_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

/* Which proxy an allow sends its traffic through. Mirrors ProxyKind. */
enum proxy_kind {
	PROXY_NONE = 0,
	PROXY_HTTP = 1,
	PROXY_DNS  = 2,
};

/* Slots of mesh_proxy: the sockets new redirected traffic goes to. Mirrors ProxySlot. */
enum proxy_slot {
	PROXY_SLOT_HTTP    = 0,   /* TCP listener of the HTTP proxy */
	PROXY_SLOT_DNS_UDP = 1,   /* UDP socket of the DNS proxy */
	PROXY_SLOT_DNS_TCP = 2,   /* TCP listener of the DNS proxy */
	PROXY_SLOTS        = 4,
};

/* skb->mark bits the node's routing and the proxies agree on (as Cilium's magic marks). Mirrors ProxyMarks. */
#define MARK_MAGIC_MASK 0x0f00
/* Set here on a packet assigned to a proxy socket: the node namespace routes it locally (ip rule fwmark
 * 0x200/0xf00 lookup 2004, local 0.0.0.0/0 dev lo in table 2004), since its destination is not the node's own. */
#define MARK_TO_PROXY   0x0200
/* SO_MARK of every socket a proxy opens towards the original destination: the proxy has judged this traffic. A pod
 * cannot forge it: the kernel clears skb->mark when a packet crosses a veth into another network namespace, and
 * SO_MARK needs CAP_NET_ADMIN in the node's. */
#define MARK_FROM_PROXY 0x0a00

/* The proxies' sockets, put here by the agent. A socket leaves the map when it closes, so a proxy that is not
 * running has none: redirected traffic then finds no socket and is dropped (fail closed). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, PROXY_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_proxy SEC(".maps");

static __always_inline int from_proxy(const struct __sk_buff *skb)
{
	return (skb->mark & MARK_MAGIC_MASK) == MARK_FROM_PROXY;
}

/* Assigns @sk (released here) and marks the packet for local delivery. Returns 0, or <0 when the kernel refused. */
static __always_inline int assign(struct __sk_buff *skb, struct bpf_sock *sk)
{
	long err = bpf_sk_assign(skb, sk, 0);

	bpf_sk_release(sk);
	if (err)
		return -1;
	skb->mark = (skb->mark & ~MARK_MAGIC_MASK) | MARK_TO_PROXY;
	return 0;
}

static __always_inline struct bpf_sock_tuple tuple4(__be32 saddr, __be32 daddr, __be16 sport, __be16 dport)
{
	struct bpf_sock_tuple t = {};

	t.ipv4.saddr = saddr;
	t.ipv4.daddr = daddr;
	t.ipv4.sport = sport;
	t.ipv4.dport = dport;
	return t;
}

/**
 * assign_connected() - hand a packet to the connected socket of its own tuple in the node namespace, if any
 * @skb: the packet
 * @tuple: its addresses and ports, as the packet carries them
 * @protocol: IPPROTO_TCP or IPPROTO_UDP
 *
 * A TCP socket in any state but LISTEN and TIME_WAIT (an accepted proxy connection, a request socket, a proxy's
 * upstream connection), or a connected UDP socket (a proxy's upstream query). A listener or an unconnected UDP
 * socket is no answer: it would take traffic addressed to a pod just because it is bound to a wildcard address on
 * that port. The kernel would deliver to the same socket anyway when the packet is addressed to the node itself.
 *
 * Returns 1 when assigned, 0 when there is no such socket or the kernel refused it (the packet goes on as it came).
 */
static __always_inline int assign_connected(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u8 protocol)
{
	struct bpf_sock *sk;

	if (protocol == IPPROTO_TCP) {
		sk = bpf_skc_lookup_tcp(skb, tuple, sizeof(tuple->ipv4), BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return 0;
		if (sk->state == BPF_TCP_LISTEN || sk->state == BPF_TCP_TIME_WAIT) {
			bpf_sk_release(sk);
			return 0;
		}
	} else if (protocol == IPPROTO_UDP) {
		sk = bpf_sk_lookup_udp(skb, tuple, sizeof(tuple->ipv4), BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return 0;
		if (!sk->dst_port) {
			bpf_sk_release(sk);
			return 0;
		}
	} else {
		return 0;
	}
	return assign(skb, sk) ? 0 : 1;
}

/**
 * proxy_assign() - send a packet of redirected traffic to the node's proxy
 * @skb: the packet
 * @tuple: its addresses and ports
 * @protocol: IPPROTO_TCP or IPPROTO_UDP
 * @kind: enum proxy_kind of the entry that redirects it
 *
 * A packet of a connection the proxy already holds goes to that connection's socket; anything else (a SYN, a
 * datagram) to the proxy's socket in mesh_proxy. A mid-stream TCP packet the proxy does not know (it restarted)
 * reaches its listener, which answers with a reset: the client learns at once that the connection is gone.
 *
 * Returns 0 when the proxy has the packet, -1 when no proxy socket takes it: the caller drops it (fail closed).
 */
static __always_inline int proxy_assign(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u8 protocol, __u8 kind)
{
	struct bpf_sock *sk;
	__u32 slot;

	if (kind == PROXY_HTTP && protocol == IPPROTO_TCP)
		slot = PROXY_SLOT_HTTP;
	else if (kind == PROXY_DNS && protocol == IPPROTO_UDP)
		slot = PROXY_SLOT_DNS_UDP;
	else if (kind == PROXY_DNS && protocol == IPPROTO_TCP)
		slot = PROXY_SLOT_DNS_TCP;
	else
		return -1;

	if (protocol == IPPROTO_TCP && assign_connected(skb, tuple, protocol))
		return 0;
	sk = bpf_map_lookup_elem(&mesh_proxy, &slot);
	if (!sk)
		return -1;
	return assign(skb, sk);
}

#endif
