/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Local endpoints: the host side of each endpoint's veth → its identity and enforced directions. */
#ifndef MESH_ENDPOINTS_H
#define MESH_ENDPOINTS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ENDPOINT_INGRESS_ENFORCED (1U << 0)
#define ENDPOINT_EGRESS_ENFORCED  (1U << 1)

/* Mirrors EndpointKeyNative. */
struct endpoint_key {
	__u32 gen;
	__u32 ifindex;     /* host-side veth, in the node's network namespace */
};

/* Mirrors EndpointInfoNative. */
struct endpoint_info {
	__u32 identity;
	__u32 flags;       /* ENDPOINT_*_ENFORCED */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);     /* both generations: 16384 endpoints each */
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_endpoints SEC(".maps");

#endif
