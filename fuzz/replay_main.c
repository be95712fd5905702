/* Replays fuzz corpora without libFuzzer: runs LLVMFuzzerTestOneInput on every file named on
 * the command line or found in the named directories. Built with clang's ASan+UBSan and
 * -fno-sanitize-recover=all, as the fuzzers are, so `make test` fails on any input a fuzzer
 * ever found interesting that now crashes, leaks or runs into undefined behaviour; the input
 * that did it is named on stderr. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/base/file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The sanitizers call this before they end the process (any report is fatal here). */
void __sanitizer_set_death_callback(void (*callback)(void));
static const char *current;
static void name_input(void) {
  fprintf(stderr, "replay: the report above came from %s\n", current ? current : "the run as a whole (leaks are found at exit)");
}

/* corpus inputs are small (libFuzzer's -max_len is 4096 unless raised); a bigger file is a
 * mistake in the corpus, named, not an input */
#define REPLAY_MAX_INPUT ((size_t)64 << 20)

static int run_file(const char *path) {
  uint8_t *buf = NULL;
  size_t got = 0;
  pp_err err = {0};
  if (pp_read_file(path, REPLAY_MAX_INPUT, &buf, &got, &err) < 0) {
    fprintf(stderr, "replay: %s\n", err.msg);
    return 1;
  }
  current = path;
  LLVMFuzzerTestOneInput(buf, got);
  current = NULL;
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  int files = 0, bad = 0;
  __sanitizer_set_death_callback(name_input);
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) < 0) {
      perror(argv[i]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      bad += run_file(argv[i]);
      files++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
      bad += run_file(path);
      files++;
    }
    if (d) closedir(d);
  }
  printf("replayed %d inputs\n", files);
  return bad ? 1 : files == 0;
}
