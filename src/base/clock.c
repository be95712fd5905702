/* The clocks. See clock.h. */
#include "clock.h"

#include <stdio.h>

static int64_t read_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t pp_clock_real_ns(void) { return read_ns(CLOCK_REALTIME); }
int64_t pp_clock_mono_ns(void) { return read_ns(CLOCK_MONOTONIC); }
int64_t pp_clock_mono_ms(void) { return read_ns(CLOCK_MONOTONIC) / 1000000; }

struct timespec pp_clock_timespec(int64_t ns) {
  return (struct timespec){(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
}

struct timespec pp_clock_real_deadline(int64_t after_ns) { return pp_clock_timespec(read_ns(CLOCK_REALTIME) + after_ns); }

void pp_clock_rfc3339(int64_t ns, char *buf, size_t n) {
  time_t t = (time_t)(ns / 1000000000);
  struct tm tm;
  if (!gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(buf, n, "%lld", (long long)t);
}
