/* Private helpers shared by the codec's .c files. Not part of the public contract. */
#ifndef PPROF_INT_H
#define PPROF_INT_H

#include "../base/htab.h"
#include "pprof.h"

/* Allocates an empty profile with its arena (budget 0 = unlimited). NULL on ENOMEM. */
pprof_profile *pprof_alloc(size_t budget);

/* Sample value count of every sample equals nsample_type; used by merge/diff. */
int pprof_compatible(const pprof_profile *a, const pprof_profile *b, pp_err *err);

/* Wire ids -> array index + 1. Ids are usually 1..n and get a dense array; anything else a
 * hash table. idmap_build fails (PP_EINVAL) on a zero or duplicate id, naming `what`. */
typedef struct idmap {
  uint32_t *dense; /* id -> index + 1, when ids are small */
  size_t ndense;
  htab sparse;          /* 8-byte id -> entry of sparse_val */
  uint32_t *sparse_val; /* index + 1 */
  bool use_sparse;
} idmap;

int idmap_build(idmap *m, const char *what, size_t n, uint64_t (*get)(const void *, size_t),
                const void *arr, pp_err *err);
uint32_t idmap_get_sparse(const idmap *m, uint64_t id);
void idmap_free(idmap *m);

/* Index + 1 of the entry with this id, or 0 if there is none. */
static inline uint32_t idmap_get(const idmap *m, uint64_t id) {
  if (!m->use_sparse) return id < m->ndense ? m->dense[id] : 0;
  return idmap_get_sparse(m, id);
}

/* The two protobuf readers of raw (already gunzipped) bytes; same contract as pprof_decode.
 * pprof_decode uses the wire one; the protobuf-c one is the reference for tests. */
int pprof_decode_wire(const uint8_t *raw, size_t len, const pprof_limits *limits,
                      pprof_profile **ret_profile, pp_err *err);
int pprof_decode_pbc(const uint8_t *raw, size_t len, const pprof_limits *limits,
                     pprof_profile **ret_profile, pp_err *err);

#endif
