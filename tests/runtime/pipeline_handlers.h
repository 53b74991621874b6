/* The handlers and conditions of tests/runtime/test_flow_pipeline.c, shared
 * with the worker program that runs them in an exec'd step
 * (tests/runtime/flow_exec_worker.c):
 *
 *   parse   (skips x % 1000 == 999)   result = x + 1            new block
 *   double  (skips x % 3 == 0)        result = 2 * (result or x) new block
 *   finish  (skips x % 10007 == 0)    result += 7 in place, or x + 7 in a new block
 */
#ifndef SLUICE_TESTS_RUNTIME_PIPELINE_HANDLERS_H
#define SLUICE_TESTS_RUNTIME_PIPELINE_HANDLERS_H

#include "runtime/flow_test.h"

enum { PARSE_BATCH = 32, DOUBLE_BATCH = 16, FINISH_BATCH = 64 };

static inline bool applies_parse(uint64_t x) { return x % 1000 != 999; }
static inline bool applies_double(uint64_t x) { return x % 3 != 0; }
static inline bool applies_finish(uint64_t x) { return x % 10007 != 0; }

static inline bool cond_parse(void *arg, const sluice_item_t *t) { return applies_parse(test_payload_u64(t)); }
static inline bool cond_double(void *arg, const sluice_item_t *t) { return applies_double(test_payload_u64(t)); }
static inline bool cond_finish(void *arg, const sluice_item_t *t) { return applies_finish(test_payload_u64(t)); }

/* Expected result; false when no step makes one. */
static inline bool expected(uint64_t x, uint64_t *r)
{
	bool has = false;
	if (applies_parse(x))
		*r = x + 1, has = true;
	if (applies_double(x))
		*r = 2 * (has ? *r : x), has = true;
	if (applies_finish(x))
		*r = (has ? *r : x) + 7, has = true;
	return has;
}

static inline int too_big(sluice_item_t *items, unsigned n, unsigned max)
{
	if (n == 0 || n > max) {
		for (unsigned i = 0; i < n; i++)
			sluice_item_fail(&items[i], "batch of %u, batch_size %u", n, max);
		return 1;
	}
	return 0;
}

static inline int h_parse(void *arg, sluice_item_t *items, unsigned n)
{
	if (too_big(items, n, PARSE_BATCH))
		return 0;
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint64_t x = test_payload_u64(it);
		if (it->payload_len != 8 || it->result != NULL || !applies_parse(x))
			sluice_item_fail(it, "parse: wrong task %llu", (unsigned long long)x);
		else if (!test_result_u64(it, x + 1))
			sluice_item_fail(it, "parse: no block");
	}
	return 0;
}

static inline int h_double(void *arg, sluice_item_t *items, unsigned n)
{
	if (too_big(items, n, DOUBLE_BATCH))
		return 0;
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint64_t x = test_payload_u64(it), r = x;
		if (!applies_double(x) || (it->result != NULL) != applies_parse(x)) {
			sluice_item_fail(it, "double: wrong task %llu", (unsigned long long)x);
			continue;
		}
		if (it->result != NULL) {
			if (it->result_len != 8) {
				sluice_item_fail(it, "double: result_len %llu",
						 (unsigned long long)it->result_len);
				continue;
			}
			memcpy(&r, it->result, 8); /* still readable after a new alloc, but read first */
		}
		if (!test_result_u64(it, 2 * r))
			sluice_item_fail(it, "double: no block");
	}
	return 0;
}

static inline int h_finish(void *arg, sluice_item_t *items, unsigned n)
{
	if (too_big(items, n, FINISH_BATCH))
		return 0;
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint64_t x = test_payload_u64(it), r;
		if (!applies_finish(x)) {
			sluice_item_fail(it, "finish: wrong task %llu", (unsigned long long)x);
		} else if (it->result != NULL) {
			/* In place, in the block an earlier step made. */
			if (it->result_len != 8 || it->result_cap < 8) {
				sluice_item_fail(it, "finish: bad result");
				continue;
			}
			memcpy(&r, it->result, 8);
			r += 7;
			memcpy(it->result, &r, 8);
		} else if (!test_result_u64(it, x + 7)) {
			sluice_item_fail(it, "finish: no block");
		}
	}
	return 0;
}

#endif
