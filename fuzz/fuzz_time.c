/* Fuzz target for the API's time parameter parser (from/to): never crashes, and a value it
 * accepts as plain seconds reads back the same when printed as seconds.nanoseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/collector/web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char s[128];
  if (size >= sizeof s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  int64_t ns;
  if (web_parse_time(s, &ns) < 0) return 0;
  if (ns < 0) abort();
  char back[64];
  snprintf(back, sizeof back, "%lld.%09lld", (long long)(ns / 1000000000),
           (long long)(ns % 1000000000));
  int64_t again;
  if (web_parse_time(back, &again) < 0 || again != ns) abort();
  return 0;
}
