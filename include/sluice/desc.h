/* The task descriptor: one 64-byte cache line that names a task's payload
 * and result blocks in the arena and carries its bookkeeping. It holds no
 * pointers (processes map the arena at different addresses): blocks are
 * sluice_block_t handles, the task-table entry is an index.
 *
 * Descriptors are copied by value into and out of rings; the bytes a ring
 * hands a consumer are exactly the bytes a producer put in. Every field a
 * consumer reads from a descriptor came from another process and must be
 * checked before use (block handles by sluice_blocks_ptr, slot against the
 * task table's size, step against the flow's step count).
 */
#ifndef SLUICE_DESC_H
#define SLUICE_DESC_H

#include <stddef.h>
#include <stdint.h>
#include <sluice/export.h>

typedef struct sluice_desc {
	uint64_t task_id;       /*  0: unique per flow, chosen by the submitter */
	uint64_t submit_ns;     /*  8: CLOCK_MONOTONIC at submit */
	uint64_t deadline_ns;   /* 16: CLOCK_MONOTONIC; 0 means none */
	uint64_t user;          /* 24: opaque to sluice, for the submitter */
	uint32_t payload_block; /* 32: sluice_block_t, or SLUICE_BLOCK_NONE */
	uint32_t payload_len;   /* 36: bytes used in the payload block */
	uint32_t result_block;  /* 40: sluice_block_t, or SLUICE_BLOCK_NONE */
	uint32_t result_len;    /* 44: bytes used in the result block */
	uint32_t slot;          /* 48: task-table index */
	uint32_t client;        /* 52: client slot that submitted it */
	uint16_t step;          /* 56: index of the step it is queued for */
	uint16_t flags;         /* 58: meaning defined by runtime/; rings ignore it */
	uint16_t status;        /* 60: sluice_task_status_t once complete */
	uint8_t attempt;        /* 62: 0 for the first run, +1 per retry */
	uint8_t priority;       /* 63: 0 normal; higher first where supported */
} sluice_desc_t;

_Static_assert(sizeof(sluice_desc_t) == 64, "a descriptor is one cache line");
_Static_assert(offsetof(sluice_desc_t, task_id) == 0, "desc layout");
_Static_assert(offsetof(sluice_desc_t, submit_ns) == 8, "desc layout");
_Static_assert(offsetof(sluice_desc_t, deadline_ns) == 16, "desc layout");
_Static_assert(offsetof(sluice_desc_t, user) == 24, "desc layout");
_Static_assert(offsetof(sluice_desc_t, payload_block) == 32, "desc layout");
_Static_assert(offsetof(sluice_desc_t, payload_len) == 36, "desc layout");
_Static_assert(offsetof(sluice_desc_t, result_block) == 40, "desc layout");
_Static_assert(offsetof(sluice_desc_t, result_len) == 44, "desc layout");
_Static_assert(offsetof(sluice_desc_t, slot) == 48, "desc layout");
_Static_assert(offsetof(sluice_desc_t, client) == 52, "desc layout");
_Static_assert(offsetof(sluice_desc_t, step) == 56, "desc layout");
_Static_assert(offsetof(sluice_desc_t, flags) == 58, "desc layout");
_Static_assert(offsetof(sluice_desc_t, status) == 60, "desc layout");
_Static_assert(offsetof(sluice_desc_t, attempt) == 62, "desc layout");
_Static_assert(offsetof(sluice_desc_t, priority) == 63, "desc layout");

/* How a task ended. Stored in sluice_desc_t.status (16 bits). */
#define SLUICE_TASK_STATUS_MAP(XX)                                             \
	XX(OK, 0, "ok")                                                        \
	XX(HANDLER_ERROR, 1, "handler error")                                  \
	XX(TIMEOUT, 2, "timeout")                                              \
	XX(WORKER_DIED, 3, "worker died")                                      \
	XX(CANCELLED, 4, "cancelled")                                          \
	XX(FLOW_STOPPED, 5, "flow stopped")                                    \
	XX(BAD_DESCRIPTOR, 6, "bad descriptor")                                \
	XX(STEP_FAILED, 7, "step failed")

typedef enum sluice_task_status {
#define SLUICE__TS_ENUM(name, value, msg) SLUICE_TASK_##name = (value),
	SLUICE_TASK_STATUS_MAP(SLUICE__TS_ENUM)
#undef SLUICE__TS_ENUM
} sluice_task_status_t;

/* The name of a task status ("ok", "worker died", ...), or "unknown" for a
 * value outside the enum (statuses come from shared memory: any 16-bit
 * value may show up). Any process, any thread; returns a static string. */
SLUICE_EXTERN const char *sluice_task_status_name(unsigned status);

#endif
