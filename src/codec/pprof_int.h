/* Private helpers shared by the codec's .c files. Not part of the public contract. */
#ifndef PPROF_INT_H
#define PPROF_INT_H

#include "pprof.h"

/* Allocates an empty profile with its arena (budget 0 = unlimited). NULL on ENOMEM. */
pprof_profile *pprof_alloc(size_t budget);

/* Sample value count of every sample equals nsample_type; used by merge/diff. */
int pprof_compatible(const pprof_profile *a, const pprof_profile *b, pp_err *err);

#endif
