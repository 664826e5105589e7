#ifndef CCRUCIAL_SHIMS_H
#define CCRUCIAL_SHIMS_H

/// Makes C's stdout (which Swift's print writes to) line-buffered, so a Lambda
/// function's log keeps every line up to a crash. Swift cannot touch the C global
/// `stdout` under strict concurrency.
void crucial_line_buffer_stdout(void);

/// From now on, writes the number of each `signo` the process receives, as one byte, to
/// `fd` (the write end of a pipe, the same for every signal). The handler is installed at
/// once (sigaction), so no signal is lost between this call and the first read, as one was
/// with a dispatch source, which libdispatch registers later. Returns sigaction's result.
int crucial_signal_to_pipe(int signo, int fd);

#include "crucial_plugin.h"
#include "crucial_arena.h"

#endif
