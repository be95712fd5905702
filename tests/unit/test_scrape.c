/* Unit tests of the scrape engine (src/collector/scrape.c) that need no peer: a scrape that
 * fails before any request is sent (a credential file that cannot be used) is scheduled again
 * like any failed scrape, the credential files' caps hold at their exact bounds, and a FIFO as
 * a credential file fails the scrape at once instead of blocking the loop. Targets
 * are 127.0.0.1:1, where nothing listens: a scrape that gets as far as a request fails with
 * "connection refused", one that does not fails with the credential's reason. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../src/collector/config.h"
#include "../../src/collector/scrape.h"
#include "tt.h"

static void no_sink(void *ud, const scrape_result *r) {
  (void)ud;
  (void)r;
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_file(const char *path, char fill, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  for (size_t i = 0; i + 1 < len; i++) fputc(fill, f);
  if (len) fputc('\n', f);
  fclose(f);
}

/* Applies yaml to a fresh engine and runs it until every target has scraped `want` times, or
 * for at most `seconds`; returns the targets (json, owned by the caller) or NULL. */
static json_t *run_engine(const char *yaml, json_int_t want, double seconds) {
  pp_err err = {0};
  cfg_config *c = NULL;
  scrape_engine *e = NULL;
  if (cfg_parse(yaml, strlen(yaml), "test.yaml", &c, &err) < 0 || scrape_new(no_sink, NULL, &e, &err) < 0 ||
      scrape_apply(e, c, &err) < 0) {
    fprintf(stderr, "  setup: %s\n", err.msg);
    scrape_free(e);
    cfg_free(c);
    return NULL;
  }
  json_t *t = NULL;
  for (double until = mono_s() + seconds; mono_s() < until;) {
    scrape_run(e, 50, NULL, 0);
    json_decref(t);
    t = scrape_targets_json(e);
    bool all = true;
    size_t i;
    json_t *o;
    json_array_foreach(t, i, o) all = all && json_integer_value(json_object_get(o, "scrapesTotal")) >= want;
    if (all) break;
  }
  scrape_free(e);
  cfg_free(c);
  return t;
}

/* The only job fails on its credential at every start: it must still be started again after
 * its backoff (1 s), not wait for another job's completion to rescan the schedule. */
static void credential_failure_is_rescheduled(void) {
  char dir[] = "/tmp/pp-scrape-XXXXXX";
  if (!mkdtemp(dir)) return;
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "monitors:\n- name: solo\n  endpoint: http://127.0.0.1:1\n  bearer_token_file: %s/missing\n"
           "  heap: {interval_seconds: 1}\n",
           dir);
  json_t *t = run_engine(yaml, 2, 8);
  json_t *o = json_array_get(t, 0);
  CHECK(o != NULL);
  CHECK_EQ_I64(json_integer_value(json_object_get(o, "scrapesTotal")), 2);
  const char *le = json_string_value(json_object_get(o, "lastError"));
  CHECK(le && strstr(le, "bearer_token_file: ") && strstr(le, "/missing: No such file or directory"));
  json_decref(t);
  rmdir(dir);
}

/* bearer_token_file holds at most 16 KiB, basic_auth.password_file 4 KiB (newline included):
 * a file of exactly the cap is used (the scrape gets to its connection), one byte more fails
 * the scrape with the cap named. */
static void credential_caps_at_the_bound(void) {
  char dir[] = "/tmp/pp-scrape-XXXXXX";
  if (!mkdtemp(dir)) return;
  static const struct {
    const char *name, *kind;
    size_t len;
    const char *want;
  } cases[] = {
      {"token-at-cap", "token", 16384, "onnect"},
      {"token-over-cap", "token", 16385, "bytes, over the limit of 16384"},
      {"password-at-cap", "password", 4096, "onnect"},
      {"password-over-cap", "password", 4097, "bytes, over the limit of 4096"},
  };
  char yaml[4096] = "monitors:\n";
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char path[128], line[512];
    snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
    write_file(path, 'x', cases[i].len);
    if (!strcmp(cases[i].kind, "token"))
      snprintf(line, sizeof line, "- name: %s\n  endpoint: http://127.0.0.1:1\n  bearer_token_file: %s\n  heap: {interval_seconds: 1}\n",
               cases[i].name, path);
    else
      snprintf(line, sizeof line,
               "- name: %s\n  endpoint: http://127.0.0.1:1\n  basic_auth: {username: u, password_file: %s}\n"
               "  heap: {interval_seconds: 1}\n",
               cases[i].name, path);
    strncat(yaml, line, sizeof yaml - strlen(yaml) - 1);
  }
  json_t *t = run_engine(yaml, 1, 10);
  CHECK_EQ_I64(json_array_size(t), 4);
  size_t i;
  json_t *o;
  json_array_foreach(t, i, o) {
    const char *mon = json_string_value(json_object_get(o, "monitor"));
    const char *le = json_string_value(json_object_get(o, "lastError"));
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
      if (!mon || strcmp(mon, cases[k].name)) continue;
      bool ok = le && strstr(le, cases[k].want);
      if (!ok) fprintf(stderr, "  %s: lastError \"%s\", expected it to contain \"%s\"\n", mon, le ? le : "", cases[k].want);
      CHECK(ok);
    }
  }
  json_decref(t);
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, cases[k].name);
    unlink(path);
  }
  rmdir(dir);
}

static char fifo_dir[] = "/tmp/pp-scrape-XXXXXX", fifo[128];

/* The engine is stuck in open(): remove the FIFO and its folder, and fail (async-signal-safe). */
static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "  credential_fifo_does_not_block_the_loop: the scrape loop blocked on the FIFO\n";
  unlink(fifo);
  rmdir(fifo_dir);
  if (write(2, msg, sizeof msg - 1) < 0) _exit(1);
  _exit(1);
}

/* A credential "file" that is a FIFO nobody writes: opening it would block the scrape loop (and
 * every target) until a writer came; the scrape fails at once with the reason instead. A
 * regression hangs in open(): the alarm ends the test binary then, which run.py counts as a
 * failure ("exits cleanly"). */
static void credential_fifo_does_not_block_the_loop(void) {
  if (!mkdtemp(fifo_dir)) return;
  char yaml[512];
  snprintf(fifo, sizeof fifo, "%s/token", fifo_dir);
  CHECK(mkfifo(fifo, 0600) == 0);
  signal(SIGALRM, on_alarm);
  snprintf(yaml, sizeof yaml,
           "monitors:\n- name: fifo\n  endpoint: http://127.0.0.1:1\n  bearer_token_file: %s\n"
           "  heap: {interval_seconds: 1}\n",
           fifo);
  alarm(15);
  json_t *t = run_engine(yaml, 1, 8);
  alarm(0);
  const char *le = json_string_value(json_object_get(json_array_get(t, 0), "lastError"));
  CHECK(le && strstr(le, "bearer_token_file: ") && strstr(le, "/token: not a regular file"));
  json_decref(t);
  unlink(fifo);
  rmdir(fifo_dir);
}

/* A config whose job cannot be built (a URL past the limit once the params are escaped) is
 * refused with that failure's own code, also when the caller passes no pp_err: scrape_apply
 * returned err->code, so without err the code was invented (PP_ENOMEM) and a path that left
 * err unset returned 0, "applied". The old job set stays in force. */
static void apply_failure_returns_its_code(void) {
  char yaml[8192];
  char big[2001];
  memset(big, ' ', sizeof big - 1); /* each space is escaped to %20: three times as long */
  big[sizeof big - 1] = '\0';
  snprintf(yaml, sizeof yaml,
           "monitors:\n- name: ok\n  endpoint: http://127.0.0.1:1\n"
           "- name: long\n  endpoint: http://127.0.0.1:1\n  params: {q: \"%s\"}\n", big);
  pp_err err = {0};
  cfg_config *c = NULL, *good = NULL;
  scrape_engine *e = NULL;
  const char *ok_yaml = "monitors:\n- name: ok\n  endpoint: http://127.0.0.1:1\n";
  CHECK(cfg_parse(ok_yaml, strlen(ok_yaml), "ok.yaml", &good, &err) == 0);
  int pr = cfg_parse(yaml, strlen(yaml), "test.yaml", &c, &err);
  CHECK(pr == 0);
  CHECK(scrape_new(no_sink, NULL, &e, &err) == 0);
  if (pr == 0 && e && good) {
    CHECK(scrape_apply(e, good, &err) == 0);
    scrape_counts before;
    scrape_get_counts(e, &before);
    CHECK(scrape_apply(e, c, NULL) == PP_EINVAL);
    pp_err aerr = {0};
    CHECK(scrape_apply(e, c, &aerr) == PP_EINVAL && aerr.code == PP_EINVAL);
    CHECK(strstr(aerr.msg, "URL too long") != NULL);
    scrape_counts after;
    scrape_get_counts(e, &after);
    CHECK(after.jobs == before.jobs && before.jobs > 0);
  }
  scrape_free(e);
  cfg_free(c);
  cfg_free(good);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  RUN(apply_failure_returns_its_code);
  RUN(credential_failure_is_rescheduled);
  RUN(credential_caps_at_the_bound);
  RUN(credential_fifo_does_not_block_the_loop);
  curl_global_cleanup();
  return tt_finish();
}
