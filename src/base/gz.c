/* gzip for whole buffers; see gz.h. */
#include "gz.h"

#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Whole-buffer gzip with libdeflate: at the same level it is several times faster than zlib
 * and compresses a little better; the output is ordinary gzip. */
int pp_gzip(const void *data, size_t len, int level, uint8_t **ret_buf, size_t *ret_len, pp_err *err) {
  const uint8_t *in = data;
  struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
  if (!c) return pp_err_set(err, PP_ENOMEM, "gzip: cannot allocate a compressor");
  size_t cap = libdeflate_gzip_compress_bound(c, len);
  uint8_t *out = malloc(cap);
  size_t n = out ? libdeflate_gzip_compress(c, in, len, out, cap) : 0;
  libdeflate_free_compressor(c);
  if (n == 0) {
    free(out);
    return pp_err_set(err, PP_ENOMEM, "gzip: compression failed");
  }
  *ret_buf = out;
  *ret_len = n;
  return 0;
}

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

int pp_gunzip(const void *data, size_t len, size_t max_out, uint8_t **ret_buf, size_t *ret_len, pp_err *err) {
  const uint8_t *in = data;
  if (len < 2 || in[0] != 0x1f || in[1] != 0x8b) {
    if (len > max_out)
      return pp_err_set(err, PP_ELIMIT, "input is %zu bytes, over the limit of %zu", len, max_out);
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
