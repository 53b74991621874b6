/* The supervisor's table of client slots (runtime/clients.c). Used by the
 * supervisor process alone, single-threaded. */
#ifndef SLUICE_RUNTIME_CLIENTS_H
#define SLUICE_RUNTIME_CLIENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <sluice/ring.h>
#include "runtime/control.h"
#include "runtime/flow_layout.h"

struct sluice_flow;

enum sluice__client_state {
	SLUICE__CS_FREE = 0,     /* nobody; every entry of its share FREE */
	SLUICE__CS_ACTIVE = 1,   /* a live client holds it */
	SLUICE__CS_DRAINING = 2, /* its client is gone; its entries, blocks and lanes coming back */
};

struct sluice__clients {
	struct sluice_flow *f;
	uint8_t state[SLUICE__MAX_CLIENTS];
	pid_t pid[SLUICE__MAX_CLIENTS];
	bool opened[SLUICE__MAX_CLIENTS];
	sluice_ring_t comp[SLUICE__MAX_CLIENTS]; /* consumer handles, to empty a dead client's ring */
	/* The client slots' geometry as create wrote it (comp_ring_off,
	 * comp_ring_size, first_task, ntasks), copied at init: what we write
	 * back over a slot a client scribbled on (docs/SECURITY.md). */
	struct sluice__client_slot geom[SLUICE__MAX_CLIENTS];
	uint32_t ndraining;
	/* The control socket (runtime/control.h), when the flow is listed. */
	bool listening;
	struct sluice__ctl_server ctl;
	int conn[SLUICE__MAX_CLIENTS];   /* an attached client's lease; -1 */
	int pidfd[SLUICE__MAX_CLIENTS];  /* its pidfd; -1 */
	int epfd;                        /* the supervisor's epoll set */
	uint64_t tag;                    /* our events' tag base in it */
};

/* Tags of our events in the supervisor's epoll set: tag | KIND << 8 | slot. */
#define SLUICE__CLIENTS_EV_CTL 0u
#define SLUICE__CLIENTS_EV_CONN 1u
#define SLUICE__CLIENTS_EV_PID 2u

/* Slot 0 (the creator) ACTIVE, every other FREE. */
void sluice__clients_init(struct sluice__clients *T, struct sluice_flow *f);
/* A FREE slot for process `pid`: ACTIVE, its eventfd's count reset, its
 * pid published in the client slot. Returns 0 and the slot, or
 * SLUICE_EBUSY when none is free (the table is full, or slots are still
 * draining). */
int sluice__clients_grant(struct sluice__clients *T, pid_t pid, uint32_t *slot);
/* Client c's process is gone (or detached): ACTIVE -> DRAINING. Slot 0
 * and slots not ACTIVE are ignored. */
void sluice__clients_gone(struct sluice__clients *T, uint32_t c);
/* Listens as the flow's name and puts the listener in epoll set `epfd`
 * under `tag` (| SLUICE__CLIENTS_EV_CTL << 8). Returns 0 or the control
 * module's code (SLUICE_EEXIST: a live flow of that name) with msg. */
int sluice__clients_listen(struct sluice__clients *T, int epfd, uint64_t tag, char *msg,
			   size_t msglen);
/* In a forked worker: closes the listener and the leases, unlinks nothing. */
void sluice__clients_close_in_child(struct sluice__clients *T);
/* An event tagged ours: a client gone (or the listener: see tick). Never
 * blocks. */
void sluice__clients_event(struct sluice__clients *T, uint64_t tag, bool accepting);
/* Answers the connections that are ready (grants only while `accepting`;
 * observers always), drops silent ones past their deadline, and drains
 * the slots of clients gone. Call on every wake-up. Never blocks. */
void sluice__clients_tick(struct sluice__clients *T, bool accepting);
/* When the supervisor must look again though epoll stays quiet (a hello
 * deadline, a slot draining), or UINT64_MAX. */
uint64_t sluice__clients_next(const struct sluice__clients *T, uint64_t now);
/* Stops listening (the socket file is removed) and closes the leases. */
void sluice__clients_fini(struct sluice__clients *T);

/* One step of draining every DRAINING slot (never blocks). Returns true
 * while some slot is still draining: call again within a millisecond or
 * so (a held task finishes when its handler returns). */
bool sluice__clients_drain(struct sluice__clients *T);

#endif
