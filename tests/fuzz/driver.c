/*
 * driver - a main() for the fuzz targets without libFuzzer: runs
 * LLVMFuzzerTestOneInput over every file named, and every regular file
 * of every directory named (in name order), so the seed corpora and the
 * reproducers of past crashes run under gcc in `make check`.  Prints one
 * line per input to stderr with -v.  Exits 0 when every input ran (a
 * broken invariant aborts), 1 when an input could not be read, 64 for
 * usage.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"
#include "util.h"

/* Inputs larger than this are refused: seeds are small. */
#define DRIVER_MAX_INPUT (1024 * 1024)

static int verbose;

/* Run the target on a private copy of exactly n bytes (so a memory
 * checker sees reads past the end). */
static void
run_bytes(const char *p, size_t n)
{
	uint8_t *copy = xmalloc(n ? n : 1);

	if (n > 0)
		memcpy(copy, p, n);
	LLVMFuzzerTestOneInput(copy, n);
	free(copy);
}

/* Run one file through the target; 0, or -1 when it cannot be read. */
static int
run_file(const char *path)
{
	struct buf b = BUF_INIT;
	char chunk[8192];
	ssize_t n;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 &&
	    b.len + (size_t)n <= DRIVER_MAX_INPUT)
		buf_add(&b, chunk, (size_t)n);
	if (n != 0) {
		fprintf(stderr, "%s: %s\n", path,
		    n < 0 ? strerror(errno) : "too large");
		goto out;
	}
	if (verbose)
		fprintf(stderr, "running %s (%zu bytes)\n", path, b.len);
	run_bytes(b.data, b.len);
	rc = 0;
out:
	close(fd);
	buf_free(&b, 0);
	return rc;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Run every regular file of dir; returns the number of inputs run, or -1. */
static long
run_dir(const char *dir)
{
	struct dirent **names;
	struct stat st;
	long count = 0;
	int i, n;

	if ((n = scandir(dir, &names, NULL, by_name)) < 0) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]->d_name);

		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(path) != 0)
				count = -1;
			else if (count >= 0)
				count++;
		}
		free(path);
		free(names[i]);
	}
	free(names);
	return count;
}

int
main(int argc, char **argv)
{
	struct stat st;
	long total = 0, n;
	int i = 1;

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = 1;
		i++;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [-v] CORPUS_DIR|FILE...\n", argv[0]);
		return 64;
	}
	for (; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			n = run_dir(argv[i]);
		else
			n = run_file(argv[i]) == 0 ? 1 : -1;
		if (n < 0)
			return 1;
		total += n;
	}
	printf("%ld inputs\n", total);
	return 0;
}
