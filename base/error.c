/* sluice_strerror and sluice_err_name, generated from SLUICE_ERRNO_MAP. */
#include <sluice/error.h>

const char *sluice_strerror(int err)
{
	switch (err) {
#define SLUICE__ERR_MSG(name, value, msg) case (value): return msg;
		SLUICE_ERRNO_MAP(SLUICE__ERR_MSG)
#undef SLUICE__ERR_MSG
	case 0:
		return "success";
	}
	return "unknown error";
}

const char *sluice_err_name(int err)
{
	switch (err) {
#define SLUICE__ERR_NAME(name, value, msg) case (value): return #name;
		SLUICE_ERRNO_MAP(SLUICE__ERR_NAME)
#undef SLUICE__ERR_NAME
	case 0:
		return "OK";
	}
	return "UNKNOWN";
}
