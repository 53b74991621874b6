#include "base/die.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void sluice__die(const char *file, int line, const char *func, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One write so lines from several dying processes do not interleave. */
	char out[768];
	int n = snprintf(out, sizeof(out), "sluice: fatal: %s:%d: %s: %s\n", file, line,
			 func, msg);
	if (n > 0)
		(void)!write(STDERR_FILENO, out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1);
	abort();
}
