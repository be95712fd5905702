/* faultinj: an LD_PRELOAD shim that makes file-system calls fail on demand, for the faults a
 * real disk rarely gives a test (an fdatasync that fails with EIO, a quota: EDQUOT).
 *
 *   LD_PRELOAD=build/rel/tests/libfaultinj.so PP_FAULTINJ=/tmp/x/faults bin/collector ...
 *
 * While the file named by PP_FAULTINJ exists, each of its lines "CALL ERRNO PATH-PART" makes
 * CALL fail with ERRNO on every file descriptor whose path (as /proc/self/fd shows it) contains
 * PATH-PART; anything else passes through. CALL is fdatasync, fsync, write (write and writev)
 * or pwrite (pwrite and pwrite64, which SQLite uses); ERRNO is EIO, ENOSPC or EDQUOT. Creating
 * or removing the file turns the faults on or off while the process runs; the file is read at
 * every call, which is slow and fine for tests. Test code only: never built into a product. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int errno_named(const char *n) {
  if (!strcmp(n, "EIO")) return EIO;
  if (!strcmp(n, "ENOSPC")) return ENOSPC;
  if (!strcmp(n, "EDQUOT")) return EDQUOT;
  return 0;
}

/* The errno CALL on fd must fail with now, or 0. Reads the control file with read(2) only (no
 * stdio, no write) so that it never calls what it intercepts. */
static int fault_for(const char *call, int fd) {
  const char *ctl = getenv("PP_FAULTINJ");
  if (!ctl || !*ctl) return 0;
  int saved = errno;
  int cfd = open(ctl, O_RDONLY | O_CLOEXEC);
  if (cfd < 0) {
    errno = saved;
    return 0;
  }
  char buf[2048];
  ssize_t n = read(cfd, buf, sizeof buf - 1);
  close(cfd);
  int e = 0;
  if (n > 0) {
    buf[n] = 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t pl = readlink(link, path, sizeof path - 1);
    path[pl > 0 ? pl : 0] = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line && !e; line = strtok_r(NULL, "\n", &save)) {
      char c[32], en[32], part[1024];
      if (sscanf(line, "%31s %31s %1023s", c, en, part) == 3 && !strcmp(c, call) && strstr(path, part))
        e = errno_named(en);
    }
  }
  errno = saved;
  return e;
}

typedef int (*sync_fn)(int);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);

/* the next definition of name (libc's), looked up once */
#define REAL(name, type) \
  static type real_##name; \
  if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)

int fdatasync(int fd) {
  REAL(fdatasync, sync_fn);
  int e = fault_for("fdatasync", fd);
  if (e) return errno = e, -1;
  return real_fdatasync(fd);
}

int fsync(int fd) {
  REAL(fsync, sync_fn);
  int e = fault_for("fsync", fd);
  if (e) return errno = e, -1;
  return real_fsync(fd);
}

ssize_t write(int fd, const void *b, size_t n) {
  REAL(write, write_fn);
  /* stdout and stderr (the log) are never made to fail: the test reads them */
  int e = fd > 2 ? fault_for("write", fd) : 0;
  if (e) return errno = e, -1;
  return real_write(fd, b, n);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  REAL(writev, writev_fn);
  int e = fd > 2 ? fault_for("write", fd) : 0;
  if (e) return errno = e, -1;
  return real_writev(fd, iov, cnt);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off) {
  REAL(pwrite, pwrite_fn);
  int e = fault_for("pwrite", fd);
  if (e) return errno = e, -1;
  return real_pwrite(fd, b, n, off);
}

ssize_t pwrite64(int fd, const void *b, size_t n, off64_t off) {
  REAL(pwrite64, pwrite64_fn);
  int e = fault_for("pwrite", fd);
  if (e) return errno = e, -1;
  return real_pwrite64(fd, b, n, off);
}
