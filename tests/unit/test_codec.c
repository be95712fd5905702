/* Unit tests of the codec on small hand-built profiles whose right answers are worked out in
 * the comments, plus hostile inputs. Conformance with go tool pprof on real profiles is in
 * tests/conformance. */
#include <zlib.h>

#include "../../src/codec/pprof_int.h"
#include "profile.pb-c.h"
#include "profile_eq.h"
#include "tt.h"
#include "../../src/base/file.h"
#include <dirent.h>

/* ---- a small profile built by hand ----------------------------------------------------------
 * functions: main, f, g, h.  locations: L0 = {h inlined into g}, L1 = f, L2 = main, L3 = f
 * (another address: recursion).  Sample types: samples/count, cpu/nanoseconds.
 *   S0: L0 L1 L2  (1, 10)   stack main > f > g > h
 *   S1: L1 L3 L2  (2, 20)   stack main > f > f
 *   S2: L2        (3, 30)   stack main, label span=db
 *   S3: L1 L2     (0, 0)    ignored everywhere
 * For cpu: flat h=10 f=20 main=30; cum h=10 g=10 f=30 (recursion once) main=60; total 60. */
enum {
  S_EMPTY,
  S_SAMPLES,
  S_COUNT,
  S_CPU,
  S_NS,
  S_MAIN,
  S_F,
  S_G,
  S_H,
  S_FILE,
  S_SPAN,
  S_DB,
  S_BIN,
  NSTR
};
static const char *const strs[NSTR] = {"",     "samples", "count",   "cpu", "nanoseconds",
                                       "main", "f",       "g",       "h",   "x.go",
                                       "span", "db",      "/bin/app"};

static pprof_profile *build_small(void) {
  pprof_profile *p = pprof_alloc(0);
  arena *m = &p->mem;
  p->nstrings = NSTR;
  p->strings = arena_alloc(m, NSTR * sizeof *p->strings);
  p->string_len = arena_alloc(m, NSTR * sizeof *p->string_len);
  for (int i = 0; i < NSTR; i++) {
    p->strings[i] = arena_strndup(m, strs[i], strlen(strs[i]));
    p->string_len[i] = (uint32_t)strlen(strs[i]);
  }
  p->nsample_type = 2;
  p->sample_type = arena_alloc(m, 2 * sizeof *p->sample_type);
  p->sample_type[0] = (pprof_value_type){S_SAMPLES, S_COUNT};
  p->sample_type[1] = (pprof_value_type){S_CPU, S_NS};
  p->period_type = (pprof_value_type){S_CPU, S_NS};
  p->period = 10;
  p->time_nanos = 1000;
  p->duration_nanos = 500;
  p->nmapping = 1;
  p->mapping = arena_calloc(m, 1, sizeof *p->mapping);
  p->mapping[0] = (pprof_mapping){
      .id = 1, .start = 0x400000, .limit = 0x500000, .filename = S_BIN, .has_functions = true};
  p->nfunction = 4;
  p->function = arena_calloc(m, 4, sizeof *p->function);
  const int fn[4] = {S_MAIN, S_F, S_G, S_H};
  for (int i = 0; i < 4; i++)
    p->function[i] =
        (pprof_function){.id = (uint64_t)i + 1, .name = (uint32_t)fn[i], .filename = S_FILE};
  /* function index + 1 in lines: main=1 f=2 g=3 h=4 */
  p->nlocation = 4;
  p->location = arena_calloc(m, 4, sizeof *p->location);
  static pprof_line l0[2] = {{4, 7, 0}, {3, 9, 0}}, l1[1] = {{2, 3, 0}}, l2[1] = {{1, 1, 0}},
                    l3[1] = {{2, 4, 0}};
  pprof_line *lines[4] = {l0, l1, l2, l3};
  const uint32_t nl[4] = {2, 1, 1, 1};
  for (int i = 0; i < 4; i++)
    p->location[i] = (pprof_location){.id = (uint64_t)i + 1,
                                      .address = 0x401000 + (uint64_t)i * 16,
                                      .mapping = 1,
                                      .nline = nl[i],
                                      .line = lines[i]};
  p->nsample = 4;
  p->sample = arena_calloc(m, 4, sizeof *p->sample);
  static uint32_t s0[] = {0, 1, 2}, s1[] = {1, 3, 2}, s2[] = {2}, s3[] = {1, 2};
  static int64_t v0[] = {1, 10}, v1[] = {2, 20}, v2[] = {3, 30}, v3[] = {0, 0};
  static pprof_label lab[] = {{S_SPAN, S_DB, 0, 0}};
  p->sample[0] = (pprof_sample){s0, v0, NULL, 3, 0};
  p->sample[1] = (pprof_sample){s1, v1, NULL, 3, 0};
  p->sample[2] = (pprof_sample){s2, v2, lab, 1, 1};
  p->sample[3] = (pprof_sample){s3, v3, NULL, 2, 0};
  /* the static arrays are shared between calls: copy values so scale/merge may write */
  for (int i = 0; i < 4; i++) {
    int64_t *v = arena_alloc(m, 2 * sizeof *v);
    memcpy(v, p->sample[i].value, 2 * sizeof *v);
    p->sample[i].value = v;
  }
  return p;
}

static const pprof_func_stat *find(const pprof_top *t, const char *name) {
  for (size_t i = 0; i < t->nfuncs; i++)
    if (!strcmp(t->funcs[i].name, name)) return &t->funcs[i];
  return NULL;
}

static void check_small_top(const pprof_profile *p, int64_t scale) {
  pprof_top t;
  pp_err err = {0};
  CHECK(pprof_top_compute(p, 1, &t, &err) == 0);
  CHECK_EQ_I64(t.nfuncs, 4);
  CHECK_EQ_I64(t.total, 60 * scale);
  const char *names[] = {"main", "f", "g", "h"};
  const int64_t flat[] = {30, 20, 0, 10}, cum[] = {60, 30, 10, 10};
  for (int i = 0; i < 4; i++) {
    const pprof_func_stat *s = find(&t, names[i]);
    CHECK(s != NULL);
    if (!s) continue;
    CHECK_EQ_I64(s->flat, flat[i] * scale);
    CHECK_EQ_I64(s->cum, cum[i] * scale);
  }
  if (t.nfuncs == 4) {
    CHECK_STR(t.funcs[0].name, "main"); /* flat descending */
    CHECK_STR(t.funcs[3].name, "g");
  }
  pprof_top_release(&t);
}

static void top_counts_recursion_once_and_inlines(void) {
  pprof_profile *p = build_small();
  check_small_top(p, 1);
  pprof_free(p);
}

static void tree_is_root_to_leaf(void) {
  pprof_profile *p = build_small();
  pprof_tree t;
  CHECK(pprof_tree_compute(p, 1, 0, &t, NULL) == 0);
  /* root > main > f > {g > h, f} */
  CHECK_EQ_I64(t.nnodes, 6);
  CHECK_EQ_I64(t.nodes[0].total, 60);
  uint32_t mainn = t.nodes[0].first_child;
  CHECK_STR(t.nodes[mainn].name, "main");
  CHECK_EQ_I64(t.nodes[mainn].self, 30);
  CHECK_EQ_I64(t.nodes[mainn].total, 60);
  uint32_t f = t.nodes[mainn].first_child;
  CHECK_STR(t.nodes[f].name, "f");
  CHECK_EQ_I64(t.nodes[f].total, 30);
  CHECK_EQ_I64(t.nodes[f].self, 0);
  int64_t child_total = 0;
  int nchild = 0;
  for (uint32_t c = t.nodes[f].first_child; c; c = t.nodes[c].next_sibling) {
    child_total += t.nodes[c].total;
    nchild++;
    CHECK_EQ_I64(t.nodes[c].depth, 3);
    CHECK_EQ_I64(t.nodes[c].parent, f);
  }
  CHECK_EQ_I64(nchild, 2);
  CHECK_EQ_I64(child_total, 30);
  pprof_tree_release(&t);
  /* a node budget smaller than the tree is an error, not a truncation */
  pp_err err = {0};
  CHECK(pprof_tree_compute(p, 1, 3, &t, &err) == PP_ELIMIT);
  pprof_free(p);
}

static void encode_decode_round_trip(void) {
  pprof_profile *p = build_small();
  uint8_t *buf;
  size_t len;
  pp_err err = {0};
  for (int level = 0; level <= 9; level += 9) {
    CHECK(pprof_encode(p, level, &buf, &len, &err) == 0);
    CHECK(level == 0 || (buf[0] == 0x1f && buf[1] == 0x8b));
    pprof_profile *q = NULL;
    CHECK(pprof_decode(buf, len, NULL, &q, &err) == 0);
    free(buf);
    if (!q) continue;
    CHECK_EQ_I64(q->nsample, 4);
    CHECK_EQ_I64(q->nlocation, 4);
    CHECK_EQ_I64(q->location[0].nline, 2);
    CHECK_EQ_I64(q->location[0].line[0].line, 7);
    CHECK_EQ_I64(q->time_nanos, 1000);
    CHECK_EQ_I64(q->duration_nanos, 500);
    CHECK_EQ_I64(q->period, 10);
    CHECK_STR(pprof_str(q, q->mapping[0].filename), "/bin/app");
    CHECK_EQ_I64(q->sample[2].nlabel, 1);
    CHECK_STR(pprof_str(q, q->sample[2].label[0].key), "span");
    CHECK_STR(pprof_str(q, q->sample[2].label[0].str), "db");
    check_small_top(q, 1);
    pprof_free(q);
  }
  pprof_free(p);
}

static void merge_sums_equal_stacks(void) {
  pprof_profile *a = build_small(), *b = build_small(), *m = NULL;
  b->time_nanos = 500;
  b->duration_nanos = 700;
  b->period = 20;
  pprof_profile *srcs[2] = {a, b};
  pp_err err = {0};
  CHECK(pprof_merge(srcs, 2, &m, &err) == 0);
  if (m) {
    CHECK_EQ_I64(m->nsample, 3); /* the zero sample is dropped, the others summed */
    CHECK_EQ_I64(m->nlocation, 4);
    CHECK_EQ_I64(m->nfunction, 4);
    CHECK_EQ_I64(m->nmapping, 1);
    CHECK_EQ_I64(m->time_nanos, 500);
    CHECK_EQ_I64(m->duration_nanos, 1200);
    CHECK_EQ_I64(m->period, 20);
    check_small_top(m, 2);
  }
  pprof_free(m);
  pprof_free(a);
  pprof_free(b);
}

static void merger_is_incremental_merge(void) {
  pprof_profile *a = build_small(), *b = build_small(), *c = build_small(), *m = NULL;
  pprof_merger *pm = NULL;
  pp_err err = {0};
  CHECK(pprof_merger_new(&pm, &err) == 0);
  CHECK(pprof_merger_add(pm, a, 1, &err) == 0);
  pprof_free(a); /* a source may go as soon as it is added */
  CHECK(pprof_merger_add(pm, b, 1, &err) == 0);
  CHECK(pprof_merger_add(pm, c, -1, &err) == 0); /* a + b - c == one copy */
  CHECK(pprof_merger_finish(pm, &m, &err) == 0);
  if (m) check_small_top(m, 1);
  pprof_free(m);
  /* a mismatch mid-stream fails that add; the merger is then abandoned */
  c->sample_type[0].type = S_CPU;
  CHECK(pprof_merger_new(&pm, &err) == 0);
  CHECK(pprof_merger_add(pm, b, 1, &err) == 0);
  CHECK(pprof_merger_add(pm, c, 1, &err) == PP_EMISMATCH);
  pprof_merger_free(pm);
  /* finishing an empty merger is a usage error, and frees it */
  CHECK(pprof_merger_new(&pm, &err) == 0);
  CHECK(pprof_merger_finish(pm, &m, &err) == PP_EUSAGE);
  pprof_free(b);
  pprof_free(c);
}

/* Pipeline inputs: even i = a valid encoding of the small profile, odd i = garbage or a fetch
 * failure; consume records what it saw, in order. */
typedef struct pipe_t {
  uint8_t *enc;
  size_t enc_len;
  int seen[32];
  int order_ok;
  size_t calls;
  size_t stop_at;
} pipe_t;

static int pfetch(void *ud, size_t i, uint8_t **buf, size_t *len, pp_err *ferr) {
  pipe_t *p = ud;
  if (i % 4 == 3) return pp_err_set(ferr, PP_EIO, "input %zu: cannot fetch", i);
  size_t n = i % 2 ? 5 : p->enc_len;
  *buf = malloc(n);
  memcpy(*buf, i % 2 ? (const uint8_t *)"\xff\xff\xff\xff\xff" : p->enc, n);
  *len = n;
  return 0;
}

static int pconsume(void *ud, size_t i, const pprof_profile *pr, const pp_err *in, pp_err *err) {
  pipe_t *p = ud;
  if (i != p->calls) p->order_ok = 0;
  p->calls++;
  p->seen[i] = pr ? 1 : (in->code == PP_EIO ? 2 : 3);
  if (p->stop_at && i == p->stop_at) return pp_err_set(err, PP_EMISMATCH, "stop at %zu", i);
  return 0;
}

static void decode_pipeline_orders_reports_and_stops(void) {
  pprof_profile *small = build_small();
  pipe_t p = {.order_ok = 1};
  CHECK(pprof_encode(small, 1, &p.enc, &p.enc_len, NULL) == 0);
  pp_err err = {0};
  CHECK(pprof_decode_pipeline(32, 3, 4, NULL, pfetch, pconsume, &p, &err) == 0);
  CHECK_EQ_I64(p.calls, 32);
  CHECK(p.order_ok);
  for (int i = 0; i < 32; i++)
    CHECK_EQ_I64(p.seen[i], i % 2 == 0 ? 1 : (i % 4 == 3 ? 2 : 3));
  pipe_t q = {.order_ok = 1, .enc = p.enc, .enc_len = p.enc_len, .stop_at = 10};
  CHECK(pprof_decode_pipeline(32, 2, 0, NULL, pfetch, pconsume, &q, &err) == PP_EMISMATCH);
  CHECK_EQ_I64(q.calls, 11); /* nothing consumed after the error */
  CHECK(strstr(err.msg, "stop at 10") != NULL);
  CHECK(pprof_decode_pipeline(0, 2, 0, NULL, pfetch, pconsume, &q, &err) == 0);
  free(p.enc);
  pprof_free(small);
}

static void merge_rejects_mismatched_types(void) {
  pprof_profile *a = build_small(), *b = build_small(), *m = NULL;
  b->sample_type[1].unit = S_COUNT;
  pprof_profile *srcs[2] = {a, b};
  pp_err err = {0};
  CHECK(pprof_merge(srcs, 2, &m, &err) == PP_EMISMATCH);
  CHECK(m == NULL);
  CHECK(strstr(err.msg, "cpu/nanoseconds") && strstr(err.msg, "cpu/count"));
  pprof_free(a);
  pprof_free(b);
}

static void diff_and_scale(void) {
  pprof_profile *a = build_small(), *b = build_small(), *d = NULL;
  pp_err err = {0};
  CHECK(pprof_diff(a, b, &d, &err) == 0); /* identical: nothing left */
  if (d) CHECK_EQ_I64(d->nsample, 0);
  pprof_free(d);
  pprof_scale(b, 3.0); /* b - a = 2a */
  CHECK(pprof_diff(a, b, &d, &err) == 0);
  if (d) check_small_top(d, 2);
  pprof_free(d);
  CHECK(pprof_diff(b, a, &d, &err) == 0); /* a - b = -2a */
  if (d) {
    pprof_top t;
    CHECK(pprof_top_compute(d, 1, &t, NULL) == 0);
    CHECK_EQ_I64(find(&t, "main")->cum, -120);
    CHECK_EQ_I64(t.total, 120); /* |values|, as pprof's percentages use */
    pprof_top_release(&t);
  }
  pprof_free(d);
  pprof_scale(a, 0.5);                    /* rounding to nearest: 15, 10, 5 */
  CHECK_EQ_I64(a->sample[0].value[0], 1); /* 0.5 rounds away from zero */
  CHECK_EQ_I64(a->sample[2].value[1], 15);
  pprof_free(a);
  pprof_free(b);
}

static void sample_index_by_name_number_default(void) {
  pprof_profile *p = build_small();
  pp_err err = {0};
  CHECK_EQ_I64(pprof_sample_index(p, NULL, &err), 1);
  CHECK_EQ_I64(pprof_sample_index(p, "samples", &err), 0);
  CHECK_EQ_I64(pprof_sample_index(p, "1", &err), 1);
  CHECK_EQ_I64(pprof_sample_index(p, "2", &err), PP_EUSAGE);
  CHECK_EQ_I64(pprof_sample_index(p, "inuse_space", &err), PP_EUSAGE);
  CHECK(strstr(err.msg, "0=samples, 1=cpu") != NULL);
  p->default_sample_type = S_SAMPLES;
  CHECK_EQ_I64(pprof_sample_index(p, "", &err), 0);
  pprof_free(p);
}

/* ---- hostile input ------------------------------------------------------------------------ */

static uint8_t *gzip_of(const void *data, size_t len, size_t *ret_len) {
  uLongf cap = compressBound(len) + 64;
  uint8_t *out = malloc(cap);
  z_stream zs = {0};
  deflateInit2(&zs, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY);
  zs.next_in = (Bytef *)data;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  deflate(&zs, Z_FINISH);
  *ret_len = cap - zs.avail_out;
  deflateEnd(&zs);
  return out;
}

static void gunzip_caps_decompressed_size(void) {
  size_t n = 32 << 20, glen;
  uint8_t *zeros = calloc(1, n);
  uint8_t *bomb = gzip_of(zeros, n, &glen); /* ~32 KiB that inflates to 32 MiB */
  uint8_t *out = NULL;
  size_t olen = 0;
  pp_err err = {0};
  CHECK(pprof_gunzip(bomb, glen, 1 << 20, &out, &olen, &err) == PP_ELIMIT);
  CHECK(out == NULL);
  CHECK(strstr(err.msg, "exceeds the limit") != NULL);
  CHECK(pprof_gunzip(bomb, glen, n, &out, &olen, &err) == 0);
  CHECK_EQ_I64(olen, n);
  free(out);
  /* truncated and corrupted streams */
  CHECK(pprof_gunzip(bomb, glen / 2, n, &out, &olen, &err) == PP_EINVAL);
  bomb[glen / 2] ^= 0x55;
  CHECK(pprof_gunzip(bomb, glen, n, &out, &olen, &err) < 0);
  free(bomb);
  free(zeros);
}

static void gunzip_members_and_trailing_garbage(void) {
  size_t l1, l2;
  uint8_t *a = gzip_of("hello ", 6, &l1), *b = gzip_of("world", 5, &l2);
  uint8_t *cat = malloc(l1 + l2 + 3);
  memcpy(cat, a, l1);
  memcpy(cat + l1, b, l2);
  uint8_t *out = NULL;
  size_t olen;
  pp_err err = {0};
  CHECK(pprof_gunzip(cat, l1 + l2, 100, &out, &olen, &err) == 0);
  CHECK(olen == 11 && out && memcmp(out, "hello world", 11) == 0);
  free(out);
  memcpy(cat + l1, "xyz", 3);
  CHECK(pprof_gunzip(cat, l1 + 3, 100, &out, &olen, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "trailing") != NULL);
  free(a);
  free(b);
  free(cat);
}

static int decode_bytes(const void *d, size_t n, const pprof_limits *lim, pp_err *err) {
  pprof_profile *p = NULL;
  int r = pprof_decode(d, n, lim, &p, err);
  pprof_free(p);
  return r;
}

/* Encodes a wire message built with protobuf-c, for inputs our encoder would never produce. */
static uint8_t *pack(Pprofwire__Profile *w, size_t *len) {
  *len = pprofwire__profile__get_packed_size(w);
  uint8_t *b = malloc(*len + 1);
  pprofwire__profile__pack(w, b);
  return b;
}

static void decode_rejects_bad_references(void) {
  pp_err err = {0};
  CHECK(decode_bytes("", 0, NULL, &err) == PP_EINVAL);
  CHECK(decode_bytes("\xff\xff\xff\xff", 4, NULL, &err) == PP_EINVAL);

  char *st[] = {"", "cpu", "ns"};
  Pprofwire__ValueType vt = PPROFWIRE__VALUE_TYPE__INIT, *vts[] = {&vt};
  vt.type = 1;
  vt.unit = 2;
  uint64_t locid = 5;
  int64_t val = 1;
  Pprofwire__Sample s = PPROFWIRE__SAMPLE__INIT, *ss[] = {&s};
  s.n_location_id = 1;
  s.location_id = &locid;
  s.n_value = 1;
  s.value = &val;
  Pprofwire__Profile w = PPROFWIRE__PROFILE__INIT;
  w.n_string_table = 3;
  w.string_table = st;
  w.n_sample_type = 1;
  w.sample_type = vts;
  w.n_sample = 1;
  w.sample = ss;
  size_t len;
  uint8_t *b = pack(&w, &len);
  CHECK(decode_bytes(b, len, NULL, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "missing location 5") != NULL);
  free(b);

  /* a string index past the table */
  vt.unit = 99;
  w.n_sample = 0;
  b = pack(&w, &len);
  CHECK(decode_bytes(b, len, NULL, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "string index 99") != NULL);
  free(b);
  vt.unit = 2;

  /* value count differs from sample types */
  Pprofwire__Location loc = PPROFWIRE__LOCATION__INIT, *locs[] = {&loc, &loc};
  loc.id = 5;
  w.n_location = 1;
  w.location = locs;
  w.n_sample = 1;
  s.n_value = 0;
  b = pack(&w, &len);
  CHECK(decode_bytes(b, len, NULL, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "0 values") != NULL);
  free(b);
  s.n_value = 1;

  /* duplicate location ids */
  w.n_location = 2;
  b = pack(&w, &len);
  CHECK(decode_bytes(b, len, NULL, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "duplicate location id 5") != NULL);
  free(b);
  w.n_location = 1;

  /* the string table must start with "" */
  st[0] = "x";
  b = pack(&w, &len);
  CHECK(decode_bytes(b, len, NULL, &err) == PP_EINVAL);
  free(b);
  st[0] = "";

  /* well formed: decodes */
  b = pack(&w, &len);
  CHECK(decode_bytes(b, len, NULL, &err) == 0);

  /* and limits apply to it */
  pprof_limits lim;
  pprof_limits_default(&lim);
  lim.max_samples = 0;
  CHECK(decode_bytes(b, len, &lim, &err) == PP_ELIMIT);
  CHECK(strstr(err.msg, "1 samples exceed the limit of 0") != NULL);
  pprof_limits_default(&lim);
  lim.max_strings = 2;
  CHECK(decode_bytes(b, len, &lim, &err) == PP_ELIMIT);
  pprof_limits_default(&lim);
  lim.max_stack_depth = 0;
  CHECK(decode_bytes(b, len, &lim, &err) == PP_ELIMIT);
  pprof_limits_default(&lim);
  lim.max_decompressed = len - 1;
  CHECK(decode_bytes(b, len, &lim, &err) == PP_ELIMIT);
  pprof_limits_default(&lim);
  lim.max_memory = 64; /* smaller than one arena chunk */
  CHECK(decode_bytes(b, len, &lim, &err) == PP_ELIMIT);
  CHECK(strstr(err.msg, "memory limit") != NULL);
  free(b);
}

static void decode_every_shared_profile(void) {
  const char *dir = getenv("PPROF_TESTDATA");
  if (!dir) dir = "../shared/testdata/pprof";
  const char *files[] = {"gotarget/cpu-1.pb.gz", "gotarget/heap.pb.gz", "gotarget/goroutine.pb.gz",
                         "prometheus/allocs.pb.gz", "large/gotypes-cpu.pb"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    pprof_profile *p = NULL;
    pp_err err = {0};
    int r = pprof_decode_file(path, NULL, &p, &err);
    if (r) fprintf(stderr, "  %s\n", err.msg);
    CHECK(r == 0);
    CHECK(p && p->nsample > 0 && p->nsample_type > 0);
    pprof_free(p);
  }
  pp_err err = {0};
  pprof_profile *p = NULL;
  CHECK(pprof_decode_file("/nonexistent/x.pb.gz", NULL, &p, &err) == PP_EIO);
  CHECK(strstr(err.msg, "/nonexistent/x.pb.gz") != NULL);
}

static pprof_profile *decode_shared(const char *rel) {
  const char *dir = getenv("PPROF_TESTDATA");
  if (!dir) dir = "../shared/testdata/pprof";
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  pprof_profile *p = NULL;
  pp_err err = {0};
  if (pprof_decode_file(path, NULL, &p, &err) < 0) fprintf(stderr, "  %s\n", err.msg);
  return p;
}

/* The merger's cap (pprof_merger_set_limit) on twelve real CPU profiles: the bytes it reports
 * after each add, unlimited, are what it holds (within an add it only grows, so the largest of
 * them is the need); a cap one byte under the need fails at exactly the add that reaches it,
 * with the limit error and never holding more than the cap before; a cap of the need lets
 * every add through, and twice it (finish copies the result out) gives the same profile as no
 * cap while the need alone fails in finish. */
static void merger_limit_on_shared_profiles(void) {
  enum { N = 12 };
  pprof_profile *src[N];
  bool all = true;
  for (int i = 0; i < N; i++) {
    char rel[64];
    snprintf(rel, sizeof rel, "%s/cpu-%d.pb.gz", i < 6 ? "prometheus" : "gotarget", i % 6 + 1);
    src[i] = decode_shared(rel);
    all = all && src[i];
  }
  CHECK(all);
  if (!all) goto out;
  size_t held[N], need = 0;
  int k = 0;
  pprof_merger *m;
  pp_err err = {0};
  pprof_profile *want = NULL, *got = NULL;
  CHECK(pprof_merger_new(&m, &err) == 0);
  for (int i = 0; i < N; i++) {
    CHECK(pprof_merger_add(m, src[i], 1, &err) == 0);
    held[i] = pprof_merger_bytes(m);
    if (held[i] > need) need = held[i], k = i;
  }
  CHECK(pprof_merger_finish(m, &want, &err) == 0);
  /* the merged tables grow with distinct stacks: the need is reached after the first add */
  CHECK(k > 0 && need > held[0]);
  /* one byte under the need */
  size_t cap = need - 1;
  CHECK(pprof_merger_new(&m, &err) == 0);
  pprof_merger_set_limit(m, cap);
  int failed_at = -1;
  for (int i = 0; i < N && failed_at < 0; i++) {
    int r = pprof_merger_add(m, src[i], 1, &err);
    if (r < 0) {
      failed_at = i;
      CHECK(pprof_merger_bytes(m) <= cap); /* refused before it was allocated */
      CHECK(r == PP_ELIMIT);
      CHECK(strstr(err.msg, "memory limit") != NULL);
    } else {
      CHECK(pprof_merger_bytes(m) <= cap);
      CHECK_EQ_I64(pprof_merger_bytes(m), held[i]);
    }
  }
  CHECK_EQ_I64(failed_at, k);
  pprof_merger_free(m);
  /* caps across the whole range, so that every kind of growth (tables, vectors, arena, maps)
   * is the one that meets a cap somewhere: each merge fails at the first add whose unlimited
   * size passes the cap (or none), and never holds more than the cap */
  int wrong = 0;
  for (int c = 0; c < 256; c++) {
    size_t capc = held[0] / 2 + (need - held[0] / 2) * (size_t)c / 256;
    int expect = -1;
    for (int i = 0; i < N && expect < 0; i++)
      if (held[i] > capc) expect = i;
    CHECK(pprof_merger_new(&m, &err) == 0);
    pprof_merger_set_limit(m, capc);
    int at = -1;
    for (int i = 0; i < N && at < 0; i++) {
      int r = pprof_merger_add(m, src[i], 1, &err);
      if (pprof_merger_bytes(m) > capc || (r < 0 && r != PP_ELIMIT)) wrong++;
      if (r < 0) at = i;
    }
    if (at != expect) wrong++, fprintf(stderr, "  cap %zu: failed at %d, expected %d (%zu)\n", capc, at, expect, pprof_merger_bytes(m));
    pprof_merger_free(m);
  }
  CHECK_EQ_I64(wrong, 0);
  /* at the need: every add passes */
  CHECK(pprof_merger_new(&m, &err) == 0);
  pprof_merger_set_limit(m, need);
  for (int i = 0; i < N; i++)
    CHECK(pprof_merger_add(m, src[i], 1, &err) == 0);
  pprof_merger_free(m);
  /* twice the need: finishes, the same profile as without a cap */
  CHECK(pprof_merger_new(&m, &err) == 0);
  pprof_merger_set_limit(m, 2 * need);
  for (int i = 0; i < N; i++)
    CHECK(pprof_merger_add(m, src[i], 1, &err) == 0);
  CHECK(pprof_merger_finish(m, &got, &err) == 0);
  if (got && want) {
    const char *why = profile_eq(got, want);
    if (why) fprintf(stderr, "  %s\n", why);
    CHECK(why == NULL);
  }
  /* a cap under what finish copies out fails there, cleanly */
  CHECK(pprof_merger_new(&m, &err) == 0);
  pprof_merger_set_limit(m, need);
  for (int i = 0; i < N; i++)
    CHECK(pprof_merger_add(m, src[i], 1, &err) == 0);
  pprof_profile *none = NULL;
  CHECK(pprof_merger_finish(m, &none, &err) == PP_ELIMIT);
  CHECK(none == NULL && strstr(err.msg, "memory limit") != NULL);
  pprof_free(want);
  pprof_free(got);
out:
  for (int i = 0; i < N; i++)
    pprof_free(src[i]);
}

/* max_memory on a real 21 MB profile: under the decompressed size (gunzip stops), under what
 * the decoded profile holds, under the bytes and the profile together, and with room for those
 * but not the decoder's scratch (its sample spans alone are 16 bytes a sample): PP_ELIMIT
 * naming the limit, nothing leaked (ASan flavour); with room for all, the same profile. */
static void decode_memory_limit_on_shared_profile(void) {
  const char *dir = getenv("PPROF_TESTDATA");
  if (!dir) dir = "../shared/testdata/pprof";
  char path[1024];
  snprintf(path, sizeof path, "%s/large/gotypes-mem.pb", dir);
  pprof_profile *full = NULL;
  pp_err err = {0};
  CHECK(pprof_decode_file(path, NULL, &full, &err) == 0);
  if (!full) return;
  uint8_t *gz, *raw;
  size_t gzlen, rawlen;
  CHECK(pp_read_file(path, (size_t)64 << 20, &gz, &gzlen, &err) == 0);
  CHECK(pprof_gunzip(gz, gzlen, (size_t)64 << 20, &raw, &rawlen, &err) == 0);
  size_t held = full->mem.reserved;
  size_t limits[] = {rawlen - 1, held / 2, rawlen + held - 1, rawlen + held + full->nsample * 8};
  for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
    pprof_limits lim;
    pprof_limits_default(&lim);
    lim.max_memory = limits[i];
    pprof_profile *p = NULL;
    int r = pprof_decode(gz, gzlen, &lim, &p, &err);
    if (r != PP_ELIMIT) fprintf(stderr, "  limit %zu: %d %s\n", limits[i], r, err.msg);
    CHECK(r == PP_ELIMIT && p == NULL);
    CHECK(strstr(err.msg, "memory limit") != NULL);
  }
  pprof_limits lim;
  pprof_limits_default(&lim);
  lim.max_memory = 2 * (rawlen + held);
  pprof_profile *p = NULL;
  CHECK(pprof_decode(gz, gzlen, &lim, &p, &err) == 0);
  if (p) CHECK(profile_eq(p, full) == NULL);
  pprof_free(p);
  pprof_free(full);
  free(gz);
  free(raw);
}

/* The fast decoder and the protobuf-c reference read every shared profile identically. */
static void decoders_agree_on_shared_profiles(void) {
  const char *dir = getenv("PPROF_TESTDATA");
  if (!dir) dir = "../shared/testdata/pprof";
  const char *sub[] = {"gotarget", "prometheus", "large"};
  int compared = 0;
  for (size_t s = 0; s < 3; s++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, sub[s]);
    DIR *d = opendir(path);
    CHECK(d != NULL);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (!strstr(e->d_name, ".pb")) continue;
      char file[2048];
      snprintf(file, sizeof file, "%s/%s", path, e->d_name);
      FILE *fp = fopen(file, "rb");
      if (!fp) continue;
      static uint8_t buf[8 << 20];
      size_t n = fread(buf, 1, sizeof buf, fp);
      fclose(fp);
      uint8_t *raw;
      size_t rawlen;
      pp_err err = {0};
      CHECK(pprof_gunzip(buf, n, (size_t)64 << 20, &raw, &rawlen, &err) == 0);
      pprof_limits lim;
      pprof_limits_default(&lim);
      pprof_profile *a = NULL, *b = NULL;
      CHECK(pprof_decode_wire(raw, rawlen, &lim, &a, &err) == 0);
      CHECK(pprof_decode_pbc(raw, rawlen, &lim, &b, &err) == 0);
      if (a && b) {
        const char *why = profile_eq(a, b);
        if (why) fprintf(stderr, "  %s: %s\n", file, why);
        CHECK(why == NULL);
        compared++;
      }
      pprof_free(a);
      pprof_free(b);
      free(raw);
    }
    if (d) closedir(d);
  }
  CHECK(compared >= 30);
}

/* ---- focus (sandwich) ------------------------------------------------------------------------ */

/* The depth-1 child of node 0 named name in t (input k's total and self), or -1. */
static int64_t child_of(const pprof_multitree *t, uint32_t parent, const char *name) {
  for (size_t i = 1; i < t->nnodes; i++)
    if (t->parent[i] == parent && !strcmp(t->names[i], name)) return (int64_t)i;
  return -1;
}

/* Follows a path of names from node 0; -1 when a step is missing. */
static int64_t path_of(const pprof_multitree *t, const char *const *names, size_t n) {
  int64_t cur = 0;
  for (size_t i = 0; i < n && cur >= 0; i++) cur = child_of(t, (uint32_t)cur, names[i]);
  return cur;
}

static size_t children_count(const pprof_multitree *t, uint32_t parent) {
  size_t c = 0;
  for (size_t i = 1; i < t->nnodes; i++) c += t->parent[i] == parent;
  return c;
}

/* The small profile (see build_small), cpu: values worked out by hand.
 *   focus f: flat 20 (S1's leaf), cum 30 (S0 10 + S1 20; S1's f > f is one occurrence).
 *     callees: f (self 20, total 30) > g (0, 10) > h (10, 10)
 *     callers: f (0, 30) > main (30, 30)
 *     lines: x.go:3 flat 20 cum 30 (L1 in S0 and S1), x.go:4 flat 0 cum 20 (L3 in S1)
 *   focus g: callers g > f > main, 10 each; callees g > h 10; lines x.go:9 0/10.
 *   focus main: callers: main alone, self 60 (the outermost frame); callees: f 30.
 * With the profile given twice (as profile and base) every value is in both columns. */
static void focus_small_by_hand(void) {
  pprof_profile *p = build_small();
  const pprof_profile *ps[2] = {p, p};
  int si[2] = {1, 1};
  pprof_focus f;
  pp_err err = {0};
  CHECK(pprof_focus_compute(ps, si, 1, "f", 0, &f, &err) == 0);
  CHECK(f.found);
  CHECK_EQ_I64(f.flat[0], 20);
  CHECK_EQ_I64(f.cum[0], 30);
  CHECK_STR(f.callees.names[0], "f");
  CHECK_EQ_I64(f.callees.total[0], 30);
  CHECK_EQ_I64(f.callees.self[0], 20);
  CHECK_EQ_I64(f.callees.nnodes, 3);
  const char *gh[] = {"g", "h"};
  int64_t g = path_of(&f.callees, gh, 1), h = path_of(&f.callees, gh, 2);
  CHECK(g > 0 && h > 0);
  if (g > 0 && h > 0) {
    CHECK_EQ_I64(f.callees.total[g], 10);
    CHECK_EQ_I64(f.callees.self[g], 0);
    CHECK_EQ_I64(f.callees.total[h], 10);
    CHECK_EQ_I64(f.callees.self[h], 10);
  }
  CHECK_EQ_I64(f.callers.nnodes, 2);
  CHECK_EQ_I64(f.callers.total[0], 30);
  CHECK_EQ_I64(f.callers.self[0], 0);
  int64_t m = child_of(&f.callers, 0, "main");
  CHECK(m > 0);
  if (m > 0) {
    CHECK_EQ_I64(f.callers.total[m], 30);
    CHECK_EQ_I64(f.callers.self[m], 30);
  }
  CHECK_EQ_I64(f.nlines, 2);
  if (f.nlines == 2) {
    CHECK_STR(f.lines[0].file, "x.go");
    CHECK_EQ_I64(f.lines[0].line, 3);
    CHECK_EQ_I64(f.lines[0].flat[0], 20);
    CHECK_EQ_I64(f.lines[0].cum[0], 30);
    CHECK_EQ_I64(f.lines[1].line, 4);
    CHECK_EQ_I64(f.lines[1].flat[0], 0);
    CHECK_EQ_I64(f.lines[1].cum[0], 20);
  }
  pprof_focus_release(&f);

  CHECK(pprof_focus_compute(ps, si, 1, "g", 0, &f, &err) == 0);
  const char *fm[] = {"f", "main"};
  int64_t cm = path_of(&f.callers, fm, 2);
  CHECK(cm > 0 && f.callers.total[cm] == 10 && f.callers.self[cm] == 10);
  CHECK(child_of(&f.callees, 0, "h") > 0 && f.callees.total[child_of(&f.callees, 0, "h")] == 10);
  CHECK(f.nlines == 1 && f.lines[0].line == 9 && f.lines[0].flat[0] == 0 && f.lines[0].cum[0] == 10);
  pprof_focus_release(&f);

  CHECK(pprof_focus_compute(ps, si, 1, "main", 0, &f, &err) == 0);
  CHECK_EQ_I64(f.callers.nnodes, 1);
  CHECK_EQ_I64(f.callers.self[0], 60);
  CHECK_EQ_I64(f.callees.self[0], 30);
  CHECK(child_of(&f.callees, 0, "f") > 0 && f.callees.total[child_of(&f.callees, 0, "f")] == 30);
  pprof_focus_release(&f);

  CHECK(pprof_focus_compute(ps, si, 1, "nothere", 0, &f, &err) == 0);
  CHECK(!f.found);
  CHECK_EQ_I64(f.callees.nnodes, 1);
  CHECK_EQ_I64(f.nlines, 0);
  pprof_focus_release(&f);

  /* profile and base: the base's column holds the same values */
  CHECK(pprof_focus_compute(ps, si, 2, "f", 0, &f, &err) == 0);
  CHECK(f.flat[1] == 20 && f.cum[1] == 30);
  CHECK(f.callees.ninputs == 2 && f.callees.total[1] == 30 && f.callees.self[1] == 20);
  CHECK(f.nlines == 2 && f.lines[0].cum[1] == 30 && f.lines[1].cum[1] == 20);
  pprof_focus_release(&f);
  /* a node cap under the tree's size is an error */
  CHECK(pprof_focus_compute(ps, si, 1, "f", 1, &f, &err) == PP_ELIMIT);
  pprof_free(p);
}

/* Recursion through another function: the small profile plus S4 = L1 L0 L3 L2 (4, 40), the
 * stack main > f(x.go:4) > g > h > f(x.go:3), with f at both ends. As go tool pprof counts
 * edges once per sample: f's out-edge f>g weighs 10 + 40 = 50, its in-edges main>f 70 and h>f
 * 40; flat 20 + 40 = 60, cum 10 + 20 + 40 = 70.
 *   callees: f (self 60, total 70) > g 50 > h (self 10, total 50) > f (40, 40)
 *   callers: f (0, 70) > main (70, 70); f > h 40 > g 40 > f 40 > main (40, 40)
 *   lines: x.go:3 flat 60 cum 70, x.go:4 flat 0 cum 60 (S1 20 + S4 40). */
static void focus_mutual_recursion_by_hand(void) {
  pprof_profile *p = build_small();
  pprof_sample *ns = arena_alloc(&p->mem, (p->nsample + 1) * sizeof *ns);
  uint32_t *loc = arena_alloc(&p->mem, 4 * sizeof *loc);
  int64_t *val = arena_alloc(&p->mem, 2 * sizeof *val);
  CHECK(ns && loc && val);
  if (!ns || !loc || !val) return;
  memcpy(ns, p->sample, p->nsample * sizeof *ns);
  loc[0] = 1, loc[1] = 0, loc[2] = 3, loc[3] = 2;
  val[0] = 4, val[1] = 40;
  ns[p->nsample] = (pprof_sample){.loc = loc, .value = val, .nloc = 4};
  p->sample = ns;
  p->nsample++;
  const pprof_profile *ps[1] = {p};
  int si = 1;
  pprof_focus f;
  pp_err err = {0};
  CHECK(pprof_focus_compute(ps, &si, 1, "f", 0, &f, &err) == 0);
  CHECK(f.flat[0] == 60 && f.cum[0] == 70);
  CHECK(f.callees.total[0] == 70 && f.callees.self[0] == 60);
  CHECK_EQ_I64(children_count(&f.callees, 0), 1);
  const char *ghf[] = {"g", "h", "f"};
  int64_t g = path_of(&f.callees, ghf, 1), h = path_of(&f.callees, ghf, 2), ff = path_of(&f.callees, ghf, 3);
  CHECK(g > 0 && h > 0 && ff > 0);
  if (g > 0 && h > 0 && ff > 0) {
    CHECK_EQ_I64(f.callees.total[g], 50);
    CHECK_EQ_I64(f.callees.total[h], 50);
    CHECK_EQ_I64(f.callees.self[h], 10);
    CHECK_EQ_I64(f.callees.total[ff], 40);
    CHECK_EQ_I64(f.callees.self[ff], 40);
  }
  CHECK(f.callers.total[0] == 70 && f.callers.self[0] == 0);
  CHECK_EQ_I64(children_count(&f.callers, 0), 2);
  int64_t m = child_of(&f.callers, 0, "main");
  CHECK(m > 0 && f.callers.total[m] == 70 && f.callers.self[m] == 70);
  const char *hgfm[] = {"h", "g", "f", "main"};
  int64_t ch = path_of(&f.callers, hgfm, 1), cm = path_of(&f.callers, hgfm, 4);
  CHECK(ch > 0 && f.callers.total[ch] == 40);
  CHECK(cm > 0 && f.callers.total[cm] == 40 && f.callers.self[cm] == 40);
  CHECK_EQ_I64(f.nlines, 2);
  if (f.nlines == 2) {
    CHECK(f.lines[0].line == 3 && f.lines[0].flat[0] == 60 && f.lines[0].cum[0] == 70);
    CHECK(f.lines[1].line == 4 && f.lines[1].flat[0] == 0 && f.lines[1].cum[0] == 60);
  }
  pprof_focus_release(&f);
  pprof_free(p);
}

/* On real profiles, for their 60 hottest functions by flat and by cum: the focus's flat and cum
 * are pprof_top's (a separate computation, itself checked against go tool pprof); node 0 of
 * both trees totals cum, the callees' node 0 self is flat; no child totals more than its parent
 * (its samples pass through the parent's path); the children of node 0 and node 0's self cover
 * cum; the lines' flats add up to flat and no line's cum passes cum. */
static void focus_agrees_with_top_on_shared_profiles(void) {
  const char *files[] = {"gotarget/heap.pb.gz", "gotarget/cpu-1.pb.gz", "prometheus/cpu-1.pb.gz",
                         "large/compile-cpu.pb"};
  for (size_t fi = 0; fi < sizeof files / sizeof *files; fi++) {
    pprof_profile *p = decode_shared(files[fi]);
    CHECK(p != NULL);
    if (!p) continue;
    int si = (int)p->nsample_type - 1;
    pprof_top t;
    CHECK(pprof_top_compute(p, si, &t, NULL) == 0);
    size_t checked = 0, bad = 0;
    for (size_t i = 0; i < t.nfuncs; i++) {
      const pprof_func_stat *s = &t.funcs[i];
      /* top is sorted by flat: the first 60, and any with a large cum */
      if (i >= 60 && s->cum * 50 < t.total) continue;
      pprof_focus f;
      const pprof_profile *ps[1] = {p};
      if (pprof_focus_compute(ps, &si, 1, s->name, 0, &f, NULL) < 0) {
        bad++;
        continue;
      }
      bool ok = f.found && f.flat[0] == s->flat && f.cum[0] == s->cum && f.callees.total[0] == s->cum &&
                f.callers.total[0] == s->cum && f.callees.self[0] == s->flat;
      const pprof_multitree *trees[2] = {&f.callees, &f.callers};
      for (int k = 0; k < 2; k++) {
        const pprof_multitree *tr = trees[k];
        int64_t cover = tr->self[0];
        for (size_t n = 1; n < tr->nnodes; n++) {
          ok &= tr->total[n] <= tr->total[tr->parent[n]] && tr->self[n] <= tr->total[n] && tr->total[n] > 0;
          if (tr->parent[n] == 0) cover += tr->total[n];
        }
        ok &= cover >= s->cum;
      }
      int64_t lflat = 0;
      for (size_t n = 0; n < f.nlines; n++) {
        lflat += f.lines[n].flat[0];
        ok &= f.lines[n].cum[0] <= s->cum && f.lines[n].cum[0] > 0;
      }
      ok &= lflat == s->flat && f.nlines > 0;
      if (!ok && bad < 5) fprintf(stderr, "  %s: focus %s disagrees\n", files[fi], s->name);
      bad += !ok;
      checked++;
      pprof_focus_release(&f);
    }
    if (checked < 5) fprintf(stderr, "  %s: %zu functions checked\n", files[fi], checked);
    CHECK(checked >= 5);
    CHECK_EQ_I64(bad, 0);
    pprof_top_release(&t);
    pprof_free(p);
  }
}

/* pprof_pgo_trim on a real CPU profile (large/gotypes-cpu.pb, deep stacks): every sample keeps
 * at most keep_locations locations, the leaf's innermost line is 0 and nothing else about it
 * changes, labels go, the totals and every function's flat stay; keep 0 without aggregation
 * keeps the profile's top table whole; the source is untouched; a cap too small is PP_ELIMIT. */
static void pgo_trim_on_a_real_profile(void) {
  pprof_profile *p = decode_shared("large/gotypes-cpu.pb"), *t = NULL, *u = NULL;
  CHECK(p != NULL);
  if (!p) return;
  size_t nsample = p->nsample, deepest = 0;
  for (size_t i = 0; i < p->nsample; i++)
    if (p->sample[i].nloc > deepest) deepest = p->sample[i].nloc;
  CHECK(deepest > 5);
  pp_err err = {0};
  pprof_pgo_opts o = {.keep_locations = 5, .aggregate_callees = true};
  CHECK(pprof_pgo_trim(p, &o, 0, &t, &err) == 0);
  pprof_pgo_opts all = {.keep_locations = 0, .aggregate_callees = false};
  CHECK(pprof_pgo_trim(p, &all, 0, &u, &err) == 0);
  CHECK_EQ_I64(p->nsample, nsample); /* the source as it was */
  if (t && u) {
    CHECK(t->nsample < p->nsample);
    bool short_ok = true, leaf_ok = true, nolabels = true;
    for (size_t i = 0; i < t->nsample; i++) {
      const pprof_sample *s = &t->sample[i];
      short_ok &= s->nloc <= 5;
      nolabels &= s->nlabel == 0;
      if (s->nloc && t->location[s->loc[0]].nline) leaf_ok &= t->location[s->loc[0]].line[0].line == 0;
    }
    CHECK(short_ok);
    CHECK(leaf_ok);
    CHECK(nolabels);
    for (int si = 0; si < (int)p->nsample_type; si++) {
      pprof_top a, b, c;
      CHECK(pprof_top_compute(p, si, &a, NULL) == 0);
      CHECK(pprof_top_compute(t, si, &b, NULL) == 0);
      CHECK(pprof_top_compute(u, si, &c, NULL) == 0);
      CHECK_EQ_I64(b.total, a.total);
      CHECK_EQ_I64(c.total, a.total);
      CHECK_EQ_I64(c.nfuncs, a.nfuncs);
      size_t flat_diff = 0, whole_diff = 0;
      for (size_t i = 0; i < a.nfuncs; i++) {
        int64_t bf = 0;
        for (size_t k = 0; k < b.nfuncs; k++)
          if (!strcmp(b.funcs[k].name, a.funcs[i].name)) bf = b.funcs[k].flat;
        flat_diff += bf != a.funcs[i].flat;
        whole_diff += i >= c.nfuncs || strcmp(c.funcs[i].name, a.funcs[i].name) || c.funcs[i].flat != a.funcs[i].flat ||
                      c.funcs[i].cum != a.funcs[i].cum;
      }
      CHECK_EQ_I64(flat_diff, 0);
      CHECK_EQ_I64(whole_diff, 0);
      pprof_top_release(&a);
      pprof_top_release(&b);
      pprof_top_release(&c);
    }
  }
  pprof_free(t);
  pprof_free(u);
  t = NULL;
  CHECK(pprof_pgo_trim(p, &o, 4096, &t, &err) == PP_ELIMIT);
  CHECK(t == NULL);
  pprof_free(p);
}

int main(void) {
  RUN(top_counts_recursion_once_and_inlines);
  RUN(pgo_trim_on_a_real_profile);
  RUN(tree_is_root_to_leaf);
  RUN(encode_decode_round_trip);
  RUN(merge_sums_equal_stacks);
  RUN(merger_is_incremental_merge);
  RUN(merge_rejects_mismatched_types);
  RUN(decode_pipeline_orders_reports_and_stops);
  RUN(diff_and_scale);
  RUN(sample_index_by_name_number_default);
  RUN(gunzip_caps_decompressed_size);
  RUN(gunzip_members_and_trailing_garbage);
  RUN(decode_rejects_bad_references);
  RUN(decode_every_shared_profile);
  RUN(decoders_agree_on_shared_profiles);
  RUN(merger_limit_on_shared_profiles);
  RUN(decode_memory_limit_on_shared_profile);
  RUN(focus_small_by_hand);
  RUN(focus_mutual_recursion_by_hand);
  RUN(focus_agrees_with_top_on_shared_profiles);
  return tt_finish();
}
