/* profile_same: whether two profiles say the same thing, for round trips through a format
 * that renumbers ids and rebuilds string tables (the store's v2 records): unlike profile_eq.h
 * it compares by content, not by index. */
#ifndef PROFILE_SAME_H
#define PROFILE_SAME_H

#include <stdio.h>
#include <string.h>

#include "../../src/codec/pprof.h"

/* Whether two profiles say the same thing (stricter than test_store's same_profile, which compares tops): header, and sample by sample (in order) the values,
 * the stack (address, mapping, lines with their functions, by content) and the labels, every
 * string compared as text, so two encodings with different tables and ids compare equal. NULL
 * when they do, else the first difference. */
static inline const char *stored_as_scraped(const pprof_profile *a, const pprof_profile *b) {
  static char why[200];
#define S(p, i) pprof_str(p, i)
#define NEQ(x, y, ...)                                                                             \
  if (x != y) {                                                                                    \
    snprintf(why, sizeof why, __VA_ARGS__);                                                        \
    return why;                                                                                    \
  }
#define SNEQ(x, y, ...)                                                                            \
  if (strcmp(x, y)) {                                                                              \
    snprintf(why, sizeof why, __VA_ARGS__);                                                        \
    return why;                                                                                    \
  }
  NEQ(a->nsample_type, b->nsample_type, "sample type count");
  for (size_t i = 0; i < a->nsample_type; i++) {
    SNEQ(S(a, a->sample_type[i].type), S(b, b->sample_type[i].type), "sample type %zu", i);
    SNEQ(S(a, a->sample_type[i].unit), S(b, b->sample_type[i].unit), "sample unit %zu", i);
  }
  SNEQ(S(a, a->period_type.type), S(b, b->period_type.type), "period type");
  SNEQ(S(a, a->period_type.unit), S(b, b->period_type.unit), "period unit");
  NEQ(a->period, b->period, "period");
  NEQ(a->time_nanos, b->time_nanos, "time");
  NEQ(a->duration_nanos, b->duration_nanos, "duration");
  NEQ(a->ncomment, b->ncomment, "comment count");
  for (size_t i = 0; i < a->ncomment; i++) SNEQ(S(a, a->comment[i]), S(b, b->comment[i]), "comment %zu", i);
  SNEQ(S(a, a->default_sample_type), S(b, b->default_sample_type), "default sample type");
  SNEQ(S(a, a->drop_frames), S(b, b->drop_frames), "drop_frames");
  SNEQ(S(a, a->keep_frames), S(b, b->keep_frames), "keep_frames");
  SNEQ(S(a, a->doc_url), S(b, b->doc_url), "doc_url");
  /* every mapping, in order (go tool pprof takes the first for the main binary) */
  NEQ(a->nmapping, b->nmapping, "mapping count");
  for (size_t i = 0; i < a->nmapping; i++) {
    NEQ(a->mapping[i].start, b->mapping[i].start, "mapping %zu start", i);
    NEQ(a->mapping[i].limit, b->mapping[i].limit, "mapping %zu limit", i);
    SNEQ(S(a, a->mapping[i].filename), S(b, b->mapping[i].filename), "mapping %zu file", i);
  }
  NEQ(a->nsample, b->nsample, "sample count %zu vs %zu", a->nsample, b->nsample);
  for (size_t i = 0; i < a->nsample; i++) {
    const pprof_sample *x = &a->sample[i], *y = &b->sample[i];
    for (size_t k = 0; k < a->nsample_type; k++) NEQ(x->value[k], y->value[k], "sample %zu value %zu", i, k);
    NEQ(x->nloc, y->nloc, "sample %zu depth", i);
    for (uint32_t k = 0; k < x->nloc; k++) {
      const pprof_location *lx = &a->location[x->loc[k]], *ly = &b->location[y->loc[k]];
      NEQ(lx->address, ly->address, "sample %zu frame %u address", i, k);
      NEQ(lx->is_folded, ly->is_folded, "sample %zu frame %u folded", i, k);
      NEQ(!lx->mapping, !ly->mapping, "sample %zu frame %u mapping", i, k);
      if (lx->mapping) {
        const pprof_mapping *mx = &a->mapping[lx->mapping - 1], *my = &b->mapping[ly->mapping - 1];
        NEQ(mx->start, my->start, "mapping start");
        NEQ(mx->limit, my->limit, "mapping limit");
        NEQ(mx->offset, my->offset, "mapping offset");
        NEQ(mx->has_functions, my->has_functions, "mapping flags");
        NEQ(mx->has_inline_frames, my->has_inline_frames, "mapping flags");
        SNEQ(S(a, mx->filename), S(b, my->filename), "mapping file");
        SNEQ(S(a, mx->build_id), S(b, my->build_id), "mapping build id");
      }
      NEQ(lx->nline, ly->nline, "sample %zu frame %u lines", i, k);
      for (uint32_t j = 0; j < lx->nline; j++) {
        NEQ(lx->line[j].line, ly->line[j].line, "line number");
        NEQ(lx->line[j].column, ly->line[j].column, "column");
        NEQ(!lx->line[j].function, !ly->line[j].function, "line function");
        if (!lx->line[j].function) continue;
        const pprof_function *fx = &a->function[lx->line[j].function - 1], *fy = &b->function[ly->line[j].function - 1];
        SNEQ(S(a, fx->name), S(b, fy->name), "function name");
        SNEQ(S(a, fx->system_name), S(b, fy->system_name), "function system name");
        SNEQ(S(a, fx->filename), S(b, fy->filename), "function file");
        NEQ(fx->start_line, fy->start_line, "function start line");
      }
    }
    NEQ(x->nlabel, y->nlabel, "sample %zu labels", i);
    for (uint32_t k = 0; k < x->nlabel; k++) {
      SNEQ(S(a, x->label[k].key), S(b, y->label[k].key), "label key");
      SNEQ(S(a, x->label[k].str), S(b, y->label[k].str), "label value");
      SNEQ(S(a, x->label[k].num_unit), S(b, y->label[k].num_unit), "label unit");
      NEQ(x->label[k].num, y->label[k].num, "label number");
    }
  }
  return NULL;
#undef S
#undef NEQ
#undef SNEQ
}

#endif
