/* Merge, diff and scale, with google/pprof's merge semantics (profile/merge.go):
 * strings, mappings, functions and locations are deduplicated by content through one htab each;
 * samples are keyed by their (deduplicated) location indexes plus their labels in a canonical
 * order, and values of equal keys are summed. Everything is built in growable scratch arrays
 * and copied into the result's arena at the end, so the result holds no slack.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/htab.h"
#include "pprof_int.h"

typedef struct merger merger;
static bool charge(merger *m, size_t bytes);

/* A growable byte buffer for building keys; its growth is charged to its merger. */
typedef struct kbuf {
  unsigned char *b;
  size_t len, cap;
  merger *owner;
} kbuf;

static int kb_grow(kbuf *k, size_t n) {
  size_t nc = k->cap ? k->cap * 2 : 256;
  while (nc - k->len < n)
    nc *= 2;
  if (!charge(k->owner, nc - k->cap)) return PP_ELIMIT;
  unsigned char *nb = realloc(k->b, nc);
  if (!nb) return PP_ENOMEM;
  k->b = nb;
  k->cap = nc;
  return 0;
}

static inline int kb_put(kbuf *k, const void *d, size_t n) {
  if (k->cap - k->len < n && kb_grow(k, n) < 0) return PP_ENOMEM;
  memcpy(k->b + k->len, d, n);
  k->len += n;
  return 0;
}

/* Growable arrays of the result's entities. Growth is charged to the merger `mg` (a merger *)
 * before the realloc: past its limit the push sets mg->over and jumps to fail instead. */
#define VEC(T)                                                                                     \
  struct {                                                                                         \
    T *v;                                                                                          \
    size_t n, cap;                                                                                 \
  }
#define VEC_PUSH(mg, vec, item, fail)                                                              \
  do {                                                                                             \
    if ((vec).n == (vec).cap) {                                                                    \
      size_t nc_ = (vec).cap ? (vec).cap * 2 : 64;                                                 \
      if (!charge((mg), (nc_ - (vec).cap) * sizeof *(vec).v)) goto fail;                           \
      void *nv_ = realloc((vec).v, nc_ * sizeof *(vec).v);                                         \
      if (!nv_) goto fail;                                                                         \
      (vec).v = nv_;                                                                               \
      (vec).cap = nc_;                                                                             \
    }                                                                                              \
    (vec).v[(vec).n++] = (item);                                                                   \
  } while (0)

static const char *vt_str(const pprof_profile *p, const pprof_value_type *v, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s", p->strings[v->type], p->strings[v->unit]);
  return buf;
}

static void types_str(const pprof_profile *p, char *buf, size_t n) {
  size_t off = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < p->nsample_type && off < n; i++) {
    char t[160];
    int w = snprintf(buf + off, n - off, "%s%s", i ? " " : "",
                     vt_str(p, &p->sample_type[i], t, sizeof t));
    if (w < 0) break;
    off += (size_t)w;
  }
}

int pprof_compatible(const pprof_profile *a, const pprof_profile *b, pp_err *err) {
  char x[200], y[200];
  if (strcmp(a->strings[a->period_type.type], b->strings[b->period_type.type]) ||
      strcmp(a->strings[a->period_type.unit], b->strings[b->period_type.unit]))
    return pp_err_set(err, PP_EMISMATCH, "incompatible period types %s and %s",
                      vt_str(a, &a->period_type, x, sizeof x),
                      vt_str(b, &b->period_type, y, sizeof y));
  bool same = a->nsample_type == b->nsample_type;
  for (size_t i = 0; same && i < a->nsample_type; i++)
    same = !strcmp(a->strings[a->sample_type[i].type], b->strings[b->sample_type[i].type]) &&
           !strcmp(a->strings[a->sample_type[i].unit], b->strings[b->sample_type[i].unit]);
  if (!same) {
    char xs[400], ys[400];
    types_str(a, xs, sizeof xs);
    types_str(b, ys, sizeof ys);
    return pp_err_set(err, PP_EMISMATCH, "incompatible sample types [%s] and [%s]", xs, ys);
  }
  return 0;
}

static int cmp_label(const void *a, const void *b) {
  const pprof_label *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  if (x->str != y->str) return x->str < y->str ? -1 : 1;
  if (x->num != y->num) return x->num < y->num ? -1 : 1;
  if (x->num_unit != y->num_unit) return x->num_unit < y->num_unit ? -1 : 1;
  return 0;
}

struct merger {
  pprof_profile *dst;
  htab strings, mappings, functions, locations, samples;
  VEC(pprof_mapping) maps;
  VEC(pprof_function) funcs;
  VEC(pprof_location) locs;
  VEC(pprof_sample) samps;
  VEC(uint32_t) comments;
  kbuf key;
  uint32_t *smap, *mmap, *fmap, *lmap; /* per source: index -> result index (+1 for m/f) */
  pprof_label *lab;                    /* scratch for sorting one sample's labels */
  size_t lab_cap;
  /* Memory accounting (pprof.h: pprof_merger_set_limit): `used` is the bytes the merger holds
   * (table and vector capacities, the result's arena, per-source maps); every growth is
   * charged before it happens, and one that would pass `limit` (0 = none) sets `over`. */
  size_t used, limit;
  size_t maps_bytes; /* the part of used that smap..lmap hold */
  bool over;
};

/* Charges bytes about to be allocated; false (and over set) when they would pass the limit. */
static bool charge(merger *m, size_t bytes) {
  if (m->limit && (bytes > m->limit || m->used > m->limit - bytes)) {
    m->over = true;
    return false;
  }
  m->used += bytes;
  return true;
}

static void uncharge(merger *m, size_t bytes) { m->used -= bytes < m->used ? bytes : m->used; }

/* htab_intern with its growth charged first. The growth is predicted from htab.c's rules
 * (entries double from 64, keys double from 256 until the key fits, slots double past 50%
 * load) and only matters when the key is new, so a key already present passes however full
 * the merger is; the charge is then corrected to the table's real size. */
static int intern_growing(merger *m, htab *t, const void *key, size_t len, uint32_t *ret) {
  size_t grow = 0;
  if (t->count == t->cap) grow += (t->cap ? t->cap : 64) * sizeof *t->entries;
  if (t->keys_cap - t->keys_len < len) {
    size_t nc = t->keys_cap ? t->keys_cap : 256;
    while (nc - t->keys_len < len)
      nc *= 2;
    grow += nc - t->keys_cap;
  }
  if ((t->count + 1) * 2 > t->nslots) grow += t->nslots * sizeof *t->slots;
  if (m->limit && (grow > m->limit || m->used > m->limit - grow)) {
    int64_t e = htab_find(t, key, len);
    if (e < 0) {
      m->over = true;
      return PP_ELIMIT;
    }
    *ret = (uint32_t)e;
    return 0;
  }
  size_t before = htab_bytes(t);
  int r = htab_intern(t, key, len, ret);
  m->used += htab_bytes(t) - before;
  return r;
}

/* The common case, inlined: an insert here cannot grow the table, so there is nothing to
 * charge (most keys of a merge are already present). */
static inline int intern(merger *m, htab *t, const void *key, size_t len, uint32_t *ret) {
  if (t->count < t->cap && t->keys_cap - t->keys_len >= len && (t->count + 1) * 2 <= t->nslots)
    return htab_intern(t, key, len, ret);
  return intern_growing(m, t, key, len, ret);
}

/* An allocation in the result's arena, charged by what the arena reserves (chunks of up to
 * 8 MiB): the arena's own budget is set to what the limit leaves. */
static void *dst_alloc(merger *m, size_t size) {
  arena *a = &m->dst->mem;
  size_t before = a->reserved;
  if (m->limit) a->budget = m->used - before < m->limit ? m->limit - (m->used - before) : 1;
  void *p = arena_alloc(a, size);
  /* with a limit, a failure is the budget's (or malloc's, which is then reported as over) */
  if (!p && m->limit) m->over = true;
  m->used += a->reserved - before;
  return p;
}

static void *dst_calloc(merger *m, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  void *p = dst_alloc(m, n * size);
  if (p) memset(p, 0, n * size);
  return p;
}

static int intern_str(merger *m, const pprof_profile *src, uint32_t i, uint32_t *ret) {
  int r = intern(m, &m->strings, src->strings[i], src->string_len[i], ret);
  return r < 0 ? r : 0;
}

static int map_source(merger *m, const pprof_profile *src) {
  int r;
  free(m->smap);
  free(m->mmap);
  free(m->fmap);
  free(m->lmap);
  m->smap = m->mmap = m->fmap = m->lmap = NULL;
  uncharge(m, m->maps_bytes);
  m->maps_bytes = 0;
  size_t need = (src->nstrings + src->nmapping + src->nfunction + src->nlocation + 4) * sizeof *m->smap;
  if (!charge(m, need)) return PP_ELIMIT;
  m->maps_bytes = need;
  m->smap = malloc((src->nstrings + 1) * sizeof *m->smap);
  m->mmap = malloc((src->nmapping + 1) * sizeof *m->mmap);
  m->fmap = malloc((src->nfunction + 1) * sizeof *m->fmap);
  m->lmap = malloc((src->nlocation + 1) * sizeof *m->lmap);
  if (!m->smap || !m->mmap || !m->fmap || !m->lmap) return PP_ENOMEM;
  for (size_t i = 0; i < src->nstrings; i++)
    if ((r = intern_str(m, src, (uint32_t)i, &m->smap[i])) < 0) return r;

  for (size_t i = 0; i < src->nmapping; i++) {
    const pprof_mapping *sm = &src->mapping[i];
    /* google/pprof's mappingKey: size rounded up to 4 KiB (ASLR), offset, build id or file. */
    uint64_t size = sm->limit - sm->start;
    size = size + 0xfff;
    size -= size % 0x1000;
    uint32_t ident = sm->build_id ? m->smap[sm->build_id] : m->smap[sm->filename];
    m->key.len = 0;
    if (kb_put(&m->key, &size, 8) || kb_put(&m->key, &sm->offset, 8) || kb_put(&m->key, &ident, 4))
      return PP_ENOMEM;
    uint32_t idx;
    if ((r = intern(m, &m->mappings, m->key.b, m->key.len, &idx)) < 0) return r;
    if (r == 1) {
      pprof_mapping dm = *sm;
      dm.id = idx + 1;
      dm.filename = m->smap[sm->filename];
      dm.build_id = m->smap[sm->build_id];
      VEC_PUSH(m, m->maps, dm, nomem);
    }
    m->mmap[i] = idx + 1;
  }

  for (size_t i = 0; i < src->nfunction; i++) {
    const pprof_function *sf = &src->function[i];
    /* google/pprof's functionKey. Zeroed first: the struct's padding is part of the key bytes. */
    struct {
      int64_t start;
      uint32_t name, sys, file;
    } k;
    memset(&k, 0, sizeof k);
    k.start = sf->start_line;
    k.name = m->smap[sf->name];
    k.sys = m->smap[sf->system_name];
    k.file = m->smap[sf->filename];
    uint32_t idx;
    if ((r = intern(m, &m->functions, &k, sizeof k, &idx)) < 0) return r;
    if (r == 1) {
      pprof_function df = {.id = idx + 1,
                           .name = k.name,
                           .system_name = k.sys,
                           .filename = k.file,
                           .start_line = sf->start_line};
      VEC_PUSH(m, m->funcs, df, nomem);
    }
    m->fmap[i] = idx + 1;
  }

  for (size_t i = 0; i < src->nlocation; i++) {
    const pprof_location *sl = &src->location[i];
    /* google/pprof's locationKey: address relative to its mapping, mapping, lines, folded. */
    uint64_t addr = sl->address;
    uint32_t mi = sl->mapping ? m->mmap[sl->mapping - 1] : 0;
    if (sl->mapping) addr -= src->mapping[sl->mapping - 1].start;
    uint8_t folded = sl->is_folded;
    m->key.len = 0;
    if (kb_put(&m->key, &addr, 8) || kb_put(&m->key, &mi, 4) || kb_put(&m->key, &folded, 1))
      return PP_ENOMEM;
    for (uint32_t j = 0; j < sl->nline; j++) {
      uint32_t fi = sl->line[j].function ? m->fmap[sl->line[j].function - 1] : 0;
      if (kb_put(&m->key, &fi, 4) || kb_put(&m->key, &sl->line[j].line, 8) ||
          kb_put(&m->key, &sl->line[j].column, 8))
        return PP_ENOMEM;
    }
    uint32_t idx;
    if ((r = intern(m, &m->locations, m->key.b, m->key.len, &idx)) < 0) return r;
    if (r == 1) {
      pprof_location dl = {.id = idx + 1,
                           .address = sl->address,
                           .mapping = mi,
                           .nline = sl->nline,
                           .is_folded = sl->is_folded};
      dl.line = dst_alloc(m, sl->nline * sizeof *dl.line);
      if (!dl.line) return PP_ENOMEM;
      for (uint32_t j = 0; j < sl->nline; j++) {
        dl.line[j] = sl->line[j];
        dl.line[j].function = sl->line[j].function ? m->fmap[sl->line[j].function - 1] : 0;
      }
      VEC_PUSH(m, m->locs, dl, nomem);
    }
    m->lmap[i] = idx;
  }
  return 0;
nomem:
  return PP_ENOMEM;
}

static int add_samples(merger *m, const pprof_profile *src, int64_t sign) {
  size_t nv = src->nsample_type;
  for (size_t i = 0; i < src->nsample; i++) {
    const pprof_sample *s = &src->sample[i];
    bool zero = true;
    for (size_t v = 0; v < nv && zero; v++)
      zero = s->value[v] == 0;
    if (zero) continue;
    if (s->nlabel > m->lab_cap) {
      free(m->lab);
      m->lab = NULL;
      uncharge(m, m->lab_cap * sizeof *m->lab);
      m->lab_cap = 0;
      if (!charge(m, s->nlabel * 2 * sizeof *m->lab)) return PP_ELIMIT;
      m->lab_cap = s->nlabel * 2;
      m->lab = malloc(m->lab_cap * sizeof *m->lab);
      if (!m->lab) return PP_ENOMEM;
    }
    for (uint32_t j = 0; j < s->nlabel; j++) {
      m->lab[j].key = m->smap[s->label[j].key];
      m->lab[j].str = m->smap[s->label[j].str];
      m->lab[j].num = s->label[j].num;
      m->lab[j].num_unit = m->smap[s->label[j].num_unit];
    }
    if (s->nlabel > 1) qsort(m->lab, s->nlabel, sizeof *m->lab, cmp_label);
    m->key.len = 0;
    if (kb_put(&m->key, &s->nloc, 4)) return PP_ENOMEM;
    for (uint32_t j = 0; j < s->nloc; j++)
      if (kb_put(&m->key, &m->lmap[s->loc[j]], 4)) return PP_ENOMEM;
    for (uint32_t j = 0; j < s->nlabel; j++) {
      const pprof_label *l = &m->lab[j];
      if (kb_put(&m->key, &l->key, 4) || kb_put(&m->key, &l->str, 4) ||
          kb_put(&m->key, &l->num, 8) || kb_put(&m->key, &l->num_unit, 4))
        return PP_ENOMEM;
    }
    uint32_t idx;
    int r = intern(m, &m->samples, m->key.b, m->key.len, &idx);
    if (r < 0) return r;
    if (r == 1) {
      pprof_sample ds = {.nloc = s->nloc, .nlabel = s->nlabel};
      ds.loc = dst_alloc(m, s->nloc * sizeof *ds.loc);
      ds.value = dst_calloc(m, nv, sizeof *ds.value);
      ds.label = dst_alloc(m, s->nlabel * sizeof *ds.label);
      if (!ds.loc || !ds.value || !ds.label) return PP_ENOMEM;
      for (uint32_t j = 0; j < s->nloc; j++)
        ds.loc[j] = m->lmap[s->loc[j]];
      if (s->nlabel) memcpy(ds.label, m->lab, s->nlabel * sizeof *ds.label);
      VEC_PUSH(m, m->samps, ds, nomem);
    }
    int64_t *dv = m->samps.v[idx].value;
    for (size_t v = 0; v < nv; v++)
      dv[v] = (int64_t)((uint64_t)dv[v] + (uint64_t)s->value[v] * (uint64_t)sign);
  }
  return 0;
nomem:
  return PP_ENOMEM;
}

#define COPY_OUT(dstp, dstn, vec)                                                                  \
  do {                                                                                             \
    (dstp) = dst_alloc(m, ((vec).n ? (vec).n : 1) * sizeof *(vec).v);                    \
    if (!(dstp)) goto nomem;                                                                       \
    if ((vec).n) memcpy((dstp), (vec).v, (vec).n * sizeof *(vec).v);                               \
    (dstn) = (vec).n;                                                                              \
  } while (0)

struct pprof_merger {
  merger m;
  size_t added;               /* sources added so far */
  pprof_profile *first_types; /* the first source's types, kept for compatibility checks */
};

void pprof_merger_free(pprof_merger *pm) {
  if (!pm) return;
  merger *m = &pm->m;
  htab_free(&m->strings);
  htab_free(&m->mappings);
  htab_free(&m->functions);
  htab_free(&m->locations);
  htab_free(&m->samples);
  free(m->maps.v);
  free(m->funcs.v);
  free(m->locs.v);
  free(m->samps.v);
  free(m->comments.v);
  free(m->key.b);
  free(m->smap);
  free(m->mmap);
  free(m->fmap);
  free(m->lmap);
  free(m->lab);
  pprof_free(m->dst);
  pprof_free(pm->first_types);
  free(pm);
}

int pprof_merger_new(pprof_merger **ret, pp_err *err) {
  pprof_merger *pm = calloc(1, sizeof *pm);
  if (!pm) return pp_err_set(err, PP_ENOMEM, "out of memory");
  merger *m = &pm->m;
  uint32_t empty;
  m->dst = pprof_alloc(0);
  if (!m->dst || htab_init(&m->strings, 1024, 0) < 0 || htab_init(&m->mappings, 16, 0) < 0 ||
      htab_init(&m->functions, 1024, 0) < 0 || htab_init(&m->locations, 1024, 0) < 0 ||
      htab_init(&m->samples, 1024, 0) < 0 || htab_intern(&m->strings, "", 0, &empty) < 0) {
    pprof_merger_free(pm);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  m->key.owner = m;
  m->used = sizeof *pm + htab_bytes(&m->strings) + htab_bytes(&m->mappings) +
            htab_bytes(&m->functions) + htab_bytes(&m->locations) + htab_bytes(&m->samples);
  *ret = pm;
  return 0;
}

/* A copy of src's header strings (types, period type) so later sources can be checked
 * against the first after it has been freed. */
static pprof_profile *copy_types(const pprof_profile *src, size_t budget) {
  pprof_profile *t = pprof_alloc(budget);
  if (!t) return NULL;
  size_t n = src->nsample_type;
  t->nstrings = 2 * n + 3;
  t->strings = arena_alloc(&t->mem, t->nstrings * sizeof *t->strings);
  t->string_len = arena_alloc(&t->mem, t->nstrings * sizeof *t->string_len);
  t->sample_type = arena_alloc(&t->mem, (n + 1) * sizeof *t->sample_type);
  if (!t->strings || !t->string_len || !t->sample_type) goto fail;
  t->nsample_type = n;
  t->strings[0] = "";
  t->string_len[0] = 0;
  uint32_t k = 1;
#define COPY_STR(idx, out)                                                                         \
  do {                                                                                             \
    t->strings[k] = arena_strndup(&t->mem, src->strings[idx], src->string_len[idx]);               \
    if (!t->strings[k]) goto fail;                                                                 \
    t->string_len[k] = src->string_len[idx];                                                       \
    (out) = k++;                                                                                   \
  } while (0)
  for (size_t i = 0; i < n; i++) {
    COPY_STR(src->sample_type[i].type, t->sample_type[i].type);
    COPY_STR(src->sample_type[i].unit, t->sample_type[i].unit);
  }
  COPY_STR(src->period_type.type, t->period_type.type);
  COPY_STR(src->period_type.unit, t->period_type.unit);
#undef COPY_STR
  return t;
fail:
  pprof_free(t);
  return NULL;
}

int pprof_merger_add(pprof_merger *pm, const pprof_profile *src, int64_t sign, pp_err *err) {
  merger *m = &pm->m;
  pprof_profile *dst = m->dst;
  int r;
  if (pm->added && (r = pprof_compatible(pm->first_types, src, err)) < 0) return r;
  if ((r = map_source(m, src)) < 0 || (r = add_samples(m, src, sign)) < 0) goto fail;
  if (pm->added == 0) {
    /* its arena gets what the limit leaves, so it is refused before it is allocated */
    size_t left = m->limit ? (m->used < m->limit ? m->limit - m->used : 1) : 0;
    if (!(pm->first_types = copy_types(src, left))) {
      if (m->limit) m->over = true;
      goto nomem;
    }
    m->used += pm->first_types->mem.reserved;
    dst->nsample_type = src->nsample_type;
    dst->sample_type = dst_alloc(m, (src->nsample_type + 1) * sizeof *dst->sample_type);
    if (!dst->sample_type) goto nomem;
    for (size_t t = 0; t < src->nsample_type; t++) {
      dst->sample_type[t].type = m->smap[src->sample_type[t].type];
      dst->sample_type[t].unit = m->smap[src->sample_type[t].unit];
    }
    dst->period_type.type = m->smap[src->period_type.type];
    dst->period_type.unit = m->smap[src->period_type.unit];
    dst->drop_frames = m->smap[src->drop_frames];
    dst->keep_frames = m->smap[src->keep_frames];
    dst->doc_url = m->smap[src->doc_url];
  }
  pm->added++;
  if (src->time_nanos && (dst->time_nanos == 0 || src->time_nanos < dst->time_nanos))
    dst->time_nanos = src->time_nanos;
  /* wraps like Go's int64 sum in google/pprof's Merge (hostile durations overflow) */
  dst->duration_nanos = (int64_t)((uint64_t)dst->duration_nanos + (uint64_t)src->duration_nanos);
  if (src->period > dst->period) dst->period = src->period;
  if (!dst->default_sample_type && src->default_sample_type)
    dst->default_sample_type = m->smap[src->default_sample_type];
  for (size_t c = 0; c < src->ncomment; c++) {
    uint32_t ci = m->smap[src->comment[c]];
    bool seen = false;
    for (size_t k = 0; k < m->comments.n && !seen; k++)
      seen = m->comments.v[k] == ci;
    if (!seen) VEC_PUSH(m, m->comments, ci, nomem);
  }
  return 0;
nomem:
  r = PP_ENOMEM;
fail:
  /* A failed add may leave part of src interned; the merger is unusable afterwards. */
  if (m->over)
    return pp_err_set(err, PP_ELIMIT,
                      "merge: the merged profile needs more than its memory limit of %zu bytes",
                      m->limit);
  return pp_err_set(err, r, "merge: %s", pp_strerror(r));
}

void pprof_merger_set_limit(pprof_merger *pm, size_t bytes) { pm->m.limit = bytes; }

size_t pprof_merger_bytes(const pprof_merger *pm) { return pm->m.used; }

/* Keeps vec's entries whose mark is set, in order, with ids 1..n; each kept mark becomes the
 * entry's new index + 1. */
#define KEEP_MARKED(vec, mark)                                                                     \
  do {                                                                                             \
    size_t k_ = 0;                                                                                 \
    for (size_t i_ = 0; i_ < (vec).n; i_++)                                                        \
      if ((mark)[i_]) {                                                                            \
        (vec).v[k_] = (vec).v[i_];                                                                 \
        (vec).v[k_].id = k_ + 1;                                                                   \
        (mark)[i_] = (uint32_t)++k_;                                                               \
      }                                                                                            \
    (vec).n = k_;                                                                                  \
  } while (0)

/* google/pprof's Merge keeps only what the merged samples reach (it maps locations, functions
 * and mappings as samples refer to them), plus the first mapping seen, which stands for the main
 * binary. The merger interns every entity of every source up front, so the unreferenced ones
 * are dropped here and the survivors renumbered in their order; otherwise a merge would carry
 * each input's unused mappings and the locations of samples that cancelled out. */
static int drop_unreferenced(merger *m) {
  size_t nl = m->locs.n, nf = m->funcs.n, nm = m->maps.n;
  /* new index + 1 of each entity; 0 = dropped */
  uint32_t *lnew = calloc(nl + 1, sizeof *lnew), *fnew = calloc(nf + 1, sizeof *fnew);
  uint32_t *mnew = calloc(nm + 1, sizeof *mnew);
  if (!lnew || !fnew || !mnew) {
    free(lnew);
    free(fnew);
    free(mnew);
    return PP_ENOMEM;
  }
  for (size_t i = 0; i < m->samps.n; i++)
    for (uint32_t j = 0; j < m->samps.v[i].nloc; j++)
      lnew[m->samps.v[i].loc[j]] = 1;
  if (nm) mnew[0] = 1;
  for (size_t i = 0; i < nl; i++) {
    if (!lnew[i]) continue;
    const pprof_location *l = &m->locs.v[i];
    if (l->mapping) mnew[l->mapping - 1] = 1;
    for (uint32_t j = 0; j < l->nline; j++)
      if (l->line[j].function) fnew[l->line[j].function - 1] = 1;
  }
  KEEP_MARKED(m->maps, mnew);
  KEEP_MARKED(m->funcs, fnew);
  KEEP_MARKED(m->locs, lnew);
  for (size_t i = 0; i < m->locs.n; i++) {
    pprof_location *l = &m->locs.v[i];
    if (l->mapping) l->mapping = mnew[l->mapping - 1];
    for (uint32_t j = 0; j < l->nline; j++)
      if (l->line[j].function) l->line[j].function = fnew[l->line[j].function - 1];
  }
  for (size_t i = 0; i < m->samps.n; i++)
    for (uint32_t j = 0; j < m->samps.v[i].nloc; j++)
      m->samps.v[i].loc[j] = lnew[m->samps.v[i].loc[j]] - 1;
  free(lnew);
  free(fnew);
  free(mnew);
  return 0;
}

int pprof_merger_finish(pprof_merger *pm, pprof_profile **ret_profile, pp_err *err) {
  merger *m = &pm->m;
  pprof_profile *dst = m->dst;
  if (pm->added == 0) {
    pprof_merger_free(pm);
    return pp_err_set(err, PP_EUSAGE, "merge needs at least one profile");
  }
  /* Samples whose values cancelled out (a diff, or negative inputs) are dropped, as pprof
   * re-merges to drop them. */
  size_t keep = 0;
  for (size_t i = 0; i < m->samps.n; i++) {
    bool zero = true;
    for (size_t v = 0; v < dst->nsample_type && zero; v++)
      zero = m->samps.v[i].value[v] == 0;
    if (!zero) m->samps.v[keep++] = m->samps.v[i];
  }
  m->samps.n = keep;
  size_t marks = (m->locs.n + m->funcs.n + m->maps.n + 3) * sizeof(uint32_t);
  if (!charge(m, marks)) goto nomem;
  if (drop_unreferenced(m) < 0) goto nomem;
  uncharge(m, marks);

  COPY_OUT(dst->mapping, dst->nmapping, m->maps);
  COPY_OUT(dst->function, dst->nfunction, m->funcs);
  COPY_OUT(dst->location, dst->nlocation, m->locs);
  COPY_OUT(dst->sample, dst->nsample, m->samps);
  COPY_OUT(dst->comment, dst->ncomment, m->comments);
  dst->nstrings = m->strings.count;
  dst->strings = dst_alloc(m, dst->nstrings * sizeof *dst->strings);
  dst->string_len = dst_alloc(m, dst->nstrings * sizeof *dst->string_len);
  if (!dst->strings || !dst->string_len) goto nomem;
  for (size_t i = 0; i < dst->nstrings; i++) {
    size_t len;
    const char *s = htab_key(&m->strings, (uint32_t)i, &len);
    dst->strings[i] = dst_alloc(m, len + 1);
    if (!dst->strings[i]) goto nomem;
    memcpy(dst->strings[i], s, len);
    dst->strings[i][len] = '\0';
    dst->string_len[i] = (uint32_t)len;
  }
  dst->mem.budget = 0; /* the limit was the merger's; the result is the caller's */
  m->dst = NULL;       /* handed to the caller */
  pprof_merger_free(pm);
  *ret_profile = dst;
  return 0;
nomem:;
  bool over = m->over;
  size_t limit = m->limit;
  pprof_merger_free(pm);
  if (over)
    return pp_err_set(err, PP_ELIMIT,
                      "merge: the merged profile needs more than its memory limit of %zu bytes",
                      limit);
  return pp_err_set(err, PP_ENOMEM, "out of memory");
}

/* Merges srcs; signs[i] multiplies source i's values (1, or -1 for a diff's base). */
static int merge_signed(pprof_profile *const *srcs, const int64_t *signs, size_t n, size_t limit,
                        pprof_profile **ret, pp_err *err) {
  if (n == 0) return pp_err_set(err, PP_EUSAGE, "merge needs at least one profile");
  pprof_merger *pm;
  int r = pprof_merger_new(&pm, err);
  if (r < 0) return r;
  pprof_merger_set_limit(pm, limit);
  for (size_t i = 0; i < n; i++) {
    if ((r = pprof_merger_add(pm, srcs[i], signs ? signs[i] : 1, err)) < 0) {
      pprof_merger_free(pm);
      return r;
    }
  }
  return pprof_merger_finish(pm, ret, err);
}

int pprof_merge(pprof_profile *const *srcs, size_t n, pprof_profile **ret_profile, pp_err *err) {
  return merge_signed(srcs, NULL, n, 0, ret_profile, err);
}

int pprof_merge_within(pprof_profile *const *srcs, size_t n, size_t limit, pprof_profile **ret_profile, pp_err *err) {
  return merge_signed(srcs, NULL, n, limit, ret_profile, err);
}

int pprof_diff(const pprof_profile *base, const pprof_profile *cmp, pprof_profile **ret_profile,
               pp_err *err) {
  pprof_profile *srcs[2] = {(pprof_profile *)cmp, (pprof_profile *)base};
  const int64_t signs[2] = {1, -1};
  return merge_signed(srcs, signs, 2, 0, ret_profile, err);
}

size_t pprof_keep_types(pprof_profile *p, uint64_t keep) {
  size_t n = p->nsample_type > 64 ? 64 : p->nsample_type, k = 0;
  bool default_kept = p->default_sample_type == 0;
  for (size_t i = 0; i < n; i++)
    if (keep >> i & 1) {
      if (p->sample_type[i].type == p->default_sample_type) default_kept = true;
      p->sample_type[k++] = p->sample_type[i];
    }
  for (size_t s = 0; s < p->nsample; s++) {
    int64_t *v = p->sample[s].value;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
      if (keep >> i & 1) v[m++] = v[i];
  }
  p->nsample_type = k;
  if (!default_kept) p->default_sample_type = 0;
  return k;
}

void pprof_scale(pprof_profile *p, double factor) {
  for (size_t i = 0; i < p->nsample; i++) {
    int64_t *v = p->sample[i].value;
    for (size_t j = 0; j < p->nsample_type; j++) {
      if (factor == -1.0) {
        v[j] = (int64_t)(0 - (uint64_t)v[j]);
        continue;
      }
      double d = round((double)v[j] * factor);
      if (d >= 9.2233720368547758e18)
        v[j] = INT64_MAX;
      else if (d <= -9.2233720368547758e18)
        v[j] = INT64_MIN;
      else
        v[j] = (int64_t)d;
    }
  }
}
