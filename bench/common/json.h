/* A streaming JSON writer: objects, arrays, strings, numbers, booleans,
 * null, indented two spaces. Members pass their key; array elements pass
 * NULL. No validation beyond balancing depth: the caller writes sensible
 * JSON. Non-finite numbers are written as null. */
#ifndef SLUICE_BENCH_JSON_H
#define SLUICE_BENCH_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_JSON_MAX_DEPTH 32

struct bench_json {
	FILE *f;
	int depth;
	bool first[BENCH_JSON_MAX_DEPTH];
};

void bench_json_init(struct bench_json *j, FILE *f);
void bench_json_obj_begin(struct bench_json *j, const char *key);
void bench_json_obj_end(struct bench_json *j);
void bench_json_arr_begin(struct bench_json *j, const char *key);
void bench_json_arr_end(struct bench_json *j);
void bench_json_str(struct bench_json *j, const char *key, const char *v);
void bench_json_num(struct bench_json *j, const char *key, double v);
void bench_json_u64(struct bench_json *j, const char *key, uint64_t v);
void bench_json_bool(struct bench_json *j, const char *key, bool v);
void bench_json_null(struct bench_json *j, const char *key);

#endif
