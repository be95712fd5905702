/* store: every scraped profile kept as its own record, under a disk budget.
 *
 * Layout of a data directory:
 *   index.db (+ -wal, -shm)   SQLite in WAL mode: series and their labels, segments, one row
 *                             per profile (store_int.h has the schema)
 *   segments/<16 hex>.seg     append-only files of records:
 *                             magic | meta_len u32 | data_len u32 | crc32 u32 | meta | data
 *                             "PPR2" (written now): meta is JSON {labels, type, start, end,
 *                             sym}; data the profile's samples as ids into the segment's
 *                             symbol table, which "PPS2" records (one before each profile
 *                             that brings new symbols, chained backwards) hold: each string,
 *                             function, location and mapping once per segment (store_sym.h).
 *                             "PPR1" (older builds; still read and served): meta the same
 *                             without sym, data the gzip profile as scraped. Records describe
 *                             themselves, so the index can be rebuilt from the segments alone.
 *
 * Durability: a record is written to its segment before its index row is committed, and a
 * syncer thread makes both durable every opts.sync_interval seconds (default 1): fdatasync of
 * the segments written since its last round (and of the segments directory after a new file,
 * and of the data directory once, for the WAL's name), then of the index's WAL. SQLite runs
 * with synchronous=NORMAL, which syncs at checkpoints and not at each commit: the syncer's
 * round is the commit point, so the writer does not wait for the disk at each append (only at
 * SQLite's checkpoints, about every 1 MiB of WAL, which sync the WAL and the index file on the
 * writer's thread). What a crash may cost:
 *   - the process killed (kill -9, OOM): nothing store_append returned for; the kernel has it;
 *   - power loss or a kernel crash: at most what was appended after the start of the last
 *     completed round, i.e. the last sync_interval seconds plus the length of one round
 *     (store_stats.durable_ns says up to when everything is on disk). Index rows whose record
 *     did not reach the disk with them are found by their CRC at the next open and dropped.
 * store_close makes everything durable. With sync_interval < 0 there is no syncer and the
 * store syncs nothing itself (only SQLite's checkpoints sync the index): for benchmarks.
 *
 * Repair at open: store_open checks the index (quick_check), reads every indexed record and
 * checks its CRC (a PPR2 record's symbol chain too: every symbol record it needs, by CRC and
 * by counts that continue one another), and drops rows whose record is damaged (store_repair.records_corrupt) or
 * points past the end of a segment or into a missing one; truncates a segment's unindexed tail
 * (the profile that was in flight); deletes segment files the index does not know; and
 * rebuilds the index from the segments if it is missing or corrupt, skipping damaged records
 * and keeping every sound one after them. So a damaged record is never listed or served;
 * reads check the CRC again.
 *
 * Retention: whole segments are deleted oldest first while the directory (index, WAL and
 * segments) is over retention_bytes, or when their newest record is older than
 * retention_seconds. Segments roll at segment_bytes (default: retention/20, or the file
 * system's size/20 without a budget, within 1..64 MiB) or after segment_max_age (default an
 * hour), so the budget is exceeded by at most one segment. store_maintain closes the raw
 * segment at that age even when nothing is written: a closed segment is what an uploader
 * copies, so the age bounds how much of the recent past exists only on this disk. A series
 * whose records are all gone is deleted with its labels, so the index holds the series of the
 * stored profiles, not every series ever seen.
 *
 * Series and labels: a series is a set of labels (name = value), stored as text. Bytes that
 * are not UTF-8 are replaced by U+FFFD in names and values (base/utf8.h: as browsers show such
 * text), never dropped; matchers are replaced the same way, so they find what was stored, and
 * two label sets that differ only in invalid bytes are one series. Queries find their series
 * through an index of the labels, so their cost follows the series they select, not the number
 * of series stored.
 *
 * Rollups: a closed STORE_ROLLUP_NS window (10 minutes) of a series and type (aligned to the
 * epoch, by end time) with two or more profiles, and a closed STORE_ROLLUP_HOUR_NS hour with one
 * or more, is merged once into a rollup record (meta carries "rollup": count) indexed in its own
 * table. An hour is merged from its 10-minute rollups where they stand for exactly their
 * window's profiles, and from the profiles of its other windows: the same sums as merging every
 * profile of the hour. Rollups are written to segments of their own (tier 1; profiles are in
 * tier 0), so raw and rollups age out apart. Merged queries (sum, avg) read a rollup instead of
 * its window's profiles when the window is wholly inside the query (an hour before its
 * 10-minute windows) and either the index still holds exactly `count` profiles for it, or
 * tiered retention has deleted raw profiles of that window (its start is at or before
 * raw_dropped_until_ns): then the rollup is the only complete answer left. Anything else (the
 * current window, a window partly deleted by other retention, a late profile) reads the
 * profiles themselves, so while raw profiles are there rollups change speed, never answers;
 * store_merged_info says when rollups stood in for deleted profiles (resolution). Listing and
 * single-record reads always see the profiles as scraped.
 *
 * Tiers (any retention_raw_* / retention_rollup_* option set): raw segments are deleted oldest
 * first once their newest profile is older than retention_raw_seconds AND every window and hour
 * they touch has been compacted (so raw is never dropped before its rollups exist), or at once
 * while the raw segments are over retention_raw_bytes (the budget wins: rollups of what goes
 * are then missing). Rollup segments go when their newest rollup is older than
 * retention_rollup_seconds or while over retention_rollup_bytes. Each raw deletion by tiers
 * first raises raw_dropped_until_ns (kept in the index) to the segment's newest end time; an
 * index rebuilt from the segments (which do not hold it) sets it to just before the oldest raw
 * profile left, or to the newest rollup's end when no raw is left.
 *
 * Threads: one writer (the thread that calls store_append/store_retention); readers call the
 * query functions from any thread, each call using its own read-only connection.
 * Errors: the pp_err idiom; PP_EIO carries errno in the message, and store_append reports a
 * full disk (ENOSPC or EDQUOT from a segment write, SQLITE_FULL or an index write failing with
 * ENOSPC or EDQUOT) as PP_EIO with *ret_enospc set so the caller can run retention and go on.
 */
#ifndef COLLECTOR_STORE_H
#define COLLECTOR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/pp_err.h"
#include "../codec/pprof.h"

typedef struct store store;

typedef struct store_opts {
  const char *dir;
  uint64_t retention_bytes; /* 0 = no size limit */
  double retention_seconds; /* 0 = no time limit */
  uint64_t segment_bytes;   /* 0 = derived from retention_bytes */
  double segment_max_age;   /* seconds; 0 = an hour */
  bool no_rollups;          /* queries ignore rollups (tests compare both answers) */
  double sync_interval;     /* seconds between durability rounds; 0 = 1 s; < 0 = no syncer (benchmarks) */
  size_t series_cache;      /* label sets the writer keeps ids of; 0 = 65,536 */
  int format;               /* records written: 0 = the current (2: symbols once per segment,
                               store_sym.h); 1 = PPR1, gzip pprof as scraped (tests of stores
                               written by older builds) */
  /* Tiered retention (see "Tiers" above); all 0 = off. Each limit applies to its own tier's
   * segments; retention_bytes and retention_seconds still apply to all of them. */
  double retention_raw_seconds;    /* raw profiles kept this long once rolled up (0 = no limit) */
  uint64_t retention_raw_bytes;    /* budget of the raw segments (0 = none) */
  double retention_rollup_seconds; /* rollups kept this long (0 = no limit) */
  uint64_t retention_rollup_bytes; /* budget of the rollup segments (0 = none) */
} store_opts;

typedef struct store_repair {
  size_t rows_dropped;    /* index rows pointing at missing bytes */
  size_t bytes_truncated; /* unindexed segment tails */
  size_t orphans_removed; /* segment files unknown to the index */
  size_t rows_rebuilt;    /* rows recreated from segments (index lost) */
  size_t records_corrupt; /* records whose bytes fail their CRC: skipped, their rows dropped */
  bool index_rebuilt;
} store_repair;

/* Opens (creating if needed) and repairs the store in opts->dir. ret_repair may be NULL. */
int store_open(const store_opts *opts, store **ret_store, store_repair *ret_repair, pp_err *err);
void store_close(store *s);

typedef struct store_label {
  const char *name, *value;
} store_label;

typedef struct store_record {
  const store_label *labels; /* the series; order does not matter */
  size_t nlabels;
  const char *type;         /* "cpu", "heap", ... */
  int64_t start_ns, end_ns; /* the window the profile covers (start == end for snapshots) */
  const uint8_t *data;      /* the profile as scraped */
  size_t len;
  const pprof_profile *profile; /* its decoding, for sample types and totals */
} store_record;

/* Appends one record. On a full disk: PP_EIO with *ret_enospc = true, nothing half-written
 * left behind. */
int store_append(store *s, const store_record *r, bool *ret_enospc, pp_err *err);

/* Deletes whole segments as the retention settings require; returns segments deleted. */
int store_retention(store *s, int64_t now_ns, pp_err *err);

/* A byte budget (retention_bytes or a tier's) is exceeded: the writer runs store_retention
 * now rather than at its next period (cheap: no file system calls but the total's stat). */
bool store_retention_due(store *s);

/* After a full disk: deletes the oldest segment, file first (it frees space even when SQLite
 * cannot write yet), whatever the retention settings. Returns 1 if one was deleted, 0 if only
 * the segment being written is left. */
int store_free_space(store *s, pp_err *err);

#define STORE_ROLLUP_NS ((int64_t)600 * 1000000000)
#define STORE_ROLLUP_HOUR_NS ((int64_t)3600 * 1000000000)

/* Compacts, on the calling (writer) thread, every closed window not rolled up yet; for tests
 * and tools. Returns the number of rollups written. */
int store_compact(store *s, int64_t now_ns, pp_err *err);

/* Starts a background thread that compacts closed windows as they close; its results are
 * stored by store_maintain, which the writer calls on its periodic tick. At most
 * ROLLUP_QUEUE_MAX results wait in memory; the thread pauses while the queue is full. */
int store_start_compactor(store *s, pp_err *err);
/* Writer thread, on its periodic tick: rolls the active segment once it is older than
 * segment_max_age, and stores finished rollups. Returns how many rollups; a full disk drops
 * them (the compactor redoes missing rollups after the next start). */
int store_maintain(store *s, pp_err *err);

/* Writer thread, when it stops: closes the active segment of each tier, so that every segment
 * lists as closed (store_list_segments) and can be copied before store_close. A record
 * written after this opens a new segment. */
void store_seal(store *s);

/* Bytes on disk: index, WAL, shared memory file and segments. */
uint64_t store_disk_bytes(store *s);

/* Segment deletions so far, twice each: the count is odd while one is under way (its rows
 * going), and moves on when it is done. Equal values read before a merge and after something
 * else was read (the segments the object store holds alone, upload.h) mean no segment left the
 * store in between: the two saw the same set. Any thread. */
uint64_t store_deletions(store *s);

typedef struct store_stats {
  uint64_t disk_bytes;
  uint64_t profiles;
  uint64_t series;
  uint64_t segments;
  uint64_t retention_deleted_segments; /* since open */
  uint64_t retention_deleted_profiles;
  uint64_t rollups;           /* rollup records in the index */
  int64_t compacted_until_ns; /* 10-minute windows before this are compacted (0 = none yet) */
  int64_t hours_compacted_until_ns; /* hours before this are compacted (0 = none yet) */
  int64_t raw_dropped_until_ns; /* tiered retention deleted raw profiles ending up to here */
  uint64_t records_read;      /* records (profiles or rollups) read by merges since open */
  uint64_t table_loads;       /* segment symbol tables read from disk since open (store_sym.h) */
  uint64_t syncs;             /* durability rounds completed since open */
  uint64_t sync_failures;     /* rounds where an fdatasync failed (what it covered may be lost) */
  char last_sync_error[160];  /* what the last failed round failed at, and why ("" = none since
                                 open): the store does not log, its caller does when
                                 sync_failing changes */
  bool sync_failing;          /* the last round failed (and none has succeeded since): the
                                 caller logs when this changes, not at every failed round */
  int64_t durable_ns;         /* everything appended before this time is on disk (0 = nothing yet) */
  double last_sync_seconds;   /* how long the last round took */
} store_stats;
void store_get_stats(store *s, store_stats *ret);

/* ---- segments (for uploads, upload.h) ------------------------------------------------------ */
typedef struct store_segment {
  int64_t id;
  int tier;               /* 0 = raw profiles, 1 = rollups */
  int64_t min_ns, max_ns; /* the time range of its records (0 = empty) */
  bool closed;            /* the writer will not write to it again: its bytes never change
                             until retention deletes it (each tier has one active segment, and
                             a rollup tier's may stay active while newer raw ones close) */
} store_segment;
/* The first cap segments, oldest first. Any thread. */
int store_list_segments(store *s, store_segment *out, size_t cap, size_t *ret_n, pp_err *err);
/* The path of segment id's file (malloc'd; NULL without memory). */
char *store_segment_path(store *s, int64_t id);

/* ---- queries (any thread) ------------------------------------------------------------------ */

/* A series selector: label equalities, all of which must hold. value "" matches a series that
 * lacks the label. A matcher whose name is STORE_MATCH_IDS (""; no label has that name) holds
 * instead a JSON array of series ids ("[3,17]"): the series must be one of those (how the
 * query API, which matches labels its own way, hands its pick to a merge). */
#define STORE_MATCH_IDS ""
typedef struct store_matcher {
  const char *name, *value;
} store_matcher;

typedef struct store_series_info {
  int64_t series_id;
  char *labels_json; /* {"name":"value",...}, keys sorted */
  char *type;
  char *sample_types; /* "type/unit,type/unit" */
  int64_t first_ns, last_ns;
  int64_t count;
} store_series_info;

/* Where a listing goes on: after the entry (series_id, type). */
typedef struct store_series_cursor {
  int64_t series_id;
  const char *type;
} store_series_cursor;

/* Every (series, type) matching the selector (NULL/0 = all) with profiles in [from, to]
 * (0 = unbounded), in (series_id, type) order, starting after `after` (NULL = from the start),
 * at most `limit` entries (0 = no limit); *ret_more (may be NULL) tells whether entries
 * follow (then the last entry is the cursor for the next page). The array and its strings are
 * malloc'd; free with store_series_free. */
int store_list_series(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from,
                      int64_t to, const store_series_cursor *after, size_t limit,
                      store_series_info **ret, size_t *ret_n, bool *ret_more, pp_err *err);
void store_series_free(store_series_info *v, size_t n);

/* One closed segment's raw profiles per (series, type), for the object store's series index
 * (bindex.h): fn gets each entry (series_id the store's; first_ns, last_ns, count and
 * sample_types as store_list_series gives them over the segment's records alone) with its
 * first record's end in first_end_ns and its labels as stored (series_label's sanitized names
 * and values). Read in one transaction: a segment deleted meanwhile is seen whole or not at all.
 * 0 with *ret_entries (0: the segment holds no raw profile: a rollup segment, or one deleted);
 * fn's negative result stops it and is returned; PP_EIO, PP_ENOMEM. Any thread. */
typedef int (*store_segment_series_fn)(void *ud, const store_series_info *e, int64_t first_end_ns,
                                       const store_matcher *labels, size_t nlabels);
int store_segment_series(store *s, int64_t segment_id, store_segment_series_fn fn, void *ud, size_t *ret_entries,
                         pp_err *err);

typedef struct store_row {
  int64_t id, series_id;
  char *labels_json;
  char *type;
  int64_t start_ns, end_ns;
  uint64_t size;
  char *sample_types;
  char *totals; /* "v,v,..." one per sample type */
  int64_t count; /* profiles the row stands for: 1, or a rollup's count (store_list_points) */
} store_row;

/* Records of the selected series and type in [from, to] by end time, oldest first, at most
 * limit (0 = 100000). */
int store_list_rows(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from,
                    int64_t to, size_t limit, store_row **ret, size_t *ret_n, pp_err *err);
void store_rows_free(store_row *v, size_t n);

typedef enum store_agg {
  STORE_AGG_DEFAULT,
  STORE_AGG_SUM,
  STORE_AGG_AVG,
  STORE_AGG_LATEST
} store_agg;

/* The default aggregation for a type: sum for CPU and delta profiles and for the cumulative
 * snapshots (allocs, block, mutex), avg for instantaneous ones (heap snapshots' inuse_*,
 * goroutine, threadcreate). */
store_agg store_default_agg(const char *type, bool delta);

/* Merged profile of the selection: sum = all records merged; avg = each series' records merged
 * and divided by that series' record count (a rollup counts as the records it stands for),
 * then the series summed: a service's average is the sum over its pods of each pod's average
 * over time, however many records each pod has; latest = each series' newest record, merged.
 * Records of the symbols-once format are merged on their segment ids (store_idm.h: no string
 * decoded or interned per record), with the same answers as merging their profiles one by one.
 * PP_EUSAGE ("no profiles") when nothing matches. At most
 * max_records are read (0 = 10000), newest first (store_merged_info says when more matched). ret_count: records merged. */
int store_merged(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from,
                 int64_t to, store_agg agg, size_t max_records, pprof_profile **ret,
                 size_t *ret_count, pp_err *err);

/* store_merged within a memory budget (bytes; 0 = none, as store_merged): half of it for
 * records decoded ahead (2 at a time, each within a quarter, its fetched bytes included), the
 * other half for the merge's tables and result (pprof_merger_set_limit), so the merge never
 * holds more than the budget. Past it: PP_ELIMIT, with a message naming the memory limit,
 * while merging, before the memory is taken. Within it the result equals store_merged's. */
int store_merged_within(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from,
                        int64_t to, store_agg agg, size_t max_records, size_t budget,
                        pprof_profile **ret, size_t *ret_count, pp_err *err);

/* What a merge was answered from. */
typedef struct store_merge_info {
  /* 0 ("raw"): every window was answered from its raw profiles, or from rollups equal to
   * them; else the widest rollup that stood in for raw profiles tiered retention deleted
   * (STORE_ROLLUP_NS or STORE_ROLLUP_HOUR_NS) */
  int64_t resolution_ns;
  uint64_t records;          /* records merged (a rollup counts once) */
  uint64_t rollups;          /* of which rollups */
  uint64_t rollups_for_gone; /* of which stood for deleted raw profiles */
  bool truncated;            /* more records matched than max_records: the oldest were left out */
} store_merge_info;

/* store_merged_within, telling what the answer was made of (ret_info may be NULL). */
int store_merged_info(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                      store_agg agg, size_t max_records, size_t budget, pprof_profile **ret, size_t *ret_count,
                      store_merge_info *ret_info, pp_err *err);

/* One series' part of a merge by avg or latest, read from another store (the object store's
 * cache, bucket.h) for this store's merge to join: avg and latest are per series over time, so
 * two stores' answers do not add; their series' parts do. A series is named by its labels
 * (store_row.labels_json: the same text in every store for the same label set). */
typedef struct store_series_part {
  char *labels;
  pprof_profile *p; /* avg (and sum): the series' records merged, not divided; latest: its newest */
  int64_t weight;   /* the records p stands for (a rollup counts as the records it stands for) */
  int64_t end_ns;   /* the newest record's end */
} store_series_part;

/* The selection's merge by agg (resolved), per series: each series' records (latest: its
 * newest) merged on their own, in series order, within budget bytes in all. ret_info as
 * store_merged_info's. PP_EUSAGE when nothing matches; PP_ELIMIT; PP_ENOMEM. */
int store_series_parts(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                       store_agg agg, size_t max_records, size_t budget, store_series_part **ret, size_t *ret_n,
                       store_merge_info *ret_info, pp_err *err);
void store_series_parts_free(store_series_part *v, size_t n);

/* store_merged_info with another store's parts of the same selection joined, as if this store
 * held their records too: avg: a part's sum and weight join the series of the same labels
 * before it is divided, or are divided on their own; latest: a part stands for its series when
 * its end is newer than the series' newest here (or the series has none here); sum: every part
 * added. Parts whose sample types differ from the merge's are left out, as records are. The
 * parts' profiles may be changed (divided); the caller still frees them. ret_count counts the
 * parts' weight taken (ret_info tells of this store's records alone). PP_EUSAGE only when
 * neither this store nor the parts hold anything of the selection. */
int store_merged_with(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                      store_agg agg, size_t max_records, size_t budget, store_series_part *parts, size_t nparts,
                      pprof_profile **ret, size_t *ret_count, store_merge_info *ret_info, pp_err *err);

/* store_list_rows for a timeline: the raw rows, and where tiered retention deleted a window's
 * raw profiles, the rollup that stands for them (the hour's when there is one, else the 10
 * minutes'), as a row with a negative id, start_ns its window's start and end_ns 1 ns before its
 * end (it sorts with the last profiles it stands for), `count` the profiles
 * it stands for and totals divided by count (the mean per profile, so the curve keeps its
 * scale). */
int store_list_points(store *s, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                      size_t limit, store_row **ret, size_t *ret_n, pp_err *err);

/* One profile record as gzip pprof (malloc'd), checked against its CRC: a PPR1 record's bytes
 * as scraped; a PPR2 record rebuilt from its segment's symbols and encoded (the same profile:
 * go tool pprof reads both alike; tests/conformance checks it). */
int store_read(store *s, int64_t id, uint8_t **ret_buf, size_t *ret_len, pp_err *err);

/* store_read, and the record's row (labels, type, times, sample types, totals; count 1) into
 * *ret_row (its strings malloc'd: store_row_release). PP_EUSAGE ("no profile with id N") when
 * there is none (rollups have no id); *ret_row is untouched on failure. */
int store_read_row(store *s, int64_t id, store_row *ret_row, uint8_t **ret_buf, size_t *ret_len, pp_err *err);
void store_row_release(store_row *r);

/* The profiles of ids, decoded, in ids' order, for readers that want profiles rather than bytes
 * (a timeline's figures per record): one index reader and one open segment for all of them,
 * each segment's symbol table loaded once, and a PPR2 record built straight from it (no
 * encode, gzip and decode round trip as through store_read). fn(ud, i, p, rec_err, err) gets
 * each: p NULL and rec_err saying why when record i cannot be read (no such id, damaged, over
 * limits->max_memory, NULL: the defaults); p is freed after fn returns. A nonzero return of fn
 * stops and is returned. The index failing to answer (an SQLite error, not a missing row) fails
 * the call before fn is called at all. */
typedef int (*store_profile_fn)(void *ud, size_t i, const pprof_profile *p, const pp_err *rec_err, pp_err *err);
int store_each_profile(store *s, const int64_t *ids, size_t n, const pprof_limits *limits, store_profile_fn fn, void *ud,
                       pp_err *err);

#endif
