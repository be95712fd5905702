/* pp_err: the one error idiom of pprof-controller.
 *
 * Every fallible function returns an int: 0 (or a non-negative count) on success, a negative
 * PP_E* code on failure. Functions that can say more take a `pp_err *err` last argument (which
 * may be NULL) and fill it on failure only, with the code and one line of text meant for a
 * human ("decode: location 7 refers to missing function 12"). Libraries never log; programs
 * print err->msg once, at their boundary. Output parameters are named ret_* and are written
 * only on success.
 */
#ifndef PP_ERR_H
#define PP_ERR_H

#include <stddef.h>

enum {
  PP_OK = 0,
  PP_ENOMEM = -1,    /* allocation failed or a memory budget was exhausted */
  PP_EINVAL = -2,    /* malformed input: the message says which part */
  PP_ELIMIT = -3,    /* input is well formed but exceeds a configured limit */
  PP_EIO = -4,       /* reading or writing a file or socket failed (errno in the message) */
  PP_EMISMATCH = -5, /* inputs are individually valid but cannot be combined */
  PP_EUSAGE = -6,    /* the caller asked for something that does not exist (bad index...) */
};

typedef struct pp_err {
  int code;      /* the PP_E* value also returned by the failing call */
  char msg[512]; /* NUL-terminated, one line, no trailing newline */
} pp_err;

/* Formats the message into err (if non-NULL) and returns code, so a failure reads as
 * `return pp_err_set(err, PP_EINVAL, "sample %zu: ...", i);`. */
int pp_err_set(pp_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an already set message (e.g. the file name at a tool boundary). */
void pp_err_prefix(pp_err *err, const char *prefix);

/* A short static name for a code: "out of memory", "invalid input", ... */
const char *pp_strerror(int code);

#endif
