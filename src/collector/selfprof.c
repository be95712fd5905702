/* Self telemetry: a SIGPROF sampler and the HTTP endpoint that serves its profiles. */
#include "selfprof.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/htab.h"
#include "../codec/pprof.h"

#define MAX_DEPTH 64
#define MAX_SAMPLES 8192 /* 100 Hz x 60 s, with room for several threads */
#define HZ 100

typedef struct sample_slot {
  int depth;
  void *pc[MAX_DEPTH]; /* [0] the interrupted instruction, then return addresses, leaf first */
} sample_slot;

/* The signal handler writes here; one profile at a time (prof_mu). */
static sample_slot *slots;
static atomic_int nslots;
static pthread_mutex_t prof_mu = PTHREAD_MUTEX_INITIALIZER;
/* Shutdown wakes a profile that is waiting out its window (MHD waits for handlers to end). */
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv = PTHREAD_COND_INITIALIZER;
static bool stopping;

/* ---- the sampler ---------------------------------------------------------------------------
 *
 * The SIGPROF handler is async-signal-safe: it reads the interrupted registers and stack words
 * and writes its own slot; no lock, no allocation, no unwinder (backtrace() may take the
 * dynamic linker's lock and allocate, which deadlocks or corrupts when the signal lands inside
 * malloc), and errno is kept. It walks frame pointers: the binaries are built with
 * -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer, so each of our frames begins with the
 * record [saved frame pointer][return address]. Libraries (libc, libcurl, SQLite, zlib) are
 * built without them: a sample taken in one gets its leaf, then the stack is scanned upwards
 * for the return address of the call from our code that entered the library, checked against
 * the frame record above it (find_caller), and the walk goes on at that record. A walk ends at
 * the first return address outside our code (a thread's entry, a library that called us back),
 * or at anything implausible: a frame below the last one, misaligned, more than STACK_SPAN
 * above the stack pointer, or unreadable (checked with a system call, never by touching it).
 * A sample in a library whose caller cannot be told for sure (a tail call, nothing consistent)
 * keeps its leaf only: its cost is counted, its stack is short rather than wrong.
 *
 * Reading the samples: a profile clears `collecting` when its window ends, then waits until no
 * handler runs (`active` is 0); a handler that starts after that sees `collecting` clear and
 * writes nothing, so no stack is read while it is being written. */

/* the executable's functions (load_symbols; read-only once the handler is installed) */
typedef struct sym {
  uintptr_t start, end;
  const char *name;
} sym;

static sym *syms;
static size_t nsyms;
static char *sym_names; /* strtab copy */
static uintptr_t exe_base;

static atomic_bool collecting;
static atomic_int active;
static uintptr_t text_lo, text_hi; /* our executable's functions, absolute addresses */
#define STACK_SPAN ((uintptr_t)8 << 20) /* the default thread stack */
#define SCAN_BYTES ((uintptr_t)64 << 10) /* how far above a library leaf to look for our caller */

#define SIGNAL_SAFE __attribute__((no_sanitize("address", "thread", "undefined"), noinline))

/* Whether 8 bytes at a (8-aligned, so on one page) can be read: rt_sigprocmask copies its set
 * from a before it looks at `how` (~0, invalid), so EFAULT means a cannot be read. */
SIGNAL_SAFE static bool readable(uintptr_t a, uintptr_t *checked_page) {
  uintptr_t page = a & ~(uintptr_t)4095;
  if (page == *checked_page) return true;
  if (syscall(SYS_rt_sigprocmask, ~0, (void *)a, NULL, 8) < 0 && errno == EFAULT) return false;
  *checked_page = page;
  return true;
}

SIGNAL_SAFE static bool in_text(uintptr_t pc) { return pc >= text_lo && pc < text_hi; }

/* A return address into our code: it follows a call instruction (call rel32; call through a
 * register, or through memory with an 8- or 32-bit displacement, RIP-relative included). */
SIGNAL_SAFE static bool after_call(uintptr_t ret) {
  if (!in_text(ret) || ret - text_lo < 7) return false;
  const uint8_t *p = (const uint8_t *)ret;
  return p[-5] == 0xe8 || (p[-2] == 0xff && (p[-1] & 0xf8) == 0xd0) || (p[-3] == 0xff && (p[-2] & 0x38) == 0x10) ||
         (p[-6] == 0xff && (p[-5] & 0x38) == 0x10) || (p[-7] == 0xff && (p[-6] & 0x38) == 0x10);
}

/* Our function that contains pc (absolute), or NULL: a binary search of the sorted symbols.
 * Signal-safe, so the handler and the symbolizer share it. */
SIGNAL_SAFE static const sym *sym_at(uintptr_t pc) {
  uintptr_t rel = pc - exe_base;
  size_t lo = 0, hi = nsyms;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (syms[mid].start <= rel) lo = mid + 1;
    else hi = mid;
  }
  return lo && rel < syms[lo - 1].end ? &syms[lo - 1] : NULL;
}

/* The start of our function that contains pc (absolute), or 0. */
SIGNAL_SAFE static uintptr_t func_start(uintptr_t pc) {
  const sym *f = sym_at(pc);
  return f ? exe_base + f->start : 0;
}

/* A plausible frame record at a: [a] a higher frame pointer, [a + 8] a return address into our
 * code; with callee set, also one whose call, when it is a direct one, went to callee (an
 * indirect call, or one that a tail call hid, cannot be told apart and passes). */
SIGNAL_SAFE static bool frame_record(uintptr_t a, uintptr_t top, uintptr_t callee, uintptr_t *checked_page) {
  if ((a & 7) || !readable(a, checked_page) || !readable(a + 8, checked_page)) return false;
  uintptr_t next = ((const uintptr_t *)a)[0], ret = ((const uintptr_t *)a)[1];
  if (next <= a || next >= top || (next & 7) || !after_call(ret)) return false;
  if (!callee || ((const uint8_t *)ret)[-5] != 0xe8) return true;
  int32_t rel;
  memcpy(&rel, (const uint8_t *)ret - 4, sizeof rel);
  return ret + (uintptr_t)(intptr_t)rel == callee;
}

static void on_sigprof(int sig, siginfo_t *si, void *ucv);
static int fp_walk(uintptr_t pc, uintptr_t sp, uintptr_t fp, void **out, int max);
static uintptr_t find_caller(uintptr_t sp, uintptr_t fp, uintptr_t top, uintptr_t *ret_pc, uintptr_t *ret_at,
                             uintptr_t *page);

/* Whether f is one of the sampler's own functions. SIGPROF is blocked while its handler runs,
 * so no sample interrupts the sampler: a return address into it that a scan finds is a stale
 * word an earlier sample left on this stack, never the caller. */
SIGNAL_SAFE static bool in_sampler(uintptr_t f) {
  return f == (uintptr_t)&on_sigprof || f == (uintptr_t)&fp_walk || f == (uintptr_t)&find_caller ||
         f == (uintptr_t)&frame_record || f == (uintptr_t)&readable || f == (uintptr_t)&func_start || f == (uintptr_t)&sym_at ||
         f == (uintptr_t)&after_call || f == (uintptr_t)&in_text;
}

/* In a library: the return address of the call from our code that entered it, and that
 * function's frame record. Candidates are the words above sp that return into our code (a few
 * of them: stale words of earlier calls lie about in library frames); the first whose record
 * above is consistent with it (the record's call went to its function) is taken. Returns the
 * record, with *ret_pc and *ret_at set, or 0: none (a library thread, or nothing consistent). */
SIGNAL_SAFE static uintptr_t find_caller(uintptr_t sp, uintptr_t fp, uintptr_t top, uintptr_t *ret_pc,
                                         uintptr_t *ret_at, uintptr_t *page) {
  int tried = 0;
  for (uintptr_t a = (sp + 7) & ~(uintptr_t)7; a < sp + SCAN_BYTES && tried < 8 && readable(a, page); a += 8) {
    uintptr_t w = *(const uintptr_t *)a, f = after_call(w) ? func_start(w) : 0;
    if (!f || in_sampler(f)) continue;
    tried++;
    /* the frame pointer is still this function's if the library left it alone */
    uintptr_t rec = fp > a && fp < a + SCAN_BYTES && frame_record(fp, top, f, page) ? fp : 0;
    for (uintptr_t b = a + 8; !rec && b < a + SCAN_BYTES; b += 8)
      if (frame_record(b, top, f, page)) rec = b;
    if (rec) {
      *ret_pc = w;
      *ret_at = a;
      return rec;
    }
  }
  return 0;
}

SIGNAL_SAFE static int fp_walk(uintptr_t pc, uintptr_t sp, uintptr_t fp, void **out, int max) {
  int n = 0;
  uintptr_t page = 0, lo = sp, top = sp + STACK_SPAN;
  out[n++] = (void *)pc;
  if (!in_text(pc)) {
    uintptr_t ret = 0, at = 0;
    fp = find_caller(sp, fp, top, &ret, &at, &page);
    if (!fp || n >= max) return n;
    out[n++] = (void *)ret;
    lo = at + 8;
  }
  while (n < max) {
    if (fp < lo || fp >= top || (fp & 7) || !readable(fp, &page) || !readable(fp + 8, &page)) break;
    uintptr_t next = ((const uintptr_t *)fp)[0], ret = ((const uintptr_t *)fp)[1];
    if (!ret) break;
    out[n++] = (void *)ret;
    if (!in_text(ret)) break; /* a thread's entry in libc, or a library calling us back */
    lo = fp + 16;
    fp = next;
  }
  return n;
}

static void on_sigprof(int sig, siginfo_t *si, void *ucv) {
  (void)sig;
  (void)si;
  int saved_errno = errno;
  atomic_fetch_add(&active, 1);
  if (atomic_load(&collecting)) {
    int i = atomic_fetch_add(&nslots, 1);
    if (i < MAX_SAMPLES) {
      int depth = 0;
#if defined(__x86_64__)
      const ucontext_t *uc = ucv;
      depth = fp_walk((uintptr_t)uc->uc_mcontext.gregs[REG_RIP], (uintptr_t)uc->uc_mcontext.gregs[REG_RSP],
                      (uintptr_t)uc->uc_mcontext.gregs[REG_RBP], slots[i].pc, MAX_DEPTH);
#else
      (void)ucv; /* frame records are x86-64's here; elsewhere samples have no stack */
#endif
      slots[i].depth = depth;
    }
  }
  atomic_fetch_sub(&active, 1);
  errno = saved_errno;
}

/* ---- symbolization from the executable's own .symtab ----------------------------------------- */

static int cmp_sym(const void *a, const void *b) {
  const sym *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

static void load_symbols(void) {
  Dl_info di;
  if (dladdr((void *)load_symbols, &di) && di.dli_fbase) exe_base = (uintptr_t)di.dli_fbase;
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
    close(fd);
    return;
  }
  const uint8_t *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return;
  size_t size = (size_t)st.st_size;
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > size)
    goto done;
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(m + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
    const Elf64_Shdr *strs = &sh[sh[i].sh_link];
    if (sh[i].sh_offset + sh[i].sh_size > size || strs->sh_offset + strs->sh_size > size) continue;
    sym_names = malloc(strs->sh_size + 1);
    if (!sym_names) break;
    memcpy(sym_names, m + strs->sh_offset, strs->sh_size);
    sym_names[strs->sh_size] = '\0';
    size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
    const Elf64_Sym *es = (const Elf64_Sym *)(m + sh[i].sh_offset);
    syms = calloc(n ? n : 1, sizeof *syms);
    for (size_t k = 0; syms && k < n; k++) {
      if (ELF64_ST_TYPE(es[k].st_info) != STT_FUNC || !es[k].st_value || es[k].st_name >= strs->sh_size) continue;
      syms[nsyms++] = (sym){es[k].st_value, es[k].st_value + (es[k].st_size ? es[k].st_size : 1),
                            sym_names + es[k].st_name};
    }
    qsort(syms, nsyms, sizeof *syms, cmp_sym);
    if (nsyms) {
      text_lo = exe_base + syms[0].start;
      text_hi = exe_base + syms[nsyms - 1].end;
      for (size_t k = 0; k < nsyms; k++)
        if (exe_base + syms[k].end > text_hi) text_hi = exe_base + syms[k].end;
    }
    break;
  }
done:
  munmap((void *)m, size);
}

/* Name of the function at pc: the executable's symtab first, then the dynamic linker. */
static const char *symbolize(uintptr_t pc, char *buf, size_t n) {
  const sym *f = sym_at(pc);
  if (f) return f->name;
  Dl_info di;
  if (dladdr((void *)pc, &di)) {
    if (di.dli_sname) return di.dli_sname;
    if (di.dli_fname) {
      const char *b = strrchr(di.dli_fname, '/');
      snprintf(buf, n, "[%s]", b ? b + 1 : di.dli_fname);
      return buf;
    }
  }
  return NULL;
}

/* ---- building the profile --------------------------------------------------------------------- */

/* Intern a string into the profile's table (strings htab mirrors p->strings). */
static uint32_t str_of(htab *h, const char *s) {
  uint32_t idx = 0;
  htab_intern(h, s, strlen(s), &idx);
  return idx;
}

static int build_profile(int nsamp, int seconds, int64_t start_ns, uint8_t **out, size_t *outlen) {
  pprof_profile *p = calloc(1, sizeof *p);
  if (!p) return -1;
  arena_init(&p->mem, 0);
  arena *m = &p->mem;
  htab strs, locs, funcs;
  htab_init(&strs, 256, 0);
  htab_init(&locs, 1024, 0);
  htab_init(&funcs, 512, 0);
  str_of(&strs, "");
  size_t cap_loc = 1024, cap_fn = 512;
  p->location = calloc(cap_loc, sizeof *p->location);
  p->function = calloc(cap_fn, sizeof *p->function);
  p->sample = arena_calloc(m, (size_t)nsamp + 1, sizeof *p->sample);
  p->nsample_type = 2;
  p->sample_type = arena_alloc(m, 2 * sizeof *p->sample_type);
  p->sample_type[0] = (pprof_value_type){str_of(&strs, "samples"), str_of(&strs, "count")};
  p->sample_type[1] = (pprof_value_type){str_of(&strs, "cpu"), str_of(&strs, "nanoseconds")};
  p->period_type = p->sample_type[1];
  p->period = 1000000000 / HZ;
  p->time_nanos = start_ns;
  p->duration_nanos = (int64_t)seconds * 1000000000;
  for (int i = 0; i < nsamp && p->location && p->function && p->sample; i++) {
    sample_slot *sl = &slots[i];
    pprof_sample *s = &p->sample[p->nsample];
    int skip = 0; /* the walk starts at the interrupted instruction: no handler frames */
    int depth = sl->depth - skip;
    if (depth <= 0) continue;
    s->loc = arena_alloc(m, (size_t)depth * sizeof *s->loc);
    s->value = arena_alloc(m, 2 * sizeof *s->value);
    if (!s->loc || !s->value) break;
    s->value[0] = 1;
    s->value[1] = p->period;
    s->nloc = 0;
    for (int k = skip; k < sl->depth; k++) {
      uintptr_t pc = (uintptr_t)sl->pc[k];
      uint32_t li;
      int r = htab_intern(&locs, &pc, sizeof pc, &li);
      if (r < 0) break;
      if (r == 1) {
        if (li >= cap_loc) {
          pprof_location *nl = realloc(p->location, (cap_loc *= 2) * sizeof *nl);
          if (!nl) break;
          p->location = nl;
        }
        char buf[300];
        /* a return address points after the call: look up the call itself */
        const char *name = symbolize(k == skip ? pc : pc - 1, buf, sizeof buf);
        pprof_location *l = &p->location[li];
        memset(l, 0, sizeof *l);
        l->id = li + 1;
        l->address = pc;
        if (name) {
          uint32_t fi;
          if (htab_intern(&funcs, name, strlen(name), &fi) == 1) {
            if (fi >= cap_fn) {
              pprof_function *nf = realloc(p->function, (cap_fn *= 2) * sizeof *nf);
              if (!nf) break;
              p->function = nf;
            }
            p->function[fi] = (pprof_function){.id = fi + 1, .name = str_of(&strs, name), .system_name = str_of(&strs, name)};
            p->nfunction = fi + 1;
          }
          l->line = arena_calloc(m, 1, sizeof *l->line);
          if (l->line) {
            l->line[0].function = fi + 1;
            l->nline = 1;
          }
        }
        p->nlocation = li + 1;
      }
      s->loc[s->nloc++] = li;
    }
    p->nsample++;
  }
  /* hand the growable arrays and the string table over to the arena-owned profile */
  pprof_location *la = arena_alloc(m, (p->nlocation + 1) * sizeof *la);
  pprof_function *fa = arena_alloc(m, (p->nfunction + 1) * sizeof *fa);
  if (la) memcpy(la, p->location, p->nlocation * sizeof *la);
  if (fa) memcpy(fa, p->function, p->nfunction * sizeof *fa);
  free(p->location);
  free(p->function);
  p->location = la;
  p->function = fa;
  p->nstrings = strs.count;
  p->strings = arena_alloc(m, p->nstrings * sizeof *p->strings);
  p->string_len = arena_alloc(m, p->nstrings * sizeof *p->string_len);
  int r = -1;
  if (la && fa && p->strings && p->string_len) {
    for (size_t i = 0; i < p->nstrings; i++) {
      size_t len;
      const char *s = htab_key(&strs, (uint32_t)i, &len);
      p->strings[i] = arena_strndup(m, s, len);
      p->string_len[i] = (uint32_t)len;
    }
    r = pprof_encode(p, 6, out, outlen, NULL);
  }
  htab_free(&strs);
  htab_free(&locs);
  htab_free(&funcs);
  pprof_free(p);
  return r;
}

/* ---- HTTP ------------------------------------------------------------------------------------- */

struct selfprof {
  struct MHD_Daemon *d;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype, void *buf, size_t len,
                             enum MHD_ResponseMemoryMode mode) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, mode);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", ctype);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *t) {
  return reply(c, status, "text/plain; charset=utf-8", (void *)t, strlen(t), MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  (void)cls;
  (void)version;
  (void)upload;
  (void)upload_size;
  if (!*con_cls) {
    static int marker;
    *con_cls = &marker;
    return MHD_YES;
  }
  if (strcmp(method, "GET")) return text(c, 405, "method not allowed\n");
  if (!strcmp(url, "/debug/pprof/") || !strcmp(url, "/debug/pprof"))
    return text(c, 200, "pprof-controller collector self profiling\n\n"
                        "profile: CPU profile, /debug/pprof/profile?seconds=N (1..60, default 30)\n");
  if (strcmp(url, "/debug/pprof/profile")) {
    if (!strncmp(url, "/debug/pprof/", 13))
      return text(c, 404, "not available: this C program only produces CPU profiles (no goroutines, no allocator hook)\n");
    return text(c, 404, "not found\n");
  }
  const char *sv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "seconds");
  long seconds = 30;
  if (sv) {
    char *end;
    seconds = strtol(sv, &end, 10);
    if (*end || seconds < 1 || seconds > 60) return text(c, 400, "seconds: want 1..60\n");
  }
  pthread_mutex_lock(&stop_mu);
  bool stop = stopping;
  pthread_mutex_unlock(&stop_mu);
  if (stop) return text(c, 503, "stopping\n");
  if (pthread_mutex_trylock(&prof_mu) != 0)
    return text(c, 500, "Could not enable CPU profiling: cpu profiling already in use\n");
  atomic_store(&nslots, 0);
  atomic_store(&collecting, true);
  int64_t start = pp_clock_real_ns();
  struct itimerval it = {{0, 1000000 / HZ}, {0, 1000000 / HZ}}, off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_PROF, &it, NULL);
  struct timespec deadline = pp_clock_real_deadline((int64_t)seconds * 1000000000);
  pthread_mutex_lock(&stop_mu);
  while (!stopping && pthread_cond_timedwait(&stop_cv, &stop_mu, &deadline) == 0) {
  }
  pthread_mutex_unlock(&stop_mu);
  setitimer(ITIMER_PROF, &off, NULL);
  /* a signal already on its way may still be handled: read only once no handler runs */
  atomic_store(&collecting, false);
  while (atomic_load(&active) > 0) {
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  int n = atomic_load(&nslots);
  if (n > MAX_SAMPLES) n = MAX_SAMPLES;
  uint8_t *buf = NULL;
  size_t len = 0;
  int r = build_profile(n, (int)seconds, start, &buf, &len);
  pthread_mutex_unlock(&prof_mu);
  if (r < 0) return text(c, 500, "could not build the profile\n");
  return reply(c, 200, "application/octet-stream", buf, len, MHD_RESPMEM_MUST_FREE);
}

int selfprof_start(const char *addr, int port, selfprof **ret, pp_err *err) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, load_symbols);
  if (!slots) slots = calloc(MAX_SAMPLES, sizeof *slots);
  if (!slots) return pp_err_set(err, PP_ENOMEM, "out of memory");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigprof;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPROF, &sa, NULL);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) return pp_err_set(err, PP_EINVAL, "bad address %s", addr);
  selfprof *s = calloc(1, sizeof *s);
  if (!s) return pp_err_set(err, PP_ENOMEM, "out of memory");
  s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, (uint16_t)port, NULL, NULL,
                          handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_LIMIT, 16u,
                          MHD_OPTION_END);
  if (!s->d) {
    free(s);
    return pp_err_set(err, PP_EIO, "cannot listen on %s:%d", addr, port);
  }
  *ret = s;
  return 0;
}

void selfprof_finish(selfprof *s) {
  if (!s) return;
  pthread_mutex_lock(&stop_mu);
  stopping = true;
  pthread_cond_broadcast(&stop_cv);
  pthread_mutex_unlock(&stop_mu);
}

void selfprof_stop(selfprof *s) {
  if (!s) return;
  selfprof_finish(s);
  MHD_stop_daemon(s->d);
  free(s);
}
