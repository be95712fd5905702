/* Segment files and the record format (see store_int.h). Everything that writes, reads, checks
 * or scans records goes through here, so a new format changes this file and REC_* only. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "store_int.h"

char *seg__path(const char *segdir, int64_t id) {
  char *p = NULL;
  if (asprintf(&p, "%s/%016" PRIx64 ".seg", segdir, (uint64_t)id) < 0) return NULL;
  return p;
}

static const char *const magics[] = {[REC_V1] = REC_MAGIC, [REC_V2] = REC2_MAGIC, [REC_SYM] = SYM_MAGIC};

/* The kind a magic names, or REC_ANY when it is none. */
static int magic_kind(const uint8_t *b) {
  for (int k = REC_V1; k <= REC_SYM; k++)
    if (!memcmp(b, magics[k], 4)) return k;
  return REC_ANY;
}

bool seg__parse_hdr(const uint8_t *b, rec_hdr *h) {
  if ((h->kind = magic_kind(b)) == REC_ANY) return false;
  memcpy(&h->meta_len, b + 4, 4);
  memcpy(&h->data_len, b + 8, 4);
  memcpy(&h->crc, b + 12, 4);
  return h->meta_len <= MAX_META && h->data_len <= MAX_DATA;
}

int seg__write(int fd, uint64_t at, int kind, const char *meta, size_t mlen, const uint8_t *data, size_t len,
               rec_hdr *ret_h, int *ret_errno) {
  rec_hdr h = {(uint32_t)mlen, (uint32_t)len, 0, kind};
  uLong crc = crc32(0, (const Bytef *)meta, (uInt)mlen);
  h.crc = (uint32_t)crc32(crc, data, (uInt)len);
  uint8_t hb[REC_HDR];
  memcpy(hb, magics[kind], 4);
  memcpy(hb + 4, &h.meta_len, 4);
  memcpy(hb + 8, &h.data_len, 4);
  memcpy(hb + 12, &h.crc, 4);
  struct iovec iov[3] = {{hb, REC_HDR}, {(void *)meta, mlen}, {(void *)data, len}};
  size_t total = REC_HDR + mlen + len, done = 0;
  while (done < total) {
    ssize_t n = writev(fd, iov, 3);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *ret_errno = n < 0 ? errno : EIO;
      /* nothing of a failed record stays behind */
      return ftruncate(fd, (off_t)at) < 0 ? -2 : -1;
    }
    done += (size_t)n;
    /* advance the iovecs past what was written (short writes are rare but legal) */
    size_t skip = (size_t)n;
    for (int i = 0; i < 3; i++) {
      size_t k = skip < iov[i].iov_len ? skip : iov[i].iov_len;
      iov[i].iov_base = (char *)iov[i].iov_base + k;
      iov[i].iov_len -= k;
      skip -= k;
    }
  }
  *ret_h = h;
  return 0;
}

/* Makes *buf hold at least n bytes plus one (so text in it can end in NUL). */
static bool grow(uint8_t **buf, size_t *cap, size_t n) {
  if (n + 1 <= *cap) return true;
  uint8_t *nb = realloc(*buf, n + 1);
  if (!nb) return false;
  *buf = nb;
  *cap = n + 1;
  return true;
}

/* Reads n bytes at off: 0, 1 when the file ends first, -1 on a read error. */
static int read_at(int fd, uint64_t off, uint8_t *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t k = pread(fd, p + got, n - got, (off_t)(off + got));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return -1;
    if (k == 0) return 1;
    got += (size_t)k;
  }
  return 0;
}

int seg__read_record(int fd, uint64_t off, uint64_t limit, const rec_hdr *want, rec_hdr *ret_h, uint8_t **buf,
                     size_t *cap) {
  /* with want, the header and the body come in one read; a walk reads the header first, which
   * says how long the record is */
  if (want && (want->meta_len > MAX_META || want->data_len > MAX_DATA)) return 0;
  size_t n = REC_HDR + (want ? (size_t)want->meta_len + want->data_len : 0);
  rec_hdr h;
  int r;
  if (off + n > limit) return 0;
  if (!grow(buf, cap, n)) return -1;
  if ((r = read_at(fd, off, *buf, n)) != 0) return r < 0 ? -1 : 0;
  if (!seg__parse_hdr(*buf, &h)) return 0;
  if (want && (h.meta_len != want->meta_len || h.data_len != want->data_len || h.crc != want->crc ||
               (want->kind != REC_ANY && h.kind != want->kind)))
    return 0;
  uint64_t body = (uint64_t)h.meta_len + h.data_len;
  if (off + REC_HDR + body > limit) return 0;
  if (!want) {
    if (!grow(buf, cap, REC_HDR + (size_t)body)) return -1;
    if ((r = read_at(fd, off + REC_HDR, *buf + REC_HDR, (size_t)body)) != 0) return r < 0 ? -1 : 0;
  }
  if ((uint32_t)crc32(0, *buf + REC_HDR, (uInt)body) != h.crc) return 0;
  *ret_h = h;
  return 1;
}

/* The next offset at or after off where a magic (of any kind) starts, or sc->size. */
static uint64_t find_magic(seg_scan *sc, uint64_t off) {
  uint8_t chunk[65536];
  while (off + REC_HDR <= sc->size) {
    ssize_t n = pread(sc->fd, chunk, sizeof chunk, (off_t)off);
    if (n < 4) break;
    for (const uint8_t *m = chunk; (m = memmem(m, (size_t)(chunk + n - m), "PP", 2)) && m + 4 <= chunk + n; m++)
      if (magic_kind(m) != REC_ANY) return off + (uint64_t)(m - chunk);
    off += (uint64_t)n - 3; /* the magic may straddle two chunks */
  }
  return sc->size;
}

int seg__scan_next(seg_scan *sc) {
  bool damaged = false;
  uint64_t off = sc->off;
  while (off + REC_HDR <= sc->size) {
    int r = seg__read_record(sc->fd, off, sc->size, NULL, &sc->h, &sc->buf, &sc->cap);
    if (r < 0) return r;
    if (r == 1) {
      if (damaged) sc->skipped++;
      sc->rec_off = off;
      sc->off = sc->end = off + REC_HDR + sc->h.meta_len + sc->h.data_len;
      return 1;
    }
    /* a damaged record: its length cannot be trusted, so look for the next sound record from
     * the following byte on (a false magic inside the damage fails its CRC) */
    damaged = true;
    off = find_magic(sc, off + 1);
  }
  sc->off = sc->size;
  return 0;
}
