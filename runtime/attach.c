/* Attaching to a running flow by name (docs/ATTACH.md): the client side.
 *
 * The supervisor's control socket hands over the arena's memfd and, for a
 * client, a client slot and that slot's completion eventfd (for an
 * observer, a read-only descriptor and no slot). From the arena this
 * process builds its own handle (sluice__flow_open_arena validates every
 * field of it) and becomes the slot's client: the same alloc, submit,
 * wait, reap and release as the creator's, on the same rings, with no
 * socket on the task path. The connection stays open as the lease: when
 * it closes (destroy, or this process's death) the supervisor takes the
 * slot back with everything in it.
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/error.h>

#include "runtime/control.h"
#include "runtime/flow_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/pidfd.h>
#include <unistd.h>

int sluice_flow_attach(const char *name, uint32_t flags, uint64_t timeout_ns, sluice_flow_t **out,
		       char *err, size_t errlen)
{
	char msg[256] = "";
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out == NULL || name == NULL || (flags & ~(uint32_t)SLUICE_ATTACH_READ_ONLY) != 0) {
		snprintf(err, err ? errlen : 0, "name, out: must not be NULL; flags: 0 or %s",
			 "SLUICE_ATTACH_READ_ONLY");
		return SLUICE_EINVAL;
	}
	*out = NULL;
	bool ro = (flags & SLUICE_ATTACH_READ_ONLY) != 0;
	struct sluice__ctl_attach a;
	int rc = sluice__ctl_attach(name, ro ? SLUICE__CTL_F_READ_ONLY : 0, timeout_ns, &a, msg,
				    sizeof(msg));
	if (rc != 0) {
		snprintf(err, err ? errlen : 0, "flow '%s': %s", name, msg);
		return rc;
	}
	sluice_arena_t *arena = NULL;
	rc = sluice_arena_attach(a.memfd, ro ? SLUICE_ARENA_RDONLY : 0, &arena);
	close(a.memfd); /* attach keeps its own duplicate */
	sluice_flow_t *f = NULL;
	if (rc == 0) {
		rc = sluice__flow_open_arena(arena, &f, msg, sizeof(msg));
		if (rc != 0)
			sluice_arena_destroy(arena);
	} else {
		snprintf(msg, sizeof(msg), "the arena: %s", sluice_strerror(rc));
	}
	if (rc != 0) {
		snprintf(err, err ? errlen : 0, "flow '%s': %s", name, msg);
		close(a.conn_fd);
		if (a.efd >= 0)
			close(a.efd);
		return rc;
	}
	f->attached = true;
	f->read_only = ro;
	f->started = true;
	f->ctl_fd = a.conn_fd;
	f->client_efd = a.efd;
	f->sup_pid = a.supervisor_pid;
	sluice__set_client_bound(f);
	/* The supervisor's pidfd, for wait's ppoll and every call's "is it
	 * gone" (pidfd_open of a process that is not our child: watching it
	 * exit needs no permission). The pid came with SO_PEERCRED; it names
	 * the supervisor as long as our connection is not hung up, which we
	 * look at after the open (an observer's is closed at once: it holds
	 * no lease; the pidfd alone says the process is alive). */
	f->sup_pidfd = pidfd_open(a.supervisor_pid, 0);
	if (f->sup_pidfd < 0 && (errno == EMFILE || errno == ENFILE)) {
		rc = -errno;
		snprintf(err, err ? errlen : 0, "flow '%s': pidfd_open of its supervisor: %s", name,
			 sluice_strerror(rc));
		sluice_flow_destroy(f);
		return rc;
	}
	struct pollfd p[2] = {{.fd = f->sup_pidfd, .events = POLLIN},
			      {.fd = f->ctl_fd, .events = POLLRDHUP}};
	if (f->sup_pidfd < 0 || poll(p, ro ? 1 : 2, 0) != 0) {
		snprintf(err, err ? errlen : 0, "flow '%s': its supervisor went away while we attached",
			 name);
		sluice_flow_destroy(f);
		return SLUICE_ESUPERVISOR;
	}
	if (!ro) {
		if (a.slot >= f->nclients || a.slot == 0) {
			snprintf(err, err ? errlen : 0, "flow '%s': granted client slot %u of %u", name,
				 a.slot, f->nclients);
			sluice_flow_destroy(f);
			return SLUICE_EPROTO;
		}
		rc = sluice__client_init(f, a.slot);
		if (rc != 0) {
			snprintf(err, err ? errlen : 0, "flow '%s': client slot %u: %s", name, a.slot,
				 sluice_strerror(rc));
			sluice_flow_destroy(f);
			return rc;
		}
	}
	*out = f;
	return 0;
}
