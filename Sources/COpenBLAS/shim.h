// OpenBLAS's CBLAS (Debian's libopenblas-dev): the apps' compute kernels.
#include <cblas.h>
