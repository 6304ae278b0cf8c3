/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * What a run measured: time, memory, and the text and JSON reports.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "launch.h"

struct mem_usage mem_usage(void)
{
	struct mem_usage m = { -1, -1 };
	char line[256];
	FILE *f = fopen("/proc/self/smaps_rollup", "re");

	if (!f)
		return m;
	while (fgets(line, sizeof(line), f)) {
		long long v;

		if (sscanf(line, "Rss: %lld kB", &v) == 1)
			m.rss_kib = v;
		else if (sscanf(line, "Pss: %lld kB", &v) == 1)
			m.pss_kib = v;
	}
	fclose(f);
	return m;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void print_scan(const struct launcher *l, unsigned int idx)
{
	const struct scan_result *s = &l->scans[idx - 1];
	const struct exits *e = &s->exits;

	printf("scan %u/%u %s: config exits: hole %" PRIu64 " read %" PRIu64 " write, present %"
	       PRIu64 " read %" PRIu64 " write, shadowed %" PRIu64 " read %" PRIu64
	       " write; %" PRIu64 " other; found %u/%u functions%s; %.3f ms\n",
	       idx, l->o->repeat, scan_names[l->o->scan], e->hole_reads, e->hole_writes,
	       e->present_reads, e->present_writes, e->shadow_reads, e->shadow_writes, e->other,
	       s->found, s->expected, s->ok ? "" : " (MISMATCH)", s->wall_ns / 1e6);
	fflush(stdout);
}

static const char *prefault_status(const struct backend *b)
{
	switch (b->prefault_bytes) {
	case -ENODATA:
		return "n/a";
	case -ECANCELED:
		return "off";
	case -EOPNOTSUPP:
		return "unavailable (no KVM_PRE_FAULT_MEMORY)";
	default:
		return b->prefault_bytes >= 0 ? "done" : "failed";
	}
}

static double mean_repeat_ms(const struct launcher *l)
{
	double sum = 0;

	if (l->nr_scans < 2)
		return -1;
	for (unsigned int i = 1; i < l->nr_scans; i++)
		sum += l->scans[i].wall_ns / 1e6;
	return sum / (l->nr_scans - 1);
}

static void print_mib(uint64_t bytes)
{
	if (bytes >= (1u << 20))
		printf("%.1f MiB", bytes / 1048576.0);
	else
		printf("%" PRIu64 " KiB", bytes >> 10);
}

void report_text(const struct launcher *l, const struct mem_usage *d)
{
	const struct backend *b = &l->backend;
	double rep = mean_repeat_ms(l);

	printf("summary: mode %s (asked %s), %u slots for %u runs, %" PRIu64
	       " hole pages left to mmio", mode_names[b->mode], mode_names[l->o->mode],
	       b->nr_slots, b->nr_runs, b->uncovered_pages);
	if (l->o->shadow)
		printf(", %u functions shadowed (%.3f ms)", b->nr_shadowed, b->shadow_ns / 1e6);
	printf("\n");
	printf("all-ones memory: ");
	print_mib(b->allones_bytes);
	printf(" (%s), %" PRIu64 " mappings over ", b->backing, b->nr_mappings);
	print_mib(b->mapped_bytes);
	printf("; after the scans RSS %+" PRId64 " KiB, PSS %+" PRId64 " KiB\n",
	       d->rss_kib, d->pss_kib);
	printf("setup %.3f ms", b->setup_ns / 1e6);
	if (b->ctx) {
		printf(" (+ once per host: probe %.3f ms", b->probe_ns / 1e6);
		if (b->memfd_ns)
			printf(", all-ones memfd %.3f ms", b->memfd_ns / 1e6);
		printf(")");
	}
	printf(", prefault %s", prefault_status(b));
	if (b->prefault_bytes >= 0) {
		printf(" %.3f ms for ", b->prefault_ns / 1e6);
		print_mib((uint64_t)b->prefault_bytes);
	}
	printf("; first scan %.3f ms", l->scans[0].wall_ns / 1e6);
	if (rep >= 0)
		printf(", repeat scans %.3f ms on average", rep);
	if (l->o->churn)
		printf("\nchurn: %s unplugged and plugged %" PRIu64 " times while the guest ran",
		       l->o->churn, l->churn_toggles / 2);
	if (l->o->hotplug)
		printf("\nhotplug after scan 1: %u function%s in %.3f ms; slots %u -> %u", l->hotplug_changes,
		       l->hotplug_changes == 1 ? "" : "s", l->hotplug_ns / 1e6, b->nr_slots,
		       l->slots_after_hotplug);
	printf("\nguest code: %.1f ns per loop iteration: %s\n", l->loop_ns,
	       l->loop_ns > CAL_EMULATED_NS ? "EMULATED by KVM, times are not representative"
					    : "executed, times are representative");
	printf("%s\n", l->failed ? "FAIL: a scan did not find exactly the configured functions"
				   : l->o->churn ? "OK: every scan found exactly the configured "
						   "functions (the churned one, or all-ones)"
				   : "OK: every scan found exactly the configured functions");
}

void report_json(const struct launcher *l, const struct mem_usage *d)
{
	const struct backend *b = &l->backend;
	const struct options *o = l->o;
	char buf[PCIHOLE_SEGMENT_STRLEN];
	double rep = mean_repeat_ms(l);

	printf("{\n  \"mode\": \"%s\",\n  \"requested_mode\": \"%s\",\n  \"scan\": \"%s\",\n",
	       mode_names[b->mode], mode_names[o->mode], scan_names[o->scan]);
	printf("  \"segments\": [");
	for (size_t i = 0; i < o->nr_segs; i++) {
		pcihole_segment_format(&o->segs[i], buf, sizeof(buf));
		printf("%s\"%s\"", i ? ", " : "", buf);
	}
	printf("],\n  \"functions\": [");
	for (size_t i = 0; i < o->nr_fns; i++) {
		char a[PCIHOLE_BDF_STRLEN];

		printf("%s\"%s\"", i ? ", " : "", bdf_str(&o->fns[i].bdf, a));
	}
	printf("],\n");
	printf("  \"slots\": %u,\n  \"runs\": %u,\n  \"uncovered_pages\": %" PRIu64 ",\n",
	       b->nr_slots, b->nr_runs, b->uncovered_pages);
	printf("  \"shadow\": %s,\n  \"shadowed\": %u,\n  \"shadow_us\": %.1f,\n",
	       o->shadow ? "true" : "false", b->nr_shadowed, b->shadow_ns / 1e3);
	printf("  \"backing\": \"%s\",\n  \"allones_bytes\": %" PRIu64 ",\n"
	       "  \"mappings\": %" PRIu64 ",\n  \"mapped_bytes\": %" PRIu64 ",\n",
	       b->backing, b->allones_bytes, b->nr_mappings, b->mapped_bytes);
	printf("  \"rss_delta_kib\": %" PRId64 ",\n  \"pss_delta_kib\": %" PRId64 ",\n",
	       d->rss_kib, d->pss_kib);
	printf("  \"setup_us\": %.1f,\n  \"memfd_us\": %.1f,\n", b->setup_ns / 1e3,
	       b->memfd_ns / 1e3);
	printf("  \"probe_us\": %.1f,\n", b->probe_ns / 1e3);
	printf("  \"caps\": {\"readonly_mem\": %u, \"nr_memslots\": %u, \"pci_hole_cap\": %u, "
	       "\"pci_hole_works\": %u, \"pre_fault_memory\": %u},\n", b->caps.readonly_mem,
	       b->caps.nr_memslots, b->caps.pci_hole_cap, b->caps.pci_hole_works,
	       b->caps.pre_fault_memory);
	printf("  \"prefault\": \"%s\",\n", prefault_status(b));
	if (b->prefault_bytes >= 0)
		printf("  \"prefault_bytes\": %" PRId64 ",\n  \"prefault_us\": %.1f,\n",
		       b->prefault_bytes, b->prefault_ns / 1e3);
	printf("  \"first_scan_us\": %.1f,\n", l->scans[0].wall_ns / 1e3);
	if (rep >= 0)
		printf("  \"repeat_scan_us\": %.1f,\n", rep * 1e3);
	else
		printf("  \"repeat_scan_us\": null,\n");
	if (o->churn)
		printf("  \"churn_toggles\": %" PRIu64 ",\n", l->churn_toggles);
	if (o->hotplug)
		printf("  \"hotplug_changes\": %u,\n  \"hotplug_us\": %.1f,\n"
		       "  \"slots_after_hotplug\": %u,\n", l->hotplug_changes, l->hotplug_ns / 1e3,
		       l->slots_after_hotplug);
	printf("  \"guest_loop_ns\": %.2f,\n  \"guest_code\": \"%s\",\n", l->loop_ns,
	       l->loop_ns > CAL_EMULATED_NS ? "emulated" : "executed");
	printf("  \"hole_exits_first\": %" PRIu64 ",\n",
	       l->scans[0].exits.hole_reads + l->scans[0].exits.hole_writes);
	printf("  \"scans\": [\n");
	for (unsigned int i = 0; i < l->nr_scans; i++) {
		const struct scan_result *s = &l->scans[i];

		printf("    {\"index\": %u, \"wall_us\": %.1f, \"hole_reads\": %" PRIu64
		       ", \"hole_writes\": %" PRIu64 ", \"present_reads\": %" PRIu64
		       ", \"present_writes\": %" PRIu64 ", \"shadow_reads\": %" PRIu64
		       ", \"shadow_writes\": %" PRIu64 ", \"present\": %" PRIu64
		       ", \"config\": %" PRIu64 ", \"other\": %" PRIu64
		       ", \"found\": %u, \"expected\": %u, \"ok\": %s}%s\n",
		       i + 1, s->wall_ns / 1e3, s->exits.hole_reads, s->exits.hole_writes,
		       s->exits.present_reads, s->exits.present_writes, s->exits.shadow_reads,
		       s->exits.shadow_writes, exits_present(&s->exits), exits_config(&s->exits),
		       s->exits.other, s->found, s->expected, s->ok ? "true" : "false",
		       i + 1 < l->nr_scans ? "," : "");
	}
	printf("  ],\n  \"ok\": %s\n}\n", l->failed ? "false" : "true");
}

void report_result(const struct launcher *l, const struct mem_usage *d, struct launch_result *r)
{
	const struct backend *b = &l->backend;

	memset(r, 0, sizeof(*r));
	r->ok = !l->failed;
	r->mode = b->mode;
	r->slots = b->nr_slots;
	snprintf(r->backing, sizeof(r->backing), "%s", b->backing);
	snprintf(r->prefault, sizeof(r->prefault), "%s", prefault_status(b));
	r->allones_bytes = b->allones_bytes;
	r->pss_delta_kib = d->pss_kib;
	r->hole_exits_first = l->scans[0].exits.hole_reads + l->scans[0].exits.hole_writes;
	r->first = l->scans[0].exits;
	r->nr_shadowed = b->nr_shadowed;
	r->setup_us = b->setup_ns / 1e3;
	r->memfd_us = b->memfd_ns / 1e3;
	r->prefault_us = b->prefault_bytes >= 0 ? b->prefault_ns / 1e3 : -1;
	r->first_scan_us = l->scans[0].wall_ns / 1e3;
	r->repeat_scan_us = l->nr_scans < 2 ? -1 : mean_repeat_ms(l) * 1e3;
	r->guest_loop_ns = l->loop_ns;
	r->valid = true;
}
