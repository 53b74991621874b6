/* Writes the seed corpora of the fuzz targets: a few valid inputs made by
 * the library itself and near-valid ones (one field off) for each.
 *
 *	fuzz_make_seeds DIR    writes DIR/<target>/<name>
 *
 * The output is deterministic (timestamps and pids in headers are zeroed),
 * so the committed corpora in tests/fuzz/corpus/ can be regenerated and
 * compared: `cmake --build build-fuzz --target fuzz-seeds`. */
#define _GNU_SOURCE
#include "fuzz/fuzz_common.h"

#include <errno.h>
#include <sys/stat.h>

#include <sluice/arena.h>
#include <sluice/blocks.h>
#include <sluice/flow.h>
#include <sluice/ring.h>
#include "queues/ring_layout.h"
#include "runtime/control_proto.h"
#include "runtime/flow_layout.h"
#include "shm/arena_layout.h"
#include "shm/blocks_layout.h"

static const char *outdir;

#define DIE_UNLESS(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "make_seeds: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                               \
		}                                                              \
	} while (0)

static void mkdir_p(const char *path)
{
	DIE_UNLESS(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void put(const char *target, const char *name, const void *a, size_t alen, const void *b,
		size_t blen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	mkdir_p(path);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	FILE *f = fopen(path, "wb");
	DIE_UNLESS(f != NULL);
	DIE_UNLESS(fwrite(a, 1, alen, f) == alen);
	if (blen > 0)
		DIE_UNLESS(fwrite(b, 1, blen, f) == blen);
	DIE_UNLESS(fclose(f) == 0);
}

/* ---- fuzz_arena_attach ------------------------------------------------- */

static void arena_seed(const char *name, const uint8_t *img, size_t len,
		       void (*edit)(struct sluice_arena_hdr *))
{
	uint8_t *copy = malloc(len);
	DIE_UNLESS(copy != NULL);
	memcpy(copy, img, len);
	if (edit != NULL)
		edit((struct sluice_arena_hdr *)copy);
	put("fuzz_arena_attach", name, copy, len, NULL, 0);
	free(copy);
}

static void e_magic(struct sluice_arena_hdr *h) { h->magic ^= 0x100; }
static void e_version(struct sluice_arena_hdr *h) { h->layout_version = 2; }
static void e_hdrsize(struct sluice_arena_hdr *h) { h->header_size = 48; }
static void e_total(struct sluice_arena_hdr *h) { h->total_size += 1; }
static void e_nregions(struct sluice_arena_hdr *h) { h->nregions = SLUICE_ARENA_MAX_REGIONS + 1; }
static void e_overlap(struct sluice_arena_hdr *h)
{
	h->nregions = 2;
	h->regions[1] = (struct sluice_region_entry){.id = 6, .offset = 4096, .size = 32};
}
static void e_dup_id(struct sluice_arena_hdr *h)
{
	h->nregions = 2;
	h->regions[1] = (struct sluice_region_entry){.id = 5, .offset = 4096, .size = 0};
}
static void e_unaligned(struct sluice_arena_hdr *h) { h->regions[0].offset = 4097; }
static void e_past_end(struct sluice_arena_hdr *h) { h->regions[0].size += 1; }
static void e_id_zero(struct sluice_arena_hdr *h) { h->regions[0].id = 0; }
static void e_in_header(struct sluice_arena_hdr *h) { h->regions[0].offset = 0; }
static void e_wrap(struct sluice_arena_hdr *h) { h->regions[0].size = UINT64_MAX - 4095; }

static void arena_seeds(void)
{
	/* One made by sluice_arena_create. */
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "seed", .nregions = 1};
	o.regions[0] = (sluice_region_req_t){.id = 1, .size = 100};
	sluice_arena_t *a;
	DIE_UNLESS(sluice_arena_create(&o, &a) == 0);
	size_t len = sluice_arena_size(a);
	uint8_t *img = malloc(len);
	DIE_UNLESS(img != NULL);
	memcpy(img, sluice_arena_base(a), len);
	sluice_arena_destroy(a);
	struct sluice_arena_hdr *h = (void *)img;
	h->created_ns = 0;
	h->creator_pid = 0;
	arena_seed("valid-created-1-region", img, len, NULL);
	free(img);

	/* Hand-made, smaller: only the header. */
	struct sluice_arena_hdr hdr = {
		.magic = SLUICE_ARENA_MAGIC,
		.layout_version = SLUICE_ARENA_LAYOUT_VERSION,
		.header_size = sizeof(hdr),
		.total_size = sizeof(hdr),
	};
	arena_seed("valid-header-only", (const uint8_t *)&hdr, sizeof(hdr), NULL);
	arena_seed("trunc-header", (const uint8_t *)&hdr, sizeof(hdr) - 1, NULL);

	/* Two regions, the second short: 4096 + 4096 + 64 bytes. */
	len = 8192 + 64;
	img = calloc(1, len);
	DIE_UNLESS(img != NULL);
	h = (void *)img;
	*h = hdr;
	h->total_size = len;
	h->nregions = 2;
	h->regions[0] = (struct sluice_region_entry){.id = 5, .offset = 4096, .size = 4096};
	h->regions[1] = (struct sluice_region_entry){.id = 6, .offset = 8192, .size = 64};
	arena_seed("valid-2-regions", img, len, NULL);
	free(img);

	/* One short region, 4096 + 64 bytes: the base of the near-valid ones. */
	len = 4096 + 64;
	img = calloc(1, len);
	DIE_UNLESS(img != NULL);
	h = (void *)img;
	*h = hdr;
	h->total_size = len;
	h->nregions = 1;
	h->regions[0] = (struct sluice_region_entry){.id = 5, .offset = 4096, .size = 64};
	arena_seed("valid-1-short-region", img, len, NULL);
	arena_seed("bad-magic", img, len, e_magic);
	arena_seed("bad-version", img, len, e_version);
	arena_seed("bad-header-size", img, len, e_hdrsize);
	arena_seed("bad-total-size", img, len, e_total);
	arena_seed("bad-nregions", img, len, e_nregions);
	arena_seed("bad-overlap", img, len, e_overlap);
	arena_seed("bad-dup-id", img, len, e_dup_id);
	arena_seed("bad-unaligned", img, len, e_unaligned);
	arena_seed("bad-past-end", img, len, e_past_end);
	arena_seed("bad-id-zero", img, len, e_id_zero);
	arena_seed("bad-in-header", img, len, e_in_header);
	arena_seed("bad-size-wraps", img, len, e_wrap);
	free(img);
}

/* ---- fuzz_blocks_open -------------------------------------------------- */

/* Six cache allocs and six cache frees (the fifth overflows class 0's
 * magazine of 4), then alloc 64, alloc 65, set_owner, free, a made-up
 * handle, stats+audit, alloc 256, reclaim, cache flush, alloc 0, free, a
 * bad handle, audit, and a few more in another order. */
static const uint8_t blocks_ops[FUZZ_OPS_LEN] = {
	4 | 1 << 3,  4 | 3 << 3, 4 | 5 << 3,  4 | 7 << 3, 4 | 1 << 3,  4 | 3 << 3, 4 | 0 << 3,
	4 | 0 << 3,  4 | 0 << 3, 4 | 0 << 3,  4 | 0 << 3, 4 | 0 << 3,  0 | 12 << 3, 0 | 13 << 3,
	3 | 0 << 3,  1 | 1 << 3, 2 | 5 << 3,  7 | 1 << 3, 0 | 16 << 3, 6 | 0 << 3, 5,
	0,           1 | 0 << 3, 2 | 31 << 3, 7,          0 | 14 << 3, 4 | 9 << 3, 4 | 2 << 3,
	6 | 1 << 3,  0 | 2 << 3, 3 | 2 << 3,  7 | 2 << 3,
};

static sluice_blocks_config_t blocks_cfg(uint32_t n)
{
	sluice_blocks_config_t cfg = {.size_of = sizeof(cfg), .nclasses = n};
	static const sluice_blocks_class_t cls[3] = {{64, 32, 0}, {128, 8, 0}, {256, 4, 0}};
	for (uint32_t c = 0; c < n; c++)
		cfg.classes[c] = cls[c];
	return cfg;
}

/* A formatted region of cfg, in an arena (for the calls that need one):
 * returns the region's bytes up to used_size in *img. */
static size_t blocks_image(const sluice_blocks_config_t *cfg, bool busy, uint8_t **img)
{
	int64_t used = sluice_blocks_region_size(cfg);
	DIE_UNLESS(used > 0);
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "seed", .nregions = 1};
	o.regions[0] = (sluice_region_req_t){.id = FUZZ_BLOCKS_REGION, .size = (uint64_t)used};
	sluice_arena_t *a;
	DIE_UNLESS(sluice_arena_create(&o, &a) == 0);
	uint64_t off, size;
	DIE_UNLESS(sluice_arena_region(a, FUZZ_BLOCKS_REGION, &off, &size) == 0);
	char *region = (char *)sluice_arena_base(a) + off;
	DIE_UNLESS(sluice_blocks_format(region, size, cfg) == 0);
	if (busy) {
		/* Some blocks allocated by owners 1 and 2, some in a cache of
		 * owner 7 (left there, as a dead thread's cache is). */
		sluice_blocks_t b;
		DIE_UNLESS(sluice_blocks_open(&b, a, FUZZ_BLOCKS_REGION) == 0);
		sluice_block_t blk;
		for (int i = 0; i < 3; i++)
			DIE_UNLESS(sluice_blocks_alloc(&b, 64, 1 + (i & 1), &blk) == 0);
		DIE_UNLESS(sluice_blocks_alloc(&b, 200, 2, &blk) == 0);
		sluice_blocks_cache_t cache;
		DIE_UNLESS(sluice_blocks_cache_init(&cache, &b, 7) == 0);
		DIE_UNLESS(sluice_blocks_cache_alloc(&cache, 10, &blk) == 0);
	}
	*img = malloc((size_t)used);
	DIE_UNLESS(*img != NULL);
	memcpy(*img, region, (size_t)used);
	sluice_arena_destroy(a);
	return (size_t)used;
}

static void blocks_seed(const char *name, const uint8_t *img, size_t len,
			void (*edit)(uint8_t *region))
{
	uint8_t *copy = malloc(len);
	DIE_UNLESS(copy != NULL);
	memcpy(copy, img, len);
	if (edit != NULL)
		edit(copy);
	put("fuzz_blocks_open", name, blocks_ops, sizeof(blocks_ops), copy, len);
	free(copy);
}

static struct sluice_blocks_hdr *bhdr(uint8_t *r) { return (void *)r; }
static struct sluice_blocks_meta *bmeta(uint8_t *r, uint32_t c)
{
	return (void *)(r + sluice__blocks_ctl(r, c)->meta_off);
}
static void b_magic(uint8_t *r) { bhdr(r)->magic ^= 1; }
static void b_version(uint8_t *r) { bhdr(r)->layout_version = 2; }
static void b_hash(uint8_t *r) { bhdr(r)->geom_hash ^= 1; }
static void b_nclasses(uint8_t *r) { bhdr(r)->nclasses = SLUICE_BLOCKS_MAX_CLASSES + 1; }
static void b_used(uint8_t *r) { bhdr(r)->used_size += 64; }
static void b_count(uint8_t *r) { sluice__blocks_ctl(r, 1)->count += 1; }
static void b_meta_off(uint8_t *r) { sluice__blocks_ctl(r, 2)->meta_off += 64; }
static void b_head_range(uint8_t *r)
{
	sl_store_relaxed(&sluice__blocks_ctl(r, 0)->head, SLUICE_BLOCKS_HEAD(0, 16));
}
static void b_cycle(uint8_t *r) { sl_store_relaxed(&bmeta(r, 0)[2].next, 0); }
static void b_owned_on_stack(uint8_t *r) { sl_store_relaxed(&bmeta(r, 0)[1].owner, 5); }
static void b_next_range(uint8_t *r) { sl_store_relaxed(&bmeta(r, 1)[0].next, 1000); }
static void b_leaked(uint8_t *r)
{
	/* Block 0 of class 0 off the stack and owned by nobody: a process
	 * died between its pop and its owner store. */
	sl_store_relaxed(&sluice__blocks_ctl(r, 0)->head, SLUICE_BLOCKS_HEAD(1, 1));
}
static void b_in_use(uint8_t *r) { sl_store_relaxed(&sluice__blocks_ctl(r, 1)->in_use, 1000); }

static void blocks_seeds(void)
{
	uint8_t *img;
	sluice_blocks_config_t one = blocks_cfg(1), three = blocks_cfg(3);
	size_t len = blocks_image(&one, false, &img);
	blocks_seed("valid-1-class", img, len, NULL);
	free(img);
	len = blocks_image(&three, true, &img);
	blocks_seed("valid-3-classes-busy", img, len, NULL);
	free(img);
	len = blocks_image(&three, false, &img);
	blocks_seed("valid-3-classes", img, len, NULL);
	blocks_seed("bad-magic", img, len, b_magic);
	blocks_seed("bad-version", img, len, b_version);
	blocks_seed("bad-geom-hash", img, len, b_hash);
	blocks_seed("bad-nclasses", img, len, b_nclasses);
	blocks_seed("bad-used-size", img, len, b_used);
	blocks_seed("bad-count", img, len, b_count);
	blocks_seed("bad-meta-off", img, len, b_meta_off);
	blocks_seed("truncated", img, len / 2, NULL);
	blocks_seed("stack-head-out-of-range", img, len, b_head_range);
	blocks_seed("stack-cycle", img, len, b_cycle);
	blocks_seed("stack-owned-block", img, len, b_owned_on_stack);
	blocks_seed("stack-next-out-of-range", img, len, b_next_range);
	blocks_seed("leaked-block", img, len, b_leaked);
	blocks_seed("in-use-drift", img, len, b_in_use);
	free(img);
}

/* ---- fuzz_ring_open ------------------------------------------------------ */

/* claim (owner 1), enqueue, bulk enqueue 4, dequeue, bulk dequeue 8,
 * queries, blocking forms, release, lane release, claim (owner 2), bulk
 * enqueue 32, blocking forms, dequeue, bulk dequeue 32, queries, release;
 * then claim (owner 3), fill, drain one by one, release (owner 1's lane). */
static const uint8_t ring_ops[FUZZ_OPS_LEN] = {
	2 | 0 << 3, 3,          4 | 3 << 3, 0,          1 | 7 << 3,  6 | 1 << 3, 7 | 2 << 3,
	5,          5 | 1 << 3, 2 | 1 << 3, 4 | 31 << 3, 7,          0,          1 | 31 << 3,
	6 | 4 << 3, 5,          2 | 2 << 3, 3,          3,           3,          4 | 1 << 3,
	0,          0,          0,          0,          0,           6 | 0 << 3, 7 | 5 << 3,
	5,          5 | 0 << 3, 6 | 2 << 3, 1 | 3 << 3,
};

static size_t ring_image(uint32_t kind, uint32_t cap, uint32_t lanes, uint8_t **img)
{
	sluice_ring_config_t cfg = {.size_of = sizeof(cfg), .kind = kind, .capacity = cap,
				    .lanes = lanes};
	int64_t need = sluice_ring_mem_size(&cfg);
	DIE_UNLESS(need > 0);
	void *mem;
	DIE_UNLESS(posix_memalign(&mem, 64, (size_t)need) == 0);
	memset(mem, 0, (size_t)need);
	DIE_UNLESS(sluice_ring_format(mem, (uint64_t)need, &cfg) == 0);
	*img = mem;
	return (size_t)need;
}

/* Puts n descriptors on the ring at img through lane-owner `owner`; then
 * gives the lane back, or keeps it (as a producer that died holding it
 * would). */
static void ring_fill(uint8_t *img, size_t len, uint32_t owner, unsigned n, bool keep)
{
	sluice_ring_t r;
	DIE_UNLESS(sluice_ring_open(&r, img, len) == 0);
	sluice_ring_producer_t p;
	DIE_UNLESS(sluice_ring_producer_claim(&p, &r, owner) == 0);
	for (unsigned i = 0; i < n; i++) {
		sluice_desc_t d = {.task_id = i, .payload_block = SLUICE_BLOCK_NONE,
				   .result_block = SLUICE_BLOCK_NONE};
		int k = sluice_ring_kind(&r) == SLUICE_RING_SPSC ? sluice_ring_try_enqueue_spsc(&p, &d)
								  : sluice_ring_try_enqueue_mpmc(&p, &d);
		DIE_UNLESS(k == 1);
	}
	if (!keep)
		DIE_UNLESS(sluice_ring_producer_release(&p) == 0);
}

static void ring_seed(const char *name, const uint8_t *img, size_t len,
		      void (*edit)(uint8_t *mem))
{
	uint8_t *copy = malloc(len);
	DIE_UNLESS(copy != NULL);
	memcpy(copy, img, len);
	if (edit != NULL)
		edit(copy);
	put("fuzz_ring_open", name, ring_ops, sizeof(ring_ops), copy, len);
	free(copy);
}

static struct sluice_ring_hdr *rhdr(uint8_t *m) { return (void *)m; }
static struct sluice_ring_lane *rlane(uint8_t *m, uint32_t i)
{
	return (void *)(m + rhdr(m)->lane_off + i * rhdr(m)->lane_stride);
}
static void r_magic(uint8_t *m) { rhdr(m)->magic ^= 1; }
static void r_version(uint8_t *m) { rhdr(m)->layout_version = 2; }
static void r_kind(uint8_t *m) { rhdr(m)->kind = 3; }
static void r_cap(uint8_t *m) { rhdr(m)->capacity = 6; }
static void r_lanes(uint8_t *m) { rhdr(m)->nlanes = 2; }
static void r_stride(uint8_t *m) { rhdr(m)->lane_stride += 64; }
static void r_total(uint8_t *m) { rhdr(m)->total_size += 64; }
static void r_wait(uint8_t *m) { rhdr(m)->wait = 9; }
static void r_mask(uint8_t *m) { rlane(m, 0)->ring.mask = 0; }
static void r_lapped(uint8_t *m)
{
	rlane(m, 0)->ring.p_tail = rlane(m, 0)->ring.c_head + 100;
	rlane(m, 0)->ring.p_head = rlane(m, 0)->ring.p_tail;
}
static void r_behind(uint8_t *m) { rlane(m, 0)->ring.c_head += 1; }
static void r_sleepers(uint8_t *m)
{
	sl_store_relaxed(&rhdr(m)->not_empty.waiting, 1);
	sl_store_relaxed(&rhdr(m)->not_full.waiting, 1);
	sl_store_relaxed(&rhdr(m)->not_empty.armed, 1);
}
static void r_owner(uint8_t *m) { sl_store_relaxed(&rlane(m, 0)->owner, 1); }

static void ring_seeds(void)
{
	uint8_t *img;
	size_t len = ring_image(SLUICE_RING_SPSC, 4, 0, &img);
	ring_seed("valid-spsc-cap4-empty", img, len, NULL);
	ring_seed("bad-magic", img, len, r_magic);
	ring_seed("bad-version", img, len, r_version);
	ring_seed("bad-kind", img, len, r_kind);
	ring_seed("bad-capacity", img, len, r_cap);
	ring_seed("bad-spsc-2-lanes", img, len, r_lanes);
	ring_seed("bad-stride", img, len, r_stride);
	ring_seed("bad-total-size", img, len, r_total);
	ring_seed("bad-wait", img, len, r_wait);
	ring_seed("bad-lane-mask", img, len, r_mask);
	ring_seed("truncated", img, len - 64, NULL);
	ring_seed("lane-owned", img, len, r_owner);
	free(img);

	len = ring_image(SLUICE_RING_SPSC, 8, 1, &img);
	ring_fill(img, len, 1, 3, false);
	ring_seed("valid-spsc-cap8-3-queued", img, len, NULL);
	ring_seed("counters-lapped", img, len, r_lapped);
	ring_seed("counters-consumer-ahead", img, len, r_behind);
	ring_seed("sleepers-flagged", img, len, r_sleepers);
	free(img);

	len = ring_image(SLUICE_RING_MPMC, 4, 3, &img);
	ring_fill(img, len, 2, 2, true);
	ring_seed("valid-mpmc-3-lanes", img, len, NULL);
	ring_seed("mpmc-counters-lapped", img, len, r_lapped);
	free(img);

	len = ring_image(SLUICE_RING_MPMC, 2, 1, &img);
	ring_fill(img, len, 3, 1, false);
	ring_seed("valid-mpmc-cap2-full", img, len, NULL);
	free(img);
}

/* ---- fuzz_desc_check ----------------------------------------------------- */

static void desc_seed(const char *name, sluice_desc_t d)
{
	put("fuzz_desc_check", name, &d, sizeof(d), NULL, 0);
}

static sluice_desc_t desc_ok(void)
{
	return (sluice_desc_t){
		.task_id = (UINT64_C(5) << 32) | 3,
		.payload_block = FUZZ_HANDLE(0, 2),
		.payload_len = 64,
		.result_block = SLUICE_BLOCK_NONE,
		.slot = 3,
		.step = 1,
	};
}

static void desc_seeds(void)
{
	sluice_desc_t d = desc_ok();
	desc_seed("valid-payload", d);
	d.result_block = FUZZ_HANDLE(1, 1);
	d.result_len = 200;
	desc_seed("valid-payload-result", d);
	d = desc_ok();
	d.payload_block = SLUICE_BLOCK_NONE;
	d.payload_len = 0;
	desc_seed("valid-no-blocks", d);
	d.payload_len = 1;
	desc_seed("bad-none-with-length", d);
	d = desc_ok();
	d.payload_len = 65;
	desc_seed("bad-length-past-block", d);
	d = desc_ok();
	d.payload_block = FUZZ_HANDLE(0, 9);
	desc_seed("bad-workers-block", d);
	d.payload_block = FUZZ_HANDLE(0, 20);
	desc_seed("bad-free-block", d);
	d.payload_block = FUZZ_HANDLE(0, 32);
	desc_seed("bad-index-range", d);
	d.payload_block = FUZZ_HANDLE(3, 0);
	desc_seed("bad-class-range", d);
	d = desc_ok();
	d.slot = FUZZ_DESC_MAX_TASKS;
	desc_seed("bad-slot", d);
	d = desc_ok();
	d.status = 0xffff;
	desc_seed("bad-status", d);
}

/* ---- fuzz_ctl_hello ---------------------------------------------------- */

static struct sluice__ctl_hello hello_ok(void)
{
	struct sluice__ctl_hello h = {.magic = SLUICE__CTL_HELLO_MAGIC,
				      .proto = SLUICE__CTL_PROTO_VERSION,
				      .type = SLUICE__CTL_T_HELLO,
				      .layout = SLUICE_FLOW_LAYOUT_VERSION,
				      .pid = 1234};
	return h;
}

static struct sluice__ctl_reply reply_ok(void)
{
	struct sluice__ctl_reply r = {.magic = SLUICE__CTL_REPLY_MAGIC,
				      .proto = SLUICE__CTL_PROTO_VERSION,
				      .type = SLUICE__CTL_T_REPLY,
				      .layout = SLUICE_FLOW_LAYOUT_VERSION,
				      .slot = 0,
				      .arena_size = 1 << 20,
				      .pid = 1233};
	return r;
}

static void ctl_seeds(void)
{
	const char *t = "fuzz_ctl_hello";
	struct sluice__ctl_hello h = hello_ok();
	put(t, "hello-valid", &h, sizeof(h), NULL, 0);
	h.flags = SLUICE__CTL_F_READ_ONLY;
	put(t, "hello-valid-read-only", &h, sizeof(h), NULL, 0);
	put(t, "hello-truncated", &h, 16, NULL, 0);
	put(t, "hello-prefix-only", &h, 8, NULL, 0);
	uint8_t pad[8] = {0};
	put(t, "hello-oversized", &h, sizeof(h), pad, sizeof(pad));
	h = hello_ok();
	h.magic = SLUICE__CTL_REPLY_MAGIC;
	put(t, "hello-bad-magic", &h, sizeof(h), NULL, 0);
	h = hello_ok();
	h.proto = SLUICE__CTL_PROTO_VERSION + 1;
	put(t, "hello-bad-proto", &h, sizeof(h), NULL, 0);
	h = hello_ok();
	h.layout = SLUICE_FLOW_LAYOUT_VERSION + 1;
	put(t, "hello-bad-layout", &h, sizeof(h), NULL, 0);
	h = hello_ok();
	h.type = SLUICE__CTL_T_REPLY;
	put(t, "hello-bad-type", &h, sizeof(h), NULL, 0);
	h = hello_ok();
	h.flags = 2;
	put(t, "hello-bad-flags", &h, sizeof(h), NULL, 0);
	h = hello_ok();
	h.reserved[1] = 1;
	put(t, "hello-bad-reserved", &h, sizeof(h), NULL, 0);
	h = hello_ok();
	h.pid = -1;
	put(t, "hello-bad-pid", &h, sizeof(h), NULL, 0);

	struct sluice__ctl_reply r = reply_ok();
	put(t, "reply-grant", &r, sizeof(r), NULL, 0);
	r.flags = SLUICE__CTL_F_READ_ONLY;
	r.slot = SLUICE__CTL_NO_SLOT;
	put(t, "reply-grant-read-only", &r, sizeof(r), NULL, 0);
	r = reply_ok();
	r.status = SLUICE_EUSERS;
	r.slot = SLUICE__CTL_NO_SLOT;
	r.arena_size = 0;
	snprintf(r.message, sizeof(r.message), "client table full (8 of 8)");
	put(t, "reply-refusal", &r, sizeof(r), NULL, 0);
	r.proto = SLUICE__CTL_PROTO_VERSION + 1;
	put(t, "reply-other-proto", &r, sizeof(r), NULL, 0);
	r = reply_ok();
	r.status = 17;
	put(t, "reply-bad-status", &r, sizeof(r), NULL, 0);
	r = reply_ok();
	r.status = SLUICE_EACCES;
	memset(r.message, 'x', sizeof(r.message));
	r.slot = SLUICE__CTL_NO_SLOT;
	r.arena_size = 0;
	put(t, "reply-unterminated", &r, sizeof(r), NULL, 0);
	r = reply_ok();
	put(t, "reply-truncated", &r, 100, NULL, 0);
}

/* ---- fuzz_render ---------------------------------------------------------- */

struct render_img {
	uint8_t buf[1 << 16];
	size_t len;
};

static void img_put(struct render_img *r, const void *p, size_t n)
{
	DIE_UNLESS(r->len + n <= sizeof(r->buf));
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

/* A health snapshot as fuzz_render reads it: 2 steps of 2 and 1 workers,
 * 2 classes, an earlier snapshot one second before; `names` and `slots`
 * say what is off. */
static void render_seed(const char *name, const char *step0, const char *step1, bool slots_off,
			uint8_t flags)
{
	static struct render_img r;
	r.len = 0;
	const char *flow = "seed-flow";
	uint8_t head[5] = {2, 3, 2, flags, (uint8_t)strlen(flow)};
	img_put(&r, head, sizeof(head));
	img_put(&r, flow, strlen(flow));
	sluice_flow_snapshot_t now = {.taken_ns = 2000000000, .state = SLUICE_FLOW_RUNNING,
				      .nsteps = 2, .nworkers = 3, .nclients = 1,
				      .supervisor_pid = 100, .submitted = 500, .in_flight = 3};
	now.completed[SLUICE_TASK_OK] = 490;
	now.completed[SLUICE_TASK_HANDLER_ERROR] = 7;
	sluice_step_health_t st[2];
	sluice_worker_health_t w[3];
	memset(st, 0, sizeof(st));
	memset(w, 0, sizeof(w));
	memcpy(st[0].name, step0, strnlen(step0, sizeof(st[0].name)));
	memcpy(st[1].name, step1, strnlen(step1, sizeof(st[1].name)));
	for (unsigned i = 0; i < 2; i++) {
		st[i].nprocs = 2 - i;
		st[i].nslots = 2 - i;
		st[i].first_worker = slots_off && i == 1 ? 0xfffffff0u : 2 * i;
		st[i].batch_size = 8;
		st[i].tasks = 497;
		st[i].batches = 100;
		st[i].latency_hist[12] = 400;
		st[i].latency_hist[20] = 97;
		st[i].batch_hist[2] = 100;
		st[i].latency_sum_ns = 497 * 5000;
	}
	for (unsigned k = 0; k < 3; k++) {
		w[k].step = k / 2;
		w[k].state = SLUICE_WORKER_READY;
		w[k].pid = 101 + k;
		w[k].tasks = k < 2 ? 248 : 497;
	}
	w[2].last_pid = 99;
	w[2].last_signal = 9;
	w[2].last_exit_code = -1;
	w[2].restarts = 1;
	img_put(&r, &now, sizeof(now));
	img_put(&r, st, sizeof(st));
	img_put(&r, w, sizeof(w));
	sluice_flow_snapshot_t prev = now;
	prev.taken_ns = 1000000000;
	img_put(&r, &prev, sizeof(prev));
	st[0].tasks = 200;
	img_put(&r, st, sizeof(st));
	img_put(&r, w, sizeof(w));
	uint32_t cap[2] = {256, 64};
	img_put(&r, cap, sizeof(cap));
	sluice_blocks_stats_t cls[2] = {{.block_size = 256, .capacity = 1000, .in_use = 12},
					{.block_size = 65536, .capacity = 4}};
	img_put(&r, cls, sizeof(cls));
	uint64_t uptime = 123456789;
	img_put(&r, &uptime, sizeof(uptime));
	put("fuzz_render", name, r.buf, r.len, NULL, 0);
}

static void render_seeds(void)
{
	uint8_t all = FUZZ_RENDER_PREV | FUZZ_RENDER_CAPACITY | FUZZ_RENDER_CLASSES;
	render_seed("valid-2-steps", "parse", "score", false, all);
	render_seed("valid-no-extras", "parse", "score", false, 0);
	render_seed("names-to-escape", "q\"b\\n\nc\x01", "\xff\xc3(\xed\xa0\x80zzzzzzzzzzzzzzzzzzzzzzzzzz",
		    false, all);
	render_seed("slots-out-of-range", "a", "b", true, all | FUZZ_RENDER_PREV_GEOMETRY);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	mkdir_p(outdir);
	arena_seeds();
	blocks_seeds();
	ring_seeds();
	desc_seeds();
	ctl_seeds();
	render_seeds();
	return 0;
}
