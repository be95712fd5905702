/* Config parsing with libyaml's document loader: every node keeps its start mark, so an error
 * can say FILE:LINE:COLUMN and the key path that led there. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "../base/file.h"
#include "../base/gz.h"
#include "../base/scrapeval.h"
#include "../base/units.h"

const char *const cfg_type_name[CFG_NTYPES] = {"cpu", "heap", "allocs", "block", "mutex",
                                                "goroutine", "threadcreate"};
const char *const cfg_type_endpoint[CFG_NTYPES] = {"profile", "heap", "allocs", "block", "mutex",
                                                    "goroutine", "threadcreate"};

int cfg_type_from_name(const char *name) {
  for (int i = 0; i < CFG_NTYPES; i++)
    if (!strcmp(name, cfg_type_name[i]) || !strcmp(name, cfg_type_endpoint[i])) return i;
  return -1;
}

/* Anchors and aliases make a YAML graph out of a tree; a walk over a hostile one can be
 * exponential ("billion laughs"), so the number of nodes visited is capped. */
#define MAX_VISITS 1000000

typedef struct P {
  yaml_document_t *doc;
  const char *name;
  cfg_config *c;
  pp_err *err;
  char path[512];
  size_t visits;
  size_t warn_cap;
} P;

static int failv(P *p, const yaml_node_t *n, const char *fmt, va_list ap) {
  char msg[400];
  vsnprintf(msg, sizeof msg, fmt, ap);
  return pp_err_set(p->err, PP_EINVAL, "%s:%zu:%zu: %s: %s", p->name, n->start_mark.line + 1,
                    n->start_mark.column + 1, p->path[0] ? p->path : "(top)", msg);
}

__attribute__((format(printf, 3, 4))) static int fail(P *p, const yaml_node_t *n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = failv(p, n, fmt, ap);
  va_end(ap);
  return r;
}

__attribute__((format(printf, 3, 4))) static void warn(P *p, const yaml_node_t *n, const char *fmt, ...) {
  char msg[400], line[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int len = snprintf(line, sizeof line, "%s:%zu:%zu: %s: %s", p->name, n->start_mark.line + 1,
                     n->start_mark.column + 1, p->path[0] ? p->path : "(top)", msg);
  if (len < 0) return;
  cfg_config *c = p->c;
  if (c->nwarnings == p->warn_cap) {
    if (p->warn_cap >= 1000) return; /* enough said */
    size_t nc = p->warn_cap ? p->warn_cap * 2 : 8;
    char **nw = arena_alloc(&c->mem, nc * sizeof *nw);
    if (!nw) return;
    if (c->nwarnings) memcpy(nw, c->warnings, c->nwarnings * sizeof *nw);
    c->warnings = nw;
    p->warn_cap = nc;
  }
  char *s = arena_strndup(&c->mem, line, strlen(line));
  if (s) c->warnings[c->nwarnings++] = s;
}

/* Path bookkeeping: push ".key" or "[i]", pop by restoring the old length. */
static size_t push_key(P *p, const char *key) {
  size_t old = strlen(p->path);
  snprintf(p->path + old, sizeof p->path - old, "%s%s", old ? "." : "", key);
  return old;
}
static size_t push_index(P *p, size_t i) {
  size_t old = strlen(p->path);
  snprintf(p->path + old, sizeof p->path - old, "[%zu]", i);
  return old;
}
static void pop(P *p, size_t old) { p->path[old] = '\0'; }

static yaml_node_t *node(P *p, int id) { return yaml_document_get_node(p->doc, id); }

static int visit(P *p, const yaml_node_t *n) {
  if (++p->visits > MAX_VISITS) return fail(p, n, "document too large (aliases expand past %d nodes)", MAX_VISITS);
  return 0;
}

static bool is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE) return false;
  const char *v = (const char *)n->data.scalar.value;
  return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
         (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"));
}

static int get_str(P *p, const yaml_node_t *n, char **out) {
  if (n->type != YAML_SCALAR_NODE) return fail(p, n, "expected a string");
  const char *v = (const char *)n->data.scalar.value;
  size_t len = n->data.scalar.length;
  if (strlen(v) != len) return fail(p, n, "string contains a NUL byte");
  *out = arena_strndup(&p->c->mem, v, len);
  return *out ? 0 : pp_err_set(p->err, PP_ENOMEM, "out of memory");
}

static int get_num(P *p, const yaml_node_t *n, double min, double max, bool integer, double *out) {
  if (n->type != YAML_SCALAR_NODE || is_null(n)) return fail(p, n, "expected a number");
  const char *v = (const char *)n->data.scalar.value;
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end) return fail(p, n, "\"%s\" is not a number", v);
  /* range first: casting an out-of-range double to an integer is undefined */
  if (!(d >= min && d <= max)) return fail(p, n, "%s is outside %g..%g", v, min, max);
  if (integer && d != (double)(long long)d) return fail(p, n, "\"%s\" must be a whole number", v);
  *out = d;
  return 0;
}

/* A number checked by one of the shared scrape rules (base/scrapeval.h), which the operator
 * applies too before it writes a config. */
static int get_checked(P *p, const yaml_node_t *n, int (*check)(double, pp_err *), double *out) {
  double d;
  int r = get_num(p, n, -HUGE_VAL, HUGE_VAL, false, &d);
  if (r < 0) return r;
  pp_err e;
  if (check(d, &e) < 0) return fail(p, n, "%s", e.msg);
  *out = d;
  return 0;
}

static int seconds_cpu(double d, pp_err *e) { return sv_check_seconds(true, d, e); }
static int seconds_other(double d, pp_err *e) { return sv_check_seconds(false, d, e); }

static int get_bool(P *p, const yaml_node_t *n, int *out) {
  if (n->type == YAML_SCALAR_NODE) {
    const char *v = (const char *)n->data.scalar.value;
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "yes")) return *out = 1, 0;
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "no")) return *out = 0, 0;
  }
  return fail(p, n, "expected true or false");
}

/* A mapping of string to string (labels, params, headers). check_key validates each key. */
static int get_kv(P *p, const yaml_node_t *n, cfg_kv **out, size_t *nout, bool header_safe) {
  if (is_null(n)) return 0;
  if (n->type != YAML_MAPPING_NODE) return fail(p, n, "expected a mapping of names to values");
  size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  if (cnt > 1000) return fail(p, n, "more than 1000 entries");
  cfg_kv *kv = arena_calloc(&p->c->mem, cnt ? cnt : 1, sizeof *kv);
  if (!kv) return pp_err_set(p->err, PP_ENOMEM, "out of memory");
  size_t k = 0;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
    int r;
    if ((r = visit(p, vn)) < 0) return r;
    if ((r = get_str(p, kn, &kv[k].key)) < 0) return r;
    size_t old = push_key(p, kv[k].key);
    if (vn->type != YAML_SCALAR_NODE) return fail(p, vn, "expected a string value");
    if ((r = get_str(p, vn, &kv[k].value)) < 0) return r;
    if (!*kv[k].key) return fail(p, kn, "empty name");
    if (header_safe) {
      for (const char *s = kv[k].key; *s; s++)
        if (!isgraph((unsigned char)*s) || *s == ':') return fail(p, kn, "invalid character in name");
      for (const char *s = kv[k].value; *s; s++)
        if (*s == '\r' || *s == '\n') return fail(p, vn, "line breaks are not allowed here");
    }
    pop(p, old);
    k++;
  }
  *out = kv;
  *nout = k;
  return 0;
}

/* Keys shared by `global:` and each monitor. Returns 1 if key was one of them. */
static int scrape_key(P *p, const char *key, const yaml_node_t *v, cfg_scrape *s) {
  int r = 1;
  double d;
  if (!strcmp(key, "interval_seconds")) {
    if ((r = get_checked(p, v, sv_check_interval, &d)) == 0) s->interval_seconds = d, r = 1;
  } else if (!strcmp(key, "timeout_seconds")) {
    if ((r = get_checked(p, v, sv_check_timeout, &d)) == 0) s->timeout_seconds = d, r = 1;
  } else if (!strcmp(key, "path")) {
    if ((r = get_str(p, v, &s->path)) == 0) {
      pp_err e;
      if (sv_check_path(s->path, &e) < 0) return fail(p, v, "%s", e.msg);
      r = 1;
    }
  } else if (!strcmp(key, "params")) {
    if ((r = get_kv(p, v, &s->params, &s->nparams, false)) == 0) r = 1;
  } else if (!strcmp(key, "headers")) {
    if ((r = get_kv(p, v, &s->headers, &s->nheaders, true)) == 0) r = 1;
  } else if (!strcmp(key, "bearer_token_file")) {
    if ((r = get_str(p, v, &s->bearer_token_file)) == 0) r = 1;
  } else if (!strcmp(key, "max_body_bytes")) {
    char *txt;
    uint64_t b;
    if ((r = get_str(p, v, &txt)) < 0) return r;
    pp_err e;
    if (pp_parse_size(txt, &b, &e) < 0 || b < 1024) return fail(p, v, "expected a size of at least 1KiB, like 64MiB");
    s->max_body_bytes = b;
    r = 1;
  } else if (!strcmp(key, "basic_auth") || !strcmp(key, "tls")) {
    bool tls = key[0] == 't';
    if (v->type != YAML_MAPPING_NODE) return fail(p, v, "expected a mapping");
    for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
      yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
      char *k;
      if ((r = get_str(p, kn, &k)) < 0) return r;
      size_t old = push_key(p, k);
      char **dst = NULL;
      if (!tls && !strcmp(k, "username")) dst = &s->basic_username;
      else if (!tls && !strcmp(k, "password")) dst = &s->basic_password;
      else if (!tls && !strcmp(k, "password_file")) dst = &s->basic_password_file;
      else if (tls && !strcmp(k, "ca_file")) dst = &s->tls_ca_file;
      else if (tls && !strcmp(k, "cert_file")) dst = &s->tls_cert_file;
      else if (tls && !strcmp(k, "key_file")) dst = &s->tls_key_file;
      else if (tls && !strcmp(k, "server_name")) dst = &s->tls_server_name;
      if (dst) {
        if ((r = get_str(p, vn, dst)) < 0) return r;
      } else if (tls && !strcmp(k, "insecure_skip_verify")) {
        if ((r = get_bool(p, vn, &s->tls_insecure_skip_verify)) < 0) return r;
      } else {
        warn(p, kn, "unknown key (ignored)");
      }
      pop(p, old);
    }
    r = 1;
  } else {
    r = 0;
  }
  return r;
}

static int parse_type(P *p, const yaml_node_t *v, cfg_ptype t, cfg_type *out) {
  out->enabled = true;
  out->seconds = t == CFG_CPU ? 10 : 0;
  if (is_null(v)) return 0;
  if (v->type != YAML_MAPPING_NODE) return fail(p, v, "expected a mapping like {seconds: 10}");
  for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
    char *k;
    int r;
    double d;
    if ((r = get_str(p, kn, &k)) < 0) return r;
    size_t old = push_key(p, k);
    if (!strcmp(k, "seconds")) {
      if ((r = get_checked(p, vn, t == CFG_CPU ? seconds_cpu : seconds_other, &d)) < 0) return r;
      out->seconds = (int)d;
    } else if (!strcmp(k, "interval_seconds")) {
      if ((r = get_checked(p, vn, sv_check_interval, &d)) < 0) return r;
      out->interval_seconds = d;
    } else {
      warn(p, kn, "unknown key (ignored)");
    }
    pop(p, old);
  }
  return 0;
}

/* Walks mapping n (null: nothing): fn(p, name, kn, vn, ud) for each entry, with its name in
 * the positions of errors and warnings. fn returns 1 for a key it took, 0 for one it does not
 * know (warned with `unknown`), < 0 to fail. Anything but a mapping fails: "expected <what>". */
typedef int key_fn(P *p, const char *name, const yaml_node_t *kn, const yaml_node_t *vn, void *ud);
static int each_key(P *p, const yaml_node_t *n, const char *what, const char *unknown, key_fn *fn, void *ud) {
  if (is_null(n)) return 0;
  if (n->type != YAML_MAPPING_NODE) return fail(p, n, "expected %s", what);
  for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
    yaml_node_t *kn = node(p, q->key), *vn = node(p, q->value);
    char *name;
    int r = get_str(p, kn, &name);
    if (r < 0) return r;
    size_t old = push_key(p, name);
    if ((r = fn(p, name, kn, vn, ud)) < 0) return r;
    if (r == 0) warn(p, kn, "%s", unknown);
    pop(p, old);
  }
  return 0;
}

/* A profile type key (under `sampling:` or directly under the monitor). 1 if it was one. */
static int type_key(P *p, const char *key, const yaml_node_t *kn, const yaml_node_t *v, cfg_monitor *m) {
  if (!strcmp(key, "trace")) {
    warn(p, kn, "trace is a Go execution trace, not a pprof profile: not collected");
    return 1;
  }
  int t = -1;
  for (int i = 0; i < CFG_NTYPES; i++)
    if (!strcmp(key, cfg_type_endpoint[i])) t = i;
  if (t < 0) return 0;
  int r = parse_type(p, v, (cfg_ptype)t, &m->types[t]);
  return r < 0 ? r : 1;
}

static int sampling_key(P *p, const char *name, const yaml_node_t *kn, const yaml_node_t *vn, void *m) {
  return type_key(p, name, kn, vn, m);
}

static int parse_monitor(P *p, const yaml_node_t *n, cfg_monitor *m) {
  if (n->type != YAML_MAPPING_NODE) return fail(p, n, "expected a mapping with name and endpoint");
  m->scrape.tls_insecure_skip_verify = -1;
  m->shard = CFG_SHARD_HASH;
  int r;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
    char *k;
    if ((r = visit(p, vn)) < 0 || (r = get_str(p, kn, &k)) < 0) return r;
    size_t old = push_key(p, k);
    if (!strcmp(k, "name")) {
      if ((r = get_str(p, vn, &m->name)) < 0) return r;
      pp_err e;
      if (sv_check_name(m->name, &e) < 0) return fail(p, vn, "%s", e.msg);
    } else if (!strcmp(k, "endpoint")) {
      if ((r = get_str(p, vn, &m->endpoint)) < 0) return r;
      pp_err e;
      if (sv_check_endpoint(m->endpoint, &e) < 0) return fail(p, vn, "%s", e.msg);
    } else if (!strcmp(k, "labels")) {
      if ((r = get_kv(p, vn, &m->labels, &m->nlabels, false)) < 0) return r;
      for (size_t i = 0; i < m->nlabels; i++) {
        const char *s = m->labels[i].key;
        bool ok = isalpha((unsigned char)s[0]) || s[0] == '_';
        for (; ok && *s; s++) ok = isalnum((unsigned char)*s) || *s == '_';
        if (!ok) return fail(p, vn, "label name \"%s\" must match [a-zA-Z_][a-zA-Z0-9_]*", m->labels[i].key);
      }
    } else if (!strcmp(k, "shard")) {
      double d;
      if (vn->type == YAML_SCALAR_NODE && !strcmp((const char *)vn->data.scalar.value, "all")) m->shard = CFG_SHARD_ALL;
      else if (vn->type != YAML_SCALAR_NODE || is_null(vn)) return fail(p, vn, "expected a shard number or \"all\"");
      else if ((r = get_num(p, vn, 0, SV_MAX_SHARDS - 1, true, &d)) < 0) return r;
      else m->shard = (int)d;
    } else if (!strcmp(k, "sampling")) {
      if ((r = each_key(p, vn, "a mapping of profile types",
                        "unknown profile type (ignored; known: profile, heap, allocs, block, mutex, goroutine, threadcreate)",
                        sampling_key, m)) < 0)
        return r;
    } else if ((r = type_key(p, k, kn, vn, m)) != 0 || (r = scrape_key(p, k, vn, &m->scrape)) != 0) {
      if (r < 0) return r;
    } else {
      warn(p, kn, "unknown key (ignored)");
    }
    pop(p, old);
  }
  if (!m->name) return fail(p, n, "a monitor needs a name");
  if (!m->endpoint) return fail(p, n, "a monitor needs an endpoint");
  bool any = false;
  for (int t = 0; t < CFG_NTYPES; t++) any |= m->types[t].enabled;
  if (!any) {
    /* Nothing listed: what Pyroscope and Alloy collect by default. */
    const cfg_ptype def[] = {CFG_CPU, CFG_HEAP, CFG_GOROUTINE, CFG_MUTEX, CFG_BLOCK};
    for (size_t i = 0; i < sizeof def / sizeof *def; i++) {
      m->types[def[i]].enabled = true;
      m->types[def[i]].seconds = def[i] == CFG_CPU ? 10 : 0;
    }
  }
  return 0;
}

static int sharding_key(P *p, const char *name, const yaml_node_t *kn, const yaml_node_t *vn, void *has_at) {
  cfg_config *c = p->c;
  double d;
  int r;
  if (!strcmp(name, "shards") || !strcmp(name, "previous_shards")) {
    if ((r = get_num(p, vn, 1, SV_MAX_SHARDS, true, &d)) < 0) return r;
    *(name[0] == 's' ? &c->shards : &c->previous_shards) = (int)d;
  } else if (!strcmp(name, "change_at")) {
    /* Unix seconds: up to the year 9999 */
    if ((r = get_num(p, vn, 0, 253402300799.0, true, &d)) < 0) return r;
    c->change_at = (int64_t)d;
    *(bool *)has_at = true;
  } else {
    return 0;
  }
  return 1;
}

static int self_key(P *p, const char *name, const yaml_node_t *kn, const yaml_node_t *vn, void *ud) {
  cfg_config *c = p->c;
  double d;
  int r;
  if (!strcmp(name, "pprof_port")) {
    if ((r = get_num(p, vn, 1, 65535, true, &d)) < 0) return r;
    c->self_pprof_port = (int)d;
  } else if (!strcmp(name, "interval_seconds")) {
    if ((r = get_num(p, vn, 1, 86400, true, &d)) < 0) return r;
    c->self_interval_seconds = (int)d;
  } else {
    return 0;
  }
  return 1;
}

static int query_key(P *p, const char *name, const yaml_node_t *kn, const yaml_node_t *vn, void *ud) {
  cfg_config *c = p->c;
  int r;
  if (strcmp(name, "peers")) return 0;
  if (is_null(vn)) return 1;
  if (vn->type != YAML_SEQUENCE_NODE) return fail(p, vn, "expected a list of URLs");
  size_t n = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);
  if (n > CFG_MAX_PEERS) return fail(p, vn, "more than %d peers", CFG_MAX_PEERS);
  if (!(c->peers = arena_calloc(&c->mem, n ? n : 1, sizeof *c->peers))) return pp_err_set(p->err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *en = node(p, vn->data.sequence.items.start[i]);
    size_t old = push_index(p, i);
    pp_err e = {0};
    if ((r = visit(p, en)) < 0 || (r = get_str(p, en, &c->peers[i])) < 0) return r;
    if (sv_check_endpoint(c->peers[i], &e) < 0) return fail(p, en, "%s", e.msg);
    pop(p, old);
  }
  c->npeers = n;
  return 1;
}

static int global_key(P *p, const char *name, const yaml_node_t *kn, const yaml_node_t *vn, void *ud) {
  return scrape_key(p, name, vn, &p->c->global);
}

static int parse_root(P *p, const yaml_node_t *root) {
  cfg_config *c = p->c;
  int r;
  c->global.tls_insecure_skip_verify = -1;
  c->shards = 1;
  if (!root || is_null(root)) return 0; /* an empty file: no monitors */
  if (root->type != YAML_MAPPING_NODE) return fail(p, root, "expected a mapping at the top");
  for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
    char *k;
    if ((r = visit(p, vn)) < 0 || (r = get_str(p, kn, &k)) < 0) return r;
    size_t old = push_key(p, k);
    if (!strcmp(k, "self_telemetry")) {
      if (vn->type == YAML_MAPPING_NODE) c->self_interval_seconds = 10;
      if ((r = each_key(p, vn, "a mapping", "unknown key (ignored)", self_key, NULL)) < 0) return r;
    } else if (!strcmp(k, "sharding")) {
      bool has_at = false;
      if ((r = each_key(p, vn, "a mapping (shards, previous_shards, change_at)", "unknown key (ignored)", sharding_key,
                        &has_at)) < 0)
        return r;
      if (!!c->previous_shards != has_at) return fail(p, vn, "previous_shards and change_at go together");
    } else if (!strcmp(k, "query")) {
      if ((r = each_key(p, vn, "a mapping (peers)", "unknown key (ignored)", query_key, NULL)) < 0) return r;
    } else if (!strcmp(k, "global")) {
      if ((r = each_key(p, vn, "a mapping", "unknown key (ignored)", global_key, NULL)) < 0) return r;
    } else if (!strcmp(k, "monitors")) {
      if (!is_null(vn)) {
        if (vn->type != YAML_SEQUENCE_NODE) return fail(p, vn, "expected a list of monitors");
        size_t n = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);
        if (n > CFG_MAX_MONITORS) return fail(p, vn, "more than %d monitors", CFG_MAX_MONITORS);
        c->monitors = arena_calloc(&c->mem, n ? n : 1, sizeof *c->monitors);
        if (!c->monitors) return pp_err_set(p->err, PP_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
          yaml_node_t *mn = node(p, vn->data.sequence.items.start[i]);
          size_t o2 = push_index(p, i);
          if ((r = visit(p, mn)) < 0 || (r = parse_monitor(p, mn, &c->monitors[i])) < 0) return r;
          for (size_t j = 0; j < i; j++)
            if (!strcmp(c->monitors[j].name, c->monitors[i].name))
              return fail(p, mn, "duplicate monitor name \"%s\" (also monitors[%zu])", c->monitors[i].name, j);
          pop(p, o2);
        }
        c->nmonitors = n;
      }
    } else {
      warn(p, kn, "unknown key (ignored)");
    }
    pop(p, old);
  }
  return 0;
}

int cfg_parse(const char *text, size_t len, const char *name, cfg_config **ret, pp_err *err) {
  if (len > CFG_MAX_BYTES)
    return pp_err_set(err, PP_ELIMIT, "%s: config is %zu bytes, over the limit of %zu", name, len, CFG_MAX_BYTES);
  cfg_config *c = calloc(1, sizeof *c);
  if (!c) return pp_err_set(err, PP_ENOMEM, "out of memory");
  arena_init(&c->mem, 0);
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    cfg_free(c);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    int r = pp_err_set(err, PP_EINVAL, "%s:%zu:%zu: YAML: %s%s%s", name, parser.problem_mark.line + 1,
                       parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error",
                       parser.context ? " " : "", parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    cfg_free(c);
    return r;
  }
  P p = {.doc = &doc, .name = name, .c = c, .err = err};
  int r = parse_root(&p, yaml_document_get_root_node(&doc));
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (r < 0) {
    cfg_free(c);
    return r;
  }
  *ret = c;
  return 0;
}

int cfg_read_file(const char *path, char **ret_text, size_t *ret_len, pp_err *err) {
  uint8_t *buf;
  size_t got;
  int r = pp_read_file(path, CFG_MAX_BYTES, &buf, &got, err);
  if (r < 0) return r;
  if (got < 2 || buf[0] != 0x1f || buf[1] != 0x8b) {
    *ret_text = (char *)buf; /* pp_read_file NUL-terminates */
    *ret_len = got;
    return 0;
  }
  uint8_t *text;
  size_t n;
  r = pp_gunzip(buf, got, CFG_MAX_TEXT, &text, &n, err);
  free(buf);
  if (r < 0) {
    pp_err_prefix(err, path);
    return r;
  }
  char *t = realloc(text, n + 1);
  if (!t) {
    free(text);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  t[n] = '\0';
  *ret_text = t;
  *ret_len = n;
  return 0;
}

int cfg_load_file(const char *path, cfg_config **ret, pp_err *err) {
  char *text;
  size_t n;
  int r = cfg_read_file(path, &text, &n, err);
  if (r < 0) return r;
  r = cfg_parse(text, n, path, ret, err);
  free(text);
  return r;
}

void cfg_free(cfg_config *c) {
  if (!c) return;
  arena_free(&c->mem);
  free(c);
}

/* Appends percent-encoded s (RFC 3986 unreserved kept) to out. */
static void url_escape(char *out, size_t cap, const char *s) {
  size_t o = strlen(out);
  for (; *s && o + 4 < cap; s++) {
    unsigned char ch = (unsigned char)*s;
    if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out[o++] = (char)ch;
    } else {
      snprintf(out + o, cap - o, "%%%02X", ch);
      o += 3;
    }
  }
  out[o] = '\0';
}

int cfg_effective_for(const cfg_config *c, const cfg_monitor *m, cfg_ptype t, cfg_effective *e,
                      pp_err *err) {
  memset(e, 0, sizeof *e);
  e->own = &m->scrape;
  e->global = &c->global;
  const cfg_type *ty = &m->types[t];
  e->seconds = ty->seconds;
  const char *path = CFG_PICK(e, path);
  if (!path) path = "/debug/pprof";
  size_t elen = strlen(m->endpoint);
  while (elen && m->endpoint[elen - 1] == '/') elen--;
  size_t plen = strlen(path);
  while (plen && path[plen - 1] == '/') plen--;
  /* an endpoint that already ends with the path does not get it twice */
  bool has_path = elen >= plen && !strncmp(m->endpoint + elen - plen, path, plen);
  int n = snprintf(e->url, sizeof e->url, "%.*s%.*s/%s", (int)elen, m->endpoint,
                   has_path ? 0 : (int)plen, path, cfg_type_endpoint[t]);
  char sep = '?';
  if (n > 0 && (size_t)n < sizeof e->url && (t == CFG_CPU || ty->seconds > 0)) {
    n += snprintf(e->url + n, sizeof e->url - (size_t)n, "?seconds=%d", ty->seconds);
    sep = '&';
  }
  const cfg_scrape *ps = m->scrape.nparams ? &m->scrape : &c->global;
  for (size_t i = 0; i < ps->nparams && n > 0 && (size_t)n < sizeof e->url - 8; i++) {
    size_t o = strlen(e->url);
    e->url[o++] = sep;
    e->url[o] = '\0';
    url_escape(e->url, sizeof e->url, ps->params[i].key);
    strncat(e->url, "=", sizeof e->url - strlen(e->url) - 1);
    url_escape(e->url, sizeof e->url, ps->params[i].value);
    n = (int)strlen(e->url);
    sep = '&';
  }
  if (n < 0 || (size_t)n >= sizeof e->url - 8)
    return pp_err_set(err, PP_EINVAL, "monitor %s: URL too long", m->name);

  double interval = ty->interval_seconds ? ty->interval_seconds
                    : m->scrape.interval_seconds ? m->scrape.interval_seconds
                                                 : c->global.interval_seconds;
  bool continuous = t == CFG_CPU || ty->seconds > 0;
  if (!interval && !continuous) interval = CFG_SNAPSHOT_INTERVAL_SECONDS;
  e->interval_ms = (int64_t)(interval * 1000);
  double timeout = m->scrape.timeout_seconds ? m->scrape.timeout_seconds : c->global.timeout_seconds;
  if (!timeout) timeout = ty->seconds + 10;
  /* the server needs `seconds` to answer a CPU or delta profile: never time out before */
  if (timeout < ty->seconds + 3) timeout = ty->seconds + 3;
  e->timeout_ms = (int64_t)(timeout * 1000);
  e->max_body_bytes = m->scrape.max_body_bytes ? m->scrape.max_body_bytes : c->global.max_body_bytes;
  if (!e->max_body_bytes) e->max_body_bytes = (uint64_t)64 << 20;
  return 0;
}

int cfg_add_self_monitor(cfg_config *c, pp_err *err) {
  if (!c->self_pprof_port) return 0;
  for (size_t i = 0; i < c->nmonitors; i++)
    if (!strcmp(c->monitors[i].name, "self")) return 0;
  cfg_monitor *nm = arena_calloc(&c->mem, c->nmonitors + 1, sizeof *nm);
  cfg_kv *labels = arena_calloc(&c->mem, 2, sizeof *labels);
  char ep[64];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", c->self_pprof_port);
  char *eps = arena_strndup(&c->mem, ep, strlen(ep));
  if (!nm || !labels || !eps) return pp_err_set(err, PP_ENOMEM, "out of memory");
  if (c->nmonitors) memcpy(nm, c->monitors, c->nmonitors * sizeof *nm);
  cfg_monitor *m = &nm[c->nmonitors];
  m->name = "self";
  m->endpoint = eps;
  labels[0] = (cfg_kv){"__k8s_namespace", "self"};
  labels[1] = (cfg_kv){"__k8s_name", "self"};
  m->labels = labels;
  m->nlabels = 2;
  m->scrape.tls_insecure_skip_verify = -1;
  m->types[CFG_CPU].enabled = true;
  m->types[CFG_CPU].seconds = c->self_interval_seconds > 60 ? 60 : c->self_interval_seconds;
  c->monitors = nm;
  c->nmonitors++;
  return 0;
}

int cfg_shards_at(const cfg_config *c, int64_t now_s) {
  return c->previous_shards && now_s < c->change_at ? c->previous_shards : c->shards;
}

bool cfg_on_shard(const cfg_monitor *m, int shard, int shards) {
  if (m->shard == CFG_SHARD_ALL) return true; /* (a shard past the count matches nothing else) */
  if (m->shard >= 0) return m->shard % shards == shard;
  return (int)sv_shard_of(m->endpoint, (unsigned)shards) == shard;
}

size_t cfg_keep_shard(cfg_config *c, int shard, int64_t now_s) {
  int shards = cfg_shards_at(c, now_s);
  size_t k = 0;
  for (size_t i = 0; i < c->nmonitors; i++)
    if (cfg_on_shard(&c->monitors[i], shard, shards)) c->monitors[k++] = c->monitors[i];
  size_t dropped = c->nmonitors - k;
  c->nmonitors = k;
  return dropped;
}
