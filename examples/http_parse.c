/* The HTTP example's request-head parser and response-head writer (see
 * http_parse.h). Every length is bounded by the head's: the parser only
 * ever looks at buf[0 .. min(n, HTTP_MAX_HEAD)). */
#include "http_parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Case-insensitive: is s[0..n) exactly the NUL-terminated word w? */
static bool word_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

static int refuse(const char **why, int status, const char *reason)
{
	*why = reason;
	return status;
}

/* Finds the end of the head in buf[0..n): its length, the blank line
 * included; 0 when it has not arrived; or a status (via a negative value)
 * for a byte that can never be part of a good head. */
static long head_end(const char *buf, size_t n, const char **why)
{
	size_t lim = n < HTTP_MAX_HEAD ? n : HTTP_MAX_HEAD;
	for (size_t i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\n') {
			if (i == 0 || buf[i - 1] != '\r')
				return -refuse(why, 400, "a bare LF: lines must end in CRLF");
			if (i >= 3 && buf[i - 2] == '\n')
				return (long)(i + 1);
		} else if (c == '\r') {
			if (i + 1 < n && buf[i + 1] != '\n')
				return -refuse(why, 400, "a CR not followed by LF");
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return -refuse(why, 400, "a control byte in the request head");
		}
	}
	if (n >= HTTP_MAX_HEAD)
		return -refuse(why, 431, "the request head is over 8192 bytes");
	return 0;
}

static int parse_request_line(const char *s, size_t n, http_request_t *rq, const char **why)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i > 16 || i >= n || s[i] != ' ')
		return refuse(why, 400, "a malformed request line (METHOD SP target SP version)");
	/* Methods are case-sensitive. */
	rq->method = i == 3 && memcmp(s, "GET", 3) == 0    ? HTTP_GET
		     : i == 4 && memcmp(s, "POST", 4) == 0 ? HTTP_POST
							   : HTTP_OTHER;
	size_t t = ++i;
	while (i < n && s[i] > 0x20 && s[i] < 0x7f)
		i++;
	if (i == t || i >= n || s[i] != ' ')
		return refuse(why, 400, "a malformed request line (METHOD SP target SP version)");
	if (s[t] != '/')
		return refuse(why, 400, "the request target must be a path starting with /");
	if (i - t > HTTP_MAX_TARGET)
		return refuse(why, 414, "the request target is over 1024 bytes");
	rq->target = s + t;
	rq->target_len = i - t;
	const char *v = s + i + 1;
	size_t vn = n - i - 1;
	if (vn == 8 && memcmp(v, "HTTP/1.", 7) == 0 && (v[7] == '0' || v[7] == '1')) {
		rq->minor = (unsigned)(v[7] - '0');
		return 0;
	}
	if (vn == 8 && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' && v[6] == '.' &&
	    v[7] >= '0' && v[7] <= '9')
		return refuse(why, 505, "only HTTP/1.0 and HTTP/1.1 are served");
	return refuse(why, 400, "a malformed HTTP version");
}

/* Content-Length: 1*DIGIT. Over 18 digits reads as UINT64_MAX (too big
 * for any limit). Returns false when it is not a number. */
static bool parse_length(const char *s, size_t n, uint64_t *out)
{
	if (n == 0)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = i < 18 ? v * 10 + (uint64_t)(s[i] - '0') : UINT64_MAX;
	}
	*out = v;
	return true;
}

/* Connection: a comma-separated list of tokens. */
static void parse_connection(const char *s, size_t n, bool *close, bool *keep)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (is_ows(s[i]) || s[i] == ','))
			i++;
		size_t t = i;
		while (i < n && s[i] != ',' && !is_ows(s[i]))
			i++;
		if (word_is(s + t, i - t, "close"))
			*close = true;
		else if (word_is(s + t, i - t, "keep-alive"))
			*keep = true;
	}
}

int http_parse_head(const char *buf, size_t n, http_request_t *rq, const char **why)
{
	memset(rq, 0, sizeof(*rq));
	*why = "";
	long end = head_end(buf, n, why);
	if (end < 0)
		return (int)-end;
	if (end == 0)
		return HTTP_PARSE_MORE;
	rq->head_len = (size_t)end;

	/* Lines: each ends in CRLF (head_end saw to that); the last is empty. */
	const char *p = buf, *stop = buf + end;
	const char *eol = memchr(p, '\r', (size_t)(stop - p));
	int rc = parse_request_line(p, (size_t)(eol - p), rq, why);
	if (rc != 0)
		return rc;
	p = eol + 2;
	unsigned count = 0, hosts = 0;
	bool te = false, close = false, keep = false;
	while ((eol = memchr(p, '\r', (size_t)(stop - p))) != p) {
		size_t len = (size_t)(eol - p);
		if (++count > HTTP_MAX_HEADERS)
			return refuse(why, 431, "more than 64 header lines");
		if (is_ows(p[0]))
			return refuse(why, 400, "a folded header line (obs-fold)");
		size_t k = 0;
		while (k < len && is_tchar((unsigned char)p[k]))
			k++;
		if (k == 0 || k >= len || p[k] != ':')
			return refuse(why, 400, "a malformed header line (name: value)");
		const char *v = p + k + 1, *ve = eol;
		while (v < ve && is_ows(*v))
			v++;
		while (ve > v && is_ows(ve[-1]))
			ve--;
		size_t vn = (size_t)(ve - v);
		if (word_is(p, k, "content-length")) {
			uint64_t cl;
			if (!parse_length(v, vn, &cl))
				return refuse(why, 400, "Content-Length is not a number");
			if (rq->has_length && cl != rq->content_length)
				return refuse(why, 400, "two different Content-Length values");
			rq->has_length = true;
			rq->content_length = cl;
		} else if (word_is(p, k, "transfer-encoding")) {
			te = true;
		} else if (word_is(p, k, "host")) {
			hosts++;
		} else if (word_is(p, k, "connection")) {
			parse_connection(v, vn, &close, &keep);
		}
		p = eol + 2;
	}
	if (te)
		return refuse(why, 501, "Transfer-Encoding is not supported: send a Content-Length");
	if (rq->minor == 1 && hosts != 1)
		return refuse(why, 400, "an HTTP/1.1 request needs exactly one Host header");
	if (rq->method == HTTP_GET && rq->has_length && rq->content_length != 0)
		return refuse(why, 400, "a GET with a body");
	rq->keep_alive = !close && (rq->minor == 1 || keep);
	return HTTP_PARSE_DONE;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

size_t http_format_head(char *out, size_t cap, int status, const char *ctype, uint64_t length,
			bool keep_alive, unsigned minor, const char *extra)
{
	int k = snprintf(out, cap,
			 "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %llu\r\n%s%s\r\n", status,
			 http_reason(status), ctype ? "Content-Type: " : "", ctype ? ctype : "",
			 ctype ? "\r\n" : "", (unsigned long long)length,
			 !keep_alive ? "Connection: close\r\n"
			 : minor == 0 ? "Connection: keep-alive\r\n"
				      : "",
			 extra ? extra : "");
	return k > 0 && (size_t)k < cap ? (size_t)k : 0;
}
