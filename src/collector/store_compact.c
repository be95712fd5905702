/* Compaction into rollups (see store.h). The compactor reads the way queries do (its own
 * read-only connection, pread of segment bytes) and never writes: finished rollups go through
 * a short queue to the writer thread, which stays the only one touching segments and the
 * index's write connection. A rollup is only built when every profile of its window merged,
 * so a rollup always stands for exactly the rows it counts. Hours are walked behind the
 * 10-minute windows (an hour once all its windows are walked) and merged from the 10-minute
 * rollups already stored that stand for exactly their window's profiles, plus the profiles of
 * the other windows: merging adds values per stack, so that equals merging every profile. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "store_int.h"

typedef int (*rollup_sink)(store *s, rollup_item *it, pp_err *err); /* takes ownership of it */

static int64_t window_of(int64_t t, int64_t width) {
  int64_t w = t / width;
  if (t < 0 && w * width != t) w--;
  return w * width;
}

static void item_free(rollup_item *it) {
  if (!it) return;
  free(it->type);
  free(it->labels_json);
  free(it->sample_types);
  free(it->totals);
  free(it->data);
  pprof_free(it->profile);
  free(it);
}

static bool stop_asked(store *s) {
  pthread_mutex_lock(&s->q_mu);
  bool stop = s->q_stop;
  pthread_mutex_unlock(&s->q_mu);
  return stop;
}

/* An hour: the 10-minute rollups of it that stand for exactly the profiles v[0..n) holds for
 * their window replace those profiles in pick (appended to *pv as records of their weight).
 * Returns the number of picks, or -1 when out of memory. */
static ssize_t pick_hour(sqlite3 *db, int64_t sid, const char *type, int64_t w0, row_loc **pv, size_t n, size_t *pcap,
                         size_t **ppick) {
  row_loc *v = *pv;
  bool *skip = calloc(n + 1, sizeof *skip);
  size_t np = n;
  sqlite3_stmt *st = NULL;
  if (!skip) return -1;
  if (sqlite3_prepare_v2(db,
                         "SELECT id, start_ns, end_ns, count, " STORE_LOC_COLS " FROM rollup WHERE series_id=?1 AND "
                         "type=?2 AND start_ns>=?3 AND end_ns<=?4 AND end_ns-start_ns=?5 ORDER BY start_ns",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, w0);
    sqlite3_bind_int64(st, 4, w0 + STORE_ROLLUP_HOUR_NS);
    sqlite3_bind_int64(st, 5, STORE_ROLLUP_NS);
    while (sqlite3_step(st) == SQLITE_ROW) {
      int64_t a = sqlite3_column_int64(st, 1), b = sqlite3_column_int64(st, 2), count = sqlite3_column_int64(st, 3);
      int64_t have = 0;
      for (size_t i = 0; i < n; i++) have += v[i].row.end_ns >= a && v[i].row.end_ns < b;
      if (have != count) continue; /* not what the rollup stands for: its profiles are read */
      if (np == *pcap) {
        row_loc *nv = realloc(v, (*pcap *= 2) * sizeof *nv);
        if (!nv) break;
        *pv = v = nv;
      }
      for (size_t i = 0; i < n; i++)
        if (v[i].row.end_ns >= a && v[i].row.end_ns < b) skip[i] = true;
      row_loc *e = &v[np++];
      memset(e, 0, sizeof *e);
      e->row.id = -sqlite3_column_int64(st, 0);
      e->row.series_id = sid;
      store__take_loc(st, 4, e);
      e->weight = count;
    }
    sqlite3_finalize(st);
  }
  size_t *pick = realloc(*ppick, (np + 1) * sizeof *pick), k = 0;
  if (!pick) {
    free(skip);
    return -1;
  }
  *ppick = pick;
  for (size_t i = 0; i < np; i++)
    if (i >= n || !skip[i]) pick[k++] = i;
  free(skip);
  return (ssize_t)k;
}

/* Merges one (series, type, window of `width`) into a rollup item, or leaves *ret NULL when the
 * window no longer holds `count` profiles or not all of them merged. */
static int build_rollup(store *s, sqlite3 *db, int64_t sid, const char *type, int64_t w0, int64_t width,
                        int64_t count, rollup_item **ret, pp_err *err) {
  *ret = NULL;
  sqlite3_stmt *st;
  const char *sql = "SELECT " STORE_RAW_COLS " FROM profile WHERE series_id=?1 AND type=?2 AND end_ns>=?3 AND end_ns<?4 "
                    "LIMIT ?5";
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
  sqlite3_bind_int64(st, 1, sid);
  sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, w0);
  sqlite3_bind_int64(st, 4, w0 + width);
  sqlite3_bind_int64(st, 5, count + 1); /* one more than counted shows the window changed */
  size_t n = 0, cap = (size_t)count + 1;
  row_loc *v = calloc(cap, sizeof *v);
  size_t *pick = calloc(cap, sizeof *pick);
  int r = 0;
  if (!v || !pick || !store__take_rows(st, sid, "", &v, &n, &cap)) r = pp_err_set(err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < n && pick; i++) pick[i] = i;
  sqlite3_finalize(st);
  size_t npick = n;
  if (r == 0 && n == (size_t)count && width == STORE_ROLLUP_HOUR_NS) {
    ssize_t k = pick_hour(db, sid, type, w0, &v, n, &cap, &pick);
    if (k < 0) r = pp_err_set(err, PP_ENOMEM, "out of memory");
    else npick = (size_t)k;
  }
  pprof_merger *mg = NULL;
  pprof_profile *p = NULL;
  rollup_item *it = NULL;
  int64_t merged = 0;
  if (r < 0 || n != (size_t)count) goto out;
  if ((r = pprof_merger_new(&mg, err)) < 0) goto out;
  if ((r = store__merge_locs(s, v, pick, npick, mg, &merged, err)) < 0 || merged != count) goto out;
  r = pprof_merger_finish(mg, &p, err);
  mg = NULL;
  if (r < 0) goto out;
  char types[1024], totals[1024];
  store__sample_summary(p, types, sizeof types, totals, sizeof totals);
  it = calloc(1, sizeof *it);
  if (!it || !(it->type = strdup(type)) || !(it->sample_types = strdup(types)) || !(it->totals = strdup(totals))) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  /* a v2 store writes the profile as ids: no gzip round trip (opts, not s->symw: the writer
   * swaps its symbol writers between tiers while this thread runs) */
  if (s->opts.format != 1) {
    it->profile = p;
    p = NULL;
  } else if ((r = pprof_encode(p, 1, &it->data, &it->len, err)) < 0)
    goto out;
  it->series_id = sid;
  it->start_ns = w0;
  it->end_ns = w0 + width;
  it->count = count;
  if (sqlite3_prepare_v2(db, "SELECT labels FROM series WHERE id=?", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, sid);
    if (sqlite3_step(st) == SQLITE_ROW) it->labels_json = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
  }
  if (!it->labels_json) {
    r = pp_err_set(err, PP_EIO, "series %lld has no labels", (long long)sid);
    goto out;
  }
  *ret = it;
  it = NULL;
out:
  item_free(it);
  pprof_free(p);
  pprof_merger_free(mg);
  store__rows_free(v, n); /* the rollups pick_hour appended own no strings */
  free(pick);
  return r;
}

typedef struct group {
  int64_t series_id, count;
  char *type;
} group;

/* Rolls up every (series, type) of window w0 (of width) with no rollup yet and two or more
 * profiles, or with tiers on, for an hour, one or more: after tiered retention, an hour's
 * rollup is all that is left of a sparse type's profiles. */
static int compact_window(store *s, sqlite3 *db, int64_t w0, int64_t width, rollup_sink sink, size_t *written,
                          pp_err *err) {
  sqlite3_stmt *st;
  const char *sql =
      /* the window's rows are found through the segments whose time range overlaps it (by
       * segment_id), so appends pay for no index on end time */
      "SELECT p.series_id, p.type, COUNT(*) FROM profile p WHERE p.segment_id IN "
      "(SELECT id FROM segment WHERE max_ns>=?1 AND min_ns<?2) AND p.end_ns>=?1 AND p.end_ns<?2 "
      "GROUP BY p.series_id, p.type HAVING COUNT(*)>=?3 AND NOT EXISTS (SELECT 1 FROM rollup r "
      "WHERE r.series_id=p.series_id AND r.type=p.type AND r.start_ns=?1 AND r.end_ns=?2)";
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return pp_err_set(err, PP_EIO, "index: %s", sqlite3_errmsg(db));
  sqlite3_bind_int64(st, 1, w0);
  sqlite3_bind_int64(st, 2, w0 + width);
  sqlite3_bind_int64(st, 3, width == STORE_ROLLUP_HOUR_NS && store__tiers_on(&s->opts) ? 1 : 2);
  group *g = NULL;
  size_t n = 0, cap = 0;
  int r = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (n == cap) {
      group *ng = realloc(g, (cap = cap ? cap * 2 : 64) * sizeof *ng);
      if (!ng) {
        r = pp_err_set(err, PP_ENOMEM, "out of memory");
        break;
      }
      g = ng;
    }
    g[n].series_id = sqlite3_column_int64(st, 0);
    g[n].type = strdup((const char *)sqlite3_column_text(st, 1));
    g[n].count = sqlite3_column_int64(st, 2);
    if (g[n].type) n++;
  }
  /* the statement is done before the merges: a reader holding its snapshot for minutes would
   * keep the WAL from being checkpointed */
  sqlite3_finalize(st);
  for (size_t i = 0; i < n && r == 0; i++) {
    if (stop_asked(s)) break;
    rollup_item *it;
    pp_err e2 = {0};
    if (build_rollup(s, db, g[i].series_id, g[i].type, w0, width, g[i].count, &it, &e2) < 0 || !it) continue;
    if ((r = sink(s, it, err)) == 0 && written) (*written)++;
  }
  for (size_t i = 0; i < n; i++) free(g[i].type);
  free(g);
  return r;
}

/* The first window at or after t that a segment's time range reaches, or -1: the segments'
 * ranges bound where records are, so empty stretches are skipped without a row scan (a
 * window inside a range may still be empty; the walk then moves on by one window). */
static int64_t next_window(sqlite3 *db, int64_t t, int64_t width) {
  sqlite3_stmt *st;
  int64_t w = -1;
  /* raw segments only: the rollup tier's hold nothing to compact */
  if (sqlite3_prepare_v2(db, "SELECT MIN(MAX(min_ns, ?1)) FROM segment WHERE max_ns>=?1 AND tier=0", -1, &st, NULL) !=
      SQLITE_OK)
    return -1;
  sqlite3_bind_int64(st, 1, t);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    w = window_of(sqlite3_column_int64(st, 0), width);
  sqlite3_finalize(st);
  return w;
}

static void set_cursor(store *s, int64_t width, int64_t c) {
  pthread_mutex_lock(&s->stats_mu);
  if (width == STORE_ROLLUP_HOUR_NS) s->hour_cursor_ns = s->stats.hours_compacted_until_ns = c;
  else s->cursor_ns = s->stats.compacted_until_ns = c;
  pthread_mutex_unlock(&s->stats_mu);
}

/* Walks the closed windows of width from its cursor on; hours no further than the 10-minute
 * cursor, so an hour finds the 10-minute rollups of its windows (store_compact writes them at
 * once; the compactor thread's may still wait in the queue: that hour then reads those
 * windows' profiles, same answer). */
static int compact_level(store *s, sqlite3 *db, int64_t width, int64_t now, rollup_sink sink, size_t *written,
                         pp_err *err) {
  int64_t c = width == STORE_ROLLUP_HOUR_NS ? s->hour_cursor_ns : s->cursor_ns;
  if (c == 0 && (c = next_window(db, INT64_MIN, width)) < 0) return 0;
  int64_t limit = width == STORE_ROLLUP_HOUR_NS ? s->cursor_ns : INT64_MAX;
  int r = 0;
  while (r == 0 && c + width + ROLLUP_GRACE_NS <= now && c + width <= limit && !stop_asked(s)) {
    if ((r = compact_window(s, db, c, width, sink, written, err)) < 0) break;
    int64_t nw = next_window(db, c + width, width);
    c = nw >= 0 ? nw : c + width;
    set_cursor(s, width, c);
  }
  set_cursor(s, width, c);
  return r;
}

static int compact_closed(store *s, sqlite3 *db, int64_t now, rollup_sink sink, size_t *written, pp_err *err) {
  int r = compact_level(s, db, STORE_ROLLUP_NS, now, sink, written, err);
  return r < 0 ? r : compact_level(s, db, STORE_ROLLUP_HOUR_NS, now, sink, written, err);
}

static int write_now(store *s, rollup_item *it, pp_err *err) {
  bool enospc;
  int r = store__write_rollup(s, it, &enospc, err);
  item_free(it);
  return r;
}

int store_compact(store *s, int64_t now, pp_err *err) {
  sqlite3 *db;
  int r = store__open_reader(s, &db, err);
  if (r < 0) return r;
  size_t written = 0;
  r = compact_closed(s, db, now, write_now, &written, err);
  sqlite3_close(db);
  return r < 0 ? r : (int)written;
}

static int enqueue(store *s, rollup_item *it, pp_err *err) {
  pthread_mutex_lock(&s->q_mu);
  while (s->q_len >= ROLLUP_QUEUE_MAX && !s->q_stop) pthread_cond_wait(&s->q_cv, &s->q_mu);
  if (s->q_stop) {
    pthread_mutex_unlock(&s->q_mu);
    item_free(it);
    return pp_err_set(err, PP_EUSAGE, "stopping");
  }
  if (s->q_tail) s->q_tail->next = it;
  else s->q_head = it;
  s->q_tail = it;
  s->q_len++;
  pthread_mutex_unlock(&s->q_mu);
  return 0;
}

static void *compactor_main(void *arg) {
  store *s = arg;
  sqlite3 *db = NULL;
  pthread_mutex_lock(&s->q_mu);
  while (!s->q_stop) {
    pthread_mutex_unlock(&s->q_mu);
    pp_err err = {0};
    if (db || store__open_reader(s, &db, &err) == 0) compact_closed(s, db, pp_clock_real_ns(), enqueue, NULL, &err);
    pthread_mutex_lock(&s->q_mu);
    if (s->q_stop) break;
    /* windows close every STORE_ROLLUP_NS; looking every 10 s keeps the lag small */
    struct timespec until = pp_clock_real_deadline((int64_t)10 * 1000000000);
    pthread_cond_timedwait(&s->q_cv, &s->q_mu, &until);
  }
  pthread_mutex_unlock(&s->q_mu);
  sqlite3_close(db);
  return NULL;
}

int store_start_compactor(store *s, pp_err *err) {
  return store__thread_start(s, &s->compactor, &s->compactor_running, &s->q_stop, compactor_main, "compactor", err);
}

void store__stop_compactor(store *s) {
  store__thread_stop(&s->compactor, &s->compactor_running, &s->q_stop, &s->q_mu, &s->q_cv);
  while (s->q_head) {
    rollup_item *it = s->q_head;
    s->q_head = it->next;
    item_free(it);
  }
  s->q_tail = NULL;
  s->q_len = 0;
}

int store_maintain(store *s, pp_err *err) {
  int done = 0;
  store__roll_if_old(s);
  for (;;) {
    pthread_mutex_lock(&s->q_mu);
    rollup_item *it = s->q_head;
    if (it) {
      s->q_head = it->next;
      if (!s->q_head) s->q_tail = NULL;
      s->q_len--;
      pthread_cond_broadcast(&s->q_cv);
    }
    pthread_mutex_unlock(&s->q_mu);
    if (!it) break;
    bool enospc;
    int r = store__write_rollup(s, it, &enospc, err);
    item_free(it);
    if (r < 0) return r; /* the rest wait for the next tick */
    done++;
  }
  return done;
}
