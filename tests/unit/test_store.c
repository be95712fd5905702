/* Unit tests of the store: append and query, crash repair, index rebuild, retention. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../src/base/file.h"
#include "../../src/collector/store.h"
#include "tt.h"

static char dir[256];
static const char *testdata(void) {
  const char *d = getenv("PPROF_TESTDATA");
  return d ? d : "../shared/testdata/pprof";
}

/* the file, or NULL (profiles here are small; 256 MiB is the store's own record cap) */
static uint8_t *slurp(const char *path, size_t *len) {
  uint8_t *b = NULL;
  return pp_read_file(path, (size_t)256 << 20, &b, len, NULL) == 0 ? b : NULL;
}

static void fresh_dir(void) {
  snprintf(dir, sizeof dir, "/tmp/pprof-store-test-%d", (int)getpid());
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
}

/* Appends the file as a record of series {monitor=name}. */
static int add(store *s, const char *rel, const char *monitor, const char *type, int64_t end) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", testdata(), rel);
  size_t len;
  uint8_t *b = slurp(path, &len);
  CHECK(b != NULL);
  if (!b) return -1;
  pprof_profile *p = NULL;
  CHECK(pprof_decode(b, len, NULL, &p, NULL) == 0);
  store_label l[2] = {{"monitor", monitor}, {"team", "core"}};
  store_record r = {l, 2, type, end - 1000, end, b, len, p};
  bool enospc;
  pp_err err = {0};
  int rc = store_append(s, &r, &enospc, &err);
  if (rc) fprintf(stderr, "  append: %s\n", err.msg);
  pprof_free(p);
  free(b);
  return rc;
}

static store *open_store(uint64_t retention, uint64_t segment, store_repair *rep) {
  store_opts o = {.dir = dir, .retention_bytes = retention, .segment_bytes = segment};
  store *s = NULL;
  pp_err err = {0};
  int r = store_open(&o, &s, rep, &err);
  if (r) fprintf(stderr, "  open: %s\n", err.msg);
  CHECK(r == 0);
  return s;
}

static int64_t top_cum(const pprof_profile *p, const char *fn) {
  pprof_top t;
  int64_t v = -1;
  if (pprof_top_compute(p, (int)p->nsample_type - 1, &t, NULL) == 0) {
    for (size_t i = 0; i < t.nfuncs; i++)
      if (!strcmp(t.funcs[i].name, fn)) v = t.funcs[i].cum;
    pprof_top_release(&t);
  }
  return v;
}

/* How many samples of p have fn on their stack (each may be rounded once when p is scaled). */
static size_t samples_under(const pprof_profile *p, const char *fn) {
  size_t n = 0;
  for (size_t i = 0; i < p->nsample; i++) {
    bool found = false;
    for (uint32_t k = 0; k < p->sample[i].nloc && !found; k++) {
      const pprof_location *l = &p->location[p->sample[i].loc[k]];
      for (uint32_t j = 0; j < l->nline && !found; j++)
        found = l->line[j].function && !strcmp(pprof_str(p, p->function[l->line[j].function - 1].name), fn);
    }
    n += found;
  }
  return n;
}

static void append_query_merge(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  const char *cpus[] = {"gotarget/cpu-1.pb.gz", "gotarget/cpu-2.pb.gz", "gotarget/cpu-3.pb.gz"};
  for (int i = 0; i < 3; i++)
    CHECK(add(s, cpus[i], "a", "cpu", 1000000 * (i + 1)) == 0);
  CHECK(add(s, "prometheus/cpu-1.pb.gz", "b", "cpu", 5000000) == 0);
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 6000000) == 0);
  store_series_info *si;
  size_t n;
  pp_err err = {0};
  CHECK(store_list_series(s, NULL, 0, NULL, 0, 0, &si, &n, &err) == 0);
  CHECK_EQ_I64(n, 3); /* (a,cpu) (a,heap) (b,cpu) */
  store_series_free(si, n);
  store_matcher m = {"monitor", "a"};
  CHECK(store_list_series(s, &m, 1, "cpu", 0, 0, &si, &n, &err) == 0);
  CHECK_EQ_I64(n, 1);
  if (n) {
    CHECK_EQ_I64(si[0].count, 3);
    CHECK_EQ_I64(si[0].last_ns, 3000000);
    CHECK_STR(si[0].labels_json, "{\"monitor\":\"a\",\"team\":\"core\"}");
    CHECK_STR(si[0].sample_types, "samples/count,cpu/nanoseconds");
  }
  store_series_free(si, n);
  store_row *rows;
  CHECK(store_list_rows(s, &m, 1, "cpu", 1500000, 0, 0, &rows, &n, &err) == 0);
  CHECK_EQ_I64(n, 2); /* time filter */
  if (n == 2) CHECK(rows[0].end_ns < rows[1].end_ns);
  store_rows_free(rows, n);

  /* merged == the codec's merge of the same files */
  pprof_profile *merged = NULL, *ps[3], *ref = NULL;
  size_t cnt = 0;
  CHECK(store_merged(s, &m, 1, "cpu", 0, 0, STORE_AGG_SUM, 0, &merged, &cnt, &err) == 0);
  CHECK_EQ_I64(cnt, 3);
  for (int i = 0; i < 3; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", testdata(), cpus[i]);
    CHECK(pprof_decode_file(path, NULL, &ps[i], NULL) == 0);
  }
  CHECK(pprof_merge(ps, 3, &ref, NULL) == 0);
  if (merged && ref) {
    CHECK(top_cum(merged, "main.hashLoop") > 0);
    CHECK_EQ_I64(top_cum(merged, "main.hashLoop"), top_cum(ref, "main.hashLoop"));
    CHECK_EQ_I64(top_cum(merged, "runtime.main"), top_cum(ref, "runtime.main"));
  }
  pprof_free(merged);
  /* latest: just cpu-3 */
  CHECK(store_merged(s, &m, 1, "cpu", 0, 0, STORE_AGG_LATEST, 0, &merged, &cnt, &err) == 0);
  CHECK_EQ_I64(cnt, 1);
  if (merged) CHECK_EQ_I64(top_cum(merged, "main.hashLoop"), top_cum(ps[2], "main.hashLoop"));
  pprof_free(merged);
  /* avg over 3 = sum / 3; scaling rounds each sample, so the function's cum is off by at most
   * half a unit for each sample under it */
  CHECK(store_merged(s, &m, 1, "cpu", 0, 0, STORE_AGG_AVG, 0, &merged, &cnt, &err) == 0);
  if (merged && ref) {
    int64_t a = top_cum(merged, "main.hashLoop"), b = top_cum(ref, "main.hashLoop");
    size_t under = samples_under(ref, "main.hashLoop");
    CHECK(a > 0 && under > 0 && fabs((double)a - (double)b / 3) <= 0.5 * (double)under);
  }
  pprof_free(merged);
  /* avg over two series with 3 and 1 records: a's average plus b's one record (b's functions
   * keep their values exactly; a's are a third of the sum) */
  pprof_profile *pb = NULL, *both = NULL;
  char pbpath[512];
  snprintf(pbpath, sizeof pbpath, "%s/prometheus/cpu-1.pb.gz", testdata());
  CHECK(pprof_decode_file(pbpath, NULL, &pb, NULL) == 0);
  CHECK(store_merged(s, NULL, 0, "cpu", 0, 0, STORE_AGG_AVG, 0, &both, &cnt, &err) == 0);
  CHECK_EQ_I64(cnt, 4);
  if (both && pb && ref) {
    const char *prom_fn = "github.com/prometheus/prometheus/promql.(*evaluator).eval";
    CHECK(top_cum(pb, prom_fn) > 0);
    CHECK_EQ_I64(top_cum(both, prom_fn), top_cum(pb, prom_fn));
    int64_t a = top_cum(both, "main.hashLoop"), b = top_cum(ref, "main.hashLoop");
    CHECK(fabs((double)a - (double)b / 3) <= 0.5 * (double)samples_under(ref, "main.hashLoop"));
  }
  pprof_free(both);
  pprof_free(pb);
  for (int i = 0; i < 3; i++)
    pprof_free(ps[i]);
  pprof_free(ref);
  /* nothing matches: a clear error */
  store_matcher none = {"monitor", "zzz"};
  CHECK(store_merged(s, &none, 1, "cpu", 0, 0, STORE_AGG_SUM, 0, &merged, &cnt, &err) == PP_EUSAGE);
  store_stats st;
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.profiles, 5);
  CHECK_EQ_I64(st.series, 2);
  store_close(s);
}

static char *first_segment(void) {
  static char path[1024];
  char sd[300];
  snprintf(sd, sizeof sd, "%s/segments", dir);
  DIR *d = opendir(sd);
  struct dirent *e;
  path[0] = '\0';
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".seg")) snprintf(path, sizeof path, "%s/%s", sd, e->d_name);
  if (d) closedir(d);
  return path;
}

static void repair_after_crash(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  for (int i = 0; i < 4; i++)
    CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000 * (i + 1)) == 0);
  store_close(s);
  /* a crash mid-write leaves an unindexed tail */
  char *seg = first_segment();
  int fd = open(seg, O_WRONLY | O_APPEND);
  CHECK(fd >= 0 && write(fd, "PPR1garbage-in-flight", 21) == 21);
  close(fd);
  store_repair rep;
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK_EQ_I64(rep.bytes_truncated, 21);
  CHECK_EQ_I64(rep.rows_dropped, 0);
  store_stats st;
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.profiles, 4);
  store_close(s);
  /* lost bytes (a segment cut short) drop the rows that pointed there */
  struct stat sb;
  stat(seg, &sb);
  CHECK(truncate(seg, sb.st_size - 10) == 0);
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK_EQ_I64(rep.rows_dropped, 1);
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.profiles, 3);
  pprof_profile *p = NULL;
  store_matcher m = {"monitor", "a"};
  CHECK(store_merged(s, &m, 1, "heap", 0, 0, STORE_AGG_LATEST, 0, &p, NULL, NULL) == 0);
  pprof_free(p);
  store_close(s);
  /* an orphan segment file */
  char orphan[600];
  snprintf(orphan, sizeof orphan, "%s/segments/00000000000000ff.seg", dir);
  fd = open(orphan, O_WRONLY | O_CREAT, 0640);
  CHECK(fd >= 0 && write(fd, "junk", 4) == 4);
  close(fd);
  s = open_store(0, 0, &rep);
  CHECK_EQ_I64(rep.orphans_removed, 1);
  CHECK(access(orphan, F_OK) != 0);
  store_close(s);
}

static void rebuild_lost_or_corrupt_index(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  for (int i = 0; i < 5; i++)
    CHECK(add(s, "gotarget/mutex.pb.gz", i % 2 ? "a" : "b", "mutex", 1000 * (i + 1)) == 0);
  store_close(s);
  char db[400];
  snprintf(db, sizeof db, "%s/index.db", dir);
  CHECK(unlink(db) == 0);
  store_repair rep;
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK(rep.index_rebuilt);
  CHECK_EQ_I64(rep.rows_rebuilt, 5);
  store_series_info *si;
  size_t n;
  CHECK(store_list_series(s, NULL, 0, "mutex", 0, 0, &si, &n, NULL) == 0);
  CHECK_EQ_I64(n, 2);
  store_series_free(si, n);
  store_close(s);
  /* a damaged index file is set aside and rebuilt */
  int fd = open(db, O_WRONLY);
  char junk[4096];
  memset(junk, 0xAB, sizeof junk);
  CHECK(fd >= 0 && pwrite(fd, junk, sizeof junk, 0) == (ssize_t)sizeof junk);
  close(fd);
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK(rep.index_rebuilt);
  CHECK_EQ_I64(rep.rows_rebuilt, 5);
  store_close(s);
}

/* The data dir's size as du(1) reports it (apparent bytes), less the directories' own entries:
 * the files the store wrote, measured from outside the store. -1 if du cannot tell. */
static int64_t du_files(void) {
  char cmd[400];
  snprintf(cmd, sizeof cmd, "du -s -B1 --apparent-size %s", dir);
  FILE *f = popen(cmd, "r");
  long long total = -1;
  if (!f) return -1;
  if (fscanf(f, "%lld", &total) != 1) total = -1;
  if (pclose(f) != 0) return -1;
  char seg[300];
  snprintf(seg, sizeof seg, "%s/segments", dir);
  struct stat a, b;
  if (total < 0 || stat(dir, &a) < 0 || stat(seg, &b) < 0) return -1;
  return total - a.st_size - b.st_size;
}

static void retention_by_size_and_time(void) {
  fresh_dir();
  const uint64_t budget = 3 << 20, segment = 256 << 10;
  store *s = open_store(budget, segment, NULL);
  if (!s) return;
  int64_t peak = 0;
  for (int i = 0; i < 400; i++) {
    CHECK(add(s, "prometheus/allocs-delta.pb.gz", i % 3 ? "a" : "b", "allocs",
              1000000000LL * (i + 1)) == 0);
    store_retention(s, 1000000000LL * (i + 1), NULL);
    /* docs/operations.md: usage stays within the budget plus one segment */
    int64_t used = du_files();
    CHECK(used > 0 && used <= (int64_t)(budget + segment));
    if (used > peak) peak = used;
  }
  fprintf(stderr, "  peak %lld bytes by du, budget %llu + segment %llu\n", (long long)peak,
          (unsigned long long)budget, (unsigned long long)segment);
  CHECK(peak > (int64_t)budget / 2); /* the budget was reached: retention had work to do */
  store_stats st;
  store_get_stats(s, &st);
  CHECK(st.retention_deleted_segments > 0);
  CHECK(st.profiles < 400 && st.profiles > 50);
  /* the oldest went first: the newest record is still there */
  store_row *rows;
  size_t n;
  CHECK(store_list_rows(s, NULL, 0, "allocs", 400000000000LL, 0, 0, &rows, &n, NULL) == 0);
  CHECK_EQ_I64(n, 1);
  store_rows_free(rows, n);
  store_close(s);

  fresh_dir();
  store_opts o = {.dir = dir, .retention_seconds = 100};
  pp_err err = {0};
  CHECK(store_open(&o, &s, NULL, &err) == 0);
  if (!s) return;
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000000000LL) == 0);
  CHECK_EQ_I64(store_retention(s, 50 * 1000000000LL, NULL), 0);
  CHECK_EQ_I64(store_retention(s, 200 * 1000000000LL, NULL), 1); /* older than 100 s */
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.profiles, 0);
  store_close(s);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
}

/* ---- rollups ---- */

#define W STORE_ROLLUP_NS
#define MIN60 ((int64_t)60 * 1000000000)

typedef struct rq {
  const char *mon, *type;
  int64_t from, to;
  store_agg agg;
} rq;

/* Asks every query; keeps the answers in out[] (NULL where the store said no). */
static void ask(store *s, const rq *q, size_t nq, pprof_profile **out, size_t *cnt) {
  for (size_t i = 0; i < nq; i++) {
    store_matcher m = {"monitor", q[i].mon};
    out[i] = NULL;
    cnt[i] = 0;
    store_merged(s, q[i].mon ? &m : NULL, q[i].mon ? 1 : 0, q[i].type, q[i].from, q[i].to, q[i].agg,
                 0, &out[i], &cnt[i], NULL);
  }
}

/* Every function's flat and cum of every sample type agree. */
static bool same_profile(const pprof_profile *a, const pprof_profile *b) {
  if (!a || !b) return a == b;
  if (a->nsample_type != b->nsample_type) return false;
  bool same = true;
  for (size_t t = 0; t < a->nsample_type && same; t++) {
    pprof_top ta, tb;
    if (pprof_top_compute(a, (int)t, &ta, NULL) < 0) return false;
    if (pprof_top_compute(b, (int)t, &tb, NULL) < 0) {
      pprof_top_release(&ta);
      return false;
    }
    same = ta.nfuncs == tb.nfuncs && ta.nfuncs > 0;
    for (size_t i = 0; i < ta.nfuncs && same; i++) {
      bool found = false;
      for (size_t j = 0; j < tb.nfuncs && !found; j++)
        if (!strcmp(ta.funcs[i].name, tb.funcs[j].name))
          found = ta.funcs[i].flat == tb.funcs[j].flat && ta.funcs[i].cum == tb.funcs[j].cum;
      same = found;
    }
    pprof_top_release(&ta);
    pprof_top_release(&tb);
  }
  return same;
}

static void rollups_change_speed_not_answers(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  const int64_t t0 = 3000000 * W; /* aligned */
  /* a and b: 25 CPU profiles a minute apart (windows w0, w1 full; w2 partly); a's heap for 20 */
  for (int k = 0; k < 25; k++) {
    char cpu[64];
    snprintf(cpu, sizeof cpu, "prometheus/cpu-%d.pb.gz", 1 + k % 6);
    CHECK(add(s, cpu, "a", "cpu", t0 + k * MIN60) == 0);
    CHECK(add(s, cpu, "b", "cpu", t0 + k * MIN60 + 1) == 0);
    if (k < 20) CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", t0 + k * MIN60) == 0);
  }
  /* one lone profile in an old window: no rollup for a single record */
  CHECK(add(s, "prometheus/cpu-1.pb.gz", "c", "cpu", t0 - 5 * W) == 0);
  store_close(s);
  /* reopened, the compactor's rollups go into a segment of their own */
  s = open_store(0, 0, NULL);
  if (!s) return;
  pp_err err = {0};
  CHECK_EQ_I64(store_compact(s, t0 + 2 * W + W / 2, &err), 6); /* (a,b) cpu and a heap, w0 and w1 */
  CHECK_EQ_I64(store_compact(s, t0 + 2 * W + W / 2, &err), 0); /* nothing twice */
  store_stats st;
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.rollups, 6);
  CHECK_EQ_I64(st.compacted_until_ns, t0 + 2 * W);
  rq q[] = {
      {NULL, "cpu", 0, 0, STORE_AGG_SUM},              /* everything */
      {"a", "cpu", t0, t0 + 2 * W - 1, STORE_AGG_SUM}, /* exactly w0 and w1 */
      {"a", "cpu", t0 + 5 * MIN60, 0, STORE_AGG_SUM},  /* w0 partly: its rows */
      {"a", "heap", 0, 0, STORE_AGG_AVG},              /* avg counts a rollup as its rows */
      {"b", "cpu", 0, 0, STORE_AGG_LATEST},            /* never from rollups */
      {NULL, "cpu", t0 - 6 * W, t0 + W + 3 * MIN60, STORE_AGG_AVG}, /* c, w0 whole, w1 partly */
  };
  enum { NQ = sizeof q / sizeof *q };
  pprof_profile *with[NQ], *without[NQ];
  size_t cw[NQ], cwo[NQ];
  uint64_t before = st.records_read;
  ask(s, q, NQ, with, cw);
  /* the record limit counts a rollup once: 3 records reach back over both windows (20 profiles) */
  store_matcher ma = {"monitor", "a"};
  pprof_profile *lim = NULL;
  size_t lim_with = 0, lim_without = 0;
  CHECK(store_merged(s, &ma, 1, "cpu", t0, t0 + 2 * W - 1, STORE_AGG_SUM, 3, &lim, &lim_with,
                     &err) == 0);
  pprof_free(lim);
  CHECK_EQ_I64(lim_with, 20);
  store_get_stats(s, &st);
  uint64_t read_with = st.records_read - before;
  store_close(s);

  store_opts o = {.dir = dir, .no_rollups = true};
  CHECK(store_open(&o, &s, NULL, &err) == 0);
  if (!s) return;
  store_get_stats(s, &st);
  before = st.records_read;
  ask(s, q, NQ, without, cwo);
  lim = NULL;
  CHECK(store_merged(s, &ma, 1, "cpu", t0, t0 + 2 * W - 1, STORE_AGG_SUM, 3, &lim, &lim_without,
                     &err) == 0);
  pprof_free(lim);
  CHECK_EQ_I64(lim_without, 3); /* without rollups: the newest 3 profiles only */
  store_get_stats(s, &st);
  uint64_t read_without = st.records_read - before;
  store_close(s);
  for (int i = 0; i < NQ; i++) {
    CHECK(with[i] != NULL);
    CHECK_EQ_I64(cw[i], cwo[i]);
    if (!same_profile(with[i], without[i])) fprintf(stderr, "  query %d differs\n", i);
    CHECK(same_profile(with[i], without[i]));
  }
  /* the first query alone reads 2 windows x 2 series as 4 rollups instead of 40 profiles */
  fprintf(stderr, "  records read: %llu with rollups, %llu without\n",
          (unsigned long long)read_with, (unsigned long long)read_without);
  CHECK(read_with + 36 * 2 <= read_without);

  /* the index lost: rebuilt from segments, rollups included (the rollup-only segment is no orphan)
   */
  char db[400];
  snprintf(db, sizeof db, "%s/index.db", dir);
  CHECK(unlink(db) == 0);
  store_repair rep;
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK(rep.index_rebuilt);
  CHECK_EQ_I64(rep.rows_rebuilt, 25 * 2 + 20 + 1 + 6);
  CHECK_EQ_I64(rep.orphans_removed, 0);
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.rollups, 6);
  pprof_profile *again[NQ];
  size_t ca[NQ];
  ask(s, q, NQ, again, ca);
  for (int i = 0; i < NQ; i++) {
    CHECK(same_profile(again[i], without[i]));
    pprof_free(again[i]);
  }
  store_close(s);
  /* a plain reopen keeps the rollup-only segment too */
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK_EQ_I64(rep.orphans_removed, 0);
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.rollups, 6);
  /* retention takes the raw rows' segment: the rollups no longer match, answers stay the raw ones
   */
  CHECK_EQ_I64(store_free_space(s, &err), 1);
  pprof_profile *p = NULL;
  size_t c = 0;
  CHECK(store_merged(s, NULL, 0, "cpu", 0, 0, STORE_AGG_SUM, 0, &p, &c, &err) == PP_EUSAGE);
  pprof_free(p);
  store_close(s);
  /* time retention also ends a segment that holds only rollups (its range is the rollups') */
  store_opts ro = {.dir = dir, .retention_seconds = 3600};
  CHECK(store_open(&ro, &s, NULL, &err) == 0);
  if (!s) return;
  CHECK(store_retention(s, t0 + 10 * W, &err) >= 1);
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.rollups, 0);
  CHECK_EQ_I64(st.segments, 0);
  store_close(s);
  for (int i = 0; i < NQ; i++) {
    pprof_free(with[i]);
    pprof_free(without[i]);
  }
}

/* The background compactor's results reach the index through store_maintain. */
static void compactor_thread(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  int64_t base = (int64_t)time(NULL) * 1000000000 - 3 * W;
  base -= base % W;
  for (int k = 0; k < 12; k++)
    CHECK(add(s, "prometheus/cpu-2.pb.gz", "a", "cpu", base + k * MIN60) == 0);
  pp_err err = {0};
  CHECK(store_start_compactor(s, &err) == 0);
  store_stats st;
  int got = 0;
  for (int i = 0; i < 200 && got < 2; i++) {
    usleep(20000);
    int r = store_maintain(s, &err);
    CHECK(r >= 0);
    if (r > 0) got += r;
  }
  CHECK_EQ_I64(got, 2); /* windows base and base+W */
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.rollups, 2);
  store_close(s); /* stops the thread */
}

int main(void) {
  RUN(append_query_merge);
  RUN(repair_after_crash);
  RUN(rebuild_lost_or_corrupt_index);
  RUN(retention_by_size_and_time);
  RUN(rollups_change_speed_not_answers);
  RUN(compactor_thread);
  return tt_finish();
}
