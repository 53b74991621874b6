/* The control-socket wire protocol (internal; docs/ATTACH.md describes it
 * field by field).
 *
 * A client connects to a flow's SOCK_SEQPACKET socket and sends one hello;
 * the supervisor answers with one reply, and with the arena's memfd
 * (SCM_RIGHTS) when it grants the attach. Nothing else crosses the socket;
 * the connection then stays open as the client's lease (its hang-up tells
 * the supervisor the client is gone).
 *
 * Both messages have a fixed size per protocol version, host byte order
 * (the two ends share a kernel), and reserved fields that must be zero.
 * Frozen in every protocol version, so that two versions can still tell
 * each other "wrong version": the first 8 bytes of both messages (magic,
 * proto, type) and the reply's status at offset 8.
 *
 * Everything received is checked by the pure functions below before use:
 * they read only [buf, buf + len), write only their outputs, and never
 * fail in any other way than by returning a code.
 */
#ifndef SLUICE_RUNTIME_CONTROL_PROTO_H
#define SLUICE_RUNTIME_CONTROL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define SLUICE__CTL_HELLO_MAGIC UINT32_C(0x48434c53) /* "SLCH" little-endian */
#define SLUICE__CTL_REPLY_MAGIC UINT32_C(0x52434c53) /* "SLCR" little-endian */
#define SLUICE__CTL_PROTO_VERSION 1u

enum sluice__ctl_type {
	SLUICE__CTL_T_HELLO = 1,
	SLUICE__CTL_T_REPLY = 2,
};

enum sluice__ctl_flag {
	/* An observer: the arena's memfd is handed over reopened O_RDONLY. */
	SLUICE__CTL_F_READ_ONLY = 1u << 0,
};
#define SLUICE__CTL_F_KNOWN ((uint32_t)SLUICE__CTL_F_READ_ONLY)

/* The reply's slot when none was given (an observer). */
#define SLUICE__CTL_NO_SLOT UINT32_MAX
/* The reply's message field, NUL included. */
#define SLUICE__CTL_MSG_MAX 160u

/* Client -> supervisor: 32 bytes. */
struct sluice__ctl_hello {
	uint32_t magic;       /* SLUICE__CTL_HELLO_MAGIC */
	uint16_t proto;       /* SLUICE__CTL_PROTO_VERSION */
	uint16_t type;        /* SLUICE__CTL_T_HELLO */
	uint32_t layout;      /* the client library's SLUICE_FLOW_LAYOUT_VERSION */
	uint32_t flags;       /* SLUICE__CTL_F_* */
	int32_t pid;          /* the sender's pid as it sees it; logged, never trusted */
	uint32_t reserved[3]; /* zero */
};
_Static_assert(sizeof(struct sluice__ctl_hello) == 32, "hello is 32 bytes");
_Static_assert(offsetof(struct sluice__ctl_hello, layout) == 8, "frozen prefix is 8 bytes");

/* Supervisor -> client: 224 bytes, with one descriptor when status is 0
 * and none otherwise. */
struct sluice__ctl_reply {
	uint32_t magic;       /* SLUICE__CTL_REPLY_MAGIC */
	uint16_t proto;       /* the supervisor's SLUICE__CTL_PROTO_VERSION */
	uint16_t type;        /* SLUICE__CTL_T_REPLY */
	int32_t status;       /* 0: granted; else a negative SLUICE_E* code */
	uint32_t flags;       /* granted: the hello's flags; refused: 0 */
	uint32_t layout;      /* the supervisor's SLUICE_FLOW_LAYOUT_VERSION */
	uint32_t slot;        /* client slot, or SLUICE__CTL_NO_SLOT */
	uint64_t arena_size;  /* granted: the memfd's size in bytes; refused: 0 */
	int32_t pid;          /* the supervisor's pid as it sees it; logged */
	uint32_t reserved[7]; /* zero */
	char message[SLUICE__CTL_MSG_MAX]; /* NUL-terminated; "" when granted */
};
_Static_assert(sizeof(struct sluice__ctl_reply) == 224, "reply is 224 bytes");
_Static_assert(offsetof(struct sluice__ctl_reply, status) == 8, "status is frozen at 8");
_Static_assert(offsetof(struct sluice__ctl_reply, arena_size) == 24, "8-aligned size");
_Static_assert(offsetof(struct sluice__ctl_reply, message) == 64, "message at 64");

/* Writes a NUL-terminated reason into msg (msglen bytes; nothing when
 * msglen is 0) and returns `code`: how every control function reports. */
int sluice__ctl_why(int code, char *msg, size_t msglen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Checks a hello as the supervisor receives it, in this order:
 *   len < 8                           -> SLUICE_ETRUNCATED
 *   magic                             -> SLUICE_EBADMAGIC
 *   proto != ours                     -> SLUICE_EVERSION
 *   len < 32 / len > 32               -> SLUICE_ETRUNCATED / SLUICE_EMSGSIZE
 *   type != HELLO                     -> SLUICE_ENOTSUP
 *   flags outside SLUICE__CTL_F_KNOWN -> SLUICE_ENOTSUP
 *   reserved != 0, pid <= 0           -> SLUICE_EINVAL
 *   layout != SLUICE_FLOW_LAYOUT_VERSION -> SLUICE_EVERSION
 * Returns 0 and a copy in *out, or the code; either way writes a
 * NUL-terminated reason into msg (msglen bytes; msg may be NULL when msglen
 * is 0). Pure: any thread, any process; blocks on nothing. */
int sluice__ctl_parse_hello(const void *buf, size_t len, struct sluice__ctl_hello *out,
			    char *msg, size_t msglen);

/* Checks a reply as the client receives it: len < 12 -> ETRUNCATED, magic
 * -> EBADMAGIC, proto != ours -> EVERSION (the reason names the peer's
 * status), then len -> ETRUNCATED / EMSGSIZE, type -> ENOTSUP, status > 0
 * or not a code sluice_err_name knows, reserved != 0, a message without a
 * NUL -> EINVAL; flags outside F_KNOWN -> ENOTSUP; a grant (status 0) with
 * a non-empty message, arena_size 0 or another layout version -> EINVAL /
 * EVERSION; a refusal with flags or arena_size set or a slot other than
 * SLUICE__CTL_NO_SLOT -> EINVAL.
 * Returns 0 (well-formed: the verdict is out->status) or the code, with a
 * reason in msg as above. Pure, like sluice__ctl_parse_hello. */
int sluice__ctl_parse_reply(const void *buf, size_t len, struct sluice__ctl_reply *out,
			    char *msg, size_t msglen);

#endif
