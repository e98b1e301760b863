/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking: replies of allowed connections pass without policy. */
#ifndef MESH_CONNTRACK_H
#define MESH_CONNTRACK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* One entry per (tuple, interface, direction) that policy allowed. A reply is a packet whose reversed tuple has an
 * entry on the same interface in the opposite direction. Forward packets are judged by policy every time, so
 * removing an allow cuts new packets of an existing connection. Not versioned: connections outlive versions.
 * IPv6 gets its own map with 16-byte addresses (mesh_ct6), so IPv4 entries stay small. Mirrors CtKeyNative. */
struct ct_key {
	__be32 saddr;       /* network byte order */
	__be32 daddr;       /* network byte order */
	__be16 sport;       /* network byte order, 0 for protocols without ports */
	__be16 dport;       /* network byte order, 0 for protocols without ports */
	__u8   protocol;
	__u8   direction;   /* enum traffic_direction of the packet that created the entry */
	__u16  pad;
	__u32  ifindex;
};

/* Mirrors CtEntryNative. */
struct ct_entry {
	__u64 created_ns;   /* bpf_ktime_get_ns */
	__u64 seen_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_ct SEC(".maps");

/**
 * ct_is_reply() - whether a packet answers a connection allowed in the other direction
 * @fwd: the packet's own tuple, interface and direction
 *
 * Returns 1 when the reversed tuple has an entry on the same interface in the opposite direction.
 */
static __always_inline int ct_is_reply(const struct ct_key *fwd)
{
	struct ct_key rev = {
		.saddr = fwd->daddr, .daddr = fwd->saddr,
		.sport = fwd->dport, .dport = fwd->sport,
		.protocol = fwd->protocol, .direction = fwd->direction ^ 1, .ifindex = fwd->ifindex,
	};
	struct ct_entry *e = bpf_map_lookup_elem(&mesh_ct, &rev);

	if (!e)
		return 0;
	e->seen_ns = bpf_ktime_get_ns();
	return 1;
}

/**
 * ct_track() - create or refresh the entry of an allowed forward packet
 * @fwd: the packet's own tuple, interface and direction
 *
 * Returns 1 when the entry is new (the first packet of a connection), 0 when it was refreshed.
 */
static __always_inline int ct_track(const struct ct_key *fwd)
{
	__u64 now = bpf_ktime_get_ns();
	struct ct_entry *e = bpf_map_lookup_elem(&mesh_ct, fwd);
	struct ct_entry fresh = { .created_ns = now, .seen_ns = now };

	if (e) {
		e->seen_ns = now;
		return 0;
	}
	/* NOEXIST: of two CPUs racing on the first packet, one reports the new connection */
	return bpf_map_update_elem(&mesh_ct, fwd, &fresh, BPF_NOEXIST) == 0;
}

#endif
