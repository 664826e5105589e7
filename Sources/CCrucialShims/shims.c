#include <stdio.h>
#include "CCrucialShims.h"

void crucial_line_buffer_stdout(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}
