/* Decoding entry points: limits, gzip, id maps, files. The protobuf parsing itself is in
 * decode_wire.c (the fast hand-written decoder used by pprof_decode) and decode_pbc.c (the
 * protobuf-c reference decoder that tests and fuzzing compare it with); docs/codec.md says
 * why there are two. */
#include <stdlib.h>
#include <string.h>

#include "../base/file.h"
#include "../base/gz.h"
#include "../base/htab.h"
#include "pprof_int.h"

void pprof_limits_default(pprof_limits *l) {
  l->max_decompressed = (size_t)64 << 20;
  l->max_memory = (size_t)1 << 30;
  l->max_strings = (size_t)1 << 20;
  l->max_string_len = (size_t)64 << 10;
  l->max_samples = (size_t)4 << 20;
  l->max_locations = (size_t)1 << 20;
  l->max_functions = (size_t)1 << 20;
  l->max_mappings = (size_t)64 << 10;
  l->max_stack_depth = 4096;
  l->max_labels = 256;
  l->max_sample_types = 64;
}

pprof_profile *pprof_alloc(size_t budget) {
  pprof_profile *p = calloc(1, sizeof *p);
  if (p) arena_init(&p->mem, budget);
  return p;
}

void pprof_free(pprof_profile *p) {
  if (!p) return;
  arena_free(&p->mem);
  free(p);
}

/* ---- gzip ------------------------------------------------------------------------------- */

/* the library's name for base/gz.h's pp_gunzip, which the project calls directly */
int pprof_gunzip(const void *data, size_t len, size_t max_out, uint8_t **ret_buf, size_t *ret_len,
                 pp_err *err) {
  return pp_gunzip(data, len, max_out, ret_buf, ret_len, err);
}

/* ---- id -> index maps --------------------------------------------------------------------- */

int idmap_build(idmap *m, const char *what, size_t n, uint64_t (*get)(const void *, size_t),
                const void *arr, pp_err *err) {
  memset(m, 0, sizeof *m);
  uint64_t max = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t id = get(arr, i);
    if (id == 0)
      return pp_err_set(err, PP_EINVAL, "%s %zu has id 0 (ids must be nonzero)", what, i);
    if (id > max) max = id;
  }
  if (max <= (uint64_t)n * 4 + 1024) {
    m->ndense = (size_t)max + 1;
    m->dense = calloc(m->ndense, sizeof *m->dense);
    if (!m->dense) return pp_err_set(err, PP_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
      uint64_t id = get(arr, i);
      if (m->dense[id])
        return pp_err_set(err, PP_EINVAL, "duplicate %s id %llu", what, (unsigned long long)id);
      m->dense[id] = (uint32_t)(i + 1);
    }
    return 0;
  }
  m->use_sparse = true;
  if (htab_init(&m->sparse, n, 0) < 0) return pp_err_set(err, PP_ENOMEM, "out of memory");
  m->sparse_val = malloc((n ? n : 1) * sizeof *m->sparse_val);
  if (!m->sparse_val) return pp_err_set(err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    uint64_t id = get(arr, i);
    uint32_t idx;
    int r = htab_intern(&m->sparse, &id, sizeof id, &idx);
    if (r < 0) return pp_err_set(err, r, "out of memory");
    if (r == 0)
      return pp_err_set(err, PP_EINVAL, "duplicate %s id %llu", what, (unsigned long long)id);
    m->sparse_val[idx] = (uint32_t)(i + 1);
  }
  return 0;
}

uint32_t idmap_get_sparse(const idmap *m, uint64_t id) {
  int64_t e = htab_find(&m->sparse, &id, sizeof id);
  return e < 0 ? 0 : m->sparse_val[e];
}

void idmap_free(idmap *m) {
  free(m->dense);
  htab_free(&m->sparse);
  free(m->sparse_val);
}

int pprof_decode(const void *data, size_t len, const pprof_limits *limits,
                 pprof_profile **ret_profile, pp_err *err) {
  pprof_limits deflim;
  if (!limits) {
    pprof_limits_default(&deflim);
    limits = &deflim;
  }
  /* The decompressed bytes are working memory too: gunzip stops at what max_memory leaves, and
   * the decoder proper gets the rest (pprof_limits.max_memory). */
  size_t max_out = limits->max_decompressed;
  bool mem_bound = limits->max_memory && limits->max_memory < max_out;
  if (mem_bound) max_out = limits->max_memory;
  uint8_t *raw = NULL;
  size_t rawlen = 0;
  int r = pp_gunzip(data, len, max_out, &raw, &rawlen, err);
  if (r == PP_ELIMIT && mem_bound)
    return pp_err_set(err, PP_ELIMIT,
                      "decoded profile needs more than the memory limit of %zu bytes "
                      "(decompressing)",
                      limits->max_memory);
  if (r < 0) return r;
  if (rawlen == 0) {
    free(raw);
    return pp_err_set(err, PP_EINVAL, "empty profile");
  }
  pprof_limits rest = *limits;
  if (rest.max_memory) {
    if (rawlen >= rest.max_memory) {
      free(raw);
      return pp_err_set(err, PP_ELIMIT,
                        "decoded profile needs more than the memory limit of %zu bytes",
                        limits->max_memory);
    }
    rest.max_memory -= rawlen;
  }
  r = pprof_decode_wire(raw, rawlen, &rest, ret_profile, err);
  if (r == PP_ELIMIT && err && strstr(err->msg, "memory limit"))
    pp_err_set(err, PP_ELIMIT, "decoded profile needs more than the memory limit of %zu bytes",
               limits->max_memory);
  free(raw);
  return r;
}

int pprof_decode_file(const char *path, const pprof_limits *limits, pprof_profile **ret_profile,
                      pp_err *err) {
  pprof_limits deflim;
  if (!limits) {
    pprof_limits_default(&deflim);
    limits = &deflim;
  }
  /* A gzip file is never much larger than its content, so a file past this size would fail
   * the decompressed limit anyway; refusing it up front avoids reading it. */
  size_t max_file = limits->max_decompressed + limits->max_decompressed / 8 + 65536;
  uint8_t *buf;
  size_t size;
  int r = pp_read_file(path, max_file, &buf, &size, err);
  if (r < 0) return r;
  r = pprof_decode(buf, size, limits, ret_profile, err);
  if (r < 0) pp_err_prefix(err, path);
  free(buf);
  return r;
}
