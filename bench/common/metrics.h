/* What a bench hands to sluice-bench (tools/sluice_bench.sh), besides its
 * own JSON:
 *   - figures: a flat file of "key<TAB>value<TAB>unit" lines, one per
 *     figure, keys like "rings.pipe.rtt_p50" (--metrics FILE). The driver
 *     joins them across benches into the summary table, each sluice
 *     figure beside its baselines (docs/BENCHMARKS.md, "sluice-bench");
 *   - plot data: small text files that gnuplot reads (--plot-dir DIR),
 *     each headed by a "# title: ..." line naming its series.
 * Both are off until opened; every call is then a no-op, so a bench calls
 * them unconditionally. Single-threaded: the bench's main process only. */
#ifndef SLUICE_BENCH_METRICS_H
#define SLUICE_BENCH_METRICS_H

#include <stdio.h>

#include "bench/common/hist.h"

/* Opens the figures file (truncating it); NULL leaves figures off.
 * Returns 0 or a negative errno. */
int bench_metrics_open(const char *path);
/* Appends one figure; the key is built printf-style. Non-finite values are
 * skipped (a figure that could not be measured is absent, not 0). */
void bench_metric(double value, const char *unit, const char *key_fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Closes the figures file. Returns 0, or -1 when a write failed. */
int bench_metrics_close(void);

/* Sets the plot data directory (NULL: no plot data). It must exist. */
void bench_plot_dir(const char *dir);
/* Opens DIR/NAME.dat for writing and writes its "# title: TITLE" line;
 * NULL when no directory is set or the file cannot be made. The caller
 * writes its columns and fcloses it. */
FILE *bench_plot_open(const char *name, const char *title);
/* Writes histogram h as a CDF: one "value cumulative_fraction" line per
 * non-empty bucket (the bucket's upper end), into DIR/NAME.dat. */
void bench_plot_cdf(const char *name, const char *title, const struct bench_hist *h);

#endif
