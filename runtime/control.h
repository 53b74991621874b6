/* The control socket: how other processes attach to a flow by name
 * (internal; docs/ATTACH.md has the rules, the protocol and the codes).
 *
 * Server side (the supervisor): sluice__ctl_server_init takes the name's
 * lock, publishes <dir>/<name>.sock and gives one descriptor, srv->epfd, to
 * watch for EPOLLIN in the supervisor's own epoll loop. When it is
 * readable, or when sluice__ctl_server_deadline() has passed, the
 * supervisor calls sluice__ctl_server_poll() until it returns 0; each 1 is
 * a valid hello from an allowed peer, which the supervisor answers with
 * sluice__ctl_server_grant() or _refuse() before it polls again. Nothing of
 * this blocks: sockets are non-blocking, a silent peer is dropped at its
 * deadline, and when the table of connections waiting for their hello is
 * full the oldest is dropped.
 *
 * Client side: sluice__ctl_attach() connects by name, sends a hello and
 * receives the reply and the memfd, validating all of it.
 *
 * Every function returns 0 (or a count, or a descriptor) or a negative
 * SLUICE_E* code; those taking msg/msglen write a NUL-terminated reason
 * there on failure (msg may be NULL when msglen is 0).
 */
#ifndef SLUICE_RUNTIME_CONTROL_H
#define SLUICE_RUNTIME_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "runtime/control_proto.h"

/* Flow names: 1..63 bytes of [A-Za-z0-9._-], not starting with '.'. */
#define SLUICE__CTL_NAME_MAX 63u
/* sun_path's size: every path of a flow (dir/name.sock.tmp) is shorter. */
#define SLUICE__CTL_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* 0 if `name` is a valid flow name, else SLUICE_EINVAL (reason in msg).
 * Pure. */
int sluice__ctl_name_check(const char *name, char *msg, size_t msglen);

/* The control directory: $XDG_RUNTIME_DIR/sluice when XDG_RUNTIME_DIR is
 * set to an absolute path, else /tmp/sluice-<euid>. Writes its path into
 * buf (len bytes; SLUICE_ENAMETOOLONG if it does not fit), then checks it
 * with lstat: a directory, not a symlink, owned by the euid, mode exactly
 * 0700, else SLUICE_EACCES naming the path and what is wrong. Missing:
 * with `create`, made 0700 (the parent must exist); without, SLUICE_ENOENT.
 * Any thread. Blocks on: the file system. */
int sluice__ctl_dir(char *buf, size_t len, bool create, char *msg, size_t msglen);

/* The credential rule: a peer is allowed if its uid is `uid` (the
 * supervisor's euid), or if allow_gid and its gid is allowed_gid. Root is
 * not special. Pure. */
bool sluice__ctl_cred_ok(const struct ucred *peer, uid_t uid, bool allow_gid, gid_t allowed_gid);

/* ---- server ---- */

struct sluice__ctl_server_opts {
	uint32_t max_pending;      /* connections waiting for a hello; 0: 64 */
	uint64_t hello_timeout_ns; /* a connection's time to say hello; 0: 1 s */
	bool allow_gid;            /* also allow peers whose gid is allowed_gid */
	gid_t allowed_gid;
};

/* One accepted connection (server-private; in srv->conns). */
struct sluice__ctl_conn {
	int fd;            /* -1: free */
	uint32_t gen;      /* bumped at every reuse: stale epoll events are skipped */
	bool answering;    /* handed to the caller by poll; grant or refuse due */
	uint64_t deadline; /* CLOCK_MONOTONIC ns: no hello by then -> dropped */
	struct ucred peer; /* SO_PEERCRED, read at accept */
};

/* Caller-allocated; fields are read-only for the caller. */
struct sluice__ctl_server {
	int epfd;          /* watch for EPOLLIN; owns the listener and connections */
	int lfd;           /* the listening socket */
	int lock_fd;       /* <name>.lock, flock'ed LOCK_EX for the server's life */
	uid_t uid;         /* euid at init: the credential rule's uid */
	bool allow_gid;
	gid_t allowed_gid;
	uint32_t max_pending;
	uint64_t hello_timeout_ns;
	uint64_t paused_until; /* accept paused (EMFILE and the like) until then; 0: not */
	dev_t sock_dev;    /* the published socket file, to unlink only ours */
	ino_t sock_ino;
	struct sluice__ctl_conn *conns;
	/* Counters, for tests and later for health. */
	uint64_t accepted, refused, expired, evicted, granted;
	char name[SLUICE__CTL_NAME_MAX + 1];
	char sock_path[SLUICE__CTL_PATH_MAX];
	char lock_path[SLUICE__CTL_PATH_MAX];
};

/* A hello that passed parsing and the credential rule. */
struct sluice__ctl_request {
	uint32_t conn;       /* index into srv->conns; pass back to grant/refuse */
	uint32_t gen;
	uint32_t flags;      /* SLUICE__CTL_F_READ_ONLY */
	int32_t hello_pid;   /* what the client says its pid is: for logs only */
	struct ucred peer;   /* the kernel's word (SO_PEERCRED at connect) */
};

/* Starts listening as flow `name`: checks the name and the directory
 * (creating it), takes an exclusive flock on <dir>/<name>.lock (held: a
 * live flow of that name -> SLUICE_EEXIST), binds a SOCK_SEQPACKET socket
 * to <name>.sock.tmp, chmods it 0600, listens, and renames it over
 * <name>.sock (replacing a stale socket of a dead supervisor atomically).
 * opts may be NULL (defaults). On failure nothing is left behind but the
 * lock file. Any thread; no other thread may fork meanwhile (the
 * descriptors are close-on-exec, not close-on-fork). Blocks on: the file
 * system. */
int sluice__ctl_server_init(struct sluice__ctl_server *srv, const char *name,
			    const struct sluice__ctl_server_opts *opts, char *msg, size_t msglen);

/* Stops listening: unlinks <name>.sock if it is still ours, closes every
 * connection still waiting and the listener, then releases the lock (the
 * lock file stays: unlinking it would let two starters lock two files).
 * The thread that polls, once no request is unanswered. */
void sluice__ctl_server_fini(struct sluice__ctl_server *srv);

/* In a process forked from the server's (a worker): closes the server's
 * descriptors without unlinking anything, so that the child holds neither
 * the lock nor the socket. */
void sluice__ctl_server_close_in_child(struct sluice__ctl_server *srv);

/* Does what is ready without blocking: drops the connections whose hello
 * deadline is <= now (CLOCK_MONOTONIC ns), accepts new ones, reads hellos,
 * answers bad ones itself (the parse code, or SLUICE_EACCES for a peer the
 * credential rule refuses) and closes them. Returns 1 with *req for the
 * first valid hello from an allowed peer (the caller must answer it before
 * polling again), 0 when nothing more is ready, or a negative code when
 * the server itself failed (epoll_wait). The polling thread only. */
int sluice__ctl_server_poll(struct sluice__ctl_server *srv, uint64_t now,
			    struct sluice__ctl_request *req);

/* When poll must next run even if epfd stays quiet (the earliest hello
 * deadline, or the end of an accept pause), or UINT64_MAX. */
uint64_t sluice__ctl_server_deadline(const struct sluice__ctl_server *srv);

/* Grants `req`: sends a reply (status 0, slot, arena_size) with `memfd`
 * and the slot's completion eventfd `efd` (not sent to an observer),
 * or with a descriptor reopened O_RDONLY from it through /proc/self/fd
 * when the hello asked for SLUICE__CTL_F_READ_ONLY (that one is closed
 * again here; `memfd` stays the caller's). Returns the connection's
 * descriptor, which the caller now owns (the client's lease: it reads as
 * hung up when the client is gone), or a negative code when the reply could
 * not be sent (the connection is closed; the caller takes the slot back).
 * The polling thread. Blocks on nothing. */
int sluice__ctl_server_grant(struct sluice__ctl_server *srv, const struct sluice__ctl_request *req,
			     uint32_t slot, int memfd, int efd, uint64_t arena_size);

/* Refuses `req` with `code` (negative) and a reason (printf format; e.g.
 * SLUICE_EUSERS "client table full (8 of 8)"), then closes it. The polling
 * thread. Blocks on nothing. */
void sluice__ctl_server_refuse(struct sluice__ctl_server *srv, const struct sluice__ctl_request *req,
			       int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- client ---- */

/* What a granted attach gives; the caller owns both descriptors. */
struct sluice__ctl_attach {
	int conn_fd;          /* the lease: keep it open while attached */
	int memfd;            /* the arena: O_RDWR, or O_RDONLY when READ_ONLY */
	int efd;              /* the slot's completion eventfd; -1 when READ_ONLY */
	uint32_t slot;        /* SLUICE__CTL_NO_SLOT when none was given */
	uint32_t flags;
	uint64_t arena_size;  /* == the memfd's size (checked) */
	pid_t supervisor_pid; /* SO_PEERCRED of the listener */
};

/* Connects to flow `name` by its socket, retrying while the listen backlog
 * is full until `deadline` (CLOCK_MONOTONIC ns), and checks the listener
 * is ours (its uid is our euid, or root). No such flow, or a stale socket
 * left by a dead supervisor: SLUICE_ENOENT. Returns 0 and *fd (the caller
 * owns it). Any thread. Blocks on: the file system, the backlog. */
int sluice__ctl_connect(const char *name, uint64_t deadline, int *fd, char *msg, size_t msglen);

/* A hello from this library: our protocol and layout versions, our pid. */
void sluice__ctl_hello_init(struct sluice__ctl_hello *h, uint32_t flags);

/* Sends `h` (h_len bytes: tests send malformed ones) on connection `fd`
 * and waits until `deadline` for the reply and its descriptor, checking
 * the reply (sluice__ctl_parse_reply), the descriptor count, truncation
 * (MSG_TRUNC, MSG_CTRUNC: SLUICE_EPROTO), and that the descriptor is a
 * regular file of arena_size bytes opened O_RDONLY exactly when the grant
 * says READ_ONLY. A refusal returns its status (SLUICE_EVERSION,
 * SLUICE_EACCES, SLUICE_EUSERS, ...) with the supervisor's message. On
 * success fills *out (conn_fd = fd, which the caller still owns). Any
 * thread. Blocks on: the reply. */
int sluice__ctl_request(int fd, const void *h, size_t h_len, uint64_t deadline,
			struct sluice__ctl_attach *out, char *msg, size_t msglen);

/* sluice__ctl_connect, sluice__ctl_hello_init(flags) and
 * sluice__ctl_request within timeout_ns; closes the connection on failure. */
int sluice__ctl_attach(const char *name, uint32_t flags, uint64_t timeout_ns,
		       struct sluice__ctl_attach *out, char *msg, size_t msglen);

/* CLOCK_MONOTONIC in ns: the clock of every deadline above. */
uint64_t sluice__ctl_now_ns(void);

#endif
