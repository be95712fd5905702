/* profile_eq: deep comparison of two decoded profiles, field by field, for the differential
 * tests (fast decoder vs protobuf-c reference) and round trips. Returns NULL when equal, else a
 * static description of the first difference. Wire ids are compared too, so use it only for
 * two readings of the same bytes. */
#ifndef PROFILE_EQ_H
#define PROFILE_EQ_H

#include <stdio.h>
#include <string.h>

#include "../../src/codec/pprof.h"

static const char *profile_eq(const pprof_profile *a, const pprof_profile *b) {
  static char why[256];
#define DIFF(...)                                                                                  \
  do {                                                                                             \
    snprintf(why, sizeof why, __VA_ARGS__);                                                        \
    return why;                                                                                    \
  } while (0)
#define SAME(x, what)                                                                              \
  if ((a->x) != (b->x)) DIFF("%s differs", what)
  SAME(nsample_type, "sample type count");
  SAME(nsample, "sample count");
  SAME(nmapping, "mapping count");
  SAME(nlocation, "location count");
  SAME(nfunction, "function count");
  SAME(nstrings, "string count");
  SAME(ncomment, "comment count");
  SAME(drop_frames, "drop_frames");
  SAME(keep_frames, "keep_frames");
  SAME(default_sample_type, "default_sample_type");
  SAME(doc_url, "doc_url");
  SAME(time_nanos, "time_nanos");
  SAME(duration_nanos, "duration_nanos");
  SAME(period, "period");
  SAME(period_type.type, "period type");
  SAME(period_type.unit, "period unit");
  for (size_t i = 0; i < a->nstrings; i++)
    if (a->string_len[i] != b->string_len[i] || strcmp(a->strings[i], b->strings[i]))
      DIFF("string %zu differs", i);
  for (size_t i = 0; i < a->ncomment; i++)
    SAME(comment[i], "comment");
  for (size_t i = 0; i < a->nsample_type; i++)
    if (memcmp(&a->sample_type[i], &b->sample_type[i], sizeof a->sample_type[i]))
      DIFF("sample type %zu differs", i);
  for (size_t i = 0; i < a->nmapping; i++) {
    const pprof_mapping *x = &a->mapping[i], *y = &b->mapping[i];
    if (x->id != y->id || x->start != y->start || x->limit != y->limit || x->offset != y->offset ||
        x->filename != y->filename || x->build_id != y->build_id ||
        x->has_functions != y->has_functions || x->has_filenames != y->has_filenames ||
        x->has_line_numbers != y->has_line_numbers || x->has_inline_frames != y->has_inline_frames)
      DIFF("mapping %zu differs", i);
  }
  for (size_t i = 0; i < a->nfunction; i++) {
    const pprof_function *x = &a->function[i], *y = &b->function[i];
    if (x->id != y->id || x->name != y->name || x->system_name != y->system_name ||
        x->filename != y->filename || x->start_line != y->start_line)
      DIFF("function %zu differs", i);
  }
  for (size_t i = 0; i < a->nlocation; i++) {
    const pprof_location *x = &a->location[i], *y = &b->location[i];
    if (x->id != y->id || x->address != y->address || x->mapping != y->mapping ||
        x->nline != y->nline || x->is_folded != y->is_folded)
      DIFF("location %zu differs", i);
    for (uint32_t j = 0; j < x->nline; j++)
      if (x->line[j].function != y->line[j].function || x->line[j].line != y->line[j].line ||
          x->line[j].column != y->line[j].column)
        DIFF("location %zu line %u differs", i, j);
  }
  for (size_t i = 0; i < a->nsample; i++) {
    const pprof_sample *x = &a->sample[i], *y = &b->sample[i];
    if (x->nloc != y->nloc || x->nlabel != y->nlabel) DIFF("sample %zu shape differs", i);
    if (x->nloc && memcmp(x->loc, y->loc, x->nloc * sizeof *x->loc))
      DIFF("sample %zu stack differs", i);
    if (a->nsample_type && memcmp(x->value, y->value, a->nsample_type * sizeof *x->value))
      DIFF("sample %zu values differ", i);
    for (uint32_t j = 0; j < x->nlabel; j++)
      if (x->label[j].key != y->label[j].key || x->label[j].str != y->label[j].str ||
          x->label[j].num != y->label[j].num || x->label[j].num_unit != y->label[j].num_unit)
        DIFF("sample %zu label %u differs", i, j);
  }
  return NULL;
#undef SAME
#undef DIFF
}

#endif
