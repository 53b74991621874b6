/* A small, strict HTTP/1.x request-head parser and response-head writer
 * for the HTTP example (examples/http_service.c). Pure functions: no I/O,
 * no allocation; any thread.
 *
 * What it accepts (RFC 9112, strictly): a request line `METHOD SP target SP
 * HTTP/1.0|HTTP/1.1 CRLF` with single spaces, a token method, an
 * origin-form target of visible ASCII; header lines `name: value CRLF` with
 * a token name (no space before the colon), a value of visible characters,
 * spaces and tabs; a blank line. Every line ends in CRLF. Anything else is
 * refused with a status and a reason, among them: a bare LF or a control
 * byte anywhere (400, seen before the head is complete), a folded line
 * (400), a head over its limit (431), too many header lines (431), a
 * target over 1024 bytes (414), a Content-Length that is not digits, is
 * given twice with different values, or on a GET (400), a
 * Transfer-Encoding (501: bodies must come with a Content-Length), an
 * HTTP/1.1 request without exactly one Host (400), another version (505).
 */
#ifndef SLUICE_EXAMPLES_HTTP_PARSE_H
#define SLUICE_EXAMPLES_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD 8192u    /* request line and headers, with the blank line */
#define HTTP_MAX_HEADERS 64u
#define HTTP_MAX_TARGET 1024u

enum http_method { HTTP_GET, HTTP_POST, HTTP_OTHER };

typedef struct http_request {
	enum http_method method;
	const char *target;   /* into the parsed buffer; not NUL-terminated */
	size_t target_len;
	unsigned minor;       /* HTTP/1.minor: 0 or 1 */
	bool keep_alive;      /* the connection may carry another request */
	bool has_length;      /* a Content-Length was given */
	uint64_t content_length;
	size_t head_len;      /* bytes of the head, the blank line included */
} http_request_t;

enum { HTTP_PARSE_DONE = 0, HTTP_PARSE_MORE = 1 };

/* Parses the head at the start of buf[0..n) (what has arrived so far; the
 * body and later requests may follow it). Returns HTTP_PARSE_DONE with *rq
 * filled; HTTP_PARSE_MORE when the head is not complete yet and nothing
 * seen so far is wrong; or an HTTP status >= 400 to answer with, and a
 * reason in *why (a static string). */
int http_parse_head(const char *buf, size_t n, http_request_t *rq, const char **why);

/* The reason phrase of a status this service sends. */
const char *http_reason(int status);

/* Writes a response head into out (cap bytes): status line, Content-Type
 * (when ctype is not NULL), Content-Length, Connection: close when
 * !keep_alive (or keep-alive for an HTTP/1.0 client that keeps it), the
 * `extra` header lines (each ending in CRLF; may be NULL) and the blank
 * line. Returns its length, or 0 when it does not fit. */
size_t http_format_head(char *out, size_t cap, int status, const char *ctype, uint64_t length,
			bool keep_alive, unsigned minor, const char *extra);

#endif
