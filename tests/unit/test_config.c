/* Unit tests of the collector's config parsing and effective settings. */
#include <stdio.h>
#include <unistd.h>

#include "../../src/base/gz.h"
#include "../../src/collector/config.h"
#include "../../src/collector/web.h"
#include "tt.h"

static cfg_config *parse_ok(const char *y) {
  cfg_config *c = NULL;
  pp_err err = {0};
  int r = cfg_parse(y, strlen(y), "t.yaml", &c, &err);
  if (r) fprintf(stderr, "  unexpected error: %s\n", err.msg);
  CHECK(r == 0);
  return c;
}

static const char *parse_err(const char *y) {
  static pp_err err;
  cfg_config *c = NULL;
  memset(&err, 0, sizeof err);
  int r = cfg_parse(y, strlen(y), "t.yaml", &c, &err);
  CHECK(r == PP_EINVAL);
  CHECK(c == NULL);
  return err.msg;
}

static void seed_readme_form(void) {
  cfg_config *c = parse_ok("self_telemetry:\n  pprof_port : 7000\n  interval_seconds : 5\n"
                           "monitors:\n  - name : test\n    endpoint : http://localhost:6060\n"
                           "    profile:\n      seconds : 5\n    allocs:\n      seconds : 5\n");
  if (!c) return;
  CHECK_EQ_I64(c->self_pprof_port, 7000);
  CHECK_EQ_I64(c->self_interval_seconds, 5);
  CHECK_EQ_I64(c->nmonitors, 1);
  CHECK_STR(c->monitors[0].name, "test");
  CHECK(c->monitors[0].types[CFG_CPU].enabled && c->monitors[0].types[CFG_CPU].seconds == 5);
  CHECK(c->monitors[0].types[CFG_ALLOCS].enabled && c->monitors[0].types[CFG_ALLOCS].seconds == 5);
  CHECK(!c->monitors[0].types[CFG_HEAP].enabled);
  CHECK_EQ_I64(c->nwarnings, 0);
  cfg_effective e;
  CHECK(cfg_effective_for(c, &c->monitors[0], CFG_CPU, &e, NULL) == 0);
  CHECK_STR(e.url, "http://localhost:6060/debug/pprof/profile?seconds=5");
  CHECK_EQ_I64(e.interval_ms, 0); /* back to back: continuous CPU coverage */
  CHECK_EQ_I64(e.timeout_ms, 15000);
  CHECK(cfg_effective_for(c, &c->monitors[0], CFG_ALLOCS, &e, NULL) == 0);
  CHECK_STR(e.url, "http://localhost:6060/debug/pprof/allocs?seconds=5");
  cfg_free(c);
}

static void sampling_form_labels_and_settings(void) {
  cfg_config *c = parse_ok(
      "global:\n  interval_seconds: 30\n  headers: {X-Team: core}\n"
      "monitors:\n"
      "- name: api\n  endpoint: https://api:8443/prefix/debug/pprof/\n"
      "  labels: {__k8s_namespace: prod, app: api}\n"
      "  params: {debug: '0', 'a b': 'c&d'}\n"
      "  timeout_seconds: 2\n"
      "  sampling:\n    heap:\n    goroutine: {interval_seconds: 5}\n    profile: {seconds: 20}\n"
      "    trace: {seconds: 1}\n");
  if (!c) return;
  cfg_monitor *m = &c->monitors[0];
  CHECK_EQ_I64(m->nlabels, 2);
  CHECK(m->types[CFG_HEAP].enabled && m->types[CFG_HEAP].seconds == 0);
  CHECK_EQ_I64(c->nwarnings, 1); /* trace */
  if (c->nwarnings)
    CHECK(strstr(c->warnings[0], "t.yaml:14:5") && strstr(c->warnings[0], "not a pprof"));
  cfg_effective e;
  CHECK(cfg_effective_for(c, m, CFG_HEAP, &e, NULL) == 0);
  /* the endpoint already holds the path: not doubled; params escaped */
  CHECK_STR(e.url, "https://api:8443/prefix/debug/pprof/heap?debug=0&a%20b=c%26d");
  CHECK_EQ_I64(e.interval_ms, 30000); /* global */
  CHECK_EQ_I64(e.timeout_ms, 3000);   /* 2 s configured, raised to seconds + 3 */
  CHECK(cfg_effective_for(c, m, CFG_GOROUTINE, &e, NULL) == 0);
  CHECK_EQ_I64(e.interval_ms, 5000); /* per type wins */
  CHECK(cfg_effective_for(c, m, CFG_CPU, &e, NULL) == 0);
  CHECK_EQ_I64(e.timeout_ms, 23000); /* never shorter than seconds + 3 */
  CHECK_STR(CFG_PICK(&e, headers) ? CFG_PICK(&e, headers)[0].key : NULL, "X-Team");
  cfg_free(c);
}

static void defaults_when_no_types(void) {
  cfg_config *c = parse_ok("monitors:\n- name: a\n  endpoint: http://h:1\n");
  if (!c) return;
  const cfg_type *t = c->monitors[0].types;
  CHECK(t[CFG_CPU].enabled && t[CFG_HEAP].enabled && t[CFG_GOROUTINE].enabled &&
        t[CFG_MUTEX].enabled && t[CFG_BLOCK].enabled && !t[CFG_ALLOCS].enabled &&
        !t[CFG_THREADCREATE].enabled);
  cfg_effective e;
  CHECK(cfg_effective_for(c, &c->monitors[0], CFG_HEAP, &e, NULL) == 0);
  CHECK_EQ_I64(e.interval_ms, CFG_SNAPSHOT_INTERVAL_SECONDS * 1000); /* snapshots do not hot-loop */
  CHECK_STR(e.url, "http://h:1/debug/pprof/heap");
  cfg_free(c);
}

static void errors_name_position_and_path(void) {
  const char *m =
      parse_err("monitors:\n- name: a\n  endpoint: http://h:1\n  profile:\n    seconds: -3\n");
  CHECK(strstr(m, "t.yaml:5:14") && strstr(m, "monitors[0].profile.seconds"));
  m = parse_err("monitors:\n- name: a\n  endpoint: ftp://h\n");
  CHECK(strstr(m, "t.yaml:3:13") && strstr(m, "http"));
  m = parse_err("monitors:\n- endpoint: http://h\n");
  CHECK(strstr(m, "needs a name"));
  m = parse_err(
      "monitors:\n- {name: a, endpoint: 'http://h'}\n- {name: a, endpoint: 'http://h'}\n");
  CHECK(strstr(m, "duplicate monitor name"));
  m = parse_err("monitors: [\n");
  CHECK(strstr(m, "YAML"));
  m = parse_err("monitors:\n- name: a\n  endpoint: http://h\n  heap: {seconds: abc}\n");
  CHECK(strstr(m, "not a number"));
  m = parse_err(
      "monitors:\n- name: a\n  endpoint: http://h\n  headers: {X: \"a\\r\\nInjected: 1\"}\n");
  CHECK(strstr(m, "line breaks"));
  m = parse_err("self_telemetry: {pprof_port: 70000}\n");
  CHECK(strstr(m, "self_telemetry.pprof_port"));
}

static void unknown_keys_warn(void) {
  cfg_config *c = parse_ok("bogus: 1\nmonitors:\n- name: a\n  endpoint: http://h\n  colour: red\n");
  if (!c) return;
  CHECK_EQ_I64(c->nwarnings, 2);
  if (c->nwarnings == 2) {
    CHECK(strstr(c->warnings[0], "t.yaml:1:1") && strstr(c->warnings[0], "unknown key"));
    CHECK(strstr(c->warnings[1], "monitors[0].colour"));
  }
  cfg_free(c);
  /* each nested mapping names its unknown keys with their path, and refuses anything else */
  c = parse_ok("self_telemetry: {pprof_port: 7000, colour: red}\nglobal: {colour: red}\nsharding: {colour: red}\n"
               "monitors:\n- name: a\n  endpoint: http://h\n  sampling: {cpu: {}}\n");
  if (!c) return;
  CHECK_EQ_I64(c->nwarnings, 4);
  if (c->nwarnings == 4) {
    CHECK(strstr(c->warnings[0], "self_telemetry.colour") && strstr(c->warnings[0], "unknown key"));
    CHECK(strstr(c->warnings[1], "global.colour") && strstr(c->warnings[1], "unknown key"));
    CHECK(strstr(c->warnings[2], "sharding.colour") && strstr(c->warnings[2], "unknown key"));
    CHECK(strstr(c->warnings[3], "monitors[0].sampling.cpu") && strstr(c->warnings[3], "unknown profile type"));
  }
  CHECK(c->self_pprof_port == 7000 && c->self_interval_seconds == 10);
  cfg_free(c);
  CHECK(strstr(parse_err("self_telemetry: 5\n"), "self_telemetry: expected a mapping") != NULL);
  CHECK(strstr(parse_err("global: [1]\n"), "global: expected a mapping") != NULL);
  CHECK(strstr(parse_err("monitors:\n- {name: a, endpoint: 'http://h', sampling: [heap]}\n"),
               "expected a mapping of profile types") != NULL);
  CHECK(strstr(parse_err("self_telemetry: {pprof_port: 0}\n"), "self_telemetry.pprof_port") != NULL);
}

static void hostile_yaml(void) {
  /* a billion laughs: aliases nest a list 10 deep with 10 copies each */
  char y[4096] = "a: &a [x,x,x,x,x,x,x,x,x,x]\n";
  for (char k = 'b'; k <= 'j'; k++) {
    char line[128];
    snprintf(line, sizeof line, "%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", k, k, k - 1,
             k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1);
    strcat(y, line);
  }
  strcat(y, "monitors: *j\n");
  cfg_config *c = NULL;
  pp_err err = {0};
  CHECK(cfg_parse(y, strlen(y), "t.yaml", &c, &err) ==
        PP_EINVAL); /* a list of lists is not monitors */
  cfg_free(c);
  CHECK(cfg_parse("", 0, "t.yaml", &c, &err) == 0); /* empty: no monitors */
  if (c) CHECK_EQ_I64(c->nmonitors, 0);
  cfg_free(c);
}

/* --web-basic-auth-file and --web-bearer-token-file: a file over 64 KiB is refused (it used to be
 * cut silently), a short token too, and a missing file names itself. */
static void credential_files_limits(void) {
  char path[64];
  snprintf(path, sizeof path, "/tmp/pp-auth-test-%d", (int)getpid());
  FILE *f = fopen(path, "w");
  for (int i = 0; f && i < 70000; i++)
    fputc(i % 64 == 63 ? '\n' : 'x', f);
  if (f) fclose(f);
  web_auth a = {0};
  pp_err err = {0};
  CHECK(web_auth_load_users(path, &a, &err) == PP_ELIMIT);
  CHECK(strstr(err.msg, "over the limit of 65536") != NULL);
  CHECK(web_auth_load_token(path, &a, &err) == PP_ELIMIT);
  f = fopen(path, "w");
  if (f) fputs("short\n", f), fclose(f);
  CHECK(web_auth_load_token(path, &a, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "at least 16") != NULL);
  unlink(path);
  CHECK(web_auth_load_users(path, &a, &err) == PP_EIO);
  CHECK(strstr(err.msg, path) != NULL);
  CHECK(a.users == NULL && a.token == NULL);
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(data, 1, len, f);
    fclose(f);
  }
}

/* A config file may be gzip (the operator writes large ones so into a ConfigMap): read as the
 * same text; a bomb stops at CFG_MAX_TEXT; both limits (4 MiB of file, 64 MiB of text) hold at
 * their exact bounds; corruption is an error naming the file. */
static void gzip_config_files(void) {
  const char *y = "monitors:\n- name: a\n  endpoint: http://10.0.0.1:6060\n- name: b\n  endpoint: http://10.0.0.2:6060\n";
  char path[64];
  snprintf(path, sizeof path, "/tmp/pp-cfg-gz-%d", (int)getpid());
  uint8_t *gz = NULL;
  size_t gzlen = 0;
  pp_err err = {0};
  CHECK(pp_gzip(y, strlen(y), 9, &gz, &gzlen, &err) == 0);
  write_file(path, gz, gzlen);
  char *text = NULL;
  size_t n = 0;
  CHECK(cfg_read_file(path, &text, &n, &err) == 0);
  CHECK(text && n == strlen(y) && !strcmp(text, y));
  free(text);
  cfg_config *c = NULL;
  CHECK(cfg_load_file(path, &c, &err) == 0);
  if (c) CHECK_EQ_I64(c->nmonitors, 2);
  cfg_free(c);
  free(gz);
  /* 65 MiB of spaces: 64 KiB gzipped, past CFG_MAX_TEXT once inflated */
  size_t big = CFG_MAX_TEXT + ((size_t)1 << 20);
  char *spaces = malloc(big);
  if (spaces) memset(spaces, ' ', big);
  CHECK(spaces && pp_gzip(spaces, big, 9, &gz, &gzlen, &err) == 0);
  free(spaces);
  CHECK(gzlen < CFG_MAX_BYTES);
  write_file(path, gz, gzlen);
  free(gz);
  CHECK(cfg_load_file(path, &c, &err) == PP_ELIMIT);
  CHECK(strstr(err.msg, path) != NULL && strstr(err.msg, "exceeds the limit") != NULL);
  /* the bound itself, as docs/config.md gives it: exactly 64 MiB once inflated are read, one
   * byte more is refused */
  for (size_t extra = 0; extra <= 1; extra++) {
    size_t len = ((size_t)64 << 20) + extra;
    spaces = malloc(len);
    if (spaces) memset(spaces, ' ', len);
    gz = NULL;
    CHECK(spaces && pp_gzip(spaces, len, 1, &gz, &gzlen, &err) == 0);
    free(spaces);
    CHECK(gz && gzlen < CFG_MAX_BYTES);
    if (gz) write_file(path, gz, gzlen);
    free(gz);
    text = NULL;
    int r = cfg_read_file(path, &text, &n, &err);
    if (extra == 0) CHECK(r == 0 && text && n == len && text[n] == '\0');
    else CHECK(r == PP_ELIMIT && strstr(err.msg, path) != NULL);
    free(text);
  }
  /* a plain file: at most 4 MiB (docs/config.md), read whole up to there */
  for (size_t extra = 0; extra <= 1; extra++) {
    size_t len = ((size_t)4 << 20) + extra;
    spaces = malloc(len);
    if (spaces) memset(spaces, ' ', len);
    if (spaces) write_file(path, spaces, len);
    free(spaces);
    text = NULL;
    int r = cfg_read_file(path, &text, &n, &err);
    if (extra == 0) CHECK(r == 0 && text && n == len);
    else CHECK(r == PP_ELIMIT && strstr(err.msg, path) != NULL);
    free(text);
  }
  write_file(path, "\x1f\x8b\x08\x00garbage", 12);
  CHECK(cfg_load_file(path, &c, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, path) != NULL);
  unlink(path);
}

/* sharding: the count in effect before and after change_at, pins taken modulo the count,
 * "all" on every shard, a shard past the count scrapes only those; the hash is FNV-1a 64 of the
 * endpoint's host:port (expected values from an independent implementation, in Python). */
static void sharding(void) {
  CHECK_EQ_I64(sv_shard_of("http://127.0.0.1:8080/debug", 3), 0);
  CHECK_EQ_I64(sv_shard_of("https://127.0.0.1:8080", 5), 2);
  CHECK_EQ_I64(sv_shard_of("http://10.0.0.7:6060", 7), 4);
  CHECK_EQ_I64(sv_shard_of("http://pod-a.ns.svc:6060/x/y", 5), 3);
  CHECK_EQ_I64(sv_shard_of("http://pod-a.ns.svc:6060", 1), 0);
  cfg_config *c = parse_ok("sharding: {shards: 3, previous_shards: 2, change_at: 1000}\nmonitors:\n"
                           "- {name: a, endpoint: 'http://127.0.0.1:8080'}\n"
                           "- {name: b, endpoint: 'http://10.0.0.7:6060'}\n"
                           "- {name: c, endpoint: 'http://pod-a.ns.svc:6060', shard: 4}\n"
                           "- {name: d, endpoint: 'http://pod-a.ns.svc:6060', shard: all}\n");
  if (!c) return;
  CHECK_EQ_I64(cfg_shards_at(c, 999), 2);
  CHECK_EQ_I64(cfg_shards_at(c, 1000), 3);
  CHECK_EQ_I64(c->monitors[2].shard, 4);
  CHECK_EQ_I64(c->monitors[3].shard, CFG_SHARD_ALL);
  /* a: 0 of 3, 127.0.0.1:8080 is 0 mod 2 too; b: 1 of 3; c: 4 mod 3 = 1; d: all */
  CHECK(cfg_on_shard(&c->monitors[0], 0, 3) && !cfg_on_shard(&c->monitors[0], 1, 3));
  CHECK(cfg_on_shard(&c->monitors[1], 1, 3) && !cfg_on_shard(&c->monitors[1], 0, 3));
  CHECK(cfg_on_shard(&c->monitors[2], 1, 3) && cfg_on_shard(&c->monitors[2], 0, 2));
  for (int s = 0; s < 5; s++) CHECK(cfg_on_shard(&c->monitors[3], s, 3));
  CHECK(!cfg_on_shard(&c->monitors[0], 3, 3) && !cfg_on_shard(&c->monitors[2], 4, 3));
  /* shard 1 before the change (2 shards): b (1 of 2) and d; after: b, c and d */
  CHECK_EQ_I64(cfg_keep_shard(c, 1, 999), 2);
  CHECK_EQ_I64(c->nmonitors, 2);
  CHECK(!strcmp(c->monitors[0].name, "b") && !strcmp(c->monitors[1].name, "d"));
  cfg_free(c);
  c = parse_ok("sharding: {shards: 3, previous_shards: 2, change_at: 1000}\nmonitors:\n"
               "- {name: b, endpoint: 'http://10.0.0.7:6060'}\n"
               "- {name: c, endpoint: 'http://pod-a.ns.svc:6060', shard: 4}\n");
  if (c) CHECK_EQ_I64(cfg_keep_shard(c, 1, 1000), 0);
  cfg_free(c);
  c = parse_ok("monitors:\n- {name: a, endpoint: 'http://h:1'}\n");
  if (c) CHECK(c->shards == 1 && c->monitors[0].shard == CFG_SHARD_HASH && cfg_keep_shard(c, 0, 0) == 0);
  cfg_free(c);
  CHECK(strstr(parse_err("sharding: {shards: 0}\n"), "sharding.shards") != NULL);
  CHECK(strstr(parse_err("sharding: {shards: 1001}\n"), "outside 1..1000") != NULL);
  CHECK(strstr(parse_err("sharding: {shards: 2, previous_shards: 3}\n"), "go together") != NULL);
  CHECK(strstr(parse_err("sharding: {shards: 2, change_at: 5}\n"), "go together") != NULL);
  CHECK(strstr(parse_err("sharding: [3]\n"), "expected a mapping") != NULL);
  CHECK(strstr(parse_err("monitors:\n- {name: a, endpoint: 'http://h:1', shard: -1}\n"), "monitors[0].shard") != NULL);
  CHECK(strstr(parse_err("monitors:\n- {name: a, endpoint: 'http://h:1', shard: every}\n"), "not a number") != NULL);
  CHECK(strstr(parse_err("monitors:\n- {name: a, endpoint: 'http://h:1', shard: 1.5}\n"), "whole number") != NULL);
}

/* query.peers: the shards whose profiles merges add (web_fanout.h) */
static void query_peers(void) {
  cfg_config *c = parse_ok("query:\n  peers: ['http://shard-1:8989', 'https://10.0.0.7:8989/pprof/']\n");
  if (c) CHECK(c->npeers == 2 && !strcmp(c->peers[0], "http://shard-1:8989") && !strcmp(c->peers[1], "https://10.0.0.7:8989/pprof/"));
  cfg_free(c);
  c = parse_ok("query: {peers: null}\n");
  if (c) CHECK(c->npeers == 0);
  cfg_free(c);
  c = parse_ok("{}\n");
  if (c) CHECK(c->npeers == 0 && c->peers == NULL);
  cfg_free(c);
  CHECK(strstr(parse_err("query: {peers: ['ftp://x']}\n"), "query.peers[0]") != NULL);
  CHECK(strstr(parse_err("query: {peers: ['http://a:1', 'http://']}\n"), "query.peers[1]") != NULL);
  CHECK(strstr(parse_err("query: {peers: ['http://a:1/?x']}\n"), "without spaces, ? or #") != NULL);
  CHECK(strstr(parse_err("query: {peers: 'http://a:1'}\n"), "expected a list of URLs") != NULL);
  CHECK(strstr(parse_err("query: [1]\n"), "expected a mapping (peers)") != NULL);
  char big[200 * 24 + 64];
  size_t n = (size_t)snprintf(big, sizeof big, "query:\n  peers:\n");
  for (int i = 0; i < 129; i++) n += (size_t)snprintf(big + n, sizeof big - n, "  - 'http://h:%d'\n", 1000 + i);
  CHECK(strstr(parse_err(big), "more than 128 peers") != NULL);
}

int main(void) {
  RUN(seed_readme_form);
  RUN(sampling_form_labels_and_settings);
  RUN(defaults_when_no_types);
  RUN(errors_name_position_and_path);
  RUN(unknown_keys_warn);
  RUN(hostile_yaml);
  RUN(credential_files_limits);
  RUN(gzip_config_files);
  RUN(sharding);
  RUN(query_peers);
  return tt_finish();
}
