/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Verdicts and drop reasons as they travel in flow events and counters. */
#ifndef MESH_DROP_REASONS_H
#define MESH_DROP_REASONS_H

/* Mirrors FlowVerdict in IDatapath.cs; also the index into mesh_counters. */
enum flow_verdict {
	VERDICT_FORWARDED = 0,
	VERDICT_DROPPED   = 1,
	VERDICT_AUDIT     = 2, /* forwarded, but the endpoint's audit layer would drop it: the reason and rule say why */
	VERDICT_MAX,
};

/* Mirrors DropReason in IDatapath.cs. Stored as a u8 in flow events, so the values stay small and positive. A
 * DROPPED flow carries the reason it was dropped, an AUDIT flow the reason it would have been. */
enum drop_reason {
	REASON_NONE           = 0,
	REASON_POLICY_DENIED  = 1, /* a deny entry matched: deny beats every allow */
	REASON_DEFAULT_DENY   = 2, /* the direction is enforced and no allow entry matched */
	REASON_NOT_ENFORCED   = 3, /* the pod's interface is held: no generation enforces an endpoint there yet */
	REASON_NO_PROXY       = 4, /* the allow sends the traffic through the node's proxy, and no proxy took it */
};

/* Rule index carried when no policy entry decided the packet (default deny, unenforced direction). */
#define RULE_NONE 0xffffffffU

#endif
