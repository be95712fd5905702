/* upload: closed segments copied to an S3-compatible bucket (issue 15 §2, first part).
 *
 * One thread of its own (uploads never wait on, nor hold up, the scrape loop or the store's
 * writer). Every UPLOAD_SCAN_MS it lists the store's segments
 * (store_list_segments, both tiers) and PUTs each closed one (a file the writer will not touch
 * again) not uploaded yet, oldest first, to
 *     <endpoint>/<bucket>/<prefix>segments/<oldest record, 16 hex ns>-<16 hex id>.seg
 * (the time keeps a segment apart from a later one given the same id: a store whose index lost
 * its newest rows, or a data directory started anew, counts ids again; a restore names the file
 * after the part following '-')
 * (path-style URLs, which every S3-compatible server takes). Requests are signed by libcurl
 * (CURLOPT_AWS_SIGV4, service s3, the configured region); the body carries its CRC-32 in
 * x-amz-checksum-crc32, so the server refuses a body that changed on the way. A segment is the
 * store's own unit: records describe themselves and the index can be rebuilt from segment files
 * alone (store.h), so the bucket's copy is complete without the index.
 *
 * What is uploaded is remembered in <data dir>/uploads (its destination first, then a line per
 * segment: id, tier, time range; appended and fdatasync'd after each PUT succeeds, rewritten
 * when the bucket's retention deletes objects), so a restart does not send the same segments
 * again; a file written for another endpoint, bucket or prefix is ignored (everything goes to
 * the new one). A lost or damaged file only costs a second PUT of the same bytes.
 *
 * Failures: a PUT that fails (connection, timeout, any status but 200) is tried again after a
 * back-off that doubles from 1 s to UPLOAD_BACKOFF_MAX_S; the segments wait on local disk, where
 * they were already stored. Local retention still applies while the bucket is unreachable (the
 * disk budget wins over the copy): a segment listed at one scan, not uploaded, and gone at the
 * next was deleted before its upload; it is counted in `lost`, as the only data an outage can
 * cost, and the caller logs it.
 *
 * Bucket retention (retention_seconds > 0, at most PP_S3_RETENTION_MAX_S): objects whose
 * newest record is older than that are deleted (DELETE; 204, 200 and 404 all mean gone), and
 * segments already that old are not sent. A DELETE that fails is counted and does not hold up
 * uploads (deleting_failing says so); after such a pass the next waits a minute.
 *
 * A collector's last segments are closed when it stops (store_seal) and uploaded then
 * (upload_flush, for as long as the stop allows); what that could not send goes at its next
 * start: one that never starts again leaves it only on its volume (up to --segment-max-age).
 *
 * Each raw segment in the bucket and still local also gets its series into the bucket's series
 * index (bindex.h), right after its upload (or at the next scan, for one uploaded before the
 * index existed or restored); the bucket's retention drops them with the object. A failure
 * there is counted (index_failures) and never holds up uploads.
 *
 * Logging: none here (the program logs at its boundary): upload_get_stats says whether uploads
 * are failing and why, and main.c logs each change of that state.
 */
#ifndef COLLECTOR_UPLOAD_H
#define COLLECTOR_UPLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/pp_err.h"
#include "store.h"

#define UPLOAD_SCAN_MS 2000
#define UPLOAD_BACKOFF_MAX_S 60

typedef struct upload_opts {
  const char *endpoint;     /* http://host[:port] or https://... (no path) */
  const char *bucket;       /* S3 bucket name rules: 3..63 of [a-z0-9.-] */
  const char *prefix;       /* "" or a path of [A-Za-z0-9._/-] segments; a '/' is added */
  const char *region;       /* NULL = "us-east-1" */
  const char *access_key, *secret_key;
  double retention_seconds; /* 0 = objects stay */
} upload_opts;

/* History only the bucket holds: segments uploaded and then deleted from the local disk by local
 * retention, not yet by the bucket's (raw segments tiered retention deleted in favour of their
 * rollups are not counted: the rollups answer for them). Sums read them back (bucket.h); any
 * other answer over [from_ns, to_ns] lacks them (web.h's bucket_only hook says so). */
typedef struct upload_bucket_only {
  uint64_t segments;
  int64_t from_ns, to_ns; /* their records' oldest and newest time (both 0 when none) */
} upload_bucket_only;

/* One of them: its id, tier (0 raw, 1 rollups) and records' time range; its object is
 * segments/<min_ns 16 hex>-<id 16 hex>.seg under the prefix. */
typedef struct upload_segment {
  int64_t id;
  int tier;
  int64_t min_ns, max_ns;
} upload_segment;

typedef struct upload_stats {
  uint64_t uploaded_segments, uploaded_bytes;
  uint64_t failures;        /* requests that failed (PUT or DELETE) */
  uint64_t lost_segments;   /* segments local retention deleted before their upload */
  uint64_t deleted_objects; /* by the bucket's retention */
  uint64_t queued;          /* closed segments not uploaded yet, at the last scan */
  int64_t last_success_ns;  /* the last PUT that succeeded (0 = none since start) */
  bool failing;             /* a failure was noted and no scan has run clean since */
  char last_error[256];
  bool deleting_failing;    /* the last retention pass had DELETEs that failed */
  char last_delete_error[256];
  upload_bucket_only bucket_only; /* at the last scan */
  uint64_t indexed_segments; /* raw segments whose series went into the bucket's series index (bindex.h) */
  uint64_t index_failures;   /* segments that could not (their history's series listings are partial) */
  char last_index_error[200];
} upload_stats;

/* Where o's objects go, as requests name them (shared with restore.c): the endpoint without
 * trailing '/', the prefix with one ("" for none), libcurl's SigV4 provider ("aws:amz:REGION:s3")
 * and the uploads file's first line ("dest ENDPOINT/BUCKET/PREFIX\n"). o as upload_check_opts
 * accepts it (each field within s3opts.h's lengths). */
typedef struct upload_target {
  char endpoint[520], prefix[520], sigv4[96], dest[1200];
} upload_target;
void upload_target_of(const upload_opts *o, upload_target *t);

typedef struct uploader uploader;

/* Checks o (PP_EINVAL naming the bad field), reads the uploads file in data_dir and starts the
 * thread. */
int upload_start(const upload_opts *o, store *st, const char *data_dir, uploader **ret, pp_err *err);
/* Asks for a scan that starts now and waits for it to end clean (every segment closed before
 * the call in the bucket): true, or false after timeout_ms (failing, or slow). Any thread but
 * the uploader's; NULL is fine (true). */
bool upload_flush(uploader *u, int64_t timeout_ms);
/* Stops the thread (an upload in flight is abandoned: it is sent again at the next start) and
 * frees u. NULL is fine. */
void upload_stop(uploader *u);
void upload_get_stats(uploader *u, upload_stats *ret);
/* The bucket-only segments now (upload_stats.bucket_only counts them at the last scan, which
 * trails a deletion by up to UPLOAD_SCAN_MS): the store listed and compared with what was
 * uploaded. *ret_sum counts all of them; those whose time range meets [from_ns, to_ns] (to_ns
 * 0: no end) are malloc'd into *ret, oldest first (NULL when none; ret NULL: the count alone).
 * *ret_seq: store_deletions while the store was listed, or UPLOAD_SEQ_CHANGING when a segment
 * was being deleted meanwhile; a merge of the local store that read the same value before it
 * began saw exactly the other segments, so the two parts together count each record once.
 * *ret_raw_stood_in: the store's raw_dropped_until_ns at that list. u NULL: none. 0, or
 * PP_ENOMEM, PP_ELIMIT, PP_EIO (the store's list failed). Any thread. */
#define UPLOAD_SEQ_CHANGING UINT64_MAX
int upload_bucket_only_now(uploader *u, int64_t from_ns, int64_t to_ns, upload_segment **ret, size_t *ret_n,
                           upload_bucket_only *ret_sum, uint64_t *ret_seq, int64_t *ret_raw_stood_in, pp_err *err);
/* Checks the options alone (for flag parsing). */
int upload_check_opts(const upload_opts *o, pp_err *err);

/* Internal, exposed for fuzz/fuzz_upload.c: one line of the uploads file, accepted only in the
 * exact form the uploader writes ("%016x %d %d %d %d\n"); and an S3 error body's <Code> (at most
 * cap - 1 bytes of [A-Za-z0-9], "" when there is none). */
bool upload__parse_line(const char *line, int64_t *ret_id, int *ret_tier, int64_t *ret_min_ns, int64_t *ret_max_ns,
                        bool *ret_expired);
void upload__s3_code(const char *body, size_t len, char *out, size_t cap);

#endif
