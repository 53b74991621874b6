/* One error vocabulary for all of sluice.
 *
 * Every function that can fail returns 0 (or a count) on success and a
 * negative SLUICE_E* code on failure; none sets errno. Codes that have an
 * errno twin are that errno negated, so a system call's failure passes
 * through as -errno unchanged. sluice's own codes sit in a range of their
 * own, below -4000.
 */
#ifndef SLUICE_ERROR_H
#define SLUICE_ERROR_H

#include <errno.h>
#include <sluice/export.h>

/* XX(name, value, message) */
#define SLUICE_ERRNO_MAP(XX)                                                  \
	XX(EPERM, -EPERM, "operation not permitted")                          \
	XX(ENOENT, -ENOENT, "no such file or directory")                      \
	XX(EINTR, -EINTR, "interrupted system call")                          \
	XX(EIO, -EIO, "input/output error")                                   \
	XX(E2BIG, -E2BIG, "request larger than the largest size class")       \
	XX(EBADF, -EBADF, "bad file descriptor")                              \
	XX(EAGAIN, -EAGAIN, "resource temporarily unavailable")               \
	XX(ENOMEM, -ENOMEM, "out of memory")                                  \
	XX(EACCES, -EACCES, "permission denied")                              \
	XX(EFAULT, -EFAULT, "bad address")                                    \
	XX(EBUSY, -EBUSY, "resource busy or still in use")                    \
	XX(EEXIST, -EEXIST, "already exists")                                 \
	XX(EINVAL, -EINVAL, "invalid argument")                               \
	XX(ENFILE, -ENFILE, "file table overflow")                            \
	XX(EMFILE, -EMFILE, "too many open files")                            \
	XX(EFBIG, -EFBIG, "file too large")                                   \
	XX(ENOSPC, -ENOSPC, "no space left (size class exhausted)")           \
	XX(EPIPE, -EPIPE, "broken pipe")                                      \
	XX(ERANGE, -ERANGE, "value out of range")                             \
	XX(ENOSYS, -ENOSYS, "function not implemented")                       \
	XX(EOVERFLOW, -EOVERFLOW, "value too large for defined data type")    \
	XX(EMSGSIZE, -EMSGSIZE, "message too long for the payload block")     \
	XX(ECONNRESET, -ECONNRESET, "connection reset by peer")               \
	XX(ETIMEDOUT, -ETIMEDOUT, "timed out")                                \
	XX(ECANCELED, -ECANCELED, "operation canceled")                       \
	XX(EALREADY, -EALREADY, "already done")                                \
	XX(EINPROGRESS, -EINPROGRESS, "in progress")                           \
	XX(ENOTSUP, -ENOTSUP, "operation not supported")                      \
	XX(ENAMETOOLONG, -ENAMETOOLONG, "name or path too long")              \
	XX(EPROTO, -EPROTO, "protocol error (malformed control message)")    \
	XX(EUSERS, -EUSERS, "too many clients (the flow's client table is full)") \
	XX(EBADMAGIC, -4001, "not a sluice arena (bad magic)")                \
	XX(EVERSION, -4002, "arena layout version not supported")             \
	XX(ETRUNCATED, -4003, "arena truncated or its size disagrees with its header") \
	XX(ECORRUPT, -4004, "arena layout is corrupt")                        \
	XX(ENOTSEALED, -4005, "not a sealed memfd arena")                     \
	XX(ENOTOWNER, -4006, "block is not owned by the caller")              \
	XX(EBADHANDLE, -4007, "handle out of range")                         \
	XX(EWORKERSTART, -4020, "a worker's on_start failed")                 \
	XX(EEOF, -4030, "end of file before the expected length")             \
	XX(ESTOPPED, -4021, "flow is not running (stopped, stopping or not started)") \
	XX(ESUPERVISOR, -4022, "the flow's supervisor died")

typedef enum sluice_errno {
#define SLUICE__ERR_ENUM(name, value, msg) SLUICE_##name = (value),
	SLUICE_ERRNO_MAP(SLUICE__ERR_ENUM)
#undef SLUICE__ERR_ENUM
} sluice_errno_t;

/* The message for code `err` ("unknown error" for a code not in the map).
 * Any process, any thread; returns a static string. */
SLUICE_EXTERN const char *sluice_strerror(int err);

/* The name of code `err` ("EINVAL", "EBADMAGIC"), or "UNKNOWN". Any process,
 * any thread; returns a static string. */
SLUICE_EXTERN const char *sluice_err_name(int err);

#endif
