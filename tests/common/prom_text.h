/* A strict check of Prometheus text exposition (format 0.0.4) for tests
 * and fuzz targets: every line ends in '\n' and is a "# HELP name text",
 * a "# TYPE name type" or a sample `name{label="value",...} number`;
 * names and label names are well formed, label values use only the \\,
 * \" and \n escapes, the whole text is valid UTF-8. What promtool checks
 * beyond the syntax (lint rules) is promtool's job.
 */
#ifndef SLUICE_TESTS_PROM_TEXT_H
#define SLUICE_TESTS_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "common/json.h" /* json_utf8_ */

static bool prom_name_(const char **p, const char *end, bool colon)
{
	const char *s = *p;
	while (*p < end) {
		char c = **p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (colon && c == ':') || (*p > s && c >= '0' && c <= '9');
		if (!ok)
			break;
		(*p)++;
	}
	return *p > s;
}

/* A sample's value: an integer or decimal (with an optional exponent),
 * or +Inf, -Inf, NaN. */
static bool prom_number_(const char *p, const char *end)
{
	size_t n = (size_t)(end - p);
	if ((n == 4 && (memcmp(p, "+Inf", 4) == 0 || memcmp(p, "-Inf", 4) == 0)) ||
	    (n == 3 && memcmp(p, "NaN", 3) == 0))
		return true;
	if (p < end && (*p == '-' || *p == '+'))
		p++;
	const char *d = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	bool digits = p > d;
	if (p < end && *p == '.') {
		p++;
		const char *f = p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		digits = digits || p > f;
	}
	if (digits && p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '-' || *p == '+'))
			p++;
		const char *e = p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == e)
			return false;
	}
	return digits && p == end;
}

static bool prom_line_(const char *p, const char *end)
{
	if (end - p >= 7 && (memcmp(p, "# HELP ", 7) == 0 || memcmp(p, "# TYPE ", 7) == 0)) {
		bool type = p[2] == 'T';
		p += 7;
		if (!prom_name_(&p, end, true) || p >= end || *p != ' ')
			return false;
		p++;
		if (!type)
			return memchr(p, '\n', (size_t)(end - p)) == NULL;
		size_t n = (size_t)(end - p);
		static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
		for (unsigned i = 0; i < 5; i++)
			if (n == strlen(types[i]) && memcmp(p, types[i], n) == 0)
				return true;
		return false;
	}
	if (!prom_name_(&p, end, true))
		return false;
	if (p < end && *p == '{') {
		p++;
		for (bool first = true; p < end && *p != '}'; first = false) {
			if (!first) {
				if (*p != ',')
					return false;
				p++;
			}
			if (!prom_name_(&p, end, false) || end - p < 2 || p[0] != '=' || p[1] != '"')
				return false;
			p += 2;
			while (p < end && *p != '"') {
				if (*p == '\n')
					return false;
				if (*p == '\\') {
					if (p + 1 >= end || (p[1] != '\\' && p[1] != '"' && p[1] != 'n'))
						return false;
					p++;
				}
				p++;
			}
			if (p >= end)
				return false;
			p++; /* the closing quote */
		}
		if (p >= end)
			return false;
		p++; /* '}' */
	}
	if (p >= end || *p != ' ')
		return false;
	return prom_number_(p + 1, end);
}

/* True when text[0..len) is well-formed exposition text (see above). */
static inline bool prom_text_ok(const char *text, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t k = json_utf8_((const unsigned char *)text + i, len - i);
		if (k == 0)
			return false;
		i += k;
	}
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL || !prom_line_(p, nl))
			return false;
		p = nl + 1;
	}
	return true;
}

#endif
