/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking: replies of allowed connections pass without policy; forward packets of an established
 * connection reuse the verdict of the version that last judged them while that version is active. */
#ifndef MESH_CONNTRACK_H
#define MESH_CONNTRACK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* One entry per (tuple, interface, direction). An allowed connection owns two: the forward entry, keyed by the
 * tuple of its first packet, and the reply entry, keyed by the reversed tuple in the opposite direction. So one
 * lookup with a packet's own tuple tells a reply from an established forward packet from a new one. A forward
 * entry keeps the number of the version that allowed it, so the first forward packet under any other version is
 * judged by policy again, and removing an allow cuts new packets of an existing connection. Not versioned: connections outlive versions. IPv6 gets its own map with 16-byte
 * addresses (mesh_ct6), so IPv4 entries stay small. Mirrors CtKeyNative. */
struct ct_key {
	__be32 saddr;       /* network byte order */
	__be32 daddr;       /* network byte order */
	__be16 sport;       /* network byte order, 0 for protocols without ports */
	__be16 dport;       /* network byte order, 0 for protocols without ports */
	__u8   protocol;
	__u8   direction;   /* enum traffic_direction of the packets this entry describes */
	__u16  pad;
	__u32  ifindex;
};

enum ct_kind {
	CT_FORWARD = 0,     /* packets of this key open the connection: judged by policy */
	CT_REPLY   = 1,     /* packets of this key answer an allowed connection: pass */
};

/* Mirrors CtEntryNative. Nothing is written while a connection is in its steady state: which entries go when
 * the map is full is the LRU's business (every lookup counts as a use), not a timestamp's. */
struct ct_entry {
	__u64 created_ns;       /* bpf_ktime_get_ns */
	__u64 judged_ns;        /* bpf_ktime_get_ns when a version last allowed a forward packet (creation for replies) */
	__u64 allowed_version;  /* CT_FORWARD: the snapshot version that allowed it */
	__u32 rule_index;       /* CT_FORWARD: the rule that allowed it (RULE_NONE: no entry decided) */
	__u8  kind;             /* enum ct_kind */
	__u8  proxy;            /* CT_FORWARD: enum proxy_kind the connection goes through; CT_REPLY: nonzero when the
				 * forward packets came from a proxy, so the replies belong to the proxy's socket */
	__u8  pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);    /* two entries per connection */
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_ct SEC(".maps");

static __always_inline void ct_reverse(const struct ct_key *fwd, struct ct_key *rev)
{
	rev->saddr = fwd->daddr;
	rev->daddr = fwd->saddr;
	rev->sport = fwd->dport;
	rev->dport = fwd->sport;
	rev->protocol = fwd->protocol;
	rev->direction = fwd->direction ^ 1;
	rev->pad = 0;
	rev->ifindex = fwd->ifindex;
}

/**
 * ct_is_reply() - whether a packet answers a connection allowed in the other direction
 * @fwd: the packet's own tuple, interface and direction
 *
 * The slow path, for packets whose own key has no reply entry (evicted, or a forward entry of the same tuple
 * came first): returns 1 when the reversed tuple has a forward entry on the same interface in the opposite
 * direction, as the first packet of every allowed connection leaves.
 */
static __always_inline int ct_is_reply(const struct ct_key *fwd)
{
	struct ct_entry *e;
	struct ct_key rev;

	ct_reverse(fwd, &rev);
	e = bpf_map_lookup_elem(&mesh_ct, &rev);
	/* The reversed key of a forward packet is usually its own connection's reply entry: that answers nothing. */
	return e && e->kind == CT_FORWARD;
}

/**
 * ct_allow() - record that a version's policy allowed a forward packet
 * @fwd: the packet's own tuple, interface and direction
 * @e: the packet's forward entry when it has one, or NULL
 * @version: the version that judged the packet
 * @rule_index: the rule that allowed it
 * @proxy: enum proxy_kind the connection goes through
 * @replies_to_proxy: the packet came from a proxy, so its replies go back to the proxy's socket
 *
 * Returns 1 when the connection is new (the first packet of a connection), 0 when its entry was refreshed.
 */
static __always_inline int ct_allow(const struct ct_key *fwd, struct ct_entry *e, __u64 version, __u32 rule_index,
				    __u8 proxy, __u8 replies_to_proxy)
{
	struct ct_entry fresh = { .allowed_version = version, .rule_index = rule_index, .kind = CT_FORWARD, .proxy = proxy };
	__u64 now = bpf_ktime_get_ns();
	struct ct_key rev;

	if (e) {
		e->judged_ns = now;
		e->allowed_version = version;
		e->rule_index = rule_index;
		e->proxy = proxy;
		return 0;
	}
	fresh.created_ns = fresh.judged_ns = now;
	/* NOEXIST: of two CPUs racing on the first packet, one reports the new connection */
	if (bpf_map_update_elem(&mesh_ct, fwd, &fresh, BPF_NOEXIST))
		return 0;
	/* A reply entry replaces a forward entry of the reversed tuple: a packet that answers an allowed
	 * connection is a reply, whatever else its tuple opened before (the slow path agrees, it looks for replies
	 * first). */
	ct_reverse(fwd, &rev);
	fresh.kind = CT_REPLY;
	fresh.allowed_version = 0;
	fresh.rule_index = 0;
	fresh.proxy = replies_to_proxy;
	bpf_map_update_elem(&mesh_ct, &rev, &fresh, BPF_ANY);
	return 1;
}

#endif
