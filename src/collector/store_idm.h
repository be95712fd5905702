/* store_idm: merges of v2 records on ids (issue 13 §2).
 *
 * Records of one segment share its symbol table (store_sym.h), so merging them needs no
 * strings at all: a sample is its location ids and its labels' string ids, and equal ids are
 * equal symbols. An idm sums the values of each distinct (stack, labels) per segment, in one
 * hash table per segment, and turns each segment's sums into one profile only at the end
 * (sym_build_profile, which copies the symbols the sums use); those few profiles then go through
 * the codec's merger, which dedups symbols by content across segments. So a merge of N records
 * of one segment decodes and interns the symbols once, not N times.
 *
 * Answers equal those of merging the records' profiles one by one with pprof_merger, because
 * summing is associative: the same samples (by content), types, period (largest), time
 * (earliest nonzero), duration (sum, wrapping as the merger's), drop/keep frames and doc URL
 * (the first record's), comments (deduplicated) and default sample type (the first set) —
 * except that when records of different segments carry different comments or default sample
 * types, their order follows the segments' first records rather than each record (Go sets
 * neither).
 *
 * Sample types: the first record added, of either format, fixes the selection's types and
 * period type (idm_check_profile for PPR1 records, which the caller merges itself); a record
 * whose types differ is refused with PP_EMISMATCH, as pprof_merger refuses it, and the caller
 * skips it.
 *
 * Memory: idm_bytes() is what the sums hold (hash tables, values, the segments' tables they
 * keep referenced); idm_add fails with PP_ELIMIT, naming the limit, once they pass the limit it
 * is given: it is checked after a record's sums grew, so the idm may hold one record's growth
 * past it (a record's samples, which its own share bounds). Not thread-safe: one idm per merge.
 */
#ifndef COLLECTOR_STORE_IDM_H
#define COLLECTOR_STORE_IDM_H

#include "store_sym.h"

typedef struct idm idm;

int idm_new(idm **ret, pp_err *err);
void idm_free(idm *m);

/* Sums a v2 record's samples into its segment's sums (rec stays the caller's; the idm keeps a
 * reference to its table). limit: bytes the idm may hold after this (0 = none). */
int idm_add(idm *m, const sym_record *rec, size_t limit, pp_err *err);

/* Checks a decoded (PPR1) record against the selection's types, fixing them if it is the
 * first record: 0, or PP_EMISMATCH. */
int idm_check_profile(idm *m, const pprof_profile *p, pp_err *err);

/* Adds each segment's sums as one profile to mg, in the order the segments were first seen,
 * and empties the idm (its types stay fixed). limits->max_memory (0 = none) bounds each
 * profile built. */
int idm_flush(idm *m, pprof_merger *mg, const pprof_limits *limits, pp_err *err);

/* idm_flush for a merge's end, when mg (empty) gets nothing else and is finished right after:
 * when the sums are of one segment and pprof_merger_finish would give that segment's profile
 * back as it is, *ret = that profile and mg is left empty; else *ret = NULL and the sums went
 * into mg as idm_flush puts them. A segment's profile is already deduplicated by its table, so
 * the merger changes it only for sums that cancelled out to zero, labels out of the merger's
 * order, or mappings the merger folds into one (merger_keeps, store_idm.c). */
int idm_take(idm *m, pprof_merger *mg, const pprof_limits *limits, pprof_profile **ret, pp_err *err);

size_t idm_bytes(const idm *m);

#endif
