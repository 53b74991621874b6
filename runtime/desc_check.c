/* What a worker checks of a descriptor before it trusts any field: one
 * place, called by the worker (runtime/worker.c) and by the fuzz target
 * fuzz_desc_check. Every field came from another process's memory.
 *
 *   off the ring, before the claim: the slot is an index of the task table
 *   and agrees with the task_id (the generation is the claim's CAS to judge);
 *   the entry's descriptor, once held: it names the same slot, the slot's
 *   client and this step; the payload and result blocks are NONE with
 *   length 0, or valid handles owned by that client whose capacity holds
 *   the length (sluice__block_ok).
 */
#include <sluice/flow.h>

#include "runtime/flow_internal.h"

#include <stdio.h>

bool sluice__desc_ring_ok(const sluice_flow_t *f, const sluice_desc_t *d)
{
	return d->slot < f->max_tasks && SLUICE__TASK_ID_SLOT(d->task_id) == d->slot;
}

bool sluice__desc_entry_ok(const sluice_flow_t *f, uint32_t step, uint32_t slot,
			   const sluice_desc_t *d, struct sluice__desc_view *v, char *msg,
			   size_t msglen)
{
	uint32_t c = sluice__slot_client(f, slot);
	uint32_t owner = SLUICE__OWNER_CLIENT(c);
	uint64_t cap;
	if (slot >= f->max_tasks || d->slot != slot || d->client != c || d->step != step) {
		snprintf(msg, msglen, "descriptor names slot %u client %u step %u", d->slot, d->client,
			 d->step);
		return false;
	}
	if (!sluice__block_ok(f, d->payload_block, d->payload_len, owner, &v->payload, &cap)) {
		snprintf(msg, msglen,
			 "payload block 0x%x, %u bytes: not a block of the client that holds it",
			 d->payload_block, d->payload_len);
		return false;
	}
	v->payload_len = d->payload_len;
	if (!sluice__block_ok(f, d->result_block, d->result_len, owner, &v->result, &cap)) {
		snprintf(msg, msglen,
			 "result block 0x%x, %u bytes: not a block of the client that holds it",
			 d->result_block, d->result_len);
		return false;
	}
	v->result_len = d->result_len;
	v->result_cap = cap > UINT32_MAX ? UINT32_MAX : cap;
	return true;
}
