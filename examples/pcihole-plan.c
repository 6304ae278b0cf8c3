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
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pcihole.h>

#define MAX_PRESENT 65536

struct args {
	struct pcihole_segment segs[PCIHOLE_MAX_SEGMENTS];
	char *seg_opt[PCIHOLE_MAX_SEGMENTS];	/* "--mcfg", "--file F:3", ...: for messages */
	char *seg_arg[PCIHOLE_MAX_SEGMENTS];
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

/*
 * Arguments and file lines go into messages: control bytes are escaped so
 * the message stays the one line scripts expect.
 */
static void put_escaped(const char *s, FILE *f)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\n')
			fputs("\\n", f);
		else if (c == '\\')
			fputs("\\\\", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static void __attribute__((noreturn, format(printf, 2, 3)))
bad_arg(const char *arg, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: ", prog);
	put_escaped(arg, stderr);
	fputs(": ", stderr);
	put_escaped(msg, stderr);
	fputc('\n', stderr);
	exit(2);
}

static void *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d) {
		perror(prog);
		exit(1);
	}
	return d;
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

/* The library's number syntax (pcihole_segment_parse): decimal, or hex after 0x. */
static uint32_t parse_u32(const char *opt, const char *s, uint32_t min, uint32_t max)
{
	bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	const char *p = hex ? s + 2 : s;
	uint64_t v = 0;

	if (!*p)
		bad_arg(opt, "'%s' is not a number (decimal, or hex after 0x)", s);
	for (; *p; p++) {
		unsigned int d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned int)(*p - '0');
		else if (hex && isxdigit((unsigned char)*p))
			d = (unsigned int)(tolower((unsigned char)*p) - 'a' + 10);
		else
			bad_arg(opt, "'%s' is not a number (decimal, or hex after 0x)", s);
		v = v * (hex ? 16 : 10) + d;
		if (v > max)
			break;
	}
	if (v < min || v > max)
		bad_arg(opt, "'%s' is not a number in %" PRIu32 "..%" PRIu32, s, min, max);
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
	a->seg_opt[a->nr_segs] = xstrdup(opt);
	a->seg_arg[a->nr_segs] = xstrdup(s);
	a->segs[a->nr_segs++] = seg;
}

static void add_present(struct args *a, const char *opt, const char *list)
{
	char *copy = xstrdup(list), *rest = copy, *tok;

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

/*
 * One directive per line, any length: getline(), not a fixed buffer that
 * would cut a long line in two and read its tail as a line of its own.
 */
static void read_file(struct args *a, const char *path)
{
	char *line = NULL, where[64 + 4096];
	unsigned int lineno = 0;
	size_t cap = 0;
	struct stat st;
	ssize_t len;
	FILE *f = fopen(path, "re");

	if (!f)
		bad_arg("--file", "cannot open '%s': %s", path, strerror(errno));
	/* fopen() opens a directory; reading it then fails with EISDIR. */
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))
		bad_arg("--file", "'%s' is a directory", path);
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *key, *val, *extra, *rest = line;
		char *hash;

		lineno++;
		snprintf(where, sizeof(where), "--file %s:%u", path, lineno);
		if (strlen(line) != (size_t)len)
			bad_arg(where, "NUL byte in the line");
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		do
			key = strsep(&rest, " \t\r\n\v\f");
		while (key && !*key);
		if (!key)
			continue;
		do
			val = strsep(&rest, " \t\r\n\v\f");
		while (val && !*val);
		do
			extra = strsep(&rest, " \t\r\n\v\f");
		while (extra && !*extra);
		if (!val || extra)
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
	/* EOF and a read error look alike to getline(): an error must not pass as an empty file. */
	if (ferror(f))
		bad_arg("--file", "cannot read '%s': %s", path, strerror(errno));
	free(line);
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
		case 'b': a->budget = parse_u32("--budget", optarg, 0, UINT32_MAX - 1); break;
		case 'S': a->slot_base = parse_u32("--slot-base", optarg, 0, 0x7fff); break;
		case 'P': a->phys_bits = parse_u32("--phys-bits", optarg, 32, 64); break;
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
	case -EEXIST: return "overlaps another segment (in guest-physical space or in segment/bus numbers)";
	case -ERANGE: return "the window ends beyond the guest physical address width (--phys-bits)";
	case -E2BIG: return "too many segments";
	default: return "invalid segment (base must be 1 MiB aligned, FIRST <= LAST)";
	}
}

/* Name the option (or file line) of the first segment that makes the set invalid. */
static void __attribute__((noreturn)) bad_segments(const struct args *a, int err)
{
	for (size_t i = 1; i <= a->nr_segs; i++) {
		int r = pcihole_segments_validate(a->segs, i, a->phys_bits);

		if (r < 0)
			bad_arg(a->seg_opt[i - 1], "'%s': %s", a->seg_arg[i - 1], seg_error(r));
	}
	bad_arg("--segment", "%s", seg_error(err));
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
		bad_segments(&a, ret);
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
	for (i = 0; i < a.nr_segs; i++) {
		free(a.seg_opt[i]);
		free(a.seg_arg[i]);
	}
	free(a.present);
	free(a.present_str);
	return 0;
}
