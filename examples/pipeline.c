/* A text pipeline on sluice: three steps of real work in worker processes,
 * every result checked against the same work done here, in-process.
 *
 *   decode     base64 -> bytes, into a new result block. Batches of up to
 *              8, taking what is queued (batch_timeout 0). Rejects bad
 *              base64 with a message (sluice_item_fail).
 *   normalise  in place: ASCII letters to upper case, every run of white
 *              space to one space, none at either end. Condition: only
 *              blocks tagged as text; binary blocks skip it (the condition
 *              runs in decode's worker, so a skipped task makes no hop).
 *   checksum   CRC-32 of the bytes so far, appended to the result in place
 *              (4 bytes, little-endian). Batches of up to 32, waiting up to
 *              200 us for a batch to fill. Its on_start checks the CRC
 *              table against the standard test vector.
 *
 * A payload is one tag byte ('t' text, 'b' binary) and the block in
 * base64, written once by the client, in place in the arena. Inputs come
 * from a seeded generator: text of words, mixed case and ragged white
 * space; every 10th block is random binary; every 250th has a corrupted
 * base64 character. The client runs an event loop on the flow's eventfd
 * (poll + sluice_flow_reap), keeps up to WINDOW tasks in flight, and for
 * each result decodes, normalises and checksums the same payload itself
 * and compares byte for byte (the decoded bytes also against the
 * generator's original). Exit 0 when everything matched, 1 otherwise.
 *
 * usage: pipeline [tasks]   (default 5000)
 *
 * Only the public API (sluice/flow.h, sluice/error.h) is used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sluice/error.h>
#include <sluice/flow.h>

#define WINDOW 256u           /* tasks in flight at most (the task table) */
#define SUBMIT_BATCH 32u
#define MAX_TEXT 3000u        /* decoded bytes per block at most */
#define TRAILER 4u            /* the CRC-32 checksum appends */
#define BINARY_EVERY 10u
#define CORRUPT_EVERY 250u

enum { STEP_DECODE, STEP_NORMALISE, STEP_CHECKSUM, NSTEPS };
static const unsigned batch_size[NSTEPS] = {8, 1, 32};
static const uint64_t batch_timeout_ns[NSTEPS] = {0, 0, 200000};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the work: base64, normalising, CRC-32 ------------------------------------ */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

static void b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i = 0, o = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes n characters of padded base64 into out (room for n / 4 * 3
 * bytes). Returns the byte count, or -1 - offset of the first bad
 * character (a length not a multiple of 4 is bad at offset n). */
static long b64_decode(const char *in, size_t n, uint8_t *out)
{
	if (n % 4 != 0)
		return -1 - (long)n;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		unsigned pad = 0;
		for (unsigned k = 0; k < 4; k++) {
			char c = in[i + k];
			if (c == '=' && i + 4 == n && k >= 2 && (k == 3 || in[i + 3] == '=')) {
				v[k] = 0;
				pad++;
				continue;
			}
			v[k] = b64_value(c);
			if (v[k] < 0 || pad > 0)
				return -1 - (long)(i + k);
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		out[o++] = (uint8_t)(w >> 16);
		if (pad < 2)
			out[o++] = (uint8_t)(w >> 8);
		if (pad < 1)
			out[o++] = (uint8_t)w;
	}
	return (long)o;
}

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Upper-cases ASCII letters and squeezes white space, in place. Returns
 * the new length. */
static size_t normalise(uint8_t *s, size_t n)
{
	size_t o = 0;
	bool gap = false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (is_space(c)) {
			gap = o > 0;
			continue;
		}
		if (gap)
			s[o++] = ' ';
		gap = false;
		s[o++] = c >= 'a' && c <= 'z' ? (uint8_t)(c - 'a' + 'A') : c;
	}
	return o;
}

static uint32_t crc_table[256];

static void crc32_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++)
		c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- the steps (run in the workers) -------------------------------------------- */

static int decode_handle(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		const char *p = it->payload;
		if (p == NULL || it->payload_len < 1 || (p[0] != 't' && p[0] != 'b')) {
			sluice_item_fail(it, "decode: payload without a tag");
			continue;
		}
		size_t len = it->payload_len - 1;
		uint8_t *out = sluice_item_result_alloc(it, len / 4 * 3 + TRAILER);
		if (out == NULL) {
			sluice_item_fail(it, "decode: no result block for %zu bytes", len);
			continue;
		}
		long k = b64_decode(p + 1, len, out);
		if (k < 0) {
			sluice_item_fail(it, "decode: invalid base64 at offset %ld", -1 - k);
			continue;
		}
		it->result_len = (uint64_t)k;
	}
	return 0;
}

static bool is_text(void *arg, const sluice_item_t *task)
{
	const char *p = task->payload;
	return p != NULL && task->payload_len > 0 && p[0] == 't';
}

static int normalise_handle(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		items[i].result_len = normalise(items[i].result, items[i].result_len);
	return 0;
}

static int checksum_start(void *arg, const sluice_worker_info_t *w, char *msg, size_t msglen)
{
	crc32_init();
	if (crc32((const uint8_t *)"123456789", 9) != 0xCBF43926u) {
		snprintf(msg, msglen, "CRC-32 self-test failed in worker %u", w->worker);
		return SLUICE_EINVAL;
	}
	return 0;
}

static int checksum_handle(void *arg, sluice_item_t *items, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		if (it->result == NULL || it->result_len + TRAILER > it->result_cap) {
			sluice_item_fail(it, "checksum: no room for the trailer");
			continue;
		}
		uint8_t *r = it->result;
		put_le32(r + it->result_len, crc32(r, it->result_len));
		it->result_len += TRAILER;
	}
	return 0;
}

/* ---- the inputs ---------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

static bool is_binary(uint64_t i) { return i % BINARY_EVERY == BINARY_EVERY - 1; }
static bool is_corrupt(uint64_t i) { return i % CORRUPT_EVERY == 7; }

/* Block i, as the client starts from: text or binary bytes. Returns the
 * length (<= MAX_TEXT). */
static size_t make_input(uint64_t i, uint8_t *buf)
{
	static const char *const words[] = {
		"sluice", "gate", "Water", "flows", "through", "the", "CHANNEL", "into", "a",
		"basin", "Lock", "keeper", "opens", "weir", "and", "mill", "race", "Turbine",
		"pressure", "head", "Spillway", "level", "rising", "falling",
	};
	static const char *const gaps[] = {" ", " ", " ", "  ", "\t", "\n", " \n\t ", "\r\n"};
	uint64_t s = i * 0x2545F4914F6CDD1Du + 1;
	size_t want = 64 + splitmix(&s) % (MAX_TEXT - 64 + 1), n = 0;
	if (is_binary(i)) {
		for (; n < want; n++)
			buf[n] = (uint8_t)splitmix(&s);
		return n;
	}
	if (splitmix(&s) % 4 == 0)
		buf[n++] = '\t'; /* white space at the start, now and then */
	for (;;) {
		const char *w = words[splitmix(&s) % (sizeof(words) / sizeof(words[0]))];
		const char *g = gaps[splitmix(&s) % (sizeof(gaps) / sizeof(gaps[0]))];
		size_t wl = strlen(w), gl = strlen(g);
		if (n + wl + gl > want)
			break;
		memcpy(buf + n, w, wl);
		memcpy(buf + n + wl, g, gl);
		n += wl + gl;
	}
	return n;
}

/* ---- the client ------------------------------------------------------------------ */

struct tally {
	uint64_t ok, rejected, mismatches;
	uint64_t text, binary;        /* decoded fine, by kind */
	uint64_t bytes_in, bytes_out; /* payload and result bytes */
	uint64_t local_ns;            /* the same work done here */
};

static uint8_t input[MAX_TEXT], local[MAX_TEXT / 3 * 4 + TRAILER];

static void mismatch(struct tally *y, uint64_t i, const char *what)
{
	if (y->mismatches++ < 10)
		fprintf(stderr, "pipeline: task %" PRIu64 ": %s\n", i, what);
}

/* Checks task t (block t->user) against the same work done here. */
static void check(sluice_task_t *t, struct tally *y)
{
	uint64_t i = t->user;
	size_t n = make_input(i, input);
	const char *p = t->payload;
	size_t plen = t->payload_len;
	y->bytes_in += plen;

	uint64_t t0 = now_ns();
	long k = b64_decode(p + 1, plen - 1, local);
	y->local_ns += now_ns() - t0;
	bool text = p[0] == 't';
	if (k < 0) {
		if (!is_corrupt(i))
			mismatch(y, i, "the client's own decode failed");
		else if (t->status != SLUICE_TASK_HANDLER_ERROR ||
			 strncmp(t->message, "decode: invalid base64", 22) != 0)
			mismatch(y, i, "a corrupt block was not rejected by decode");
		else
			y->rejected++;
		return;
	}
	/* The decode is right: the bytes are the generator's, and the tag
	 * says what they are. */
	if (is_corrupt(i) || (size_t)k != n || memcmp(local, input, n) != 0 ||
	    text == is_binary(i)) {
		mismatch(y, i, "the payload does not decode to its input");
		return;
	}
	t0 = now_ns();
	if (text)
		k = (long)normalise(local, (size_t)k);
	put_le32(local + k, crc32(local, (size_t)k));
	y->local_ns += now_ns() - t0;
	if (t->status != SLUICE_TASK_OK) {
		char what[256];
		snprintf(what, sizeof(what), "status %s: %s", sluice_task_status_name(t->status),
			 t->message);
		mismatch(y, i, what);
		return;
	}
	if (t->result == NULL || t->result_len != (uint64_t)k + TRAILER ||
	    memcmp(t->result, local, (size_t)k + TRAILER) != 0) {
		mismatch(y, i, "the result differs from the same work done in-process");
		return;
	}
	y->ok++;
	y->bytes_out += t->result_len;
	if (text)
		y->text++;
	else
		y->binary++;
}

/* Allocates task i and writes its payload in place: tag and base64. */
static int make_task(sluice_flow_t *f, uint64_t i, sluice_task_t **out)
{
	size_t n = make_input(i, input);
	size_t len = 1 + b64_encoded_len(n);
	sluice_task_t *t;
	int rc = sluice_task_alloc(f, len, &t);
	if (rc != 0)
		return rc;
	char *p = t->payload;
	p[0] = is_binary(i) ? 'b' : 't';
	b64_encode(input, n, p + 1);
	if (is_corrupt(i))
		p[1 + (i * 7919) % (len - 1)] = '*';
	t->payload_len = len;
	t->user = i;
	*out = t;
	return 0;
}

static int run(uint64_t ntasks)
{
	sluice_step_t steps[NSTEPS] = {
		{.size_of = sizeof(sluice_step_t), .name = "decode",
		 .handler = {.handle = decode_handle}, .capacity = 2 * WINDOW},
		{.size_of = sizeof(sluice_step_t), .name = "normalise",
		 .handler = {.handle = normalise_handle}, .condition = is_text},
		{.size_of = sizeof(sluice_step_t), .name = "checksum",
		 .handler = {.on_start = checksum_start, .handle = checksum_handle}},
	};
	for (unsigned s = 0; s < NSTEPS; s++) {
		steps[s].nprocs = 1;
		steps[s].batch_size = batch_size[s];
		steps[s].batch_timeout_ns = batch_timeout_ns[s];
		steps[s].task_timeout_ns = 10000000000u; /* 10 s: a hung worker ends the run */
	}
	sluice_flow_opts_t o = {.size_of = sizeof(o), .name = "text-pipeline", .nsteps = NSTEPS,
				.steps = steps, .max_tasks = WINDOW};
	char err[256];
	sluice_flow_t *f;
	int rc = sluice_flow_create(&o, &f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "pipeline: create: %s: %s\n", sluice_err_name(rc), err);
		return 1;
	}
	int efd = sluice_flow_eventfd(f);
	if (efd < 0 || (rc = sluice_flow_start(f, 10000000000u)) != 0) {
		fprintf(stderr, "pipeline: start: %s: %s\n", sluice_err_name(efd < 0 ? efd : rc),
			sluice_flow_error(f));
		sluice_flow_destroy(f);
		return 1;
	}
	crc32_init();

	struct tally y = {0};
	uint64_t next = 0, done = 0, inflight = 0, polls = 0;
	sluice_task_t *batch[SUBMIT_BATCH], *ready[64];
	unsigned pending = 0; /* allocated, not yet submitted: batch[0..pending) */
	uint64_t t0 = now_ns();
	while (done < ntasks) {
		/* Fill the window: allocate and write, then submit in batches.
		 * Never blocks (timeout 0): decode's ring lane holds the
		 * window. */
		while (inflight + pending < WINDOW && next < ntasks && pending < SUBMIT_BATCH) {
			rc = make_task(f, next, &batch[pending]);
			if (rc != 0) {
				fprintf(stderr, "pipeline: alloc: %s\n", sluice_strerror(rc));
				goto out;
			}
			next++;
			pending++;
		}
		if (pending > 0) {
			int k = sluice_task_submit_many(f, batch, pending, 0);
			if (k < 0 && k != SLUICE_ETIMEDOUT) {
				fprintf(stderr, "pipeline: submit: %s\n", sluice_strerror(k));
				goto out;
			}
			if (k > 0) {
				memmove(batch, batch + k, (pending - (unsigned)k) * sizeof(batch[0]));
				pending -= (unsigned)k;
				inflight += (unsigned)k;
			}
		}
		/* Collect: reap until drained (it then re-arms the eventfd);
		 * sleep in poll only when nothing came back. */
		int k = sluice_flow_reap(f, ready, 64);
		for (int j = 0; j < k; j++) {
			check(ready[j], &y);
			sluice_task_release(f, ready[j]);
		}
		done += (unsigned)k;
		inflight -= (unsigned)k;
		bool can_fill = inflight + pending < WINDOW && next < ntasks;
		if (k > 0 || done == ntasks || can_fill || inflight == 0)
			continue; /* inflight == 0: retry the submit */
		struct pollfd pfd = {.fd = efd, .events = POLLIN};
		if (poll(&pfd, 1, 30000) == 0) {
			fprintf(stderr, "pipeline: no completion for 30 s, %" PRIu64 " in flight\n",
				inflight);
			goto out;
		}
		polls++;
	}
out:;
	uint64_t elapsed = now_ns() - t0;
	sluice_step_stats_t st[NSTEPS];
	for (unsigned s = 0; s < NSTEPS; s++)
		sluice_flow_step_stats(f, s, &st[s]);
	int stop = sluice_flow_stop(f, 10000000000u);
	sluice_flow_destroy(f);

	/* What should have happened, from the generator alone. */
	uint64_t want_rejected = 0, want_binary = 0;
	for (uint64_t i = 0; i < ntasks; i++) {
		want_rejected += is_corrupt(i);
		want_binary += is_binary(i) && !is_corrupt(i);
	}
	uint64_t want_text = ntasks - want_rejected - want_binary;
	bool counts_ok = done == ntasks && y.rejected == want_rejected &&
			 y.binary == want_binary && y.text == want_text &&
			 st[STEP_DECODE].tasks == ntasks &&
			 st[STEP_DECODE].handler_errors == want_rejected &&
			 st[STEP_NORMALISE].tasks == want_text &&
			 st[STEP_CHECKSUM].tasks == want_text + want_binary;
	for (unsigned s = 0; s < NSTEPS; s++)
		counts_ok = counts_ok && st[s].max_batch <= batch_size[s] &&
			    st[s].worker_deaths == 0 && st[s].timeouts == 0 &&
			    st[s].bad_descriptors == 0;

	printf("pipeline: %" PRIu64 " text blocks through decode -> normalise -> checksum, "
	       "one worker per step, up to %u in flight\n", ntasks, WINDOW);
	static const char *const names[NSTEPS] = {"decode", "normalise", "checksum"};
	for (unsigned s = 0; s < NSTEPS; s++) {
		char wait[48] = "takes what is queued";
		if (batch_timeout_ns[s] > 0)
			snprintf(wait, sizeof(wait), "waits up to %" PRIu64 " us to fill",
				 batch_timeout_ns[s] / 1000);
		printf("  %-9s %6" PRIu64 " tasks in %6" PRIu64 " batches: avg %5.2f, largest %2u "
		       "(batch_size %2u, %s)\n", names[s], st[s].tasks, st[s].batches,
		       st[s].batches ? (double)st[s].tasks / (double)st[s].batches : 0.0,
		       st[s].max_batch, batch_size[s], wait);
	}
	printf("  condition: %" PRIu64 " binary blocks skipped normalise (expected %" PRIu64 ")\n",
	       ntasks - y.rejected - st[STEP_NORMALISE].tasks, want_binary);
	printf("  decode rejected %" PRIu64 " corrupt blocks with a message (expected %" PRIu64 ")\n",
	       y.rejected, want_rejected);
	printf("  results: %" PRIu64 " ok, each equal to the same work done in-process; "
	       "%" PRIu64 " mismatches\n", y.ok, y.mismatches);
	printf("  %.2f MB of base64 in, %.2f MB of results out; %" PRIu64 " sleeps in poll\n",
	       (double)y.bytes_in / 1e6, (double)y.bytes_out / 1e6, polls);
	printf("  elapsed %.3f s: %.0f tasks/s (the client's checks included; the same three "
	       "steps in-process took %.3f s of this thread)\n",
	       (double)elapsed / 1e9, (double)done / ((double)elapsed / 1e9),
	       (double)y.local_ns / 1e9);
	if (stop != 0)
		fprintf(stderr, "pipeline: stop: %s\n", sluice_strerror(stop));
	if (!counts_ok)
		fprintf(stderr, "pipeline: counts differ from what the inputs call for\n");
	bool pass = y.mismatches == 0 && counts_ok && stop == 0;
	printf("pipeline: %s\n", pass ? "all results match" : "FAILED");
	return pass ? 0 : 1;
}

int main(int argc, char **argv)
{
	uint64_t ntasks = 5000;
	if (argc > 2 || (argc == 2 && (ntasks = strtoull(argv[1], NULL, 10)) == 0)) {
		fprintf(stderr, "usage: pipeline [tasks]\n");
		return 2;
	}
	return run(ntasks);
}
