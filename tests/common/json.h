/* A small strict JSON parser for tests and fuzz targets (RFC 8259: no
 * trailing commas, no control bytes in strings, valid UTF-8, escapes
 * checked, nothing after the value but white space), and lookups by path
 * ("steps.1.workers.0.pid"). Numbers keep their text, so 64-bit counters
 * compare exactly. Not fast; bounded depth (64).
 */
#ifndef SLUICE_TESTS_JSON_H
#define SLUICE_TESTS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
	enum json_type type;
	bool b;
	char *s;             /* JSON_STR: the decoded string (NUL-terminated); JSON_NUM: its text */
	size_t n;            /* JSON_ARR, JSON_OBJ: members */
	struct json *kids;   /* n values */
	char **keys;         /* JSON_OBJ: n keys */
};

struct json_parser {
	const char *p, *end;
	int depth;
};

static void json_free_(struct json *v)
{
	for (size_t i = 0; i < v->n; i++) {
		json_free_(&v->kids[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->kids);
	free(v->keys);
	free(v->s);
}

static inline void json_free(struct json *v)
{
	if (v != NULL) {
		json_free_(v);
		free(v);
	}
}

static void json_ws_(struct json_parser *P)
{
	while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' || *P->p == '\n' || *P->p == '\r'))
		P->p++;
}

static bool json_lit_(struct json_parser *P, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(P->end - P->p) < n || memcmp(P->p, w, n) != 0)
		return false;
	P->p += n;
	return true;
}

static int json_hex_(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
				   : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Length of a valid UTF-8 sequence at p, or 0. */
static size_t json_utf8_(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		lo = c == 0xe0 ? 0xa0 : 0x80;
		hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		lo = c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xf4 ? 0x8f : 0xbf;
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

static void json_put_utf8_(char *o, size_t *k, unsigned cp)
{
	if (cp < 0x80)
		o[(*k)++] = (char)cp;
	else if (cp < 0x800) {
		o[(*k)++] = (char)(0xc0 | cp >> 6);
		o[(*k)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		o[(*k)++] = (char)(0xe0 | cp >> 12);
		o[(*k)++] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[(*k)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		o[(*k)++] = (char)(0xf0 | cp >> 18);
		o[(*k)++] = (char)(0x80 | (cp >> 12 & 0x3f));
		o[(*k)++] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[(*k)++] = (char)(0x80 | (cp & 0x3f));
	}
}

static bool json_u4_(struct json_parser *P, unsigned *cp)
{
	if (P->end - P->p < 4)
		return false;
	*cp = 0;
	for (int i = 0; i < 4; i++) {
		int h = json_hex_(P->p[i]);
		if (h < 0)
			return false;
		*cp = *cp << 4 | (unsigned)h;
	}
	P->p += 4;
	return true;
}

/* A string at P->p (after its opening quote), decoded into a new buffer. */
static char *json_string_(struct json_parser *P)
{
	char *o = malloc((size_t)(P->end - P->p) + 1);
	size_t k = 0;
	if (o == NULL)
		return NULL;
	while (P->p < P->end) {
		unsigned char c = (unsigned char)*P->p;
		if (c == '"') {
			P->p++;
			o[k] = '\0';
			return o;
		}
		if (c < 0x20)
			break;
		if (c == '\\') {
			if (++P->p >= P->end)
				break;
			char e = *P->p++;
			const char *simple = strchr("\"\\/bfnrt", e);
			if (e != '\0' && simple != NULL) {
				o[k++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
				continue;
			}
			unsigned cp, lo;
			if (e != 'u' || !json_u4_(P, &cp))
				break;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				break; /* a lone low surrogate */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (P->end - P->p < 2 || P->p[0] != '\\' || P->p[1] != 'u')
					break;
				P->p += 2;
				if (!json_u4_(P, &lo) || lo < 0xdc00 || lo > 0xdfff)
					break;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			json_put_utf8_(o, &k, cp);
			continue;
		}
		size_t n = json_utf8_((const unsigned char *)P->p, (size_t)(P->end - P->p));
		if (n == 0)
			break;
		memcpy(o + k, P->p, n);
		k += n;
		P->p += n;
	}
	free(o);
	return NULL;
}

static bool json_value_(struct json_parser *P, struct json *v);

static bool json_number_(struct json_parser *P, struct json *v)
{
	const char *s = P->p;
	if (P->p < P->end && *P->p == '-')
		P->p++;
	if (P->p >= P->end || *P->p < '0' || *P->p > '9')
		return false;
	if (*P->p == '0')
		P->p++;
	else
		while (P->p < P->end && *P->p >= '0' && *P->p <= '9')
			P->p++;
	if (P->p < P->end && *P->p == '.') {
		P->p++;
		if (P->p >= P->end || *P->p < '0' || *P->p > '9')
			return false;
		while (P->p < P->end && *P->p >= '0' && *P->p <= '9')
			P->p++;
	}
	if (P->p < P->end && (*P->p == 'e' || *P->p == 'E')) {
		P->p++;
		if (P->p < P->end && (*P->p == '+' || *P->p == '-'))
			P->p++;
		if (P->p >= P->end || *P->p < '0' || *P->p > '9')
			return false;
		while (P->p < P->end && *P->p >= '0' && *P->p <= '9')
			P->p++;
	}
	v->type = JSON_NUM;
	v->s = strndup(s, (size_t)(P->p - s));
	return v->s != NULL;
}

static bool json_push_(struct json *v, size_t *cap, char *key)
{
	if (v->n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		struct json *k = realloc(v->kids, *cap * sizeof(*k));
		if (k == NULL)
			return false;
		v->kids = k;
		if (v->type == JSON_OBJ) {
			char **ks = realloc(v->keys, *cap * sizeof(*ks));
			if (ks == NULL)
				return false;
			v->keys = ks;
		}
	}
	memset(&v->kids[v->n], 0, sizeof(v->kids[0]));
	if (v->type == JSON_OBJ)
		v->keys[v->n] = key;
	v->n++;
	return true;
}

static bool json_container_(struct json_parser *P, struct json *v, bool obj)
{
	char close = obj ? '}' : ']';
	size_t cap = 0;
	v->type = obj ? JSON_OBJ : JSON_ARR;
	if (++P->depth > 64)
		return false;
	json_ws_(P);
	if (P->p < P->end && *P->p == close) {
		P->p++;
		P->depth--;
		return true;
	}
	for (;;) {
		char *key = NULL;
		if (obj) {
			json_ws_(P);
			if (P->p >= P->end || *P->p != '"')
				return false;
			P->p++;
			key = json_string_(P);
			if (key == NULL)
				return false;
			json_ws_(P);
			if (P->p >= P->end || *P->p != ':') {
				free(key);
				return false;
			}
			P->p++;
		}
		if (!json_push_(v, &cap, key)) {
			free(key);
			return false;
		}
		if (!json_value_(P, &v->kids[v->n - 1]))
			return false;
		json_ws_(P);
		if (P->p < P->end && *P->p == ',') {
			P->p++;
			continue;
		}
		if (P->p < P->end && *P->p == close) {
			P->p++;
			P->depth--;
			return true;
		}
		return false;
	}
}

static bool json_value_(struct json_parser *P, struct json *v)
{
	json_ws_(P);
	if (P->p >= P->end)
		return false;
	char c = *P->p;
	if (c == '{' || c == '[') {
		P->p++;
		return json_container_(P, v, c == '{');
	}
	if (c == '"') {
		P->p++;
		v->type = JSON_STR;
		v->s = json_string_(P);
		return v->s != NULL;
	}
	if (json_lit_(P, "null")) {
		v->type = JSON_NULL;
		return true;
	}
	if (json_lit_(P, "true") || json_lit_(P, "false")) {
		v->type = JSON_BOOL;
		v->b = P->p[-1] == 'e' && P->p[-2] == 'u';
		return true;
	}
	return json_number_(P, v);
}

/* Parses text[0..len): the value, or NULL when it is not exactly one
 * well-formed JSON value. The caller frees it with json_free. */
static inline struct json *json_parse(const char *text, size_t len)
{
	struct json_parser P = {.p = text, .end = text + len};
	struct json *v = calloc(1, sizeof(*v));
	if (v == NULL)
		return NULL;
	bool ok = json_value_(&P, v);
	json_ws_(&P);
	if (!ok || P.p != P.end) {
		json_free(v);
		return NULL;
	}
	return v;
}

/* The value at a dotted path of keys and array indices, or NULL. */
static inline const struct json *json_at(const struct json *v, const char *path)
{
	while (v != NULL && *path != '\0') {
		const char *dot = strchr(path, '.');
		size_t n = dot != NULL ? (size_t)(dot - path) : strlen(path);
		const struct json *next = NULL;
		if (v->type == JSON_ARR) {
			char *end;
			unsigned long i = strtoul(path, &end, 10);
			if (end == path + n && i < v->n)
				next = &v->kids[i];
		} else if (v->type == JSON_OBJ) {
			for (size_t i = 0; i < v->n && next == NULL; i++)
				if (strlen(v->keys[i]) == n && memcmp(v->keys[i], path, n) == 0)
					next = &v->kids[i];
		}
		v = next;
		path += n + (dot != NULL);
	}
	return v;
}

#endif
