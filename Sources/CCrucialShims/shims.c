#include <stdio.h>
#include "CCrucialShims.h"

void crucial_line_buffer_stdout(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}

#include "crucial_plugin.h"

const char *crucial_toolchain_id(void) {
    return __clang_version__;
}
