/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Local endpoints: the host side of each endpoint's veth → its identity and enforced directions. */
#ifndef MESH_ENDPOINTS_H
#define MESH_ENDPOINTS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ENDPOINT_INGRESS_ENFORCED       (1U << 0)
#define ENDPOINT_EGRESS_ENFORCED        (1U << 1)
/* The identity has an audit layer (a policy in audit mode selects it): what its enforced policy forwards is judged
 * again by the inner map of identity | POLICY_AUDIT_LAYER, whose directions are enforced by the two bits below. */
#define ENDPOINT_AUDITED                (1U << 2)
#define ENDPOINT_AUDIT_INGRESS_ENFORCED (1U << 3)
#define ENDPOINT_AUDIT_EGRESS_ENFORCED  (1U << 4)

/* Mirrors EndpointKeyNative. */
struct endpoint_key {
	__u32 gen;
	__u32 ifindex;     /* host-side veth, in the node's network namespace */
};

/* Mirrors EndpointInfoNative. */
struct endpoint_info {
	__u32 identity;
	__u32 flags;       /* ENDPOINT_* */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);     /* both generations: 16384 endpoints each */
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_endpoints SEC(".maps");

/* Host-side interfaces of pods the runtime attached (mesh-cni), from ADD until DEL. A packet there that no endpoint of
 * the active generation judges is dropped instead of passing as on any other interface: a pod is closed until its
 * policy is enforced, and again if its endpoint goes while it still runs. Not versioned: an endpoint's verdict always
 * comes first, so the agent adds an interface before the pod's link comes up and a flip never touches this map. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);             /* ifindex of the host-side veth, in the node's network namespace */
	__type(value, __u32);           /* unused */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_held SEC(".maps");

static __always_inline int endpoint_held(__u32 ifindex)
{
	return bpf_map_lookup_elem(&mesh_held, &ifindex) != NULL;
}

#endif
