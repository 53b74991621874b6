/* sluice-inspect's live view in a real terminal: tmux runs it in a
 * detached 80x24 session; capture-pane shows the flow's state, its step
 * names and every worker's pid, within 80 columns; `q` ends it with exit
 * 0 and ^C with 130, the terminal restored both times (the normal screen
 * back, icanon and echo on again). Exits 77 where tmux is not installed.
 *
 *   test_sluice_inspect_live PATH-OF-sluice-inspect
 */
#include "runtime/flow_test.h"
#include "tools/run_cmd.h"

static char tmux[256], sock[64];

static int work(void *arg, sluice_item_t *items, unsigned n)
{
	usleep(200);
	return 0;
}

/* Runs `tmux -L sock -f /dev/null ARGS...`; returns what it printed. */
static struct cmd_out tmux_run(const char *a1, const char *a2, const char *a3, const char *a4,
			       const char *a5, const char *a6, const char *a7, const char *a8,
			       const char *a9, const char *a10)
{
	char *argv[] = {tmux, "-L", sock, "-f", "/dev/null", (char *)a1, (char *)a2, (char *)a3,
			(char *)a4, (char *)a5, (char *)a6, (char *)a7, (char *)a8, (char *)a9,
			(char *)a10, NULL};
	return cmd_run(argv);
}

static void kill_server(void)
{
	struct cmd_out r = tmux_run("kill-server", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	cmd_out_free(&r);
}

static char *capture(const char *session)
{
	struct cmd_out r = tmux_run("capture-pane", "-p", "-t", session, NULL, NULL, NULL, NULL, NULL,
				    NULL);
	CHECK(r.status == 0);
	free(r.err);
	return r.out;
}

/* Waits until the pane shows every one of want[] (NULL-terminated);
 * returns the screen (the caller frees it). */
static char *await_screen(const char *session, const char *const *want, const char *what)
{
	uint64_t until = test_now_ns() + 15 * SEC * test_slowdown();
	for (;;) {
		char *s = capture(session);
		bool all = true;
		for (unsigned i = 0; want[i] != NULL && all; i++)
			all = strstr(s, want[i]) != NULL;
		if (all)
			return s;
		if (test_now_ns() > until) {
			fprintf(stderr, "FAIL: never saw %s; the screen:\n%s\n", what, s);
			exit(TEST_FAIL);
		}
		free(s);
		usleep(50 * 1000);
	}
}

/* Starts the view in a new 80x24 session; after it ends, the shell
 * prints its exit code and the terminal's icanon and echo settings. */
static void start_view(const char *session, const char *tool, const char *arena)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "trap : INT; %s --arena %s -i 0.2; echo EXIT=$?; stty -a | tr ' ' '\\n' | "
		 "grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo; sleep 120",
		 tool, arena);
	struct cmd_out r = tmux_run("new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd,
				    NULL);
	if (r.status != 0)
		fprintf(stderr, "tmux new-session: %s\n", r.err);
	CHECK(r.status == 0);
	cmd_out_free(&r);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	const char *tool = argv[1];
	if (cmd_which("tmux", tmux, sizeof(tmux)) == NULL)
		test_skip("tmux is not installed (Debian package tmux)");
	snprintf(sock, sizeof(sock), "sluice-test-%d", (int)getpid());
	unsetenv("TMUX");
	atexit(kill_server);

	sluice_step_t steps[2] = {test_step("ingest", work, 2, 4), test_step("rank", work, 1, 8)};
	sluice_flow_t *f = test_flow("live-test", steps, 2, 256);
	test_start(f);
	for (unsigned i = 0; i < 200; i++) {
		sluice_task_t *t = test_task_u64(f, i);
		CHECK_OK(sluice_task_submit(f, t, 10 * SEC));
		test_wait_task(f, t);
		CHECK_OK(sluice_task_release(f, t));
	}
	char arena[64];
	snprintf(arena, sizeof(arena), "/proc/%d/fd/%d", (int)getpid(), sluice_arena_fd(f->arena));

	/* What the view must show: state, step names, every worker's pid. */
	char pids[3][16];
	const char *want[8] = {"live-test", "running", "ingest", "rank", pids[0], pids[1], pids[2], NULL};
	for (uint32_t k = 0; k < 2; k++)
		snprintf(pids[k], sizeof(pids[k]), " %lld ", (long long)sluice_flow_worker_pid(f, 0, k));
	snprintf(pids[2], sizeof(pids[2]), " %lld ", (long long)sluice_flow_worker_pid(f, 1, 0));

	start_view("live", tool, arena);
	char *screen = await_screen("live", want, "the flow, its steps and worker pids");
	printf("%s", screen);
	unsigned rows = 0;
	for (char *l = screen, *nl; *l != '\0'; l = nl + 1, rows++) {
		nl = strchr(l, '\n');
		if (nl == NULL)
			nl = l + strlen(l) - 1;
		CHECK(nl - l <= 80);
	}
	CHECK(rows <= 24);
	CHECK(strstr(screen, "q quit") != NULL && strstr(screen, "200") != NULL);
	free(screen);

	/* q: exit 0, the normal screen and the terminal's modes back. */
	struct cmd_out r = tmux_run("send-keys", "-t", "live", "q", NULL, NULL, NULL, NULL, NULL, NULL);
	CHECK(r.status == 0);
	cmd_out_free(&r);
	const char *after_q[] = {"EXIT=0", "icanon echo", NULL};
	screen = await_screen("live", after_q, "exit 0 and icanon, echo after q");
	CHECK(strstr(screen, "STEP") == NULL); /* the view's screen is gone */
	free(screen);

	/* ^C: exit 130, restored the same way. */
	start_view("live2", tool, arena);
	const char *view[] = {"ingest", "q quit", NULL};
	free(await_screen("live2", view, "the second view"));
	r = tmux_run("send-keys", "-t", "live2", "C-c", NULL, NULL, NULL, NULL, NULL, NULL);
	CHECK(r.status == 0);
	cmd_out_free(&r);
	const char *after_c[] = {"EXIT=130", "icanon echo", NULL};
	free(await_screen("live2", after_c, "exit 130 and icanon, echo after ^C"));

	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	sluice_flow_destroy(f);
	printf("ok\n");
	return TEST_PASS;
}
