/* List + watch cache; see informer.h. */
#include "informer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/clock.h"

#define BACKOFF_MIN_MS 800
#define BACKOFF_MAX_MS 30000
#define HEALTHY_RESET_MS 120000
#define LIST_TIMEOUT_MS 60000 /* one page */

/*   NEED_LIST --(due)--> LISTING --(last page)--> NEED_WATCH --(due)--> WATCHING
 *       ^                   |  (failed: backoff)        ^                  |
 *       +-------------------+                           +-- closed by the server (at once),
 *       +-- 410 Gone (at once), an event lost to a bad line (after the backoff) --+  failed (backoff)
 */
enum state { NEED_LIST, LISTING, NEED_WATCH, WATCHING };

struct informer {
  kclient *c;
  char *name, *path, *selector;
  inf_change_fn fn;
  void *ud;
  bool compact;
  void (*transform)(json_t *obj);
  char *index_label;
  void (*health)(void *ud, informer *inf, const char *error);
  json_t *cache;
  char rv[64];
  enum state st;
  int64_t due_ms;
  int64_t backoff_ms;
  int64_t healthy_since;
  kc_watch *w;
  kc_req *list_req; /* the page being read */
  json_t *fresh;    /* the list being read, page by page; replaces cache at the end */
  char cont[4096];  /* the next page's continue token, escaped */
  char list_rv[64];
  bool gone; /* the watch reported 410 */
  int64_t watch_started_ms;
  uint64_t watch_events;
  bool synced, failing;
  inf_stats stats;
  char last_error[512];
};

static void key_of(const json_t *obj, char *buf, size_t n) {
  const json_t *md = json_object_get(obj, "metadata");
  const char *ns = json_string_value(json_object_get(md, "namespace"));
  const char *name = json_string_value(json_object_get(md, "name"));
  if (ns) snprintf(buf, n, "%s/%s", ns, name ? name : "");
  else snprintf(buf, n, "%s", name ? name : "");
}

/* What no controller here reads is not cached: managedFields (often most of an object's
 * bytes under server-side apply) and kubectl's last-applied annotation; as client-go's
 * transform functions do. */
static void trim(json_t *obj) {
  json_t *md = json_object_get(obj, "metadata");
  json_object_del(md, "managedFields");
  json_t *ann = json_object_get(md, "annotations");
  json_object_del(ann, "kubectl.kubernetes.io/last-applied-configuration");
  if (ann && json_object_size(ann) == 0) json_object_del(md, "annotations");
}

static const char *rv_of(const json_t *obj) {
  return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

/* A cache entry: the object itself, or for compact informers [resourceVersion, its JSON text]
 * (a parsed object costs ten times its text in jansson nodes; see inf_opts.compact). */
static json_t *entry_of(const informer *inf, json_t *obj) {
  if (!inf->compact) return json_incref(obj);
  char *text = json_dumps(obj, JSON_COMPACT);
  json_t *e = text ? json_pack("[s,s]", rv_of(obj) ? rv_of(obj) : "", text) : NULL;
  free(text);
  const json_t *md = json_object_get(obj, "metadata");
  const char *v = inf->index_label ? json_string_value(json_object_get(json_object_get(md, "labels"), inf->index_label)) : NULL;
  if (e && v) {
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    char *idx = NULL;
    if (asprintf(&idx, "%s/%s", ns ? ns : "", v) >= 0) json_array_append_new(e, json_string(idx));
    free(idx);
  }
  return e;
}

static const char *entry_rv(const informer *inf, const json_t *e) {
  return inf->compact ? json_string_value(json_array_get(e, 0)) : rv_of(e);
}

const char *inf_entry_index(const informer *inf, const json_t *e) {
  return inf->compact ? json_string_value(json_array_get(e, 2)) : NULL;
}

void inf_observe(informer *inf, json_t *obj) {
  if (!json_is_object(obj)) return;
  trim(obj);
  if (inf->transform) inf->transform(obj);
  char key[600];
  key_of(obj, key, sizeof key);
  json_object_set_new(inf->cache, key, entry_of(inf, obj));
  /* a relist in progress replaces the cache: it must not bring back what was there before */
  if (inf->fresh) json_object_set_new(inf->fresh, key, entry_of(inf, obj));
}

json_t *inf_decode(const informer *inf, const json_t *e) {
  if (!inf->compact) return json_incref((json_t *)e);
  const char *text = json_string_value(json_array_get(e, 1));
  return text ? json_loads(text, 0, NULL) : NULL;
}

int inf_new(kclient *c, const inf_opts *o, informer **ret, pp_err *err) {
  informer *inf = calloc(1, sizeof *inf);
  if (!inf) return pp_err_set(err, PP_ENOMEM, "out of memory");
  inf->c = c;
  inf->name = strdup(o->name);
  inf->path = strdup(o->path);
  inf->selector = o->label_selector ? kc_escape(o->label_selector) : NULL;
  inf->fn = o->fn;
  inf->ud = o->ud;
  inf->compact = o->compact;
  inf->transform = o->transform;
  inf->index_label = o->index_label ? strdup(o->index_label) : NULL;
  inf->health = o->health;
  inf->cache = json_object();
  inf->backoff_ms = BACKOFF_MIN_MS;
  if (!inf->name || !inf->path || !inf->cache || (o->label_selector && !inf->selector)) {
    inf_free(inf);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  *ret = inf;
  return 0;
}

void inf_free(informer *inf) {
  if (!inf) return;
  kc_watch_cancel(inf->c, inf->w);
  kc_cancel(inf->c, inf->list_req);
  json_decref(inf->fresh);
  json_decref(inf->cache);
  free(inf->name);
  free(inf->path);
  free(inf->selector);
  free(inf->index_label);
  free(inf);
}

/* A failure: retried after the backoff, reported to the health callback once per run of
 * failures (the run ends with the next success). */
static void fail(informer *inf, int64_t now, const char *what) {
  inf->stats.errors++;
  snprintf(inf->last_error, sizeof inf->last_error, "%s", what);
  int64_t d = inf->backoff_ms;
  d += (int64_t)((double)d * ((double)rand() / RAND_MAX)); /* jitter factor 1.0, as client-go */
  inf->due_ms = now + d;
  inf->backoff_ms = inf->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : inf->backoff_ms * 2;
  inf->healthy_since = 0;
  if (!inf->failing) {
    inf->failing = true;
    if (inf->health) inf->health(inf->ud, inf, inf->last_error);
  }
}

static void healthy(informer *inf, int64_t now) {
  if (!inf->healthy_since) inf->healthy_since = now;
  else if (now - inf->healthy_since > HEALTHY_RESET_MS) inf->backoff_ms = BACKOFF_MIN_MS;
  inf->last_error[0] = '\0';
  if (inf->failing) {
    inf->failing = false;
    if (inf->health) inf->health(inf->ud, inf, NULL);
  }
}

/* Adds one page of a list to the fresh cache, reporting additions and changes. */
static void add_page(informer *inf, json_t *fresh, json_t *items) {
  size_t i;
  json_t *o;
  char key[600];
  json_array_foreach(items, i, o) {
    trim(o);
    if (inf->transform) inf->transform(o);
    key_of(o, key, sizeof key);
    json_t *old = json_object_get(inf->cache, key);
    if (!old) inf->fn(inf->ud, inf, "ADDED", o, NULL);
    else if (!entry_rv(inf, old) || !rv_of(o) || strcmp(entry_rv(inf, old), rv_of(o)))
      inf->fn(inf->ud, inf, "MODIFIED", o, inf->compact ? NULL : old);
    json_object_set_new(fresh, key, entry_of(inf, o));
  }
}

/* Replaces the cache with the fresh list and reports what it no longer has. */
static void replace(informer *inf, json_t *fresh) {
  const char *k;
  json_t *v;
  json_object_foreach(inf->cache, k, v) {
    if (!json_object_get(fresh, k)) {
      json_t *gone = inf_decode(inf, v);
      if (gone) inf->fn(inf->ud, inf, "DELETED", gone, gone);
      json_decref(gone);
    }
  }
  json_decref(inf->cache);
  inf->cache = json_incref(fresh);
}

static void start_page(informer *inf, int64_t now);

/* One page of a list arrived (or did not). */
static void on_page(void *ud, int st, json_t *body, const pp_err *err) {
  informer *inf = ud;
  int64_t now = pp_clock_mono_ms();
  inf->list_req = NULL;
  if (st == 410 && inf->cont[0]) { /* the continue token expired: start over */
    json_object_clear(inf->fresh);
    inf->cont[0] = '\0';
    start_page(inf, now);
    return;
  }
  if (st != 200) {
    json_decref(inf->fresh);
    inf->fresh = NULL;
    inf->cont[0] = '\0';
    inf->st = NEED_LIST;
    fail(inf, now, err->msg[0] ? err->msg : "list failed");
    return;
  }
  add_page(inf, inf->fresh, json_object_get(body, "items"));
  const json_t *md = json_object_get(body, "metadata");
  snprintf(inf->list_rv, sizeof inf->list_rv, "%s", json_string_value(json_object_get(md, "resourceVersion")) ?: "");
  const char *c = json_string_value(json_object_get(md, "continue"));
  char *esc = c && *c ? kc_escape(c) : NULL;
  snprintf(inf->cont, sizeof inf->cont, "%s", esc ? esc : "");
  free(esc);
  if (inf->cont[0]) {
    start_page(inf, now);
    return;
  }
  replace(inf, inf->fresh);
  json_decref(inf->fresh);
  inf->fresh = NULL;
  snprintf(inf->rv, sizeof inf->rv, "%s", inf->list_rv);
  inf->synced = true;
  inf->st = NEED_WATCH;
  inf->due_ms = now;
  healthy(inf, now);
}

static void start_page(informer *inf, int64_t now) {
  char path[8192];
  snprintf(path, sizeof path, "%s?limit=%d%s%s%s%s", inf->path, inf->compact ? 100 : 500, inf->selector ? "&labelSelector=" : "",
           inf->selector ? inf->selector : "", inf->cont[0] ? "&continue=" : "", inf->cont);
  pp_err err = {0};
  kc_req_opts o = {.timeout_ms = LIST_TIMEOUT_MS};
  if (kc_start(inf->c, "GET", path, NULL, NULL, &o, on_page, inf, &inf->list_req, &err) < 0) {
    inf->list_req = NULL;
    json_decref(inf->fresh);
    inf->fresh = NULL;
    inf->st = NEED_LIST;
    fail(inf, now, err.msg);
    return;
  }
  inf->st = LISTING;
}

static void start_list(informer *inf, int64_t now) {
  inf->stats.lists++;
  if (inf->synced) inf->stats.relists++;
  inf->fresh = json_object(); /* the fresh cache, filled page by page */
  inf->cont[0] = '\0';
  inf->list_rv[0] = '\0';
  if (!inf->fresh) {
    fail(inf, now, "out of memory");
    return;
  }
  start_page(inf, now);
}

static bool on_event(void *ud, const char *type, json_t *obj) {
  informer *inf = ud;
  inf->stats.events++;
  inf->watch_events++;
  if (!strcmp(type, "ERROR")) {
    json_int_t code = json_integer_value(json_object_get(obj, "code"));
    if (code == 410) inf->gone = true;
    const char *m = json_string_value(json_object_get(obj, "message"));
    snprintf(inf->last_error, sizeof inf->last_error, "watch: %lld %s", (long long)code, m ? m : "");
    return false;
  }
  const char *rv = rv_of(obj);
  if (rv) snprintf(inf->rv, sizeof inf->rv, "%s", rv);
  if (!strcmp(type, "BOOKMARK")) return true;
  trim(obj);
  if (inf->transform) inf->transform(obj);
  char key[600];
  key_of(obj, key, sizeof key);
  json_t *old = json_object_get(inf->cache, key);
  json_incref(old);
  const json_t *old_obj = inf->compact ? NULL : old;
  if (!strcmp(type, "DELETED")) {
    json_object_del(inf->cache, key);
    inf->fn(inf->ud, inf, type, obj, old_obj ? old_obj : obj);
  } else {
    json_object_set_new(inf->cache, key, entry_of(inf, obj));
    inf->fn(inf->ud, inf, old ? "MODIFIED" : "ADDED", obj, old_obj);
  }
  json_decref(old);
  return true;
}

static void on_watch_end(void *ud, const kc_watch_end *e) {
  informer *inf = ud;
  int64_t now = pp_clock_mono_ms();
  inf->w = NULL;
  inf->stats.watch_restarts++;
  if (inf->gone || e->http_status == 410) {
    /* history compacted past our resourceVersion: a consistent relist, at once */
    inf->stats.relists_gone++;
    inf->st = NEED_LIST;
    inf->due_ms = now;
    return;
  }
  char what[1100];
  if (e->reason == KC_WATCH_EVENT_TOO_LARGE || e->reason == KC_WATCH_EVENT_INVALID) {
    /* the event is lost: resuming from the last resourceVersion would meet it again, so the
     * stream is abandoned and the cache listed afresh, after the backoff */
    inf->stats.bad_events++;
    snprintf(what, sizeof what, "watch ended on %s; relisting", e->msg);
    inf->st = NEED_LIST;
    fail(inf, now, what);
    return;
  }
  inf->st = NEED_WATCH;
  if (e->reason == KC_WATCH_CLOSED) {
    inf->due_ms = now; /* the server's timeout: carry on from the last resourceVersion */
    healthy(inf, now);
    return;
  }
  inf->stats.watch_failures++;
  if (e->reason == KC_WATCH_STOPPED) snprintf(what, sizeof what, "watch ended: %s", inf->last_error);
  else snprintf(what, sizeof what, "watch ended: %s", e->msg);
  /* consecutive failures double the backoff; a watch that worked for a while and then lost
   * its connection starts again from the minimum */
  if (e->http_status == 200 && (inf->watch_events > 0 || now - inf->watch_started_ms > 10000)) inf->backoff_ms = BACKOFF_MIN_MS;
  fail(inf, now, what); /* 429 and 5xx included: back off, do not relist */
}

static void start_watch(informer *inf, int64_t now) {
  char path[8192];
  int timeout = 300 + rand() % 301;
  snprintf(path, sizeof path, "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s%s%s", inf->path,
           timeout, inf->rv, inf->selector ? "&labelSelector=" : "", inf->selector ? inf->selector : "");
  pp_err err = {0};
  inf->gone = false;
  inf->stats.watches++;
  inf->watch_started_ms = now;
  inf->watch_events = 0;
  if (kc_watch_start(inf->c, path, on_event, on_watch_end, inf, &inf->w, &err) < 0) {
    inf->w = NULL;
    fail(inf, now, err.msg);
    return;
  }
  inf->st = WATCHING;
}

int64_t inf_tick(informer *inf, int64_t now) {
  if (inf->st == WATCHING) {
    /* the server took the watch: whatever failed before works again */
    if (inf->failing && kc_watch_status(inf->w) == 200) healthy(inf, now);
    return 1000;
  }
  if (inf->st == LISTING) return 1000;
  if (now < inf->due_ms) return inf->due_ms - now;
  if (inf->st == NEED_LIST) start_list(inf, now);
  else if (inf->st == NEED_WATCH) start_watch(inf, now);
  if (inf->st == WATCHING || inf->st == LISTING) return 1000;
  return inf->due_ms > now ? inf->due_ms - now : 0;
}

bool inf_listing(const informer *inf) { return inf->st == LISTING; }

bool inf_synced(const informer *inf) { return inf->synced; }

const json_t *inf_get(const informer *inf, const char *ns, const char *name) {
  if (inf->compact) return NULL;
  char key[600];
  if (ns) snprintf(key, sizeof key, "%s/%s", ns, name);
  else snprintf(key, sizeof key, "%s", name);
  return json_object_get(inf->cache, key);
}

const json_t *inf_items(const informer *inf) { return inf->cache; }
const char *inf_name(const informer *inf) { return inf->name; }
void inf_get_stats(const informer *inf, inf_stats *ret) { *ret = inf->stats; }
const char *inf_last_error(const informer *inf) { return inf->last_error; }
