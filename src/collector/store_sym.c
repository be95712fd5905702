/* The v2 record format: symbols once per segment, profiles as ids (store_sym.h). */
#include "store_sym.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* a symbol record's or a profile record's bytes before compression */
#define MAX_RAW ((size_t)256 << 20)

/* ---- the writer's byte buffers and varints ----------------------------------------------------
 * Not base/buf.h: the writer puts tens of thousands of varints a second, and a call with its
 * checks per varint was a tenth of the ingest's time. Same contract for what matters here: a
 * cap (max), and a sticky failure checked once at the end. */
typedef struct vbuf {
  uint8_t *p;
  size_t len, cap, max;
  bool failed, over;
} vbuf;

/* Room for n more bytes (false, and failed, when not). */
static bool vb_room(vbuf *b, size_t n) {
  if (b->cap - b->len >= n) return !b->failed;
  if (b->failed) return false;
  if (b->max && b->len + n > b->max) {
    b->failed = b->over = true;
    return false;
  }
  size_t cap = b->cap ? b->cap * 2 : 4096;
  while (cap - b->len < n) cap *= 2;
  uint8_t *np = realloc(b->p, cap);
  if (!np) {
    b->failed = true;
    return false;
  }
  b->p = np;
  b->cap = cap;
  return true;
}

static void vb_put(vbuf *b, const void *d, size_t n) {
  if (!vb_room(b, n)) return;
  memcpy(b->p + b->len, d, n);
  b->len += n;
}

static inline void put_u(vbuf *b, uint64_t v) {
  if (b->cap - b->len < 10 && !vb_room(b, 10)) return;
  uint8_t *q = b->p + b->len;
  while (v >= 0x80) {
    *q++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *q++ = (uint8_t)v;
  b->len = (size_t)(q - b->p);
}

static inline void put_s(vbuf *b, int64_t v) {
  put_u(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* A reader over bytes that turns every overrun into a sticky failure. */
typedef struct rd {
  const uint8_t *p, *end;
  bool bad;
} rd;

static uint64_t get_u(rd *r) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) break;
    uint8_t c = *r->p++;
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return v;
  }
  r->bad = true;
  return 0;
}

static int64_t get_s(rd *r) {
  uint64_t u = get_u(r);
  return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* an id below n, else the reader fails */
static uint32_t get_id(rd *r, uint32_t n) {
  uint64_t v = get_u(r);
  if (v >= n) {
    r->bad = true;
    return 0;
  }
  return (uint32_t)v;
}

/* ---- deflate -------------------------------------------------------------------------------- */

/* varint raw_len | raw deflate of raw, into out (cleared first). */
static bool pack(struct libdeflate_compressor *c, const vbuf *raw, vbuf *out) {
  out->len = 0;
  out->failed = out->over = false;
  put_u(out, raw->len);
  size_t bound = libdeflate_deflate_compress_bound(c, raw->len);
  size_t at = out->len;
  if (!vb_room(out, bound)) return false;
  size_t n = libdeflate_deflate_compress(c, raw->p ? raw->p : (const uint8_t *)"", raw->len, out->p + at, bound);
  if (n == 0 && raw->len > 0) return false;
  out->len = at + n;
  return true;
}

/* Inflates packed bytes: *ret malloc'd (plus a NUL), *ret_len its length; false when damaged. */
static bool unpack(const uint8_t *data, size_t len, uint8_t **ret, size_t *ret_len) {
  rd r = {data, data + len, false};
  uint64_t raw = get_u(&r);
  if (r.bad || raw > MAX_RAW) return false;
  uint8_t *out = malloc((size_t)raw + 1);
  struct libdeflate_decompressor *d = out ? libdeflate_alloc_decompressor() : NULL;
  size_t got = 0;
  bool ok = d && libdeflate_deflate_decompress(d, r.p, (size_t)(r.end - r.p), out, (size_t)raw, &got) ==
                     LIBDEFLATE_SUCCESS && got == raw;
  if (d) libdeflate_free_decompressor(d);
  if (!ok) {
    free(out);
    return false;
  }
  *ret = out;
  *ret_len = (size_t)raw;
  return true;
}

/* ---- the writer ----------------------------------------------------------------------------- */

/* Keys of the intern tables (segment ids inside, so equal keys are equal symbols):
 *   mapping:  start, limit, offset u64; filename, build_id u32; flags u8
 *   function: name, system_name, filename u32; start_line i64
 *   location: address u64; mapping id + 1 u32; folded u8; then per line function id + 1 u32,
 *             line i64, column i64 */
enum { T_STR, T_MAP, T_FN, T_LOC, T_N };

/* loc_cache: a direct-mapped cache of the segment's locations by loc_slot_of's hash, so a
 * location seen before costs one hash and one check (loc_is) instead of interning its
 * functions and strings. Fixed size (LOC_CACHE_SLOTS x 8 bytes = 128 KiB a writer, small enough to stay in cache: at
 * 512 KiB, half of the encoder's own time went to the slot's load missing it), whatever
 * the segment holds: a slot taken by another location is a miss, interned the slow way. Only
 * ever a hint: every hit is checked field by field against the segment's table, so a stale or
 * colliding slot costs time, never a wrong id. Emptied with the tables (sym__writer_reset). */
#define LOC_CACHE_SLOTS ((size_t)1 << 14)
/* locations with more lines (inlined frames) than this are interned without the cache */
#define LOC_CACHE_LINES 8
typedef struct loc_slot {
  uint32_t hash; /* the hash's high half (the low bits chose the slot) */
  uint32_t id1;  /* segment location id + 1, 0 = empty */
} loc_slot;

struct sym_writer {
  htab t[T_N];
  bool unlisted; /* encode_samples met a string intern_profile did not intern */
  loc_slot *lcache; /* LOC_CACHE_SLOTS */
  uint32_t base[T_N]; /* counts already in the segment's symbol records */
  int64_t last_sym;   /* offset of the newest symbol record, -1 = none */
  struct libdeflate_compressor *cz;
  vbuf raw, sym, data, key;
  uint32_t *map[T_N]; /* a profile's index -> segment id, reused between profiles */
  size_t mapcap[T_N];
};

int sym__writer_new(sym_writer **ret, pp_err *err) {
  sym_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->lcache = calloc(LOC_CACHE_SLOTS, sizeof *w->lcache)) ||
      !(w->cz = libdeflate_alloc_compressor(SYM_DEFLATE_LEVEL))) {
    if (w) free(w->lcache);
    free(w);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  w->raw.max = MAX_RAW;
  w->sym.max = MAX_DATA;
  w->data.max = MAX_DATA;
  w->last_sym = -1;
  *ret = w;
  sym__writer_reset(w);
  return 0;
}

void sym__writer_free(sym_writer *w) {
  if (!w) return;
  for (int i = 0; i < T_N; i++) {
    htab_free(&w->t[i]);
    free(w->map[i]);
  }
  libdeflate_free_compressor(w->cz);
  free(w->lcache);
  free(w->raw.p);
  free(w->sym.p);
  free(w->data.p);
  free(w->key.p);
  free(w);
}

void sym__writer_reset(sym_writer *w) {
  for (int i = 0; i < T_N; i++) {
    htab_free(&w->t[i]);
    /* a failed init leaves a zeroed table, which htab_intern grows on first use */
    if (htab_init(&w->t[i], 1024, 0) < 0) memset(&w->t[i], 0, sizeof w->t[i]);
    w->base[i] = 0;
  }
  w->last_sym = -1;
  memset(w->lcache, 0, LOC_CACHE_SLOTS * sizeof *w->lcache);
  uint32_t id;
  htab_intern(&w->t[T_STR], "", 0, &id); /* string id 0 is "" in every segment */
}

size_t sym__writer_bytes(const sym_writer *w) {
  size_t n = 0;
  for (int i = 0; i < T_N; i++)
    n += htab_bytes(&w->t[i]);
  return n;
}

int64_t sym__writer_head(const sym_writer *w, const sym_enc *enc, uint64_t at) {
  return enc->sym_len ? (int64_t)at : w->last_sym;
}

static bool map_grow(sym_writer *w, int t, size_t n) {
  if (n <= w->mapcap[t]) return true;
  uint32_t *m = realloc(w->map[t], n * sizeof *m);
  if (!m) return false;
  w->map[t] = m;
  w->mapcap[t] = n;
  return true;
}

static inline void key_u32(vbuf *k, uint32_t v) {
  vb_put(k, &v, 4);
}
static inline void key_u64(vbuf *k, uint64_t v) {
  vb_put(k, &v, 8);
}
static inline void vb_clear(vbuf *b) {
  b->len = 0;
  b->failed = b->over = false;
}

/* interns the key built in w->key into table t: its segment id, or < 0 */
static int64_t intern_key(sym_writer *w, int t) {
  if (w->key.failed) return PP_ENOMEM;
  uint32_t id;
  int r = htab_intern(&w->t[t], w->key.p ? w->key.p : (const uint8_t *)"", w->key.len, &id);
  return r < 0 ? r : (int64_t)id;
}

static uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* ---- interning a profile ------------------------------------------------------------------
 * What a profile costs the writer is deflating its samples (about 40% of sym__encode's time,
 * mostly libdeflate's per-call setup: `store-bench encode`, docs/benchmarks.md) and interning
 * (hashing its keys, probing the tables, comparing the keys found). So a profile's symbols are
 * interned lazily, from its locations down: a location seen before in the segment is found by
 * one lookup in loc_cache and checked against the segment's location, field by field, without
 * hashing its functions' strings; only the strings and functions of new locations (and the
 * strings the header, mappings and labels use) are interned. Strings and functions no location
 * or sample uses are not stored (the profile built back holds only used symbols anyway). */

#define UNKNOWN UINT32_MAX

/* profile string i's segment id, interned when not known yet; < 0 on failure */
static int64_t str_id(sym_writer *w, const pprof_profile *p, uint32_t i) {
  uint32_t *ms = w->map[T_STR];
  if (ms[i] != UNKNOWN) return ms[i];
  uint32_t id;
  int r = htab_intern(&w->t[T_STR], p->strings[i], p->string_len[i], &id);
  if (r < 0) return r;
  return ms[i] = id;
}

/* whether profile string i is segment string sid (equal bytes: the string table holds each
 * once, so interning i would give sid); remembered when it is */
static bool str_is(sym_writer *w, const pprof_profile *p, uint32_t i, uint32_t sid) {
  uint32_t *ms = w->map[T_STR];
  if (ms[i] != UNKNOWN) return ms[i] == sid;
  size_t n;
  const void *k = htab_key(&w->t[T_STR], sid, &n);
  if (n != p->string_len[i] || (n && memcmp(k, p->strings[i], n))) return false;
  ms[i] = sid;
  return true;
}

/* profile function index f's segment id, interned (with its strings) when not known yet */
static int64_t fn_id(sym_writer *w, const pprof_profile *p, uint32_t f) {
  uint32_t *mf = w->map[T_FN];
  if (mf[f] != UNKNOWN) return mf[f];
  const pprof_function *fn = &p->function[f];
  int64_t name = str_id(w, p, fn->name), sys = str_id(w, p, fn->system_name), file = str_id(w, p, fn->filename);
  if (name < 0 || sys < 0 || file < 0) return name < 0 ? name : sys < 0 ? sys : file;
  vb_clear(&w->key);
  key_u32(&w->key, (uint32_t)name);
  key_u32(&w->key, (uint32_t)sys);
  key_u32(&w->key, (uint32_t)file);
  key_u64(&w->key, (uint64_t)fn->start_line);
  int64_t id = intern_key(w, T_FN);
  if (id >= 0) mf[f] = (uint32_t)id;
  return id;
}

/* whether profile function index f is segment function fid (same strings and start line: the
 * function table holds each once); remembered when it is */
static bool fn_is(sym_writer *w, const pprof_profile *p, uint32_t f, uint32_t fid) {
  uint32_t *mf = w->map[T_FN];
  if (mf[f] != UNKNOWN) return mf[f] == fid;
  size_t n;
  const uint8_t *k = htab_key(&w->t[T_FN], fid, &n);
  const pprof_function *fn = &p->function[f];
  if (rd64(k + 12) != (uint64_t)fn->start_line || !str_is(w, p, fn->name, rd32(k)) ||
      !str_is(w, p, fn->system_name, rd32(k + 4)) || !str_is(w, p, fn->filename, rd32(k + 8)))
    return false;
  mf[f] = fid;
  return true;
}

/* whether profile location l equals segment location lid: the key interning l would build
 * (T_LOC's layout, see above) is lid's key, so interning l would give lid */
static bool loc_is(sym_writer *w, const pprof_profile *p, const pprof_location *l, uint32_t lid) {
  size_t n;
  const uint8_t *k = htab_key(&w->t[T_LOC], lid, &n);
  if (n != 13 + (size_t)20 * l->nline || rd64(k) != l->address || k[12] != (uint8_t)l->is_folded ||
      rd32(k + 8) != (l->mapping ? w->map[T_MAP][l->mapping - 1] + 1 : 0))
    return false;
  for (uint32_t j = 0; j < l->nline; j++) {
    const uint8_t *e = k + 13 + 20 * j;
    if (rd64(e + 4) != (uint64_t)l->line[j].line || rd64(e + 12) != (uint64_t)l->line[j].column ||
        (rd32(e) == 0) != (l->line[j].function == 0))
      return false;
  }
  /* then the functions (their strings compared the first time each is met in this profile) */
  for (uint32_t j = 0; j < l->nline; j++) {
    uint32_t fid1 = rd32(k + 13 + 20 * j);
    if (fid1 && !fn_is(w, p, l->line[j].function - 1, fid1 - 1)) return false;
  }
  return true;
}

/* The slot of loc_cache for l (NULL: l has too many lines to be cached; it is interned). The
 * hash covers what a location holds besides its functions: address, mapping, folded, lines'
 * numbers and columns; two locations equal there and different in their functions share a
 * slot, and loc_is tells them apart. */
static loc_slot *loc_slot_of(sym_writer *w, const pprof_location *l, uint32_t map1, uint64_t *ret_hash) {
  if (l->nline > LOC_CACHE_LINES) return NULL;
  uint64_t k[2 + 2 * LOC_CACHE_LINES];
  size_t n = 0;
  k[n++] = l->address;
  k[n++] = (uint64_t)map1 | (uint64_t)l->is_folded << 32 | (uint64_t)l->nline << 33;
  for (uint32_t j = 0; j < l->nline; j++) {
    k[n++] = (uint64_t)l->line[j].line;
    k[n++] = (uint64_t)l->line[j].column;
  }
  *ret_hash = htab_hash(k, n * sizeof *k);
  return &w->lcache[*ret_hash & (LOC_CACHE_SLOTS - 1)];
}

/* Interns p's symbols as its locations, header and samples need them; w->map[] get the
 * profile's index -> segment id (UNKNOWN for what nothing uses; str_id fills in the rest). */
static int intern_profile(sym_writer *w, const pprof_profile *p) {
  if (!map_grow(w, T_STR, p->nstrings ? p->nstrings : 1) || !map_grow(w, T_MAP, p->nmapping + 1) ||
      !map_grow(w, T_FN, p->nfunction + 1) || !map_grow(w, T_LOC, p->nlocation + 1))
    return PP_ENOMEM;
  uint32_t *mm = w->map[T_MAP], *mf = w->map[T_FN], *ml = w->map[T_LOC];
  memset(w->map[T_STR], 0xff, (p->nstrings ? p->nstrings : 1) * sizeof(uint32_t));
  if (!p->nstrings) w->map[T_STR][0] = 0; /* no table at all: index 0 is "" all the same */
  memset(mf, 0xff, (p->nfunction + 1) * sizeof *mf);
  /* mappings are few: all of them (the record lists them all, used or not) */
  for (size_t i = 0; i < p->nmapping; i++) {
    const pprof_mapping *m = &p->mapping[i];
    int64_t file = str_id(w, p, m->filename), bid = str_id(w, p, m->build_id);
    if (file < 0 || bid < 0) return (int)(file < 0 ? file : bid);
    vb_clear(&w->key);
    key_u64(&w->key, m->start);
    key_u64(&w->key, m->limit);
    key_u64(&w->key, m->offset);
    key_u32(&w->key, (uint32_t)file);
    key_u32(&w->key, (uint32_t)bid);
    uint8_t f = (uint8_t)(m->has_functions | m->has_filenames << 1 | m->has_line_numbers << 2 |
                          m->has_inline_frames << 3);
    vb_put(&w->key, &f, 1);
    int64_t id = intern_key(w, T_MAP);
    if (id < 0) return (int)id;
    mm[i] = (uint32_t)id;
  }
  for (size_t i = 0; i < p->nlocation; i++) {
    const pprof_location *l = &p->location[i];
    uint32_t map1 = l->mapping ? mm[l->mapping - 1] + 1 : 0;
    uint64_t h = 0;
    loc_slot *slot = loc_slot_of(w, l, map1, &h);
    /* a slot may name a location sym__abort took back (id past the table's count), or another
     * location with the same hash: loc_is checks every field */
    if (slot && slot->id1 && slot->hash == (uint32_t)(h >> 32) && slot->id1 - 1 < w->t[T_LOC].count && loc_is(w, p, l, slot->id1 - 1)) {
      ml[i] = slot->id1 - 1;
      continue;
    }
    /* its functions first: fn_id uses w->key too */
    for (uint32_t k = 0; k < l->nline; k++)
      if (l->line[k].function) {
        int64_t r = fn_id(w, p, l->line[k].function - 1);
        if (r < 0) return (int)r;
      }
    vb_clear(&w->key);
    key_u64(&w->key, l->address);
    key_u32(&w->key, map1);
    uint8_t f = l->is_folded;
    vb_put(&w->key, &f, 1);
    for (uint32_t k = 0; k < l->nline; k++) {
      key_u32(&w->key, l->line[k].function ? mf[l->line[k].function - 1] + 1 : 0);
      key_u64(&w->key, (uint64_t)l->line[k].line);
      key_u64(&w->key, (uint64_t)l->line[k].column);
    }
    int64_t id = intern_key(w, T_LOC);
    if (id < 0) return (int)id;
    ml[i] = (uint32_t)id;
    if (slot) {
      slot->hash = (uint32_t)(h >> 32);
      slot->id1 = (uint32_t)id + 1;
    }
  }
  /* the strings encode_samples writes: all interned here, before encode_symbols lists what
   * this profile adds (encode_samples's put_str fails a record whose string this list missed) */
  int64_t r = 0;
#define NEED(i)                                                                                    \
  if ((r = str_id(w, p, (i))) < 0) return (int)r
  for (size_t i = 0; i < p->nsample_type; i++) {
    NEED(p->sample_type[i].type);
    NEED(p->sample_type[i].unit);
  }
  NEED(p->period_type.type);
  NEED(p->period_type.unit);
  for (size_t i = 0; i < p->ncomment; i++) NEED(p->comment[i]);
  NEED(p->default_sample_type);
  NEED(p->drop_frames);
  NEED(p->keep_frames);
  NEED(p->doc_url);
  for (size_t i = 0; i < p->nsample; i++)
    for (uint32_t k = 0; k < p->sample[i].nlabel; k++) {
      NEED(p->sample[i].label[k].key);
      NEED(p->sample[i].label[k].str);
      NEED(p->sample[i].label[k].num_unit);
    }
#undef NEED
  return 0;
}

/* The symbol record of what w's tables hold past their base: into w->sym (empty = none). */
static bool encode_symbols(sym_writer *w) {
  vb_clear(&w->sym);
  bool any = false;
  for (int t = 0; t < T_N; t++) any |= w->t[t].count > w->base[t];
  if (!any) return true;
  vbuf *b = &w->raw;
  vb_clear(b);
  put_u(b, (uint64_t)(w->last_sym + 1));
  for (int t = 0; t < T_N; t++) put_u(b, w->base[t]);
  for (int t = 0; t < T_N; t++) put_u(b, w->t[t].count - w->base[t]);
  for (uint32_t i = w->base[T_STR]; i < w->t[T_STR].count; i++) {
    size_t n;
    const void *k = htab_key(&w->t[T_STR], i, &n);
    put_u(b, n);
    vb_put(b, k, n);
  }
  for (uint32_t i = w->base[T_MAP]; i < w->t[T_MAP].count; i++) {
    size_t n;
    const uint8_t *k = htab_key(&w->t[T_MAP], i, &n);
    put_u(b, rd64(k));
    put_u(b, rd64(k + 8));
    put_u(b, rd64(k + 16));
    put_u(b, rd32(k + 24));
    put_u(b, rd32(k + 28));
    put_u(b, k[32]);
  }
  for (uint32_t i = w->base[T_FN]; i < w->t[T_FN].count; i++) {
    size_t n;
    const uint8_t *k = htab_key(&w->t[T_FN], i, &n);
    put_u(b, rd32(k));
    put_u(b, rd32(k + 4));
    put_u(b, rd32(k + 8));
    put_s(b, (int64_t)rd64(k + 12));
  }
  for (uint32_t i = w->base[T_LOC]; i < w->t[T_LOC].count; i++) {
    size_t n;
    const uint8_t *k = htab_key(&w->t[T_LOC], i, &n);
    put_u(b, rd64(k));
    put_u(b, rd32(k + 8));
    put_u(b, k[12]);
    size_t nline = (n - 13) / 20;
    put_u(b, nline);
    for (size_t j = 0; j < nline; j++) {
      const uint8_t *l = k + 13 + 20 * j;
      put_u(b, rd32(l));
      put_s(b, (int64_t)rd64(l + 4));
      put_s(b, (int64_t)rd64(l + 12));
    }
  }
  return !b->failed && pack(w->cz, b, &w->sym);
}

/* Profile string i as its segment id. intern_profile's list of the strings this function writes
 * must name each of them: one it missed is still UNKNOWN here and fails the record (w->unlisted)
 * instead of storing an id no symbol record holds. */
static void put_str(sym_writer *w, vbuf *b, uint32_t i) {
  uint32_t id = w->map[T_STR][i];
  if (id == UNKNOWN) w->unlisted = b->failed = true;
  else put_u(b, id);
}

/* The profile record's data: header and samples as segment ids, into w->data. */
static bool encode_samples(sym_writer *w, const pprof_profile *p) {
  const uint32_t *ml = w->map[T_LOC];
  vbuf *b = &w->raw;
  vb_clear(b);
  put_u(b, p->nsample_type);
  for (size_t i = 0; i < p->nsample_type; i++) {
    put_str(w, b, p->sample_type[i].type);
    put_str(w, b, p->sample_type[i].unit);
  }
  put_str(w, b, p->period_type.type);
  put_str(w, b, p->period_type.unit);
  put_s(b, p->period);
  put_s(b, p->time_nanos);
  put_s(b, p->duration_nanos);
  put_u(b, p->ncomment);
  for (size_t i = 0; i < p->ncomment; i++) put_str(w, b, p->comment[i]);
  put_str(w, b, p->default_sample_type);
  put_str(w, b, p->drop_frames);
  put_str(w, b, p->keep_frames);
  put_str(w, b, p->doc_url);
  /* every mapping of the profile in its order, used or not: go tool pprof takes the first for
   * the main binary, and -raw lists them all */
  put_u(b, p->nmapping);
  for (size_t i = 0; i < p->nmapping; i++) put_u(b, w->map[T_MAP][i]);
  put_u(b, p->nsample);
  for (size_t i = 0; i < p->nsample; i++) {
    const pprof_sample *s = &p->sample[i];
    put_u(b, s->nloc);
    for (uint32_t k = 0; k < s->nloc; k++) put_u(b, ml[s->loc[k]]);
    for (size_t k = 0; k < p->nsample_type; k++) put_s(b, s->value[k]);
    put_u(b, s->nlabel);
    for (uint32_t k = 0; k < s->nlabel; k++) {
      put_str(w, b, s->label[k].key);
      put_str(w, b, s->label[k].str);
      put_s(b, s->label[k].num);
      put_str(w, b, s->label[k].num_unit);
    }
  }
  return !b->failed && pack(w->cz, b, &w->data);
}

int sym__encode(sym_writer *w, const pprof_profile *p, sym_enc *ret, pp_err *err) {
  w->unlisted = false;
  int r = intern_profile(w, p);
  if (r < 0) {
    sym__abort(w);
    return pp_err_set(err, r, "symbol table: %s", r == PP_ELIMIT ? "too many symbols" : "out of memory");
  }
  if (!encode_symbols(w) || !encode_samples(w, p)) {
    sym__abort(w);
    if (w->unlisted) return pp_err_set(err, PP_EINVAL, "profile record: a header string was not interned (store_sym.c)");
    return pp_err_set(err, w->raw.over || w->sym.over || w->data.over ? PP_ELIMIT : PP_ENOMEM,
                      "profile record: %s", w->raw.over || w->sym.over || w->data.over ? "too large" : "out of memory");
  }
  ret->sym = (const uint8_t *)w->sym.p;
  ret->sym_len = w->sym.len;
  ret->data = (const uint8_t *)w->data.p;
  ret->len = w->data.len;
  return 0;
}

void sym__commit(sym_writer *w, const sym_enc *enc, uint64_t sym_off) {
  if (!enc->sym_len) return;
  for (int t = 0; t < T_N; t++) w->base[t] = (uint32_t)w->t[t].count;
  w->last_sym = (int64_t)sym_off;
}

/* Takes table t back to its first n keys (htab has no delete: the slots are rebuilt). */
void sym__abort(sym_writer *w) {
  for (int t = 0; t < T_N; t++) htab_truncate(&w->t[t], w->base[t]);
  /* "" stays string 0 (sym__writer_reset put it there before any record was written): strings
   * are interned lazily now, so the next profile's first string would otherwise take id 0 */
  if (w->t[T_STR].count == 0) {
    uint32_t id;
    htab_intern(&w->t[T_STR], "", 0, &id);
  }
}

/* ---- loading a table ---------------------------------------------------------------------- */

void sym_table_release(sym_table *t) {
  if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
  arena_free(&t->mem);
  free(t);
}

/* one symbol record of a chain: its offset, prev, counts before it and what it adds */
typedef struct chain_link {
  uint64_t off;
  int64_t prev;
  uint32_t base[T_N], add[T_N];
  uint8_t *raw; /* inflated */
  size_t len;
  size_t at; /* where the items start in raw */
} chain_link;

/* Reads and inflates the symbol record at off. */
static int read_link(int fd, uint64_t off, uint64_t limit, chain_link *l, uint8_t **buf, size_t *cap) {
  rec_hdr h;
  int r = seg__read_record(fd, off, limit, NULL, &h, buf, cap);
  if (r != 1) return r < 0 ? -1 : 0;
  if (h.kind != REC_SYM) return 0;
  if (!unpack(*buf + REC_HDR + h.meta_len, h.data_len, &l->raw, &l->len)) return 0;
  rd d = {l->raw, l->raw + l->len, false};
  l->off = off;
  l->prev = (int64_t)get_u(&d) - 1;
  for (int t = 0; t < T_N; t++) {
    uint64_t v = get_u(&d);
    l->base[t] = (uint32_t)v;
    if (v > UINT32_MAX / 2) d.bad = true;
  }
  for (int t = 0; t < T_N; t++) {
    uint64_t v = get_u(&d);
    l->add[t] = (uint32_t)v;
    if (v > UINT32_MAX / 2) d.bad = true;
  }
  l->at = (size_t)(d.p - l->raw);
  /* the chain goes backwards: a prev at or after this record would loop */
  if (d.bad || l->prev >= (int64_t)off) return 0;
  return 1;
}

/* Applies one link's items to t (whose counts are the link's base). */
static bool apply_link(sym_table *t, const chain_link *l) {
  rd d = {l->raw + l->at, l->raw + l->len, false};
  for (uint32_t i = 0; i < l->add[T_STR] && !d.bad; i++) {
    uint64_t n = get_u(&d);
    if (d.bad || n > (uint64_t)(d.end - d.p)) return false;
    char *s = arena_strndup(&t->mem, (const char *)d.p, (size_t)n);
    if (!s) return false;
    t->strings[t->nstrings] = s;
    t->string_len[t->nstrings++] = (uint32_t)n;
    d.p += n;
  }
  if (t->nstrings == 0 || t->string_len[0] != 0) return false; /* string 0 is "" */
  for (uint32_t i = 0; i < l->add[T_MAP] && !d.bad; i++) {
    pprof_mapping *m = &t->mapping[t->nmappings];
    m->id = ++t->nmappings;
    m->start = get_u(&d);
    m->limit = get_u(&d);
    m->offset = get_u(&d);
    m->filename = get_id(&d, t->nstrings);
    m->build_id = get_id(&d, t->nstrings);
    uint64_t f = get_u(&d);
    m->has_functions = f & 1;
    m->has_filenames = f >> 1 & 1;
    m->has_line_numbers = f >> 2 & 1;
    m->has_inline_frames = f >> 3 & 1;
  }
  for (uint32_t i = 0; i < l->add[T_FN] && !d.bad; i++) {
    pprof_function *f = &t->function[t->nfunctions];
    f->id = ++t->nfunctions;
    f->name = get_id(&d, t->nstrings);
    f->system_name = get_id(&d, t->nstrings);
    f->filename = get_id(&d, t->nstrings);
    f->start_line = get_s(&d);
  }
  for (uint32_t i = 0; i < l->add[T_LOC] && !d.bad; i++) {
    pprof_location *loc = &t->location[t->nlocations];
    loc->id = ++t->nlocations;
    loc->address = get_u(&d);
    loc->mapping = get_id(&d, t->nmappings + 1);
    loc->is_folded = get_u(&d) & 1;
    uint64_t n = get_u(&d);
    if (d.bad || n > (uint64_t)(d.end - d.p)) return false; /* each line takes a byte at least */
    loc->nline = (uint32_t)n;
    loc->line = arena_calloc(&t->mem, n ? n : 1, sizeof *loc->line);
    if (!loc->line) return false;
    for (uint32_t k = 0; k < n; k++) {
      loc->line[k].function = get_id(&d, t->nfunctions + 1);
      loc->line[k].line = get_s(&d);
      loc->line[k].column = get_s(&d);
    }
  }
  return !d.bad && d.p == d.end;
}

int sym__load(int fd, int64_t seg, uint64_t limit, uint64_t head, sym_table **ret, pp_err *err) {
  chain_link *v = NULL;
  size_t n = 0, cap = 0, bcap = 0;
  uint8_t *buf = NULL;
  sym_table *t = NULL;
  int r = 0;
  /* backwards from head to the first record */
  for (int64_t off = (int64_t)head; off >= 0;) {
    if (n == cap) {
      chain_link *nv = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof *nv);
      if (!nv) {
        r = pp_err_set(err, PP_ENOMEM, "out of memory");
        goto out;
      }
      v = nv;
    }
    memset(&v[n], 0, sizeof v[n]);
    int k = read_link(fd, (uint64_t)off, limit, &v[n], &buf, &bcap);
    if (k <= 0) {
      free(v[n].raw);
      r = k < 0 ? pp_err_set(err, PP_EIO, "segment %lld: %s", (long long)seg, strerror(errno))
                : pp_err_set(err, PP_EINVAL, "segment %lld: symbol record at %llu damaged or missing", (long long)seg,
                             (unsigned long long)off);
      goto out;
    }
    off = v[n++].prev;
  }
  /* the first record starts the table; each next one continues the counts before it */
  uint64_t tot[T_N] = {0};
  for (size_t i = n; i-- > 0;) {
    for (int k = 0; k < T_N; k++) {
      if (v[i].base[k] != tot[k]) {
        r = pp_err_set(err, PP_EINVAL, "segment %lld: symbol chain broken at %llu", (long long)seg,
                       (unsigned long long)v[i].off);
        goto out;
      }
      tot[k] += v[i].add[k];
    }
  }
  /* the counts are bounded by the records' lengths (an item takes a byte at least), so a
   * damaged count fails here, not as a huge allocation */
  uint64_t items = 0, rawlen = 0;
  for (size_t i = 0; i < n; i++) {
    for (int k = 0; k < T_N; k++) items += v[i].add[k];
    rawlen += v[i].len;
  }
  if (items > rawlen) {
    r = pp_err_set(err, PP_EINVAL, "segment %lld: symbol counts past the records' bytes", (long long)seg);
    goto out;
  }
  t = calloc(1, sizeof *t);
  if (!t) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  arena_init(&t->mem, 0);
  t->refs = 1;
  t->segment_id = seg;
  t->strings = arena_calloc(&t->mem, tot[T_STR] + 1, sizeof *t->strings);
  t->string_len = arena_calloc(&t->mem, tot[T_STR] + 1, sizeof *t->string_len);
  t->mapping = arena_calloc(&t->mem, tot[T_MAP] + 1, sizeof *t->mapping);
  t->function = arena_calloc(&t->mem, tot[T_FN] + 1, sizeof *t->function);
  t->location = arena_calloc(&t->mem, tot[T_LOC] + 1, sizeof *t->location);
  t->chain_off = arena_calloc(&t->mem, n, sizeof *t->chain_off);
  t->chain_counts = arena_calloc(&t->mem, n, sizeof *t->chain_counts);
  if (!t->strings || !t->string_len || !t->mapping || !t->function || !t->location || !t->chain_off ||
      !t->chain_counts) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = n; i-- > 0;) {
    size_t total = 0;
    for (int k = 0; k < T_N; k++) total += v[i].add[k];
    if (total > v[i].len || !apply_link(t, &v[i])) {
      r = pp_err_set(err, PP_EINVAL, "segment %lld: symbol record at %llu damaged", (long long)seg,
                     (unsigned long long)v[i].off);
      goto out;
    }
    size_t j = t->nchain++;
    t->chain_off[j] = v[i].off;
    t->chain_counts[j][T_STR] = t->nstrings;
    t->chain_counts[j][T_MAP] = t->nmappings;
    t->chain_counts[j][T_FN] = t->nfunctions;
    t->chain_counts[j][T_LOC] = t->nlocations;
  }
  t->bytes = t->mem.reserved + sizeof *t;
  *ret = t;
  t = NULL;
out:
  for (size_t i = 0; i < n; i++) free(v[i].raw);
  free(v);
  free(buf);
  sym_table_release(t);
  return r;
}

/* The counts a record needing the symbol record at off may use, or NULL when off is not one
 * of t's records. */
static const uint32_t *chain_counts(const sym_table *t, uint64_t off) {
  size_t lo = 0, hi = t->nchain;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (t->chain_off[mid] < off) lo = mid + 1;
    else hi = mid;
  }
  return lo < t->nchain && t->chain_off[lo] == off ? t->chain_counts[lo] : NULL;
}

bool sym_table_has(const sym_table *t, uint64_t off) {
  return chain_counts(t, off) != NULL;
}

/* ---- decoding a profile record -------------------------------------------------------------- */

int sym__decode_samples(const sym_table *t, uint64_t sym_off, const uint8_t *data, size_t len, sym_samples *ret,
                        pp_err *err) {
  memset(ret, 0, sizeof *ret);
  const uint32_t *c = chain_counts(t, sym_off);
  if (!c) return pp_err_set(err, PP_EINVAL, "profile record: its symbol record is not in the segment's chain");
  uint8_t *raw;
  size_t rlen;
  if (!unpack(data, len, &raw, &rlen)) return pp_err_set(err, PP_EINVAL, "profile record: damaged data");
  pprof_limits lim;
  pprof_limits_default(&lim);
  arena_init(&ret->mem, 0);
  rd d = {raw, raw + rlen, false};
  uint32_t ns = c[T_STR], nl = c[T_LOC];
  int r = 0;
  uint64_t nst = get_u(&d);
  if (nst > lim.max_sample_types) goto bad;
  ret->nsample_type = (size_t)nst;
  ret->sample_type = arena_calloc(&ret->mem, nst + 1, sizeof *ret->sample_type);
  if (!ret->sample_type) goto nomem;
  for (size_t i = 0; i < nst; i++) {
    ret->sample_type[i].type = get_id(&d, ns);
    ret->sample_type[i].unit = get_id(&d, ns);
  }
  ret->period_type.type = get_id(&d, ns);
  ret->period_type.unit = get_id(&d, ns);
  ret->period = get_s(&d);
  ret->time_nanos = get_s(&d);
  ret->duration_nanos = get_s(&d);
  uint64_t nc = get_u(&d);
  if (d.bad || nc > rlen) goto bad;
  ret->ncomment = (size_t)nc;
  ret->comment = arena_calloc(&ret->mem, nc + 1, sizeof *ret->comment);
  if (!ret->comment) goto nomem;
  for (size_t i = 0; i < nc; i++) ret->comment[i] = get_id(&d, ns);
  ret->default_sample_type = get_id(&d, ns);
  ret->drop_frames = get_id(&d, ns);
  ret->keep_frames = get_id(&d, ns);
  ret->doc_url = get_id(&d, ns);
  uint64_t nm = get_u(&d);
  if (d.bad || nm > c[T_MAP]) goto bad;
  ret->nmapping = (size_t)nm;
  ret->mapping = arena_calloc(&ret->mem, nm + 1, sizeof *ret->mapping);
  if (!ret->mapping) goto nomem;
  for (size_t i = 0; i < nm; i++) ret->mapping[i] = get_id(&d, c[T_MAP]);
  uint64_t nsmp = get_u(&d);
  /* a sample takes two bytes at least (its location and label counts) */
  if (d.bad || nsmp > lim.max_samples || nsmp > rlen / 2) goto bad;
  ret->nsample = (size_t)nsmp;
  ret->sample = arena_calloc(&ret->mem, nsmp + 1, sizeof *ret->sample);
  if (!ret->sample) goto nomem;
  for (size_t i = 0; i < nsmp && !d.bad; i++) {
    pprof_sample *s = &ret->sample[i];
    uint64_t n = get_u(&d);
    if (n > lim.max_stack_depth || n > (uint64_t)(d.end - d.p)) goto bad;
    s->nloc = (uint32_t)n;
    s->loc = arena_alloc(&ret->mem, (n ? n : 1) * sizeof *s->loc);
    s->value = arena_alloc(&ret->mem, (nst ? nst : 1) * sizeof *s->value);
    if (!s->loc || !s->value) goto nomem;
    for (uint32_t k = 0; k < n; k++) s->loc[k] = get_id(&d, nl);
    for (size_t k = 0; k < nst; k++) s->value[k] = get_s(&d);
    n = get_u(&d);
    if (n > lim.max_labels || n > (uint64_t)(d.end - d.p)) goto bad;
    s->nlabel = (uint32_t)n;
    s->label = arena_calloc(&ret->mem, n ? n : 1, sizeof *s->label);
    if (!s->label) goto nomem;
    for (uint32_t k = 0; k < n; k++) {
      s->label[k].key = get_id(&d, ns);
      s->label[k].str = get_id(&d, ns);
      s->label[k].num = get_s(&d);
      s->label[k].num_unit = get_id(&d, ns);
    }
  }
  if (d.bad || d.p != d.end) goto bad;
  free(raw);
  return 0;
bad:
  r = pp_err_set(err, PP_EINVAL, "profile record: damaged samples");
  goto fail;
nomem:
  r = pp_err_set(err, PP_ENOMEM, "out of memory");
fail:
  free(raw);
  arena_free(&ret->mem);
  memset(ret, 0, sizeof *ret);
  return r;
}

/* ---- building a profile --------------------------------------------------------------------- */

typedef struct used {
  uint32_t *v; /* segment id -> local index + 1 (0 = not used) */
  uint32_t *order; /* local index -> segment id */
  uint32_t n;
} used;

static uint32_t use(used *u, uint32_t id) {
  if (!u->v[id]) {
    u->order[u->n] = id;
    u->v[id] = ++u->n;
  }
  return u->v[id] - 1;
}

int sym_build_profile(const sym_table *t, const sym_samples *smp, const pprof_limits *limits, pprof_profile **ret,
                      pp_err *err) {
  pprof_limits lim;
  if (limits) lim = *limits;
  else pprof_limits_default(&lim);
  used us = {0}, um = {0}, uf = {0}, ul = {0};
  us.v = calloc(t->nstrings + 1, sizeof *us.v);
  us.order = malloc((t->nstrings + 1) * sizeof *us.order);
  um.v = calloc(t->nmappings + 1, sizeof *um.v);
  um.order = malloc((t->nmappings + 1) * sizeof *um.order);
  uf.v = calloc(t->nfunctions + 1, sizeof *uf.v);
  uf.order = malloc((t->nfunctions + 1) * sizeof *uf.order);
  ul.v = calloc(t->nlocations + 1, sizeof *ul.v);
  ul.order = malloc((t->nlocations + 1) * sizeof *ul.order);
  pprof_profile *p = calloc(1, sizeof *p);
  int r = 0;
  if (!us.v || !us.order || !um.v || !um.order || !uf.v || !uf.order || !ul.v || !ul.order || !p) goto nomem;
  arena_init(&p->mem, lim.max_memory);
  use(&us, 0); /* "" stays string 0 */
  /* the profile's mappings in its order, then which symbols the samples use, in first-use
   * order */
  for (size_t i = 0; i < smp->nmapping; i++) use(&um, smp->mapping[i]);
  for (size_t i = 0; i < smp->nsample; i++) {
    const pprof_sample *s = &smp->sample[i];
    for (uint32_t k = 0; k < s->nloc; k++) use(&ul, s->loc[k]);
  }
  for (uint32_t i = 0; i < ul.n; i++) {
    const pprof_location *l = &t->location[ul.order[i]];
    if (l->mapping) use(&um, l->mapping - 1);
    for (uint32_t k = 0; k < l->nline; k++)
      if (l->line[k].function) use(&uf, l->line[k].function - 1);
  }
  /* strings: the header's, then symbols', then labels' */
  p->nsample_type = smp->nsample_type;
  p->sample_type = arena_calloc(&p->mem, smp->nsample_type + 1, sizeof *p->sample_type);
  p->comment = arena_calloc(&p->mem, smp->ncomment + 1, sizeof *p->comment);
  p->mapping = arena_calloc(&p->mem, um.n + 1, sizeof *p->mapping);
  p->function = arena_calloc(&p->mem, uf.n + 1, sizeof *p->function);
  p->location = arena_calloc(&p->mem, ul.n + 1, sizeof *p->location);
  p->sample = arena_calloc(&p->mem, smp->nsample + 1, sizeof *p->sample);
  if (!p->sample_type || !p->comment || !p->mapping || !p->function || !p->location || !p->sample) goto nomem;
  for (size_t i = 0; i < smp->nsample_type; i++) {
    p->sample_type[i].type = use(&us, smp->sample_type[i].type);
    p->sample_type[i].unit = use(&us, smp->sample_type[i].unit);
  }
  p->period_type.type = use(&us, smp->period_type.type);
  p->period_type.unit = use(&us, smp->period_type.unit);
  p->period = smp->period;
  p->time_nanos = smp->time_nanos;
  p->duration_nanos = smp->duration_nanos;
  p->ncomment = smp->ncomment;
  for (size_t i = 0; i < smp->ncomment; i++) p->comment[i] = use(&us, smp->comment[i]);
  p->default_sample_type = use(&us, smp->default_sample_type);
  p->drop_frames = use(&us, smp->drop_frames);
  p->keep_frames = use(&us, smp->keep_frames);
  p->doc_url = use(&us, smp->doc_url);
  p->nmapping = um.n;
  for (uint32_t i = 0; i < um.n; i++) {
    pprof_mapping *m = &p->mapping[i];
    *m = t->mapping[um.order[i]];
    m->id = i + 1;
    m->filename = use(&us, m->filename);
    m->build_id = use(&us, m->build_id);
  }
  p->nfunction = uf.n;
  for (uint32_t i = 0; i < uf.n; i++) {
    pprof_function *f = &p->function[i];
    *f = t->function[uf.order[i]];
    f->id = i + 1;
    f->name = use(&us, f->name);
    f->system_name = use(&us, f->system_name);
    f->filename = use(&us, f->filename);
  }
  p->nlocation = ul.n;
  for (uint32_t i = 0; i < ul.n; i++) {
    const pprof_location *src = &t->location[ul.order[i]];
    pprof_location *l = &p->location[i];
    *l = *src;
    l->id = i + 1;
    l->mapping = src->mapping ? um.v[src->mapping - 1] : 0;
    l->line = arena_alloc(&p->mem, (src->nline ? src->nline : 1) * sizeof *l->line);
    if (!l->line) goto nomem;
    for (uint32_t k = 0; k < src->nline; k++) {
      l->line[k] = src->line[k];
      l->line[k].function = src->line[k].function ? uf.v[src->line[k].function - 1] : 0;
    }
  }
  p->nsample = smp->nsample;
  for (size_t i = 0; i < smp->nsample; i++) {
    const pprof_sample *s = &smp->sample[i];
    pprof_sample *o = &p->sample[i];
    o->nloc = s->nloc;
    o->nlabel = s->nlabel;
    o->loc = arena_alloc(&p->mem, (s->nloc ? s->nloc : 1) * sizeof *o->loc);
    o->value = arena_alloc(&p->mem, (smp->nsample_type ? smp->nsample_type : 1) * sizeof *o->value);
    o->label = arena_alloc(&p->mem, (s->nlabel ? s->nlabel : 1) * sizeof *o->label);
    if (!o->loc || !o->value || !o->label) goto nomem;
    for (uint32_t k = 0; k < s->nloc; k++) o->loc[k] = ul.v[s->loc[k]] - 1;
    memcpy(o->value, s->value, smp->nsample_type * sizeof *o->value);
    for (uint32_t k = 0; k < s->nlabel; k++) {
      o->label[k] = s->label[k];
      o->label[k].key = use(&us, s->label[k].key);
      o->label[k].str = use(&us, s->label[k].str);
      o->label[k].num_unit = use(&us, s->label[k].num_unit);
    }
  }
  p->nstrings = us.n;
  p->strings = arena_alloc(&p->mem, us.n * sizeof *p->strings);
  p->string_len = arena_alloc(&p->mem, us.n * sizeof *p->string_len);
  if (!p->strings || !p->string_len) goto nomem;
  for (uint32_t i = 0; i < us.n; i++) {
    /* the table outlives no profile: copy */
    p->strings[i] = arena_strndup(&p->mem, t->strings[us.order[i]], t->string_len[us.order[i]]);
    p->string_len[i] = t->string_len[us.order[i]];
    if (!p->strings[i]) goto nomem;
  }
  *ret = p;
  p = NULL;
  goto out;
nomem:
  /* past the scratch maps (malloc), what fails is the profile's arena: its budget, when it has one */
  r = lim.max_memory && p && us.v && us.order && um.v && um.order && uf.v && uf.order && ul.v && ul.order
          ? pp_err_set(err, PP_ELIMIT, "decoded profile needs more than the memory limit of %zu bytes", lim.max_memory)
          : pp_err_set(err, PP_ENOMEM, "out of memory");
out:
  pprof_free(p);
  free(us.v);
  free(us.order);
  free(um.v);
  free(um.order);
  free(uf.v);
  free(uf.order);
  free(ul.v);
  free(ul.order);
  return r;
}

/* ---- the readers' cache --------------------------------------------------------------------- */

#define CACHE_SLOTS 64

typedef struct sym_cache {
  pthread_mutex_t mu;
  sym_table *slot[CACHE_SLOTS];
  uint64_t used[CACHE_SLOTS]; /* last use, for eviction */
  uint64_t tick;
  size_t bytes;
} sym_cache;

static pthread_mutex_t cache_init_mu = PTHREAD_MUTEX_INITIALIZER;

static sym_cache *cache_of(store *s) {
  sym_cache *c = __atomic_load_n(&s->symc, __ATOMIC_ACQUIRE);
  if (c) return c;
  pthread_mutex_lock(&cache_init_mu);
  if (!(c = s->symc) && (c = calloc(1, sizeof *c))) {
    pthread_mutex_init(&c->mu, NULL);
    __atomic_store_n(&s->symc, c, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&cache_init_mu);
  return c;
}

void sym__cache_free(store *s) {
  sym_cache *c = s->symc;
  if (!c) return;
  for (int i = 0; i < CACHE_SLOTS; i++) sym_table_release(c->slot[i]);
  pthread_mutex_destroy(&c->mu);
  free(c);
  s->symc = NULL;
}

/* A table of segment seg that holds the symbol record at head: from the cache, or loaded from
 * fd and put there. *ret is a reference. */
static int table_for(store *s, int64_t seg, int fd, uint64_t head, sym_table **ret, pp_err *err) {
  sym_cache *c = cache_of(s);
  if (c) {
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < CACHE_SLOTS; i++) {
      sym_table *t = c->slot[i];
      if (t && t->segment_id == seg && chain_counts(t, head)) {
        __atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
        c->used[i] = ++c->tick;
        pthread_mutex_unlock(&c->mu);
        *ret = t;
        return 0;
      }
    }
    pthread_mutex_unlock(&c->mu);
  }
  sym_table *t;
  int r = sym__load(fd, seg, UINT64_MAX, head, &t, err);
  if (r < 0) return r;
  __atomic_add_fetch(&s->table_loads, 1, __ATOMIC_RELAXED);
  if (c && t->bytes <= SYM_CACHE_BYTES) {
    pthread_mutex_lock(&c->mu);
    /* it replaces an older table of its segment (whose chain is a prefix of its own), else
     * the least recently used, and more go while the cache is over its bound */
    int victim = -1;
    for (int i = 0; i < CACHE_SLOTS; i++)
      if (c->slot[i] && c->slot[i]->segment_id == seg) {
        if (c->slot[i]->nchain > t->nchain) victim = -2; /* a newer one is there already */
        else victim = i;
        break;
      }
    if (victim != -2) {
      if (victim < 0)
        for (int i = 0; i < CACHE_SLOTS; i++)
          if (!c->slot[i] || victim < 0 || (c->slot[victim] && c->used[i] < c->used[victim])) victim = i;
      if (c->slot[victim]) {
        c->bytes -= c->slot[victim]->bytes;
        sym_table_release(c->slot[victim]);
      }
      __atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
      c->slot[victim] = t;
      c->used[victim] = ++c->tick;
      c->bytes += t->bytes;
      while (c->bytes > SYM_CACHE_BYTES) {
        int old = -1;
        for (int i = 0; i < CACHE_SLOTS; i++)
          if (c->slot[i] && i != victim && (old < 0 || c->used[i] < c->used[old])) old = i;
        if (old < 0) break;
        c->bytes -= c->slot[old]->bytes;
        sym_table_release(c->slot[old]);
        c->slot[old] = NULL;
      }
    }
    pthread_mutex_unlock(&c->mu);
  }
  *ret = t;
  return 0;
}

int64_t sym__meta_head(const uint8_t *meta, size_t len) {
  json_error_t je;
  json_t *m = json_loadb((const char *)meta, len, 0, &je);
  json_t *v = json_object_get(m, "sym");
  int64_t h = json_is_integer(v) ? json_integer_value(v) : -1;
  json_decref(m);
  return h;
}

/* ---- reading records ------------------------------------------------------------------------ */

void sym_reader_close(sym_reader *sr) {
  if (sr->fd >= 0) close(sr->fd);
  sr->fd = -1;
  free(sr->buf);
  sr->buf = NULL;
  sr->cap = 0;
}

int sym_read_with(store *s, sym_reader *sr, const row_loc *e, sym_record *ret, pp_err *err) {
  memset(ret, 0, sizeof *ret);
  if (e->rec_off < 0 || e->meta_len < 0 || e->data_len < 0 || e->meta_len > MAX_META || e->data_len > MAX_DATA)
    return pp_err_set(err, PP_EIO, "record %lld: bytes missing or CRC mismatch", (long long)e->row.id);
  if (sr->fd < 0 || sr->seg != e->segment_id) {
    if (sr->fd >= 0) close(sr->fd);
    char *path = seg__path(s->segdir, e->segment_id);
    sr->fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    sr->seg = e->segment_id;
    free(path);
    if (sr->fd < 0)
      return pp_err_set(err, PP_EIO, "record %lld: bytes missing or CRC mismatch", (long long)e->row.id);
  }
  rec_hdr want = {(uint32_t)e->meta_len, (uint32_t)e->data_len, (uint32_t)e->crc, REC_ANY}, h;
  if (seg__read_record(sr->fd, (uint64_t)e->rec_off, UINT64_MAX, &want, &h, &sr->buf, &sr->cap) != 1)
    return pp_err_set(err, PP_EIO, "record %lld: bytes missing or CRC mismatch", (long long)e->row.id);
  const uint8_t *meta = sr->buf + REC_HDR, *data = meta + h.meta_len;
  if (h.kind == REC_V1) {
    if (!(ret->gz = malloc(h.data_len ? h.data_len : 1))) return pp_err_set(err, PP_ENOMEM, "out of memory");
    memcpy(ret->gz, data, h.data_len);
    ret->gz_len = h.data_len;
    return 0;
  }
  int64_t head = h.kind == REC_V2 ? sym__meta_head(meta, h.meta_len) : -1;
  if (head < 0 || head >= e->rec_off)
    return pp_err_set(err, PP_EINVAL, "record %lld: not a profile record, or no symbol record before it",
                      (long long)e->row.id);
  int r = table_for(s, e->segment_id, sr->fd, (uint64_t)head, &ret->table, err);
  if (r < 0) return r;
  if ((r = sym__decode_samples(ret->table, (uint64_t)head, data, h.data_len, &ret->samples, err)) < 0) {
    sym_table_release(ret->table);
    ret->table = NULL;
    return r;
  }
  ret->v2 = true;
  return 0;
}

int sym_read_record(store *s, const row_loc *e, sym_record *ret, pp_err *err) {
  sym_reader sr = SYM_READER_INIT;
  int r = sym_read_with(s, &sr, e, ret, err);
  sym_reader_close(&sr);
  return r;
}

void sym_record_free(sym_record *r) {
  sym_table_release(r->table);
  arena_free(&r->samples.mem);
  free(r->gz);
  memset(r, 0, sizeof *r);
}

static int over_share(size_t max_memory, pp_err *err) {
  return pp_err_set(err, PP_ELIMIT, "decoded profile needs more than the memory limit of %zu bytes", max_memory);
}

int sym_record_share(const sym_record *rec, size_t max_memory, size_t *ret_left, pp_err *err) {
  size_t held = rec->v2 ? rec->samples.mem.reserved : rec->gz_len;
  if (max_memory && held >= max_memory) return over_share(max_memory, err);
  *ret_left = max_memory ? max_memory - held : 0;
  return 0;
}

/* The limits a profile made from rec gets: limits (NULL: the defaults) less what rec holds. */
static int built_limits(const sym_record *rec, const pprof_limits *limits, pprof_limits *ret, pp_err *err) {
  if (limits) *ret = *limits;
  else pprof_limits_default(ret);
  return sym_record_share(rec, ret->max_memory, &ret->max_memory, err);
}

int store__decode_v1(const sym_record *rec, const pprof_limits *limits, pprof_profile **ret, pp_err *err) {
  pprof_limits lim;
  int r = built_limits(rec, limits, &lim, err);
  /* the decoder says which cap it hit in the message; its memory cap is this record's share */
  if (r == 0 && (r = pprof_decode(rec->gz, rec->gz_len, &lim, ret, err)) == PP_ELIMIT && err &&
      strstr(err->msg, "memory limit"))
    r = over_share(limits ? limits->max_memory : lim.max_memory + rec->gz_len, err);
  return r;
}

/* ---- repair's check of chains ------------------------------------------------------------- */

static bool has_off(const uint64_t *v, size_t n, uint64_t off, size_t *ret_at) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (v[mid] < off) lo = mid + 1;
    else hi = mid;
  }
  if (ret_at) *ret_at = lo;
  return lo < n && v[lo] == off;
}

static bool add_off(uint64_t **v, size_t *n, size_t *cap, uint64_t off) {
  size_t at;
  if (has_off(*v, *n, off, &at)) return true;
  if (*n == *cap) {
    uint64_t *nv = realloc(*v, (*cap = *cap ? *cap * 2 : 16) * sizeof *nv);
    if (!nv) return false;
    *v = nv;
  }
  memmove(*v + at + 1, *v + at, (*n - at) * sizeof **v);
  (*v)[at] = off;
  (*n)++;
  return true;
}

int sym__check_head(sym_check *c, uint64_t head) {
  chain_link *path = NULL;
  size_t n = 0, cap = 0;
  int r = 1;
  uint32_t run[T_N] = {0};
  int64_t off = (int64_t)head;
  while (off >= 0) {
    size_t at;
    if (has_off(c->ok, c->nok, (uint64_t)off, &at)) {
      memcpy(run, c->okc[at], sizeof run);
      break;
    }
    if (has_off(c->bad, c->nbad, (uint64_t)off, NULL)) {
      r = 0;
      break;
    }
    if (n == cap) {
      chain_link *np = realloc(path, (cap = cap ? cap * 2 : 8) * sizeof *np);
      if (!np) {
        r = -1;
        break;
      }
      path = np;
    }
    memset(&path[n], 0, sizeof path[n]);
    int k = read_link(c->fd, (uint64_t)off, c->limit, &path[n], &c->buf, &c->cap);
    free(path[n].raw); /* only the link's counts are checked here */
    path[n].raw = NULL;
    if (k <= 0) {
      if (!add_off(&c->bad, &c->nbad, &c->bcap, (uint64_t)off)) k = -1;
      r = k < 0 ? -1 : 0;
      break;
    }
    off = path[n++].prev;
  }
  /* oldest first: each link continues the counts before it */
  for (size_t i = n; r == 1 && i-- > 0;) {
    for (int k = 0; k < T_N; k++) {
      if (path[i].base[k] != run[k]) r = 0;
      run[k] += path[i].add[k];
    }
    if (r != 1) break;
    size_t at;
    if (!add_off(&c->ok, &c->nok, &c->okcap, path[i].off)) {
      r = -1;
      break;
    }
    if (c->nok > c->okccap) {
      uint32_t(*nc)[4] = realloc(c->okc, (c->okccap = c->okcap) * sizeof *nc);
      if (!nc) {
        r = -1;
        break;
      }
      c->okc = nc;
    }
    has_off(c->ok, c->nok, path[i].off, &at);
    memmove(c->okc + at + 1, c->okc + at, (c->nok - 1 - at) * sizeof *c->okc);
    memcpy(c->okc[at], run, sizeof run);
  }
  /* a broken link spoils every record after it on the path */
  for (size_t i = 0; r == 0 && i < n; i++)
    if (!add_off(&c->bad, &c->nbad, &c->bcap, path[i].off)) r = -1;
  free(path);
  return r;
}

void sym__check_free(sym_check *c) {
  free(c->ok);
  free(c->okc);
  free(c->bad);
  free(c->buf);
  memset(c, 0, sizeof *c);
}
