/* codec-bench: in-process timings of the codec, median of several runs, one JSON object per
 * command on stdout (bench/run.py reads them).
 *   codec-bench decode FILE RUNS   gunzip, protobuf-c unpack alone, full decode, top
 *   codec-bench merge RUNS FILE... decode every file once, then time pprof_merge
 *   codec-bench merge-cap BYTES RUNS FILE...  the same through a merger capped at BYTES */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/base/file.h"
#include "../src/codec/pprof_int.h"
#include "profile.pb-c.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* the file, or NULL (profiles here are small; 256 MiB is the store's own record cap) */
static uint8_t *read_file(const char *path, size_t *len) {
  uint8_t *b = NULL;
  return pp_read_file(path, (size_t)256 << 20, &b, len, NULL) == 0 ? b : NULL;
}

static void die(const char *what, const pp_err *e) {
  fprintf(stderr, "codec-bench: %s: %s\n", what, e ? e->msg : "failed");
  exit(1);
}

static int bench_decode(const char *path, int runs) {
  size_t zlen, rawlen;
  uint8_t *z = read_file(path, &zlen), *raw;
  pp_err err = {0};
  if (!z) die(path, NULL);
  if (pprof_gunzip(z, zlen, (size_t)1 << 30, &raw, &rawlen, &err) < 0) die("gunzip", &err);
  free(raw);
  double *g = calloc((size_t)runs, sizeof *g), *u = calloc((size_t)runs, sizeof *u),
         *d = calloc((size_t)runs, sizeof *d), *t = calloc((size_t)runs, sizeof *t),
         *pc = calloc((size_t)runs, sizeof *pc);
  pprof_limits lim;
  pprof_limits_default(&lim);
  for (int i = 0; i < runs; i++) {
    double t0 = now_ms();
    if (pprof_gunzip(z, zlen, (size_t)1 << 30, &raw, &rawlen, &err) < 0) die("gunzip", &err);
    g[i] = now_ms() - t0;

    t0 = now_ms();
    Pprofwire__Profile *w = pprofwire__profile__unpack(NULL, rawlen, raw);
    u[i] = now_ms() - t0;
    if (!w) die("protobuf-c unpack", NULL);
    pprofwire__profile__free_unpacked(w, NULL);

    pprof_profile *p;
    t0 = now_ms();
    if (pprof_decode_pbc(raw, rawlen, &lim, &p, &err) < 0) die("decode (protobuf-c)", &err);
    pc[i] = now_ms() - t0;
    pprof_free(p);

    t0 = now_ms();
    if (pprof_decode(raw, rawlen, NULL, &p, &err) < 0) die("decode", &err);
    d[i] = now_ms() - t0;

    pprof_top top;
    t0 = now_ms();
    if (pprof_top_compute(p, pprof_sample_index(p, NULL, NULL), &top, &err) < 0) die("top", &err);
    t[i] = now_ms() - t0;
    pprof_top_release(&top);
    pprof_free(p);
    free(raw);
  }
  double dm = median(d, runs);
  printf("{\"file\": \"%s\", \"compressed_bytes\": %zu, \"raw_bytes\": %zu, \"gunzip_ms\": %.3f, "
         "\"protobuf_c_unpack_ms\": %.3f, \"protobuf_c_decode_ms\": %.3f, \"decode_ms\": %.3f, "
         "\"decode_mb_s\": %.1f, \"top_ms\": %.3f}\n",
         path, zlen, rawlen, median(g, runs), median(u, runs), median(pc, runs), dm,
         (double)rawlen / 1e6 / (dm / 1e3), median(t, runs));
  free(z);
  free(g);
  free(u);
  free(d);
  free(t);
  free(pc);
  return 0;
}

/* cap 0: pprof_merge; else the incremental merger under pprof_merger_set_limit(cap), to time
 * the cap's checks (a cap the merge stays under) */
static int bench_merge(int runs, char **files, int n, size_t cap) {
  pprof_profile **ps = calloc((size_t)n, sizeof *ps);
  pp_err err = {0};
  double t0 = now_ms();
  for (int i = 0; i < n; i++)
    if (pprof_decode_file(files[i], NULL, &ps[i], &err) < 0) die(files[i], &err);
  double decode_ms = now_ms() - t0;
  double *m = calloc((size_t)runs, sizeof *m);
  size_t nsample = 0;
  for (int r = 0; r < runs; r++) {
    pprof_profile *out;
    t0 = now_ms();
    if (!cap) {
      if (pprof_merge(ps, (size_t)n, &out, &err) < 0) die("merge", &err);
    } else {
      pprof_merger *mg;
      if (pprof_merger_new(&mg, &err) < 0) die("merge", &err);
      pprof_merger_set_limit(mg, cap);
      for (int i = 0; i < n; i++)
        if (pprof_merger_add(mg, ps[i], 1, &err) < 0) die("merge", &err);
      if (pprof_merger_finish(mg, &out, &err) < 0) die("merge", &err);
    }
    m[r] = now_ms() - t0;
    nsample = out->nsample;
    pprof_free(out);
  }
  printf(
      "{\"profiles\": %d, \"decode_all_ms\": %.3f, \"merge_ms\": %.3f, \"merged_samples\": %zu}\n",
      n, decode_ms, median(m, runs), nsample);
  for (int i = 0; i < n; i++)
    pprof_free(ps[i]);
  free(ps);
  free(m);
  return 0;
}

/* pprof_focus_compute on one decoded profile (the default sample type): median of runs */
static int bench_focus(const char *path, const char *name, int runs) {
  pprof_profile *p;
  pp_err err = {0};
  if (pprof_decode_file(path, NULL, &p, &err) < 0) die(path, &err);
  int si = pprof_sample_index(p, NULL, NULL);
  double *f = calloc((size_t)runs, sizeof *f);
  size_t ncallers = 0, ncallees = 0, nlines = 0;
  for (int i = 0; i < runs; i++) {
    pprof_focus fo;
    const pprof_profile *ps[1] = {p};
    double t0 = now_ms();
    if (pprof_focus_compute(ps, &si, 1, name, 0, &fo, &err) < 0) die("focus", &err);
    f[i] = now_ms() - t0;
    if (!fo.found) die("focus: function not in the profile", NULL);
    ncallers = fo.callers.nnodes, ncallees = fo.callees.nnodes, nlines = fo.nlines;
    pprof_focus_release(&fo);
  }
  printf("{\"file\": \"%s\", \"samples\": %zu, \"focus_ms\": %.3f, \"callers_nodes\": %zu, \"callees_nodes\": %zu, "
         "\"lines\": %zu}\n",
         path, p->nsample, median(f, runs), ncallers, ncallees, nlines);
  free(f);
  pprof_free(p);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && !strcmp(argv[1], "decode")) return bench_decode(argv[2], atoi(argv[3]));
  if (argc >= 4 && !strcmp(argv[1], "merge")) return bench_merge(atoi(argv[2]), argv + 3, argc - 3, 0);
  if (argc >= 5 && !strcmp(argv[1], "merge-cap"))
    return bench_merge(atoi(argv[3]), argv + 4, argc - 4, (size_t)strtoull(argv[2], NULL, 10));
  if (argc >= 5 && !strcmp(argv[1], "focus")) return bench_focus(argv[2], argv[3], atoi(argv[4]));
  fprintf(stderr, "usage: codec-bench decode FILE RUNS | merge RUNS FILE... | merge-cap BYTES RUNS FILE... | focus FILE NAME RUNS\n");
  return 2;
}
