/* Merges of v2 records on ids (store_idm.h). */
#include "store_idm.h"

#include <stdlib.h>
#include <string.h>

/* One segment's sums. */
typedef struct idm_group {
  int64_t seg;
  sym_table *table; /* the fullest table seen of the segment: it holds every id added */
  htab keys;        /* key (idm_key) -> entry */
  int64_t *val;     /* entry * nst */
  size_t vcap;      /* entries val has room for */
  size_t bytes;     /* what the group holds, as charged */
  /* the header, combined as pprof_merger combines it; string ids of this segment */
  pprof_value_type *st, period_type;
  int64_t time, duration, period;
  uint32_t def, drop, keep, doc;
  uint32_t *comment;
  size_t ncomment, ccap;
} idm_group;

struct idm {
  idm_group *g;
  size_t ng, gcap, last;
  /* the selection's types: type and unit strings of each sample type, then the period type's */
  bool typed;
  size_t nst;
  char **ref;
  uint32_t *ref_len;
  uint32_t *kb; /* key scratch, in words */
  size_t kcap;
  size_t bytes;
};

int idm_new(idm **ret, pp_err *err) {
  idm *m = calloc(1, sizeof *m);
  if (!m) return pp_err_set(err, PP_ENOMEM, "out of memory");
  *ret = m;
  return 0;
}

static void group_free(idm_group *g) {
  sym_table_release(g->table);
  htab_free(&g->keys);
  free(g->val);
  free(g->st);
  free(g->comment);
  memset(g, 0, sizeof *g);
}

void idm_free(idm *m) {
  if (!m) return;
  for (size_t i = 0; i < m->ng; i++) group_free(&m->g[i]);
  free(m->g);
  for (size_t i = 0; m->ref && i < 2 * m->nst + 2; i++) free(m->ref[i]);
  free(m->ref);
  free(m->ref_len);
  free(m->kb);
  free(m);
}

size_t idm_bytes(const idm *m) {
  return m->bytes;
}

/* ---- the selection's types ------------------------------------------------------------------- */

/* Strings of a source: a table's (v2) or a profile's (PPR1). */
typedef struct strs {
  char *const *s;
  const uint32_t *len;
} strs;

static bool set_ref(idm *m, strs src, size_t nst, const pprof_value_type *st, pprof_value_type pt) {
  size_t n = 2 * nst + 2;
  m->ref = calloc(n, sizeof *m->ref);
  m->ref_len = calloc(n, sizeof *m->ref_len);
  if (!m->ref || !m->ref_len) return false;
  m->nst = nst;
  for (size_t i = 0; i < n; i++) {
    uint32_t id = i < 2 * nst ? (i % 2 ? st[i / 2].unit : st[i / 2].type) : (i % 2 ? pt.unit : pt.type);
    m->ref_len[i] = src.len[id];
    if (!(m->ref[i] = malloc(src.len[id] + 1))) return false;
    memcpy(m->ref[i], src.s[id], src.len[id] + 1);
  }
  m->typed = true;
  return true;
}

/* 0 when src's types are the selection's (fixing them when none are yet), PP_EMISMATCH when
 * not. */
static int check_types(idm *m, strs src, size_t nst, const pprof_value_type *st, pprof_value_type pt, pp_err *err) {
  if (!m->typed) return set_ref(m, src, nst, st, pt) ? 0 : pp_err_set(err, PP_ENOMEM, "out of memory");
  bool same = nst == m->nst;
  for (size_t i = 0; same && i < 2 * nst + 2; i++) {
    uint32_t id = i < 2 * nst ? (i % 2 ? st[i / 2].unit : st[i / 2].type) : (i % 2 ? pt.unit : pt.type);
    same = src.len[id] == m->ref_len[i] && !memcmp(src.s[id], m->ref[i], m->ref_len[i]);
  }
  return same ? 0 : pp_err_set(err, PP_EMISMATCH, "merge: the record's sample types differ from the selection's");
}

int idm_check_profile(idm *m, const pprof_profile *p, pp_err *err) {
  strs src = {p->strings, p->string_len};
  return check_types(m, src, p->nsample_type, p->sample_type, p->period_type, err);
}

/* ---- sums ------------------------------------------------------------------------------------ */

static size_t group_bytes(const idm_group *g, size_t nst) {
  return htab_bytes(&g->keys) + g->vcap * nst * sizeof *g->val + g->ccap * sizeof *g->comment + (g->table ? g->table->bytes : 0);
}

static idm_group *group_for(idm *m, const sym_record *rec, pp_err *err) {
  int64_t seg = rec->table->segment_id;
  if (m->last < m->ng && m->g[m->last].seg == seg) return &m->g[m->last];
  for (size_t i = 0; i < m->ng; i++)
    if (m->g[i].seg == seg) return &m->g[m->last = i];
  if (m->ng == m->gcap) {
    size_t cap = m->gcap ? 2 * m->gcap : 8;
    idm_group *ng = realloc(m->g, cap * sizeof *ng);
    if (!ng) goto nomem;
    m->g = ng;
    m->gcap = cap;
  }
  idm_group *g = &m->g[m->ng];
  memset(g, 0, sizeof *g);
  if (htab_init(&g->keys, 256, 0) < 0) goto nomem;
  const sym_samples *s = &rec->samples;
  if (!(g->st = malloc((s->nsample_type + 1) * sizeof *g->st))) {
    htab_free(&g->keys);
    goto nomem;
  }
  memcpy(g->st, s->sample_type, s->nsample_type * sizeof *g->st);
  g->seg = seg;
  g->period_type = s->period_type;
  g->drop = s->drop_frames;
  g->keep = s->keep_frames;
  g->doc = s->doc_url;
  m->last = m->ng++;
  return g;
nomem:
  pp_err_set(err, PP_ENOMEM, "out of memory");
  return NULL;
}

/* The key of a sample: its location ids, then its labels, as words. */
static size_t sample_key(idm *m, const pprof_sample *s) {
  size_t n = 2 + (size_t)s->nloc + 5 * (size_t)s->nlabel;
  if (n > m->kcap) {
    uint32_t *nk = realloc(m->kb, n * sizeof *nk);
    if (!nk) return 0;
    m->kb = nk;
    m->kcap = n;
  }
  uint32_t *k = m->kb;
  *k++ = s->nloc;
  memcpy(k, s->loc, s->nloc * sizeof *k);
  k += s->nloc;
  *k++ = s->nlabel;
  for (uint32_t i = 0; i < s->nlabel; i++) {
    const pprof_label *l = &s->label[i];
    uint64_t num = (uint64_t)l->num;
    *k++ = l->key;
    *k++ = l->str;
    *k++ = (uint32_t)num;
    *k++ = (uint32_t)(num >> 32);
    *k++ = l->num_unit;
  }
  return n;
}

int idm_add(idm *m, const sym_record *rec, size_t limit, pp_err *err) {
  const sym_samples *s = &rec->samples;
  const sym_table *t = rec->table;
  strs src = {t->strings, t->string_len};
  int r = check_types(m, src, s->nsample_type, s->sample_type, s->period_type, err);
  if (r < 0) return r;
  idm_group *g = group_for(m, rec, err);
  if (!g) return PP_ENOMEM;
  size_t before = g->bytes;
  /* a table loaded later holds every id of one loaded earlier (a segment's table only grows) */
  if (!g->table || t->nchain > g->table->nchain) {
    __atomic_add_fetch(&rec->table->refs, 1, __ATOMIC_RELAXED);
    sym_table_release(g->table);
    g->table = rec->table;
  }
  if (s->time_nanos && (g->time == 0 || s->time_nanos < g->time)) g->time = s->time_nanos;
  g->duration = (int64_t)((uint64_t)g->duration + (uint64_t)s->duration_nanos);
  if (s->period > g->period) g->period = s->period;
  if (!g->def && s->default_sample_type) g->def = s->default_sample_type;
  for (size_t c = 0; c < s->ncomment; c++) {
    bool seen = false;
    for (size_t k = 0; k < g->ncomment && !seen; k++) seen = g->comment[k] == s->comment[c];
    if (seen) continue;
    if (g->ncomment == g->ccap) {
      size_t cap = g->ccap ? 2 * g->ccap : 4;
      uint32_t *nc = realloc(g->comment, cap * sizeof *nc);
      if (!nc) return pp_err_set(err, PP_ENOMEM, "out of memory");
      g->comment = nc;
      g->ccap = cap;
    }
    g->comment[g->ncomment++] = s->comment[c];
  }
  size_t nst = m->nst;
  for (size_t i = 0; i < s->nsample; i++) {
    const pprof_sample *smp = &s->sample[i];
    bool zero = true;
    for (size_t v = 0; v < nst && zero; v++) zero = smp->value[v] == 0;
    if (zero) continue; /* as the merger: it adds nothing, and makes no sample */
    size_t kn = sample_key(m, smp);
    uint32_t idx;
    if (!kn || (r = htab_intern(&g->keys, m->kb, kn * sizeof *m->kb, &idx)) < 0)
      return pp_err_set(err, PP_ENOMEM, "out of memory");
    if (r == 1) {
      if (idx >= g->vcap) {
        size_t cap = g->vcap ? 2 * g->vcap : 256;
        int64_t *nv = realloc(g->val, cap * nst * sizeof *nv);
        if (!nv) return pp_err_set(err, PP_ENOMEM, "out of memory");
        g->val = nv;
        g->vcap = cap;
      }
      memset(&g->val[(size_t)idx * nst], 0, nst * sizeof *g->val);
    }
    int64_t *v = &g->val[(size_t)idx * nst];
    /* wraps as the merger's sums do (hostile values overflow) */
    for (size_t k = 0; k < nst; k++) v[k] = (int64_t)((uint64_t)v[k] + (uint64_t)smp->value[k]);
  }
  g->bytes = group_bytes(g, nst);
  m->bytes = m->bytes - before + g->bytes;
  if (limit && m->bytes > limit)
    return pp_err_set(err, PP_ELIMIT, "merge: the merged profile needs more than its memory limit of %zu bytes", limit);
  return 0;
}

/* The samples of one group's sums, as sym_build_profile takes them. */
static int group_samples(const idm *m, const idm_group *g, sym_samples *smp, pp_err *err) {
  memset(smp, 0, sizeof *smp);
  arena_init(&smp->mem, 0);
  size_t n = g->keys.count;
  smp->sample_type = g->st;
  smp->nsample_type = m->nst;
  smp->period_type = g->period_type;
  smp->period = g->period;
  smp->time_nanos = g->time;
  smp->duration_nanos = g->duration;
  smp->comment = g->comment;
  smp->ncomment = g->ncomment;
  smp->default_sample_type = g->def;
  smp->drop_frames = g->drop;
  smp->keep_frames = g->keep;
  smp->doc_url = g->doc;
  smp->nsample = n;
  smp->sample = arena_calloc(&smp->mem, n + 1, sizeof *smp->sample);
  if (!smp->sample) goto nomem;
  for (size_t i = 0; i < n; i++) {
    size_t len;
    /* every key is whole words (sample_key) and the table keeps keys back to back from a
     * malloc'd start (htab.h), so each starts word-aligned: read in place (the table outlives
     * smp); copied out only if a table ever laid them out otherwise */
    const void *kb = htab_key(&g->keys, (uint32_t)i, &len);
    const uint32_t *w = kb;
    if ((uintptr_t)kb % sizeof *w) {
      uint32_t *c = arena_alloc(&smp->mem, len);
      if (!c) goto nomem;
      memcpy(c, kb, len);
      w = c;
    }
    pprof_sample *s = &smp->sample[i];
    s->nloc = w[0];
    s->loc = (uint32_t *)w + 1;
    s->nlabel = w[1 + s->nloc];
    s->value = &g->val[i * m->nst];
    if (s->nlabel) {
      s->label = arena_alloc(&smp->mem, s->nlabel * sizeof *s->label);
      if (!s->label) goto nomem;
      const uint32_t *l = w + 2 + s->nloc;
      for (uint32_t k = 0; k < s->nlabel; k++, l += 5)
        s->label[k] = (pprof_label){l[0], l[1], (int64_t)((uint64_t)l[2] | (uint64_t)l[3] << 32), l[4]};
    }
  }
  return 0;
nomem:
  arena_free(&smp->mem);
  return pp_err_set(err, PP_ENOMEM, "out of memory");
}

/* Whether p, alone in a pprof_merger, would come out of pprof_merger_finish as it is (so the
 * merger's copy can be skipped). p is a segment's profile from sym_build_profile: its strings,
 * functions and locations are distinct by content (the segment's table interns them), its
 * samples distinct by (location ids, labels in their order) (the sums' keys), and it holds only
 * the symbols its samples use, in first-use order, as the merger would renumber them. What the
 * merger may still change:
 *   - a sample whose sums cancelled out to all zeros: the merger drops it (and its symbols);
 *   - a sample's labels: the merger sorts them (merge.c's cmp_label on its string ids, which
 *     are p's here), and two samples whose labels differ only in order become one;
 *   - mappings: the table keeps two mappings apart by start, limit and flags, the merger keys
 *     them by size rounded up to 4 KiB, offset and build id (or file) only (google/pprof's
 *     mappingKey), so it would fold such two (and their locations) into one.
 * Given distinct mappings by the merger's key, locations (relative address, mapping, lines) and
 * samples stay distinct too. */
static bool merger_keeps(const pprof_profile *p) {
  for (size_t i = 0; i < p->nsample; i++) {
    const pprof_sample *s = &p->sample[i];
    bool zero = true;
    for (size_t v = 0; v < p->nsample_type && zero; v++) zero = s->value[v] == 0;
    if (zero) return false;
    for (uint32_t k = 1; k < s->nlabel; k++) {
      const pprof_label *a = &s->label[k - 1], *b = &s->label[k];
      if (a->key != b->key ? a->key > b->key
          : a->str != b->str ? a->str > b->str
          : a->num != b->num ? a->num > b->num
                             : a->num_unit > b->num_unit)
        return false;
    }
  }
  /* mappings are few (one per binary and library): pairwise */
  for (size_t i = 0; i < p->nmapping; i++)
    for (size_t k = 0; k < i; k++) {
      const pprof_mapping *a = &p->mapping[i], *b = &p->mapping[k];
      uint64_t sa = a->limit - a->start + 0xfff, sb = b->limit - b->start + 0xfff;
      sa -= sa % 0x1000;
      sb -= sb % 0x1000;
      if (sa == sb && a->offset == b->offset &&
          (a->build_id ? a->build_id : a->filename) == (b->build_id ? b->build_id : b->filename))
        return false;
    }
  return true;
}

/* One group's profile into mg; with ret, handed over instead (*ret) when the merger would keep
 * it as it is. */
static int flush_group(idm *m, idm_group *g, pprof_merger *mg, const pprof_limits *limits, pprof_profile **ret,
                       pp_err *err) {
  sym_samples smp;
  pprof_profile *p = NULL;
  int r = group_samples(m, g, &smp, err);
  if (r < 0) return r;
  r = sym_build_profile(g->table, &smp, limits, &p, err);
  arena_free(&smp.mem);
  if (r == 0 && ret && merger_keeps(p)) {
    p->mem.budget = 0; /* as the merger's answer: the limit was the merge's, the profile is the caller's */
    *ret = p;
    return 0;
  }
  if (r == 0) r = pprof_merger_add(mg, p, 1, err);
  pprof_free(p);
  return r;
}

static int flush(idm *m, pprof_merger *mg, const pprof_limits *limits, pprof_profile **ret, pp_err *err) {
  int r = 0;
  size_t i = 0;
  for (; i < m->ng && r == 0; i++) {
    idm_group *g = &m->g[i];
    r = flush_group(m, g, mg, limits, m->ng == 1 ? ret : NULL, err);
    m->bytes -= g->bytes;
    group_free(g);
  }
  for (; i < m->ng; i++) {
    m->bytes -= m->g[i].bytes;
    group_free(&m->g[i]);
  }
  m->ng = m->last = 0;
  return r;
}

int idm_flush(idm *m, pprof_merger *mg, const pprof_limits *limits, pp_err *err) {
  return flush(m, mg, limits, NULL, err);
}

int idm_take(idm *m, pprof_merger *mg, const pprof_limits *limits, pprof_profile **ret, pp_err *err) {
  *ret = NULL;
  return flush(m, mg, limits, ret, err);
}
