/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The generation switch shared by every versioned map. */
#ifndef MESH_MAPS_H
#define MESH_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* The shape of every pinned map. Pins live under <pin root>/v<MESH_MAP_LAYOUT>/, and a pinned map is only ever
 * re-used by an agent of the same layout: libbpf refuses a pin whose definition differs ("parameter mismatch"),
 * and worse, a pin of the same definition but another meaning would be accepted silently. Bump it with any change
 * to a pinned map's type, size, key or value, or to what its fields mean. Must equal MapLayout.Version
 * (checked by MapLayoutTests).
 *   1 (unversioned pins): HASH policy probed six times for wildcards
 *   2: per-identity LPM policy maps through mesh_policy; family-tagged ipcache keys
 *   3: conntrack entries carry their kind (forward/reply) and the version that allowed them; twice the entries
 *   4: a third verdict counter (VERDICT_AUDIT); endpoint flags and policy maps for audit layers
 *   5: policy entries in two parts, admin tier and lower tier (policy or baseline) with their ranks
 *   6: mesh_held, the interfaces of pods held closed until an endpoint is enforced on them
 *   7: policy entries and conntrack entries name a proxy; mesh_proxy, the proxies' sockets */
#define MESH_MAP_LAYOUT 7

/* Atomic versions: endpoints, ipcache and policy carry the generation (0/1) in their keys. The agent fills the
 * standby generation, then rewrites this single value to flip. Each generation's version has its own slot, so
 * the slot of the active generation never changes while it is active and a packet never reads a torn version.
 * Mirrors GenStateNative. */
struct gen_state {
	__u32 active;      /* generation the programs use now: 0 or 1 */
	__u32 pad;
	__u64 version[2];  /* snapshot version held by each generation */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_gen SEC(".maps");

/* An update of a map-of-maps waits for an RCU grace period (synchronize_rcu), i.e. for every program that may
 * still read the old generation. The agent rewrites slot 0 after each flip; the programs never read it. */
struct mesh_sync_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} mesh_sync_inner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct mesh_sync_inner);
} mesh_sync SEC(".maps") = {
	.values = { [0] = &mesh_sync_inner },
};

/**
 * gen_load() - read the active generation exactly once for this packet
 * @gen: receives the active generation
 * @version: receives the version that generation holds
 *
 * Returns 0, or -1 when the agent never wrote the switch (the caller passes the packet).
 */
static __always_inline int gen_load(__u32 *gen, __u64 *version)
{
	__u32 zero = 0;
	struct gen_state *g = bpf_map_lookup_elem(&mesh_gen, &zero);

	if (!g)
		return -1;
	/* volatile: one load, so every lookup below uses the same generation even if the agent flips meanwhile */
	*gen = *(volatile __u32 *)&g->active & 1;
	*version = *gen ? g->version[1] : g->version[0];
	return 0;
}

#endif
