/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IP → security identity, longest prefix first. */
#ifndef MESH_IPCACHE_H
#define MESH_IPCACHE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define IDENTITY_WORLD 2

enum ipcache_family {
	IPCACHE_FAMILY_IPV4 = 4,
	IPCACHE_FAMILY_IPV6 = 6,
};

/* The generation and the family come first in the LPM data, so prefixlen = 64 + the IP prefix length and an
 * entry never matches another generation or family. IPv4 fills the first 4 bytes of addr; IPv6 uses all 16 with
 * the same map and the same lookup. Mirrors IpCacheKeyNative. */
struct ipcache_key {
	__u32 prefixlen;   /* LPM: significant bits after this field (64 for gen + family + pad, then the IP prefix) */
	__u32 gen;         /* compared as bytes: the agent writes it in host order, as here */
	__u8  family;      /* enum ipcache_family */
	__u8  pad[3];
	__u8  addr[16];    /* network byte order */
};

#define IPCACHE_PREFIX_HEADER 64

/* Mirrors IpCacheInfoNative. */
struct ipcache_info {
	__u32 identity;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 524288);    /* both generations: 262144 prefixes each */
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_info);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_ipcache SEC(".maps");

/**
 * ipcache_identity4() - security identity of an IPv4 address in one generation
 * @gen: active generation
 * @addr: address, network byte order
 *
 * Returns the identity of the longest matching prefix, or world (2) when no prefix matches.
 */
static __always_inline __u32 ipcache_identity4(__u32 gen, __be32 addr)
{
	struct ipcache_key key = { .prefixlen = IPCACHE_PREFIX_HEADER + 32, .gen = gen, .family = IPCACHE_FAMILY_IPV4 };
	struct ipcache_info *info;

	__builtin_memcpy(key.addr, &addr, sizeof(addr));
	info = bpf_map_lookup_elem(&mesh_ipcache, &key);
	return info ? info->identity : IDENTITY_WORLD;
}

#endif
