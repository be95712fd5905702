/* The fast decoder: profile.proto bytes -> pprof_profile in one go, without intermediate
 * message structs.
 *
 * Why hand-written: protobuf-c's unpack alone ran at ~185 MB/s on large/gotypes-mem.pb, under
 * the 200 MB/s goal before any validation (docs/codec.md has the numbers). This decoder
 * walks the top-level message four times, each walk touching only the fields it needs and
 * skipping the rest by their length prefix:
 *
 *   1. count   every repeated top-level field, so arrays are allocated once at exact size and
 *              limits are checked before anything is allocated;
 *   2. tables  strings, sample types, mappings, functions and scalar fields; then id maps;
 *   3. locations, resolving mapping and function ids at once;
 *   4. samples, resolving location ids at once.
 *
 * Every submessage with repeated fields is scanned once to count them, then parsed. Repeated
 * scalars are accepted packed or not, as proto3 requires. Unknown fields are skipped; groups
 * (wire types 3 and 4) and wire-type mismatches on known fields are errors, as in protobuf-c.
 * decode_pbc.c is the independent reference this is tested and fuzzed against.
 */
#include <stdlib.h>
#include <string.h>

#include "pprof_int.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct field {
  uint32_t num;
  uint32_t wt;
  uint64_t v;          /* varint / fixed value */
  const uint8_t *data; /* WT_LEN payload */
  size_t len;
} field;

static inline int rd_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
  const uint8_t *p = *pp;
  if (p < end && *p < 0x80) {
    *out = *p;
    *pp = p + 1;
    return 0;
  }
  if (end - p >= 10) {
    /* Unrolled without bounds checks: at least 10 bytes remain, the most a varint takes. */
    uint64_t v = p[0] & 0x7f, b;
    unsigned i = 1;
    do {
      b = p[i];
      v |= (b & 0x7f) << (7 * i);
      i++;
    } while (b >= 0x80 && i < 10);
    if (b >= 0x80) return -1;
    *out = v;
    *pp = p + i;
    return 0;
  }
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    if (p >= end) return -1;
    uint8_t b = *p++;
    v |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 0);
    if (b < 0x80) {
      *out = v;
      *pp = p;
      return 0;
    }
  }
  return -1; /* more than 10 bytes */
}

/* Tags and length prefixes are strict: at most 5 bytes (they are 32-bit values), and a field
 * number in 1..2^29-1, as the protobuf spec says. (google/pprof skips field 0 and huge numbers as
 * unknown; protobuf-c truncates them to 32 bits, which can alias a known field. No encoder writes
 * them: we call them corruption.) */
static int next_field_slow(const uint8_t **p, const uint8_t *end, field *f);

static inline __attribute__((always_inline)) int next_field(const uint8_t **p, const uint8_t *end,
                                                            field *f) {
  /* Fast path: a one-byte tag (fields 1..15) with a varint value or length prefix, which is
   * nearly every field of a profile. */
  const uint8_t *q = *p;
  if (q < end && q[0] < 0x80 && q[0] >= 8) {
    uint32_t wt = q[0] & 7;
    if (wt == WT_VARINT) {
      f->num = q[0] >> 3;
      f->wt = WT_VARINT;
      q++;
      if (rd_varint(&q, end, &f->v) < 0) return -1;
      *p = q;
      return 0;
    }
    if (wt == WT_LEN) {
      uint64_t l;
      f->num = q[0] >> 3;
      f->wt = WT_LEN;
      q++;
      const uint8_t *lp = q;
      if (rd_varint(&q, end, &l) < 0 || q - lp > 5 || l > (uint64_t)(end - q)) return -1;
      f->data = q;
      f->len = (size_t)l;
      *p = q + l;
      return 0;
    }
  }
  return next_field_slow(p, end, f);
}

static int next_field_slow(const uint8_t **p, const uint8_t *end, field *f) {
  uint64_t tag;
  const uint8_t *start = *p;
  if (rd_varint(p, end, &tag) < 0 || *p - start > 5) return -1;
  if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return -1;
  f->num = (uint32_t)(tag >> 3);
  f->wt = (uint32_t)(tag & 7);
  switch (f->wt) {
  case WT_VARINT: return rd_varint(p, end, &f->v);
  case WT_I64:
    if (end - *p < 8) return -1;
    memcpy(&f->v, *p, 8);
    *p += 8;
    return 0;
  case WT_LEN: {
    uint64_t l;
    const uint8_t *lp = *p;
    if (rd_varint(p, end, &l) < 0 || *p - lp > 5 || l > (uint64_t)(end - *p)) return -1;
    f->data = *p;
    f->len = (size_t)l;
    *p += l;
    return 0;
  }
  case WT_I32: {
    uint32_t x;
    if (end - *p < 4) return -1;
    memcpy(&x, *p, 4);
    f->v = x;
    *p += 4;
    return 0;
  }
  default: return -1; /* groups are not part of profile.proto */
  }
}

/* Number of varints in a packed run; -1 if the run ends inside a varint. */
static inline int64_t count_packed(const uint8_t *d, size_t len) {
  if (len && d[len - 1] >= 0x80) return -1;
  int64_t n = 0;
  for (size_t i = 0; i < len; i++)
    n += d[i] < 0x80;
  return n;
}

/* Where one submessage sits in the input, recorded by the tables pass so the location and
 * sample passes need not walk the top-level message again. */
typedef struct span {
  const uint8_t *data;
  size_t len;
} span;

typedef struct dec {
  const uint8_t *base;  /* start of the whole message, for offsets in errors */
  span *locs, *samples; /* filled by pass_tables */
  const pprof_limits *lim;
  pprof_profile *p;
  idmap mappings, functions, locations;
  size_t side; /* scratch outside the profile's arena, charged against max_memory */
  pp_err *err;
} dec;

static int malformed(dec *d, const char *what, const uint8_t *at) {
  return pp_err_set(d->err, PP_EINVAL, "protobuf: malformed %s at byte %zu", what,
                    (size_t)(at - d->base));
}

static int bad_wt(dec *d, const char *msg, const field *f) {
  return pp_err_set(d->err, PP_EINVAL, "protobuf: %s field %u has wire type %u", msg, f->num,
                    f->wt);
}

/* An arena allocation failed: under a budget that is the budget (a refused chunk can be one
 * large array, so how close reserved is to the budget says nothing); callers such as the decode
 * pipeline's tell a limit from a broken input by this code. */
static int nomem(dec *d) {
  if (d->p->mem.budget)
    return pp_err_set(d->err, PP_ELIMIT,
                      "decoded profile needs more than the memory limit of %zu bytes",
                      d->p->mem.budget);
  return pp_err_set(d->err, PP_ENOMEM, "out of memory");
}

/* Charges scratch about to be allocated outside the arena against max_memory, and lowers the
 * arena's budget by as much, so arena + scratch never pass the limit (pprof.h, pprof_limits). */
static int side_charge(dec *d, size_t bytes) {
  size_t max = d->lim->max_memory;
  if (max && (bytes > max || d->side + d->p->mem.reserved > max - bytes))
    return pp_err_set(d->err, PP_ELIMIT,
                      "decoded profile needs more than the memory limit of %zu bytes", max);
  d->side += bytes;
  if (max) d->p->mem.budget = max - d->side;
  return 0;
}

/* What idmap_build may allocate for n ids, whichever form it picks: dense up to (4n + 1025)
 * entries of 4 bytes, or a hash table (slots up to 4n, entries and keys up to 2n) plus values. */
static size_t idmap_bound(size_t n) { return (4 * n + 1025) * 4 + n * (16 + 48 + 16 + 4) + 4096; }

/* A string index: checked against the table size (known from the count pass). */
static inline int str_idx(dec *d, uint64_t v, uint32_t *out, const char *what, size_t at) {
  if (v >= d->p->nstrings)
    return pp_err_set(d->err, PP_EINVAL, "%s %zu: string index %lld outside the table of %zu", what,
                      at, (long long)v, d->p->nstrings);
  *out = (uint32_t)v;
  return 0;
}

#define LIMIT(n, max, what)                                                                        \
  do {                                                                                             \
    if ((uint64_t)(n) > (uint64_t)(max))                                                           \
      return pp_err_set(d->err, PP_ELIMIT, "%llu %s exceed the limit of %zu",                      \
                        (unsigned long long)(n), what, (size_t)(max));                             \
  } while (0)

/* ---- small messages ------------------------------------------------------------------------ */

/* Scalar fields may repeat; the last occurrence wins (protobuf), so string indexes are
 * collected as read and checked once the message is complete. */
static int parse_value_type(dec *d, const uint8_t *p, const uint8_t *end, uint64_t *type,
                            uint64_t *unit) {
  field f;
  while (p < end) {
    const uint8_t *here = p;
    if (next_field(&p, end, &f) < 0) return malformed(d, "value type field", here);
    if (f.num > 2) continue;
    if (f.wt != WT_VARINT) return bad_wt(d, "value type", &f);
    if (f.num == 1)
      *type = f.v;
    else
      *unit = f.v;
  }
  return 0;
}

static int parse_mapping(dec *d, const uint8_t *p, const uint8_t *end, pprof_mapping *m,
                         size_t at) {
  field f;
  int r;
  uint64_t filename = 0, build_id = 0;
  while (p < end) {
    const uint8_t *here = p;
    if (next_field(&p, end, &f) < 0) return malformed(d, "mapping field", here);
    if (f.num > 10) continue;
    if (f.wt != WT_VARINT) return bad_wt(d, "mapping", &f);
    switch (f.num) {
    case 1: m->id = f.v; break;
    case 2: m->start = f.v; break;
    case 3: m->limit = f.v; break;
    case 4: m->offset = f.v; break;
    case 5: filename = f.v; break;
    case 6: build_id = f.v; break;
    case 7: m->has_functions = f.v != 0; break;
    case 8: m->has_filenames = f.v != 0; break;
    case 9: m->has_line_numbers = f.v != 0; break;
    case 10: m->has_inline_frames = f.v != 0; break;
    }
  }
  if ((r = str_idx(d, filename, &m->filename, "mapping", at)) < 0) return r;
  return str_idx(d, build_id, &m->build_id, "mapping", at);
}

static int parse_function(dec *d, const uint8_t *p, const uint8_t *end, pprof_function *fn,
                          size_t at) {
  field f;
  int r;
  uint64_t name = 0, system_name = 0, filename = 0;
  while (p < end) {
    const uint8_t *here = p;
    if (next_field(&p, end, &f) < 0) return malformed(d, "function field", here);
    if (f.num > 5) continue;
    if (f.wt != WT_VARINT) return bad_wt(d, "function", &f);
    switch (f.num) {
    case 1: fn->id = f.v; break;
    case 2: name = f.v; break;
    case 3: system_name = f.v; break;
    case 4: filename = f.v; break;
    case 5: fn->start_line = (int64_t)f.v; break;
    }
  }
  if ((r = str_idx(d, name, &fn->name, "function", at)) < 0) return r;
  if ((r = str_idx(d, system_name, &fn->system_name, "function", at)) < 0) return r;
  return str_idx(d, filename, &fn->filename, "function", at);
}

static int parse_line(dec *d, const uint8_t *p, const uint8_t *end, pprof_line *ln,
                      uint64_t loc_id) {
  field f;
  uint64_t function_id = 0;
  while (p < end) {
    const uint8_t *here = p;
    if (next_field(&p, end, &f) < 0) return malformed(d, "line field", here);
    if (f.num > 3) continue;
    if (f.wt != WT_VARINT) return bad_wt(d, "line", &f);
    if (f.num == 1)
      function_id = f.v;
    else if (f.num == 2)
      ln->line = (int64_t)f.v;
    else
      ln->column = (int64_t)f.v;
  }
  ln->function = 0;
  if (function_id) {
    ln->function = idmap_get(&d->functions, function_id);
    if (!ln->function)
      return pp_err_set(d->err, PP_EINVAL, "location %llu refers to missing function %llu",
                        (unsigned long long)loc_id, (unsigned long long)function_id);
  }
  return 0;
}

static int parse_location(dec *d, const uint8_t *p, const uint8_t *end, pprof_location *l) {
  field f;
  const uint8_t *start = p;
  size_t nline = 0;
  uint64_t mapping_id = 0;
  /* scan: the id (for messages), the mapping, and how many lines */
  while (p < end) {
    const uint8_t *here = p;
    if (next_field(&p, end, &f) < 0) return malformed(d, "location field", here);
    if (f.num > 5) continue;
    if ((f.num == 4) != (f.wt == WT_LEN) || (f.num != 4 && f.wt != WT_VARINT))
      return bad_wt(d, "location", &f);
    switch (f.num) {
    case 1: l->id = f.v; break;
    case 2: mapping_id = f.v; break;
    case 3: l->address = f.v; break;
    case 4: nline++; break;
    case 5: l->is_folded = f.v != 0; break;
    }
  }
  LIMIT(nline, d->lim->max_stack_depth, "lines in one location");
  if (mapping_id) {
    l->mapping = idmap_get(&d->mappings, mapping_id);
    if (!l->mapping)
      return pp_err_set(d->err, PP_EINVAL, "location %llu refers to missing mapping %llu",
                        (unsigned long long)l->id, (unsigned long long)mapping_id);
  }
  l->nline = (uint32_t)nline;
  l->line = arena_calloc(&d->p->mem, nline, sizeof *l->line);
  if (!l->line) return nomem(d);
  if (!nline) return 0;
  size_t k = 0;
  for (p = start; p < end;) {
    next_field(&p, end, &f); /* already validated by the scan */
    if (f.num != 4) continue;
    int r = parse_line(d, f.data, f.data + f.len, &l->line[k++], l->id);
    if (r < 0) return r;
  }
  return 0;
}

/* Appends the varints of a packed or unpacked repeated field to out[*n]; -1 on a varint longer
 * than 10 bytes (count_packed counted it as one). */
static inline int take_repeated(const field *f, uint64_t *out, size_t *n) {
  if (f->wt == WT_VARINT) {
    out[(*n)++] = f->v;
    return 0;
  }
  const uint8_t *q = f->data, *e = f->data + f->len;
  while (q < e)
    if (rd_varint(&q, e, &out[(*n)++]) < 0) return -1;
  return 0;
}

static int parse_sample(dec *d, const uint8_t *p, const uint8_t *end, pprof_sample *s, size_t at,
                        uint64_t *scratch) {
  field f;
  const uint8_t *start = p;
  uint64_t nloc = 0, nval = 0, nlab = 0;
  while (p < end) {
    const uint8_t *here = p;
    if (next_field(&p, end, &f) < 0) return malformed(d, "sample field", here);
    if (f.num > 3) continue;
    if (f.num == 3) {
      if (f.wt != WT_LEN) return bad_wt(d, "sample", &f);
      nlab++;
      continue;
    }
    int64_t c = 1;
    if (f.wt == WT_LEN)
      c = count_packed(f.data, f.len);
    else if (f.wt != WT_VARINT)
      return bad_wt(d, "sample", &f);
    if (c < 0) return malformed(d, "packed field in sample", here);
    if (f.num == 1)
      nloc += (uint64_t)c;
    else
      nval += (uint64_t)c;
  }
  if (nloc > d->lim->max_stack_depth)
    return pp_err_set(d->err, PP_ELIMIT, "sample %zu: stack depth %llu exceeds the limit of %zu",
                      at, (unsigned long long)nloc, d->lim->max_stack_depth);
  if (nlab > d->lim->max_labels)
    return pp_err_set(d->err, PP_ELIMIT, "sample %zu: %llu labels exceed the limit of %zu", at,
                      (unsigned long long)nlab, d->lim->max_labels);
  if (nval != d->p->nsample_type)
    return pp_err_set(d->err, PP_EINVAL,
                      "sample %zu has %llu values but the profile has %zu sample types", at,
                      (unsigned long long)nval, d->p->nsample_type);
  s->nloc = (uint32_t)nloc;
  s->nlabel = (uint32_t)nlab;
  s->loc = arena_alloc(&d->p->mem, nloc * sizeof *s->loc);
  s->value = arena_alloc(&d->p->mem, nval * sizeof *s->value);
  s->label = arena_calloc(&d->p->mem, nlab, sizeof *s->label);
  if (!s->loc || !s->value || !s->label) return nomem(d);
  size_t kl = 0, kv = 0, kb = 0;
  for (p = start; p < end;) {
    next_field(&p, end, &f);
    if (f.num == 1) {
      size_t from = 0;
      if (take_repeated(&f, scratch, &from) < 0) return malformed(d, "varint in sample", f.data);
      for (size_t i = 0; i < from; i++) {
        uint32_t li = idmap_get(&d->locations, scratch[i]);
        if (!li)
          return pp_err_set(d->err, PP_EINVAL, "sample %zu refers to missing location %llu", at,
                            (unsigned long long)scratch[i]);
        s->loc[kl++] = li - 1;
      }
    } else if (f.num == 2) {
      size_t from = 0;
      if (take_repeated(&f, scratch, &from) < 0) return malformed(d, "varint in sample", f.data);
      for (size_t i = 0; i < from; i++)
        s->value[kv++] = (int64_t)scratch[i];
    } else if (f.num == 3) {
      pprof_label *lb = &s->label[kb++];
      const uint8_t *q = f.data, *e = f.data + f.len;
      field g;
      int r;
      uint64_t key = 0, str = 0, unit = 0;
      while (q < e) {
        const uint8_t *here = q;
        if (next_field(&q, e, &g) < 0) return malformed(d, "label field", here);
        if (g.num > 4) continue;
        if (g.wt != WT_VARINT) return bad_wt(d, "label", &g);
        switch (g.num) {
        case 1: key = g.v; break;
        case 2: str = g.v; break;
        case 3: lb->num = (int64_t)g.v; break;
        case 4: unit = g.v; break;
        }
      }
      if ((r = str_idx(d, key, &lb->key, "sample label", at)) < 0 ||
          (r = str_idx(d, str, &lb->str, "sample label", at)) < 0 ||
          (r = str_idx(d, unit, &lb->num_unit, "sample label", at)) < 0)
        return r;
    }
  }
  return 0;
}

/* ---- the profile ---------------------------------------------------------------------------- */

typedef struct counts {
  uint64_t sample_type, sample, mapping, location, function, string, comment;
  uint64_t max_packed; /* largest packed run inside a sample, sizes the scratch buffer */
} counts;

static int pass_count(dec *d, const uint8_t *raw, const uint8_t *end, counts *c) {
  field f;
  memset(c, 0, sizeof *c);
  for (const uint8_t *p = raw; p < end;) {
    const uint8_t *here = p;
    if (next_field(&p, end, &f) < 0) return malformed(d, "profile field", here);
    bool is_msg = f.num <= 6 || f.num == 11;
    if (f.num > 15) continue;
    if (is_msg && f.wt != WT_LEN) return bad_wt(d, "profile", &f);
    if (!is_msg && f.num != 13 && f.wt != WT_VARINT) return bad_wt(d, "profile", &f);
    switch (f.num) {
    case 1: c->sample_type++; break;
    case 2:
      c->sample++;
      /* a sample's packed runs are at most its length in varints */
      if (f.len > c->max_packed) c->max_packed = f.len;
      break;
    case 3: c->mapping++; break;
    case 4: c->location++; break;
    case 5: c->function++; break;
    case 6: c->string++; break;
    case 13: {
      int64_t n = 1;
      if (f.wt == WT_LEN)
        n = count_packed(f.data, f.len);
      else if (f.wt != WT_VARINT)
        return bad_wt(d, "profile", &f);
      if (n < 0) return malformed(d, "packed comments", here);
      c->comment += (uint64_t)n;
      break;
    }
    }
  }
  LIMIT(c->sample_type, d->lim->max_sample_types, "sample types");
  LIMIT(c->sample, d->lim->max_samples, "samples");
  LIMIT(c->mapping, d->lim->max_mappings, "mappings");
  LIMIT(c->location, d->lim->max_locations, "locations");
  LIMIT(c->function, d->lim->max_functions, "functions");
  LIMIT(c->string, d->lim->max_strings, "strings");
  LIMIT(c->comment, d->lim->max_strings, "comments");
  if (c->string == 0)
    return pp_err_set(d->err, PP_EINVAL, "string table must start with the empty string");
  return 0;
}

static int pass_tables(dec *d, const uint8_t *raw, const uint8_t *end) {
  pprof_profile *p = d->p;
  field f;
  int r;
  size_t ks = 0, kt = 0, km = 0, kf = 0, kc = 0, kl = 0, kx = 0;
  uint64_t drop = 0, keep = 0, dst = 0, doc = 0, pt_type = 0, pt_unit = 0;
  for (const uint8_t *q = raw; q < end;) {
    next_field(&q, end, &f); /* validated by pass_count */
    switch (f.num) {
    case 2: d->samples[kx++] = (span){f.data, f.len}; break;
    case 4: d->locs[kl++] = (span){f.data, f.len}; break;
    case 1: {
      uint64_t type = 0, unit = 0;
      if ((r = parse_value_type(d, f.data, f.data + f.len, &type, &unit)) < 0 ||
          (r = str_idx(d, type, &p->sample_type[kt].type, "sample type", kt)) < 0 ||
          (r = str_idx(d, unit, &p->sample_type[kt].unit, "sample type", kt)) < 0)
        return r;
      kt++;
      break;
    }
    case 3:
      if ((r = parse_mapping(d, f.data, f.data + f.len, &p->mapping[km], km)) < 0) return r;
      km++;
      break;
    case 5:
      if ((r = parse_function(d, f.data, f.data + f.len, &p->function[kf], kf)) < 0) return r;
      kf++;
      break;
    case 6: {
      if (f.len > d->lim->max_string_len)
        return pp_err_set(d->err, PP_ELIMIT, "string %zu is %zu bytes, over the limit of %zu", ks,
                          f.len, d->lim->max_string_len);
      p->strings[ks] = arena_strndup(&p->mem, (const char *)f.data, f.len);
      if (!p->strings[ks]) return nomem(d);
      /* the C view stops at an embedded NUL; lengths follow it so both views agree */
      p->string_len[ks] = (uint32_t)strlen(p->strings[ks]);
      if (ks == 0 && p->string_len[0] != 0)
        return pp_err_set(d->err, PP_EINVAL, "string table must start with the empty string");
      ks++;
      break;
    }
    case 7: drop = f.v; break;
    case 8: keep = f.v; break;
    case 9: p->time_nanos = (int64_t)f.v; break;
    case 10: p->duration_nanos = (int64_t)f.v; break;
    case 11: /* a repeated occurrence replaces the earlier one, as google/pprof and protobuf-c do */
      pt_type = pt_unit = 0;
      if ((r = parse_value_type(d, f.data, f.data + f.len, &pt_type, &pt_unit)) < 0) return r;
      break;
    case 12: p->period = (int64_t)f.v; break;
    case 13:
      if (f.wt == WT_VARINT) {
        if ((r = str_idx(d, f.v, &p->comment[kc], "comment", kc)) < 0) return r;
        kc++;
        break;
      }
      for (const uint8_t *a = f.data, *e = f.data + f.len; a < e;) { /* packed; may be empty */
        uint64_t v;
        if (rd_varint(&a, e, &v) < 0) return malformed(d, "varint in comments", f.data);
        if ((r = str_idx(d, v, &p->comment[kc], "comment", kc)) < 0) return r;
        kc++;
      }
      break;
    case 14: dst = f.v; break;
    case 15: doc = f.v; break;
    }
  }
  p->ncomment = kc;
  if ((r = str_idx(d, drop, &p->drop_frames, "drop_frames", 0)) < 0 ||
      (r = str_idx(d, keep, &p->keep_frames, "keep_frames", 0)) < 0 ||
      (r = str_idx(d, dst, &p->default_sample_type, "default_sample_type", 0)) < 0 ||
      (r = str_idx(d, doc, &p->doc_url, "doc_url", 0)) < 0 ||
      (r = str_idx(d, pt_type, &p->period_type.type, "period type", 0)) < 0 ||
      (r = str_idx(d, pt_unit, &p->period_type.unit, "period type", 0)) < 0)
    return r;
  return 0;
}

static uint64_t mapping_id_at(const void *a, size_t i) {
  return ((const pprof_mapping *)a)[i].id;
}
static uint64_t function_id_at(const void *a, size_t i) {
  return ((const pprof_function *)a)[i].id;
}
static uint64_t location_id_at(const void *a, size_t i) {
  return ((const pprof_location *)a)[i].id;
}

int pprof_decode_wire(const uint8_t *raw, size_t len, const pprof_limits *limits,
                      pprof_profile **ret_profile, pp_err *err) {
  if (len == 0) return pp_err_set(err, PP_EINVAL, "empty profile");
  const uint8_t *end = raw + len;
  dec d = {.base = raw, .lim = limits, .err = err};
  counts c;
  int r = pass_count(&d, raw, end, &c);
  if (r < 0) return r;
  pprof_profile *p = d.p = pprof_alloc(limits->max_memory);
  uint64_t *scratch = NULL;
  if (!p) return pp_err_set(err, PP_ENOMEM, "out of memory");
  if ((r = side_charge(&d, (c.location + c.sample + 2) * sizeof *d.locs)) < 0) goto out;
  p->nsample_type = c.sample_type;
  p->nsample = c.sample;
  p->nmapping = c.mapping;
  p->nlocation = c.location;
  p->nfunction = c.function;
  p->nstrings = c.string;
  p->sample_type = arena_calloc(&p->mem, c.sample_type, sizeof *p->sample_type);
  p->sample = arena_calloc(&p->mem, c.sample, sizeof *p->sample);
  p->mapping = arena_calloc(&p->mem, c.mapping, sizeof *p->mapping);
  p->location = arena_calloc(&p->mem, c.location, sizeof *p->location);
  p->function = arena_calloc(&p->mem, c.function, sizeof *p->function);
  p->strings = arena_alloc(&p->mem, c.string * sizeof *p->strings);
  p->string_len = arena_alloc(&p->mem, c.string * sizeof *p->string_len);
  p->comment = arena_calloc(&p->mem, c.comment, sizeof *p->comment);
  d.locs = malloc((c.location + 1) * sizeof *d.locs);
  d.samples = malloc((c.sample + 1) * sizeof *d.samples);
  if (!d.locs || !d.samples || !p->sample_type || !p->sample || !p->mapping || !p->location ||
      !p->function || !p->strings || !p->string_len || !p->comment) {
    r = nomem(&d);
    goto out;
  }
  if ((r = pass_tables(&d, raw, end)) < 0) goto out;
  if ((r = side_charge(&d, idmap_bound(p->nmapping) + idmap_bound(p->nfunction))) < 0) goto out;
  if ((r = idmap_build(&d.mappings, "mapping", p->nmapping, mapping_id_at, p->mapping, err)) < 0 ||
      (r = idmap_build(&d.functions, "function", p->nfunction, function_id_at, p->function, err)) <
          0)
    goto out;

  for (size_t k = 0; k < p->nlocation; k++)
    if ((r = parse_location(&d, d.locs[k].data, d.locs[k].data + d.locs[k].len, &p->location[k])) <
        0)
      goto out;
  if ((r = side_charge(&d, idmap_bound(p->nlocation))) < 0) goto out;
  if ((r = idmap_build(&d.locations, "location", p->nlocation, location_id_at, p->location, err)) <
      0)
    goto out;

  if ((r = side_charge(&d, (c.max_packed + 1) * sizeof *scratch)) < 0) goto out;
  scratch = malloc((c.max_packed + 1) * sizeof *scratch);
  if (!scratch) {
    r = nomem(&d);
    goto out;
  }
  for (size_t k = 0; k < p->nsample; k++)
    if ((r = parse_sample(&d, d.samples[k].data, d.samples[k].data + d.samples[k].len,
                          &p->sample[k], k, scratch)) < 0)
      goto out;
  r = 0;
out:
  free(scratch);
  free(d.locs);
  free(d.samples);
  idmap_free(&d.mappings);
  idmap_free(&d.functions);
  idmap_free(&d.locations);
  if (r < 0) {
    pprof_free(p);
    return r;
  }
  p->mem.budget = limits->max_memory; /* the scratch is gone; the profile keeps the whole limit */
  *ret_profile = p;
  return 0;
}
