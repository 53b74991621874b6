/* The work the HTTP example does on a request body, the same in every mode
 * (sluice workers, in-process, the socket flow process): a CRC-32 of the
 * body and its PackBits run-length encoding.
 *
 * A result is laid out as the service answers it: the CRC-32 of the body,
 * 4 bytes little-endian, then the encoded body. Any thread; no state but
 * a table built once by http_work_init().
 */
#ifndef SLUICE_EXAMPLES_HTTP_WORK_H
#define SLUICE_EXAMPLES_HTTP_WORK_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_WORK_CRC_LEN 4u

/* Builds the CRC table and checks it against the standard test vector
 * (CRC-32 of "123456789" is cbf43926). Returns 0, or -1 when the check
 * fails. Call once per process before the other functions. */
int http_work_init(void);

/* The CRC-32 (IEEE 802.3, reflected, as zlib's crc32) of p[0..n). */
uint32_t http_crc32(const uint8_t *p, size_t n);

/* The most bytes http_packbits_encode writes for n input bytes. */
static inline size_t http_packbits_bound(size_t n)
{
	return n + n / 128 + 2;
}

/* PackBits: a header byte h, then for h 0..127 the next h + 1 bytes as
 * they are, for h 129..255 the next byte repeated 257 - h times (2..128);
 * 128 is not used. Runs of 3 or more equal bytes become runs. Writes at
 * most http_packbits_bound(n) bytes to out; returns how many. */
size_t http_packbits_encode(const uint8_t *in, size_t n, uint8_t *out);

/* Decodes PackBits into out (cap bytes). Returns the length, or -1 for an
 * input that is cut short or decodes to more than cap bytes. */
long http_packbits_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* The whole result for body[0..n): CRC-32 then the encoding, into out
 * (at least HTTP_WORK_CRC_LEN + http_packbits_bound(n) bytes). Returns the
 * result's length. */
size_t http_work_result(const uint8_t *body, size_t n, uint8_t *out);

static inline size_t http_work_result_bound(size_t n)
{
	return HTTP_WORK_CRC_LEN + http_packbits_bound(n);
}

static inline void http_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t http_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
