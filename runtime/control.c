/* The control socket (runtime/control.h; rules and protocol in
 * docs/ATTACH.md): the directory and names, the listener with its lock,
 * the server's non-blocking connection table, and the client's attach. */
#define _GNU_SOURCE
#include "runtime/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sluice/error.h>
#include "base/die.h"
#include "runtime/flow_layout.h"

#define why sluice__ctl_why

#define DEFAULT_MAX_PENDING 64u
#define DEFAULT_HELLO_TIMEOUT_NS UINT64_C(1000000000)
/* How long accepting pauses after accept4 fails for want of descriptors or
 * memory: the pending connection stays readable, and a level-triggered
 * listener would otherwise spin the supervisor. */
#define ACCEPT_PAUSE_NS UINT64_C(100000000)
/* The epoll tag of the listener; a connection's is index | gen << 32. */
#define TAG_LISTENER UINT64_MAX
/* Descriptors a received message may carry before MSG_CTRUNC: room for
 * more than the one allowed, so that extras are seen and closed. */
#define MAX_RX_FDS 4

uint64_t sluice__ctl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- names, the directory, credentials ---- */

int sluice__ctl_name_check(const char *name, char *msg, size_t msglen)
{
	if (name == NULL)
		return why(SLUICE_EINVAL, msg, msglen, "flow name missing");
	size_t n = strnlen(name, SLUICE__CTL_NAME_MAX + 1);
	if (n == 0 || n > SLUICE__CTL_NAME_MAX)
		return why(SLUICE_EINVAL, msg, msglen, "flow name must be 1..%u bytes",
			    SLUICE__CTL_NAME_MAX);
	if (name[0] == '.')
		return why(SLUICE_EINVAL, msg, msglen, "flow name \"%s\" starts with a dot", name);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return why(SLUICE_EINVAL, msg, msglen,
				   "flow name has byte %#x at %zu; allowed: A-Z a-z 0-9 . _ -",
				   (unsigned)c, i);
	}
	return 0;
}

static int check_dir(const char *path, const struct stat *st, char *msg, size_t msglen)
{
	if (S_ISLNK(st->st_mode))
		return why(SLUICE_EACCES, msg, msglen, "control directory %s is a symlink", path);
	if (!S_ISDIR(st->st_mode))
		return why(SLUICE_EACCES, msg, msglen, "control directory %s is not a directory",
			   path);
	if (st->st_uid != geteuid())
		return why(SLUICE_EACCES, msg, msglen,
			   "control directory %s is owned by uid %u, not by us (uid %u)", path,
			   (unsigned)st->st_uid, (unsigned)geteuid());
	if ((st->st_mode & 07777) != 0700)
		return why(SLUICE_EACCES, msg, msglen,
			   "control directory %s has mode %04o, want 0700", path,
			   (unsigned)(st->st_mode & 07777));
	return 0;
}

int sluice__ctl_dir(char *buf, size_t len, bool create, char *msg, size_t msglen)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;
	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, len, "%s/sluice", xdg);
	else
		n = snprintf(buf, len, "/tmp/sluice-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= len)
		return why(SLUICE_ENAMETOOLONG, msg, msglen,
			   "control directory path is longer than %zu bytes", len);
	struct stat st;
	if (lstat(buf, &st) != 0) {
		int e = errno;
		if (e != ENOENT)
			return why(-e, msg, msglen, "control directory %s: %s", buf, strerror(e));
		if (!create)
			return why(SLUICE_ENOENT, msg, msglen,
				   "control directory %s does not exist", buf);
		if (mkdir(buf, 0700) == 0) {
			/* Ours alone (the parent is ours or sticky): the umask
			 * may have taken bits off; put them back. */
			if (chmod(buf, 0700) != 0)
				return why(-errno, msg, msglen, "chmod %s: %s", buf,
					   strerror(errno));
		} else if (errno != EEXIST) {
			e = errno;
			return why(-e, msg, msglen, "cannot create control directory %s: %s", buf,
				   strerror(e));
		}
		if (lstat(buf, &st) != 0)
			return why(-errno, msg, msglen, "control directory %s: %s", buf,
				   strerror(errno));
	}
	return check_dir(buf, &st, msg, msglen);
}

bool sluice__ctl_cred_ok(const struct ucred *peer, uid_t uid, bool allow_gid, gid_t allowed_gid)
{
	return peer->uid == uid || (allow_gid && peer->gid == allowed_gid);
}

/* dir/name + suffix into buf, which must hold it as a sun_path does. */
static int flow_path(char *buf, const char *dir, const char *name, const char *suffix,
		     char *msg, size_t msglen)
{
	int n = snprintf(buf, SLUICE__CTL_PATH_MAX, "%s/%s%s", dir, name, suffix);
	if (n < 0 || (size_t)n >= SLUICE__CTL_PATH_MAX)
		return why(SLUICE_ENAMETOOLONG, msg, msglen,
			   "%s/%s%s is longer than a socket path may be (%zu bytes)", dir, name,
			   suffix, SLUICE__CTL_PATH_MAX - 1);
	return 0;
}

/* ---- messages with descriptors ---- */

/* The descriptors that came with a received message (at most MAX_RX_FDS:
 * more set MSG_CTRUNC and the kernel closes them). Returns their count. */
static int take_fds(struct msghdr *mh, int fds[MAX_RX_FDS])
{
	int n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (n < MAX_RX_FDS)
				fds[n++] = fd;
			else
				close(fd); /* cannot happen: the buffer holds MAX_RX_FDS */
		}
	}
	return n;
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* One message, and pass[0 .. npass) (npass <= 2) as SCM_RIGHTS. Never
 * blocks: a reply goes to a connection that has received nothing else, so
 * its queue has room; EAGAIN would be a peer that is not reading anyway. */
static int send_msg(int fd, const void *buf, size_t len, const int *pass, int npass)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (npass > 0) {
		SLUICE_INVARIANT(npass <= 2);
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)npass * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)npass * sizeof(int));
		memcpy(CMSG_DATA(c), pass, (size_t)npass * sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : SLUICE_EIO; /* SEQPACKET: all or nothing */
}

/* ---- server ---- */

static void reply_init(struct sluice__ctl_reply *r, int status)
{
	memset(r, 0, sizeof(*r));
	r->magic = SLUICE__CTL_REPLY_MAGIC;
	r->proto = SLUICE__CTL_PROTO_VERSION;
	r->type = SLUICE__CTL_T_REPLY;
	r->status = status;
	r->layout = SLUICE_FLOW_LAYOUT_VERSION;
	r->slot = SLUICE__CTL_NO_SLOT;
	r->pid = (int32_t)getpid();
}

static void conn_close(struct sluice__ctl_server *srv, struct sluice__ctl_conn *c)
{
	/* Out of the epoll set explicitly: a forked child holding a copy of
	 * the descriptor would keep it registered past close. */
	(void)epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->answering = false;
}

/* Refuses connection c with `code` and a reason (best effort: a peer that
 * is gone or not reading never hears it), then closes it. */
__attribute__((format(printf, 4, 0)))
static void conn_refuse(struct sluice__ctl_server *srv, struct sluice__ctl_conn *c, int code,
			const char *fmt, va_list ap)
{
	struct sluice__ctl_reply r;
	reply_init(&r, code);
	vsnprintf(r.message, sizeof(r.message), fmt, ap);
	(void)send_msg(c->fd, &r, sizeof(r), NULL, 0);
	conn_close(srv, c);
}

__attribute__((format(printf, 4, 5)))
static void conn_drop(struct sluice__ctl_server *srv, struct sluice__ctl_conn *c, int code,
		      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_refuse(srv, c, code, fmt, ap);
	va_end(ap);
}

static void close_all(struct sluice__ctl_server *srv)
{
	if (srv->conns != NULL) {
		for (uint32_t i = 0; i < srv->max_pending; i++)
			if (srv->conns[i].fd >= 0)
				close(srv->conns[i].fd);
		free(srv->conns);
		srv->conns = NULL;
	}
	if (srv->lfd >= 0)
		close(srv->lfd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	if (srv->lock_fd >= 0)
		close(srv->lock_fd); /* releases the flock: it was our description's */
	srv->lfd = srv->epfd = srv->lock_fd = -1;
}

static int take_lock(struct sluice__ctl_server *srv, char *msg, size_t msglen)
{
	const char *p = srv->lock_path;
	srv->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (srv->lock_fd < 0)
		return why(errno == ELOOP ? SLUICE_EACCES : -errno, msg, msglen,
			   "lock file %s: %s", p, errno == ELOOP ? "is a symlink" : strerror(errno));
	struct stat st;
	if (fstat(srv->lock_fd, &st) != 0)
		return why(-errno, msg, msglen, "lock file %s: %s", p, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_uid != srv->uid)
		return why(SLUICE_EACCES, msg, msglen,
			   "lock file %s is not a regular file of ours (uid %u)", p,
			   (unsigned)st.st_uid);
	while (flock(srv->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK)
			return why(SLUICE_EEXIST, msg, msglen,
				   "flow \"%s\" is already running (%s is locked by its supervisor)",
				   srv->name, p);
		return why(-errno, msg, msglen, "flock %s: %s", p, strerror(errno));
	}
	return 0;
}

/* Binds to <name>.sock.tmp, makes it 0600, listens, then renames it over
 * <name>.sock: the published name is always a listening socket (or a
 * stale one, which the rename replaces in one step). */
static int publish(struct sluice__ctl_server *srv, const char *tmp, char *msg, size_t msglen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, tmp, strlen(tmp) + 1);
	/* A temporary left by a supervisor that died between bind and rename;
	 * we hold the lock, so it is nobody's. */
	if (unlink(tmp) != 0 && errno != ENOENT)
		return why(-errno, msg, msglen, "unlink %s: %s", tmp, strerror(errno));
	if (bind(srv->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return why(-errno, msg, msglen, "bind %s: %s", tmp, strerror(errno));
	int err = 0;
	const char *what = NULL;
	/* chmod of the unpublished path rather than a umask around bind: the
	 * umask is process-wide and would race with other threads' creates. */
	if (chmod(tmp, 0600) != 0)
		what = "chmod";
	else if (listen(srv->lfd, SOMAXCONN) != 0)
		what = "listen";
	else if (rename(tmp, srv->sock_path) != 0)
		what = "rename";
	if (what != NULL) {
		err = errno;
		unlink(tmp);
		return why(-err, msg, msglen, "%s %s: %s", what, tmp, strerror(err));
	}
	struct stat st;
	if (lstat(srv->sock_path, &st) != 0) {
		err = errno;
		unlink(srv->sock_path);
		return why(-err, msg, msglen, "%s: %s", srv->sock_path, strerror(err));
	}
	srv->sock_dev = st.st_dev;
	srv->sock_ino = st.st_ino;
	return 0;
}

int sluice__ctl_server_init(struct sluice__ctl_server *srv, const char *name,
			    const struct sluice__ctl_server_opts *opts, char *msg, size_t msglen)
{
	memset(srv, 0, sizeof(*srv));
	srv->epfd = srv->lfd = srv->lock_fd = -1;
	struct sluice__ctl_server_opts dflt = {0};
	if (opts == NULL)
		opts = &dflt;
	int rc = sluice__ctl_name_check(name, msg, msglen);
	if (rc < 0)
		return rc;
	memcpy(srv->name, name, strlen(name) + 1);
	srv->uid = geteuid();
	srv->allow_gid = opts->allow_gid;
	srv->allowed_gid = opts->allowed_gid;
	srv->max_pending = opts->max_pending ? opts->max_pending : DEFAULT_MAX_PENDING;
	srv->hello_timeout_ns = opts->hello_timeout_ns ? opts->hello_timeout_ns
						       : DEFAULT_HELLO_TIMEOUT_NS;

	char dir[SLUICE__CTL_PATH_MAX], tmp[SLUICE__CTL_PATH_MAX];
	if ((rc = sluice__ctl_dir(dir, sizeof(dir), true, msg, msglen)) < 0 ||
	    (rc = flow_path(srv->sock_path, dir, name, ".sock", msg, msglen)) < 0 ||
	    (rc = flow_path(srv->lock_path, dir, name, ".lock", msg, msglen)) < 0 ||
	    (rc = flow_path(tmp, dir, name, ".sock.tmp", msg, msglen)) < 0)
		return rc;

	srv->conns = calloc(srv->max_pending, sizeof(*srv->conns));
	if (srv->conns == NULL)
		return why(SLUICE_ENOMEM, msg, msglen, "no memory for %u connections",
			   srv->max_pending);
	for (uint32_t i = 0; i < srv->max_pending; i++)
		srv->conns[i].fd = -1;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->epfd < 0 || srv->lfd < 0) {
		rc = why(-errno, msg, msglen, "control socket: %s", strerror(errno));
		goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTENER};
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->lfd, &ev) != 0) {
		rc = why(-errno, msg, msglen, "epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	/* Lock won: no live supervisor of this name; any <name>.sock is stale. */
	if ((rc = take_lock(srv, msg, msglen)) < 0 || (rc = publish(srv, tmp, msg, msglen)) < 0)
		goto fail;
	return 0;
fail:
	close_all(srv);
	return rc;
}

void sluice__ctl_server_fini(struct sluice__ctl_server *srv)
{
	/* Under the lock still: a new supervisor of this name cannot have
	 * published yet, but something else might have; unlink only ours. */
	struct stat st;
	if (srv->lfd >= 0 && lstat(srv->sock_path, &st) == 0 && st.st_dev == srv->sock_dev &&
	    st.st_ino == srv->sock_ino)
		unlink(srv->sock_path);
	close_all(srv);
}

void sluice__ctl_server_close_in_child(struct sluice__ctl_server *srv)
{
	close_all(srv);
}

uint64_t sluice__ctl_server_deadline(const struct sluice__ctl_server *srv)
{
	uint64_t d = srv->paused_until ? srv->paused_until : UINT64_MAX;
	for (uint32_t i = 0; i < srv->max_pending; i++) {
		const struct sluice__ctl_conn *c = &srv->conns[i];
		if (c->fd >= 0 && !c->answering && c->deadline < d)
			d = c->deadline;
	}
	return d;
}

static void pause_accept(struct sluice__ctl_server *srv, uint64_t now)
{
	struct epoll_event ev = {.events = 0, .data.u64 = TAG_LISTENER};
	(void)epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->lfd, &ev);
	srv->paused_until = add_sat(now, ACCEPT_PAUSE_NS);
	if (srv->paused_until == 0)
		srv->paused_until = 1;
}

/* A free place in the table, or the oldest waiting connection's, dropped. */
static uint32_t take_place(struct sluice__ctl_server *srv)
{
	uint32_t oldest = 0;
	for (uint32_t i = 0; i < srv->max_pending; i++) {
		if (srv->conns[i].fd < 0)
			return i;
		if (srv->conns[i].deadline < srv->conns[oldest].deadline)
			oldest = i;
	}
	/* poll hands out one request at a time and accepts only while none
	 * is unanswered: every connection here is waiting for its hello. */
	SLUICE_INVARIANT(!srv->conns[oldest].answering);
	conn_drop(srv, &srv->conns[oldest], SLUICE_EBUSY,
		  "%u connections were waiting for their hello; this, the oldest, was dropped",
		  srv->max_pending);
	srv->evicted++;
	return oldest;
}

static void accept_some(struct sluice__ctl_server *srv, uint64_t now)
{
	for (uint32_t k = 0; k < srv->max_pending; k++) {
		int fd = accept4(srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				pause_accept(srv, now); /* EMFILE, ENFILE, ENOBUFS, ENOMEM */
			return;
		}
		struct ucred cr;
		socklen_t crlen = sizeof(cr);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0 ||
		    crlen != sizeof(cr)) {
			close(fd);
			continue;
		}
		uint32_t i = take_place(srv);
		struct sluice__ctl_conn *c = &srv->conns[i];
		c->gen++;
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i | (uint64_t)c->gen << 32};
		if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->answering = false;
		c->deadline = add_sat(now, srv->hello_timeout_ns);
		c->peer = cr;
		srv->accepted++;
	}
}

/* Reads connection i's hello. Returns 1 with *req when it is valid and
 * from an allowed peer; 0 when there was nothing to read or the
 * connection was refused and closed. */
static int read_hello(struct sluice__ctl_server *srv, uint32_t i, struct sluice__ctl_request *req)
{
	struct sluice__ctl_conn *c = &srv->conns[i];
	/* One byte more than a hello, so that a longer message shows. */
	char buf[sizeof(struct sluice__ctl_hello) + 1];
	union {
		char buf[CMSG_SPACE(MAX_RX_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		conn_close(srv, c);
		return 0;
	}
	int fds[MAX_RX_FDS];
	int nfds = take_fds(&mh, fds);
	close_fds(fds, nfds);
	if (n == 0) { /* hung up, or an empty message: SEQPACKET cannot tell */
		conn_drop(srv, c, SLUICE_ETRUNCATED, "empty hello");
		return 0;
	}
	struct sluice__ctl_hello h;
	char m[SLUICE__CTL_MSG_MAX];
	int rc = 0;
	if (!sluice__ctl_cred_ok(&c->peer, srv->uid, srv->allow_gid, srv->allowed_gid)) {
		char g[48] = "";
		if (srv->allow_gid)
			snprintf(g, sizeof(g), " or gid %u", (unsigned)srv->allowed_gid);
		rc = why(SLUICE_EACCES, m, sizeof(m),
			 "uid %u gid %u may not attach to flow \"%s\" (allowed: uid %u%s)",
			 (unsigned)c->peer.uid, (unsigned)c->peer.gid, srv->name,
			 (unsigned)srv->uid, g);
	} else if (nfds > 0 || (mh.msg_flags & MSG_CTRUNC)) {
		rc = why(SLUICE_EPROTO, m, sizeof(m), "a hello carries no descriptors");
	} else {
		size_t len = (mh.msg_flags & MSG_TRUNC) ? sizeof(buf) : (size_t)n;
		rc = sluice__ctl_parse_hello(buf, len, &h, m, sizeof(m));
	}
	if (rc < 0) {
		conn_drop(srv, c, rc, "%s", m);
		srv->refused++;
		return 0;
	}
	/* The caller answers it, and may keep the descriptor: not ours to
	 * watch any more. */
	(void)epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->answering = true;
	*req = (struct sluice__ctl_request){.conn = i, .gen = c->gen, .flags = h.flags,
					     .hello_pid = h.pid, .peer = c->peer};
	return 1;
}

int sluice__ctl_server_poll(struct sluice__ctl_server *srv, uint64_t now,
			    struct sluice__ctl_request *req)
{
	for (uint32_t i = 0; i < srv->max_pending; i++) {
		struct sluice__ctl_conn *c = &srv->conns[i];
		SLUICE_INVARIANT(c->fd < 0 || !c->answering); /* answer before polling again */
		if (c->fd >= 0 && c->deadline <= now) {
			conn_drop(srv, c, SLUICE_ETIMEDOUT, "no hello within %llu ms",
				  (unsigned long long)(srv->hello_timeout_ns / 1000000));
			srv->expired++;
		}
	}
	if (srv->paused_until != 0 && now >= srv->paused_until) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTENER};
		(void)epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->lfd, &ev);
		srv->paused_until = 0;
	}
	struct epoll_event evs[32];
	int n = epoll_wait(srv->epfd, evs, 32, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	/* Level-triggered: whatever is left when a request returns early is
	 * reported again by the next poll. */
	for (int k = 0; k < n; k++) {
		uint64_t tag = evs[k].data.u64;
		if (tag == TAG_LISTENER) {
			accept_some(srv, now);
			continue;
		}
		uint32_t i = (uint32_t)tag, gen = (uint32_t)(tag >> 32);
		if (i >= srv->max_pending || srv->conns[i].fd < 0 || srv->conns[i].gen != gen)
			continue; /* closed or reused since epoll_wait */
		if (read_hello(srv, i, req) == 1)
			return 1;
	}
	return 0;
}

/* The connection a request names: it must be the one poll handed out. */
static struct sluice__ctl_conn *req_conn(struct sluice__ctl_server *srv,
					 const struct sluice__ctl_request *req)
{
	SLUICE_INVARIANT(req->conn < srv->max_pending);
	struct sluice__ctl_conn *c = &srv->conns[req->conn];
	SLUICE_INVARIANT(c->fd >= 0 && c->answering && c->gen == req->gen);
	return c;
}

int sluice__ctl_server_grant(struct sluice__ctl_server *srv, const struct sluice__ctl_request *req,
			     uint32_t slot, int memfd, int efd, uint64_t arena_size)
{
	struct sluice__ctl_conn *c = req_conn(srv, req);
	int pass[2] = {memfd, efd}, npass = 2, ro = -1, rc;
	if (req->flags & SLUICE__CTL_F_READ_ONLY) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
		ro = open(path, O_RDONLY | O_CLOEXEC);
		if (ro < 0) {
			rc = -errno;
			sluice__ctl_server_refuse(srv, req, rc, "cannot reopen the arena read-only: %s",
						  strerror(-rc));
			return rc;
		}
		pass[0] = ro;
		npass = 1; /* an observer has no slot, no eventfd */
	}
	struct sluice__ctl_reply r;
	reply_init(&r, 0);
	r.flags = req->flags;
	r.slot = slot;
	r.arena_size = arena_size;
	rc = send_msg(c->fd, &r, sizeof(r), pass, npass);
	if (ro >= 0)
		close(ro);
	if (rc < 0) {
		conn_close(srv, c);
		return rc;
	}
	int fd = c->fd; /* out of the epoll set since read_hello */
	c->fd = -1;
	c->answering = false;
	srv->granted++;
	return fd;
}

void sluice__ctl_server_refuse(struct sluice__ctl_server *srv, const struct sluice__ctl_request *req,
			       int code, const char *fmt, ...)
{
	SLUICE_INVARIANT(code < 0);
	struct sluice__ctl_conn *c = req_conn(srv, req);
	va_list ap;
	va_start(ap, fmt);
	conn_refuse(srv, c, code, fmt, ap);
	va_end(ap);
	srv->refused++;
}

/* ---- client ---- */

/* Waits until fd has `events` or `deadline` passes. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = sluice__ctl_now_ns();
		if (now >= deadline)
			return SLUICE_ETIMEDOUT;
		uint64_t ms = (deadline - now) / 1000000 + 1;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int sluice__ctl_connect(const char *name, uint64_t deadline, int *fdp, char *msg, size_t msglen)
{
	char dir[SLUICE__CTL_PATH_MAX], path[SLUICE__CTL_PATH_MAX];
	int rc = sluice__ctl_name_check(name, msg, msglen);
	if (rc < 0)
		return rc;
	rc = sluice__ctl_dir(dir, sizeof(dir), false, msg, msglen);
	if (rc == SLUICE_ENOENT)
		return why(rc, msg, msglen, "no flow named \"%s\" (no directory %s)", name, dir);
	if (rc < 0 || (rc = flow_path(path, dir, name, ".sock", msg, msglen)) < 0)
		return rc;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return why(-errno, msg, msglen, "socket: %s", strerror(errno));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* An AF_UNIX connect completes at once or fails with EAGAIN when the
	 * listener's backlog is full: then it is retried. */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		if (e == EISCONN)
			break;
		if (e == EINTR)
			continue;
		if (e == EAGAIN && sluice__ctl_now_ns() < deadline) {
			struct timespec ms1 = {0, 1000000};
			nanosleep(&ms1, NULL);
			continue;
		}
		close(fd);
		if (e == EAGAIN)
			return why(SLUICE_ETIMEDOUT, msg, msglen,
				   "flow \"%s\": its listen backlog stayed full", name);
		if (e == ENOENT)
			return why(SLUICE_ENOENT, msg, msglen, "no flow named \"%s\" (no %s)", name,
				   path);
		if (e == ECONNREFUSED)
			return why(SLUICE_ENOENT, msg, msglen,
				   "flow \"%s\" is not running (%s is left from a supervisor that died)",
				   name, path);
		if (e == EACCES || e == EPERM)
			return why(SLUICE_EACCES, msg, msglen, "%s: permission denied", path);
		return why(-e, msg, msglen, "connect %s: %s", path, strerror(e));
	}
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0 || crlen != sizeof(cr)) {
		rc = why(-errno, msg, msglen, "SO_PEERCRED: %s", strerror(errno));
		close(fd);
		return rc;
	}
	if (cr.uid != geteuid() && cr.uid != 0) {
		close(fd);
		return why(SLUICE_EACCES, msg, msglen, "%s is served by uid %u, not by us (uid %u)",
			   path, (unsigned)cr.uid, (unsigned)geteuid());
	}
	*fdp = fd;
	return 0;
}

void sluice__ctl_hello_init(struct sluice__ctl_hello *h, uint32_t flags)
{
	memset(h, 0, sizeof(*h));
	h->magic = SLUICE__CTL_HELLO_MAGIC;
	h->proto = SLUICE__CTL_PROTO_VERSION;
	h->type = SLUICE__CTL_T_HELLO;
	h->layout = SLUICE_FLOW_LAYOUT_VERSION;
	h->flags = flags;
	h->pid = (int32_t)getpid();
}

/* After a reply came with its descriptors cut (MSG_CTRUNC): is it because
 * this process has no descriptor number left (the kernel drops what it
 * cannot install), rather than a peer sending too many? */
static bool out_of_fds(int fd)
{
	int t = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (t >= 0) {
		close(t);
		return false;
	}
	return errno == EMFILE;
}

/* Receives the reply and its descriptors, and checks the message: a grant
 * carries the arena and, unless read-only, the slot's eventfd. Returns 0
 * with *r and the descriptors in fds[0 .. *nfds). */
static int recv_reply(int fd, uint64_t deadline, struct sluice__ctl_reply *r, int *fds_out,
		      int *nfds_out, char *msg, size_t msglen)
{
	char buf[sizeof(*r) + 1];
	union {
		char buf[CMSG_SPACE(MAX_RX_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t n;
	for (;;) {
		int rc = wait_fd(fd, POLLIN, deadline);
		if (rc < 0)
			return why(rc, msg, msglen, "no reply from the supervisor: %s",
				   sluice_strerror(rc));
		mh.msg_controllen = sizeof(u.buf);
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n >= 0)
			break;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return why(-errno, msg, msglen, "recvmsg: %s", strerror(errno));
	}
	int fds[MAX_RX_FDS];
	int nfds = take_fds(&mh, fds);
	int rc;
	if (n == 0)
		rc = why(SLUICE_ECONNRESET, msg, msglen,
			 "the supervisor closed the connection without a reply");
	else if ((mh.msg_flags & MSG_CTRUNC) && out_of_fds(fd))
		rc = why(SLUICE_EMFILE, msg, msglen,
			 "no descriptor free to receive the grant's (RLIMIT_NOFILE)");
	else if (mh.msg_flags & MSG_CTRUNC)
		rc = why(SLUICE_EPROTO, msg, msglen, "reply with more than %d descriptors",
			 MAX_RX_FDS);
	else
		rc = sluice__ctl_parse_reply(buf, (mh.msg_flags & MSG_TRUNC) ? sizeof(buf) : (size_t)n,
					     r, msg, msglen);
	if (rc == 0 && r->status < 0)
		rc = why(r->status, msg, msglen, "%s", r->message[0] ? r->message
								    : sluice_strerror(r->status));
	int want = rc == 0 && (r->flags & SLUICE__CTL_F_READ_ONLY) ? 1 : 2;
	if (rc == 0 && nfds != want)
		rc = why(SLUICE_EPROTO, msg, msglen, "grant with %d descriptors, want %d", nfds, want);
	if (rc < 0) {
		close_fds(fds, nfds);
		return rc;
	}
	memcpy(fds_out, fds, (size_t)nfds * sizeof(int));
	*nfds_out = nfds;
	return 0;
}

int sluice__ctl_request(int fd, const void *h, size_t h_len, uint64_t deadline,
			struct sluice__ctl_attach *out, char *msg, size_t msglen)
{
	uint32_t flags = 0;
	if (h_len >= offsetof(struct sluice__ctl_hello, flags) + sizeof(flags))
		memcpy(&flags, (const char *)h + offsetof(struct sluice__ctl_hello, flags),
		       sizeof(flags));
	for (;;) {
		if (send(fd, h, h_len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			break;
		int e = errno;
		if (e == EINTR)
			continue;
		if (e == EAGAIN || e == EWOULDBLOCK) {
			int rc = wait_fd(fd, POLLOUT, deadline);
			if (rc < 0)
				return why(rc, msg, msglen, "cannot send the hello: %s",
					   sluice_strerror(rc));
			continue;
		}
		if (e == EPIPE || e == ECONNRESET)
			break; /* refused and closed already: the reason may be queued */
		return why(-e, msg, msglen, "send: %s", strerror(e));
	}
	struct sluice__ctl_reply r;
	int got[2], ngot = 0;
	int rc = recv_reply(fd, deadline, &r, got, &ngot, msg, msglen);
	if (rc < 0)
		return rc;
	int memfd = got[0], efd = ngot > 1 ? got[1] : -1;
	char link[64] = "";
	if (efd >= 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", efd);
		ssize_t k = readlink(path, link, sizeof(link) - 1);
		link[k > 0 ? k : 0] = '\0';
	}
	struct stat st;
	int acc = fcntl(memfd, F_GETFL);
	int want = (flags & SLUICE__CTL_F_READ_ONLY) ? O_RDONLY : O_RDWR;
	if (r.flags != flags)
		rc = why(SLUICE_EPROTO, msg, msglen, "granted flags %#x, asked for %#x",
			 (unsigned)r.flags, (unsigned)flags);
	else if (fstat(memfd, &st) != 0 || !S_ISREG(st.st_mode) ||
		 (uint64_t)st.st_size != r.arena_size)
		rc = why(SLUICE_EPROTO, msg, msglen,
			 "the descriptor is not a file of %llu bytes, as the grant says",
			 (unsigned long long)r.arena_size);
	else if (acc < 0 || (acc & O_ACCMODE) != want)
		rc = why(SLUICE_EPROTO, msg, msglen, "the descriptor is opened %s, want %s",
			 acc < 0 ? "?" : (acc & O_ACCMODE) == O_RDONLY ? "O_RDONLY" : "O_RDWR",
			 want == O_RDONLY ? "O_RDONLY" : "O_RDWR");
	else if (efd >= 0 && strcmp(link, "anon_inode:[eventfd]") != 0)
		rc = why(SLUICE_EPROTO, msg, msglen, "the second descriptor is not an eventfd ('%s')",
			 link);
	struct ucred cr = {0};
	socklen_t crlen = sizeof(cr);
	if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0)
		rc = why(-errno, msg, msglen, "SO_PEERCRED: %s", strerror(errno));
	if (rc < 0) {
		close_fds(got, ngot);
		return rc;
	}
	*out = (struct sluice__ctl_attach){.conn_fd = fd, .memfd = memfd, .efd = efd, .slot = r.slot,
					   .flags = r.flags, .arena_size = r.arena_size,
					   .supervisor_pid = cr.pid};
	if (msglen > 0)
		msg[0] = '\0';
	return 0;
}

int sluice__ctl_attach(const char *name, uint32_t flags, uint64_t timeout_ns,
		       struct sluice__ctl_attach *out, char *msg, size_t msglen)
{
	uint64_t deadline = add_sat(sluice__ctl_now_ns(), timeout_ns);
	int fd;
	int rc = sluice__ctl_connect(name, deadline, &fd, msg, msglen);
	if (rc < 0)
		return rc;
	struct sluice__ctl_hello h;
	sluice__ctl_hello_init(&h, flags);
	rc = sluice__ctl_request(fd, &h, sizeof(h), deadline, out, msg, msglen);
	if (rc < 0)
		close(fd);
	return rc;
}
