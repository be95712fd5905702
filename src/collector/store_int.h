/* Private parts of the store shared by store.c (writer) and store_query.c (readers). */
#ifndef COLLECTOR_STORE_INT_H
#define COLLECTOR_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "../base/htab.h"
#include "store.h"

#define REC_MAGIC "PPR1"
#define REC_HDR 16
#define MAX_META ((uint32_t)64 << 10)
#define MAX_DATA ((uint32_t)256 << 20)
#define SEGMENT_MAX_AGE_NS ((int64_t)3600 * 1000000000)
/* A window is compacted once it ended this long ago, so the scrapes still in flight for it
 * (a 10 s CPU profile is stored when it ends) have landed. */
#define ROLLUP_GRACE_NS ((int64_t)60 * 1000000000)
#define ROLLUP_QUEUE_MAX 32

/* A finished rollup on its way from the compactor thread to the writer. */
typedef struct rollup_item {
  struct rollup_item *next;
  int64_t series_id, start_ns, end_ns, count;
  char *type, *labels_json;
  uint8_t *data; /* gzip profile */
  size_t len;
} rollup_item;

struct store {
  char *dir, *segdir, *dbpath;
  sqlite3 *db; /* the writer's connection */
  store_opts opts;
  uint64_t segment_bytes;
  int seg_fd; /* active segment, -1 = none open */
  int64_t seg_id;
  uint64_t seg_size;
  int64_t seg_opened_ns;
  /* all segment files, kept current by append and retention (the writer); atomic because
   * store_get_stats reads it from HTTP threads */
  _Atomic uint64_t segments_bytes;
  htab series_cache;       /* labels JSON -> index into series_ids */
  int64_t *series_ids;
  size_t series_cap;
  sqlite3_stmt *st_ins_profile, *st_ins_series, *st_find_series, *st_seg_minmax, *st_ins_rollup;
  /* compaction: a thread merges closed windows from disk and queues the results, which the
   * writer stores in store_maintain; the queue is the only state the two share */
  pthread_t compactor;
  bool compactor_running;
  pthread_mutex_t q_mu;
  pthread_cond_t q_cv; /* queue shrank, or stop was asked */
  rollup_item *q_head, *q_tail;
  size_t q_len;
  bool q_stop;
  int64_t cursor_ns;        /* compactor's next window start (0 = not yet found) */
  uint64_t records_read;    /* atomic: bumped by merge workers */
  pthread_mutex_t stats_mu; /* guards stats for readers on other threads */
  store_stats stats;
};

/* Where a record's bytes are; weight = profiles it stands for (1, or a rollup's count). */
typedef struct row_loc {
  store_row row;
  int64_t segment_id, data_off, data_len, rec_off, crc, meta_len;
  int64_t weight;
} row_loc;

/* store_query.c: a read-only connection to the index (WAL lets it read while the writer
 * appends); the caller closes it. */
int store__open_reader(store *s, sqlite3 **ret, pp_err *err);
/* store_query.c: the columns of a raw profile row, and the reader that appends the rows a
 * statement selecting them yields to a growing array (false when out of memory). */
#define STORE_RAW_COLS                                                                             \
  "id, type, start_ns, end_ns, data_len, sample_types, totals, segment_id, data_off, rec_off, crc"
bool store__take_rows(sqlite3_stmt *st, int64_t sid, const char *labels, row_loc **pv, size_t *pn,
                      size_t *pcap);
/* store_query.c: frees an array of rows and their strings. */
void store__rows_free(row_loc *v, size_t n);
/* store_query.c: reads one record's data, checked against its CRC (malloc'd). */
int store__read_record(store *s, const row_loc *e, uint8_t **ret, size_t *ret_len, pp_err *err);
/* store_query.c: merges the records locs[pick[0..npick)] into mg on worker threads; unreadable
 * records and records whose sample types differ are skipped. *ret_merged = sum of the merged
 * records' weights. */
int store__merge_locs(store *s, const row_loc *locs, const size_t *pick, size_t npick,
                      pprof_merger *mg, int64_t *ret_merged, pp_err *err);
/* store.c: appends a rollup record and its index row (writer thread). */
int store__write_rollup(store *s, const rollup_item *it, bool *ret_enospc, pp_err *err);
/* store_compact.c: stops the compactor thread and frees the queue. */
void store__stop_compactor(store *s);

#endif
