/* Sample labels: keeping and dropping samples by their string labels (pprof_filter_tags). */
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

size_t pprof_filter_tags(pprof_profile *p, const pprof_tag_filter *f, size_t nf) {
  if (!nf) return p->nsample;
  size_t klen[PPROF_MAX_TAG_FILTERS], vlen[PPROF_MAX_TAG_FILTERS];
  if (nf > PPROF_MAX_TAG_FILTERS) nf = PPROF_MAX_TAG_FILTERS;
  for (size_t k = 0; k < nf; k++) klen[k] = strlen(f[k].key), vlen[k] = f[k].value ? strlen(f[k].value) : 0;
  size_t kept = 0;
  for (size_t i = 0; i < p->nsample; i++) {
    bool keep = true;
    for (size_t k = 0; k < nf && keep; k++) keep = holds(p, &p->sample[i], &f[k], klen[k], vlen[k]);
    if (keep) p->sample[kept++] = p->sample[i];
  }
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
