/*
 * The network side of a checkpoint (netlock.c): the network namespace the
 * tree lives in, and the network lock that keeps established TCP
 * connections silent between their dump and their restore.
 *
 * The lock is one nftables table in the tree's network namespace,
 * "inet rtcr_lock_<image id>", whose input and output chains drop the
 * segments of exactly the dumped connections (their 4-tuples). A dropped
 * segment is as good as lost on the wire: the peer retransmits, so
 * nothing that is not in the image is ever acknowledged, and no segment
 * reaches a host with no socket for it, so none is answered with a reset.
 */
#ifndef RTCR_NETLOCK_H
#define RTCR_NETLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/log.h"
#include "image/pb.h"

/* One connection, as seen from its socket (ports in host order). */
struct net_tuple {
	int family;                /* AF_INET or AF_INET6 */
	uint8_t laddr[16], raddr[16];
	uint16_t lport, rport;
};

/* The table name for an image id: "rtcr_lock_" and 16 hex digits. */
void netlock_name(const uint8_t id[16], char *buf, size_t len);
/* Take the lock for n connections in rtcr's network namespace: one nft
 * transaction (all rules or none). 0 or -errno (logged). */
int netlock_take(const char *table, const struct net_tuple *t, int n) __must_check;
/* Remove it (absent is fine). quiet: log nothing (the guardian). */
int netlock_release(const char *table, bool quiet);
/* Is the table there (in rtcr's network namespace)? */
bool netlock_present(const char *table);
/* The lock an image records, removed where it may be: in rtcr's network
 * namespace and, if it is another one that still exists (same boot), in
 * the image's. 0 or -errno (logged). */
int netlock_release_image(const Rtcr__Inventory *inv, bool same_boot) __must_check;

/* The inode of pid's network namespace (0: rtcr's own). */
int netns_ino(pid_t pid, uint64_t *ino) __must_check;
/* The name under /run/netns of the namespace with that inode, or NULL. */
char *netns_name(uint64_t ino);
/* Enter pid's network namespace (nothing if it is rtcr's already). */
int netns_enter_pid(pid_t pid) __must_check;
/* Enter a network namespace given by name (/run/netns/NAME) or path. */
int netns_enter(const char *name_or_path) __must_check;

#endif
