/* restore: a new data directory filled from the object store's copy (issue 15 §3 and §4: a shard
 * killed and its volume deleted answers for its history again once it restarts).
 *
 * When an object store is configured and the data directory holds no store yet (no index.db and
 * no segment file), the collector lists the bucket's segments under its prefix (ListObjectsV2,
 * path-style, signed by libcurl as uploads are; the answer parsed with expat) and downloads them
 * into <data dir>/segments/<id>.seg, newest first, as many as the local disk budget takes
 * (--retention-size; all without it). The store then opens the directory as it opens one whose
 * index was lost: it rebuilds the index from the segments, which describe themselves (store.h).
 * The uploads file is written as well (its destination, then the restored segments with an
 * unknown end, which the uploader's first scan fills in from the store), so nothing restored is
 * sent back. Two objects with the same segment id (a data directory once started anew under the
 * same prefix) keep the newer.
 *
 * Limits on what the server sends: a listing page at most RESTORE_MAX_PAGE bytes, at most
 * RESTORE_MAX_OBJECTS objects, an object at most RESTORE_MAX_OBJECT bytes; keys that are not
 * <16 hex>-<16 hex>.seg are skipped (counted). Each file is written aside, fsync'd and renamed.
 * A failure stops the restore and removes what it downloaded (the collector starts empty and
 * says why); it does not touch the bucket. Runs before the store opens, on the main thread. */
#ifndef COLLECTOR_RESTORE_H
#define COLLECTOR_RESTORE_H

#include <stddef.h>
#include <stdint.h>

#include "../base/pp_err.h"
#include "upload.h"

#define RESTORE_MAX_PAGE ((size_t)16 << 20)
#define RESTORE_MAX_OBJECTS 1000000
#define RESTORE_MAX_OBJECT ((uint64_t)1 << 30)

typedef struct restore_stats {
  size_t listed;          /* segment objects under the prefix */
  size_t restored;        /* downloaded */
  uint64_t bytes;         /* their bytes */
  size_t over_budget;     /* left in the bucket: older than what the budget holds */
  size_t duplicates;      /* an older object with the id of a newer one */
  size_t foreign;         /* keys that are not segment names */
} restore_stats;

/* 1 when the data directory already holds a store (nothing done), 0 after a restore (which may
 * have found nothing), < 0 on failure with err (nothing left behind). budget: bytes, 0 = all. */
int restore_run(const upload_opts *o, const char *data_dir, uint64_t budget, restore_stats *st, pp_err *err);

/* One segment's object (the uploader's key for id and min_ns) downloaded into segdir/<file>.seg
 * (16 hex digits),
 * written aside, fsync'd and renamed, at most RESTORE_MAX_OBJECT bytes: 0, or PP_EIO saying why
 * (nothing left behind). Blocks; any thread (its own connection). For bucket.h's reads. */
int restore_segment(const upload_opts *o, const char *segdir, int64_t id, int64_t min_ns, int64_t file, pp_err *err);

/* The page's keys and sizes, from a ListObjectsV2 answer (exposed for the fuzz target): calls
 * each(ud, key, size) per object; *truncated and token (the next continuation token, "" when
 * none; cap bytes) as the page says. 0, or PP_EINVAL when it is not such an answer. */
int restore_parse_list(const char *xml, size_t len, void (*each)(void *ud, const char *key, uint64_t size), void *ud,
                       int *truncated, char *token, size_t cap, pp_err *err);

#endif
