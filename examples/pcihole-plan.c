// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * pcihole-plan: print the memory-slot plan libpcihole makes for an ECAM layout.
 *
 *   pcihole-plan --segment 0:0xb0000000:0-255 \
 *                --present 00:00.0,00:01.0,00:02.0,00:1f.0,00:1f.2,00:1f.3
 *
 * Exit status: 0 on success, 2 on a bad argument (one line on stderr naming
 * it), 1 on any other failure.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcihole.h>

#define MAX_PRESENT 65536

struct args {
	struct pcihole_segment segs[PCIHOLE_MAX_SEGMENTS];
	size_t nr_segs;
	struct pcihole_bdf *present;
	char (*present_str)[PCIHOLE_BDF_STRLEN];
	size_t nr_present;
	uint32_t budget;
	uint32_t slot_base;
	uint32_t flags;
	unsigned int phys_bits;
	bool json;
};

static const char *prog = "pcihole-plan";

static void __attribute__((noreturn, format(printf, 2, 3)))
bad_arg(const char *arg, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s: ", prog, arg);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [options]\n"
		"  --segment SEG:BASE:FIRST-LAST  ECAM window (repeatable; default 0:0xb0000000:0-255)\n"
		"  --mcfg SEG:BASE:FIRST-LAST     same, BASE as in ACPI MCFG (address of bus 0)\n"
		"  --present BDF[,BDF...]         present functions, lspci form BB:DD.F or SSSS:BB:DD.F\n"
		"  --file FILE                    read 'segment X', 'mcfg X', 'present X' lines (# comments)\n"
		"  --budget N                     at most N slots (default: one per run)\n"
		"  --slot-base N                  first slot id of the printed records (default 0)\n"
		"  --flags readonly|pci-hole      flags of the printed records (default readonly)\n"
		"  --phys-bits N                  guest physical address width (default 52)\n"
		"  --json                         print JSON instead of a table\n",
		prog);
}

static uint32_t parse_u32(const char *opt, const char *s, uint32_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		bad_arg(opt, "'%s' is not a number", s);
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		bad_arg(opt, "'%s' is not a number in 0..%" PRIu32, s, max);
	return (uint32_t)v;
}

static void add_segment(struct args *a, const char *opt, const char *s, bool mcfg)
{
	struct pcihole_segment seg;

	if (a->nr_segs == PCIHOLE_MAX_SEGMENTS)
		bad_arg(opt, "more than %u segments", PCIHOLE_MAX_SEGMENTS);
	if (pcihole_segment_parse(s, &seg))
		bad_arg(opt, "malformed segment '%s' (expected SEG:BASE:FIRST-LAST, e.g. 0:0xb0000000:0-255)", s);
	if (mcfg && pcihole_segment_from_mcfg(seg.segment, seg.base, seg.bus_start,
					      seg.bus_end, &seg))
		bad_arg(opt, "bad MCFG segment '%s' (base must be 1 MiB aligned, FIRST <= LAST)", s);
	a->segs[a->nr_segs++] = seg;
}

static void add_present(struct args *a, const char *opt, const char *list)
{
	char *copy = strdup(list), *rest = copy, *tok;

	if (!copy) {
		perror(prog);
		exit(1);
	}
	/* strsep, not strtok: an empty item ("a,,b") is an error, not skipped. */
	while ((tok = strsep(&rest, ","))) {
		struct pcihole_bdf bdf;

		if (pcihole_bdf_parse(tok, &bdf))
			bad_arg(opt, "malformed function address '%s' (expected BB:DD.F or SSSS:BB:DD.F, hex)", tok);
		if (a->nr_present == MAX_PRESENT)
			bad_arg(opt, "more than %d functions", MAX_PRESENT);
		a->present[a->nr_present] = bdf;
		snprintf(a->present_str[a->nr_present], PCIHOLE_BDF_STRLEN, "%s", tok);
		a->nr_present++;
	}
	free(copy);
}

static void read_file(struct args *a, const char *path)
{
	char line[256], where[300];
	unsigned int lineno = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		bad_arg("--file", "cannot open '%s': %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char key[16], val[200], extra[2];
		char *hash = strchr(line, '#');
		int n;

		lineno++;
		if (hash)
			*hash = '\0';
		n = sscanf(line, "%15s %199s %1s", key, val, extra);
		if (n <= 0)
			continue;
		snprintf(where, sizeof(where), "--file %s:%u", path, lineno);
		if (n != 2)
			bad_arg(where, "expected 'segment|mcfg|present VALUE'");
		if (!strcmp(key, "segment"))
			add_segment(a, where, val, false);
		else if (!strcmp(key, "mcfg"))
			add_segment(a, where, val, true);
		else if (!strcmp(key, "present"))
			add_present(a, where, val);
		else
			bad_arg(where, "unknown keyword '%s'", key);
	}
	fclose(f);
}

static void parse_args(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "segment", required_argument, NULL, 's' },
		{ "mcfg", required_argument, NULL, 'm' },
		{ "present", required_argument, NULL, 'p' },
		{ "file", required_argument, NULL, 'f' },
		{ "budget", required_argument, NULL, 'b' },
		{ "slot-base", required_argument, NULL, 'S' },
		{ "flags", required_argument, NULL, 'F' },
		{ "phys-bits", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': add_segment(a, "--segment", optarg, false); break;
		case 'm': add_segment(a, "--mcfg", optarg, true); break;
		case 'p': add_present(a, "--present", optarg); break;
		case 'f': read_file(a, optarg); break;
		case 'b': a->budget = parse_u32("--budget", optarg, UINT32_MAX - 1); break;
		case 'S': a->slot_base = parse_u32("--slot-base", optarg, 0x7fff); break;
		case 'P': a->phys_bits = parse_u32("--phys-bits", optarg, 64); break;
		case 'F':
			if (!strcmp(optarg, "readonly"))
				a->flags = 1u << 1; /* KVM_MEM_READONLY */
			else if (!strcmp(optarg, "pci-hole"))
				a->flags = PCIHOLE_KVM_MEM_PCI_HOLE;
			else
				bad_arg("--flags", "unknown flags '%s' (readonly or pci-hole)", optarg);
			break;
		case 'j': a->json = true; break;
		case 'h': usage(stdout); exit(0);
		default:
			bad_arg(argv[optind - 1], "unknown option or missing value (see --help)");
		}
	}
	if (optind < argc)
		bad_arg(argv[optind], "unexpected argument (see --help)");
	if (!a->nr_segs)
		add_segment(a, "--segment", "0:0xb0000000:0-255", false);
}

static const char *seg_error(int err)
{
	switch (err) {
	case -EEXIST: return "segments overlap (in guest-physical space or in segment/bus numbers)";
	case -ERANGE: return "a window ends beyond the guest physical address width";
	case -E2BIG: return "too many segments";
	default: return "invalid segment (base must be 1 MiB aligned, FIRST <= LAST) or --phys-bits (32..64)";
	}
}

static void print_table(const struct args *a, const struct pcihole_layout *l,
			const struct pcihole_run *runs, int n,
			const struct pcihole_plan_info *info)
{
	size_t i;
	int r;

	for (i = 0; i < a->nr_segs; i++) {
		const struct pcihole_segment *s = &a->segs[i];
		uint64_t size = (uint64_t)(s->bus_end - s->bus_start + 1) << 20;

		printf("segment %u: 0x%09" PRIx64 "-0x%09" PRIx64 " buses %u-%u (%" PRIu64 " function pages)\n",
		       s->segment, s->base, s->base + size - 1, s->bus_start, s->bus_end,
		       size >> PCIHOLE_PAGE_SHIFT);
	}
	printf("present: %zu function(s)\n\n", pcihole_layout_nr_present(l));
	printf("%5s  %-11s  %-11s  %12s  %8s  %8s\n", "slot", "gpa", "end", "size", "pages", "fn0");
	for (r = 0; r < n; r++) {
		const struct pcihole_run *run = &runs[r];

		printf("%5u  0x%09" PRIx64 "  0x%09" PRIx64 "  %12" PRIu64 "  %8" PRIu64 "  %8u\n",
		       a->slot_base + (uint32_t)r, run->gpa, run->gpa + run->size - 1,
		       run->size, run->size >> PCIHOLE_PAGE_SHIFT, run->fn0_pages);
	}
	printf("\nruns: %u (fewest slots covering exactly the holes)\n", info->nr_runs);
	printf("slots: %u, hole pages: %" PRIu64 ", covered: %" PRIu64
	       ", left to mmio: %" PRIu64 " (%" PRIu64 " function-0)\n",
	       info->nr_slots, info->hole_pages, info->covered_pages,
	       info->uncovered_pages, info->uncovered_fn0_pages);
}

static void print_json(const struct args *a, const struct pcihole_run *runs,
		       int n, const struct pcihole_plan_info *info)
{
	size_t i;
	int r;

	printf("{\n  \"segments\": [");
	for (i = 0; i < a->nr_segs; i++) {
		const struct pcihole_segment *s = &a->segs[i];

		printf("%s\n    {\"segment\": %u, \"base\": %" PRIu64 ", \"bus_start\": %u, \"bus_end\": %u}",
		       i ? "," : "", s->segment, s->base, s->bus_start, s->bus_end);
	}
	printf("\n  ],\n  \"present\": [");
	for (i = 0; i < a->nr_present; i++) {
		char buf[PCIHOLE_BDF_STRLEN];

		pcihole_bdf_format(&a->present[i], buf, sizeof(buf));
		printf("%s\"%s\"", i ? ", " : "", buf);
	}
	printf("],\n  \"runs\": [");
	for (r = 0; r < n; r++) {
		const struct pcihole_run *run = &runs[r];

		printf("%s\n    {\"slot\": %u, \"flags\": %u, \"guest_phys_addr\": %" PRIu64
		       ", \"memory_size\": %" PRIu64 ", \"pages\": %" PRIu64 ", \"fn0_pages\": %u}",
		       r ? "," : "", a->slot_base + (uint32_t)r, a->flags, run->gpa,
		       run->size, run->size >> PCIHOLE_PAGE_SHIFT, run->fn0_pages);
	}
	printf("\n  ],\n  \"nr_runs\": %u,\n  \"nr_slots\": %u,\n  \"hole_pages\": %" PRIu64
	       ",\n  \"covered_pages\": %" PRIu64 ",\n  \"uncovered_pages\": %" PRIu64
	       ",\n  \"uncovered_fn0_pages\": %" PRIu64 "\n}\n",
	       info->nr_runs, info->nr_slots, info->hole_pages, info->covered_pages,
	       info->uncovered_pages, info->uncovered_fn0_pages);
}

int main(int argc, char **argv)
{
	static struct args a;
	struct pcihole_plan_info info;
	struct pcihole_layout *l;
	struct pcihole_run *runs;
	size_t i, cap;
	int ret;

	a.budget = PCIHOLE_NO_BUDGET;
	a.flags = 1u << 1;
	a.present = calloc(MAX_PRESENT, sizeof(*a.present));
	a.present_str = calloc(MAX_PRESENT, sizeof(*a.present_str));
	if (!a.present || !a.present_str) {
		perror(prog);
		return 1;
	}
	parse_args(&a, argc, argv);

	ret = pcihole_layout_new(a.segs, a.nr_segs, a.phys_bits, &l);
	if (ret)
		bad_arg("--segment", "%s", seg_error(ret));
	for (i = 0; i < a.nr_present; i++) {
		ret = pcihole_layout_set_present(l, &a.present[i], true);
		if (ret == -ENOENT)
			bad_arg("--present", "function '%s' is in no segment", a.present_str[i]);
		if (ret == 0)
			bad_arg("--present", "function '%s' given twice", a.present_str[i]);
		if (ret < 0)
			bad_arg("--present", "function '%s': %s", a.present_str[i], strerror(-ret));
	}

	/* The size query, then the plan into an array of exactly that size. */
	cap = pcihole_plan_count(l);
	runs = calloc(cap ? cap : 1, sizeof(*runs));
	if (!runs) {
		perror(prog);
		return 1;
	}
	ret = pcihole_plan(l, a.budget, runs, cap, &info);
	if (ret < 0) {
		fprintf(stderr, "%s: planning failed: %s\n", prog, strerror(-ret));
		return 1;
	}
	if (a.json)
		print_json(&a, runs, ret, &info);
	else
		print_table(&a, l, runs, ret, &info);
	free(runs);
	pcihole_layout_free(l);
	free(a.present);
	free(a.present_str);
	return 0;
}
