/* Decoding entry points: limits, gzip, id maps, files. The protobuf parsing itself is in
 * decode_wire.c (the fast hand-written decoder used by pprof_decode) and decode_pbc.c (the
 * protobuf-c reference decoder that tests and fuzzing compare it with); docs/codec.md says
 * why there are two. */
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../base/file.h"
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

/* libdeflate inflates a whole buffer about twice as fast as zlib, but needs the output size up
 * front. The gzip trailer gives it (mod 2^32) for the usual single-member file; it is only a
 * claim, so the buffer is capped at max_out and a wrong claim (multi-member, or a lie) returns 1
 * to send the caller to the streaming zlib path, which enforces the cap as it inflates. */
static int gunzip_fast(const uint8_t *in, size_t len, size_t max_out, uint8_t **ret_buf,
                       size_t *ret_len, pp_err *err) {
  if (len < 18) return 1;
  size_t isize = (size_t)in[len - 4] | (size_t)in[len - 3] << 8 | (size_t)in[len - 2] << 16 |
                 (size_t)in[len - 1] << 24;
  if (isize > max_out) return 1;
  uint8_t *out = malloc(isize ? isize : 1);
  struct libdeflate_decompressor *dc = libdeflate_alloc_decompressor();
  if (!out || !dc) {
    free(out);
    libdeflate_free_decompressor(dc);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  size_t in_used = 0, out_len = 0;
  enum libdeflate_result res =
      libdeflate_gzip_decompress_ex(dc, in, len, out, isize, &in_used, &out_len);
  libdeflate_free_decompressor(dc);
  if (res == LIBDEFLATE_SUCCESS && in_used == len && out_len == isize) {
    *ret_buf = out;
    *ret_len = out_len;
    return 0;
  }
  free(out);
  return 1; /* corrupt, trailing data, more members, or a wrong size claim: let zlib say which */
}

int pprof_gunzip(const void *data, size_t len, size_t max_out, uint8_t **ret_buf, size_t *ret_len,
                 pp_err *err) {
  const uint8_t *in = data;
  if (len < 2 || in[0] != 0x1f || in[1] != 0x8b) {
    if (len > max_out)
      return pp_err_set(err, PP_ELIMIT, "profile is %zu bytes, over the limit of %zu", len,
                        max_out);
    uint8_t *b = malloc(len ? len : 1);
    if (!b) return pp_err_set(err, PP_ENOMEM, "out of memory");
    if (len) memcpy(b, data, len);
    *ret_buf = b;
    *ret_len = len;
    return 0;
  }
  int fr = gunzip_fast(in, len, max_out, ret_buf, ret_len, err);
  if (fr <= 0) return fr;
  /* The gzip trailer holds the size mod 2^32: a hint for the first allocation, never trusted
   * beyond max_out. */
  size_t cap = len * 4;
  if (len >= 18) {
    uint32_t isize = (uint32_t)in[len - 4] | (uint32_t)in[len - 3] << 8 |
                     (uint32_t)in[len - 2] << 16 | (uint32_t)in[len - 1] << 24;
    if (isize >= len / 2) cap = (size_t)isize + 1;
  }
  if (cap < 4096) cap = 4096;
  if (cap > max_out + 1) cap = max_out + 1;
  uint8_t *out = malloc(cap);
  if (!out) return pp_err_set(err, PP_ENOMEM, "out of memory");

  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 15 + 16) != Z_OK) {
    free(out);
    return pp_err_set(err, PP_ENOMEM, "gzip: cannot initialise zlib");
  }
  int result = 0;
  size_t total = 0;
  const uint8_t *next = in;
  size_t left = len;
  for (;;) {
    if (total == cap) {
      if (cap > max_out) {
        result = pp_err_set(err, PP_ELIMIT,
                            "gzip: decompressed size exceeds the limit of %zu bytes", max_out);
        break;
      }
      size_t ncap = cap * 2;
      if (ncap > max_out + 1 || ncap < cap) ncap = max_out + 1;
      uint8_t *nb = realloc(out, ncap);
      if (!nb) {
        result = pp_err_set(err, PP_ENOMEM, "out of memory");
        break;
      }
      out = nb;
      cap = ncap;
    }
    /* zlib counts in uInt; feed at most 1 GiB per call. */
    size_t in_chunk = left > (1u << 30) ? (1u << 30) : left;
    size_t out_chunk = cap - total > (1u << 30) ? (1u << 30) : cap - total;
    zs.next_in = (Bytef *)next;
    zs.avail_in = (uInt)in_chunk;
    zs.next_out = out + total;
    zs.avail_out = (uInt)out_chunk;
    int zr = inflate(&zs, Z_NO_FLUSH);
    size_t consumed = in_chunk - zs.avail_in;
    next += consumed;
    left -= consumed;
    total += out_chunk - zs.avail_out;
    if (zr == Z_STREAM_END) {
      if (total > max_out) {
        result = pp_err_set(err, PP_ELIMIT,
                            "gzip: decompressed size exceeds the limit of %zu bytes", max_out);
        break;
      }
      if (left == 0) break;
      /* Concatenated gzip members are one stream (Go's reader accepts them); anything else
       * after the end is corruption. */
      if (left >= 2 && next[0] == 0x1f && next[1] == 0x8b) {
        inflateReset(&zs);
        continue;
      }
      result = pp_err_set(err, PP_EINVAL, "gzip: %zu bytes of trailing garbage", left);
      break;
    }
    if (zr == Z_BUF_ERROR && left == 0 && zs.avail_out != 0) {
      result = pp_err_set(err, PP_EINVAL, "gzip: truncated stream");
      break;
    }
    if (zr != Z_OK && zr != Z_BUF_ERROR) {
      result = pp_err_set(err, PP_EINVAL, "gzip: %s", zs.msg ? zs.msg : "corrupt stream");
      break;
    }
  }
  inflateEnd(&zs);
  if (result < 0) {
    free(out);
    return result;
  }
  *ret_buf = out;
  *ret_len = total;
  return 0;
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
  uint8_t *raw = NULL;
  size_t rawlen = 0;
  int r = pprof_gunzip(data, len, limits->max_decompressed, &raw, &rawlen, err);
  if (r < 0) return r;
  if (rawlen == 0) {
    free(raw);
    return pp_err_set(err, PP_EINVAL, "empty profile");
  }
  r = pprof_decode_wire(raw, rawlen, limits, ret_profile, err);
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
