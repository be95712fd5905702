/* bindex: the object store's series index (issue 15 §3): which series each uploaded raw
 * segment holds, so /api/v1/series lists the history only the bucket holds without downloading
 * it (the UI asks for the whole listing at every page load; a bucket of weeks is far more than
 * a page load may fetch).
 *
 * The uploader adds a segment's entries (store_segment_series: per series and type its raw
 * profiles' count, ends and sample types) once it is in the bucket and while it is still local,
 * and drops them when the bucket's retention deletes it. The index lives in
 * <data dir>/bucket-series.db (SQLite, WAL): a segment's entries are written in one
 * transaction with its row, so a reader sees a segment whole or not at all. Rollup segments
 * have no entries: a listing counts raw profiles (store_list_series), which they do not hold.
 *
 * A segment uploaded before the index existed, or whose entries could not be written (a full
 * disk, the segment deleted locally before they were), is not in it: a listing over it is
 * partial (bindex_series counts it). Labels are the store's as stored (sanitized UTF-8), so a
 * selector matches them as the store's selector does.
 *
 * Threads: one writer (the uploader's thread, through its bindex); readers open a connection
 * of their own per listing (bindex_series), on any thread. */
#ifndef COLLECTOR_BINDEX_H
#define COLLECTOR_BINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "../base/pp_err.h"
#include "store.h"
#include "upload.h"

typedef struct bindex bindex;

/* Opens (creates) <data_dir>/bucket-series.db. 0, PP_EIO, PP_ENOMEM. */
int bindex_open(const char *data_dir, bindex **ret, pp_err *err);
void bindex_close(bindex *x);
/* Whether the segment (its id and oldest record's time: its object) has its entries. */
bool bindex_has(bindex *x, int64_t id, int64_t min_ns);
/* Adds the segment's entries from st (it must still hold the segment; nothing is added when it
 * holds no raw profile of it: PP_EUSAGE). 0 (also when they were there already), PP_EUSAGE,
 * PP_EIO, PP_ENOMEM. */
int bindex_add(bindex *x, store *st, int64_t id, int64_t min_ns, pp_err *err);
/* Drops the segment's entries (the bucket deleted it). 0, PP_EIO. */
int bindex_drop(bindex *x, int64_t id, int64_t min_ns, pp_err *err);

/* The listing over segs (history only the bucket holds, upload_bucket_only_now's): every
 * (series, type) matching the selector (a STORE_MATCH_IDS matcher: PP_EINVAL) with raw
 * profiles in [from, to] (0 = unbounded), as store_list_series lists them (series_id 0: the
 * index's ids name nothing), summed over the segments, at most max_entries (more: PP_ELIMIT).
 * *ret_unknown: raw segments the index lacks, plus the entries of a segment the window cuts
 * (an entry's records partly in it: its count over the window is unknown; they are left out):
 * the listing lacks those and is partial. 0 with *ret, *ret_n (store_series_free), PP_EIO,
 * PP_ENOMEM, PP_ELIMIT, PP_EINVAL. Any thread. */
int bindex_series(const char *data_dir, const upload_segment *segs, size_t n, const store_matcher *m, size_t nm,
                  const char *type, int64_t from, int64_t to, size_t max_entries, store_series_info **ret, size_t *ret_n,
                  size_t *ret_unknown, pp_err *err);

#endif
