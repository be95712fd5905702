/* The store's writer: opening, appending, retention and the series cache. See store.h for the
 * contract and store_int.h for the schema and its invariants. */
#include "store.h"

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
#include <time.h>
#include <unistd.h>

#include "../base/utf8.h"
#include "store_int.h"
#include "store_sym.h"

/* SQLite's words for its last error, and for an I/O error the errno behind it: "disk I/O
 * error" alone does not tell a quota (EDQUOT) from a failing disk (EIO). */
static void sql_reason(sqlite3 *db, const char *msg, char *out, size_t cap) {
  int se = sqlite3_system_errno(db);
  if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_IOERR && se) snprintf(out, cap, "%s (%s)", msg, strerror(se));
  else snprintf(out, cap, "%s", msg);
}

int store__sql_fail(sqlite3 *db, pp_err *err, const char *what) {
  char why[256];
  sql_reason(db, sqlite3_errmsg(db), why, sizeof why);
  return pp_err_set(err, PP_EIO, "index: %s: %s", what, why);
}

int store__exec(sqlite3 *db, const char *sql, pp_err *err) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    char why[256];
    sql_reason(db, msg ? msg : sqlite3_errmsg(db), why, sizeof why);
    int r = pp_err_set(err, PP_EIO, "index: %.200s: %s", sql, why);
    sqlite3_free(msg);
    return r;
  }
  return 0;
}

/* Binds ?1 and ?2 when the statement has them. */
static void bind2(sqlite3_stmt *st, int64_t a, int64_t b) {
  int n = sqlite3_bind_parameter_count(st);
  if (n >= 1) sqlite3_bind_int64(st, 1, a);
  if (n >= 2) sqlite3_bind_int64(st, 2, b);
}

int store__query_i64(sqlite3 *db, const char *sql, int64_t a, int64_t b, int64_t *ret, pp_err *err) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return store__sql_fail(db, err, sql);
  bind2(st, a, b);
  int rc = sqlite3_step(st);
  int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return store__sql_fail(db, err, sql);
  *ret = v;
  return 0;
}

int store__run(sqlite3 *db, const char *sql, int64_t a, int64_t b, pp_err *err) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return store__sql_fail(db, err, sql);
  bind2(st, a, b);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : store__sql_fail(db, err, sql);
}

/* BEGIN IMMEDIATE takes the write lock at once (or fails after the busy timeout), so a
 * transaction never runs half outside itself. */
int store__tx_begin(store *s, pp_err *err) {
  return store__exec(s->db, "BEGIN IMMEDIATE", err);
}

int store__tx_end(store *s, int r, pp_err *err) {
  if (r == 0 && (r = store__exec(s->db, "COMMIT", err)) == 0) return 0;
  sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  store__cache_reset(s); /* it may name series the rollback took back */
  return r;
}

static void stats_add(store *s, uint64_t *field, int64_t d) {
  pthread_mutex_lock(&s->stats_mu);
  *field = d < 0 && (uint64_t)-d > *field ? 0 : *field + (uint64_t)d;
  pthread_mutex_unlock(&s->stats_mu);
}

static uint64_t seg_bytes(store *s) {
  return __atomic_load_n(&s->segments_bytes, __ATOMIC_RELAXED);
}

static void seg_bytes_add(store *s, int64_t d) {
  uint64_t cur = seg_bytes(s);
  __atomic_store_n(&s->segments_bytes, d < 0 && (uint64_t)-d > cur ? 0 : cur + (uint64_t)d, __ATOMIC_RELAXED);
}

/* ---- statements ------------------------------------------------------------------------------ */

static int prepare(store *s, pp_err *err) {
  struct {
    sqlite3_stmt **st;
    const char *sql;
  } q[] = {
      {&s->st_ins_profile,
       "INSERT INTO profile(series_id,type,start_ns,end_ns,segment_id,rec_off,rec_len,data_off,"
       "data_len,crc,sample_types,totals) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"},
      {&s->st_ins_series, "INSERT INTO series(labels, last_seg) VALUES(?, 0)"},
      {&s->st_ins_labels, "INSERT INTO series_label(name, value, series_id) SELECT key, value, ?1 FROM json_each(?2)"},
      {&s->st_find_series, "SELECT id, last_seg FROM series WHERE labels=?"},
      {&s->st_last_seg, "UPDATE series SET last_seg=?2 WHERE id=?1 AND last_seg<?2"},
      {&s->st_ins_rollup,
       "INSERT OR REPLACE INTO rollup(series_id,type,start_ns,end_ns,count,segment_id,rec_off,rec_len,"
       "data_off,data_len,crc,sample_types,totals) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)"},
      {&s->st_seg_minmax,
       "UPDATE segment SET min_ns=MIN(COALESCE(min_ns,?1),?1), max_ns=MAX(COALESCE(max_ns,?2),?2) WHERE id=?3"},
      /* the oldest profile by end time gives first_ns; the newest its sample types */
      {&s->st_series_type,
       "INSERT INTO series_type(series_id,type,count,first_ns,first_end_ns,last_ns,sample_types) "
       "VALUES(?1,?2,1,?3,?4,?4,?5) ON CONFLICT(series_id,type) DO UPDATE SET count=count+1,"
       " first_ns=CASE WHEN excluded.first_end_ns<first_end_ns THEN excluded.first_ns ELSE first_ns END,"
       " first_end_ns=MIN(first_end_ns,excluded.first_end_ns),"
       " sample_types=CASE WHEN excluded.last_ns>=last_ns THEN excluded.sample_types ELSE sample_types END,"
       " last_ns=MAX(last_ns,excluded.last_ns)"},
  };
  for (size_t i = 0; i < sizeof q / sizeof *q; i++)
    if (sqlite3_prepare_v2(s->db, q[i].sql, -1, q[i].st, NULL) != SQLITE_OK) return store__sql_fail(s->db, err, q[i].sql);
  return 0;
}

/* ---- the series cache ------------------------------------------------------------------------ */

static int gen_init(series_gen *g) {
  memset(g, 0, sizeof *g);
  return htab_init(&g->keys, 256, 0);
}

static void gen_free(series_gen *g) {
  htab_free(&g->keys);
  free(g->v);
  memset(g, 0, sizeof *g);
}

void store__cache_reset(store *s) {
  for (int i = 0; i < 2; i++) {
    gen_free(&s->cache[i]);
    gen_init(&s->cache[i]);
  }
}

/* Remembers a series in the current generation (best effort: out of memory only forgets). */
static void cache_put(store *s, const char *lj, size_t len, series_slot slot) {
  series_gen *g = &s->cache[0];
  if (g->keys.count >= s->series_cache_max / 2) {
    /* the older generation goes; the current one becomes it */
    gen_free(&s->cache[1]);
    s->cache[1] = *g;
    if (gen_init(g) < 0) return;
  }
  uint32_t idx;
  if (htab_intern(&g->keys, lj, len, &idx) < 0) return;
  if (idx >= g->cap) {
    size_t nc = g->cap ? g->cap * 2 : 256;
    series_slot *nv = realloc(g->v, nc * sizeof *nv);
    if (!nv) {
      /* keys without a slot would be read as garbage: start the generation over */
      gen_free(g);
      gen_init(g);
      return;
    }
    g->v = nv;
    g->cap = nc;
  }
  g->v[idx] = slot;
}

static bool cache_get(store *s, const char *lj, size_t len, series_slot *ret) {
  int64_t i = htab_find(&s->cache[0].keys, lj, len);
  if (i >= 0) {
    *ret = s->cache[0].v[i];
    return true;
  }
  if ((i = htab_find(&s->cache[1].keys, lj, len)) < 0) return false;
  *ret = s->cache[1].v[i];
  cache_put(s, lj, len, *ret); /* still in use: into the current generation */
  return true;
}

int store__series_for(store *s, const char *lj, series_slot *ret, bool *ret_new, pp_err *err) {
  size_t len = strlen(lj);
  *ret_new = false;
  if (cache_get(s, lj, len, ret)) return 0;
  sqlite3_stmt *st = s->st_find_series;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, lj, (int)len, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    ret->id = sqlite3_column_int64(st, 0);
    ret->last_seg = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  if (rc == SQLITE_ROW) return 0;
  if (rc != SQLITE_DONE) return store__sql_fail(s->db, err, "find series");
  st = s->st_ins_series;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, lj, (int)len, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return store__sql_fail(s->db, err, "insert series");
  ret->id = sqlite3_last_insert_rowid(s->db);
  ret->last_seg = 0;
  st = s->st_ins_labels;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, ret->id);
  sqlite3_bind_text(st, 2, lj, (int)len, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return store__sql_fail(s->db, err, "insert labels");
  *ret_new = true;
  return 0;
}

int store__raise_last_seg(store *s, int64_t series_id, int64_t seg, pp_err *err) {
  sqlite3_stmt *st = s->st_last_seg;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, series_id);
  sqlite3_bind_int64(st, 2, seg);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : store__sql_fail(s->db, err, "series last segment");
}

/* ---- rows ------------------------------------------------------------------------------------ */

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

static int step_done(store *s, sqlite3_stmt *st, const char *what, pp_err *err) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : store__sql_fail(s->db, err, what);
}

/* Widens the segment's time range to t: time retention deletes a segment by its newest record,
 * whatever kind of records it holds. */
static int widen_segment(store *s, int64_t seg, int64_t t, pp_err *err) {
  sqlite3_stmt *st = s->st_seg_minmax;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, t);
  sqlite3_bind_int64(st, 2, t);
  sqlite3_bind_int64(st, 3, seg);
  return step_done(s, st, "update segment", err);
}

int store__insert_profile(store *s, int64_t series_id, const char *type, int64_t start, int64_t end, int64_t seg,
                          uint64_t off, const rec_hdr *h, const char *stypes, const char *totals, pp_err *err) {
  sqlite3_stmt *st = s->st_ins_profile;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, series_id);
  sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, start);
  sqlite3_bind_int64(st, 4, end);
  bind_location(st, 5, seg, off, h);
  sqlite3_bind_text(st, 11, stypes, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 12, totals, -1, SQLITE_STATIC);
  int r = step_done(s, st, "insert profile", err);
  if (r == 0) {
    st = s->st_series_type;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, series_id);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, start);
    sqlite3_bind_int64(st, 4, end);
    sqlite3_bind_text(st, 5, stypes, -1, SQLITE_STATIC);
    r = step_done(s, st, "series type", err);
  }
  return r < 0 ? r : widen_segment(s, seg, end, err);
}

int store__insert_rollup(store *s, int64_t series_id, const char *type, int64_t start, int64_t end, int64_t count,
                         int64_t seg, uint64_t off, const rec_hdr *h, const char *stypes, const char *totals,
                         pp_err *err) {
  sqlite3_stmt *st = s->st_ins_rollup;
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, series_id);
  sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, start);
  sqlite3_bind_int64(st, 4, end);
  sqlite3_bind_int64(st, 5, count);
  bind_location(st, 6, seg, off, h);
  sqlite3_bind_text(st, 12, stypes ? stypes : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 13, totals ? totals : "", -1, SQLITE_STATIC);
  int r = step_done(s, st, "insert rollup", err);
  return r < 0 ? r : widen_segment(s, seg, end - 1, err);
}

typedef struct type_count {
  int64_t series_id, n;
  char *type;
} type_count;

int store__delete_profiles(store *s, const char *where, int64_t a, int64_t b, int64_t *ret_n, pp_err *err) {
  /* what goes, per series and type, before it goes */
  char *sql = sqlite3_mprintf("SELECT series_id, type, COUNT(*) FROM profile WHERE %s GROUP BY series_id, type", where);
  sqlite3_stmt *st = NULL;
  type_count *v = NULL;
  size_t n = 0, cap = 0;
  int64_t total = 0;
  int r = 0, rc;
  if (!sql) return pp_err_set(err, PP_ENOMEM, "out of memory");
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    r = store__sql_fail(s->db, err, "rows to delete");
    goto out;
  }
  bind2(st, a, b);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == cap) {
      type_count *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *nv);
      if (!nv) {
        r = pp_err_set(err, PP_ENOMEM, "out of memory");
        goto out;
      }
      v = nv;
    }
    v[n].series_id = sqlite3_column_int64(st, 0);
    v[n].n = sqlite3_column_int64(st, 2);
    if (!(v[n].type = strdup((const char *)sqlite3_column_text(st, 1)))) {
      r = pp_err_set(err, PP_ENOMEM, "out of memory");
      goto out;
    }
    total += v[n++].n;
  }
  if (rc != SQLITE_DONE) {
    r = store__sql_fail(s->db, err, "rows to delete");
    goto out;
  }
  sqlite3_free(sql);
  sql = sqlite3_mprintf("DELETE FROM profile WHERE %s", where);
  if (!sql) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  if ((r = store__run(s->db, sql, a, b, err)) < 0) goto out;
  /* each (series, type) loses its count; the ends of what remains are found with two seeks of
   * the (series_id, type, end_ns) index (a summary left with nothing is deleted first) */
  sqlite3_finalize(st);
  st = NULL;
  const char *fix[3] = {
      "UPDATE series_type SET count=count-?3 WHERE series_id=?1 AND type=?2",
      "DELETE FROM series_type WHERE series_id=?1 AND type=?2 AND count<=0",
      "UPDATE series_type SET"
      " (first_ns, first_end_ns)=(SELECT start_ns, end_ns FROM profile WHERE series_id=?1 AND type=?2 ORDER BY end_ns LIMIT 1),"
      " (last_ns, sample_types)=(SELECT end_ns, sample_types FROM profile WHERE series_id=?1 AND type=?2"
      " ORDER BY end_ns DESC LIMIT 1) WHERE series_id=?1 AND type=?2"};
  for (int k = 0; k < 3 && r == 0; k++) {
    if (sqlite3_prepare_v2(s->db, fix[k], -1, &st, NULL) != SQLITE_OK) {
      r = store__sql_fail(s->db, err, "series type");
      break;
    }
    for (size_t i = 0; i < n && r == 0; i++) {
      sqlite3_reset(st);
      sqlite3_bind_int64(st, 1, v[i].series_id);
      sqlite3_bind_text(st, 2, v[i].type, -1, SQLITE_STATIC);
      if (k == 0) sqlite3_bind_int64(st, 3, v[i].n);
      r = step_done(s, st, "series type", err);
    }
    sqlite3_finalize(st);
    st = NULL;
  }
  if (r == 0 && ret_n) *ret_n = total;
out:
  sqlite3_finalize(st);
  sqlite3_free(sql);
  for (size_t i = 0; i < n; i++) free(v[i].type);
  free(v);
  return r;
}

int store__delete_records(store *s, const char *where, int64_t a, int64_t b, int64_t *ret_profiles,
                          int64_t *ret_rollups, pp_err *err) {
  char *sql = sqlite3_mprintf("DELETE FROM rollup WHERE %s", where);
  if (!sql) return pp_err_set(err, PP_ENOMEM, "out of memory");
  int64_t rows = 0;
  int r = store__delete_profiles(s, where, a, b, &rows, err);
  if (r == 0) r = store__run(s->db, sql, a, b, err);
  sqlite3_free(sql);
  if (r < 0) return r;
  *ret_profiles = rows;
  *ret_rollups = sqlite3_changes(s->db);
  return 0;
}

int store__delete_dead_series(store *s, pp_err *err) {
  /* records are only in segments from the oldest on; with none left, every series is dead */
  int64_t oldest;
  int r = store__query_i64(s->db, "SELECT COALESCE(MIN(id), 9223372036854775807) FROM segment", 0, 0, &oldest, err);
  if (r < 0) return r;
  if ((r = store__run(s->db,
                      "DELETE FROM series_label WHERE series_id IN (SELECT id FROM series WHERE last_seg<?1)",
                      oldest, 0, err)) < 0 ||
      (r = store__run(s->db, "DELETE FROM series_type WHERE series_id IN (SELECT id FROM series WHERE last_seg<?1)",
                      oldest, 0, err)) < 0 ||
      (r = store__run(s->db, "DELETE FROM series WHERE last_seg<?1", oldest, 0, err)) < 0)
    return r;
  return sqlite3_changes(s->db);
}

void store__sample_summary(const pprof_profile *p, char *types, size_t tcap, char *totals, size_t ncap) {
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

/* ---- opening --------------------------------------------------------------------------------- */

int store__thread_start(store *s, pthread_t *t, bool *running, bool *stop, void *(*fn)(void *), const char *what,
                        pp_err *err) {
  if (*running) return 0;
  *stop = false;
  int e = pthread_create(t, NULL, fn, s);
  if (e) return pp_err_set(err, PP_ENOMEM, "%s thread: %s", what, strerror(e));
  *running = true;
  return 0;
}

void store__thread_stop(pthread_t *t, bool *running, bool *stop, pthread_mutex_t *mu, pthread_cond_t *cv) {
  if (!*running) return;
  pthread_mutex_lock(mu);
  *stop = true;
  pthread_cond_broadcast(cv);
  pthread_mutex_unlock(mu);
  pthread_join(*t, NULL);
  *running = false;
}

static void store_free(store *s) {
  if (!s) return;
  store__stop_compactor(s);
  store__stop_syncer(s);
  if (s->seg_fd >= 0) close(s->seg_fd);
  if (s->rseg_fd >= 0) close(s->rseg_fd);
  sqlite3_finalize(s->st_ins_profile);
  sqlite3_finalize(s->st_ins_series);
  sqlite3_finalize(s->st_ins_labels);
  sqlite3_finalize(s->st_find_series);
  sqlite3_finalize(s->st_last_seg);
  sqlite3_finalize(s->st_seg_minmax);
  sqlite3_finalize(s->st_ins_rollup);
  sqlite3_finalize(s->st_series_type);
  sqlite3_close(s->db);
  gen_free(&s->cache[0]);
  gen_free(&s->cache[1]);
  sym__writer_free(s->symw);
  sym__writer_free(s->rsymw);
  sym__cache_free(s);
  free(s->sync_closed);
  free(s->dir);
  free(s->segdir);
  free(s->dbpath);
  pthread_mutex_destroy(&s->stats_mu);
  pthread_mutex_destroy(&s->q_mu);
  pthread_cond_destroy(&s->q_cv);
  pthread_mutex_destroy(&s->sync_mu);
  pthread_cond_destroy(&s->sync_cv);
  free(s);
}

static int open_db(store *s, bool *ret_fresh, pp_err *err) {
  struct stat st;
  *ret_fresh = stat(s->dbpath, &st) != 0;
  if (sqlite3_open_v2(s->dbpath, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
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

static uint64_t file_size(const char *path);

/* Each tier's bytes, from its files (once at open; appends and retention keep them). */
static int count_tier_bytes(store *s, pp_err *err) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, "SELECT id, tier FROM segment", -1, &st, NULL) != SQLITE_OK)
    return store__sql_fail(s->db, err, "segment tiers");
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    char *path = seg__path(s->segdir, sqlite3_column_int64(st, 0));
    s->tier_bytes[sqlite3_column_int64(st, 1) == 1] += path ? file_size(path) : 0;
    free(path);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : store__sql_fail(s->db, err, "segment tiers");
}

int store_open(const store_opts *opts, store **ret, store_repair *ret_repair, pp_err *err) {
  store_repair rep = {0};
  store *s = calloc(1, sizeof *s);
  if (!s) return pp_err_set(err, PP_ENOMEM, "out of memory");
  s->seg_fd = s->rseg_fd = -1;
  s->sync_active = s->sync_active_r = -1;
  s->opts = *opts;
  s->series_cache_max = opts->series_cache ? opts->series_cache : SERIES_CACHE_DEFAULT;
  if (s->series_cache_max < 2) s->series_cache_max = 2;
  double si = opts->sync_interval == 0 ? SYNC_INTERVAL_DEFAULT : opts->sync_interval;
  s->sync_ns = si > 0 ? (int64_t)(si * 1e9) : 0;
  pthread_mutex_init(&s->stats_mu, NULL);
  pthread_mutex_init(&s->q_mu, NULL);
  pthread_cond_init(&s->q_cv, NULL);
  pthread_mutex_init(&s->sync_mu, NULL);
  pthread_cond_init(&s->sync_cv, NULL);
  int r;
  if (asprintf(&s->dir, "%s", opts->dir) < 0 || asprintf(&s->segdir, "%s/segments", opts->dir) < 0 ||
      asprintf(&s->dbpath, "%s/index.db", opts->dir) < 0 || gen_init(&s->cache[0]) < 0 || gen_init(&s->cache[1]) < 0 ||
      (opts->format != 1 && (sym__writer_new(&s->symw, NULL) < 0 || sym__writer_new(&s->rsymw, NULL) < 0))) {
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
    /* tiers: the smallest budget, so each tier can be held to its own within a segment */
    const uint64_t tiers[2] = {opts->retention_raw_bytes, opts->retention_rollup_bytes};
    for (int i = 0; i < 2; i++)
      if (tiers[i] && (!budget || tiers[i] < budget)) budget = tiers[i];
    struct statvfs vfs;
    if (!budget && statvfs(s->dir, &vfs) == 0) budget = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    seg = budget ? budget / 20 : (uint64_t)64 << 20;
    if (seg < (1u << 20)) seg = 1u << 20;
    if (seg > (64u << 20)) seg = 64u << 20;
  }
  s->segment_bytes = seg;
  s->segment_max_age_ns = opts->segment_max_age > 0 ? (int64_t)(opts->segment_max_age * 1e9) : SEGMENT_MAX_AGE_NS;

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
    snprintf(aside, sizeof aside, "%s.corrupt-%lld", s->dbpath, (long long)(pp_clock_real_ns() / 1000000000));
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
  /* the schema (and its upgrades) first, then the statements that use it */
  if ((r = store__schema(s, fresh, err)) < 0 || (r = prepare(s, err)) < 0 ||
      (r = store__repair(s, rebuild, &rep, err)) < 0) {
    store_free(s);
    return r;
  }
  int64_t v[4] = {0};
  const char *counts[] = {"SELECT COUNT(*) FROM profile", "SELECT COUNT(*) FROM series", "SELECT COUNT(*) FROM segment",
                          "SELECT COUNT(*) FROM rollup"};
  for (int i = 0; i < 4; i++)
    if ((r = store__query_i64(s->db, counts[i], 0, 0, &v[i], err)) < 0) {
      store_free(s);
      return r;
    }
  s->stats.profiles = (uint64_t)v[0];
  s->stats.series = (uint64_t)v[1];
  s->stats.segments = (uint64_t)v[2];
  s->stats.rollups = (uint64_t)v[3];
  /* a rebuilt index lost tiered retention's watermark, which the segments do not hold: with
   * tiers on, every raw profile older than the oldest one left went (whole segments go oldest
   * first), so a window starting before it with fewer profiles than its rollup lost them */
  if (rep.index_rebuilt && store__tiers_on(&s->opts) &&
      (r = store__run(s->db,
                      "INSERT INTO store_meta(key, value) SELECT 'raw_dropped_until', m FROM (SELECT COALESCE("
                      "(SELECT MIN(min_ns) - 1 FROM segment WHERE tier=0 AND min_ns IS NOT NULL), "
                      "(SELECT MAX(end_ns) FROM rollup)) AS m) WHERE m > 0 "
                      "ON CONFLICT(key) DO UPDATE SET value=MAX(value, excluded.value)",
                      0, 0, err)) < 0) {
    store_free(s);
    return r;
  }
  if ((r = store__query_i64(s->db, "SELECT COALESCE(MAX(value), 0) FROM store_meta WHERE key='raw_dropped_until'", 0, 0,
                            &s->stats.raw_dropped_until_ns, err)) < 0 ||
      (r = count_tier_bytes(s, err)) < 0) {
    store_free(s);
    return r;
  }
  if (s->sync_ns && (r = store__start_syncer(s, err)) < 0) {
    store_free(s);
    return r;
  }
  if (ret_repair) *ret_repair = rep;
  *ret = s;
  return 0;
}

void store_close(store *s) {
  if (!s) return;
  store__stop_compactor(s);
  /* the syncer's last round, then a checkpoint (which syncs the WAL and the index) */
  store__stop_syncer(s);
  if (s->db) sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
  store_free(s);
}

/* ---- appending ------------------------------------------------------------------------------ */

/* Stops writing to the active segment; the syncer syncs and closes its fd. */
static void close_segment(store *s) {
  if (s->seg_fd < 0) return;
  store__sync_roll(s, s->seg_fd, -1);
  s->seg_fd = -1;
  __atomic_store_n(&s->active_id[s->seg_tier], 0, __ATOMIC_SEQ_CST);
}

/* The index's last error was a full disk: SQLITE_FULL (what SQLite says for ENOSPC and for its
 * own size limit), or an I/O error whose errno was ENOSPC or EDQUOT: SQLite reports a write that
 * failed with EDQUOT (a quota) as SQLITE_IOERR_WRITE, not as SQLITE_FULL. */
static bool index_full(sqlite3 *db) {
  int e = sqlite3_extended_errcode(db) & 0xff, se = sqlite3_system_errno(db);
  return e == SQLITE_FULL || (e == SQLITE_IOERR && (se == ENOSPC || se == EDQUOT));
}

static int open_new_segment(store *s, bool *ret_enospc, pp_err *err) {
  int64_t id;
  int r = store__query_i64(s->db, "SELECT COALESCE(MAX(id), 0) FROM segment", 0, 0, &id, err);
  if (r < 0) return r;
  if (id < s->seg_id) id = s->seg_id; /* never an id used since open */
  if (id < s->rseg_id) id = s->rseg_id;
  id++;
  char *path = seg__path(s->segdir, id);
  if (!path) return pp_err_set(err, PP_ENOMEM, "out of memory");
  /* O_EXCL: a file that is already there is never overwritten, whatever the index says */
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    int e = errno;
    *ret_enospc = e == ENOSPC || e == EDQUOT;
    r = pp_err_set(err, PP_EIO, "%s: %s", path, strerror(e));
    free(path);
    return r;
  }
  /* before its row: a reader of store_list_segments that sees the row sees it as not closed */
  __atomic_store_n(&s->opening_id, id, __ATOMIC_SEQ_CST);
  if ((r = store__run(s->db, "INSERT INTO segment(id, tier) VALUES(?1, ?2)", id, s->seg_tier, err)) < 0) {
    __atomic_store_n(&s->opening_id, 0, __ATOMIC_SEQ_CST);
    *ret_enospc = index_full(s->db);
    close(fd);
    unlink(path); /* it is ours and empty: no orphan left for the next try to trip over */
    free(path);
    return r;
  }
  free(path);
  int old = s->seg_fd;
  s->seg_fd = fd;
  s->seg_id = id;
  s->seg_size = 0;
  s->seg_opened_ns = pp_clock_real_ns();
  __atomic_store_n(&s->active_id[s->seg_tier], id, __ATOMIC_SEQ_CST);
  __atomic_store_n(&s->opening_id, 0, __ATOMIC_SEQ_CST);
  if (s->symw) sym__writer_reset(s->symw); /* symbols are per segment */
  store__sync_roll(s, old, fd);
  stats_add(s, &s->stats.segments, 1);
  return 0;
}

/* What one profile's write put in the segment: where its profile record starts (*off), its
 * header, and before it (v2) the symbol record of `extra` bytes that enc described. */
typedef struct written {
  uint64_t off, extra;
  rec_hdr h;
  sym_enc enc;
  bool v2;
} written;

/* Writes one profile (meta JSON, and the profile as data/len for PPR1 or as p for v2) at the
 * end of the current segment, rolling it when due (or when the v2 writer's tables are full).
 * On success the caller inserts its index row and then calls commit_record. On failure
 * nothing of it is left in the file, nor in the writer's tables. Takes meta. */
static int write_record(store *s, json_t *meta, const uint8_t *data, size_t len, const pprof_profile *p, written *w,
                        bool *ret_enospc, pp_err *err) {
  int r = 0;
  memset(w, 0, sizeof *w);
  char *mj = NULL;
  if (s->seg_fd < 0 || s->seg_size >= s->segment_bytes || pp_clock_real_ns() - s->seg_opened_ns > s->segment_max_age_ns ||
      (s->symw && sym__writer_bytes(s->symw) > SYM_WRITER_MAX))
    if ((r = open_new_segment(s, ret_enospc, err)) < 0) goto out;
  int e = 0;
  int kind = REC_V1;
  if (s->symw) {
    if ((r = sym__encode(s->symw, p, &w->enc, err)) < 0) goto out;
    w->v2 = true;
    kind = REC_V2;
    data = w->enc.data;
    len = w->enc.len;
    if (json_object_set_new(meta, "sym", json_integer((json_int_t)sym__writer_head(s->symw, &w->enc, s->seg_size))) < 0) {
      r = pp_err_set(err, PP_ENOMEM, "out of memory");
      goto out;
    }
  }
  mj = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
  size_t mlen = mj ? strlen(mj) : 0;
  if (!mj || mlen > MAX_META) {
    r = !mj ? pp_err_set(err, PP_ENOMEM, "cannot encode the record's metadata")
            : pp_err_set(err, PP_ELIMIT, "labels too long (%zu bytes of metadata)", mlen);
    goto out;
  }
  if (w->enc.sym_len) {
    rec_hdr sh;
    if ((r = seg__write(s->seg_fd, s->seg_size, REC_SYM, "", 0, w->enc.sym, w->enc.sym_len, &sh, &e)) == 0)
      w->extra = REC_HDR + sh.data_len;
  }
  if (e == 0 && (r = seg__write(s->seg_fd, s->seg_size + w->extra, kind, mj, mlen, data, len, &w->h, &e)) < 0 &&
      r == -1 && w->extra && ftruncate(s->seg_fd, (off_t)s->seg_size) < 0)
    r = -2; /* the symbol record before it could not be cut off */
  if (r < 0) {
    *ret_enospc = e == ENOSPC || e == EDQUOT;
    if (r == -2) close_segment(s); /* could not cut it back: the next record starts a new one */
    r = pp_err_set(err, PP_EIO, "segment %016" PRIx64 ": %s", (uint64_t)s->seg_id, strerror(e));
    goto out;
  }
  w->off = s->seg_size + w->extra;
out:
  if (r < 0 && w->v2) sym__abort(s->symw);
  free(mj);
  json_decref(meta);
  return r;
}

/* The index rows' outcome: kept (r == 0) or rolled back together with the record's bytes (and
 * the symbols it gave the writer's tables). */
static int commit_record(store *s, int r, const written *w, bool *ret_enospc) {
  if (r < 0) {
    *ret_enospc = index_full(s->db);
    sqlite3_exec(s->db, "ROLLBACK TO append; RELEASE append", NULL, NULL, NULL);
    if (w->v2) sym__abort(s->symw);
    if (ftruncate(s->seg_fd, (off_t)s->seg_size) < 0) close_segment(s);
    return r;
  }
  if (w->v2) sym__commit(s->symw, &w->enc, s->seg_size);
  uint64_t total = w->extra + REC_HDR + (uint64_t)w->h.meta_len + w->h.data_len;
  s->seg_size += total;
  seg_bytes_add(s, (int64_t)total);
  s->tier_bytes[s->seg_tier] += total;
  return 0;
}

/* The labels as JSON with sorted keys, every name and value made valid UTF-8 (store.h). */
static json_t *labels_object(const store_label *l, size_t n) {
  json_t *o = json_object();
  for (size_t i = 0; o && i < n; i++) {
    char *k = pp_utf8_sanitize(l[i].name, strlen(l[i].name), NULL);
    char *v = pp_utf8_sanitize(l[i].value, strlen(l[i].value), NULL);
    if (!k || !v || json_object_set_new(o, k, json_string(v)) < 0) {
      json_decref(o);
      o = NULL;
    }
    free(k);
    free(v);
  }
  return o;
}

int store_append(store *s, const store_record *rec, bool *ret_enospc, pp_err *err) {
  *ret_enospc = false;
  if (rec->len > MAX_DATA) return pp_err_set(err, PP_ELIMIT, "profile of %zu bytes is over the store's limit", rec->len);
  json_t *labels = labels_object(rec->labels, rec->nlabels);
  char *lj = labels ? json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_t *meta = labels ? json_pack("{s:O,s:s,s:I,s:I}", "labels", labels, "type", rec->type, "start",
                                    (json_int_t)rec->start_ns, "end", (json_int_t)rec->end_ns)
                        : NULL;
  json_decref(labels);
  int r = 0;
  pprof_profile *own = NULL;
  const pprof_profile *p = rec->profile;
  if (!lj || !meta) {
    /* labels are made valid text above, so only memory (or a type that is not text) gets here */
    json_decref(meta);
    r = pp_err_set(err, PP_ENOMEM, "cannot encode the record's labels");
    goto out;
  }
  if (!p && (r = pprof_decode(rec->data, rec->len, NULL, &own, err)) < 0) {
    json_decref(meta);
    goto out;
  }
  if (!p) p = own;
  written w;
  if ((r = write_record(s, meta, rec->data, rec->len, p, &w, ret_enospc, err)) < 0) goto out;
  char types[1024], totals[1024];
  store__sample_summary(p, types, sizeof types, totals, sizeof totals);
  /* the series, the row, the series' summary and the segment's time range change together or
   * not at all */
  series_slot sl = {0, 0};
  bool created = false;
  if ((r = store__exec(s->db, "SAVEPOINT append", err)) == 0 && (r = store__series_for(s, lj, &sl, &created, err)) == 0 &&
      (r = store__insert_profile(s, sl.id, rec->type, rec->start_ns, rec->end_ns, s->seg_id, w.off, &w.h, types,
                                 totals, err)) == 0 &&
      (sl.last_seg >= s->seg_id || (r = store__raise_last_seg(s, sl.id, s->seg_id, err)) == 0))
    r = store__exec(s->db, "RELEASE append", err);
  if ((r = commit_record(s, r, &w, ret_enospc)) < 0) goto out;
  if (sl.last_seg < s->seg_id) sl.last_seg = s->seg_id;
  cache_put(s, lj, strlen(lj), sl);
  stats_add(s, &s->stats.profiles, 1);
  if (created) stats_add(s, &s->stats.series, 1);
out:
  pprof_free(own);
  free(lj);
  return r;
}

static void swap_tier(store *s);

void store_seal(store *s) {
  close_segment(s);
  if (s->rseg_fd >= 0) {
    swap_tier(s);
    close_segment(s);
    swap_tier(s);
  }
}

void store__roll_if_old(store *s) {
  /* closed, not replaced: the next record opens the next segment (one opened now would sit
   * empty until then, and be rolled again, empty, by write_record's own age check) */
  if (s->seg_fd >= 0 && s->seg_size > 0 && pp_clock_real_ns() - s->seg_opened_ns > s->segment_max_age_ns) close_segment(s);
}

/* Exchanges the active segment (seg_*) with the rollup tier's (rseg_*), the syncer's view of
 * them included, so write_record and commit_record write a rollup into its own tier. */
static void swap_tier(store *s) {
  int fd = s->seg_fd;
  int64_t id = s->seg_id, opened = s->seg_opened_ns;
  uint64_t size = s->seg_size;
  s->seg_fd = s->rseg_fd, s->seg_id = s->rseg_id, s->seg_size = s->rseg_size, s->seg_opened_ns = s->rseg_opened_ns;
  s->rseg_fd = fd, s->rseg_id = id, s->rseg_size = size, s->rseg_opened_ns = opened;
  s->seg_tier = !s->seg_tier;
  /* symbols are per segment: each tier's active segment has its writer's tables */
  struct sym_writer *w = s->symw;
  s->symw = s->rsymw;
  s->rsymw = w;
  pthread_mutex_lock(&s->sync_mu);
  int a = s->sync_active;
  s->sync_active = s->sync_active_r;
  s->sync_active_r = a;
  pthread_mutex_unlock(&s->sync_mu);
}

static int write_rollup_here(store *s, const rollup_item *it, bool *ret_enospc, pp_err *err);

int store__write_rollup(store *s, const rollup_item *it, bool *ret_enospc, pp_err *err) {
  swap_tier(s);
  int r = write_rollup_here(s, it, ret_enospc, err);
  swap_tier(s);
  return r;
}

static int write_rollup_here(store *s, const rollup_item *it, bool *ret_enospc, pp_err *err) {
  *ret_enospc = false;
  if (it->len > MAX_DATA) return pp_err_set(err, PP_ELIMIT, "rollup of %zu bytes is over the store's limit", it->len);
  /* the series may have gone with retention while the compactor merged: nothing to roll up.
   * Its labels are compared too: a deleted series' id can be given to a new series (ids are
   * rowids, and the highest one is reused once its row is gone). */
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, "SELECT COUNT(*) FROM series WHERE id=?1 AND labels=?2", -1, &st, NULL) != SQLITE_OK)
    return store__sql_fail(s->db, err, "rollup series");
  sqlite3_bind_int64(st, 1, it->series_id);
  sqlite3_bind_text(st, 2, it->labels_json, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  int64_t alive = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return store__sql_fail(s->db, err, "rollup series");
  if (!alive) return 0;
  int r;
  json_error_t je;
  json_t *labels = json_loads(it->labels_json, 0, &je);
  json_t *meta = labels ? json_pack("{s:o,s:s,s:I,s:I,s:I}", "labels", labels, "type", it->type, "start",
                                    (json_int_t)it->start_ns, "end", (json_int_t)it->end_ns, "rollup",
                                    (json_int_t)it->count)
                        : NULL;
  if (!meta) return pp_err_set(err, PP_ENOMEM, "rollup metadata");
  /* the compactor hands a profile (v2) or its gzip bytes (PPR1); a store whose format
   * changed between them decodes or encodes here */
  pprof_profile *own = NULL;
  uint8_t *gz = NULL;
  size_t gzlen = 0;
  const pprof_profile *p = it->profile;
  if (s->symw && !p && (r = pprof_decode(it->data, it->len, NULL, &own, err)) < 0) {
    json_decref(meta);
    return r;
  }
  if (!s->symw && !it->data && (r = pprof_encode(p, 1, &gz, &gzlen, err)) < 0) {
    json_decref(meta);
    return r;
  }
  written w;
  r = write_record(s, meta, gz ? gz : it->data, gz ? gzlen : it->len, p ? p : own, &w, ret_enospc, err);
  pprof_free(own);
  free(gz);
  if (r < 0) return r;
  if ((r = store__exec(s->db, "SAVEPOINT append", err)) == 0 &&
      (r = store__insert_rollup(s, it->series_id, it->type, it->start_ns, it->end_ns, it->count, s->seg_id, w.off,
                                &w.h, it->sample_types, it->totals, err)) == 0 &&
      (r = store__raise_last_seg(s, it->series_id, s->seg_id, err)) == 0)
    r = store__exec(s->db, "RELEASE append", err);
  if ((r = commit_record(s, r, &w, ret_enospc)) < 0) return r;
  stats_add(s, &s->stats.rollups, 1);
  return 0;
}

/* ---- retention ------------------------------------------------------------------------------ */

static uint64_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

uint64_t store_disk_bytes(store *s) {
  char p[PATH_MAX];
  uint64_t total = seg_bytes(s) + file_size(s->dbpath);
  snprintf(p, sizeof p, "%s-wal", s->dbpath);
  total += file_size(p);
  snprintf(p, sizeof p, "%s-shm", s->dbpath);
  total += file_size(p);
  return total;
}

/* A tier's bytes shrink by what a deleted segment of it held. */
static void tier_bytes_sub(store *s, int tier, uint64_t bytes) {
  uint64_t *b = &s->tier_bytes[tier == 1];
  *b = bytes > *b ? 0 : *b - bytes;
}

/* The oldest segment (of tier, or of any when tier < 0): 1 with its id, newest record's end
 * and tier, 0 when there is none, or < 0. */
static int oldest_segment(store *s, int tier, int64_t *ret_id, int64_t *ret_max_ns, int *ret_tier, pp_err *err) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT id, COALESCE(max_ns,0), tier FROM segment WHERE ?1 < 0 OR tier=?1 ORDER BY id LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sql_fail(s->db, err, "retention");
  sqlite3_bind_int(st, 1, tier);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *ret_id = sqlite3_column_int64(st, 0);
    *ret_max_ns = sqlite3_column_int64(st, 1);
    *ret_tier = sqlite3_column_int(st, 2);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store__sql_fail(s->db, err, "retention");
  return rc == SQLITE_ROW;
}

/* Deletes a segment's rows, the series left without records, and accounts for them, in one
 * transaction (the caller unlinks the file, before or after as its situation needs). */
static int drop_segment_rows(store *s, int64_t id, int tier, uint64_t file_bytes, pp_err *err) {
  int64_t rows = 0, rollups = 0;
  int dead = 0;
  int r = store__tx_begin(s, err);
  if (r < 0) return r;
  if ((r = store__delete_records(s, "segment_id=?1", id, 0, &rows, &rollups, err)) == 0 &&
      (r = store__run(s->db, "DELETE FROM segment WHERE id=?1", id, 0, err)) == 0 &&
      (dead = store__delete_dead_series(s, err)) < 0)
    r = dead;
  if ((r = store__tx_end(s, r, err)) < 0) return r;
  if (dead > 0) store__cache_reset(s); /* their ids must not be handed out again */
  seg_bytes_add(s, -(int64_t)file_bytes);
  tier_bytes_sub(s, tier, file_bytes);
  pthread_mutex_lock(&s->stats_mu);
  s->stats.retention_deleted_segments++;
  s->stats.retention_deleted_profiles += (uint64_t)rows;
  s->stats.profiles -= (uint64_t)rows <= s->stats.profiles ? (uint64_t)rows : s->stats.profiles;
  s->stats.series -= (uint64_t)dead <= s->stats.series ? (uint64_t)dead : s->stats.series;
  if (s->stats.segments) s->stats.segments--;
  s->stats.rollups -= (uint64_t)rollups <= s->stats.rollups ? (uint64_t)rollups : s->stats.rollups;
  pthread_mutex_unlock(&s->stats_mu);
  return 0;
}

uint64_t store_deletions(store *s) {
  return __atomic_load_n(&s->deletions, __ATOMIC_SEQ_CST);
}

/* store_deletions' count moves on: odd from before anything a reader could see of a deletion
 * changes (its rows, its file, raw_dropped_until) until after all of it did. */
static void deletion_mark(store *s) {
  __atomic_add_fetch(&s->deletions, 1, __ATOMIC_SEQ_CST);
}

/* The writer lets go of segment id when it is the active one. */
static void release_if_active(store *s, int64_t id) {
  if (id == s->rseg_id && s->rseg_fd >= 0) { /* the rollup tier's */
    store__sync_forget(s, s->rseg_fd);
    close(s->rseg_fd);
    s->rseg_fd = -1;
    __atomic_store_n(&s->active_id[!s->seg_tier], 0, __ATOMIC_SEQ_CST);
  }
  if (id != s->seg_id || s->seg_fd < 0) return;
  store__sync_forget(s, s->seg_fd);
  close(s->seg_fd);
  s->seg_fd = -1;
  __atomic_store_n(&s->active_id[s->seg_tier], 0, __ATOMIC_SEQ_CST);
}

/* Deletes segment id (rows first: a file is only deleted once nothing points into it), inside a
 * deletion_mark pair the caller makes. */
static int delete_segment_marked(store *s, int64_t id, int tier, pp_err *err) {
  char *path = seg__path(s->segdir, id);
  if (!path) return pp_err_set(err, PP_ENOMEM, "out of memory");
  int r = drop_segment_rows(s, id, tier, file_size(path), err);
  if (r == 0) {
    release_if_active(s, id);
    unlink(path);
  }
  free(path);
  return r;
}

static int delete_segment(store *s, int64_t id, int tier, pp_err *err) {
  deletion_mark(s);
  int r = delete_segment_marked(s, id, tier, err);
  deletion_mark(s);
  return r;
}

bool store__tiers_on(const store_opts *o) {
  return o->retention_raw_seconds > 0 || o->retention_raw_bytes || o->retention_rollup_seconds > 0 ||
         o->retention_rollup_bytes;
}

/* Tiered retention (store.h): one tier's oldest segments while they are due. */
static int tier_retention(store *s, int tier, int64_t now, int *deleted, pp_err *err) {
  double secs = tier ? s->opts.retention_rollup_seconds : s->opts.retention_raw_seconds;
  uint64_t budget = tier ? s->opts.retention_rollup_bytes : s->opts.retention_raw_bytes;
  for (;;) {
    int64_t id, max_ns;
    int t, found = oldest_segment(s, tier, &id, &max_ns, &t, err);
    if (found <= 0) return found;
    bool over = budget && s->tier_bytes[tier] > budget;
    bool old = secs > 0 && max_ns && (double)(now - max_ns) / 1e9 > secs;
    if (old && tier == 0) {
      /* raw past its period goes once every window and hour it touches is compacted */
      pthread_mutex_lock(&s->stats_mu);
      int64_t done = s->stats.hours_compacted_until_ns < s->stats.compacted_until_ns ? s->stats.hours_compacted_until_ns
                                                                                        : s->stats.compacted_until_ns;
      pthread_mutex_unlock(&s->stats_mu);
      old = max_ns < done;
    }
    if (!over && !old) return 0;
    /* (the watermark and the segment within one deletion_mark pair: a merge sees both or neither) */
    deletion_mark(s);
    int r = 0;
    if (tier == 0) {
      /* the watermark first: a crash before the delete leaves raw the rule no longer needs */
      r = store__run(s->db,
                     "INSERT INTO store_meta(key, value) VALUES('raw_dropped_until', ?1) ON CONFLICT(key) "
                     "DO UPDATE SET value=MAX(value, excluded.value)",
                     max_ns, 0, err);
      if (r == 0) {
        pthread_mutex_lock(&s->stats_mu);
        if (max_ns > s->stats.raw_dropped_until_ns) s->stats.raw_dropped_until_ns = max_ns;
        pthread_mutex_unlock(&s->stats_mu);
      }
    }
    if (r == 0) r = delete_segment_marked(s, id, tier, err);
    deletion_mark(s);
    if (r < 0) return r;
    (*deleted)++;
  }
}

int store_retention(store *s, int64_t now, pp_err *err) {
  int deleted = 0, r;
  if (store__tiers_on(&s->opts) && ((r = tier_retention(s, 0, now, &deleted, err)) < 0 ||
                             (r = tier_retention(s, 1, now, &deleted, err)) < 0))
    return r;
  for (;;) {
    int64_t id, max_ns;
    int tier, found = oldest_segment(s, -1, &id, &max_ns, &tier, err);
    if (found < 0) return found;
    if (!found) break;
    bool over = s->opts.retention_bytes && store_disk_bytes(s) > s->opts.retention_bytes;
    bool old = s->opts.retention_seconds > 0 && max_ns && (double)(now - max_ns) / 1e9 > s->opts.retention_seconds;
    if (!over && !old) break;
    if ((r = delete_segment(s, id, tier, err)) < 0) return r;
    deleted++;
  }
  if (deleted) {
    /* give the index's freed pages and the WAL back to the file system */
    sqlite3_exec(s->db, "PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, NULL);
  }
  return deleted;
}

bool store_retention_due(store *s) {
  const store_opts *o = &s->opts;
  return (o->retention_bytes && store_disk_bytes(s) > o->retention_bytes) ||
         (o->retention_raw_bytes && s->tier_bytes[0] > o->retention_raw_bytes) ||
         (o->retention_rollup_bytes && s->tier_bytes[1] > o->retention_rollup_bytes);
}

int store_free_space(store *s, pp_err *err) {
  int64_t n, id;
  int r;
  if ((r = store__query_i64(s->db, "SELECT COUNT(*) FROM segment", 0, 0, &n, err)) < 0) return r;
  if (n < 2) return 0; /* never the only segment: that is what is being written */
  int64_t max_ns;
  int tier;
  if ((r = oldest_segment(s, -1, &id, &max_ns, &tier, err)) <= 0) return r;
  release_if_active(s, id);
  /* the file first: with the disk full, SQLite may not manage to write until space is freed */
  char *path = seg__path(s->segdir, id);
  uint64_t sz = path ? file_size(path) : 0;
  deletion_mark(s);
  if (!path || unlink(path) < 0) {
    deletion_mark(s);
    r = pp_err_set(err, PP_EIO, "cannot delete segment %lld: %s", (long long)id, path ? strerror(errno) : "out of memory");
    free(path);
    return r;
  }
  free(path);
  /* if the index cannot be written yet, the next open repairs it; the bytes are gone anyway */
  if (drop_segment_rows(s, id, tier, sz, NULL) < 0) {
    seg_bytes_add(s, -(int64_t)sz);
    tier_bytes_sub(s, tier, sz);
  }
  deletion_mark(s);
  return 1;
}

void store_get_stats(store *s, store_stats *ret) {
  pthread_mutex_lock(&s->stats_mu);
  *ret = s->stats;
  pthread_mutex_unlock(&s->stats_mu);
  ret->disk_bytes = store_disk_bytes(s);
  ret->records_read = __atomic_load_n(&s->records_read, __ATOMIC_RELAXED);
  ret->table_loads = __atomic_load_n(&s->table_loads, __ATOMIC_RELAXED);
}
