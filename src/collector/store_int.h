/* Private parts of the store, shared by its files:
 *   store.c          opening, appending (the writer), retention, the writer's series cache
 *   store_repair.c   what store_open checks and mends: CRCs, lost rows, orphans, a lost index,
 *                    the index schema's upgrades
 *   store_seg.c      segment files and the records' framing (header, magic, CRC)
 *   store_sym.c      the v2 record format: symbols once per segment, samples as ids (store_sym.h)
 *   store_idm.c      merges of v2 records on ids (store_idm.h)
 *   store_sync.c     the syncer thread that makes appended records durable (the policy in store.h)
 *   store_query.c    readers: selections through the label index, listings, merges
 *   store_compact.c  rollups (10 minutes and 1 hour)
 *
 * The index (SQLite, schema version STORE_SCHEMA_VERSION in PRAGMA user_version):
 *   series(id, labels, last_seg)   one row per label set; labels is JSON with sorted keys;
 *                                  last_seg >= the id of every segment holding one of its
 *                                  records (raised once per segment, never lowered)
 *   series_label(name, value, series_id)
 *                                  the labels again, one row each, so a selector finds its
 *                                  series through SQL (no scan of every series)
 *   series_type(series_id, type, count, first_ns, first_end_ns, last_ns, sample_types)
 *                                  per series and type: the profile rows' count, the start and
 *                                  end of the oldest (by end time), the newest end and its
 *                                  sample types; kept by appends, repair and retention
 *   segment(id, min_ns, max_ns, tier)
 *                                  a segment file, its records' time range and tier (0 = raw
 *                                  profiles, 1 = rollups; v2 stores' segments are all 0)
 *   profile(...), rollup(...)      one row per record: where its bytes are, and its CRC; a
 *                                  rollup's width is end_ns - start_ns (10 min or 1 h), with
 *                                  the summary (sample_types, totals) of its merged profile
 *   store_meta(key, value)         'raw_dropped_until': tiered retention's watermark (store.h)
 * Invariants (store_open restores them): every row's record is in its segment at
 * [rec_off, rec_off + rec_len) and matches its crc; series_type counts exactly the profile rows;
 * a series whose last_seg is below the oldest segment has no records and is deleted. */
#ifndef COLLECTOR_STORE_INT_H
#define COLLECTOR_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "../base/clock.h"
#include "../base/htab.h"
#include "store.h"

#define STORE_SCHEMA_VERSION 3
#define SEGMENT_MAX_AGE_NS ((int64_t)3600 * 1000000000) /* the default of store_opts.segment_max_age */
/* A window is compacted once it ended this long ago, so the scrapes still in flight for it
 * (a 10 s CPU profile is stored when it ends) have landed. */
#define ROLLUP_GRACE_NS ((int64_t)60 * 1000000000)
#define ROLLUP_QUEUE_MAX 32
/* The writer's cache of series ids, in label sets (two generations of half this each). */
#define SERIES_CACHE_DEFAULT 65536
/* The syncer's default period: what a power loss may cost (store.h). */
#define SYNC_INTERVAL_DEFAULT 1.0

/* ---- segment files and records (store_seg.c) ---------------------------------------------
 * A record: magic | meta_len u32 | data_len u32 | crc32 u32 | meta | data (host byte order);
 * the CRC covers meta and data. The magic says the kind: "PPR1" a profile as scraped (gzip
 * pprof), "PPR2" a profile as ids and "PPS2" a symbol record (store_sym.h has both). */
#define REC_MAGIC "PPR1"
#define REC2_MAGIC "PPR2" /* store_sym.h: a profile as segment ids */
#define SYM_MAGIC "PPS2"  /* store_sym.h: a segment's new symbols */
#define REC_HDR 16
#define MAX_META ((uint32_t)64 << 10)
#define MAX_DATA ((uint32_t)256 << 20)

enum { REC_ANY = 0, REC_V1 = 1, REC_V2 = 2, REC_SYM = 3 };

typedef struct rec_hdr {
  uint32_t meta_len, data_len, crc;
  int kind; /* REC_V1, REC_V2, REC_SYM; in a `want`, REC_ANY = whichever */
} rec_hdr;

/* The path of segment id in segdir (malloc'd), NULL when out of memory. */
char *seg__path(const char *segdir, int64_t id);
/* Parses a header; false if the magic or a length is wrong. */
bool seg__parse_hdr(const uint8_t *b, rec_hdr *h);
/* Appends one record of `kind` to fd (opened O_APPEND, `at` bytes long). 0, or -1 with
 * *ret_errno set and the file cut back to `at`, or -2 when even that failed (the caller stops
 * using the file). */
int seg__write(int fd, uint64_t at, int kind, const char *meta, size_t mlen, const uint8_t *data, size_t len,
               rec_hdr *ret_h, int *ret_errno);
/* Reads the record at off and checks it: the one place a record's bytes are checked, for the
 * walk of a rebuild, the repair's check of indexed records and every read. Sound means a header
 * with the magic and lengths within the limits, the whole record within `limit` (the file's
 * size, when known) and a body (meta and data) that matches the header's CRC; with want (what
 * the index says: meta_len, data_len, crc) also a header that agrees with it, and the record is
 * read in one go. *buf (grown as needed, *cap its size; the caller frees it) gets the record,
 * header first: meta at *buf + REC_HDR, data after it. 1 when sound (*ret_h its header), 0 when
 * damaged or cut short, -1 on a read error or out of memory. */
int seg__read_record(int fd, uint64_t off, uint64_t limit, const rec_hdr *want, rec_hdr *ret_h, uint8_t **buf,
                     size_t *cap);

/* A walk over a segment file's records, for rebuilding an index from segments alone. */
typedef struct seg_scan {
  int fd;
  uint64_t size;    /* the file's size */
  uint64_t off;     /* where the walk goes on */
  uint64_t end;     /* the end of the last sound record (a tail past it is damage) */
  uint64_t rec_off; /* the current record: its offset, header and bytes (seg__read_record's buf) */
  rec_hdr h;
  uint8_t *buf;
  size_t cap;
  size_t skipped; /* damaged stretches skipped between sound records */
} seg_scan;
/* The next sound record: 1, or 0 at the end of the file, or < 0 on a read error. A damaged
 * record (bad header, CRC mismatch, cut short) is skipped: the walk looks for the next sound
 * record from the following byte on, since a damaged length cannot be trusted. */
int seg__scan_next(seg_scan *sc);

/* ---- the writer's series cache (store.c) ---- */
typedef struct series_slot {
  int64_t id, last_seg;
} series_slot;
typedef struct series_gen {
  htab keys; /* labels JSON -> index into v */
  series_slot *v;
  size_t cap;
} series_gen;

/* A finished rollup on its way from the compactor thread to the writer. */
typedef struct rollup_item {
  struct rollup_item *next;
  int64_t series_id, start_ns, end_ns, count;
  char *type, *labels_json;
  char *sample_types, *totals; /* store__sample_summary of the merged profile */
  uint8_t *data; /* gzip profile (a PPR1 store), or NULL and: */
  size_t len;
  pprof_profile *profile; /* the merged profile (a v2 store writes it as ids) */
} rollup_item;

struct store {
  char *dir, *segdir, *dbpath;
  sqlite3 *db; /* the writer's connection */
  store_opts opts;
  uint64_t segment_bytes;
  int64_t segment_max_age_ns;
  int seg_fd; /* active segment, -1 = none open */
  int64_t seg_id;
  uint64_t seg_size;
  int64_t seg_opened_ns;
  /* atomic, for store_closed_segments on other threads: each tier's active segment (0 = none)
   * and a segment being created (set before its row is inserted, cleared once it is active) */
  int64_t active_id[2], opening_id;
  uint64_t segments_bytes; /* atomic: all segment files, kept by append and retention, read by any thread */
  /* series cache: lookups try cache[0], then cache[1] (moving a hit to cache[0]); when cache[0]
   * holds half of series_cache_max keys, cache[1] is dropped and cache[0] takes its place, so
   * the label sets written recently stay and memory stays bounded under pod churn */
  series_gen cache[2];
  size_t series_cache_max;
  sqlite3_stmt *st_ins_profile, *st_ins_series, *st_find_series, *st_seg_minmax, *st_ins_rollup, *st_series_type,
      *st_last_seg, *st_ins_labels;
  /* compaction: a thread merges closed windows from disk and queues the results, which the
   * writer stores in store_maintain; the queue is the only state the two share */
  pthread_t compactor;
  bool compactor_running;
  pthread_mutex_t q_mu;
  pthread_cond_t q_cv; /* queue shrank, or stop was asked */
  rollup_item *q_head, *q_tail;
  size_t q_len;
  bool q_stop;
  int64_t cursor_ns; /* compactor's next window start (0 = not yet found) */
  int64_t hour_cursor_ns; /* compactor's next hour start (0 = not yet found) */
  /* the rollup tier's active segment (store.c swaps it with seg_* around a rollup's write, so
   * the write path knows one active segment) */
  int rseg_fd;
  int64_t rseg_id;
  uint64_t rseg_size;
  int64_t rseg_opened_ns;
  int seg_tier; /* tier of the segment in seg_* (1 while swapped) */
  uint64_t tier_bytes[2]; /* bytes of each tier's segment files (writer thread) */
  /* durability (store_sync.c): the writer hands the syncer the segments it wrote to; the syncer
   * makes them and the WAL durable every sync_ns */
  pthread_t syncer;
  bool syncer_running;
  pthread_mutex_t sync_mu;
  pthread_cond_t sync_cv; /* stop was asked */
  bool sync_stop;
  int64_t sync_ns;    /* the period; 0 = never (opts.sync_interval < 0) */
  int sync_active;    /* dup of the active segment's fd, or -1 (guarded by sync_mu) */
  int sync_active_r;  /* the same for the rollup tier's active segment (swapped with it) */
  int *sync_closed;   /* fds of segments rolled since the last round, to sync and close */
  size_t nsync_closed, sync_closed_cap;
  bool sync_dir;      /* a segment file was created since the last round */
  /* the v2 format (store_sym.h): the writer's intern tables for the active segment, and the
   * readers' cache of loaded segment tables (made on first use, any thread) */
  struct sym_writer *symw;
  struct sym_writer *rsymw; /* the other tier's active segment's (store.c swap_tier) */
  struct sym_cache *symc;
  uint64_t records_read;    /* atomic: bumped by merge workers */
  uint64_t table_loads;     /* atomic: segment symbol tables read from disk (store_sym.c) */
  uint64_t deletions;       /* atomic: store_deletions (odd while a segment's rows are deleted) */
  uint64_t merges_direct;   /* atomic: merges answered by one segment's profile, no merger (store_query.c) */
  pthread_mutex_t stats_mu; /* guards stats for readers on other threads */
  store_stats stats;
};

/* Where a record's bytes are; weight = profiles it stands for (1, or a rollup's count). */
typedef struct row_loc {
  store_row row;
  int64_t segment_id, data_off, data_len, rec_off, crc, meta_len;
  int64_t weight;
  int64_t gone_width; /* a rollup standing for raw profiles tiered retention deleted: its width */
} row_loc;

/* store.c: the store's clock (wall time: record times are wall times), for every file of it. */
/* store.c: the writer's helpers that repair shares. */
/* A write transaction, and its end: commits when r == 0, else (or when the commit fails) rolls
 * back and empties the series cache, which may name series the rollback took back. Returns
 * the outcome. */
int store__tx_begin(store *s, pp_err *err);
int store__tx_end(store *s, int r, pp_err *err);
int store__exec(sqlite3 *db, const char *sql, pp_err *err);
int store__sql_fail(sqlite3 *db, pp_err *err, const char *what);
/* one integer from a query with up to two parameters; errors are errors (never a default) */
int store__query_i64(sqlite3 *db, const char *sql, int64_t a, int64_t b, int64_t *ret, pp_err *err);
/* a statement with up to two parameters, run to completion */
int store__run(sqlite3 *db, const char *sql, int64_t a, int64_t b, pp_err *err);
/* The series of these labels (JSON, sorted keys), inserting it and its label rows when new;
 * the caller's transaction or savepoint covers it. *ret_new tells whether it was inserted. */
int store__series_for(store *s, const char *labels_json, series_slot *ret, bool *ret_new, pp_err *err);
/* Inserts a profile row (and keeps series_type and the segment's time range). */
int store__insert_profile(store *s, int64_t series_id, const char *type, int64_t start, int64_t end, int64_t seg,
                          uint64_t off, const rec_hdr *h, const char *stypes, const char *totals, pp_err *err);
int store__insert_rollup(store *s, int64_t series_id, const char *type, int64_t start, int64_t end, int64_t count,
                         int64_t seg, uint64_t off, const rec_hdr *h, const char *stypes, const char *totals,
                         pp_err *err);
/* Raises a series' last_seg to seg (no-op when it is there already). */
int store__raise_last_seg(store *s, int64_t series_id, int64_t seg, pp_err *err);
/* Deletes the profile rows `where` selects (SQL over table profile with parameters ?1 and ?2)
 * and keeps series_type right; inside the caller's transaction. *ret_n: rows deleted. */
int store__delete_profiles(store *s, const char *where, int64_t a, int64_t b, int64_t *ret_n, pp_err *err);
/* Deletes the profile rows (as store__delete_profiles) and the rollup rows `where` selects (over
 * columns both tables have); inside the caller's transaction. *ret_profiles, *ret_rollups: how
 * many of each went. */
int store__delete_records(store *s, const char *where, int64_t a, int64_t b, int64_t *ret_profiles,
                          int64_t *ret_rollups, pp_err *err);
/* Deletes series that have no records left (last_seg below the oldest segment) with their
 * labels; inside the caller's transaction. Returns how many, or < 0. */
int store__delete_dead_series(store *s, pp_err *err);
/* Summary of a decoded profile: "type/unit,..." and "total,..." per sample type. */
void store__sample_summary(const pprof_profile *p, char *types, size_t tcap, char *totals, size_t ncap);
/* Empties the series cache (after series were deleted, or a transaction rolled back). */
void store__cache_reset(store *s);

/* store_repair.c: creates the schema, or upgrades an older one to STORE_SCHEMA_VERSION. */
int store__schema(store *s, bool fresh, pp_err *err);
/* store_repair.c: brings the index in line with the segments (the checks store.h lists);
 * rebuild = recreate every row from the segments (the index was lost). */
int store__repair(store *s, bool rebuild, store_repair *rep, pp_err *err);

/* store.c: the store's background threads (the syncer, the compactor). Start runs fn(s) unless
 * *running already, with *stop cleared; stop sets *stop under mu, wakes cv (the thread waits on
 * it between rounds), joins the thread, and does nothing when it is not running. */
int store__thread_start(store *s, pthread_t *t, bool *running, bool *stop, void *(*fn)(void *), const char *what,
                        pp_err *err);
void store__thread_stop(pthread_t *t, bool *running, bool *stop, pthread_mutex_t *mu, pthread_cond_t *cv);

/* store_sync.c: the syncer thread. */
int store__start_syncer(store *s, pp_err *err);
/* Stops it and syncs what it had not synced yet, on the calling thread. */
void store__stop_syncer(store *s);
/* The writer rolled to a new segment (fd) after `old_fd` (-1 = none): the syncer syncs and
 * closes old_fd and follows fd from now on. */
void store__sync_roll(store *s, int old_fd, int fd);
/* The writer stops using fd (retention deleted its segment): the syncer drops it too. */
void store__sync_forget(store *s, int fd);

/* store_query.c: a read-only connection to the index (WAL lets it read while the writer
 * appends); the caller closes it. */
int store__open_reader(store *s, sqlite3 **ret, pp_err *err);
/* store_query.c: the columns of a record's location, as the profile and rollup tables both keep
 * it, and their reader (from column `first` on) into a row_loc. */
#define STORE_LOC_COLS "segment_id, data_off, data_len, rec_off, crc"
void store__take_loc(sqlite3_stmt *st, int first, row_loc *e);
/* store_query.c: the columns of a raw profile row, and the reader that appends the rows a
 * statement selecting them yields to a growing array (false when out of memory). */
#define STORE_RAW_COLS "id, type, start_ns, end_ns, sample_types, totals, " STORE_LOC_COLS
bool store__take_rows(sqlite3_stmt *st, int64_t sid, const char *labels, row_loc **pv, size_t *pn, size_t *pcap);
/* store_query.c: frees an array of rows and their strings. */
void store__rows_free(row_loc *v, size_t n);
/* store_query.c: reads one record's data, checked against its CRC (malloc'd). */
int store__read_record(store *s, const row_loc *e, uint8_t **ret, size_t *ret_len, pp_err *err);
/* store_query.c: merges the records locs[pick[0..npick)] into mg on worker threads; unreadable
 * records and records whose sample types differ are skipped. *ret_merged = sum of the merged
 * records' weights. */
int store__merge_locs(store *s, const row_loc *locs, const size_t *pick, size_t npick,
                      pprof_merger *mg, int64_t *ret_merged, pp_err *err);
/* store.c: any tiered retention option set (store.h: tiers). */
bool store__tiers_on(const store_opts *o);
/* store.c: appends a rollup record and its index row (writer thread). */
int store__write_rollup(store *s, const rollup_item *it, bool *ret_enospc, pp_err *err);
/* Closes the active segment when it holds records and is older than segment_max_age (writer
 * thread, from store_maintain). The next record opens a new one. */
void store__roll_if_old(store *s);
/* store_compact.c: stops the compactor thread and frees the queue. */
void store__stop_compactor(store *s);

#endif
