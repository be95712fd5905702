/* The clocks. See clock.h. */
#include "clock.h"

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
