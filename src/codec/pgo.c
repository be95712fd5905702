/* pprof_pgo_trim: a profile cut down to what `go build -pgo` reads. See pprof.h.
 *
 * The source is never written: a view (a struct copy sharing the source's strings, functions and
 * mappings) gets its own samples (fewer locations, no labels) and its own location table (the
 * source's, then one variant per location that ends a sample, with the innermost line zeroed),
 * and the merger sums the samples the trimming made equal. */
#include <stdlib.h>
#include <string.h>

#include "pprof.h"

int pprof_pgo_trim(const pprof_profile *p, const pprof_pgo_opts *o, size_t max_bytes,
                   pprof_profile **ret_profile, pp_err *err) {
  size_t keep = o->keep_locations;
  size_t nloc_total = 0;
  for (size_t i = 0; i < p->nsample; i++)
    nloc_total += keep && p->sample[i].nloc > keep ? keep : p->sample[i].nloc;
  pprof_profile view = *p;
  pprof_sample *samples = malloc((p->nsample + 1) * sizeof *samples);
  uint32_t *locs = malloc((nloc_total + 1) * sizeof *locs);
  /* variant[i]: index + 1 of location i's leaf variant in the view's table, 0 = not made yet */
  uint32_t *variant = o->aggregate_callees ? calloc(p->nlocation + 1, sizeof *variant) : NULL;
  pprof_location *loctab = o->aggregate_callees ? malloc((2 * p->nlocation + 1) * sizeof *loctab) : NULL;
  size_t nlines = 0;
  for (size_t i = 0; o->aggregate_callees && i < p->nlocation; i++) nlines += p->location[i].nline;
  pprof_line *lines = o->aggregate_callees ? malloc((nlines + 1) * sizeof *lines) : NULL;
  pprof_merger *m = NULL;
  int r = PP_ENOMEM;
  if (!samples || !locs || (o->aggregate_callees && (!variant || !loctab || !lines))) {
    pp_err_set(err, PP_ENOMEM, "pgo: out of memory");
    goto out;
  }
  size_t nloctab = p->nlocation, nlines_used = 0, at = 0;
  if (loctab) memcpy(loctab, p->location, p->nlocation * sizeof *loctab);
  for (size_t i = 0; i < p->nsample; i++) {
    const pprof_sample *s = &p->sample[i];
    uint32_t n = keep && s->nloc > keep ? (uint32_t)keep : s->nloc;
    samples[i] = (pprof_sample){.loc = locs + at, .value = s->value, .label = NULL, .nloc = n, .nlabel = 0};
    memcpy(locs + at, s->loc, n * sizeof *locs);
    if (loctab && n) {
      uint32_t leaf = s->loc[0];
      if (!variant[leaf]) {
        const pprof_location *l = &p->location[leaf];
        pprof_location v = *l;
        /* address relative 0 within its mapping: the merger keys locations by that */
        v.address = l->mapping ? p->mapping[l->mapping - 1].start : 0;
        v.line = lines + nlines_used;
        memcpy(v.line, l->line, l->nline * sizeof *v.line);
        nlines_used += l->nline;
        if (v.nline) v.line[0].line = 0, v.line[0].column = 0; /* innermost first (pprof.h) */
        loctab[nloctab] = v;
        variant[leaf] = (uint32_t)++nloctab;
      }
      locs[at] = variant[leaf] - 1;
    }
    at += n;
  }
  view.sample = samples;
  if (loctab) view.location = loctab, view.nlocation = nloctab;
  if ((r = pprof_merger_new(&m, err)) < 0) goto out;
  pprof_merger_set_limit(m, max_bytes);
  if ((r = pprof_merger_add(m, &view, 1, err)) < 0) goto out;
  r = pprof_merger_finish(m, ret_profile, err);
  m = NULL;
out:
  pprof_merger_free(m);
  free(samples);
  free(locs);
  free(variant);
  free(loctab);
  free(lines);
  return r;
}
