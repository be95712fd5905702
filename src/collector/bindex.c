/* bindex: see bindex.h. */
#include "bindex.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/buf.h"
#include "../base/htab.h"
#include "../base/utf8.h"

#define BINDEX_FILE "bucket-series.db"

/* seg: one row per object (a segment id may come twice: upload.h); entry: a segment's
 * (series, type) figures; series and series_label as the store keeps them, shared by the
 * segments (a series' labels are written once however many segments hold it). */
static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS seg(key INTEGER PRIMARY KEY, id INTEGER NOT NULL, min_ns INTEGER NOT NULL,"
    " UNIQUE(id, min_ns));"
    "CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, labels TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS series_label(name TEXT NOT NULL, value TEXT NOT NULL, series_id INTEGER NOT NULL,"
    " PRIMARY KEY(name, value, series_id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS entry(seg INTEGER NOT NULL, series_id INTEGER NOT NULL, type TEXT NOT NULL,"
    " count INTEGER NOT NULL, first_ns INTEGER NOT NULL, first_end_ns INTEGER NOT NULL, last_ns INTEGER NOT NULL,"
    " sample_types TEXT NOT NULL, PRIMARY KEY(seg, series_id, type)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS entry_by_series ON entry(series_id);";

enum { Q_HAS, Q_SEG, Q_SERIES, Q_SERIES_ID, Q_LABEL, Q_ENTRY, Q_N };
static const char *const SQL[Q_N] = {
    "SELECT key FROM seg WHERE id=?1 AND min_ns=?2",
    "INSERT INTO seg(id, min_ns) VALUES(?1, ?2)",
    "INSERT OR IGNORE INTO series(labels) VALUES(?1)",
    "SELECT id FROM series WHERE labels=?1",
    "INSERT OR IGNORE INTO series_label(name, value, series_id) VALUES(?1, ?2, ?3)",
    ("INSERT INTO entry(seg, series_id, type, count, first_ns, first_end_ns, last_ns, sample_types)"
     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")};

struct bindex {
  sqlite3 *db;
  sqlite3_stmt *q[Q_N];
};

static char *path_of(const char *data_dir) {
  size_t n = strlen(data_dir) + sizeof BINDEX_FILE + 1;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", data_dir, BINDEX_FILE);
  return p;
}

static int fail(sqlite3 *db, pp_err *err, const char *what) {
  return pp_err_set(err, PP_EIO, "object store series index: %s: %s", what, db ? sqlite3_errmsg(db) : "cannot open");
}

int bindex_open(const char *data_dir, bindex **ret, pp_err *err) {
  *ret = NULL;
  char *path = path_of(data_dir);
  bindex *x = calloc(1, sizeof *x);
  if (!path || !x) return free(path), free(x), pp_err_set(err, PP_ENOMEM, "out of memory");
  int r = 0;
  if (sqlite3_open_v2(path, &x->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
    r = fail(x->db, err, path);
  if (r == 0) sqlite3_busy_timeout(x->db, 5000);
  if (r == 0 && sqlite3_exec(x->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) r = fail(x->db, err, "schema");
  for (int i = 0; i < Q_N && r == 0; i++)
    if (sqlite3_prepare_v2(x->db, SQL[i], -1, &x->q[i], NULL) != SQLITE_OK) r = fail(x->db, err, "prepare");
  free(path);
  if (r < 0) return bindex_close(x), r;
  *ret = x;
  return 0;
}

void bindex_close(bindex *x) {
  if (!x) return;
  for (int i = 0; i < Q_N; i++) sqlite3_finalize(x->q[i]);
  sqlite3_close(x->db);
  free(x);
}

static sqlite3_stmt *stmt(bindex *x, int q) {
  sqlite3_reset(x->q[q]);
  sqlite3_clear_bindings(x->q[q]);
  return x->q[q];
}

static int64_t seg_key(bindex *x, int64_t id, int64_t min_ns) {
  sqlite3_stmt *st = stmt(x, Q_HAS);
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_int64(st, 2, min_ns);
  int64_t key = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  return key;
}

bool bindex_has(bindex *x, int64_t id, int64_t min_ns) {
  return seg_key(x, id, min_ns) != 0;
}

typedef struct add_ctx {
  bindex *x;
  int64_t seg;
  pp_err *err;
} add_ctx;

static int step_done(bindex *x, sqlite3_stmt *st, pp_err *err, const char *what) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : fail(x->db, err, what);
}

static int add_entry(void *ud, const store_series_info *e, int64_t first_end_ns, const store_matcher *labels,
                     size_t nlabels) {
  add_ctx *c = ud;
  bindex *x = c->x;
  sqlite3_stmt *st = stmt(x, Q_SERIES);
  sqlite3_bind_text(st, 1, e->labels_json, -1, SQLITE_STATIC);
  int r = step_done(x, st, c->err, "series");
  if (r < 0) return r;
  st = stmt(x, Q_SERIES_ID);
  sqlite3_bind_text(st, 1, e->labels_json, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_ROW) return fail(x->db, c->err, "series id");
  int64_t sid = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  for (size_t i = 0; i < nlabels && r == 0; i++) {
    st = stmt(x, Q_LABEL);
    sqlite3_bind_text(st, 1, labels[i].name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, labels[i].value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, sid);
    r = step_done(x, st, c->err, "label");
  }
  if (r < 0) return r;
  st = stmt(x, Q_ENTRY);
  sqlite3_bind_int64(st, 1, c->seg);
  sqlite3_bind_int64(st, 2, sid);
  sqlite3_bind_text(st, 3, e->type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, e->count);
  sqlite3_bind_int64(st, 5, e->first_ns);
  sqlite3_bind_int64(st, 6, first_end_ns);
  sqlite3_bind_int64(st, 7, e->last_ns);
  sqlite3_bind_text(st, 8, e->sample_types, -1, SQLITE_STATIC);
  return step_done(x, st, c->err, "entry");
}

int bindex_add(bindex *x, store *st, int64_t id, int64_t min_ns, pp_err *err) {
  if (seg_key(x, id, min_ns)) return 0;
  if (sqlite3_exec(x->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return fail(x->db, err, "begin");
  sqlite3_stmt *q = stmt(x, Q_SEG);
  sqlite3_bind_int64(q, 1, id);
  sqlite3_bind_int64(q, 2, min_ns);
  int r = step_done(x, q, err, "segment");
  size_t n = 0;
  if (r == 0) {
    add_ctx c = {x, sqlite3_last_insert_rowid(x->db), err};
    r = store_segment_series(st, id, add_entry, &c, &n, err);
  }
  if (r == 0 && !n) r = pp_err_set(err, PP_EUSAGE, "segment %lld holds no raw profile", (long long)id);
  if (r == 0 && sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) r = fail(x->db, err, "commit");
  if (r < 0) sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
  return r;
}

int bindex_drop(bindex *x, int64_t id, int64_t min_ns, pp_err *err) {
  int64_t key = seg_key(x, id, min_ns);
  if (!key) return 0;
  /* series no segment holds any more go with it (a scan of entry's series index per drop: drops
   * come one per segment the bucket's retention deletes) */
  static const char *const sqls[] = {
      "DELETE FROM entry WHERE seg=?1", "DELETE FROM seg WHERE key=?1",
      "DELETE FROM series_label WHERE series_id NOT IN (SELECT series_id FROM entry)",
      "DELETE FROM series WHERE id NOT IN (SELECT series_id FROM entry)"};
  if (sqlite3_exec(x->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return fail(x->db, err, "begin");
  int r = 0;
  for (size_t i = 0; i < sizeof sqls / sizeof *sqls && r == 0; i++) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(x->db, sqls[i], -1, &st, NULL) != SQLITE_OK) {
      r = fail(x->db, err, "drop");
      break;
    }
    sqlite3_bind_int64(st, 1, key);
    r = step_done(x, st, err, "drop");
    sqlite3_finalize(st);
  }
  if (r == 0 && sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) r = fail(x->db, err, "commit");
  if (r < 0) sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
  return r;
}

/* ---- listing ---------------------------------------------------------------------------------- */

/* An entry of the listing being summed: the index's series id and type, keyed in a htab by
 * both (8 bytes of id, then the type). */
typedef struct sum_entry {
  int64_t sid;
  char *type, *sample_types;
  int64_t first_ns, first_end_ns, last_ns, count;
} sum_entry;

typedef struct lister {
  sqlite3 *db;
  sqlite3_stmt *seg, *entries, *labels;
  htab keys;
  sum_entry *v;
  size_t n, cap, max;
} lister;

static int add_sum(lister *l, sqlite3_stmt *st, pp_err *err) {
  int64_t sid = sqlite3_column_int64(st, 0);
  const char *type = (const char *)sqlite3_column_text(st, 1), *stypes = (const char *)sqlite3_column_text(st, 6);
  if (!type || !stypes) return pp_err_set(err, PP_ENOMEM, "out of memory");
  size_t tl = strlen(type);
  char key[8 + 64];
  if (tl > sizeof key - 8) return 0; /* (the store's types are short names) */
  memcpy(key, &sid, 8);
  memcpy(key + 8, type, tl);
  uint32_t idx;
  int added = htab_intern(&l->keys, key, 8 + tl, &idx);
  if (added < 0) return added == PP_ELIMIT ? pp_err_set(err, PP_ELIMIT, "more than %zu series", l->max)
                                           : pp_err_set(err, PP_ENOMEM, "out of memory");
  int64_t count = sqlite3_column_int64(st, 2), first = sqlite3_column_int64(st, 3),
          first_end = sqlite3_column_int64(st, 4), last = sqlite3_column_int64(st, 5);
  if (added) {
    if (l->n == l->cap) {
      sum_entry *nv = realloc(l->v, (l->cap = l->cap ? l->cap * 2 : 64) * sizeof *nv);
      if (!nv) return pp_err_set(err, PP_ENOMEM, "out of memory");
      l->v = nv;
    }
    sum_entry *e = &l->v[l->n++];
    *e = (sum_entry){sid, strdup(type), strdup(stypes), first, first_end, last, count};
    return e->type && e->sample_types ? 0 : pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  sum_entry *e = &l->v[idx];
  e->count += count;
  if (first_end < e->first_end_ns) e->first_end_ns = first_end, e->first_ns = first;
  if (last > e->last_ns) {
    char *s = strdup(stypes);
    if (!s) return pp_err_set(err, PP_ENOMEM, "out of memory");
    free(e->sample_types);
    e->sample_types = s, e->last_ns = last;
  }
  return 0;
}

/* One segment's entries into the sums; *unknown counts what the listing lacks (bindex.h). */
static int list_segment(lister *l, const upload_segment *sg, const char *type, int64_t from, int64_t to,
                        size_t *unknown, pp_err *err) {
  sqlite3_reset(l->seg);
  sqlite3_bind_int64(l->seg, 1, sg->id);
  sqlite3_bind_int64(l->seg, 2, sg->min_ns);
  int rc = sqlite3_step(l->seg);
  if (rc != SQLITE_ROW) {
    if (rc != SQLITE_DONE) return fail(l->db, err, "segment");
    (*unknown)++;
    return 0;
  }
  sqlite3_reset(l->entries);
  sqlite3_bind_int64(l->entries, 1, sqlite3_column_int64(l->seg, 0));
  if (type) sqlite3_bind_text(l->entries, 2, type, -1, SQLITE_STATIC);
  else sqlite3_bind_null(l->entries, 2);
  int r = 0;
  while (r == 0 && (rc = sqlite3_step(l->entries)) == SQLITE_ROW) {
    int64_t first_end = sqlite3_column_int64(l->entries, 4), last = sqlite3_column_int64(l->entries, 5);
    if (last < from || first_end > to) continue; /* none of its records in the window */
    if (first_end < from || last > to) {
      (*unknown)++; /* the window cuts it: its count in the window is not known here */
      continue;
    }
    r = add_sum(l, l->entries, err);
  }
  if (r == 0 && rc != SQLITE_DONE) r = fail(l->db, err, "entries");
  return r;
}

int bindex_series(const char *data_dir, const upload_segment *segs, size_t n, const store_matcher *m, size_t nm,
                  const char *type, int64_t from, int64_t to, size_t max_entries, store_series_info **ret, size_t *ret_n,
                  size_t *ret_unknown, pp_err *err) {
  *ret = NULL, *ret_n = 0, *ret_unknown = 0;
  if (!to) to = INT64_MAX;
  for (size_t i = 0; i < nm; i++)
    if (!*m[i].name) return pp_err_set(err, PP_EINVAL, "a pick of series ids is not a selector of labels");
  size_t raw = 0;
  for (size_t i = 0; i < n; i++) raw += segs[i].tier == 0;
  if (!raw) return 0;
  char *path = path_of(data_dir);
  if (!path) return pp_err_set(err, PP_ENOMEM, "out of memory");
  lister l = {0};
  l.max = max_entries;
  int r = 0;
  /* (a collector that never wrote the index: every segment is unknown) */
  int rc = sqlite3_open_v2(path, &l.db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  free(path);
  if (rc != SQLITE_OK) {
    sqlite3_close(l.db);
    *ret_unknown = raw;
    return 0;
  }
  sqlite3_busy_timeout(l.db, 5000);
  /* one matcher, one posting list of the labels' index (as the store selects: names and
   * values sanitized the same way) */
  pp_buf sql;
  pp_buf_init(&sql, 0);
  pp_buf_puts(&sql, "SELECT series_id, type, count, first_ns, first_end_ns, last_ns, sample_types FROM entry"
                    " WHERE seg=?1 AND (?2 IS NULL OR type=?2)");
  /* (an empty value matches a series without that label, as the store's selector has it) */
  for (size_t i = 0; i < nm; i++)
    pp_buf_printf(&sql,
                  *m[i].value ? " AND series_id IN (SELECT series_id FROM series_label WHERE name=?%zu AND value=?%zu)"
                              : " AND series_id NOT IN (SELECT series_id FROM series_label WHERE name=?%zu AND value<>?%zu)",
                  3 + 2 * i, 4 + 2 * i);
  if (sql.failed || htab_init(&l.keys, 256, max_entries) < 0) r = pp_err_set(err, PP_ENOMEM, "out of memory");
  if (r == 0 && (sqlite3_exec(l.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
                 sqlite3_prepare_v2(l.db, "SELECT key FROM seg WHERE id=?1 AND min_ns=?2", -1, &l.seg, NULL) != SQLITE_OK ||
                 sqlite3_prepare_v2(l.db, sql.p, -1, &l.entries, NULL) != SQLITE_OK ||
                 sqlite3_prepare_v2(l.db, "SELECT labels FROM series WHERE id=?1", -1, &l.labels, NULL) != SQLITE_OK))
    r = fail(l.db, err, "prepare");
  for (size_t i = 0; i < nm && r == 0; i++) {
    char *name = pp_utf8_sanitize(m[i].name, strlen(m[i].name), NULL);
    char *value = pp_utf8_sanitize(m[i].value, strlen(m[i].value), NULL);
    if (!name || !value) r = pp_err_set(err, PP_ENOMEM, "out of memory");
    else sqlite3_bind_text(l.entries, (int)(3 + 2 * i), name, -1, SQLITE_TRANSIENT),
         sqlite3_bind_text(l.entries, (int)(4 + 2 * i), value, -1, SQLITE_TRANSIENT);
    free(name);
    free(value);
  }
  for (size_t i = 0; i < n && r == 0; i++)
    if (segs[i].tier == 0 && segs[i].max_ns >= from && segs[i].min_ns <= to)
      r = list_segment(&l, &segs[i], type, from, to, ret_unknown, err);
  store_series_info *out = r == 0 && l.n ? calloc(l.n, sizeof *out) : NULL;
  if (r == 0 && l.n && !out) r = pp_err_set(err, PP_ENOMEM, "out of memory");
  size_t k = 0;
  for (; r == 0 && k < l.n; k++) {
    sum_entry *e = &l.v[k];
    sqlite3_reset(l.labels);
    sqlite3_bind_int64(l.labels, 1, e->sid);
    if (sqlite3_step(l.labels) != SQLITE_ROW) {
      r = fail(l.db, err, "series");
      break;
    }
    char *labels = strdup((const char *)sqlite3_column_text(l.labels, 0));
    if (!labels) {
      r = pp_err_set(err, PP_ENOMEM, "out of memory");
      break;
    }
    out[k] = (store_series_info){0, labels, e->type, e->sample_types, e->first_ns, e->last_ns, e->count};
    e->type = e->sample_types = NULL;
  }
  for (size_t i = 0; i < l.n; i++) free(l.v[i].type), free(l.v[i].sample_types);
  if (r < 0) store_series_free(out, k), out = NULL;
  else *ret = out, *ret_n = l.n;
  free(l.v);
  htab_free(&l.keys);
  pp_buf_free(&sql);
  sqlite3_finalize(l.seg);
  sqlite3_finalize(l.entries);
  sqlite3_finalize(l.labels);
  sqlite3_exec(l.db, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(l.db);
  return r;
}
