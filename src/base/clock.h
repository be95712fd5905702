/* clock: the project's one reading of the clocks.
 *
 * pp_clock_real_ns is wall time (CLOCK_REALTIME, ns since the Unix epoch): for timestamps that
 * leave the process (stored profiles, logs, Kubernetes fields, metrics). pp_clock_mono_ns/_ms
 * are CLOCK_MONOTONIC: for intervals, schedules and deadlines, which must not jump when the
 * wall clock is set. pp_clock_timespec turns an absolute time in ns into a timespec, and
 * pp_clock_real_deadline gives the absolute CLOCK_REALTIME timespec `after_ns` from now, as
 * pthread_cond_timedwait wants it for a condition variable with the default clock.
 *
 * Every function but pp_clock_rfc3339 only calls clock_gettime (async-signal-safe) and
 * arithmetic, so they may be used from a signal handler (selfprof's SIGPROF handler relies on
 * it). Thread-safe.
 */
#ifndef PP_CLOCK_H
#define PP_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

int64_t pp_clock_real_ns(void);
int64_t pp_clock_mono_ns(void);
int64_t pp_clock_mono_ms(void);
struct timespec pp_clock_timespec(int64_t ns);
struct timespec pp_clock_real_deadline(int64_t after_ns);
/* A wall time in ns as RFC 3339 in UTC, whole seconds ("2006-01-02T15:04:05Z"), as answers,
 * statuses and tools show times; n >= 21 holds it (the seconds as digits if it cannot be). */
void pp_clock_rfc3339(int64_t ns, char *buf, size_t n);

#endif
