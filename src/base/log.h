/* log: the programs' one log format and level filter (logfmt lines on stderr:
 * `ts=2025-01-02T03:04:05.678Z level=info msg="..."`, quotes, backslashes and line breaks in the
 * message escaped so a line is always one record).
 *
 * Only programs log, at their boundary (bin/collector's and bin/operator's loops); libraries
 * return a pp_err instead. The level is process-wide and set once at start-up
 * (--log-level); lines below it cost one comparison. Thread-safe: one fprintf per line.
 */
#ifndef PP_LOG_H
#define PP_LOG_H

#include <stdbool.h>

typedef enum pp_log_level { PP_LOG_DEBUG, PP_LOG_INFO, PP_LOG_WARN, PP_LOG_ERROR } pp_log_level;

/* "debug", "info", "warn" or "error" -> the level; -1 for anything else. */
int pp_log_level_from_name(const char *name);
void pp_log_set_level(pp_log_level level);
bool pp_log_enabled(pp_log_level level);
void pp_log(pp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
