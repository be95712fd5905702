/* pprof sample labels in the data endpoints. See web_labels.h. */
#include "web_labels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web_json.h"

int web_tags_parse(const web_params *p, const char *name, web_tags *t, char *why, size_t n) {
  size_t used = 0;
  t->n = 0;
  for (size_t i = 0; i < p->n; i++) {
    if (strcmp(p->k[i], name)) continue;
    size_t len = strlen(p->v[i]);
    if (t->n == WEB_MAX_TAGS || used + len + 1 > sizeof t->mem)
      return snprintf(why, n, "%s: at most %d filters of %d bytes together", name, WEB_MAX_TAGS, WEB_TAGS_MEM), -1;
    char *spec = memcpy(t->mem + used, p->v[i], len + 1);
    used += len + 1;
    pp_err err = {0};
    if (pprof_tag_parse(spec, &t->f[t->n], &err) < 0) {
      /* the message quotes the bytes as given: made valid text by the error's JSON writer */
      return snprintf(why, n, "%s: want KEY=VALUE or KEY!=VALUE (the label KEY is, or is not, VALUE; KEY= for "
                      "samples without KEY), got \"%.64s\"", name, p->v[i]), -1;
    }
    t->n++;
  }
  return (int)t->n;
}

/* ---- /api/v1/tags ------------------------------------------------------------------------------ */

typedef struct kv_total {
  uint32_t key, value; /* indexes into the listing's key and value tables */
  int64_t total;
} kv_total;

typedef struct listing {
  htab keys;   /* key bytes -> key index */
  htab pairs;  /* (key index, value bytes) -> pair index */
  kv_total *v; /* pair index -> totals */
  size_t cap;
  htab values; /* value bytes -> value index (names for the JSON) */
} listing;

static int cmp_key_name(const void *a, const void *b, void *ud) {
  const htab *k = ud;
  size_t la, lb;
  const void *x = htab_key(k, *(const uint32_t *)a, &la), *y = htab_key(k, *(const uint32_t *)b, &lb);
  int c = memcmp(x, y, la < lb ? la : lb);
  return c ? c : (la > lb) - (la < lb);
}

static int cmp_value_total(const void *a, const void *b, void *ud) {
  const listing *l = ud;
  const kv_total *x = &l->v[*(const uint32_t *)a], *y = &l->v[*(const uint32_t *)b];
  if (x->total != y->total) return x->total > y->total ? -1 : 1;
  size_t la, lb;
  const void *s = htab_key(&l->values, x->value, &la), *t = htab_key(&l->values, y->value, &lb);
  int c = memcmp(s, t, la < lb ? la : lb);
  return c ? c : (la > lb) - (la < lb);
}

int web_labels_write(pp_buf *b, const pprof_profile *p, int si) {
  listing l;
  memset(&l, 0, sizeof l);
  uint32_t *order = NULL, *korder = NULL;
  char *pk = NULL;
  size_t pkcap = 0;
  int r = PP_ENOMEM;
  if (htab_init(&l.keys, 64, 0) < 0 || htab_init(&l.pairs, 256, 0) < 0 || htab_init(&l.values, 256, 0) < 0) goto out;
  int64_t total = 0;
  /* per string label: its key's index; per (key index, value): the pair's sum. A profile's
   * string table may repeat a string, so keys and values go by their bytes. */
  for (size_t i = 0; i < p->nsample; i++) {
    const pprof_sample *s = &p->sample[i];
    int64_t v = s->value[si];
    total += v;
    for (uint32_t j = 0; j < s->nlabel; j++) {
      const pprof_label *lb = &s->label[j];
      if (!lb->str) continue;
      uint32_t k, val, pair;
      if (htab_intern(&l.keys, p->strings[lb->key], p->string_len[lb->key], &k) < 0 ||
          htab_intern(&l.values, p->strings[lb->str], p->string_len[lb->str], &val) < 0)
        goto out;
      size_t need = 4 + p->string_len[lb->str];
      if (need > pkcap) {
        char *np = realloc(pk, need * 2);
        if (!np) goto out;
        pk = np, pkcap = need * 2;
      }
      memcpy(pk, &k, 4);
      memcpy(pk + 4, p->strings[lb->str], p->string_len[lb->str]);
      int added = htab_intern(&l.pairs, pk, need, &pair);
      if (added < 0) goto out;
      if (added) {
        if (pair >= l.cap) {
          size_t nc = l.cap ? l.cap * 2 : 256;
          kv_total *nv = realloc(l.v, nc * sizeof *nv);
          if (!nv) goto out;
          l.v = nv, l.cap = nc;
        }
        l.v[pair] = (kv_total){k, val, 0};
      }
      /* a sample with the same (key, value) twice counts once for it */
      bool dup = false;
      for (uint32_t q = 0; q < j && !dup; q++) {
        const pprof_label *o = &s->label[q];
        dup = o->str && p->string_len[o->key] == p->string_len[lb->key] && p->string_len[o->str] == p->string_len[lb->str] &&
              !memcmp(p->strings[o->key], p->strings[lb->key], p->string_len[lb->key]) &&
              !memcmp(p->strings[o->str], p->strings[lb->str], p->string_len[lb->str]);
      }
      if (!dup) l.v[pair].total += v;
    }
  }
  size_t nk = l.keys.count, np = l.pairs.count;
  korder = malloc((nk + 1) * sizeof *korder);
  order = malloc((np + 1) * sizeof *order);
  if (!korder || !order) goto out;
  for (size_t k = 0; k < nk; k++) korder[k] = (uint32_t)k;
  qsort_r(korder, nk, sizeof *korder, cmp_key_name, &l.keys);
  /* pairs grouped by key (a counting sort), each key's by total */
  size_t *start = calloc(nk + 1, sizeof *start);
  if (!start) goto out;
  for (size_t i = 0; i < np; i++) start[l.v[i].key + 1]++;
  for (size_t k = 0; k < nk; k++) start[k + 1] += start[k];
  size_t *fill = calloc(nk + 1, sizeof *fill);
  if (!fill) {
    free(start);
    goto out;
  }
  for (size_t i = 0; i < np; i++) order[start[l.v[i].key] + fill[l.v[i].key]++] = (uint32_t)i;
  free(fill);
  bool truncated = nk > WEB_MAX_TAG_KEYS;
  pp_buf_printf(b, "\"total\":%lld,\"keys\":[", (long long)total);
  for (size_t ki = 0; ki < nk && ki < WEB_MAX_TAG_KEYS; ki++) {
    uint32_t k = korder[ki];
    size_t n0 = start[k], n1 = start[k + 1];
    qsort_r(order + n0, n1 - n0, sizeof *order, cmp_value_total, &l);
    size_t len;
    const char *kb = htab_key(&l.keys, k, &len);
    pp_buf_puts(b, ki ? ",{\"key\":" : "{\"key\":");
    web_json_strn(b, kb, len);
    pp_buf_puts(b, ",\"values\":[");
    if (n1 - n0 > WEB_MAX_TAG_VALUES) truncated = true, n1 = n0 + WEB_MAX_TAG_VALUES;
    for (size_t i = n0; i < n1; i++) {
      const kv_total *e = &l.v[order[i]];
      const char *vb = htab_key(&l.values, e->value, &len);
      pp_buf_puts(b, i > n0 ? ",{\"value\":" : "{\"value\":");
      web_json_strn(b, vb, len);
      pp_buf_printf(b, ",\"total\":%lld}", (long long)e->total);
    }
    pp_buf_puts(b, "]}");
  }
  pp_buf_printf(b, "],\"truncated\":%s", truncated ? "true" : "false");
  free(start);
  r = 0;
out:
  htab_free(&l.keys);
  htab_free(&l.pairs);
  htab_free(&l.values);
  free(l.v);
  free(order);
  free(korder);
  free(pk);
  return r;
}

/* ---- timeline points ------------------------------------------------------------------------------- */

void web_point_release(web_point *w) {
  free(w->vals);
  memset(w, 0, sizeof *w);
}

/* 1 where frame name (a line's function) is `name`: by bytes, since the string table may repeat it. */
static uint8_t *function_marks(const pprof_profile *p, const char *name, bool *any) {
  size_t nl = strlen(name);
  uint8_t *fm = calloc(p->nfunction + 1, 1);
  if (!fm) return NULL;
  for (size_t i = 0; i < p->nfunction; i++) {
    uint32_t s = p->function[i].name;
    fm[i] = p->string_len[s] == nl && !memcmp(p->strings[s], name, nl);
    *any |= fm[i];
  }
  return fm;
}

int web_point_compute(const pprof_profile *p, int col, const web_point_opts *o, htab *groups, web_point *ret, pp_err *err) {
  bool any = false;
  uint8_t *fm = NULL, *leaf = NULL, *has = NULL;
  char *gb = NULL;
  size_t gcap = 0;
  int r = 0;
  if (o->function) {
    /* per location: its innermost frame is the function (flat), any of its frames is (cum) */
    fm = function_marks(p, o->function, &any);
    leaf = calloc(p->nlocation + 1, 1);
    has = calloc(p->nlocation + 1, 1);
    if (!fm || !leaf || !has) goto nomem;
    for (size_t i = 0; any && i < p->nlocation; i++) {
      const pprof_location *l = &p->location[i];
      for (uint32_t j = 0; j < l->nline; j++) {
        bool m = l->line[j].function && fm[l->line[j].function - 1];
        if (m && j == 0) leaf[i] = 1;
        if (m) has[i] = 1;
      }
    }
  }
  size_t klen = o->group_by ? strlen(o->group_by) : 0;
  memset(ret, 0, sizeof *ret);
  for (size_t i = 0; i < p->nsample; i++) {
    const pprof_sample *s = &p->sample[i];
    if (o->ntags && !pprof_tags_hold(p, s, o->tags, o->ntags)) continue;
    int64_t v = s->value[col], flat = 0, cum = 0;
    if (any && s->nloc) {
      flat = leaf[s->loc[0]] ? v : 0;
      for (uint32_t j = 0; j < s->nloc && !cum; j++)
        if (has[s->loc[j]]) cum = v; /* once per sample, however often it recurses */
    }
    ret->total += v, ret->flat += flat, ret->cum += cum;
    if (!o->group_by) continue;
    /* the group's name as pprof_tag_root makes it: the key's string values joined by ',' */
    size_t n = 0;
    for (uint32_t j = 0; j < s->nlabel; j++) {
      const pprof_label *lb = &s->label[j];
      if (!lb->str || p->string_len[lb->key] != klen || memcmp(p->strings[lb->key], o->group_by, klen)) continue;
      size_t need = n + 1 + p->string_len[lb->str];
      if (need > gcap) {
        char *ng = realloc(gb, need * 2);
        if (!ng) goto nomem;
        gb = ng, gcap = need * 2;
      }
      if (n) gb[n++] = ',';
      memcpy(gb + n, p->strings[lb->str], p->string_len[lb->str]);
      n += p->string_len[lb->str];
    }
    uint32_t g;
    int added = htab_intern(groups, n ? gb : "", n, &g);
    if (added == PP_ELIMIT) {
      r = pp_err_set(err, PP_ELIMIT, "group_by=%.64s: more than %d values", o->group_by, WEB_MAX_GROUPS);
      goto out;
    }
    if (added < 0) goto nomem;
    if (g >= ret->ngroups) {
      size_t ng = groups->count;
      int64_t *nv = realloc(ret->vals, ng * 3 * sizeof *nv);
      if (!nv) goto nomem;
      memset(nv + ret->ngroups * 3, 0, (ng - ret->ngroups) * 3 * sizeof *nv);
      ret->vals = nv, ret->ngroups = ng;
    }
    ret->vals[g * 3] += v, ret->vals[g * 3 + 1] += flat, ret->vals[g * 3 + 2] += cum;
  }
  goto out;
nomem:
  r = pp_err_set(err, PP_ENOMEM, "out of memory");
out:
  free(fm);
  free(leaf);
  free(has);
  free(gb);
  return r;
}
