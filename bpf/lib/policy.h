/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-identity L3/L4 policy: which peers may talk to a local identity, on which protocol and port. */
#ifndef MESH_POLICY_H
#define MESH_POLICY_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "drop_reasons.h"

/* Direction as seen from the local endpoint. Mirrors TrafficDirection. */
enum traffic_direction {
	DIR_INGRESS = 0,   /* entering the endpoint */
	DIR_EGRESS  = 1,   /* leaving the endpoint */
};

enum policy_verdict {
	POLICY_ALLOW = 0,
	POLICY_DENY  = 1,
};

/* A zero peer, protocol or port is a wildcard written by the agent; the program probes the wildcards itself
 * (an exact HASH, not an LPM), which keeps the key small and every probe O(1). Mirrors PolicyKeyNative. */
struct policy_key {
	__u32  gen;
	__u32  local_identity;
	__u32  peer_identity;   /* 0 = any peer */
	__u8   direction;       /* enum traffic_direction */
	__u8   protocol;        /* IP protocol, 0 = any */
	__be16 dport;           /* network byte order, 0 = any */
};

/* Mirrors PolicyEntryNative. */
struct policy_entry {
	__u8  verdict;          /* enum policy_verdict */
	__u8  pad[3];
	__u32 rule_index;       /* index into the snapshot's rule table */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);     /* both generations: 32768 entries each */
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_policy SEC(".maps");

struct policy_result {
	__u8  verdict;          /* enum flow_verdict */
	__u8  reason;           /* enum drop_reason */
	__u32 rule_index;
};

static __always_inline void policy_probe(struct policy_key *key, __u32 peer, __u8 proto, __be16 dport,
					 __u32 *deny_rule, __u32 *allow_rule)
{
	struct policy_entry *e;

	key->peer_identity = peer;
	key->protocol = proto;
	key->dport = dport;
	e = bpf_map_lookup_elem(&mesh_policy, key);
	if (!e)
		return;
	/* The first hit of each kind is the most specific one: the probes run from specific to general. */
	if (e->verdict == POLICY_DENY) {
		if (*deny_rule == RULE_NONE)
			*deny_rule = e->rule_index;
	} else if (*allow_rule == RULE_NONE) {
		*allow_rule = e->rule_index;
	}
}

/**
 * policy_decide() - judge one packet of a local identity against the policy of one generation
 * @gen: active generation
 * @local: identity of the local endpoint
 * @peer: identity of the other side
 * @dir: enum traffic_direction
 * @proto: IP protocol
 * @dport: destination port, network byte order (0 for protocols without ports)
 * @enforced: whether this direction of the endpoint is selected by some policy
 *
 * Precedence, the same words as the agent's compiler:
 *   1. deny wins: any deny entry among the probes drops (REASON_POLICY_DENIED)
 *   2. else any allow entry forwards
 *   3. else an enforced direction drops (REASON_DEFAULT_DENY), an unenforced one forwards
 * Probes, all of them, most specific first: (peer,proto,port) (peer,proto,0) (peer,0,0) (0,proto,port)
 * (0,proto,0) (0,0,0).
 *
 * Returns the verdict, drop reason and the deciding rule index (RULE_NONE when no entry decided).
 */
static __always_inline struct policy_result policy_decide(__u32 gen, __u32 local, __u32 peer, __u8 dir,
							  __u8 proto, __be16 dport, int enforced)
{
	struct policy_key key = { .gen = gen, .local_identity = local, .direction = dir };
	__u32 deny_rule = RULE_NONE, allow_rule = RULE_NONE;
	struct policy_result r = { .verdict = VERDICT_FORWARDED, .reason = REASON_NONE, .rule_index = RULE_NONE };

	policy_probe(&key, peer, proto, dport, &deny_rule, &allow_rule);
	policy_probe(&key, peer, proto, 0, &deny_rule, &allow_rule);
	policy_probe(&key, peer, 0, 0, &deny_rule, &allow_rule);
	policy_probe(&key, 0, proto, dport, &deny_rule, &allow_rule);
	policy_probe(&key, 0, proto, 0, &deny_rule, &allow_rule);
	policy_probe(&key, 0, 0, 0, &deny_rule, &allow_rule);

	if (deny_rule != RULE_NONE) {
		r.verdict = VERDICT_DROPPED;
		r.reason = REASON_POLICY_DENIED;
		r.rule_index = deny_rule;
	} else if (allow_rule != RULE_NONE) {
		r.rule_index = allow_rule;
	} else if (enforced) {
		r.verdict = VERDICT_DROPPED;
		r.reason = REASON_DEFAULT_DENY;
	}
	return r;
}

#endif
