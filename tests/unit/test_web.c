/* Unit tests of the web server's parts that need no HTTP: text made valid (web_json), the
 * answer cache, cache keys, the query pool (slots, queue, shared runs, deadlines), the
 * credential checks (cache, per-address limits) and how a merge takes the history only the
 * object store holds (web_api against a real store, the bucket's hooks played by the test). Expected values come from the standards
 * (Unicode's tables of maximal subparts, RFC 8259's escapes) and from counting. */
#include <crypt.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "../../src/base/file.h"
#include "../../src/collector/bucket.h"
#include "../../src/collector/store.h"
#include "../../src/collector/web_api.h"
#include "../../src/collector/web_auth.h"
#include "../../src/collector/web_cache.h"
#include "../../src/collector/web_json.h"
#include "../../src/collector/web_work.h"
#include "tt.h"

static char dir_[256];

static char *json_of(const char *s, size_t n) {
  pp_buf b;
  pp_buf_init(&b, 0);
  web_json_strn(&b, s, n);
  return pp_buf_take(&b, NULL);
}

/* RFC 8259: quote, backslash and control characters escaped; valid UTF-8 kept as it is; every
 * maximal invalid subpart one U+FFFD (EF BF BD; which subparts: test_base's utf8 case). */
static void json_strings(void) {
  const char s[] = "a\"b\\c\n\x01\xc3\xa9\xf0\x9f\x98\x80";
  char *j = json_of(s, sizeof s - 1);
  CHECK_STR(j, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\xf0\x9f\x98\x80\"");
  free(j);
  const char bad[] = "x\xff\xe2\x82y\xed\xa0\x80";
  j = json_of(bad, sizeof bad - 1);
  CHECK_STR(j, "\"x\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
  free(j);
  pp_buf b;
  pp_buf_init(&b, 0);
  web_json_text(&b, "<a\xff&'\">", 7, 1);
  CHECK_STR(b.p, "&lt;a\xef\xbf\xbd&amp;&#39;&quot;&gt;");
  pp_buf_free(&b);
  /* the store's labels with invalid bytes in a value still come out as an object */
  pp_buf_init(&b, 0);
  web_json_labels(&b, "{\"monitor\":\"m\xff\",\"pod\":\"p\"}");
  CHECK_STR(b.p, "{\"monitor\":\"m\xef\xbf\xbd\",\"pod\":\"p\"}");
  pp_buf_free(&b);
  pp_buf_init(&b, 0);
  web_json_labels(&b, "not json");
  CHECK_STR(b.p, "{}");
  pp_buf_free(&b);
}

static void buffer_cap(void) {
  pp_buf b;
  pp_buf_init(&b, 10);
  pp_buf_puts(&b, "0123456789");
  CHECK(!b.failed);
  pp_buf_puts(&b, "x");
  CHECK(b.failed && b.over);
  pp_buf_puts(&b, "");
  size_t n = 1;
  CHECK(pp_buf_take(&b, &n) == NULL && n == 0);
  pp_buf_free(&b);
}

static void cache_keys(void) {
  web_params a = {.k = {"type", "name", "from"}, .v = {"cpu", "x", "1"}, .n = 3};
  web_params b = {.k = {"from", "type", "name"}, .v = {"1", "cpu", "x"}, .n = 3};
  web_params c = {.k = {"type", "name"}, .v = {"cpu", "x1:from"}, .n = 2}; /* separators inside a value */
  char *ka = web_work_key("7+0", "/api/v1/render", &a), *kb = web_work_key("7+0", "/api/v1/render", &b);
  char *kc = web_work_key("7+0", "/api/v1/render", &c), *kd = web_work_key("8+0", "/api/v1/render", &a);
  char *ke = web_work_key("7+0", "/api/v1/timeline", &a);
  CHECK(ka && kb && kc && kd && ke);
  if (ka && kb && kc && kd && ke) {
    CHECK_STR(ka, kb);
    CHECK(strcmp(ka, kc) && strcmp(ka, kd) && strcmp(ka, ke));
  }
  free(ka), free(kb), free(kc), free(kd), free(ke);
}

static web_resp answer_of(const char *text) {
  web_resp r;
  memset(&r, 0, sizeof r);
  pp_buf b;
  pp_buf_init(&b, 0);
  pp_buf_puts(&b, text);
  web_resp_buf(&r, 200, "text/plain", &b);
  pp_buf_free(&b);
  return r;
}

static void cache_lru(void) {
  /* room for about ten entries of a 1 KB body (max/8 still takes one) */
  web_cache *c = web_cache_new(16000);
  char body[1000];
  memset(body, 'x', sizeof body - 1);
  body[sizeof body - 1] = '\0';
  char key[32];
  for (int i = 0; i < 20; i++) {
    snprintf(key, sizeof key, "k%d", i);
    web_resp r = answer_of(body);
    web_cache_put(c, key, &r);
    web_resp_release(&r);
    web_resp got;
    if (i >= 5) {
      /* k5 stays: used at every put */
      CHECK(web_cache_get(c, "k5", &got));
      web_resp_release(&got);
    }
  }
  web_cache_stats st;
  web_cache_get_stats(c, &st);
  CHECK(st.bytes <= st.max_bytes && st.evictions > 0 && st.entries < 20);
  web_resp got;
  CHECK(!web_cache_get(c, "k0", &got)); /* the least recently used went first */
  CHECK(web_cache_get(c, "k19", &got) && got.body && !strcmp(got.body->data, body));
  web_resp_release(&got);
  uint64_t hits = st.hits + 1;
  CHECK(web_cache_peek(c, "k19", &got)); /* a second look is not counted */
  web_resp_release(&got);
  web_cache_get_stats(c, &st);
  CHECK_EQ_I64(st.hits, hits);
  /* a body over an eighth of the bound is not kept */
  char big[8192];
  memset(big, 'y', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  web_resp r = answer_of(big);
  web_cache_put(c, "big", &r);
  web_resp_release(&r);
  CHECK(!web_cache_get(c, "big", &got));
  web_cache_free(c);
}

/* ---- the pool, with jobs that wait for a gate --------------------------------------------------- */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open, jobs_started, woken;
static void *woken_conn[64];

static void gated_job(void *arg, size_t budget, web_resp *out) {
  (void)budget;
  pthread_mutex_lock(&gate_mu);
  jobs_started++;
  pthread_cond_broadcast(&gate_cv);
  while (!gate_open) pthread_cond_wait(&gate_cv, &gate_mu);
  pthread_mutex_unlock(&gate_mu);
  *out = answer_of((const char *)arg);
}

static void record_wake(void *conn) {
  pthread_mutex_lock(&gate_mu);
  woken_conn[woken++ % 64] = conn;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mu);
}

static bool wait_until(int *what, int n) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 10;
  pthread_mutex_lock(&gate_mu);
  int r = 0;
  while (*what < n && r == 0) r = pthread_cond_timedwait(&gate_cv, &gate_mu, &ts);
  bool ok = *what >= n;
  pthread_mutex_unlock(&gate_mu);
  return ok;
}

static void pool_slots_queue_sharing_deadlines(void) {
  web_cache *cache = web_cache_new(1 << 20);
  web_work_opts o = {.slots = 1, .queue = 1, .deadline_ns = 300000000, .budget = 1 << 20, .cache = cache, .wake = record_wake};
  web_work *w;
  CHECK(web_work_start(&o, &w, NULL) == 0);
  int conn[8];
  web_resp now;
  int64_t t0 = pp_clock_mono_ns();
  /* A runs (one slot), B waits (queue of one), C is refused at once with Retry-After */
  web_ticket *a = web_work_submit(w, WEB_LANE_QUERY, "A", gated_job, "answer A", NULL, &conn[0], t0 + 60000000000LL, &now);
  CHECK(a != NULL && wait_until(&jobs_started, 1));
  /* (B arrived 0.1 s earlier, so its deadline comes before its time in the queue is up) */
  web_ticket *b = web_work_submit(w, WEB_LANE_QUERY, "B", gated_job, "answer B", NULL, &conn[1], t0 - 100000000, &now);
  web_ticket *c = web_work_submit(w, WEB_LANE_QUERY, "C", gated_job, "answer C", NULL, &conn[2], t0, &now);
  CHECK(b != NULL && c == NULL && now.status == 503 && now.retry_after >= 1);
  /* no run finished yet (1 s a job) x (B queued + A running + C itself) / 1 slot (web_work.h) */
  CHECK_EQ_I64(now.retry_after, 3);
  web_resp_release(&now);
  /* the same query as A joins its run instead of queueing (the queue is full) */
  web_ticket *a2 = web_work_submit(w, WEB_LANE_QUERY, "A", gated_job, "answer A again", NULL, &conn[3], t0 + 60000000000LL, &now);
  CHECK(a2 != NULL);
  /* B's deadline (0.3 s) passes while it waits: 503 timeout, its connection woken */
  CHECK(wait_until(&woken, 1));
  CHECK(woken_conn[0] == &conn[1]);
  web_resp rb;
  web_work_take(w, b, &rb);
  CHECK(rb.status == 503 && rb.retry_after >= 1 && rb.body && strstr(rb.body->data, "\"timeout\""));
  web_resp_release(&rb);
  /* A finishes: both of its requests get its answer, one run, and the cache has it */
  pthread_mutex_lock(&gate_mu);
  gate_open = 1;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mu);
  CHECK(wait_until(&woken, 3));
  web_resp ra, ra2;
  web_work_take(w, a, &ra);
  web_work_take(w, a2, &ra2);
  CHECK(ra.status == 200 && ra2.status == 200 && ra.body == ra2.body && !strcmp(ra.body->data, "answer A"));
  web_resp_release(&ra);
  web_resp_release(&ra2);
  web_work_stats st;
  web_work_get_stats(w, &st);
  CHECK_EQ_I64(st.ran, 1);
  CHECK_EQ_I64(st.shared, 1);
  CHECK_EQ_I64(st.refused_full, 1);
  CHECK_EQ_I64(st.timeouts, 1);
  CHECK_EQ_I64(st.peak_running, 1);
  CHECK_EQ_I64(jobs_started, 1);
  /* the next A is answered from the cache, at once */
  CHECK(web_work_submit(w, WEB_LANE_QUERY, "A", gated_job, "unused", NULL, &conn[4], pp_clock_mono_ns(), &now) == NULL);
  CHECK(now.status == 200 && now.body && !strcmp(now.body->data, "answer A"));
  web_resp_release(&now);
  web_work_stop(w);
  web_work_free(w);
  web_cache_free(cache);
}

/* A full queue of 100 behind one running job: the refusal's Retry-After is capped at
 * WEB_RETRY_MAX_S (the estimate is 102 s); what waits past queue_wait is refused 503 "unavailable"
 * and woken, long before its deadline. */
static void pool_retry_cap_and_queue_wait(void) {
  pthread_mutex_lock(&gate_mu);
  gate_open = jobs_started = woken = 0;
  pthread_mutex_unlock(&gate_mu);
  enum { QUEUE = 100 };
  web_work_opts o = {.slots = 1, .queue = QUEUE, .queue_wait_ns = 300000000, .deadline_ns = 60000000000LL,
                     .budget = 1 << 20, .wake = record_wake};
  web_work *w;
  CHECK(web_work_start(&o, &w, NULL) == 0);
  static int conn[QUEUE + 2];
  web_ticket *t[QUEUE + 1];
  web_resp now;
  int64_t t0 = pp_clock_mono_ns();
  t[0] = web_work_submit(w, WEB_LANE_QUERY, NULL, gated_job, "runs", NULL, &conn[0], t0, &now);
  CHECK(t[0] != NULL && wait_until(&jobs_started, 1));
  int queued = 0;
  for (int i = 1; i <= QUEUE; i++) {
    t[i] = web_work_submit(w, WEB_LANE_QUERY, NULL, gated_job, "waits", NULL, &conn[i], t0, &now);
    queued += t[i] != NULL;
  }
  CHECK_EQ_I64(queued, QUEUE);
  CHECK(web_work_submit(w, WEB_LANE_QUERY, NULL, gated_job, "refused", NULL, &conn[QUEUE + 1], t0, &now) == NULL);
  CHECK(now.status == 503);
  CHECK_EQ_I64(now.retry_after, WEB_RETRY_MAX_S);
  web_resp_release(&now);
  /* queue_wait (0.3 s) passes: every waiting one is refused and woken, the running one is not */
  CHECK(wait_until(&woken, QUEUE));
  CHECK(pp_clock_mono_ns() - t0 < 5000000000LL);
  int refused = 0;
  for (int i = 1; i <= QUEUE; i++) {
    web_resp r;
    web_work_take(w, t[i], &r);
    refused += r.status == 503 && r.retry_after >= 1 && r.body && strstr(r.body->data, "\"unavailable\"") != NULL;
    web_resp_release(&r);
  }
  CHECK_EQ_I64(refused, QUEUE);
  web_work_stats st;
  web_work_get_stats(w, &st);
  CHECK_EQ_I64(st.refused_wait, QUEUE);
  CHECK_EQ_I64(st.refused_full, 1);
  CHECK_EQ_I64(st.running, 1);
  pthread_mutex_lock(&gate_mu);
  gate_open = 1;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mu);
  CHECK(wait_until(&woken, QUEUE + 1));
  web_resp r0;
  web_work_take(w, t[0], &r0);
  CHECK(r0.status == 200 && r0.body && !strcmp(r0.body->data, "runs"));
  web_resp_release(&r0);
  web_work_stop(w);
  web_work_free(w);
}

/* ---- credentials ------------------------------------------------------------------------------- */

static void auth_cache_and_limits(void) {
  struct crypt_data cd;
  memset(&cd, 0, sizeof cd);
  const char *salt = crypt_gensalt_rn("$2b$", 4, NULL, 0, cd.output, sizeof cd.output);
  CHECK(salt != NULL);
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  snprintf(setting, sizeof setting, "%s", salt ? salt : "");
  const char *hash = crypt_r("right", setting, &cd);
  char line[256];
  snprintf(line, sizeof line, "bob:%s", hash ? hash : "");
  char *users[] = {line};
  web_auth cfg = {.users = users, .nusers = 1};
  web_auth_state *s = web_auth_state_new(&cfg);
  const char *hdr = "Basic x"; /* only its scheme matters here: user and pass come decoded */
  unsigned retry = 0;
  /* wrong guesses from one address: each needs hashing until the burst is spent, then 429 */
  int verified = 0, limited = 0;
  for (int i = 0; i < WEB_AUTH_BURST + 3; i++) {
    web_auth_result r = web_auth_check(s, hdr, "bob", "wrong", "10.0.0.1", &retry);
    if (r == WEB_AUTH_VERIFY) {
      verified++;
      CHECK(web_auth_verify(s, "bob", "wrong", "10.0.0.1") == WEB_AUTH_DENIED);
    } else if (r == WEB_AUTH_LIMITED) {
      limited++;
    }
  }
  CHECK_EQ_I64(verified, WEB_AUTH_BURST);
  CHECK(limited == 3 && retry >= 1 && retry <= WEB_AUTH_REFILL_SECONDS + 1);
  /* an unknown user is refused without hashing, and counts as a failure */
  CHECK(web_auth_check(s, hdr, "eve", "x", "10.0.0.2", &retry) == WEB_AUTH_DENIED);
  /* the right password from another address: hashed once, then cached, also from the limited one */
  CHECK(web_auth_check(s, hdr, "bob", "right", "10.0.0.3", &retry) == WEB_AUTH_VERIFY);
  CHECK(web_auth_verify(s, "bob", "right", "10.0.0.3") == WEB_AUTH_OK);
  for (int i = 0; i < 5; i++) CHECK(web_auth_check(s, hdr, "bob", "right", "10.0.0.3", &retry) == WEB_AUTH_OK);
  CHECK(web_auth_check(s, hdr, "bob", "right", "10.0.0.1", &retry) == WEB_AUTH_OK);
  /* no credentials at all: 401, no token taken */
  CHECK(web_auth_check(s, NULL, NULL, NULL, "10.0.0.4", &retry) == WEB_AUTH_DENIED);
  web_auth_counts n;
  web_auth_get_counts(s, &n);
  CHECK_EQ_I64(n.verifications, WEB_AUTH_BURST + 1);
  CHECK_EQ_I64(n.limited, 3);
  CHECK_EQ_I64(n.cache_hits, 6);
  web_auth_state_free(s);
  /* a bearer token: compared at once, wrong ones limited like passwords */
  web_auth tcfg = {.token = "0123456789abcdef-token"};
  s = web_auth_state_new(&tcfg);
  CHECK(web_auth_check(s, "Bearer 0123456789abcdef-token", NULL, NULL, "10.0.0.5", &retry) == WEB_AUTH_OK);
  for (int i = 0; i < WEB_AUTH_BURST; i++) CHECK(web_auth_check(s, "Bearer nope", NULL, NULL, "10.0.0.5", &retry) == WEB_AUTH_DENIED);
  CHECK(web_auth_check(s, "Bearer nope", NULL, NULL, "10.0.0.5", &retry) == WEB_AUTH_LIMITED);
  web_auth_state_free(s);
}

/* ---- the bucket's part of a merge ---- */

/* The hooks a collector with an object store gives (web.h), played: what the bucket alone holds
 * (a range that meets every window) and the answer its merge gives each call. */
typedef struct fake_bucket {
  store *st;
  int answer;               /* bucket_merged's result */
  unsigned calls;           /* bucket_merged's calls */
  upload_bucket_only held;  /* as bucket_merged lists it */
  int64_t ends[4];          /* bucket_points: its rows' end times (0 ends the list), copies of the
                               store's first row otherwise */
  int64_t retire[3];        /* bucket_merged's call k runs local retention at retire[k] (0: not),
                               as a deletion after the listing would (avg, latest) */
  bool each_raced;          /* bucket_each_profile: the cache changed since the listing */
  unsigned each_calls;
  bool parts;               /* bucket_merged (answer 0) gives the store's series parts (after any
                               retention), named {"monitor":"bucket"}: a series of its own */
} fake_bucket;

static void fake_only(void *ud, bool now, upload_bucket_only *ret, uint64_t *ret_seq) {
  fake_bucket *f = ud;
  (void)now;
  *ret = f->held;
  *ret_seq = store_deletions(f->st);
}

/* A hook's call counted, the range it lists given, and its answer (with a reason when it fails) */
static int fake_answer(fake_bucket *f, upload_bucket_only *held, pp_err *err) {
  f->calls++;
  *held = f->held;
  if (f->answer == BUCKET_RACED) pp_err_set(err, PP_EIO, "local retention deleted segments while the answer read the store (ask again)");
  else if (f->answer < 0) pp_err_set(err, f->answer, "the bucket's fake failure %d", f->answer);
  return f->answer;
}

static int fake_merged(void *ud, uint64_t seq, const store_matcher *m, size_t nm, const char *type, int64_t from,
                       int64_t to, store_agg agg, size_t max_records, size_t budget, pprof_profile **ret,
                       size_t *ret_count, store_series_part **parts, size_t *nparts, store_merge_info *info,
                       upload_bucket_only *held, pp_err *err) {
  fake_bucket *f = ud;
  (void)seq, (void)m, (void)nm, (void)type, (void)from, (void)to, (void)agg, (void)max_records, (void)budget;
  (void)ret, (void)ret_count;
  *parts = NULL, *nparts = 0;
  if (f->calls < 3 && f->retire[f->calls]) CHECK(store_retention(f->st, f->retire[f->calls], NULL) == 1);
  int r = fake_answer(f, held, err);
  if (r || !f->parts) return r;
  if ((r = store_series_parts(f->st, NULL, 0, "cpu", 0, 0, agg, 0, 0, parts, nparts, NULL, err)) < 0) return r;
  for (size_t i = 0; i < *nparts; i++) {
    free((*parts)[i].labels);
    (*parts)[i].labels = strdup("{\"monitor\":\"bucket\"}");
    info->records += (uint64_t)(*parts)[i].weight;
  }
  return 0;
}

static int fake_points(void *ud, uint64_t seq, const store_matcher *m, size_t nm, const char *type, int64_t from,
                       int64_t to, size_t limit, store_row **ret, size_t *ret_n, uint64_t *ret_gen, upload_bucket_only *held,
                       pp_err *err) {
  fake_bucket *f = ud;
  (void)seq;
  *ret = NULL, *ret_n = 0, *ret_gen = 41;
  if (fake_answer(f, held, err)) return f->answer;
  store_row *one = NULL;
  size_t n1 = 0;
  if (store_list_points(f->st, m, nm, type, from, to, limit, &one, &n1, err) < 0 || n1 == 0) return PP_EIO;
  size_t n = 0;
  while (n < 4 && f->ends[n]) n++;
  store_row *v = calloc(n ? n : 1, sizeof *v);
  for (size_t i = 0; v && i < n; i++) {
    v[i] = (store_row){one[0].id, 0, strdup(one[0].labels_json), strdup(one[0].type), f->ends[i] - 1000, f->ends[i], 0,
                       strdup(one[0].sample_types), strdup(one[0].totals), 1};
  }
  store_rows_free(one, n1);
  *ret = v, *ret_n = v ? n : 0;
  return v ? 0 : PP_ENOMEM;
}

/* The records fake_points listed: the store's (its rows are copies of the store's first), read
 * from the store, unless the cache "changed" since. */
static int fake_each(void *ud, uint64_t gen, const int64_t *ids, size_t n, const pprof_limits *limits, store_profile_fn fn,
                     void *fud, pp_err *err) {
  fake_bucket *f = ud;
  f->each_calls++;
  CHECK_EQ_I64(gen, 41);
  if (f->each_raced) return pp_err_set(err, PP_EIO, "the fake cache changed (ask again)"), BUCKET_RACED;
  return store_each_profile(f->st, ids, n, limits, fn, fud, err);
}

/* `what` (render: type=cpu&agg=sum; timeline: type=cpu) over a store of one record, the bucket
 * answering `answer`, a merge reading at most max_records; the bucket-only range the request
 * saw as it came: `seen` segments (0: none yet). The answer's body in *body (freed by the
 * caller). */
static const char *ask_agg = "sum"; /* render's agg= */
static const char *ask_function;      /* timeline's function= (NULL: none) */
static size_t ask_budget = (size_t)256 << 20; /* the query's memory budget */
static web_fanout_info asked;                 /* what the last request noted of the bucket */

static unsigned ask_with_bucket(void (*what)(const web_ctx *, const web_params *, web_resp *), store *st, fake_bucket *f,
                                uint64_t seen, size_t max_records, char **body) {
  web_hooks h = {.st = st, .ud = f, .bucket_only = fake_only, .bucket_merged = fake_merged, .bucket_points = fake_points,
                 .bucket_each_profile = fake_each};
  web_fanout_info fi;
  memset(&fi, 0, sizeof fi);
  web_ctx x = {.h = &h, .budget = ask_budget, .max_records = max_records, .fi = &fi};
  fake_only(f, true, &x.bo, &x.seq);
  x.bo.segments = seen;
  web_params p = {.k = {"type", "agg"}, .v = {"cpu", ask_agg}, .n = what == web_api_timeline || what == web_api_profiles ? 1 : 2};
  if (what == web_api_timeline && ask_function) p.k[1] = "function", p.v[1] = ask_function, p.n = 2;
  web_resp out;
  memset(&out, 0, sizeof out);
  what(&x, &p, &out);
  *body = out.body ? strndup(out.body->data, out.body->len) : strndup(out.data ? out.data : "", out.len);
  unsigned st_ = out.status;
  web_resp_release(&out);
  asked = fi;
  return st_;
}

/* A fresh store in dir_ holding one CPU record (id 1) that ends at *end; NULL when it cannot. */
/* A fresh store in dir_ (options o, its dir set here) with gotarget's cpu-1 stored once for each
 * of the n end times, as series {monitor=app}; NULL after a failed check. */
static store *store_with(store_opts o, const int64_t *ends, size_t n) {
  snprintf(dir_, sizeof dir_, "/tmp/pprof-web-test-%d", (int)getpid());
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir_);
  CHECK(system(cmd) == 0);
  o.dir = dir_;
  store *st = NULL;
  pp_err err = {0};
  CHECK(store_open(&o, &st, NULL, &err) == 0);
  if (!st) return NULL;
  const char *td = getenv("PPROF_TESTDATA");
  char path[512];
  snprintf(path, sizeof path, "%s/gotarget/cpu-1.pb.gz", td ? td : "../shared/testdata/pprof");
  uint8_t *b = NULL;
  size_t len = 0;
  CHECK(pp_read_file(path, (size_t)64 << 20, &b, &len, NULL) == 0);
  pprof_profile *prof = NULL;
  CHECK(b && pprof_decode(b, len, NULL, &prof, NULL) == 0);
  store_label l[1] = {{"monitor", "app"}};
  for (size_t i = 0; i < n; i++) {
    store_record r = {l, 1, "cpu", ends[i] - 1000, ends[i], b, len, prof};
    bool enospc = false;
    CHECK(store_append(st, &r, &enospc, &err) == 0);
  }
  pprof_free(prof);
  free(b);
  return st;
}

static store *one_record_store(int64_t *end) {
  *end = pp_clock_real_ns();
  return store_with((store_opts){0}, end, 1);
}

static void close_removed(store *st) {
  store_close(st);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir_);
  CHECK(system(cmd) == 0);
}

/* A merge the store's deletions raced is asked again, three times in all; the last answers
 * partial and says why, naming the range as the bucket's hook listed it (not as the request saw
 * it: none). A bucket holding nothing of the window leaves the answer whole, asked once. */
static void bucket_merge_tries(void) {
  int64_t end;
  store *st = one_record_store(&end);
  if (!st) return;
  fake_bucket f = {.st = st, .answer = BUCKET_RACED, .held = {.segments = 7, .from_ns = 1, .to_ns = end}};
  char *body = NULL;
  CHECK_EQ_I64(ask_with_bucket(web_api_render, st, &f, 0, 1000, &body), 200);
  CHECK_EQ_I64(f.calls, 3);
  CHECK(body && strstr(body, "\"partial\":true") != NULL);
  CHECK(body && strstr(body, "\"bucketOnly\":{\"segments\":7,") != NULL);
  CHECK(body && strstr(body, "while the answer read the store (ask again)") != NULL);
  CHECK(body && strstr(body, "\"profiles\":1") != NULL); /* the local part still answered */
  if (!body || !strstr(body, "(ask again)")) fprintf(stderr, "  raced: %s\n", body ? body : "(none)");
  free(body);

  f = (fake_bucket){.st = st, .answer = BUCKET_NONE, .held = {.segments = 7, .from_ns = 1, .to_ns = end}};
  CHECK_EQ_I64(ask_with_bucket(web_api_render, st, &f, 7, 1000, &body), 200);
  CHECK_EQ_I64(f.calls, 1);
  CHECK(body && strstr(body, "\"partial\":false") != NULL);
  CHECK(body && strstr(body, "bucketOnly") == NULL);
  if (!body || !strstr(body, "\"partial\":false")) fprintf(stderr, "  none: %s\n", body ? body : "(none)");
  free(body);
  close_removed(st);
}

/* avg and latest read the bucket's listing first and the local store after it: a segment local
 * retention deletes in between is in neither, so the merge is asked again; deleted during every
 * try, the answer is partial and says why. (Records an hour apart, a segment each, an hour's
 * retention: each call of the hook deletes the oldest one left.) */
static void bucket_series_raced(void) {
  const int64_t h = (int64_t)3600 * 1000000000, now = pp_clock_real_ns();
  const int64_t ends[4] = {now - 4 * h, now - 3 * h, now - 2 * h, now};
  store *st = store_with((store_opts){.retention_seconds = 3600, .segment_bytes = 1}, ends, 4);
  if (!st) return;
  ask_agg = "avg";
  fake_bucket f = {.st = st, .answer = BUCKET_NONE, .held = {.segments = 7, .from_ns = 1, .to_ns = now},
                   .retire = {ends[0] + h + 1000}};
  char *body = NULL;
  CHECK_EQ_I64(ask_with_bucket(web_api_render, st, &f, 7, 1000, &body), 200);
  CHECK_EQ_I64(f.calls, 2); /* asked again after the deletion */
  CHECK(body && strstr(body, "\"profiles\":3") != NULL);
  CHECK(body && strstr(body, "\"partial\":false") != NULL);
  if (!body || f.calls != 2 || !strstr(body, "\"partial\":false")) fprintf(stderr, "  once: %u calls, %s\n", f.calls, body ? body : "(none)");
  free(body);
  f = (fake_bucket){.st = st, .answer = BUCKET_NONE, .held = {.segments = 7, .from_ns = 1, .to_ns = now},
                    .retire = {ends[1] + h + 1000, ends[2] + h + 1000, now + h + 1000}};
  ask_agg = "latest";
  f.retire[2] = 0; /* (the newest stays: two deletions, then a third try in peace) */
  CHECK_EQ_I64(ask_with_bucket(web_api_render, st, &f, 7, 1000, &body), 200);
  CHECK_EQ_I64(f.calls, 3);
  CHECK(body && strstr(body, "\"partial\":false") != NULL);
  free(body);
  close_removed(st);
  /* deleted during all three tries: partial, and why */
  const int64_t ends5[5] = {now - 5 * h, now - 4 * h, now - 3 * h, now - 2 * h, now};
  if (!(st = store_with((store_opts){.retention_seconds = 3600, .segment_bytes = 1}, ends5, 5))) return;
  ask_agg = "avg";
  f = (fake_bucket){.st = st, .answer = BUCKET_NONE, .held = {.segments = 7, .from_ns = 1, .to_ns = now},
                    .retire = {ends5[0] + h + 1000, ends5[1] + h + 1000, ends5[2] + h + 1000}};
  CHECK_EQ_I64(ask_with_bucket(web_api_render, st, &f, 7, 1000, &body), 200);
  CHECK_EQ_I64(f.calls, 3);
  CHECK(body && strstr(body, "\"partial\":true") != NULL);
  CHECK(body && strstr(body, "while the answer read the store (ask again)") != NULL);
  CHECK(body && strstr(body, "\"profiles\":2") != NULL);
  if (!body || !strstr(body, "(ask again)")) fprintf(stderr, "  raced thrice: %u calls, %s\n", f.calls, body ? body : "(none)");
  free(body);
  ask_agg = "sum";
  close_removed(st);
}

/* The bucket's series parts: a window read for a try that was asked again (a deletion after the
 * listing) is counted once; parts that leave the local merge too little of the query's budget
 * give way to it: the local merge again within the whole budget, the answer partial and why. */
static void bucket_series_parts(void) {
  const int64_t h = (int64_t)3600 * 1000000000, now = pp_clock_real_ns();
  const int64_t ends[4] = {now - 4 * h, now - 3 * h, now - 2 * h, now};
  store *st = store_with((store_opts){.retention_seconds = 3600, .segment_bytes = 1}, ends, 4);
  if (!st) return;
  ask_agg = "avg";
  fake_bucket f = {.st = st, .answer = 0, .held = {.segments = 7, .from_ns = 1, .to_ns = now},
                   .retire = {ends[0] + h + 1000}, .parts = true};
  char *body = NULL;
  CHECK_EQ_I64(ask_with_bucket(web_api_render, st, &f, 7, 1000, &body), 200);
  CHECK_EQ_I64(f.calls, 2);
  /* three local records, and the bucket's three of its own series */
  CHECK(body && strstr(body, "\"profiles\":6") != NULL);
  CHECK(body && strstr(body, "\"bucketRead\":{\"windows\":1,\"profiles\":3}") != NULL);
  CHECK(body && strstr(body, "\"partial\":false") != NULL);
  if (!body || !strstr(body, "\"windows\":1,")) fprintf(stderr, "  read once: %s\n", body ? body : "(none)");
  free(body);

  /* the smallest budget the local merge alone fits in (the bucket's part is as big as it) */
  size_t lo = 1, hi = (size_t)64 << 20;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    pprof_profile *p = NULL;
    int r = store_merged_within(st, NULL, 0, "cpu", 0, 0, STORE_AGG_AVG, 1000, mid, &p, NULL, NULL);
    pprof_free(p);
    if (r == 0) hi = mid;
    else lo = mid + 1;
  }
  /* and the bucket's part's size: together over the budget by half of it */
  store_series_part *pv = NULL;
  size_t np = 0, part_bytes = 0;
  CHECK(store_series_parts(st, NULL, 0, "cpu", 0, 0, STORE_AGG_AVG, 0, 0, &pv, &np, NULL, NULL) == 0);
  for (size_t i = 0; i < np; i++) part_bytes += pv[i].p->mem.reserved;
  store_series_parts_free(pv, np);
  CHECK(part_bytes > 0);
  ask_budget = lo + part_bytes / 2;
  f = (fake_bucket){.st = st, .answer = 0, .held = {.segments = 7, .from_ns = 1, .to_ns = now}, .parts = true};
  CHECK_EQ_I64(ask_with_bucket(web_api_profile, st, &f, 7, 1000, &body), 200);
  CHECK_EQ_I64(f.calls, 1);
  CHECK_EQ_I64(asked.bucket_read, 0);
  CHECK(asked.bucket.segments == 7 && strstr(asked.bucket_why, "memory budget") != NULL);
  if (!strstr(asked.bucket_why, "memory budget")) fprintf(stderr, "  over budget (%zu): why \"%s\", %s\n", ask_budget, asked.bucket_why, body ? body : "(none)");
  free(body);
  ask_budget = (size_t)256 << 20;
  ask_agg = "sum";
  close_removed(st);
}

/* A timeline's points from the bucket come in among the local one by end time, the newest
 * max_records kept; raced every time, three tries; a read that fails leaves the local point,
 * partial and why; out of memory fails the timeline (503), nothing half-built. */
static void bucket_timeline_points(void) {
  int64_t end;
  store *st = one_record_store(&end);
  if (!st) return;
  char *body = NULL;
  /* null ids for the bucket's, counted in bucketRead (the local record is id 1) */
  fake_bucket f = {.st = st, .held = {.segments = 7, .from_ns = 1, .to_ns = end}, .ends = {end - 2000, end + 1000}};
  CHECK_EQ_I64(ask_with_bucket(web_api_timeline, st, &f, 7, 1000, &body), 200);
  CHECK(body && strstr(body, "\"ids\":[null,1,null]") != NULL);
  CHECK(body && strstr(body, "\"bucketRead\":{\"windows\":1,\"profiles\":2}") != NULL);
  CHECK(body && strstr(body, "\"partial\":false") != NULL);
  if (!body || !strstr(body, "[null,1,null]")) fprintf(stderr, "  timeline: %s\n", body ? body : "(none)");
  free(body);
  /* room for two: the newest two */
  CHECK_EQ_I64(ask_with_bucket(web_api_timeline, st, &f, 7, 2, &body), 200);
  CHECK(body && strstr(body, "\"ids\":[1,null]") != NULL);
  CHECK(body && strstr(body, "\"bucketRead\":{\"windows\":1,\"profiles\":1}") != NULL);
  if (!body || !strstr(body, "[1,null]")) fprintf(stderr, "  newest two: %s\n", body ? body : "(none)");
  free(body);
  /* raced every time, then a failed read: the local point alone, partial and why */
  const struct {
    int answer;
    unsigned calls;
    const char *why;
  } failing[] = {{BUCKET_RACED, 3, "(ask again)"}, {PP_EIO, 1, "the bucket's fake failure"}};
  for (size_t i = 0; i < sizeof failing / sizeof failing[0]; i++) {
    f = (fake_bucket){.st = st, .answer = failing[i].answer, .held = {.segments = 7, .from_ns = 1, .to_ns = end}};
    CHECK_EQ_I64(ask_with_bucket(web_api_timeline, st, &f, 0, 1000, &body), 200);
    CHECK_EQ_I64(f.calls, failing[i].calls);
    CHECK(body && strstr(body, "\"ids\":[1]") != NULL);
    CHECK(body && strstr(body, "\"partial\":true") != NULL);
    CHECK(body && strstr(body, "\"bucketOnly\":{\"segments\":7,") != NULL);
    CHECK(body && strstr(body, failing[i].why) != NULL);
    if (!body || !strstr(body, failing[i].why)) fprintf(stderr, "  failing %zu: %s\n", i, body ? body : "(none)");
    free(body);
  }
  f = (fake_bucket){.st = st, .answer = PP_ENOMEM, .held = {.segments = 7, .from_ns = 1, .to_ns = end}};
  CHECK_EQ_I64(ask_with_bucket(web_api_timeline, st, &f, 0, 1000, &body), 503);
  CHECK(body && strstr(body, "\"data\"") == NULL);
  free(body);

  /* /api/v1/profiles lists the bucket's records among the local one, id null */
  f = (fake_bucket){.st = st, .held = {.segments = 7, .from_ns = 1, .to_ns = end}, .ends = {end - 2000, end + 1000}};
  CHECK_EQ_I64(ask_with_bucket(web_api_profiles, st, &f, 7, 1000, &body), 200);
  const char *e1 = body ? strstr(body, "{\"id\":null,") : NULL, *e2 = e1 ? strstr(e1 + 1, "{\"id\":1,") : NULL;
  CHECK(e2 && strstr(e2, "{\"id\":null,") != NULL);
  CHECK(body && strstr(body, "\"bucketRead\":{\"windows\":1,\"profiles\":2}") != NULL);
  CHECK(body && strstr(body, "\"partial\":false") != NULL);
  if (!e2) fprintf(stderr, "  profiles: %s\n", body ? body : "(none)");
  free(body);

  /* a decoded timeline (function=) reads the bucket's records too: each point the same record's
   * figures (main.hashLoop: 1.16 s of cpu-1's, go tool pprof -top) */
  ask_function = "main.hashLoop";
  f = (fake_bucket){.st = st, .held = {.segments = 7, .from_ns = 1, .to_ns = end}, .ends = {end - 2000, end + 1000}};
  CHECK_EQ_I64(ask_with_bucket(web_api_timeline, st, &f, 7, 1000, &body), 200);
  CHECK_EQ_I64(f.each_calls, 1);
  CHECK(body && strstr(body, "\"ids\":[null,1,null]") != NULL);
  CHECK(body && strstr(body, "\"cum\":[1160000000,1160000000,1160000000]") != NULL);
  CHECK(body && strstr(body, "\"bucketRead\":{\"windows\":1,\"profiles\":2}") != NULL);
  CHECK(body && strstr(body, "\"partial\":false") != NULL);
  if (!body || !strstr(body, "\"cum\":[1160000000,1160000000,1160000000]")) fprintf(stderr, "  decoded: %s\n", body ? body : "(none)");
  free(body);
  /* the cache changed between listing and reading: the local point alone, partial and why */
  f.each_raced = true, f.calls = 0, f.each_calls = 0;
  CHECK_EQ_I64(ask_with_bucket(web_api_timeline, st, &f, 7, 1000, &body), 200);
  CHECK_EQ_I64(f.each_calls, 1);
  CHECK(body && strstr(body, "\"ids\":[1]") != NULL);
  CHECK(body && strstr(body, "\"cum\":[1160000000]") != NULL);
  CHECK(body && strstr(body, "\"partial\":true") != NULL);
  CHECK(body && strstr(body, "the fake cache changed (ask again)") != NULL);
  CHECK(body && strstr(body, "\"recordsUnreadable\":0") != NULL);
  CHECK(body && strstr(body, "bucketRead") == NULL);
  if (!body || !strstr(body, "\"partial\":true")) fprintf(stderr, "  decoded, cache changed: %s\n", body ? body : "(none)");
  free(body);
  ask_function = NULL;
  close_removed(st);
}

int main(void) {
  RUN(json_strings);
  RUN(buffer_cap);
  RUN(cache_keys);
  RUN(cache_lru);
  RUN(pool_slots_queue_sharing_deadlines);
  RUN(pool_retry_cap_and_queue_wait);
  RUN(auth_cache_and_limits);
  RUN(bucket_merge_tries);
  RUN(bucket_timeline_points);
  RUN(bucket_series_raced);
  RUN(bucket_series_parts);
  return tt_finish();
}
