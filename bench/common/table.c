#include "bench/common/table.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct bench_table {
	int ncols;
	int nrows;
	int cap;
	char **cells; /* nrows * ncols; a row of NULLs with rule set is a rule */
	char *rule;   /* per row: 1 when the row is a rule */
	char *head[BENCH_TABLE_MAX_COLS];
};

struct bench_table *bench_table_new(int ncols, const char *const *heads)
{
	if (ncols < 1 || ncols > BENCH_TABLE_MAX_COLS)
		return NULL;
	struct bench_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ncols = ncols;
	for (int c = 0; c < ncols; c++)
		t->head[c] = strdup(heads[c] ? heads[c] : "");
	return t;
}

static int grow(struct bench_table *t)
{
	if (t->nrows < t->cap)
		return 0;
	int cap = t->cap ? 2 * t->cap : 32;
	char **cells = realloc(t->cells, sizeof(char *) * (size_t)cap * (size_t)t->ncols);
	if (!cells)
		return -ENOMEM;
	t->cells = cells;
	char *rule = realloc(t->rule, (size_t)cap);
	if (!rule)
		return -ENOMEM;
	t->rule = rule;
	t->cap = cap;
	return 0;
}

int bench_table_row(struct bench_table *t, const char *const *cells)
{
	if (grow(t) != 0)
		return -ENOMEM;
	for (int c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = strdup(cells[c] ? cells[c] : "");
	t->rule[t->nrows++] = 0;
	return 0;
}

int bench_table_rule(struct bench_table *t)
{
	if (grow(t) != 0)
		return -ENOMEM;
	for (int c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = NULL;
	t->rule[t->nrows++] = 1;
	return 0;
}

static void widths(const struct bench_table *t, int *w)
{
	for (int c = 0; c < t->ncols; c++) {
		w[c] = (int)strlen(t->head[c]);
		for (int r = 0; r < t->nrows; r++) {
			const char *s = t->cells[r * t->ncols + c];
			if (s && (int)strlen(s) > w[c])
				w[c] = (int)strlen(s);
		}
	}
}

static void print_rule(const int *w, int ncols, FILE *out)
{
	for (int c = 0; c < ncols; c++) {
		for (int i = 0; i < w[c]; i++)
			fputc('-', out);
		fputs(c + 1 < ncols ? "  " : "\n", out);
	}
}

void bench_table_print(const struct bench_table *t, FILE *out)
{
	int w[BENCH_TABLE_MAX_COLS];
	widths(t, w);
	for (int c = 0; c < t->ncols; c++)
		fprintf(out, c == 0 ? "%-*s" : "  %*s", w[c], t->head[c]);
	fputc('\n', out);
	print_rule(w, t->ncols, out);
	for (int r = 0; r < t->nrows; r++) {
		if (t->rule[r]) {
			print_rule(w, t->ncols, out);
			continue;
		}
		for (int c = 0; c < t->ncols; c++)
			fprintf(out, c == 0 ? "%-*s" : "  %*s", w[c], t->cells[r * t->ncols + c]);
		fputc('\n', out);
	}
}

void bench_table_print_markdown(const struct bench_table *t, FILE *out)
{
	fputc('|', out);
	for (int c = 0; c < t->ncols; c++)
		fprintf(out, " %s |", t->head[c]);
	fputs("\n|", out);
	for (int c = 0; c < t->ncols; c++)
		fputs(c == 0 ? "---|" : "---:|", out);
	fputc('\n', out);
	for (int r = 0; r < t->nrows; r++) {
		if (t->rule[r])
			continue;
		fputc('|', out);
		for (int c = 0; c < t->ncols; c++)
			fprintf(out, " %s |", t->cells[r * t->ncols + c]);
		fputc('\n', out);
	}
}

void bench_table_free(struct bench_table *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	for (int c = 0; c < t->ncols; c++)
		free(t->head[c]);
	free(t->cells);
	free(t->rule);
	free(t);
}

int bench_table_rowv(struct bench_table *t, int n, ...)
{
	const char *cells[BENCH_TABLE_MAX_COLS] = {NULL};
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n && i < BENCH_TABLE_MAX_COLS; i++)
		cells[i] = va_arg(ap, const char *);
	va_end(ap);
	return bench_table_row(t, cells);
}

void bench_fmt_ns(char *b, size_t len, uint64_t ns)
{
	if (ns >= 10000000)
		snprintf(b, len, "%.1f ms", (double)ns / 1e6);
	else if (ns >= 10000)
		snprintf(b, len, "%.1f us", (double)ns / 1e3);
	else
		snprintf(b, len, "%" PRIu64 " ns", ns);
}
