/* What store_open checks and mends (store.h): the schema and its upgrades, CRCs of every
 * indexed record, rows that point at missing bytes, unindexed tails, orphan files, and an
 * index rebuilt from the segments alone. All of it runs in one transaction per step, so a
 * crash during repair leaves the index as it was. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"
#include "store_sym.h"

static const char PRAGMAS[] = "PRAGMA auto_vacuum=INCREMENTAL;"
                              "PRAGMA journal_mode=WAL;"
                              /* NORMAL: SQLite syncs at checkpoints, the syncer (store_sync.c) at
                               * its rounds; FULL would sync at every commit, i.e. every profile */
                              "PRAGMA synchronous=NORMAL;"
                              /* keep the WAL small: it counts against the disk budget */
                              "PRAGMA wal_autocheckpoint=256;"
                              "PRAGMA journal_size_limit=1048576;";

static const char TABLES[] =
    "CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, labels TEXT NOT NULL UNIQUE,"
    " last_seg INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS series_by_last_seg ON series(last_seg);"
    "CREATE TABLE IF NOT EXISTS series_label(name TEXT NOT NULL, value TEXT NOT NULL, series_id INTEGER NOT NULL,"
    " PRIMARY KEY(name, value, series_id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS series_label_by_series ON series_label(series_id, name);"
    "CREATE TABLE IF NOT EXISTS series_type(series_id INTEGER NOT NULL, type TEXT NOT NULL, count INTEGER NOT NULL,"
    " first_ns INTEGER NOT NULL, first_end_ns INTEGER NOT NULL, last_ns INTEGER NOT NULL, sample_types TEXT NOT NULL,"
    " PRIMARY KEY(series_id, type)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS segment(id INTEGER PRIMARY KEY, min_ns INTEGER, max_ns INTEGER,"
    " tier INTEGER NOT NULL DEFAULT 0);"
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
    " sample_types TEXT NOT NULL DEFAULT '', totals TEXT NOT NULL DEFAULT '',"
    " UNIQUE(series_id, type, start_ns, end_ns));"
    "CREATE INDEX IF NOT EXISTS rollup_by_segment ON rollup(segment_id);"
    "CREATE TABLE IF NOT EXISTS store_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);";

/* Version 2 had no tiers: its segments become tier 0 (its rollups stay where they are and age
 * out with the raw profiles around them), and its rollup table (one rollup per window start,
 * no summary) is copied into the new one, which also keeps hours. Runs before TABLES. */
static const char V2_SEGMENT[] = "ALTER TABLE segment ADD COLUMN tier INTEGER NOT NULL DEFAULT 0;";
static const char V2_ROLLUP_ASIDE[] = "DROP INDEX IF EXISTS rollup_by_segment; ALTER TABLE rollup RENAME TO rollup_v2;";
static const char V2_ROLLUP_COPY[] =
    "INSERT INTO rollup(id, series_id, type, start_ns, end_ns, count, segment_id, rec_off, rec_len, data_off,"
    " data_len, crc) SELECT id, series_id, type, start_ns, end_ns, count, segment_id, rec_off, rec_len, data_off,"
    " data_len, crc FROM rollup_v2; DROP TABLE rollup_v2;";

/* Version 1 (issues 3-11) had series(id, labels) only: the labels, each series' last segment
 * and the per-type summaries are derived from the rows already there. */
static const char FROM_V1[] =
    "INSERT OR IGNORE INTO series_label(name, value, series_id)"
    " SELECT j.key, j.value, s.id FROM series s, json_each(s.labels) j;"
    "UPDATE series SET last_seg=MAX(COALESCE((SELECT MAX(segment_id) FROM profile WHERE series_id=series.id), 0),"
    " COALESCE((SELECT MAX(segment_id) FROM rollup WHERE series_id=series.id), 0));"
    "INSERT OR REPLACE INTO series_type(series_id, type, count, first_ns, first_end_ns, last_ns, sample_types)"
    " SELECT series_id, type, COUNT(*), 0, MIN(end_ns), MAX(end_ns), '' FROM profile GROUP BY series_id, type;"
    "UPDATE series_type SET"
    " first_ns=(SELECT start_ns FROM profile p WHERE p.series_id=series_type.series_id AND p.type=series_type.type"
    " ORDER BY end_ns LIMIT 1),"
    " sample_types=(SELECT sample_types FROM profile p WHERE p.series_id=series_type.series_id"
    " AND p.type=series_type.type ORDER BY end_ns DESC LIMIT 1);";

int store__schema(store *s, bool fresh, pp_err *err) {
  int64_t version, had_series, has_col;
  int r;
  if ((r = store__exec(s->db, PRAGMAS, err)) < 0 ||
      (r = store__query_i64(s->db, "PRAGMA user_version", 0, 0, &version, err)) < 0)
    return r;
  if (version > STORE_SCHEMA_VERSION)
    return pp_err_set(err, PP_EINVAL, "index %s has schema version %lld, newer than this collector's %d", s->dbpath,
                      (long long)version, STORE_SCHEMA_VERSION);
  if ((r = store__tx_begin(s, err)) < 0) return r;
  if ((r = store__query_i64(s->db, "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='series'", 0, 0,
                            &had_series, err)) == 0 &&
      (r = store__query_i64(s->db, "SELECT COUNT(*) FROM pragma_table_info('series') WHERE name='last_seg'", 0, 0,
                            &has_col, err)) == 0 &&
      had_series && !has_col)
    r = store__exec(s->db, "ALTER TABLE series ADD COLUMN last_seg INTEGER NOT NULL DEFAULT 0", err);
  int64_t seg_tbl = 0, seg_tier = 0, rollup_tbl = 0, rollup_totals = 0;
  const struct {
    const char *sql;
    int64_t *v;
  } probe[] = {{"SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='segment'", &seg_tbl},
               {"SELECT COUNT(*) FROM pragma_table_info('segment') WHERE name='tier'", &seg_tier},
               {"SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='rollup'", &rollup_tbl},
               {"SELECT COUNT(*) FROM pragma_table_info('rollup') WHERE name='totals'", &rollup_totals}};
  for (size_t i = 0; r == 0 && i < sizeof probe / sizeof *probe; i++)
    r = store__query_i64(s->db, probe[i].sql, 0, 0, probe[i].v, err);
  if (r == 0 && seg_tbl && !seg_tier) r = store__exec(s->db, V2_SEGMENT, err);
  bool copy_rollups = r == 0 && rollup_tbl && !rollup_totals;
  if (copy_rollups) r = store__exec(s->db, V2_ROLLUP_ASIDE, err);
  if (r == 0) r = store__exec(s->db, TABLES, err);
  if (r == 0 && copy_rollups) r = store__exec(s->db, V2_ROLLUP_COPY, err);
  if (r == 0 && version < 2 && had_series && !fresh && (r = store__exec(s->db, FROM_V1, err)) == 0) {
    int dead = store__delete_dead_series(s, err);
    r = dead < 0 ? dead : 0;
  }
  if (r == 0 && version < STORE_SCHEMA_VERSION) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", STORE_SCHEMA_VERSION);
    r = store__exec(s->db, sql, err);
  }
  return store__tx_end(s, r, err);
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
    char *endp;
    unsigned long long v = strtoull(e->d_name, &endp, 16);
    if (endp != e->d_name + 16 || strcmp(endp, ".seg")) continue;
    if (n == cap) {
      int64_t *ni = realloc(ids, (cap *= 2) * sizeof *ids);
      if (!ni) {
        free(ids);
        ids = NULL;
        break;
      }
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

/* ---- rebuilding from the segments ---------------------------------------------------------- */

/* A v2 profile record's symbol chain in a rebuild: sound, and (for a profile) its decoding,
 * against the segment's table (loaded once, up to its newest sound symbol record). */
static bool v2_readable(const seg_scan *sc, sym_check *chk, sym_table **t, const uint8_t *body,
                        pprof_profile **ret) {
  int64_t head = sym__meta_head(body, sc->h.meta_len);
  if (head < 0 || (uint64_t)head >= sc->rec_off || sym__check_head(chk, (uint64_t)head) != 1) return false;
  if (!*t || !sym_table_has(*t, (uint64_t)head)) return false;
  sym_samples smp;
  if (sym__decode_samples(*t, (uint64_t)head, body + sc->h.meta_len, sc->h.data_len, &smp, NULL) < 0) return false;
  int r = sym_build_profile(*t, &smp, NULL, ret, NULL);
  arena_free(&smp.mem);
  return r == 0;
}

/* Indexes one sound record; false (skipped, counted as damaged) when it cannot be read back.
 * Symbol records are not indexed: the profile records that need them are. */
static int index_record(store *s, int64_t seg, const seg_scan *sc, sym_check *chk, sym_table **t, store_repair *rep,
                        pp_err *err) {
  if (sc->h.kind == REC_SYM) return 0;
  json_error_t je;
  const uint8_t *body = sc->buf + REC_HDR;
  json_t *meta = json_loadb((const char *)body, sc->h.meta_len, 0, &je);
  json_t *labels = json_object_get(meta, "labels");
  const char *type = json_string_value(json_object_get(meta, "type"));
  int64_t start = json_integer_value(json_object_get(meta, "start"));
  int64_t endt = json_integer_value(json_object_get(meta, "end"));
  json_int_t rcount = json_integer_value(json_object_get(meta, "rollup"));
  char *lj = json_is_object(labels) && type ? json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  pprof_profile *p = NULL;
  int r = 0;
  /* a rollup is read whole too: its row carries its sample types and totals (tiers) */
  bool sound = lj && (sc->h.kind == REC_V2 ? v2_readable(sc, chk, t, body, &p)
                                           : pprof_decode(body + sc->h.meta_len, sc->h.data_len, NULL, &p, NULL) == 0);
  if (!sound) {
    rep->records_corrupt++;
    goto out;
  }
  series_slot sl;
  bool created;
  if ((r = store__series_for(s, lj, &sl, &created, err)) < 0) goto out;
  char types[1024], totals[1024];
  store__sample_summary(p, types, sizeof types, totals, sizeof totals);
  if (rcount > 0)
    r = store__insert_rollup(s, sl.id, type, start, endt, rcount, seg, sc->rec_off, &sc->h, types, totals, err);
  else
    r = store__insert_profile(s, sl.id, type, start, endt, seg, sc->rec_off, &sc->h, types, totals, err);
  if (r == 0) r = store__raise_last_seg(s, sl.id, seg, err);
  if (r == 0) rep->rows_rebuilt++;
out:
  pprof_free(p);
  free(lj);
  json_decref(meta);
  return r;
}

/* Rebuilds index rows from one segment file's self-describing records: damaged records are
 * skipped, every sound one is indexed, a damaged tail is cut off. */
static int rebuild_segment(store *s, int64_t seg, const char *path, store_repair *rep, pp_err *err) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int r = pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno));
    close(fd);
    return r;
  }
  seg_scan sc = {.fd = fd, .size = (uint64_t)st.st_size};
  sym_check chk = {.fd = fd, .limit = sc.size};
  sym_table *t = NULL;
  /* the segment's table, loaded once: up to its newest symbol record whose chain is sound (the
   * chain is linear, so it holds every sound record before it; a profile whose chain goes
   * through damage is not in it). Loading it per new head would read the chain again for each
   * symbol record: quadratic in their number. */
  seg_scan pre = {.fd = fd, .size = sc.size};
  int64_t newest = -1;
  while (seg__scan_next(&pre) == 1)
    if (pre.h.kind == REC_SYM && sym__check_head(&chk, pre.rec_off) == 1) newest = (int64_t)pre.rec_off;
  free(pre.buf);
  if (newest >= 0 && sym__load(fd, seg, sc.size, (uint64_t)newest, &t, NULL) < 0) t = NULL;
  int r = store__run(s->db, "INSERT OR IGNORE INTO segment(id) VALUES(?1)", seg, 0, err);
  int got;
  while (r == 0 && (got = seg__scan_next(&sc)) == 1) r = index_record(s, seg, &sc, &chk, &t, rep, err);
  sym__check_free(&chk);
  sym_table_release(t);
  /* a segment of rollups only is the rollup tier's (store.h: tiers) */
  if (r == 0)
    r = store__run(s->db,
                   "UPDATE segment SET tier=1 WHERE id=?1 AND EXISTS (SELECT 1 FROM rollup WHERE segment_id=?1) "
                   "AND NOT EXISTS (SELECT 1 FROM profile WHERE segment_id=?1)",
                   seg, 0, err);
  if (r == 0 && got < 0) r = pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno));
  rep->records_corrupt += sc.skipped;
  if (r == 0 && sc.end < sc.size) {
    rep->bytes_truncated += sc.size - sc.end;
    if (ftruncate(fd, (off_t)sc.end) < 0) r = pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno));
  }
  __atomic_add_fetch(&s->segments_bytes, sc.end, __ATOMIC_RELAXED);
  free(sc.buf);
  close(fd);
  return r;
}

static int rebuild(store *s, const int64_t *files, size_t nfiles, store_repair *rep, pp_err *err) {
  rep->index_rebuilt = nfiles > 0; /* a new, empty store has nothing to rebuild */
  int r = store__tx_begin(s, err);
  if (r < 0) return r;
  for (size_t i = 0; i < nfiles && r == 0; i++) {
    char *path = seg__path(s->segdir, files[i]);
    r = path ? rebuild_segment(s, files[i], path, rep, err) : pp_err_set(err, PP_ENOMEM, "out of memory");
    free(path);
  }
  return store__tx_end(s, r, err);
}

/* ---- checking an index against its segments -------------------------------------------------- */

/* Drops every row of a segment (its file is gone). */
static int drop_segment(store *s, int64_t id, store_repair *rep, pp_err *err) {
  int64_t rows = 0, rollups = 0;
  int r;
  if ((r = store__delete_records(s, "segment_id=?1", id, 0, &rows, &rollups, err)) == 0)
    r = store__run(s->db, "DELETE FROM segment WHERE id=?1", id, 0, err);
  rep->rows_dropped += (size_t)(rows + rollups);
  return r;
}

typedef struct bad_row {
  bool rollup;
  int64_t id;
} bad_row;

/* Reads every record the index has in a segment and checks it against its row; drops the rows
 * of the damaged ones. */
static int check_records(store *s, int64_t seg, const char *path, store_repair *rep, pp_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno));
  sqlite3_stmt *st;
  const char *sql = "SELECT 0, id, rec_off, rec_len, data_len, crc FROM profile WHERE segment_id=?1 UNION ALL "
                    "SELECT 1, id, rec_off, rec_len, data_len, crc FROM rollup WHERE segment_id=?1 ORDER BY 3";
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    close(fd);
    return store__sql_fail(s->db, err, "check records");
  }
  sqlite3_bind_int64(st, 1, seg);
  uint8_t *buf = NULL;
  size_t cap = 0, nbad = 0, bcap = 0;
  bad_row *bad = NULL;
  struct stat fst;
  sym_check chk = {.fd = fd, .limit = fstat(fd, &fst) == 0 ? (uint64_t)fst.st_size : 0};
  int rc, r = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    /* the row's view of its record: where it is, its lengths and its CRC */
    int64_t off = sqlite3_column_int64(st, 2), data_len = sqlite3_column_int64(st, 4);
    int64_t meta_len = sqlite3_column_int64(st, 3) - REC_HDR - data_len;
    rec_hdr want = {(uint32_t)meta_len, (uint32_t)data_len, (uint32_t)sqlite3_column_int64(st, 5), REC_ANY}, h;
    bool fits = off >= 0 && meta_len >= 0 && meta_len <= MAX_META && data_len >= 0 && data_len <= MAX_DATA;
    if (fits && seg__read_record(fd, (uint64_t)off, UINT64_MAX, &want, &h, &buf, &cap) == 1) {
      if (h.kind == REC_V1) continue;
      /* a v2 record is sound when its symbol chain is (a row never points at a symbol record) */
      int64_t head = h.kind == REC_V2 ? sym__meta_head(buf + REC_HDR, h.meta_len) : -1;
      int k = head >= 0 && head < off ? sym__check_head(&chk, (uint64_t)head) : 0;
      if (k < 0) {
        r = pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno ? errno : ENOMEM));
        break;
      }
      if (k == 1) continue;
    }
    if (nbad == bcap) {
      bad_row *nb = realloc(bad, (bcap = bcap ? bcap * 2 : 16) * sizeof *nb);
      if (!nb) {
        r = pp_err_set(err, PP_ENOMEM, "out of memory");
        break;
      }
      bad = nb;
    }
    bad[nbad++] = (bad_row){sqlite3_column_int(st, 0) == 1, sqlite3_column_int64(st, 1)};
  }
  if (r == 0 && rc != SQLITE_DONE) r = store__sql_fail(s->db, err, "check records");
  sqlite3_finalize(st);
  free(buf);
  sym__check_free(&chk);
  close(fd);
  for (size_t i = 0; i < nbad && r == 0; i++) {
    r = bad[i].rollup ? store__run(s->db, "DELETE FROM rollup WHERE id=?1", bad[i].id, 0, err)
                      : store__delete_profiles(s, "id=?1", bad[i].id, 0, NULL, err);
    rep->records_corrupt++;
    rep->rows_dropped++;
  }
  free(bad);
  return r;
}

/* One segment file of an index that is in use. */
static int check_segment(store *s, int64_t id, const char *path, store_repair *rep, pp_err *err) {
  int64_t known, rows, rollups;
  int r;
  if ((r = store__query_i64(s->db, "SELECT COUNT(*) FROM segment WHERE id=?1", id, 0, &known, err)) < 0 ||
      (r = store__query_i64(s->db, "SELECT COUNT(*) FROM profile WHERE segment_id=?1", id, 0, &rows, err)) < 0 ||
      (r = store__query_i64(s->db, "SELECT COUNT(*) FROM rollup WHERE segment_id=?1", id, 0, &rollups, err)) < 0)
    return r;
  struct stat st;
  if (!known || rows + rollups == 0 || stat(path, &st) < 0) {
    /* a file the index does not know (its first record never got a row) */
    if (unlink(path) == 0) rep->orphans_removed++;
    return store__run(s->db, "DELETE FROM segment WHERE id=?1", id, 0, err);
  }
  uint64_t size = (uint64_t)st.st_size;
  /* rows pointing past the end of the file: their bytes were lost */
  int64_t gone = 0, gone_rollups = 0;
  if ((r = store__delete_records(s, "segment_id=?1 AND rec_off+rec_len>?2", id, (int64_t)size, &gone, &gone_rollups,
                                 err)) < 0)
    return r;
  rep->rows_dropped += (size_t)(gone + gone_rollups);
  if ((r = check_records(s, id, path, rep, err)) < 0) return r;
  /* the unindexed tail: the record in flight at a crash (or damage the CRC check dropped) */
  int64_t end_p, end_r;
  if ((r = store__query_i64(s->db, "SELECT COALESCE(MAX(rec_off+rec_len), 0) FROM profile WHERE segment_id=?1", id, 0,
                            &end_p, err)) < 0 ||
      (r = store__query_i64(s->db, "SELECT COALESCE(MAX(rec_off+rec_len), 0) FROM rollup WHERE segment_id=?1", id, 0,
                            &end_r, err)) < 0)
    return r;
  uint64_t endoff = (uint64_t)(end_p > end_r ? end_p : end_r);
  if (endoff < size) {
    if (truncate(path, (off_t)endoff) < 0) return pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno));
    rep->bytes_truncated += size - endoff;
    size = endoff;
  }
  __atomic_add_fetch(&s->segments_bytes, size, __ATOMIC_RELAXED);
  return 0;
}

static int check(store *s, const int64_t *files, size_t nfiles, store_repair *rep, pp_err *err) {
  int r = store__tx_begin(s, err);
  if (r < 0) return r;
  /* segments whose file is gone */
  sqlite3_stmt *st;
  int64_t *ids = NULL;
  size_t n = 0, cap = 0;
  if (sqlite3_prepare_v2(s->db, "SELECT id FROM segment ORDER BY id", -1, &st, NULL) != SQLITE_OK)
    return store__tx_end(s, store__sql_fail(s->db, err, "segments"), err);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    if (bsearch(&id, files, nfiles, sizeof *files, cmp_i64)) continue;
    if (n == cap) {
      int64_t *ni = realloc(ids, (cap = cap ? cap * 2 : 16) * sizeof *ni);
      if (!ni) {
        r = pp_err_set(err, PP_ENOMEM, "out of memory");
        break;
      }
      ids = ni;
    }
    ids[n++] = id;
  }
  if (r == 0 && rc != SQLITE_DONE) r = store__sql_fail(s->db, err, "segments");
  sqlite3_finalize(st);
  for (size_t i = 0; i < n && r == 0; i++) r = drop_segment(s, ids[i], rep, err);
  free(ids);
  for (size_t i = 0; i < nfiles && r == 0; i++) {
    char *path = seg__path(s->segdir, files[i]);
    r = path ? check_segment(s, files[i], path, rep, err) : pp_err_set(err, PP_ENOMEM, "out of memory");
    free(path);
  }
  if (r == 0) {
    int dead = store__delete_dead_series(s, err);
    if (dead < 0) r = dead;
  }
  return store__tx_end(s, r, err);
}

int store__repair(store *s, bool rebuild_index, store_repair *rep, pp_err *err) {
  int64_t *files = NULL;
  size_t nfiles = 0;
  int r = list_segment_files(s, &files, &nfiles, err);
  if (r < 0) return r;
  r = rebuild_index ? rebuild(s, files, nfiles, rep, err) : check(s, files, nfiles, rep, err);
  free(files);
  return r;
}
