/* json_check: checks a JSON document against a JSON Schema written in the
 * subset of draft 2020-12 that docs/schema/bench.schema.json uses, for
 * test_sluice_bench where python3-jsonschema is absent (where it is
 * present, the test runs both).
 *
 * Keywords: type (a name or a list), properties, required,
 * additionalProperties (a boolean or a schema), items (one schema), minItems,
 * maxItems, enum, const, minimum, $ref ("#/$defs/NAME"); $schema, $id,
 * title, description, $comment and $defs are read past. Any other keyword is
 * an error (exit 2), so that the schema cannot drift out of what is checked.
 *
 * usage: json_check SCHEMA DOCUMENT
 * Exit 0 valid; 1 invalid (each violation printed with its path); 2 a file
 * that is not JSON, or a schema outside the subset. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum jt { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jt t;
	bool b;
	double n;
	char *s;           /* J_STR: NUL-terminated (no NUL inside: refused) */
	size_t len;        /* J_ARR, J_OBJ: entries */
	struct jv **items; /* J_ARR, J_OBJ: values */
	char **keys;       /* J_OBJ: keys */
};

/* ---- parsing -------------------------------------------------------------- */

struct parser {
	const char *p, *end, *file;
	int line;
};

static void *xalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (p == NULL) {
		fprintf(stderr, "json_check: out of memory\n");
		exit(2);
	}
	return p;
}

static void parse_fail(struct parser *ps, const char *what)
{
	fprintf(stderr, "json_check: %s:%d: %s\n", ps->file, ps->line, what);
	exit(2);
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
				   *ps->p == '\r')) {
		if (*ps->p == '\n')
			ps->line++;
		ps->p++;
	}
}

static void put_utf8(char **o, unsigned long c)
{
	unsigned char *u = (unsigned char *)*o;
	if (c < 0x80) {
		*u++ = (unsigned char)c;
	} else if (c < 0x800) {
		*u++ = (unsigned char)(0xc0 | (c >> 6));
		*u++ = (unsigned char)(0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		*u++ = (unsigned char)(0xe0 | (c >> 12));
		*u++ = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
		*u++ = (unsigned char)(0x80 | (c & 0x3f));
	} else {
		*u++ = (unsigned char)(0xf0 | (c >> 18));
		*u++ = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
		*u++ = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
		*u++ = (unsigned char)(0x80 | (c & 0x3f));
	}
	*o = (char *)u;
}

static unsigned long hex4(struct parser *ps)
{
	if (ps->end - ps->p < 4)
		parse_fail(ps, "short \\u escape");
	unsigned long v = 0;
	for (int i = 0; i < 4; i++) {
		char c = *ps->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned long)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned long)(c - 'A' + 10);
		else
			parse_fail(ps, "bad \\u escape");
	}
	return v;
}

static char *parse_string(struct parser *ps)
{
	ps->p++; /* the opening quote */
	/* Escapes only shrink, but \u can grow to 4 bytes from 6: the input
	 * length is enough. */
	char *out = xalloc((size_t)(ps->end - ps->p) + 1), *o = out;
	for (;;) {
		if (ps->p >= ps->end)
			parse_fail(ps, "unterminated string");
		unsigned char c = (unsigned char)*ps->p++;
		if (c == '"')
			break;
		if (c < 0x20)
			parse_fail(ps, "control character in a string");
		if (c != '\\') {
			*o++ = (char)c;
			continue;
		}
		if (ps->p >= ps->end)
			parse_fail(ps, "unterminated escape");
		c = (unsigned char)*ps->p++;
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			unsigned long v = hex4(ps);
			if (v >= 0xd800 && v < 0xdc00) {
				if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u')
					parse_fail(ps, "lone surrogate");
				ps->p += 2;
				unsigned long lo = hex4(ps);
				if (lo < 0xdc00 || lo >= 0xe000)
					parse_fail(ps, "bad surrogate pair");
				v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
			} else if (v >= 0xdc00 && v < 0xe000) {
				parse_fail(ps, "lone surrogate");
			}
			if (v == 0)
				parse_fail(ps, "NUL in a string");
			put_utf8(&o, v);
			break;
		}
		default: parse_fail(ps, "bad escape");
		}
	}
	*o = '\0';
	return out;
}

static bool word(struct parser *ps, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0)
		return false;
	ps->p += n;
	return true;
}

static struct jv *parse_value(struct parser *ps, int depth);

static void append(struct jv *v, char *key, struct jv *item)
{
	v->items = realloc(v->items, (v->len + 1) * sizeof(*v->items));
	if (v->t == J_OBJ)
		v->keys = realloc(v->keys, (v->len + 1) * sizeof(*v->keys));
	if (v->items == NULL || (v->t == J_OBJ && v->keys == NULL)) {
		fprintf(stderr, "json_check: out of memory\n");
		exit(2);
	}
	if (v->t == J_OBJ)
		v->keys[v->len] = key;
	v->items[v->len++] = item;
}

static struct jv *parse_value(struct parser *ps, int depth)
{
	if (depth > 200)
		parse_fail(ps, "nested too deep");
	skip_ws(ps);
	if (ps->p >= ps->end)
		parse_fail(ps, "value expected");
	struct jv *v = xalloc(sizeof(*v));
	char c = *ps->p;
	if (c == '{' || c == '[') {
		v->t = c == '{' ? J_OBJ : J_ARR;
		char close = c == '{' ? '}' : ']';
		ps->p++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return v;
		}
		for (;;) {
			char *key = NULL;
			if (v->t == J_OBJ) {
				skip_ws(ps);
				if (ps->p >= ps->end || *ps->p != '"')
					parse_fail(ps, "member name expected");
				key = parse_string(ps);
				for (size_t i = 0; i < v->len; i++)
					if (strcmp(v->keys[i], key) == 0)
						parse_fail(ps, "duplicate member name");
				skip_ws(ps);
				if (ps->p >= ps->end || *ps->p++ != ':')
					parse_fail(ps, "':' expected");
			}
			append(v, key, parse_value(ps, depth + 1));
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',') {
				ps->p++;
				continue;
			}
			if (ps->p < ps->end && *ps->p == close) {
				ps->p++;
				return v;
			}
			parse_fail(ps, "',' or a closing bracket expected");
		}
	}
	if (c == '"') {
		v->t = J_STR;
		v->s = parse_string(ps);
	} else if (word(ps, "true")) {
		v->t = J_BOOL;
		v->b = true;
	} else if (word(ps, "false")) {
		v->t = J_BOOL;
	} else if (word(ps, "null")) {
		v->t = J_NULL;
	} else if (c == '-' || isdigit((unsigned char)c)) {
		/* JSON's number grammar, checked, then strtod. */
		const char *q = ps->p;
		if (*q == '-')
			q++;
		if (q >= ps->end || !isdigit((unsigned char)*q))
			parse_fail(ps, "bad number");
		if (*q == '0')
			q++;
		else
			while (q < ps->end && isdigit((unsigned char)*q))
				q++;
		if (q < ps->end && *q == '.') {
			q++;
			if (q >= ps->end || !isdigit((unsigned char)*q))
				parse_fail(ps, "bad number");
			while (q < ps->end && isdigit((unsigned char)*q))
				q++;
		}
		if (q < ps->end && (*q == 'e' || *q == 'E')) {
			q++;
			if (q < ps->end && (*q == '+' || *q == '-'))
				q++;
			if (q >= ps->end || !isdigit((unsigned char)*q))
				parse_fail(ps, "bad number");
			while (q < ps->end && isdigit((unsigned char)*q))
				q++;
		}
		char buf[128];
		size_t n = (size_t)(q - ps->p);
		if (n >= sizeof(buf))
			parse_fail(ps, "number too long");
		memcpy(buf, ps->p, n);
		buf[n] = '\0';
		v->t = J_NUM;
		v->n = strtod(buf, NULL);
		ps->p = q;
	} else {
		parse_fail(ps, "unexpected character");
	}
	return v;
}

static struct jv *load(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "json_check: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	size_t cap = 1 << 16, len = 0, k;
	char *buf = xalloc(cap);
	while ((k = fread(buf + len, 1, cap - len, f)) > 0) {
		len += k;
		if (len == cap) {
			buf = realloc(buf, cap *= 2);
			if (buf == NULL) {
				fprintf(stderr, "json_check: out of memory\n");
				exit(2);
			}
		}
	}
	fclose(f);
	struct parser ps = {buf, buf + len, path, 1};
	struct jv *v = parse_value(&ps, 0);
	skip_ws(&ps);
	if (ps.p != ps.end)
		parse_fail(&ps, "text after the value");
	free(buf);
	return v;
}

static void free_value(struct jv *v)
{
	for (size_t i = 0; i < v->len; i++) {
		free_value(v->items[i]);
		if (v->t == J_OBJ)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
	free(v);
}

/* ---- validating ------------------------------------------------------------ */

static int violations;

static void violation(const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s: ", path);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	violations++;
}

static void schema_fail(const char *what, const char *name)
{
	fprintf(stderr, "json_check: schema: %s%s%s\n", what, name ? ": " : "", name ? name : "");
	exit(2);
}

static const struct jv *member(const struct jv *o, const char *key)
{
	if (o == NULL || o->t != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->len; i++)
		if (strcmp(o->keys[i], key) == 0)
			return o->items[i];
	return NULL;
}

static bool equal(const struct jv *a, const struct jv *b)
{
	if (a->t != b->t)
		return false;
	switch (a->t) {
	case J_NULL: return true;
	case J_BOOL: return a->b == b->b;
	case J_NUM: return a->n == b->n;
	case J_STR: return strcmp(a->s, b->s) == 0;
	case J_ARR:
		if (a->len != b->len)
			return false;
		for (size_t i = 0; i < a->len; i++)
			if (!equal(a->items[i], b->items[i]))
				return false;
		return true;
	case J_OBJ:
		if (a->len != b->len)
			return false;
		for (size_t i = 0; i < a->len; i++) {
			const struct jv *o = member(b, a->keys[i]);
			if (o == NULL || !equal(a->items[i], o))
				return false;
		}
		return true;
	}
	return false;
}

static bool has_type(const struct jv *v, const char *t)
{
	if (strcmp(t, "null") == 0)
		return v->t == J_NULL;
	if (strcmp(t, "boolean") == 0)
		return v->t == J_BOOL;
	if (strcmp(t, "number") == 0)
		return v->t == J_NUM;
	if (strcmp(t, "integer") == 0)
		return v->t == J_NUM && isfinite(v->n) && v->n == floor(v->n);
	if (strcmp(t, "string") == 0)
		return v->t == J_STR;
	if (strcmp(t, "array") == 0)
		return v->t == J_ARR;
	if (strcmp(t, "object") == 0)
		return v->t == J_OBJ;
	schema_fail("unknown type", t);
	return false;
}

static const char *type_name(const struct jv *v)
{
	static const char *const n[] = {"null", "boolean", "number", "string", "array", "object"};
	return n[v->t];
}

static void validate(const struct jv *root, const struct jv *s, const struct jv *v,
		     const char *path);

/* "#/$defs/NAME" in root. */
static const struct jv *resolve(const struct jv *root, const char *ref)
{
	const char *pre = "#/$defs/";
	if (strncmp(ref, pre, strlen(pre)) != 0)
		schema_fail("$ref other than #/$defs/NAME", ref);
	const struct jv *d = member(member(root, "$defs"), ref + strlen(pre));
	if (d == NULL)
		schema_fail("$ref to nothing", ref);
	return d;
}

static void validate_object(const struct jv *root, const struct jv *s, const struct jv *v,
			    const char *path)
{
	const struct jv *props = member(s, "properties");
	const struct jv *req = member(s, "required");
	const struct jv *add = member(s, "additionalProperties");
	if (req && req->t != J_ARR)
		schema_fail("required is not a list", path);
	for (size_t i = 0; req && i < req->len; i++) {
		if (req->items[i]->t != J_STR)
			schema_fail("required holds a non-string", path);
		if (member(v, req->items[i]->s) == NULL)
			violation(path, "member \"%s\" is missing", req->items[i]->s);
	}
	for (size_t i = 0; i < v->len; i++) {
		size_t n = strlen(path) + strlen(v->keys[i]) + 2;
		char *sub = xalloc(n);
		snprintf(sub, n, "%s.%s", path, v->keys[i]);
		const struct jv *ps = member(props, v->keys[i]);
		if (ps)
			validate(root, ps, v->items[i], sub);
		else if (add)
			validate(root, add, v->items[i], sub);
		free(sub);
	}
}

static void validate(const struct jv *root, const struct jv *s, const struct jv *v,
		     const char *path)
{
	if (s->t == J_BOOL) {
		if (!s->b)
			violation(path, "not allowed here");
		return;
	}
	if (s->t != J_OBJ)
		schema_fail("a schema that is not an object or a boolean", path);
	for (size_t i = 0; i < s->len; i++) {
		const char *k = s->keys[i];
		const struct jv *a = s->items[i];
		if (!strcmp(k, "$schema") || !strcmp(k, "$id") || !strcmp(k, "title") ||
		    !strcmp(k, "description") || !strcmp(k, "$comment") || !strcmp(k, "$defs") ||
		    !strcmp(k, "properties") || !strcmp(k, "required") ||
		    !strcmp(k, "additionalProperties"))
			continue; /* the last three: validate_object */
		if (!strcmp(k, "$ref")) {
			if (a->t != J_STR)
				schema_fail("$ref is not a string", path);
			validate(root, resolve(root, a->s), v, path);
		} else if (!strcmp(k, "type")) {
			bool ok = false;
			if (a->t == J_STR) {
				ok = has_type(v, a->s);
			} else if (a->t == J_ARR) {
				for (size_t t = 0; t < a->len; t++) {
					if (a->items[t]->t != J_STR)
						schema_fail("type list holds a non-string", path);
					ok |= has_type(v, a->items[t]->s);
				}
			} else {
				schema_fail("type is neither a name nor a list", path);
			}
			if (!ok)
				violation(path, "a %s, of a type the schema does not allow", type_name(v));
		} else if (!strcmp(k, "const")) {
			if (!equal(a, v))
				violation(path, "not the constant the schema names");
		} else if (!strcmp(k, "enum")) {
			if (a->t != J_ARR)
				schema_fail("enum is not a list", path);
			bool ok = false;
			for (size_t e = 0; e < a->len && !ok; e++)
				ok = equal(a->items[e], v);
			if (!ok)
				violation(path, "%s%s%s is none of the values the schema lists",
					  v->t == J_STR ? "\"" : "a ", v->t == J_STR ? v->s : type_name(v),
					  v->t == J_STR ? "\"" : "");
		} else if (!strcmp(k, "minimum")) {
			if (a->t != J_NUM)
				schema_fail("minimum is not a number", path);
			if (v->t == J_NUM && !(v->n >= a->n))
				violation(path, "%g is below the minimum %g", v->n, a->n);
		} else if (!strcmp(k, "items")) {
			for (size_t e = 0; v->t == J_ARR && e < v->len; e++) {
				size_t n = strlen(path) + 24;
				char *sub = xalloc(n);
				snprintf(sub, n, "%s[%zu]", path, e);
				validate(root, a, v->items[e], sub);
				free(sub);
			}
		} else if (!strcmp(k, "minItems") || !strcmp(k, "maxItems")) {
			if (a->t != J_NUM)
				schema_fail("minItems/maxItems is not a number", path);
			bool min = k[1] == 'i';
			if (v->t == J_ARR && (min ? (double)v->len < a->n : (double)v->len > a->n))
				violation(path, "%zu items, %s %g", v->len, min ? "fewer than" : "more than",
					  a->n);
		} else {
			schema_fail("keyword outside the subset", k);
		}
	}
	if (v->t == J_OBJ)
		validate_object(root, s, v, path);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: json_check SCHEMA DOCUMENT\n");
		return 2;
	}
	struct jv *schema = load(argv[1]);
	struct jv *doc = load(argv[2]);
	validate(schema, schema, doc, "$");
	free_value(schema);
	free_value(doc);
	if (violations) {
		printf("%s: %d violation%s of %s\n", argv[2], violations, violations == 1 ? "" : "s",
		       argv[1]);
		return 1;
	}
	printf("%s: valid against %s\n", argv[2], argv[1]);
	return 0;
}
