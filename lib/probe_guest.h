/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The architecture-specific half of the functional probe (lib/probe.c does
 * the rest).  Each lib/probe_<arch>.c compiles to nothing on other
 * architectures; where none applies, PH_PROBE_HAVE_GUEST is 0 and the probe
 * trusts the capability alone (pcihole_caps.pci_hole_tested tells which).
 *
 * The guest, placed at guest physical 0 of a PH_PROBE_RAM-byte RAM slot,
 * loads 32 bits from PH_PROBE_GPA and stores that value back to PH_PROBE_GPA.
 * The store must exit as a KVM_EXIT_MMIO write whose data is the loaded value,
 * so one exit shows both halves: the load did not exit (or it would have been
 * seen first) and it read all-ones.  No other exit is needed, so the guest may
 * simply spin afterwards.
 */
#ifndef PH_PROBE_GUEST_H
#define PH_PROBE_GUEST_H

#include <stddef.h>
#include <stdint.h>

#define PH_PROBE_RAM 0x1000u

#if defined(__x86_64__) || defined(__aarch64__)
#define PH_PROBE_HAVE_GUEST 1
#else
#define PH_PROBE_HAVE_GUEST 0
#endif

/* The guest's machine code and its length (<= PH_PROBE_RAM). */
extern const uint8_t ph_probe_code[];
extern const size_t ph_probe_code_len;

/*
 * KVM_CREATE_VM's type argument for the probe VM (0 on x86; the IPA size
 * on arm64 may be left at its default, 0, too).
 */
unsigned long ph_probe_vm_type(int kvm_fd);

/*
 * Make the fresh vCPU @vcpu_fd of @vm_fd start the guest at guest physical 0
 * with whatever register state the code needs.  Returns 0 or -errno.
 */
int ph_probe_vcpu_init(int vm_fd, int vcpu_fd);

#endif
