/* Unit tests of the store: append and query, crash repair, index rebuild, retention, corrupt
 * records, segment creation, full disks, a locked index, labels that are not UTF-8, series that
 * go with their profiles. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../../src/base/file.h"
#include "../../src/collector/bindex.h"
#include "../../src/collector/store.h"
#include "../../src/collector/store_int.h" /* the series cache's size */
#include "../../src/collector/store_sym.h" /* the writer's tables' bound */
#include "profile_eq.h"
#include "profile_same.h"
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
  if (rel[0] == '/') snprintf(path, sizeof path, "%s", rel); /* a path of its own */
  else snprintf(path, sizeof path, "%s/%s", testdata(), rel);
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

/* Opens the store in dir with these options (o.dir set to dir); NULL, and a failed check, when
 * it cannot. */
static store *open_with(store_opts o, store_repair *rep) {
  o.dir = dir;
  store *s = NULL;
  pp_err err = {0};
  int r = store_open(&o, &s, rep, &err);
  if (r) fprintf(stderr, "  open: %s\n", err.msg);
  CHECK(r == 0);
  return s;
}

static store *open_store(uint64_t retention, uint64_t segment, store_repair *rep) {
  return open_with((store_opts){.retention_bytes = retention, .segment_bytes = segment}, rep);
}

/* Appends the file as a record with the given labels; *ret_enospc and err as store_append
 * left them. */
static int add_labels(store *s, const char *rel, const store_label *l, size_t nl, const char *type, int64_t end,
                      bool *ret_enospc, pp_err *err) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", testdata(), rel);
  size_t len;
  uint8_t *b = slurp(path, &len);
  CHECK(b != NULL);
  if (!b) return -1;
  pprof_profile *p = NULL;
  CHECK(pprof_decode(b, len, NULL, &p, NULL) == 0);
  store_record r = {l, nl, type, end - 1000, end, b, len, p};
  bool enospc = false;
  int rc = store_append(s, &r, &enospc, err);
  if (ret_enospc) *ret_enospc = enospc;
  pprof_free(p);
  free(b);
  return rc;
}

/* One integer from the index, read with SQLite directly (the store's files seen from outside). */
static int64_t index_i64(const char *sql, int64_t arg) {
  char db[400];
  snprintf(db, sizeof db, "%s/index.db", dir);
  sqlite3 *h = NULL;
  sqlite3_stmt *st = NULL;
  int64_t v = -1;
  if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, arg);
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

static char *segment_path(int64_t id) {
  static char p[600];
  snprintf(p, sizeof p, "%s/segments/%016llx.seg", dir, (unsigned long long)id);
  return p;
}

/* Flips one byte of a file in place. */
static bool flip_byte(const char *path, int64_t off) {
  int fd = open(path, O_RDWR);
  uint8_t c;
  bool ok = fd >= 0 && pread(fd, &c, 1, off) == 1;
  c ^= 0x5a;
  ok = ok && pwrite(fd, &c, 1, off) == 1;
  if (fd >= 0) close(fd);
  return ok;
}

/* ---- the syncs the store asks for, seen from outside ------------------------------------------
 * The store is linked into this binary, so these definitions of fdatasync and fsync stand in for
 * libc's (for SQLite's calls too): each notes the file's path and whether the writer (the test's
 * main thread) made it, then asks the kernel as libc would. */
#define SYNC_LOG_MAX 8192
typedef struct sync_note {
  char path[320];
  bool writer;
} sync_note;
static pthread_mutex_t sync_log_mu = PTHREAD_MUTEX_INITIALIZER;
static sync_note sync_log[SYNC_LOG_MAX];
static size_t sync_log_n;
static pthread_t writer_thread;

/* The path behind fd as /proc/self/fd shows it ("" when it cannot be read); its length. */
static size_t fd_path(int fd, char *path, size_t cap) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, cap - 1);
  path[n > 0 ? n : 0] = '\0';
  return n > 0 ? (size_t)n : 0;
}

static void note_sync(int fd) {
  char path[320];
  fd_path(fd, path, sizeof path);
  pthread_mutex_lock(&sync_log_mu);
  if (sync_log_n < SYNC_LOG_MAX) {
    snprintf(sync_log[sync_log_n].path, sizeof sync_log[0].path, "%s", path);
    sync_log[sync_log_n++].writer = pthread_equal(pthread_self(), writer_thread);
  }
  pthread_mutex_unlock(&sync_log_mu);
}

/* fdatasync of a file whose path contains this fails with EIO ("" = none; under sync_log_mu) */
static char sync_fail_path[64];

static bool sync_fails(int fd) {
  char path[320];
  fd_path(fd, path, sizeof path);
  pthread_mutex_lock(&sync_log_mu);
  bool fail = sync_fail_path[0] && strstr(path, sync_fail_path);
  pthread_mutex_unlock(&sync_log_mu);
  return fail;
}

static void sync_fail_set(const char *path_part) {
  pthread_mutex_lock(&sync_log_mu);
  snprintf(sync_fail_path, sizeof sync_fail_path, "%s", path_part);
  pthread_mutex_unlock(&sync_log_mu);
}

int fdatasync(int fd) {
  note_sync(fd);
  if (sync_fails(fd)) {
    errno = EIO;
    return -1;
  }
  return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd) {
  note_sync(fd);
  return (int)syscall(SYS_fsync, fd);
}

static void sync_log_reset(void) {
  pthread_mutex_lock(&sync_log_mu);
  sync_log_n = 0;
  pthread_mutex_unlock(&sync_log_mu);
}

/* The position in the log of the last sync of path by a thread other than the writer (or by the
 * writer, with by_writer), or -1. */
static int64_t last_sync(const char *path, bool by_writer) {
  int64_t at = -1;
  pthread_mutex_lock(&sync_log_mu);
  for (size_t i = 0; i < sync_log_n; i++)
    if (sync_log[i].writer == by_writer && !strcmp(sync_log[i].path, path)) at = (int64_t)i;
  pthread_mutex_unlock(&sync_log_mu);
  return at;
}

static int64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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
  CHECK(store_list_series(s, NULL, 0, NULL, 0, 0, NULL, 0, &si, &n, NULL, &err) == 0);
  CHECK_EQ_I64(n, 3); /* (a,cpu) (a,heap) (b,cpu) */
  store_series_free(si, n);
  store_matcher m = {"monitor", "a"};
  CHECK(store_list_series(s, &m, 1, "cpu", 0, 0, NULL, 0, &si, &n, NULL, &err) == 0);
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
  CHECK(store_list_series(s, NULL, 0, "mutex", 0, 0, NULL, 0, &si, &n, NULL, NULL) == 0);
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

/* A record whose bytes changed on disk (a flipped bit, a torn write after power loss) is found
 * by its CRC when the store opens: its row is dropped, so no listing shows it and no read
 * serves it, and the records around it stay. An index rebuilt from the segments skips such a
 * record (and one whose header is damaged) and keeps everything after it. */
static void corrupt_record_found_at_open(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  for (int i = 0; i < 5; i++)
    CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000 * (i + 1)) == 0);
  store_matcher m = {"monitor", "a"};
  store_row *rows;
  size_t n;
  CHECK(store_list_rows(s, &m, 1, "heap", 0, 0, 0, &rows, &n, NULL) == 0);
  CHECK_EQ_I64(n, 5);
  int64_t bad = n == 5 ? rows[2].id : -1, first = n == 5 ? rows[0].id : -1;
  store_rows_free(rows, n);
  store_close(s);
  /* a byte in the middle of the third record's profile */
  int64_t seg = index_i64("SELECT segment_id FROM profile WHERE id=?", bad);
  int64_t off = index_i64("SELECT data_off + data_len / 2 FROM profile WHERE id=?", bad);
  CHECK(seg > 0 && off > 0 && flip_byte(segment_path(seg), off));
  store_repair rep;
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK_EQ_I64(rep.records_corrupt, 1);
  CHECK_EQ_I64(rep.rows_dropped, 1);
  CHECK(store_list_rows(s, &m, 1, "heap", 0, 0, 0, &rows, &n, NULL) == 0);
  CHECK_EQ_I64(n, 4);
  for (size_t i = 0; i < n; i++) {
    CHECK(rows[i].id != bad);
    uint8_t *b = NULL;
    size_t len = 0;
    CHECK(store_read(s, rows[i].id, &b, &len, NULL) == 0);
    free(b);
  }
  store_rows_free(rows, n);
  uint8_t *b = NULL;
  size_t len = 0;
  CHECK_EQ_I64(store_read(s, bad, &b, &len, NULL), PP_EUSAGE);
  pprof_profile *p = NULL;
  size_t cnt = 0;
  CHECK(store_merged(s, &m, 1, "heap", 0, 0, STORE_AGG_SUM, 0, &p, &cnt, NULL) == 0);
  CHECK_EQ_I64(cnt, 4);
  pprof_free(p);
  store_series_info *si;
  CHECK(store_list_series(s, &m, 1, "heap", 0, 0, NULL, 0, &si, &n, NULL, NULL) == 0);
  CHECK(n == 1 && si[0].count == 4);
  store_series_free(si, n);
  store_close(s);
  /* found once: the next open has nothing to drop */
  s = open_store(0, 0, &rep);
  CHECK_EQ_I64(rep.records_corrupt, 0);
  CHECK_EQ_I64(rep.rows_dropped, 0);
  store_close(s);
  /* the index lost, and the first record's header damaged too: the rebuild skips both and keeps
   * the three good ones, the two after the corrupt one included */
  int64_t first_off = index_i64("SELECT rec_off FROM profile WHERE id=?", first);
  CHECK(first_off >= 0 && flip_byte(segment_path(seg), first_off));
  char db[400];
  snprintf(db, sizeof db, "%s/index.db", dir);
  CHECK(unlink(db) == 0);
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK(rep.index_rebuilt);
  CHECK_EQ_I64(rep.rows_rebuilt, 3);
  CHECK_EQ_I64(rep.records_corrupt, 2);
  CHECK(store_list_rows(s, &m, 1, "heap", 0, 0, 0, &rows, &n, NULL) == 0);
  CHECK_EQ_I64(n, 3);
  if (n == 3) {
    CHECK_EQ_I64(rows[0].end_ns, 2000);
    CHECK_EQ_I64(rows[1].end_ns, 4000);
    CHECK_EQ_I64(rows[2].end_ns, 5000);
  }
  store_rows_free(rows, n);
  store_close(s);
}

/* Reads check the CRC too (store.h): a record whose bytes change on disk while the store runs
 * is refused by store_read and left out of a merge, never served as it now is. */
static void read_checks_crc(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  for (int i = 0; i < 3; i++) CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000 * (i + 1)) == 0);
  store_matcher m = {"monitor", "a"};
  store_row *rows;
  size_t n;
  CHECK(store_list_rows(s, &m, 1, "heap", 0, 0, 0, &rows, &n, NULL) == 0);
  CHECK_EQ_I64(n, 3);
  int64_t bad = n == 3 ? rows[1].id : -1, bad_hdr = n == 3 ? rows[2].id : -1;
  store_rows_free(rows, n);
  int64_t seg = index_i64("SELECT segment_id FROM profile WHERE id=?", bad);
  int64_t off = index_i64("SELECT data_off + data_len / 2 FROM profile WHERE id=?", bad);
  CHECK(seg > 0 && off > 0 && flip_byte(segment_path(seg), off));
  uint8_t *b = NULL;
  size_t len = 0;
  pp_err err = {0};
  CHECK_EQ_I64(store_read(s, bad, &b, &len, &err), PP_EIO);
  CHECK(b == NULL && strstr(err.msg, "CRC") != NULL);
  free(b);
  pprof_profile *p = NULL;
  size_t cnt = 0;
  CHECK(store_merged(s, &m, 1, "heap", 0, 0, STORE_AGG_SUM, 0, &p, &cnt, NULL) == 0);
  CHECK_EQ_I64(cnt, 2);
  pprof_free(p);
  /* a record whose header no longer says what its row does (its data length) is refused too,
   * as repair at open would drop it */
  int64_t hdr = index_i64("SELECT rec_off + 8 FROM profile WHERE id=?", bad_hdr);
  CHECK(hdr > 0 && flip_byte(segment_path(seg), hdr));
  CHECK_EQ_I64(store_read(s, bad_hdr, &b, &len, &err), PP_EIO);
  free(b);
  CHECK(store_merged(s, &m, 1, "heap", 0, 0, STORE_AGG_SUM, 0, &p, &cnt, NULL) == 0);
  CHECK_EQ_I64(cnt, 1);
  pprof_free(p);
  store_close(s);
}

/* A new segment never overwrites a file that is already there (O_EXCL): the append fails with
 * an error that is not a full disk, and the file keeps its bytes. */
static void new_segment_never_truncates(void) {
  fresh_dir();
  store *s = open_store(0, 1, NULL); /* one record per segment */
  if (!s) return;
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000) == 0);
  int64_t last = index_i64("SELECT MAX(id) FROM segment", 0);
  const char *next = segment_path(last + 1);
  int fd = open(next, O_WRONLY | O_CREAT | O_EXCL, 0640);
  CHECK(fd >= 0 && write(fd, "keep me", 7) == 7);
  if (fd >= 0) close(fd);
  store_label l[1] = {{"monitor", "a"}};
  bool enospc = true;
  pp_err err = {0};
  CHECK(add_labels(s, "gotarget/heap.pb.gz", l, 1, "heap", 2000, &enospc, &err) < 0);
  CHECK(!enospc);
  CHECK(strstr(err.msg, ".seg") != NULL);
  struct stat sb;
  CHECK(stat(next, &sb) == 0 && sb.st_size == 7);
  CHECK(unlink(next) == 0);
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 3000) == 0);
  store_stats st;
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.profiles, 2);
  store_close(s);
}

/* segment_max_age: store_maintain closes a segment that holds records once it is that old, even
 * with nothing more written (what an uploader copies is the closed segments), without opening
 * an empty one in its place; a young one stays active. */
static void segment_closes_at_its_age(void) {
  fresh_dir();
  store *s = open_with((store_opts){.segment_max_age = 0.3}, NULL);
  if (!s) return;
  pp_err err = {0};
  CHECK_EQ_I64(store_maintain(s, &err), 0);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM segment", 0), 0); /* nothing written: none opened */
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000) == 0);
  CHECK(store_maintain(s, &err) >= 0);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM segment", 0), 1); /* young: stays active */
  usleep(400000);
  CHECK(store_maintain(s, &err) >= 0);
  store_segment sg[4];
  size_t n = 0;
  CHECK(store_list_segments(s, sg, 4, &n, &err) == 0);
  CHECK_EQ_I64(n, 1); /* closed, and no empty one opened in its place */
  if (n == 1) CHECK(sg[0].closed && sg[0].min_ns > 0);
  usleep(400000);
  CHECK(store_maintain(s, &err) >= 0);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM segment", 0), 1);
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 2000) == 0); /* the next record opens the next one */
  CHECK(store_list_segments(s, sg, 4, &n, &err) == 0);
  CHECK_EQ_I64(n, 2);
  if (n == 2) CHECK(sg[0].closed && !sg[1].closed && sg[1].min_ns > 0);
  store_close(s);
}

/* A full disk is told by errno, not by the words of a message: a data directory whose path
 * says "No space left" and whose segments directory vanished fails with enospc false. */
static void enospc_told_by_errno(void) {
  char saved[256];
  snprintf(saved, sizeof saved, "%s", dir);
  snprintf(dir, sizeof dir, "/tmp/pprof-store-test-%d-No space left on device", (int)getpid());
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  store *s = open_store(0, 1, NULL);
  if (s) {
    CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000) == 0);
    char seg[400], away[400];
    snprintf(seg, sizeof seg, "%s/segments", dir);
    snprintf(away, sizeof away, "%s/away", dir);
    CHECK(rename(seg, away) == 0);
    store_label l[1] = {{"monitor", "a"}};
    bool enospc = true;
    pp_err err = {0};
    CHECK(add_labels(s, "gotarget/heap.pb.gz", l, 1, "heap", 2000, &enospc, &err) < 0);
    CHECK(!enospc);
    CHECK(strstr(err.msg, "No such file") != NULL);
    CHECK(rename(away, seg) == 0);
    store_close(s);
  }
  CHECK(system(cmd) == 0);
  snprintf(dir, sizeof dir, "%s", saved);
}

/* ---- injected write faults ---------------------------------------------------------------
 * A quota (EDQUOT) or a full disk (ENOSPC) on demand: this binary's writev and pwrite64 come
 * before libc's (an executable's symbols win over a shared library's, libsqlite3's calls
 * included), and fail with inject_errno on files whose path ends with inject_suffix while
 * inject_errno is set; otherwise they pass through. The store writes records with writev and
 * SQLite its WAL with pwrite64. */
static int inject_errno;
static const char *inject_suffix = "";
static int injected; /* calls failed so far */

static bool inject_here(int fd) {
  int e = __atomic_load_n(&inject_errno, __ATOMIC_ACQUIRE);
  if (!e) return false;
  char path[4096];
  size_t n = fd_path(fd, path, sizeof path), sl = strlen(inject_suffix);
  if (!n || n < sl || memcmp(path + n - sl, inject_suffix, sl)) return false;
  __atomic_add_fetch(&injected, 1, __ATOMIC_RELAXED);
  errno = e;
  return true;
}

typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  static writev_fn real;
  if (!real) real = (writev_fn)dlsym(RTLD_NEXT, "writev");
  return inject_here(fd) ? -1 : real(fd, iov, cnt);
}

ssize_t pwrite64(int fd, const void *b, size_t n, off64_t off) {
  static pwrite64_fn real;
  if (!real) real = (pwrite64_fn)dlsym(RTLD_NEXT, "pwrite64");
  return inject_here(fd) ? -1 : real(fd, b, n, off);
}

static void inject(int e, const char *suffix) {
  inject_suffix = suffix;
  __atomic_store_n(&injected, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&inject_errno, e, __ATOMIC_RELEASE);
}

/* Records of series {monitor=name} the store merges for heap (what a query serves). */
static int64_t served(store *s, const char *name) {
  store_matcher m = {"monitor", name};
  pprof_profile *p = NULL;
  size_t cnt = 0;
  if (store_merged(s, &m, 1, "heap", 0, 0, STORE_AGG_SUM, 0, &p, &cnt, NULL) < 0) return -1;
  pprof_free(p);
  return (int64_t)cnt;
}

/* The active segment's size on disk. */
static int64_t active_segment_size(store *s) {
  struct stat sb;
  return fstat(s->seg_fd, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* The store reopened after a refused append: repair found nothing to do (no row dropped, no
 * byte cut, nothing corrupt or rebuilt) and monitor "a" still has `want` records. NULL when it
 * did not open (the check has failed). */
static store *reopened_unrepaired(uint64_t segment, int64_t want) {
  store_repair rep;
  store *s = open_store(0, segment, &rep);
  if (!s) return NULL;
  CHECK_EQ_I64(rep.rows_dropped + rep.bytes_truncated + rep.records_corrupt + rep.rows_rebuilt, 0);
  CHECK_EQ_I64(served(s, "a"), want);
  return s;
}

/* A full disk is ENOSPC or EDQUOT (a quota, e.g. on a shared volume): a record write failing
 * with either is refused the same way: enospc true, the reason in the message, nothing of it
 * left in the segment, what was stored before still served; store_free_space (what the
 * collector calls then) frees the oldest segment; once the fault is gone, appends work and a
 * reopen finds nothing to repair. */
static void full_disk_errnos(void) {
  const int errs[2] = {ENOSPC, EDQUOT};
  for (int k = 0; k < 2; k++) {
    fresh_dir();
    store *s = open_store(0, 1, NULL); /* one record per segment */
    if (!s) return;
    for (int i = 1; i <= 3; i++) CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", i * 1000) == 0);
    inject(errs[k], ".seg");
    store_label l[2] = {{"monitor", "a"}, {"team", "core"}};
    bool enospc = false;
    pp_err err = {0};
    CHECK(add_labels(s, "gotarget/heap.pb.gz", l, 2, "heap", 4000, &enospc, &err) < 0);
    inject(0, "");
    printf("  %s: %s\n", k ? "EDQUOT" : "ENOSPC", err.msg);
    CHECK(enospc);
    CHECK(strstr(err.msg, strerror(errs[k])) != NULL);
    CHECK(active_segment_size(s) == 0); /* the new segment got none of the record's bytes */
    CHECK_EQ_I64(served(s, "a"), 3);
    CHECK_EQ_I64(store_free_space(s, NULL), 1);
    CHECK_EQ_I64(served(s, "a"), 2);
    CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 5000) == 0);
    CHECK_EQ_I64(served(s, "a"), 3);
    store_close(s);
    if ((s = reopened_unrepaired(1, 3))) store_close(s);
  }
}

/* The index full: SQLite's SQLITE_FULL (here from PRAGMA max_page_count, the way SQLite says a
 * full disk) and a WAL write failing with ENOSPC or EDQUOT (SQLite turns EDQUOT into an I/O
 * error; the errno behind it tells) are a full disk too: the append is refused with enospc
 * true, its record's bytes are cut from the segment, and every record stored before stays. */
static void full_index(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000) == 0);
  CHECK(sqlite3_exec(s->db, "PRAGMA max_page_count=1", NULL, NULL, NULL) == SQLITE_OK); /* = the pages it has */
  /* new series until the index needs a page more */
  int stored = 0, refused = 0;
  bool enospc = false;
  pp_err err = {0};
  int64_t before = -1;
  for (int i = 0; i < 2000 && !refused; i++) {
    char name[32];
    snprintf(name, sizeof name, "pod-%d", i);
    store_label l[2] = {{"monitor", name}, {"team", "core"}};
    before = active_segment_size(s);
    if (add_labels(s, "gotarget/heap.pb.gz", l, 2, "heap", 2000 + i, &enospc, &err) == 0) stored++;
    else refused = 1;
  }
  printf("  SQLITE_FULL after %d appends: %s\n", stored, err.msg);
  CHECK(refused && enospc);
  CHECK(active_segment_size(s) == before);
  CHECK(sqlite3_exec(s->db, "PRAGMA max_page_count=1073741823", NULL, NULL, NULL) == SQLITE_OK);
  const int errs[2] = {ENOSPC, EDQUOT};
  for (int k = 0; k < 2; k++) {
    inject(errs[k], "-wal");
    enospc = false;
    before = active_segment_size(s);
    store_label l[2] = {{"monitor", "a"}, {"team", "core"}};
    CHECK(add_labels(s, "gotarget/heap.pb.gz", l, 2, "heap", 9000 + k, &enospc, &err) < 0);
    int calls = __atomic_load_n(&injected, __ATOMIC_RELAXED);
    inject(0, "");
    printf("  WAL %s: %s\n", k ? "EDQUOT" : "ENOSPC", err.msg);
    CHECK(calls > 0);
    CHECK(enospc);
    CHECK(strstr(err.msg, k ? strerror(EDQUOT) : "full") != NULL); /* the reason, not "disk I/O error" */
    CHECK(active_segment_size(s) == before);
  }
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 10000) == 0);
  CHECK_EQ_I64(served(s, "a"), 2);
  store_close(s);
  if (!(s = reopened_unrepaired(0, 2))) return;
  store_stats st;
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.profiles, (uint64_t)stored + 2);
  store_close(s);
}

/* Retention while another process holds the index's write lock: retention fails and deletes
 * nothing (no segment file goes without its rows), and works once the lock is gone. */
static void retention_under_a_locked_index(void) {
  fresh_dir();
  store *s = open_with((store_opts){.retention_seconds = 100, .segment_bytes = 1}, NULL);
  pp_err err = {0};
  if (!s) return;
  for (int i = 0; i < 3; i++)
    CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000000000LL * (i + 1)) == 0);
  char db[400];
  snprintf(db, sizeof db, "%s/index.db", dir);
  sqlite3 *h = NULL;
  CHECK(sqlite3_open(db, &h) == SQLITE_OK && sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
  CHECK(store_retention(s, 1000 * 1000000000LL, &err) < 0);
  sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(h);
  store_stats st;
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.profiles, 3);
  store_row *rows;
  size_t n;
  CHECK(store_list_rows(s, NULL, 0, "heap", 0, 0, 0, &rows, &n, NULL) == 0);
  CHECK_EQ_I64(n, 3);
  for (size_t i = 0; i < n; i++) {
    uint8_t *b = NULL;
    size_t len = 0;
    CHECK(store_read(s, rows[i].id, &b, &len, NULL) == 0);
    free(b);
  }
  store_rows_free(rows, n);
  CHECK_EQ_I64(store_retention(s, 1000 * 1000000000LL, &err), 3);
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.profiles, 0);
  store_close(s);
}

/* Labels are text: bytes that are not UTF-8 are replaced by U+FFFD (as browsers show them),
 * in names and values alike, never dropped; a matcher with the same bytes finds the series, and
 * two values that differ only in invalid bytes are one series. */
static void labels_not_utf8(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  store_label l[3] = {{"monitor", "u"}, {"k\xff", "caf\xe9"}, {"team", "a\xc3"}};
  pp_err err = {0};
  CHECK(add_labels(s, "gotarget/heap.pb.gz", l, 3, "heap", 1000, NULL, &err) == 0);
  l[1].value = "caf\xe8";
  CHECK(add_labels(s, "gotarget/heap.pb.gz", l, 3, "heap", 2000, NULL, &err) == 0);
  const char *want = "{\"k\xef\xbf\xbd\":\"caf\xef\xbf\xbd\",\"monitor\":\"u\",\"team\":\"a\xef\xbf\xbd\"}";
  store_series_info *si;
  size_t n;
  CHECK(store_list_series(s, NULL, 0, NULL, 0, 0, NULL, 0, &si, &n, NULL, &err) == 0);
  CHECK_EQ_I64(n, 1);
  if (n == 1) {
    CHECK_STR(si[0].labels_json, want);
    CHECK_EQ_I64(si[0].count, 2);
  }
  store_series_free(si, n);
  store_matcher ms[][2] = {{{"team", "a\xc3"}, {"k\xff", "caf\xe9"}},
                           {{"team", "a\xef\xbf\xbd"}, {"k\xef\xbf\xbd", "caf\xef\xbf\xbd"}}};
  for (int i = 0; i < 2; i++) {
    pprof_profile *p = NULL;
    size_t cnt = 0;
    CHECK(store_merged(s, ms[i], 2, "heap", 0, 0, STORE_AGG_SUM, 0, &p, &cnt, &err) == 0);
    CHECK_EQ_I64(cnt, 2);
    pprof_free(p);
  }
  store_stats st;
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.series, 1);
  store_close(s);
  /* the segments hold the same text: a rebuilt index has the same series */
  char db[400];
  snprintf(db, sizeof db, "%s/index.db", dir);
  CHECK(unlink(db) == 0);
  s = open_store(0, 0, NULL);
  if (!s) return;
  CHECK(store_list_series(s, NULL, 0, NULL, 0, 0, NULL, 0, &si, &n, NULL, &err) == 0);
  CHECK(n == 1 && !strcmp(si[0].labels_json, want));
  store_series_free(si, n);
  store_close(s);
}

/* A series whose profiles retention deleted is deleted too (its labels with it); the same
 * labels appended later make a new series that queries find. */
static void series_go_with_their_profiles(void) {
  fresh_dir();
  store *s = open_with((store_opts){.retention_seconds = 100, .segment_bytes = 1}, NULL);
  pp_err err = {0};
  if (!s) return;
  const int64_t SEC = 1000000000;
  CHECK(add(s, "gotarget/heap.pb.gz", "old", "heap", 1 * SEC) == 0);
  CHECK(add(s, "gotarget/heap.pb.gz", "new", "heap", 500 * SEC) == 0);
  CHECK_EQ_I64(store_retention(s, 300 * SEC, &err), 1);
  store_stats st;
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.series, 1);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM series", 0), 1);
  store_series_info *si;
  size_t n;
  CHECK(store_list_series(s, NULL, 0, NULL, 0, 0, NULL, 0, &si, &n, NULL, &err) == 0);
  CHECK(n == 1 && strstr(si[0].labels_json, "\"new\""));
  store_series_free(si, n);
  CHECK(add(s, "gotarget/heap.pb.gz", "old", "heap", 400 * SEC) == 0);
  store_matcher m = {"monitor", "old"};
  CHECK(store_list_series(s, &m, 1, NULL, 0, 0, NULL, 0, &si, &n, NULL, &err) == 0);
  CHECK(n == 1 && si[0].count == 1 && si[0].last_ns == 400 * SEC);
  store_series_free(si, n);
  pprof_profile *p = NULL;
  size_t cnt = 0;
  CHECK(store_merged(s, &m, 1, "heap", 0, 0, STORE_AGG_SUM, 0, &p, &cnt, &err) == 0);
  CHECK_EQ_I64(cnt, 1);
  pprof_free(p);
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.series, 2);
  store_close(s);
}

/* 30 pods: monitor=p<i>, ns=a (even i) or b (odd), zone=z1 when i % 3 == 0 (absent otherwise);
 * a CPU profile each ending at (i + 1) s, a heap profile too for even i; one record per
 * segment, so the time filter has segments to skip. */
static store *thirty_pods(void) {
  fresh_dir();
  store *s = open_store(0, 1, NULL);
  if (!s) return NULL;
  const int64_t SEC = 1000000000;
  for (int i = 0; i < 30; i++) {
    char mon[16];
    snprintf(mon, sizeof mon, "p%d", i);
    store_label l[3] = {{"monitor", mon}, {"ns", i % 2 ? "b" : "a"}, {"zone", "z1"}};
    size_t nl = i % 3 ? 2 : 3;
    CHECK(add_labels(s, "prometheus/cpu-1.pb.gz", l, nl, "cpu", (i + 1) * SEC, NULL, NULL) == 0);
    if (i % 2 == 0) CHECK(add_labels(s, "gotarget/heap.pb.gz", l, nl, "heap", (i + 1) * SEC, NULL, NULL) == 0);
  }
  return s;
}

/* How many series and entries a selector lists (unpaged). */
static void count_listed(store *s, const store_matcher *m, size_t nm, int64_t from, size_t *ret_series,
                         size_t *ret_entries) {
  store_series_info *si;
  size_t n = 0;
  *ret_series = *ret_entries = 0;
  CHECK(store_list_series(s, m, nm, NULL, from, 0, NULL, 0, &si, &n, NULL, NULL) == 0);
  for (size_t i = 0; i < n; i++)
    if (i == 0 || si[i].series_id != si[i - 1].series_id) (*ret_series)++;
  *ret_entries = n;
  store_series_free(si, n);
}

/* Selectors find their series through the label index (several labels, an absent label, a time
 * filter), and a listing comes in pages that together are the whole, each entry once. */
static void series_pages_and_selectors(void) {
  store *s = thirty_pods();
  if (!s) return;
  const int64_t SEC = 1000000000;
  /* the whole listing: 30 cpu + 15 heap, in (series, type) order */
  store_series_info *all;
  size_t nall = 0;
  bool more = true;
  CHECK(store_list_series(s, NULL, 0, NULL, 0, 0, NULL, 0, &all, &nall, &more, NULL) == 0);
  CHECK_EQ_I64(nall, 45);
  CHECK(!more);
  for (size_t i = 1; i < nall; i++)
    CHECK(all[i - 1].series_id < all[i].series_id ||
          (all[i - 1].series_id == all[i].series_id && strcmp(all[i - 1].type, all[i].type) < 0));
  /* pages of 7: the cursor is the last entry of the page before (often between a series' types) */
  size_t seen = 0, pages = 0;
  store_series_cursor cur = {0, NULL};
  char curtype[32] = "";
  for (more = true; more && pages < 20; pages++) {
    store_series_info *pg;
    size_t n = 0;
    CHECK(store_list_series(s, NULL, 0, NULL, 0, 0, pages ? &cur : NULL, 7, &pg, &n, &more, NULL) == 0);
    CHECK(n == 7 || !more);
    for (size_t i = 0; i < n; i++, seen++)
      CHECK(seen < nall && pg[i].series_id == all[seen].series_id && !strcmp(pg[i].type, all[seen].type) &&
            pg[i].count == all[seen].count && pg[i].last_ns == all[seen].last_ns);
    if (n) {
      cur.series_id = pg[n - 1].series_id;
      snprintf(curtype, sizeof curtype, "%s", pg[n - 1].type);
      cur.type = curtype;
    }
    store_series_free(pg, n);
  }
  CHECK_EQ_I64(seen, 45);
  CHECK_EQ_I64(pages, 7); /* 6 full pages and one of 3 */
  store_series_free(all, nall);

  size_t ns, ne;
  store_matcher a[] = {{"ns", "a"}}, az[] = {{"ns", "a"}, {"zone", "z1"}}, noz[] = {{"zone", ""}},
                bnoz[] = {{"ns", "b"}, {"zone", ""}}, p3[] = {{"name", "x"}, {"monitor", "p3"}}, none[] = {{"monitor", "nope"}};
  count_listed(s, a, 1, 0, &ns, &ne);
  CHECK(ns == 15 && ne == 30);
  count_listed(s, az, 2, 0, &ns, &ne); /* i in 0, 6, 12, 18, 24 */
  CHECK(ns == 5 && ne == 10);
  count_listed(s, noz, 1, 0, &ns, &ne); /* i % 3 != 0 */
  CHECK_EQ_I64(ns, 20);
  count_listed(s, bnoz, 2, 0, &ns, &ne); /* odd, i % 3 != 0: 1 5 7 11 13 17 19 23 25 29 */
  CHECK(ns == 10 && ne == 10);
  count_listed(s, p3 + 1, 1, 0, &ns, &ne);
  CHECK(ns == 1 && ne == 1);
  count_listed(s, p3, 2, 0, &ns, &ne); /* a label no series has */
  CHECK_EQ_I64(ns, 0);
  count_listed(s, none, 1, 0, &ns, &ne);
  CHECK_EQ_I64(ns, 0);
  /* since 20.5 s: i = 20..29, and of ns=a 20, 22, 24, 26, 28 */
  count_listed(s, NULL, 0, 20 * SEC + SEC / 2, &ns, &ne);
  CHECK(ns == 10 && ne == 15);
  count_listed(s, a, 1, 20 * SEC + SEC / 2, &ns, &ne);
  CHECK(ns == 5 && ne == 10);
  count_listed(s, a, 1, 31 * SEC, &ns, &ne);
  CHECK_EQ_I64(ns, 0);
  pprof_profile *p = NULL;
  size_t cnt = 0;
  CHECK(store_merged(s, a, 1, "cpu", 20 * SEC + SEC / 2, 0, STORE_AGG_SUM, 0, &p, &cnt, NULL) == 0);
  CHECK_EQ_I64(cnt, 5);
  pprof_free(p);
  CHECK(store_merged(s, az, 2, "heap", 0, 0, STORE_AGG_SUM, 0, &p, &cnt, NULL) == 0);
  CHECK_EQ_I64(cnt, 5);
  pprof_free(p);
  /* a range inside a series' history counts that range only */
  store_series_info *si;
  size_t n;
  CHECK(store_list_series(s, p3 + 1, 1, "cpu", 3 * SEC, 5 * SEC, NULL, 0, &si, &n, NULL, NULL) == 0);
  CHECK(n == 1 && si[0].count == 1 && si[0].last_ns == 4 * SEC && si[0].first_ns == 4 * SEC - 1000);
  store_series_free(si, n);
  CHECK(store_list_series(s, p3 + 1, 1, "cpu", 5 * SEC, 0, NULL, 0, &si, &n, NULL, NULL) == 0);
  CHECK_EQ_I64(n, 0);
  store_series_free(si, n);
  store_close(s);
}

/* The writer's cache of series ids stays within its size however many series come and go, and
 * ids found through the index after an eviction are the same series. */
static void series_cache_stays_bounded(void) {
  fresh_dir();
  store *s = open_with((store_opts){.series_cache = 8}, NULL);
  if (!s) return;
  size_t peak = 0;
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < 40; i++) {
      char mon[16];
      snprintf(mon, sizeof mon, "pod-%d", i);
      store_label l[1] = {{"monitor", mon}};
      CHECK(add_labels(s, "gotarget/heap.pb.gz", l, 1, "heap", 1000 * (round * 40 + i + 1), NULL, NULL) == 0);
      size_t held = s->cache[0].keys.count + s->cache[1].keys.count;
      if (held > peak) peak = held;
    }
  CHECK(peak <= 8);
  CHECK(peak >= 4);
  store_stats st;
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.series, 40);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM series", 0), 40);
  store_series_info *si;
  size_t n;
  CHECK(store_list_series(s, NULL, 0, NULL, 0, 0, NULL, 0, &si, &n, NULL, NULL) == 0);
  CHECK_EQ_I64(n, 40);
  for (size_t i = 0; i < n; i++) CHECK_EQ_I64(si[i].count, 2);
  store_series_free(si, n);
  store_close(s);
}

/* An index written by the previous version (series without label rows, summaries or last
 * segments) is upgraded in place at open and answers as before; a series row without profiles
 * (which that version could leave) goes. */
static void index_from_version_1(void) {
  store *s = thirty_pods();
  if (!s) return;
  store_series_info *before;
  size_t nb;
  CHECK(store_list_series(s, NULL, 0, NULL, 0, 0, NULL, 0, &before, &nb, NULL, NULL) == 0);
  store_close(s);
  char db[400];
  snprintf(db, sizeof db, "%s/index.db", dir);
  sqlite3 *h = NULL;
  CHECK(sqlite3_open(db, &h) == SQLITE_OK);
  CHECK(sqlite3_exec(h,
                     "DROP TABLE series_label; DROP TABLE series_type; DROP INDEX series_by_last_seg;"
                     "ALTER TABLE series DROP COLUMN last_seg; PRAGMA user_version=0;"
                     "INSERT INTO series(labels) VALUES('{\"monitor\":\"empty\"}');",
                     NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(h);
  store_repair rep;
  s = open_store(0, 1, &rep);
  if (!s) return;
  CHECK(!rep.index_rebuilt);
  CHECK_EQ_I64(index_i64("PRAGMA user_version", 0), 3);
  store_series_info *after;
  size_t na;
  CHECK(store_list_series(s, NULL, 0, NULL, 0, 0, NULL, 0, &after, &na, NULL, NULL) == 0);
  CHECK_EQ_I64(na, nb);
  for (size_t i = 0; i < na && i < nb; i++)
    CHECK(after[i].series_id == before[i].series_id && !strcmp(after[i].labels_json, before[i].labels_json) &&
          !strcmp(after[i].type, before[i].type) && !strcmp(after[i].sample_types, before[i].sample_types) &&
          after[i].count == before[i].count && after[i].first_ns == before[i].first_ns &&
          after[i].last_ns == before[i].last_ns);
  store_series_free(after, na);
  store_series_free(before, nb);
  store_stats st;
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.series, 30);
  size_t ns, ne;
  store_matcher az[] = {{"ns", "a"}, {"zone", "z1"}};
  count_listed(s, az, 2, 0, &ns, &ne);
  CHECK(ns == 5 && ne == 10);
  count_listed(s, NULL, 0, 20 * 1000000000LL + 1, &ns, &ne);
  CHECK_EQ_I64(ns, 10);
  store_close(s);
}

/* Durability (store.h): a syncer thread, not the writer, makes what was appended durable within
 * a round: every segment written (the rolled ones and the active one), the segments directory
 * (new files' names) and then the WAL; store_stats.durable_ns says up to when. store_close
 * makes the rest durable however long the period. */
static void syncer_makes_appends_durable(void) {
  fresh_dir();
  writer_thread = pthread_self();
  char segdir[300], wal[320];
  snprintf(segdir, sizeof segdir, "%s/segments", dir);
  snprintf(wal, sizeof wal, "%s/index.db-wal", dir);
  /* a segment per record */
  store *s = open_with((store_opts){.segment_bytes = 1, .sync_interval = 0.05}, NULL);
  if (!s) return;
  sync_log_reset();
  for (int i = 0; i < 3; i++) CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000 * (i + 1)) == 0);
  int64_t appended = wall_ns();
  store_stats st = {0};
  for (int k = 0; k < 500; k++) { /* rounds every 50 ms: one must start after the appends */
    store_get_stats(s, &st);
    if (st.durable_ns >= appended) break;
    usleep(10000);
  }
  CHECK(st.durable_ns >= appended);
  CHECK(st.syncs >= 1);
  CHECK_EQ_I64(st.sync_failures, 0);
  int64_t wal_at = last_sync(wal, false);
  CHECK(wal_at >= 0);
  CHECK(last_sync(segdir, false) >= 0);
  CHECK(last_sync(dir, false) >= 0); /* the WAL's name */
  for (int64_t id = 1; id <= 3; id++) {
    int64_t at = last_sync(segment_path(id), false);
    CHECK(at >= 0);
    CHECK(at < wal_at); /* the rows' WAL after the bytes they point at */
    CHECK_EQ_I64(last_sync(segment_path(id), true), -1); /* the writer never waits for a segment */
  }
  store_close(s);
  /* a period longer than the test: nothing synced by the syncer until store_close, which syncs it */
  s = open_with((store_opts){.segment_bytes = 1, .sync_interval = 3600}, NULL);
  if (!s) return;
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 5000) == 0);
  usleep(100000);
  int64_t seg = index_i64("SELECT MAX(id) FROM segment", 0);
  sync_log_reset();
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.syncs, 0);
  store_close(s);
  CHECK(seg > 3 && last_sync(segment_path(seg), false) >= 0);
  CHECK(last_sync(segdir, false) >= 0);
}

/* Limits at the edges: labels whose record metadata would pass MAX_META are refused with
 * PP_ELIMIT and leave nothing behind (no bytes, no row, no series), and an index whose schema
 * is newer than this store's is refused at open (PP_EINVAL), left as it was. */
static void limits_refused(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000) == 0);
  size_t big = (size_t)MAX_META + 1;
  char *value = malloc(big + 1);
  if (value) {
    memset(value, 'v', big);
    value[big] = '\0';
    store_label l[2] = {{"monitor", "b"}, {"huge", value}};
    pp_err err = {0};
    int64_t seg = index_i64("SELECT MAX(id) FROM segment", 0);
    struct stat before, after;
    CHECK(stat(segment_path(seg), &before) == 0);
    CHECK_EQ_I64(add_labels(s, "gotarget/heap.pb.gz", l, 2, "heap", 2000, NULL, &err), PP_ELIMIT);
    CHECK(strstr(err.msg, "labels too long") != NULL);
    CHECK(stat(segment_path(seg), &after) == 0 && after.st_size == before.st_size);
    store_stats st;
    store_get_stats(s, &st);
    CHECK(st.profiles == 1 && st.series == 1);
    free(value);
  }
  store_close(s);
  char db[400];
  snprintf(db, sizeof db, "%s/index.db", dir);
  sqlite3 *h = NULL;
  CHECK(sqlite3_open(db, &h) == SQLITE_OK && sqlite3_exec(h, "PRAGMA user_version=4", NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(h);
  store_opts o = {.dir = dir};
  pp_err err = {0};
  s = NULL;
  CHECK_EQ_I64(store_open(&o, &s, NULL, &err), PP_EINVAL);
  CHECK(s == NULL && strstr(err.msg, "newer") != NULL);
  CHECK_EQ_I64(index_i64("PRAGMA user_version", 0), 4);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM profile", 0), 1);
}

/* A round whose fdatasync fails is counted and says what failed and why (the store does not
 * log; its caller logs when sync_failing changes), and durable_ns stays where the last sound
 * round left it until a round succeeds again. */
static void sync_failure_told(void) {
  fresh_dir();
  store *s = open_with((store_opts){.sync_interval = 0.05}, NULL);
  if (!s) return;
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "heap", 1000) == 0);
  sync_fail_set(".seg");
  int64_t failing = wall_ns();
  store_stats st = {0};
  for (int k = 0; k < 500 && st.sync_failures == 0; k++) {
    usleep(10000);
    store_get_stats(s, &st);
  }
  CHECK(st.sync_failures >= 1);
  CHECK(strstr(st.last_sync_error, "fdatasync of the active segment") != NULL);
  CHECK(strstr(st.last_sync_error, strerror(EIO)) != NULL);
  CHECK(st.durable_ns < failing); /* every round since then failed */
  CHECK(st.sync_failing);                /* what the collector logs a change of */
  sync_fail_set("");
  int64_t healed = wall_ns();
  for (int k = 0; k < 500 && st.durable_ns < healed; k++) {
    usleep(10000);
    store_get_stats(s, &st);
  }
  CHECK(st.durable_ns >= healed);
  CHECK(!st.sync_failing);
  CHECK(strstr(st.last_sync_error, "active segment") != NULL); /* the last failure, still told */
  store_close(s);
}

/* A rollup the compactor finished for a series that retention deleted meanwhile is not stored,
 * also when a new series got the deleted one's id (the writer compares the labels too). */
static void rollup_of_a_deleted_series_dropped(void) {
  fresh_dir();
  store *s = open_with((store_opts){.retention_seconds = 100, .segment_bytes = 1}, NULL);
  pp_err err = {0};
  if (!s) return;
  const int64_t SEC = 1000000000;
  /* a segment per record: keep@1 s, gone@2 s, keep@400 s; retention at 300 s takes the first two */
  CHECK(add(s, "gotarget/heap.pb.gz", "keep", "heap", 1 * SEC) == 0);
  CHECK(add(s, "gotarget/heap.pb.gz", "gone", "heap", 2 * SEC) == 0);
  int64_t gone_id = index_i64("SELECT MAX(id) FROM series", 0);
  CHECK(add(s, "gotarget/heap.pb.gz", "keep", "heap", 400 * SEC) == 0);
  CHECK_EQ_I64(store_retention(s, 300 * SEC, &err), 2);
  CHECK(add(s, "gotarget/heap.pb.gz", "new", "heap", 450 * SEC) == 0);
  /* the premise: "gone" (the highest id) went with retention and "new" has its id */
  int64_t new_id = index_i64("SELECT id FROM series WHERE labels LIKE '%\"new\"%'", 0);
  CHECK_EQ_I64(new_id, gone_id);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM series WHERE labels LIKE '%\"gone\"%'", 0), 0);
  char path[512];
  snprintf(path, sizeof path, "%s/gotarget/heap.pb.gz", testdata());
  size_t len = 0;
  uint8_t *data = slurp(path, &len);
  CHECK(data != NULL);
  char labels[64] = "{\"monitor\":\"gone\",\"team\":\"core\"}", type[] = "heap";
  rollup_item it = {.series_id = gone_id, .start_ns = 0, .end_ns = STORE_ROLLUP_NS, .count = 2, .type = type,
                    .labels_json = labels, .data = data, .len = len};
  bool enospc = false;
  CHECK(store__write_rollup(s, &it, &enospc, &err) == 0);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM rollup", 0), 0);
  /* the same rollup for the series that is there is stored */
  snprintf(labels, sizeof labels, "%s", "{\"monitor\":\"new\",\"team\":\"core\"}");
  CHECK(store__write_rollup(s, &it, &enospc, &err) == 0);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM rollup WHERE series_id=?", new_id), 1);
  free(data);
  store_close(s);
}

/* ---- pages the index reads, counted by a VFS that wraps the default one -------------------------
 * Registered as the default while a test runs, so the store's own connections go through it.
 * Version 2 of the I/O methods (no xFetch), so SQLite reads every page through xRead. */
static sqlite3_vfs count_vfs, *base_vfs;
static sqlite3_io_methods count_io;
static int64_t index_reads;
typedef struct count_file {
  sqlite3_file base;
  sqlite3_file *real;
} count_file;
#define REAL(f) (((count_file *)(f))->real)
static int cf_close(sqlite3_file *f) {
  int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
  sqlite3_free(REAL(f));
  return rc;
}
static int cf_read(sqlite3_file *f, void *b, int n, sqlite3_int64 off) {
  __atomic_add_fetch(&index_reads, 1, __ATOMIC_RELAXED);
  return REAL(f)->pMethods->xRead(REAL(f), b, n, off);
}
static int cf_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off) {
  return REAL(f)->pMethods->xWrite(REAL(f), b, n, off);
}
static int cf_truncate(sqlite3_file *f, sqlite3_int64 n) { return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int cf_sync(sqlite3_file *f, int fl) { return REAL(f)->pMethods->xSync(REAL(f), fl); }
static int cf_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int cf_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int cf_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int cf_reserved(sqlite3_file *f, int *o) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), o); }
static int cf_fcntl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int cf_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int cf_devchar(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int cf_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp) {
  return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int cf_shmlock(sqlite3_file *f, int off, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), off, n, fl); }
static void cf_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int cf_shmunmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }

static int cv_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out) {
  count_file *cf = (count_file *)f;
  cf->base.pMethods = NULL;
  cf->real = sqlite3_malloc(base_vfs->szOsFile);
  if (!cf->real) return SQLITE_NOMEM;
  memset(cf->real, 0, (size_t)base_vfs->szOsFile);
  int rc = base_vfs->xOpen(base_vfs, name, cf->real, flags, out);
  if (rc != SQLITE_OK) {
    if (cf->real->pMethods) cf->real->pMethods->xClose(cf->real);
    sqlite3_free(cf->real);
    return rc;
  }
  cf->base.pMethods = &count_io;
  return SQLITE_OK;
}
static int cv_delete(sqlite3_vfs *v, const char *n, int sd) { return base_vfs->xDelete(base_vfs, n, sd); }
static int cv_access(sqlite3_vfs *v, const char *n, int fl, int *o) { return base_vfs->xAccess(base_vfs, n, fl, o); }
static int cv_full(sqlite3_vfs *v, const char *n, int no, char *o) { return base_vfs->xFullPathname(base_vfs, n, no, o); }
static int cv_random(sqlite3_vfs *v, int n, char *o) { return base_vfs->xRandomness(base_vfs, n, o); }
static int cv_sleep(sqlite3_vfs *v, int us) { return base_vfs->xSleep(base_vfs, us); }
static int cv_time(sqlite3_vfs *v, double *o) { return base_vfs->xCurrentTime(base_vfs, o); }
static int cv_lasterr(sqlite3_vfs *v, int n, char *o) { return base_vfs->xGetLastError(base_vfs, n, o); }
static int cv_time64(sqlite3_vfs *v, sqlite3_int64 *o) { return base_vfs->xCurrentTimeInt64(base_vfs, o); }

static void count_vfs_install(void) {
  base_vfs = sqlite3_vfs_find(NULL);
  count_io = (sqlite3_io_methods){2,         cf_close,  cf_read,     cf_write,  cf_truncate, cf_sync,
                                  cf_size,   cf_lock,   cf_unlock,   cf_reserved, cf_fcntl,  cf_sector,
                                  cf_devchar, cf_shmmap, cf_shmlock, cf_shmbarrier, cf_shmunmap, NULL, NULL};
  count_vfs = (sqlite3_vfs){2,         (int)sizeof(count_file), base_vfs->mxPathname, NULL,   "count",
                            NULL,      cv_open,                 cv_delete,            cv_access, cv_full,
                            NULL,      NULL,                    NULL,                 NULL,      cv_random,
                            cv_sleep,  cv_time,                 cv_lasterr,           cv_time64, NULL,
                            NULL,      NULL};
  sqlite3_vfs_register(&count_vfs, 1);
}

static void count_vfs_remove(void) {
  sqlite3_vfs_unregister(&count_vfs);
  sqlite3_vfs_register(base_vfs, 1);
}

/* Pages read from the index by a one-pod merge and a one-pod listing. */
static int64_t one_pod_reads(store *s) {
  store_matcher m = {"monitor", "target"};
  __atomic_store_n(&index_reads, 0, __ATOMIC_RELAXED);
  pprof_profile *p = NULL;
  size_t cnt = 0;
  CHECK(store_merged(s, &m, 1, "heap", 0, 0, STORE_AGG_SUM, 0, &p, &cnt, NULL) == 0);
  CHECK_EQ_I64(cnt, 1);
  pprof_free(p);
  store_series_info *si;
  size_t n = 0;
  CHECK(store_list_series(s, &m, 1, NULL, 0, 0, NULL, 0, &si, &n, NULL, NULL) == 0);
  CHECK_EQ_I64(n, 1);
  store_series_free(si, n);
  return __atomic_load_n(&index_reads, __ATOMIC_RELAXED);
}

/* Query cost follows the series selected, not the series stored: a one-pod merge and listing
 * read about as many index pages with 100,000 other series in the index as with 20 (pods
 * replaced over weeks); walking every series would read thousands. */
static void query_cost_follows_selection(void) {
  int64_t reads[2] = {0, 0};
  const int others[2] = {20, 100000};
  count_vfs_install();
  for (int k = 0; k < 2; k++) {
    fresh_dir();
    store *s = open_store(0, 0, NULL);
    if (!s) break;
    CHECK(add(s, "gotarget/heap.pb.gz", "target", "heap", 1000) == 0);
    store_close(s);
    /* the other series, written into the index from outside (fast): labels, their label rows,
     * alive in the current segment */
    char db[400], *sql = NULL;
    snprintf(db, sizeof db, "%s/index.db", dir);
    sqlite3 *h = NULL;
    CHECK(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, "unix") == SQLITE_OK);
    CHECK(asprintf(&sql,
                   "BEGIN;"
                   "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<%d)"
                   " INSERT INTO series(labels, last_seg) SELECT json_object('monitor','pod-'||i,'team','core'),"
                   " (SELECT MAX(id) FROM segment) FROM c;"
                   "INSERT INTO series_label(name, value, series_id) SELECT j.key, j.value, s.id FROM series s,"
                   " json_each(s.labels) j WHERE s.labels NOT LIKE '%%\"target\"%%';"
                   "COMMIT;",
                   others[k]) > 0);
    CHECK(sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK);
    free(sql);
    sqlite3_close(h);
    s = open_store(0, 0, NULL);
    if (!s) break;
    store_stats st;
    store_get_stats(s, &st);
    CHECK_EQ_I64(st.series, (uint64_t)others[k] + 1);
    reads[k] = one_pod_reads(s);
    store_close(s);
  }
  count_vfs_remove();
  printf("  index pages read by a one-pod merge and listing: %lld with 20 other series, %lld with 100,000\n",
         (long long)reads[0], (long long)reads[1]);
  CHECK(reads[0] > 0);
  CHECK(reads[1] <= 2 * reads[0]);
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
  /* (a budget 400 profiles pass: each is a few KB as ids, its symbols stored once a segment) */
  const uint64_t budget = 1 << 20, segment = 64 << 10;
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
  s = open_with((store_opts){.retention_seconds = 100}, NULL);
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

  s = open_with((store_opts){.no_rollups = true}, NULL);
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
  s = open_with((store_opts){.retention_seconds = 3600}, NULL);
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
  CHECK(got >= 2); /* windows base and base+W (and their hour, when it has closed) */
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM rollup WHERE end_ns-start_ns=600000000000", 0), 2);
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.rollups, (uint64_t)got);
  store_close(s); /* stops the thread */
}

/* ---- the v2 format (store_sym.h): symbols once per segment ----------------------------------- */

/* Every profile of the shared test data (gotarget, prometheus, large), by relative path. */
static size_t testdata_profiles(char names[][300], size_t max) {
  const char *sub[] = {"gotarget", "prometheus", "large"};
  size_t n = 0;
  for (int i = 0; i < 3; i++) {
    char d[400];
    snprintf(d, sizeof d, "%s/%s", testdata(), sub[i]);
    DIR *dd = opendir(d);
    CHECK(dd != NULL);
    struct dirent *e;
    while (dd && (e = readdir(dd)) && n < max)
      if (strstr(e->d_name, ".pb")) snprintf(names[n++], 300, "%s/%s", sub[i], e->d_name);
    if (dd) closedir(dd);
  }
  return n;
}

/* Reads row id back with store_read and compares it with the file: 0 when the same. */
static int read_back_same(store *s, int64_t id, const char *rel) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", testdata(), rel);
  pprof_profile *orig = NULL, *back = NULL;
  uint8_t *b = NULL;
  size_t len = 0;
  pp_err err = {0};
  int r = -1;
  if (pprof_decode_file(path, NULL, &orig, NULL) == 0 && store_read(s, id, &b, &len, &err) == 0 &&
      pprof_decode(b, len, NULL, &back, &err) == 0) {
    const char *why = stored_as_scraped(orig, back);
    if (why) fprintf(stderr, "  %s: read back differs: %s\n", rel, why);
    r = why ? -1 : 0;
  } else
    fprintf(stderr, "  %s: %s\n", rel, err.msg);
  pprof_free(orig);
  pprof_free(back);
  free(b);
  return r;
}

/* The ids of the rows of monitor m, oldest first (at most max). */
static size_t row_ids(store *s, const char *monitor, const char *type, int64_t *ids, size_t max) {
  store_matcher m = {"monitor", monitor};
  store_row *rows;
  size_t n = 0;
  if (store_list_rows(s, &m, 1, type, 0, 0, 0, &rows, &n, NULL) < 0) return 0;
  for (size_t i = 0; i < n && i < max; i++) ids[i] = rows[i].id;
  store_rows_free(rows, n);
  return n < max ? n : max;
}

/* Every shared profile, stored twice in one segment (the second time its symbols are there
 * already), reads back as the same profile; and the second copy costs a fraction of the first. */
static void v2_reads_back_every_profile(void) {
  fresh_dir();
  static char names[64][300];
  size_t nf = testdata_profiles(names, 64);
  CHECK(nf >= 30);
  store *s = open_store(0, (uint64_t)1 << 30, NULL);
  if (!s) return;
  store_stats st0, st1, st2;
  store_get_stats(s, &st0);
  for (size_t i = 0; i < nf; i++) CHECK(add(s, names[i], "first", "t", 1000 * (int64_t)(i + 1)) == 0);
  store_get_stats(s, &st1);
  for (size_t i = 0; i < nf; i++) CHECK(add(s, names[i], "again", "t", 1000 * (int64_t)(i + 1)) == 0);
  store_get_stats(s, &st2);
  fprintf(stderr, "  %zu profiles: %llu bytes the first time, %llu the second\n", nf,
          (unsigned long long)(st1.disk_bytes - st0.disk_bytes), (unsigned long long)(st2.disk_bytes - st1.disk_bytes));
  int64_t ids[64];
  const char *mon[] = {"first", "again"};
  for (int k = 0; k < 2; k++) {
    size_t n = row_ids(s, mon[k], "t", ids, 64);
    CHECK_EQ_I64(n, nf);
    for (size_t i = 0; i < n; i++) CHECK(read_back_same(s, ids[i], names[i]) == 0);
  }
  store_close(s);
  /* and after a reopen (the readers' cache empty) and a rebuild of the index from the segments */
  char db[400];
  snprintf(db, sizeof db, "%s/index.db", dir);
  CHECK(unlink(db) == 0);
  store_repair rep;
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK(rep.index_rebuilt);
  CHECK_EQ_I64(rep.rows_rebuilt, 2 * nf);
  CHECK_EQ_I64(rep.records_corrupt, 0);
  size_t n = row_ids(s, "again", "t", ids, 64);
  CHECK_EQ_I64(n, nf);
  for (size_t i = 0; i < n; i++) CHECK(read_back_same(s, ids[i], names[i]) == 0);
  store_close(s);
}

/* A store written in the old format (PPR1) opens, is served as scraped, takes new (v2)
 * records beside the old ones, merges both, and ages out. */
static void old_format_store_served(void) {
  const char *t = "cpu";
  fresh_dir();
  store *s = open_with((store_opts){.format = 1}, NULL);
  if (!s) return;
  for (int i = 0; i < 3; i++) CHECK(add(s, "prometheus/cpu-1.pb.gz", "a", "cpu", 1000000000LL * (i + 1)) == 0);
  store_close(s);
  s = open_store(0, 0, NULL);
  if (!s) return;
  for (int i = 3; i < 6; i++) CHECK(add(s, "prometheus/cpu-1.pb.gz", "a", "cpu", 1000000000LL * (i + 1)) == 0);
  int64_t ids[8];
  size_t n = row_ids(s, "a", t, ids, 8);
  CHECK_EQ_I64(n, 6);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM segment WHERE id>=?", 0), 2);
  /* the old ones byte for byte as scraped; all as the same profile */
  char path[512];
  snprintf(path, sizeof path, "%s/prometheus/cpu-1.pb.gz", testdata());
  size_t flen;
  uint8_t *file = slurp(path, &flen);
  for (size_t i = 0; i < n; i++) {
    uint8_t *b = NULL;
    size_t len = 0;
    CHECK(store_read(s, ids[i], &b, &len, NULL) == 0);
    if (i < 3) CHECK(file && len == flen && !memcmp(b, file, len));
    free(b);
    CHECK(read_back_same(s, ids[i], "prometheus/cpu-1.pb.gz") == 0);
  }
  free(file);
  /* a merge over both formats: six times the profile */
  store_matcher m = {"monitor", "a"};
  pprof_profile *p = NULL, *one = NULL;
  size_t cnt = 0;
  CHECK(store_merged(s, &m, 1, "cpu", 0, 0, STORE_AGG_SUM, 0, &p, &cnt, NULL) == 0);
  CHECK_EQ_I64(cnt, 6);
  CHECK(pprof_decode_file(path, NULL, &one, NULL) == 0);
  if (p && one) {
    pprof_top a, b;
    CHECK(pprof_top_compute(p, 0, &a, NULL) == 0 && pprof_top_compute(one, 0, &b, NULL) == 0);
    CHECK_EQ_I64(a.total, 6 * b.total);
    pprof_top_release(&a);
    pprof_top_release(&b);
  }
  pprof_free(p);
  pprof_free(one);
  /* the old segment ages out: the new ones stay */
  store_close(s);
  s = open_with((store_opts){.retention_seconds = 3.5}, NULL);
  if (!s) return;
  CHECK_EQ_I64(store_retention(s, 7000000000LL, NULL), 1);
  n = row_ids(s, "a", t, ids, 8);
  CHECK_EQ_I64(n, 3);
  store_close(s);
}

/* store_each_profile: what a timeline reads. Each callback's profile is the scraped one
 * (stored_as_scraped, as store_read's bytes are), for v1 and v2 records of one series in the
 * given order; an id with no row gets a NULL profile and an error, and the rest still come. */
typedef struct each_seen {
  const char *const *rel;
  size_t calls, same, missing;
} each_seen;

static int each_check(void *ud, size_t i, const pprof_profile *p, const pp_err *rec_err, pp_err *err) {
  each_seen *e = ud;
  e->calls++;
  if (!e->rel[i]) {
    if (!p && rec_err && rec_err->code == PP_EUSAGE && strstr(rec_err->msg, "no profile with id")) e->missing++;
    return 0;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/%s", testdata(), e->rel[i]);
  pprof_profile *orig = NULL;
  if (p && pprof_decode_file(path, NULL, &orig, NULL) == 0) {
    const char *why = stored_as_scraped(orig, p);
    if (why) fprintf(stderr, "  record %zu (%s): %s\n", i, e->rel[i], why);
    else e->same++;
  }
  pprof_free(orig);
  return 0;
}

static int each_stop(void *ud, size_t i, const pprof_profile *p, const pp_err *rec_err, pp_err *err) {
  size_t *calls = ud;
  ++*calls;
  return i == 1 ? pp_err_set(err, PP_ELIMIT, "enough") : 0;
}

static void each_profile_as_scraped(void) {
  fresh_dir();
  store *s = open_with((store_opts){.format = 1}, NULL);
  if (!s) return;
  CHECK(add(s, "prometheus/cpu-1.pb.gz", "a", "cpu", 1000000000LL) == 0);
  CHECK(add(s, "prometheus/cpu-2.pb.gz", "a", "cpu", 2000000000LL) == 0);
  store_close(s);
  s = open_store(0, 0, NULL);
  if (!s) return;
  const char *files[] = {"prometheus/cpu-3.pb.gz", "gotarget/cpu-1.pb.gz", "prometheus/cpu-3.pb.gz"};
  for (int k = 0; k < 3; k++) CHECK(add(s, files[k], "a", "cpu", 1000000000LL * (k + 3)) == 0);
  int64_t ids[8];
  size_t n = row_ids(s, "a", "cpu", ids, 8);
  CHECK_EQ_I64(n, 5);
  /* newest first, then one with no row, then the old-format ones */
  int64_t ask[6] = {ids[4], ids[3], ids[2], 999999, ids[1], ids[0]};
  const char *rel[6] = {files[2], files[1], files[0], NULL, "prometheus/cpu-2.pb.gz", "prometheus/cpu-1.pb.gz"};
  each_seen e = {rel, 0, 0, 0};
  CHECK(store_each_profile(s, ask, 6, NULL, each_check, &e, NULL) == 0);
  CHECK_EQ_I64(e.calls, 6);
  CHECK_EQ_I64(e.same, 5);
  CHECK_EQ_I64(e.missing, 1);
  /* the callback's error stops the walk and is returned */
  size_t calls = 0;
  pp_err err = {0};
  CHECK_EQ_I64(store_each_profile(s, ask, 6, NULL, each_stop, &calls, &err), PP_ELIMIT);
  CHECK_EQ_I64(calls, 2);
  store_close(s);
}

/* A segment file's records: offset and magic, walked by their headers. */
typedef struct seg_rec {
  int64_t off;
  char magic[5];
  uint32_t meta_len, data_len;
} seg_rec;

static size_t walk_segment(int64_t seg, seg_rec *v, size_t max) {
  int fd = open(segment_path(seg), O_RDONLY);
  size_t n = 0;
  uint8_t h[16];
  int64_t off = 0;
  while (fd >= 0 && n < max && pread(fd, h, 16, off) == 16) {
    seg_rec *r = &v[n++];
    r->off = off;
    memcpy(r->magic, h, 4);
    r->magic[4] = 0;
    memcpy(&r->meta_len, h + 4, 4);
    memcpy(&r->data_len, h + 8, 4);
    off += 16 + r->meta_len + r->data_len;
  }
  if (fd >= 0) close(fd);
  return n;
}

/* Damage to a symbol record: every profile that needs it (itself or a later one of the
 * chain) is dropped at open and by a rebuild, those before it are served; a segment cut in
 * the middle of its chain keeps what is before the cut. */
static void symbol_record_damage(void) {
  const char *t = "t";
  fresh_dir();
  const char *files[] = {"gotarget/cpu-1.pb.gz", "gotarget/heap.pb.gz", "gotarget/goroutine.pb.gz",
                         "prometheus/cpu-1.pb.gz", "prometheus/heap.pb.gz", "gotarget/cpu-1.pb.gz"};
  store *s = open_store(0, (uint64_t)1 << 30, NULL);
  if (!s) return;
  for (int i = 0; i < 6; i++) CHECK(add(s, files[i], "a", "t", 1000 * (int64_t)(i + 1)) == 0);
  store_close(s);
  seg_rec v[32];
  size_t n = walk_segment(1, v, 32);
  /* sym, profile for each of the five different files; the sixth adds no symbols */
  CHECK_EQ_I64(n, 11);
  if (n != 11) return;
  for (size_t i = 0; i < 10; i++) CHECK_STR(v[i].magic, i % 2 ? "PPR2" : "PPS2");
  CHECK_STR(v[10].magic, "PPR2");
  /* the third symbol record (goroutine's) damaged: goroutine, prometheus' two and the last
   * cpu-1 (which needs the newest record of the chain) go; the first two stay */
  CHECK(flip_byte(segment_path(1), v[4].off + 16 + v[4].data_len / 2));
  store_repair rep;
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK_EQ_I64(rep.records_corrupt, 4);
  CHECK_EQ_I64(rep.rows_dropped, 4);
  int64_t ids[8];
  size_t nr = row_ids(s, "a", t, ids, 8);
  CHECK_EQ_I64(nr, 2);
  for (size_t i = 0; i < nr && i < 2; i++) CHECK(read_back_same(s, ids[i], files[i]) == 0);
  store_close(s);
  /* the tail past the last row kept was cut at that open: the file ends after heap's record */
  struct stat st;
  CHECK(stat(segment_path(1), &st) == 0 && st.st_size == v[3].off + 16 + v[3].meta_len + v[3].data_len);
  /* a rebuild from the segment agrees */
  char db[400];
  snprintf(db, sizeof db, "%s/index.db", dir);
  CHECK(unlink(db) == 0);
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK(rep.index_rebuilt);
  CHECK_EQ_I64(rep.rows_rebuilt, 2);
  nr = row_ids(s, "a", t, ids, 8);
  CHECK_EQ_I64(nr, 2);
  for (size_t i = 0; i < nr && i < 2; i++) CHECK(read_back_same(s, ids[i], files[i]) == 0);
  store_close(s);

  /* a fresh store, its index lost and its segment damaged in the second symbol record: the
   * rebuild indexes the first profile only (the others' chains pass through the damage) */
  fresh_dir();
  s = open_store(0, (uint64_t)1 << 30, NULL);
  if (!s) return;
  for (int i = 0; i < 6; i++) CHECK(add(s, files[i], "a", "t", 1000 * (int64_t)(i + 1)) == 0);
  store_close(s);
  n = walk_segment(1, v, 32);
  CHECK_EQ_I64(n, 11);
  CHECK(flip_byte(segment_path(1), v[2].off + 16 + v[2].data_len / 3));
  CHECK(unlink(db) == 0);
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK(rep.index_rebuilt);
  CHECK_EQ_I64(rep.rows_rebuilt, 1);
  CHECK_EQ_I64(rep.records_corrupt, 6); /* the symbol record and the five profiles after it */
  nr = row_ids(s, "a", t, ids, 8);
  CHECK_EQ_I64(nr, 1);
  if (nr == 1) CHECK(read_back_same(s, ids[0], files[0]) == 0);
  store_close(s);

  /* cut in the middle of the fourth symbol record: the three profiles before it stay */
  fresh_dir();
  s = open_store(0, (uint64_t)1 << 30, NULL);
  if (!s) return;
  for (int i = 0; i < 6; i++) CHECK(add(s, files[i], "a", "t", 1000 * (int64_t)(i + 1)) == 0);
  store_close(s);
  n = walk_segment(1, v, 32);
  CHECK(n == 11 && truncate(segment_path(1), v[6].off + 20) == 0);
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK_EQ_I64(rep.rows_dropped, 3);
  nr = row_ids(s, "a", t, ids, 8);
  CHECK_EQ_I64(nr, 3);
  for (size_t i = 0; i < nr && i < 3; i++) CHECK(read_back_same(s, ids[i], files[i]) == 0);
  /* and appends go on (in a new segment) */
  CHECK(add(s, files[3], "a", "t", 100000) == 0);
  nr = row_ids(s, "a", t, ids, 8);
  CHECK_EQ_I64(nr, 4);
  if (nr == 4) CHECK(read_back_same(s, ids[3], files[3]) == 0);
  store_close(s);
}

/* A profile whose write fails leaves no symbols behind in the writer's tables: the next
 * profile that needs them writes them again (else it would point at symbols the segment
 * never got, and read back as damage). */
static void failed_append_forgets_its_symbols(void) {
  const char *t = "t";
  fresh_dir();
  store *s = open_store(0, (uint64_t)1 << 30, NULL);
  if (!s) return;
  CHECK(add(s, "gotarget/heap.pb.gz", "a", "t", 1000) == 0);
  int64_t before = active_segment_size(s);
  inject(ENOSPC, ".seg");
  store_label l[2] = {{"monitor", "a"}, {"team", "core"}};
  bool enospc = false;
  pp_err err = {0};
  CHECK(add_labels(s, "prometheus/cpu-1.pb.gz", l, 2, "t", 2000, &enospc, &err) < 0);
  inject(0, "");
  CHECK(enospc);
  CHECK_EQ_I64(active_segment_size(s), before); /* neither record stayed */
  CHECK(add(s, "prometheus/heap.pb.gz", "a", "t", 3000) == 0);
  CHECK(add(s, "prometheus/cpu-1.pb.gz", "a", "t", 4000) == 0);
  int64_t ids[4];
  size_t n = row_ids(s, "a", t, ids, 4);
  CHECK_EQ_I64(n, 3);
  const char *files[] = {"gotarget/heap.pb.gz", "prometheus/heap.pb.gz", "prometheus/cpu-1.pb.gz"};
  for (size_t i = 0; i < n && i < 3; i++) CHECK(read_back_same(s, ids[i], files[i]) == 0);
  store_close(s);
}

/* ---- the writer's location cache (store_sym.c loc_cache) ---- */

/* One string of p's table, added when not there yet: its index. */
static uint32_t hand_str(pprof_profile *p, const char *v) {
  for (uint32_t i = 0; i < p->nstrings; i++)
    if (!strcmp(p->strings[i], v)) return i;
  p->strings[p->nstrings] = arena_strndup(&p->mem, v, strlen(v));
  p->string_len[p->nstrings] = (uint32_t)strlen(v);
  return (uint32_t)p->nstrings++;
}

typedef struct hand_fn {
  const char *name, *file;
  int64_t start;
} hand_fn;
typedef struct hand_loc {
  uint64_t addr;
  int fn; /* index into the functions, -1 = none */
  int64_t line;
} hand_loc;

/* A profile of one mapping, the functions fns, the locations locs (one line each) and one
 * sample per location, of value v0 * (i + 1). */
static pprof_profile *hand_profile(const hand_fn *fns, size_t nfn, const hand_loc *locs, size_t nloc, int64_t v0) {
  pprof_profile *p = calloc(1, sizeof *p);
  arena_init(&p->mem, 0);
  p->strings = arena_calloc(&p->mem, 8 + 2 * nfn, sizeof *p->strings);
  p->string_len = arena_calloc(&p->mem, 8 + 2 * nfn, sizeof *p->string_len);
  hand_str(p, "");
  p->nsample_type = 1;
  p->sample_type = arena_calloc(&p->mem, 1, sizeof *p->sample_type);
  p->sample_type[0] = (pprof_value_type){hand_str(p, "samples"), hand_str(p, "count")};
  p->period_type = p->sample_type[0];
  p->period = 1;
  p->nmapping = 1;
  p->mapping = arena_calloc(&p->mem, 1, sizeof *p->mapping);
  p->mapping[0] = (pprof_mapping){.id = 1, .start = 0x400000, .limit = 0x800000, .filename = hand_str(p, "/bin/app"),
                                  .has_functions = true};
  p->nfunction = nfn;
  p->function = arena_calloc(&p->mem, nfn + 1, sizeof *p->function);
  for (size_t i = 0; i < nfn; i++)
    p->function[i] = (pprof_function){.id = i + 1, .name = hand_str(p, fns[i].name), .system_name = hand_str(p, fns[i].name),
                                      .filename = hand_str(p, fns[i].file), .start_line = fns[i].start};
  p->nlocation = nloc;
  p->location = arena_calloc(&p->mem, nloc + 1, sizeof *p->location);
  p->nsample = nloc;
  p->sample = arena_calloc(&p->mem, nloc + 1, sizeof *p->sample);
  for (size_t i = 0; i < nloc; i++) {
    pprof_location *l = &p->location[i];
    *l = (pprof_location){.id = i + 1, .mapping = 1, .address = locs[i].addr, .nline = 1};
    l->line = arena_calloc(&p->mem, 1, sizeof *l->line);
    l->line[0] = (pprof_line){.function = locs[i].fn >= 0 ? (uint32_t)locs[i].fn + 1 : 0, .line = locs[i].line};
    pprof_sample *sm = &p->sample[i];
    sm->nloc = 1;
    sm->loc = arena_calloc(&p->mem, 1, sizeof *sm->loc);
    sm->loc[0] = (uint32_t)i;
    sm->value = arena_calloc(&p->mem, 1, sizeof *sm->value);
    sm->value[0] = v0 * (int64_t)(i + 1);
  }
  return p;
}

/* Locations equal in address, mapping and line number but not in their function (its name,
 * its file, its start line, or no function at all) are different locations: the writer's
 * location cache, which hashes only address, mapping and lines, must never hand one the
 * other's id, within one profile or across the profiles of a segment. Each profile reads back
 * as written. */
static void loc_cache_keeps_locations_apart(void) {
  fresh_dir();
  store *s = open_store(0, (uint64_t)1 << 30, NULL);
  if (!s) return;
  const hand_fn fns[] = {{"main.a", "a.go", 1}, {"main.b", "a.go", 1}, {"main.a", "b.go", 1}, {"main.a", "a.go", 2}};
  /* one address, line 10, five ways: each overwrites the cache slot of the one before */
  const hand_loc all[] = {{0x401000, 0, 10}, {0x401000, 1, 10}, {0x401000, 2, 10}, {0x401000, 3, 10}, {0x401000, -1, 10}};
  pprof_profile *p[8];
  size_t np = 0;
  p[np++] = hand_profile(fns, 4, all, 5, 1);
  /* then profiles of one of them each, in an order where the slot holds another one */
  const int pick[] = {0, 2, 1, 3, 4, 0, 3};
  for (size_t i = 0; i < sizeof pick / sizeof *pick; i++) p[np++] = hand_profile(fns, 4, &all[pick[i]], 1, 100 * (int64_t)(i + 1));
  store_label l[1] = {{"monitor", "same-address"}};
  for (size_t i = 0; i < np; i++) {
    store_record r = {l, 1, "t", 1000 * (int64_t)(i + 1) - 1, 1000 * (int64_t)(i + 1), NULL, 0, p[i]};
    bool enospc;
    pp_err err = {0};
    CHECK(store_append(s, &r, &enospc, &err) == 0);
  }
  int64_t ids[8];
  size_t n = row_ids(s, "same-address", "t", ids, 8);
  CHECK_EQ_I64(n, np);
  for (size_t i = 0; i < n; i++) {
    uint8_t *b = NULL;
    size_t len = 0;
    pprof_profile *back = NULL;
    CHECK(store_read(s, ids[i], &b, &len, NULL) == 0 && pprof_decode(b, len, NULL, &back, NULL) == 0);
    const char *why = back ? stored_as_scraped(p[i], back) : "not read";
    if (why) fprintf(stderr, "  profile %zu: read back differs: %s\n", i, why);
    CHECK(why == NULL);
    /* and the first one's five locations stay five */
    if (back && i == 0) CHECK_EQ_I64(back->nlocation, 5);
    pprof_free(back);
    free(b);
  }
  for (size_t i = 0; i < np; i++) pprof_free(p[i]);
  store_close(s);
}

/* The writer's symbol tables stay bounded whatever targets send: profiles that bring ever new
 * symbols (here 20,000 new strings of 100 bytes each) roll the segment once the tables pass
 * SYM_WRITER_MAX, though the segment is far from its size; and what was written reads back. */
static void writer_tables_stay_bounded(void) {
  fresh_dir();
  store *s = open_store(0, (uint64_t)1 << 34, NULL);
  if (!s) return;
  enum { NSTR = 20000, NPROF = 14 };
  size_t peak = 0;
  for (int k = 0; k < NPROF; k++) {
    pprof_profile *p = calloc(1, sizeof *p);
    arena_init(&p->mem, 0);
    p->nstrings = NSTR;
    p->strings = arena_calloc(&p->mem, NSTR, sizeof *p->strings);
    p->string_len = arena_calloc(&p->mem, NSTR, sizeof *p->string_len);
    p->strings[0] = arena_strndup(&p->mem, "", 0);
    for (int i = 1; i < NSTR; i++) {
      char b[128];
      int n = snprintf(b, sizeof b, "profile %d string %d %080d", k, i, i * 7919 + k);
      p->strings[i] = arena_strndup(&p->mem, b, (size_t)n);
      p->string_len[i] = (uint32_t)n;
    }
    p->nsample_type = 1;
    p->sample_type = arena_calloc(&p->mem, 1, sizeof *p->sample_type);
    p->sample_type[0] = (pprof_value_type){1, 2};
    p->period_type = p->sample_type[0];
    /* the writer stores only strings something uses: each string past the sample type's is
     * a function's name, each function a location's (no sample uses them) */
    p->nfunction = p->nlocation = NSTR - 3;
    p->function = arena_calloc(&p->mem, NSTR, sizeof *p->function);
    p->location = arena_calloc(&p->mem, NSTR, sizeof *p->location);
    for (size_t i = 0; i < p->nfunction; i++) {
      p->function[i] = (pprof_function){.id = i + 1, .name = (uint32_t)i + 3};
      p->location[i] = (pprof_location){.id = i + 1, .address = 0x1000 + i, .nline = 1};
      p->location[i].line = arena_calloc(&p->mem, 1, sizeof *p->location[i].line);
      p->location[i].line[0].function = (uint32_t)i + 1;
    }
    store_label l[1] = {{"monitor", "big"}};
    store_record r = {l, 1, "t", 1000 * (k + 1) - 1, 1000 * (k + 1), NULL, 0, p};
    bool enospc;
    pp_err err = {0};
    CHECK(store_append(s, &r, &enospc, &err) == 0);
    size_t b = sym__writer_bytes(s->symw);
    if (b > peak) peak = b;
    pprof_free(p);
  }
  int64_t segs = index_i64("SELECT COUNT(*) FROM segment WHERE id>=?", 0);
  fprintf(stderr, "  writer tables peaked at %zu bytes; %lld segments\n", peak, (long long)segs);
  /* one profile's symbols (about 3 MB of tables) past the bound at most */
  CHECK(peak <= SYM_WRITER_MAX + ((size_t)8 << 20));
  CHECK(segs >= 2);
  store_matcher m = {"monitor", "big"};
  store_row *rows;
  size_t n;
  CHECK(store_list_rows(s, &m, 1, "t", 0, 0, 0, &rows, &n, NULL) == 0);
  CHECK_EQ_I64(n, NPROF);
  for (size_t i = 0; i < n; i++) {
    uint8_t *b = NULL;
    size_t len = 0;
    pprof_profile *back = NULL;
    CHECK(store_read(s, rows[i].id, &b, &len, NULL) == 0 && pprof_decode(b, len, NULL, &back, NULL) == 0);
    /* only the strings the profile uses come back: "" and its sample type's two */
    char want[64];
    snprintf(want, sizeof want, "profile %zu string 1 ", i);
    if (back) CHECK(back->nstrings == 3 && !strncmp(back->strings[1], want, strlen(want)));
    pprof_free(back);
    free(b);
  }
  store_rows_free(rows, n);
  store_close(s);
}


/* ---- merges on ids (issue 13 §2) ---- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The profile's samples as sorted text lines: the stack by content (address, mapping file,
 * each line's function, file and number), the labels and the values; so two profiles whose
 * samples say the same thing in any order and with any tables compare equal line by line. */
static char **sample_lines(const pprof_profile *p, size_t *ret_n) {
  char **v = calloc(p->nsample + 1, sizeof *v);
  for (size_t i = 0; v && i < p->nsample; i++) {
    const pprof_sample *x = &p->sample[i];
    char *b = NULL;
    size_t bl = 0;
    FILE *f = open_memstream(&b, &bl);
    for (uint32_t k = 0; k < x->nloc; k++) {
      const pprof_location *l = &p->location[x->loc[k]];
      fprintf(f, "%" PRIx64 "@%s", l->address, l->mapping ? pprof_str(p, p->mapping[l->mapping - 1].filename) : "");
      for (uint32_t j = 0; j < l->nline; j++) {
        const pprof_function *fn = l->line[j].function ? &p->function[l->line[j].function - 1] : NULL;
        fprintf(f, ",%s:%s:%" PRId64, fn ? pprof_str(p, fn->name) : "", fn ? pprof_str(p, fn->filename) : "",
                l->line[j].line);
      }
      fputc(';', f);
    }
    for (uint32_t k = 0; k < x->nlabel; k++)
      fprintf(f, "|%s=%s/%" PRId64 "%s", pprof_str(p, x->label[k].key), pprof_str(p, x->label[k].str), x->label[k].num,
              pprof_str(p, x->label[k].num_unit));
    for (size_t k = 0; k < p->nsample_type; k++) fprintf(f, " %" PRId64, x->value[k]);
    fclose(f);
    v[i] = b;
  }
  qsort(v, p->nsample, sizeof *v, cmp_str);
  *ret_n = p->nsample;
  return v;
}

/* NULL when a and b hold the same samples (by content, any order) and the same header values
 * a merge combines; else the first difference. */
static const char *same_merge(const pprof_profile *a, const pprof_profile *b) {
  static char why[300];
  if (!a || !b) return "missing profile";
  if (a->nsample_type != b->nsample_type) return "sample type count";
  for (size_t i = 0; i < a->nsample_type; i++)
    if (strcmp(pprof_str(a, a->sample_type[i].type), pprof_str(b, b->sample_type[i].type))) return "sample types";
  if (a->period != b->period) return "period";
  if (a->time_nanos != b->time_nanos) return "time";
  if (a->duration_nanos != b->duration_nanos) return "duration";
  size_t na, nb;
  char **la = sample_lines(a, &na), **lb = sample_lines(b, &nb);
  const char *r = NULL;
  if (na != nb) {
    snprintf(why, sizeof why, "%zu samples vs %zu", na, nb);
    r = why;
  }
  for (size_t i = 0; !r && i < na; i++)
    if (strcmp(la[i], lb[i])) {
      snprintf(why, sizeof why, "sample %zu: %.120s vs %.120s", i, la[i], lb[i]);
      r = why;
    }
  for (size_t i = 0; i < na; i++) free(la[i]);
  for (size_t i = 0; i < nb; i++) free(lb[i]);
  free(la);
  free(lb);
  return r;
}

/* The codec's merge of these files (avg: each series' files merged and divided by their count,
 * then summed): what the store's merges on ids must equal. */
typedef struct oracle_src {
  const char *path;
  int series;
} oracle_src;

static pprof_profile *oracle_merge(const oracle_src *src, size_t n, bool avg) {
  pprof_merger *total = NULL;
  CHECK(pprof_merger_new(&total, NULL) == 0);
  for (int sr = 0; sr < (avg ? 3 : 1); sr++) {
    pprof_merger *m = NULL;
    CHECK(pprof_merger_new(&m, NULL) == 0);
    int cnt = 0;
    for (size_t i = 0; i < n; i++) {
      if (avg && src[i].series != sr) continue;
      pprof_profile *p = NULL;
      CHECK(pprof_decode_file(src[i].path, NULL, &p, NULL) == 0);
      if (pprof_merger_add(m, p, 1, NULL) == 0) cnt++;
      pprof_free(p);
    }
    pprof_profile *part = NULL;
    CHECK(pprof_merger_finish(m, &part, NULL) == 0);
    if (avg && cnt > 1) pprof_scale(part, 1.0 / cnt);
    CHECK(pprof_merger_add(total, part, 1, NULL) == 0);
    pprof_free(part);
  }
  pprof_profile *out = NULL;
  CHECK(pprof_merger_finish(total, &out, NULL) == 0);
  return out;
}

/* Merges on ids give what the codec's merge of the profiles as scraped gives: sum and avg,
 * across segments (small ones, so a series spans several), three programs, numeric labels
 * (heap), a record whose sample types differ (skipped by both), with and without rollups, and
 * within a memory budget; a budget too small is refused, naming the memory limit. */
static void merges_on_ids_equal_codec_merge(void) {
  fresh_dir();
  char caddy[400], cwd[256];
  CHECK(getcwd(cwd, sizeof cwd) != NULL);
  snprintf(caddy, sizeof caddy, "%s/tests/testdata/caddy", cwd);
  const char *prog[3] = {"prometheus", "gotarget", NULL};
  char dirs[3][400];
  for (int i = 0; i < 2; i++) snprintf(dirs[i], sizeof dirs[i], "%s/%s", testdata(), prog[i]);
  snprintf(dirs[2], sizeof dirs[2], "%s", caddy);
  static char paths[3][8][1300];
  const char *names[8] = {"cpu-1", "cpu-2", "cpu-3", "cpu-4", "cpu-5", "cpu-6", "heap", "goroutine"};
  for (int g = 0; g < 3; g++)
    for (int f = 0; f < 8; f++) snprintf(paths[g][f], sizeof paths[g][f], "%s/%s.pb.gz", dirs[g], names[f]);
  store *s = open_store(0, 48 << 10, NULL);
  if (!s) return;
  const int64_t t0 = 3000000 * W;
  oracle_src cpu[64], heap[64];
  size_t ncpu = 0, nheap = 0;
  const char *mon[3] = {"a", "b", "c"};
  for (int k = 0; k < 14; k++)
    for (int g = 0; g < 3; g++) {
      const char *f = paths[g][(k + g) % 6];
      CHECK(add(s, f, mon[g], "cpu", t0 + k * MIN60 + g) == 0);
      cpu[ncpu++] = (oracle_src){f, g};
      if (k % 3 == g) {
        CHECK(add(s, paths[g][6], mon[g], "heap", t0 + k * MIN60 + g) == 0);
        heap[nheap++] = (oracle_src){paths[g][6], g};
      }
    }
  /* a target whose "cpu" came with other sample types: both merges skip it */
  CHECK(add(s, paths[1][7], "b", "cpu", t0 + 15 * MIN60) == 0);
  store_stats st;
  store_get_stats(s, &st);
  CHECK(st.segments >= 4);
  pprof_profile *want_cpu = oracle_merge(cpu, ncpu, false), *want_heap = oracle_merge(heap, nheap, false),
                *want_heap_avg = oracle_merge(heap, nheap, true);
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) CHECK(store_compact(s, t0 + 3 * W, NULL) >= 4); /* the same questions answered from rollups */
    struct {
      const char *type;
      store_agg agg;
      pprof_profile *want;
      size_t count;
    } q[] = {{"cpu", STORE_AGG_SUM, want_cpu, ncpu}, {"heap", STORE_AGG_SUM, want_heap, nheap},
             {"heap", STORE_AGG_AVG, want_heap_avg, nheap}};
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
      pprof_profile *got = NULL;
      size_t cnt = 0;
      pp_err err = {0};
      CHECK(store_merged(s, NULL, 0, q[i].type, 0, 0, q[i].agg, 0, &got, &cnt, &err) == 0);
      CHECK_EQ_I64(cnt, q[i].count);
      const char *why = same_merge(got, q[i].want);
      if (why) fprintf(stderr, "  pass %d, %s/%d: %s\n", pass, q[i].type, (int)q[i].agg, why);
      CHECK(why == NULL);
      pprof_free(got);
      /* within a budget that is enough: the same; one far too small: refused */
      got = NULL;
      CHECK(store_merged_within(s, NULL, 0, q[i].type, 0, 0, q[i].agg, 0, (size_t)64 << 20, &got, &cnt, &err) == 0);
      CHECK(same_merge(got, q[i].want) == NULL);
      pprof_free(got);
      got = NULL;
      CHECK_EQ_I64(store_merged_within(s, NULL, 0, q[i].type, 0, 0, q[i].agg, 0, 48 << 10, &got, &cnt, &err),
                   PP_ELIMIT);
      CHECK(strstr(err.msg, "memory limit") != NULL);
      pprof_free(got);
    }
  }
  pprof_free(want_cpu);
  pprof_free(want_heap);
  pprof_free(want_heap_avg);
  store_close(s);
}

/* Room for more strings in a hand_profile. */
static void hand_more_strings(pprof_profile *p, size_t more) {
  char **ns = arena_calloc(&p->mem, p->nstrings + more, sizeof *ns);
  uint32_t *nl = arena_calloc(&p->mem, p->nstrings + more, sizeof *nl);
  memcpy(ns, p->strings, p->nstrings * sizeof *ns);
  memcpy(nl, p->string_len, p->nstrings * sizeof *nl);
  p->strings = ns;
  p->string_len = nl;
}

static void hand_labels(pprof_profile *p, size_t i, const char *k1, const char *v1, const char *k2, const char *v2) {
  pprof_sample *sm = &p->sample[i];
  sm->nlabel = 2;
  sm->label = arena_calloc(&p->mem, 2, sizeof *sm->label);
  sm->label[0] = (pprof_label){.key = hand_str(p, k1), .str = hand_str(p, v1)};
  sm->label[1] = (pprof_label){.key = hand_str(p, k2), .str = hand_str(p, v2)};
}

/* A merge whose records all sit in one segment is answered by that segment's profile as the
 * sums on ids build it, without the merger's copy (store_query.c merge_picked, idm_take), and
 * only when the merger would give that profile back unchanged: the answer equals, field by
 * field, what the merger makes of it (so it is what the merger made of it before), and holds
 * what the codec's merge of the profiles holds. Records of one program go the short way; the
 * merger still runs when the segment holds what it would change: one binary mapped at two
 * addresses (it folds the mappings, google/pprof's mappingKey), labels out of its order (it
 * sorts them, folding samples that differ only in that), sums that cancel out (it drops
 * them). */
static void one_segment_merge_is_the_mergers(void) {
  const hand_fn fns[] = {{"main.a", "a.go", 1}, {"main.b", "b.go", 1}, {"main.c", "c.go", 1}};
  const hand_loc locs[] = {{0x401000, 0, 10}, {0x402000, 1, 20}, {0x403000, 2, 30}};
  enum { FILES, ASLR, LABELS, CANCEL, NCASE };
  const char *name[NCASE] = {"files", "aslr", "labels", "cancel"};
  for (int c = 0; c < NCASE; c++) {
    fresh_dir();
    store *s = open_store(0, (uint64_t)1 << 30, NULL);
    if (!s) return;
    pprof_profile *in[4] = {0};
    size_t n = 0;
    if (c == FILES) {
      for (int i = 1; i <= 3; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/prometheus/cpu-%d.pb.gz", testdata(), i);
        CHECK(pprof_decode_file(path, NULL, &in[n++], NULL) == 0);
      }
    } else if (c == ASLR) {
      /* the same binary in two processes: mapped 1 MiB apart, the same code at the same offsets */
      in[n++] = hand_profile(fns, 3, locs, 3, 1);
      pprof_profile *b = in[n++] = hand_profile(fns, 3, locs, 3, 5);
      b->mapping[0].start += 0x100000;
      b->mapping[0].limit += 0x100000;
      for (size_t i = 0; i < b->nlocation; i++) b->location[i].address += 0x100000;
    } else if (c == LABELS) {
      pprof_profile *p = in[n++] = hand_profile(fns, 3, locs, 3, 1);
      hand_more_strings(p, 8);
      hand_labels(p, 0, "zeta", "1", "alpha", "2");
      hand_labels(p, 1, "alpha", "3", "zeta", "4");
      p->sample[2].loc[0] = 0; /* sample 0's stack and labels, in the other order */
      hand_labels(p, 2, "alpha", "2", "zeta", "1");
    } else {
      in[n++] = hand_profile(fns, 3, locs, 3, 1);
      in[n++] = hand_profile(fns, 3, locs, 1, -1); /* location 0's sample, cancelled */
    }
    store_label l[1] = {{"monitor", "one-segment"}};
    for (size_t i = 0; i < n; i++) {
      store_record r = {l, 1, "cpu", 1000 * (int64_t)(i + 1) - 1, 1000 * (int64_t)(i + 1), NULL, 0, in[i]};
      bool enospc;
      pp_err err = {0};
      CHECK(store_append(s, &r, &enospc, &err) == 0);
    }
    store_stats st;
    store_get_stats(s, &st);
    CHECK_EQ_I64(st.segments, 1);
    uint64_t direct0 = s->merges_direct;
    pprof_profile *got = NULL, *again = NULL, *want = NULL;
    size_t cnt = 0;
    pp_err err = {0};
    CHECK(store_merged(s, NULL, 0, "cpu", 0, 0, STORE_AGG_SUM, 0, &got, &cnt, &err) == 0);
    CHECK_EQ_I64(cnt, n);
    CHECK_EQ_I64(s->merges_direct - direct0, c == FILES);
    /* what the merger makes of the answer is the answer */
    CHECK(got && pprof_merge(&got, 1, &again, NULL) == 0);
    const char *why = got && again ? profile_eq(again, got) : "missing";
    if (why) fprintf(stderr, "  %s: the merger changes the answer: %s\n", name[c], why);
    CHECK(why == NULL);
    CHECK(pprof_merge(in, n, &want, NULL) == 0);
    why = same_merge(got, want);
    if (why) fprintf(stderr, "  %s: differs from the codec's merge: %s\n", name[c], why);
    CHECK(why == NULL);
    if (got && c == ASLR) CHECK_EQ_I64(got->nmapping, 1);
    if (got && c == LABELS) CHECK_EQ_I64(got->nsample, 2);
    if (got && c == CANCEL) CHECK_EQ_I64(got->nsample, 2);
    /* within a budget: the same answer */
    pprof_profile *within = NULL;
    CHECK(store_merged_within(s, NULL, 0, "cpu", 0, 0, STORE_AGG_SUM, 0, (size_t)64 << 20, &within, &cnt, &err) == 0);
    CHECK(within && got && profile_eq(within, got) == NULL);
    CHECK_EQ_I64(s->merges_direct - direct0, 2 * (c == FILES));
    pprof_free(within);
    pprof_free(got);
    pprof_free(again);
    pprof_free(want);
    for (size_t i = 0; i < n; i++) pprof_free(in[i]);
    store_close(s);
  }
}

/* ---- tiers: rollups at 10 minutes and 1 hour, retention per tier ---- */

#define H STORE_ROLLUP_HOUR_NS

/* Two hours from t0: a and b's CPU profiles one a minute (a's first window holds one profile
 * only, so its hour has a window without a 10-minute rollup), a's heap every other minute. */
static void two_hours(store *s, int64_t t0) {
  for (int k = 0; k < 120; k++) {
    char cpu[64];
    snprintf(cpu, sizeof cpu, "prometheus/cpu-%d.pb.gz", 1 + k % 6);
    int64_t t = t0 + k * MIN60 + 1000;
    if (k == 0 || k >= 10) CHECK(add(s, cpu, "a", "cpu", t) == 0);
    CHECK(add(s, cpu, "b", "cpu", t + 1) == 0);
    if (k % 2 == 0) CHECK(add(s, k % 4 ? "prometheus/heap.pb.gz" : "gotarget/heap.pb.gz", "a", "heap", t) == 0);
  }
}

/* The rollup record of (monitor, type, [a, b)) read through the store's record reader (PPR1
 * or v2 alike), decoded; NULL if none. */
static pprof_profile *rollup_record(store *s, const char *mon, const char *type, int64_t a, int64_t b,
                                    int64_t *ret_count) {
  char db[400], lj[128];
  snprintf(db, sizeof db, "%s/index.db", dir);
  snprintf(lj, sizeof lj, "{\"monitor\":\"%s\",\"team\":\"core\"}", mon);
  sqlite3 *h = NULL;
  sqlite3_stmt *st = NULL;
  pprof_profile *p = NULL;
  if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(h,
                         "SELECT " STORE_LOC_COLS ", r.count FROM rollup r "
                         "JOIN series s ON s.id=r.series_id WHERE s.labels=?1 AND r.type=?2 AND r.start_ns=?3 AND "
                         "r.end_ns=?4",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, lj, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, a);
    sqlite3_bind_int64(st, 4, b);
    if (sqlite3_step(st) == SQLITE_ROW) {
      row_loc e;
      memset(&e, 0, sizeof e);
      store__take_loc(st, 0, &e);
      *ret_count = sqlite3_column_int64(st, 5);
      uint8_t *gz = NULL;
      size_t len = 0;
      CHECK(store__read_record(s, &e, &gz, &len, NULL) == 0 && pprof_decode(gz, len, NULL, &p, NULL) == 0);
      free(gz);
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return p;
}

static pprof_profile *merged(store *s, const char *mon, const char *type, int64_t from, int64_t to, store_agg agg,
                             size_t *ret_count, store_merge_info *info) {
  store_matcher m = {"monitor", mon};
  pprof_profile *p = NULL;
  pp_err err = {0};
  size_t c = 0;
  if (store_merged_info(s, &m, 1, type, from, to, agg, 0, 0, &p, &c, info, &err) < 0)
    fprintf(stderr, "  merge: %s\n", err.msg);
  if (ret_count) *ret_count = c;
  return p;
}

static const store_opts TIERS = {.segment_bytes = 40000, .retention_raw_seconds = 1800,
                                 .retention_rollup_seconds = 30 * 86400};

/* Every rollup, at both levels, is the merge of exactly the raw profiles of its window (every
 * function's flat and cum of every sample type); an hour is built from its 10-minute rollups
 * plus the profiles of the window that has none. */
static void rollups_equal_their_profiles(void) {
  fresh_dir();
  store_opts o = TIERS;
  o.no_rollups = true; /* merges below read raw profiles only */
  store *s = open_with(o, NULL);
  if (!s) return;
  const int64_t t0 = 3000000 * W; /* an hour boundary */
  CHECK(t0 % H == 0);
  two_hours(s, t0);
  store_stats st;
  store_get_stats(s, &st);
  uint64_t before = st.records_read;
  pp_err err = {0};
  /* 10 min: a cpu 11 windows (its first has one profile), b cpu 12, a heap 12; hours: 3 x 2 */
  CHECK_EQ_I64(store_compact(s, t0 + 2 * H + W, &err), 35 + 6);
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.compacted_until_ns, t0 + 2 * H);
  CHECK_EQ_I64(st.hours_compacted_until_ns, t0 + 2 * H);
  /* the windows read their 290 profiles; the hours their 10-minute rollups (36 records: 6 an
   * hour, a's first hour 5 rollups and the lone profile), not the 290 profiles again */
  CHECK_EQ_I64(st.records_read - before, 290 + 36);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM segment WHERE tier=1", 0) > 0, 1);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM rollup r JOIN segment g ON g.id=r.segment_id WHERE g.tier<>1", 0), 0);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM profile p JOIN segment g ON g.id=p.segment_id WHERE g.tier<>0", 0), 0);
  const char *mons[3] = {"a", "b", "a"}, *types[3] = {"cpu", "cpu", "heap"};
  int compared = 0;
  for (int q = 0; q < 3; q++)
    for (int64_t width = W; width <= H; width += H - W)
      for (int64_t a = t0; a < t0 + 2 * H; a += width) {
        int64_t count = 0;
        pprof_profile *r = rollup_record(s, mons[q], types[q], a, a + width, &count);
        size_t n = 0;
        pprof_profile *raw = merged(s, mons[q], types[q], a, a + width - 1, STORE_AGG_SUM, &n, NULL);
        if (q == 0 && width == W && a == t0) {
          CHECK(r == NULL); /* one profile: no 10-minute rollup */
        } else {
          CHECK(r != NULL && raw != NULL);
          CHECK_EQ_I64(count, (int64_t)n);
          if (!same_profile(r, raw)) fprintf(stderr, "  %s %s [%lld, +%llds) differs\n", mons[q], types[q],
                                             (long long)((a - t0) / 1000000000), (long long)(width / 1000000000));
          CHECK(same_profile(r, raw));
          compared++;
        }
        pprof_free(r);
        pprof_free(raw);
      }
  CHECK_EQ_I64(compared, 35 + 6);
  store_close(s);
}

/* Tiered retention deletes raw segments past their period once rolled up; the windows they
 * held are answered from rollups, equal to what raw answered, and say so (resolution). */
static void tiers_answer_from_rollups(void) {
  fresh_dir();
  store_opts o = TIERS;
  o.no_rollups = true;
  store *s = open_with(o, NULL);
  if (!s) return;
  const int64_t t0 = 3000000 * W, now = t0 + 2 * H + W;
  two_hours(s, t0);
  pp_err err = {0};
  /* raw past its period is kept while its windows are not rolled up */
  CHECK_EQ_I64(store_retention(s, now, &err), 0);
  store_stats st;
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.profiles, 291);
  CHECK_EQ_I64(store_compact(s, now, &err), 41);
  /* what raw answers, before any of it goes */
  struct {
    const char *mon, *type;
    int64_t from, to;
    store_agg agg;
    int64_t res; /* the resolution once raw is gone */
  } q[] = {
      {"b", "cpu", 0, 0, STORE_AGG_SUM, H},
      {"a", "cpu", 0, 0, STORE_AGG_SUM, H},
      {"a", "heap", 0, 0, STORE_AGG_AVG, H},
      {"b", "cpu", t0 + W, t0 + 3 * W - 1, STORE_AGG_SUM, W}, /* two windows of a gone hour */
      {"a", "heap", t0 + W, t0 + 3 * W - 1, STORE_AGG_AVG, W},
  };
  enum { NQ = sizeof q / sizeof *q };
  pprof_profile *raw[NQ];
  size_t nraw[NQ];
  for (int i = 0; i < NQ; i++) {
    raw[i] = merged(s, q[i].mon, q[i].type, q[i].from, q[i].to, q[i].agg, &nraw[i], NULL);
    CHECK(raw[i] != NULL);
  }
  /* the mean per profile of b's first hour, as its timeline point will show it */
  store_matcher mb = {"monitor", "b"};
  store_row *rows = NULL;
  size_t nrows = 0;
  CHECK(store_list_rows(s, &mb, 1, "cpu", t0, t0 + H - 1, 0, &rows, &nrows, &err) == 0);
  CHECK_EQ_I64(nrows, 60);
  long long hour0 = 0;
  for (size_t i = 0; i < nrows; i++) {
    const char *c = strrchr(rows[i].totals, ',');
    hour0 += strtoll(c ? c + 1 : rows[i].totals, NULL, 10);
  }
  store_rows_free(rows, nrows);
  store_close(s);

  s = open_with(TIERS, NULL);
  if (!s) return;
  store_merge_info info;
  /* with raw complete, rollups are stand-ins and the answer is raw's */
  pprof_profile *p = merged(s, "b", "cpu", 0, 0, STORE_AGG_SUM, NULL, &info);
  CHECK(same_profile(p, raw[0]));
  pprof_free(p);
  CHECK_EQ_I64(info.resolution_ns, 0);
  CHECK(info.rollups > 0 && info.rollups_for_gone == 0);
  /* a reopened store knows nothing compacted yet: no raw goes by time until the walk */
  CHECK_EQ_I64(store_retention(s, now, &err), 0);
  CHECK(store_compact(s, now, &err) == 0);
  int d = store_retention(s, now, &err);
  CHECK(d > 0);
  store_get_stats(s, &st);
  /* raw ending before now - 30 min went (and only raw: every rollup is there) */
  CHECK(st.profiles < 291 && st.profiles > 0);
  CHECK_EQ_I64(st.rollups, 41);
  CHECK(st.raw_dropped_until_ns > t0 + H && st.raw_dropped_until_ns < now - (int64_t)1800 * 1000000000);
  CHECK_EQ_I64(index_i64("SELECT value FROM store_meta WHERE key='raw_dropped_until'", 0), st.raw_dropped_until_ns);
  /* segments hold records in append order, a few seconds apart across series: a profile ending
   * just before the watermark may be left in the next segment (its window reads the rollup) */
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM profile WHERE end_ns<=?1", st.raw_dropped_until_ns - MIN60), 0);
  for (int i = 0; i < NQ; i++) {
    size_t n = 0;
    p = merged(s, q[i].mon, q[i].type, q[i].from, q[i].to, q[i].agg, &n, &info);
    if (!same_profile(p, raw[i])) fprintf(stderr, "  query %d differs once raw is gone\n", i);
    CHECK(same_profile(p, raw[i]));
    CHECK_EQ_I64(n, nraw[i]);
    CHECK_EQ_I64(info.resolution_ns, q[i].res);
    CHECK(info.rollups_for_gone > 0);
    pprof_free(p);
  }
  /* the timeline: b's hours as rollup points (the mean per profile), no raw left in them */
  CHECK(store_list_points(s, &mb, 1, "cpu", 0, 0, 0, &rows, &nrows, &err) == 0);
  CHECK_EQ_I64(nrows, 2);
  for (size_t i = 0; i < nrows; i++) {
    CHECK(rows[i].id < 0 && rows[i].count == 60);
    CHECK_EQ_I64(rows[i].start_ns, t0 + (int64_t)i * H);
  }
  if (nrows) {
    const char *c = strrchr(rows[0].totals, ',');
    CHECK_EQ_I64(strtoll(c ? c + 1 : rows[0].totals, NULL, 10), hour0 / 60);
  }
  store_rows_free(rows, nrows);
  /* listing sees raw profiles only, as before */
  CHECK(store_list_rows(s, &mb, 1, "cpu", 0, 0, 0, &rows, &nrows, &err) == 0);
  CHECK_EQ_I64(nrows, (size_t)index_i64("SELECT COUNT(*) FROM profile p JOIN series s ON s.id=p.series_id WHERE "
                                        "s.labels LIKE '%\"b\"%' AND p.type='cpu'", 0));
  store_rows_free(rows, nrows);
  /* a lost index is rebuilt from the segments, which do not say how far tiered retention went:
   * the watermark comes back as the oldest raw profile left (a window older than it with fewer
   * profiles than its rollup lost them), and the answers stay the same */
  int64_t mark = st.raw_dropped_until_ns;
  store_close(s);
  char idx[400];
  const char *sfx[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(idx, sizeof idx, "%s/index.db%s", dir, sfx[i]);
    unlink(idx);
  }
  store_repair rep;
  s = open_with(TIERS, &rep);
  if (!s) return;
  CHECK(rep.index_rebuilt);
  store_get_stats(s, &st);
  CHECK(st.raw_dropped_until_ns >= mark - W && st.raw_dropped_until_ns < now);
  for (int i = 0; i < NQ; i++) {
    size_t n = 0;
    p = merged(s, q[i].mon, q[i].type, q[i].from, q[i].to, q[i].agg, &n, &info);
    if (!same_profile(p, raw[i])) fprintf(stderr, "  query %d differs after the index was rebuilt\n", i);
    CHECK(same_profile(p, raw[i]));
    CHECK_EQ_I64(n, nraw[i]);
    CHECK_EQ_I64(info.resolution_ns, q[i].res);
    pprof_free(p);
    pprof_free(raw[i]);
  }
  CHECK(store_compact(s, now, &err) == 0); /* the walk finds every window rolled up already */
  /* rollups outlive raw to their own period */
  CHECK(store_retention(s, now + (int64_t)3 * 3600 * 1000000000, &err) > 0);
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.rollups, 41);
  CHECK(store_retention(s, now + (int64_t)31 * 86400 * 1000000000, &err) > 0);
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.rollups, 0);
  store_close(s);
}

/* The raw tier's budget deletes raw even before it is rolled up (the budget wins), and the
 * rollup tier's budget holds its segments to it; without tiers, rollup segments still hold
 * rollups only and retention by size works as before. */
static void tier_budgets(void) {
  fresh_dir();
  store_opts o = {.segment_bytes = 40000, .retention_raw_bytes = 150000, .retention_rollup_bytes = 100000};
  store *s = open_with(o, NULL);
  if (!s) return;
  const int64_t t0 = 3000000 * W;
  two_hours(s, t0);
  pp_err err = {0};
  CHECK(store_retention(s, t0, &err) > 0); /* nothing compacted: the budget alone */
  int64_t raw = index_i64("SELECT COUNT(*) FROM segment WHERE tier=0", 0);
  CHECK(raw > 0 && raw * 40000 <= 150000 + 40000);
  store_close(s);
  /* rollups: built from what is left, then held to their budget */
  s = open_with((store_opts){.segment_bytes = 20000, .retention_rollup_bytes = 100000}, NULL);
  if (!s) return;
  CHECK(store_compact(s, t0 + 3 * H, &err) > 0);
  CHECK(store_retention(s, t0 + 3 * H, &err) > 0);
  int64_t ru = index_i64("SELECT COUNT(*) FROM segment WHERE tier=1", 0);
  CHECK(ru > 0 && ru * 20000 <= 100000 + 20000);
  CHECK(index_i64("SELECT COUNT(*) FROM segment WHERE tier=0", 0) == raw); /* raw untouched */
  store_close(s);
}

/* A version-2 index (no tiers, one rollup per window start) opens, is upgraded in place and
 * answers as before; its rollups stay in their raw segments. */
static void index_from_version_2(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  const int64_t t0 = 3000000 * W;
  for (int k = 0; k < 30; k++) CHECK(add(s, "prometheus/cpu-3.pb.gz", "a", "cpu", t0 + k * MIN60 + 1000) == 0);
  pp_err err = {0};
  CHECK_EQ_I64(store_compact(s, t0 + 4 * W, &err), 3);
  pprof_profile *before = merged(s, "a", "cpu", 0, 0, STORE_AGG_SUM, NULL, NULL);
  store_close(s);
  char db[400];
  snprintf(db, sizeof db, "%s/index.db", dir);
  sqlite3 *h = NULL;
  CHECK(sqlite3_open(db, &h) == SQLITE_OK);
  /* today's v2 tables, rollups moved into the raw segment as v2 wrote them */
  CHECK(sqlite3_exec(h,
                     "CREATE TABLE r2(id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL, type TEXT NOT NULL,"
                     " start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, count INTEGER NOT NULL,"
                     " segment_id INTEGER NOT NULL, rec_off INTEGER NOT NULL, rec_len INTEGER NOT NULL,"
                     " data_off INTEGER NOT NULL, data_len INTEGER NOT NULL, crc INTEGER NOT NULL,"
                     " UNIQUE(series_id, type, start_ns));"
                     "INSERT INTO r2 SELECT id, series_id, type, start_ns, end_ns, count, segment_id, rec_off, rec_len,"
                     " data_off, data_len, crc FROM rollup; DROP TABLE rollup; ALTER TABLE r2 RENAME TO rollup;"
                     "CREATE INDEX rollup_by_segment ON rollup(segment_id);"
                     "ALTER TABLE segment DROP COLUMN tier; DROP TABLE store_meta; PRAGMA user_version=2;",
                     NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(h);
  store_repair rep;
  s = open_store(0, 0, &rep);
  if (!s) return;
  CHECK(!rep.index_rebuilt && rep.rows_dropped == 0);
  CHECK_EQ_I64(index_i64("PRAGMA user_version", 0), 3);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM rollup", 0), 3);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM segment WHERE tier=0", 0), 2);
  store_stats st;
  store_get_stats(s, &st);
  uint64_t r0 = st.records_read;
  pprof_profile *after = merged(s, "a", "cpu", 0, 0, STORE_AGG_SUM, NULL, NULL);
  CHECK(same_profile(before, after));
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.records_read - r0, 3); /* the three upgraded rollups, not 30 profiles */
  /* and it goes on: an hour rollup next to a window's rollup at the same start */
  CHECK_EQ_I64(store_compact(s, t0 + 2 * H, &err), 1);
  CHECK_EQ_I64(index_i64("SELECT COUNT(*) FROM rollup WHERE start_ns=?1", t0), 2);
  pprof_free(before);
  pprof_free(after);
  store_close(s);
}


/* A merge reads each segment's symbol table once, not once per record: another target's new
 * symbols, written between the merged series' records, make each record name a newer symbol
 * record of the chain, which a table loaded for an older record does not hold. */
static void a_merge_loads_each_table_once(void) {
  fresh_dir();
  store *s = open_store(0, (uint64_t)1 << 30, NULL);
  if (!s) return;
  char path[512];
  snprintf(path, sizeof path, "%s/gotarget/heap.pb.gz", testdata());
  size_t len;
  uint8_t *b = slurp(path, &len);
  pprof_profile *p = NULL;
  CHECK(b && pprof_decode(b, len, NULL, &p, NULL) == 0);
  if (!p) return;
  uint32_t fn = p->function[0].name;
  char name[64];
  for (int k = 0; k < 120; k++) {
    CHECK(add(s, "prometheus/cpu-1.pb.gz", "a", "cpu", (int64_t)(k + 1) * 1000000000) == 0);
    /* b's profile with a function of a new name each time: a new symbol record */
    snprintf(name, sizeof name, "fn-%d", k);
    p->strings[fn] = name;
    p->string_len[fn] = (uint32_t)strlen(name);
    store_label l[2] = {{"monitor", "b"}, {"team", "core"}};
    store_record r = {l, 2, "heap", (int64_t)(k + 1) * 1000000000, (int64_t)(k + 1) * 1000000000, b, len, p};
    bool enospc;
    CHECK(store_append(s, &r, &enospc, NULL) == 0);
  }
  pprof_free(p);
  free(b);
  store_close(s);
  s = open_store(0, (uint64_t)1 << 30, NULL); /* nothing cached */
  if (!s) return;
  store_stats st;
  store_get_stats(s, &st);
  uint64_t before = st.table_loads;
  store_matcher m = {"monitor", "a"};
  pprof_profile *out = NULL;
  size_t cnt = 0;
  CHECK(store_merged(s, &m, 1, "cpu", 0, 0, STORE_AGG_SUM, 0, &out, &cnt, NULL) == 0);
  CHECK_EQ_I64(cnt, 120);
  pprof_free(out);
  store_get_stats(s, &st);
  CHECK_EQ_I64(st.segments, 1);
  CHECK_EQ_I64(st.table_loads - before, 1);
  store_close(s);
}

/* Another store's series parts joined to a merge (store_series_parts, store_merged_with) answer
 * what one store holding both stores' records answers, by avg, latest and sum: "all" holds every
 * record; "old" and "new" hold them split. Series a is in both (its records split by time), b in
 * old alone, c in new alone, d in both with old's record the newer (a push of older data). */
static void parts_join_as_one_store(void) {
  fresh_dir();
  char dirs[3][300];
  store *st[3] = {0};
  const char *names[3] = {"all", "old", "new"};
  CHECK(mkdir(dir, 0700) == 0);
  for (int i = 0; i < 3; i++) {
    snprintf(dirs[i], sizeof dirs[i], "%s/%s", dir, names[i]);
    store_opts o = {.dir = dirs[i]};
    pp_err err = {0};
    CHECK(store_open(&o, &st[i], NULL, &err) == 0);
  }
  if (!st[0] || !st[1] || !st[2]) goto out;
  struct {
    const char *file, *mon;
    int64_t end;
    int where; /* 1 old, 2 new */
  } recs[] = {
      {"gotarget/cpu-1.pb.gz", "a", 1000000, 1}, {"gotarget/cpu-2.pb.gz", "a", 2000000, 1},
      {"gotarget/cpu-3.pb.gz", "a", 3000000, 1}, {"gotarget/cpu-4.pb.gz", "a", 4000000, 2},
      {"gotarget/cpu-5.pb.gz", "a", 5000000, 2}, {"gotarget/cpu-6.pb.gz", "a", 6000000, 2},
      {"prometheus/cpu-1.pb.gz", "b", 1500000, 1}, {"prometheus/cpu-2.pb.gz", "b", 2500000, 1},
      {"prometheus/cpu-3.pb.gz", "c", 4500000, 2}, {"prometheus/cpu-4.pb.gz", "d", 8000000, 1},
      {"prometheus/cpu-5.pb.gz", "d", 2000000, 2},
  };
  for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
    CHECK(add(st[0], recs[i].file, recs[i].mon, "cpu", recs[i].end) == 0);
    CHECK(add(st[recs[i].where], recs[i].file, recs[i].mon, "cpu", recs[i].end) == 0);
  }
  /* "new" answers a's window from its rollup (a row that stands for 3 records) */
  CHECK(store_compact(st[2], 3 * W, NULL) >= 1);
  store_stats ss;
  store_get_stats(st[2], &ss);
  CHECK(ss.rollups >= 1);
  /* "old" opened as the object store's cache opens its segments: the index rebuilt from them */
  store_close(st[1]);
  st[1] = NULL;
  char idx[340];
  snprintf(idx, sizeof idx, "%s/index.db", dirs[1]);
  CHECK(unlink(idx) == 0);
  store_opts oo = {.dir = dirs[1], .sync_interval = -1, .no_rollups = true};
  CHECK(store_open(&oo, &st[1], NULL, NULL) == 0);
  if (!st[1]) goto out;
  const store_agg aggs[] = {STORE_AGG_AVG, STORE_AGG_LATEST, STORE_AGG_SUM};
  const size_t counts[] = {11, 4, 11};
  for (int k = 0; k < 3; k++) {
    pprof_profile *one = NULL, *joined = NULL;
    store_series_part *parts = NULL;
    size_t n1 = 0, nj = 0, np = 0;
    pp_err err = {0};
    CHECK(store_merged(st[0], NULL, 0, "cpu", 0, 0, aggs[k], 0, &one, &n1, &err) == 0);
    CHECK(store_series_parts(st[1], NULL, 0, "cpu", 0, 0, aggs[k], 0, 0, &parts, &np, NULL, &err) == 0);
    CHECK_EQ_I64(np, 3); /* a, b, d */
    CHECK(store_merged_with(st[2], NULL, 0, "cpu", 0, 0, aggs[k], 0, 0, parts, np, &joined, &nj, NULL, &err) == 0);
    CHECK_EQ_I64(n1, counts[k]);
    CHECK_EQ_I64(nj, counts[k]);
    if (!same_profile(one, joined)) fprintf(stderr, "  agg %d: the joined merge differs from one store's\n", (int)aggs[k]);
    CHECK(same_profile(one, joined));
    store_series_parts_free(parts, np);
    pprof_free(one);
    pprof_free(joined);
  }
  /* parts alone (the selection's series all in the other store) */
  store_matcher mb = {"monitor", "b"};
  pprof_profile *one = NULL, *joined = NULL;
  store_series_part *parts = NULL;
  size_t n1 = 0, nj = 0, np = 0;
  CHECK(store_merged(st[0], &mb, 1, "cpu", 0, 0, STORE_AGG_AVG, 0, &one, &n1, NULL) == 0);
  CHECK(store_series_parts(st[1], &mb, 1, "cpu", 0, 0, STORE_AGG_AVG, 0, 0, &parts, &np, NULL, NULL) == 0);
  CHECK(store_merged_with(st[2], &mb, 1, "cpu", 0, 0, STORE_AGG_AVG, 0, 0, parts, np, &joined, &nj, NULL, NULL) == 0);
  CHECK_EQ_I64(nj, 2);
  CHECK(same_profile(one, joined));
  store_series_parts_free(parts, np);
  pprof_free(one);
  pprof_free(joined);
  /* nothing in either: no profiles */
  store_matcher mz = {"monitor", "zzz"};
  CHECK(store_series_parts(st[1], &mz, 1, "cpu", 0, 0, STORE_AGG_AVG, 0, 0, &parts, &np, NULL, NULL) == PP_EUSAGE);
  CHECK(store_merged_with(st[2], &mz, 1, "cpu", 0, 0, STORE_AGG_AVG, 0, 0, NULL, 0, &joined, &nj, NULL, NULL) == PP_EUSAGE);
out:
  for (int i = 0; i < 3; i++)
    if (st[i]) store_close(st[i]);
}

/* Another store's parts where this one's records fall short: a part whose sample types differ
 * from the merge's is left out and this store's records stay (latest and sum put the parts in
 * before the sums of v2 records), and a series whose newest record here cannot be read takes
 * the other store's newest (latest). */
/* One entry of a listing, by monitor and type; NULL when absent. */
static const store_series_info *entry_of(const store_series_info *v, size_t n, const char *monitor, const char *type) {
  char want[64];
  snprintf(want, sizeof want, "\"monitor\":\"%s\"", monitor);
  for (size_t i = 0; i < n; i++)
    if (strstr(v[i].labels_json, want) && strcmp(v[i].type, type) == 0) return &v[i];
  return NULL;
}

/* The object store's series index (bindex.h): each segment's entries, summed over segments as
 * the store lists them, selected as its selector selects, the window's cuts and the segments
 * it lacks counted, a dropped segment gone. */
static void bucket_series_index(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL);
  if (!s) return;
  const int64_t S = 1000000000;
  /* segment 1: a cpu x3 (ends 1..3 s), b heap x2 (1.5, 2 s), c (no team label) cpu x1; segment 2: a cpu x2 */
  for (int i = 1; i <= 3; i++) CHECK(add(s, "gotarget/cpu-1.pb.gz", "a", "cpu", i * S) == 0);
  CHECK(add(s, "gotarget/heap.pb.gz", "b", "heap", 3 * S / 2) == 0);
  CHECK(add(s, "gotarget/heap.pb.gz", "b", "heap", 2 * S) == 0);
  store_label lc[1] = {{"monitor", "c"}};
  pp_err err = {0};
  CHECK(add_labels(s, "gotarget/cpu-2.pb.gz", lc, 1, "cpu", 2 * S, NULL, &err) == 0);
  store_seal(s);
  CHECK(add(s, "gotarget/cpu-2.pb.gz", "a", "cpu", 4 * S) == 0);
  CHECK(add(s, "gotarget/cpu-3.pb.gz", "a", "cpu", 5 * S) == 0);
  store_seal(s);
  store_segment segs[8];
  size_t nseg = 0;
  CHECK(store_list_segments(s, segs, 8, &nseg, &err) == 0);
  upload_segment us[8];
  size_t nus = 0;
  for (size_t i = 0; i < nseg; i++)
    if (segs[i].tier == 0) us[nus++] = (upload_segment){segs[i].id, 0, segs[i].min_ns, segs[i].max_ns};
  CHECK(nus == 2);
  if (nus != 2) return store_close(s);
  bindex *x = NULL;
  CHECK(bindex_open(dir, &x, &err) == 0);
  if (!x) return store_close(s);
  CHECK(!bindex_has(x, us[0].id, us[0].min_ns));
  for (size_t i = 0; i < nus; i++) CHECK(bindex_add(x, s, us[i].id, us[i].min_ns, &err) == 0);
  CHECK(bindex_has(x, us[0].id, us[0].min_ns) && bindex_has(x, us[1].id, us[1].min_ns));
  CHECK(bindex_add(x, s, us[0].id, us[0].min_ns, &err) == 0); /* (again: nothing added twice) */

  /* the whole listing: as the store lists its own series */
  store_series_info *v = NULL, *l = NULL;
  size_t n = 0, nl = 0, unknown = 9;
  CHECK(bindex_series(dir, us, nus, NULL, 0, NULL, 0, 0, 100, &v, &n, &unknown, &err) == 0);
  CHECK(store_list_series(s, NULL, 0, NULL, 0, 0, NULL, 0, &l, &nl, NULL, &err) == 0);
  CHECK(n == 3 && nl == 3 && unknown == 0);
  const store_series_info *a = entry_of(v, n, "a", "cpu"), *b = entry_of(v, n, "b", "heap"), *c = entry_of(v, n, "c", "cpu");
  CHECK(a && a->count == 5 && a->first_ns == S - 1000 && a->last_ns == 5 * S);
  CHECK(b && b->count == 2 && b->first_ns == 3 * S / 2 - 1000 && b->last_ns == 2 * S);
  CHECK(c && c->count == 1 && strcmp(c->labels_json, "{\"monitor\":\"c\"}") == 0);
  for (size_t i = 0; i < nl; i++) {
    const store_series_info *e = entry_of(v, n, strstr(l[i].labels_json, "\"a\"") ? "a" : strstr(l[i].labels_json, "\"b\"") ? "b" : "c",
                                          l[i].type);
    CHECK(e && strcmp(e->labels_json, l[i].labels_json) == 0 && e->count == l[i].count && e->first_ns == l[i].first_ns &&
          e->last_ns == l[i].last_ns && strcmp(e->sample_types, l[i].sample_types) == 0);
  }
  store_series_free(v, n);
  store_series_free(l, nl);

  /* selectors: a label's value, and an empty value for a series without that label */
  store_matcher mb[1] = {{"monitor", "b"}}, mt[1] = {{"team", ""}}, mid[1] = {{STORE_MATCH_IDS, "[1]"}};
  CHECK(bindex_series(dir, us, nus, mb, 1, NULL, 0, 0, 100, &v, &n, &unknown, &err) == 0);
  CHECK(n == 1 && entry_of(v, n, "b", "heap"));
  store_series_free(v, n);
  CHECK(bindex_series(dir, us, nus, mt, 1, NULL, 0, 0, 100, &v, &n, &unknown, &err) == 0);
  CHECK(n == 1 && entry_of(v, n, "c", "cpu"));
  store_series_free(v, n);
  CHECK(bindex_series(dir, us, nus, NULL, 0, "heap", 0, 0, 100, &v, &n, &unknown, &err) == 0);
  CHECK(n == 1 && entry_of(v, n, "b", "heap"));
  store_series_free(v, n);
  CHECK(bindex_series(dir, us, nus, mid, 1, NULL, 0, 0, 100, &v, &n, &unknown, &err) == PP_EINVAL);
  CHECK(bindex_series(dir, us, nus, NULL, 0, NULL, 0, 0, 2, &v, &n, &unknown, &err) == PP_ELIMIT);

  /* a window from 2.5 s cuts a's entry of segment 1 (its count there is not known: left out,
   * counted) and leaves b and c out whole; segment 2's a entry is in it whole */
  CHECK(bindex_series(dir, us, nus, NULL, 0, NULL, 5 * S / 2, 0, 100, &v, &n, &unknown, &err) == 0);
  a = entry_of(v, n, "a", "cpu");
  CHECK(n == 1 && unknown == 1 && a && a->count == 2 && a->first_ns == 4 * S - 1000);
  store_series_free(v, n);
  /* a window holding segment 1's entries whole, segment 2 not at all */
  CHECK(bindex_series(dir, us, nus, NULL, 0, NULL, 0, 3 * S, 100, &v, &n, &unknown, &err) == 0);
  a = entry_of(v, n, "a", "cpu");
  CHECK(n == 3 && unknown == 0 && a && a->count == 3 && a->last_ns == 3 * S);
  store_series_free(v, n);

  /* the bucket's retention deleted segment 1: it is not in the index any more (counted), its
   * series with it (c's labels too) */
  CHECK(bindex_drop(x, us[0].id, us[0].min_ns, &err) == 0);
  CHECK(!bindex_has(x, us[0].id, us[0].min_ns));
  CHECK(bindex_series(dir, us, nus, NULL, 0, NULL, 0, 0, 100, &v, &n, &unknown, &err) == 0);
  a = entry_of(v, n, "a", "cpu");
  CHECK(n == 1 && unknown == 1 && a && a->count == 2);
  store_series_free(v, n);
  CHECK(bindex_series(dir, us, nus, mt, 1, NULL, 0, 0, 100, &v, &n, &unknown, &err) == 0 && n == 0);
  store_series_free(v, n);
  bindex_close(x);

  /* a data directory with no index: every raw segment unknown; rollup segments are not counted */
  char other[300];
  snprintf(other, sizeof other, "%s-noindex", dir);
  upload_segment mixed[2] = {us[0], {77, 1, 1, 2}};
  CHECK(bindex_series(other, mixed, 2, NULL, 0, NULL, 0, 0, 100, &v, &n, &unknown, &err) == 0);
  CHECK(n == 0 && unknown == 1);
  store_close(s);
}

static void parts_left_out_or_standing(void) {
  fresh_dir();
  store *s = open_store(0, 0, NULL), *o = NULL;
  if (!s) return;
  char odir[300];
  snprintf(odir, sizeof odir, "%s-other", dir);
  store_opts oo = {.dir = odir};
  CHECK(store_open(&oo, &o, NULL, NULL) == 0);
  if (!o) goto out;
  for (int i = 1; i <= 3; i++) {
    char f[64];
    snprintf(f, sizeof f, "gotarget/cpu-%d.pb.gz", i);
    CHECK(add(s, f, "a", "cpu", 1000 * i) == 0);
  }
  /* a heap profile as another store's part of series b */
  char path[512];
  snprintf(path, sizeof path, "%s/gotarget/heap.pb.gz", testdata());
  size_t len = 0;
  uint8_t *b = slurp(path, &len);
  pprof_profile *heap = NULL;
  CHECK(b && pprof_decode(b, len, NULL, &heap, NULL) == 0);
  free(b);
  if (!heap) goto out;
  store_series_part odd = {.labels = "{\"monitor\":\"b\",\"team\":\"core\"}", .p = heap, .weight = 1, .end_ns = 5000};
  const store_agg aggs[] = {STORE_AGG_AVG, STORE_AGG_LATEST, STORE_AGG_SUM};
  for (int k = 0; k < 3; k++) {
    pprof_profile *one = NULL, *joined = NULL;
    size_t n1 = 0, nj = 0;
    CHECK(store_merged(s, NULL, 0, "cpu", 0, 0, aggs[k], 0, &one, &n1, NULL) == 0);
    CHECK(store_merged_with(s, NULL, 0, "cpu", 0, 0, aggs[k], 0, 0, &odd, 1, &joined, &nj, NULL, NULL) == 0);
    CHECK_EQ_I64(nj, n1);
    if (!same_profile(one, joined)) fprintf(stderr, "  agg %d: a part of other sample types changed the merge\n", (int)aggs[k]);
    CHECK(same_profile(one, joined));
    pprof_free(one);
    pprof_free(joined);
  }
  pprof_free(heap);
  /* series a's newest here (t=3000) damaged; the other store's newest (t=1500) stands for it */
  CHECK(add(o, "gotarget/cpu-4.pb.gz", "a", "cpu", 1500) == 0);
  store_matcher m = {"monitor", "a"};
  store_row *rows = NULL;
  size_t n = 0;
  CHECK(store_list_rows(s, &m, 1, "cpu", 0, 0, 0, &rows, &n, NULL) == 0);
  CHECK_EQ_I64(n, 3);
  int64_t newest = n == 3 ? rows[2].id : -1;
  store_rows_free(rows, n);
  int64_t seg = index_i64("SELECT segment_id FROM profile WHERE id=?", newest);
  int64_t off = index_i64("SELECT data_off + data_len / 2 FROM profile WHERE id=?", newest);
  CHECK(seg > 0 && off > 0 && flip_byte(segment_path(seg), off));
  store_series_part *parts = NULL;
  size_t np = 0, nj = 0, n1 = 0;
  pprof_profile *theirs = NULL, *joined = NULL;
  CHECK(store_series_parts(o, &m, 1, "cpu", 0, 0, STORE_AGG_LATEST, 0, 0, &parts, &np, NULL, NULL) == 0);
  CHECK_EQ_I64(np, 1);
  CHECK(store_merged(o, &m, 1, "cpu", 0, 0, STORE_AGG_LATEST, 0, &theirs, &n1, NULL) == 0);
  pp_err err = {0};
  int r = store_merged_with(s, &m, 1, "cpu", 0, 0, STORE_AGG_LATEST, 0, 0, parts, np, &joined, &nj, NULL, &err);
  if (r) fprintf(stderr, "  latest over a damaged newest: %s\n", err.msg);
  CHECK(r == 0);
  CHECK_EQ_I64(nj, 1);
  CHECK(same_profile(theirs, joined));
  store_series_parts_free(parts, np);
  pprof_free(theirs);
  pprof_free(joined);
out:
  if (o) store_close(o);
  store_close(s);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", odir);
  CHECK(system(cmd) == 0);
}

int main(void) {
  RUN(append_query_merge);
  RUN(repair_after_crash);
  RUN(rebuild_lost_or_corrupt_index);
  RUN(retention_by_size_and_time);
  RUN(rollups_change_speed_not_answers);
  RUN(compactor_thread);
  RUN(corrupt_record_found_at_open);
  RUN(read_checks_crc);
  RUN(new_segment_never_truncates);
  RUN(segment_closes_at_its_age);
  RUN(enospc_told_by_errno);
  RUN(full_disk_errnos);
  RUN(full_index);
  RUN(retention_under_a_locked_index);
  RUN(labels_not_utf8);
  RUN(series_go_with_their_profiles);
  RUN(series_pages_and_selectors);
  RUN(series_cache_stays_bounded);
  RUN(index_from_version_1);
  RUN(syncer_makes_appends_durable);
  RUN(sync_failure_told);
  RUN(limits_refused);
  RUN(rollup_of_a_deleted_series_dropped);
  RUN(rollups_equal_their_profiles);
  RUN(tiers_answer_from_rollups);
  RUN(tier_budgets);
  RUN(index_from_version_2);
  RUN(query_cost_follows_selection);
  RUN(v2_reads_back_every_profile);
  RUN(old_format_store_served);
  RUN(each_profile_as_scraped);
  RUN(symbol_record_damage);
  RUN(failed_append_forgets_its_symbols);
  RUN(writer_tables_stay_bounded);
  RUN(loc_cache_keeps_locations_apart);
  RUN(merges_on_ids_equal_codec_merge);
  RUN(one_segment_merge_is_the_mergers);
  RUN(a_merge_loads_each_table_once);
  RUN(parts_join_as_one_store);
  RUN(parts_left_out_or_standing);
  RUN(bucket_series_index);
  /* the last test's data directory (each test empties it first): nothing left behind */
  fresh_dir(); /* the last test's store goes too: nothing left in /tmp */
  return tt_finish();
}
