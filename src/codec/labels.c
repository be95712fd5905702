/* Sample labels: keeping and dropping samples by their string labels (pprof_filter_tags). */
#include <stdlib.h>
#include <string.h>

#include "pprof_int.h"

/* s[0..len) equals the NUL-terminated want (strings may hold NULs: compare by length). */
static bool str_is(const pprof_profile *p, uint32_t i, const char *want, size_t wlen) {
  return p->string_len[i] == wlen && !memcmp(p->strings[i], want, wlen);
}

/* Whether one filter holds for sample s. */
static bool holds(const pprof_profile *p, const pprof_sample *s, const pprof_tag_filter *f, size_t klen, size_t vlen) {
  bool has_key = false, has_value = false;
  for (uint32_t i = 0; i < s->nlabel; i++) {
    const pprof_label *l = &s->label[i];
    if (!l->str || !str_is(p, l->key, f->key, klen)) continue; /* numeric, or another key */
    has_key = true;
    if (vlen && str_is(p, l->str, f->value, vlen)) has_value = true;
  }
  bool eq = vlen ? has_value : !has_key; /* KEY= means "no string label KEY" */
  return f->negate ? !eq : eq;
}

bool pprof_tags_hold(const pprof_profile *p, const pprof_sample *s, const pprof_tag_filter *f, size_t nf) {
  for (size_t k = 0; k < nf && k < PPROF_MAX_TAG_FILTERS; k++)
    if (!holds(p, s, &f[k], strlen(f[k].key), f[k].value ? strlen(f[k].value) : 0)) return false;
  return true;
}

size_t pprof_filter_tags(pprof_profile *p, const pprof_tag_filter *f, size_t nf) {
  if (!nf) return p->nsample;
  size_t kept = 0;
  for (size_t i = 0; i < p->nsample; i++)
    if (pprof_tags_hold(p, &p->sample[i], f, nf)) p->sample[kept++] = p->sample[i];
  p->nsample = kept;
  return kept;
}

int pprof_tag_parse(char *spec, pprof_tag_filter *ret, pp_err *err) {
  char *eq = strchr(spec, '=');
  bool negate = eq && eq > spec && eq[-1] == '!';
  if (!eq || eq - spec == (negate ? 1 : 0))
    return pp_err_set(err, PP_EUSAGE, "tag \"%.64s\": want KEY=VALUE or KEY!=VALUE", spec);
  *eq = '\0';
  if (negate) eq[-1] = '\0';
  *ret = (pprof_tag_filter){spec, eq + 1, negate};
  return 0;
}

/* A sample's values for key, as -tagroot joins them: every string label KEY in label order,
 * separated by ','; into *b (grown as needed). Returns the length. */
static size_t joined_values(const pprof_profile *p, const pprof_sample *s, const char *key, size_t klen, char **b,
                            size_t *cap, bool *oom) {
  size_t n = 0;
  for (uint32_t i = 0; i < s->nlabel; i++) {
    const pprof_label *l = &s->label[i];
    if (!l->str || !str_is(p, l->key, key, klen)) continue;
    size_t need = n + 1 + p->string_len[l->str] + 1;
    if (need > *cap) {
      size_t nc = need * 2;
      char *nb = realloc(*b, nc);
      if (!nb) {
        *oom = true;
        return 0;
      }
      *b = nb, *cap = nc;
    }
    if (n) (*b)[n++] = ',';
    memcpy(*b + n, p->strings[l->str], p->string_len[l->str]);
    n += p->string_len[l->str];
  }
  return n;
}

int pprof_tag_root(pprof_profile *p, const char *key, size_t max_values, pp_err *err) {
  size_t klen = strlen(key), cap = 0;
  char *b = NULL;
  bool oom = false;
  htab vals;
  uint32_t *group = malloc((p->nsample ? p->nsample : 1) * sizeof *group);
  int r = htab_init(&vals, 64, max_values ? max_values : 0);
  if (!group || r < 0) {
    free(group);
    htab_free(&vals);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < p->nsample && r >= 0; i++) {
    size_t n = joined_values(p, &p->sample[i], key, klen, &b, &cap, &oom);
    if (oom) r = PP_ENOMEM;
    else r = htab_intern(&vals, n ? b : "", n, &group[i]);
  }
  free(b);
  if (r < 0) {
    free(group);
    htab_free(&vals);
    return r == PP_ELIMIT ? pp_err_set(err, PP_ELIMIT, "label %.64s has more than %zu values", key, max_values)
                          : pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  size_t ng = vals.count;
  uint32_t **newloc = NULL;
  /* the tables grow by the key, one string, function and location per value; the old arrays
   * stay in the arena (it frees everything at once) */
  char **strings = arena_alloc(&p->mem, (p->nstrings + 1 + ng) * sizeof *strings);
  uint32_t *string_len = arena_alloc(&p->mem, (p->nstrings + 1 + ng) * sizeof *string_len);
  pprof_function *fn = arena_alloc(&p->mem, (p->nfunction + ng) * sizeof *fn);
  pprof_location *loc = arena_alloc(&p->mem, (p->nlocation + ng) * sizeof *loc);
  pprof_line *lines = arena_calloc(&p->mem, ng ? ng : 1, sizeof *lines);
  if (!strings || !string_len || !fn || !loc || !lines) goto nomem;
  memcpy(strings, p->strings, p->nstrings * sizeof *strings);
  memcpy(string_len, p->string_len, p->nstrings * sizeof *string_len);
  memcpy(fn, p->function, p->nfunction * sizeof *fn);
  memcpy(loc, p->location, p->nlocation * sizeof *loc);
  uint64_t max_fid = 0, max_lid = 0;
  for (size_t i = 0; i < p->nfunction; i++)
    if (fn[i].id > max_fid) max_fid = fn[i].id;
  for (size_t i = 0; i < p->nlocation; i++)
    if (loc[i].id > max_lid) max_lid = loc[i].id;
  size_t ns = p->nstrings;
  uint32_t key_str = (uint32_t)ns;
  if (!(strings[ns] = arena_strndup(&p->mem, key, klen))) goto nomem;
  string_len[ns++] = (uint32_t)klen;
  for (size_t g = 0; g < ng; g++) {
    size_t vlen;
    const char *v = htab_key(&vals, (uint32_t)g, &vlen);
    uint32_t name = 0; /* the empty value: string 0, a nameless frame ("<unknown>", as go shows it) */
    if (vlen) {
      if (!(strings[ns] = arena_strndup(&p->mem, v, vlen))) goto nomem;
      string_len[ns] = (uint32_t)vlen;
      name = (uint32_t)ns++;
    }
    fn[p->nfunction + g] = (pprof_function){.id = max_fid + 1 + g, .name = name, .system_name = name, .filename = key_str};
    lines[g] = (pprof_line){.function = (uint32_t)(p->nfunction + g + 1)};
    loc[p->nlocation + g] = (pprof_location){.id = max_lid + 1 + g, .nline = 1, .line = &lines[g]};
  }
  /* the samples' new lists all made before any is swapped in, so a failure changes nothing */
  if (!(newloc = malloc((p->nsample ? p->nsample : 1) * sizeof *newloc))) goto nomem;
  for (size_t i = 0; i < p->nsample; i++) {
    const pprof_sample *s = &p->sample[i];
    if (!(newloc[i] = arena_alloc(&p->mem, (s->nloc + 1) * sizeof **newloc))) goto nomem;
    memcpy(newloc[i], s->loc, s->nloc * sizeof **newloc);
    newloc[i][s->nloc] = (uint32_t)(p->nlocation + group[i]); /* locations are leaf first: the root is last */
  }
  for (size_t i = 0; i < p->nsample; i++) p->sample[i].loc = newloc[i], p->sample[i].nloc++;
  free(newloc);
  p->strings = strings, p->string_len = string_len, p->nstrings = ns;
  p->function = fn, p->nfunction += ng;
  p->location = loc, p->nlocation += ng;
  free(group);
  htab_free(&vals);
  return 0;
nomem:
  free(newloc);
  free(group);
  htab_free(&vals);
  return pp_err_set(err, PP_ENOMEM, "out of memory (or the profile's memory limit)");
}
