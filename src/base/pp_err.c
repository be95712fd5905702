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
  char tmp[sizeof err->msg];
  snprintf(tmp, sizeof tmp, "%s: %s", prefix, err->msg);
  memcpy(err->msg, tmp, sizeof tmp);
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
