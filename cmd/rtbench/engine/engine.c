/*
 * The mass stop's engines (rtbench --mass-engine c): one spawner process
 * forks N engines and stays to reap them. An engine is a forked copy of
 * this small static program: one process, one thread, tens of kB of its
 * own memory, no exec. It blocks SIGTERM and waits on a signalfd and on
 * stdin; on SIGTERM it sleeps the delay and exits 0; at EOF on stdin (its
 * only writer, rtbench, is gone, even by SIGKILL) it exits 1. The
 * spawner prints each engine's pid once its signal mask is in place.
 *
 * Usage: engine N DELAY_MS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void engine(long ms, const sigset_t *term) {
	close(1);
	int sfd = signalfd(-1, term, SFD_CLOEXEC);
	if (sfd < 0)
		_exit(2);
	struct pollfd p[2] = {{0, POLLIN, 0}, {sfd, POLLIN, 0}};
	for (;;) {
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents) {
			struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		if (p[0].revents) {
			char b[64];
			if (read(0, b, sizeof b) <= 0)
				_exit(1);
		}
	}
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: engine N DELAY_MS\n");
		return 2;
	}
	long n = atol(argv[1]), ms = atol(argv[2]);
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	/* Blocked before the fork: an engine never dies of an early SIGTERM. */
	sigprocmask(SIG_BLOCK, &term, NULL);
	for (long i = 0; i < n; i++) {
		pid_t c = fork();
		if (c < 0) {
			perror("fork");
			return 1;
		}
		if (c == 0)
			engine(ms, &term);
		printf("%d\n", (int)c);
		fflush(stdout);
	}
	fclose(stdout);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return 0;
}
