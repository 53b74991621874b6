/* A terminal table: rows of strings, columns sized to fit, the first column
 * left-aligned and the others right-aligned; or the same rows as a Markdown
 * table (what docs/BENCHMARKS.md holds). */
#ifndef SLUICE_BENCH_TABLE_H
#define SLUICE_BENCH_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_TABLE_MAX_COLS 16

struct bench_table;

/* A table with `ncols` columns headed `heads`. NULL when out of memory. */
struct bench_table *bench_table_new(int ncols, const char *const *heads);
/* Appends a row of `ncols` cells (copied); printf-style cells are built by
 * the caller. A NULL cell prints empty. Returns 0 or -ENOMEM. */
int bench_table_row(struct bench_table *t, const char *const *cells);
/* bench_table_row with the n (<= BENCH_TABLE_MAX_COLS) cells as arguments. */
int bench_table_rowv(struct bench_table *t, int n, ...);
/* A duration for a cell: "850 ns", "12.3 us", "45.6 ms". */
void bench_fmt_ns(char *b, size_t len, uint64_t ns);
/* Appends a horizontal rule (terminal) / nothing (Markdown). */
int bench_table_rule(struct bench_table *t);
void bench_table_print(const struct bench_table *t, FILE *out);
void bench_table_print_markdown(const struct bench_table *t, FILE *out);
void bench_table_free(struct bench_table *t);

#endif
