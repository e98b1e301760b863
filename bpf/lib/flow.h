/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow events and verdict counters: every drop, and the first packet of every allowed connection (forwarded or
 * audited). */
#ifndef MESH_FLOW_H
#define MESH_FLOW_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "drop_reasons.h"

/* Mirrors FlowEventNative. IPv6 follows as a second event type with 16-byte addresses, told apart by size. */
struct flow_event {
	__u64  time_ns;         /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u64  version;         /* snapshot version of the generation that judged the packet */
	__u32  ifindex;
	__be32 saddr;           /* network byte order */
	__be32 daddr;           /* network byte order */
	__u32  src_identity;
	__u32  dst_identity;
	__u32  rule_index;      /* RULE_NONE when no entry decided */
	__be16 sport;           /* network byte order */
	__be16 dport;           /* network byte order */
	__u8   protocol;
	__u8   direction;       /* enum traffic_direction */
	__u8   verdict;         /* enum flow_verdict */
	__u8   reason;          /* enum drop_reason */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_flows SEC(".maps");

/* Mirrors VerdictCounterNative. */
struct verdict_counter {
	__u64 packets;
	__u64 bytes;
};

/* Indexed by enum flow_verdict. A packet that passes on conntrack counts as forwarded: an audited connection
 * counts as audit only the packets the policy judged (its first, and its first under each new version). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VERDICT_MAX);
	__type(key, __u32);
	__type(value, struct verdict_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_counters SEC(".maps");

static __always_inline void flow_count(__u32 verdict, __u32 bytes)
{
	struct verdict_counter *c = bpf_map_lookup_elem(&mesh_counters, &verdict);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/**
 * flow_emit() - publish one flow event
 * @ev: the event; time_ns is filled here
 *
 * A full ring loses the event, never the packet: the verdict stands either way. Not inlined on purpose: a real
 * subprogram keeps struct flow_event in the object's BTF, which the agent's layout tests read.
 */
static __noinline void flow_emit(const struct flow_event *ev)
{
	struct flow_event *e = bpf_ringbuf_reserve(&mesh_flows, sizeof(*e), 0);

	if (!e)
		return;
	*e = *ev;
	e->time_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, 0);
}

#endif
