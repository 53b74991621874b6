/* libFuzzer target: the input is a descriptor (64 bytes, zero-padded) as a
 * worker takes it off a ring, checked the way the runtime checks one with
 * what of that check is callable on its own.
 *
 * The worker's checks (runtime/desc_check.c, what claim() and
 * check_entry() in runtime/worker.c call): sluice__desc_ring_ok on the
 * ring's copy, sluice__desc_entry_ok on the held entry's descriptor for a
 * step and slot the input also picks, and under both sluice__block_ok()
 * (runtime/flow.c), which must accept exactly NONE with length 0, or a
 * valid handle owned by the task's client whose capacity holds the
 * length (the client's fill_result() relies on it too). Each is checked
 * against an oracle: a fixed allocator laid out at setup (see
 * fuzz_common.h) in an arena whose memory outside the allocator's region
 * is poisoned for ASan, so a pointer accepted is also touched over its
 * whole length.
 */
#define _GNU_SOURCE
#include "fuzz/fuzz_common.h"

#include <sluice/arena.h>
#include <sluice/blocks.h>
#include "runtime/flow_internal.h"

static sluice_flow_t *flow;
static char *region;
static uint64_t region_size;

/* The owner of each class's block at setup, and the class sizes. */
static const uint64_t class_size[3] = {64, 256, 4096};
static const uint32_t class_count[3] = {32, 16, 4};

static uint32_t oracle_owner(uint32_t cls, uint32_t idx)
{
	if (cls == 0 && idx < 8)
		return FUZZ_DESC_CLIENT_OWNER;
	if (cls == 1 && idx < 4)
		return FUZZ_DESC_CLIENT_OWNER;
	if ((cls == 0 && idx >= 8 && idx < 12) || (cls == 2 && idx == 0))
		return FUZZ_DESC_WORKER_OWNER;
	return SLUICE_OWNER_FREE;
}

static void setup(void)
{
	sluice_blocks_config_t cfg = {.size_of = sizeof(cfg), .nclasses = 3};
	for (uint32_t c = 0; c < 3; c++)
		cfg.classes[c] = (sluice_blocks_class_t){.block_size = class_size[c],
							 .count = class_count[c]};
	int64_t need = sluice_blocks_region_size(&cfg);
	FUZZ_CHECK(need > 0);
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "fuzz-desc", .nregions = 2};
	o.regions[0] = (sluice_region_req_t){.id = FUZZ_BLOCKS_REGION, .size = (uint64_t)need};
	o.regions[1] = (sluice_region_req_t){.id = FUZZ_GUARD_REGION, .size = 4096};
	sluice_arena_t *a;
	FUZZ_CHECK(sluice_arena_create(&o, &a) == 0);
	uint64_t off, goff, glen;
	FUZZ_CHECK(sluice_arena_region(a, FUZZ_BLOCKS_REGION, &off, &region_size) == 0);
	FUZZ_CHECK(sluice_arena_region(a, FUZZ_GUARD_REGION, &goff, &glen) == 0);
	region = (char *)sluice_arena_base(a) + off;
	FUZZ_CHECK(sluice_blocks_format(region, region_size, &cfg) == 0);

	flow = calloc(1, sizeof(*flow));
	FUZZ_CHECK(flow != NULL);
	flow->arena = a;
	flow->nsteps = 2;
	flow->nworkers = 1;
	flow->nclients = 1;
	flow->max_tasks = FUZZ_DESC_MAX_TASKS;
	flow->tasks_per_client = FUZZ_DESC_MAX_TASKS;
	FUZZ_CHECK(sluice_blocks_open(&flow->blocks, a, FUZZ_BLOCKS_REGION) == 0);
	for (uint32_t c = 0; c < 3; c++) {
		for (uint32_t i = 0; i < class_count[c]; i++) {
			uint32_t owner = oracle_owner(c, i);
			if (owner == SLUICE_OWNER_FREE)
				continue;
			sluice_block_t blk;
			FUZZ_CHECK(sluice_blocks_alloc(&flow->blocks, class_size[c], owner, &blk) == 0);
			FUZZ_CHECK(blk == FUZZ_HANDLE(c, i));
		}
	}
	/* From here on only the allocator's region may be touched. */
	FUZZ_POISON(sluice_arena_base(a), off);
	FUZZ_POISON(sluice_arena_base(a) + goff, glen);
}

/* sluice__block_ok for one handle and length, against the oracle. */
static void check_block(uint32_t blk, uint32_t len, uint32_t owner)
{
	void *p = (void *)1;
	uint64_t cap = 1;
	bool ok = sluice__block_ok(flow, blk, len, owner, &p, &cap);
	uint32_t cls = blk >> 27, idx = blk & ((UINT32_C(1) << 27) - 1);
	bool valid = cls < 3 && idx < class_count[cls];
	bool want;
	if (blk == SLUICE_BLOCK_NONE)
		want = len == 0;
	else
		want = valid && len <= class_size[cls] &&
		       (owner == 0 || oracle_owner(cls, idx) == owner);
	FUZZ_CHECK(ok == want);
	if (!ok)
		return;
	if (blk == SLUICE_BLOCK_NONE) {
		FUZZ_CHECK(p == NULL && cap == 0);
		return;
	}
	FUZZ_CHECK(cap == class_size[cls] && len <= cap);
	FUZZ_CHECK((char *)p >= region && (uint64_t)((char *)p - region) + cap <= region_size);
	fuzz_touch(p, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (flow == NULL)
		setup();
	sluice_desc_t d;
	memset(&d, 0, sizeof(d));
	memcpy(&d, data, size < sizeof(d) ? size : sizeof(d));

	FUZZ_CHECK(sluice_task_status_name(d.status) != NULL);
	/* The worker's first test, before it trusts slot as an index. */
	uint32_t owner = 0;
	if (d.slot < flow->max_tasks)
		owner = SLUICE__OWNER_CLIENT(sluice__slot_client(flow, d.slot));
	else
		owner = (uint32_t)d.user; /* any other owner, even 0: no check */
	check_block(d.payload_block, d.payload_len, owner);
	check_block(d.result_block, d.result_len, owner);
	/* What the client checks on a completion: its own blocks. */
	check_block(d.result_block, d.result_len, FUZZ_DESC_CLIENT_OWNER);
	/* A worker's own block is never the client's. */
	check_block(d.payload_block, d.payload_len, FUZZ_DESC_WORKER_OWNER);

	/* The worker's two checks, whole. The step and slot a worker would
	 * pass are its own (trusted); the input picks them, past the table
	 * too. */
	FUZZ_CHECK(sluice__desc_ring_ok(flow, &d) ==
		   (d.slot < flow->max_tasks && (uint32_t)d.task_id == d.slot));
	uint32_t step = (uint32_t)(d.submit_ns % flow->nsteps);
	uint32_t slot = (uint32_t)(d.deadline_ns % (flow->max_tasks + 16));
	struct sluice__desc_view v;
	char msg[SLUICE_TASK_MESSAGE_MAX];
	bool ok = sluice__desc_entry_ok(flow, step, slot, &d, &v, msg, sizeof(msg));
	void *p;
	uint64_t cap;
	bool want = slot < flow->max_tasks && d.slot == slot && d.client == 0 && d.step == step &&
		    sluice__block_ok(flow, d.payload_block, d.payload_len, FUZZ_DESC_CLIENT_OWNER, &p,
				     &cap) &&
		    sluice__block_ok(flow, d.result_block, d.result_len, FUZZ_DESC_CLIENT_OWNER, &p,
				     &cap);
	FUZZ_CHECK(ok == want);
	if (ok) {
		FUZZ_CHECK(v.payload_len == d.payload_len && v.result_len == d.result_len);
		FUZZ_CHECK(v.result_len <= v.result_cap);
		fuzz_touch(v.payload, v.payload_len);
		fuzz_touch(v.result, v.result_len);
	} else {
		FUZZ_CHECK(memchr(msg, '\0', sizeof(msg)) != NULL && msg[0] != '\0');
	}
	return 0;
}
