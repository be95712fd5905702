/* selfprof: the collector's own pprof endpoint (self telemetry), on 127.0.0.1:PORT.
 *
 * /debug/pprof/profile?seconds=N (1..60, default 30) samples this process with SIGPROF at
 * 100 Hz, walks each sample's stack by its frame pointers (async-signal-safe; see selfprof.c:
 * frames inside libraries are their leaf only) and answers a gzip pprof CPU profile whose
 * functions are named from the binary's own symbol table (static functions included) and, for
 * shared libraries, from their dynamic symbols. Like Go, a second concurrent CPU profile gets HTTP 500
 * "cpu profiling already in use". /debug/pprof/ is an index. Other Go profile types are not
 * produced: a C program has no goroutines, and heap profiling would need an allocator hook we
 * do not install; they answer 404 with that reason.
 */
#ifndef COLLECTOR_SELFPROF_H
#define COLLECTOR_SELFPROF_H

#include "../base/pp_err.h"

typedef struct selfprof selfprof;

int selfprof_start(const char *addr, int port, selfprof **ret, pp_err *err);
/* Shutdown, first step: a profile in progress ends now and is answered with what it sampled;
 * later requests get 503. The endpoint stays up, so that answer can still be fetched. */
void selfprof_finish(selfprof *s);
/* Stops the endpoint (after selfprof_finish if that was not called) and frees s. NULL is fine. */
void selfprof_stop(selfprof *s);

#endif
