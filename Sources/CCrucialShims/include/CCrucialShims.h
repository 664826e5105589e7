#ifndef CCRUCIAL_SHIMS_H
#define CCRUCIAL_SHIMS_H

/// Makes C's stdout (which Swift's print writes to) line-buffered, so a Lambda
/// function's log keeps every line up to a crash. Swift cannot touch the C global
/// `stdout` under strict concurrency.
void crucial_line_buffer_stdout(void);

#include "crucial_plugin.h"
#include "crucial_arena.h"

#endif
