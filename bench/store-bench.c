/* store-bench: the store's ingest rate against the alternative of keeping profile bytes in
 * SQLite itself, the disk each leaves after retention deletes the oldest half, and the latency
 * of merging one hour of 10 s CPU profiles (360) of one series. One JSON object per line.
 *   store-bench DIR PROFILE N        ingest N copies of PROFILE both ways
 *   store-bench merge DIR RUNS CPU... 360 records from the CPU files
 * and the modes main() lists: ingest, fill, roundtrip, sched, encode. STORE_FORMAT=1 in the environment
 * writes the old record format (PPR1, gzip pprof per record), for comparison. */
#include <dirent.h>
#include <libdeflate.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../src/base/file.h"
#include "../src/collector/store.h"
#include "../src/collector/store_sym.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The calling thread's CPU time: on a machine shared with other work, appends per second of
 * the writer's own CPU (user and system: encoding, pwrite, SQLite) tell the formats apart where
 * wall time mostly measures the wait for a core. */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One input profile: its bytes as scraped and their decoding (the collector has both when it
 * stores a profile). */
typedef struct input {
  uint8_t *data;
  size_t len;
  pprof_profile *p;
} input;

/* Reads and decodes path (profiles here are small; 256 MiB is the store's own record cap): 0, or
 * -1 after saying why on stderr. */
static int load_input(const char *path, input *in) {
  pp_err err = {0};
  in->p = NULL;
  in->data = NULL;
  if (pp_read_file(path, (size_t)256 << 20, &in->data, &in->len, &err) < 0 ||
      pprof_decode(in->data, in->len, NULL, &in->p, &err) < 0) {
    fprintf(stderr, "%s: cannot read: %s\n", path, err.msg);
    free(in->data);
    in->data = NULL;
    return -1;
  }
  return 0;
}

static void free_input(input *in) {
  pprof_free(in->p);
  free(in->data);
}

/* Loads n files into a malloc'd array (NULL after saying why). */
static input *load_inputs(char **files, int n) {
  input *v = calloc((size_t)(n ? n : 1), sizeof *v);
  for (int i = 0; v && i < n; i++)
    if (load_input(files[i], &v[i]) < 0) {
      while (i-- > 0) free_input(&v[i]);
      free(v);
      return NULL;
    }
  return v;
}

static void free_inputs(input *v, int n) {
  for (int i = 0; v && i < n; i++) free_input(&v[i]);
  free(v);
}

/* The record format STORE_FORMAT asks for (0 = current). */
static int env_format(void) {
  const char *f = getenv("STORE_FORMAT");
  return f ? atoi(f) : 0;
}

/* Opens a store: 0, or -1 after saying why on stderr. */
static int open_or_say(const store_opts *o, store **s) {
  pp_err err = {0};
  if (store_open(o, s, NULL, &err) < 0) {
    fprintf(stderr, "%s: %s\n", o->dir, err.msg);
    return -1;
  }
  return 0;
}

static uint64_t du(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "du -sb %s", dir);
  FILE *p = popen(cmd, "r");
  unsigned long long v = 0;
  if (p) {
    if (fscanf(p, "%llu", &v) != 1) v = 0;
    pclose(p);
  }
  return v;
}

/* Appends n copies of the profile as 200 series (monitor=target-<i % 200>), one second apart:
 * the ingest both modes time. 0, or -1 with err set. */
static int append_copies(store *s, const uint8_t *data, size_t len, const pprof_profile *p, int n, pp_err *err) {
  for (int i = 0; i < n; i++) {
    char mon[32];
    snprintf(mon, sizeof mon, "target-%d", i % 200);
    store_label l[2] = {{"monitor", mon}, {"endpoint", "http://10.0.0.1:6060"}};
    store_record r = {l, 2, "heap", (int64_t)i * 1000000000, (int64_t)i * 1000000000, data, len, p};
    bool enospc;
    if (store_append(s, &r, &enospc, err) < 0) return -1;
  }
  return 0;
}

static int ingest(const char *dir, const char *file, int n) {
  input in;
  if (load_input(file, &in) < 0) return 1;
  const uint8_t *data = in.data;
  size_t len = in.len;
  const pprof_profile *p = in.p;
  char d1[512], d2[512], cmd[1700];
  snprintf(d1, sizeof d1, "%s/segments-store", dir);
  snprintf(d2, sizeof d2, "%s/sqlite-blobs", dir);
  snprintf(cmd, sizeof cmd, "rm -rf %s %s && mkdir -p %s", d1, d2, d2);
  if (system(cmd) != 0) return 1;

  /* ours: segments + index (small segments so retention has something to delete);
   * STORE_FORMAT=1 writes the old format (PPR1), for comparison */
  store_opts o = {.dir = d1, .segment_bytes = (uint64_t)len * (uint64_t)n / 20 + 1, .format = env_format()};
  store *s;
  if (open_or_say(&o, &s) < 0) return 1;
  double t0 = now_s();
  if (append_copies(s, data, len, p, n, NULL) < 0) return 1;
  double seg_s = now_s() - t0;
  uint64_t seg_full = du(d1);
  /* retention: drop the older half by time */
  store_close(s);
  o.retention_seconds = (double)n / 2;
  if (open_or_say(&o, &s) < 0) return 1;
  t0 = now_s();
  store_retention(s, (int64_t)n * 1000000000, NULL);
  double seg_ret_s = now_s() - t0;
  store_close(s);
  uint64_t seg_after = du(d1);

  /* the alternative: the same rows with the bytes as a blob in SQLite (WAL, synchronous=NORMAL) */
  char dbp[600];
  snprintf(dbp, sizeof dbp, "%s/index.db", d2);
  sqlite3 *db;
  sqlite3_open(dbp, &db);
  sqlite3_exec(db,
               "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "CREATE TABLE series(id INTEGER PRIMARY KEY, labels TEXT UNIQUE);"
               "CREATE TABLE profile(id INTEGER PRIMARY KEY, series_id INT, type TEXT, start_ns "
               "INT, end_ns INT,"
               " data BLOB, sample_types TEXT, totals TEXT);"
               "CREATE INDEX p1 ON profile(series_id, type, end_ns);",
               NULL, NULL, NULL);
  sqlite3_stmt *st;
  sqlite3_prepare_v2(db,
                     "INSERT INTO profile(series_id,type,start_ns,end_ns,data,sample_types,totals) "
                     "VALUES(?,?,?,?,?,?,?)",
                     -1, &st, NULL);
  t0 = now_s();
  for (int i = 0; i < n; i++) {
    sqlite3_reset(st);
    sqlite3_bind_int(st, 1, i % 200);
    sqlite3_bind_text(st, 2, "heap", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)i * 1000000000);
    sqlite3_bind_int64(st, 4, (int64_t)i * 1000000000);
    sqlite3_bind_blob(st, 5, data, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 6,
                      "alloc_objects/count,alloc_space/bytes,inuse_objects/count,inuse_space/bytes",
                      -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, "1,2,3,4", -1, SQLITE_STATIC);
    sqlite3_step(st);
  }
  double blob_s = now_s() - t0;
  sqlite3_finalize(st);
  uint64_t blob_full = du(d2);
  t0 = now_s();
  char del[200];
  snprintf(del, sizeof del, "DELETE FROM profile WHERE end_ns < %lld",
           (long long)n / 2 * 1000000000LL);
  sqlite3_exec(db, del, NULL, NULL, NULL);
  sqlite3_exec(db, "PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, NULL);
  double blob_ret_s = now_s() - t0;
  sqlite3_close(db);
  uint64_t blob_after = du(d2);
  printf("{\"profiles\": %d, \"profile_bytes\": %zu, \"segments_per_s\": %.0f, "
         "\"sqlite_blob_per_s\": %.0f, "
         "\"segments_disk_full\": %llu, \"sqlite_blob_disk_full\": %llu, "
         "\"segments_retention_ms\": %.1f, "
         "\"sqlite_blob_retention_ms\": %.1f, \"segments_disk_after_half_deleted\": %llu, "
         "\"sqlite_blob_disk_after_half_deleted\": %llu}\n",
         n, len, n / seg_s, n / blob_s, (unsigned long long)seg_full, (unsigned long long)blob_full,
         seg_ret_s * 1e3, blob_ret_s * 1e3, (unsigned long long)seg_after,
         (unsigned long long)blob_after);
  free_input(&in);
  return 0;
}

/* ingest DIR PROFILE N SYNC: N copies of PROFILE (append_copies) with the durability
 * syncer every SYNC seconds (< 0: never): the ingest rate and the rounds the syncer made. */
static int ingest_sync(const char *dir, const char *file, int n, double sync) {
  input in;
  if (load_input(file, &in) < 0) return 1;
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 1;
  store_opts o = {.dir = dir, .sync_interval = sync, .format = env_format()};
  store *s;
  pp_err err = {0};
  if (open_or_say(&o, &s) < 0) return 1;
  double t0 = now_s();
  if (append_copies(s, in.data, in.len, in.p, n, &err) < 0) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  double el = now_s() - t0;
  store_stats st;
  store_get_stats(s, &st);
  double t1 = now_s();
  store_close(s);
  double close_s = now_s() - t1;
  printf("{\"profiles\": %d, \"sync_interval\": %g, \"per_s\": %.0f, \"syncs\": %llu, \"sync_failures\": %llu, "
         "\"last_sync_ms\": %.2f, \"close_ms\": %.1f}\n",
         n, sync, n / el, (unsigned long long)st.syncs, (unsigned long long)st.sync_failures,
         st.last_sync_seconds * 1e3, close_s * 1e3);
  free_input(&in);
  return 0;
}

static int merge360(const char *dir, int runs, char **files, int nfiles) {
  char d1[512], cmd[600];
  snprintf(d1, sizeof d1, "%s/merge-store", dir);
  snprintf(cmd, sizeof cmd, "rm -rf %s", d1);
  if (system(cmd) != 0) return 1;
  store_opts o = {.dir = d1, .format = env_format()};
  store *s;
  input *in = load_inputs(files, nfiles);
  if (!in || open_or_say(&o, &s) < 0) return 1;
  for (int i = 0; i < 360; i++) {
    const input *x = &in[i % nfiles];
    store_label l[1] = {{"monitor", "one-target"}};
    store_record r = {
        l, 1, "cpu", (int64_t)i * 10000000000LL, (int64_t)(i + 1) * 10000000000LL, x->data, x->len, x->p};
    bool enospc;
    if (store_append(s, &r, &enospc, NULL) < 0) return 1;
  }
  free_inputs(in, nfiles);
  double best = 1e9, sum = 0;
  double *v = calloc((size_t)runs, sizeof *v);
  for (int i = 0; i < runs; i++) {
    store_matcher m = {"monitor", "one-target"};
    pprof_profile *out = NULL;
    size_t cnt = 0;
    double t0 = now_s();
    pp_err err = {0};
    if (store_merged(s, &m, 1, "cpu", 0, 0, STORE_AGG_SUM, 0, &out, &cnt, &err) < 0 || cnt != 360) {
      fprintf(stderr, "merge: %zu records: %s\n", cnt, err.msg);
      return 1;
    }
    v[i] = now_s() - t0;
    if (v[i] < best) best = v[i];
    sum += v[i];
    pprof_free(out);
  }
  for (int i = 1; i < runs; i++)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      double x = v[j];
      v[j] = v[j - 1];
      v[j - 1] = x;
    }
  printf("{\"records\": 360, \"merge_median_ms\": %.1f, \"merge_best_ms\": %.1f}\n",
         v[runs / 2] * 1e3, best * 1e3);
  free(v);
  store_close(s);
  return 0;
}

/* fill DIR PODS N TYPE FILE...: N records per pod (10 s apart, ending now) of a service
 * (__k8s_namespace=bench, __k8s_name=svc, monitor=pod-<i>), cycling through FILEs; then the
 * closed windows are rolled up as the collector would have done meanwhile, and again for the
 * hours alone (their share of the time). */
static int fill(const char *dir, int pods, int n, const char *type, char **files, int nfiles) {
  /* STORE_FORMAT=1 writes the old format (PPR1), for comparison */
  store_opts o = {.dir = dir, .format = env_format()};
  /* STORE_BENCH_SEGMENT_BYTES: small segments, so tiered retention has whole old ones to delete */
  const char *sb = getenv("STORE_BENCH_SEGMENT_BYTES");
  if (sb) o.segment_bytes = strtoull(sb, NULL, 10);
  store *s;
  input *in = load_inputs(files, nfiles);
  if (!in || open_or_say(&o, &s) < 0) return 1;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000000000;
  for (int pod = 0; pod < pods; pod++)
    for (int i = 0; i < n; i++) {
      char mon[32];
      snprintf(mon, sizeof mon, "pod-%d", pod);
      store_label l[3] = {{"monitor", mon}, {"__k8s_namespace", "bench"}, {"__k8s_name", "svc"}};
      int f = (pod + i) % nfiles;
      int64_t end = now - (int64_t)(n - i) * 10000000000LL;
      store_record r = {l, 3, type, end - 10000000000LL, end, in[f].data, in[f].len, in[f].p};
      bool enospc;
      if (store_append(s, &r, &enospc, NULL) < 0) return 1;
    }
  /* what the collector's compactor does in the background as windows close */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rolled = store_compact(s, now, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double all_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  store_close(s);
  /* the hours' share: their rows dropped, the same walk again finds every 10-minute window
   * rolled up already and builds the hours alone (from those rollups) */
  char db[4200];
  snprintf(db, sizeof db, "%s/index.db", dir);
  sqlite3 *h = NULL;
  if (sqlite3_open(db, &h) != SQLITE_OK ||
      sqlite3_exec(h, "DELETE FROM rollup WHERE end_ns-start_ns=3600000000000", NULL, NULL, NULL) != SQLITE_OK)
    return 1;
  int hours = sqlite3_changes(h);
  sqlite3_close(h);
  if (open_or_say(&o, &s) < 0) return 1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int again = store_compact(s, now, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("{\"records\": %d, \"rollups\": %d, \"compact_ms\": %.1f, \"hour_rollups\": %d, \"hours_ms\": %.1f}\n",
         pods * n, rolled, all_ms, hours, (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  if (again != hours) return 1;
  store_close(s);
  free_inputs(in, nfiles);
  return 0;
}

/* roundtrip DIR OUT FILE...: appends every FILE to a fresh store in DIR (one series each,
 * in order, sharing segments as scrapes do) and writes each one read back with store_read to
 * OUT/<n>.pb.gz (n = its position), for the conformance suite's comparison with go tool pprof. */
static int roundtrip(const char *dir, const char *out, char **files, int nfiles) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, out);
  if (system(cmd) != 0) return 1;
  store_opts o = {.dir = dir};
  store *s;
  pp_err err = {0};
  if (open_or_say(&o, &s) < 0) return 1;
  int rc = 0;
  for (int f = 0; f < nfiles && !rc; f++) {
    input in;
    if (load_input(files[f], &in) < 0) {
      rc = 1;
      break;
    }
    char mon[32];
    snprintf(mon, sizeof mon, "file-%d", f);
    store_label l[1] = {{"monitor", mon}};
    store_record r = {l, 1, "t", (int64_t)(f + 1) * 1000000000, (int64_t)(f + 1) * 1000000000, in.data, in.len, in.p};
    bool enospc;
    if (store_append(s, &r, &enospc, &err) < 0) {
      fprintf(stderr, "%s: %s\n", files[f], err.msg);
      rc = 1;
    }
    free_input(&in);
  }
  for (int f = 0; f < nfiles && !rc; f++) {
    char mon[32];
    snprintf(mon, sizeof mon, "file-%d", f);
    store_matcher m = {"monitor", mon};
    store_row *rows;
    size_t n = 0;
    uint8_t *b = NULL;
    size_t len = 0;
    if (store_list_rows(s, &m, 1, "t", 0, 0, 0, &rows, &n, &err) < 0 || n != 1 ||
        store_read(s, rows[0].id, &b, &len, &err) < 0) {
      fprintf(stderr, "%s: read back: %s\n", files[f], n != 1 ? "not listed" : err.msg);
      rc = 1;
    } else {
      char path[1100];
      snprintf(path, sizeof path, "%s/%d.pb.gz", out, f);
      FILE *fp = fopen(path, "wb");
      if (!fp || fwrite(b, 1, len, fp) != len) rc = 1;
      if (fp && fclose(fp) != 0) rc = 1;
    }
    if (n) store_rows_free(rows, n);
    free(b);
  }
  store_close(s);
  return rc;
}

/* sched DIR FORMAT PODS ROUNDS TYPES PROGDIR...: the realistic mix of issue 13, in store format
 * FORMAT (0 = current, 1 = PPR1). PODS pods of each
 * program (a PROGDIR holds its cpu-1..6, heap and goroutine .pb.gz, captured from one real Go
 * program) scraped the way the collector's defaults do: a 10 s CPU profile back to back and a
 * heap and a goroutine snapshot every minute (every 6th round), for ROUNDS rounds of 10 s.
 * TYPES ("cpu,heap,goroutine" or a subset) picks what is stored, so bytes per profile can be
 * read per type. Prints profiles, bytes on disk (du of the store after close) per profile,
 * and the ingest rate (appends only; profiles are decoded beforehand, as the collector has
 * them decoded already): per_s by wall time, per_cpu_s by the appending thread's CPU time. */
#define MIX_FILES 8
static const char *const mix_names[MIX_FILES] = {"cpu-1", "cpu-2", "cpu-3", "cpu-4", "cpu-5", "cpu-6", "heap", "goroutine"};

/* The mix's inputs of up to 16 programs: in[g][f] is PROGDIR g's mix_names[f]. 0, or -1 after
 * saying why. */
static int load_mix(char **progs, int nprogs, input in[16][MIX_FILES]) {
  if (nprogs > 16) return -1;
  for (int g = 0; g < nprogs; g++)
    for (int f = 0; f < MIX_FILES; f++) {
      char path[700];
      snprintf(path, sizeof path, "%s/%s.pb.gz", progs[g], mix_names[f]);
      if (load_input(path, &in[g][f]) < 0) return -1;
    }
  return 0;
}

static int sched(const char *dir, int format, int pods, int rounds, const char *types, char **progs, int nprogs) {
  input in[16][MIX_FILES];
  if (load_mix(progs, nprogs, in) < 0) return 1;
  bool want_cpu = strstr(types, "cpu") != NULL, want_heap = strstr(types, "heap") != NULL,
       want_gr = strstr(types, "goroutine") != NULL;
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 1;
  store_opts o = {.dir = dir, .format = format};
  store *s;
  pp_err err = {0};
  if (open_or_say(&o, &s) < 0) return 1;
  int64_t base = (int64_t)1700000000 * 1000000000;
  long n = 0;
  double el = 0, cpu = 0;
  for (int r = 0; r < rounds; r++)
    for (int g = 0; g < nprogs; g++)
      for (int pod = 0; pod < pods; pod++) {
        char mon[64];
        snprintf(mon, sizeof mon, "prog-%d-pod-%d", g, pod);
        store_label l[3] = {{"monitor", mon}, {"__k8s_namespace", "bench"}, {"job", progs[g]}};
        int64_t end = base + (int64_t)(r + 1) * 10000000000LL;
        int pick[3], np = 0;
        if (want_cpu) pick[np++] = (r + pod) % 6;
        if (r % 6 == pod % 6) {
          if (want_heap) pick[np++] = 6;
          if (want_gr) pick[np++] = 7;
        }
        for (int k = 0; k < np; k++) {
          int f = pick[k];
          store_record rec = {l, 3, f < 6 ? "cpu" : mix_names[f], f < 6 ? end - 10000000000LL : end, end,
                              in[g][f].data, in[g][f].len, in[g][f].p};
          bool enospc;
          double t0 = now_s(), c0 = cpu_s();
          if (store_append(s, &rec, &enospc, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
          }
          el += now_s() - t0;
          cpu += cpu_s() - c0;
          n++;
        }
      }
  store_close(s);
  uint64_t bytes = du(dir);
  /* then every window rolled up, as the collector's compactor does as they close: what the
   * rollups (10 minutes and 1 hour, in their own segments) add, per rollup */
  if (open_or_say(&o, &s) < 0) return 1;
  double c0 = now_s();
  int rollups = store_compact(s, base + (int64_t)(rounds + 1) * 10000000000LL + 7200 * 1000000000LL, &err);
  double compact_s = now_s() - c0;
  store_close(s);
  uint64_t rolled = du(dir);
  printf("{\"format\": %d, \"types\": \"%s\", \"programs\": %d, \"pods\": %d, \"profiles\": %ld, \"disk_bytes\": %llu, "
         "\"bytes_per_profile\": %.0f, \"per_s\": %.0f, \"rollups\": %d, \"bytes_per_rollup\": %.0f, "
         "\"compact_ms\": %.0f, \"per_cpu_s\": %.0f}\n",
         format, types, nprogs, pods * nprogs, n, (unsigned long long)bytes, n ? (double)bytes / (double)n : 0,
         el > 0 ? (double)n / el : 0, rollups, rollups > 0 ? (double)(rolled - bytes) / rollups : 0, compact_s * 1e3,
         cpu > 0 ? (double)n / cpu : 0);
  for (int g = 0; g < nprogs; g++)
    for (int f = 0; f < MIX_FILES; f++) free_input(&in[g][f]);
  return 0;
}

/* encode ROUNDS PROGDIR...: what sched's appends spend encoding (sym__encode alone: no file,
 * no index), the same profiles in the same order into one writer that starts over as the
 * store's would (tables past SYM_WRITER_MAX); then the same samples' raw bytes deflated again
 * on their own, so deflate's share of the encoder reads without a profiler (libdeflate in
 * Debian has no symbols, so perf's call graphs lose its frames). Thread CPU time. */
static int encode_only(int rounds, char **progs, int nprogs) {
  input in[16][MIX_FILES];
  if (load_mix(progs, nprogs, in) < 0) return 1;
  sym_writer *w;
  pp_err err = {0};
  struct libdeflate_compressor *cz = libdeflate_alloc_compressor(SYM_DEFLATE_LEVEL);
  struct libdeflate_decompressor *dz = libdeflate_alloc_decompressor();
  size_t rawcap = (size_t)1 << 20;
  uint8_t *raw = malloc(rawcap), *out = malloc(rawcap);
  if (!cz || !dz || !raw || !out || sym__writer_new(&w, &err) < 0) return 1;
  long n = 0;
  double enc_s = 0, defl_s = 0;
  uint64_t raw_bytes = 0, rec_bytes = 0, off = 0;
  for (int r = 0; r < rounds; r++)
    for (int g = 0; g < nprogs; g++)
      for (int pod = 0; pod < 10; pod++) {
        int pick[3], np = 0;
        pick[np++] = (r + pod) % 6;
        if (r % 6 == pod % 6) pick[np++] = 6, pick[np++] = 7;
        for (int k = 0; k < np; k++) {
          sym_enc enc;
          double c0 = cpu_s();
          if (sym__encode(w, in[g][pick[k]].p, &enc, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
          }
          enc_s += cpu_s() - c0;
          sym__commit(w, &enc, off);
          off += enc.sym_len + enc.len + 64;
          rec_bytes += enc.sym_len + enc.len;
          n++;
          /* the samples' raw bytes (varint length, then raw deflate), deflated again */
          uint64_t len = 0;
          size_t i = 0, got = 0;
          for (int sh = 0; i < enc.len && sh < 64; sh += 7) {
            len |= (uint64_t)(enc.data[i] & 0x7f) << sh;
            if (!(enc.data[i++] & 0x80)) break;
          }
          if (len > rawcap || libdeflate_deflate_decompress(dz, enc.data + i, enc.len - i, raw, len, &got) != 0) return 1;
          raw_bytes += got;
          c0 = cpu_s();
          if (libdeflate_deflate_compress(cz, raw, got, out, rawcap) == 0) return 1;
          defl_s += cpu_s() - c0;
          if (sym__writer_bytes(w) > SYM_WRITER_MAX) sym__writer_reset(w), off = 0;
        }
      }
  printf("{\"profiles\": %ld, \"encode_us\": %.2f, \"samples_deflate_us\": %.2f, \"samples_raw_bytes\": %.0f, "
         "\"record_bytes\": %.0f}\n",
         n, enc_s / (double)n * 1e6, defl_s / (double)n * 1e6, (double)raw_bytes / (double)n, (double)rec_bytes / (double)n);
  sym__writer_free(w);
  libdeflate_free_compressor(cz);
  libdeflate_free_decompressor(dz);
  free(raw);
  free(out);
  for (int g = 0; g < nprogs; g++)
    for (int f = 0; f < MIX_FILES; f++) free_input(&in[g][f]);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 5 && !strcmp(argv[1], "roundtrip")) return roundtrip(argv[2], argv[3], argv + 4, argc - 4);
  if (argc >= 4 && !strcmp(argv[1], "encode")) return encode_only(atoi(argv[2]), argv + 3, argc - 3);
  if (argc >= 8 && !strcmp(argv[1], "sched"))
    return sched(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), argv[6], argv + 7, argc - 7);
  if (argc >= 7 && !strcmp(argv[1], "fill"))
    return fill(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5], argv + 6, argc - 6);
  if (argc == 6 && !strcmp(argv[1], "ingest")) return ingest_sync(argv[2], argv[3], atoi(argv[4]), atof(argv[5]));
  if (argc >= 4 && !strcmp(argv[1], "merge"))
    return merge360(argv[2], atoi(argv[3]), argv + 4, argc - 4);
  if (argc == 4) return ingest(argv[1], argv[2], atoi(argv[3]));
  fprintf(stderr, "usage: store-bench DIR PROFILE N | store-bench merge DIR RUNS CPU-FILE...\n");
  return 2;
}
