/* A new data directory filled from the bucket; see restore.h for the contract. */
#include "restore.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/buf.h"

/* ---- the listing's XML ------------------------------------------------------------------------ */

typedef struct lp {
  XML_Parser x;
  int depth;
  bool in_contents;
  char elem[32];     /* the element whose text is being read, "" when none */
  pp_buf text;
  char key[1100];
  uint64_t size;
  bool has_key, has_size, is_result;
  int truncated;
  char *token;
  size_t cap;
  bool token_long;
  void (*each)(void *, const char *, uint64_t);
  void *ud;
} lp;

/* S3 answers in its namespace; names compared without it */
static const char *local(const XML_Char *name) {
  const char *c = strrchr(name, '|');
  return c ? c + 1 : name;
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attr) {
  (void)attr;
  lp *p = ud;
  const char *n = local(name);
  p->depth++;
  if (p->depth == 1) p->is_result = !strcmp(n, "ListBucketResult");
  if (p->depth == 2 && !strcmp(n, "Contents")) {
    p->in_contents = true;
    p->has_key = p->has_size = false;
  }
  p->elem[0] = '\0';
  if ((p->in_contents && p->depth == 3 && (!strcmp(n, "Key") || !strcmp(n, "Size"))) ||
      (p->depth == 2 && (!strcmp(n, "IsTruncated") || !strcmp(n, "NextContinuationToken")))) {
    snprintf(p->elem, sizeof p->elem, "%s", n);
    pp_buf_clear(&p->text);
  }
}

static void on_text(void *ud, const XML_Char *s, int len) {
  lp *p = ud;
  if (p->elem[0]) pp_buf_put(&p->text, s, (size_t)len);
}

static void on_end(void *ud, const XML_Char *name) {
  lp *p = ud;
  const char *n = local(name);
  const char *t = p->text.p && !p->text.failed ? p->text.p : "";
  size_t tl = p->text.failed ? 0 : p->text.len;
  if (p->elem[0] && !strcmp(p->elem, n)) {
    if (!strcmp(n, "Key")) {
      p->has_key = tl < sizeof p->key && !p->text.failed && strlen(t) == tl;
      if (p->has_key) memcpy(p->key, t, tl), p->key[tl] = '\0';
    } else if (!strcmp(n, "Size")) {
      char *end;
      errno = 0;
      unsigned long long v = strtoull(t, &end, 10);
      p->has_size = tl && !errno && end == t + tl && t[0] != '-';
      p->size = v;
    } else if (!strcmp(n, "IsTruncated")) {
      p->truncated = tl == 4 && !memcmp(t, "true", 4);
    } else if (!strcmp(n, "NextContinuationToken")) {
      if (tl < p->cap && strlen(t) == tl) memcpy(p->token, t, tl), p->token[tl] = '\0';
      else p->token_long = true;
    }
    p->elem[0] = '\0';
  }
  if (p->depth == 2 && !strcmp(n, "Contents")) {
    p->in_contents = false;
    if (p->has_key && p->has_size) p->each(p->ud, p->key, p->size);
  }
  p->depth--;
}

int restore_parse_list(const char *xml, size_t len, void (*each)(void *ud, const char *key, uint64_t size), void *ud,
                       int *truncated, char *token, size_t cap, pp_err *err) {
  lp p = {.token = token, .cap = cap, .each = each, .ud = ud};
  if (cap) token[0] = '\0';
  *truncated = 0;
  if (len > RESTORE_MAX_PAGE) return pp_err_set(err, PP_EINVAL, "object store listing: a page over %zu bytes", RESTORE_MAX_PAGE);
  pp_buf_init(&p.text, 4096); /* a key or a token: far less */
  p.x = XML_ParserCreateNS(NULL, '|');
  if (!p.x) return pp_err_set(err, PP_ENOMEM, "out of memory");
  XML_SetUserData(p.x, &p);
  XML_SetElementHandler(p.x, on_start, on_end);
  XML_SetCharacterDataHandler(p.x, on_text);
  int r = 0;
  if (XML_Parse(p.x, xml, (int)len, 1) != XML_STATUS_OK)
    r = pp_err_set(err, PP_EINVAL, "object store listing: not XML (%s at line %lu)", XML_ErrorString(XML_GetErrorCode(p.x)),
                   (unsigned long)XML_GetCurrentLineNumber(p.x));
  else if (!p.is_result)
    r = pp_err_set(err, PP_EINVAL, "object store listing: not a ListBucketResult");
  else if (p.truncated && (p.token_long || !cap || !token[0]))
    r = pp_err_set(err, PP_EINVAL, "object store listing: truncated without a usable continuation token");
  *truncated = p.truncated;
  XML_ParserFree(p.x);
  pp_buf_free(&p.text);
  return r;
}

/* ---- requests ------------------------------------------------------------------------------- */

typedef struct obj {
  int64_t id, min_ns;
  uint64_t size;
} obj;

typedef struct rs {
  const upload_opts *o;
  upload_target t;
  CURL *c;
  obj *v;
  size_t n, cap;
  restore_stats *st;
  bool too_many;
} rs;

static size_t to_buf(char *p, size_t sz, size_t n, void *ud) {
  return pp_buf_put(ud, p, sz * n) ? sz * n : 0;
}

typedef struct to_fd {
  int fd;
  uint64_t n;
  int err;
} to_fd;

static size_t to_file(char *p, size_t sz, size_t n, void *ud) {
  to_fd *f = ud;
  size_t len = sz * n, off = 0;
  if (f->n + len > RESTORE_MAX_OBJECT) return 0;
  while (off < len) {
    ssize_t w = write(f->fd, p + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      f->err = errno ? errno : EIO;
      return 0;
    }
    off += (size_t)w;
  }
  f->n += len;
  return len;
}

/* GET url (signed) into b or fd: the status, or -1 with why */
static long get(rs *r, const char *url, pp_buf *b, to_fd *f, char *why, size_t cap) {
  CURL *c = r->c;
  curl_easy_reset(c);
  char cerr[CURL_ERROR_SIZE] = "";
  struct curl_slist *h = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, r->t.sigv4);
  curl_easy_setopt(c, CURLOPT_USERNAME, r->o->access_key);
  curl_easy_setopt(c, CURLOPT_PASSWORD, r->o->secret_key);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, f ? to_file : to_buf);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, f ? (void *)f : (void *)b);
  CURLcode rc = curl_easy_perform(c);
  long status = -1;
  if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_reset(c);
  curl_slist_free_all(h);
  if (rc != CURLE_OK) {
    if (f && f->err) snprintf(why, cap, "writing: %s", strerror(f->err));
    else if (f && f->n >= RESTORE_MAX_OBJECT) snprintf(why, cap, "an object over %" PRIu64 " bytes", RESTORE_MAX_OBJECT);
    else if (b && b->over) snprintf(why, cap, "a listing page over %zu bytes", RESTORE_MAX_PAGE);
    else snprintf(why, cap, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    return -1;
  }
  if (status != 200) {
    char code[64] = "";
    if (b && b->p) upload__s3_code(b->p, b->len, code, sizeof code);
    snprintf(why, cap, "HTTP %ld%s%s", status, code[0] ? " " : "", code);
  }
  return status;
}

static bool hex16(const char *s, uint64_t *ret) {
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    int d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | (uint64_t)d;
  }
  *ret = v;
  return true;
}

/* <prefix>segments/<16 hex min_ns>-<16 hex id>.seg (upload.c's segment_key) */
static void on_object(void *ud, const char *key, uint64_t size) {
  rs *r = ud;
  size_t pl = strlen(r->t.prefix);
  const char *k = key + pl;
  uint64_t t, id;
  if (strncmp(key, r->t.prefix, pl) || strncmp(k, "segments/", 9) || strlen(k + 9) != 37 || !hex16(k + 9, &t) ||
      k[9 + 16] != '-' || !hex16(k + 9 + 17, &id) || strcmp(k + 9 + 33, ".seg") || !id || t > INT64_MAX || id > INT64_MAX) {
    r->st->foreign++;
    return;
  }
  r->st->listed++;
  if (r->n == RESTORE_MAX_OBJECTS) {
    r->too_many = true;
    return;
  }
  if (r->n == r->cap) {
    size_t nc = r->cap ? r->cap * 2 : 256;
    obj *v = realloc(r->v, nc * sizeof *v);
    if (!v) {
      r->too_many = true;
      return;
    }
    r->v = v;
    r->cap = nc;
  }
  r->v[r->n++] = (obj){(int64_t)id, (int64_t)t, size};
}

/* URI-encoded as SigV4's canonical query wants it: unreserved characters kept, the rest %XX */
static void qenc(pp_buf *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
        *p == '.' || *p == '~')
      pp_buf_put(b, p, 1);
    else
      pp_buf_printf(b, "%%%02X", *p);
  }
}

static int list_all(rs *r, pp_err *err) {
  char token[2048] = "";
  for (;;) {
    /* parameters in sorted order: libcurl signs the query as written */
    pp_buf url, page;
    pp_buf_init(&url, 0);
    pp_buf_printf(&url, "%s/%s?", r->t.endpoint, r->o->bucket);
    if (token[0]) pp_buf_puts(&url, "continuation-token="), qenc(&url, token), pp_buf_puts(&url, "&");
    pp_buf_puts(&url, "list-type=2&prefix=");
    char pre[700];
    snprintf(pre, sizeof pre, "%ssegments/", r->t.prefix);
    qenc(&url, pre);
    pp_buf_init(&page, RESTORE_MAX_PAGE);
    char why[300] = "";
    long status = url.failed ? -1 : get(r, url.p, &page, NULL, why, sizeof why);
    pp_buf_free(&url);
    if (status != 200) {
      pp_buf_free(&page);
      return pp_err_set(err, PP_EIO, "object store listing: %s", why[0] ? why : "out of memory");
    }
    int truncated;
    int x = restore_parse_list(page.p ? page.p : "", page.len, on_object, r, &truncated, token, sizeof token, err);
    pp_buf_free(&page);
    if (x < 0) return x;
    if (r->too_many) return pp_err_set(err, PP_ELIMIT, "object store listing: more than %d segments (or out of memory)", RESTORE_MAX_OBJECTS);
    if (!truncated) return 0;
  }
}

/* newest first, by the oldest record (the objects' names' order, read backwards: two segments
 * starting at once, a raw one and a rollup, the later id first) */
static int cmp_newest(const void *a, const void *b) {
  const obj *x = a, *y = b;
  if (x->min_ns != y->min_ns) return x->min_ns > y->min_ns ? -1 : 1;
  return x->id > y->id ? -1 : x->id < y->id;
}

static int cmp_id(const void *a, const void *b) {
  const obj *x = a, *y = b;
  if (x->id != y->id) return x->id < y->id ? -1 : 1;
  return x->min_ns > y->min_ns ? -1 : x->min_ns < y->min_ns;
}

/* ---- the directory ---------------------------------------------------------------------------- */

static int has_store(const char *data_dir, pp_err *err) {
  char p[4200];
  struct stat sb;
  snprintf(p, sizeof p, "%s/index.db", data_dir);
  if (stat(p, &sb) == 0) return 1;
  snprintf(p, sizeof p, "%s/segments", data_dir);
  DIR *d = opendir(p);
  if (!d) return errno == ENOENT ? 0 : pp_err_set(err, PP_EIO, "%s: %s", p, strerror(errno));
  struct dirent *e;
  int found = 0;
  while (!found && (e = readdir(d))) {
    size_t l = strlen(e->d_name);
    found = l > 4 && !strcmp(e->d_name + l - 4, ".seg");
  }
  closedir(d);
  return found;
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = fsync(fd);
  close(fd);
  return r;
}

/* what a failed restore leaves: nothing of it */
static void undo(const char *segdir, const obj *v, size_t n, const char *data_dir) {
  char p[4300];
  for (size_t i = 0; i < n; i++) {
    snprintf(p, sizeof p, "%s/%016" PRIx64 ".seg", segdir, (uint64_t)v[i].id);
    unlink(p);
  }
  snprintf(p, sizeof p, "%s/uploads", data_dir);
  unlink(p);
}

/* o's object into segdir/<file>.seg */
static int download(rs *r, const char *segdir, const obj *o, int64_t file, pp_err *err) {
  char tmp[4300], dst[4300], key[64];
  snprintf(tmp, sizeof tmp, "%s/%016" PRIx64 ".seg.part", segdir, (uint64_t)file);
  snprintf(dst, sizeof dst, "%s/%016" PRIx64 ".seg", segdir, (uint64_t)file);
  snprintf(key, sizeof key, "segments/%016" PRIx64 "-%016" PRIx64 ".seg", (uint64_t)o->min_ns, (uint64_t)o->id);
  char url[1600];
  snprintf(url, sizeof url, "%s/%s/%s%s", r->t.endpoint, r->o->bucket, r->t.prefix, key);
  to_fd f = {open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640), 0, 0};
  if (f.fd < 0) return pp_err_set(err, PP_EIO, "%s: %s", tmp, strerror(errno));
  char why[300] = "";
  long status = get(r, url, NULL, &f, why, sizeof why);
  int rc = 0;
  if (status != 200) rc = pp_err_set(err, PP_EIO, "object store: GET %s: %s", key, why);
  else if (o->size && f.n != o->size) rc = pp_err_set(err, PP_EIO, "object store: GET %s: %" PRIu64 " bytes, listed as %" PRIu64, key, f.n, o->size);
  else if (fsync(f.fd) < 0) rc = pp_err_set(err, PP_EIO, "%s: %s", tmp, strerror(errno));
  close(f.fd);
  if (rc == 0 && rename(tmp, dst) < 0) rc = pp_err_set(err, PP_EIO, "%s: %s", dst, strerror(errno));
  if (rc < 0) unlink(tmp);
  return rc;
}

int restore_segment(const upload_opts *o, const char *segdir, int64_t id, int64_t min_ns, int64_t file, pp_err *err) {
  rs r = {.o = o};
  upload_target_of(o, &r.t);
  if (!(r.c = curl_easy_init())) return pp_err_set(err, PP_ENOMEM, "out of memory");
  obj one = {0};
  one.id = id, one.min_ns = min_ns;
  int rc = download(&r, segdir, &one, file, err);
  curl_easy_cleanup(r.c);
  return rc;
}

int restore_run(const upload_opts *o, const char *data_dir, uint64_t budget, restore_stats *st, pp_err *err) {
  memset(st, 0, sizeof *st);
  int h = has_store(data_dir, err);
  if (h != 0) return h;
  rs r = {.o = o, .st = st};
  upload_target_of(o, &r.t);
  if (!(r.c = curl_easy_init())) return pp_err_set(err, PP_ENOMEM, "out of memory");
  int rc = list_all(&r, err);
  char segdir[4200];
  snprintf(segdir, sizeof segdir, "%s/segments", data_dir);
  size_t keep = 0;
  if (rc == 0 && r.n) {
    /* one object per id, the newest (a directory started anew counted ids again) */
    qsort(r.v, r.n, sizeof *r.v, cmp_id);
    size_t k = 0;
    for (size_t i = 0; i < r.n; i++) {
      if (k && r.v[k - 1].id == r.v[i].id) {
        st->duplicates++;
        continue;
      }
      r.v[k++] = r.v[i];
    }
    r.n = k;
    /* newest first, as many as the budget holds */
    qsort(r.v, r.n, sizeof *r.v, cmp_newest);
    uint64_t total = 0;
    while (keep < r.n && (!budget || total + r.v[keep].size <= budget)) total += r.v[keep++].size;
    st->over_budget = r.n - keep;
    if (keep && ((mkdir(data_dir, 0750) < 0 && errno != EEXIST) || (mkdir(segdir, 0750) < 0 && errno != EEXIST)))
      rc = pp_err_set(err, PP_EIO, "%s: %s", segdir, strerror(errno));
    for (size_t i = 0; rc == 0 && i < keep; i++) {
      if ((rc = download(&r, segdir, &r.v[i], r.v[i].id, err)) == 0) {
        st->restored++;
        st->bytes += r.v[i].size;
      }
    }
    /* the uploads file: what is in the bucket already (upload.h); the ends are the uploader's
     * to fill in (-1: unknown) */
    if (rc == 0 && keep) {
      char path[4200], tmp[4200];
      snprintf(path, sizeof path, "%s/uploads", data_dir);
      snprintf(tmp, sizeof tmp, "%s/uploads.tmp", data_dir);
      FILE *f = fopen(tmp, "we");
      bool ok = f && fputs(r.t.dest, f) >= 0;
      for (size_t i = 0; ok && i < keep; i++)
        ok = fprintf(f, "%016" PRIx64 " 0 %" PRId64 " -1 0\n", (uint64_t)r.v[i].id, r.v[i].min_ns) > 0;
      ok = ok && fflush(f) == 0 && fdatasync(fileno(f)) == 0;
      if (f && fclose(f) != 0) ok = false;
      if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        rc = pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno ? errno : EIO));
      }
    }
    if (rc == 0 && keep && fsync_dir(segdir) < 0) rc = pp_err_set(err, PP_EIO, "%s: %s", segdir, strerror(errno));
    if (rc < 0) undo(segdir, r.v, keep, data_dir), st->restored = 0, st->bytes = 0;
  }
  curl_easy_cleanup(r.c);
  free(r.v);
  return rc < 0 ? rc : 0;
}
