/* Encoding: index form -> protobuf-c messages (in a scratch arena) -> packed bytes -> gzip.
 * Wire ids are written as index + 1, so an encoded profile always has dense ids. */
#include <stdlib.h>
#include <string.h>

#include "../base/gz.h"
#include "pprof_int.h"
#include "profile.pb-c.h"

#define NEW_ARRAY(ptr, n)                                                                          \
  do {                                                                                             \
    (ptr) = arena_alloc(&mem, ((n) ? (n) : 1) * sizeof *(ptr));                                    \
    if (!(ptr)) goto nomem;                                                                        \
  } while (0)

int pprof_encode(const pprof_profile *p, int level, uint8_t **ret_buf, size_t *ret_len,
                 pp_err *err) {
  if (level < 0 || level > 9)
    return pp_err_set(err, PP_EUSAGE, "gzip level %d outside 0..9", level);
  if (p->nsample_type > (1u << 30) || p->nstrings == 0)
    return pp_err_set(err, PP_EINVAL, "profile has no string table");
  arena mem;
  arena_init(&mem, 0);
  int result = 0;
  uint8_t *packed = NULL;

  Pprofwire__Profile w = PPROFWIRE__PROFILE__INIT;
  Pprofwire__ValueType *vts, period_type = PPROFWIRE__VALUE_TYPE__INIT;
  NEW_ARRAY(vts, p->nsample_type);
  NEW_ARRAY(w.sample_type, p->nsample_type);
  for (size_t i = 0; i < p->nsample_type; i++) {
    pprofwire__value_type__init(&vts[i]);
    vts[i].type = p->sample_type[i].type;
    vts[i].unit = p->sample_type[i].unit;
    w.sample_type[i] = &vts[i];
  }
  w.n_sample_type = p->nsample_type;

  Pprofwire__Sample *ss;
  NEW_ARRAY(ss, p->nsample);
  NEW_ARRAY(w.sample, p->nsample);
  for (size_t i = 0; i < p->nsample; i++) {
    const pprof_sample *s = &p->sample[i];
    Pprofwire__Sample *o = &ss[i];
    pprofwire__sample__init(o);
    o->n_location_id = s->nloc;
    NEW_ARRAY(o->location_id, s->nloc);
    for (uint32_t j = 0; j < s->nloc; j++)
      o->location_id[j] = (uint64_t)s->loc[j] + 1;
    o->n_value = p->nsample_type;
    o->value = s->value;
    if (s->nlabel) {
      Pprofwire__Label *ls;
      NEW_ARRAY(ls, s->nlabel);
      NEW_ARRAY(o->label, s->nlabel);
      for (uint32_t j = 0; j < s->nlabel; j++) {
        pprofwire__label__init(&ls[j]);
        ls[j].key = s->label[j].key;
        ls[j].str = s->label[j].str;
        ls[j].num = s->label[j].num;
        ls[j].num_unit = s->label[j].num_unit;
        o->label[j] = &ls[j];
      }
      o->n_label = s->nlabel;
    }
    w.sample[i] = o;
  }
  w.n_sample = p->nsample;

  Pprofwire__Mapping *ms;
  NEW_ARRAY(ms, p->nmapping);
  NEW_ARRAY(w.mapping, p->nmapping);
  for (size_t i = 0; i < p->nmapping; i++) {
    const pprof_mapping *m = &p->mapping[i];
    Pprofwire__Mapping *o = &ms[i];
    pprofwire__mapping__init(o);
    o->id = i + 1;
    o->memory_start = m->start;
    o->memory_limit = m->limit;
    o->file_offset = m->offset;
    o->filename = m->filename;
    o->build_id = m->build_id;
    o->has_functions = m->has_functions;
    o->has_filenames = m->has_filenames;
    o->has_line_numbers = m->has_line_numbers;
    o->has_inline_frames = m->has_inline_frames;
    w.mapping[i] = o;
  }
  w.n_mapping = p->nmapping;

  Pprofwire__Location *locs;
  NEW_ARRAY(locs, p->nlocation);
  NEW_ARRAY(w.location, p->nlocation);
  for (size_t i = 0; i < p->nlocation; i++) {
    const pprof_location *l = &p->location[i];
    Pprofwire__Location *o = &locs[i];
    pprofwire__location__init(o);
    o->id = i + 1;
    o->mapping_id = l->mapping; /* index + 1 == new id, 0 == none */
    o->address = l->address;
    o->is_folded = l->is_folded;
    if (l->nline) {
      Pprofwire__Line *lines;
      NEW_ARRAY(lines, l->nline);
      NEW_ARRAY(o->line, l->nline);
      for (uint32_t j = 0; j < l->nline; j++) {
        pprofwire__line__init(&lines[j]);
        lines[j].function_id = l->line[j].function; /* index + 1 == new id */
        lines[j].line = l->line[j].line;
        lines[j].column = l->line[j].column;
        o->line[j] = &lines[j];
      }
      o->n_line = l->nline;
    }
    w.location[i] = o;
  }
  w.n_location = p->nlocation;

  Pprofwire__Function *fs;
  NEW_ARRAY(fs, p->nfunction);
  NEW_ARRAY(w.function, p->nfunction);
  for (size_t i = 0; i < p->nfunction; i++) {
    const pprof_function *f = &p->function[i];
    Pprofwire__Function *o = &fs[i];
    pprofwire__function__init(o);
    o->id = i + 1;
    o->name = f->name;
    o->system_name = f->system_name;
    o->filename = f->filename;
    o->start_line = f->start_line;
    w.function[i] = o;
  }
  w.n_function = p->nfunction;

  w.n_string_table = p->nstrings;
  w.string_table = p->strings;
  w.drop_frames = p->drop_frames;
  w.keep_frames = p->keep_frames;
  w.time_nanos = p->time_nanos;
  w.duration_nanos = p->duration_nanos;
  if (p->period_type.type || p->period_type.unit) {
    period_type.type = p->period_type.type;
    period_type.unit = p->period_type.unit;
    w.period_type = &period_type;
  }
  w.period = p->period;
  w.n_comment = p->ncomment;
  if (p->ncomment) {
    NEW_ARRAY(w.comment, p->ncomment);
    for (size_t i = 0; i < p->ncomment; i++)
      w.comment[i] = p->comment[i];
  }
  w.default_sample_type = p->default_sample_type;
  w.doc_url = p->doc_url;

  size_t plen = pprofwire__profile__get_packed_size(&w);
  packed = malloc(plen ? plen : 1);
  if (!packed) goto nomem;
  pprofwire__profile__pack(&w, packed);
  arena_free(&mem);
  if (level == 0) {
    *ret_buf = packed;
    *ret_len = plen;
    return 0;
  }
  result = pp_gzip(packed, plen, level, ret_buf, ret_len, err);
  free(packed);
  return result;

nomem:
  arena_free(&mem);
  free(packed);
  return pp_err_set(err, PP_ENOMEM, "out of memory");
}
