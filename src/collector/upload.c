/* Segment uploads to an S3-compatible bucket; see upload.h for the contract.
 *
 *   thread_main   the loop: scan, upload what is new, apply the bucket's retention, wait
 *   s3_request    one signed request (PUT of a file, DELETE, or a probing GET) on the thread's
 *                 curl handle
 *   the uploads file: load at start, append after each PUT, rewrite after deletions
 */
#include "upload.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "../base/b64.h"
#include "../base/clock.h"
#include "../base/s3opts.h"
#include "bindex.h"

/* segments listed per scan: far more than a store holds (its budget over its segment size,
 * a tier each) */
#define SCAN_MAX 65536
/* what an error answer's body is kept of, for the message */
#define ERR_BODY_MAX 2048

typedef struct up_entry {
  int64_t id, min_ns, max_ns; /* min_ns tells a segment from a later one given the same id */
  int tier;
  bool expired; /* past the bucket's retention: deleted there (or never sent); not sent again */
  bool indexed; /* its series are in the bucket's series index, or adding them was tried (bindex.h) */
} up_entry;

struct uploader {
  store *st;
  char *endpoint, *bucket, *prefix, *sigv4, *access, *secret;
  double retention_s;
  char *state_path, *state_tmp;
  char *dest; /* the uploads file's first line: where its segments went */
  up_entry *done; /* uploaded, sorted by id */
  size_t ndone, donecap;
  int64_t *waiting; /* segments not uploaded at the last scan, sorted: one missing from the
                       next scan went with local retention before its upload (lost) */
  size_t nwaiting;
  bool noted;       /* a failure was noted during this scan (failing stays set) */
  CURL *curl;
  pthread_t thread;
  pthread_mutex_t mu; /* guards stop, the flush counters and stats */
  pthread_cond_t cv;
  bool stop;
  uint64_t flush_asked, flush_done; /* upload_flush: scans asked for, the last that ran clean */
  int64_t next_expire_ms; /* monotonic: the bucket's retention runs again from then */
  upload_stats stats;
  up_entry sending; /* the segment being uploaded, when is_sending (under mu) */
  bool is_sending;
  bindex *index; /* the bucket's series index (NULL: it did not open; listings over the bucket are partial) */
};

/* ---- options ---------------------------------------------------------------------------------- */

/* the key and secret go into a signature and an Authorization header: printable, no ':' in the
 * key (libcurl splits user:password there) */
static bool cred_ok(const char *c, bool key) {
  size_t n = strlen(c);
  if (n == 0 || n > 256) return false;
  for (size_t i = 0; i < n; i++)
    if (c[i] <= ' ' || c[i] > '~' || (key && c[i] == ':')) return false;
  return true;
}

int upload_check_opts(const upload_opts *o, pp_err *err) {
  int r = pp_s3_check(o->endpoint, o->bucket, o->prefix, o->region, err);
  if (r < 0) return r;
  if (!o->access_key || !cred_ok(o->access_key, true) || !o->secret_key || !cred_ok(o->secret_key, false))
    return pp_err_set(err, PP_EINVAL,
                      "object store credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set (printable ASCII, up to 256 bytes)");
  if (o->retention_seconds < 0 || o->retention_seconds > PP_S3_RETENTION_MAX_S)
    return pp_err_set(err, PP_EINVAL, "object store retention: want 0 (keep) up to 100 years");
  return 0;
}

/* ---- the uploads file --------------------------------------------------------------------------
 * First line "dest <endpoint>/<bucket>/<prefix>\n": a file written for another destination is
 * ignored (everything goes to the new one). Then a line per segment done with:
 * "<16 hex id> <tier> <oldest record, ns> <newest record, ns> <expired 0|1>\n", where expired
 * segments (deleted from the bucket by its retention, or too old to be sent) are kept while the
 * segment is still on local disk, so it is not sent again. Ours, but read back carefully: a line
 * that does not parse is skipped (that segment is only uploaded again). */

/* entries are sorted by id, then oldest record (one id may have been given to two segments) */
static int cmp_entry(const void *a, const void *b) {
  const up_entry *x = a, *y = b;
  if (x->id != y->id) return x->id < y->id ? -1 : 1;
  return x->min_ns < y->min_ns ? -1 : x->min_ns > y->min_ns;
}

static int cmp_id(const void *a, const void *b) {
  int64_t x = ((const up_entry *)a)->id, y = ((const up_entry *)b)->id;
  return x < y ? -1 : x > y;
}

/* the entry of that segment */
static up_entry *find_done(uploader *u, int64_t id, int64_t min_ns) {
  up_entry key = {.id = id, .min_ns = min_ns};
  return u->ndone ? bsearch(&key, u->done, u->ndone, sizeof *u->done, cmp_entry) : NULL;
}

/* whether any entry has that id */
static bool done_id(uploader *u, int64_t id) {
  up_entry key = {.id = id};
  return u->ndone && bsearch(&key, u->done, u->ndone, sizeof *u->done, cmp_id);
}

/* (done is changed by the uploader's thread alone, under mu: queries read it, upload_bucket_only) */
static bool add_done(uploader *u, up_entry e) {
  if (find_done(u, e.id, e.min_ns)) return true;
  pthread_mutex_lock(&u->mu);
  bool ok = true;
  if (u->ndone == u->donecap) {
    size_t cap = u->donecap ? u->donecap * 2 : 64;
    up_entry *d = realloc(u->done, cap * sizeof *d);
    if (d) u->done = d, u->donecap = cap;
    else ok = false;
  }
  if (ok) {
    size_t i = u->ndone;
    while (i > 0 && cmp_entry(&u->done[i - 1], &e) > 0) { /* ids come mostly in order: insertion from the end */
      u->done[i] = u->done[i - 1];
      i--;
    }
    u->done[i] = e;
    u->ndone++;
  }
  pthread_mutex_unlock(&u->mu);
  return ok;
}

/* a decimal int64 as printf writes it (no sign but '-', no leading zero) at *pp, then ' ' */
static bool parse_i64(const char **pp, int64_t *ret) {
  const char *p = *pp;
  bool neg = *p == '-';
  if (neg) p++;
  if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9') || (neg && *p == '0')) return false;
  uint64_t v = 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (v > (uint64_t)INT64_MAX + neg || *p != ' ') return false;
  *ret = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
  *pp = p + 1;
  return true;
}

/* exactly what write_line writes: 16 lower-case hex digits, tier 0|1, two decimal int64s,
 * expired 0|1, '\n' */
bool upload__parse_line(const char *line, int64_t *ret_id, int *ret_tier, int64_t *ret_min_ns, int64_t *ret_max_ns,
                        bool *ret_expired) {
  const char *p = line;
  uint64_t id = 0;
  for (int i = 0; i < 16; i++, p++) {
    int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
    if (d < 0) return false;
    id = id << 4 | (uint64_t)d;
  }
  if (*p++ != ' ' || (*p != '0' && *p != '1') || p[1] != ' ') return false;
  int tier = *p - '0';
  p += 2;
  int64_t min_ns, max_ns;
  if (!parse_i64(&p, &min_ns) || !parse_i64(&p, &max_ns)) return false;
  if ((p[0] != '0' && p[0] != '1') || p[1] != '\n' || p[2] != '\0') return false;
  *ret_id = (int64_t)id;
  *ret_tier = tier;
  *ret_min_ns = min_ns;
  *ret_max_ns = max_ns;
  *ret_expired = p[0] == '1';
  return true;
}

static int rewrite_state(uploader *u);

/* the entries of a file written for this destination; the file (re)written with its header */
static void load_state(uploader *u) {
  FILE *f = fopen(u->state_path, "re");
  if (f) {
    char line[2048];
    if (fgets(line, sizeof line, f) && !strcmp(line, u->dest))
      while (fgets(line, sizeof line, f)) {
        up_entry e;
        if (!upload__parse_line(line, &e.id, &e.tier, &e.min_ns, &e.max_ns, &e.expired)) continue;
        if (!add_done(u, e)) break;
      }
    fclose(f);
  }
  rewrite_state(u); /* a failure here shows at the first append */
}

static int write_line(int fd, const up_entry *e) {
  char line[96];
  int n = snprintf(line, sizeof line, "%016" PRIx64 " %d %" PRId64 " %" PRId64 " %d\n", (uint64_t)e->id, e->tier, e->min_ns,
                   e->max_ns, e->expired);
  return write(fd, line, (size_t)n) == n ? 0 : -1;
}

static int append_state(uploader *u, const up_entry *e) {
  int fd = open(u->state_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return -1;
  int r = write_line(fd, e);
  if (r == 0 && fdatasync(fd) < 0) r = -1;
  close(fd);
  return r;
}

/* the whole file anew (after deletions): a temporary file renamed over it */
static int rewrite_state(uploader *u) {
  int fd = open(u->state_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return -1;
  size_t dn = strlen(u->dest);
  int r = write(fd, u->dest, dn) == (ssize_t)dn ? 0 : -1;
  for (size_t i = 0; r == 0 && i < u->ndone; i++) r = write_line(fd, &u->done[i]);
  if (r == 0 && fdatasync(fd) < 0) r = -1;
  close(fd);
  if (r == 0 && rename(u->state_tmp, u->state_path) < 0) r = -1;
  if (r < 0) unlink(u->state_tmp);
  return r;
}

/* ---- requests --------------------------------------------------------------------------------- */

typedef struct body_src {
  int fd;
  uint64_t off, size;
  int err;
} body_src;

static size_t read_body(char *buf, size_t size, size_t n, void *ud) {
  body_src *b = ud;
  size_t want = size * n;
  if (want > b->size - b->off) want = (size_t)(b->size - b->off);
  if (want == 0) return 0;
  ssize_t got = pread(b->fd, buf, want, (off_t)b->off);
  if (got <= 0) { /* the file cannot shrink while closed; a read error ends the request */
    b->err = got < 0 ? errno : EIO;
    return CURL_READFUNC_ABORT;
  }
  b->off += (uint64_t)got;
  return (size_t)got;
}

typedef struct resp_buf {
  char b[ERR_BODY_MAX + 1];
  size_t n;
} resp_buf;

static size_t keep_body(char *p, size_t size, size_t n, void *ud) {
  resp_buf *r = ud;
  size_t len = size * n, room = ERR_BODY_MAX - r->n;
  memcpy(r->b + r->n, p, len < room ? len : room);
  r->n += len < room ? len : room;
  return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  (void)a, (void)b, (void)c, (void)d;
  uploader *u = ud;
  pthread_mutex_lock(&u->mu);
  bool stop = u->stop;
  pthread_mutex_unlock(&u->mu);
  return stop; /* non-zero aborts the transfer */
}

void upload__s3_code(const char *body, size_t len, char *out, size_t cap) {
  if (!cap) return;
  out[0] = '\0';
  const char *c = len >= 6 ? memmem(body, len, "<Code>", 6) : NULL;
  if (!c) return;
  const char *end = body + len;
  c += 6;
  size_t k = 0;
  while (k + 1 < cap && c < end && ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
    out[k++] = *c++;
  out[k] = '\0';
}

typedef enum { S3_PUT, S3_DELETE, S3_PROBE } s3_method;
static const char *const s3_method_name[] = {"PUT", "DELETE", "GET"};

/* One request for `key`: a PUT of fd's `size` bytes with their CRC-32, a DELETE, or a GET of
 * its first byte (S3_PROBE: only to learn why a PUT was cut off). The HTTP status, or -1 when
 * there was none (errbuf says why). */
static long s3_request(uploader *u, s3_method m, const char *key, int fd, uint64_t size, uint32_t crc, char *errbuf,
                       size_t cap) {
  char url[1400];
  snprintf(url, sizeof url, "%s/%s/%s%s", u->endpoint, u->bucket, u->prefix, key);
  CURL *c = u->curl;
  curl_easy_reset(c);
  char cerr[CURL_ERROR_SIZE] = "";
  resp_buf resp = {.n = 0};
  body_src src = {fd, 0, size, 0};
  struct curl_slist *h = NULL;
  char sum[64] = "";
  if (m == S3_PUT) {
    uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    char *b64 = NULL;
    size_t blen;
    if (pp_b64_encode(be, 4, &b64, &blen, NULL) == 0) snprintf(sum, sizeof sum, "x-amz-checksum-crc32: %s", b64);
    free(b64);
    if (sum[0]) h = curl_slist_append(h, sum);
    /* the server's refusal (bad credentials, no such bucket) comes before the body: without
     * this, a server that answers and closes while the body is still going makes the request
     * end in "connection reset", and the reason is lost */
    struct curl_slist *he = curl_slist_append(h, "Expect: 100-continue");
    if (he) h = he;
  }
  /* the payload is not hashed into the signature (it would mean reading the segment twice
   * more); its CRC-32 header above is signed and checked by the server instead */
  struct curl_slist *h2 = curl_slist_append(h, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  if (h2) h = h2;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, u->sigv4);
  curl_easy_setopt(c, CURLOPT_USERNAME, u->access);
  curl_easy_setopt(c, CURLOPT_PASSWORD, u->secret);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  /* segments are up to 64 MiB: no whole-request timeout, but one that stalls is given up */
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, u);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
  if (m == S3_PUT) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(c, CURLOPT_READDATA, &src);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
  } else if (m == S3_DELETE) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else {
    curl_easy_setopt(c, CURLOPT_RANGE, "0-0");
  }
  CURLcode rc = curl_easy_perform(c);
  long status = -1;
  if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  /* the handle keeps its connections but no option pointing into this frame (error buffer,
   * headers, body source) past the request */
  curl_easy_reset(c);
  curl_slist_free_all(h);
  if (rc != CURLE_OK) {
    if (src.err) snprintf(errbuf, cap, "%s: reading the segment: %s", key, strerror(src.err));
    else snprintf(errbuf, cap, "%s %s: %s", s3_method_name[m], key, cerr[0] ? cerr : curl_easy_strerror(rc));
    return -1;
  }
  if (status != 200 && status != 204 && status != 206) {
    char code[64];
    upload__s3_code(resp.b, resp.n, code, sizeof code);
    snprintf(errbuf, cap, "%s %s: HTTP %ld%s%s", s3_method_name[m], key, status, code[0] ? " " : "", code);
  }
  return status;
}

/* segments/<oldest record, 16 hex>-<id, 16 hex>.seg: in time order, and apart from a later
 * segment that was given the same id (a store whose index lost its newest rows, or started
 * anew, counts its ids again); a restore keeps the part after '-' as the file's name */
static void segment_key(int64_t id, int64_t min_ns, char *key, size_t cap) {
  snprintf(key, cap, "segments/%016" PRIx64 "-%016" PRIx64 ".seg", (uint64_t)min_ns, (uint64_t)id);
}

/* ---- the loop --------------------------------------------------------------------------------- */

static bool stopping(uploader *u) {
  pthread_mutex_lock(&u->mu);
  bool s = u->stop;
  pthread_mutex_unlock(&u->mu);
  return s;
}

static void note_failure(uploader *u, const char *why) {
  u->noted = true;
  pthread_mutex_lock(&u->mu);
  u->stats.failures++;
  u->stats.failing = true;
  snprintf(u->stats.last_error, sizeof u->stats.last_error, "%.*s", (int)sizeof u->stats.last_error - 1, why);
  pthread_mutex_unlock(&u->mu);
}

/* 1 uploaded, 0 its file is gone (the next scans count it lost once its row goes), -1 failed
 * (errbuf) */
static int send_segment(uploader *u, const store_segment *sg, char *errbuf, size_t cap) {
  char *path = store_segment_path(u->st, sg->id);
  if (!path) {
    snprintf(errbuf, cap, "out of memory");
    return -1;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int e = errno;
  free(path);
  if (fd < 0) {
    if (e == ENOENT) return 0;
    snprintf(errbuf, cap, "segment %016" PRIx64 ": %s", (uint64_t)sg->id, strerror(e));
    return -1;
  }
  struct stat stt;
  uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
  uint64_t size = 0;
  int r = fstat(fd, &stt) < 0 ? -1 : 0;
  if (r == 0) {
    size = (uint64_t)stt.st_size;
    uint8_t buf[65536];
    for (uint64_t off = 0; r == 0 && off < size;) {
      ssize_t got = pread(fd, buf, sizeof buf, (off_t)off);
      if (got <= 0) r = -1;
      else {
        crc = (uint32_t)crc32(crc, buf, (uInt)got);
        off += (uint64_t)got;
      }
    }
  }
  if (r < 0) {
    snprintf(errbuf, cap, "segment %016" PRIx64 ": %s", (uint64_t)sg->id, strerror(errno));
    close(fd);
    return -1;
  }
  char key[64];
  segment_key(sg->id, sg->min_ns, key, sizeof key);
  long status = s3_request(u, S3_PUT, key, fd, size, crc, errbuf, cap);
  close(fd);
  if (status < 0 && !stopping(u)) {
    /* a server that refuses a request (bad credentials, no such bucket) may answer and close
     * while the body is still going, despite Expect: 100-continue (it sent its 100 first): the
     * PUT ends in "connection reset" and its answer is lost. A GET has no body to cut off: its
     * refusal is the reason (a 404 or 416 says the credentials and bucket are fine) */
    char why[256] = "";
    long ps = s3_request(u, S3_PROBE, key, -1, 0, 0, why, sizeof why);
    if (ps >= 400 && ps != 404 && ps != 416) {
      size_t n = strlen(errbuf);
      if (n < cap) snprintf(errbuf + n, cap - n, " (%s)", why);
    }
  }
  if (status != 200) {
    if (!errbuf[0]) snprintf(errbuf, cap, "PUT %s: HTTP %ld", key, status);
    return -1;
  }
  pthread_mutex_lock(&u->mu);
  u->stats.uploaded_segments++;
  u->stats.uploaded_bytes += size;
  u->stats.last_success_ns = pp_clock_real_ns();
  if (u->stats.queued) u->stats.queued--;
  pthread_mutex_unlock(&u->mu);
  up_entry ent = {sg->id, sg->min_ns, sg->max_ns, sg->tier, false, false};
  if (!add_done(u, ent) || append_state(u, &ent) < 0) {
    /* uploaded all the same; a restart would send it again */
    char why[320];
    snprintf(why, sizeof why, "%s: %s", u->state_path, strerror(errno));
    note_failure(u, why);
  }
  return 1;
}

/* One segment sent, as sending (under mu) from before its file is opened until it is done:
 * local retention may delete it meanwhile, and queries then take it for history only the bucket
 * holds (upload_bucket_only_now), not for none. */
static int upload_one(uploader *u, const store_segment *sg, char *errbuf, size_t cap) {
  pthread_mutex_lock(&u->mu);
  u->sending = (up_entry){sg->id, sg->min_ns, sg->max_ns, sg->tier, false, false}, u->is_sending = true;
  pthread_mutex_unlock(&u->mu);
  int r = send_segment(u, sg, errbuf, cap);
  pthread_mutex_lock(&u->mu);
  u->is_sending = false;
  pthread_mutex_unlock(&u->mu);
  return r;
}

/* A segment uploaded, not expired and no longer local (tier, its records' time range) in bo,
 * unless it holds raw profiles older than raw_stood_in: tiered retention deleted those for the
 * rollups that answer for them (store.h), so no answer lacks it. A range restore wrote without
 * an end yet (max < min) is the store's, still local, and never comes here. */
static bool bucket_only(int tier, int64_t min_ns, int64_t max_ns, int64_t raw_stood_in, upload_bucket_only *bo) {
  if (max_ns < min_ns || (tier == 0 && max_ns <= raw_stood_in)) return false;
  if (!bo->segments++ || min_ns < bo->from_ns) bo->from_ns = min_ns;
  if (bo->segments == 1 || max_ns > bo->to_ns) bo->to_ns = max_ns;
  return true;
}

/* Whether the store's list (by id) holds that object. */
static bool listed(const store_segment *list, size_t n, int64_t id, int64_t min_ns) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (list[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  for (size_t q = lo; q < n && list[q].id == id; q++)
    if (list[q].min_ns == min_ns) return true;
  return false;
}

/* The uploaded segments not in the store's list (bucket_only) summed into *bo; those meeting
 * [from, to] (to 0: no end) also written to out when not NULL (room for u->ndone + 1). Under mu,
 * or on the uploader's thread. Returns how many were written. */
static size_t bucket_only_of(uploader *u, const store_segment *list, size_t n, int64_t raw_stood_in, int64_t from,
                             int64_t to, upload_segment *out, upload_bucket_only *bo) {
  size_t nout = 0;
  for (size_t i = 0; i < u->ndone; i++) {
    const up_entry *e = &u->done[i];
    if (e->expired || listed(list, n, e->id, e->min_ns) || !bucket_only(e->tier, e->min_ns, e->max_ns, raw_stood_in, bo))
      continue;
    if (out && e->max_ns >= from && (!to || e->min_ns <= to)) out[nout++] = (upload_segment){e->id, e->tier, e->min_ns, e->max_ns};
  }
  /* the one being sent, deleted from the store before its upload ended: the bucket's, or lost
   * (a read of it then fails, and the answer says so) */
  const up_entry *e = &u->sending;
  if (u->is_sending && !listed(list, n, e->id, e->min_ns) && !find_done(u, e->id, e->min_ns) &&
      bucket_only(e->tier, e->min_ns, e->max_ns, raw_stood_in, bo) && out && e->max_ns >= from && (!to || e->min_ns <= to))
    out[nout++] = (upload_segment){e->id, e->tier, e->min_ns, e->max_ns};
  return nout;
}

static int cmp_oldest(const void *a, const void *b) {
  const upload_segment *x = a, *y = b;
  return x->min_ns != y->min_ns ? (x->min_ns < y->min_ns ? -1 : 1) : (x->id > y->id) - (x->id < y->id);
}

/* A raw segment in the bucket and still local gets its series into the index, once: tried
 * again only at the next start when it failed (counted: its history's listings stay partial). */
static void index_segment(uploader *u, up_entry *e) {
  if (e->indexed || e->expired || e->tier != 0 || !u->index) return;
  pp_err err = {0};
  int r = bindex_add(u->index, u->st, e->id, e->min_ns, &err);
  pthread_mutex_lock(&u->mu);
  e->indexed = true;
  if (r == 0) u->stats.indexed_segments++;
  else u->stats.index_failures++, snprintf(u->stats.last_index_error, sizeof u->stats.last_index_error, "%.190s", err.msg);
  pthread_mutex_unlock(&u->mu);
}

/* One scan: every closed segment not uploaded yet, oldest first; stops at the first failure.
 * 0, or -1 after a failure (noted). */
static int scan(uploader *u, store_segment *list) {
  size_t n = 0;
  pp_err err = {0};
  if (store_list_segments(u->st, list, SCAN_MAX, &n, &err) < 0) {
    note_failure(u, err.msg);
    return -1;
  }
  /* expired entries whose segment left the local disk are done with for good; the others that
   * left it are history only the bucket holds now */
  size_t k = 0, pruned = 0;
  store_stats ss;
  store_get_stats(u->st, &ss);
  upload_bucket_only bo = {0};
  pthread_mutex_lock(&u->mu);
  for (size_t i = 0; i < u->ndone; i++) {
    if (u->done[i].expired && !listed(list, n, u->done[i].id, u->done[i].min_ns)) pruned++;
    else u->done[k++] = u->done[i];
  }
  u->ndone = k;
  /* entries a restore wrote (restore.h) learn their segment's tier and end from the store */
  for (size_t i = 0; i < n; i++) {
    up_entry *e = find_done(u, list[i].id, list[i].min_ns);
    if (e && e->max_ns < e->min_ns) e->max_ns = list[i].max_ns, e->tier = list[i].tier, pruned++;
  }
  bucket_only_of(u, list, n, ss.raw_dropped_until_ns, 0, 0, NULL, &bo);
  pthread_mutex_unlock(&u->mu);
  if (pruned && rewrite_state(u) < 0) note_failure(u, "rewriting the uploads file failed");
  /* closed segments already past the bucket's retention are not sent (it would delete them) */
  int64_t cutoff = u->retention_s > 0 ? pp_clock_real_ns() - (int64_t)(u->retention_s * 1e9) : INT64_MIN;
  for (size_t i = 0; i < n; i++)
    if (list[i].closed && list[i].max_ns < cutoff && !find_done(u, list[i].id, list[i].min_ns)) {
      up_entry e = {list[i].id, list[i].min_ns, list[i].max_ns, list[i].tier, true, false};
      if (add_done(u, e)) append_state(u, &e);
    }
  /* the segments waiting at the last scan that are not listed now: deleted before their upload
   * (one uploaded since that scan went to the bucket first: not lost) */
  size_t j = 0, lost = 0;
  for (size_t i = 0; i < u->nwaiting; i++) {
    while (j < n && list[j].id < u->waiting[i]) j++;
    if ((j == n || list[j].id != u->waiting[i]) && !done_id(u, u->waiting[i])) lost++;
  }
  /* the ones waiting now (active ones too: retention may delete those as well) */
  size_t queued = 0;
  int64_t *w = realloc(u->waiting, (n ? n : 1) * sizeof *w);
  if (w) u->waiting = w;
  u->nwaiting = 0;
  for (size_t i = 0; i < n; i++)
    if (!find_done(u, list[i].id, list[i].min_ns)) {
      queued += list[i].closed;
      if (w) w[u->nwaiting++] = list[i].id;
    }
  pthread_mutex_lock(&u->mu);
  u->stats.lost_segments += lost;
  u->stats.queued = queued;
  u->stats.bucket_only = bo;
  pthread_mutex_unlock(&u->mu);
  /* uploaded raw segments still local whose series the index lacks (uploaded before it existed,
   * restored, or the collector stopped in between) */
  for (size_t i = 0; i < n && !stopping(u); i++) {
    up_entry *e = find_done(u, list[i].id, list[i].min_ns);
    if (e) index_segment(u, e);
  }
  for (size_t i = 0; i < n && !stopping(u); i++) {
    if (!list[i].closed || find_done(u, list[i].id, list[i].min_ns)) continue;
    char why[sizeof u->stats.last_error] = "";
    if (upload_one(u, &list[i], why, sizeof why) < 0) {
      note_failure(u, why);
      return -1;
    }
    up_entry *e = find_done(u, list[i].id, list[i].min_ns);
    if (e) index_segment(u, e);
  }
  return 0;
}

/* The bucket's retention: objects whose newest record is older than retention_s are deleted. A
 * DELETE that fails is counted and skipped (the next entries still go), and does not hold up
 * uploads; after a pass with failures the next one waits a minute, so a key without delete
 * rights is not hammered every scan. */
static void expire(uploader *u) {
  int64_t now = pp_clock_mono_ms();
  if (u->retention_s <= 0 || now < u->next_expire_ms) return;
  int64_t cutoff = pp_clock_real_ns() - (int64_t)(u->retention_s * 1e9);
  size_t deleted = 0, failed = 0;
  char why[sizeof u->stats.last_delete_error] = "";
  for (size_t i = 0; i < u->ndone && !stopping(u); i++) {
    up_entry *e = &u->done[i];
    /* an end still unknown (restore.h; its segment is not in the store yet) waits for it */
    if (e->expired || e->max_ns >= cutoff || e->max_ns < e->min_ns) continue;
    char key[64], one[sizeof why] = "";
    segment_key(e->id, e->min_ns, key, sizeof key);
    long status = s3_request(u, S3_DELETE, key, -1, 0, 0, one, sizeof one);
    if (status == 200 || status == 204 || status == 404) {
      pthread_mutex_lock(&u->mu);
      e->expired = true;
      pthread_mutex_unlock(&u->mu);
      pp_err ierr = {0};
      if (u->index && bindex_drop(u->index, e->id, e->min_ns, &ierr) < 0) {
        pthread_mutex_lock(&u->mu);
        u->stats.index_failures++;
        snprintf(u->stats.last_index_error, sizeof u->stats.last_index_error, "%.190s", ierr.msg);
        pthread_mutex_unlock(&u->mu);
      }
      deleted++;
      continue;
    }
    if (!one[0]) snprintf(one, sizeof one, "DELETE %s: HTTP %ld", key, status);
    if (!failed++) memcpy(why, one, sizeof why);
  }
  u->next_expire_ms = now + (failed ? 60000 : 0);
  bool state_failed = deleted && rewrite_state(u) < 0;
  pthread_mutex_lock(&u->mu);
  u->stats.deleted_objects += deleted;
  u->stats.failures += failed;
  u->stats.deleting_failing = failed > 0;
  if (failed) memcpy(u->stats.last_delete_error, why, sizeof why);
  pthread_mutex_unlock(&u->mu);
  if (state_failed) note_failure(u, "rewriting the uploads file failed");
}

/* now + s on the monotonic clock (the condition variable's): a wall clock stepped back does not
 * stretch a wait */
static struct timespec deadline_in(double s) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  t.tv_sec += (time_t)s;
  t.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

static void *thread_main(void *arg) {
  uploader *u = arg;
  store_segment *list = NULL;
  double backoff = 0;
  while (!stopping(u)) {
    u->noted = false;
    pthread_mutex_lock(&u->mu);
    uint64_t asked = u->flush_asked; /* a scan that starts now sees what was closed before */
    pthread_mutex_unlock(&u->mu);
    if (!list) list = malloc(SCAN_MAX * sizeof *list);
    int r = list ? scan(u, list) : -1;
    if (!list) note_failure(u, "out of memory");
    if (r == 0) expire(u);
    pthread_mutex_lock(&u->mu);
    if (!u->noted) u->stats.failing = false; /* a clean scan: every closed segment is in the bucket */
    if (r == 0 && asked > u->flush_done) {
      u->flush_done = asked;
      pthread_cond_broadcast(&u->cv);
    }
    pthread_mutex_unlock(&u->mu);
    backoff = r < 0 ? (backoff ? backoff * 2 : 1) : 0;
    if (backoff > UPLOAD_BACKOFF_MAX_S) backoff = UPLOAD_BACKOFF_MAX_S;
    struct timespec until = deadline_in(r < 0 ? backoff : UPLOAD_SCAN_MS / 1000.0);
    pthread_mutex_lock(&u->mu);
    /* a flush asked for since this scan began cuts the wait (a back-off too) short: once per
     * flush, since the next scan notes it as asked */
    while (!u->stop && u->flush_asked == asked)
      if (pthread_cond_timedwait(&u->cv, &u->mu, &until) == ETIMEDOUT) break;
    pthread_mutex_unlock(&u->mu);
  }
  free(list);
  return NULL;
}

bool upload_flush(uploader *u, int64_t timeout_ms) {
  if (!u) return true;
  struct timespec until = deadline_in((double)timeout_ms / 1000);
  pthread_mutex_lock(&u->mu);
  uint64_t want = ++u->flush_asked;
  pthread_cond_broadcast(&u->cv);
  while (u->flush_done < want)
    if (pthread_cond_timedwait(&u->cv, &u->mu, &until) == ETIMEDOUT) break;
  bool done = u->flush_done >= want;
  pthread_mutex_unlock(&u->mu);
  return done;
}

/* ---- start and stop --------------------------------------------------------------------------- */

static void free_uploader(uploader *u) {
  if (!u) return;
  if (u->curl) curl_easy_cleanup(u->curl);
  free(u->endpoint);
  free(u->bucket);
  free(u->prefix);
  free(u->sigv4);
  free(u->access);
  free(u->secret);
  free(u->dest);
  free(u->state_path);
  free(u->state_tmp);
  free(u->done);
  free(u->waiting);
  bindex_close(u->index);
  pthread_mutex_destroy(&u->mu);
  pthread_cond_destroy(&u->cv);
  free(u);
}

void upload_target_of(const upload_opts *o, upload_target *t) {
  const char *pre = o->prefix ? o->prefix : "";
  size_t pn = strlen(pre), en = strlen(o->endpoint);
  while (en > 0 && o->endpoint[en - 1] == '/') en--; /* "http://h/" and "http://h" name the same server */
  snprintf(t->endpoint, sizeof t->endpoint, "%.*s", (int)en, o->endpoint);
  snprintf(t->prefix, sizeof t->prefix, "%s%s", pre, pn && pre[pn - 1] != '/' ? "/" : "");
  snprintf(t->sigv4, sizeof t->sigv4, "aws:amz:%s:s3", o->region ? o->region : "us-east-1");
  snprintf(t->dest, sizeof t->dest, "dest %s/%s/%s\n", t->endpoint, o->bucket, t->prefix);
}

int upload_start(const upload_opts *o, store *st, const char *data_dir, uploader **ret, pp_err *err) {
  *ret = NULL;
  int r = upload_check_opts(o, err);
  if (r < 0) return r;
  uploader *u = calloc(1, sizeof *u);
  if (!u) return pp_err_set(err, PP_ENOMEM, "out of memory");
  pthread_mutex_init(&u->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* thread_main's deadlines */
  pthread_cond_init(&u->cv, &ca);
  pthread_condattr_destroy(&ca);
  u->st = st;
  u->retention_s = o->retention_seconds;
  upload_target t;
  upload_target_of(o, &t);
  bool ok = (u->endpoint = strdup(t.endpoint)) && (u->bucket = strdup(o->bucket)) && (u->prefix = strdup(t.prefix)) &&
            (u->sigv4 = strdup(t.sigv4)) && (u->access = strdup(o->access_key)) && (u->secret = strdup(o->secret_key)) &&
            (u->dest = strdup(t.dest)) &&
            asprintf(&u->state_path, "%s/uploads", data_dir) >= 0 && asprintf(&u->state_tmp, "%s/uploads.tmp", data_dir) >= 0 &&
            (u->curl = curl_easy_init());
  if (!ok) {
    free_uploader(u);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  load_state(u);
  /* (without its index the collector still uploads; listings over the bucket say they are partial) */
  pp_err ierr = {0};
  if (bindex_open(data_dir, &u->index, &ierr) < 0) {
    u->stats.index_failures++;
    snprintf(u->stats.last_index_error, sizeof u->stats.last_index_error, "%.190s", ierr.msg);
  }
  if (pthread_create(&u->thread, NULL, thread_main, u) != 0) {
    free_uploader(u);
    return pp_err_set(err, PP_EIO, "cannot start the upload thread");
  }
  *ret = u;
  return 0;
}

void upload_stop(uploader *u) {
  if (!u) return;
  pthread_mutex_lock(&u->mu); /* (a returned uploader always has its thread) */
  u->stop = true;
  pthread_cond_broadcast(&u->cv);
  pthread_mutex_unlock(&u->mu);
  pthread_join(u->thread, NULL);
  free_uploader(u);
}

void upload_get_stats(uploader *u, upload_stats *ret) {
  pthread_mutex_lock(&u->mu);
  *ret = u->stats;
  pthread_mutex_unlock(&u->mu);
}

int upload_bucket_only_now(uploader *u, int64_t from_ns, int64_t to_ns, upload_segment **ret, size_t *ret_n,
                           upload_bucket_only *ret_sum, uint64_t *ret_seq, int64_t *ret_raw_stood_in, pp_err *err) {
  if (ret) *ret = NULL, *ret_n = 0;
  memset(ret_sum, 0, sizeof *ret_sum);
  *ret_seq = UPLOAD_SEQ_CHANGING, *ret_raw_stood_in = 0;
  if (!u) return 0;
  store_stats ss;
  store_get_stats(u->st, &ss);
  size_t cap = (size_t)ss.segments + 256, n = 0;
  store_segment *list = malloc(cap * sizeof *list);
  if (!list) return pp_err_set(err, PP_ENOMEM, "out of memory");
  /* the store's deletions before and after its list and raw_dropped_until (store_deletions) */
  uint64_t seq = store_deletions(u->st);
  store_get_stats(u->st, &ss);
  int r = store_list_segments(u->st, list, cap, &n, err);
  if (r == 0 && n == cap) r = pp_err_set(err, PP_ELIMIT, "more than %zu segments listed", cap);
  if (r < 0) return free(list), r;
  if (store_deletions(u->st) == seq && !(seq & 1)) *ret_seq = seq;
  *ret_raw_stood_in = ss.raw_dropped_until_ns;
  pthread_mutex_lock(&u->mu);
  size_t room = u->ndone + 1; /* (and the one being sent) */
  upload_segment *v = ret ? malloc(room * sizeof *v) : NULL;
  size_t nv = bucket_only_of(u, list, n, ss.raw_dropped_until_ns, from_ns, to_ns, v, ret_sum);
  bool failed = ret && !v;
  pthread_mutex_unlock(&u->mu);
  free(list);
  if (failed) return pp_err_set(err, PP_ENOMEM, "out of memory");
  if (!ret) return 0;
  if (!nv) free(v), v = NULL;
  if (nv) qsort(v, nv, sizeof *v, cmp_oldest);
  *ret = v, *ret_n = nv;
  return 0;
}
