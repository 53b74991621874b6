/* Worker programs: the program a step with exec_path runs (see
 * sluice_step_t.exec_path in include/sluice/flow.h, and docs/RUNTIME.md,
 * "Exec'd workers").
 *
 * A worker program links sluice, lists the handlers (and conditions) it
 * offers by name, and hands its arguments to sluice_worker_exec_main:
 *
 *	static const sluice_handler_entry_t reg[] = {
 *		{.name = "upper", .handler = {.on_start = load, .handle = upper}},
 *		{.name = "is_text", .condition = is_text},
 *	};
 *	int main(int argc, char **argv)
 *	{
 *		return sluice_worker_exec_main(argc, argv, reg, 2);
 *	}
 *
 * The flow's supervisor forks, then execs the program with the arguments
 * "--sluice-worker" and a list naming the arena's descriptor, the
 * supervisor's doorbell, the client's completion eventfd, the worker slot
 * and the supervisor's pid. The program attaches the arena, builds its
 * view of the flow from the arena alone (every field validated), finds
 * its step's handler by the step's handler_name, and the conditions of
 * the later steps by their condition_name; then it is a worker like a
 * forked one: on_start, the batch loop, on_stop, the same recovery
 * records.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sluice/export.h>
#include <sluice/flow.h>

/* The first argument the supervisor gives a worker program. A program that
 * is also something else can look for it in argv[1]. */
#define SLUICE_WORKER_ARG "--sluice-worker"

/* One named entry of a worker program's registry: a handler (handle set),
 * a condition (condition set), or both under one name. Names are looked
 * up with strcmp; the first entry of the right kind wins. The pointers
 * are the program's own: `arg` and `condition_arg` are passed as given. */
typedef struct sluice_handler_entry {
	const char *name;
	sluice_handler_t handler;
	bool (*condition)(void *arg, const sluice_item_t *task);
	void *condition_arg;
} sluice_handler_entry_t;

/* Runs this process as the worker the supervisor started it for: parses
 * argv (argv[1] must be SLUICE_WORKER_ARG), dies with the supervisor
 * (PR_SET_PDEATHSIG, re-checked), attaches and validates the arena, finds
 * the handler and conditions in registry[0 .. n), then runs on_start, the
 * batch loop and on_stop and exits (_exit: no atexit handlers). A name
 * not in the registry fails the worker's start with a message naming it
 * (the flow's start then fails with SLUICE_EWORKERSTART and that message;
 * a restart counts as a death). Returns only when argv is not a worker's:
 * an exit status (2) for main to return, after a line on stderr. Call from
 * main (the handlers may make threads, from on_start on); it blocks for the
 * worker's whole life and never returns otherwise. */
SLUICE_EXTERN int sluice_worker_exec_main(int argc, char **argv,
					  const sluice_handler_entry_t *registry, size_t n);

#endif
