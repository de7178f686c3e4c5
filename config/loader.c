/*
 * loader.c — what every part of the config loader uses: the error report
 * (the first error, as FILE:LINE: message), the two messages about keys that
 * every section gives (a key it does not know, a key given twice), and
 * reading a whole file (the config file and the users file).
 */
#include "config/config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds what a wrong path (a log file, a device) can make us read. */
#define CFG_FILE_MAX (64 * 1024 * 1024)

static int vfail(loader_t *ld, const char *file, int line, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/*
 * Record the first error as "FILE:LINE: message" ("FILE: message" when there
 * is no line to name). Later errors are dropped: the first one is the one the
 * user fixes first. Returns -1 so that callers can `return loader_fail(...)`.
 */
static int vfail(loader_t *ld, const char *file, int line, const char *fmt, va_list ap)
{
	if (ld->failed)
		return -1;
	ld->failed = true;
	ld->err_line = line;
	if (ld->err == NULL || ld->errlen == 0)
		return -1;
	int n = line > 0 ? snprintf(ld->err, ld->errlen, "%s:%d: ", file, line)
	                 : snprintf(ld->err, ld->errlen, "%s: ", file);
	if (n >= 0 && (size_t)n < ld->errlen)
		vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
	return -1;
}

/* An error in the config file. */
int loader_fail(loader_t *ld, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(ld, ld->file, line, fmt, ap);
	va_end(ap);
	return -1;
}

/* An error in another file (the users file). */
int loader_fail_in(loader_t *ld, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(ld, file, line, fmt, ap);
	va_end(ap);
	return -1;
}

int loader_oom(loader_t *ld)
{
	return loader_fail(ld, 0, "out of memory");
}

int loader_unknown_key(loader_t *ld, const char *name, const char *expected)
{
	return loader_fail(ld, ld->line, "unknown key '%s' in [%s] (expected one of: %s)", name,
	                   ld->sec_name, expected);
}

/* Keys that may appear once per section: complain about the second one. */
int loader_once(loader_t *ld, int *line, const char *name)
{
	if (*line != 0)
		return loader_fail(
		    ld, ld->line,
		    "[%s] %s: given twice, first at line %d (expected each key once per "
		    "section)",
		    ld->sec_name, name, *line);
	*line = ld->line;
	return 0;
}

/*
 * Read a whole file into a NUL-terminated string. Returns 0, or an errno
 * value; *op says which step failed ("open" or "read") for the message.
 */
int loader_read_file(const char *path, char **out, const char **op)
{
	*op = "open";
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return errno;
	*op = "read";
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int rc = buf == NULL ? ENOMEM : 0;
	while (rc == 0) {
		if (cap - len < 2) {
			char *bigger = cap >= CFG_FILE_MAX ? NULL : realloc(buf, cap * 2);
			if (bigger == NULL) {
				rc = cap >= CFG_FILE_MAX ? EFBIG : ENOMEM;
				break;
			}
			buf = bigger;
			cap *= 2;
		}
		size_t got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0) {
			if (ferror(f))
				rc = errno ? errno : EIO;
			break;
		}
	}
	fclose(f);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		/* a NUL byte: not a text file */
		free(buf);
		return EINVAL;
	}
	*out = buf;
	return 0;
}
