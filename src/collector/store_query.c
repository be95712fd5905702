/* Store queries. Each call opens its own read-only SQLite connection (WAL lets it read while
 * the writer appends) and reads record bytes with pread; a segment deleted by retention while a
 * query runs makes its records count as missing, never as an error of the whole query. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../base/utf8.h"
#include "store_int.h"
#include "store_idm.h"
#include "store_sym.h"

int store__open_reader(store *s, sqlite3 **ret, pp_err *err) {
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(s->dbpath, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    int r = pp_err_set(err, PP_EIO, "index: %s", db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_close(db);
    return r;
  }
  sqlite3_busy_timeout(db, 5000);
  *ret = db;
  return 0;
}

/* ---- selections ------------------------------------------------------------------------------
 * A selector finds its series through series_label, driven by whichever of its inputs is the
 * narrowest: one label's posting list, or the series active since `from` (series.last_seg:
 * segments hold records in time order, so a series with a profile ending at or after `from`
 * wrote into a segment at or after the first one whose newest record is that recent). The
 * other matchers are checked per candidate with index seeks. So selecting one pod among a
 * million series stored costs a few seeks, not a scan. */

/* Series ids whose labels satisfy every matcher; with their labels JSON, in id order. */
typedef struct series_sel {
  int64_t *ids;
  char **labels;
  size_t n;
} series_sel;

static void sel_free(series_sel *s) {
  for (size_t i = 0; i < s->n; i++) free(s->labels[i]);
  free(s->ids);
  free(s->labels);
  memset(s, 0, sizeof *s);
}

/* A selector with its names and values made text the way store_append makes labels text. */
typedef struct selector {
  char **name, **value;
  size_t n;
  int64_t min_seg; /* series must have last_seg >= this (0 = any) */
  bool none;       /* nothing can match (from is after every record) */
} selector;

static void selector_free(selector *q) {
  for (size_t i = 0; i < q->n; i++) {
    free(q->name[i]);
    free(q->value[i]);
  }
  free(q->name);
  free(q->value);
}

static int selector_init(sqlite3 *db, const store_matcher *m, size_t nm, int64_t from, selector *q, pp_err *err) {
  memset(q, 0, sizeof *q);
  q->name = calloc(nm ? nm : 1, sizeof *q->name);
  q->value = calloc(nm ? nm : 1, sizeof *q->value);
  if (!q->name || !q->value) {
    selector_free(q);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  for (q->n = 0; q->n < nm; q->n++) {
    q->name[q->n] = pp_utf8_sanitize(m[q->n].name, strlen(m[q->n].name), NULL);
    q->value[q->n] = pp_utf8_sanitize(m[q->n].value, strlen(m[q->n].value), NULL);
    if (!q->name[q->n] || !q->value[q->n]) {
      q->n++;
      selector_free(q);
      return pp_err_set(err, PP_ENOMEM, "out of memory");
    }
  }
  if (from > 0) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT MIN(id) FROM segment WHERE max_ns>=?1", -1, &st, NULL) != SQLITE_OK) {
      selector_free(q);
      return pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
    }
    sqlite3_bind_int64(st, 1, from);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) q->min_seg = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_ROW) q->none = true;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
      selector_free(q);
      return pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
    }
  }
  return 0;
}

/* How many rows a query yields, counting no further than cap (a cheap size estimate). */
static int64_t bounded_count(sqlite3 *db, const char *sql, const char *a, const char *b, int64_t n, int64_t cap) {
  sqlite3_stmt *st;
  int64_t v = cap;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return cap;
  if (a) sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
  if (b) sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
  if (!a) sqlite3_bind_int64(st, 1, n);
  if (sqlite3_bind_parameter_count(st) >= 3) sqlite3_bind_int64(st, 3, cap);
  else sqlite3_bind_int64(st, 2, cap);
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

enum { DRIVE_ALL = -2, DRIVE_TIME = -1 };
#define PROBE_CAP 4096

/* Which input drives the selection: the index of a matcher, DRIVE_TIME or DRIVE_ALL. */
static int pick_driver(sqlite3 *db, const selector *q) {
  int best = q->min_seg > 0 ? DRIVE_TIME : DRIVE_ALL;
  int64_t best_n = best == DRIVE_TIME
                       ? bounded_count(db, "SELECT COUNT(*) FROM (SELECT 1 FROM series WHERE last_seg>=?1 LIMIT ?2)",
                                       NULL, NULL, q->min_seg, PROBE_CAP)
                       : INT64_MAX;
  for (size_t i = 0; i < q->n; i++) {
    if (!q->value[i][0] || !q->name[i][0]) continue; /* "" matches an absent label: no posting list to walk */
    int64_t c = bounded_count(db,
                              "SELECT COUNT(*) FROM (SELECT 1 FROM series_label WHERE name=?1 AND value=?2 LIMIT ?3)",
                              q->name[i], q->value[i], 0, PROBE_CAP);
    if (c < best_n) {
      best_n = c;
      best = (int)i;
    }
  }
  return best;
}

/* The SQL of a selection: ?1 = the series id to start at (inclusive), ?2 = a row limit,
 * ?3 = min_seg, then each matcher's name and value from ?4 on. */
static char *selection_sql(const selector *q, int driver) {
  char *sql;
  if (driver >= 0)
    /* CROSS JOIN keeps the posting list as the outer loop; its key ends in series_id, so rows
     * come in id order without a sort */
    sql = sqlite3_mprintf("SELECT s.id, s.labels FROM series_label d CROSS JOIN series s ON s.id=d.series_id "
                          "WHERE d.name=?%d AND d.value=?%d AND d.series_id>=?1 AND s.last_seg>=?3",
                          4 + 2 * driver, 5 + 2 * driver);
  else if (driver == DRIVE_TIME)
    sql = sqlite3_mprintf("SELECT s.id, s.labels FROM series s INDEXED BY series_by_last_seg "
                          "WHERE s.last_seg>=?3 AND s.id>=?1");
  else
    sql = sqlite3_mprintf("SELECT s.id, s.labels FROM series s WHERE s.id>=?1 AND s.last_seg>=?3");
  for (size_t i = 0; sql && i < q->n; i++) {
    if ((int)i == driver) continue;
    char *more = !q->name[i][0] ? sqlite3_mprintf("%s AND s.id IN (SELECT value FROM json_each(?%d))", sql, 5 + 2 * (int)i)
                 : q->value[i][0]
                     ? sqlite3_mprintf("%s AND EXISTS (SELECT 1 FROM series_label WHERE name=?%d AND value=?%d AND "
                                       "series_id=s.id)",
                                       sql, 4 + 2 * (int)i, 5 + 2 * (int)i)
                     : sqlite3_mprintf("%s AND NOT EXISTS (SELECT 1 FROM series_label WHERE series_id=s.id AND "
                                       "name=?%d AND value<>'' AND ?%d='')",
                                       sql, 4 + 2 * (int)i, 5 + 2 * (int)i);
    sqlite3_free(sql);
    sql = more;
  }
  char *full = sql ? sqlite3_mprintf("%s ORDER BY %s LIMIT ?2", sql, driver >= 0 ? "d.series_id" : "s.id") : NULL;
  sqlite3_free(sql);
  return full;
}

/* Up to `limit` matching series with id >= start (limit 0 = all), in id order. */
static int select_series(sqlite3 *db, const selector *q, int64_t start, size_t limit, series_sel *out, pp_err *err) {
  memset(out, 0, sizeof *out);
  if (q->none) return 0;
  char *sql = selection_sql(q, pick_driver(db, q));
  sqlite3_stmt *st;
  if (!sql) return pp_err_set(err, PP_ENOMEM, "out of memory");
  int prc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  sqlite3_free(sql);
  if (prc != SQLITE_OK) return pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
  sqlite3_bind_int64(st, 1, start);
  sqlite3_bind_int64(st, 2, limit ? (int64_t)limit : -1);
  sqlite3_bind_int64(st, 3, q->min_seg);
  for (size_t i = 0; i < q->n; i++) {
    sqlite3_bind_text(st, 4 + 2 * (int)i, q->name[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5 + 2 * (int)i, q->value[i], -1, SQLITE_STATIC);
  }
  size_t cap = 0;
  int r = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (out->n == cap) {
      cap = cap ? cap * 2 : 64;
      int64_t *ni = realloc(out->ids, cap * sizeof *ni);
      if (ni) out->ids = ni;
      char **nl = ni ? realloc(out->labels, cap * sizeof *nl) : NULL;
      if (!ni || !nl) {
        r = pp_err_set(err, PP_ENOMEM, "out of memory");
        break;
      }
      out->labels = nl;
    }
    out->ids[out->n] = sqlite3_column_int64(st, 0);
    if (!(out->labels[out->n] = strdup((const char *)sqlite3_column_text(st, 1)))) {
      r = pp_err_set(err, PP_ENOMEM, "out of memory");
      break;
    }
    out->n++;
  }
  if (r == 0 && rc != SQLITE_DONE) r = pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  if (r < 0) sel_free(out);
  return r;
}

static char *dup_col(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return strdup(t ? (const char *)t : "");
}

/* ---- listing series ----------------------------------------------------------------------- */

/* The statements of a listing: a series' (series, type) summaries, and for a time range the
 * count and ends of that range, each found with seeks of profile(series_id, type, end_ns). */
typedef struct list_stmts {
  sqlite3_stmt *types, *count, *first, *last;
} list_stmts;

/* One (series, type) entry into e; false when the range holds none of its profiles. */
static bool range_entry(list_stmts *q, int64_t sid, const char *type, int64_t from, int64_t to, store_series_info *e) {
  sqlite3_stmt *v[3] = {q->count, q->first, q->last};
  for (int i = 0; i < 3; i++) {
    sqlite3_reset(v[i]);
    sqlite3_bind_int64(v[i], 1, sid);
    sqlite3_bind_text(v[i], 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(v[i], 3, from);
    sqlite3_bind_int64(v[i], 4, to);
  }
  if (sqlite3_step(q->count) != SQLITE_ROW || (e->count = sqlite3_column_int64(q->count, 0)) == 0) return false;
  if (sqlite3_step(q->first) != SQLITE_ROW || sqlite3_step(q->last) != SQLITE_ROW) return false;
  e->first_ns = sqlite3_column_int64(q->first, 0);
  e->last_ns = sqlite3_column_int64(q->last, 0);
  free(e->sample_types);
  e->sample_types = dup_col(q->last, 1);
  return true;
}

int store_list_series(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from,
                      int64_t to, const store_series_cursor *after, size_t limit,
                      store_series_info **ret, size_t *ret_n, bool *ret_more, pp_err *err) {
  sqlite3 *db;
  int r = store__open_reader(s, &db, err);
  if (r < 0) return r;
  if (!to) to = INT64_MAX;
  selector q;
  list_stmts ls = {0};
  store_series_info *v = NULL;
  size_t n = 0, cap = 0;
  bool more = false;
  if ((r = selector_init(db, m, nm, from, &q, err)) < 0) {
    sqlite3_close(db);
    return r;
  }
  const char *sqls[4] = {
      "SELECT type, count, first_ns, first_end_ns, last_ns, sample_types FROM series_type "
      "WHERE series_id=?1 AND (?2 IS NULL OR type=?2) AND type>?3 ORDER BY type",
      "SELECT COUNT(*) FROM profile WHERE series_id=?1 AND type=?2 AND end_ns>=?3 AND end_ns<=?4",
      "SELECT start_ns FROM profile WHERE series_id=?1 AND type=?2 AND end_ns>=?3 AND end_ns<=?4 ORDER BY end_ns LIMIT 1",
      "SELECT end_ns, sample_types FROM profile WHERE series_id=?1 AND type=?2 AND end_ns>=?3 AND end_ns<=?4 "
      "ORDER BY end_ns DESC LIMIT 1"};
  sqlite3_stmt **sts[4] = {&ls.types, &ls.count, &ls.first, &ls.last};
  for (int i = 0; i < 4; i++)
    if (sqlite3_prepare_v2(db, sqls[i], -1, sts[i], NULL) != SQLITE_OK) {
      r = pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
      goto out;
    }
  /* series come in batches from the cursor on, until the page is full */
  int64_t next = after ? after->series_id : 0;
  const char *after_type = after && after->type ? after->type : "";
  bool done = false;
  while (!done && r == 0) {
    series_sel sel;
    const size_t batch = 256;
    if ((r = select_series(db, &q, next, batch, &sel, err)) < 0) break;
    done = sel.n < batch;
    for (size_t i = 0; i < sel.n && r == 0 && !more; i++) {
      sqlite3_reset(ls.types);
      sqlite3_bind_int64(ls.types, 1, sel.ids[i]);
      if (type) sqlite3_bind_text(ls.types, 2, type, -1, SQLITE_STATIC);
      else sqlite3_bind_null(ls.types, 2);
      /* the cursor's own series goes on after its type */
      sqlite3_bind_text(ls.types, 3, after && sel.ids[i] == after->series_id ? after_type : "", -1, SQLITE_TRANSIENT);
      int rc;
      while ((rc = sqlite3_step(ls.types)) == SQLITE_ROW) {
        int64_t first_end = sqlite3_column_int64(ls.types, 3), last = sqlite3_column_int64(ls.types, 4);
        if (last < from || first_end > to) continue; /* nothing of it in the range */
        if (limit && n == limit) {
          more = true;
          break;
        }
        if (n == cap) {
          store_series_info *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *nv);
          if (!nv) {
            r = pp_err_set(err, PP_ENOMEM, "out of memory");
            break;
          }
          v = nv;
        }
        store_series_info *e = &v[n];
        memset(e, 0, sizeof *e);
        e->series_id = sel.ids[i];
        e->type = dup_col(ls.types, 0);
        e->count = sqlite3_column_int64(ls.types, 1);
        e->first_ns = sqlite3_column_int64(ls.types, 2);
        e->last_ns = last;
        e->sample_types = dup_col(ls.types, 5);
        /* a range that cuts the series: its own count and ends */
        bool whole = from <= first_end && to >= last;
        if (!e->type || !e->sample_types || (!whole && !range_entry(&ls, sel.ids[i], e->type, from, to, e))) {
          free(e->type);
          free(e->sample_types);
          if (!e->type || !e->sample_types) r = pp_err_set(err, PP_ENOMEM, "out of memory");
          continue;
        }
        if (!(e->labels_json = strdup(sel.labels[i]))) {
          free(e->type);
          free(e->sample_types);
          r = pp_err_set(err, PP_ENOMEM, "out of memory");
          break;
        }
        n++;
      }
      if (r == 0 && !more && rc != SQLITE_DONE) r = pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
    }
    if (sel.n) next = sel.ids[sel.n - 1] + 1;
    sel_free(&sel);
    if (more) break;
  }
out:
  for (int i = 0; i < 4; i++) sqlite3_finalize(*sts[i]);
  selector_free(&q);
  sqlite3_close(db);
  if (r < 0) {
    store_series_free(v, n);
    return r;
  }
  *ret = v;
  *ret_n = n;
  if (ret_more) *ret_more = more;
  return 0;
}

void store_series_free(store_series_info *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].labels_json);
    free(v[i].type);
    free(v[i].sample_types);
  }
  free(v);
}

/* A segment's entries come from one GROUP BY over profile_by_segment; each entry's ends and the
 * labels of its series are seeks (profile_by_series, series_label_by_series). */
int store_segment_series(store *s, int64_t segment_id, store_segment_series_fn fn, void *ud, size_t *ret_entries,
                         pp_err *err) {
  *ret_entries = 0;
  sqlite3 *db;
  int r = store__open_reader(s, &db, err);
  if (r < 0) return r;
  static const char *const sqls[4] = {
      ("SELECT p.series_id, s.labels, p.type, COUNT(*), MIN(p.end_ns), MAX(p.end_ns) FROM profile p"
       " JOIN series s ON s.id=p.series_id WHERE p.segment_id=?1 GROUP BY p.series_id, p.type"),
      "SELECT start_ns FROM profile WHERE series_id=?1 AND type=?2 AND end_ns=?3 AND segment_id=?4 LIMIT 1",
      ("SELECT sample_types FROM profile WHERE series_id=?1 AND type=?2 AND end_ns=?3 AND segment_id=?4"
       " ORDER BY id DESC LIMIT 1"),
      "SELECT name, value FROM series_label WHERE series_id=?1 ORDER BY name"};
  sqlite3_stmt *st[4] = {0};
  store_matcher *lab = NULL;
  size_t labcap = 0;
  if (store__run(db, "BEGIN", 0, 0, err) < 0) {
    sqlite3_close(db);
    return PP_EIO;
  }
  for (int i = 0; i < 4 && r == 0; i++)
    if (sqlite3_prepare_v2(db, sqls[i], -1, &st[i], NULL) != SQLITE_OK)
      r = pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
  if (r == 0) sqlite3_bind_int64(st[0], 1, segment_id);
  int rc = SQLITE_DONE;
  while (r == 0 && (rc = sqlite3_step(st[0])) == SQLITE_ROW) {
    int64_t sid = sqlite3_column_int64(st[0], 0), first_end = sqlite3_column_int64(st[0], 4),
            last = sqlite3_column_int64(st[0], 5);
    const char *type = (const char *)sqlite3_column_text(st[0], 2);
    store_series_info e = {sid, (char *)sqlite3_column_text(st[0], 1), (char *)type, NULL, 0, last,
                           sqlite3_column_int64(st[0], 3)};
    for (int k = 1; k <= 2; k++) {
      sqlite3_reset(st[k]);
      sqlite3_bind_int64(st[k], 1, sid);
      sqlite3_bind_text(st[k], 2, type, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st[k], 3, k == 1 ? first_end : last);
      sqlite3_bind_int64(st[k], 4, segment_id);
    }
    if (!e.labels_json || !type || sqlite3_step(st[1]) != SQLITE_ROW || sqlite3_step(st[2]) != SQLITE_ROW) {
      r = pp_err_set(err, PP_EIO, "index: segment %lld: %s", (long long)segment_id, sqlite3_errmsg(db));
      break;
    }
    e.first_ns = sqlite3_column_int64(st[1], 0);
    e.sample_types = (char *)sqlite3_column_text(st[2], 0);
    size_t nl = 0;
    sqlite3_reset(st[3]);
    sqlite3_bind_int64(st[3], 1, sid);
    int lrc;
    while ((lrc = sqlite3_step(st[3])) == SQLITE_ROW) {
      if (nl == labcap) {
        store_matcher *nv = realloc(lab, (labcap = labcap ? labcap * 2 : 16) * sizeof *nv);
        if (!nv) break;
        lab = nv;
      }
      /* (the texts stay valid until the statement steps again: each label gets its copy) */
      const char *n = (const char *)sqlite3_column_text(st[3], 0), *v = (const char *)sqlite3_column_text(st[3], 1);
      lab[nl].name = n ? strdup(n) : NULL;
      lab[nl].value = v ? strdup(v) : NULL;
      nl++;
      if (!lab[nl - 1].name || !lab[nl - 1].value) break;
    }
    if (lrc != SQLITE_DONE) r = lrc == SQLITE_ROW ? pp_err_set(err, PP_ENOMEM, "out of memory")
                                                  : pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
    if (r == 0 && !e.sample_types) r = pp_err_set(err, PP_ENOMEM, "out of memory");
    if (r == 0 && (r = fn(ud, &e, first_end, lab, nl)) == 0) (*ret_entries)++;
    for (size_t i = 0; i < nl; i++) free((char *)lab[i].name), free((char *)lab[i].value);
  }
  if (r == 0 && rc != SQLITE_DONE) r = pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
  for (int i = 0; i < 4; i++) sqlite3_finalize(st[i]);
  free(lab);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(db);
  return r;
}

static int cmp_row_time(const void *a, const void *b) {
  const row_loc *x = a, *y = b;
  if (x->row.end_ns != y->row.end_ns) return x->row.end_ns < y->row.end_ns ? -1 : 1;
  return x->row.id < y->row.id ? -1 : x->row.id > y->row.id;
}

static void row_strings_free(row_loc *e) {
  free(e->row.labels_json);
  free(e->row.type);
  free(e->row.sample_types);
  free(e->row.totals);
}

void store__rows_free(row_loc *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) row_strings_free(&v[i]);
  free(v);
}

void store__take_loc(sqlite3_stmt *st, int first, row_loc *e) {
  e->segment_id = sqlite3_column_int64(st, first);
  e->data_off = sqlite3_column_int64(st, first + 1);
  e->data_len = sqlite3_column_int64(st, first + 2);
  e->rec_off = sqlite3_column_int64(st, first + 3);
  e->crc = sqlite3_column_int64(st, first + 4);
  e->meta_len = e->data_off - e->rec_off - REC_HDR;
}

bool store__take_rows(sqlite3_stmt *st, int64_t sid, const char *labels, row_loc **pv, size_t *pn, size_t *pcap) {
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (*pn == *pcap) {
      row_loc *nv = realloc(*pv, (*pcap *= 2) * sizeof *nv);
      if (!nv) return false;
      *pv = nv;
    }
    row_loc *e = &(*pv)[(*pn)++];
    memset(e, 0, sizeof *e);
    e->row.id = sqlite3_column_int64(st, 0);
    e->row.series_id = sid;
    e->row.labels_json = strdup(labels);
    e->row.type = dup_col(st, 1);
    e->row.start_ns = sqlite3_column_int64(st, 2);
    e->row.end_ns = sqlite3_column_int64(st, 3);
    e->row.sample_types = dup_col(st, 4);
    e->row.totals = dup_col(st, 5);
    store__take_loc(st, 6, e);
    e->row.size = (uint64_t)e->data_len;
    e->weight = e->row.count = 1;
  }
  return true;
}

/* Statements of a selection: raw rows by end time, and (rollups mode) the rollups wholly
 * inside the range and the raw count of one window. */
typedef struct sel_stmts {
  sqlite3_stmt *raw, *rollups, *count;
  int mode;              /* SEL_RAW, SEL_MERGE or SEL_POINTS */
  int64_t gone_until;    /* raw_dropped_until: windows starting at or before it lost raw to tiers */
} sel_stmts;

enum { SEL_RAW, SEL_MERGE, SEL_POINTS };

static void raw_range(sel_stmts *q, int64_t sid, const char *type, int64_t a, int64_t b, size_t limit) {
  sqlite3_reset(q->raw);
  sqlite3_bind_int64(q->raw, 1, sid);
  sqlite3_bind_text(q->raw, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q->raw, 3, a);
  sqlite3_bind_int64(q->raw, 4, b);
  sqlite3_bind_int64(q->raw, 5, (int64_t)limit);
}

/* A rollup's row as a timeline point: its summary, totals divided by count. */
static bool rollup_point(sqlite3_stmt *st, row_loc *e, const char *labels, const char *type, int64_t count) {
  e->row.labels_json = strdup(labels);
  e->row.type = strdup(type);
  e->row.sample_types = dup_col(st, 9);
  const char *t = (const char *)sqlite3_column_text(st, 10);
  size_t cap = (t ? strlen(t) : 0) + 32, o = 0;
  e->row.totals = malloc(cap);
  if (!e->row.labels_json || !e->row.type || !e->row.sample_types || !e->row.totals) return false;
  e->row.totals[0] = '\0';
  for (const char *p = t; p && *p && o < cap;) {
    char *end;
    long long v = strtoll(p, &end, 10);
    o += (size_t)snprintf(e->row.totals + o, cap - o, "%s%lld", o ? "," : "", v / (count > 0 ? count : 1));
    p = *end == ',' ? end + 1 : NULL;
  }
  e->row.size = (uint64_t)e->data_len;
  return true;
}

/* One series in rollups mode: a rollup of a window wholly inside [from, to] replaces the
 * profiles the index holds for its window when they are exactly the `count` it stands for, or
 * when tiered retention deleted raw profiles of that window (it starts at or before
 * gone_until: what raw is left there is a remnant); hours come before their 10-minute windows.
 * The gaps between those windows are read as raw profiles. So a week reads ~170 rollups per
 * series, not 60,000 profiles, and the record limit reaches that much further back. In points
 * mode only rollups standing for deleted raw are taken (the timeline shows every profile that
 * is still there). */
static bool series_with_rollups(sel_stmts *q, int64_t sid, const char *labels, const char *type, int64_t from, int64_t to,
                                size_t limit, row_loc **pv, size_t *pn, size_t *pcap) {
  sqlite3_reset(q->rollups);
  sqlite3_bind_int64(q->rollups, 1, sid);
  sqlite3_bind_text(q->rollups, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q->rollups, 3, from);
  sqlite3_bind_int64(q->rollups, 4, to);
  int64_t cursor = from; /* raw rows are still to be read from here */
  bool ok = true;
  while (ok && sqlite3_step(q->rollups) == SQLITE_ROW) {
    int64_t w0 = sqlite3_column_int64(q->rollups, 1), w1 = sqlite3_column_int64(q->rollups, 2);
    int64_t count = sqlite3_column_int64(q->rollups, 3);
    if (w0 < cursor) continue; /* inside an hour taken already */
    if (q->mode == SEL_POINTS && w0 > q->gone_until) break; /* by start: raw is whole from here on */
    sqlite3_reset(q->count);
    sqlite3_bind_int64(q->count, 1, sid);
    sqlite3_bind_text(q->count, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q->count, 3, w0);
    sqlite3_bind_int64(q->count, 4, w1);
    int64_t have = sqlite3_step(q->count) == SQLITE_ROW ? sqlite3_column_int64(q->count, 0) : -1;
    bool gone = w0 <= q->gone_until && have >= 0 && have < count;
    if (q->mode == SEL_POINTS ? !gone : (!gone && (have != count || count < 2)))
      continue; /* complete raw (points), or partly deleted by other causes, or a late profile: raw */
    if (w0 > cursor) { /* the gap before this window */
      raw_range(q, sid, type, cursor, w0 - 1, limit);
      if (!(ok = store__take_rows(q->raw, sid, labels, pv, pn, pcap))) break;
    }
    if (*pn == *pcap) {
      row_loc *nv = realloc(*pv, (*pcap *= 2) * sizeof *nv);
      if (!nv) {
        ok = false;
        break;
      }
      *pv = nv;
    }
    row_loc *e = &(*pv)[(*pn)++];
    memset(e, 0, sizeof *e);
    e->row.id = -sqlite3_column_int64(q->rollups, 0); /* negative: a rollup, in error messages */
    e->row.series_id = sid;
    e->row.start_ns = w0;
    e->row.end_ns = w1 - 1; /* sorts with the last profiles it stands for */
    store__take_loc(q->rollups, 4, e);
    e->weight = e->row.count = count;
    /* (a merge's rows name their series too: another store's parts join it by them) */
    if (q->mode == SEL_POINTS ? !rollup_point(q->rollups, e, labels, type, count) : !(e->row.labels_json = strdup(labels))) {
      ok = false;
      break;
    }
    if (gone) e->gone_width = w1 - w0;
    cursor = w1;
  }
  if (ok && cursor <= to) {
    raw_range(q, sid, type, cursor, to, limit);
    ok = store__take_rows(q->raw, sid, labels, pv, pn, pcap);
  }
  return ok;
}

/* The newest `limit` records of the selection (a rollup counts as one), returned oldest
 * first; with use_rollups, rollups stand in for the windows they cover (sum and avg only). */
static int select_rows(store *s, sqlite3 *db, const store_matcher *m, size_t nm, const char *type, int64_t from,
                       int64_t to, size_t limit, int mode, row_loc **ret, size_t *ret_n, store_merge_info *ret_info,
                       pp_err *err) {
  bool use_rollups = mode != SEL_RAW;
  selector sq;
  series_sel sel;
  int r = selector_init(db, m, nm, from, &sq, err);
  if (r < 0) return r;
  r = select_series(db, &sq, 0, 0, &sel, err);
  selector_free(&sq);
  if (r < 0) return r;
  if (!limit) limit = 100000;
  if (!to) to = INT64_MAX;
  sel_stmts q = {.mode = mode};
  if (use_rollups) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(value), 0) FROM store_meta WHERE key='raw_dropped_until'", -1, &st,
                           NULL) == SQLITE_OK) {
      if (sqlite3_step(st) == SQLITE_ROW) q.gone_until = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
    }
    /* points show rollups only where raw is gone: with none gone, the raw rows are all of it */
    if (mode == SEL_POINTS && !q.gone_until) q.mode = mode = SEL_RAW, use_rollups = false;
  }
  const char *raw = "SELECT " STORE_RAW_COLS " FROM profile WHERE series_id=?1 AND type=?2 AND end_ns>=?3 AND end_ns<=?4 "
                    "ORDER BY end_ns DESC LIMIT ?5";
  const char *rollups = "SELECT id, start_ns, end_ns, count, " STORE_LOC_COLS ", sample_types, totals FROM rollup "
                        "WHERE series_id=?1 AND type=?2 AND start_ns>=?3 AND end_ns-1<=?4 ORDER BY start_ns, end_ns DESC";
  const char *count = "SELECT COUNT(*) FROM profile WHERE series_id=?1 AND type=?2 AND end_ns>=?3 AND end_ns<?4";
  if (sqlite3_prepare_v2(db, raw, -1, &q.raw, NULL) != SQLITE_OK ||
      (use_rollups && (sqlite3_prepare_v2(db, rollups, -1, &q.rollups, NULL) != SQLITE_OK ||
                       sqlite3_prepare_v2(db, count, -1, &q.count, NULL) != SQLITE_OK))) {
    r = pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
    sqlite3_finalize(q.raw);
    sqlite3_finalize(q.rollups);
    sqlite3_finalize(q.count);
    sel_free(&sel);
    return r;
  }
  size_t n = 0, cap = 64;
  row_loc *v = calloc(cap, sizeof *v);
  bool ok = v != NULL;
  /* one more than the limit from each series: more than `limit` rows in all then says exactly
   * that more records matched than are kept (info.truncated), not merely "maybe" */
  for (size_t i = 0; ok && i < sel.n; i++) {
    if (use_rollups) {
      ok = series_with_rollups(&q, sel.ids[i], sel.labels[i], type, from, to, limit + 1, &v, &n, &cap);
    } else {
      raw_range(&q, sel.ids[i], type, from, to, limit + 1);
      ok = store__take_rows(q.raw, sel.ids[i], sel.labels[i], &v, &n, &cap);
    }
  }
  sqlite3_finalize(q.raw);
  sqlite3_finalize(q.rollups);
  sqlite3_finalize(q.count);
  sel_free(&sel);
  if (!ok) {
    store__rows_free(v, n);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  qsort(v, n, sizeof *v, cmp_row_time);
  bool truncated = n > limit;
  /* across series, keep only the newest `limit` */
  if (n > limit) {
    size_t drop = n - limit;
    for (size_t i = 0; i < drop; i++) row_strings_free(&v[i]);
    memmove(v, v + drop, limit * sizeof *v);
    n = limit;
  }
  if (ret_info) {
    memset(ret_info, 0, sizeof *ret_info);
    ret_info->truncated = truncated;
    for (size_t i = 0; i < n; i++) {
      ret_info->records++;
      if (v[i].row.id >= 0) continue;
      ret_info->rollups++;
      if (!v[i].gone_width) continue;
      ret_info->rollups_for_gone++;
      if (v[i].gone_width > ret_info->resolution_ns) ret_info->resolution_ns = v[i].gone_width;
    }
  }
  *ret = v;
  *ret_n = n;
  return 0;
}

static int list_rows(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                     size_t limit, int mode, store_row **ret, size_t *ret_n, pp_err *err) {
  sqlite3 *db;
  int r = store__open_reader(s, &db, err);
  if (r < 0) return r;
  row_loc *v;
  size_t n;
  r = select_rows(s, db, m, nm, type, from, to, limit, mode, &v, &n, NULL, err);
  sqlite3_close(db);
  if (r < 0) return r;
  store_row *out = calloc(n ? n : 1, sizeof *out);
  if (!out) {
    store__rows_free(v, n);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) out[i] = v[i].row;
  free(v);
  *ret = out;
  *ret_n = n;
  return 0;
}

int store_list_rows(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from,
                    int64_t to, size_t limit, store_row **ret, size_t *ret_n, pp_err *err) {
  return list_rows(s, m, nm, type, from, to, limit, SEL_RAW, ret, ret_n, err);
}

int store_list_points(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                      size_t limit, store_row **ret, size_t *ret_n, pp_err *err) {
  return list_rows(s, m, nm, type, from, to, limit, SEL_POINTS, ret, ret_n, err);
}

void store_rows_free(store_row *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].labels_json);
    free(v[i].type);
    free(v[i].sample_types);
    free(v[i].totals);
  }
  free(v);
}

/* Reads one record and checks the CRC, which covers metadata and data; a v2 record is
 * rebuilt and encoded, so every reader of bytes gets gzip pprof whatever the format. */
int store__read_record(store *s, const row_loc *e, uint8_t **ret, size_t *ret_len, pp_err *err) {
  sym_record rec;
  int r = sym_read_record(s, e, &rec, err);
  if (r < 0) return r;
  if (!rec.v2) {
    *ret = rec.gz;
    *ret_len = rec.gz_len;
    rec.gz = NULL;
  } else {
    pprof_profile *p = NULL;
    if ((r = sym_build_profile(rec.table, &rec.samples, NULL, &p, err)) == 0) r = pprof_encode(p, 1, ret, ret_len, err);
    pprof_free(p);
  }
  sym_record_free(&rec);
  return r;
}

/* The row of profile id: where its record is and, with meta, the row's fields and its series'
 * labels (the columns of STORE_RAW_COLS, then the labels); PP_EUSAGE when there is none. */
static int row_by_id(store *s, int64_t id, bool meta, row_loc *e, pp_err *err) {
  sqlite3 *db;
  int r = store__open_reader(s, &db, err);
  if (r < 0) return r;
  sqlite3_stmt *st;
  memset(e, 0, sizeof e[0]);
  r = PP_EUSAGE;
  if (sqlite3_prepare_v2(db, "SELECT " STORE_RAW_COLS ", (SELECT labels FROM series WHERE series.id=profile.series_id)"
                         " FROM profile WHERE id=?", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
      e->row.id = id;
      store__take_loc(st, 6, e);
      r = 0;
      if (meta) {
        e->row.count = 1;
        e->row.type = dup_col(st, 1);
        e->row.start_ns = sqlite3_column_int64(st, 2);
        e->row.end_ns = sqlite3_column_int64(st, 3);
        e->row.sample_types = dup_col(st, 4);
        e->row.totals = dup_col(st, 5);
        e->row.labels_json = dup_col(st, 11);
        if (!e->row.type || !e->row.sample_types || !e->row.totals || !e->row.labels_json) r = PP_ENOMEM;
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  if (r == PP_EUSAGE) return pp_err_set(err, PP_EUSAGE, "no profile with id %lld", (long long)id);
  if (r < 0) {
    row_strings_free(e);
    return pp_err_set(err, r, "out of memory");
  }
  return 0;
}

int store_read_row(store *s, int64_t id, store_row *ret_row, uint8_t **ret, size_t *ret_len, pp_err *err) {
  row_loc e;
  int r = row_by_id(s, id, true, &e, err);
  if (r == 0) r = store__read_record(s, &e, ret, ret_len, err);
  if (r == 0) *ret_row = e.row;
  else row_strings_free(&e);
  return r;
}

void store_row_release(store_row *r) {
  free(r->labels_json);
  free(r->type);
  free(r->sample_types);
  free(r->totals);
  memset(r, 0, sizeof *r);
}

int store_read(store *s, int64_t id, uint8_t **ret, size_t *ret_len, pp_err *err) {
  row_loc e;
  int r = row_by_id(s, id, false, &e, err);
  return r < 0 ? r : store__read_record(s, &e, ret, ret_len, err);
}

static void prime_tables(store *s, sym_reader *rd, const row_loc *locs, const size_t *pick, size_t n);

int store_each_profile(store *s, const int64_t *ids, size_t n, const pprof_limits *limits, store_profile_fn fn, void *ud,
                       pp_err *err) {
  row_loc *locs = calloc(n + 1, sizeof *locs);
  size_t *pick = malloc((n + 1) * sizeof *pick);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int r = locs && pick ? store__open_reader(s, &db, err) : pp_err_set(err, PP_ENOMEM, "out of memory");
  if (r == 0 && sqlite3_prepare_v2(db, "SELECT " STORE_RAW_COLS " FROM profile WHERE id=?", -1, &st, NULL) != SQLITE_OK)
    r = store__sql_fail(db, err, "reading profile rows");
  /* where every record is, first: the reads below go by segment, priming each table once */
  for (size_t i = 0; r == 0 && i < n; i++) {
    pick[i] = i;
    sqlite3_bind_int64(st, 1, ids[i]);
    int sr = sqlite3_step(st);
    if (sr == SQLITE_ROW) {
      locs[i].row.id = ids[i];
      store__take_loc(st, 6, &locs[i]);
    } else if (sr != SQLITE_DONE) {
      /* the index failing is the reader's failure, not "no profile with id" for each record */
      r = store__sql_fail(db, err, "reading profile rows");
    }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  if (db) sqlite3_close(db);
  sym_reader rd = SYM_READER_INIT;
  for (size_t i = 0; r == 0 && i < n; i++) {
    pp_err rerr = {0};
    pprof_profile *p = NULL;
    if (!locs[i].row.id) {
      pp_err_set(&rerr, PP_EUSAGE, "no profile with id %lld", (long long)ids[i]);
    } else {
      if (i == 0 || locs[i - 1].segment_id != locs[i].segment_id) prime_tables(s, &rd, locs, pick + i, n - i);
      sym_record rec;
      if (sym_read_with(s, &rd, &locs[i], &rec, &rerr) == 0) {
        if (rec.v2) sym_build_profile(rec.table, &rec.samples, limits, &p, &rerr);
        else store__decode_v1(&rec, limits, &p, &rerr);
        sym_record_free(&rec);
      }
    }
    r = fn(ud, i, p, p ? NULL : &rerr, err);
    pprof_free(p);
  }
  sym_reader_close(&rd);
  free(locs);
  free(pick);
  return r;
}

store_agg store_default_agg(const char *type, bool delta) {
  if (!strcmp(type, "cpu") || delta) return STORE_AGG_SUM;
  if (!strcmp(type, "heap") || !strcmp(type, "goroutine") || !strcmp(type, "threadcreate")) return STORE_AGG_AVG;
  return STORE_AGG_SUM; /* allocs, block, mutex snapshots are cumulative counters */
}

typedef struct merge_job {
  store *s;
  pprof_merger *mg;
  int64_t merged;
  /* v2 records are summed on ids (store_idm.h) and go into the merger as one profile per
   * segment when the series ends (avg) or the merge does; PPR1 records are decoded and merged
   * as they come */
  idm *ids;
  pprof_limits lim; /* one record's decoding, and one segment's profile built from its sums */
  /* avg: picks come grouped by series; each series is merged on its own into `series`, then
   * divided by its own record count and added to mg */
  bool avg;
  bool latest; /* with parts: a part whose series' newest here merged is settled (taken) */
  pprof_merger *series;
  int64_t series_id, series_weight;
  size_t cap; /* memory cap shared by mg, series and ids (0 = none) */
  bool mg_added; /* a profile went into mg itself (a PPR1 record's, a part's) */
  struct part_index *parts; /* another store's parts to join (store_merged_with), or NULL */
  const char *series_labels; /* avg: the series being merged */
} merge_job;

/* Another store's parts by their labels (store_merged_with). */
typedef struct part_index {
  store_series_part *v;
  size_t n;
  htab by_labels; /* labels -> key index */
  size_t *part_of; /* key index -> part */
  bool *taken;     /* joined a series here (avg), or settled against its newest here (latest) */
} part_index;

static void parts_index_free(part_index *x) {
  htab_free(&x->by_labels);
  free(x->part_of);
  free(x->taken);
}

static int parts_index(part_index *x, store_series_part *v, size_t n, pp_err *err) {
  memset(x, 0, sizeof *x);
  x->v = v, x->n = n;
  x->part_of = malloc((n ? n : 1) * sizeof *x->part_of);
  x->taken = calloc(n ? n : 1, sizeof *x->taken);
  if (!x->part_of || !x->taken || htab_init(&x->by_labels, n ? n : 1, 0) < 0) {
    parts_index_free(x);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t k;
    int r = htab_intern(&x->by_labels, v[i].labels, strlen(v[i].labels), &k);
    if (r < 0) {
      parts_index_free(x);
      return pp_err_set(err, PP_ENOMEM, "out of memory");
    }
    if (r == 1) x->part_of[k] = i; /* (a label set twice in one store: the second stands alone) */
  }
  return 0;
}

/* The part of the series with these labels no series took yet, or NULL; its index in *ret_i. */
static store_series_part *parts_find(const part_index *x, const char *labels, size_t *ret_i) {
  int64_t k = x && labels ? htab_find(&x->by_labels, labels, strlen(labels)) : -1;
  if (k < 0 || x->taken[x->part_of[k]]) return NULL;
  *ret_i = x->part_of[k];
  return &x->v[*ret_i];
}

/* With a cap, what one part may hold: what the others leave of it. */
static size_t cap_left(const merge_job *j, size_t others) {
  return others < j->cap ? j->cap - others : 1;
}

/* The sums of v2 records so far go into `into` (one profile per segment); with ret, handed
 * over instead when they are one segment's the merger would keep as it is (idm_take). */
static int flush_ids(merge_job *j, pprof_merger *into, pprof_profile **ret, pp_err *err) {
  if (j->cap) {
    size_t others = pprof_merger_bytes(j->mg) + (j->series && into != j->series ? pprof_merger_bytes(j->series) : 0);
    pprof_merger_set_limit(into, cap_left(j, others + idm_bytes(j->ids)));
  }
  int r = ret ? idm_take(j->ids, into, &j->lim, ret, err) : idm_flush(j->ids, into, &j->lim, err);
  return r == PP_EMISMATCH ? 0 : r;
}

/* avg: the finished series' average goes into the total. */
static int flush_series(merge_job *j, pp_err *err) {
  if (!j->series) return 0;
  int r = flush_ids(j, j->series, NULL, err);
  /* the other store's records of this series join it before it is divided */
  size_t i;
  store_series_part *x = r == 0 ? parts_find(j->parts, j->series_labels, &i) : NULL;
  if (x) {
    j->parts->taken[i] = true;
    if (j->cap) pprof_merger_set_limit(j->series, cap_left(j, pprof_merger_bytes(j->mg) + idm_bytes(j->ids)));
    if ((r = pprof_merger_add(j->series, x->p, 1, err)) == 0) j->series_weight += x->weight, j->merged += x->weight;
    if (r == PP_EMISMATCH) r = 0;
  }
  pprof_profile *p = NULL;
  if (r == 0 && j->series_weight) r = pprof_merger_finish(j->series, &p, err);
  else pprof_merger_free(j->series);
  j->series = NULL;
  if (r < 0 || !p) return r;
  if (j->series_weight > 1) pprof_scale(p, 1.0 / (double)j->series_weight);
  if (j->cap) pprof_merger_set_limit(j->mg, cap_left(j, p->mem.reserved));
  r = pprof_merger_add(j->mg, p, 1, err);
  pprof_free(p);
  return r == PP_EMISMATCH ? 0 : r;
}

/* The parts no series here took, each on its own (avg: divided by the records it stands for). */
static int add_parts(merge_job *j, pp_err *err) {
  for (size_t i = 0; j->parts && i < j->parts->n; i++) {
    store_series_part *x = &j->parts->v[i];
    if (j->parts->taken[i]) continue;
    j->parts->taken[i] = true;
    /* checked against the selection's types first, as a PPR1 record is: the v2 records' sums
     * go into mg after the parts (latest, sum), and mg would refuse them once a part whose
     * types differ had fixed its own */
    int r = idm_check_profile(j->ids, x->p, err);
    if (r == PP_EMISMATCH) continue;
    if (r < 0) return r;
    if (j->avg && x->weight > 1) pprof_scale(x->p, 1.0 / (double)x->weight);
    if (j->cap) pprof_merger_set_limit(j->mg, cap_left(j, idm_bytes(j->ids)));
    r = pprof_merger_add(j->mg, x->p, 1, err);
    if (r == PP_EMISMATCH) continue;
    if (r < 0) return r;
    j->merged += x->weight, j->mg_added = true;
  }
  return 0;
}

/* One record into the merge, in pick order; unreadable records (deleted by retention
 * meanwhile, damaged) and records whose sample types differ from the selection's are
 * skipped. */
static int merge_record(merge_job *j, sym_reader *rd, const row_loc *row, pp_err *err) {
  pprof_merger *into = j->mg;
  int r;
  if (j->avg) {
    if (!j->series || row->row.series_id != j->series_id) {
      if ((r = flush_series(j, err)) < 0) return r;
      if ((r = pprof_merger_new(&j->series, err)) < 0) return r;
      j->series_id = row->row.series_id;
      j->series_labels = row->row.labels_json;
      j->series_weight = 0;
    }
    into = j->series;
  }
  __atomic_add_fetch(&j->s->records_read, 1, __ATOMIC_RELAXED);
  sym_record rec;
  pprof_profile *p = NULL;
  pp_err rerr = {0};
  size_t left; /* a v2 record's samples count against its share; no profile is built from it here */
  if ((r = sym_read_with(j->s, rd, row, &rec, &rerr)) == 0)
    r = rec.v2 ? sym_record_share(&rec, j->lim.max_memory, &left, &rerr) : store__decode_v1(&rec, &j->lim, &p, &rerr);
  if (r < 0) {
    sym_record_free(&rec);
    /* a record over its decoding share: the query is over its budget, not the record
     * unreadable (stored records passed the default limits when they were written) */
    if (j->cap && r == PP_ELIMIT) {
      *err = rerr;
      return PP_ELIMIT;
    }
    return 0;
  }
  size_t others = j->cap ? pprof_merger_bytes(j->mg) + (j->series ? pprof_merger_bytes(j->series) : 0) : 0;
  if (rec.v2) {
    r = idm_add(j->ids, &rec, j->cap ? cap_left(j, others) : 0, err);
  } else if ((r = idm_check_profile(j->ids, p, err)) == 0) {
    if (j->cap) pprof_merger_set_limit(into, cap_left(j, others - pprof_merger_bytes(into) + idm_bytes(j->ids)));
    r = pprof_merger_add(into, p, 1, err);
    j->mg_added |= into == j->mg;
  }
  pprof_free(p);
  sym_record_free(&rec);
  if (r == PP_EMISMATCH) return 0; /* a target that changed its sample types: skip that record */
  if (r == 0) {
    j->merged += row->weight;
    if (j->avg) j->series_weight += row->weight;
    /* latest: the series' newest here was read, so the other store's older one is settled; an
     * unreadable one leaves it to stand for the series (add_parts) */
    size_t k;
    if (j->latest && parts_find(j->parts, row->row.labels_json, &k)) j->parts->taken[k] = true;
  }
  return r;
}

/* Before a run of picks from one segment: reads the run's last record first, so its segment's
 * table is loaded (and cached) up to the newest symbol record the run needs. A record names the
 * newest symbol record of its segment when it was written, so records of one series written
 * between other targets' new symbols each name a newer one; read oldest first, each would load
 * the table again (store_sym.h: a table serves the records its chain covers). What the read
 * costs is one record; a failure is the merge's to meet when it reads that record. */
static void prime_tables(store *s, sym_reader *rd, const row_loc *locs, const size_t *pick, size_t n) {
  size_t last = 0;
  while (last + 1 < n && locs[pick[last + 1]].segment_id == locs[pick[0]].segment_id) last++;
  if (last == 0) return;
  sym_record rec;
  pp_err ignored = {0};
  if (sym_read_with(s, rd, &locs[pick[last]], &rec, &ignored) == 0) sym_record_free(&rec);
}

/* Merges the picked rows into mg by agg (resolved; latest: the picks are each series' newest);
 * with avg, picks must be grouped by series and each series is added as its own average. With
 * ret_direct (mg empty, and finished by the caller right after): when the sums on ids are all
 * of the merge (no avg, no PPR1 record) and of one segment that pprof_merger_finish would give
 * back as it is, *ret_direct = that profile and mg stays empty (idm_take): the merger's copy of
 * ~100k samples is a fifth of a big render.
 * One thread: a v2 record costs a read, an inflate and its samples' hashing (~20 us), and
 * handing records between threads cost about as much as it saved (measured with store-bench
 * merge: 14 ms with two reading threads, 10 ms without).
 * With a budget (0 = none), reading a record gets a quarter of it and the mergers and the
 * sums on ids share the rest. */
static int merge_picked(store *s, const row_loc *locs, const size_t *pick, size_t npick, pprof_merger *mg,
                        store_agg agg, part_index *parts, size_t budget, int64_t *ret_merged,
                        pprof_profile **ret_direct, pp_err *err) {
  bool avg = agg == STORE_AGG_AVG;
  merge_job mj = {.s = s, .mg = mg, .avg = avg, .latest = agg == STORE_AGG_LATEST, .parts = parts};
  pprof_limits_default(&mj.lim);
  if (budget) {
    mj.lim.max_memory = budget / 4;
    mj.cap = budget - mj.lim.max_memory;
    pprof_merger_set_limit(mg, mj.cap);
  }
  sym_reader rd = SYM_READER_INIT;
  int r = idm_new(&mj.ids, err);
  for (size_t i = 0; r == 0 && i < npick; i++) {
    const row_loc *row = &locs[pick[i]];
    if (i == 0 || locs[pick[i - 1]].segment_id != row->segment_id) prime_tables(s, &rd, locs, pick + i, npick - i);
    r = merge_record(&mj, &rd, row, err);
  }
  if (r == 0 && avg) r = flush_series(&mj, err);
  if (r == 0) r = add_parts(&mj, err);
  if (r == 0 && !avg) r = flush_ids(&mj, mg, ret_direct && !mj.mg_added ? ret_direct : NULL, err);
  sym_reader_close(&rd);
  pprof_merger_free(mj.series);
  idm_free(mj.ids);
  *ret_merged = mj.merged;
  return r;
}

int store__merge_locs(store *s, const row_loc *locs, const size_t *pick, size_t npick, pprof_merger *mg,
                      int64_t *ret_merged, pp_err *err) {
  return merge_picked(s, locs, pick, npick, mg, STORE_AGG_SUM, NULL, 0, ret_merged, NULL, err);
}

/* avg groups picks by series, each keeping its time order (qsort_r: queries run on several
 * threads at once) */
static int cmp_pick_series(const void *a, const void *b, void *rows) {
  const row_loc *v = rows;
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  int64_t sx = v[x].row.series_id, sy = v[y].row.series_id;
  if (sx != sy) return sx < sy ? -1 : 1;
  return x < y ? -1 : x > y;
}

int store_merged(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from,
                 int64_t to, store_agg agg, size_t max_records, pprof_profile **ret,
                 size_t *ret_count, pp_err *err) {
  return store_merged_within(s, m, nm, type, from, to, agg, max_records, 0, ret, ret_count, err);
}

int store_merged_within(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from,
                        int64_t to, store_agg agg, size_t max_records, size_t budget,
                        pprof_profile **ret, size_t *ret_count, pp_err *err) {
  return store_merged_info(s, m, nm, type, from, to, agg, max_records, budget, ret, ret_count, NULL, err);
}

/* The rows a merge by agg (resolved) takes, in the order it takes them (*ret, *ret_n): latest
 * each series' newest (with parts: unless a part's is newer; the part is then left to stand
 * for it), avg all of them grouped by series (each in time order), sum all.
 * grouped: group by series for sum and latest too. */
static int pick_rows(const row_loc *v, size_t n, store_agg agg, bool grouped, part_index *parts, size_t **ret,
                     size_t *ret_n, pp_err *err) {
  size_t *pick = malloc((n ? n : 1) * sizeof *pick), npick = 0;
  bool *newest = calloc(n ? n : 1, sizeof *newest);
  htab seen;
  if (!pick || !newest || htab_init(&seen, 64, 0) < 0) {
    free(newest);
    free(pick);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  /* rows are oldest first: from the newest, the first row seen of a series is its last */
  for (size_t i = n; i-- > 0;) {
    uint32_t idx;
    newest[i] = htab_intern(&seen, &v[i].row.series_id, sizeof v[i].row.series_id, &idx) == 1;
  }
  size_t nseries = seen.count;
  htab_free(&seen);
  for (size_t i = 0; i < n; i++) {
    if (agg == STORE_AGG_LATEST && !newest[i]) continue;
    size_t k;
    store_series_part *x = agg == STORE_AGG_LATEST ? parts_find(parts, v[i].row.labels_json, &k) : NULL;
    if (x && x->end_ns > v[i].row.end_ns) continue; /* the other store's is newer: it stands */
    pick[npick++] = i; /* (the part is settled when this row is read: merge_record) */
  }
  free(newest);
  /* avg: each series is averaged over its own records (series differ in how many they have),
   * then the averages are summed */
  if ((agg == STORE_AGG_AVG || grouped) && nseries > 1) qsort_r(pick, npick, sizeof *pick, cmp_pick_series, (void *)v);
  *ret = pick, *ret_n = npick;
  return 0;
}

/* The rows of a merge by agg (resolved). */
static int merge_rows(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                      store_agg agg, size_t max_records, row_loc **ret, size_t *ret_n, store_merge_info *ret_info,
                      pp_err *err) {
  sqlite3 *db;
  int r = store__open_reader(s, &db, err);
  if (r < 0) return r;
  r = select_rows(s, db, m, nm, type, from, to, max_records ? max_records : 10000,
                  agg != STORE_AGG_LATEST && !s->opts.no_rollups ? SEL_MERGE : SEL_RAW, ret, ret_n, ret_info, err);
  sqlite3_close(db);
  return r;
}

int store_merged_with(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                      store_agg agg, size_t max_records, size_t budget, store_series_part *parts, size_t nparts,
                      pprof_profile **ret, size_t *ret_count, store_merge_info *ret_info, pp_err *err) {
  row_loc *v = NULL;
  size_t n = 0;
  if (agg == STORE_AGG_DEFAULT) agg = store_default_agg(type, false);
  int r = merge_rows(s, m, nm, type, from, to, agg, max_records, &v, &n, ret_info, err);
  if (r < 0) return r;
  pprof_merger *mg = NULL;
  int64_t merged = 0;
  size_t *pick = NULL, npick = 0;
  part_index px, *pp = NULL;
  if (n == 0 && nparts == 0) {
    r = pp_err_set(err, PP_EUSAGE, "no profiles match the selection");
    goto out;
  }
  if (nparts) {
    if ((r = parts_index(&px, parts, nparts, err)) < 0) goto out;
    pp = &px;
  }
  if ((r = pprof_merger_new(&mg, err)) < 0 || (r = pick_rows(v, n, agg, false, pp, &pick, &npick, err)) < 0) goto out;
  pprof_profile *direct = NULL;
  r = merge_picked(s, v, pick, npick, mg, agg, pp, budget, &merged, &direct, err);
  if (r < 0) goto out;
  if (merged == 0) {
    pprof_free(direct);
    r = pp_err_set(err, PP_EUSAGE, "no readable profiles in the selection");
    goto out;
  }
  if (direct) {
    *ret = direct;
    __atomic_add_fetch(&s->merges_direct, 1, __ATOMIC_RELAXED);
  } else {
    r = pprof_merger_finish(mg, ret, err);
    mg = NULL;
  }
  if (r == 0 && ret_count) *ret_count = (size_t)merged;
out:
  if (pp) parts_index_free(pp);
  free(pick);
  pprof_merger_free(mg);
  store__rows_free(v, n);
  return r;
}

int store_merged_info(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                      store_agg agg, size_t max_records, size_t budget, pprof_profile **ret, size_t *ret_count,
                      store_merge_info *ret_info, pp_err *err) {
  return store_merged_with(s, m, nm, type, from, to, agg, max_records, budget, NULL, 0, ret, ret_count, ret_info, err);
}

void store_series_parts_free(store_series_part *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) free(v[i].labels), pprof_free(v[i].p);
  free(v);
}

int store_series_parts(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                       store_agg agg, size_t max_records, size_t budget, store_series_part **ret, size_t *ret_n,
                       store_merge_info *ret_info, pp_err *err) {
  *ret = NULL, *ret_n = 0;
  row_loc *v = NULL;
  size_t n = 0;
  if (agg == STORE_AGG_DEFAULT) agg = store_default_agg(type, false);
  int r = merge_rows(s, m, nm, type, from, to, agg, max_records, &v, &n, ret_info, err);
  if (r < 0) return r;
  size_t *pick = NULL, npick = 0, np = 0, used = 0;
  store_series_part *parts = NULL;
  if (n == 0) {
    r = pp_err_set(err, PP_EUSAGE, "no profiles match the selection");
    goto out;
  }
  if ((r = pick_rows(v, n, agg, true, NULL, &pick, &npick, err)) < 0) goto out;
  if (!(parts = calloc(npick, sizeof *parts))) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  /* a run of picks per series, each merged on its own within what the others left */
  for (size_t g = 0, e; r == 0 && g < npick; g = e) {
    for (e = g + 1; e < npick && v[pick[e]].row.series_id == v[pick[g]].row.series_id;) e++;
    pprof_merger *mg = NULL;
    pprof_profile *direct = NULL, *p = NULL;
    int64_t merged = 0;
    size_t left = budget ? (budget > used ? budget - used : 1) : 0;
    if ((r = pprof_merger_new(&mg, err)) < 0) break;
    r = merge_picked(s, v, pick + g, e - g, mg, STORE_AGG_SUM, NULL, left, &merged, &direct, err);
    if (r == 0 && direct) p = direct, direct = NULL;
    else if (r == 0 && merged) r = pprof_merger_finish(mg, &p, err), mg = NULL;
    pprof_merger_free(mg);
    if (r < 0 || !p) continue; /* (a series none of whose records could be read: none) */
    used += p->mem.reserved;
    if (budget && used > budget) {
      pprof_free(p);
      r = pp_err_set(err, PP_ELIMIT, "merge: the series' profiles need more than the memory limit of %zu bytes", budget);
      break;
    }
    const char *labels = v[pick[g]].row.labels_json;
    parts[np] = (store_series_part){strdup(labels ? labels : ""), p, merged, v[pick[e - 1]].row.end_ns};
    if (!parts[np++].labels) r = pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  if (r == 0 && np == 0) r = pp_err_set(err, PP_EUSAGE, "no readable profiles in the selection");
out:
  if (r < 0) store_series_parts_free(parts, np), parts = NULL, np = 0;
  free(pick);
  store__rows_free(v, n);
  *ret = parts, *ret_n = np;
  return r;
}

/* ---- segments (for uploads) ------------------------------------------------------------------- */

int store_list_segments(store *s, store_segment *out, size_t cap, size_t *ret_n, pp_err *err) {
  *ret_n = 0;
  sqlite3 *db;
  int r = store__open_reader(s, &db, err);
  if (r < 0) return r;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "SELECT id, tier, COALESCE(min_ns, 0), COALESCE(max_ns, 0) FROM segment ORDER BY id LIMIT ?1",
                         -1, &st, NULL) != SQLITE_OK) {
    r = store__sql_fail(db, err, "listing segments");
    sqlite3_close(db);
    return r;
  }
  sqlite3_bind_int64(st, 1, (int64_t)cap);
  size_t n = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < cap)
    out[n++] = (store_segment){sqlite3_column_int64(st, 0), (int)sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                               sqlite3_column_int64(st, 3), false};
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) r = store__sql_fail(db, err, "listing segments");
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (r < 0) return r;
  /* read after the rows: a segment whose row is listed is either being opened (opening_id,
   * set before its row was inserted) or active by now (active_id, set before opening_id was
   * cleared), so a segment still written to is never taken for closed */
  int64_t opening = __atomic_load_n(&s->opening_id, __ATOMIC_SEQ_CST);
  int64_t a0 = __atomic_load_n(&s->active_id[0], __ATOMIC_SEQ_CST), a1 = __atomic_load_n(&s->active_id[1], __ATOMIC_SEQ_CST);
  for (size_t i = 0; i < n; i++) {
    int64_t id = out[i].id;
    out[i].closed = id != opening && id != a0 && id != a1;
  }
  *ret_n = n;
  return 0;
}

char *store_segment_path(store *s, int64_t id) {
  return seg__path(s->segdir, id);
}
