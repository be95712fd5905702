/* Merges over the history only the bucket holds; see bucket.h for the contract. */
#include "bucket.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore.h"

typedef struct cached {
  int64_t id, min_ns; /* the object (ids alone may repeat: upload.h, so both name it) */
  int64_t max_ns;
  int64_t file;       /* its file, <file>.seg: the cache's own count (two objects may share an id) */
  uint64_t size;
  uint64_t used;      /* the merge that last needed it (b->tick) */
} cached;

struct bucket {
  const upload_opts *o;
  char *dir, *segdir;
  uint64_t budget;
  pthread_mutex_t mu;  /* the cache: held through downloads and the merge */
  pthread_mutex_t smu; /* stats alone, so /metrics never waits for a download (taken under mu,
                        * never the other way round) */
  bool mu_made;
  cached *v;
  size_t n, cap;
  uint64_t bytes, tick;
  int64_t files;       /* file names given so far */
  store *st;  /* over exactly v's segments (NULL: to be opened) */
  uint64_t opened; /* times st was opened: its ids name other records after each (bucket_points) */
  bucket_stats stats;
};

/* Removes the regular files in dir (not recursing). */
static void empty_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[4400];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat sb;
    if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode)) unlink(p);
  }
  closedir(d);
}

int bucket_new(const upload_opts *o, const char *data_dir, uint64_t budget, bucket **ret, pp_err *err) {
  bucket *b = calloc(1, sizeof *b);
  if (!b) return pp_err_set(err, PP_ENOMEM, "out of memory");
  b->o = o;
  b->budget = budget ? budget : BUCKET_CACHE_DEFAULT;
  size_t l = strlen(data_dir) + 32;
  b->dir = malloc(l), b->segdir = malloc(l);
  if (!b->dir || !b->segdir) {
    bucket_free(b);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  snprintf(b->dir, l, "%s/bucket-cache", data_dir);
  snprintf(b->segdir, l, "%s/bucket-cache/segments", data_dir);
  if ((mkdir(b->dir, 0750) < 0 && errno != EEXIST) || (mkdir(b->segdir, 0750) < 0 && errno != EEXIST)) {
    int e = errno;
    bucket_free(b);
    return pp_err_set(err, PP_EIO, "%s/bucket-cache: %s", data_dir, strerror(e));
  }
  /* a previous run's cache: its objects' keys were not kept, so it is not trusted */
  empty_dir(b->segdir);
  empty_dir(b->dir);
  pthread_mutex_init(&b->mu, NULL);
  pthread_mutex_init(&b->smu, NULL);
  b->mu_made = true;
  *ret = b;
  return 0;
}

void bucket_free(bucket *b) {
  if (!b) return;
  if (b->st) store_close(b->st);
  if (b->mu_made) pthread_mutex_destroy(&b->mu), pthread_mutex_destroy(&b->smu);
  free(b->v);
  free(b->dir);
  free(b->segdir);
  free(b);
}

/* Whether a merge or timeline may read segs: raw segments that no local rollup answers for
 * (bucket.h). */
static bool readable(const upload_segment *segs, size_t n, int64_t raw_stood_in) {
  /* the local store answers a window starting at or before raw_stood_in from its rollup, which
   * holds that window's profiles of every raw segment, these too (store.h): the end of the
   * last such hour bounds what would be counted twice */
  int64_t rolled = raw_stood_in > 0 ? (raw_stood_in / STORE_ROLLUP_HOUR_NS + 1) * STORE_ROLLUP_HOUR_NS : INT64_MIN;
  for (size_t i = 0; i < n; i++)
    if (segs[i].tier != 0 || segs[i].min_ns < rolled) return false;
  return true;
}

static void seg_path(const bucket *b, int64_t file, char *out, size_t cap) {
  snprintf(out, cap, "%s/%016" PRIx64 ".seg", b->segdir, (uint64_t)file);
}

static void drop(bucket *b, size_t i) {
  char p[4400];
  seg_path(b, b->v[i].file, p, sizeof p);
  unlink(p);
  b->bytes -= b->v[i].size;
  b->v[i] = b->v[--b->n];
  if (b->st) store_close(b->st), b->st = NULL;
}

/* An object is named by its segment id and oldest record together (ids alone may repeat). */
static bool same_object(int64_t id, int64_t min_ns, int64_t id2, int64_t min2) {
  return id == id2 && min_ns == min2;
}

static bool listed(const upload_segment *segs, size_t n, int64_t id, int64_t min_ns) {
  for (size_t i = 0; i < n; i++)
    if (same_object(segs[i].id, segs[i].min_ns, id, min_ns)) return true;
  return false;
}

static bool cached_already(const bucket *b, const upload_segment *sg) {
  for (size_t i = 0; i < b->n; i++)
    if (same_object(b->v[i].id, b->v[i].min_ns, sg->id, sg->min_ns)) return true;
  return false;
}

/* Makes the cache hold every one of segs and nothing else in [from, to]; b->st open over it. */
static int fill(bucket *b, const upload_segment *segs, size_t n, int64_t from, int64_t to, pp_err *err) {
  b->tick++;
  /* cached segments the window meets that are not bucket-only any more (the bucket's retention
   * deleted them) */
  for (size_t i = 0; i < b->n;) {
    const cached *c = &b->v[i];
    if (listed(segs, n, c->id, c->min_ns)) b->v[i++].used = b->tick;
    else if (c->max_ns >= from && (!to || c->min_ns <= to)) drop(b, i);
    else i++;
  }
  for (size_t k = 0; k < n; k++) {
    if (cached_already(b, &segs[k])) continue;
    if (b->n == b->cap) {
      size_t cap = b->cap ? b->cap * 2 : 16;
      cached *v = realloc(b->v, cap * sizeof *v);
      if (!v) return pp_err_set(err, PP_ENOMEM, "out of memory");
      b->v = v, b->cap = cap;
    }
    if (b->st) store_close(b->st), b->st = NULL;
    int64_t file = ++b->files;
    int r = restore_segment(b->o, b->segdir, segs[k].id, segs[k].min_ns, file, err);
    if (r < 0) return r;
    char p[4400];
    struct stat sb;
    seg_path(b, file, p, sizeof p);
    uint64_t size = stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    b->v[b->n++] = (cached){segs[k].id, segs[k].min_ns, segs[k].max_ns, file, size, b->tick};
    b->bytes += size;
    pthread_mutex_lock(&b->smu);
    b->stats.downloads++;
    b->stats.download_bytes += size;
    pthread_mutex_unlock(&b->smu);
    /* over the budget: the segments this merge does not need go first, those used longest ago */
    while (b->bytes > b->budget) {
      size_t old = b->n;
      for (size_t i = 0; i < b->n; i++)
        if (b->v[i].used != b->tick && (old == b->n || b->v[i].used < b->v[old].used)) old = i;
      if (old == b->n) break;
      drop(b, old);
    }
    if (b->bytes > b->budget) { /* this merge's alone: not read, and the cache back within its budget */
      while (b->n && b->bytes > b->budget) drop(b, b->n - 1);
      return pp_err_set(err, PP_ELIMIT, "the history asked for needs more than the object store cache's %" PRIu64
                                        " bytes (--object-store-cache-size)", b->budget);
    }
  }
  if (!b->st) {
    char p[4400];
    for (const char *sfx = "index.db\0index.db-wal\0index.db-shm\0"; *sfx; sfx += strlen(sfx) + 1) {
      snprintf(p, sizeof p, "%s/%s", b->dir, sfx);
      unlink(p);
    }
    store_opts so = {0};
    so.dir = b->dir;
    so.sync_interval = -1;
    so.no_rollups = true;
    if (store_open(&so, &b->st, NULL, err) < 0) return b->st = NULL, PP_EIO;
    b->opened++;
  }
  return 0;
}

/* mu held: the gauges, before mu goes (a later read's figures are never overwritten by this one's) */
static void count_read(bucket *b, int r) {
  pthread_mutex_lock(&b->smu);
  if (r == 0 || r == PP_EUSAGE) b->stats.merges++;
  else b->stats.failures++;
  b->stats.cached_segments = b->n, b->stats.cached_bytes = b->bytes;
  pthread_mutex_unlock(&b->smu);
}

int bucket_merged(bucket *b, const upload_segment *segs, size_t n, int64_t raw_stood_in, store_agg agg,
                  const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to, size_t max_records,
                  size_t budget, pprof_profile **ret, size_t *ret_count, store_series_part **parts, size_t *nparts,
                  store_merge_info *info, pp_err *err) {
  *parts = NULL, *nparts = 0;
  if (!n) return BUCKET_NONE;
  if (!readable(segs, n, raw_stood_in)) return BUCKET_NOT_READ;
  pthread_mutex_lock(&b->mu);
  int r = fill(b, segs, n, from, to, err);
  if (r == 0 && agg == STORE_AGG_SUM)
    r = store_merged_info(b->st, m, nm, type, from, to, agg, max_records, budget, ret, ret_count, info, err);
  else if (r == 0) /* per series over time: the local merge joins them (store_merged_with) */
    r = store_series_parts(b->st, m, nm, type, from, to, agg, max_records, budget, parts, nparts, info, err);
  count_read(b, r);
  pthread_mutex_unlock(&b->mu);
  return r;
}

int bucket_points(bucket *b, const upload_segment *segs, size_t n, int64_t raw_stood_in, const store_matcher *m,
                  size_t nm, const char *type, int64_t from, int64_t to, size_t limit, store_row **ret, size_t *ret_n,
                  uint64_t *ret_gen, pp_err *err) {
  *ret = NULL, *ret_n = 0, *ret_gen = 0;
  if (!n) return BUCKET_NONE;
  /* (a point per profile: what would be counted twice in a sum would be drawn twice) */
  if (!readable(segs, n, raw_stood_in)) return BUCKET_NOT_READ;
  pthread_mutex_lock(&b->mu);
  int r = fill(b, segs, n, from, to, err);
  if (r == 0) r = store_list_points(b->st, m, nm, type, from, to, limit, ret, ret_n, err);
  if (r == 0) *ret_gen = b->opened;
  count_read(b, r);
  pthread_mutex_unlock(&b->mu);
  return r;
}

int bucket_each_profile(bucket *b, uint64_t gen, const int64_t *ids, size_t n, const pprof_limits *limits,
                        store_profile_fn fn, void *ud, pp_err *err) {
  pthread_mutex_lock(&b->mu);
  int r = BUCKET_RACED;
  if (b->st && b->opened == gen) r = store_each_profile(b->st, ids, n, limits, fn, ud, err);
  else pp_err_set(err, PP_EIO, "the object store's cache changed between listing its records and reading them (ask again)");
  pthread_mutex_unlock(&b->mu);
  return r;
}

void bucket_get_stats(bucket *b, bucket_stats *ret) {
  pthread_mutex_lock(&b->smu);
  *ret = b->stats;
  pthread_mutex_unlock(&b->smu);
}
