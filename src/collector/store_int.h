/* Private parts of the store shared by store.c (writer) and store_query.c (readers). */
#ifndef COLLECTOR_STORE_INT_H
#define COLLECTOR_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "../base/htab.h"
#include "store.h"

#define REC_MAGIC "PPR1"
#define REC_HDR 16
#define MAX_META ((uint32_t)64 << 10)
#define MAX_DATA ((uint32_t)256 << 20)
#define SEGMENT_MAX_AGE_NS ((int64_t)3600 * 1000000000)

struct store {
  char *dir, *segdir, *dbpath;
  sqlite3 *db; /* the writer's connection */
  store_opts opts;
  uint64_t segment_bytes;
  int seg_fd;            /* active segment, -1 = none open */
  int64_t seg_id;
  uint64_t seg_size;
  int64_t seg_opened_ns;
  uint64_t segments_bytes; /* all segment files, kept current by append and retention */
  htab series_cache;     /* labels JSON -> index into series_ids */
  int64_t *series_ids;
  size_t series_cap;
  sqlite3_stmt *st_ins_profile, *st_ins_series, *st_find_series, *st_seg_minmax;
  pthread_mutex_t stats_mu; /* guards stats for readers on other threads */
  store_stats stats;
};

#endif
