/* bucket: merges read the history only the object store holds (issue 15 §3, "older data from
 * the bucket").
 *
 * Local retention deletes segments the uploader copied; their list is what it uploaded less
 * what the store still lists (upload_bucket_only_now). A merge whose window meets some of them
 * hands their list here:
 * the missing ones are downloaded (restore_segment, the same signed GETs as a restore) into a
 * cache directory of their own, <data dir>/bucket-cache/segments, and a store opened on that
 * directory (store_open rebuilds its index from the segments, as after a restore; no syncer, no
 * retention, no compactor) answers the same merge the local store answers. The caller merges
 * the two: each part is read once, since a segment is in the bucket-only list only once local
 * retention has deleted it, and the list is taken after the local merge with the store's
 * deletions unchanged since before it (store_deletions; else the caller is told, BUCKET_RACED).
 *
 * Only raw segments (tier 0) are read, for merges and timelines (bucket_points; decoded ones
 * read its records too, bucket_each_profile). A rollup
 * segment in the list would stand, in a store of its own, for windows whose raw profiles may
 * still be local (their sum would count them twice); so would a raw segment holding profiles of
 * an hour the local store answers from its rollup (tiered retention deleted raw profiles up to
 * raw_stood_in, store.h). So such a list is not read here: the caller's answer stays partial and
 * says so (web_fanout_info). avg and latest are per series over time, which a sum of two stores'
 * answers does not give: for them the cache's store answers per series (store_series_parts)
 * and the local merge joins its series to them (store_merged_with).
 *
 * Cache: what is downloaded stays for the next merge, within budget bytes; segments the merge
 * does not need go first (those used longest ago). Files are named by the cache's own count,
 * since two objects may carry one segment id (upload.h). Cached segments whose range meets the merge's
 * window but are not in its list any more (the bucket's retention deleted them) are dropped
 * before it reads. A merge that needs more than the budget fails (PP_ELIMIT: nothing read), and
 * so does one whose download fails (PP_EIO saying which object and why): the caller then answers
 * without that history, as partial. The directory is emptied when the collector starts. The
 * store is opened anew (its index rebuilt) whenever the set of cached segments changed.
 *
 * Threads: merges run on web_work's workers (they block); one at a time reads the cache (a
 * mutex held for the downloads and the merge; the stats have their own, so /metrics never waits
 * for a download). */
#ifndef COLLECTOR_BUCKET_H
#define COLLECTOR_BUCKET_H

#include <stddef.h>
#include <stdint.h>

#include "../base/pp_err.h"
#include "../codec/pprof.h"
#include "store.h"
#include "upload.h"

#define BUCKET_CACHE_DEFAULT ((uint64_t)1 << 30)

typedef struct bucket bucket;

/* o (and its strings) must outlive b. budget: the cache's bytes (0 = BUCKET_CACHE_DEFAULT).
 * Empties <data_dir>/bucket-cache. 0, or PP_EIO / PP_ENOMEM. */
int bucket_new(const upload_opts *o, const char *data_dir, uint64_t budget, bucket **ret, pp_err *err);
void bucket_free(bucket *b);

#define BUCKET_NOT_READ 1 /* not readable for that merge (above): the answer lacks that history */
#define BUCKET_NONE 2     /* no segment in the list: nothing lacks */
#define BUCKET_RACED 3    /* the store changed under the merge (web.h's bucket_merged) */

/* The merge of the selection's records in segs (upload_bucket_only_now's for [from, to]; n may
 * be 0) within budget bytes: by sum, as store_merged_info answers it from the local store (0
 * with *ret); by avg or latest, per series (0 with *parts, *nparts: store_series_parts', for
 * store_merged_with; store_series_parts_free). agg: the merge's (resolved: not
 * STORE_AGG_DEFAULT); raw_stood_in: the local store's store_stats.raw_dropped_until_ns.
 * BUCKET_NONE, BUCKET_NOT_READ; 0; PP_EUSAGE when segs hold none of the selection's records;
 * PP_ELIMIT (over the cache's budget or the merge's); PP_EIO (a download failed, or the cache's
 * store did not open); PP_ENOMEM. */
int bucket_merged(bucket *b, const upload_segment *segs, size_t n, int64_t raw_stood_in, store_agg agg,
                  const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to, size_t max_records,
                  size_t budget, pprof_profile **ret, size_t *ret_count, store_series_part **parts, size_t *nparts,
                  store_merge_info *info, pp_err *err);

/* A timeline's rows of the selection in segs (store_list_points over them, at most limit), as
 * the local store lists its own. Their ids are the cache's: they name records for
 * bucket_each_profile while the cache's store stays the one they were listed from (*ret_gen),
 * never a record a request can ask for by id. Readable as a sum is (rows of raw segments only,
 * none the local store answers from its rollups). BUCKET_NONE, BUCKET_NOT_READ; 0 with *ret
 * (*ret_n may be 0; store_rows_free); PP_ELIMIT (over the cache's budget); PP_EIO; PP_ENOMEM. */
int bucket_points(bucket *b, const upload_segment *segs, size_t n, int64_t raw_stood_in, const store_matcher *m,
                  size_t nm, const char *type, int64_t from, int64_t to, size_t limit, store_row **ret, size_t *ret_n,
                  uint64_t *ret_gen, pp_err *err);

/* store_each_profile over the cache's records that bucket_points listed (ids as it gave them,
 * gen its *ret_gen): a decoded timeline's figures. BUCKET_RACED (err saying so) when the cache's
 * store was opened anew since (another read changed the cached set: its ids name other records
 * now); else store_each_profile's result. */
int bucket_each_profile(bucket *b, uint64_t gen, const int64_t *ids, size_t n, const pprof_limits *limits,
                        store_profile_fn fn, void *ud, pp_err *err);

typedef struct bucket_stats {
  uint64_t merges;         /* merges and timelines that read the cache */
  uint64_t failures;       /* those that could not (a download failed, over a budget) */
  uint64_t downloads;      /* segments downloaded */
  uint64_t download_bytes;
  uint64_t cached_segments, cached_bytes; /* in the cache after the last merge */
} bucket_stats;
void bucket_get_stats(bucket *b, bucket_stats *ret);

#endif
