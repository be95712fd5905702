/* Unit tests of src/base: arena budgets and alignment, htab interning and limits, the file
 * reader, durations and sizes, the scrape rules shared by the collector and the operator, UTF-8
 * replacement, the capped buffer's exact bound, the metrics writer's escaping, the clocks. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/base/arena.h"
#include "../../src/base/b64.h"
#include "../../src/base/buf.h"
#include "../../src/base/clock.h"
#include "../../src/base/file.h"
#include "../../src/base/htab.h"
#include "../../src/base/metrics.h"
#include "../../src/base/pp_err.h"
#include "../../src/base/scrapeval.h"
#include "../../src/base/units.h"
#include "../../src/base/utf8.h"
#include "../../src/codec/pprof.h"
#include "tt.h"

static void arena_aligns_and_respects_budget(void) {
  arena a;
  arena_init(&a, 64 * 1024);
  void *p = arena_alloc(&a, 3);
  void *q = arena_alloc(&a, 5);
  CHECK(p && q);
  CHECK(((uintptr_t)p & 15) == 0 && ((uintptr_t)q & 15) == 0);
  CHECK(arena_alloc(&a, 1024 * 1024) == NULL); /* over budget: refused, not grown */
  CHECK(arena_alloc(&a, 100) != NULL);         /* and the arena still works */
  CHECK(arena_calloc(&a, SIZE_MAX / 2, 4) == NULL);
  char *s = arena_strndup(&a, "hello world", 5);
  CHECK_STR(s, "hello");
  arena_free(&a);
  arena_free(&a); /* idempotent */
}

static void arena_large_allocations(void) {
  arena a;
  arena_init(&a, 0);
  for (int i = 0; i < 100; i++) {
    unsigned char *p = arena_alloc(&a, (size_t)i * 10000 + 1);
    CHECK(p != NULL);
    if (p) memset(p, i, (size_t)i * 10000 + 1);
  }
  CHECK(a.used >= 100 * 99 / 2 * 10000);
  arena_free(&a);
}

/* htab_truncate takes back the newest keys: the kept ones are found at their indexes, the
 * forgotten ones are not, and interning them again gives the next indexes (past a growth of the
 * slots, so placing the kept keys again is exercised). */
static void htab_truncate_forgets_the_newest(void) {
  htab t;
  CHECK(htab_init(&t, 4, 0) == 0);
  char k[16];
  uint32_t idx;
  for (int i = 0; i < 100; i++) {
    snprintf(k, sizeof k, "key-%d", i);
    CHECK(htab_intern(&t, k, strlen(k), &idx) == 1);
  }
  size_t before = htab_bytes(&t);
  CHECK(before >= t.nslots * sizeof *t.slots + t.keys_cap);
  htab_truncate(&t, 40);
  CHECK_EQ_I64(t.count, 40);
  for (int i = 0; i < 100; i++) {
    snprintf(k, sizeof k, "key-%d", i);
    CHECK_EQ_I64(htab_find(&t, k, strlen(k)), i < 40 ? i : -1);
  }
  CHECK(htab_intern(&t, "key-70", 6, &idx) == 1);
  CHECK_EQ_I64(idx, 40);
  size_t len;
  const char *got = htab_key(&t, 40, &len);
  CHECK(len == 6 && !memcmp(got, "key-70", 6));
  htab_truncate(&t, 50); /* more than it holds: nothing changes */
  CHECK_EQ_I64(t.count, 41);
  CHECK_EQ_I64(htab_bytes(&t), before);
  htab_free(&t);
}

static void htab_interns_dense_indexes(void) {
  htab t;
  CHECK(htab_init(&t, 4, 0) == 0);
  uint32_t a, b, c;
  CHECK(htab_intern(&t, "alpha", 5, &a) == 1);
  CHECK(htab_intern(&t, "beta", 4, &b) == 1);
  CHECK(htab_intern(&t, "alpha", 5, &c) == 0);
  CHECK_EQ_I64(a, 0);
  CHECK_EQ_I64(b, 1);
  CHECK_EQ_I64(c, 0);
  CHECK(htab_intern(&t, "", 0, &c) == 1);
  CHECK_EQ_I64(htab_find(&t, "beta", 4), 1);
  CHECK_EQ_I64(htab_find(&t, "gamma", 5), -1);
  /* growth keeps every key findable */
  char buf[32];
  for (int i = 0; i < 100000; i++) {
    int n = snprintf(buf, sizeof buf, "key-%d", i);
    uint32_t idx;
    if (htab_intern(&t, buf, (size_t)n, &idx) != 1) {
      CHECK(!"insert failed");
      break;
    }
  }
  CHECK_EQ_I64(t.count, 100003);
  CHECK_EQ_I64(htab_find(&t, "key-77777", 9), 3 + 77777);
  size_t len;
  const char *k = htab_key(&t, 1, &len);
  CHECK(len == 4 && memcmp(k, "beta", 4) == 0);
  htab_free(&t);
}

static void htab_enforces_max_keys(void) {
  htab t;
  CHECK(htab_init(&t, 4, 3) == 0);
  uint32_t i;
  CHECK(htab_intern(&t, "a", 1, &i) == 1);
  CHECK(htab_intern(&t, "b", 1, &i) == 1);
  CHECK(htab_intern(&t, "c", 1, &i) == 1);
  CHECK(htab_intern(&t, "d", 1, &i) == PP_ELIMIT);
  CHECK(htab_intern(&t, "a", 1, &i) == 0); /* existing keys still found at the limit */
  htab_free(&t);
}

static void err_formats_and_prefixes(void) {
  pp_err e = {0};
  CHECK(pp_err_set(&e, PP_EINVAL, "sample %d bad", 7) == PP_EINVAL);
  CHECK_STR(e.msg, "sample 7 bad");
  pp_err_prefix(&e, "file.pb");
  CHECK_STR(e.msg, "file.pb: sample 7 bad");
  CHECK(pp_err_set(NULL, PP_ENOMEM, "x") == PP_ENOMEM);
  CHECK_STR(pp_strerror(PP_ELIMIT), "limit exceeded");
}

static void write_n(const char *path, size_t n) {
  FILE *f = fopen(path, "wb");
  for (size_t i = 0; f && i < n; i++)
    fputc('a' + (int)(i % 26), f);
  if (f) fclose(f);
}

/* The one whole-file reader: its cap, its errors, and what it promises about the buffer. */
static void read_file_caps_and_errors(void) {
  char dir[64], path[128];
  snprintf(dir, sizeof dir, "/tmp/pp-file-test-%d", (int)getpid());
  mkdir(dir, 0700);
  snprintf(path, sizeof path, "%s/f", dir);
  uint8_t *b = NULL;
  size_t n = 0;
  pp_err err = {0};
  write_n(path, 10000);
  CHECK(pp_read_file(path, 10000, &b, &n, &err) == 0); /* exactly the cap: fine */
  CHECK_EQ_I64(n, 10000);
  if (b) CHECK(b[9999] == 'a' + 9999 % 26 && b[10000] == '\0'); /* NUL past the end */
  free(b);
  CHECK(pp_read_file(path, 9999, &b, &n, &err) == PP_ELIMIT); /* one byte over */
  CHECK(strstr(err.msg, path) != NULL && strstr(err.msg, "9999") != NULL);
  write_n(path, 0);
  CHECK(pp_read_file(path, 10, &b, &n, &err) == 0);
  CHECK_EQ_I64(n, 0);
  if (b) CHECK(b[0] == '\0');
  free(b);
  /* a stream with no size: read no further than cap + 1 */
  CHECK(pp_read_file("/dev/zero", 1 << 20, &b, &n, &err) == PP_ELIMIT);
  CHECK(strstr(err.msg, "over the limit") != NULL);
  CHECK(pp_read_file(dir, 100, &b, &n, &err) == PP_EIO); /* a directory */
  CHECK(pp_read_file("/nonexistent/x", 100, &b, &n, &err) == PP_EIO);
  CHECK(strstr(err.msg, "No such file") != NULL);
  /* pprof_decode_file refuses a file far past the decompressed limit before reading it */
  pprof_limits lim;
  pprof_limits_default(&lim);
  lim.max_decompressed = 1000;
  write_n(path, 70000); /* the cap is 1000 + 1000/8 + 64 KiB = 66661 */
  pprof_profile *p = NULL;
  CHECK(pprof_decode_file(path, &lim, &p, &err) == PP_ELIMIT);
  CHECK(strstr(err.msg, "70000 bytes, over the limit of 66661") != NULL);
  CHECK(p == NULL);
  unlink(path);
  rmdir(dir);
}

/* Durations as flags, configs and PprofMonitors write them: Go's compound form included. */
static void durations(void) {
  double d = -1;
  pp_err err = {0};
  CHECK(pp_parse_duration("1h30m", &d, &err) == 0); /* the CRD's pattern accepts it: it was 0 */
  CHECK(d == 5400);
  CHECK(pp_parse_duration("1m30.5s", &d, &err) == 0);
  CHECK(d == 90.5);
  CHECK(pp_parse_duration("1.5h", &d, &err) == 0);
  CHECK(d == 5400);
  CHECK(pp_parse_duration("250ms", &d, &err) == 0);
  CHECK(d == 0.25);
  CHECK(pp_parse_duration("1h0m10s500ms", &d, &err) == 0);
  CHECK(d == 3610.5);
  CHECK(pp_parse_duration("15d", &d, &err) == 0);
  CHECK(d == 15 * 86400);
  CHECK(pp_parse_duration("90", &d, &err) == 0); /* a plain number is seconds */
  CHECK(d == 90);
  CHECK(pp_parse_duration("100000h", &d, &err) == 0);
  CHECK(d == 360000000);
  /* a unit on every number, no signs, nothing after the last unit */
  const char *bad[] = {"", "h", "1h30", "30m1", "1hh", "-1h", "1h-30m", "1 h", "1h ", "1x", "inf", "nan", ".s", "1e400s"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    d = -1;
    err.msg[0] = '\0';
    if (pp_parse_duration(bad[i], &d, &err) != PP_EINVAL || d != -1 || !err.msg[0]) {
      fprintf(stderr, "  accepted duration \"%s\" as %g\n", bad[i], d);
      tt_failures++;
    }
  }
}

/* The scrape rules both programs apply (base/scrapeval.h): one bad case per rule. */
static void scrape_rules(void) {
  pp_err err = {0};
  CHECK(sv_check_path("/internal", &err) == 0);
  CHECK(sv_check_path("/debug/pprof", &err) == 0);
  CHECK(sv_check_path("/x?token=1", &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "/x?token=1") != NULL);
  CHECK(sv_check_path("/x#frag", &err) == PP_EINVAL);
  CHECK(sv_check_path("/a b", &err) == PP_EINVAL);
  CHECK(sv_check_path("/a\tb", &err) == PP_EINVAL);
  CHECK(sv_check_path("/a\x01", &err) == PP_EINVAL);
  CHECK(sv_check_path("internal", &err) == PP_EINVAL); /* not absolute */
  char longp[SV_MAX_URL_LEN + 2];
  memset(longp, 'a', sizeof longp - 1);
  longp[0] = '/';
  longp[sizeof longp - 1] = '\0';
  CHECK(sv_check_path(longp, &err) == PP_EINVAL);
  longp[SV_MAX_URL_LEN] = '\0';
  CHECK(sv_check_path(longp, &err) == 0);
  CHECK(sv_check_endpoint("http://10.0.0.1:6060/internal", &err) == 0);
  CHECK(sv_check_endpoint("https://[fd00::1]:443", &err) == 0);
  CHECK(sv_check_endpoint("http://10.0.0.1:6060/x?y", &err) == PP_EINVAL);
  CHECK(sv_check_endpoint("ftp://10.0.0.1", &err) == PP_EINVAL);
  CHECK(sv_check_seconds(true, 3600, &err) == 0);
  CHECK(sv_check_seconds(true, 3601, &err) == PP_EINVAL); /* over the collector's maximum */
  CHECK(strstr(err.msg, "3601") != NULL && strstr(err.msg, "3600") != NULL);
  CHECK(sv_check_seconds(true, 0, &err) == PP_EINVAL); /* a CPU profile needs a duration */
  CHECK(sv_check_seconds(false, 0, &err) == 0);        /* a snapshot */
  CHECK(sv_check_seconds(false, 1.5, &err) == PP_EINVAL);
  CHECK(sv_check_interval(5400, &err) == 0);
  CHECK(sv_check_interval(360000000, &err) == PP_EINVAL); /* 100000h */
  CHECK(strstr(err.msg, "86400") != NULL);
  CHECK(sv_check_interval(0, &err) == PP_EINVAL); /* "0s" is not "unset" */
  CHECK(sv_check_timeout(0.0005, &err) == PP_EINVAL);
  CHECK(sv_check_timeout(86400, &err) == 0);
  CHECK(sv_check_name("pod-0", &err) == 0);
  CHECK(sv_check_name("", &err) == PP_EINVAL);
  CHECK(sv_check_name("a\nb", &err) == PP_EINVAL);
}

/* base64 against RFC 4648's test vectors, both alphabets on the way in, bad input named. */
static void base64_vectors(void) {
  static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  pp_err err = {0};
  for (int i = 0; i < 7; i++) {
    char *out = NULL, *back = NULL;
    size_t n = 0, m = 0;
    CHECK(pp_b64_encode(plain[i], strlen(plain[i]), &out, &n, &err) == 0);
    CHECK(out && !strcmp(out, coded[i]) && n == strlen(coded[i]));
    CHECK(pp_b64_decode(coded[i], "t", &back, &m, &err) == 0);
    CHECK(back && m == strlen(plain[i]) && !memcmp(back, plain[i], m));
    free(out);
    free(back);
  }
  char *bin = NULL;
  size_t m = 0;
  CHECK(pp_b64_decode("-_8=", "t", &bin, &m, &err) == 0 && m == 2 && (unsigned char)bin[0] == 0xfb && (unsigned char)bin[1] == 0xff);
  free(bin);
  CHECK(pp_b64_decode("Zm9v!", "client-key-data", &bin, &m, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "client-key-data: not base64") != NULL);
}

/* Expected outputs from the Unicode standard (chapter 3, "U+FFFD Substitution of Maximal
 * Subparts", tables 3-8 to 3-11) and Python's bytes.decode("utf-8", "replace"), which follows it. */
static void utf8_replaces_maximal_subparts(void) {
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"plain ascii", "plain ascii"},
      {"caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80"}, /* valid 2- and 4-byte */
      /* table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 */
      {"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
       "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD" "d"},
      {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                        /* overlong: no lead byte */
      {"\xE0\x80\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},       /* overlong 3-byte */
      {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},       /* a surrogate */
      {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* past U+10FFFF */
      {"x\xE2\x82", "x\xEF\xBF\xBD"},                                      /* cut short: one subpart */
      {"\xE2\x82\xAC\xFF", "\xE2\x82\xAC\xEF\xBF\xBD"},                /* euro sign, then FF */
      {"caf\xe9", "caf\xEF\xBF\xBD"},                                      /* Latin-1 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t n = 0;
    char *got = pp_utf8_sanitize(cases[i].in, strlen(cases[i].in), &n);
    CHECK_STR(got, cases[i].want);
    CHECK_EQ_I64(n, strlen(cases[i].want));
    CHECK(pp_utf8_valid(cases[i].in, strlen(cases[i].in)) == !strcmp(cases[i].in, cases[i].want));
    CHECK(got && pp_utf8_valid(got, n));
    free(got);
  }
}

/* The cap is exact: max bytes are accepted, one more is refused whole, and the failure sticks
 * (a later small append that would fit is ignored too), so a writer checks once at the end. */
static void buf_cap_is_exact_and_sticky(void) {
  pp_buf b;
  pp_buf_init(&b, 10);
  CHECK(pp_buf_puts(&b, "0123456"));
  CHECK(pp_buf_printf(&b, "%d", 789)); /* len == max: accepted */
  CHECK(b.len == 10 && !b.failed && !b.over);
  CHECK_STR(b.p, "0123456789");
  CHECK(!pp_buf_put(&b, "x", 1)); /* max + 1: refused */
  CHECK(b.failed && b.over && b.len == 10);
  CHECK_STR(b.p, "0123456789"); /* nothing of the refused append was written */
  CHECK(!pp_buf_put(&b, "", 0));  /* sticky, even for nothing */
  size_t len = 99;
  CHECK(pp_buf_take(&b, &len) == NULL && len == 0); /* a failed buffer gives no bytes */
  CHECK(b.max == 10 && !b.failed && b.len == 0);    /* and is empty, with its cap, afterwards */

  /* one append that alone passes the cap, and one that exactly fills it */
  CHECK(!pp_buf_put(&b, "0123456789a", 11) && b.over && b.len == 0);
  pp_buf_clear(&b);
  CHECK(!b.failed && pp_buf_put(&b, "0123456789", 10) && b.len == 10);
  /* printf past the small-format path (over 512 bytes) obeys the cap the same way */
  pp_buf big;
  pp_buf_init(&big, 600);
  CHECK(pp_buf_printf(&big, "%600s", "x") && big.len == 600);
  CHECK(!pp_buf_printf(&big, "%s", "y") && big.over);
  pp_buf_free(&big);
  pp_buf_init(&big, 600);
  CHECK(!pp_buf_printf(&big, "%601s", "x") && big.over && big.len == 0);
  pp_buf_free(&big);
  char *p = pp_buf_take(&b, &len);
  CHECK(p && len == 10 && p[10] == '\0');
  free(p);
  pp_buf_free(&b);

  /* no cap: grows past the first allocation, NUL-terminated, take hands the bytes over */
  pp_buf_init(&b, 0);
  for (int i = 0; i < 1000; i++) pp_buf_puts(&b, "abc");
  CHECK(!b.failed && b.len == 3000 && b.p[3000] == '\0');
  p = pp_buf_take(&b, &len);
  CHECK(p && len == 3000 && b.p == NULL);
  free(p);
}

/* Label values as the Prometheus text format wants them: \ " and newline escaped, invalid
 * UTF-8 replaced with U+FFFD; HELP/TYPE lines, braces only with labels, value spellings. */
static void metrics_escape_and_lines(void) {
  pp_buf b;
  pp_buf_init(&b, 0);
  pp_metrics_head(&b, "x_total", "counter", "Things.");
  pp_metric_label l[] = {{"monitor", "a\\b\"c\nd"}, {"bad", "ok\xff\xc3(\xe2\x82"}, {"none", NULL}};
  pp_metrics_u64(&b, "x_total", l, 3, 18446744073709551615ull);
  pp_metrics_u64(&b, "x_total", NULL, 0, 0);
  pp_metrics_f64(&b, "y", NULL, 0, 0.1);
  pp_metrics_f64(&b, "y", &(pp_metric_label){"le", "+Inf"}, 1, 1.0 / 0.0);
  pp_metrics_f64(&b, "y", NULL, 0, -1.0 / 0.0);
  pp_metrics_f64(&b, "y", NULL, 0, 0.0 / 0.0);
  pp_metrics_f64(&b, "y", NULL, 0, 1764522000);
  CHECK(!b.failed);
  CHECK_STR(b.p, "# HELP x_total Things.\n# TYPE x_total counter\n"
                 "x_total{monitor=\"a\\\\b\\\"c\\nd\",bad=\"ok\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\",none=\"\"} 18446744073709551615\n"
                 "x_total 0\n"
                 "y 0.10000000000000001\n"
                 "y{le=\"+Inf\"} +Inf\n"
                 "y -Inf\n"
                 "y NaN\n"
                 "y 1764522000\n");
  pp_buf_free(&b);
  /* the writer obeys the buffer's cap like any append */
  pp_buf_init(&b, 8);
  pp_metrics_u64(&b, "long_metric_name", NULL, 0, 1);
  CHECK(b.failed && b.over);
  pp_buf_free(&b);
}

/* The clocks against time(2), and the deadline's split into seconds and nanoseconds. */
static void clock_reads_and_deadlines(void) {
  int64_t before = (int64_t)time(NULL);
  int64_t real = pp_clock_real_ns();
  CHECK(real / 1000000000 >= before && real / 1000000000 <= before + 1);
  int64_t m0 = pp_clock_mono_ns(), ms0 = pp_clock_mono_ms();
  struct timespec pause = {0, 20000000};
  nanosleep(&pause, NULL);
  int64_t m1 = pp_clock_mono_ns(), ms1 = pp_clock_mono_ms();
  CHECK(m1 - m0 >= 20000000 && ms1 - ms0 >= 19);
  struct timespec t = pp_clock_timespec((int64_t)5 * 1000000000 + 999999999);
  CHECK(t.tv_sec == 5 && t.tv_nsec == 999999999);
  int64_t r0 = pp_clock_real_ns();
  struct timespec d = pp_clock_real_deadline((int64_t)1500000000);
  int64_t dn = (int64_t)d.tv_sec * 1000000000 + d.tv_nsec;
  CHECK(d.tv_nsec >= 0 && d.tv_nsec < 1000000000);
  CHECK(dn >= r0 + 1500000000 && dn < r0 + 1500000000 + 1000000000);
}

int main(void) {
  RUN(base64_vectors);
  RUN(arena_aligns_and_respects_budget);
  RUN(arena_large_allocations);
  RUN(htab_interns_dense_indexes);
  RUN(htab_enforces_max_keys);
  RUN(err_formats_and_prefixes);
  RUN(read_file_caps_and_errors);
  RUN(durations);
  RUN(htab_truncate_forgets_the_newest);
  RUN(scrape_rules);
  RUN(utf8_replaces_maximal_subparts);
  RUN(buf_cap_is_exact_and_sticky);
  RUN(metrics_escape_and_lines);
  RUN(clock_reads_and_deadlines);
  return tt_finish();
}
