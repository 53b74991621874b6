/* libFuzzer target: the input is one message as it arrives on the control
 * socket (runtime/control_proto.h), checked the way each end checks it:
 * as a hello by sluice__ctl_parse_hello (the supervisor) and as a reply by
 * sluice__ctl_parse_reply (the client).
 *
 * The input lies in a heap buffer of exactly its length, so ASan sees any
 * read past it. What must hold: each call returns 0 or one of the codes it
 * documents; it writes a NUL-terminated reason that fits the buffer it was
 * given (non-empty on a refusal, empty on success), and the same verdict
 * with no buffer at all; it accepts exactly what an independent oracle
 * written from docs/ATTACH.md accepts, and what it accepts is copied
 * unchanged.
 */
#define _GNU_SOURCE
#include "fuzz/fuzz_common.h"

#include <stdbool.h>

#include "runtime/control_proto.h"
#include "runtime/flow_layout.h"

static bool zero(const uint32_t *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (w[i] != 0)
			return false;
	return true;
}

static bool hello_oracle(const uint8_t *data, size_t size)
{
	struct sluice__ctl_hello h;
	if (size != sizeof(h))
		return false;
	memcpy(&h, data, sizeof(h));
	return h.magic == SLUICE__CTL_HELLO_MAGIC && h.proto == SLUICE__CTL_PROTO_VERSION &&
	       h.type == SLUICE__CTL_T_HELLO && h.layout == SLUICE_FLOW_LAYOUT_VERSION &&
	       (h.flags & ~SLUICE__CTL_F_KNOWN) == 0 && h.pid > 0 && zero(h.reserved, 3);
}

static bool reply_oracle(const uint8_t *data, size_t size)
{
	struct sluice__ctl_reply r;
	if (size != sizeof(r))
		return false;
	memcpy(&r, data, sizeof(r));
	if (r.magic != SLUICE__CTL_REPLY_MAGIC || r.proto != SLUICE__CTL_PROTO_VERSION ||
	    r.type != SLUICE__CTL_T_REPLY || r.status > 0 ||
	    strcmp(sluice_err_name(r.status), "UNKNOWN") == 0 ||
	    (r.flags & ~SLUICE__CTL_F_KNOWN) != 0 || !zero(r.reserved, 7) ||
	    memchr(r.message, '\0', sizeof(r.message)) == NULL)
		return false;
	if (r.status == 0)
		return r.message[0] == '\0' && r.arena_size != 0 &&
		       r.layout == SLUICE_FLOW_LAYOUT_VERSION;
	return r.flags == 0 && r.arena_size == 0 && r.slot == SLUICE__CTL_NO_SLOT;
}

static bool one_of(int rc, const int *codes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rc == codes[i])
			return true;
	return false;
}

static const int documented[] = {0, SLUICE_ETRUNCATED, SLUICE_EBADMAGIC, SLUICE_EVERSION,
				 SLUICE_EMSGSIZE, SLUICE_ENOTSUP, SLUICE_EINVAL};

/* The reason buffer: its size varies with the input, so that truncated
 * reasons are exercised too; bytes past it are canaries. */
static void check_msg(const char *msg, size_t msglen, int rc)
{
	FUZZ_CHECK(msglen == 0 || memchr(msg, '\0', msglen) != NULL);
	if (msglen > 1)
		FUZZ_CHECK(rc == 0 ? msg[0] == '\0' : msg[0] != '\0');
	for (size_t i = msglen; i < msglen + 8; i++)
		FUZZ_CHECK(msg[i] == '\x5a');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	FUZZ_CHECK(buf != NULL);
	memcpy(buf, data, size);
	size_t msglen = size == 0 ? 0 : data[size - 1] % (SLUICE__CTL_MSG_MAX + 1);
	char msg[SLUICE__CTL_MSG_MAX + 8];
	memset(msg, 0x5a, sizeof(msg));

	struct sluice__ctl_hello h;
	int rc = sluice__ctl_parse_hello(buf, size, &h, msg, msglen);
	FUZZ_CHECK_RC(rc);
	FUZZ_CHECK(one_of(rc, documented, sizeof(documented) / sizeof(documented[0])));
	check_msg(msg, msglen, rc);
	FUZZ_CHECK(sluice__ctl_parse_hello(buf, size, &h, NULL, 0) == rc);
	FUZZ_CHECK((rc == 0) == hello_oracle(data, size));
	if (rc == 0)
		FUZZ_CHECK(memcmp(&h, data, sizeof(h)) == 0);

	memset(msg, 0x5a, sizeof(msg));
	struct sluice__ctl_reply r;
	rc = sluice__ctl_parse_reply(buf, size, &r, msg, msglen);
	FUZZ_CHECK_RC(rc);
	FUZZ_CHECK(one_of(rc, documented, sizeof(documented) / sizeof(documented[0])));
	check_msg(msg, msglen, rc);
	FUZZ_CHECK(sluice__ctl_parse_reply(buf, size, &r, NULL, 0) == rc);
	FUZZ_CHECK((rc == 0) == reply_oracle(data, size));
	if (rc == 0) {
		FUZZ_CHECK(memcmp(&r, data, sizeof(r)) == 0);
		FUZZ_CHECK_RC(r.status);
	}
	free(buf);
	return 0;
}
