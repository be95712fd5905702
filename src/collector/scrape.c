/* The scrape engine; see scrape.h for the state diagram and the contract. */
#include "scrape.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../base/buf.h"
#include "../base/clock.h"
#include "../base/file.h"
#include "../base/gz.h"
#include "../base/htab.h"
#include "../base/metrics.h"

#define BACKOFF_MAX_MS 300000
#define BUSY_RETRY_MS 5000
/* credential files (read at every scrape): longer ones fail the scrape, never truncated. A
 * Kubernetes service-account token is about 1 KiB; 16 KiB leaves room for large OIDC tokens. */
#define MAX_TOKEN_BYTES 16384
#define MAX_PASSWORD_BYTES 4096
#define DECODE_WORKERS 4
/* Duration histogram buckets (seconds), as Prometheus' default plus the long CPU profiles. */
static const double dur_buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define NBUCKETS (sizeof dur_buckets / sizeof *dur_buckets)

struct job;

/* One fetched body on its way through the decode worker and back to the loop. */
typedef struct decode_item {
  struct job *j;
  uint8_t *data; /* the body (owned) */
  size_t len;
  uint64_t max;  /* max_body: the decompressed cap */
  bool gzip;     /* sent with Content-Encoding: gzip: inflated before it is decoded */
  int64_t done_ms, end_ns; /* when the transfer completed (monotonic, wall) */
  pprof_profile *p;        /* set by the worker, or NULL with err */
  char err[640];
  struct decode_item *next;
} decode_item;

typedef struct job {
  char *key;            /* identity for config diffs: every setting that shapes a request */
  char *monitor, *endpoint, *url, *host_key; /* host_key: scheme://host:port for CPU exclusion */
  cfg_ptype type;
  int seconds;
  int64_t interval_ms, timeout_ms;
  uint64_t max_body;
  cfg_kv *labels;
  size_t nlabels;
  struct curl_slist *headers;
  struct curl_slist *req_headers; /* this scrape's headers (with a fresh bearer token) */
  struct curl_slist *connect_to;  /* tls.server_name: "name:port:host:port" */
  char *bearer_file, *user, *password, *password_file;
  char *ca, *cert, *key_file;
  int insecure;
  /* schedule and state. next_ms, easy and decoding are shown by /api/v1/targets: the loop
   * (their only writer) reads them freely and writes them under e->mu; other threads read
   * them under e->mu */
  int64_t next_ms;      /* when due (monotonic ms) */
  int64_t started_ms, started_wall_ns;
  CURL *easy;           /* non-NULL while running */
  pp_buf buf; /* the body being fetched, capped at max_body (buf.over: the transfer was stopped) */
  char errbuf[CURL_ERROR_SIZE];
  bool removed;         /* dropped by a reload while its body is being decoded: freed when that ends */
  bool decoding;        /* its body is with the decode worker; not due again until it is back */
  /* health (read by other threads under e->mu) */
  bool up, busy, ever;
  int64_t last_scrape_ns, last_duration_ms;
  uint64_t last_bytes;
  char last_error[640];
  uint32_t failures;    /* consecutive */
  uint64_t scrapes_total, failures_total, bytes_total;
  uint64_t dur_counts[NBUCKETS + 1];
  double dur_sum;
} job;

struct scrape_engine {
  CURLM *multi;
  int ep;               /* epoll: curl's sockets (data = 0/1 tag + fd), the wake eventfd, extras */
  int wake_fd;          /* eventfd written by scrape_wakeup from any thread */
  int64_t curl_deadline_ms; /* from CURLMOPT_TIMERFUNCTION; -1 = none */
  int64_t next_due_ms;  /* earliest next_ms of an idle job (a lower bound) */
  int extra_fds[8];     /* caller fds registered in ep, so each turn need not re-add them */
  unsigned nextra_fds;
  scrape_sink sink;
  void *ud;
  job **jobs;
  size_t njobs;
  pthread_mutex_t mu;   /* guards job health fields, the shown schedule fields, the drift
                         * histogram and the job list against readers on other threads */
  /* The decode workers: a fetched body is decoded off the event loop (a large or hostile body
   * takes long to inflate, and other targets' scrapes must start on time meanwhile), by one of
   * several threads, so a small body does not wait behind a big one. todo and done are FIFO
   * lists under qmu; a worker writes wake_fd when it finishes one. */
  pthread_t workers[DECODE_WORKERS];
  unsigned nworkers;
  bool worker_stop;
  pthread_mutex_t qmu;
  pthread_cond_t qcv;
  struct decode_item *todo, **todo_tail, *done, **done_tail;
  uint64_t drift_counts[NBUCKETS + 1]; /* under mu */
  double drift_sum;
  uint64_t drift_n;
  bool draining;        /* scrape_drain: no job starts any more */
};

static uint64_t rnd(void) {
  static __thread uint64_t x = 0;
  if (!x) x = (uint64_t)pp_clock_real_ns() | 1;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static void job_free(job *j) {
  if (!j) return;
  free(j->key);
  free(j->monitor);
  free(j->endpoint);
  free(j->url);
  free(j->host_key);
  for (size_t i = 0; i < j->nlabels; i++) {
    free(j->labels[i].key);
    free(j->labels[i].value);
  }
  free(j->labels);
  curl_slist_free_all(j->headers);
  curl_slist_free_all(j->req_headers);
  curl_slist_free_all(j->connect_to);
  free(j->bearer_file);
  free(j->user);
  free(j->password);
  free(j->password_file);
  free(j->ca);
  free(j->cert);
  free(j->key_file);
  pp_buf_free(&j->buf);
  free(j);
}

/* epoll data: curl sockets carry their fd; the wake eventfd and extra fds carry tags. */
#define WAKE_TAG ((uint64_t)1 << 40)
#define EXTRA_TAG ((uint64_t)2 << 40)

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp) {
  (void)easy;
  scrape_engine *e = ud;
  struct epoll_event ev = {.data.u64 = (uint64_t)fd};
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(e->ep, EPOLL_CTL_DEL, fd, NULL);
    return 0;
  }
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
  if (!sockp) {
    if (epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev) < 0 && errno == EEXIST) epoll_ctl(e->ep, EPOLL_CTL_MOD, fd, &ev);
    curl_multi_assign(e->multi, fd, (void *)1);
  } else if (epoll_ctl(e->ep, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT) {
    epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev);
  }
  return 0;
}


static void *decode_worker(void *arg);

static int on_timer(CURLM *multi, long timeout_ms, void *ud) {
  (void)multi;
  scrape_engine *e = ud;
  e->curl_deadline_ms = timeout_ms < 0 ? -1 : pp_clock_mono_ms() + timeout_ms;
  return 0;
}

int scrape_new(scrape_sink sink, void *ud, scrape_engine **ret, pp_err *err) {
  scrape_engine *e = calloc(1, sizeof *e);
  if (!e) return pp_err_set(err, PP_ENOMEM, "out of memory");
  e->multi = curl_multi_init();
  if (!e->multi) {
    free(e);
    return pp_err_set(err, PP_ENOMEM, "curl_multi_init failed");
  }
  /* keep connections to every target warm: they are scraped again and again */
  curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, 4096L);
  /* The multi_socket API: curl tells us which sockets to watch and when its next timeout is,
   * and we tell it which sockets are ready, so a turn of the loop costs in proportion to the
   * sockets with activity, not to every transfer in flight (thousands of CPU profiles wait for
   * seconds each). */
  e->ep = epoll_create1(EPOLL_CLOEXEC);
  e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  e->curl_deadline_ms = -1;
  if (e->ep < 0 || e->wake_fd < 0) {
    if (e->ep >= 0) close(e->ep);
    if (e->wake_fd >= 0) close(e->wake_fd);
    curl_multi_cleanup(e->multi);
    free(e);
    return pp_err_set(err, PP_EIO, "epoll/eventfd: %s", strerror(errno));
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
  epoll_ctl(e->ep, EPOLL_CTL_ADD, e->wake_fd, &ev);
  curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
  e->sink = sink;
  e->ud = ud;
  pthread_mutex_init(&e->mu, NULL);
  pthread_mutex_init(&e->qmu, NULL);
  pthread_cond_init(&e->qcv, NULL);
  e->todo_tail = &e->todo;
  e->done_tail = &e->done;
  for (unsigned i = 0; i < DECODE_WORKERS; i++) {
    int r = pthread_create(&e->workers[i], NULL, decode_worker, e);
    if (r != 0) {
      scrape_free(e);
      return pp_err_set(err, PP_EIO, "decode thread: %s", strerror(r));
    }
    e->nworkers++;
  }
  *ret = e;
  return 0;
}

/* Publishes a job's shown state (easy, decoding, next_ms) for other threads. Loop only. */
static void job_show(scrape_engine *e, job *j, CURL *easy, bool decoding, int64_t next_ms) {
  pthread_mutex_lock(&e->mu);
  j->easy = easy;
  j->decoding = decoding;
  j->next_ms = next_ms;
  pthread_mutex_unlock(&e->mu);
}

/* Ends a job's transfer (abandoned if it still runs); the job shows as idle. */
static void job_stop(scrape_engine *e, job *j) {
  if (!j->easy) return;
  CURL *c = j->easy;
  job_show(e, j, NULL, j->decoding, j->next_ms);
  curl_multi_remove_handle(e->multi, c);
  curl_easy_cleanup(c);
}

static void free_items(decode_item *it) {
  while (it) {
    decode_item *next = it->next;
    if (it->j->removed) job_free(it->j); /* jobs still in the list are freed with it */
    pprof_free(it->p);
    free(it->data);
    free(it);
    it = next;
  }
}

void scrape_free(scrape_engine *e) {
  if (!e) return;
  pthread_mutex_lock(&e->qmu);
  e->worker_stop = true;
  pthread_cond_broadcast(&e->qcv);
  pthread_mutex_unlock(&e->qmu);
  for (unsigned i = 0; i < e->nworkers; i++) pthread_join(e->workers[i], NULL);
  free_items(e->todo);
  free_items(e->done);
  for (size_t i = 0; i < e->njobs; i++) {
    job_stop(e, e->jobs[i]);
    job_free(e->jobs[i]);
  }
  free(e->jobs);
  curl_multi_cleanup(e->multi);
  close(e->ep);
  close(e->wake_fd);
  pthread_mutex_destroy(&e->mu);
  pthread_mutex_destroy(&e->qmu);
  pthread_cond_destroy(&e->qcv);
  free(e);
}

/* ---- building jobs from config ------------------------------------------------------------ */

static void key_add(pp_buf *k, const char *tag, const char *v) { pp_buf_printf(k, "%s=%s\x1f", tag, v ? v : "\x1e"); }

/* The job of monitor m's profile type t in *ret; 0, or a negative PP_E* code (also in err). */
static int job_from_config(const cfg_config *c, const cfg_monitor *m, cfg_ptype t, job **ret, pp_err *err) {
  cfg_effective eff;
  int r = cfg_effective_for(c, m, t, &eff, err);
  if (r < 0) return r;
  job *j = calloc(1, sizeof *j);
  if (!j) return pp_err_set(err, PP_ENOMEM, "out of memory");
  j->monitor = strdup(m->name);
  j->endpoint = strdup(m->endpoint);
  j->url = strdup(eff.url);
  j->type = t;
  j->seconds = eff.seconds;
  j->interval_ms = eff.interval_ms;
  j->timeout_ms = eff.timeout_ms;
  j->max_body = eff.max_body_bytes;
  /* scheme://host:port of the endpoint: CPU profiles are exclusive per process */
  const char *hs = strstr(m->endpoint, "://");
  const char *he = hs ? strchr(hs + 3, '/') : NULL;
  j->host_key = he ? strndup(m->endpoint, (size_t)(he - m->endpoint)) : strdup(m->endpoint);
  j->labels = calloc(m->nlabels ? m->nlabels : 1, sizeof *j->labels);
  j->nlabels = m->nlabels;
  for (size_t i = 0; j->labels && i < m->nlabels; i++) {
    j->labels[i].key = strdup(m->labels[i].key);
    j->labels[i].value = strdup(m->labels[i].value);
  }
  const cfg_kv *h = CFG_PICK(&eff, headers);
  size_t nh = m->scrape.headers ? m->scrape.nheaders : c->global.nheaders;
  for (size_t i = 0; h && i < nh; i++) {
    char line[2048];
    snprintf(line, sizeof line, "%s: %s", h[i].key, h[i].value);
    j->headers = curl_slist_append(j->headers, line);
  }
  j->bearer_file = xstrdup(CFG_PICK(&eff, bearer_token_file));
  j->user = xstrdup(CFG_PICK(&eff, basic_username));
  j->password = xstrdup(CFG_PICK(&eff, basic_password));
  j->password_file = xstrdup(CFG_PICK(&eff, basic_password_file));
  j->ca = xstrdup(CFG_PICK(&eff, tls_ca_file));
  j->cert = xstrdup(CFG_PICK(&eff, tls_cert_file));
  j->key_file = xstrdup(CFG_PICK(&eff, tls_key_file));
  j->insecure = m->scrape.tls_insecure_skip_verify >= 0 ? m->scrape.tls_insecure_skip_verify
                                                         : c->global.tls_insecure_skip_verify > 0;
  const char *sni = CFG_PICK(&eff, tls_server_name);
  if (sni && !strncmp(j->url, "https://", 8)) {
    /* Verify (and send SNI for) server_name while connecting to the endpoint's address: the
     * URL names server_name, CONNECT_TO routes it, and Host keeps the real authority. */
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *nurl = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, j->url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_HOST, sni, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_URL, &nurl, 0) == CURLUE_OK) {
      char line[600];
      snprintf(line, sizeof line, "%s:%s:%s:%s", sni, port, host, port);
      j->connect_to = curl_slist_append(NULL, line);
      snprintf(line, sizeof line, "Host: %s:%s", host, port);
      j->headers = curl_slist_append(j->headers, line);
      free(j->url);
      j->url = strdup(nurl);
    }
    curl_free(host);
    curl_free(port);
    curl_free(nurl);
    curl_url_cleanup(u);
  }
  /* the identity: everything above */
  pp_buf k;
  pp_buf_init(&k, 0); /* no cap: made of the config's fields, each bounded when it was parsed */
  char num[128];
  key_add(&k, "monitor", j->monitor);
  key_add(&k, "url", j->url);
  snprintf(num, sizeof num, "%d/%" PRId64 "/%" PRId64 "/%" PRIu64 "/%d", j->seconds, j->interval_ms,
           j->timeout_ms, j->max_body, j->insecure);
  key_add(&k, "n", num);
  for (size_t i = 0; i < j->nlabels; i++) {
    key_add(&k, "lk", j->labels[i].key);
    key_add(&k, "lv", j->labels[i].value);
  }
  for (struct curl_slist *s = j->headers; s; s = s->next) key_add(&k, "h", s->data);
  const char *more[] = {j->bearer_file, j->user, j->password, j->password_file, j->ca, j->cert, j->key_file};
  for (size_t i = 0; i < sizeof more / sizeof *more; i++) key_add(&k, "a", more[i]);
  j->key = pp_buf_take(&k, NULL);
  if (!j->monitor || !j->endpoint || !j->url || !j->host_key || !j->labels || !j->key) {
    job_free(j);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  *ret = j;
  return 0;
}

/* First due time: spread over the interval (or the first 5 s for back-to-back jobs) by a
 * hash of the job, so restarts and reloads do not start every target at once. */
static int64_t spread_offset(const job *j) {
  uint64_t h = htab_hash(j->key, strlen(j->key));
  int64_t span = j->interval_ms > 0 ? j->interval_ms : 5000;
  return (int64_t)(h % (uint64_t)span);
}

int scrape_apply(scrape_engine *e, const cfg_config *c, pp_err *err) {
  size_t want = 0;
  for (size_t i = 0; i < c->nmonitors; i++)
    for (int t = 0; t < CFG_NTYPES; t++) want += c->monitors[i].types[t].enabled;
  job **nj = calloc(want ? want : 1, sizeof *nj);
  if (!nj) return pp_err_set(err, PP_ENOMEM, "out of memory");
  size_t n = 0;
  htab old;
  if (htab_init(&old, e->njobs + 16, 0) < 0) {
    free(nj);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  /* Every failure below returns its own code (never err->code: err may be NULL, and a path
   * that forgot to fill it returned 0, "applied", with nothing applied or the jobs dropped). */
  int r = 0;
  for (size_t i = 0; r == 0 && i < e->njobs; i++) {
    uint32_t idx;
    if (htab_intern(&old, e->jobs[i]->key, strlen(e->jobs[i]->key), &idx) < 0) r = pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  bool *kept = calloc(e->njobs + 1, sizeof *kept);
  bool *fresh = calloc(want + 1, sizeof *fresh);
  if (r == 0 && (!kept || !fresh)) r = pp_err_set(err, PP_ENOMEM, "out of memory");
  int64_t now = pp_clock_mono_ms();
  for (size_t i = 0; r == 0 && i < c->nmonitors; i++) {
    for (int t = 0; r == 0 && t < CFG_NTYPES; t++) {
      if (!c->monitors[i].types[t].enabled) continue;
      job *j = NULL;
      r = job_from_config(c, &c->monitors[i], (cfg_ptype)t, &j, err);
      if (r < 0) break;
      int64_t found = htab_find(&old, j->key, strlen(j->key));
      if (found >= 0 && !kept[found]) {
        /* unchanged: keep the running job, its schedule and its health */
        kept[found] = true;
        nj[n++] = e->jobs[found];
        job_free(j);
      } else {
        j->next_ms = now + spread_offset(j);
        fresh[n] = true;
        nj[n++] = j;
      }
    }
  }
  if (r < 0) {
    /* nothing applied: the old job set stays in force */
    for (size_t k = 0; fresh && k < n; k++)
      if (fresh[k]) job_free(nj[k]);
    free(nj);
    free(kept);
    free(fresh);
    htab_free(&old);
    return r;
  }
  free(fresh);
  job **oldj = e->jobs;
  size_t oldn = e->njobs;
  pthread_mutex_lock(&e->mu);
  e->jobs = nj;
  e->njobs = n;
  pthread_mutex_unlock(&e->mu);
  e->next_due_ms = 0; /* rescan: new jobs have their own due times */
  /* the removed jobs are out of the list other threads read: stopped and freed without the lock */
  for (size_t i = 0; i < oldn; i++) {
    if (kept[i]) continue;
    job *j = oldj[i];
    job_stop(e, j); /* a running one is abandoned; it is never handed to the sink */
    if (j->decoding) {
      j->removed = true; /* the decode worker has its body: freed when it comes back */
      continue;
    }
    job_free(j);
  }
  free(oldj);
  free(kept);
  htab_free(&old);
  return 0;
}

/* ---- running ------------------------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  pp_buf *b = ud;
  size_t n = size * nmemb;
  /* The body as sent (no transport decoding is asked for: see job_start); a Content-Encoding
   * is undone by the decode worker, which caps the decompressed bytes at the same max. Past
   * max (b->over) or out of memory, returning 0 stops the transfer with CURLE_WRITE_ERROR. */
  return pp_buf_put(b, ptr, n) ? n : 0;
}

/* A CPU job of this process may not start while another runs, nor ahead of one that has been
 * waiting longer: without the second rule a back-to-back job would restart in the same turn
 * it finished and starve a second CPU monitor of the same process forever. */
static bool cpu_must_wait(scrape_engine *e, const job *j, int64_t now) {
  for (size_t i = 0; i < e->njobs; i++) {
    const job *o = e->jobs[i];
    if (o == j || o->type != CFG_CPU || strcmp(o->host_key, j->host_key)) continue;
    if (o->easy) return true;
    if (o->next_ms <= now && (o->next_ms < j->next_ms || (o->next_ms == j->next_ms && o < j))) return true;
  }
  return false;
}

/* Counts how late a job started (under e->mu: /metrics reads the histogram). */
static void record_drift_locked(scrape_engine *e, double seconds) {
  size_t b = 0;
  while (b < NBUCKETS && seconds > dur_buckets[b]) b++;
  e->drift_counts[b]++;
  e->drift_sum += seconds;
  e->drift_n++;
}

static void job_finish(scrape_engine *e, job *j, int64_t now, int64_t end_ns, const char *err, bool busy,
                       pprof_profile *p, uint8_t *data, size_t len);

/* A credential file's first line, read with the project's capped reader: a longer file is
 * refused (never truncated into a wrong credential), and so is a missing or unreadable one.
 * It is read on the scrape loop at every scrape, so only a regular file is read at all: opening
 * a FIFO (or reading a terminal) would wait for a writer and stop every target's scrapes. */
static int read_secret(const char *path, const char *what, size_t max, char **ret, pp_err *err) {
  uint8_t *data = NULL;
  size_t len = 0;
  pp_err ferr = {0};
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
    return pp_err_set(err, PP_EINVAL, "%s: %s: not a regular file", what, path);
  if (pp_read_file(path, max, &data, &len, &ferr) < 0)
    return pp_err_set(err, ferr.code, "%s: %s", what, ferr.msg);
  char *text = (char *)data; /* NUL-terminated by pp_read_file */
  text[strcspn(text, "\r\n")] = '\0';
  *ret = text;
  return 0;
}

static void job_start(scrape_engine *e, job *j, int64_t now) {
  pp_err cerr = {0}; /* a credential that could not be read: the scrape fails with it */
  CURL *c = curl_easy_init();
  if (!c) {
    job_show(e, j, NULL, false, now + 1000);
    return;
  }
  double drift = (double)(now - j->next_ms) / 1000.0;
  pp_buf_free(&j->buf); /* idle jobs hold none (job_finish); this is for a start that failed */
  pp_buf_init(&j->buf, j->max_body);
  j->errbuf[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, j->url);
  curl_easy_setopt(c, CURLOPT_PRIVATE, j);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &j->buf);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, j->errbuf);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(j->timeout_ms < 10000 ? j->timeout_ms : 10000));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  /* No Accept-Encoding, so curl does not inflate bodies on this thread: a pprof body is gzip
   * already, and a peer that compresses anyway (Content-Encoding: gzip) is inflated by the
   * decode worker under max_body_bytes; a deflate bomb would otherwise hold up the loop. */
  curl_easy_setopt(c, CURLOPT_USERAGENT, "pprof-controller-collector");
  struct curl_slist *hdrs = j->headers;
  /* the bearer token is read at each scrape, so a rotated token file is picked up */
  struct curl_slist *extra = NULL;
  if (j->bearer_file) {
    char *tok = NULL, *line = NULL;
    if (read_secret(j->bearer_file, "bearer_token_file", MAX_TOKEN_BYTES, &tok, &cerr) == 0 &&
        asprintf(&line, "Authorization: Bearer %s", tok) >= 0) {
      for (struct curl_slist *s = j->headers; s; s = s->next) extra = curl_slist_append(extra, s->data);
      extra = curl_slist_append(extra, line);
      hdrs = extra;
    } else if (!cerr.code) {
      pp_err_set(&cerr, PP_ENOMEM, "out of memory");
    }
    free(line);
    free(tok);
  }
  if (hdrs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  /* libcurl reads the header list while the request is sent: it lives until the job ends */
  curl_slist_free_all(j->req_headers);
  j->req_headers = extra;
  if (j->user && !cerr.code) {
    curl_easy_setopt(c, CURLOPT_USERNAME, j->user);
    if (j->password) {
      curl_easy_setopt(c, CURLOPT_PASSWORD, j->password); /* libcurl keeps a copy */
    } else if (j->password_file) {
      char *pw = NULL;
      if (read_secret(j->password_file, "basic_auth.password_file", MAX_PASSWORD_BYTES, &pw, &cerr) == 0) {
        curl_easy_setopt(c, CURLOPT_PASSWORD, pw);
        free(pw);
      }
    } else {
      curl_easy_setopt(c, CURLOPT_PASSWORD, "");
    }
  }
  if (j->connect_to) curl_easy_setopt(c, CURLOPT_CONNECT_TO, j->connect_to);
  if (j->ca) curl_easy_setopt(c, CURLOPT_CAINFO, j->ca);
  if (j->cert) curl_easy_setopt(c, CURLOPT_SSLCERT, j->cert);
  if (j->key_file) curl_easy_setopt(c, CURLOPT_SSLKEY, j->key_file);
  if (j->insecure) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  j->started_ms = now;
  j->started_wall_ns = pp_clock_real_ns();
  if (cerr.code) {
    /* no request without the credentials asked for: the scrape fails with the reason */
    curl_easy_cleanup(c);
    curl_slist_free_all(j->req_headers);
    j->req_headers = NULL;
    job_finish(e, j, now, pp_clock_real_ns(), cerr.msg, false, NULL, NULL, 0);
    return;
  }
  if (curl_multi_add_handle(e->multi, c) != CURLM_OK) {
    curl_easy_cleanup(c);
    job_show(e, j, NULL, false, now + 1000);
    return;
  }
  pthread_mutex_lock(&e->mu);
  record_drift_locked(e, drift);
  j->easy = c;
  pthread_mutex_unlock(&e->mu);
}

static int64_t backoff_ms(uint32_t failures) {
  double b = 1000.0 * pow(2.0, failures > 20 ? 20 : (double)failures - 1);
  if (b > BACKOFF_MAX_MS) b = BACKOFF_MAX_MS;
  double jitter = 0.8 + 0.4 * (double)(rnd() % 10000) / 10000.0;
  return (int64_t)(b * jitter);
}

static void observe_duration(job *j, double seconds) {
  size_t b = 0;
  while (b < NBUCKETS && seconds > dur_buckets[b]) b++;
  j->dur_counts[b]++;
  j->dur_sum += seconds;
}

/* The end of a scrape, on the loop: a good profile to the sink, health, the next run. err is
 * "" on success (then p is the decoded profile); data/len is the body, freed here. */
static void job_finish(scrape_engine *e, job *j, int64_t now, int64_t end_ns, const char *err, bool busy,
                       pprof_profile *p, uint8_t *data, size_t len) {
  if (!err[0]) {
    int64_t start_ns = j->type == CFG_CPU || j->seconds > 0 ? end_ns - (int64_t)j->seconds * 1000000000 : end_ns;
    /* a delta or CPU profile says when its window started; trust it if it is plausible */
    if (p->time_nanos > 0 && p->time_nanos < end_ns && p->time_nanos > end_ns - 86400LL * 1000000000) {
      start_ns = p->time_nanos;
      if (j->type != CFG_CPU && j->seconds == 0) end_ns = p->time_nanos;
    }
    scrape_result r = {j->monitor, cfg_type_name[j->type], j->labels, j->nlabels, j->endpoint,
                       start_ns, end_ns, data, len, p};
    e->sink(e->ud, &r);
  }
  pprof_free(p);
  /* idle jobs hold no body buffer: with thousands of jobs, kept buffers would be most of RSS */
  free(data);
  double dur = (double)(now - j->started_ms) / 1000.0;
  int64_t next;
  if (err[0]) {
    int64_t b = busy ? BUSY_RETRY_MS : backoff_ms(j->failures + 1);
    next = now + (j->interval_ms > b ? j->interval_ms : b);
  } else if (j->interval_ms > 0) {
    /* stay on the grid; if we fell more than an interval behind, start again from now */
    next = j->next_ms + j->interval_ms;
    if (next < now) next = now + (j->interval_ms ? spread_offset(j) % j->interval_ms : 0) / 16;
  } else {
    next = now; /* back to back: continuous CPU coverage */
  }
  pthread_mutex_lock(&e->mu);
  j->decoding = false;
  j->next_ms = next;
  j->ever = true;
  j->last_scrape_ns = j->started_wall_ns;
  j->last_duration_ms = now - j->started_ms;
  j->last_bytes = len;
  j->scrapes_total++;
  j->bytes_total += len;
  observe_duration(j, dur);
  if (err[0]) {
    j->up = false;
    j->busy = busy;
    j->failures++;
    j->failures_total++;
    snprintf(j->last_error, sizeof j->last_error, "%s", err);
  } else {
    j->up = true;
    j->busy = false;
    j->failures = 0;
    j->last_error[0] = '\0';
  }
  pthread_mutex_unlock(&e->mu);
  if (j->next_ms < e->next_due_ms) e->next_due_ms = j->next_ms;
}

/* A transfer ended: a failure is finished here; a 200 goes to the decode worker, and the job
 * waits (decoding) until drain_decoded finishes it. */
static void job_done(scrape_engine *e, job *j, CURLcode cr) {
  int64_t now = pp_clock_mono_ms();
  long status = 0;
  curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(j->req_headers);
  j->req_headers = NULL;
  char err[640] = "";
  bool busy = false;
  /* a transport encoding: gzip is inflated by the worker; others are not asked for */
  struct curl_header *ce = NULL;
  bool gzip = false;
  bool unsupported = false;
  if (curl_easy_header(j->easy, "Content-Encoding", 0, CURLH_HEADER, -1, &ce) == CURLHE_OK && ce && ce->value) {
    gzip = !strcasecmp(ce->value, "gzip") || !strcasecmp(ce->value, "x-gzip");
    unsupported = !gzip && strcasecmp(ce->value, "identity");
  }
  if (unsupported) {
    snprintf(err, sizeof err, "unsupported Content-Encoding %.60s", ce->value);
  } else if (j->buf.over) {
    snprintf(err, sizeof err, "body exceeds max_body_bytes (%" PRIu64 " bytes)", j->max_body);
  } else if (cr != CURLE_OK) {
    snprintf(err, sizeof err, "%s%s%s", curl_easy_strerror(cr), j->errbuf[0] ? ": " : "", j->errbuf);
  } else if (status != 200) {
    size_t show = j->buf.len < 160 ? j->buf.len : 160;
    char text[200];
    size_t k = 0;
    for (size_t i = 0; i < show; i++) {
      unsigned char ch = (unsigned char)j->buf.p[i];
      text[k++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    text[k] = '\0';
    busy = status == 500 && strstr(text, "already in use");
    snprintf(err, sizeof err, "HTTP %ld: %s", status, text);
  }
  size_t len = 0;
  uint8_t *data = (uint8_t *)pp_buf_take(&j->buf, &len);
  decode_item *it = err[0] ? NULL : calloc(1, sizeof *it);
  if (!err[0] && !it) snprintf(err, sizeof err, "out of memory");
  /* the transfer ends and, for a body, the decode begins, as one change other threads see */
  CURL *c = j->easy;
  job_show(e, j, NULL, !err[0], j->next_ms);
  curl_multi_remove_handle(e->multi, c);
  curl_easy_cleanup(c);
  if (err[0]) {
    job_finish(e, j, now, pp_clock_real_ns(), err, busy, NULL, data, len);
    return;
  }
  *it = (decode_item){.j = j, .data = data, .len = len, .max = j->max_body, .gzip = gzip, .done_ms = now, .end_ns = pp_clock_real_ns()};
  pthread_mutex_lock(&e->qmu);
  *e->todo_tail = it;
  e->todo_tail = &it->next;
  pthread_cond_signal(&e->qcv);
  pthread_mutex_unlock(&e->qmu);
}

/* The decode worker: bodies from todo, decoded, to done; wakes the loop for each. */
static void *decode_worker(void *arg) {
  scrape_engine *e = arg;
  pthread_mutex_lock(&e->qmu);
  for (;;) {
    while (!e->todo && !e->worker_stop) pthread_cond_wait(&e->qcv, &e->qmu);
    if (e->worker_stop) break;
    decode_item *it = e->todo;
    e->todo = it->next;
    if (!e->todo) e->todo_tail = &e->todo;
    it->next = NULL;
    pthread_mutex_unlock(&e->qmu);
    pprof_limits lim;
    pprof_limits_default(&lim);
    lim.max_decompressed = it->max;
    pp_err perr = {0};
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    int r = it->gzip ? pp_gunzip(it->data, it->len, it->max, &plain, &plain_len, &perr) : 0;
    if (r == PP_ELIMIT) {
      snprintf(it->err, sizeof it->err, "body exceeds max_body_bytes (%" PRIu64 " bytes)", it->max);
    } else if (r < 0) {
      snprintf(it->err, sizeof it->err, "Content-Encoding gzip: %s", perr.msg);
    } else {
      if (plain) { /* what the sink stores: the body without its transport encoding */
        free(it->data);
        it->data = plain;
        it->len = plain_len;
      }
      if (pprof_decode(it->data, it->len, &lim, &it->p, &perr) < 0) snprintf(it->err, sizeof it->err, "invalid profile: %s", perr.msg);
    }
    pthread_mutex_lock(&e->qmu);
    *e->done_tail = it;
    e->done_tail = &it->next;
    scrape_wakeup(e);
  }
  pthread_mutex_unlock(&e->qmu);
  return NULL;
}

/* Finishes the jobs whose bodies the worker has decoded (on the loop). */
static void drain_decoded(scrape_engine *e) {
  pthread_mutex_lock(&e->qmu);
  decode_item *it = e->done;
  e->done = NULL;
  e->done_tail = &e->done;
  pthread_mutex_unlock(&e->qmu);
  while (it) {
    decode_item *next = it->next;
    job *j = it->j;
    if (j->removed) {
      /* dropped by a reload meanwhile: nothing is handed over */
      pprof_free(it->p);
      free(it->data);
      job_free(j);
    } else {
      job_finish(e, j, it->done_ms, it->end_ns, it->err, false, it->p, it->data, it->len);
    }
    free(it);
    it = next;
  }
}

static void drain_done(scrape_engine *e) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(e->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    job *j = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
    if (j) job_done(e, j, msg->data.result);
  }
}

int scrape_run(scrape_engine *e, int max_wait_ms, struct curl_waitfd *extra, unsigned nextra) {
  int64_t now = pp_clock_mono_ms();
  int64_t wake = now + max_wait_ms;
  int running = 0;
  /* start due jobs; the scan is skipped while nothing can be due, and once draining */
  if (!e->draining && now >= e->next_due_ms) {
    int64_t next_due = INT64_MAX;
    for (size_t i = 0; i < e->njobs; i++) {
      job *j = e->jobs[i];
      if (j->easy || j->decoding) continue;
      if (j->next_ms <= now) {
        if (j->type == CFG_CPU && cpu_must_wait(e, j, now)) {
          /* keeps its due time, and so its place in line; look again shortly */
          if (now + 100 < next_due) next_due = now + 100;
          continue;
        }
        job_start(e, j, now);
        /* one that did not start (no handle, or a credential it could not read: failed
         * without a request) is due again later, and the next scan must come by then */
        if (!j->easy && j->next_ms < next_due) next_due = j->next_ms;
        continue;
      }
      if (j->next_ms < next_due) next_due = j->next_ms;
    }
    e->next_due_ms = next_due;
    /* let curl act on the new transfers now (it may also have timed out old ones) */
    curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_done(e);
  }
  if (!e->draining && e->next_due_ms < wake) wake = e->next_due_ms;
  if (e->curl_deadline_ms >= 0 && e->curl_deadline_ms < wake) wake = e->curl_deadline_ms;
  int timeout = (int)(wake - pp_clock_mono_ms());
  if (timeout < 0) timeout = 0;

  /* the caller passes the same fds every turn: (re)register only when they change */
  bool same = nextra == e->nextra_fds && nextra <= 8;
  for (unsigned i = 0; same && i < nextra; i++) same = extra[i].fd == e->extra_fds[i];
  if (!same) {
    for (unsigned i = 0; i < e->nextra_fds; i++) epoll_ctl(e->ep, EPOLL_CTL_DEL, e->extra_fds[i], NULL);
    e->nextra_fds = 0;
    for (unsigned i = 0; i < nextra && i < 8; i++) {
      struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EXTRA_TAG | i};
      epoll_ctl(e->ep, EPOLL_CTL_ADD, extra[i].fd, &ev);
      e->extra_fds[e->nextra_fds++] = extra[i].fd;
    }
  }
  for (unsigned i = 0; i < nextra; i++) extra[i].revents = 0;
  struct epoll_event evs[256];
  int n = epoll_wait(e->ep, evs, 256, timeout);
  int ready = 0;
  for (int i = 0; i < n; i++) {
    uint64_t tag = evs[i].data.u64;
    if (tag == WAKE_TAG) {
      uint64_t v;
      if (read(e->wake_fd, &v, sizeof v) < 0) {
      }
    } else if (tag & EXTRA_TAG) {
      unsigned k = (unsigned)(tag & 0xffffffffu);
      if (k < nextra) {
        extra[k].revents = CURL_WAIT_POLLIN;
        ready++;
      }
    } else {
      int mask = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) | (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                 (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(e->multi, (curl_socket_t)tag, mask, &running);
    }
  }
  if (e->curl_deadline_ms >= 0 && pp_clock_mono_ms() >= e->curl_deadline_ms) {
    e->curl_deadline_ms = -1;
    curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  }
  drain_done(e);
  drain_decoded(e);
  return ready;
}

size_t scrape_drain(scrape_engine *e) {
  e->draining = true;
  size_t n = 0;
  /* (bodies of jobs a reload removed are not counted: nothing of theirs is stored) */
  for (size_t i = 0; i < e->njobs; i++) n += e->jobs[i]->easy || e->jobs[i]->decoding;
  return n;
}

void scrape_wakeup(scrape_engine *e) {
  uint64_t one = 1;
  if (write(e->wake_fd, &one, sizeof one) < 0) {
  }
}


json_t *scrape_targets_json(scrape_engine *e) {
  json_t *arr = json_array();
  int64_t now = pp_clock_mono_ms();
  pthread_mutex_lock(&e->mu);
  for (size_t i = 0; i < e->njobs; i++) {
    const job *j = e->jobs[i];
    json_t *labels = json_object();
    for (size_t k = 0; k < j->nlabels; k++) json_object_set_new(labels, j->labels[k].key, json_string(j->labels[k].value));
    const char *health = !j->ever ? "unknown" : j->up ? "up" : "down";
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:I}",
                          "monitor", j->monitor, "type", cfg_type_name[j->type], "endpoint", j->endpoint,
                          "scrapeUrl", j->url, "labels", labels, "health", health, "lastError", j->last_error,
                          "lastScrapeUnixNano", (json_int_t)j->last_scrape_ns,
                          "lastScrapeDurationMs", (json_int_t)j->last_duration_ms,
                          "lastScrapeBytes", (json_int_t)j->last_bytes,
                          "consecutiveFailures", (json_int_t)j->failures,
                          "scrapesTotal", (json_int_t)j->scrapes_total,
                          "failuresTotal", (json_int_t)j->failures_total, "busy", j->busy,
                          "nextScrapeInMs", (json_int_t)(j->easy || j->decoding ? 0 : j->next_ms - now));
    if (o) json_array_append_new(arr, o);
  }
  pthread_mutex_unlock(&e->mu);
  return arr;
}

/* A histogram from per-bucket counts (counts[NBUCKETS] is the +Inf bucket). */
static void histogram(pp_buf *out, const char *name, const char *help, const uint64_t *counts, double sum) {
  char bucket[200], le[40];
  pp_metrics_head(out, name, "histogram", help);
  snprintf(bucket, sizeof bucket, "%s_bucket", name);
  uint64_t cum = 0;
  for (size_t b = 0; b <= NBUCKETS; b++) {
    cum += counts[b];
    if (b < NBUCKETS) snprintf(le, sizeof le, "%g", dur_buckets[b]);
    else snprintf(le, sizeof le, "+Inf");
    pp_metrics_u64(out, bucket, &(pp_metric_label){"le", le}, 1, cum);
  }
  snprintf(bucket, sizeof bucket, "%s_sum", name);
  pp_metrics_f64(out, bucket, NULL, 0, sum);
  snprintf(bucket, sizeof bucket, "%s_count", name);
  pp_metrics_u64(out, bucket, NULL, 0, cum);
}

void scrape_metrics(scrape_engine *e, pp_buf *out) {
  pthread_mutex_lock(&e->mu);
  static const struct {
    const char *name, *type, *help;
  } fam[] = {
      {"collector_scrapes_total", "counter", "Scrapes attempted, by target and profile type."},
      {"collector_scrape_failures_total", "counter", "Failed scrapes, by target and profile type."},
      {"collector_target_up", "gauge", "1 if the last scrape of the target succeeded."},
  };
  for (size_t f = 0; f < sizeof fam / sizeof *fam; f++) {
    pp_metrics_head(out, fam[f].name, fam[f].type, fam[f].help);
    for (size_t i = 0; i < e->njobs; i++) {
      const job *j = e->jobs[i];
      pp_metric_label l[] = {{"monitor", j->monitor}, {"type", cfg_type_name[j->type]}};
      uint64_t v = f == 0 ? j->scrapes_total : f == 1 ? j->failures_total : (uint64_t)(j->up ? 1 : 0);
      pp_metrics_u64(out, fam[f].name, l, 2, v);
    }
  }
  uint64_t counts[NBUCKETS + 1] = {0};
  double sum = 0;
  for (size_t i = 0; i < e->njobs; i++) {
    for (size_t b = 0; b <= NBUCKETS; b++) counts[b] += e->jobs[i]->dur_counts[b];
    sum += e->jobs[i]->dur_sum;
  }
  histogram(out, "collector_scrape_duration_seconds", "Scrape duration, all targets.", counts, sum);
  histogram(out, "collector_schedule_drift_seconds", "How late scrapes started against their schedule.", e->drift_counts,
            e->drift_sum);
  pthread_mutex_unlock(&e->mu);
}

void scrape_get_counts(scrape_engine *e, scrape_counts *r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_lock(&e->mu);
  r->jobs = e->njobs;
  for (size_t i = 0; i < e->njobs; i++) {
    const job *j = e->jobs[i];
    r->running += j->easy != NULL;
    r->up += j->up;
    r->scrapes += j->scrapes_total;
    r->failures += j->failures_total;
    r->bytes += j->bytes_total;
  }
  pthread_mutex_unlock(&e->mu);
}
