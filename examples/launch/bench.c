/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * --bench: every mode side by side, each in a fresh VM in a child process.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

/*
 * Each mode runs in a child process with its own VM, so one mode's memory,
 * page tables or failure cannot colour the next one's numbers.  The child
 * writes its numbers (struct launch_result) into memory shared with the
 * parent, which tabulates them; its --json text comes back through a memfd
 * only to be embedded as it is in --bench --json, never read for numbers.
 */
struct bench_row {
	const char *label;
	enum launch_mode mode;
	bool prefault;
	bool shadow;		/* the exit-class rows: --shadow */
	int scan;		/* the exit-class rows: their scan (-1: the bench's) */
	int code;		/* the child's exit code */
	struct launch_result res;
	char *out;		/* its --json report */
	char *err;		/* its stderr */
};

/* Did the child get as far as its report? */
static bool has_report(const struct bench_row *row)
{
	return (row->code == EXIT_OK || row->code == EXIT_FAIL) && row->res.valid;
}

static char *slurp(int fd)
{
	off_t size = lseek(fd, 0, SEEK_END);
	char *buf;

	if (size < 0 || lseek(fd, 0, SEEK_SET) < 0)
		die(EXIT_FAIL, "bench: lseek: %s", strerror(errno));
	buf = calloc(1, (size_t)size + 1);
	if (!buf || read(fd, buf, (size_t)size) != size)
		die(EXIT_FAIL, "bench: cannot read a child's report");
	close(fd);
	return buf;
}

static void bench_run(struct options *o, struct bench_row *row)
{
	int out = memfd_create("pcihole-bench-out", MFD_CLOEXEC);
	int err = memfd_create("pcihole-bench-err", MFD_CLOEXEC);
	struct launch_result *shared;
	int status;
	pid_t pid;

	if (out < 0 || err < 0)
		die(EXIT_FAIL, "bench: memfd_create: %s", strerror(errno));
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (shared == MAP_FAILED)
		die(EXIT_FAIL, "bench: mmap: %s", strerror(errno));
	memset(shared, 0, sizeof(*shared));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die(EXIT_FAIL, "bench: fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
			_exit(EXIT_FAIL);
		o->mode = row->mode;
		o->prefault = row->prefault;
		o->shadow = row->shadow;
		/* The exit-class rows count the first scan only. */
		if (row->scan >= 0) {
			o->scan = (unsigned int)row->scan;
			o->repeat = 1;
		}
		o->json = true;
		o->bench = false;
		exit(run_one(o, shared));
	}
	if (waitpid(pid, &status, 0) < 0)
		die(EXIT_FAIL, "bench: waitpid: %s", strerror(errno));
	row->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	row->res = *shared;
	munmap(shared, sizeof(*shared));
	row->out = slurp(out);
	row->err = slurp(err);
}

/* The name of a row: auto shows what it chose. */
static void row_name(const struct bench_row *row, char *buf, size_t len)
{
	if (row->mode == LM_AUTO)
		snprintf(buf, len, "auto=%s", mode_names[row->res.mode]);
	else
		snprintf(buf, len, "%s", row->label);
}

static void first_line(const char *text, char *buf, size_t len)
{
	size_t n = strcspn(text, "\n");

	if (!strncmp(text, PROG ": ", strlen(PROG ": ")))
		text += strlen(PROG ": "), n -= strlen(PROG ": ");
	snprintf(buf, len, "%.*s", (int)n, text);
}

static void fmt_bytes(char *buf, size_t len, double bytes)
{
	if (bytes < 0)
		snprintf(buf, len, "-");
	else if (bytes >= 1048576)
		snprintf(buf, len, "%.1f MiB", bytes / 1048576);
	else
		snprintf(buf, len, "%.0f KiB", bytes / 1024);
}

static void fmt_ms(char *buf, size_t len, double us)
{
	if (us < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.3f", us / 1000);
}

static void fmt_ratio(char *buf, size_t len, double us, double mmio_us)
{
	if (us <= 0 || mmio_us <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1fx", mmio_us / us);
}

static void bench_header(const struct options *o, FILE *f)
{
	char seg[PCIHOLE_SEGMENT_STRLEN];
	struct utsname u;

	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "?");
	fprintf(f, "libpcihole side by side: --scan %s, %u scans per mode, kernel %s\nsegments:",
		scan_names[o->scan], o->repeat, u.release);
	for (size_t i = 0; i < o->nr_segs; i++) {
		pcihole_segment_format(&o->segs[i], seg, sizeof(seg));
		fprintf(f, " %s", seg);
	}
	fprintf(f, "; functions:");
	for (size_t i = 0; i < o->nr_fns; i++)
		fprintf(f, " %s", o->fns[i].arg);
	fprintf(f, "\nNOTE: times are host wall clock per guest scan.  Where /dev/kvm runs guest code "
		"through KVM's\ninstruction emulator (~1 us per guest instruction, as on the machine "
		"this was written on)\nthey are NOT representative; exit counts, slots and memory are "
		"exact everywhere.\n");
}

static void bench_table(const struct options *o, struct bench_row *rows, size_t n)
{
	const struct launch_result *mmio = &rows[0].res;

	bench_header(o, stdout);
	printf("This KVM: %.1f ns per guest loop iteration: guest code is %s\n", mmio->guest_loop_ns,
	       mmio->guest_loop_ns > CAL_EMULATED_NS
		       ? "EMULATED, so the times below are NOT representative"
		       : "executed, so the times below are representative");
	printf("\n%-15s %5s %-8s %10s %10s %8s %9s %10s %10s %8s %8s %8s\n", "mode", "slots",
	       "backing", "all-ones", "PSS-delta", "memfd-ms", "setup-ms", "first-ms", "repeat-ms",
	       "hole-ex", "first-x", "repeat-x");
	for (size_t i = 0; i < n; i++) {
		const struct launch_result *r = &rows[i].res;
		char name[48], mem[16], pss[16], setup[16], first[16];
		char rep[16], fx[16], rx[16], mfd[16], msg[256];

		if (!has_report(&rows[i])) {
			first_line(rows[i].err, msg, sizeof(msg));
			if (rows[i].code == EXIT_UNSUPPORTED)
				printf("%-15s n/a: %s\n", rows[i].label, msg);
			else
				printf("%-15s FAILED (exit %d): %s\n", rows[i].label, rows[i].code, msg);
			continue;
		}
		row_name(&rows[i], name, sizeof(name));
		fmt_bytes(mem, sizeof(mem), (double)r->allones_bytes);
		if (r->pss_delta_kib >= 1024 || r->pss_delta_kib <= -1024)
			snprintf(pss, sizeof(pss), "%+.1f MiB", r->pss_delta_kib / 1024.0);
		else
			snprintf(pss, sizeof(pss), "%+" PRId64 " KiB", r->pss_delta_kib);
		fmt_ms(setup, sizeof(setup), r->setup_us);
		if (r->memfd_us > 0)
			fmt_ms(mfd, sizeof(mfd), r->memfd_us);
		else
			snprintf(mfd, sizeof(mfd), "-");
		fmt_ms(first, sizeof(first), r->first_scan_us);
		fmt_ms(rep, sizeof(rep), r->repeat_scan_us);
		fmt_ratio(fx, sizeof(fx), r->first_scan_us, mmio->first_scan_us);
		fmt_ratio(rx, sizeof(rx), r->repeat_scan_us, mmio->repeat_scan_us);
		printf("%-15s %5u %-8s %10s %10s %8s %9s %10s %10s %8" PRIu64 " %8s %8s\n", name,
		       r->slots, r->backing, mem, pss, mfd, setup, first, rep, r->hole_exits_first,
		       fx, rx);
		if (rows[i].code != EXIT_OK) {
			first_line(rows[i].err, msg, sizeof(msg));
			printf("%-15s FAILED: %s\n", "", msg);
		}
	}
	printf("\nhole-ex: exits to userspace for hole accesses in the first scan; first-x, repeat-x: "
	       "mmio time / mode time.\nmemfd-ms: making the all-ones memfd, once per host; setup-ms: "
	       "attaching to the VM (plan, mappings, slots;\nnaive-readonly: its fill).\nall-ones: memory holding 0xff (the shared memfd; for "
	       "naive-readonly, private pages).  PSS-delta: the\nVMM's proportional set size after "
	       "the scans minus before the backend (hugetlb pages are not in it).\n");
	for (size_t i = 0; i < n; i++) {
		const struct launch_result *r = &rows[i].res;

		if (rows[i].mode != LM_READONLY || !rows[i].prefault || rows[i].code != EXIT_OK)
			continue;
		printf("readonly: all-ones backing %s; KVM_PRE_FAULT_MEMORY %s", r->backing,
		       r->prefault);
		if (!strcmp(r->prefault, "done"))
			printf(" (%.3f ms at setup)", r->prefault_us / 1000);
		printf("\n");
	}
}

/*
 * The second table: config-space exits of the first scan by class, for the
 * three ways a VMM can serve config space, under both enumerators.  Exact
 * counts (the same on every host); "removed" is the share of mmio's config
 * exits that no longer happen.
 */
#define CLASS_ROWS 4	/* mmio, holes, holes+shadow, pci-hole+shadow */

static void class_table(struct bench_row *rows, size_t n)
{
	printf("\nConfig-space exits by class, first scan (exact on every host): hole = absent "
	       "function,\npresent = trapped function, shadowed = function on a shadow page; "
	       "removed = share of mmio's\nconfig exits gone.  mmio: every access exits; holes: "
	       "readonly slots over the holes;\nholes+shadow: readonly --shadow (one slot a "
	       "window); pci-hole+shadow: PCI_HOLE slots\nfor the holes, read-only slots for "
	       "the shadow pages.\nfirst-ms, first-x: the first scan's time and mmio's time / "
	       "its time (wall clock, see the NOTE).\n");
	printf("\n%-9s %-15s %7s %7s %7s %7s %7s %7s %8s %8s %5s %10s %8s\n", "scan", "setup",
	       "hole-rd", "hole-wr", "pres-rd", "pres-wr", "shad-rd", "shad-wr", "config", "removed",
	       "slots", "first-ms", "first-x");
	for (size_t i = 0; i < n; i++) {
		const struct bench_row *row = &rows[i];
		const struct exits *e = &row->res.first;
		/* Each scan's first row is its mmio baseline. */
		const struct bench_row *base = &rows[i - i % CLASS_ROWS];
		char removed[16], msg[256], first[32], fx[32];

		if (!has_report(row)) {
			first_line(row->err, msg, sizeof(msg));
			printf("%-9s %-15s %s: %s\n", scan_names[row->scan], row->label,
			       row->code == EXIT_UNSUPPORTED ? "n/a" : "FAILED", msg);
			continue;
		}
		if (row == base || !has_report(base) || !exits_config(&base->res.first))
			snprintf(removed, sizeof(removed), "-");
		else
			snprintf(removed, sizeof(removed), "%.1f%%",
				 100.0 * (1.0 - (double)exits_config(e) /
					  (double)exits_config(&base->res.first)));
		fmt_ms(first, sizeof(first), row->res.first_scan_us);
		if (has_report(base))
			fmt_ratio(fx, sizeof(fx), row->res.first_scan_us, base->res.first_scan_us);
		else
			snprintf(fx, sizeof(fx), "-");
		printf("%-9s %-15s %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64
		       " %7" PRIu64 " %8" PRIu64 " %8s %5u %10s %8s\n", scan_names[row->scan],
		       row->label, e->hole_reads, e->hole_writes, e->present_reads, e->present_writes,
		       e->shadow_reads, e->shadow_writes, exits_config(e), removed, row->res.slots,
		       first, fx);
		if (row->code != EXIT_OK) {
			first_line(row->err, msg, sizeof(msg));
			printf("%-23s FAILED: %s\n", "", msg);
		}
	}
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s && *s != '\n'; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static void bench_json(const struct options *o, struct bench_row *rows, size_t n,
		       struct bench_row *cls, size_t ncls)
{
	printf("{\n\"bench\": {\"scan\": \"%s\", \"repeat\": %u, \"segments\": [", scan_names[o->scan],
	       o->repeat);
	for (size_t i = 0; i < o->nr_segs; i++) {
		char seg[PCIHOLE_SEGMENT_STRLEN];

		pcihole_segment_format(&o->segs[i], seg, sizeof(seg));
		printf("%s\"%s\"", i ? ", " : "", seg);
	}
	printf("], \"nr_functions\": %zu, \"note\": \"times are host wall clock; not representative "
	       "where /dev/kvm emulates guest code\"},\n\"results\": [\n", o->nr_fns);
	for (size_t i = 0; i < n; i++) {
		printf("{\"label\": \"%s\", \"exit\": %d, ", rows[i].label, rows[i].code);
		if (rows[i].code != EXIT_OK) {
			printf("\"error\": ");
			json_string(rows[i].err);
			printf(", ");
		}
		if (has_report(&rows[i]))
			printf("\"report\":\n%s}", rows[i].out);	/* it ends with "}\n" */
		else
			printf("\"report\": null}");
		printf("%s\n", i + 1 < n ? "," : "");
	}
	printf("],\n\"exit_classes\": [\n");
	for (size_t i = 0; i < ncls; i++) {
		const struct exits *e = &cls[i].res.first;

		printf("{\"scan\": \"%s\", \"setup\": \"%s\", \"exit\": %d", scan_names[cls[i].scan],
		       cls[i].label, cls[i].code);
		if (has_report(&cls[i]))
			printf(", \"slots\": %u, \"shadowed\": %u, \"hole_reads\": %" PRIu64
			       ", \"hole_writes\": %" PRIu64 ", \"present_reads\": %" PRIu64
			       ", \"present_writes\": %" PRIu64 ", \"shadow_reads\": %" PRIu64
			       ", \"shadow_writes\": %" PRIu64 ", \"config\": %" PRIu64,
			       cls[i].res.slots, cls[i].res.nr_shadowed, e->hole_reads, e->hole_writes,
			       e->present_reads, e->present_writes, e->shadow_reads, e->shadow_writes,
			       exits_config(e));
		printf("}%s\n", i + 1 < ncls ? "," : "");
	}
	printf("]\n}\n");
}

static void bench_plot_data(const struct options *o, struct bench_row *rows, size_t n)
{
	FILE *f = fopen(o->plot_data, "we");

	if (!f)
		die(EXIT_FAIL, "--plot-data %s: %s", o->plot_data, strerror(errno));
	fprintf(f, "# label first_ms repeat_ms hole_exits_first allones_MiB\n");
	for (size_t i = 0; i < n; i++) {
		const struct launch_result *r = &rows[i].res;
		char name[48];

		if (rows[i].code != EXIT_OK || !r->valid)
			continue;
		row_name(&rows[i], name, sizeof(name));
		fprintf(f, "\"%s\" %.4f %.4f %" PRIu64 " %.4f\n", name, r->first_scan_us / 1000,
			r->repeat_scan_us / 1000, r->hole_exits_first,
			r->allones_bytes / 1048576.0);
	}
	if (fclose(f))
		die(EXIT_FAIL, "--plot-data %s: %s", o->plot_data, strerror(errno));
}

int run_bench(struct options *o)
{
	struct bench_row rows[] = {
		{ .label = "mmio", .mode = LM_MMIO, .prefault = true, .scan = -1 },
		{ .label = "naive-readonly", .mode = LM_NAIVE_READONLY, .prefault = true, .scan = -1 },
		{ .label = "readonly", .mode = LM_READONLY, .prefault = true, .scan = -1 },
		{ .label = "readonly-nopf", .mode = LM_READONLY, .prefault = false, .scan = -1 },
		{ .label = "pci-hole", .mode = LM_PCI_HOLE, .prefault = true, .scan = -1 },
		{ .label = "auto", .mode = LM_AUTO, .prefault = true, .scan = -1 },
	};
	/* CLASS_ROWS per scan, the mmio baseline first (class_table() relies on it). */
	struct bench_row cls[] = {
		{ .label = "mmio", .mode = LM_MMIO, .prefault = true, .scan = SCAN_LINUX },
		{ .label = "holes", .mode = LM_READONLY, .prefault = true, .scan = SCAN_LINUX },
		{ .label = "holes+shadow", .mode = LM_READONLY, .prefault = true, .shadow = true,
		  .scan = SCAN_LINUX },
		{ .label = "pci-hole+shadow", .mode = LM_PCI_HOLE, .prefault = true, .shadow = true,
		  .scan = SCAN_LINUX },
		{ .label = "mmio", .mode = LM_MMIO, .prefault = true, .scan = SCAN_FIRMWARE },
		{ .label = "holes", .mode = LM_READONLY, .prefault = true, .scan = SCAN_FIRMWARE },
		{ .label = "holes+shadow", .mode = LM_READONLY, .prefault = true, .shadow = true,
		  .scan = SCAN_FIRMWARE },
		{ .label = "pci-hole+shadow", .mode = LM_PCI_HOLE, .prefault = true, .shadow = true,
		  .scan = SCAN_FIRMWARE },
	};
	size_t n = sizeof(rows) / sizeof(rows[0]), ncls = sizeof(cls) / sizeof(cls[0]);
	int code = EXIT_OK;

	if (o->repeat < 2)
		o->repeat = 3;	/* a bench compares first and repeat scans */
	pcihole_layout_free(setup_layout(o));	/* bad arguments: exit 2 before any VM */

	for (size_t i = 0; i < n; i++) {
		bench_run(o, &rows[i]);
		/*
		 * Where the kernel cannot pre-fault, the readonly row already is
		 * the no-prefault case: drop the next row.
		 */
		if (rows[i].mode == LM_READONLY && rows[i].prefault && i + 1 < n &&
		    strcmp(rows[i].res.prefault, "done")) {
			memmove(&rows[i + 1], &rows[i + 2], (n - i - 2) * sizeof(rows[0]));
			n--;
		}
		/* 3: the kernel cannot do this mode, which is a result, not a failure. */
		if (rows[i].code != EXIT_OK && rows[i].code != EXIT_UNSUPPORTED)
			code = EXIT_FAIL;
	}
	for (size_t i = 0; i < ncls; i++) {
		bench_run(o, &cls[i]);
		if (cls[i].code != EXIT_OK && cls[i].code != EXIT_UNSUPPORTED)
			code = EXIT_FAIL;
	}
	if (!has_report(&rows[0])) {
		char msg[256];

		first_line(rows[0].err, msg, sizeof(msg));
		die(rows[0].code, "bench: mode mmio failed: %s", msg);
	}
	if (o->json) {
		bench_json(o, rows, n, cls, ncls);
	} else {
		bench_table(o, rows, n);
		class_table(cls, ncls);
	}
	if (o->plot_data)
		bench_plot_data(o, rows, n);
	for (size_t i = 0; i < n; i++) {
		free(rows[i].out);
		free(rows[i].err);
	}
	for (size_t i = 0; i < ncls; i++) {
		free(cls[i].out);
		free(cls[i].err);
	}
	return code;
}
