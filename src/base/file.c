/* Whole-file reads under a cap; see file.h. */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pp_read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len, pp_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno));
  struct stat st;
  size_t cap = 4096;
  if (fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      close(fd);
      return pp_err_set(err, PP_EIO, "%s: %s", path, strerror(EISDIR));
    }
    if (S_ISREG(st.st_mode)) {
      if ((uint64_t)st.st_size > max) {
        close(fd);
        return pp_err_set(err, PP_ELIMIT, "%s: %lld bytes, over the limit of %zu", path,
                          (long long)st.st_size, max);
      }
      cap = (size_t)st.st_size + 1; /* + 1: a file that grew meanwhile is still noticed */
    }
  }
  if (cap > max + 1) cap = max + 1;
  uint8_t *buf = malloc(cap + 1);
  size_t got = 0;
  int r = 0;
  while (buf) {
    if (got == cap) {
      if (cap > max) break; /* read max + 1: over the limit */
      size_t nc = cap * 2 > max + 1 ? max + 1 : cap * 2;
      uint8_t *nb = realloc(buf, nc + 1);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap = nc;
    }
    ssize_t n = read(fd, buf + got, cap - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r = pp_err_set(err, PP_EIO, "%s: %s", path, strerror(errno));
      break;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (!buf) return pp_err_set(err, PP_ENOMEM, "out of memory");
  if (r == 0 && got > max)
    r = pp_err_set(err, PP_ELIMIT, "%s: more than %zu bytes, over the limit", path, max);
  if (r < 0) {
    free(buf);
    return r;
  }
  buf[got] = '\0';
  *ret = buf;
  *ret_len = got;
  return 0;
}
