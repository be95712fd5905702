/* store_sym: the v2 record format (issue 13 §1): each segment stores its symbols once, and a
 * profile record holds only its samples, as ids into its segment's symbol table.
 *
 * Two record kinds join PPR1 in a segment file (same 16-byte header, own magic, CRC over
 * meta and data as for every record):
 *   "PPS2" symbol record: meta empty; data = varint raw_len | raw deflate of
 *          prev+1 (the previous symbol record of the segment, 0 = none: a backward chain),
 *          the table's counts before it (strings, mappings, functions, locations), the counts
 *          it adds, then the new strings, mappings, functions and locations, in id order.
 *          String ids, mapping ids (+1, 0 = none) and function ids (+1) inside refer to the
 *          segment's table. String id 0 is always "".
 *   "PPR2" profile record: meta is the JSON of PPR1 ({labels, type, start, end[, rollup]})
 *          plus "sym": the offset of the segment's newest symbol record when the profile
 *          was written (it covers every symbol the profile uses, and maybe more); data =
 *          varint raw_len | raw deflate of the header fields (sample types, period type,
 *          period, time, duration, comments, default sample type, drop/keep frames, doc_url,
 *          all strings as segment string ids), the profile's mappings in order (ids) and the
 *          samples (location ids, values, labels).
 * Loading a segment's table = following the chain from a profile's "sym" down to the first
 * symbol record, checking each record's CRC and that its counts continue the ones before it.
 * A profile whose chain is damaged, missing or past the end of the segment is unreadable
 * (repair drops it like a record that fails its CRC).
 *
 * Writer: the active segment's symbols are interned in hash tables (sym_writer) that start
 * over with each segment; a profile's new symbols become one symbol record written just
 * before its profile record. If either write (or the index row) fails, both are cut off and
 * the tables forget what the profile added (sym__abort). The writer rolls the segment once
 * its tables pass SYM_WRITER_MAX bytes, so its memory is bounded whatever targets send.
 *
 * Readers: loaded tables are immutable and refcounted; the store keeps the recently used ones
 * in a cache bounded by SYM_CACHE_BYTES (any thread; one mutex around the cache only).
 *
 * ---- The internal API for merges on ids (issue 13 §2) ----
 *   sym_read_record(s, row, &rec)   reads one record: a v2 record gives rec.table (a
 *                                   reference to its segment's table) and rec.samples (its
 *                                   samples as segment ids, no profile built); a PPR1 record
 *                                   gives rec.gz (the gzip bytes as scraped) instead.
 *   sym_build_profile(t, samples)   the pprof_profile of decoded samples, holding only the
 *                                   symbols they use, and the profile's mappings in their
 *                                   order (wire ids renumbered 1..n).
 *   sym_table_release(t)            drops a reference.
 * Ids are per segment: two records of one segment share ids (equal location id = equal
 * location, equal string id = equal string); records of different segments do not.
 */
#ifndef COLLECTOR_STORE_SYM_H
#define COLLECTOR_STORE_SYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/arena.h"
#include "../base/htab.h"
#include "../codec/pprof.h"
#include "store_int.h"

/* libdeflate's level for both record kinds: 1 against 6 on the store-bench mix (prometheus,
 * gotarget, net/http profiles): 4% more bytes (1,809 against 1,742 a profile) for about a fifth
 * more profiles a second, the writer being the side that has to keep up */
#define SYM_DEFLATE_LEVEL 1
/* the writer's tables, in bytes, past which the segment rolls */
#define SYM_WRITER_MAX ((size_t)16 << 20)
/* the readers' cache of loaded tables, in bytes */
#define SYM_CACHE_BYTES ((size_t)64 << 20)

/* ---- a loaded segment table (immutable, shared) ---- */
typedef struct sym_table {
  int64_t segment_id;
  uint32_t nstrings, nmappings, nfunctions, nlocations;
  char **strings;           /* NUL-terminated; strings[0] is "" */
  uint32_t *string_len;
  pprof_mapping *mapping;   /* filename, build_id: string ids; id = index + 1 */
  pprof_function *function; /* name, system_name, filename: string ids; id = index + 1 */
  pprof_location *location; /* mapping: mapping id + 1 (0 = none); line[].function: function
                               id + 1 (0 = none); id = index + 1 */
  /* the symbol records loaded, oldest first: where each is and the counts after it (a
   * profile needing record k may use ids below counts[k] only) */
  size_t nchain;
  uint64_t *chain_off;
  uint32_t (*chain_counts)[4];
  size_t bytes; /* memory held, for the cache's bound */
  int refs;     /* atomic */
  arena mem;
} sym_table;

void sym_table_release(sym_table *t);
/* Whether t holds the symbol record at off (a record needing it can be decoded against t). */
bool sym_table_has(const sym_table *t, uint64_t off);

/* ---- a v2 record's samples, as segment ids ---- */
typedef struct sym_samples {
  pprof_value_type *sample_type; /* string ids */
  size_t nsample_type;
  pprof_value_type period_type;
  int64_t period, time_nanos, duration_nanos;
  uint32_t *comment; /* string ids */
  size_t ncomment;
  uint32_t drop_frames, keep_frames, default_sample_type, doc_url; /* string ids */
  uint32_t *mapping; /* the profile's mappings in its order (mapping ids), used by samples or not */
  size_t nmapping;
  pprof_sample *sample; /* loc[]: location ids (index into the table's location[]);
                           label key/str/num_unit: string ids */
  size_t nsample;
  arena mem;
} sym_samples;

typedef struct sym_record {
  bool v2;
  sym_table *table; /* v2: a reference (sym_record_free releases it) */
  sym_samples samples;
  uint8_t *gz; /* PPR1: the record's data, gzip pprof as scraped */
  size_t gz_len;
} sym_record;

/* Reads one indexed record (checked against its CRC; a v2 record's chain and ids too). */
int sym_read_record(store *s, const row_loc *e, sym_record *ret, pp_err *err);
/* The same for many records: a reader keeps the last segment open and its read buffer, so a
 * merge of records of few segments opens each once (system calls are most of a small
 * record's read). One reader per thread; close it when done. */
typedef struct sym_reader {
  int64_t seg;
  int fd; /* -1 = none open */
  uint8_t *buf;
  size_t cap;
} sym_reader;
#define SYM_READER_INIT {0, -1, NULL, 0}
int sym_read_with(store *s, sym_reader *rd, const row_loc *e, sym_record *ret, pp_err *err);
void sym_reader_close(sym_reader *rd);
void sym_record_free(sym_record *r);

/* The profile of samples over t (only the symbols used); the profile's arena is bounded by
 * limits->max_memory (NULL: the defaults), PP_ELIMIT past it. */
int sym_build_profile(const sym_table *t, const sym_samples *smp, const pprof_limits *limits, pprof_profile **ret,
                      pp_err *err);

/* What a record read holds counts against its share of a query's memory (as the decode
 * pipeline counts fetched bytes, pprof.h): a v2 record's decoded samples, a PPR1 record's
 * bytes. *ret_left gets what max_memory (0 = none) leaves for a profile built from it; PP_ELIMIT
 * ("... memory limit of N bytes") when nothing is left. */
int sym_record_share(const sym_record *rec, size_t max_memory, size_t *ret_left, pp_err *err);
/* A PPR1 record's profile, decoded within limits->max_memory (its bytes included). */
int store__decode_v1(const sym_record *rec, const pprof_limits *limits, pprof_profile **ret, pp_err *err);

/* ---- the writer's side (writer thread only) ---- */
typedef struct sym_writer sym_writer;

/* What one profile writes: its symbol record's data (sym_len 0 = it adds no symbols) and its
 * profile record's data; valid until the next sym__encode. */
typedef struct sym_enc {
  const uint8_t *sym;
  size_t sym_len;
  const uint8_t *data;
  size_t len;
} sym_enc;

int sym__writer_new(sym_writer **ret, pp_err *err);
void sym__writer_free(sym_writer *w);
/* A new segment: the tables start over (holding only ""). */
void sym__writer_reset(sym_writer *w);
/* Bytes the tables hold (the store rolls the segment past SYM_WRITER_MAX). */
size_t sym__writer_bytes(const sym_writer *w);
/* The offset of the symbol record a profile written now needs: the new one at `at` when
 * enc->sym_len > 0, else the last one written (-1 = none yet). */
int64_t sym__writer_head(const sym_writer *w, const sym_enc *enc, uint64_t at);
/* Interns p's symbols and encodes the record's data. */
int sym__encode(sym_writer *w, const pprof_profile *p, sym_enc *ret, pp_err *err);
/* The records of the last sym__encode are in the segment (its symbol record at sym_off): its
 * symbols are the segment's now. */
void sym__commit(sym_writer *w, const sym_enc *enc, uint64_t sym_off);
/* They are not: the tables forget what the last sym__encode added. */
void sym__abort(sym_writer *w);

/* ---- readers' cache and repair ---- */
void sym__cache_free(store *s);
/* Loads the table of segment file fd (size limit) up to the symbol record at head. */
int sym__load(int fd, int64_t seg, uint64_t limit, uint64_t head, sym_table **ret, pp_err *err);
/* Decodes a v2 record's data against t, needing the symbol record at sym_off. */
int sym__decode_samples(const sym_table *t, uint64_t sym_off, const uint8_t *data, size_t len, sym_samples *ret,
                        pp_err *err);
/* Repair's check of the chains of one segment file: which symbol records are sound (CRC, and
 * counts that continue the records before them), remembered so each is read once. */
typedef struct sym_check {
  int fd;
  uint64_t limit;         /* the file's size */
  uint64_t *ok, *bad;     /* sorted offsets of sound and of damaged (or spoilt) records */
  uint32_t (*okc)[4];     /* counts after each sound one */
  size_t nok, okcap, okccap, nbad, bcap;
  uint8_t *buf;
  size_t cap;
} sym_check;
/* 1 when the chain from the symbol record at head is sound, 0 when not, -1 on a read error or
 * out of memory. */
int sym__check_head(sym_check *c, uint64_t head);
void sym__check_free(sym_check *c);
/* The "sym" of a v2 record's meta JSON, or -1. */
int64_t sym__meta_head(const uint8_t *meta, size_t len);

#endif
