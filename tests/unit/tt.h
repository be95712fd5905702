/* tt: the unit-test harness. Each test binary runs its TEST functions through RUN(), prints one
 * TAP-like line per test ("ok - name" / "not ok - name") and a closing "N passed, N failed";
 * tests/run.py counts the lines. CHECK records a failure and carries on, so one run shows every
 * broken expectation. */
#ifndef TT_H
#define TT_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tt_failures;
static int tt_passed, tt_failed;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                   \
      tt_failures++;                                                                               \
    }                                                                                              \
  } while (0)

#define CHECK_EQ_I64(a, b)                                                                         \
  do {                                                                                             \
    int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                                                  \
    if (a_ != b_) {                                                                                \
      fprintf(stderr, "  %s:%d: %s == %" PRId64 ", expected %s == %" PRId64 "\n", __FILE__,        \
              __LINE__, #a, a_, #b, b_);                                                           \
      tt_failures++;                                                                               \
    }                                                                                              \
  } while (0)

#define CHECK_STR(a, b)                                                                            \
  do {                                                                                             \
    const char *a_ = (a), *b_ = (b);                                                               \
    if (!a_ || !b_ || strcmp(a_, b_)) {                                                            \
      fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,          \
              a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                             \
      tt_failures++;                                                                               \
    }                                                                                              \
  } while (0)

static void tt_run(const char *name, void (*fn)(void)) {
  int before = tt_failures;
  fn();
  if (tt_failures == before) {
    tt_passed++;
    printf("ok - %s\n", name);
  } else {
    tt_failed++;
    printf("not ok - %s\n", name);
  }
  fflush(stdout);
}

#define RUN(fn) tt_run(#fn, fn)

static int tt_finish(void) {
  printf("%d passed, %d failed\n", tt_passed, tt_failed);
  return tt_failed ? 1 : 0;
}

#endif
