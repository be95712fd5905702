#include "web_fanout.h"

#include <curl/curl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../base/buf.h"
#include "../base/log.h"
#include "../base/scrapeval.h"
#include "config.h"

struct web_fanout {
  pthread_mutex_t mu; /* guards the lists: the config's changes on reloads while queries run */
  char **flag;        /* --peer */
  size_t nflag;
  char **cfg;         /* the config's query.peers */
  size_t ncfg;
  long timeout_ms;
  char id[33];        /* this collector's, random: a peer list may name the collector itself */
  char from[64];      /* "X-Pprof-From: <id>" */
  char *bearer;       /* "Authorization: Bearer <token>", or NULL */
};

static void free_list(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* Checked copies of the URLs (a trailing / dropped): 0, or PP_EINVAL naming the bad one. */
static int copy_list(const char *const *peers, size_t n, char ***ret, pp_err *err) {
  *ret = NULL;
  if (n > WEB_FANOUT_MAX_PEERS) return pp_err_set(err, PP_EINVAL, "at most %d peers", WEB_FANOUT_MAX_PEERS);
  for (size_t i = 0; i < n; i++) {
    pp_err e = {0};
    if (sv_check_endpoint(peers[i], &e) < 0) return pp_err_set(err, PP_EINVAL, "%s", e.msg);
  }
  char **v = calloc(n ? n : 1, sizeof *v);
  if (!v) return pp_err_set(err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(peers[i]);
    while (len && peers[i][len - 1] == '/') len--;
    if (!(v[i] = strndup(peers[i], len))) {
      free_list(v, i);
      return pp_err_set(err, PP_ENOMEM, "out of memory");
    }
  }
  *ret = v;
  return 0;
}

bool web_fanout_token_ok(const char *token) {
  if (!token) return false;
  for (const char *c = token; *c; c++)
    if (*c < 0x21 || *c > 0x7e) return false;
  return true;
}

int web_fanout_new(const char *const *peers, size_t n, double timeout_s, const char *token, web_fanout **ret, pp_err *err) {
  *ret = NULL;
  if (token && !web_fanout_token_ok(token))
    return pp_err_set(err, PP_EINVAL, "the peers' token: printable ASCII without spaces only");
  web_fanout *f = calloc(1, sizeof *f);
  if (!f) return pp_err_set(err, PP_ENOMEM, "out of memory");
  int r = copy_list(peers, n, &f->flag, err);
  if (r == 0 && token && (r = asprintf(&f->bearer, "Authorization: Bearer %s", token)) < 0) {
    f->bearer = NULL;
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  if (r < 0) {
    free_list(f->flag, n);
    free(f);
    return r;
  }
  r = 0;
  f->nflag = n;
  f->timeout_ms = (long)((timeout_s > 0 ? timeout_s : WEB_FANOUT_TIMEOUT_S) * 1000);
  uint8_t rnd[16];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
    /* no entropy: the time and the process tell collectors apart well enough for this */
    uint64_t v[2] = {(uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32), (uint64_t)(uintptr_t)f};
    memcpy(rnd, v, sizeof rnd);
  }
  for (size_t i = 0; i < sizeof rnd; i++) snprintf(f->id + 2 * i, 3, "%02x", rnd[i]);
  snprintf(f->from, sizeof f->from, "%s: %s", WEB_FANOUT_FROM_HEADER, f->id);
  pthread_mutex_init(&f->mu, NULL);
  *ret = f;
  return 0;
}

int web_fanout_set(web_fanout *f, const char *const *peers, size_t n, pp_err *err) {
  char **v;
  int r = copy_list(peers, n, &v, err);
  if (r < 0) return r;
  pthread_mutex_lock(&f->mu);
  char **old = f->cfg;
  size_t nold = f->ncfg;
  f->cfg = v;
  f->ncfg = n;
  pthread_mutex_unlock(&f->mu);
  free_list(old, nold);
  return 0;
}

void web_fanout_free(web_fanout *f) {
  if (!f) return;
  free_list(f->flag, f->nflag);
  free_list(f->cfg, f->ncfg);
  free(f->bearer);
  pthread_mutex_destroy(&f->mu);
  free(f);
}

const char *web_fanout_id(const web_fanout *f) { return f->id; }

size_t web_fanout_peers(web_fanout *f) {
  if (!f) return 0;
  pthread_mutex_lock(&f->mu);
  size_t n = f->nflag + f->ncfg;
  pthread_mutex_unlock(&f->mu);
  return n;
}

/* One peer's request: its body (capped), what its headers said. */
typedef struct call {
  CURL *c;
  pp_buf body;
  web_fanout_meta meta;
  bool done;  /* the transfer finished, with rc */
  CURLcode rc;
  char peer[SV_MAX_URL_LEN + 1];
  char url[SV_MAX_URL_LEN + WEB_FANOUT_MAX_PATH + 1];
  char cerr[CURL_ERROR_SIZE];
} call;

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
  call *k = ud;
  return pp_buf_put(&k->body, p, sz * nm) ? sz * nm : 0;
}

/* X-Pprof-Profiles, X-Pprof-Truncated and X-Pprof-Type (web.c sends them with /api/v1/profile),
 * X-Pprof-Partial (with any answer); other lines say nothing. A line too long for the buffer is
 * read for X-Pprof-Partial only, cut: an answer that says it is partial is, however long why. */
void web_fanout__header(const char *p, size_t n, web_fanout_meta *m) {
  char line[256];
  size_t c = n < sizeof line ? n : sizeof line - 1;
  memcpy(line, p, c);
  line[c] = '\0';
  if (!strncasecmp(line, "X-Pprof-Partial:", 16)) { /* kept as printable ASCII, trimmed */
    const char *h = line + 16;
    while (*h == ' ' || *h == '\t') h++;
    size_t j = 0;
    for (; *h && *h != '\r' && *h != '\n' && j + 1 < sizeof m->partial; h++) m->partial[j++] = *h >= 0x20 && *h < 0x7f ? *h : '?';
    m->partial[j] = '\0';
    if (!j) snprintf(m->partial, sizeof m->partial, "partial");
  }
  if (c < n) return; /* (a number or a name cut short would be read wrong) */
  unsigned long long v;
  char t[24];
  if (!strncasecmp(line, "X-Pprof-Profiles:", 17) && sscanf(line + 17, " %llu", &v) == 1) m->profiles = v;
  if (!strncasecmp(line, "X-Pprof-Truncated:", 18) && strstr(line + 18, "true")) m->truncated = true;
  if (!strncasecmp(line, "X-Pprof-Type:", 13) && sscanf(line + 13, " %23[a-z]", t) == 1) {
    int ty = cfg_type_from_name(t);
    m->type = ty >= 0 ? cfg_type_name[ty] : NULL;
  }
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
  call *k = ud;
  web_fanout__header(p, sz * nm, &k->meta);
  return sz * nm;
}

/* Appends "&k=v" (escaped) to the path; false when it does not fit. */
static bool add_param(char *url, size_t cap, const char *k, const char *v) {
  char *ek = curl_easy_escape(NULL, k, 0), *ev = curl_easy_escape(NULL, v, 0);
  size_t len = strlen(url);
  bool ok = ek && ev && (size_t)snprintf(url + len, cap - len, "&%s=%s", ek, ev) < cap - len;
  curl_free(ek);
  curl_free(ev);
  return ok;
}

int web_fanout_path(const char *route, const char *const *k, const char *const *v, size_t n, char *out, size_t cap) {
  if ((size_t)snprintf(out, cap, "%s?local=1", route) >= cap) return -1;
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(k[i], "local") || !strcmp(k[i], "peer")) continue;
    if (!add_param(out, cap, k[i], v[i])) return -1;
  }
  return 0;
}

static bool sel_path(const web_fanout_sel *s, char *url, size_t cap) {
  if ((size_t)snprintf(url, cap, "/api/v1/profile?local=1") >= cap) return false;
  char t[40];
  bool ok = add_param(url, cap, "type", s->type);
  if (s->from) {
    snprintf(t, sizeof t, "%" PRId64 ".%09" PRId64, s->from / 1000000000, s->from % 1000000000);
    ok = ok && add_param(url, cap, "from", t);
  }
  if (s->to) {
    snprintf(t, sizeof t, "%" PRId64 ".%09" PRId64, s->to / 1000000000, s->to % 1000000000);
    ok = ok && add_param(url, cap, "to", t);
  }
  if (s->agg) ok = ok && add_param(url, cap, "agg", s->agg);
  for (size_t i = 0; i < s->nm && ok; i++) ok = add_param(url, cap, s->m[i].name, s->m[i].value);
  return ok;
}

/* Names peer and why in info->missing (cut short when full). */
static void name_peer(web_fanout_info *info, const char *peer, const char *why) {
  size_t len = strlen(info->missing);
  if (len + 1 < sizeof info->missing)
    snprintf(info->missing + len, sizeof info->missing - len, "%s%s (%s)", len ? "; " : "", peer, why);
}

/* A peer that did not answer. */
static void missing(web_fanout_info *info, const char *peer, const char *why) {
  info->failed++;
  name_peer(info, peer, why);
}

/* The peers to ask now, each once (a reload may change the config's list while this runs; a
 * peer named twice, by a flag and the config, is asked once); only: just that one, if listed.
 * *n = 0 when there are none (or only is not one of them); NULL with *n > 0: out of memory. */
static call *snapshot(web_fanout *f, const char *only, size_t *n) {
  pthread_mutex_lock(&f->mu);
  size_t all = f->nflag + f->ncfg, k = 0;
  call *calls = all ? calloc(all, sizeof *calls) : NULL;
  for (size_t i = 0; calls && i < all; i++) {
    const char *p = i < f->nflag ? f->flag[i] : f->cfg[i - f->nflag];
    bool seen = only && strcmp(only, p);
    for (size_t j = 0; j < k && !seen; j++) seen = !strcmp(calls[j].peer, p);
    if (!seen) snprintf(calls[k].peer, sizeof calls[k].peer, "%s", p), k++;
  }
  pthread_mutex_unlock(&f->mu);
  *n = calls ? k : all;
  if (calls && !k) free(calls), calls = NULL;
  return calls;
}

/* Asks each call's peer for path at once, each body capped at per bytes (0: no cap); then hands
 * every 200 answer to fn, in the calls' order, and records the rest in info. fn's error stops
 * it (returned); a peer's failure does not. */
static int run(web_fanout *f, call *calls, size_t n, const char *path, const web_fanout_post *post, size_t per,
               web_fanout_body_fn fn, void *ud, web_fanout_info *info, pp_err *err) {
  CURLM *m = curl_multi_init();
  struct curl_slist *hdrs = curl_slist_append(NULL, f->from);
  if (hdrs && f->bearer) {
    struct curl_slist *h = curl_slist_append(hdrs, f->bearer);
    if (!h) curl_slist_free_all(hdrs);
    hdrs = h;
  }
  char ctype[160];
  if (post) {
    /* (no "Expect: 100-continue": a peer's answer is one round trip, its body small) */
    snprintf(ctype, sizeof ctype, "Content-Type: %s", post->ctype);
    struct curl_slist *h = hdrs ? curl_slist_append(hdrs, ctype) : NULL;
    if (h) hdrs = h, h = curl_slist_append(hdrs, "Expect:");
    if (!h) curl_slist_free_all(hdrs), hdrs = NULL;
  }
  int r = 0;
  if (!m || !hdrs) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    call *k = &calls[i];
    pp_buf_init(&k->body, per);
    info->asked++;
    if ((size_t)snprintf(k->url, sizeof k->url, "%s%s", k->peer, path) >= sizeof k->url) {
      missing(info, k->peer, "the query is too long to pass on");
      continue;
    }
    if (!(k->c = curl_easy_init())) {
      missing(info, k->peer, "out of memory");
      continue;
    }
    curl_easy_setopt(k->c, CURLOPT_URL, k->url);
    curl_easy_setopt(k->c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(k->c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k->c, CURLOPT_TIMEOUT_MS, f->timeout_ms);
    curl_easy_setopt(k->c, CURLOPT_CONNECTTIMEOUT_MS, f->timeout_ms < 5000 ? f->timeout_ms : 5000L);
    curl_easy_setopt(k->c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k->c, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(k->c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(k->c, CURLOPT_HEADERDATA, k);
    curl_easy_setopt(k->c, CURLOPT_ERRORBUFFER, k->cerr);
    curl_easy_setopt(k->c, CURLOPT_PRIVATE, k);
    curl_easy_setopt(k->c, CURLOPT_HTTPHEADER, hdrs);
    if (post) {
      curl_easy_setopt(k->c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)post->len);
      curl_easy_setopt(k->c, CURLOPT_POSTFIELDS, post->body ? post->body : "");
    }
    if (curl_multi_add_handle(m, k->c) != CURLM_OK) {
      missing(info, k->peer, "out of memory");
      curl_easy_cleanup(k->c);
      k->c = NULL;
    }
  }
  int running = 1;
  while (running) {
    if (curl_multi_perform(m, &running) != CURLM_OK) break;
    if (running && curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK) break;
  }
  /* each finished transfer's result, once (curl hands each message out once) */
  CURLMsg *msg;
  int q;
  while ((msg = curl_multi_info_read(m, &q))) {
    call *o = NULL;
    if (msg->msg != CURLMSG_DONE || curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&o) != CURLE_OK || !o)
      continue;
    o->done = true;
    o->rc = msg->data.result;
  }
  for (size_t i = 0; i < n && r == 0; i++) {
    call *k = &calls[i];
    if (!k->c) continue;
    long status = 0;
    if (k->done && k->rc == CURLE_OK) curl_easy_getinfo(k->c, CURLINFO_RESPONSE_CODE, &status);
    char why[300];
    if (!k->done) {
      missing(info, k->peer, "no answer");
      continue;
    }
    if (k->rc != CURLE_OK) {
      if (k->rc == CURLE_WRITE_ERROR && k->body.over) snprintf(why, sizeof why, "its answer passed the query's memory budget");
      else snprintf(why, sizeof why, "%s", k->cerr[0] ? k->cerr : curl_easy_strerror(k->rc));
      missing(info, k->peer, why);
      continue;
    }
    if (status == 204) { /* the collector itself (WEB_FANOUT_FROM_HEADER): its part is the local one */
      info->asked--;
      continue;
    }
    if (status == 404) continue; /* nothing there */
    if (status != 200) {
      snprintf(why, sizeof why, "HTTP %ld", status);
      missing(info, k->peer, why);
      continue;
    }
    why[0] = '\0';
    r = fn(ud, k->peer, k->body.p ? k->body.p : "", k->body.len, &k->meta, why, sizeof why, err);
    if (r == 0 && why[0]) missing(info, k->peer, why);
    else if (r == 0 && k->meta.partial[0]) { /* merged, but the peer says its answer lacks something */
      snprintf(why, sizeof why, "its answer is partial: %s", k->meta.partial);
      name_peer(info, k->peer, why);
      info->partial_peers++;
    }
    pp_buf_free(&k->body);
  }
done:
  for (size_t i = 0; i < n; i++) {
    if (calls[i].c) {
      if (m) curl_multi_remove_handle(m, calls[i].c);
      curl_easy_cleanup(calls[i].c);
    }
    pp_buf_free(&calls[i].body);
  }
  if (m) curl_multi_cleanup(m);
  curl_slist_free_all(hdrs);
  if (info->failed) pp_log(PP_LOG_DEBUG, "fan-out: %u of %u peers did not answer: %s", info->failed, info->asked, info->missing);
  return r;
}

/* Every peer asked path (a GET, or post), their answers sharing the budget. */
static int ask_all(web_fanout *f, const char *path, const web_fanout_post *post, size_t budget, web_fanout_body_fn fn,
                   void *ud, web_fanout_info *info, pp_err *err) {
  if (!f) return 0;
  size_t n;
  call *calls = snapshot(f, NULL, &n);
  if (!n) return 0;
  if (!calls) return pp_err_set(err, PP_ENOMEM, "out of memory");
  int r = run(f, calls, n, path, post, budget ? (budget / n ? budget / n : 1) : 0, fn, ud, info, err);
  free(calls);
  return r;
}

int web_fanout_get(web_fanout *f, const char *path, size_t budget, web_fanout_body_fn fn, void *ud, web_fanout_info *info,
                   pp_err *err) {
  return ask_all(f, path, NULL, budget, fn, ud, info, err);
}

int web_fanout_post_all(web_fanout *f, const web_fanout_post *post, size_t budget, web_fanout_body_fn fn, void *ud,
                        web_fanout_info *info, pp_err *err) {
  return ask_all(f, post->path, post, budget, fn, ud, info, err);
}

int web_fanout_get_one(web_fanout *f, const char *peer, const char *path, size_t budget, web_fanout_body_fn fn, void *ud,
                       web_fanout_info *info, pp_err *err) {
  char want[SV_MAX_URL_LEN + 1];
  size_t len = strlen(peer);
  while (len && peer[len - 1] == '/') len--;
  if (len >= sizeof want) return pp_err_set(err, PP_EINVAL, "peer: not one of this collector's peers");
  memcpy(want, peer, len);
  want[len] = '\0';
  size_t n = 0;
  call *calls = f ? snapshot(f, want, &n) : NULL;
  if (!n) return pp_err_set(err, PP_EINVAL, "peer: not one of this collector's peers");
  if (!calls) return pp_err_set(err, PP_ENOMEM, "out of memory");
  int r = run(f, calls, 1, path, NULL, budget, fn, ud, info, err);
  free(calls);
  return r;
}

/* web_fanout_merge's: the peers' decoded profiles, within the budget */
typedef struct gather {
  pprof_profile **got;
  size_t ngot, used, budget;
  web_fanout_info *info;
} gather;

static int on_profile(void *ud, const char *peer, const char *body, size_t len, const web_fanout_meta *meta, char *why, size_t nwhy,
                      pp_err *err) {
  (void)peer, (void)err;
  gather *g = ud;
  if (!len) return 0; /* a 200 with nothing: the query API's merge of no profiles */
  pprof_limits lim;
  pprof_limits_default(&lim);
  lim.max_memory = g->budget ? (g->budget > g->used ? g->budget - g->used : 1) : lim.max_memory;
  pp_err de = {0};
  if (pprof_decode((const uint8_t *)body, len, &lim, &g->got[g->ngot], &de) < 0) {
    snprintf(why, nwhy, "its answer does not decode: %.200s", de.msg);
    return 0;
  }
  g->used += g->got[g->ngot]->mem.reserved;
  g->info->profiles += meta->profiles;
  g->info->truncated |= meta->truncated;
  g->ngot++;
  return 0;
}

/* The merge of every peer's answer to path (a GET, or post) into *prof: web_fanout_merge's and
 * web_fanout_merge_post's. path NULL: the query is too long to pass on. */
static int merge_answers(web_fanout *f, const char *path, const web_fanout_post *post, size_t budget, pprof_profile **prof,
                         web_fanout_info *info, pp_err *err) {
  if (!f) return 0;
  size_t local = *prof ? (*prof)->mem.reserved : 0;
  if (budget && local >= budget) return pp_err_set(err, PP_ELIMIT, "the merged profile needs more than the query's memory budget of %zu bytes", budget);
  size_t n;
  call *calls = snapshot(f, NULL, &n);
  if (!n) return 0;
  int r = 0;
  gather g = {calls ? calloc(n, sizeof *g.got) : NULL, 0, local, budget, info};
  if (!calls || !g.got) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto done;
  }
  if (!path) {
    for (size_t i = 0; i < n; i++) info->asked++, missing(info, calls[i].peer, "the query is too long to pass on");
    goto done;
  }
  /* each peer's encoded answer may take what the local profile leaves, split between the peers
   * that answer at once; their decoded profiles and the merge share the same */
  size_t left = budget ? budget - local : 0, per = left ? left / (2 * n) : 0;
  if ((r = run(f, calls, n, path, post, per ? per : (budget ? 1 : 0), on_profile, &g, info, err)) < 0 || !g.ngot) goto done;
  if (budget && g.used >= budget) {
    r = pp_err_set(err, PP_ELIMIT, "the peers' profiles need more than the query's memory budget of %zu bytes", budget);
    goto done;
  }
  pprof_merger *mg = NULL;
  pprof_profile *out = NULL;
  if ((r = pprof_merger_new(&mg, err)) < 0) goto done;
  if (budget) pprof_merger_set_limit(mg, budget - g.used);
  if (*prof) r = pprof_merger_add(mg, *prof, 1, err);
  for (size_t i = 0; i < g.ngot && r == 0; i++) r = pprof_merger_add(mg, g.got[i], 1, err);
  if (r == 0) r = pprof_merger_finish(mg, &out, err);
  else pprof_merger_free(mg);
  if (r == 0) {
    pprof_free(*prof);
    *prof = out;
  }
done:
  for (size_t i = 0; i < g.ngot; i++) pprof_free(g.got[i]);
  free(g.got);
  free(calls);
  return r;
}

int web_fanout_merge(web_fanout *f, const web_fanout_sel *sel, size_t budget, pprof_profile **prof,
                     web_fanout_info *info, pp_err *err) {
  char path[WEB_FANOUT_MAX_PATH];
  return merge_answers(f, sel_path(sel, path, sizeof path) ? path : NULL, NULL, budget, prof, info, err);
}

int web_fanout_merge_post(web_fanout *f, const web_fanout_post *post, size_t budget, pprof_profile **prof,
                          web_fanout_info *info, pp_err *err) {
  return merge_answers(f, post->path, post, budget, prof, info, err);
}
