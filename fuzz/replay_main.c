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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The sanitizers call this before they end the process (any report is fatal here). */
void __sanitizer_set_death_callback(void (*callback)(void));
static const char *current;
static void name_input(void) {
  fprintf(stderr, "replay: the report above came from %s\n", current ? current : "the run as a whole (leaks are found at exit)");
}

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  size_t got = fread(buf, 1, (size_t)(n > 0 ? n : 0), f);
  fclose(f);
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
