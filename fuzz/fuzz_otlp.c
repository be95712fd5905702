/* Fuzz target for OTLP profiles as the collector reads them (web_otlp_profiles): the first byte
 * picks the encoding (bit 0: JSON, else protobuf; bit 1: the body gzip-compressed by the
 * client), the rest is the ExportProfilesServiceRequest. Nothing is stored: the push hook checks
 * what would be (fuzz_push_common.h). Never crashes; every answer is 200 or an OTLP error status. */
#include "../src/collector/web_otlp.h"
#include "fuzz_push_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_push_body(data, size, "application/x-protobuf", web_otlp_profiles);
  return 0;
}
