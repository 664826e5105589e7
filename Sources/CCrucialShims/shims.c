#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "CCrucialShims.h"

void crucial_line_buffer_stdout(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static volatile sig_atomic_t crucial_signal_fd = -1;

static void crucial_signal_handler(int signo) {
    int saved = errno;
    unsigned char number = (unsigned char)signo;
    ssize_t written = write(crucial_signal_fd, &number, 1);  // async-signal-safe
    (void)written;
    errno = saved;
}

int crucial_signal_to_pipe(int signo, int fd) {
    crucial_signal_fd = fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = crucial_signal_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    return sigaction(signo, &action, NULL);
}

#include "crucial_plugin.h"

const char *crucial_toolchain_id(void) {
    return __clang_version__;
}
