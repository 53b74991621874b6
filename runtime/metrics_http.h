/* The supervisor's metrics endpoint (internal): HTTP/1.0 on 127.0.0.1,
 * GET (or HEAD) /metrics in the Prometheus text format and /healthz (200
 * "ok", or 503 and the reasons). See docs/INSPECT.md.
 *
 * Made for the supervisor's single-threaded epoll loop: it hands the loop
 * one descriptor (an epoll set of its own, holding the listening socket
 * and its clients), a function to call when that is readable, and a
 * timeout to fold into the loop's. It never blocks: sockets are
 * non-blocking, a request is read into a bounded buffer (4 KiB) until its
 * header ends, answered in one go and closed (our side shut, then what
 * the client still sends read and forgotten until it closes); a client
 * that is slow or silent is dropped 2 s after it connected; at most 8
 * clients at once (more are closed at once). The only wait is the snapshot's own: up to
 * about 10 ms, and only when a worker died inside a write of its health
 * record and the supervisor has not reaped it yet.
 */
#ifndef SLUICE_RUNTIME_METRICS_HTTP_H
#define SLUICE_RUNTIME_METRICS_HTTP_H

#include <stdint.h>

#include <sluice/flow.h>

struct sluice__metrics_http;

/* The port to serve on: f's metrics_port, else SLUICE_METRICS_PORT from
 * the environment (1..65535; anything else is said on stderr and
 * ignored), else 0: none. */
uint16_t sluice__metrics_http_port(const sluice_flow_t *f);

/* Listens on 127.0.0.1 at sluice__metrics_http_port(f) and adds its
 * descriptor to the epoll set epfd (EPOLLIN, data.u64 = tag). Returns the
 * endpoint, or NULL when no port is set or it could not be set up (said
 * on stderr: the flow runs without it). The supervisor's thread. */
struct sluice__metrics_http *sluice__metrics_http_start(sluice_flow_t *f, int epfd, uint64_t tag);

/* Its descriptor is readable: accepts, reads, answers what it can without
 * blocking. NULL is ignored. */
void sluice__metrics_http_ready(struct sluice__metrics_http *h);

/* Drops clients past their deadline and returns the epoll timeout the
 * loop should use: timeout_ms (-1: none), lowered to the next client's
 * deadline. No client, or NULL h: timeout_ms as it is (an idle endpoint
 * adds no tick). */
int sluice__metrics_http_timeout(struct sluice__metrics_http *h, int timeout_ms);

/* Closes its descriptors and frees it, answering nobody: in a process
 * forked from the supervisor (a worker), which must not hold the
 * listening socket or a client's connection open. NULL is ignored. */
void sluice__metrics_http_close(struct sluice__metrics_http *h);

#endif
