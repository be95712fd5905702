/* The store: SQLite index + append-only segment files. See store.h for the contract. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "store_int.h"

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int sql_fail(sqlite3 *db, pp_err *err, const char *what) {
  return pp_err_set(err, PP_EIO, "index: %s: %s", what, sqlite3_errmsg(db));
}

static int exec(sqlite3 *db, const char *sql, pp_err *err) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    int r = pp_err_set(err, PP_EIO, "index: %s: %s", sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return r;
  }
  return 0;
}

static char *seg_path(const store *s, int64_t id) {
  char *p = NULL;
  if (asprintf(&p, "%s/%016" PRIx64 ".seg", s->segdir, (uint64_t)id) < 0) return NULL;
  return p;
}

static const char SCHEMA[] =
    "PRAGMA auto_vacuum=INCREMENTAL;"
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    /* keep the WAL small: it counts against the disk budget */
    "PRAGMA wal_autocheckpoint=256;"
    "PRAGMA journal_size_limit=1048576;"
    "CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, labels TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS segment(id INTEGER PRIMARY KEY, min_ns INTEGER, max_ns INTEGER);"
    "CREATE TABLE IF NOT EXISTS profile(id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL,"
    " type TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
    " segment_id INTEGER NOT NULL, rec_off INTEGER NOT NULL, rec_len INTEGER NOT NULL,"
    " data_off INTEGER NOT NULL, data_len INTEGER NOT NULL, crc INTEGER NOT NULL,"
    " sample_types TEXT NOT NULL, totals TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS profile_by_series ON profile(series_id, type, end_ns);"
    "CREATE INDEX IF NOT EXISTS profile_by_segment ON profile(segment_id);"
    /* an index earlier versions kept for the compactor; it finds windows through segments now */
    "DROP INDEX IF EXISTS profile_by_end;"
    "CREATE TABLE IF NOT EXISTS rollup(id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL,"
    " type TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, count INTEGER NOT NULL,"
    " segment_id INTEGER NOT NULL, rec_off INTEGER NOT NULL, rec_len INTEGER NOT NULL,"
    " data_off INTEGER NOT NULL, data_len INTEGER NOT NULL, crc INTEGER NOT NULL,"
    " UNIQUE(series_id, type, start_ns));"
    "CREATE INDEX IF NOT EXISTS rollup_by_segment ON rollup(segment_id);";

/* ---- opening and repair --------------------------------------------------------------------- */

static int open_db(store *s, bool *ret_fresh, pp_err *err) {
  struct stat st;
  *ret_fresh = stat(s->dbpath, &st) != 0;
  if (sqlite3_open_v2(s->dbpath, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    int r = pp_err_set(err, PP_EIO, "index %s: %s", s->dbpath, s->db ? sqlite3_errmsg(s->db) : "cannot open");
    sqlite3_close(s->db);
    s->db = NULL;
    return r;
  }
  sqlite3_busy_timeout(s->db, 5000);
  return 0;
}

/* True when the index answers quick_check with "ok". */
static bool index_ok(sqlite3 *db) {
  sqlite3_stmt *st;
  bool ok = false;
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK) {
    ok = sqlite3_step(st) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
  }
  return ok;
}

static int prepare(store *s, pp_err *err) {
  struct {
    sqlite3_stmt **st;
    const char *sql;
  } q[] = {
      {&s->st_ins_profile,
       "INSERT INTO profile(series_id,type,start_ns,end_ns,segment_id,rec_off,rec_len,data_off,"
       "data_len,crc,sample_types,totals) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"},
      {&s->st_ins_series, "INSERT INTO series(labels) VALUES(?)"},
      {&s->st_find_series, "SELECT id FROM series WHERE labels=?"},
      {&s->st_ins_rollup,
       "INSERT OR REPLACE INTO rollup(series_id,type,start_ns,end_ns,count,segment_id,rec_off,rec_len,"
       "data_off,data_len,crc) VALUES(?,?,?,?,?,?,?,?,?,?,?)"},
      {&s->st_seg_minmax,
       "UPDATE segment SET min_ns=MIN(COALESCE(min_ns,?1),?1), max_ns=MAX(COALESCE(max_ns,?2),?2) WHERE id=?3"},
  };
  for (size_t i = 0; i < sizeof q / sizeof *q; i++)
    if (sqlite3_prepare_v2(s->db, q[i].sql, -1, q[i].st, NULL) != SQLITE_OK) return sql_fail(s->db, err, q[i].sql);
  return 0;
}

typedef struct rec_hdr {
  uint32_t meta_len, data_len, crc;
} rec_hdr;

static bool read_hdr(const uint8_t *b, rec_hdr *h) {
  if (memcmp(b, REC_MAGIC, 4)) return false;
  memcpy(&h->meta_len, b + 4, 4);
  memcpy(&h->data_len, b + 8, 4);
  memcpy(&h->crc, b + 12, 4);
  return h->meta_len <= MAX_META && h->data_len <= MAX_DATA;
}

static int insert_row(store *s, int64_t series_id, const char *type, int64_t start, int64_t end,
                      int64_t seg, uint64_t off, const rec_hdr *h, const char *stypes,
                      const char *totals, pp_err *err);
static int series_id_for(store *s, const char *labels_json, int64_t *ret, pp_err *err);
static void sample_summary(const pprof_profile *p, char *types, size_t tcap, char *totals, size_t ncap);
static int insert_rollup(store *s, int64_t series_id, const char *type, int64_t start, int64_t end, int64_t count,
                         int64_t seg, uint64_t off, const rec_hdr *h, pp_err *err);

/* Rebuilds index rows from one segment file's self-describing records; truncates the file at
 * the first record that is incomplete or fails its CRC. */
static int rebuild_segment(store *s, int64_t seg, const char *path, store_repair *rep, pp_err *err) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno));
  struct stat st;
  fstat(fd, &st);
  uint64_t off = 0, size = (uint64_t)st.st_size;
  int r = 0;
  char *stmt = sqlite3_mprintf("INSERT OR IGNORE INTO segment(id) VALUES(%lld)", (long long)seg);
  exec(s->db, stmt, NULL);
  sqlite3_free(stmt);
  while (off + REC_HDR <= size) {
    uint8_t hb[REC_HDR];
    rec_hdr h;
    if (pread(fd, hb, REC_HDR, (off_t)off) != REC_HDR || !read_hdr(hb, &h)) break;
    uint64_t len = REC_HDR + (uint64_t)h.meta_len + h.data_len;
    if (off + len > size) break;
    uint8_t *buf = malloc((size_t)h.meta_len + h.data_len + 1);
    if (!buf || pread(fd, buf, (size_t)h.meta_len + h.data_len, (off_t)(off + REC_HDR)) !=
                    (ssize_t)(h.meta_len + h.data_len) ||
        (uint32_t)crc32(0, buf, (uInt)(h.meta_len + h.data_len)) != h.crc) {
      free(buf);
      break;
    }
    json_error_t je;
    json_t *meta = json_loadb((const char *)buf, h.meta_len, 0, &je);
    json_t *labels = json_object_get(meta, "labels");
    const char *type = json_string_value(json_object_get(meta, "type"));
    pprof_profile *p = NULL;
    json_int_t rcount = json_integer_value(json_object_get(meta, "rollup"));
    bool ok = meta && json_is_object(labels) && type &&
              pprof_decode(buf + h.meta_len, h.data_len, NULL, &p, NULL) == 0;
    if (ok && rcount > 0) {
      char *lj = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
      int64_t sid;
      if (lj && series_id_for(s, lj, &sid, err) == 0 &&
          insert_rollup(s, sid, type, json_integer_value(json_object_get(meta, "start")),
                        json_integer_value(json_object_get(meta, "end")), rcount, seg, off, &h, err) == 0)
        rep->rows_rebuilt++;
      free(lj);
    } else if (ok) {
      char *lj = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
      char types[1024], totals[1024];
      sample_summary(p, types, sizeof types, totals, sizeof totals);
      int64_t sid;
      int64_t start = json_integer_value(json_object_get(meta, "start"));
      int64_t end = json_integer_value(json_object_get(meta, "end"));
      if (lj && series_id_for(s, lj, &sid, err) == 0 &&
          insert_row(s, sid, type, start, end, seg, off, &h, types, totals, err) == 0)
        rep->rows_rebuilt++;
      free(lj);
    }
    pprof_free(p);
    json_decref(meta);
    free(buf);
    if (!ok) break;
    off += len;
  }
  if (off < size) {
    rep->bytes_truncated += size - off;
    if (ftruncate(fd, (off_t)off) < 0) r = pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno));
  }
  s->segments_bytes += off;
  close(fd);
  return r;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Segment ids of the files in segments/, sorted; other files are left alone. */
static int list_segment_files(store *s, int64_t **ret, size_t *ret_n, pp_err *err) {
  DIR *d = opendir(s->segdir);
  if (!d) return pp_err_set(err, PP_EIO, "%s: %s", s->segdir, strerror(errno));
  size_t n = 0, cap = 64;
  int64_t *ids = malloc(cap * sizeof *ids);
  struct dirent *e;
  while (ids && (e = readdir(d))) {
    char *end;
    unsigned long long v = strtoull(e->d_name, &end, 16);
    if (end != e->d_name + 16 || strcmp(end, ".seg")) continue;
    if (n == cap) {
      int64_t *ni = realloc(ids, (cap *= 2) * sizeof *ids);
      if (!ni) break;
      ids = ni;
    }
    ids[n++] = (int64_t)v;
  }
  closedir(d);
  if (!ids) return pp_err_set(err, PP_ENOMEM, "out of memory");
  qsort(ids, n, sizeof *ids, cmp_i64);
  *ret = ids;
  *ret_n = n;
  return 0;
}

static int64_t query_i64(sqlite3 *db, const char *sql, int64_t arg, int64_t dflt) {
  sqlite3_stmt *st;
  int64_t v = dflt;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return dflt;
  sqlite3_bind_int64(st, 1, arg);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void exec_i64(sqlite3 *db, const char *sql, int64_t arg) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return;
  sqlite3_bind_int64(st, 1, arg);
  sqlite3_step(st);
  sqlite3_finalize(st);
}

static int repair(store *s, bool rebuild, store_repair *rep, pp_err *err) {
  int64_t *files = NULL;
  size_t nfiles = 0;
  int r = list_segment_files(s, &files, &nfiles, err);
  if (r < 0) return r;
  if (rebuild) {
    rep->index_rebuilt = nfiles > 0; /* a new, empty store has nothing to rebuild */
    exec(s->db, "BEGIN", NULL);
    for (size_t i = 0; i < nfiles && r == 0; i++) {
      char *path = seg_path(s, files[i]);
      r = path ? rebuild_segment(s, files[i], path, rep, err) : PP_ENOMEM;
      free(path);
    }
    if (r == 0) r = exec(s->db, "COMMIT", err);
    else exec(s->db, "ROLLBACK", NULL);
    free(files);
    return r;
  }
  exec(s->db, "BEGIN", NULL);
  /* index rows of segments whose file is gone */
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, "SELECT id FROM segment ORDER BY id", -1, &st, NULL) == SQLITE_OK) {
    int64_t gone[256];
    size_t ngone = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
      int64_t id = sqlite3_column_int64(st, 0);
      if (!bsearch(&id, files, nfiles, sizeof *files, cmp_i64) && ngone < 256) gone[ngone++] = id;
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < ngone; i++) {
      rep->rows_dropped += (size_t)query_i64(s->db, "SELECT COUNT(*) FROM profile WHERE segment_id=?", gone[i], 0);
      exec_i64(s->db, "DELETE FROM profile WHERE segment_id=?", gone[i]);
      exec_i64(s->db, "DELETE FROM rollup WHERE segment_id=?", gone[i]);
      exec_i64(s->db, "DELETE FROM segment WHERE id=?", gone[i]);
    }
  }
  for (size_t i = 0; i < nfiles; i++) {
    char *path = seg_path(s, files[i]);
    if (!path) continue;
    bool known = query_i64(s->db, "SELECT COUNT(*) FROM segment WHERE id=?", files[i], 0) > 0;
    int64_t rows = query_i64(s->db, "SELECT COUNT(*) FROM profile WHERE segment_id=?", files[i], 0) +
                   query_i64(s->db, "SELECT COUNT(*) FROM rollup WHERE segment_id=?", files[i], 0);
    struct stat st2;
    if (!known || rows == 0 || stat(path, &st2) < 0) {
      /* a file the index does not know (its first record never got a row) */
      if (unlink(path) == 0) rep->orphans_removed++;
      if (rows == 0 && known) rep->bytes_truncated += 0;
      exec_i64(s->db, "DELETE FROM segment WHERE id=?", files[i]);
      free(path);
      continue;
    }
    uint64_t size = (uint64_t)st2.st_size;
    static const char *const tables[] = {"profile", "rollup"};
    int64_t end = 0;
    for (int t = 0; t < 2; t++) {
      sqlite3_stmt *cnt;
      char *sql = sqlite3_mprintf("SELECT COUNT(*) FROM %s WHERE segment_id=%lld AND rec_off+rec_len>%lld",
                                  tables[t], (long long)files[i], (long long)size);
      int64_t past = 0;
      if (sqlite3_prepare_v2(s->db, sql, -1, &cnt, NULL) == SQLITE_OK) {
        if (sqlite3_step(cnt) == SQLITE_ROW) past = sqlite3_column_int64(cnt, 0);
        sqlite3_finalize(cnt);
      }
      sqlite3_free(sql);
      if (past) {
        rep->rows_dropped += (size_t)past;
        sql = sqlite3_mprintf("DELETE FROM %s WHERE segment_id=%lld AND rec_off+rec_len>%lld", tables[t],
                              (long long)files[i], (long long)size);
        exec(s->db, sql, NULL);
        sqlite3_free(sql);
      }
      sql = sqlite3_mprintf("SELECT MAX(rec_off+rec_len) FROM %s WHERE segment_id=?", tables[t]);
      int64_t e = query_i64(s->db, sql, files[i], 0);
      sqlite3_free(sql);
      if (e > end) end = e;
    }
    if ((uint64_t)end < size) {
      if (truncate(path, (off_t)end) == 0) rep->bytes_truncated += size - (uint64_t)end;
      size = (uint64_t)end;
    }
    s->segments_bytes += size;
    free(path);
  }
  free(files);
  return exec(s->db, "COMMIT", err);
}

static void store_free(store *s) {
  if (!s) return;
  store__stop_compactor(s);
  if (s->seg_fd >= 0) close(s->seg_fd);
  sqlite3_finalize(s->st_ins_profile);
  sqlite3_finalize(s->st_ins_series);
  sqlite3_finalize(s->st_find_series);
  sqlite3_finalize(s->st_seg_minmax);
  sqlite3_finalize(s->st_ins_rollup);
  sqlite3_close(s->db);
  htab_free(&s->series_cache);
  free(s->series_ids);
  free(s->dir);
  free(s->segdir);
  free(s->dbpath);
  pthread_mutex_destroy(&s->stats_mu);
  pthread_mutex_destroy(&s->q_mu);
  pthread_cond_destroy(&s->q_cv);
  free(s);
}

int store_open(const store_opts *opts, store **ret, store_repair *ret_repair, pp_err *err) {
  store_repair rep = {0};
  store *s = calloc(1, sizeof *s);
  if (!s) return pp_err_set(err, PP_ENOMEM, "out of memory");
  s->seg_fd = -1;
  s->opts = *opts;
  pthread_mutex_init(&s->stats_mu, NULL);
  pthread_mutex_init(&s->q_mu, NULL);
  pthread_cond_init(&s->q_cv, NULL);
  int r;
  if (asprintf(&s->dir, "%s", opts->dir) < 0 || asprintf(&s->segdir, "%s/segments", opts->dir) < 0 ||
      asprintf(&s->dbpath, "%s/index.db", opts->dir) < 0 || htab_init(&s->series_cache, 1024, 0) < 0) {
    store_free(s);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  s->opts.dir = s->dir;
  if ((mkdir(s->dir, 0750) < 0 && errno != EEXIST) || (mkdir(s->segdir, 0750) < 0 && errno != EEXIST)) {
    r = pp_err_set(err, PP_EIO, "data directory %s: %s", s->dir, strerror(errno));
    store_free(s);
    return r;
  }
  uint64_t seg = opts->segment_bytes;
  if (!seg) {
    /* without a budget, the file system is the budget: small disks get small segments, so a
     * full disk can always be relieved by deleting an old one */
    uint64_t budget = opts->retention_bytes;
    struct statvfs vfs;
    if (!budget && statvfs(s->dir, &vfs) == 0) budget = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    seg = budget ? budget / 20 : (uint64_t)64 << 20;
    if (seg < (1u << 20)) seg = 1u << 20;
    if (seg > (64u << 20)) seg = 64u << 20;
  }
  s->segment_bytes = seg;

  bool fresh;
  if ((r = open_db(s, &fresh, err)) < 0) {
    store_free(s);
    return r;
  }
  bool rebuild = fresh;
  if (!fresh && !index_ok(s->db)) {
    /* keep the damaged index for inspection, start a new one from the segments */
    sqlite3_close(s->db);
    s->db = NULL;
    char aside[PATH_MAX];
    snprintf(aside, sizeof aside, "%s.corrupt-%lld", s->dbpath, (long long)(now_ns() / 1000000000));
    rename(s->dbpath, aside);
    const char *sfx[] = {"-wal", "-shm"};
    for (int i = 0; i < 2; i++) {
      char a[PATH_MAX], b[PATH_MAX];
      snprintf(a, sizeof a, "%s%s", s->dbpath, sfx[i]);
      snprintf(b, sizeof b, "%s%s", aside, sfx[i]);
      rename(a, b);
    }
    if ((r = open_db(s, &fresh, err)) < 0) {
      store_free(s);
      return r;
    }
    rebuild = true;
  }
  if ((r = exec(s->db, SCHEMA, err)) < 0 || (r = prepare(s, err)) < 0 || (r = repair(s, rebuild, &rep, err)) < 0) {
    store_free(s);
    return r;
  }
  s->stats.profiles = (uint64_t)query_i64(s->db, "SELECT COUNT(*) FROM profile WHERE ?=1", 1, 0);
  s->stats.series = (uint64_t)query_i64(s->db, "SELECT COUNT(*) FROM series WHERE ?=1", 1, 0);
  s->stats.segments = (uint64_t)query_i64(s->db, "SELECT COUNT(*) FROM segment WHERE ?=1", 1, 0);
  s->stats.rollups = (uint64_t)query_i64(s->db, "SELECT COUNT(*) FROM rollup WHERE ?=1", 1, 0);
  if (ret_repair) *ret_repair = rep;
  *ret = s;
  return 0;
}

void store_close(store *s) {
  if (!s) return;
  if (s->db) sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
  store_free(s);
}

/* ---- appending ------------------------------------------------------------------------------ */

static void sample_summary(const pprof_profile *p, char *types, size_t tcap, char *totals, size_t ncap) {
  size_t to = 0, no = 0;
  types[0] = totals[0] = '\0';
  for (size_t t = 0; t < p->nsample_type; t++) {
    int64_t sum = 0;
    for (size_t i = 0; i < p->nsample; i++) sum = (int64_t)((uint64_t)sum + (uint64_t)p->sample[i].value[t]);
    int a = snprintf(types + to, tcap - to, "%s%s/%s", t ? "," : "", pprof_str(p, p->sample_type[t].type),
                     pprof_str(p, p->sample_type[t].unit));
    int b = snprintf(totals + no, ncap - no, "%s%lld", t ? "," : "", (long long)sum);
    if (a < 0 || b < 0 || (size_t)a >= tcap - to || (size_t)b >= ncap - no) break;
    to += (size_t)a;
    no += (size_t)b;
  }
}

static int series_id_for(store *s, const char *labels_json, int64_t *ret, pp_err *err) {
  size_t len = strlen(labels_json);
  int64_t found = htab_find(&s->series_cache, labels_json, len);
  if (found >= 0) {
    *ret = s->series_ids[found];
    return 0;
  }
  int64_t id = -1;
  sqlite3_stmt *st = s->st_find_series;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, labels_json, (int)len, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) id = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (id < 0) {
    st = s->st_ins_series;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, labels_json, (int)len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
      sqlite3_reset(st);
      return sql_fail(s->db, err, "insert series");
    }
    sqlite3_reset(st);
    id = sqlite3_last_insert_rowid(s->db);
    pthread_mutex_lock(&s->stats_mu);
    s->stats.series++;
    pthread_mutex_unlock(&s->stats_mu);
  }
  uint32_t idx;
  if (htab_intern(&s->series_cache, labels_json, len, &idx) >= 0) {
    if (idx >= s->series_cap) {
      size_t nc = s->series_cap ? s->series_cap * 2 : 256;
      int64_t *ni = realloc(s->series_ids, nc * sizeof *ni);
      if (ni) {
        s->series_ids = ni;
        s->series_cap = nc;
      }
    }
    if (idx < s->series_cap) s->series_ids[idx] = id;
  }
  *ret = id;
  return 0;
}

/* Where a record is, as the profile and rollup tables both keep it: segment_id, rec_off,
 * rec_len, data_off, data_len, crc bound from parameter `first` on. */
static void bind_location(sqlite3_stmt *st, int first, int64_t seg, uint64_t off, const rec_hdr *h) {
  sqlite3_bind_int64(st, first, seg);
  sqlite3_bind_int64(st, first + 1, (int64_t)off);
  sqlite3_bind_int64(st, first + 2, REC_HDR + (int64_t)h->meta_len + h->data_len);
  sqlite3_bind_int64(st, first + 3, (int64_t)off + REC_HDR + h->meta_len);
  sqlite3_bind_int64(st, first + 4, h->data_len);
  sqlite3_bind_int64(st, first + 5, h->crc);
}

/* Runs a bound insert, then widens the segment's time range to t: time retention deletes a
 * segment by its newest record, whatever kind of records it holds. */
static int insert_located(store *s, sqlite3_stmt *st, int64_t seg, int64_t t, const char *what, pp_err *err) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return sql_fail(s->db, err, what);
  st = s->st_seg_minmax;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, t);
  sqlite3_bind_int64(st, 2, t);
  sqlite3_bind_int64(st, 3, seg);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : sql_fail(s->db, err, "update segment");
}

static int insert_row(store *s, int64_t series_id, const char *type, int64_t start, int64_t end,
                      int64_t seg, uint64_t off, const rec_hdr *h, const char *stypes,
                      const char *totals, pp_err *err) {
  sqlite3_stmt *st = s->st_ins_profile;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, series_id);
  sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, start);
  sqlite3_bind_int64(st, 4, end);
  bind_location(st, 5, seg, off, h);
  sqlite3_bind_text(st, 11, stypes, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 12, totals, -1, SQLITE_STATIC);
  return insert_located(s, st, seg, end, "insert profile", err);
}

static int insert_rollup(store *s, int64_t series_id, const char *type, int64_t start, int64_t end, int64_t count,
                         int64_t seg, uint64_t off, const rec_hdr *h, pp_err *err) {
  sqlite3_stmt *st = s->st_ins_rollup;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, series_id);
  sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, start);
  sqlite3_bind_int64(st, 4, end);
  sqlite3_bind_int64(st, 5, count);
  bind_location(st, 6, seg, off, h);
  return insert_located(s, st, seg, end - 1, "insert rollup", err);
}

static void close_segment(store *s) {
  if (s->seg_fd >= 0) close(s->seg_fd);
  s->seg_fd = -1;
}

static int open_new_segment(store *s, pp_err *err) {
  close_segment(s);
  int64_t id = query_i64(s->db, "SELECT MAX(id) FROM segment WHERE ?=1", 1, 0) + 1;
  char *path = seg_path(s, id);
  if (!path) return pp_err_set(err, PP_ENOMEM, "out of memory");
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    int r = pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno));
    free(path);
    return r;
  }
  free(path);
  char *sql = sqlite3_mprintf("INSERT INTO segment(id) VALUES(%lld)", (long long)id);
  int r = exec(s->db, sql, err);
  sqlite3_free(sql);
  if (r < 0) {
    close(fd);
    return r;
  }
  s->seg_fd = fd;
  s->seg_id = id;
  s->seg_size = 0;
  s->seg_opened_ns = now_ns();
  pthread_mutex_lock(&s->stats_mu);
  s->stats.segments++;
  pthread_mutex_unlock(&s->stats_mu);
  return 0;
}

/* Writes one record (header, meta, data) at the end of the current segment, rolling it when
 * due. On success *ret_off is where it starts; the caller inserts its index row and then calls
 * commit_record. On failure nothing of it is left in the file. */
static int write_record(store *s, const char *mj, size_t mlen, const uint8_t *data, size_t len, rec_hdr *h,
                        uint64_t *ret_off, bool *ret_enospc, pp_err *err) {
  int r;
  if (s->seg_fd < 0 || s->seg_size >= s->segment_bytes || now_ns() - s->seg_opened_ns > SEGMENT_MAX_AGE_NS)
    if ((r = open_new_segment(s, err)) < 0) {
      *ret_enospc = strstr(err ? err->msg : "", "No space") != NULL;
      return r;
    }
  h->meta_len = (uint32_t)mlen;
  h->data_len = (uint32_t)len;
  uLong crc = crc32(0, (const Bytef *)mj, (uInt)mlen);
  h->crc = (uint32_t)crc32(crc, data, (uInt)len);
  uint8_t hb[REC_HDR];
  memcpy(hb, REC_MAGIC, 4);
  memcpy(hb + 4, &h->meta_len, 4);
  memcpy(hb + 8, &h->data_len, 4);
  memcpy(hb + 12, &h->crc, 4);
  struct iovec iov[3] = {{hb, REC_HDR}, {(void *)mj, mlen}, {(void *)data, len}};
  size_t total = REC_HDR + mlen + len, done = 0;
  while (done < total) {
    ssize_t n = writev(s->seg_fd, iov, 3);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      *ret_enospc = e == ENOSPC || e == EDQUOT;
      if (ftruncate(s->seg_fd, (off_t)s->seg_size) < 0) close_segment(s);
      return pp_err_set(err, PP_EIO, "segment %016" PRIx64 ": %s", (uint64_t)s->seg_id, strerror(e));
    }
    done += (size_t)n;
    /* advance the iovecs past what was written (short writes are rare but legal) */
    size_t skip = (size_t)n;
    for (int i = 0; i < 3; i++) {
      size_t k = skip < iov[i].iov_len ? skip : iov[i].iov_len;
      iov[i].iov_base = (char *)iov[i].iov_base + k;
      iov[i].iov_len -= k;
      skip -= k;
    }
  }
  *ret_off = s->seg_size;
  return 0;
}

/* The index row's outcome: kept (r == 0) or rolled back together with the record's bytes. */
static int commit_record(store *s, int r, const rec_hdr *h, bool *ret_enospc) {
  if (r < 0) {
    *ret_enospc = sqlite3_errcode(s->db) == SQLITE_FULL;
    sqlite3_exec(s->db, "ROLLBACK TO append; RELEASE append", NULL, NULL, NULL);
    if (ftruncate(s->seg_fd, (off_t)s->seg_size) < 0) close_segment(s);
    return r;
  }
  uint64_t total = REC_HDR + (uint64_t)h->meta_len + h->data_len;
  s->seg_size += total;
  s->segments_bytes += total;
  return 0;
}

int store_append(store *s, const store_record *rec, bool *ret_enospc, pp_err *err) {
  *ret_enospc = false;
  if (rec->len > MAX_DATA) return pp_err_set(err, PP_ELIMIT, "profile of %zu bytes is over the store's limit", rec->len);
  json_t *labels = json_object();
  for (size_t i = 0; i < rec->nlabels; i++) json_object_set_new(labels, rec->labels[i].name, json_string(rec->labels[i].value));
  char *lj = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
  json_t *meta = json_pack("{s:O,s:s,s:I,s:I}", "labels", labels, "type", rec->type, "start",
                           (json_int_t)rec->start_ns, "end", (json_int_t)rec->end_ns);
  char *mj = meta ? json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(meta);
  json_decref(labels);
  int r = 0;
  if (!lj || !mj) {
    r = pp_err_set(err, PP_EINVAL, "labels are not valid UTF-8 text");
    goto out;
  }
  size_t mlen = strlen(mj);
  if (mlen > MAX_META) {
    r = pp_err_set(err, PP_ELIMIT, "labels too long (%zu bytes of metadata)", mlen);
    goto out;
  }
  int64_t sid;
  if ((r = series_id_for(s, lj, &sid, err)) < 0) goto out;
  rec_hdr h;
  uint64_t off;
  if ((r = write_record(s, mj, mlen, rec->data, rec->len, &h, &off, ret_enospc, err)) < 0) goto out;
  char types[1024], totals[1024];
  sample_summary(rec->profile, types, sizeof types, totals, sizeof totals);
  /* the row and the segment's time range change together or not at all */
  if ((r = exec(s->db, "SAVEPOINT append", err)) == 0 &&
      (r = insert_row(s, sid, rec->type, rec->start_ns, rec->end_ns, s->seg_id, off, &h, types, totals, err)) == 0)
    r = exec(s->db, "RELEASE append", err);
  if ((r = commit_record(s, r, &h, ret_enospc)) < 0) goto out;
  pthread_mutex_lock(&s->stats_mu);
  s->stats.profiles++;
  pthread_mutex_unlock(&s->stats_mu);
out:
  free(lj);
  free(mj);
  return r;
}

int store__write_rollup(store *s, const rollup_item *it, bool *ret_enospc, pp_err *err) {
  *ret_enospc = false;
  if (it->len > MAX_DATA) return pp_err_set(err, PP_ELIMIT, "rollup of %zu bytes is over the store's limit", it->len);
  json_error_t je;
  json_t *labels = json_loads(it->labels_json, 0, &je);
  json_t *meta = labels ? json_pack("{s:o,s:s,s:I,s:I,s:I}", "labels", labels, "type", it->type, "start",
                                    (json_int_t)it->start_ns, "end", (json_int_t)it->end_ns, "rollup",
                                    (json_int_t)it->count)
                        : NULL;
  char *mj = meta ? json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(meta);
  if (!mj) return pp_err_set(err, PP_ENOMEM, "rollup metadata");
  size_t mlen = strlen(mj);
  rec_hdr h;
  uint64_t off;
  int r = mlen > MAX_META ? pp_err_set(err, PP_ELIMIT, "rollup metadata too long")
                          : write_record(s, mj, mlen, it->data, it->len, &h, &off, ret_enospc, err);
  free(mj);
  if (r < 0) return r;
  if ((r = exec(s->db, "SAVEPOINT append", err)) == 0 &&
      (r = insert_rollup(s, it->series_id, it->type, it->start_ns, it->end_ns, it->count, s->seg_id, off, &h,
                         err)) == 0)
    r = exec(s->db, "RELEASE append", err);
  if ((r = commit_record(s, r, &h, ret_enospc)) < 0) return r;
  pthread_mutex_lock(&s->stats_mu);
  s->stats.rollups++;
  pthread_mutex_unlock(&s->stats_mu);
  return 0;
}

/* ---- retention ------------------------------------------------------------------------------ */

static uint64_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

uint64_t store_disk_bytes(store *s) {
  char p[PATH_MAX];
  uint64_t total = s->segments_bytes + file_size(s->dbpath);
  snprintf(p, sizeof p, "%s-wal", s->dbpath);
  total += file_size(p);
  snprintf(p, sizeof p, "%s-shm", s->dbpath);
  total += file_size(p);
  return total;
}

/* Deletes a segment's index rows in one transaction and accounts for them (the caller unlinks
 * the file, before or after as its situation needs). */
static int drop_segment_rows(store *s, int64_t id, uint64_t file_bytes, pp_err *err) {
  int64_t rows = query_i64(s->db, "SELECT COUNT(*) FROM profile WHERE segment_id=?", id, 0);
  int64_t rollups = query_i64(s->db, "SELECT COUNT(*) FROM rollup WHERE segment_id=?", id, 0);
  exec(s->db, "BEGIN", NULL);
  exec_i64(s->db, "DELETE FROM profile WHERE segment_id=?", id);
  exec_i64(s->db, "DELETE FROM rollup WHERE segment_id=?", id);
  exec_i64(s->db, "DELETE FROM segment WHERE id=?", id);
  if (exec(s->db, "COMMIT", err) < 0) {
    exec(s->db, "ROLLBACK", NULL);
    return PP_EIO;
  }
  s->segments_bytes = s->segments_bytes > file_bytes ? s->segments_bytes - file_bytes : 0;
  pthread_mutex_lock(&s->stats_mu);
  s->stats.retention_deleted_segments++;
  s->stats.retention_deleted_profiles += (uint64_t)rows;
  s->stats.profiles -= (uint64_t)rows <= s->stats.profiles ? (uint64_t)rows : s->stats.profiles;
  if (s->stats.segments) s->stats.segments--;
  s->stats.rollups -= (uint64_t)rollups <= s->stats.rollups ? (uint64_t)rollups : s->stats.rollups;
  pthread_mutex_unlock(&s->stats_mu);
  return 0;
}

int store_retention(store *s, int64_t now, pp_err *err) {
  int deleted = 0, r;
  for (;;) {
    sqlite3_stmt *st;
    int64_t id = -1, max_ns = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT id, COALESCE(max_ns,0) FROM segment ORDER BY id LIMIT 1", -1, &st, NULL) != SQLITE_OK)
      return sql_fail(s->db, err, "retention");
    if (sqlite3_step(st) == SQLITE_ROW) {
      id = sqlite3_column_int64(st, 0);
      max_ns = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (id < 0) break;
    bool over = s->opts.retention_bytes && store_disk_bytes(s) > s->opts.retention_bytes;
    bool old = s->opts.retention_seconds > 0 && max_ns &&
               (double)(now - max_ns) / 1e9 > s->opts.retention_seconds;
    if (!over && !old) break;
    if (id == s->seg_id && s->seg_fd >= 0) close_segment(s);
    char *path = seg_path(s, id);
    uint64_t sz = path ? file_size(path) : 0;
    if ((r = drop_segment_rows(s, id, sz, err)) < 0) {
      free(path);
      return r;
    }
    if (path) unlink(path);
    free(path);
    deleted++;
  }
  if (deleted) {
    /* give the index's freed pages and the WAL back to the file system */
    sqlite3_exec(s->db, "PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, NULL);
  }
  return deleted;
}

int store_free_space(store *s, pp_err *err) {
  int64_t n = query_i64(s->db, "SELECT COUNT(*) FROM segment WHERE ?=1", 1, 0);
  if (n < 2) return 0; /* never the only segment: that is what is being written */
  int64_t id = query_i64(s->db, "SELECT MIN(id) FROM segment WHERE ?=1", 1, -1);
  if (id < 0) return 0;
  if (id == s->seg_id && s->seg_fd >= 0) close_segment(s);
  /* the file first: with the disk full, SQLite may not manage to write until space is freed */
  char *path = seg_path(s, id);
  uint64_t sz = path ? file_size(path) : 0;
  if (!path || unlink(path) < 0) {
    int r = pp_err_set(err, PP_EIO, "cannot delete segment %lld: %s", (long long)id, strerror(errno));
    free(path);
    return r;
  }
  free(path);
  /* if the index cannot be written yet, the next open repairs it; the bytes are gone anyway */
  if (drop_segment_rows(s, id, sz, NULL) < 0) s->segments_bytes = s->segments_bytes > sz ? s->segments_bytes - sz : 0;
  return 1;
}

void store_get_stats(store *s, store_stats *ret) {
  pthread_mutex_lock(&s->stats_mu);
  *ret = s->stats;
  pthread_mutex_unlock(&s->stats_mu);
  ret->disk_bytes = store_disk_bytes(s);
  ret->records_read = __atomic_load_n(&s->records_read, __ATOMIC_RELAXED);
}
