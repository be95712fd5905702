/* Logging; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"

static const char *const names[] = {"debug", "info", "warn", "error"};
static pp_log_level threshold = PP_LOG_INFO;

int pp_log_level_from_name(const char *name) {
  for (int i = 0; i < 4; i++)
    if (name && !strcmp(name, names[i])) return i;
  return -1;
}

void pp_log_set_level(pp_log_level level) { threshold = level; }

bool pp_log_enabled(pp_log_level level) { return level >= threshold; }

void pp_log(pp_log_level level, const char *fmt, ...) {
  if (level < threshold || level > PP_LOG_ERROR) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct timespec ts = pp_clock_timespec(pp_clock_real_ns());
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char t[40];
  strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
  /* logfmt: msg is quoted, quotes and newlines in it escaped, and every other control byte as
   * \xNN (a server's or a profile's text must not move a terminal's cursor or fake a line) */
  char q[4 * sizeof msg + 8];
  size_t o = 0;
  for (const char *s = msg; *s && o < sizeof q - 5; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') q[o++] = '\\', q[o++] = (char)c;
    else if (c == '\n') q[o++] = '\\', q[o++] = 'n';
    else if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(q + o, 5, "\\x%02x", c);
    else q[o++] = (char)c;
  }
  q[o] = '\0';
  fprintf(stderr, "ts=%s.%03ldZ level=%s msg=\"%s\"\n", t, ts.tv_nsec / 1000000, names[level], q);
}
