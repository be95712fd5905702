/* web_otlp: OTLP profiles into pprof records (web_otlp.h states the contract). */
#include "web_otlp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/htab.h"
#include "otlp.pb-c.h"
#include "web_connect.h"

typedef Otlp__ProfilesDictionary dict_t;
typedef Otlp__Profile prof_t;

/* ---- checking a request ---------------------------------------------------------------------
 * Everything an index may point at is checked before anything is stored, so a malformed
 * request stores nothing; the conversion below then trusts the indexes. */

typedef struct check {
  const dict_t *d;
  size_t nstr, nmap, nloc, nfn, nlink, nattr, nstack; /* table sizes (a missing table: 0) */
  uint32_t *stack_w; /* per stack: its locations and their lines, what converting a sample on it walks */
  uint64_t work;     /* what converting the request walks (WEB_OTLP_MAX_WORK) */
  char *why;
  size_t whyn;
} check;

static bool bad(check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool bad(check *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->why, c->whyn, fmt, ap);
  va_end(ap);
  return false;
}

/* index i of a table of n entries (a missing table: only 0, the zero value, is valid) */
static bool in(int32_t i, size_t n) { return i >= 0 && ((size_t)i < n || i == 0); }

static bool check_str(check *c, int32_t i, const char *what) {
  return in(i, c->nstr) || bad(c, "%s: string index %" PRId32 " outside string_table (%zu entries)", what, i, c->nstr);
}

static bool check_attrs(check *c, const int32_t *a, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    if (!in(a[i], c->nattr)) return bad(c, "%s: attribute index %" PRId32 " outside attribute_table (%zu entries)", what, a[i], c->nattr);
  return true;
}

static bool check_dict(check *c) {
  const dict_t *d = c->d;
  if (!d) return true;
  if (d->n_string_table && d->string_table[0][0]) return bad(c, "dictionary: string_table[0] must be \"\"");
  char w[96];
  for (size_t i = 0; i < d->n_mapping_table; i++) {
    const Otlp__Mapping *m = d->mapping_table[i];
    snprintf(w, sizeof w, "mapping_table[%zu]", i);
    if (!check_str(c, m->filename_strindex, w) || !check_attrs(c, m->attribute_indices, m->n_attribute_indices, w)) return false;
  }
  for (size_t i = 0; i < d->n_function_table; i++) {
    const Otlp__Function *f = d->function_table[i];
    snprintf(w, sizeof w, "function_table[%zu]", i);
    if (!check_str(c, f->name_strindex, w) || !check_str(c, f->system_name_strindex, w) || !check_str(c, f->filename_strindex, w))
      return false;
  }
  for (size_t i = 0; i < d->n_location_table; i++) {
    const Otlp__Location *l = d->location_table[i];
    snprintf(w, sizeof w, "location_table[%zu]", i);
    if (!in(l->mapping_index, c->nmap)) return bad(c, "%s: mapping index %" PRId32 " outside mapping_table", w, l->mapping_index);
    for (size_t k = 0; k < l->n_lines; k++)
      if (!in(l->lines[k]->function_index, c->nfn))
        return bad(c, "%s: line %zu: function index %" PRId32 " outside function_table", w, k, l->lines[k]->function_index);
    if (!check_attrs(c, l->attribute_indices, l->n_attribute_indices, w)) return false;
  }
  if (d->n_stack_table && !(c->stack_w = calloc(d->n_stack_table, sizeof *c->stack_w)))
    return bad(c, "out of memory checking the request");
  for (size_t i = 0; i < d->n_stack_table; i++) {
    const Otlp__Stack *s = d->stack_table[i];
    uint64_t walk = 1;
    for (size_t k = 0; k < s->n_location_indices; k++) {
      int32_t l = s->location_indices[k];
      /* 0 is the zero location: no address, no lines, nothing a frame could show */
      if (l <= 0 || (size_t)l >= c->nloc)
        return bad(c, "stack_table[%zu]: location index %" PRId32 " is not a location (1..%zu)", i, l, c->nloc ? c->nloc - 1 : 0);
      walk += 1 + d->location_table[l]->n_lines;
    }
    c->stack_w[i] = walk > UINT32_MAX ? UINT32_MAX : (uint32_t)walk;
  }
  for (size_t i = 0; i < d->n_attribute_table; i++) {
    const Otlp__KeyValueAndUnit *a = d->attribute_table[i];
    snprintf(w, sizeof w, "attribute_table[%zu]", i);
    if (!check_str(c, a->key_strindex, w) || !check_str(c, a->unit_strindex, w)) return false;
    if (a->value && a->value->value_case == OTLP__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX &&
        !check_str(c, a->value->string_value_strindex, w))
      return false;
  }
  return true;
}

static bool check_vt(check *c, const Otlp__ValueType *v, const char *what) {
  return !v || (check_str(c, v->type_strindex, what) && check_str(c, v->unit_strindex, what));
}

static bool check_request(check *c, const Otlp__ExportProfilesServiceRequest *rq) {
  if (!check_dict(c)) return false;
  size_t nprof = 0, nsamp = 0;
  char w[96];
  for (size_t i = 0; i < rq->n_resource_profiles; i++) {
    const Otlp__ResourceProfiles *rp = rq->resource_profiles[i];
    for (size_t j = 0; j < rp->n_scope_profiles; j++) {
      const Otlp__ScopeProfiles *sp = rp->scope_profiles[j];
      for (size_t k = 0; k < sp->n_profiles; k++) {
        const prof_t *p = sp->profiles[k];
        snprintf(w, sizeof w, "resource_profiles[%zu].scope_profiles[%zu].profiles[%zu]", i, j, k);
        if (++nprof > WEB_OTLP_MAX_PROFILES) return bad(c, "more than %d profiles in one request", WEB_OTLP_MAX_PROFILES);
        if ((nsamp += p->n_samples) > WEB_OTLP_MAX_SAMPLES)
          return bad(c, "more than %zu samples in one request", WEB_OTLP_MAX_SAMPLES);
        if (!check_vt(c, p->sample_type, w) || !check_vt(c, p->period_type, w) ||
            !check_attrs(c, p->attribute_indices, p->n_attribute_indices, w))
          return false;
        for (size_t s = 0; s < p->n_samples; s++) {
          const Otlp__Sample *sa = p->samples[s];
          if (!in(sa->stack_index, c->nstack))
            return bad(c, "%s.samples[%zu]: stack index %" PRId32 " outside stack_table (%zu entries)", w, s, sa->stack_index, c->nstack);
          if (!in(sa->link_index, c->nlink))
            return bad(c, "%s.samples[%zu]: link index %" PRId32 " outside link_table", w, s, sa->link_index);
          if (!check_attrs(c, sa->attribute_indices, sa->n_attribute_indices, w)) return false;
          /* a group converts each of its samples' stacks and their lines: the same deep stack in
           * a thousand groups is a thousand walks of it, bounded here before anything is stored */
          c->work += 1 + sa->n_attribute_indices + (c->stack_w && (size_t)sa->stack_index < c->nstack ? c->stack_w[sa->stack_index] : 1);
          if (c->work > WEB_OTLP_MAX_WORK)
            return bad(c, "the request's samples walk more than %llu stack frames and lines to convert: send fewer at once",
                       (unsigned long long)WEB_OTLP_MAX_WORK);
        }
      }
    }
  }
  return true;
}

/* ---- strings and attributes ---------------------------------------------------------------- */

static const char *dstr(const dict_t *d, int32_t i) { return d && (size_t)i < d->n_string_table ? d->string_table[i] : ""; }

/* A scalar attribute value as text into buf (NULL: not a scalar, or no value). */
static const char *any_text(const dict_t *d, const Otlp__AnyValue *v, char *buf, size_t n) {
  if (!v) return NULL;
  switch (v->value_case) {
  case OTLP__ANY_VALUE__VALUE_STRING_VALUE: return v->string_value;
  case OTLP__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX: return dstr(d, v->string_value_strindex);
  case OTLP__ANY_VALUE__VALUE_BOOL_VALUE: return v->bool_value ? "true" : "false";
  case OTLP__ANY_VALUE__VALUE_INT_VALUE: snprintf(buf, n, "%" PRId64, v->int_value); return buf;
  case OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE: snprintf(buf, n, "%.17g", v->double_value); return buf;
  default: return NULL;
  }
}

/* a KeyValue's key: inline, or from the string table */
static const char *kv_key(const dict_t *d, const Otlp__KeyValue *kv) { return *kv->key ? kv->key : dstr(d, kv->key_strindex); }

/* the text of attribute `key` among attribute-table indexes a[0..n), or NULL */
static const char *attr_text(const dict_t *d, const int32_t *a, size_t n, const char *key, char *buf, size_t bn) {
  for (size_t i = 0; d && i < n; i++) {
    if ((size_t)a[i] >= d->n_attribute_table) continue;
    const Otlp__KeyValueAndUnit *kv = d->attribute_table[a[i]];
    if (!strcmp(dstr(d, kv->key_strindex), key)) return any_text(d, kv->value, buf, bn);
  }
  return NULL;
}

/* ---- one group of profiles into a pprof ------------------------------------------------------ */

/* What every group of a request shares, made once per request (a request may hold 1,024
 * groups over one dictionary of millions of entries: nothing per group may cost the dictionary's
 * size). The maps are zero between groups: a group clears the entries it set (its orders). */
typedef struct req_maps {
  uint32_t *smap;                    /* string_table index -> new index + 1 (0: not yet) */
  uint32_t *lmap, *fmap, *mmap;      /* location, function, mapping table index -> new index + 1 */
  int32_t *sorder, *lorder, *forder, *morder; /* new index -> table index (what to clear) */
  const char **bid;                  /* mapping table index -> its build id, once found ("" none) */
} req_maps;

static void req_maps_free(req_maps *m) {
  free(m->smap);
  free(m->lmap);
  free(m->fmap);
  free(m->mmap);
  free(m->sorder);
  free(m->lorder);
  free(m->forder);
  free(m->morder);
  free(m->bid);
}

static bool req_maps_init(req_maps *m, const dict_t *d) {
  size_t ns = (d ? d->n_string_table : 0) + 1, nl = (d ? d->n_location_table : 0) + 1, nf = (d ? d->n_function_table : 0) + 1,
         nm = (d ? d->n_mapping_table : 0) + 1;
  memset(m, 0, sizeof *m);
  m->smap = calloc(ns, sizeof *m->smap);
  m->lmap = calloc(nl, sizeof *m->lmap);
  m->fmap = calloc(nf, sizeof *m->fmap);
  m->mmap = calloc(nm, sizeof *m->mmap);
  m->sorder = malloc(ns * sizeof *m->sorder);
  m->lorder = malloc(nl * sizeof *m->lorder);
  m->forder = malloc(nf * sizeof *m->forder);
  m->morder = malloc(nm * sizeof *m->morder);
  m->bid = calloc(nm, sizeof *m->bid);
  if (m->smap && m->lmap && m->fmap && m->mmap && m->sorder && m->lorder && m->forder && m->morder && m->bid) return true;
  req_maps_free(m);
  return false;
}

/* a mapping's build id: a string attribute process.executable.build_id.{go,gnu,htlhash}, found
 * once per request ("" when it has none) */
static const char *build_id(const dict_t *d, req_maps *rm, int32_t mi) {
  if (rm->bid[mi]) return rm->bid[mi];
  static const char *const keys[] = {"process.executable.build_id.go", "process.executable.build_id.gnu",
                                     "process.executable.build_id.htlhash"};
  const Otlp__Mapping *m = d->mapping_table[mi];
  const char *found = "";
  for (size_t k = 0; !*found && k < 3; k++)
    for (size_t i = 0; i < m->n_attribute_indices; i++) {
      int32_t a = m->attribute_indices[i];
      if (a <= 0 || (size_t)a >= d->n_attribute_table) continue;
      const Otlp__KeyValueAndUnit *kv = d->attribute_table[a];
      const Otlp__AnyValue *v = kv->value;
      if (!v || strcmp(dstr(d, kv->key_strindex), keys[k])) continue;
      if (v->value_case == OTLP__ANY_VALUE__VALUE_STRING_VALUE) found = v->string_value;
      else if (v->value_case == OTLP__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX) found = dstr(d, v->string_value_strindex);
      break;
    }
  return rm->bid[mi] = found;
}

typedef struct conv {
  const dict_t *d;
  pprof_profile *p;
  htab strs;      /* the new string table: bytes -> index ("" is 0) */
  uint32_t *smap; /* the request's maps (req_maps) */
  uint32_t *lmap, *fmap, *mmap;
  int32_t *sorder, *lorder, *forder, *morder;
  size_t ns, nl, nf, nm;
} conv;

static int64_t intern_bytes(conv *c, const char *s, size_t len) {
  uint32_t id;
  int r = htab_intern(&c->strs, s, len, &id);
  return r < 0 ? r : (int64_t)id;
}

static int64_t intern_idx(conv *c, int32_t i) {
  if (!c->d || (size_t)i >= c->d->n_string_table) return 0;
  if (c->smap[i]) return c->smap[i] - 1;
  int64_t id = intern_bytes(c, c->d->string_table[i], strlen(c->d->string_table[i]));
  if (id >= 0) {
    c->smap[i] = (uint32_t)id + 1;
    c->sorder[c->ns++] = i;
  }
  return id;
}

/* marks table index i of a table as used (its new index = order of first use) */
static void use(uint32_t *map, int32_t *order, size_t *n, int32_t i) {
  if (!map[i]) {
    order[*n] = i;
    map[i] = (uint32_t)++*n;
  }
}

/* stack i of the dictionary; NULL for the zero stack of a request without a stack table */
static const Otlp__Stack *stack_of(const dict_t *d, int32_t i) {
  return d && (size_t)i < d->n_stack_table ? d->stack_table[i] : NULL;
}

/* A sample of the group: its stack and attributes (the key), its values per profile. */
typedef struct row {
  int32_t stack;
  int32_t *attrs;
  size_t nattrs;
} row;

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

#define TRY(e)                                                                                                         \
  do {                                                                                                                 \
    if (!(e)) goto nomem;                                                                                              \
  } while (0)

/* Profiles ps[0..n) (one sample type each, the same stacks' samples) as one pprof encoded into
 * *ret_buf (plain protobuf; the caller frees it). 0, or PP_ENOMEM / PP_ELIMIT with why. */
static int convert(const dict_t *d, req_maps *rm, prof_t *const *ps, size_t n, size_t budget, uint8_t **ret_buf,
                   size_t *ret_len, char *why, size_t whyn) {
  conv c = {.d = d, .smap = rm->smap, .lmap = rm->lmap, .fmap = rm->fmap, .mmap = rm->mmap, .sorder = rm->sorder,
            .lorder = rm->lorder, .forder = rm->forder, .morder = rm->morder};
  pprof_profile *p = calloc(1, sizeof *p);
  htab keys;
  bool keys_ok = htab_init(&keys, 1024, 0) == 0;
  row *rows = NULL;
  int64_t *vals = NULL;
  size_t nrows = 0, rcap = 0;
  int r = 0;
  int32_t *key = NULL;
  size_t kcap = 0;
  if (!p || !keys_ok || htab_init(&c.strs, 1024, 0) < 0) {
    free(p);
    if (keys_ok) htab_free(&keys);
    snprintf(why, whyn, "out of memory");
    return PP_ENOMEM;
  }
  arena_init(&p->mem, budget);
  c.p = p;
  TRY(intern_bytes(&c, "", 0) == 0);

  /* the samples, merged by (stack, set of attributes) over the group's profiles */
  for (size_t k = 0; k < n; k++) {
    for (size_t s = 0; s < ps[k]->n_samples; s++) {
      const Otlp__Sample *sa = ps[k]->samples[s];
      size_t na = sa->n_attribute_indices;
      if (na + 1 > kcap) {
        kcap = 2 * (na + 1);
        int32_t *nk = realloc(key, kcap * sizeof *nk);
        TRY(nk);
        key = nk;
      }
      key[0] = sa->stack_index;
      if (na) memcpy(key + 1, sa->attribute_indices, na * sizeof *key);
      qsort(key + 1, na, sizeof *key, cmp_i32);
      size_t u = 0; /* a set: an attribute given twice counts once */
      for (size_t i = 0; i < na; i++)
        if (!u || key[1 + i] != key[u]) key[1 + u++] = key[1 + i];
      uint32_t ri;
      int ir = htab_intern(&keys, key, (1 + u) * sizeof *key, &ri);
      TRY(ir >= 0);
      if (ir == 1) {
        if (nrows == rcap) {
          rcap = rcap ? 2 * rcap : 256;
          row *nr = realloc(rows, rcap * sizeof *nr);
          TRY(nr);
          rows = nr;
          int64_t *nv = realloc(vals, rcap * n * sizeof *nv);
          TRY(nv);
          vals = nv;
        }
        row *rw = &rows[nrows];
        rw->stack = sa->stack_index;
        rw->nattrs = u;
        TRY(rw->attrs = arena_alloc(&p->mem, (u ? u : 1) * sizeof *rw->attrs));
        memcpy(rw->attrs, key + 1, u * sizeof *key);
        memset(vals + nrows * n, 0, n * sizeof *vals);
        nrows++;
      }
      /* the sample's observations: its values summed (wrapping as pprof's merges do), or
       * without values the number of its timestamps */
      uint64_t v = sa->n_values ? 0 : sa->n_timestamps_unix_nano;
      for (size_t i = 0; i < sa->n_values; i++) v += (uint64_t)sa->values[i];
      vals[ri * n + k] = (int64_t)((uint64_t)vals[ri * n + k] + v);
    }
  }

  /* what the samples use: locations in first-use order, then their functions and mappings */
  for (size_t i = 0; i < nrows; i++) {
    const Otlp__Stack *st = stack_of(d, rows[i].stack);
    for (size_t k = 0; st && k < st->n_location_indices; k++) use(c.lmap, c.lorder, &c.nl, st->location_indices[k]);
  }
  for (size_t i = 0; i < c.nl; i++) {
    const Otlp__Location *l = d->location_table[c.lorder[i]];
    if (l->mapping_index > 0) use(c.mmap, c.morder, &c.nm, l->mapping_index);
    for (size_t k = 0; k < l->n_lines; k++)
      if (l->lines[k]->function_index > 0) use(c.fmap, c.forder, &c.nf, l->lines[k]->function_index);
  }
  /* mappings in the producer's order: go tool pprof takes the first for the main binary */
  qsort(c.morder, c.nm, sizeof *c.morder, cmp_i32);
  for (size_t i = 0; i < c.nm; i++) c.mmap[c.morder[i]] = (uint32_t)i + 1;

  /* the header */
  p->nsample_type = n;
  TRY(p->sample_type = arena_calloc(&p->mem, n, sizeof *p->sample_type));
  for (size_t k = 0; k < n; k++) {
    const Otlp__ValueType *vt = ps[k]->sample_type;
    int64_t t = vt ? intern_idx(&c, vt->type_strindex) : 0, u = vt ? intern_idx(&c, vt->unit_strindex) : 0;
    TRY(t >= 0 && u >= 0);
    p->sample_type[k] = (pprof_value_type){(uint32_t)t, (uint32_t)u};
  }
  if (ps[0]->period_type) {
    int64_t t = intern_idx(&c, ps[0]->period_type->type_strindex), u = intern_idx(&c, ps[0]->period_type->unit_strindex);
    TRY(t >= 0 && u >= 0);
    p->period_type = (pprof_value_type){(uint32_t)t, (uint32_t)u};
  }
  p->period = ps[0]->period;
  p->time_nanos = ps[0]->time_unix_nano > INT64_MAX ? INT64_MAX : (int64_t)ps[0]->time_unix_nano;
  p->duration_nanos = ps[0]->duration_nano > INT64_MAX ? INT64_MAX : (int64_t)ps[0]->duration_nano;

  /* functions, mappings, locations */
  p->nfunction = c.nf;
  TRY(p->function = arena_calloc(&p->mem, c.nf ? c.nf : 1, sizeof *p->function));
  for (size_t i = 0; i < c.nf; i++) {
    const Otlp__Function *f = d->function_table[c.forder[i]];
    int64_t nm = intern_idx(&c, f->name_strindex), sn = intern_idx(&c, f->system_name_strindex),
            fl = intern_idx(&c, f->filename_strindex);
    TRY(nm >= 0 && sn >= 0 && fl >= 0);
    p->function[i] = (pprof_function){.id = i + 1, .name = (uint32_t)nm, .system_name = (uint32_t)sn, .filename = (uint32_t)fl,
                                      .start_line = f->start_line};
  }
  p->nmapping = c.nm;
  TRY(p->mapping = arena_calloc(&p->mem, c.nm ? c.nm : 1, sizeof *p->mapping));
  for (size_t i = 0; i < c.nm; i++) {
    const Otlp__Mapping *m = d->mapping_table[c.morder[i]];
    const char *bid = build_id(d, rm, c.morder[i]);
    int64_t fl = intern_idx(&c, m->filename_strindex), b = intern_bytes(&c, bid, strlen(bid));
    TRY(fl >= 0 && b >= 0);
    p->mapping[i] = (pprof_mapping){.id = i + 1, .start = m->memory_start, .limit = m->memory_limit, .offset = m->file_offset,
                                    .filename = (uint32_t)fl, .build_id = (uint32_t)b};
  }
  p->nlocation = c.nl;
  TRY(p->location = arena_calloc(&p->mem, c.nl ? c.nl : 1, sizeof *p->location));
  for (size_t i = 0; i < c.nl; i++) {
    const Otlp__Location *l = d->location_table[c.lorder[i]];
    pprof_location *pl = &p->location[i];
    pl->id = i + 1;
    pl->address = l->address;
    pl->mapping = l->mapping_index > 0 ? c.mmap[l->mapping_index] : 0;
    pl->nline = (uint32_t)l->n_lines;
    TRY(pl->line = arena_calloc(&p->mem, l->n_lines ? l->n_lines : 1, sizeof *pl->line));
    for (size_t k = 0; k < l->n_lines; k++) {
      const Otlp__Line *ln = l->lines[k];
      pl->line[k] = (pprof_line){ln->function_index > 0 ? c.fmap[ln->function_index] : 0, ln->line, ln->column};
      /* OTLP has no has_* flags: a mapping whose frames name functions has them (what Go's
       * runtime/pprof sets, and what keeps go tool pprof from symbolizing it again); the
       * filename, line number and inline flags stay false, as Go writes them */
      if (pl->mapping && pl->line[k].function) p->mapping[pl->mapping - 1].has_functions = true;
    }
  }

  /* the samples: stacks as new location indexes, attributes as labels */
  p->nsample = nrows;
  TRY(p->sample = arena_calloc(&p->mem, nrows ? nrows : 1, sizeof *p->sample));
  for (size_t i = 0; i < nrows; i++) {
    pprof_sample *s = &p->sample[i];
    const Otlp__Stack *st = stack_of(d, rows[i].stack);
    s->nloc = st ? (uint32_t)st->n_location_indices : 0;
    TRY(s->loc = arena_alloc(&p->mem, (s->nloc ? s->nloc : 1) * sizeof *s->loc));
    for (uint32_t k = 0; k < s->nloc; k++) s->loc[k] = c.lmap[st->location_indices[k]] - 1;
    TRY(s->value = arena_alloc(&p->mem, n * sizeof *s->value));
    memcpy(s->value, vals + i * n, n * sizeof *s->value);
    TRY(s->label = arena_calloc(&p->mem, rows[i].nattrs ? rows[i].nattrs : 1, sizeof *s->label));
    for (size_t k = 0; k < rows[i].nattrs; k++) {
      int32_t ai = rows[i].attrs[k];
      if (ai <= 0 || !d || (size_t)ai >= d->n_attribute_table) continue; /* the zero attribute (a missing table's only index) */
      const Otlp__KeyValueAndUnit *kv = d->attribute_table[ai];
      const Otlp__AnyValue *v = kv->value;
      pprof_label lb = {0};
      int64_t key_id = intern_idx(&c, kv->key_strindex);
      TRY(key_id >= 0);
      if (!key_id) continue; /* the zero attribute, or a key that is "" */
      lb.key = (uint32_t)key_id;
      if (v && v->value_case == OTLP__ANY_VALUE__VALUE_INT_VALUE) {
        int64_t u = intern_idx(&c, kv->unit_strindex);
        TRY(u >= 0);
        lb.num = v->int_value;
        lb.num_unit = (uint32_t)u;
      } else {
        char tb[64];
        const char *t = any_text(d, v, tb, sizeof tb);
        if (!t) continue; /* arrays, maps, bytes: no pprof label holds them */
        int64_t sid = intern_bytes(&c, t, strlen(t));
        TRY(sid >= 0);
        if (!sid) continue; /* "": pprof reads a label without text as a number */
        lb.str = (uint32_t)sid;
      }
      s->label[s->nlabel++] = lb;
    }
  }

  /* the string table */
  p->nstrings = c.strs.count;
  TRY(p->strings = arena_alloc(&p->mem, p->nstrings * sizeof *p->strings));
  TRY(p->string_len = arena_alloc(&p->mem, p->nstrings * sizeof *p->string_len));
  for (uint32_t i = 0; i < c.strs.count; i++) {
    size_t len;
    const char *k = htab_key(&c.strs, i, &len);
    TRY(p->strings[i] = arena_strndup(&p->mem, k, len));
    p->string_len[i] = (uint32_t)len;
  }
  pp_err err = {0};
  /* plain protobuf, not gzip: web_push_store decodes it again at once and the store keeps its
   * own encoding of the profile (gzip was a third of an OTLP push's CPU: bench/push_bench.py) */
  if ((r = pprof_encode(p, 0, ret_buf, ret_len, &err)) < 0) snprintf(why, whyn, "profile: %s", err.msg);
  goto out;
nomem:
  r = PP_ELIMIT;
  snprintf(why, whyn, "the request's profiles need more memory to convert than a request may take");
out:
  free(key);
  free(rows);
  free(vals);
  /* the request's maps back to zero for the next group: only what this one set */
  for (size_t i = 0; i < c.ns; i++) c.smap[c.sorder[i]] = 0;
  for (size_t i = 0; i < c.nl; i++) c.lmap[c.lorder[i]] = 0;
  for (size_t i = 0; i < c.nf; i++) c.fmap[c.forder[i]] = 0;
  for (size_t i = 0; i < c.nm; i++) c.mmap[c.morder[i]] = 0;
  htab_free(&keys);
  htab_free(&c.strs);
  pprof_free(p);
  return r;
}

/* ---- a request --------------------------------------------------------------------------------- */

static bool same_vt(const dict_t *d, const Otlp__ValueType *a, const Otlp__ValueType *b) {
  if (!a || !b) return !a && !b;
  return !strcmp(dstr(d, a->type_strindex), dstr(d, b->type_strindex)) && !strcmp(dstr(d, a->unit_strindex), dstr(d, b->unit_strindex));
}

/* whether profile q belongs with the group ps[0..n): the same time, duration, period,
 * attributes and original pprof (a producer that sends the original puts it on each of a pprof's
 * profiles), and a sample type the group has not got */
static bool joins(const dict_t *d, prof_t *const *ps, size_t n, const prof_t *q) {
  const prof_t *p = ps[0];
  if (n >= 64 || q->time_unix_nano != p->time_unix_nano || q->duration_nano != p->duration_nano || q->period != p->period ||
      !same_vt(d, q->period_type, p->period_type) || q->n_attribute_indices != p->n_attribute_indices ||
      (q->n_attribute_indices && memcmp(q->attribute_indices, p->attribute_indices, q->n_attribute_indices * sizeof(int32_t))) ||
      strcmp(q->original_payload_format, p->original_payload_format) || q->original_payload.len != p->original_payload.len ||
      (q->original_payload.len && memcmp(q->original_payload.data, p->original_payload.data, q->original_payload.len)))
    return false;
  for (size_t i = 0; i < n; i++)
    if (same_vt(d, ps[i]->sample_type, q->sample_type)) return false;
  return true;
}

/* A resource's labels (its scalar attributes, names made [A-Za-z0-9_]) into src, their bytes
 * in mem. */
typedef struct res_labels {
  char mem[WEB_PUSH_MAX_LABELS][2][WEB_PUSH_MAX_NAME + 1];
  char kindbuf[16];
  const char *k[WEB_PUSH_MAX_LABELS], *v[WEB_PUSH_MAX_LABELS];
  size_t n;
  const char *app, *kind;
} res_labels;

static void resource_labels(const dict_t *d, const Otlp__Resource *res, res_labels *l) {
  l->n = 0;
  l->app = "unknown_service";
  l->kind = NULL;
  for (size_t i = 0; res && i < res->n_attributes && l->n < WEB_PUSH_MAX_LABELS; i++) {
    const Otlp__KeyValue *kv = res->attributes[i];
    char tb[64];
    const char *key = kv_key(d, kv), *val = any_text(d, kv->value, tb, sizeof tb);
    size_t kl = strlen(key);
    if (!val || !kl || kl > 128 || strlen(val) > WEB_PUSH_MAX_NAME) continue;
    char *k = l->mem[l->n][0], *v = l->mem[l->n][1];
    for (size_t j = 0; j <= kl; j++) {
      char ch = key[j];
      k[j] = !ch || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ? ch : '_';
    }
    snprintf(v, WEB_PUSH_MAX_NAME + 1, "%s", val);
    if (!strcmp(key, "pprof.profile.kind")) {
      /* (its own copy: v is the next label's place) */
      snprintf(l->kindbuf, sizeof l->kindbuf, "%s", v);
      l->kind = l->kindbuf;
      continue;
    }
    if (!strcmp(k, "service_name") && *v) l->app = v;
    l->k[l->n] = k;
    l->v[l->n++] = v;
  }
}

static unsigned grpc_code(unsigned status) {
  return status == 400 ? 3 : status == 413 || status == 429 || status == 507 ? 8 : status == 503 ? 14 : status == 501 ? 12 : 13;
}

/* OTLP/HTTP's error answer: a google.rpc.Status in the request's encoding */
static void answer_error(web_resp *out, bool json, unsigned status, const char *msg) {
  Otlp__Status st = OTLP__STATUS__INIT;
  st.code = (int32_t)grpc_code(status);
  st.message = (char *)msg;
  web_connect_message(out, status, json, "application/x-protobuf", &st.base, 0);
}

void web_otlp_profiles(const web_ctx *x, const web_push_body *b, web_resp *out) {
  bool json = b->ctype && !strncasecmp(b->ctype, "application/json", 16);
  if (!x->h->push) {
    answer_error(out, json, 501, "this collector does not take pushed profiles");
    return;
  }
  if (!json && !(b->ctype && !strncasecmp(b->ctype, "application/x-protobuf", 22))) {
    answer_error(out, false, 415, "Content-Type: want application/x-protobuf or application/json (OTLP/HTTP)");
    return;
  }
  /* the profiles signal is in development: a schema version this reader was not written for
   * (an OpenTelemetry Collector sends 1, the one of opentelemetry-proto v1.10; none means 1) is
   * refused rather than misread, as the Collector's own receiver does */
  if (b->version && strcmp(b->version, "1")) {
    answer_error(out, json, 400, "OTLP-Profiles-Development-Version: only 1 (opentelemetry-proto v1.10's profiles) is read");
    return;
  }
  arena_budget pa;
  ProtobufCMessage *m = NULL;
  pp_err err = {0};
  bool j2;
  if (web_push_read(x, b, &otlp__export_profiles_service_request__descriptor, &pa, &j2, &m, &err) < 0) {
    /* too large is 413 (OTLP/HTTP: the client may split it); too deep, like every other fault
     * of the message, 400 */
    answer_error(out, json, err.code == PP_ELIMIT && !strstr(err.msg, "nested") ? 413 : 400, err.msg);
    arena_free(&pa.mem);
    return;
  }
  const Otlp__ExportProfilesServiceRequest *rq = (const Otlp__ExportProfilesServiceRequest *)m;
  const dict_t *d = rq->dictionary;
  char why[600] = "";
  check c = {.d = d, .why = why, .whyn = sizeof why};
  if (d)
    c.nstr = d->n_string_table, c.nmap = d->n_mapping_table, c.nloc = d->n_location_table, c.nfn = d->n_function_table,
    c.nlink = d->n_link_table, c.nattr = d->n_attribute_table, c.nstack = d->n_stack_table;
  bool checked = check_request(&c, rq);
  free(c.stack_w);
  if (!checked) {
    answer_error(out, json, 400, why);
    arena_free(&pa.mem);
    return;
  }
  /* each group of profiles into the store; a group rejected for what it holds is counted and
   * the rest go on; a failure of the store ends the request */
  int64_t rejected = 0;
  char first_reject[700] = "";
  unsigned status = 0;
  res_labels *rl = malloc(sizeof *rl);
  prof_t **grp = malloc(64 * sizeof *grp);
  req_maps rm;
  bool rm_ok = req_maps_init(&rm, d);
  if (!rl || !grp || !rm_ok) {
    status = 503;
    snprintf(why, sizeof why, "out of memory");
  }
  for (size_t i = 0; !status && i < rq->n_resource_profiles; i++) {
    const Otlp__ResourceProfiles *rp = rq->resource_profiles[i];
    resource_labels(d, rp->resource, rl);
    for (size_t j = 0; !status && j < rp->n_scope_profiles; j++) {
      const Otlp__ScopeProfiles *sp = rp->scope_profiles[j];
      for (size_t k = 0; !status && k < sp->n_profiles;) {
        size_t n = 0;
        grp[n++] = sp->profiles[k++];
        while (k < sp->n_profiles && joins(d, grp, n, sp->profiles[k])) grp[n++] = sp->profiles[k++];
        char kb[64];
        const char *kind = attr_text(d, grp[0]->attribute_indices, grp[0]->n_attribute_indices, "pprof.profile.kind", kb, sizeof kb);
        web_push_src src = {.app = rl->app, .k = rl->k, .v = rl->v, .n = rl->n, .lock_kind = kind ? kind : rl->kind,
                            .cumulative = true};
        if (src.lock_kind && strcmp(src.lock_kind, "mutex") && strcmp(src.lock_kind, "block")) src.lock_kind = NULL;
        unsigned st;
        uint8_t *pb = NULL;
        size_t pblen = 0;
        if (grp[0]->original_payload.len && !strcasecmp(grp[0]->original_payload_format, "pprof")) {
          st = web_push_store(x, &src, grp[0]->original_payload.data, grp[0]->original_payload.len, why, sizeof why);
        } else {
          int r = convert(d, &rm, grp, n, x->budget / 4, &pb, &pblen, why, sizeof why);
          st = r == 0 ? web_push_store(x, &src, pb, pblen, why, sizeof why) : r == PP_ELIMIT ? 413 : 503;
        }
        free(pb);
        if (st == 400 || st == 413) {
          /* what this group holds: the others may still be stored */
          rejected += (int64_t)n;
          if (!*first_reject) snprintf(first_reject, sizeof first_reject, "resource_profiles[%zu].scope_profiles[%zu]: %.600s", i, j, why);
        } else if (st) {
          status = st;
        }
      }
    }
  }
  free(rl);
  free(grp);
  if (rm_ok) req_maps_free(&rm);
  arena_free(&pa.mem);
  if (status) {
    answer_error(out, json, status, why);
    return;
  }
  Otlp__ExportProfilesServiceResponse resp = OTLP__EXPORT_PROFILES_SERVICE_RESPONSE__INIT;
  Otlp__ExportProfilesPartialSuccess ps = OTLP__EXPORT_PROFILES_PARTIAL_SUCCESS__INIT;
  if (rejected) {
    ps.rejected_profiles = rejected;
    ps.error_message = first_reject;
    resp.partial_success = &ps;
  }
  web_connect_message(out, 200, json, "application/x-protobuf", &resp.base, 0);
}
