/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The command line, and the one-line messages every error ends in.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch.h"

const char *const mode_names[] = {
	[LM_AUTO] = "auto",
	[LM_PCI_HOLE] = "pci-hole",
	[LM_READONLY] = "readonly",
	[LM_MMIO] = "mmio",
	[LM_NAIVE_READONLY] = "naive-readonly",
};

const char *const scan_names[] = {
	[SCAN_LINUX] = "linux",
	[SCAN_FIRMWARE] = "firmware",
	[SCAN_BRUTE] = "brute",
};

static const char usage_text[] =
	"usage: " PROG " [options]\n"
	"  --segment S:BASE:A-B     ECAM window of segment S at BASE (the window start,\n"
	"                           i.e. bus A's page) for buses A-B; repeatable\n"
	"                           (default 0:0xb0000000:0-255, QEMU q35)\n"
	"  --device BDF[,multifunction]\n"
	"                           an emulated function, e.g. 00:1f.0,multifunction or\n"
	"                           0001:02:03.0; functions 1-7 need function 0 with\n"
	"                           multifunction; repeatable\n"
	"  --mode M                 auto | pci-hole | readonly | mmio | naive-readonly\n"
	"                           (default auto)\n"
	"  --scan P                 linux | firmware | brute (default linux)\n"
	"  --repeat N               scans to run (default 1)\n"
	"  --slots N                slot budget for the holes (default: all KVM has)\n"
	"  --shadow                 serve the functions' config reads from shadow pages\n"
	"                           the device model keeps current (pcihole_ctx_shadow):\n"
	"                           reads need no exit, writes still do; readonly and\n"
	"                           mmio modes (auto then means readonly)\n"
	"  --no-prefault            do not pre-fault the hole slots\n"
	"  --json                   print the results as one JSON object\n"
	"  -v, --verbose            log what libpcihole does\n"
	"  --hotplug BDF[,multifunction]\n"
	"                           a function that appears after scan 1 (the library\n"
	"                           re-plans and changes only the slots that differ)\n"
	"  --unplug BDF             a --device that disappears after scan 1\n"
	"  --churn BDF              a --device that a second thread unplugs and plugs\n"
	"                           again and again while the guest scans (the guest\n"
	"                           may or may not see it; everything else must hold)\n"
	"  --bench                  run every mode side by side, each in a fresh VM, and\n"
	"                           print one table, then the config exits by class for\n"
	"                           mmio / holes (readonly) / holes + shadow under the\n"
	"                           linux and firmware scans (default devices: the q35\n"
	"                           six, 00:00.0 00:01.0 00:02.0 00:1f.0 00:1f.2 00:1f.3)\n"
	"  --plot-data FILE         with --bench: also write gnuplot columns to FILE\n"
	"  -h, --help               this text\n"
	"exit: 0 ok, 1 scan mismatch or VM failure, 2 bad arguments, 3 mode unavailable\n";

/*
 * Arguments go into messages: control bytes are escaped so that every
 * message stays the one line scripts expect.
 */
static void __attribute__((format(printf, 1, 0)))
vput_escaped(const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (const char *p = msg; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\n')
			fputs("\\n", stderr);
		else if (c == '\\')
			fputs("\\\\", stderr);
		else if (c < 0x20 || c == 0x7f)
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
}

/* One line on stderr, exit 2: scripts and people see which argument was wrong. */
void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vput_escaped(fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	exit(EXIT_USAGE);
}

/* The library's number syntax (pcihole_segment_parse): decimal, or hex after 0x. */
static unsigned long parse_count(const char *opt, const char *arg,
				 unsigned long min, unsigned long max)
{
	bool hex = arg[0] == '0' && (arg[1] == 'x' || arg[1] == 'X');
	const char *p = hex ? arg + 2 : arg;
	unsigned long long v = 0;

	for (; *p && v <= max; p++) {
		unsigned int d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned int)(*p - '0');
		else if (hex && *p >= 'a' && *p <= 'f')
			d = (unsigned int)(*p - 'a' + 10);
		else if (hex && *p >= 'A' && *p <= 'F')
			d = (unsigned int)(*p - 'A' + 10);
		else
			break;
		v = v * (hex ? 16 : 10) + d;
	}
	if (*p || p == (hex ? arg + 2 : arg) || v < min || v > max)
		usage_error("%s %s: want a number from %lu to %lu (decimal, or hex after 0x)",
			    opt, arg, min, max);
	return (unsigned long)v;
}

static void add_device(struct options *o, const char *opt, const char *arg)
{
	char bdf_text[32];
	const char *comma = strchr(arg, ',');
	size_t n = comma ? (size_t)(comma - arg) : strlen(arg);
	struct function *f;

	if (n >= sizeof(bdf_text))
		usage_error("%s %s: malformed function address (want BB:DD.F or SSSS:BB:DD.F)",
			    opt, arg);
	memcpy(bdf_text, arg, n);
	bdf_text[n] = '\0';

	if (o->nr_fns >= 0x10000)
		usage_error("%s %s: too many devices", opt, arg);
	f = realloc(o->fns, (o->nr_fns + 1) * sizeof(*f));
	if (!f) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(EXIT_FAIL);
	}
	o->fns = f;
	f = &o->fns[o->nr_fns];
	memset(f, 0, sizeof(*f));
	f->opt = opt;
	f->arg = arg;
	f->hotplug = !strcmp(opt, "--hotplug");
	if (pcihole_bdf_parse(bdf_text, &f->bdf) < 0)
		usage_error("%s %s: malformed function address (want BB:DD.F or SSSS:BB:DD.F)",
			    opt, arg);
	if (comma) {
		if (strcmp(comma + 1, "multifunction") != 0)
			usage_error("%s %s: unknown property '%s' (only 'multifunction')",
				    opt, arg, comma + 1);
		f->multifunction = true;
	}
	f->device_id = (uint16_t)(DEVICE_ID_BASE + o->nr_fns);
	o->nr_fns++;
}

static int lookup(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "segment", required_argument, NULL, 's' },
		{ "device", required_argument, NULL, 'd' },
		{ "mode", required_argument, NULL, 'm' },
		{ "scan", required_argument, NULL, 'S' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "slots", required_argument, NULL, 'b' },
		{ "no-prefault", no_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "bench", no_argument, NULL, 'B' },
		{ "plot-data", required_argument, NULL, 'D' },
		{ "hotplug", required_argument, NULL, 'H' },
		{ "unplug", required_argument, NULL, 'U' },
		{ "churn", required_argument, NULL, 'C' },
		{ "shadow", no_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, v;

	memset(o, 0, sizeof(*o));
	o->mode = LM_AUTO;
	o->scan = SCAN_LINUX;
	o->repeat = 1;
	o->slot_budget = PCIHOLE_NO_BUDGET;
	o->prefault = true;

	opterr = 0;	/* our own one-line messages */
	while ((c = getopt_long(argc, argv, ":vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (o->nr_segs >= PCIHOLE_MAX_SEGMENTS)
				usage_error("--segment %s: more than %u segments", optarg,
					    PCIHOLE_MAX_SEGMENTS);
			if (pcihole_segment_parse(optarg, &o->segs[o->nr_segs]) < 0)
				usage_error("--segment %s: malformed (want SEG:BASE:START-END, e.g. 0:0xb0000000:0-255)",
					    optarg);
			o->seg_args[o->nr_segs++] = optarg;
			break;
		case 'd':
			add_device(o, "--device", optarg);
			break;
		case 'H':
			add_device(o, "--hotplug", optarg);
			break;
		case 'C':
			if (o->churn)
				usage_error("--churn %s: only one --churn", optarg);
			o->churn = optarg;
			break;
		case 'U':
			if (o->nr_unplug >= sizeof(o->unplug) / sizeof(o->unplug[0]))
				usage_error("--unplug %s: too many", optarg);
			o->unplug[o->nr_unplug++] = optarg;
			break;
		case 'm':
			v = lookup(mode_names, sizeof(mode_names) / sizeof(mode_names[0]), optarg);
			if (v < 0)
				usage_error("--mode %s: unknown mode (auto, pci-hole, readonly, mmio, naive-readonly)",
					    optarg);
			o->mode = (enum launch_mode)v;
			break;
		case 'S':
			v = lookup(scan_names, sizeof(scan_names) / sizeof(scan_names[0]), optarg);
			if (v < 0)
				usage_error("--scan %s: unknown scan (linux, firmware, brute)", optarg);
			o->scan = (unsigned int)v;
			break;
		case 'r':
			o->repeat = (unsigned int)parse_count("--repeat", optarg, 1, 1000000);
			break;
		case 'b':
			o->slot_budget = (uint32_t)parse_count("--slots", optarg, 0, 0xffff);
			break;
		case 'P':
			o->prefault = false;
			break;
		case 'j':
			o->json = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'B':
			o->bench = true;
			break;
		case 'W':
			o->shadow = true;
			break;
		case 'D':
			o->plot_data = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(EXIT_OK);
		case ':':
			usage_error("%s: needs an argument", argv[optind - 1]);
		default:
			usage_error("%s: unknown option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("%s: unexpected argument", argv[optind]);
	if (o->plot_data && !o->bench)
		usage_error("--plot-data %s: only with --bench", o->plot_data);
	for (size_t i = 0; i < o->nr_fns; i++)
		o->hotplug |= o->fns[i].hotplug;
	o->hotplug |= o->nr_unplug > 0;
	if (o->hotplug) {
		const char *what = o->nr_unplug ? "--unplug" : "--hotplug";

		if (o->bench)
			usage_error("%s: not with --bench", what);
		if (o->mode == LM_NAIVE_READONLY)
			usage_error("%s: mode naive-readonly has no hotplug (its slots are made by hand)",
				    what);
		if (o->repeat < 2)
			usage_error("%s: needs --repeat 2 or more (it happens after scan 1)", what);
	}
	if (o->churn) {
		if (o->bench || o->hotplug)
			usage_error("--churn %s: not with --bench, --hotplug or --unplug", o->churn);
		if (o->mode == LM_NAIVE_READONLY)
			usage_error("--churn %s: mode naive-readonly has no hotplug", o->churn);
	}
	if (o->shadow && o->mode == LM_NAIVE_READONLY)
		usage_error("--shadow: mode naive-readonly has no context to shadow functions with");
	if (o->shadow && o->bench)
		usage_error("--shadow: not with --bench (it runs holes + shadow itself)");
	if (o->bench && !o->nr_fns) {
		static const char *const q35[] = {
			"00:00.0", "00:01.0", "00:02.0", "00:1f.0,multifunction", "00:1f.2", "00:1f.3",
		};

		for (size_t i = 0; i < sizeof(q35) / sizeof(q35[0]); i++)
			add_device(o, "--device", q35[i]);
	}

	if (!o->nr_segs) {
		static const char dflt[] = "0:0xb0000000:0-255";

		pcihole_segment_parse(dflt, &o->segs[0]);
		o->seg_args[0] = dflt;
		o->nr_segs = 1;
	}
}

void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vput_escaped(fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}
