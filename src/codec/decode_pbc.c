/* The reference decoder: protobuf-c -> validated index form.
 *
 * protobuf-c parses into its own message structs, allocated here from a budgeted arena so a
 * hostile profile (millions of tiny messages, each costing ~70 bytes of structs) fails cleanly
 * at limits->max_memory instead of exhausting the machine. The structs are then checked and
 * converted to pprof_profile. pprof_decode does not use this path (decode_wire.c is about
 * twice as fast, docs/codec.md); it stays as the independent reading that the differential
 * tests and fuzz target hold the fast decoder to.
 */
#include <stdlib.h>
#include <string.h>

#include "pprof_int.h"
#include "profile.pb-c.h"

/* ---- protobuf-c allocator ----------------------------------------------------------------- */

static uint64_t get_mapping_id(const void *a, size_t i) {
  return ((Pprofwire__Mapping *const *)a)[i]->id;
}
static uint64_t get_location_id(const void *a, size_t i) {
  return ((Pprofwire__Location *const *)a)[i]->id;
}
static uint64_t get_function_id(const void *a, size_t i) {
  return ((Pprofwire__Function *const *)a)[i]->id;
}

/* ---- conversion --------------------------------------------------------------------------- */

typedef struct conv {
  const Pprofwire__Profile *w;
  const pprof_limits *lim;
  pprof_profile *p;
  idmap mappings, locations, functions;
  pp_err *err;
} conv;

/* A string index from the wire: checked against the table. */
static int str_index(conv *c, int64_t v, uint32_t *ret, const char *what, size_t at) {
  if (v < 0 || (uint64_t)v >= c->p->nstrings)
    return pp_err_set(c->err, PP_EINVAL, "%s %zu: string index %lld outside the table of %zu", what,
                      at, (long long)v, c->p->nstrings);
  *ret = (uint32_t)v;
  return 0;
}

#define CHECK_LIMIT(n, max, what)                                                                  \
  do {                                                                                             \
    if ((n) > (max))                                                                               \
      return pp_err_set(c->err, PP_ELIMIT, "%zu %s exceed the limit of %zu", (size_t)(n), what,    \
                        (size_t)(max));                                                            \
  } while (0)

static int conv_strings(conv *c) {
  const Pprofwire__Profile *w = c->w;
  pprof_profile *p = c->p;
  CHECK_LIMIT(w->n_string_table, c->lim->max_strings, "strings");
  if (w->n_string_table == 0 || w->string_table[0][0] != '\0')
    return pp_err_set(c->err, PP_EINVAL, "string table must start with the empty string");
  p->nstrings = w->n_string_table;
  p->strings = arena_alloc(&p->mem, p->nstrings * sizeof *p->strings);
  p->string_len = arena_alloc(&p->mem, p->nstrings * sizeof *p->string_len);
  if (!p->strings || !p->string_len) return pp_err_set(c->err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < p->nstrings; i++) {
    size_t len = strlen(w->string_table[i]);
    if (len > c->lim->max_string_len)
      return pp_err_set(c->err, PP_ELIMIT, "string %zu is %zu bytes, over the limit of %zu", i, len,
                        c->lim->max_string_len);
    p->strings[i] = arena_strndup(&p->mem, w->string_table[i], len);
    if (!p->strings[i]) return pp_err_set(c->err, PP_ENOMEM, "out of memory");
    p->string_len[i] = (uint32_t)len;
  }
  return 0;
}

static int conv_value_type(conv *c, const Pprofwire__ValueType *v, pprof_value_type *out,
                           const char *what, size_t at) {
  if (!v) {
    out->type = out->unit = 0;
    return 0;
  }
  int r = str_index(c, v->type, &out->type, what, at);
  if (r == 0) r = str_index(c, v->unit, &out->unit, what, at);
  return r;
}

static int conv_header(conv *c) {
  const Pprofwire__Profile *w = c->w;
  pprof_profile *p = c->p;
  int r;
  CHECK_LIMIT(w->n_sample_type, c->lim->max_sample_types, "sample types");
  p->nsample_type = w->n_sample_type;
  p->sample_type = arena_calloc(&p->mem, p->nsample_type, sizeof *p->sample_type);
  if (!p->sample_type) return pp_err_set(c->err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < p->nsample_type; i++)
    if ((r = conv_value_type(c, w->sample_type[i], &p->sample_type[i], "sample type", i)) < 0)
      return r;
  if ((r = conv_value_type(c, w->period_type, &p->period_type, "period type", 0)) < 0) return r;
  if ((r = str_index(c, w->drop_frames, &p->drop_frames, "drop_frames", 0)) < 0) return r;
  if ((r = str_index(c, w->keep_frames, &p->keep_frames, "keep_frames", 0)) < 0) return r;
  if ((r = str_index(c, w->default_sample_type, &p->default_sample_type, "default_sample_type",
                     0)) < 0)
    return r;
  if ((r = str_index(c, w->doc_url, &p->doc_url, "doc_url", 0)) < 0) return r;
  CHECK_LIMIT(w->n_comment, c->lim->max_strings, "comments");
  p->ncomment = w->n_comment;
  p->comment = arena_calloc(&p->mem, p->ncomment, sizeof *p->comment);
  if (!p->comment) return pp_err_set(c->err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < p->ncomment; i++)
    if ((r = str_index(c, w->comment[i], &p->comment[i], "comment", i)) < 0) return r;
  p->time_nanos = w->time_nanos;
  p->duration_nanos = w->duration_nanos;
  p->period = w->period;
  return 0;
}

static int conv_mappings(conv *c) {
  const Pprofwire__Profile *w = c->w;
  pprof_profile *p = c->p;
  int r;
  CHECK_LIMIT(w->n_mapping, c->lim->max_mappings, "mappings");
  if ((r = idmap_build(&c->mappings, "mapping", w->n_mapping, get_mapping_id, w->mapping, c->err)) <
      0)
    return r;
  p->nmapping = w->n_mapping;
  p->mapping = arena_calloc(&p->mem, p->nmapping, sizeof *p->mapping);
  if (!p->mapping) return pp_err_set(c->err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < p->nmapping; i++) {
    const Pprofwire__Mapping *m = w->mapping[i];
    pprof_mapping *o = &p->mapping[i];
    o->id = m->id;
    o->start = m->memory_start;
    o->limit = m->memory_limit;
    o->offset = m->file_offset;
    if ((r = str_index(c, m->filename, &o->filename, "mapping", i)) < 0) return r;
    if ((r = str_index(c, m->build_id, &o->build_id, "mapping", i)) < 0) return r;
    o->has_functions = m->has_functions;
    o->has_filenames = m->has_filenames;
    o->has_line_numbers = m->has_line_numbers;
    o->has_inline_frames = m->has_inline_frames;
  }
  return 0;
}

static int conv_functions(conv *c) {
  const Pprofwire__Profile *w = c->w;
  pprof_profile *p = c->p;
  int r;
  CHECK_LIMIT(w->n_function, c->lim->max_functions, "functions");
  if ((r = idmap_build(&c->functions, "function", w->n_function, get_function_id, w->function,
                       c->err)) < 0)
    return r;
  p->nfunction = w->n_function;
  p->function = arena_calloc(&p->mem, p->nfunction, sizeof *p->function);
  if (!p->function) return pp_err_set(c->err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < p->nfunction; i++) {
    const Pprofwire__Function *f = w->function[i];
    pprof_function *o = &p->function[i];
    o->id = f->id;
    if ((r = str_index(c, f->name, &o->name, "function", i)) < 0) return r;
    if ((r = str_index(c, f->system_name, &o->system_name, "function", i)) < 0) return r;
    if ((r = str_index(c, f->filename, &o->filename, "function", i)) < 0) return r;
    o->start_line = f->start_line;
  }
  return 0;
}

static int conv_locations(conv *c) {
  const Pprofwire__Profile *w = c->w;
  pprof_profile *p = c->p;
  int r;
  CHECK_LIMIT(w->n_location, c->lim->max_locations, "locations");
  if ((r = idmap_build(&c->locations, "location", w->n_location, get_location_id, w->location,
                       c->err)) < 0)
    return r;
  p->nlocation = w->n_location;
  p->location = arena_calloc(&p->mem, p->nlocation, sizeof *p->location);
  if (!p->location) return pp_err_set(c->err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < p->nlocation; i++) {
    const Pprofwire__Location *l = w->location[i];
    pprof_location *o = &p->location[i];
    o->id = l->id;
    o->address = l->address;
    o->is_folded = l->is_folded;
    if (l->mapping_id) {
      o->mapping = idmap_get(&c->mappings, l->mapping_id);
      if (!o->mapping)
        return pp_err_set(c->err, PP_EINVAL, "location %llu refers to missing mapping %llu",
                          (unsigned long long)l->id, (unsigned long long)l->mapping_id);
    }
    CHECK_LIMIT(l->n_line, c->lim->max_stack_depth, "lines in one location");
    o->nline = (uint32_t)l->n_line;
    o->line = arena_alloc(&p->mem, l->n_line * sizeof *o->line);
    if (!o->line) return pp_err_set(c->err, PP_ENOMEM, "out of memory");
    for (size_t j = 0; j < l->n_line; j++) {
      const Pprofwire__Line *ln = l->line[j];
      pprof_line *ol = &o->line[j];
      ol->function = 0;
      if (ln->function_id) {
        ol->function = idmap_get(&c->functions, ln->function_id);
        if (!ol->function)
          return pp_err_set(c->err, PP_EINVAL, "location %llu refers to missing function %llu",
                            (unsigned long long)l->id, (unsigned long long)ln->function_id);
      }
      ol->line = ln->line;
      ol->column = ln->column;
    }
  }
  return 0;
}

static int conv_samples(conv *c) {
  const Pprofwire__Profile *w = c->w;
  pprof_profile *p = c->p;
  int r;
  CHECK_LIMIT(w->n_sample, c->lim->max_samples, "samples");
  p->nsample = w->n_sample;
  p->sample = arena_calloc(&p->mem, p->nsample, sizeof *p->sample);
  if (!p->sample) return pp_err_set(c->err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < p->nsample; i++) {
    const Pprofwire__Sample *s = w->sample[i];
    pprof_sample *o = &p->sample[i];
    if (s->n_value != p->nsample_type)
      return pp_err_set(c->err, PP_EINVAL,
                        "sample %zu has %zu values but the profile has %zu sample types", i,
                        s->n_value, p->nsample_type);
    if (s->n_location_id > c->lim->max_stack_depth)
      return pp_err_set(c->err, PP_ELIMIT, "sample %zu: stack depth %zu exceeds the limit of %zu",
                        i, s->n_location_id, c->lim->max_stack_depth);
    if (s->n_label > c->lim->max_labels)
      return pp_err_set(c->err, PP_ELIMIT, "sample %zu: %zu labels exceed the limit of %zu", i,
                        s->n_label, c->lim->max_labels);
    o->nloc = (uint32_t)s->n_location_id;
    o->loc = arena_alloc(&p->mem, s->n_location_id * sizeof *o->loc);
    o->value = arena_alloc(&p->mem, s->n_value * sizeof *o->value);
    o->nlabel = (uint32_t)s->n_label;
    o->label = arena_alloc(&p->mem, s->n_label * sizeof *o->label);
    if (!o->loc || !o->value || !o->label) return pp_err_set(c->err, PP_ENOMEM, "out of memory");
    for (size_t j = 0; j < s->n_location_id; j++) {
      uint32_t li = idmap_get(&c->locations, s->location_id[j]);
      if (!li)
        return pp_err_set(c->err, PP_EINVAL, "sample %zu refers to missing location %llu", i,
                          (unsigned long long)s->location_id[j]);
      o->loc[j] = li - 1;
    }
    if (s->n_value) memcpy(o->value, s->value, s->n_value * sizeof *o->value);
    for (size_t j = 0; j < s->n_label; j++) {
      const Pprofwire__Label *l = s->label[j];
      pprof_label *ol = &o->label[j];
      if ((r = str_index(c, l->key, &ol->key, "sample label", i)) < 0) return r;
      if ((r = str_index(c, l->str, &ol->str, "sample label", i)) < 0) return r;
      if ((r = str_index(c, l->num_unit, &ol->num_unit, "sample label", i)) < 0) return r;
      ol->num = l->num;
    }
  }
  return 0;
}

int pprof_decode_pbc(const uint8_t *raw, size_t rawlen, const pprof_limits *limits,
                     pprof_profile **ret_profile, pp_err *err) {
  int r;
  if (rawlen == 0) return pp_err_set(err, PP_EINVAL, "empty profile");

  arena_budget ba;
  arena_init(&ba.mem, limits->max_memory);
  ba.exhausted = 0;
  ProtobufCAllocator alloc = {.alloc = arena_budget_alloc, .free = arena_budget_free, .allocator_data = &ba};
  Pprofwire__Profile *w = pprofwire__profile__unpack(&alloc, rawlen, raw);
  if (!w) {
    arena_free(&ba.mem);
    if (ba.exhausted)
      return pp_err_set(err, PP_ELIMIT,
                        "protobuf: decoding needs more than the memory limit of %zu bytes",
                        limits->max_memory);
    return pp_err_set(err, PP_EINVAL, "protobuf: malformed profile message");
  }

  conv c = {.w = w, .lim = limits, .err = err};
  c.p = pprof_alloc(limits->max_memory);
  if (!c.p) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
  } else {
    r = conv_strings(&c);
    if (r == 0) r = conv_header(&c);
    if (r == 0) r = conv_mappings(&c);
    if (r == 0) r = conv_functions(&c);
    if (r == 0) r = conv_locations(&c);
    if (r == 0) r = conv_samples(&c);
    if (r == PP_ENOMEM && c.p->mem.budget && c.p->mem.reserved + (8u << 20) > c.p->mem.budget)
      r = pp_err_set(err, PP_ELIMIT,
                     "decoded profile needs more than the memory limit of %zu bytes",
                     limits->max_memory);
  }
  idmap_free(&c.mappings);
  idmap_free(&c.functions);
  idmap_free(&c.locations);
  arena_free(&ba.mem);
  if (r < 0) {
    pprof_free(c.p);
    return r;
  }
  *ret_profile = c.p;
  return 0;
}
