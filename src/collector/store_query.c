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

#include "store_int.h"

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

/* Series ids whose labels satisfy every matcher; with their labels JSON. */
typedef struct series_sel {
  int64_t *ids;
  char **labels;
  size_t n;
} series_sel;

static void sel_free(series_sel *s) {
  for (size_t i = 0; i < s->n; i++) free(s->labels[i]);
  free(s->ids);
  free(s->labels);
}

static int select_series(sqlite3 *db, const store_matcher *m, size_t nm, series_sel *out, pp_err *err) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "SELECT id, labels FROM series ORDER BY id", -1, &st, NULL) != SQLITE_OK)
    return pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
  size_t cap = 0;
  int r = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *lj = (const char *)sqlite3_column_text(st, 1);
    bool ok = true;
    if (nm) {
      json_t *o = json_loads(lj, 0, NULL);
      for (size_t i = 0; i < nm && ok; i++) {
        const char *v = json_string_value(json_object_get(o, m[i].name));
        ok = v ? !strcmp(v, m[i].value) : m[i].value[0] == '\0'; /* "" matches an absent label */
      }
      json_decref(o);
    }
    if (!ok) continue;
    if (out->n == cap) {
      cap = cap ? cap * 2 : 64;
      int64_t *ni = realloc(out->ids, cap * sizeof *ni);
      char **nl = ni ? realloc(out->labels, cap * sizeof *nl) : NULL;
      if (ni) out->ids = ni;
      if (!ni || !nl) {
        r = pp_err_set(err, PP_ENOMEM, "out of memory");
        break;
      }
      out->labels = nl;
    }
    out->ids[out->n] = sqlite3_column_int64(st, 0);
    out->labels[out->n] = strdup(lj);
    out->n++;
  }
  sqlite3_finalize(st);
  if (r < 0) sel_free(out);
  return r;
}

static char *dup_col(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return strdup(t ? (const char *)t : "");
}

int store_list_series(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from,
                      int64_t to, store_series_info **ret, size_t *ret_n, pp_err *err) {
  sqlite3 *db;
  int r = store__open_reader(s, &db, err);
  if (r < 0) return r;
  series_sel sel;
  if ((r = select_series(db, m, nm, &sel, err)) < 0) {
    sqlite3_close(db);
    return r;
  }
  sqlite3_stmt *st;
  const char *sql =
      "SELECT type, MIN(start_ns), MAX(end_ns), COUNT(*), MAX(sample_types) FROM profile "
      "WHERE series_id=?1 AND (?2 IS NULL OR type=?2) AND end_ns>=?3 AND end_ns<=?4 GROUP BY type ORDER BY type";
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    r = pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
    goto out;
  }
  size_t n = 0, cap = 16;
  store_series_info *v = calloc(cap, sizeof *v);
  for (size_t i = 0; v && i < sel.n; i++) {
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, sel.ids[i]);
    if (type) sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, from);
    sqlite3_bind_int64(st, 4, to ? to : INT64_MAX);
    while (sqlite3_step(st) == SQLITE_ROW) {
      if (n == cap) {
        store_series_info *nv = realloc(v, (cap *= 2) * sizeof *nv);
        if (!nv) break;
        v = nv;
      }
      store_series_info *e = &v[n++];
      e->series_id = sel.ids[i];
      e->labels_json = strdup(sel.labels[i]);
      e->type = dup_col(st, 0);
      e->first_ns = sqlite3_column_int64(st, 1);
      e->last_ns = sqlite3_column_int64(st, 2);
      e->count = sqlite3_column_int64(st, 3);
      e->sample_types = dup_col(st, 4);
    }
  }
  sqlite3_finalize(st);
  if (!v) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  *ret = v;
  *ret_n = n;
out:
  sel_free(&sel);
  sqlite3_close(db);
  return r;
}

void store_series_free(store_series_info *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].labels_json);
    free(v[i].type);
    free(v[i].sample_types);
  }
  free(v);
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
    e->row.size = (uint64_t)sqlite3_column_int64(st, 4);
    e->row.sample_types = dup_col(st, 5);
    e->row.totals = dup_col(st, 6);
    e->segment_id = sqlite3_column_int64(st, 7);
    e->data_off = sqlite3_column_int64(st, 8);
    e->data_len = e->row.size;
    e->rec_off = sqlite3_column_int64(st, 9);
    e->crc = sqlite3_column_int64(st, 10);
    e->meta_len = e->data_off - e->rec_off - REC_HDR;
    e->weight = 1;
  }
  return true;
}

/* Statements of a selection: raw rows by end time, and (rollups mode) the rollups wholly
 * inside the range and the raw count of one window. */
typedef struct sel_stmts {
  sqlite3_stmt *raw, *rollups, *count;
} sel_stmts;

static void raw_range(sel_stmts *q, int64_t sid, const char *type, int64_t a, int64_t b, size_t limit) {
  sqlite3_reset(q->raw);
  sqlite3_bind_int64(q->raw, 1, sid);
  sqlite3_bind_text(q->raw, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q->raw, 3, a);
  sqlite3_bind_int64(q->raw, 4, b);
  sqlite3_bind_int64(q->raw, 5, (int64_t)limit);
}

/* One series in rollups mode: each rollup of a window wholly inside [from, to] that stands for
 * exactly the profiles the index holds for its window replaces them; the gaps between those
 * windows are read as raw profiles. So a week reads ~1,000 rollups per series, not 60,000
 * profiles, and the record limit reaches that much further back. */
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
    if (w0 < cursor) continue; /* overlaps what is read already (cannot happen with aligned windows) */
    sqlite3_reset(q->count);
    sqlite3_bind_int64(q->count, 1, sid);
    sqlite3_bind_text(q->count, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q->count, 3, w0);
    sqlite3_bind_int64(q->count, 4, w1);
    int64_t have = sqlite3_step(q->count) == SQLITE_ROW ? sqlite3_column_int64(q->count, 0) : -1;
    if (have != count || count < 2) continue; /* partly deleted, or a late profile: read it raw */
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
    e->segment_id = sqlite3_column_int64(q->rollups, 4);
    e->data_off = sqlite3_column_int64(q->rollups, 5);
    e->data_len = sqlite3_column_int64(q->rollups, 6);
    e->rec_off = sqlite3_column_int64(q->rollups, 7);
    e->crc = sqlite3_column_int64(q->rollups, 8);
    e->meta_len = e->data_off - e->rec_off - REC_HDR;
    e->weight = count;
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
                       int64_t to, size_t limit, bool use_rollups, row_loc **ret, size_t *ret_n, pp_err *err) {
  series_sel sel;
  int r = select_series(db, m, nm, &sel, err);
  if (r < 0) return r;
  if (!limit) limit = 100000;
  if (!to) to = INT64_MAX;
  sel_stmts q = {0};
  const char *raw = "SELECT " STORE_RAW_COLS " FROM profile WHERE series_id=?1 AND type=?2 AND end_ns>=?3 AND end_ns<=?4 "
                    "ORDER BY end_ns DESC LIMIT ?5";
  const char *rollups = "SELECT id, start_ns, end_ns, count, segment_id, data_off, data_len, rec_off, crc FROM rollup "
                        "WHERE series_id=?1 AND type=?2 AND start_ns>=?3 AND end_ns-1<=?4 ORDER BY start_ns";
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
  for (size_t i = 0; ok && i < sel.n; i++) {
    if (use_rollups) {
      ok = series_with_rollups(&q, sel.ids[i], sel.labels[i], type, from, to, limit, &v, &n, &cap);
    } else {
      raw_range(&q, sel.ids[i], type, from, to, limit);
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
  /* across series, keep only the newest `limit` */
  if (n > limit) {
    size_t drop = n - limit;
    for (size_t i = 0; i < drop; i++) row_strings_free(&v[i]);
    memmove(v, v + drop, limit * sizeof *v);
    n = limit;
  }
  *ret = v;
  *ret_n = n;
  return 0;
}

int store_list_rows(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from,
                    int64_t to, size_t limit, store_row **ret, size_t *ret_n, pp_err *err) {
  sqlite3 *db;
  int r = store__open_reader(s, &db, err);
  if (r < 0) return r;
  row_loc *v;
  size_t n;
  r = select_rows(s, db, m, nm, type, from, to, limit, false, &v, &n, err);
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

void store_rows_free(store_row *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].labels_json);
    free(v[i].type);
    free(v[i].sample_types);
    free(v[i].totals);
  }
  free(v);
}

/* Reads one record's data and checks the CRC, which covers metadata and data. */
int store__read_record(store *s, const row_loc *e, uint8_t **ret, size_t *ret_len, pp_err *err) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%016" PRIx64 ".seg", s->segdir, (uint64_t)e->segment_id);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return pp_err_set(err, PP_EIO, "record %lld: %s", (long long)e->row.id, strerror(errno));
  size_t len = (size_t)(e->meta_len + e->data_len);
  uint8_t *buf = malloc(len ? len : 1);
  ssize_t got = buf ? pread(fd, buf, len, (off_t)(e->rec_off + REC_HDR)) : -1;
  close(fd);
  if (got != (ssize_t)len || (uint32_t)crc32(0, buf, (uInt)len) != (uint32_t)e->crc) {
    free(buf);
    return pp_err_set(err, PP_EIO, "record %lld: bytes missing or CRC mismatch", (long long)e->row.id);
  }
  memmove(buf, buf + e->meta_len, (size_t)e->data_len);
  *ret = buf;
  *ret_len = (size_t)e->data_len;
  return 0;
}

int store_read(store *s, int64_t id, uint8_t **ret, size_t *ret_len, pp_err *err) {
  sqlite3 *db;
  int r = store__open_reader(s, &db, err);
  if (r < 0) return r;
  sqlite3_stmt *st;
  row_loc e;
  memset(&e, 0, sizeof e);
  r = PP_EUSAGE;
  if (sqlite3_prepare_v2(db, "SELECT segment_id, data_off, data_len, rec_off, crc FROM profile WHERE id=?", -1,
                         &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
      e.row.id = id;
      e.segment_id = sqlite3_column_int64(st, 0);
      e.data_off = sqlite3_column_int64(st, 1);
      e.data_len = sqlite3_column_int64(st, 2);
      e.rec_off = sqlite3_column_int64(st, 3);
      e.crc = sqlite3_column_int64(st, 4);
      e.meta_len = e.data_off - e.rec_off - REC_HDR;
      r = 0;
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  if (r < 0) return pp_err_set(err, PP_EUSAGE, "no profile with id %lld", (long long)id);
  return store__read_record(s, &e, ret, ret_len, err);
}

store_agg store_default_agg(const char *type, bool delta) {
  if (!strcmp(type, "cpu") || delta) return STORE_AGG_SUM;
  if (!strcmp(type, "heap") || !strcmp(type, "goroutine") || !strcmp(type, "threadcreate")) return STORE_AGG_AVG;
  return STORE_AGG_SUM; /* allocs, block, mutex snapshots are cumulative counters */
}

typedef struct merge_job {
  store *s;
  const row_loc *rows;
  const size_t *pick;
  pprof_merger *mg;
  int64_t merged;
  /* avg: picks come grouped by series; each series is merged on its own into `series`, then
   * divided by its own record count and added to mg */
  bool avg;
  pprof_merger *series;
  int64_t series_id, series_weight;
} merge_job;

static int fetch_record(void *ud, size_t i, uint8_t **buf, size_t *len, pp_err *ferr) {
  merge_job *j = ud;
  __atomic_add_fetch(&j->s->records_read, 1, __ATOMIC_RELAXED);
  return store__read_record(j->s, &j->rows[j->pick[i]], buf, len, ferr);
}

/* avg: the finished series' average goes into the total. */
static int flush_series(merge_job *j, pp_err *err) {
  if (!j->series) return 0;
  pprof_profile *p = NULL;
  int r = j->series_weight ? pprof_merger_finish(j->series, &p, err) : 0;
  if (!j->series_weight) pprof_merger_free(j->series);
  j->series = NULL;
  if (r < 0 || !p) return r;
  if (j->series_weight > 1) pprof_scale(p, 1.0 / (double)j->series_weight);
  r = pprof_merger_add(j->mg, p, 1, err);
  pprof_free(p);
  return r == PP_EMISMATCH ? 0 : r;
}

static int merge_record(void *ud, size_t i, const pprof_profile *p, const pp_err *input_err, pp_err *err) {
  merge_job *j = ud;
  (void)input_err;
  const row_loc *row = &j->rows[j->pick[i]];
  pprof_merger *into = j->mg;
  if (j->avg) {
    if (!j->series || row->row.series_id != j->series_id) {
      int r = flush_series(j, err);
      if (r < 0) return r;
      if ((r = pprof_merger_new(&j->series, err)) < 0) return r;
      j->series_id = row->row.series_id;
      j->series_weight = 0;
    }
    into = j->series;
  }
  if (!p) return 0; /* deleted by retention meanwhile, or unreadable: skipped */
  int r = pprof_merger_add(into, p, 1, err);
  if (r == PP_EMISMATCH) return 0; /* a target that changed its sample types: skip that record */
  if (r == 0) {
    j->merged += row->weight;
    if (j->avg) j->series_weight += row->weight;
  }
  return r;
}

/* Merges the picked rows into mg; with avg, picks must be grouped by series and each series
 * is added as its own average. */
static int merge_picked(store *s, const row_loc *locs, const size_t *pick, size_t npick, pprof_merger *mg, bool avg,
                        int64_t *ret_merged, pp_err *err) {
  merge_job mj = {.s = s, .rows = locs, .pick = pick, .mg = mg, .avg = avg};
  /* records are read and decoded on worker threads; merging stays on this one, in order */
  int r = pprof_decode_pipeline(npick, 0, 0, NULL, fetch_record, merge_record, &mj, err);
  if (r == 0 && avg) r = flush_series(&mj, err);
  pprof_merger_free(mj.series);
  *ret_merged = mj.merged;
  return r;
}

int store__merge_locs(store *s, const row_loc *locs, const size_t *pick, size_t npick, pprof_merger *mg,
                      int64_t *ret_merged, pp_err *err) {
  return merge_picked(s, locs, pick, npick, mg, false, ret_merged, err);
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
  sqlite3 *db;
  int r = store__open_reader(s, &db, err);
  if (r < 0) return r;
  row_loc *v = NULL;
  size_t n = 0;
  if (agg == STORE_AGG_DEFAULT) agg = store_default_agg(type, false);
  r = select_rows(s, db, m, nm, type, from, to, max_records ? max_records : 10000,
                  agg != STORE_AGG_LATEST && !s->opts.no_rollups, &v, &n, err);
  sqlite3_close(db);
  if (r < 0) return r;
  pprof_merger *mg = NULL;
  int64_t merged = 0;
  size_t nseries = 0;
  if (n == 0) {
    r = pp_err_set(err, PP_EUSAGE, "no profiles match the selection");
    goto out;
  }
  if ((r = pprof_merger_new(&mg, err)) < 0) goto out;
  /* rows are oldest first; for latest, take each series' last row */
  size_t *pick = malloc(n * sizeof *pick), npick = 0;
  if (!pick) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  /* one pass from the newest: the first row seen of a series is its last; the count of
   * distinct series divides for avg */
  htab seen;
  bool *newest = calloc(n, sizeof *newest);
  if (!newest || htab_init(&seen, 64, 0) < 0) {
    free(newest);
    free(pick);
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = n; i-- > 0;) {
    uint32_t idx;
    newest[i] = htab_intern(&seen, &v[i].row.series_id, sizeof v[i].row.series_id, &idx) == 1;
  }
  nseries = seen.count;
  htab_free(&seen);
  for (size_t i = 0; i < n; i++)
    if (agg != STORE_AGG_LATEST || newest[i]) pick[npick++] = i;
  free(newest);
  /* avg: each series is averaged over its own records (series differ in how many they have),
   * then the averages are summed */
  bool avg = agg == STORE_AGG_AVG;
  if (avg && nseries > 1) qsort_r(pick, npick, sizeof *pick, cmp_pick_series, v);
  r = merge_picked(s, v, pick, npick, mg, avg, &merged, err);
  free(pick);
  if (r < 0) goto out;
  if (merged == 0) {
    r = pp_err_set(err, PP_EUSAGE, "no readable profiles in the selection");
    goto out;
  }
  r = pprof_merger_finish(mg, ret, err);
  mg = NULL;
  if (r == 0 && ret_count) *ret_count = (size_t)merged;
out:
  pprof_merger_free(mg);
  store__rows_free(v, n);
  return r;
}
