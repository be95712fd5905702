/* Fuzz target for Pyroscope's push API as the collector reads it (web_push_connect): the first
 * byte picks the encoding (bit 0: JSON, else protobuf; bit 1: the body gzip-compressed by the
 * client), the rest is the request body. Nothing is stored: the push hook checks what would be
 * (fuzz_push_common.h). Never crashes; every answer is 200 or a Connect error with a status. */
#include "fuzz_push_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_push_body(data, size, "application/proto", web_push_connect);
  return 0;
}
