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

/* The lower part of a policy_entry (policy or baseline tier). */
enum policy_verdict {
	POLICY_ALLOW = 0,
	POLICY_DENY  = 1,
	POLICY_NONE  = 2,   /* no policy or baseline entry covers the key: only its admin part decides */
};

/* The admin part of a policy_entry (the admin tier of ClusterNetworkPolicy). Mirrors AdminVerdict. */
enum admin_verdict {
	ADMIN_NONE   = 0,   /* no admin rule covers the key */
	ADMIN_ACCEPT = 1,   /* forwarded, whatever the lower tiers say */
	ADMIN_DENY   = 2,   /* dropped, whatever the lower tiers say */
	ADMIN_PASS   = 3,   /* the rest of the admin tier is skipped: the lower part decides */
};

/* Outer key: one inner policy map per local identity and generation, created and filled by the agent, so a
 * version that changes one identity's policy touches that identity's map only. An identity's audit layer has its
 * own map, keyed by the identity with POLICY_AUDIT_LAYER set. Mirrors PolicyMapKeyNative. */
struct policy_map_key {
	__u32 gen;
	__u32 local_identity;   /* a local identity, or local | POLICY_AUDIT_LAYER */
};

/* Set in a policy_map_key's local_identity: the map is the identity's audit layer, the policy it would have if the
 * policies in audit mode were enforced too. Identities never use this bit. Mirrors AgentProtocol.AuditLayer. */
#define POLICY_AUDIT_LAYER 0x80000000U

/* Longest-prefix match covers the fields after 'prefixlen', in this order. A prefix always covers the peer and
 * the direction (40 bits); it may stop there (any protocol, any port), after the protocol (48: any port of that
 * protocol) or inside the port (48 + n: the ports that share the first n bits, so 8000-8007 is 8000/13). Keep
 * 'protocol' before 'dport': a rule can wildcard the port of one protocol but never the protocol of one port.
 * The peer is never wildcarded by a prefix: "any peer" is peer 0, looked up separately (policy_decide). IPv4 and
 * IPv6 share this map: nothing here depends on the address family. Mirrors PolicyKeyNative. */
struct policy_key {
	__u32  prefixlen;       /* LPM: significant bits after this field, POLICY_PREFIX_* */
	__u32  peer_identity;   /* 0 = any peer; compared as bytes, host order on both sides */
	__u8   direction;       /* enum traffic_direction */
	__u8   protocol;        /* IP protocol */
	__be16 dport;           /* network byte order: most significant bits first, as port ranges need */
};

#define POLICY_PREFIX_ANY_PROTOCOL 40   /* peer + direction */
#define POLICY_PREFIX_ANY_PORT     48   /* ... + protocol */
#define POLICY_PREFIX_EXACT        64   /* ... + the whole port */

/* The decision of one key in two parts, because one key can carry a decision of the admin tier and one of a lower
 * tier (policy or baseline). The agent has already folded every shorter entry of the same peer and direction
 * into each part (PolicyPrecedence.cs): the admin part is the covering admin rule of the lowest rank, the lower
 * part the covering policy or baseline entry that decides among them. Mirrors PolicyEntryNative. */
struct policy_entry {
	__u8  verdict;          /* lower part: enum policy_verdict */
	__u8  l4_prefixlen;     /* significant bits of protocol and port in the key: 0 any protocol, 8 any port, 24 one port */
	__u16 rank;             /* lower part: 0 = policy tier, 1 + j = baseline rule j (first match) */
	__u32 rule_index;       /* lower part: index into the snapshot's rule table */
	__u8  admin_verdict;    /* enum admin_verdict */
	__u8  proxy;            /* lower part: enum proxy_kind, the proxy an ALLOW sends the traffic through */
	__u16 admin_rank;       /* 1 = the first admin rule; lower ranks decide first */
	__u32 admin_rule_index; /* admin part: index into the snapshot's rule table */
};

/* Sized by the agent: it creates each inner map with bpf_map_create (BPF_F_NO_PREALLOC, so capacity costs
 * nothing until used). The kernel checks type, key and value size and flags against this template, not
 * max_entries. */
struct mesh_policy_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} mesh_policy_inner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 32768);     /* both generations: 16384 local identities each */
	__type(key, struct policy_map_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct mesh_policy_inner);
} mesh_policy SEC(".maps");

struct policy_result {
	__u8  verdict;          /* enum flow_verdict */
	__u8  reason;           /* enum drop_reason */
	__u8  proxy;            /* enum proxy_kind: a forwarded packet goes through this proxy (PROXY_NONE: straight on) */
	__u32 rule_index;
};

/**
 * admin_precedence() - the entry whose admin part decides between the two lookups of one packet
 * @l3: longest match among the entries for this peer, or NULL
 * @l4: longest match among the entries for any peer (peer 0), or NULL
 *
 * The admin tier is first match in rank order: the lower admin_rank of the two wins, whatever its verdict
 * (a PASS of rank 1 for this peer beats a DENY of rank 2 for any peer). ADMIN_NONE is no candidate.
 *
 * Returns the deciding entry, or NULL when neither lookup carries an admin part.
 */
static __always_inline struct policy_entry *admin_precedence(struct policy_entry *l3, struct policy_entry *l4)
{
	if (l3 && l3->admin_verdict == ADMIN_NONE)
		l3 = NULL;
	if (l4 && l4->admin_verdict == ADMIN_NONE)
		l4 = NULL;
	if (!l3)
		return l4;
	if (!l4)
		return l3;
	return l4->admin_rank < l3->admin_rank ? l4 : l3;
}

/**
 * policy_precedence() - the entry whose lower part decides between the two lookups of one packet
 * @l3: longest match among the entries for this peer, or NULL
 * @l4: longest match among the entries for any peer (peer 0), or NULL
 *
 * Within one lookup the agent has already applied the same order to every shorter entry of the same peer (an
 * allow that a shorter deny of the same peer covers is written as that deny). Between the two lookups, the
 * same words as PolicyPrecedence.cs:
 *   1. lower rank: the policy tier (0) before the baseline tier, baseline rules in their order
 *   2. deny wins
 *   3. longer port/protocol prefix
 *   4. L3-specific (peer) over L4-only
 * POLICY_NONE (a key with an admin part only) is no candidate.
 *
 * Returns the deciding entry, or NULL when neither lookup matched.
 */
static __always_inline struct policy_entry *policy_precedence(struct policy_entry *l3, struct policy_entry *l4)
{
	if (l3 && l3->verdict == POLICY_NONE)
		l3 = NULL;
	if (l4 && l4->verdict == POLICY_NONE)
		l4 = NULL;
	if (!l3)
		return l4;
	if (!l4)
		return l3;
	if (l3->rank != l4->rank)
		return l3->rank < l4->rank ? l3 : l4;
	if (l3->verdict != l4->verdict)
		return l3->verdict == POLICY_DENY ? l3 : l4;
	if (l3->l4_prefixlen != l4->l4_prefixlen)
		return l3->l4_prefixlen > l4->l4_prefixlen ? l3 : l4;
	return l3;
}

/**
 * policy_decide() - judge one packet of a local identity against the policy of one generation
 * @gen: active generation
 * @local: identity of the local endpoint, or its audit layer (local | POLICY_AUDIT_LAYER)
 * @peer: identity of the other side
 * @dir: enum traffic_direction
 * @proto: IP protocol
 * @dport: destination port, network byte order (0 for protocols without ports and later fragments)
 * @enforced: whether this direction of the endpoint is enforced (selected by some policy, or every endpoint
 *            under the cluster's enforcement mode "always"; none under "never"); for an audit layer, the
 *            layer's own enforcement of this direction
 *
 * Two LPM lookups in the identity's map, {peer, ...} and {0, ...}. The tiers decide in order:
 *   1. admin tier (admin_precedence()): the matching admin rule of the lowest rank decides; ACCEPT forwards,
 *      DENY drops (REASON_POLICY_DENIED), PASS skips the rest of the admin tier
 *   2. policy tier, then 3. baseline tier (policy_precedence() on the lower parts; the policy tier's rank 0
 *      comes before every baseline rule): ALLOW forwards (through the proxy its entry names, if any), DENY drops
 *      (REASON_POLICY_DENIED)
 *   4. no entry: an enforced direction drops (REASON_DEFAULT_DENY), an unenforced one forwards
 * The control plane sends baseline entries only for directions the policy tier does not enforce, so a baseline
 * rule never overrides a default deny.
 *
 * Returns the verdict, drop reason and the deciding rule index (RULE_NONE when no entry decided).
 */
static __always_inline struct policy_result policy_decide(__u32 gen, __u32 local, __u32 peer, __u8 dir,
							  __u8 proto, __be16 dport, int enforced)
{
	struct policy_map_key map_key = { .gen = gen, .local_identity = local };
	struct policy_key key = {
		.prefixlen = POLICY_PREFIX_EXACT, .peer_identity = peer,
		.direction = dir, .protocol = proto, .dport = dport,
	};
	struct policy_result r = { .verdict = VERDICT_FORWARDED, .reason = REASON_NONE, .proxy = 0, .rule_index = RULE_NONE };
	struct policy_entry *l3 = NULL, *l4 = NULL, *a, *e;
	void *inner = bpf_map_lookup_elem(&mesh_policy, &map_key);

	if (inner) {
		if (peer != 0)
			l3 = bpf_map_lookup_elem(inner, &key);
		key.peer_identity = 0;
		l4 = bpf_map_lookup_elem(inner, &key);
	}

	a = admin_precedence(l3, l4);
	if (a && a->admin_verdict != ADMIN_PASS) {
		r.rule_index = a->admin_rule_index;
		if (a->admin_verdict == ADMIN_DENY) {
			r.verdict = VERDICT_DROPPED;
			r.reason = REASON_POLICY_DENIED;
		}
		return r;
	}

	e = policy_precedence(l3, l4);
	if (e) {
		r.rule_index = e->rule_index;
		if (e->verdict == POLICY_DENY) {
			r.verdict = VERDICT_DROPPED;
			r.reason = REASON_POLICY_DENIED;
		} else {
			r.proxy = e->proxy;
		}
	} else if (enforced) {
		r.verdict = VERDICT_DROPPED;
		r.reason = REASON_DEFAULT_DENY;
	}
	return r;
}

/**
 * policy_audit() - judge a packet the enforced policy forwards by the identity's audit layer too
 * @forwarded: the decision of policy_decide() on the enforced policy, VERDICT_FORWARDED
 * @gen: active generation
 * @local: identity of the local endpoint (not its audit layer)
 * @peer: identity of the other side
 * @dir: enum traffic_direction
 * @proto: IP protocol
 * @dport: destination port, network byte order
 * @enforced: whether this direction of the audit layer is enforced (ENDPOINT_AUDIT_*_ENFORCED)
 *
 * The audit layer is decided exactly like the enforced policy (policy_decide() in the map of
 * local | POLICY_AUDIT_LAYER). Precedence between the two decisions of one packet:
 *   1. the enforced policy drops: DROPPED, whatever the audit layer says (the caller does not ask it)
 *   2. the audit layer drops: AUDIT, the packet passes; the reason and rule are the audit layer's (RULE_NONE
 *      for its default deny), the rule that would have dropped it
 *   3. both forward: FORWARDED with the enforced policy's rule
 *
 * Returns the decision the flow reports, with the enforced policy's proxy: auditing never changes the path.
 */
static __always_inline struct policy_result policy_audit(struct policy_result forwarded, __u32 gen, __u32 local,
							 __u32 peer, __u8 dir, __u8 proto, __be16 dport, int enforced)
{
	struct policy_result audit = policy_decide(gen, local | POLICY_AUDIT_LAYER, peer, dir, proto, dport, enforced);

	if (audit.verdict != VERDICT_DROPPED)
		return forwarded;
	audit.verdict = VERDICT_AUDIT;
	audit.proxy = forwarded.proxy;
	return audit;
}

#endif
