/* bin/collector: scrape pprof endpoints on a schedule, store every profile, serve the API.
 *
 * Threads: the main thread owns the scrape engine and the store's writer (scrape -> decode ->
 * append -> retention). libmicrohttpd's threads answer HTTP; a reload asked over HTTP is handed
 * to the main thread through `pending` and waited for, so the engine is only ever touched by
 * one thread. Signals only set flags. The threads started before the loop runs (HTTP, decode
 * workers, compactor, self profiling) keep SIGINT, SIGTERM and SIGHUP blocked, so the main
 * thread takes them and its wait is interrupted; a thread a library starts later from the main
 * thread (curl's resolver) might take one, and the loop, which waits at most 250 ms, sees the
 * flag then. inotify's fd is polled with the engine's sockets.
 *
 * Stopping (SIGTERM, SIGINT), bounded so a pod stops well inside its 30 s grace period:
 *
 *   running --signal--> draining: not ready, reloads refused (waiters answered), no scrape
 *                        starts; scrapes in flight finish and are stored, for at most
 *                        --shutdown-grace (5 s)
 *           --> stopped: HTTP stopped, what still runs abandoned, store closed, exit 0
 *
 * A watchdog ends the process with exit 1 if all that has not happened within the grace plus
 * 15 s (the store is repaired at the next start, as after a crash).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../base/units.h"
#include "bindex.h"
#include "bucket.h"
#include "config.h"
#include "scrape.h"
#include "selfprof.h"
#include "store.h"
#include "upload.h"
#include "web.h"
#include "web_fanout.h"
#include "restore.h"

#include "../base/file.h"
#include "../base/scrapeval.h"
#include "../base/clock.h"
#include "../base/log.h"
#include "../base/metrics.h"
#include "../base/version.h"

#include <stdatomic.h>

/* ---- logging: through the programs' one logger (base/log.h) ------------------------------- */

enum { LOG_DEBUG = PP_LOG_DEBUG, LOG_INFO = PP_LOG_INFO, LOG_WARN = PP_LOG_WARN, LOG_ERROR = PP_LOG_ERROR };
#define LOG(level, ...) pp_log((pp_log_level)(level), __VA_ARGS__)

/* ---- state ----------------------------------------------------------------------------------- */

typedef struct app {
  const char *config_path;
  char config_real[PATH_MAX];
  store *st;
  scrape_engine *eng;
  cfg_config *cfg;              /* in force */
  char *config_text;            /* its text */
  size_t config_len;
  uint32_t config_hash;         /* of the file text in force, to skip no-op file events */
  atomic_bool ready;            /* /readyz (HTTP threads read it) */
  /* reload requests from HTTP threads, under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool pending;                 /* a reload is asked for */
  uint64_t started, served;     /* reloads begun and finished by the main thread: a request
                                 * waits for the first reload that begins after it asked */
  int result;                   /* result of the last reload */
  pp_err result_err;
  bool stopping;                /* shutdown began: no reload any more, waiters answered */
  struct push_batch *pushes;    /* pushed profiles waiting for the main thread to store them */
  /* counters for /metrics: written by the main thread, read by HTTP threads */
  _Atomic uint64_t reloads_total, reload_failures_total, last_reload_ok, last_reload_ts;
  _Atomic uint64_t ingested_profiles, ingested_bytes, dropped_enospc, store_errors;
  _Atomic uint64_t pushed_profiles, push_failures;
  int64_t started_ns;
  selfprof *sp;
  bool sync_failing;            /* what the log last said of the store's durability rounds */
  int64_t sync_checked_at;      /* when log_sync_state last read the store's state */
  web *w;                       /* the HTTP server, once started (reloads give it the config's peers) */
  uploader *up;                 /* segment uploads (NULL without --object-store-endpoint) */
  bucket *bk;                   /* merges' reads of what only the bucket holds (NULL: none) */
  int64_t upload_checked_at;    /* when log_upload_state last read its state */
  bool upload_failing, upload_deleting_failing;
  uint64_t upload_lost;
  uint64_t index_failures;       /* the bucket's series index's, logged so far */
  const char *data_dir;
  int shard;                    /* --shard: which of the config's shards this collector is */
  bool query_only;              /* --query-only: no monitor scraped, merges from the peers */
  _Atomic uint64_t shards_now;  /* the shard count the config in force was applied with; when
                                 * cfg_shards_at says otherwise, its change_at has come */
} app;

static volatile sig_atomic_t stop_flag, hup_flag;

#define SHUTDOWN_WATCHDOG_EXTRA_S 15 /* beyond --shutdown-grace: then exit 1 without waiting */
#define STOP_FLUSH_MS 10000          /* the last uploads at a stop, within the watchdog's margin */

static void on_signal(int sig) {
  if (sig == SIGHUP) hup_flag = 1;
  else stop_flag = 1;
}

static uint32_t fnv(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
  return h;
}

/* Reads, validates and applies the config file; keeps the old one on any error. Main thread.
 * kept: applies the text in force again instead (the shards' planned change: it must happen
 * at its time even when the file has since become invalid). */
static int do_reload(app *a, bool from_file_event, bool kept, pp_err *err) {
  char *text;
  size_t n;
  if (kept) {
    n = a->config_len;
    text = malloc(n + 1);
    if (!text) return pp_err_set(err, PP_ENOMEM, "out of memory");
    memcpy(text, a->config_text, n + 1);
  } else {
    int rr = cfg_read_file(a->config_path, &text, &n, err);
    if (rr < 0) return rr;
  }
  uint32_t h = fnv(text, n);
  if (from_file_event && a->cfg && h == a->config_hash) {
    free(text);
    return 1; /* the file was touched but not changed */
  }
  cfg_config *c = NULL;
  int r = cfg_parse(text, n, a->config_path, &c, err);
  int64_t now_s = pp_clock_real_ns() / 1000000000;
  size_t listed = 0, dropped = 0;
  if (r == 0) {
    listed = c->nmonitors;
    dropped = cfg_keep_shard(c, a->shard, now_s);
    if (a->query_only) dropped = listed, c->nmonitors = 0; /* its peers scrape them */
    r = cfg_add_self_monitor(c, err);
  }
  a->reloads_total++;
  a->last_reload_ts = (uint64_t)(pp_clock_real_ns() / 1000000000);
  if (r == 0) r = scrape_apply(a->eng, c, err);
  if (r == 0 && a->w) r = web_set_peers(a->w, (const char *const *)c->peers, c->npeers, err);
  if (r < 0) {
    cfg_free(c);
    free(text);
    a->reload_failures_total++;
    a->last_reload_ok = 0;
    return r;
  }
  for (size_t i = 0; i < c->nwarnings; i++) LOG(LOG_WARN, "config: %s", c->warnings[i]);
  cfg_free(a->cfg);
  a->cfg = c;
  free(a->config_text);
  a->config_text = text;
  a->config_len = n;
  a->config_hash = h;
  a->last_reload_ok = 1;
  int shards = cfg_shards_at(c, now_s);
  a->shards_now = (uint64_t)shards;
  scrape_counts sc;
  scrape_get_counts(a->eng, &sc);
  if (a->query_only) {
    LOG(LOG_INFO, "config loaded from %s: query only, %zu monitors left to the peers, %zu peers in the config",
        a->config_path, listed, c->npeers);
  } else if (shards > 1 || a->shard || c->previous_shards) {
    char plan[96] = "";
    if (shards != c->shards)
      snprintf(plan, sizeof plan, "; %d shards from %" PRId64 " (in %" PRId64 " s)", c->shards, c->change_at,
               c->change_at - now_s);
    LOG(LOG_INFO, "config loaded from %s: %zu monitors, %zu of them on shard %d of %d%s, %zu scrape jobs", a->config_path,
        listed, listed - dropped, a->shard, shards, plan, sc.jobs);
  } else {
    LOG(LOG_INFO, "config loaded from %s: %zu monitors, %zu scrape jobs", a->config_path, c->nmonitors, sc.jobs);
  }
  return 0;
}

/* HTTP threads: ask the main thread to reload and wait for its answer: the result of the
 * first reload that begins after the request (one in progress may have read the file before
 * it changed). Once the collector is stopping, the answer is an error at once. */
static int hook_reload(void *ud, pp_err *err) {
  app *a = ud;
  int r;
  pthread_mutex_lock(&a->mu);
  uint64_t ticket = a->started + 1;
  if (!a->stopping) {
    a->pending = true;
    scrape_wakeup(a->eng);
  }
  while (!a->stopping && a->served < ticket) pthread_cond_wait(&a->cv, &a->mu);
  if (a->served < ticket) {
    r = pp_err_set(err, PP_EUSAGE, "the collector is stopping: the config was not reloaded");
  } else {
    r = a->result;
    if (r < 0 && err) *err = a->result_err;
  }
  pthread_mutex_unlock(&a->mu);
  return r;
}

/* Pushed profiles (web_push.h): a worker queues its batch, wakes the main thread (the store's
 * one writer) and waits under mu until the batch is stored. The queue needs no bound of its
 * own: each batch holds a query worker while it waits, and there are max_queries of those. */
typedef struct push_batch {
  const store_record *recs;
  size_t n;
  bool done;
  int result;
  pp_err err;
  struct push_batch *next;
} push_batch;

static int hook_push(void *ud, const store_record *recs, size_t n, pp_err *err) {
  app *a = ud;
  push_batch b = {.recs = recs, .n = n};
  pthread_mutex_lock(&a->mu);
  if (a->stopping) {
    pthread_mutex_unlock(&a->mu);
    return pp_err_set(err, PP_EUSAGE, "the collector is stopping: the profile was not stored");
  }
  push_batch **tail = &a->pushes; /* in the order they came (a handful at most: one per worker) */
  while (*tail) tail = &(*tail)->next;
  *tail = &b;
  scrape_wakeup(a->eng);
  while (!b.done) pthread_cond_wait(&a->cv, &a->mu);
  pthread_mutex_unlock(&a->mu);
  if (b.result < 0 && err) *err = b.err;
  return b.result;
}

/* Main thread: stores the waiting pushes (stopping: refuses them) and wakes their workers. */
static void store_pushes(app *a) {
  pthread_mutex_lock(&a->mu);
  push_batch *todo = a->pushes;
  a->pushes = NULL;
  bool stopping = a->stopping;
  pthread_mutex_unlock(&a->mu);
  for (push_batch *b = todo; b; b = b->next) {
    b->result = 0;
    for (size_t i = 0; i < b->n && b->result == 0; i++) {
      bool enospc = false;
      if (stopping) {
        b->result = pp_err_set(&b->err, PP_EUSAGE, "the collector is stopping: the profile was not stored");
      } else if ((b->result = store_append(a->st, &b->recs[i], &enospc, &b->err)) < 0) {
        a->push_failures++;
        LOG(LOG_WARN, "store: a pushed %s profile of %s: %s", b->recs[i].type, b->recs[i].labels[0].value, b->err.msg);
        if (enospc) {
          store_retention(a->st, pp_clock_real_ns(), NULL);
          store_free_space(a->st, NULL);
        }
      } else {
        a->pushed_profiles++;
        a->ingested_bytes += b->recs[i].len;
      }
    }
  }
  if (!todo) return;
  pthread_mutex_lock(&a->mu);
  for (push_batch *b = todo, *next; b; b = next) {
    next = b->next; /* b lives on its worker's stack: gone once done is seen */
    b->done = true;
  }
  pthread_cond_broadcast(&a->cv);
  pthread_mutex_unlock(&a->mu);
}

static bool hook_ready(void *ud) {
  app *a = ud;
  return atomic_load(&a->ready);
}

/* History only the bucket holds (upload.h), which answers over it lack (web.h). */
static void hook_bucket_only(void *ud, bool now, upload_bucket_only *ret, uint64_t *ret_seq) {
  app *a = ud;
  int64_t stood_in;
  pp_err err = {0};
  if (now && upload_bucket_only_now(a->up, 0, 0, NULL, NULL, ret, ret_seq, &stood_in, &err) == 0) return;
  /* the last scan's count (and, when the store could not be listed now, a seq no merge matches) */
  upload_stats us = {0};
  if (a->up) upload_get_stats(a->up, &us);
  *ret = us.bucket_only, *ret_seq = UPLOAD_SEQ_CHANGING;
}

/* What only the bucket holds of [from, to], listed now with the store's deletions unchanged
 * since seq: 0 with *segs (freed by the caller), BUCKET_RACED, or the listing's error; *held
 * always filled (web.h). */
static int bucket_list(app *a, uint64_t seq, int64_t from, int64_t to, upload_segment **segs, size_t *n,
                       int64_t *stood_in, upload_bucket_only *held, pp_err *err) {
  uint64_t now;
  int r = upload_bucket_only_now(a->up, from, to, segs, n, held, &now, stood_in, err);
  if (r < 0) {
    upload_stats us = {0};
    if (a->up) upload_get_stats(a->up, &us);
    *held = us.bucket_only;
    return r;
  }
  if (now != seq) {
    free(*segs);
    pp_err_set(err, PP_EIO, "local retention deleted segments while the answer read the store (ask again)");
    return BUCKET_RACED;
  }
  return 0;
}

/* That history's part of a merge (web.h, bucket.h). */
static int hook_bucket_merged(void *ud, uint64_t seq, const store_matcher *m, size_t nm, const char *type, int64_t from,
                              int64_t to, store_agg agg, size_t max_records, size_t budget, pprof_profile **ret,
                              size_t *ret_count, store_series_part **parts, size_t *nparts, store_merge_info *info,
                              upload_bucket_only *held, pp_err *err) {
  app *a = ud;
  upload_segment *segs;
  size_t n;
  int64_t stood_in;
  *parts = NULL, *nparts = 0;
  int r = bucket_list(a, seq, from, to, &segs, &n, &stood_in, held, err);
  if (r != 0) return r;
  r = bucket_merged(a->bk, segs, n, stood_in, agg, m, nm, type, from, to, max_records, budget, ret, ret_count, parts,
                    nparts, info, err);
  free(segs);
  return r;
}

/* Its part of a timeline (web.h, bucket.h). */
static int hook_bucket_points(void *ud, uint64_t seq, const store_matcher *m, size_t nm, const char *type, int64_t from,
                              int64_t to, size_t limit, store_row **ret, size_t *ret_n, uint64_t *ret_gen,
                              upload_bucket_only *held, pp_err *err) {
  app *a = ud;
  upload_segment *segs;
  size_t n;
  int64_t stood_in;
  *ret = NULL, *ret_n = 0;
  int r = bucket_list(a, seq, from, to, &segs, &n, &stood_in, held, err);
  if (r != 0) return r;
  r = bucket_points(a->bk, segs, n, stood_in, m, nm, type, from, to, limit, ret, ret_n, ret_gen, err);
  free(segs);
  return r;
}

/* Its part of a series listing, from the bucket's series index (web.h, bindex.h): no download. */
static int hook_bucket_series(void *ud, uint64_t seq, const store_matcher *m, size_t nm, const char *type, int64_t from,
                              int64_t to, size_t max_entries, store_series_info **ret, size_t *ret_n, size_t *ret_unknown,
                              upload_bucket_only *held, pp_err *err) {
  app *a = ud;
  upload_segment *segs;
  size_t n;
  int64_t stood_in;
  *ret = NULL, *ret_n = 0, *ret_unknown = 0;
  int r = bucket_list(a, seq, from, to, &segs, &n, &stood_in, held, err);
  if (r != 0) return r;
  if (!n) return BUCKET_NONE;
  r = bindex_series(a->data_dir, segs, n, m, nm, type, from, to, max_entries, ret, ret_n, ret_unknown, err);
  free(segs);
  return r;
}

/* The records of its part of a decoded timeline (web.h, bucket.h). */
static int hook_bucket_each_profile(void *ud, uint64_t gen, const int64_t *ids, size_t n, const pprof_limits *limits,
                                    store_profile_fn fn, void *fud, pp_err *err) {
  app *a = ud;
  return bucket_each_profile(a->bk, gen, ids, n, limits, fn, fud, err);
}

/* a family of one unlabelled integer sample */
typedef struct u64_metric {
  const char *name, *type, *help;
  uint64_t v;
} u64_metric;

static void put_u64_metrics(pp_buf *out, const u64_metric *m, size_t n) {
  for (size_t i = 0; i < n; i++) {
    pp_metrics_head(out, m[i].name, m[i].type, m[i].help);
    pp_metrics_u64(out, m[i].name, NULL, 0, m[i].v);
  }
}

static void hook_metrics(void *ud, pp_buf *out) {
  app *a = ud;
  store_stats s;
  store_get_stats(a->st, &s);
  scrape_counts sc;
  scrape_get_counts(a->eng, &sc);
  const u64_metric u[] = {
      {"collector_config_last_reload_successful", "gauge", "1 if the last config reload succeeded.", a->last_reload_ok},
      {"collector_config_last_reload_success_timestamp_seconds", "gauge", "Time of the last reload attempt.", a->last_reload_ts},
      {"collector_config_reloads_total", "counter", "Config reloads attempted.", a->reloads_total},
      {"collector_config_reload_failures_total", "counter", "Config reloads that failed.", a->reload_failures_total},
      {"collector_shard", "gauge", "Which shard this collector is (--shard).", (uint64_t)a->shard},
      {"collector_shards", "gauge", "The shard count in effect (the config's sharding block).", a->shards_now},
      {"collector_ingested_profiles_total", "counter", "Profiles stored.", a->ingested_profiles},
      {"collector_ingested_bytes_total", "counter", "Bytes of profiles stored.", a->ingested_bytes},
      {"collector_pushed_profiles_total", "counter", "Pushed profiles stored (POST /ingest; a heap push is two).", a->pushed_profiles},
      {"collector_push_store_failures_total", "counter", "Pushed profiles the store failed to append.", a->push_failures},
      {"collector_dropped_profiles_total", "counter", "Profiles dropped because the disk was full.", a->dropped_enospc},
      {"collector_store_errors_total", "counter", "Store writes that failed for other reasons.", a->store_errors},
      {"collector_store_bytes", "gauge", "Bytes on disk: index, WAL and segments.", s.disk_bytes},
      {"collector_store_profiles", "gauge", "Profiles in the store.", s.profiles},
      {"collector_store_series", "gauge", "Series in the store.", s.series},
      {"collector_store_syncs_total", "counter", "Durability rounds (fdatasync of segments and index) completed.", s.syncs},
      {"collector_store_sync_failures_total", "counter",
       "Durability rounds that failed (what they covered may be lost on power loss).", s.sync_failures},
      {"collector_retention_deleted_segments_total", "counter", "Segments deleted by retention.", s.retention_deleted_segments},
      {"collector_retention_deleted_profiles_total", "counter", "Profiles deleted by retention.", s.retention_deleted_profiles},
      {"collector_store_rollups", "gauge", "Rollup records (merged 10-minute and 1-hour windows) in the store.", s.rollups},
  };
  put_u64_metrics(out, u, sizeof u / sizeof *u);
  pp_metrics_head(out, "collector_store_last_sync_success_timestamp_seconds", "gauge",
                  "Everything stored before this time is on disk (0 = nothing yet).");
  pp_metrics_f64(out, "collector_store_last_sync_success_timestamp_seconds", NULL, 0, (double)s.durable_ns / 1e9);
  pp_metrics_head(out, "collector_compacted_until_seconds", "gauge", "Windows ending before this time are rolled up.");
  pp_metrics_f64(out, "collector_compacted_until_seconds", NULL, 0, (double)s.compacted_until_ns / 1e9);
  pp_metrics_head(out, "collector_hours_compacted_until_seconds", "gauge", "Hours ending before this time are rolled up.");
  pp_metrics_f64(out, "collector_hours_compacted_until_seconds", NULL, 0, (double)s.hours_compacted_until_ns / 1e9);
  pp_metrics_head(out, "collector_retention_raw_dropped_until_seconds", "gauge",
                  "Tiered retention deleted the raw profiles ending before this time (0 = none yet).");
  pp_metrics_f64(out, "collector_retention_raw_dropped_until_seconds", NULL, 0, (double)s.raw_dropped_until_ns / 1e9);
  if (a->up) {
    upload_stats us;
    upload_get_stats(a->up, &us);
    const u64_metric m[] = {
        {"collector_upload_segments_total", "counter", "Closed segments copied to the object store.", us.uploaded_segments},
        {"collector_upload_bytes_total", "counter", "Bytes of segments copied to the object store.", us.uploaded_bytes},
        {"collector_upload_failures_total", "counter", "Object store requests that failed (they are tried again).", us.failures},
        {"collector_upload_queue_segments", "gauge", "Closed segments waiting for their upload.", us.queued},
        {"collector_upload_lost_segments_total", "counter",
         "Segments local retention deleted before their upload (the bucket lacks them).", us.lost_segments},
        {"collector_upload_deleted_objects_total", "counter", "Objects the bucket's retention deleted.", us.deleted_objects},
        {"collector_bucket_only_segments", "gauge",
         "Uploaded segments local retention has deleted since: history only the bucket holds (sums read it).",
         us.bucket_only.segments},
        {"collector_bucket_index_segments_total", "counter",
         "Uploaded raw segments whose series went into the bucket's series index.", us.indexed_segments},
        {"collector_bucket_index_failures_total", "counter",
         "Segments whose series could not go into the bucket's series index (listings over them are partial).",
         us.index_failures},
    };
    put_u64_metrics(out, m, sizeof m / sizeof *m);
    pp_metrics_head(out, "collector_upload_last_success_timestamp_seconds", "gauge",
                    "When a segment was last copied to the object store (0 = not since start).");
    pp_metrics_f64(out, "collector_upload_last_success_timestamp_seconds", NULL, 0, (double)us.last_success_ns / 1e9);
  }
  if (a->bk) {
    bucket_stats bs;
    bucket_get_stats(a->bk, &bs);
    const u64_metric m[] = {
        {"collector_bucket_reads_total", "counter", "Merges and timelines that read history only the object store holds.", bs.merges},
        {"collector_bucket_read_failures_total", "counter",
         "Merges and timelines that could not read it (a download failed, over the cache's budget): their answers say they are partial.",
         bs.failures},
        {"collector_bucket_downloads_total", "counter", "Segments downloaded from the object store for merges.", bs.downloads},
        {"collector_bucket_download_bytes_total", "counter", "Their bytes.", bs.download_bytes},
        {"collector_bucket_cache_segments", "gauge", "Downloaded segments kept for the next merges.", bs.cached_segments},
        {"collector_bucket_cache_bytes", "gauge", "Their bytes (--object-store-cache-size bounds them).", bs.cached_bytes},
    };
    put_u64_metrics(out, m, sizeof m / sizeof *m);
  }
  pp_metrics_head(out, "collector_targets_up", "gauge", "Scrape jobs whose last scrape succeeded.");
  pp_metrics_u64(out, "collector_targets_up", NULL, 0, sc.up);
  pp_metrics_head(out, "collector_build_info", "gauge", "Version and revision.");
  pp_metrics_u64(out, "collector_build_info", (pp_metric_label[]){{"version", PP_VERSION}, {"revision", PP_REVISION}}, 2, 1);
}

/* Logs the uploads' state once per change (main thread): a warning when they start failing,
 * with the reason, a note when they succeed again, and a warning for each segment retention
 * deleted before its upload. */
static void log_upload_state(app *a, int64_t now) {
  if (!a->up || now - a->upload_checked_at < 1000000000) return;
  a->upload_checked_at = now;
  upload_stats us;
  upload_get_stats(a->up, &us);
  if (us.index_failures > a->index_failures) {
    LOG(LOG_WARN, "object store: %" PRIu64 " segment(s) not in the bucket's series index (series listings over them are "
        "partial): %s", us.index_failures - a->index_failures, us.last_index_error);
    a->index_failures = us.index_failures;
  }
  if (us.lost_segments > a->upload_lost) {
    LOG(LOG_WARN, "object store: %" PRIu64 " segment(s) deleted by local retention before their upload (%" PRIu64 " in all)",
        us.lost_segments - a->upload_lost, us.lost_segments);
    a->upload_lost = us.lost_segments;
  }
  if (us.deleting_failing != a->upload_deleting_failing) {
    a->upload_deleting_failing = us.deleting_failing;
    if (us.deleting_failing)
      LOG(LOG_WARN, "object store: the bucket's retention cannot delete objects (tried again in a minute): %s", us.last_delete_error);
    else
      LOG(LOG_INFO, "object store: the bucket's retention deletes again");
  }
  if (us.failing == a->upload_failing) return;
  a->upload_failing = us.failing;
  if (us.failing)
    LOG(LOG_WARN, "object store: uploads fail (%" PRIu64 " segments waiting; tried again with back-off): %s", us.queued, us.last_error);
  else
    LOG(LOG_INFO, "object store: uploads succeed again (%" PRIu64 " requests failed in all)", us.failures);
}

/* Logs the store's durability rounds once per change of state (main thread): a warning when
 * they start failing, with the reason, and a note when one succeeds again; not a line per
 * round (one a second while a disk is failing). */
static void log_sync_state(app *a, int64_t now) {
  /* the syncer's rounds are a second apart, and store_get_stats stats the store's files: not on
   * every turn of the loop (thousands a second while scrapes complete) */
  if (now - a->sync_checked_at < 1000000000) return;
  a->sync_checked_at = now;
  store_stats s;
  store_get_stats(a->st, &s);
  if (s.sync_failing == a->sync_failing) return;
  a->sync_failing = s.sync_failing;
  if (s.sync_failing)
    LOG(LOG_WARN, "store: durability round failed (%" PRIu64 " failed so far): %s; profiles stored since then may be lost on power loss",
        s.sync_failures, s.last_sync_error);
  else
    LOG(LOG_INFO, "store: durability rounds succeed again (%" PRIu64 " failed in all)", s.sync_failures);
}

/* The sink: one scraped profile into the store (main thread). */
static void on_scrape(void *ud, const scrape_result *r) {
  app *a = ud;
  store_label labels[80];
  size_t n = 0;
  labels[n++] = (store_label){"monitor", r->monitor};
  labels[n++] = (store_label){"endpoint", r->endpoint};
  for (size_t i = 0; i < r->nlabels && n < 80; i++) labels[n++] = (store_label){r->labels[i].key, r->labels[i].value};
  store_record rec = {labels, n, r->type, r->start_ns, r->end_ns, r->data, r->len, r->profile};
  bool enospc = false;
  pp_err err = {0};
  if (store_append(a->st, &rec, &enospc, &err) < 0) {
    if (enospc) {
      a->dropped_enospc++;
      LOG(LOG_ERROR, "disk full: dropped %s profile of %s (%s); freeing the oldest segment", r->type, r->monitor, err.msg);
      store_retention(a->st, pp_clock_real_ns(), NULL);
      store_free_space(a->st, NULL);
    } else {
      a->store_errors++;
      LOG(LOG_ERROR, "store: %s", err.msg);
    }
    return;
  }
  a->ingested_profiles++;
  a->ingested_bytes += r->len;
  LOG(LOG_DEBUG, "stored %s profile of %s (%zu bytes)", r->type, r->monitor, r->len);
}

/* ---- command line ------------------------------------------------------------------------- */

static void usage(FILE *f) {
  fputs("usage: collector [options]\n"
        "\n"
        "  -c, --config FILE             config file (YAML; docs/config.md)\n"
        "  -d, --data-dir DIR            where profiles are stored (default /tmp/collector)\n"
        "  -p, --web-port PORT           HTTP port for the UI and API (default 8989)\n"
        "      --web-listen-address ADDR listen address, IP or IP:PORT (default all)\n"
        "      --retention-size SIZE     disk budget for the data dir, e.g. 5GiB (default none)\n"
        "      --retention-time DURATION keep profiles this long, e.g. 15d (default none)\n"
        "      --retention-raw DURATION  tiers: keep raw profiles this long once rolled up, e.g. 24h\n"
        "      --retention-raw-size SIZE tiers: disk budget of the raw profiles' segments\n"
        "      --retention-rollup DURATION  tiers: keep 10-minute and 1-hour rollups this long, e.g. 30d\n"
        "      --retention-rollup-size SIZE tiers: disk budget of the rollups' segments\n"
        "                                (docs/operations.md: tiered retention; --retention-size and\n"
        "                                --retention-time still bound the whole store)\n"
        "      --object-store-endpoint URL  copy closed segments to this S3-compatible server,\n"
        "                                e.g. https://s3.eu-west-1.amazonaws.com (credentials from\n"
        "                                AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)\n"
        "      --object-store-bucket NAME  the bucket (required with an endpoint)\n"
        "      --object-store-prefix PATH  where in the bucket, e.g. cluster-a/collector-0\n"
        "      --object-store-region NAME  the region that signs requests (default us-east-1)\n"
        "      --object-store-retention DURATION  delete objects this old (default: keep)\n"
        "      --no-object-store-restore  do not fill a new data directory from the bucket\n"
        "                                (by default one with no store yet gets the bucket's\n"
        "                                segments, newest first, as many as --retention-size holds)\n"
        "      --object-store-cache-size SIZE  merges over history only the bucket holds (local\n"
        "                                retention deleted it) download it into <data dir>/bucket-cache,\n"
        "                                kept within this size (default 1GiB); sums read it\n"
        "      --no-object-store-reads   merges never read the bucket (their answers say when they lack\n"
        "                                history only it holds)\n"
        "      --segment-max-age DURATION  close the segment being written after this long, 10s..24h\n"
        "                                (default 1h; 10m with an object store: what is not in the\n"
        "                                bucket yet)\n"
        "      --shard N                 which of the config's shards this is, 0.. (default 0;\n"
        "                                docs/config.md: sharding)\n"
        "      --peer URL                another shard or collector whose profiles merges add, e.g.\n"
        "                                http://collector-shard-1-0.collector:8989 (repeat for each;\n"
        "                                its answers ask it with local=1; docs/operations.md)\n"
        "      --query-only              scrape nothing: answer from the peers (--peer, query.peers)\n"
        "                                and whatever the data dir holds\n"
        "      --peer-timeout DURATION   how long a merge waits for a peer (default 10s); one that\n"
        "                                does not answer makes the answer partial, and it says so\n"
        "      --peer-bearer-token-file FILE  the bearer token the peers are asked with (default:\n"
        "                                --web-bearer-token-file's, when given: shards sharing one)\n"
        "      --query-raw-only          merges read raw profiles only, never rollups (slower; for\n"
        "                                checking answers and load tests; rollups are still built)\n"
        "  -l, --log-level LEVEL         debug, info, warn or error (default info)\n"
        "      --web-basic-auth-file FILE  require HTTP basic auth for the UI and API: name:hash\n"
        "                                lines (htpasswd -B); /healthz and /readyz stay open\n"
        "      --web-bearer-token-file FILE  or accept this bearer token (either may be given)\n"
        "      --web-max-queries N       queries (renders, timelines, profiles) run at once; the\n"
        "                                rest wait briefly, then get 503 (default: the cores)\n"
        "      --web-query-timeout DURATION  a request's deadline (default 30s)\n"
        "      --web-query-memory SIZE   memory for the running queries, split between them\n"
        "                                (default 256MiB, or half the cgroup's limit if less)\n"
        "      --web-cache-size SIZE     recent answers kept (default 32MiB; 0 = none)\n"
        "      --web-max-records N       profiles one query merges at most, the newest; an answer\n"
        "                                over more says \"truncated\" (default 20000)\n"
        "      --check-config FILE       validate a config file and exit (0 valid, 1 invalid)\n"
        "      --shutdown-grace DURATION on SIGTERM, let scrapes in flight finish and be stored\n"
        "                                for at most this long (default 5s; 0 = abandon them)\n"
        "  -h, --help                    this text\n"
        "      --version                 version and revision\n"
        "\n"
        "Signals: SIGHUP reloads the config; SIGINT/SIGTERM stop: no scrape starts any more, those\n"
        "in flight get --shutdown-grace to finish, then (with an object store) the last segments are\n"
        "uploaded for up to 10 s, then the store is closed. The config is also\n"
        "reloaded when its file changes, and on POST /reload or POST /-/reload.\n"
        "Exit codes: 0 stopped cleanly, 1 could not start (or the stop took over the grace + 15 s),\n"
        "2 bad command line.\n",
        f);
}

/* The last resort of a stop: whatever blocks past the bound, the process ends. */
static void *shutdown_watchdog(void *arg) {
  double limit = *(const double *)arg;
  struct timespec ts = {(time_t)limit, (long)((limit - (double)(time_t)limit) * 1e9)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
  LOG(LOG_ERROR, "stopping took longer than %.1f s: exiting without closing the store (it is repaired at the next start)", limit);
  _exit(1);
  return NULL;
}

/* s as a whole decimal number in lo..hi into *v */
static bool int_flag(const char *s, long lo, long hi, long *v) {
  char *end;
  errno = 0;
  *v = strtol(s, &end, 10);
  return !errno && end != s && !*end && *v >= lo && *v <= hi;
}

static int bad_flag(const char *fmt, const char *v) {
  fprintf(stderr, "collector: ");
  fprintf(stderr, fmt, v);
  fprintf(stderr, " (see --help)\n");
  return 2;
}

/* glibc's malloc hands blocks above its mmap threshold (dynamic, at most 32 MiB) back to the
 * kernel when they are freed and trims the heaps' free tops above 2x that, so each large query
 * (a 100k-node render: tens of MB of tables) faults its memory in anew; on the 2-core VM the page
 * faults were two thirds of a sandwich render (220 ms against 55-78 ms with the memory kept,
 * docs/benchmarks.md). So blocks up to 32 MiB come from the heaps and up to 64 MiB of free top is
 * kept per heap, which keeps freed query memory in the process (docs/operations.md). glibc's own
 * MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ (or GLIBC_TUNABLES) in the environment win. */
static void tune_malloc(void) {
  if (getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TRIM_THRESHOLD_") || getenv("GLIBC_TUNABLES")) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int main(int argc, char **argv) {
  tune_malloc();
  const char *config = NULL, *data_dir = "/tmp/collector", *listen = "";
  int port = 8989;
  uint64_t retention_size = 0;
  double retention_time = 0, shutdown_grace = 5;
  double raw_time = 0, rollup_time = 0;
  uint64_t raw_size = 0, rollup_size = 0;
  bool raw_reads = false;
  int shard = 0;
  double segment_age = 0;
  bool no_restore = false, query_only = false, no_bucket_reads = false;
  uint64_t bucket_cache = 0;
  upload_opts uo = {0};
  static const struct option lo[] = {
      {"config", required_argument, 0, 'c'},        {"log-level", required_argument, 0, 'l'},
      {"web-port", required_argument, 0, 'p'},      {"data-dir", required_argument, 0, 'd'},
      {"retention-size", required_argument, 0, 'S'}, {"retention-time", required_argument, 0, 'T'},
      {"web-listen-address", required_argument, 0, 'L'}, {"check-config", required_argument, 0, 'C'},
      {"web-basic-auth-file", required_argument, 0, 'U'}, {"web-bearer-token-file", required_argument, 0, 'K'},
      {"web-max-queries", required_argument, 0, 'Q'}, {"web-query-timeout", required_argument, 0, 'D'},
      {"web-query-memory", required_argument, 0, 'M'}, {"web-cache-size", required_argument, 0, 'A'},
      {"web-max-records", required_argument, 0, 'R'},
      {"shutdown-grace", required_argument, 0, 'G'},
      {"retention-raw", required_argument, 0, 'w'}, {"retention-raw-size", required_argument, 0, 'W'},
      {"retention-rollup", required_argument, 0, 'x'}, {"retention-rollup-size", required_argument, 0, 'X'},
      {"query-raw-only", no_argument, 0, 'O'},
      {"object-store-endpoint", required_argument, 0, 1001}, {"object-store-bucket", required_argument, 0, 1002},
      {"object-store-prefix", required_argument, 0, 1003}, {"object-store-region", required_argument, 0, 1004},
      {"object-store-retention", required_argument, 0, 1005}, {"shard", required_argument, 0, 1006},
      {"segment-max-age", required_argument, 0, 1007},
      {"peer", required_argument, 0, 1008}, {"peer-timeout", required_argument, 0, 1009},
      {"peer-bearer-token-file", required_argument, 0, 1012},
      {"no-object-store-restore", no_argument, 0, 1010}, {"query-only", no_argument, 0, 1011},
      {"object-store-cache-size", required_argument, 0, 1013}, {"no-object-store-reads", no_argument, 0, 1014},
      {"help", no_argument, 0, 'h'},                {"version", no_argument, 0, 'V'},
      {0, 0, 0, 0}};
  int ch;
  pp_err err = {0};
  static web_auth auth;
  static web_auth peer_auth; /* (its token only: --peer-bearer-token-file) */
  web_opts wopts;
  web_opts_default(&wopts);
  /* --peer URLs (argv's strings), each checked as it comes: a bad one is a bad flag */
  static const char *peers[WEB_FANOUT_MAX_PEERS];
  size_t npeers = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, ":c:l:p:d:h", lo, NULL)) != -1) {
    switch (ch) {
    case 'c': config = optarg; break;
    case 'd': data_dir = optarg; break;
    case 'l': {
      int lv = pp_log_level_from_name(optarg);
      if (lv < 0) return bad_flag("--log-level wants debug, info, warn or error, not \"%s\"", optarg);
      pp_log_set_level((pp_log_level)lv);
      break;
    }
    case 'p': {
      long v;
      if (!int_flag(optarg, 1, 65535, &v)) return bad_flag("--web-port wants 1..65535, not \"%s\"", optarg);
      port = (int)v;
      break;
    }
    case 'S':
      if (pp_parse_size(optarg, &retention_size, &err) < 0) return bad_flag("--retention-size: %s", err.msg);
      break;
    case 'T':
      if (pp_parse_duration(optarg, &retention_time, &err) < 0) return bad_flag("--retention-time: %s", err.msg);
      break;
    case 'w':
      if (pp_parse_duration(optarg, &raw_time, &err) < 0) return bad_flag("--retention-raw: %s", err.msg);
      break;
    case 'W':
      if (pp_parse_size(optarg, &raw_size, &err) < 0) return bad_flag("--retention-raw-size: %s", err.msg);
      break;
    case 'x':
      if (pp_parse_duration(optarg, &rollup_time, &err) < 0) return bad_flag("--retention-rollup: %s", err.msg);
      break;
    case 'X':
      if (pp_parse_size(optarg, &rollup_size, &err) < 0) return bad_flag("--retention-rollup-size: %s", err.msg);
      break;
    case 'O':
      raw_reads = true;
      break;
    case 1006: {
      long v;
      if (!int_flag(optarg, 0, SV_MAX_SHARDS - 1, &v)) return bad_flag("--shard wants 0..999, not \"%s\"", optarg);
      shard = (int)v;
      break;
    }
    case 'G':
      if (pp_parse_duration(optarg, &shutdown_grace, &err) < 0) return bad_flag("--shutdown-grace: %s", err.msg);
      if (shutdown_grace > 60) return bad_flag("--shutdown-grace: %s is over 60s (a pod gets 30s by default)", optarg);
      break;
    case 'L': {
      static char host[256];
      snprintf(host, sizeof host, "%s", optarg);
      char *colon = strrchr(host, ':');
      if (colon && !strchr(colon, ']') && strchr(host, ':') == colon) {
        *colon = '\0';
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (*end || v < 1 || v > 65535) return bad_flag("--web-listen-address: bad port in \"%s\"", optarg);
        port = (int)v;
      }
      if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        char *rb = strchr(host, ']');
        if (rb) *rb = '\0';
      }
      listen = host;
      break;
    }
    case 'C': {
      cfg_config *c = NULL;
      if (cfg_load_file(optarg, &c, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
      }
      for (size_t i = 0; i < c->nwarnings; i++) fprintf(stderr, "warning: %s\n", c->warnings[i]);
      printf("%s: valid, %zu monitors\n", optarg, c->nmonitors);
      cfg_free(c);
      return 0;
    }
    case 'U':
      if (web_auth_load_users(optarg, &auth, &err) < 0) return bad_flag("--web-basic-auth-file: %s", err.msg);
      break;
    case 'K':
      if (web_auth_load_token(optarg, &auth, &err) < 0) return bad_flag("--web-bearer-token-file: %s", err.msg);
      break;
    case 'Q': {
      long v;
      if (!int_flag(optarg, 1, 256, &v)) return bad_flag("--web-max-queries wants 1..256, not \"%s\"", optarg);
      wopts.max_queries = (unsigned)v;
      break;
    }
    case 'R': {
      long v;
      if (!int_flag(optarg, 1, 1000000, &v)) return bad_flag("--web-max-records wants 1..1000000, not \"%s\"", optarg);
      wopts.max_records = (size_t)v;
      break;
    }
    case 'D':
      if (pp_parse_duration(optarg, &wopts.query_timeout_s, &err) < 0 || wopts.query_timeout_s < 0.1 ||
          wopts.query_timeout_s > 3600)
        return bad_flag("--web-query-timeout wants a duration from 100ms to 1h, not \"%s\"", optarg);
      break;
    case 'M':
      if (pp_parse_size(optarg, &wopts.query_memory, &err) < 0 || wopts.query_memory < ((uint64_t)1 << 20))
        return bad_flag("--web-query-memory wants a size of at least 1MiB, not \"%s\"", optarg);
      break;
    case 'A':
      if (pp_parse_size(optarg, &wopts.cache_bytes, &err) < 0) return bad_flag("--web-cache-size: %s", err.msg);
      break;
    case 1001: uo.endpoint = optarg; break;
    case 1002: uo.bucket = optarg; break;
    case 1003: uo.prefix = optarg; break;
    case 1004: uo.region = optarg; break;
    case 1005:
      if (pp_parse_duration(optarg, &uo.retention_seconds, &err) < 0) return bad_flag("--object-store-retention: %s", err.msg);
      break;
    case 1007:
      if (pp_parse_duration(optarg, &segment_age, &err) < 0) return bad_flag("--segment-max-age: %s", err.msg);
      if (segment_age < 10 || segment_age > 86400) return bad_flag("--segment-max-age: %s is outside 10s..24h", optarg);
      break;
    case 1010: no_restore = true; break;
    case 1013:
      if (pp_parse_size(optarg, &bucket_cache, &err) < 0 || bucket_cache < ((uint64_t)1 << 20))
        return bad_flag("--object-store-cache-size wants a size of at least 1MiB, not \"%s\"", optarg);
      break;
    case 1014: no_bucket_reads = true; break;
    case 1011: query_only = true; break;
    case 1012:
      if (web_auth_load_token(optarg, &peer_auth, &err) < 0) return bad_flag("--peer-bearer-token-file: %s", err.msg);
      if (!web_fanout_token_ok(peer_auth.token))
        return bad_flag("--peer-bearer-token-file: %s: the token must be printable ASCII without spaces (it goes into a header)",
                        optarg);
      break;
    case 1008:
      if (npeers == WEB_FANOUT_MAX_PEERS) return bad_flag("--peer: at most 128 peers, not more (%s was one too many)", optarg);
      if (sv_check_endpoint(optarg, &err) < 0) return bad_flag("--peer %s", err.msg);
      peers[npeers++] = optarg;
      break;
    case 1009:
      if (pp_parse_duration(optarg, &wopts.peer_timeout_s, &err) < 0 || wopts.peer_timeout_s < 0.1 ||
          wopts.peer_timeout_s > 600)
        return bad_flag("--peer-timeout wants a duration from 100ms to 10m, not \"%s\"", optarg);
      break;
    case 'h': usage(stdout); return 0;
    case 'V': printf("collector %s (revision %s)\n", PP_VERSION, PP_REVISION); return 0;
    case ':': return bad_flag("%s needs a value", argv[optind - 1]);
    default: return bad_flag("unknown flag %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return bad_flag("unexpected argument \"%s\"", argv[optind]);
  if (!config) return bad_flag("%s", "--config FILE is required");
  if (uo.endpoint || uo.bucket || uo.prefix || uo.region || uo.retention_seconds > 0) {
    uo.access_key = getenv("AWS_ACCESS_KEY_ID");
    uo.secret_key = getenv("AWS_SECRET_ACCESS_KEY");
    if (upload_check_opts(&uo, &err) < 0) return bad_flag("--object-store-*: %s", err.msg);
  }
  if ((bucket_cache || no_bucket_reads) && !uo.endpoint)
    return bad_flag("%s", "--object-store-cache-size and --no-object-store-reads need --object-store-endpoint");
  /* rollups are what is left of raw past its period: a shorter rollup period would delete them
   * while raw is still there, and raw would outlive what was meant to replace it */
  if (raw_time > 0 && rollup_time > 0 && rollup_time < raw_time)
    return bad_flag("%s", "--retention-rollup is shorter than --retention-raw");
  /* where tiered retention deleted raw profiles only rollups are left to answer from */
  if (raw_reads && (raw_time > 0 || raw_size || rollup_time > 0 || rollup_size))
    return bad_flag("%s", "--query-raw-only cannot go with tiered retention (--retention-raw*, --retention-rollup*)");

  /* one socket per target connection: thousands of targets need more than the usual 1024 */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  /* Signals go to the main thread only: every thread started from here on inherits them blocked,
   * and the main thread unblocks them once the others run. */
  sigset_t stopsigs, oldmask;
  sigemptyset(&stopsigs);
  sigaddset(&stopsigs, SIGINT);
  sigaddset(&stopsigs, SIGTERM);
  sigaddset(&stopsigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stopsigs, &oldmask);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: a blocking call on the main thread is interrupted */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  app a;
  memset(&a, 0, sizeof a);
  a.config_path = config;
  a.data_dir = data_dir;
  a.shard = shard;
  a.query_only = query_only;
  a.started_ns = pp_clock_real_ns();
  pthread_mutex_init(&a.mu, NULL);
  pthread_cond_init(&a.cv, NULL);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = 1;
  web *w = NULL;
  int ino = -1;

  store_opts so = {.dir = data_dir,
                   .retention_bytes = retention_size,
                   .retention_seconds = retention_time,
                   .retention_raw_seconds = raw_time,
                   .retention_raw_bytes = raw_size,
                   .retention_rollup_seconds = rollup_time,
                   .retention_rollup_bytes = rollup_size,
                   .no_rollups = raw_reads,
                   /* with a bucket, what is not uploaded yet is the active segment: ten minutes
                    * of it at most by default (an object every ten minutes is no cost) */
                   .segment_max_age = segment_age ? segment_age : uo.endpoint ? 600 : 0};
  if (uo.endpoint && !no_restore) {
    /* a new data directory starts from the bucket's copy (a pod whose volume was lost) */
    restore_stats rs;
    int rr = restore_run(&uo, data_dir, retention_size, &rs, &err);
    if (rr < 0)
      LOG(LOG_WARN, "object store: nothing restored, starting empty: %s", err.msg);
    else if (rr == 0)
      LOG(LOG_INFO, "object store: a new data directory: %zu of %zu segments restored from the bucket (%" PRIu64
                    " bytes); %zu older left there (over the disk budget), %zu duplicate ids, %zu other keys",
          rs.restored, rs.listed, rs.bytes, rs.over_budget, rs.duplicates, rs.foreign);
  }
  store_repair rep;
  if (store_open(&so, &a.st, &rep, &err) < 0) {
    LOG(LOG_ERROR, "cannot open the store: %s", err.msg);
    goto out;
  }
  if (rep.index_rebuilt || rep.rows_dropped || rep.bytes_truncated || rep.orphans_removed)
    LOG(LOG_WARN, "store repaired: index rebuilt=%d (%zu rows), %zu rows dropped, %zu bytes truncated, %zu orphan segments removed",
        rep.index_rebuilt, rep.rows_rebuilt, rep.rows_dropped, rep.bytes_truncated, rep.orphans_removed);
  if (store_start_compactor(a.st, &err) < 0) LOG(LOG_WARN, "rollups disabled: %s", err.msg);
  if (uo.endpoint) {
    if (upload_start(&uo, a.st, data_dir, &a.up, &err) < 0) {
      LOG(LOG_ERROR, "object store: %s", err.msg);
      goto out;
    }
    LOG(LOG_INFO, "object store: closed segments go to %s/%s/%s", uo.endpoint, uo.bucket, uo.prefix ? uo.prefix : "");
    if (!no_bucket_reads && bucket_new(&uo, data_dir, bucket_cache, &a.bk, &err) < 0)
      LOG(LOG_WARN, "object store: merges will not read the bucket: %s", err.msg);
  }
  if (scrape_new(on_scrape, &a, &a.eng, &err) < 0 || do_reload(&a, false, false, &err) < 0) {
    LOG(LOG_ERROR, "%s", err.msg);
    goto out;
  }
  if (a.cfg->self_pprof_port) {
    if (selfprof_start("127.0.0.1", a.cfg->self_pprof_port, &a.sp, &err) < 0)
      LOG(LOG_WARN, "self telemetry disabled: %s", err.msg);
    else
      LOG(LOG_INFO, "self telemetry: pprof on http://127.0.0.1:%d/debug/pprof/", a.cfg->self_pprof_port);
  }
  web_hooks hooks = {.ud = &a, .st = a.st, .eng = a.eng, .reload = hook_reload, .ready = hook_ready, .push = hook_push,
                     .metrics = hook_metrics, .bucket_only = a.up ? hook_bucket_only : NULL, .auth = &auth,
                     .bucket_merged = a.bk ? hook_bucket_merged : NULL,
                     .bucket_points = a.bk ? hook_bucket_points : NULL,
                     .bucket_each_profile = a.bk ? hook_bucket_each_profile : NULL,
                     .bucket_series = a.up ? hook_bucket_series : NULL};
  wopts.peers = peers;
  wopts.npeers = npeers;
  /* shards run with one token for all of them ask each other with it */
  wopts.peer_token = peer_auth.token ? peer_auth.token : web_fanout_token_ok(auth.token) ? auth.token : NULL;
  if (!peer_auth.token && auth.token && !wopts.peer_token && (npeers || a.cfg->npeers))
    LOG(LOG_WARN, "--web-bearer-token-file's token has characters a header cannot carry: the peers are asked without "
        "credentials (give them one with --peer-bearer-token-file)");
  if (web_start(listen, port, &hooks, &wopts, &w, &err) < 0 ||
      web_set_peers(w, (const char *const *)a.cfg->peers, a.cfg->npeers, &err) < 0) {
    LOG(LOG_ERROR, "%s", err.msg);
    goto out;
  }
  a.w = w;
  LOG(LOG_INFO, "collector %s listening on %s:%d, data in %s", PP_VERSION, *listen ? listen : "*", port, data_dir);

  /* Watch the config's directory: editors replace files, and Kubernetes ConfigMap volumes
   * swap a ..data symlink, neither of which a watch on the file itself would see. */
  ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ino >= 0) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", config);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    if (inotify_add_watch(ino, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0) {
      close(ino);
      ino = -1;
    }
  }
  pthread_sigmask(SIG_SETMASK, &oldmask, NULL);

  atomic_store(&a.ready, true);
  int64_t last_retention = 0, file_event_at = 0;
  while (!stop_flag) {
    struct curl_waitfd wfd = {.fd = ino, .events = CURL_WAIT_POLLIN};
    int ready = scrape_run(a.eng, 250, ino >= 0 ? &wfd : NULL, ino >= 0 ? 1 : 0);
    int64_t now = pp_clock_real_ns();
    if (ready > 0) {
      char evbuf[4096];
      while (read(ino, evbuf, sizeof evbuf) > 0) {
      }
      file_event_at = now; /* settle: ConfigMap updates are several renames */
    }
    if (hup_flag || (file_event_at && now - file_event_at > 200000000)) {
      bool from_file = !hup_flag;
      hup_flag = 0;
      file_event_at = 0;
      int r = do_reload(&a, from_file, false, &err);
      if (r < 0) LOG(LOG_ERROR, "config reload failed, keeping the previous config: %s", err.msg);
    }
    pthread_mutex_lock(&a.mu);
    if (a.pending && !stop_flag) {
      a.pending = false;
      a.started++;
      pthread_mutex_unlock(&a.mu);
      pp_err rerr = {0};
      int r = do_reload(&a, false, false, &rerr);
      if (r < 0) LOG(LOG_ERROR, "config reload failed, keeping the previous config: %s", rerr.msg);
      pthread_mutex_lock(&a.mu);
      a.result = r < 0 ? r : 0;
      a.result_err = rerr;
      a.served = a.started;
      pthread_cond_broadcast(&a.cv);
    }
    pthread_mutex_unlock(&a.mu);
    if (cfg_shards_at(a.cfg, now / 1000000000) != (int)a.shards_now) {
      /* the planned change of the shard count has come: every shard switches now */
      int r = do_reload(&a, false, true, &err);
      if (r < 0) LOG(LOG_ERROR, "config reload at the shards' change failed, keeping the previous config: %s", err.msg);
    }
    store_pushes(&a);
    if (store_maintain(a.st, &err) < 0) LOG(LOG_WARN, "storing a rollup: %s", err.msg);
    log_sync_state(&a, now);
    log_upload_state(&a, now);
    if (now - last_retention > 10LL * 1000000000 || store_retention_due(a.st)) {
      last_retention = now;
      int d = store_retention(a.st, now, &err);
      if (d > 0) LOG(LOG_INFO, "retention deleted %d segments", d);
    }
  }
  {
    /* draining: see the diagram at the top */
    int64_t t0 = pp_clock_mono_ms();
    static double watchdog_s;
    watchdog_s = shutdown_grace + SHUTDOWN_WATCHDOG_EXTRA_S;
    pthread_t wd;
    if (pthread_create(&wd, NULL, shutdown_watchdog, &watchdog_s) == 0) pthread_detach(wd);
    atomic_store(&a.ready, false);
    pthread_mutex_lock(&a.mu);
    a.stopping = true;
    pthread_cond_broadcast(&a.cv); /* reload requests waiting are answered: not reloaded */
    pthread_mutex_unlock(&a.mu);
    store_pushes(&a); /* pushes that came before: answered, not stored */
    selfprof_finish(a.sp); /* a self profile in progress ends now, so its scrape can finish */
    size_t inflight = scrape_drain(a.eng), left = inflight;
    LOG(LOG_INFO, "stopping: %zu scrapes in flight, waiting up to %.1f s for them", inflight, shutdown_grace);
    int64_t until = t0 + (int64_t)(shutdown_grace * 1000);
    while (left && pp_clock_mono_ms() < until) {
      int64_t wait = until - pp_clock_mono_ms();
      scrape_run(a.eng, wait < 100 ? (int)wait : 100, NULL, 0);
      left = scrape_drain(a.eng);
    }
    LOG(LOG_INFO, "stopping: %zu of %zu scrapes in flight finished, %zu abandoned; closing (%lld ms)", inflight - left,
        inflight, left, (long long)(pp_clock_mono_ms() - t0));
    if (a.up) {
      /* the last segments go to the bucket now, not at a next start that may never come (a
       * shard scaled away, a pod whose volume goes with it); within the watchdog's margin */
      int64_t t1 = pp_clock_mono_ms();
      store_seal(a.st);
      bool all = upload_flush(a.up, STOP_FLUSH_MS);
      upload_stats us;
      upload_get_stats(a.up, &us);
      if (all)
        LOG(LOG_INFO, "stopping: every closed segment is in the object store (%lld ms)", (long long)(pp_clock_mono_ms() - t1));
      else
        LOG(LOG_WARN, "stopping: %" PRIu64 " segment(s) not in the object store after %d s (%s); they are sent at the next start",
            us.queued, STOP_FLUSH_MS / 1000, us.failing ? us.last_error : "still uploading");
    }
  }
  rc = 0;
out:
  atomic_store(&a.ready, false);
  web_stop(w);
  selfprof_stop(a.sp);
  if (ino >= 0) close(ino);
  scrape_free(a.eng);
  upload_stop(a.up);
  bucket_free(a.bk);
  store_close(a.st);
  cfg_free(a.cfg);
  free(a.config_text);
  curl_global_cleanup();
  if (rc == 0) LOG(LOG_INFO, "stopped");
  return rc;
}
