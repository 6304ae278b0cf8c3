// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Replays every seed of the fuzz corpora and every saved fuzzer finding
 * (tests/fuzz/regressions/<harness>-<name>) through the harnesses' own checks,
 * so each build and compiler (gcc, valgrind, coverage) runs them, not only
 * clang's libFuzzer build.  One cmocka test per input file.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* A failed property fails this input's test instead of aborting the program. */
#define FUZZ_FAIL(...) fail_msg(__VA_ARGS__)

#define FUZZ_ENTRY fuzz_parse_one
#include "fuzz/fuzz_parse.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_plan_one
#include "fuzz/fuzz_plan.c"
#undef FUZZ_ENTRY

#ifndef PCIHOLE_FUZZ_DIR
#define PCIHOLE_FUZZ_DIR NULL
#endif

struct input {
	char *path;
	char *name;
	int (*entry)(const uint8_t *, size_t);
};

static void replay(void **state)
{
	const struct input *in = *state;
	FILE *fp = fopen(in->path, "rb");
	uint8_t *buf = NULL;
	long len;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	len = ftell(fp);
	assert_true(len >= 0);
	rewind(fp);
	/* Exact size, as libFuzzer hands it over. */
	buf = malloc(len ? (size_t)len : 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	in->entry(buf, (size_t)len);
	free(buf);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct input *)a)->name, ((const struct input *)b)->name);
}

/* Add every regular file of @dir; @entry NULL picks the harness by name prefix. */
static void collect(const char *dir, const char *label,
		    int (*entry)(const uint8_t *, size_t),
		    struct input **list, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		int (*e)(const uint8_t *, size_t) = entry;
		struct input *in;

		if (de->d_name[0] == '.')
			continue;
		if (!e && !strncmp(de->d_name, "parse-", 6))
			e = fuzz_parse_one;
		else if (!e && !strncmp(de->d_name, "plan-", 5))
			e = fuzz_plan_one;
		if (!e)
			continue;
		*list = realloc(*list, (*n + 1) * sizeof(**list));
		assert_non_null(*list);
		in = &(*list)[(*n)++];
		in->entry = e;
		assert_true(asprintf(&in->path, "%s/%s", dir, de->d_name) > 0);
		assert_true(asprintf(&in->name, "%s/%s", label, de->d_name) > 0);
	}
	closedir(d);
}

int main(void)
{
	const char *base = PCIHOLE_FUZZ_DIR;
	char *dflt = NULL, *dir;
	struct input *list = NULL;
	struct CMUnitTest *tests;
	size_t n = 0, i;
	int ret;

	if (!base) {
		/* Without the build's definition: tests/fuzz next to this file. */
		const char *slash = strrchr(__FILE__, '/');

		assert_true(asprintf(&dflt, "%.*sfuzz", slash ? (int)(slash - __FILE__ + 1) : 0,
				     __FILE__) > 0);
		base = dflt;
	}
	assert_true(asprintf(&dir, "%s/regressions", base) > 0);
	collect(dir, "regressions", NULL, &list, &n);
	free(dir);
	assert_true(asprintf(&dir, "%s/corpus_parse", base) > 0);
	collect(dir, "corpus_parse", fuzz_parse_one, &list, &n);
	free(dir);
	assert_true(asprintf(&dir, "%s/corpus_plan", base) > 0);
	collect(dir, "corpus_plan", fuzz_plan_one, &list, &n);
	free(dir);
	if (!n) {
		fprintf(stderr, "no fuzz inputs found under %s\n", base);
		return 1;
	}
	qsort(list, n, sizeof(*list), by_name);

	tests = calloc(n, sizeof(*tests));
	assert_non_null(tests);
	for (i = 0; i < n; i++) {
		tests[i].name = list[i].name;
		tests[i].test_func = replay;
		tests[i].initial_state = &list[i];
	}
	ret = _cmocka_run_group_tests("fuzz_regressions", tests, n, NULL, NULL);
	for (i = 0; i < n; i++) {
		free(list[i].path);
		free(list[i].name);
	}
	free(list);
	free(tests);
	free(dflt);
	return ret;
}
