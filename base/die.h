/* Broken invariants and failed pthread calls end here: print where, abort.
 * Bad input never does; it returns a negative code. */
#ifndef SLUICE_BASE_DIE_H
#define SLUICE_BASE_DIE_H

__attribute__((noreturn, format(printf, 4, 5)))
void sluice__die(const char *file, int line, const char *func, const char *fmt, ...);

#define SLUICE_DIE(...) sluice__die(__FILE__, __LINE__, __func__, __VA_ARGS__)

/* An invariant that holds unless sluice itself is broken. */
#define SLUICE_INVARIANT(cond)                                               \
	do {                                                                 \
		if (__builtin_expect(!(cond), 0))                            \
			SLUICE_DIE("invariant failed: %s", #cond);           \
	} while (0)

#endif
