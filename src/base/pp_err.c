#include "pp_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int pp_err_set(pp_err *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}

void pp_err_prefix(pp_err *err, const char *prefix) {
  if (!err) return;
  size_t pl = strlen(prefix), ml = strlen(err->msg), cap = sizeof err->msg - 1;
  if (pl + 2 > cap) pl = cap - 2;
  if (pl + 2 + ml > cap) ml = cap - pl - 2; /* keep the prefix, cut the tail */
  memmove(err->msg + pl + 2, err->msg, ml);
  memcpy(err->msg, prefix, pl);
  err->msg[pl] = ':';
  err->msg[pl + 1] = ' ';
  err->msg[pl + 2 + ml] = '\0';
}

const char *pp_strerror(int code) {
  switch (code) {
  case PP_OK: return "success";
  case PP_ENOMEM: return "out of memory";
  case PP_EINVAL: return "invalid input";
  case PP_ELIMIT: return "limit exceeded";
  case PP_EIO: return "I/O error";
  case PP_EMISMATCH: return "incompatible inputs";
  case PP_EUSAGE: return "bad usage";
  default: return "unknown error";
  }
}
