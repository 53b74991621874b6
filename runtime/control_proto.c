/* The control protocol's parse functions (runtime/control_proto.h): pure
 * checks of what arrives on the control socket, fuzzed by
 * tests/fuzz/fuzz_ctl_hello.c. */
#include "runtime/control_proto.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sluice/error.h>
#include "runtime/flow_layout.h"

int sluice__ctl_why(int code, char *msg, size_t msglen, const char *fmt, ...)
{
	if (msglen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return code;
}

#define why sluice__ctl_why

static bool all_zero(const uint32_t *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (w[i] != 0)
			return false;
	return true;
}

/* The frozen prefix of both messages: magic, proto, type. */
struct prefix {
	uint32_t magic;
	uint16_t proto;
	uint16_t type;
};

int sluice__ctl_parse_hello(const void *buf, size_t len, struct sluice__ctl_hello *out,
			    char *msg, size_t msglen)
{
	struct sluice__ctl_hello h;
	struct prefix p;
	if (len < sizeof(p))
		return why(SLUICE_ETRUNCATED, msg, msglen, "hello of %zu bytes, want %zu", len,
			   sizeof(h));
	memcpy(&p, buf, sizeof(p));
	if (p.magic != SLUICE__CTL_HELLO_MAGIC)
		return why(SLUICE_EBADMAGIC, msg, msglen, "not a sluice hello (magic %#x)",
			   (unsigned)p.magic);
	if (p.proto != SLUICE__CTL_PROTO_VERSION)
		return why(SLUICE_EVERSION, msg, msglen,
			   "control protocol version %u, this flow speaks %u", (unsigned)p.proto,
			   SLUICE__CTL_PROTO_VERSION);
	if (len < sizeof(h))
		return why(SLUICE_ETRUNCATED, msg, msglen, "hello of %zu bytes, want %zu", len,
			   sizeof(h));
	if (len > sizeof(h))
		return why(SLUICE_EMSGSIZE, msg, msglen, "hello of %zu bytes or more, want %zu",
			   len, sizeof(h));
	memcpy(&h, buf, sizeof(h));
	if (h.type != SLUICE__CTL_T_HELLO)
		return why(SLUICE_ENOTSUP, msg, msglen, "message type %u, want hello (%u)",
			   (unsigned)h.type, SLUICE__CTL_T_HELLO);
	if (h.flags & ~SLUICE__CTL_F_KNOWN)
		return why(SLUICE_ENOTSUP, msg, msglen, "unknown hello flags %#x",
			   (unsigned)(h.flags & ~SLUICE__CTL_F_KNOWN));
	if (!all_zero(h.reserved, sizeof(h.reserved) / sizeof(h.reserved[0])))
		return why(SLUICE_EINVAL, msg, msglen, "hello's reserved fields are not zero");
	if (h.pid <= 0)
		return why(SLUICE_EINVAL, msg, msglen, "hello's pid %d", (int)h.pid);
	if (h.layout != SLUICE_FLOW_LAYOUT_VERSION)
		return why(SLUICE_EVERSION, msg, msglen,
			   "client library of flow layout version %u, this flow is version %u",
			   (unsigned)h.layout, SLUICE_FLOW_LAYOUT_VERSION);
	*out = h;
	if (msglen > 0)
		msg[0] = '\0';
	return 0;
}

int sluice__ctl_parse_reply(const void *buf, size_t len, struct sluice__ctl_reply *out,
			    char *msg, size_t msglen)
{
	struct sluice__ctl_reply r;
	struct prefix p;
	int32_t status;
	if (len < sizeof(p) + sizeof(status))
		return why(SLUICE_ETRUNCATED, msg, msglen, "reply of %zu bytes, want %zu", len,
			   sizeof(r));
	memcpy(&p, buf, sizeof(p));
	memcpy(&status, (const char *)buf + offsetof(struct sluice__ctl_reply, status),
	       sizeof(status));
	if (p.magic != SLUICE__CTL_REPLY_MAGIC)
		return why(SLUICE_EBADMAGIC, msg, msglen, "not a sluice reply (magic %#x)",
			   (unsigned)p.magic);
	if (p.proto != SLUICE__CTL_PROTO_VERSION)
		return why(SLUICE_EVERSION, msg, msglen,
			   "supervisor speaks control protocol version %u, we speak %u; it said %s",
			   (unsigned)p.proto, SLUICE__CTL_PROTO_VERSION, sluice_err_name(status));
	if (len < sizeof(r))
		return why(SLUICE_ETRUNCATED, msg, msglen, "reply of %zu bytes, want %zu", len,
			   sizeof(r));
	if (len > sizeof(r))
		return why(SLUICE_EMSGSIZE, msg, msglen, "reply of %zu bytes or more, want %zu",
			   len, sizeof(r));
	memcpy(&r, buf, sizeof(r));
	if (r.type != SLUICE__CTL_T_REPLY)
		return why(SLUICE_ENOTSUP, msg, msglen, "message type %u, want reply (%u)",
			   (unsigned)r.type, SLUICE__CTL_T_REPLY);
	if (r.status > 0 || strcmp(sluice_err_name(r.status), "UNKNOWN") == 0)
		return why(SLUICE_EINVAL, msg, msglen, "reply status %d is not a sluice code",
			   (int)r.status);
	if (r.flags & ~SLUICE__CTL_F_KNOWN)
		return why(SLUICE_ENOTSUP, msg, msglen, "unknown reply flags %#x",
			   (unsigned)(r.flags & ~SLUICE__CTL_F_KNOWN));
	if (!all_zero(r.reserved, sizeof(r.reserved) / sizeof(r.reserved[0])))
		return why(SLUICE_EINVAL, msg, msglen, "reply's reserved fields are not zero");
	if (memchr(r.message, '\0', sizeof(r.message)) == NULL)
		return why(SLUICE_EINVAL, msg, msglen, "reply's message is not NUL-terminated");
	if (r.status == 0) {
		if (r.message[0] != '\0' || r.arena_size == 0)
			return why(SLUICE_EINVAL, msg, msglen,
				   "grant with a message or an arena of 0 bytes");
		if (r.layout != SLUICE_FLOW_LAYOUT_VERSION)
			return why(SLUICE_EVERSION, msg, msglen,
				   "flow of layout version %u granted, this library is version %u",
				   (unsigned)r.layout, SLUICE_FLOW_LAYOUT_VERSION);
	} else if (r.flags != 0 || r.arena_size != 0 || r.slot != SLUICE__CTL_NO_SLOT) {
		return why(SLUICE_EINVAL, msg, msglen, "refusal with flags, slot or size set");
	}
	*out = r;
	if (msglen > 0)
		msg[0] = '\0';
	return 0;
}
