/* CRC-32 and PackBits: the HTTP example's work (see http_work.h). */
#include "http_work.h"

#include <string.h>

static uint32_t crc_table[256];

int http_work_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
	return http_crc32((const uint8_t *)"123456789", 9) == 0xCBF43926u ? 0 : -1;
}

uint32_t http_crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++)
		c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* Equal bytes starting at in[i], at most 128. */
static size_t run_at(const uint8_t *in, size_t n, size_t i)
{
	size_t r = 1;
	while (i + r < n && r < 128 && in[i + r] == in[i])
		r++;
	return r;
}

size_t http_packbits_encode(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t i = 0, o = 0;
	while (i < n) {
		size_t r = run_at(in, n, i);
		if (r >= 3) {
			out[o++] = (uint8_t)(257 - r);
			out[o++] = in[i];
			i += r;
			continue;
		}
		/* A literal: up to 128 bytes, ending where a run of 3 begins
		 * (never at once: in[i] does not begin one). */
		size_t start = i;
		while (i < n && i - start < 128 &&
		       !(i + 2 < n && in[i] == in[i + 1] && in[i] == in[i + 2]))
			i++;
		out[o++] = (uint8_t)(i - start - 1);
		memcpy(out + o, in + start, i - start);
		o += i - start;
	}
	return o;
}

long http_packbits_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	size_t i = 0, o = 0;
	while (i < n) {
		unsigned h = in[i++];
		if (h == 128)
			continue;
		if (h < 128) {
			size_t k = h + 1u;
			if (k > n - i || k > cap - o)
				return -1;
			memcpy(out + o, in + i, k);
			i += k;
			o += k;
		} else {
			size_t k = 257u - h;
			if (i >= n || k > cap - o)
				return -1;
			memset(out + o, in[i++], k);
			o += k;
		}
	}
	return (long)o;
}

size_t http_work_result(const uint8_t *body, size_t n, uint8_t *out)
{
	http_put_le32(out, http_crc32(body, n));
	return HTTP_WORK_CRC_LEN + http_packbits_encode(body, n, out + HTTP_WORK_CRC_LEN);
}
