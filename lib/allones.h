/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The all-ones backing's internals shared with ctx.c (and reachable by tests). */
#ifndef PH_ALLONES_H
#define PH_ALLONES_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Fill the memfd @fd of @chunk bytes with 0xff through a shared mapping at a
 * 2 MiB-aligned address (for chunks of 2 MiB and more); with @thp, ask for a
 * transparent huge page and report in @huge whether the kernel gave one.
 */
int ph_allones_fill(int fd, uint64_t chunk, bool thp, bool *huge);

/* pcihole_allones_map() for an fd already checked to be a @chunk-byte all-ones memfd. */
int ph_allones_map_checked(int fd, uint64_t chunk, uint64_t size, void **addr);

#endif
