/* CPUs: which ones this process may run on, pinning, and what the machine
 * is (for the report). */
#ifndef SLUICE_BENCH_CPU_H
#define SLUICE_BENCH_CPU_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_CPUS 64

/* Fills `cpus` with up to `max` CPU numbers from this process's affinity
 * mask, lowest first. Returns how many, or a negative code. */
int bench_cpus_allowed(int *cpus, int max);

/* Pins the calling process to CPU `cpu` (sched_setaffinity). Returns 0 or a
 * negative errno. */
int bench_pin_cpu(int cpu);

/* The "model name" line of /proc/cpuinfo ("unknown" when absent), the
 * number of online CPUs and the kernel release, for reports. */
void bench_machine(char *model, size_t model_len, int *ncpus, char *kernel, size_t kernel_len);

/* Machine-wide CPU time from /proc/stat, in ns: busy (user, nice, system,
 * irq, softirq; guest time is inside user) and steal (time the hypervisor
 * gave our vCPUs to someone else). Returns 0 or a negative errno. */
int bench_machine_cpu(uint64_t *busy_ns, uint64_t *steal_ns);

/* CPU time of this process and its waited-for children, in ns. */
uint64_t bench_own_cpu_ns(void);

#endif
