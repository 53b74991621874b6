/* Names of task statuses. */
#include <sluice/desc.h>

const char *sluice_task_status_name(unsigned status)
{
	switch (status) {
#define SLUICE__TS_NAME(name, value, msg)                                      \
	case value:                                                            \
		return msg;
		SLUICE_TASK_STATUS_MAP(SLUICE__TS_NAME)
#undef SLUICE__TS_NAME
	}
	return "unknown";
}
