/* pprof-tool: the codec on the command line (top, folded, merge, diff, info, pgo).
 * Every subcommand takes one or more profile files; several files are merged first. This is
 * a program boundary: errors from the codec are printed here, once, prefixed with the tool
 * name, and mapped to the exit codes documented in usage(). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../base/clock.h"
#include "../base/file.h"
#include "../base/version.h"
#include "../codec/pprof.h"

#define EXIT_DATA 1   /* a profile could not be read, decoded or combined */
#define EXIT_USAGE 2  /* bad command line */
#define EXIT_OUTPUT 3 /* the output could not be written */

static void usage(FILE *f) {
  fputs("usage: pprof-tool COMMAND [options] FILE...\n"
        "\n"
        "Reads pprof profiles (gzip-compressed or raw protobuf); several FILEs are merged first.\n"
        "\n"
        "commands:\n"
        "  top [--sample-index=N|NAME] [--nodecount=N] [--raw] FILE...\n"
        "      per-function flat and cum, laid out like `go tool pprof -top`; with --raw one\n"
        "      line per function: flat<TAB>cum<TAB>name, in the sample type's own unit,\n"
        "      every function, sorted by flat descending then name\n"
        "  folded [--sample-index=N|NAME] FILE...\n"
        "      folded stacks: one `root;...;leaf value` line per distinct stack\n"
        "  merge -o OUT FILE...\n"
        "      writes the merged profile (gzip protobuf)\n"
        "  diff --base BASE [-o OUT] [--sample-index=...] [--nodecount=N] [--raw] FILE...\n"
        "      FILE... minus BASE: written as a profile with -o, else printed as top\n"
        "  focus --function=NAME [--sample-index=...] FILE...\n"
        "      the sandwich of one function (exact name as top prints it), one line each:\n"
        "      `focus FLAT CUM`, `caller TOTAL NAME` and `callee TOTAL NAME` (one level deep,\n"
        "      the weights go tool pprof -peek gives), `line FLAT CUM FILE:LINE`; tab-separated;\n"
        "      exit 1 when no sample has the function\n"
        "  info FILE...\n"
        "      sample types, period, counts, time span and totals per sample type\n"
        "  pgo -o OUT [--keep-locations=N] [--no-aggregate-callees] FILE...\n"
        "      the merged CPU profile trimmed for `go build -pgo=OUT`: each sample keeps its N\n"
        "      leaf-most locations (default 5, 0 = all), the line inside the leaf function is\n"
        "      dropped so samples differing only there merge (unless --no-aggregate-callees),\n"
        "      and sample labels are dropped\n"
        "\n"
        "--tag=KEY=VALUE keeps only samples whose string label KEY is VALUE, --tag=KEY!=VALUE\n"
        "drops them (KEY= keeps samples without KEY); repeatable (at most 16), all must hold;\n"
        "applied to the merged profile (and to BASE) before any command\n"
        "--tagroot=KEY adds a root frame per value of the string label KEY, as\n"
        "`go tool pprof -tagroot=KEY` does (after --tag)\n"
        "\n"
        "exit codes: 0 success, 1 a profile could not be read, decoded or combined,\n"
        "            2 bad command line, 3 the output could not be written\n",
        f);
}

typedef struct opts {
  const char *sample_index;
  const char *out;
  const char *base;
  const char *function;
  long nodecount; /* -1 = all */
  int raw;
  long keep_locations; /* pgo */
  bool no_aggregate;   /* pgo */
  pprof_tag_filter tags[PPROF_MAX_TAG_FILTERS];
  size_t ntags;
  const char *tagroot;
} opts;

/* Loading several files: the codec's decode pipeline reads and decodes ahead on two threads
 * while this thread merges in command-line order, freeing each input once merged. */
typedef struct load_job {
  char **files;
  pprof_merger *m;
} load_job;

static int fetch_file(void *ud, size_t i, uint8_t **buf, size_t *len, pp_err *ferr) {
  load_job *j = ud;
  return pp_read_file(j->files[i], (size_t)80 << 20, buf, len, ferr);
}

static int merge_file(void *ud, size_t i, const pprof_profile *p, const pp_err *input_err,
                      pp_err *err) {
  load_job *j = ud;
  if (!p) {
    /* name the file (decode errors do not know it) */
    if (strncmp(input_err->msg, j->files[i], strlen(j->files[i])))
      return pp_err_set(err, input_err->code, "%s: %s", j->files[i], input_err->msg);
    return pp_err_set(err, input_err->code, "%s", input_err->msg);
  }
  int r = pprof_merger_add(j->m, p, 1, err);
  if (r < 0) pp_err_prefix(err, j->files[i]);
  return r;
}

static int load_merged(char **files, int n, pprof_profile **ret) {
  pp_err err = {0};
  if (n == 1) {
    if (pprof_decode_file(files[0], NULL, ret, &err) < 0) {
      fprintf(stderr, "pprof-tool: %s\n", err.msg);
      return EXIT_DATA;
    }
    return 0;
  }
  load_job j = {files, NULL};
  if (pprof_merger_new(&j.m, &err) < 0 ||
      pprof_decode_pipeline((size_t)n, 2, 8, NULL, fetch_file, merge_file, &j, &err) < 0) {
    fprintf(stderr, "pprof-tool: %s\n", err.msg);
    pprof_merger_free(j.m);
    return EXIT_DATA;
  }
  if (pprof_merger_finish(j.m, ret, &err) < 0) {
    fprintf(stderr, "pprof-tool: %s\n", err.msg);
    return EXIT_DATA;
  }
  return 0;
}

/* ---- value formatting, after google/pprof's measurement package ---------------------------- */

typedef struct unit_step {
  const char *suffix;
  double factor;
} unit_step;

static const unit_step byte_units[] = {{"B", 1},
                                       {"kB", 1024.0},
                                       {"MB", 1048576.0},
                                       {"GB", 1073741824.0},
                                       {"TB", 1099511627776.0},
                                       {"PB", 1125899906842624.0},
                                       {NULL, 0}};
static const unit_step ns_units[] = {{"ns", 1},      {"us", 1e3},     {"ms", 1e6}, {"s", 1e9},
                                     {"mins", 60e9}, {"hrs", 3600e9}, {NULL, 0}};

static const unit_step *units_for(const char *unit) {
  if (!strcmp(unit, "bytes") || !strcmp(unit, "byte") || !strcmp(unit, "B")) return byte_units;
  if (!strcmp(unit, "nanoseconds") || !strcmp(unit, "ns")) return ns_units;
  return NULL;
}

/* The largest step that keeps |v| >= 1 in that unit. */
static int auto_step(const unit_step *u, int64_t v) {
  double a = v < 0 ? -(double)v : (double)v;
  int s = 0;
  while (u[s + 1].suffix && a >= u[s + 1].factor)
    s++;
  return s;
}

static void fmt_value(char *buf, size_t n, int64_t v, const unit_step *u, int step) {
  if (!u || v == 0) {
    snprintf(buf, n, "%lld", (long long)v);
    return;
  }
  snprintf(buf, n, "%.2f", (double)v / u[step].factor);
  size_t l = strlen(buf);
  if (l > 3 && !strcmp(buf + l - 3, ".00")) buf[l - 3] = '\0';
  strncat(buf, u[step].suffix, n - strlen(buf) - 1);
}

static void fmt_pct(char *buf, size_t n, int64_t v, int64_t total) {
  double r = total ? (double)v / (double)total * 100.0 : 0;
  if (r < 0) r = -r;
  if (r >= 99.95 && r <= 100.05)
    snprintf(buf, n, "  100%%");
  else if (r >= 1.0)
    snprintf(buf, n, "%5.2f%%", r);
  else
    snprintf(buf, n, "%5.2g%%", r);
}

static void print_header(const pprof_profile *p, int si) {
  printf("Type: %s\n", pprof_str(p, p->sample_type[si].type));
  if (p->time_nanos) {
    time_t t = (time_t)(p->time_nanos / 1000000000);
    struct tm tm;
    char tb[64];
    gmtime_r(&t, &tm);
    strftime(tb, sizeof tb, "%b %d, %Y at %H:%M:%S (UTC)", &tm);
    printf("Time: %s\n", tb);
  }
  if (p->duration_nanos) printf("Duration: %.2fs\n", (double)p->duration_nanos / 1e9);
}

static int print_top(const pprof_profile *p, int si, const opts *o) {
  pprof_top t;
  pp_err err = {0};
  if (pprof_top_compute(p, si, &t, &err) < 0) {
    fprintf(stderr, "pprof-tool: %s\n", err.msg);
    return EXIT_DATA;
  }
  size_t shown = t.nfuncs;
  if (o->nodecount >= 0 && (size_t)o->nodecount < shown) shown = (size_t)o->nodecount;
  if (o->raw) {
    for (size_t i = 0; i < shown; i++)
      printf("%lld\t%lld\t%s\n", (long long)t.funcs[i].flat, (long long)t.funcs[i].cum,
             t.funcs[i].name);
  } else {
    const unit_step *u = units_for(pprof_str(p, p->sample_type[si].unit));
    int step = 99;
    int64_t shown_flat = 0;
    for (size_t i = 0; i < shown; i++)
      shown_flat += t.funcs[i].flat;
    if (u) {
      int64_t vals[2];
      for (size_t i = 0; i < shown; i++) {
        vals[0] = t.funcs[i].flat;
        vals[1] = t.funcs[i].cum;
        for (int k = 0; k < 2; k++)
          if (vals[k] && auto_step(u, vals[k]) < step) step = auto_step(u, vals[k]);
      }
      if (step == 99) step = 0;
    }
    char a[64], b[64], c[16], d[16], e[16];
    print_header(p, si);
    fmt_value(a, sizeof a, shown_flat, u, step);
    fmt_pct(c, sizeof c, shown_flat, t.total);
    fmt_value(b, sizeof b, t.total, u, step);
    printf("Showing nodes accounting for %s, %s of %s total\n", a, c, b);
    if (shown < t.nfuncs) printf("Showing top %zu nodes out of %zu\n", shown, t.nfuncs);
    printf("      flat  flat%%   sum%%        cum   cum%%\n");
    int64_t sum = 0;
    for (size_t i = 0; i < shown; i++) {
      const pprof_func_stat *f = &t.funcs[i];
      sum += f->flat;
      fmt_value(a, sizeof a, f->flat, u, step);
      fmt_value(b, sizeof b, f->cum, u, step);
      fmt_pct(c, sizeof c, f->flat, t.total);
      fmt_pct(d, sizeof d, sum, t.total);
      fmt_pct(e, sizeof e, f->cum, t.total);
      printf("%10s %s %s %10s %s  %s\n", a, c, d, b, e, f->name);
    }
  }
  pprof_top_release(&t);
  return fflush(stdout) == 0 ? 0 : EXIT_OUTPUT;
}

static int pick_index(const pprof_profile *p, const opts *o, int *ret) {
  pp_err err = {0};
  int si = pprof_sample_index(p, o->sample_index, &err);
  if (si < 0) {
    fprintf(stderr, "pprof-tool: %s\n", err.msg);
    return EXIT_USAGE;
  }
  *ret = si;
  return 0;
}

static int write_profile(const pprof_profile *p, const char *path) {
  uint8_t *buf;
  size_t len;
  pp_err err = {0};
  if (pprof_encode(p, 6, &buf, &len, &err) < 0) {
    fprintf(stderr, "pprof-tool: encoding: %s\n", err.msg);
    return EXIT_DATA;
  }
  FILE *f = strcmp(path, "-") ? fopen(path, "wb") : stdout;
  int rc = 0;
  if (!f || fwrite(buf, 1, len, f) != len || (f != stdout ? fclose(f) : fflush(f)) != 0) {
    perror(path);
    rc = EXIT_OUTPUT;
  }
  free(buf);
  return rc;
}

/* The compiler reads the samples/count or cpu/nanoseconds column (cmd/compile's pgo): a
 * profile with neither is refused here rather than by the build. */
static int write_pgo(const pprof_profile *p, const opts *o) {
  bool cpu = false;
  for (size_t i = 0; i < p->nsample_type; i++) {
    const char *t = pprof_str(p, p->sample_type[i].type), *u = pprof_str(p, p->sample_type[i].unit);
    cpu |= (!strcmp(t, "samples") && !strcmp(u, "count")) || (!strcmp(t, "cpu") && !strcmp(u, "nanoseconds"));
  }
  if (!cpu) {
    fprintf(stderr, "pprof-tool: pgo: not a CPU profile (go build -pgo wants samples/count or cpu/nanoseconds)\n");
    return EXIT_DATA;
  }
  pprof_pgo_opts po = {.keep_locations = (size_t)o->keep_locations, .aggregate_callees = !o->no_aggregate};
  pprof_profile *t = NULL;
  pp_err err = {0};
  if (pprof_pgo_trim(p, &po, 0, &t, &err) < 0) {
    fprintf(stderr, "pprof-tool: pgo: %s\n", err.msg);
    return EXIT_DATA;
  }
  int rc = write_profile(t, o->out);
  pprof_free(t);
  return rc;
}

/* folded: walk the call tree depth first, printing the path of every node that has self
 * value; lines are collected then sorted so the output is deterministic. */
static int cmp_strp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int print_folded(const pprof_profile *p, int si) {
  pprof_tree t;
  pp_err err = {0};
  if (pprof_tree_compute(p, si, 0, &t, &err) < 0) {
    fprintf(stderr, "pprof-tool: %s\n", err.msg);
    return EXIT_DATA;
  }
  char **lines = calloc(t.nnodes, sizeof *lines);
  uint32_t *path = calloc(t.nnodes + 1, sizeof *path);
  size_t nlines = 0;
  int rc = 0;
  if (!lines || !path) {
    rc = EXIT_DATA;
    goto out;
  }
  for (size_t i = 1; i < t.nnodes; i++) {
    if (!t.nodes[i].self) continue;
    size_t depth = 0, len = 0;
    for (uint32_t n = (uint32_t)i; n != 0; n = t.nodes[n].parent) {
      path[depth++] = n;
      len += strlen(t.nodes[n].name) + 1;
    }
    char *s = malloc(len + 32);
    if (!s) {
      rc = EXIT_DATA;
      goto out;
    }
    size_t off = 0;
    while (depth-- > 0) {
      size_t l = strlen(t.nodes[path[depth]].name);
      memcpy(s + off, t.nodes[path[depth]].name, l);
      off += l;
      s[off++] = depth ? ';' : ' ';
    }
    snprintf(s + off, 32, "%lld", (long long)t.nodes[i].self);
    lines[nlines++] = s;
  }
  qsort(lines, nlines, sizeof *lines, cmp_strp);
  for (size_t i = 0; i < nlines; i++)
    puts(lines[i]);
  if (fflush(stdout) != 0) rc = EXIT_OUTPUT;
out:
  for (size_t i = 0; i < nlines; i++)
    free(lines[i]);
  free(lines);
  free(path);
  pprof_tree_release(&t);
  return rc;
}

/* The focus's depth-1 nodes of one tree, by name (a tree's children have distinct names). */
static void print_children(const char *what, const pprof_multitree *t) {
  for (size_t i = 1; i < t->nnodes; i++)
    if (t->parent[i] == 0) printf("%s\t%lld\t%s\n", what, (long long)t->total[i], t->names[i]);
}

static int print_focus(const pprof_profile *p, int si, const char *name) {
  pprof_focus f;
  pp_err err = {0};
  const pprof_profile *ps[1] = {p};
  if (pprof_focus_compute(ps, &si, 1, name, 0, &f, &err) < 0) {
    fprintf(stderr, "pprof-tool: focus: %s\n", err.msg);
    return EXIT_DATA;
  }
  if (!f.found) {
    fprintf(stderr, "pprof-tool: focus: no sample has function \"%s\"\n", name);
    pprof_focus_release(&f);
    return EXIT_DATA;
  }
  printf("focus\t%lld\t%lld\n", (long long)f.flat[0], (long long)f.cum[0]);
  print_children("caller", &f.callers);
  print_children("callee", &f.callees);
  for (size_t i = 0; i < f.nlines; i++)
    printf("line\t%lld\t%lld\t%s:%lld\n", (long long)f.lines[i].flat[0], (long long)f.lines[i].cum[0],
           f.lines[i].file, (long long)f.lines[i].line);
  pprof_focus_release(&f);
  return 0;
}

static int print_info(const pprof_profile *p) {
  printf("sample types:");
  for (size_t i = 0; i < p->nsample_type; i++)
    printf(" %s/%s%s", pprof_str(p, p->sample_type[i].type), pprof_str(p, p->sample_type[i].unit),
           (int)i == pprof_sample_index(p, NULL, NULL) ? "*" : "");
  printf("\nperiod: %lld %s/%s\n", (long long)p->period, pprof_str(p, p->period_type.type),
         pprof_str(p, p->period_type.unit));
  printf("samples: %zu\nlocations: %zu\nfunctions: %zu\nmappings: %zu\nstrings: %zu\n", p->nsample,
         p->nlocation, p->nfunction, p->nmapping, p->nstrings);
  printf("time_nanos: %lld\nduration_nanos: %lld\n", (long long)p->time_nanos,
         (long long)p->duration_nanos);
  if (p->time_nanos) {
    char a[32], b[32];
    pp_clock_rfc3339(p->time_nanos, a, sizeof a);
    pp_clock_rfc3339(p->time_nanos + p->duration_nanos, b, sizeof b);
    printf("time span: %s .. %s\n", a, b);
  }
  for (size_t i = 0; i < p->ncomment; i++)
    printf("comment: %s\n", pprof_str(p, p->comment[i]));
  for (size_t t = 0; t < p->nsample_type; t++) {
    int64_t total = 0;
    for (size_t i = 0; i < p->nsample; i++)
      total += p->sample[i].value[t];
    printf("total %s: %lld %s\n", pprof_str(p, p->sample_type[t].type), (long long)total,
           pprof_str(p, p->sample_type[t].unit));
  }
  return fflush(stdout) == 0 ? 0 : EXIT_OUTPUT;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("pprof-tool %s (revision %s)\n", PP_VERSION, PP_REVISION);
    return 0;
  }
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  opts o = {.nodecount = -1, .keep_locations = 5};
  static const struct option lo[] = {{"sample-index", required_argument, 0, 's'},
                                     {"nodecount", required_argument, 0, 'n'},
                                     {"raw", no_argument, 0, 'r'},
                                     {"output", required_argument, 0, 'o'},
                                     {"base", required_argument, 0, 'b'},
                                     {"function", required_argument, 0, 'f'},
                                     {"keep-locations", required_argument, 0, 'k'},
                                     {"no-aggregate-callees", no_argument, 0, 'A'},
                                     {"tag", required_argument, 0, 't'},
                                     {"tagroot", required_argument, 0, 'T'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  optind = 2;
  int c;
  while ((c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
    switch (c) {
    case 's': o.sample_index = optarg; break;
    case 'n': {
      char *end;
      o.nodecount = strtol(optarg, &end, 10);
      if (*end || o.nodecount < 0) {
        fprintf(stderr, "pprof-tool: --nodecount wants a non-negative number, got \"%s\"\n",
                optarg);
        return EXIT_USAGE;
      }
      break;
    }
    case 'k': {
      char *end;
      o.keep_locations = strtol(optarg, &end, 10);
      if (*end || end == optarg || o.keep_locations < 0 || o.keep_locations > 4096) {
        fprintf(stderr, "pprof-tool: --keep-locations wants 0..4096 (0 = all), got \"%s\"\n", optarg);
        return EXIT_USAGE;
      }
      break;
    }
    case 'A': o.no_aggregate = true; break;
    case 'r': o.raw = 1; break;
    case 'T': o.tagroot = optarg; break;
    case 't': {
      pp_err terr = {0};
      if (o.ntags == PPROF_MAX_TAG_FILTERS || pprof_tag_parse(optarg, &o.tags[o.ntags++], &terr) < 0) {
        fprintf(stderr, "pprof-tool: --tag: %s\n", terr.msg[0] ? terr.msg : "at most 16");
        return EXIT_USAGE;
      }
      break;
    }
    case 'o': o.out = optarg; break;
    case 'b': o.base = optarg; break;
    case 'f': o.function = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return EXIT_USAGE;
    }
  }
  char **files = argv + optind;
  int nfiles = argc - optind;
  bool known = !strcmp(cmd, "top") || !strcmp(cmd, "folded") || !strcmp(cmd, "merge") ||
               !strcmp(cmd, "diff") || !strcmp(cmd, "info") || !strcmp(cmd, "focus") ||
               !strcmp(cmd, "pgo");
  if (!known) {
    fprintf(stderr, "pprof-tool: unknown command \"%s\" (try --help)\n", cmd);
    return EXIT_USAGE;
  }
  if (nfiles < 1) {
    fprintf(stderr, "pprof-tool: %s needs at least one profile file\n", cmd);
    return EXIT_USAGE;
  }
  if ((!strcmp(cmd, "merge") || !strcmp(cmd, "pgo")) && !o.out) {
    fprintf(stderr, "pprof-tool: %s needs -o OUT\n", cmd);
    return EXIT_USAGE;
  }
  if (!strcmp(cmd, "focus") && !o.function) {
    fprintf(stderr, "pprof-tool: focus needs --function=NAME\n");
    return EXIT_USAGE;
  }
  if (!strcmp(cmd, "diff") && !o.base) {
    fprintf(stderr, "pprof-tool: diff needs --base BASE\n");
    return EXIT_USAGE;
  }

  pprof_profile *p = NULL;
  int rc = load_merged(files, nfiles, &p);
  if (rc) return rc;
  pprof_filter_tags(p, o.tags, o.ntags);
  if (o.tagroot) {
    pp_err terr = {0};
    if (pprof_tag_root(p, o.tagroot, 0, &terr) < 0) {
      fprintf(stderr, "pprof-tool: --tagroot: %s\n", terr.msg);
      pprof_free(p);
      return EXIT_DATA;
    }
  }
  if (!strcmp(cmd, "diff")) {
    pprof_profile *base = NULL, *d = NULL;
    char *bf[1] = {(char *)o.base};
    if ((rc = load_merged(bf, 1, &base)) != 0) goto done;
    pprof_filter_tags(base, o.tags, o.ntags);
    pp_err err = {0};
    if (pprof_diff(base, p, &d, &err) < 0) {
      fprintf(stderr, "pprof-tool: diff against %s: %s\n", o.base, err.msg);
      pprof_free(base);
      rc = EXIT_DATA;
      goto done;
    }
    pprof_free(base);
    pprof_free(p);
    p = d;
  }
  int si = 0;
  if (!strcmp(cmd, "merge") || (!strcmp(cmd, "diff") && o.out)) {
    rc = write_profile(p, o.out);
  } else if (!strcmp(cmd, "pgo")) {
    rc = write_pgo(p, &o);
  } else if (!strcmp(cmd, "info")) {
    rc = print_info(p);
  } else if ((rc = pick_index(p, &o, &si)) == 0) {
    rc = !strcmp(cmd, "folded") ? print_folded(p, si) : !strcmp(cmd, "focus") ? print_focus(p, si, o.function) : print_top(p, si, &o);
  }
done:
  pprof_free(p);
  return rc;
}
