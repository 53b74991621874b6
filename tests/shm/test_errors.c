/* The error vocabulary: every code has a name and a message, errno twins
 * are the negated errno, and unknown codes are named as such. */
#include "common/test.h"

int main(void)
{
	int seen = 0;
#define CHECK_CODE(name, value, msg)                                           \
	CHECK(SLUICE_##name == (value));                                       \
	CHECK(strcmp(sluice_err_name(value), #name) == 0);                     \
	CHECK(strcmp(sluice_strerror(value), msg) == 0);                       \
	CHECK((value) < 0);                                                    \
	seen++;
	SLUICE_ERRNO_MAP(CHECK_CODE)
#undef CHECK_CODE
	CHECK(seen > 20);
	CHECK(SLUICE_EINVAL == -EINVAL && SLUICE_ETIMEDOUT == -ETIMEDOUT);
	CHECK(SLUICE_EBADMAGIC < -4000);
	CHECK(strcmp(sluice_err_name(-123456), "UNKNOWN") == 0);
	CHECK(strcmp(sluice_strerror(-123456), "unknown error") == 0);
	CHECK(strcmp(sluice_strerror(0), "success") == 0);
	printf("ok: %d codes\n", seen);
	return TEST_PASS;
}
