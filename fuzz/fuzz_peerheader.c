/* Fuzz target for what a collector reads from its peers' answers' headers (web_fanout__header,
 * collector/web_fanout.h): the input is cut into lines at '\n' (each keeps its '\n', as curl
 * hands them) and read into one web_fanout_meta. Never crashes, and afterwards:
 *   - partial is NUL-terminated within its buffer, printable ASCII only, and non-empty exactly
 *     when a line named X-Pprof-Partial, however long that line;
 *   - type is NULL or one of cfg_type_name;
 *   - a line "X-Pprof-Partial: TEXT\r\n" (blanks before TEXT, TEXT printable and fitting, the line
 *     within the reader's 255 bytes) leaves TEXT exactly, when no later line names the header
 *     again. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../src/collector/config.h"
#include "../src/collector/web_fanout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool names_partial(const char *p, size_t n) { return n >= 16 && !strncasecmp(p, "X-Pprof-Partial:", 16); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 8192) return 0;
  const char *s = (const char *)data;
  web_fanout_meta m;
  memset(&m, 0, sizeof m);
  bool named = false;
  const char *want = NULL; /* the last line naming X-Pprof-Partial, if it is a plain one */
  size_t nwant = 0;
  for (size_t i = 0; i < size;) {
    const char *e = memchr(s + i, '\n', size - i);
    size_t n = e ? (size_t)(e - (s + i)) + 1 : size - i;
    web_fanout__header(s + i, n, &m);
    if (names_partial(s + i, n)) {
      named = true;
      want = NULL;
      const char *t = s + i + 16;
      size_t tn = n - 16;
      while (tn && (*t == ' ' || *t == '\t')) t++, tn--;
      bool plain = n < 256 && tn >= 3 && t[tn - 2] == '\r' && t[tn - 1] == '\n' && tn - 2 < sizeof m.partial;
      for (size_t j = 0; plain && j < tn - 2; j++) plain = t[j] >= 0x20 && t[j] < 0x7f;
      if (plain) want = t, nwant = tn - 2;
    }
    i += n;
  }
  size_t len = strnlen(m.partial, sizeof m.partial);
  if (len == sizeof m.partial) abort();
  for (size_t j = 0; j < len; j++)
    if (m.partial[j] < 0x20 || m.partial[j] >= 0x7f) abort();
  if (!len != !named) abort();
  if (want && (len != nwant || memcmp(m.partial, want, nwant))) abort();
  if (m.type) {
    bool known = false;
    for (int k = 0; k < CFG_NTYPES; k++) known |= m.type == cfg_type_name[k];
    if (!known) abort();
  }
  return 0;
}
