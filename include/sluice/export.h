/* Symbol visibility: the library is built with -fvisibility=hidden and only
 * declarations marked SLUICE_EXTERN are exported. */
#ifndef SLUICE_EXPORT_H
#define SLUICE_EXPORT_H

#if defined(SLUICE_BUILDING)
#define SLUICE_EXTERN __attribute__((visibility("default")))
#else
#define SLUICE_EXTERN
#endif

#endif
