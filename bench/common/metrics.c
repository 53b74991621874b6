/* Figures and plot data for sluice-bench: see metrics.h. */
#include "bench/common/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

static FILE *figures;
static int figures_err;
static const char *plot_dir;

int bench_metrics_open(const char *path)
{
	if (path == NULL)
		return 0;
	figures = fopen(path, "w");
	return figures ? 0 : -errno;
}

void bench_metric(double value, const char *unit, const char *key_fmt, ...)
{
	if (figures == NULL || !isfinite(value))
		return;
	va_list ap;
	va_start(ap, key_fmt);
	vfprintf(figures, key_fmt, ap);
	va_end(ap);
	if (fprintf(figures, "\t%.10g\t%s\n", value, unit) < 0)
		figures_err = 1;
}

int bench_metrics_close(void)
{
	if (figures == NULL)
		return 0;
	int rc = figures_err || ferror(figures) ? -1 : 0;
	if (fclose(figures) != 0)
		rc = -1;
	figures = NULL;
	return rc;
}

void bench_plot_dir(const char *dir)
{
	plot_dir = dir;
}

FILE *bench_plot_open(const char *name, const char *title)
{
	if (plot_dir == NULL)
		return NULL;
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/%s.dat", plot_dir, name) >= (int)sizeof(path))
		return NULL;
	FILE *f = fopen(path, "w");
	if (f)
		fprintf(f, "# title: %s\n", title);
	return f;
}

void bench_plot_cdf(const char *name, const char *title, const struct bench_hist *h)
{
	if (plot_dir == NULL || h->count == 0)
		return;
	FILE *f = bench_plot_open(name, title);
	if (f == NULL)
		return;
	bench_hist_write_cdf(h, f);
	fclose(f);
}
