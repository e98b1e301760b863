/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IP → security identity, longest prefix first. */
#ifndef MESH_IPCACHE_H
#define MESH_IPCACHE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define IDENTITY_WORLD 2

/* The generation is the first 32 bits of the LPM data, so prefixlen = 32 + the IP prefix length and one
 * generation can never match the other's entries. IPv6 follows with the same layout and a 16-byte address.
 * Mirrors IpCacheKeyNative. */
struct ipcache_key {
	__u32  prefixlen;  /* LPM: significant bits after this field (32 for gen + IP prefix) */
	__u32  gen;        /* compared as bytes: the agent writes it in host order, as here */
	__be32 addr;       /* network byte order */
};

/* Mirrors IpCacheInfoNative. */
struct ipcache_info {
	__u32 identity;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_info);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_ipcache SEC(".maps");

/**
 * ipcache_identity() - security identity of an IPv4 address in one generation
 * @gen: active generation
 * @addr: address, network byte order
 *
 * Returns the identity of the longest matching prefix, or world (2) when no prefix matches.
 */
static __always_inline __u32 ipcache_identity(__u32 gen, __be32 addr)
{
	struct ipcache_key key = { .prefixlen = 64, .gen = gen, .addr = addr };
	struct ipcache_info *info = bpf_map_lookup_elem(&mesh_ipcache, &key);

	return info ? info->identity : IDENTITY_WORLD;
}

#endif
