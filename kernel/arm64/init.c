// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * /init of the arm64 leg's initramfs (static, no busybox): mount what the
 * tests need, run each step of /opt/steps, print a summary line that
 * boot.sh looks for, and power off.
 *
 * /opt/steps: one step per line, "name<TAB>program arg...", arguments split
 * at spaces.  /opt/env: KEY=VALUE lines exported to every step.
 * A step passes with exit 0; exit 4 (KSFT_SKIP) counts as skipped for steps
 * whose name is listed in /opt/skip-ok (the selftest on a stock kernel).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void put(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(s, f);
		fclose(f);
	}
}

static int listed(const char *file, const char *name)
{
	char line[256];
	FILE *f = fopen(file, "r");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		found = !strcmp(line, name);
	}
	fclose(f);
	return found;
}

static void load_env(void)
{
	char line[512];
	FILE *f = fopen("/opt/env", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *eq;

		line[strcspn(line, "\n")] = 0;
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = 0;
		setenv(line, eq + 1, 1);
	}
	fclose(f);
}

static int run_step(char *cmd)
{
	char *argv[64];
	int argc = 0, status;
	pid_t pid;

	for (char *tok = strtok(cmd, " "); tok && argc < 63; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;
	if (!argc)
		return 127;
	pid = fork();
	if (pid == 0) {
		if (chdir("/tmp"))
			_exit(126);
		execv(argv[0], argv);
		fprintf(stderr, "init: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 125;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	fprintf(stderr, "init: %s killed by signal %d\n", argv[0], WTERMSIG(status));
	return 128 + WTERMSIG(status);
}

int main(void)
{
	int pass = 0, fail = 0, skip = 0;
	char line[1024];
	struct utsname u;
	FILE *steps;

	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mkdir("/dev/shm", 0755);
	mount("tmpfs", "/dev/shm", "tmpfs", 0, NULL);
	mkdir("/tmp", 01777);
	put("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "always");
	setenv("PATH", "/opt:/bin", 1);
	setenv("LD_LIBRARY_PATH", "/opt/lib", 1);
	load_env();
	uname(&u);
	printf("BOOT: %s %s kvm=%s page_size=%ld\n", u.release, u.machine,
	       access("/dev/kvm", R_OK | W_OK) ? "no" : "yes", sysconf(_SC_PAGESIZE));
	fflush(stdout);

	steps = fopen("/opt/steps", "r");
	while (steps && fgets(line, sizeof(line), steps)) {
		char *tab, *name;
		double t0;
		int rc;

		line[strcspn(line, "\n")] = 0;
		tab = strchr(line, '\t');
		if (!tab)
			continue;
		*tab = 0;
		name = line;
		printf("=== RUN %s\n", name);
		fflush(stdout);
		t0 = now();
		rc = run_step(tab + 1);
		printf("=== %s rc=%d %.3f s\n", name, rc, now() - t0);
		if (rc == 0) {
			printf("STEP-PASS: %s\n", name);
			pass++;
		} else if (rc == 4 && listed("/opt/skip-ok", name)) {
			printf("STEP-SKIP: %s (expected here)\n", name);
			skip++;
		} else {
			printf("STEP-FAIL: %s (rc=%d)\n", name, rc);
			fail++;
		}
		fflush(stdout);
	}
	printf("PCIHOLE-ARM64-SUMMARY: kernel=%s expect=%s %d passed, %d failed, %d skipped\n",
	       getenv("PCIHOLE_KERNEL") ? getenv("PCIHOLE_KERNEL") : "?",
	       getenv("PCIHOLE_EXPECT_MODE") ? getenv("PCIHOLE_EXPECT_MODE") : "?",
	       pass, fail, skip);
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
