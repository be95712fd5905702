/* pprof: decode, encode, merge, diff, scale and aggregate pprof profiles.
 *
 * This is the codec's only public header. A profile is held in a `pprof_profile`: plain arrays
 * that mirror profile.proto, except that every cross reference is an array index instead of a
 * wire id (sample -> location, location -> mapping, line -> function) and every string field is
 * an index into `strings`. Decoding checks every id and index, so code that walks a decoded
 * profile never needs to bounds-check again.
 *
 * Ownership: a profile owns all its memory; pprof_free() releases it. Functions that return a
 * new profile or buffer hand it to the caller (ret_*). Inputs are never modified unless the
 * function says so (pprof_scale).
 * Errors: the pp_err idiom (src/base/pp_err.h): 0 on success, negative PP_E* on failure with
 * a one-line message in *err. No function logs, exits or aborts on bad input.
 * Limits: decoding enforces `pprof_limits`; pprof_limits_default() documents the defaults.
 * Threads: functions are reentrant; a profile may be read from several threads at once.
 */
#ifndef PPROF_H
#define PPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/arena.h"
#include "../base/pp_err.h"

typedef struct pprof_limits {
  size_t max_decompressed; /* bytes of protobuf after gunzip (default 64 MiB) */
  size_t max_memory;       /* working memory of one decode (default 1 GiB; 0 = none): the
                            * decompressed bytes, the decoder's scratch tables and the profile
                            * it builds, all charged before they are allocated; past it the
                            * decode stops with PP_ELIMIT "... memory limit of N bytes" and
                            * frees what it had. The profile returned holds less than this. */
  size_t max_strings;      /* string table entries (default 1 Mi) */
  size_t max_string_len;   /* bytes in one string (default 64 KiB) */
  size_t max_samples;      /* samples (default 4 Mi) */
  size_t max_locations;    /* locations (default 1 Mi) */
  size_t max_functions;    /* functions (default 1 Mi) */
  size_t max_mappings;     /* mappings (default 64 Ki) */
  size_t max_stack_depth;  /* locations in one sample (default 4096) */
  size_t max_labels;       /* labels on one sample (default 256) */
  size_t max_sample_types; /* value types (default 64) */
} pprof_limits;

/* Fills *l with the defaults listed above. */
void pprof_limits_default(pprof_limits *l);

typedef struct pprof_value_type {
  uint32_t type; /* string index, e.g. "cpu", "alloc_space" */
  uint32_t unit; /* string index, e.g. "nanoseconds", "bytes", "count" */
} pprof_value_type;

typedef struct pprof_label {
  uint32_t key;      /* string index */
  uint32_t str;      /* string index; 0 for numeric labels */
  int64_t num;       /* numeric value when str == 0 */
  uint32_t num_unit; /* string index; 0 when unitless */
} pprof_label;

typedef struct pprof_sample {
  uint32_t *loc;      /* location indexes, leaf first */
  int64_t *value;     /* one per sample type */
  pprof_label *label; /* nlabel entries */
  uint32_t nloc;
  uint32_t nlabel;
} pprof_sample;

typedef struct pprof_mapping {
  uint64_t id; /* wire id, unique and nonzero */
  uint64_t start, limit, offset;
  uint32_t filename, build_id; /* string indexes */
  bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
} pprof_mapping;

typedef struct pprof_line {
  uint32_t function; /* function index + 1; 0 = no function */
  int64_t line;
  int64_t column;
} pprof_line;

typedef struct pprof_location {
  uint64_t id; /* wire id, unique and nonzero */
  uint64_t address;
  uint32_t mapping; /* mapping index + 1; 0 = none */
  uint32_t nline;
  pprof_line *line; /* innermost first; the last is the caller the others were inlined into */
  bool is_folded;
} pprof_location;

typedef struct pprof_function {
  uint64_t id;                          /* wire id, unique and nonzero */
  uint32_t name, system_name, filename; /* string indexes */
  int64_t start_line;
} pprof_function;

typedef struct pprof_profile {
  pprof_value_type *sample_type;
  pprof_sample *sample;
  pprof_mapping *mapping;
  pprof_location *location;
  pprof_function *function;
  char **strings;       /* NUL-terminated; strings[0] is "" */
  uint32_t *string_len; /* byte length of each string */
  uint32_t *comment;    /* string indexes */
  size_t nsample_type, nsample, nmapping, nlocation, nfunction, nstrings, ncomment;
  uint32_t drop_frames, keep_frames, default_sample_type, doc_url; /* string indexes */
  int64_t time_nanos, duration_nanos, period;
  pprof_value_type period_type;
  arena mem; /* owns every array above */
} pprof_profile;

/* ---- decode / encode ------------------------------------------------------------------- */

/* Decodes gzip-compressed (detected by its magic bytes) or raw profile.proto bytes. limits may
 * be NULL for the defaults. Errors: PP_EINVAL (corrupt gzip or protobuf, an id or index that
 * points nowhere, a duplicate id, a sample whose value count differs from the sample types),
 * PP_ELIMIT (a pprof_limits cap), PP_ENOMEM. */
int pprof_decode(const void *data, size_t len, const pprof_limits *limits,
                 pprof_profile **ret_profile, pp_err *err);

/* Reads a whole file and decodes it; the file name is part of error messages. */
int pprof_decode_file(const char *path, const pprof_limits *limits, pprof_profile **ret_profile,
                      pp_err *err);

/* Gunzips when data starts with the gzip magic, else copies. The result (malloc'd, owned by the
 * caller) is at most max_out bytes, or the call fails with PP_ELIMIT. The same function as
 * pp_gunzip (base/gz.h, whose contract is the full one), for the library's users. */
int pprof_gunzip(const void *data, size_t len, size_t max_out, uint8_t **ret_buf, size_t *ret_len,
                 pp_err *err);

/* Encodes as gzip-compressed protobuf (level 1..9, or 0 for raw protobuf), the form Go writes
 * and `go tool pprof` reads. The buffer is malloc'd and owned by the caller. Wire ids are
 * renumbered 1..n. */
int pprof_encode(const pprof_profile *p, int level, uint8_t **ret_buf, size_t *ret_len,
                 pp_err *err);

/* Releases a profile; accepts NULL. */
void pprof_free(pprof_profile *p);

/* ---- combining -------------------------------------------------------------------------- */

/* Merges n >= 1 profiles with google/pprof's semantics: sample types and period type must be
 * equal (else PP_EMISMATCH naming both); mappings, functions and locations are deduplicated by
 * content; samples with equal stacks and labels are summed and all-zero samples dropped;
 * time = earliest nonzero start, duration = sum of durations, period = largest, comments
 * deduplicated in order, default sample type = the first one set. */
int pprof_merge(pprof_profile *const *srcs, size_t n, pprof_profile **ret_profile, pp_err *err);

/* Incremental merge, for many profiles or profiles that arrive one at a time: memory is the
 * merged result plus one source, not every source. new -> add (any number) -> finish, which
 * hands over the result and frees the merger; free() abandons one (also after a failed add,
 * which leaves the merger unusable). sign multiplies the source's values: 1, or -1 to subtract
 * it. Same semantics and errors as pprof_merge; a source may be freed as soon as add returns. */
typedef struct pprof_merger pprof_merger;
int pprof_merger_new(pprof_merger **ret_merger, pp_err *err);
int pprof_merger_add(pprof_merger *m, const pprof_profile *src, int64_t sign, pp_err *err);
int pprof_merger_finish(pprof_merger *m, pprof_profile **ret_profile, pp_err *err);
void pprof_merger_free(pprof_merger *m);

/* Memory cap of a merger: bytes (0 = none, the default) for everything the merger holds: its
 * hash tables, its vectors (by capacity), the result's arena (by the chunks it reserves) and
 * the per-source index maps. Every growth is charged before it is allocated, so the merger
 * never holds more than the cap (transient realloc copies aside); an add or finish whose growth
 * would pass it fails with PP_ELIMIT ("merge: the merged profile needs more than its memory
 * limit of N bytes") and leaves the merger unusable, as any failed add. finish copies the
 * result out of the tables, so it needs up to about pprof_merger_bytes() more again. May be
 * changed between adds (a caller sharing one budget between mergers lowers it as others grow). */
void pprof_merger_set_limit(pprof_merger *m, size_t bytes);

/* The bytes the merger holds now, as charged against its limit. */
size_t pprof_merger_bytes(const pprof_merger *m);

/* pprof_merge within a memory limit (pprof_merger_set_limit's bytes; 0 = none). */
int pprof_merge_within(pprof_profile *const *srcs, size_t n, size_t limit, pprof_profile **ret_profile, pp_err *err);

/* Decoding many inputs in parallel: worker threads fetch and decode inputs ahead (at most
 * `window` decoded but not yet consumed), and consume() is called on the calling thread for
 * each input in input order, so merging stays single-threaded and memory stays flat.
 * fetch() returns the bytes of input i (malloc'd; the pipeline frees them) or a negative value
 * with a message in *fetch_err. consume() gets the decoded profile, or NULL and the input's
 * error (fetch or decode) so it can skip or stop; the profile is freed after consume returns,
 * and a negative return stops the pipeline with that error. threads 0 = 2; window 0 =
 * 2 x threads + 2.
 * Memory: at most `window` inputs are alive at once (fetched, decoding, decoded or being
 * consumed), and each is decoded with limits->max_memory covering its fetched bytes too, so
 * the pipeline holds at most window x limits->max_memory besides the caller's consume(); a
 * caller with a budget B for decoding picks window and max_memory with window x max_memory <= B.
 * An input over its share gets PP_ELIMIT in input_err ("... memory limit ..."). */
typedef int (*pprof_fetch_fn)(void *ud, size_t i, uint8_t **ret_buf, size_t *ret_len,
                              pp_err *fetch_err);
typedef int (*pprof_consume_fn)(void *ud, size_t i, const pprof_profile *p, const pp_err *input_err,
                                pp_err *err);
int pprof_decode_pipeline(size_t n, unsigned threads, size_t window, const pprof_limits *limits,
                          pprof_fetch_fn fetch, pprof_consume_fn consume, void *ud, pp_err *err);

/* Multiplies every sample value by factor in place, rounding to nearest (e.g. 1.0/N to average
 * N snapshots, -1 to negate). */
void pprof_scale(pprof_profile *p, double factor);

/* Keeps only the sample types whose bit is set in keep (bit i = sample type i; at most 64
 * types), in place: the sample types and every sample's values shrink to those columns, and
 * the default sample type is cleared when it names a column dropped. Samples whose kept values
 * are all zero stay (go tool pprof shows them as nothing). Returns the number of types kept. */
size_t pprof_keep_types(pprof_profile *p, uint64_t keep);

/* cmp minus base: a profile whose values are comparison - base per stack (negative where
 * something shrank). Same compatibility rules as pprof_merge. */
int pprof_diff(const pprof_profile *base, const pprof_profile *cmp, pprof_profile **ret_profile,
               pp_err *err);

/* ---- reading ---------------------------------------------------------------------------- */

/* Resolves a sample type given as a number ("1"), a type name ("alloc_space") or NULL/"" (the
 * default: default_sample_type if set, else the last type, as go tool pprof does). Returns the
 * index, or PP_EUSAGE naming the available types. */
int pprof_sample_index(const pprof_profile *p, const char *spec, pp_err *err);

/* The string at index i (always valid for indexes stored in a decoded profile). */
static inline const char *pprof_str(const pprof_profile *p, uint32_t i) {
  return p->strings[i];
}

/* Per-function totals as `go tool pprof -top` computes them at its default ("functions")
 * granularity: frames are grouped by function name (nameless frames by binary and start
 * line); flat = value of samples whose leaf frame is the function; cum = value of samples whose
 * stack contains it, counted once per sample however often it recurses; inline frames count as
 * frames; samples whose value is 0 are ignored, and so are functions whose flat and cum are
 * both 0 (only possible in diffs). */
typedef struct pprof_func_stat {
  const char *name; /* display name; points into the profile or the result */
  int64_t flat, cum;
} pprof_func_stat;

typedef struct pprof_top {
  pprof_func_stat *funcs; /* sorted by flat descending, then name (as go tool pprof) */
  size_t nfuncs;
  int64_t total; /* sum of |value| over samples, the denominator of pprof's percents */
  arena mem;
} pprof_top;

int pprof_top_compute(const pprof_profile *p, int sample_index, pprof_top *ret_top, pp_err *err);
void pprof_top_release(pprof_top *t);

/* Call tree for flame graphs: node 0 is the root (total = sum of values, name ""); children
 * are frames called from their parent, root to leaf, merged by function as in pprof_top.
 * self = value of samples ending at the node; total = self + children's totals. */
typedef struct pprof_tree_node {
  const char *name;
  int64_t self, total;
  uint32_t parent;       /* index; the root is its own parent */
  uint32_t first_child;  /* index, 0 = none */
  uint32_t next_sibling; /* index, 0 = none */
  uint32_t depth;        /* root = 0 */
} pprof_tree_node;

typedef struct pprof_tree {
  pprof_tree_node *nodes;
  size_t nnodes;
  arena mem;
  void *priv; /* builder state released by pprof_tree_release */
} pprof_tree;

/* Builds the tree; max_nodes caps its size (0 = 16 Mi), PP_ELIMIT beyond. */
int pprof_tree_compute(const pprof_profile *p, int sample_index, size_t max_nodes,
                       pprof_tree *ret_tree, pp_err *err);
void pprof_tree_release(pprof_tree *t);

/* A call tree over several profiles at once, aligned by call path (function names), for flame
 * graphs and diff flame graphs: node i of input k has self[i*n+k] and total[i*n+k]. Inputs may
 * have different string tables and sample types; sample_index[k] picks each one's column.
 * Node 0 is the root. Same grouping as pprof_tree. max_nodes caps the size (PP_ELIMIT). */
typedef struct pprof_multitree {
  const char **names; /* node -> display name (owned by the tree) */
  uint32_t *parent;   /* node -> parent; the root is its own parent */
  uint32_t *depth;
  int64_t *self, *total; /* nnodes * ninputs each */
  size_t nnodes, ninputs;
  arena mem;
} pprof_multitree;

int pprof_multitree_compute(const pprof_profile *const *ps, const int *sample_index, size_t n,
                            size_t max_nodes, pprof_multitree *ret_tree, pp_err *err);
void pprof_multitree_release(pprof_multitree *t);

/* Sandwich view of one function, the "focus", over several profiles aligned as in
 * pprof_multitree (input 0 the profile, input 1 a base, ...). The function is named by its
 * display name (pprof_tree's names: the function name, or "[binary]"/"<unknown>" for frames
 * without one); frames are grouped as in pprof_top.
 *   flat, cum: the function's values in each input, as pprof_top computes them.
 *   callees: a tree rooted at the function (node 0, named name), its children the functions it
 *     calls, their children theirs, and so on, merged over every place the function occurs.
 *   callers: an inverted tree rooted at the function, its children its callers, their children
 *     the callers' callers, up to the outermost frame.
 *   In both, a run of consecutive frames of the function (direct recursion) is one occurrence,
 *   and every occurrence in a stack adds its path (the frames below it for callees, above it
 *   for callers), but a node takes a sample's value at most once in total and once in self, as
 *   go tool pprof counts each edge once per sample: node 0's total is cum, and the totals of
 *   node 0's children are the weights `go tool pprof -peek` gives the function's out-edges
 *   (callees) and in-edges (callers). self = value of samples whose path ends at the node (the
 *   leaf for callees, the outermost frame for callers; node 0's self in callees is flat). Where
 *   the function calls itself through another one (f > g > f > h), a stack has two paths, so
 *   children's totals may add up to more than their parent's, as pprof's edges do.
 *   lines: the function's values per (file, line) of its frames (the function's file name as
 *     the profile records it, the line's number, 0 when the location has none): flat where the
 *     frame is a sample's leaf, cum once per sample; sorted by input 0's flat descending, then
 *     cum, file, line (as go tool pprof -lines -top); entries 0 in every input are left out.
 * found is false (and the trees hold only node 0) when no sample of any input with a nonzero
 * value has the function. Trees: max_nodes caps each (0 = 4 Mi), PP_ELIMIT beyond. */
typedef struct pprof_focus_line {
  const char *file; /* owned by the result */
  int64_t line;
  int64_t *flat, *cum; /* ninputs each */
} pprof_focus_line;

typedef struct pprof_focus {
  bool found;
  size_t ninputs;
  int64_t *flat, *cum; /* ninputs each */
  pprof_multitree callees, callers;
  pprof_focus_line *lines;
  size_t nlines;
  arena mem; /* flat, cum, lines */
} pprof_focus;

int pprof_focus_compute(const pprof_profile *const *ps, const int *sample_index, size_t n, const char *name,
                        size_t max_nodes, pprof_focus *ret_focus, pp_err *err);
void pprof_focus_release(pprof_focus *f);

/* ---- profile-guided optimisation ---------------------------------------------------------- */

/* A profile trimmed for `go build -pgo`, which reads only call edges (caller function and
 * call-site line -> callee function) and each function's own weight. Options (as Pyroscope's
 * `profilecli query go-pgo` offers them):
 *   keep_locations     each sample keeps its keep_locations leaf-most locations (inlined frames
 *                      stay with their location); 0 = all
 *   aggregate_callees  the leaf location's innermost line (the line inside the function the
 *                      sample stopped in, which the compiler never reads) becomes 0 and its
 *                      address its mapping's start, so samples that differ only there merge
 * Sample labels are dropped (the compiler ignores them and they split samples); equal stacks
 * are then summed as pprof_merge does, every sample type, function (start lines), mapping and
 * the period kept. max_bytes caps the result's memory as pprof_merger_set_limit does (0 =
 * none): PP_ELIMIT past it. PP_ENOMEM when out of memory. */
typedef struct pprof_pgo_opts {
  size_t keep_locations;
  bool aggregate_callees;
} pprof_pgo_opts;

int pprof_pgo_trim(const pprof_profile *p, const pprof_pgo_opts *o, size_t max_bytes,
                   pprof_profile **ret_profile, pp_err *err);

/* ---- sample labels ---------------------------------------------------------------------- */

/* One condition on a sample's string labels (numeric labels are never matched): KEY=VALUE holds
 * when the sample has a string label KEY whose value is VALUE; with negate, KEY!=VALUE holds when
 * it has none. An empty (or NULL) value stands for "no string label KEY": KEY= holds for samples
 * without KEY, KEY!= for samples with it. So a sample without KEY is dropped by KEY=VALUE and
 * kept by KEY!=VALUE, as `go tool pprof -tagfocus` / `-tagignore` treat it. A label whose value
 * is the empty string is stored as no string (str 0) and counts as absent. */
typedef struct pprof_tag_filter {
  const char *key;   /* NUL-terminated */
  const char *value; /* NUL-terminated; "" or NULL = the key absent */
  bool negate;
} pprof_tag_filter;

#define PPROF_MAX_TAG_FILTERS 16

/* Keeps, in place, the samples for which every filter holds (all of f[0..nf), at most
 * PPROF_MAX_TAG_FILTERS; extra ones are ignored, so callers refuse more), in their order, and
 * returns how many are left. Only p->sample and p->nsample change; locations, functions and
 * strings the dropped samples used stay (encode writes them; totals and trees ignore them).
 * nf = 0 keeps everything. Never fails, allocates nothing. */
size_t pprof_filter_tags(pprof_profile *p, const pprof_tag_filter *f, size_t nf);

/* Whether every filter holds for sample s of p (the test pprof_filter_tags applies). */
bool pprof_tags_hold(const pprof_profile *p, const pprof_sample *s, const pprof_tag_filter *f, size_t nf);

/* Reads "KEY=VALUE" or "KEY!=VALUE" (the first '=' splits; "!=" when a '!' precedes it, so a key
 * cannot end in '!' nor hold '=') into *ret, splitting spec in place: ret's strings point into
 * it. PP_EUSAGE ("want KEY=VALUE or KEY!=VALUE") when there is no '=' or the key is empty. */
int pprof_tag_parse(char *spec, pprof_tag_filter *ret, pp_err *err);

/* `go tool pprof -tagroot=KEY` in place: every sample gets one more frame at its root, a
 * function named by the sample's string labels KEY joined by ',' in label order (its file name
 * KEY), or a nameless one (shown "<unknown>", as go shows it) when it has none. One new
 * function and location per distinct name; strings, functions, locations and the samples'
 * location lists are replaced by grown copies in the profile's arena. max_values (0 = none)
 * caps the distinct names: PP_ELIMIT "label KEY has more than N values" beyond, the profile
 * unchanged (so does PP_ENOMEM). */
int pprof_tag_root(pprof_profile *p, const char *key, size_t max_values, pp_err *err);

#endif
