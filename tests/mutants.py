#!/usr/bin/env python3
"""`make mutants`: shows that the tests bite. Each mutant is a small deliberate breakage of the
product (backoff disabled, escaping removed from /raw, a sample type dropped by the encoder,
...), applied to a scratch copy of the tree (build/mutants/tree), built, and run against the
narrowest suite parts that should catch it. A mutant is caught when a case whose name matches
its `expect` pattern fails; every mutant in the list must be caught.

First the scratch copy is built and the union of all selections run unmutated: it must pass,
or a "caught" would mean nothing. Then each mutant: patch, `make test-bins`, run, restore.

    python3 tests/mutants.py            # all, then docs/testing.md gets the table
    python3 tests/mutants.py NAME...    # some (no docs update)
    python3 tests/mutants.py --list

The list grows with later issues: a check that was repaired gets a mutant here."""
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from harness import TESTDATA  # noqa: E402

SCRATCH = os.path.join(ROOT, "build", "mutants", "tree")
LOGS = os.path.join(ROOT, "build", "mutants", "logs")


def M(name, what, edits, run, expect):
    """edits: [(file, old, new)], each old text found exactly once; run: tests/run.py
    selections; expect: a regex over the names of the cases that must fail."""
    return {"name": name, "what": what, "edits": edits, "run": run, "expect": expect}


S = "src/collector/scrape.c"
W = "src/collector/web.c"
WA = "src/collector/web_api.c"
Q = "src/collector/store_query.c"
QC = "src/collector/web_querier.c"
SY = "src/collector/store_sym.c"
UI = "src/collector/ui/app.js"
UP = "src/collector/upload.c"
OT = "src/collector/web_otlp.c"
WC = "src/collector/web_connect.c"

MUTANTS = [
    # ---- codec: conformance with go tool pprof -raw
    M("encoder-drops-sample-type", "the encoder writes one sample type fewer",
      [("src/codec/encode.c", "  w.n_sample_type = p->nsample_type;", "  w.n_sample_type = p->nsample_type - (p->nsample_type > 1);")],
      ["conformance:roundtrip"], r"^round trip"),
    M("encoder-drops-labels", "the encoder drops sample labels",
      [("src/codec/encode.c", "      o->n_label = s->nlabel;", "      o->n_label = 0;")],
      ["conformance:roundtrip,merge"], r"labels-?|go -raw reads ours"),
    M("encoder-drops-inlined-lines", "the encoder keeps only a location's first line",
      [("src/codec/encode.c", "      o->n_line = l->nline;", "      o->n_line = 1;")],
      ["conformance:roundtrip"], r"^round trip"),
    M("encoder-drops-mapping-flags", "the encoder drops the mappings' has_functions flag",
      [("src/codec/encode.c", "    o->has_functions = m->has_functions;", "    o->has_functions = 0;")],
      ["conformance:roundtrip"], r"^round trip"),
    M("encoder-drops-duration", "the encoder drops duration_nanos (a header field)",
      [("src/codec/encode.c", "  w.duration_nanos = p->duration_nanos;", "  w.duration_nanos = 0;")],
      ["conformance:roundtrip"], r"^round trip"),
    M("tag-filter-empty-value-matches-any", "tag=KEY= keeps samples that have KEY instead of those without it",
      [("src/codec/labels.c", "  bool eq = vlen ? has_value : !has_key;", "  bool eq = vlen ? has_value : has_key;")],
      ["conformance:tags"], r"^tags demo .*tenant"),
    M("tag-filter-ignores-negation", "tag=KEY!=VALUE keeps the samples KEY=VALUE keeps",
      [("src/codec/labels.c", "  return f->negate ? !eq : eq;", "  return eq;")],
      ["conformance:tags"], r"^tags demo .*!="),
    M("tagroot-unlabelled-unrooted", "group by a label (pprof_tag_root) leaves samples without the key unrooted",
      [("src/codec/labels.c", "  for (size_t i = 0; i < p->nsample; i++) p->sample[i].loc = newloc[i], p->sample[i].nloc++;",
        "  for (size_t i = 0; i < p->nsample; i++)\n    if (htab_key(&vals, group[i], &(size_t){0}) && p->sample[i].nlabel) p->sample[i].loc = newloc[i], p->sample[i].nloc++;")],
      ["conformance:tags"], r"tagroot"),
    M("base-drops-main-tags", "without base_tag= the base keeps every sample instead of the main selection's tag= filters",
      [(WA, "  if (!web_param(&bp, \"tag\") && web_tags_parse(p, \"tag\", &b->tags, why, n) < 0) return -1;", "")],
      ["collector:labels"], r"base_tag"),
    M("timeline-cum-counts-recursion", "function= on the timeline counts a sample's value once per frame of the function (recursion twice)",
      [("src/collector/web_labels.c", "      for (uint32_t j = 0; j < s->nloc && !cum; j++)",
        "      for (uint32_t j = 0; j < s->nloc; j++)"),
       ("src/collector/web_labels.c", "        if (has[s->loc[j]]) cum = v; /* once per sample, however often it recurses */",
        "        if (has[s->loc[j]]) cum += v;")],
      ["collector:labels"], r"timeline function="),
    M("tags-values-unsorted", "/api/v1/tags lists a key's values in the order first seen, not by total",
      [("src/collector/web_labels.c", "    qsort_r(order + n0, n1 - n0, sizeof *order, cmp_value_total, &l);", "    (void)cmp_value_total;")],
      ["collector:labels"], r"/api/v1/tags"),
    M("timeline-ids-shifted", "a timeline's ids name the next record, not the point's",
      [(WA, "    else pp_buf_printf(b, \"%s%lld\", k > k0 ? \",\" : \"\", (long long)rows[order[k]].id);",
        "    else pp_buf_printf(b, \"%s%lld\", k > k0 ? \",\" : \"\", (long long)rows[order[k]].id + 1);")],
      ["collector:labels"], r"id="),
    M("decoder-drops-sample-type", "the decoder loses the last sample type",
      [("src/codec/decode.c", "  r = pprof_decode_wire(raw, rawlen, &rest, ret_profile, err);\n",
        "  r = pprof_decode_wire(raw, rawlen, &rest, ret_profile, err);\n"
        "  if (r == 0 && (*ret_profile)->nsample_type > 1) (*ret_profile)->nsample_type--;\n")],
      ["conformance:top"], r"^top .*\[\d+="),
    M("merge-keeps-unused-mappings", "merges keep every input's unreferenced mappings and locations",
      [("src/codec/merge.c", "  if (drop_unreferenced(m) < 0) goto nomem;\n", "")],
      ["conformance:merge"], r"go -raw reads ours"),
    M("merge-latest-time", "a merge keeps the latest time instead of the earliest",
      [("src/codec/merge.c", "(dst->time_nanos == 0 || src->time_nanos < dst->time_nanos)",
        "(dst->time_nanos == 0 || src->time_nanos > dst->time_nanos)")],
      ["conformance:merge"], r"go -raw reads ours"),
    # ---- fuzz corpus replay: clang's UBSan, every report fatal
    M("htab-null-key", "htab_key applies an offset to the null key buffer of a table of empty keys (UB only clang's UBSan reports)",
      [("src/base/htab.c", "  return t->keys ? t->keys + e->off : (const void *)\"\";", "  return t->keys + e->off;")],
      ["fuzz:decode"], r"^fuzz replay decode"),
    # ---- valgrind and the collector under ASan
    M("tool-leak", "pprof-tool leaks the profile it printed",
      [("src/tools/pprof-tool.c", "done:\n  pprof_free(p);\n  return rc;", "done:\n  return rc;")],
      ["valgrind:tool"], r"^valgrind pprof-tool"),
    M("collector-leak-profiles", "GET /api/v1/profiles leaks its rows",
      [(WA, "  pp_buf_puts(&b, \"}\");\n  store_rows_free(rows, n);\n  if (r < 0) {", "  pp_buf_puts(&b, \"}\");\n  if (r < 0) {")],
      ["valgrind:collector"], r"^valgrind collector"),
    M("collector-leak-render-base", "render with a base leaks a buffer (only LeakSanitizer sees it)",
      [(WA, "out:\n  free(in_cmp);\n  htab_free(&bnames);", "out:\n  htab_free(&bnames);")],
      ["collector-asan:aggregation"], r"^collector\[asan\] aggregation/agg: exit 0"),
    # ---- the collector under ThreadSanitizer, and its shutdown
    M("collector-race-job-start", "a scrape's start (its transfer handle and the drift histogram) is written without the engine lock, as before issue 12",
      [(S, "  pthread_mutex_lock(&e->mu);\n  record_drift_locked(e, drift);\n  j->easy = c;\n  pthread_mutex_unlock(&e->mu);",
        "  record_drift_locked(e, drift);\n  j->easy = c;")],
      ["collector-tsan:real_targets"], r"^collector\[tsan\] real_targets/real: exit 0, no ThreadSanitizer report"),
    M("collector-shutdown-reload-hang", "a reload asked while stopping waits for an answer that never comes (the stop hangs)",
      [("src/collector/main.c", "  while (!a->stopping && a->served < ticket) pthread_cond_wait(&a->cv, &a->mu);",
        "  while (a->served < ticket) pthread_cond_wait(&a->cv, &a->mu);")],
      ["collector:shutdown"], r"^collector shutdown: a reload asked while stopping"),
    M("shutdown-selfprof-runs-on", "a self profile in progress is not ended at SIGTERM, so its scrape outlasts the grace",
      [("src/collector/main.c", "    selfprof_finish(a.sp); /* a self profile in progress ends now, so its scrape can finish */\n", "")],
      ["collector:shutdown"], r"its own CPU profile"),
    # ---- scraping: schedules measured at the peer
    M("backoff-disabled", "a failing target is retried at its interval, no backoff",
      [(S, "    int64_t b = busy ? BUSY_RETRY_MS : backoff_ms(j->failures + 1);", "    int64_t b = busy ? BUSY_RETRY_MS : 0;")],
      ["collector:faults"], r"backs off"),
    M("busy-retry-backs-off", "a busy CPU target backs off instead of retrying every 5 s",
      [(S, "    int64_t b = busy ? BUSY_RETRY_MS : backoff_ms(j->failures + 1);", "    int64_t b = backoff_ms(j->failures + 1);")],
      ["collector:faults"], r"busy CPU target is retried"),
    M("backoff-ignores-interval", "a failing target is retried sooner than its interval",
      [(S, "    next = now + (j->interval_ms > b ? j->interval_ms : b);", "    next = now + b;")],
      ["collector:faults"], r"never retried sooner"),
    M("neighbour-off-grid", "a healthy target is scraped every other slot",
      [(S, "    next = j->next_ms + j->interval_ms;", "    next = j->next_ms + 2 * j->interval_ms;")],
      ["collector:faults"], r"healthy target keeps its 1 s grid"),
    M("decode-blocks-loop", "bodies are decoded on the event loop (one that fails to decode holds it 1.5 s, as a gzip bomb can)",
      [(S, "  pthread_mutex_lock(&e->qmu);\n  *e->todo_tail = it;",
        "  {\n    pprof_limits lim;\n    pprof_limits_default(&lim);\n    lim.max_decompressed = it->max;\n    pp_err perr = {0};\n"
        "    if (pprof_decode(it->data, it->len, &lim, &it->p, &perr) < 0) {\n"
        "      snprintf(it->err, sizeof it->err, \"invalid profile: %s\", perr.msg);\n      usleep(1500000);\n    }\n"
        "    job_finish(e, j, it->done_ms, it->end_ns, it->err, false, it->p, it->data, it->len);\n    free(it);\n    return;\n  }\n"
        "  pthread_mutex_lock(&e->qmu);\n  *e->todo_tail = it;")],
      ["collector:faults"], r"healthy target keeps its 1 s grid"),
    M("redirects-followed", "redirects are followed",
      [(S, "  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);", "  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);")],
      ["collector:faults"], r"redirects are not followed"),
    M("reload-resets-schedule", "a reload restarts every job (new offset, counters reset)",
      [(S, "      if (found >= 0 && !kept[found]) {", "      if (0 && found >= 0 && !kept[found]) {")],
      ["collector:reload"], r"keeps its grid"),
    M("reload-stalls", "a reload from a file change holds the loop for 2.5 s",
      [("src/collector/main.c", "      int r = do_reload(&a, from_file, false, &err);", "      usleep(2500000);\n      int r = do_reload(&a, from_file, false, &err);")],
      ["collector:reload"], r"without a scrape gap"),
    M("tls-server-name-ignored", "tls.server_name is ignored",
      [(S, "  if (sni && !strncmp(j->url, \"https://\", 8)) {", "  if (0 && sni && !strncmp(j->url, \"https://\", 8)) {")],
      ["collector:tls_auth"], r"tls-ca-servername"),
    M("tls-host-is-server-name", "with tls.server_name, Host carries the server name, not the address",
      [(S, "      snprintf(line, sizeof line, \"Host: %s:%s\", host, port);\n      j->headers = curl_slist_append(j->headers, line);\n", "")],
      ["collector:tls_auth"], r"tls-ca-servername"),
    M("client-cert-not-sent", "tls.cert_file is not sent",
      [(S, "  if (j->cert) curl_easy_setopt(c, CURLOPT_SSLCERT, j->cert);\n", "")],
      ["collector:tls_auth"], r"mtls-client-cert"),
    M("bearer-token-cached", "the bearer token file is read once per job, not at every scrape",
      [(S, "  char *bearer_file, *user, *password, *password_file;", "  char *bearer_file, *user, *password, *password_file;\n  char *tok_cache;"),
       (S, "    if (read_secret(j->bearer_file, \"bearer_token_file\", MAX_TOKEN_BYTES, &tok, &cerr) == 0 &&",
        "    if ((j->tok_cache ? (tok = strdup(j->tok_cache)) != NULL\n"
        "                      : (read_secret(j->bearer_file, \"bearer_token_file\", MAX_TOKEN_BYTES, &tok, &cerr) == 0 &&\n"
        "                         (j->tok_cache = strdup(tok)) != NULL)) &&")],
      ["collector:tls_auth"], r"rotated token"),
    M("token-cap-one-short", "a bearer token file of exactly the 16 KiB cap is refused",
      [(S, "\"bearer_token_file\", MAX_TOKEN_BYTES, &tok", "\"bearer_token_file\", MAX_TOKEN_BYTES - 1, &tok")],
      ["collector:tls_auth"], r"token-at-limit"),
    M("credential-failure-not-rescheduled", "a scrape that fails on its credential file before any request is not counted in the next scan's due time (a lone such job is never started again)",
      [(S, "        if (!j->easy && j->next_ms < next_due) next_due = j->next_ms;\n", "")],
      ["unit:test_scrape"], r"credential_failure_is_rescheduled"),
    M("credential-caps-off-by-one", "the credential files' caps are one byte off (16,385 and 4,095 bytes)",
      [(S, "#define MAX_TOKEN_BYTES 16384", "#define MAX_TOKEN_BYTES 16385"),
       (S, "#define MAX_PASSWORD_BYTES 4096", "#define MAX_PASSWORD_BYTES 4095")],
      ["unit:test_scrape"], r"credential_caps_at_the_bound"),
    M("credential-fifo-blocks-loop", "a credential file is opened whatever it is: a FIFO blocks the scrape loop in open()",
      [(S, "  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))\n", "  if (0 && stat(path, &st) == 0 && !S_ISREG(st.st_mode))\n")],
      ["unit:test_scrape"], r"test_scrape: (exits cleanly|credential_fifo_does_not_block_the_loop)"),
    M("config-nested-unknown-silent", "unknown keys inside self_telemetry, global, sharding and sampling are not warned about",
      [("src/collector/config.c", "    if (r == 0) warn(p, kn, \"%s\", unknown);\n", "")],
      ["unit:test_config"], r"unknown_keys_warn"),
    M("config-limits-doubled", "a config file may be 8 MiB, and a gzip one 128 MiB once inflated (docs/config.md: 4 and 64)",
      [("src/collector/config.h", "#define CFG_MAX_BYTES ((size_t)4 << 20)", "#define CFG_MAX_BYTES ((size_t)8 << 20)"),
       ("src/collector/config.h", "#define CFG_MAX_TEXT ((size_t)64 << 20)", "#define CFG_MAX_TEXT ((size_t)128 << 20)")],
      ["unit:test_config"], r"gzip_config_files"),
    # ---- src/base: the one buffer and the one metrics writer
    M("buf-cap-off-by-one", "the capped buffer accepts max + 1 bytes",
      [("src/base/buf.c", "  if (b->max && (n > b->max || b->len > b->max - n)) {",
        "  if (b->max && (n > b->max + 1 || b->len > b->max + 1 - n)) {")],
      ["unit:test_base"], r"buf_cap_is_exact_and_sticky"),
    M("metrics-quote-unescaped", "the metrics writer leaves a double quote in a label value unescaped",
      [("src/base/metrics.c", "s[i] == '\\\\' ? \"\\\\\\\\\" : s[i] == '\"' ? \"\\\\\\\"\" : s[i] == '\\n'",
        "s[i] == '\\\\' ? \"\\\\\\\\\" : s[i] == '\\n'")],
      ["unit:test_base"], r"metrics_escape_and_lines"),
    # ---- memory caps the codec enforces while it works (issue 12, section 1)
    M("merger-cap-unchecked", "the merger charges its vectors, arena and maps but never refuses one past its cap",
      [("src/codec/merge.c", "  if (m->limit && (bytes > m->limit || m->used > m->limit - bytes)) {", "  if (0 && m->limit && (bytes > m->limit || m->used > m->limit - bytes)) {")],
      ["unit:test_codec"], r"merger_limit_on_shared_profiles"),
    M("merger-tables-uncharged", "the merger's hash tables grow past the cap (no check before htab_intern)",
      [("src/codec/merge.c", "  if (m->limit && (grow > m->limit", "  if (0 && m->limit && (grow > m->limit")],
      ["unit:test_codec"], r"merger_limit_on_shared_profiles"),
    M("decode-raw-uncharged", "the decompressed bytes are not part of a decode's max_memory",
      [("src/codec/decode.c", "    rest.max_memory -= rawlen;\n", "")],
      ["unit:test_codec"], r"decode_memory_limit_on_shared_profile"),
    M("decode-scratch-uncharged", "the decoder's scratch (spans, id maps) is not charged to max_memory",
      [("src/codec/decode_wire.c", "  if (max && (bytes > max || d->side + d->p->mem.reserved > max - bytes))", "  if (0 && max && (bytes > max || d->side + d->p->mem.reserved > max - bytes))"),
       ("src/codec/decode_wire.c", "  if (max) d->p->mem.budget = max - d->side;\n", "")],
      ["unit:test_codec"], r"decode_memory_limit_on_shared_profile|decode_rejects_bad_references"),
    M("web-merge-uncapped", "a render's merge runs without the query's cap (the budget is checked on the result, as before)",
      [(Q, "    pprof_merger_set_limit(mg, mj.cap);\n", "")],
      ["collector:web_limits"], r"merge passes the 4 MiB budget"),
    # ---- store and API: answers checked with arithmetic and go tool pprof
    M("avg-as-sum", "agg=avg is computed as a sum",
      [(Q, "  bool avg = agg == STORE_AGG_AVG;", "  bool avg = false;")],
      ["collector:aggregation", "unit:test_store"], r"agg=avg|append_query_merge"),
    M("avg-over-all-records", "agg=avg divides each series by the selection's record count",
      [(Q, "  if (j->series_weight > 1) pprof_scale(p, 1.0 / (double)j->series_weight);",
        "  if (j->merged > 1) pprof_scale(p, 1.0 / (double)j->merged);")],
      ["collector:aggregation", "unit:test_store"], r"agg=avg|append_query_merge"),
    M("latest-is-oldest", "agg=latest takes each series' oldest record",
      [(Q, "  for (size_t i = n; i-- > 0;) {\n    uint32_t idx;", "  for (size_t i = 0; i < n; i++) {\n    uint32_t idx;")],
      ["collector:aggregation"], r"agg=latest"),
    M("merge-skips-first-record", "a merge leaves out its first record",
      [(Q, "    r = merge_record(&mj, &rd, row, err);\n  }", "    if (i) r = merge_record(&mj, &rd, row, err);\n  }")],
      ["collector:real_targets"], r"totals = sum of the records"),
    M("base-labels-ignored", "base_LABEL and base_name are ignored (the base uses the main labels)",
      [(WA, "if (strcmp(k, \"from\") && strcmp(k, \"to\") && strcmp(k, \"agg\") && strcmp(k, \"tag\") && strcmp(k, \"id\")) any_label = true;",
        "if (strcmp(k, \"from\") && strcmp(k, \"to\") && strcmp(k, \"agg\") && strcmp(k, \"tag\") && strcmp(k, \"id\")) any_label = false;")],
      ["collector:aggregation"], r"base_name|base_LABEL"),
    # ---- the sandwich (focus): go tool pprof -peek and -lines -top
    M("focus-recursion-counted-twice", "a focus tree node takes a sample's value at every occurrence of the function, not once a stack",
      [("src/codec/aggregate.c", "    if (b->seen_t[node] == stamp) return;", "    if (0 && b->seen_t[node] == stamp) return;")],
      ["conformance:focus"], r"\(recursive\)"),
    M("focus-outermost-only", "the sandwich takes only the first occurrence of the function in a stack",
      [("src/codec/aggregate.c", "      a = e + 1;\n    }", "      a = d;\n    }")],
      ["conformance:focus"], r"\(recursive\)"),
    M("focus-line-flat-not-leaf", "a line's flat is counted where the function's frame is not the leaf",
      [("src/codec/aggregate.c", "r = focus_lines_add(fl, &fo->mem, file, flen, line, k, v, q == d - 1, sn, err);",
        "r = focus_lines_add(fl, &fo->mem, file, flen, line, k, v, q == e, sn, err);")],
      ["conformance:focus"], r"^focus "),
    M("render-focus-base-ignored", "render's focus gives the profile's values as the base's",
      [(WA, "\"baseFlat\\\":%lld,\\\"baseCum\\\":%lld\", (long long)f.flat[1], (long long)f.cum[1]);",
        "\"baseFlat\\\":%lld,\\\"baseCum\\\":%lld\", (long long)f.flat[0], (long long)f.cum[0]);")],
      ["collector:web_api"], r"focus=NAME"),
    M("render-hides-vanished", "render's comparison table leaves out functions only the base has",
      [(WA, "  for (size_t k = 0; tb && k < tb->nfuncs && rows < (size_t)topn; k++) {",
        "  for (size_t k = 0; 0 && k < tb->nfuncs && rows < (size_t)topn; k++) {")],
      ["collector:aggregation"], r"base_name"),
    M("rfc3339-fraction-dropped", "RFC 3339 times lose their fraction of a second",
      [(WA, "  if (*rest == '.') frac = parse_frac_ns(rest + 1, &rest);", "  if (*rest == '.') (void)parse_frac_ns(rest + 1, &rest);")],
      ["collector:aggregation"], r"RFC 3339"),
    M("store-totals-off", "the store's per-record totals leave out the first sample",
      [("src/collector/store.c", "    for (size_t i = 0; i < p->nsample; i++) sum =", "    for (size_t i = 1; i < p->nsample; i++) sum =")],
      ["collector:web_api"], r"timeline"),
    M("retention-undercounts", "the store counts half of its segments' bytes against the budget",
      [("src/collector/store.c", "  uint64_t total = seg_bytes(s) + file_size(s->dbpath);", "  uint64_t total = seg_bytes(s) / 2 + file_size(s->dbpath);")],
      ["unit:test_store", "collector:disk"], r"retention"),
    # ---- store: durability, repair, series at scale (issue 12)
    M("record-crc-ignored", "a record's bytes are not checked against its CRC (by repair at open or by reads)",
      [("src/collector/store_seg.c", "  if ((uint32_t)crc32(0, *buf + REC_HDR, (uInt)body) != h.crc) return 0;\n", "")],
      ["unit:test_store"], r"corrupt_record_found_at_open|read_checks_crc"),
    M("segment-open-truncates", "a new segment is opened with O_TRUNC instead of O_EXCL",
      [("src/collector/store.c", "O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC", "O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC")],
      ["unit:test_store"], r"new_segment_never_truncates"),
    M("series-never-deleted", "series left without records stay in the index forever",
      [("src/collector/store.c", "\"DELETE FROM series WHERE last_seg<?1\"", "\"DELETE FROM series WHERE 0 AND last_seg<?1\"")],
      ["unit:test_store"], r"series_go_with_their_profiles"),
    M("series-cache-unbounded", "the writer's series cache never drops a generation",
      [("src/collector/store.c", "  if (g->keys.count >= s->series_cache_max / 2) {", "  if (0) {")],
      ["unit:test_store"], r"series_cache_stays_bounded"),
    M("query-scans-every-series", "a selection walks every series instead of a label's posting list",
      [(Q, "  char *sql = selection_sql(q, pick_driver(db, q));",
        "  char *sql = selection_sql(q, q->min_seg > 0 ? DRIVE_TIME : (pick_driver(db, q), DRIVE_ALL));")],
      ["unit:test_store"], r"query_cost_follows_selection"),
    M("syncer-skips-active-segment", "the syncer's round leaves out the segment being written",
      [("src/collector/store_sync.c", "    step(fdatasync(active) == 0, \"fdatasync of the active segment\"",
        "    step(true, \"fdatasync of the active segment\"")],
      ["unit:test_store"], r"syncer_makes_appends_durable"),
    M("syncer-skips-data-dir", "the syncer never syncs the data directory (the WAL's name)",
      [("src/collector/store_sync.c", "      step(d >= 0 && fsync(d) == 0, \"fsync of the data directory\"",
        "      step(d >= 0, \"fsync of the data directory\"")],
      ["unit:test_store"], r"syncer_makes_appends_durable"),
    M("sync-failure-untold", "a failed durability round is counted but what failed (and why) is not told",
      [("src/collector/store_sync.c", "    memcpy(s->stats.last_sync_error, why, sizeof why);\n", "")],
      ["unit:test_store"], r"sync_failure_told"),
    M("sync-failures-unexported", "failed durability rounds are not counted on /metrics",
      [("src/collector/main.c", "power loss).\", s.sync_failures},", "power loss).\", (uint64_t)0},")],
      ["collector:disk_faults"], r"counted in collector_store_sync_failures_total"),
    M("sync-failure-logged-every-round", "a failing durability round is logged on every check, not once when it starts",
      [("src/collector/main.c", "  if (s.sync_failing == a->sync_failing) return;", "  if (!s.sync_failing && !a->sync_failing) return;")],
      ["collector:disk_faults"], r"not a line per round"),
    M("sync-failing-sticks", "the store keeps saying its rounds fail after one succeeded",
      [("src/collector/store_sync.c", "  s->stats.sync_failing = !ok;", "  s->stats.sync_failing |= !ok;")],
      ["collector:disk_faults"], r"not a line per round"),
    M("newer-index-opened", "an index with a newer schema version is opened (and written) as if it were this one",
      [("src/collector/store_repair.c", "  if (version > STORE_SCHEMA_VERSION)\n", "  if (0 && version > STORE_SCHEMA_VERSION)\n")],
      ["unit:test_store"], r"limits_refused"),
    M("labels-limit-ignored", "labels of any length are written into a record's metadata",
      [("src/collector/store.c", "  if (!mj || mlen > MAX_META) {", "  if (!mj) {")],
      ["unit:test_store"], r"limits_refused"),
    # ---- store: the v2 format, symbols once per segment (issue 13)
    M("sym-chain-unchecked", "repair keeps rows whose symbol chain is damaged",
      [("src/collector/store_repair.c", "      if (k == 1) continue;", "      if (k >= 0) continue;")],
      ["unit:test_store"], r"symbol_record_damage"),
    M("rebuild-indexes-symbol-records", "a rebuild takes symbol records for profiles (and counts them as damage)",
      [("src/collector/store_repair.c", "  if (sc->h.kind == REC_SYM) return 0;\n", "")],
      ["unit:test_store"], r"append_query_merge|test_store: exits cleanly"),
    M("v2-label-number-dropped", "v2 records lose the numbers of numeric labels",
      [(SY, "      put_s(b, s->label[k].num);", "      put_s(b, 0);")],
      ["unit:test_store", "fuzz:store"], r"v2_reads_back_every_profile|fuzz replay store"),
    M("v2-folded-flag-dropped", "the symbol table loses the locations' is_folded flag",
      [(SY, "    loc->is_folded = get_u(&d) & 1;", "    loc->is_folded = (get_u(&d), 0);")],
      ["fuzz:store"], r"fuzz replay store"),
    M("v2-period-dropped", "v2 records lose the profile's period (a header field)",
      [(SY, "  put_s(b, p->period);", "  put_s(b, 0);")],
      ["conformance:store"], r"^store round trip"),
    M("v2-unused-mappings-dropped", "a v2 record keeps only the mappings its samples use",
      [(SY, "  for (size_t i = 0; i < smp->nmapping; i++) use(&um, smp->mapping[i]);", "")],
      ["conformance:store"], r"^store round trip"),
    M("sym-tables-unbounded", "the writer's symbol tables never roll the segment",
      [("src/collector/store.c", "      (s->symw && sym__writer_bytes(s->symw) > SYM_WRITER_MAX))", "      (s->symw && 0))")],
      ["unit:test_store"], r"writer_tables_stay_bounded"),
    M("sym-cache-stale-table", "the readers' cache serves a segment table older than the record needs",
      [(SY, "      if (t && t->segment_id == seg && chain_counts(t, head)) {", "      if (t && t->segment_id == seg) {")],
      ["unit:test_store"], r"append_query_merge|test_store: exits cleanly"),
    M("loc-cache-ignores-functions", "the writer's location cache takes a location for another at the same address and line whatever their functions",
      [(SY, "    if (fid1 && !fn_is(w, p, l->line[j].function - 1, fid1 - 1)) return false;",
        "    if (fid1 && !fn_is(w, p, l->line[j].function - 1, fid1 - 1) && 0) return false;")],
      ["unit:test_store"], r"loc_cache_keeps_locations_apart|v2_reads_back_every_profile"),
    M("abort-drops-empty-string", "a failed append in a new segment takes \"\" (string 0) out of the writer's tables",
      [(SY, "  if (w->t[T_STR].count == 0) {", "  if (0) {")],
      ["unit:test_store"], r"full_disk_errnos"),
    M("labels-not-sanitized", "label values are stored as given, so invalid UTF-8 fails the append",
      [("src/collector/store.c", "    char *v = pp_utf8_sanitize(l[i].value, strlen(l[i].value), NULL);",
        "    char *v = strdup(l[i].value);")],
      ["unit:test_store"], r"labels_not_utf8"),
    M("rollup-trusts-reused-id", "a finished rollup is stored for whatever series now has its id",
      [("src/collector/store.c", "\"SELECT COUNT(*) FROM series WHERE id=?1 AND labels=?2\"",
        "\"SELECT COUNT(*) FROM series WHERE id=?1 AND ?2 IS NOT NULL\"")],
      ["unit:test_store"], r"rollup_of_a_deleted_series_dropped"),
    # ---- store: tiered retention, hour rollups (issue 13 section 3)
    M("hour-rollup-from-raw", "an hour is merged from its raw profiles, not from its 10-minute rollups",
      [("src/collector/store_compact.c", "if (r == 0 && n == (size_t)count && width == STORE_ROLLUP_HOUR_NS) {",
        "if (0 && r == 0 && n == (size_t)count && width == STORE_ROLLUP_HOUR_NS) {")],
      ["unit:test_store"], r"rollups_equal_their_profiles"),
    M("hour-rollup-misses-lone-window", "an hour leaves out the raw profiles of a window without a 10-minute rollup",
      [("src/collector/store_compact.c", "    if (i >= n || !skip[i]) pick[k++] = i;", "    if (i >= n) pick[k++] = i;")],
      ["unit:test_store"], r"rollups_equal_their_profiles"),
    M("rollups-in-raw-tier", "rollups are written into the raw profiles' segment (no tier of their own)",
      [("src/collector/store.c", "  swap_tier(s);\n  int r = write_rollup_here(s, it, ret_enospc, err);\n  swap_tier(s);",
        "  int r = write_rollup_here(s, it, ret_enospc, err);")],
      ["unit:test_store"], r"rollups_equal_their_profiles"),
    M("raw-dropped-before-rollup", "raw past its period is deleted whether or not its windows are rolled up",
      [("src/collector/store.c", "      old = max_ns < done;", "      old = old || max_ns < done;")],
      ["unit:test_store"], r"tiers_answer_from_rollups"),
    M("gone-raw-not-from-rollup", "windows whose raw profiles tiers deleted are read from what raw is left",
      [(Q, "    bool gone = w0 <= q->gone_until && have >= 0 && have < count;", "    bool gone = false;")],
      ["unit:test_store", "collector:tiers_answer"], r"tiers_answer_from_rollups|render answers the same total"),
    M("rollup-for-any-partial-window", "a rollup stands in for a window partly deleted by any retention (not only tiers)",
      [(Q, "    bool gone = w0 <= q->gone_until && have >= 0 && have < count;", "    bool gone = have >= 0 && have < count;")],
      ["unit:test_store"], r"rollups_change_speed_not_answers"),
    M("resolution-not-told", "a merge answered from rollups for deleted raw says resolution raw",
      [(Q, "      if (v[i].gone_width > ret_info->resolution_ns) ret_info->resolution_ns = v[i].gone_width;", "")],
      ["unit:test_store"], r"tiers_answer_from_rollups"),
    M("timeline-without-rollup-points", "the timeline shows no points where raw profiles are gone",
      [(Q, "  return list_rows(s, m, nm, type, from, to, limit, SEL_POINTS, ret, ret_n, err);",
        "  return list_rows(s, m, nm, type, from, to, limit, SEL_RAW, ret, ret_n, err);")],
      ["unit:test_store"], r"tiers_answer_from_rollups"),
    M("timeline-rollup-width-short", "a timeline rollup point's width is taken as end - start (1 ns short): hours say 10m",
      [(WA, "resolution_name(r->end_ns - r->start_ns + 1),", "resolution_name(r->end_ns - r->start_ns),")],
      ["collector:tiers_answer"], r"timeline shows hour points"),
    M("tier-budget-ignored", "a tier's byte budget is not enforced",
      [("src/collector/store.c", "    bool over = budget && s->tier_bytes[tier] > budget;", "    bool over = false;")],
      ["unit:test_store", "collector:tiers"], r"tier_budgets|collector tiers: --retention-raw-size"),
    M("v2-rollups-dropped", "upgrading a version-2 index leaves its rollups behind",
      [("src/collector/store_repair.c", "  if (r == 0 && copy_rollups) r = store__exec(s->db, V2_ROLLUP_COPY, err);",
        "  if (r == 0 && copy_rollups) r = store__exec(s->db, \"DROP TABLE rollup_v2;\", err);")],
      ["unit:test_store"], r"index_from_version_2"),
    M("raw-size-flag-ignored", "--retention-raw-size is parsed but not given to the store",
      [("src/collector/main.c", "                   .retention_raw_bytes = raw_size,", "                   .retention_raw_bytes = 0,")],
      ["collector:tiers"], r"collector tiers: --retention-raw-size"),
    M("rollup-shorter-than-raw-accepted", "--retention-rollup shorter than --retention-raw is accepted",
      [("src/collector/main.c", "  if (raw_time > 0 && rollup_time > 0 && rollup_time < raw_time)",
        "  if (0 && raw_time > 0 && rollup_time > 0 && rollup_time < raw_time)")],
      ["collector:cli_cases"], r"bad flags and values exit 2"),
    M("operator-raw-size-not-split", "the stack's default raw budget is the whole store budget, not its share",
      [("src/operator/kbuild.c", "  uint64_t raw_size = budget / 100 * KBUILD_RAW_SHARE,", "  uint64_t raw_size = budget / 100 * 50,")],
      ["unit:test_kbuild"], r"stack_objects"),
    M("operator-retention-field-ignored", "spec.storage.retention.raw is not read",
      [("src/operator/kbuild.c", "  if ((v = json_object_get(rt, \"raw\")) && kbuild_duration(v, &raw, err) < 0) {",
        "  if ((v = json_object_get(rt, \"rawx\")) && kbuild_duration(v, &raw, err) < 0) {")],
      ["unit:test_kbuild", "operator:changes"], r"stack_retention|reaches the collector process's flags"),
    M("enospc-not-told", "a full disk while writing a segment is reported as a plain I/O error",
      [("src/collector/store.c", "    *ret_enospc = e == ENOSPC || e == EDQUOT;\n    if (r == -2)", "    *ret_enospc = false;\n    if (r == -2)")],
      ["collector:disk"], r"ENOSPC"),
    M("edquot-not-full", "a record write failing with EDQUOT (a quota) is a plain I/O error, not a full disk",
      [("src/collector/store.c", "    *ret_enospc = e == ENOSPC || e == EDQUOT;\n    if (r == -2)", "    *ret_enospc = e == ENOSPC;\n    if (r == -2)")],
      ["unit:test_store", "collector:disk_faults"], r"full_disk_errnos|collector EDQUOT"),
    M("sqlite-full-not-full", "SQLITE_FULL from the index is a plain error, not a full disk",
      [("src/collector/store.c", "  return e == SQLITE_FULL || (e == SQLITE_IOERR", "  return (e == SQLITE_IOERR")],
      ["unit:test_store"], r"full_index"),
    M("index-edquot-not-full", "the index's WAL write failing with EDQUOT (SQLITE_IOERR_WRITE) is not a full disk",
      [("src/collector/store.c", "(se == ENOSPC || se == EDQUOT));", "(se == ENOSPC));")],
      ["unit:test_store"], r"full_index"),
    M("full-index-keeps-bytes", "a record whose index row the full index refused keeps its bytes in the segment",
      [("src/collector/store.c", "    if (ftruncate(s->seg_fd, (off_t)s->seg_size) < 0) close_segment(s);\n", "")],
      ["unit:test_store"], r"full_index"),
    M("series-pages-ignore-after", "/api/v1/series ignores after=, so every page is the first",
      [(WA, "s.to, after ? &cur : NULL, (size_t)limit", "s.to, after && 0 ? &cur : NULL, (size_t)limit")],
      ["collector:web_api"], r"series in pages"),
    M("raw-unpaged", "/raw without limit= lists every series in one page",
      [(WA, "num_param(p, \"limit\", WEB_RAW_PAGE, 1, WEB_MAX_RAW_PAGE, &bad)", "num_param(p, \"limit\", 0, 1, WEB_MAX_RAW_PAGE, &bad)")],
      ["collector:web_api"], r"/raw: without limit"),
    M("raw-pages-ignore-after", "/raw ignores after=, so every page is the first",
      [(WA, "store_list_series(x->h->st, NULL, 0, NULL, 0, 0, after ? &cur : NULL,", "store_list_series(x->h->st, NULL, 0, NULL, 0, 0, NULL,")],
      ["collector:web_api"], r"/raw in pages"),
    M("raw-limit-unbounded", "/raw takes a limit up to the series API's 100,000",
      [(WA, "num_param(p, \"limit\", WEB_RAW_PAGE, 1, WEB_MAX_RAW_PAGE, &bad)", "num_param(p, \"limit\", WEB_RAW_PAGE, 1, WEB_MAX_SERIES_PAGE, &bad)")],
      ["collector:web_api"], r"/raw: a limit outside"),
    # ---- web: authentication and headers
    M("mhd-logger-not-first", "libmicrohttpd's logger option is given after others (it warns at every start)",
      [(W, "handle, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,\n", "handle, w,\n"),
       (W, "MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,\n", "MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,\n")],
      ["collector:real_targets"], r"writes no warning"),
    M("csp-missing-on-401", "401 answers go out without the security headers",
      [(W, "  web_resp_release(a);\n  return queue(c, status, r);",
        "  web_resp_release(a);\n  if (status == 401) {\n    enum MHD_Result ret = MHD_queue_response(c, 401, r);\n"
        "    MHD_destroy_response(r);\n    return ret;\n  }\n  return queue(c, status, r);")],
      ["collector:web_api"], r"carries the CSP and nosniff"),
    M("nosniff-missing", "no X-Content-Type-Options: nosniff",
      [(W, "  MHD_add_response_header(r, \"X-Content-Type-Options\", \"nosniff\");\n", "")],
      ["collector:web_api"], r"carries the CSP and nosniff"),
    M("bcrypt-refused", "only SHA-512 crypt hashes log in (htpasswd -B bcrypt ones do not)",
      [("src/collector/web_auth.c", "    ok = got && got[0] == '$' && same(got, hash);", "    ok = got && !strncmp(hash, \"$6$\", 3) && same(got, hash);")],
      ["collector:web_api"], r"htpasswd -B"),
    # ---- web: load, limits, text (issue 12)
    M("probes-wait-behind-queries", "queries run on the server's own threads (no worker pool), so probes wait behind them",
      [(W, "    job *j = new_job(w, jobs[i].kind, &p);\n    /* an answer that asked",
        "    job *j = new_job(w, jobs[i].kind, &p);\n    if (j && jobs[i].lane == WEB_LANE_QUERY) {\n"
        "      web_resp a;\n      memset(&a, 0, sizeof a);\n      job_run(j, w->budget, &a);\n      job_free(j);\n"
        "      return send_resp(c, &a);\n    }\n    /* an answer that asked")],
      ["collector:web_load"], r"probe timeout while 16 clients"),
    M("big-body-read", "a body's Content-Length is not checked: a 50 MB POST is read, not refused with 413",
      [(W, "if (errno || end == cl || n > cap) return refuse_body(w, c, r);",
        "if (errno || end == cl || n > ((unsigned long long)1 << 40)) return refuse_body(w, c, r);")],
      ["collector:web_limits"], r"50 MB POST"),
    M("names-drop-invalid-utf8", "render leaves names that are not valid UTF-8 out of its names array (as jansson did)",
      [(WA, "      if (added == 1) {\n        if (ni)", "      if (added == 1 && pp_utf8_valid(t->names[i], strlen(t->names[i]))) {\n        if (ni)"),
       (WA, "#include \"web_json.h\"\n", "#include \"web_json.h\"\n#include \"../base/utf8.h\"\n")],
      ["collector:utf8"], r"names stay aligned|keeps its length"),
    M("auth-cache-off", "verified Basic credentials are not remembered: every request hashes the password again",
      [("src/collector/web_auth.c", "      if (c->expires > now && c->h[0] == h[0]", "      if (0 && c->expires > now && c->h[0] == h[0]")],
      ["collector:web_limits"], r"credentials are cached"),
    M("auth-failures-unlimited", "failed logins are never rate-limited (every guess costs a bcrypt)",
      [("src/collector/web_auth.c", "  if (b->tokens >= 1) {\n    b->tokens -= 1;", "  if (1) {\n    b->tokens -= 1;")],
      ["collector:web_limits"], r"rate-limited"),
    M("no-per-address-limit", "no limit on one client address's connections: half-sent requests fill the server",
      [(W, "(unsigned)WEB_MAX_PER_ADDRESS,", "0u,")],
      ["collector:web_limits"], r"half-sent requests"),
    M("params-count-unchecked", "a 65th query parameter is dropped with the rest, not answered 400",
      [(W, "    p->too_many = true;\n", "    p->too_many = false;\n")],
      ["collector:web_limits"], r"query parameters are limited"),
    M("params-length-unchecked", "a query parameter over 1,024 bytes is dropped with the rest, not answered 400",
      [(W, "    p->too_long = true;\n", "    p->too_long = false;\n")],
      ["collector:web_limits"], r"query parameters are limited"),
    M("connection-cap-raised", "2,048 connections in all instead of WEB_MAX_CONNECTIONS (1,024)",
      [(W, "(unsigned)WEB_MAX_CONNECTIONS,", "2048u,")],
      ["collector:web_limits"], r"at most 1,024 connections"),
    M("header-timeout-long", "a half-sent request is kept 120 s (the seed's idle timeout), not WEB_IDLE_TIMEOUT_S",
      [(W, "MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WEB_IDLE_TIMEOUT_S,", "MHD_OPTION_CONNECTION_TIMEOUT, 120u,")],
      ["collector:web_limits"], r"half-sent requests"),
    M("retry-after-ignores-queue", "Retry-After counts only the running queries, not the queued ones",
      [("src/collector/web_work.c", "(double)(l->queued + l->running + 1)", "(double)(l->running + 1)")],
      ["unit:test_web"], r"pool_slots_queue_sharing_deadlines"),
    M("retry-after-uncapped", "Retry-After is not capped at WEB_RETRY_MAX_S",
      [("src/collector/web_work.c", "s > WEB_RETRY_MAX_S ? WEB_RETRY_MAX_S : (unsigned)s", "(unsigned)s")],
      ["unit:test_web"], r"pool_retry_cap_and_queue_wait"),
    M("queue-wait-ignored", "a queued query waits until its deadline, not queue_wait",
      [("src/collector/web_work.c", "      if (!f->running && now >= wait_end) {", "      if (0 && !f->running && now >= wait_end) {")],
      ["unit:test_web"], r"pool_retry_cap_and_queue_wait"),
    M("answers-never-cached", "nothing is ever stored in the answer cache",
      [("src/collector/web_cache.c", "  if (!c || !c->st.max_bytes) return;\n  size_t klen", "  if (c || !c) return;\n  size_t klen")],
      ["collector:web_load"], r"cache hit|serves the retry"),
    M("rebuild-forgets-raw-watermark", "an index rebuilt with tiers on leaves tiered retention's watermark at 0",
      [("src/collector/store.c", "  if (rep.index_rebuilt && store__tiers_on(&s->opts) &&", "  if (0 && store__tiers_on(&s->opts) &&")],
      ["unit:test_store"], r"tiers_answer_from_rollups"),
    M("htab-truncate-keeps-slots", "htab_truncate forgets the keys but leaves their slots (the forgotten keys are still found)",
      [("src/base/htab.c", "  memset(t->slots, 0, t->nslots * sizeof *t->slots);\n  for (size_t i = 0; i < n; i++) {",
        "  for (size_t i = 0; i < 0; i++) {")],
      ["unit:test_base,test_store"], r"htab_truncate_forgets_the_newest|failed_append_forgets_its_symbols"),
    M("operator-subsecond-retention-rounded", "the stack's sub-second retention periods pass and are written rounded to whole seconds (0s: no limit)",
      [("src/operator/kbuild.c", "  if (raw < 1 || rollup < 1)\n", "  if (0)\n"),
       ("src/operator/kbuild.c", "  else snprintf(out, 64, \"%s=%.0fms\", flag, ms);", "  else snprintf(out, 64, \"%s=%.0fs\", flag, secs);")],
      ["unit:test_kbuild"], r"stack_retention"),
    # ---- store: merges on ids (issue 13 §2)
    M("merge-tables-not-primed", "a merge reads records oldest first without loading each segment's table for its newest record",
      [("src/collector/store_query.c", "  if (last == 0) return;\n  sym_record rec;", "  if (last == 0 || 1) return;\n  sym_record rec;")],
      ["unit:test_store"], r"a_merge_loads_each_table_once"),
    M("idm-sums-overwrite", "merges on ids keep each stack's last value instead of the sum",
      [("src/collector/store_idm.c", "for (size_t k = 0; k < nst; k++) v[k] = (int64_t)((uint64_t)v[k] + (uint64_t)smp->value[k]);",
        "for (size_t k = 0; k < nst; k++) v[k] = smp->value[k];")],
      ["unit:test_store"], r"merges_on_ids_equal_codec_merge"),
    M("idm-labels-ignored", "merges on ids sum samples that differ only in their labels",
      [("src/collector/store_idm.c", "  size_t n = 2 + (size_t)s->nloc + 5 * (size_t)s->nlabel;", "  size_t n = 2 + (size_t)s->nloc;"),
       ("src/collector/store_idm.c", "  *k++ = s->nlabel;\n  for (uint32_t i = 0; i < s->nlabel; i++) {", "  *k++ = 0;\n  for (uint32_t i = 0; i < 0; i++) {")],
      ["unit:test_store"], r"merges_on_ids_equal_codec_merge"),
    M("sym-period-type-not-listed", "the symbols-once encoder's list of the strings a record names misses the period type "
      "(a heap profile's \"space\" is in no other field; a label key such as \"bytes\" is also a unit, so it would not tell)",
      [("src/collector/store_sym.c", "  NEED(p->period_type.type);\n", "")],
      ["unit:test_store"], r"labels_not_utf8|v2_reads_back_every_profile"),
    M("timeline-record-unbudgeted", "a decoded timeline reads each record's profile with no memory limit",
      [(WA, "    lim.max_memory = x->budget / 4; /* one record's profile at a time */", "    lim.max_memory = 0;")],
      ["collector:web_limits"], r"over its memory budget"),
    M("timeline-unreadable-fails", "a decoded timeline fails whole (500) when one record cannot be read",
      [(WA, "    d->unreadable[row] = true;\n    d->nunreadable++;\n    return 0;",
        "    *err = *input_err;\n    return PP_EIO;")],
      ["collector:web_limits"], r"damaged while the collector runs"),
    M("timeline-unreadable-kept", "a decoded timeline counts an unreadable record but keeps its point",
      [(WA, "        start[series[i] + 1]--;\n        series[i] = UINT32_MAX;", "")],
      ["collector:web_limits"], r"damaged while the collector runs"),
    # ---- pushed profiles (issue 16 §2): the pyroscope-go SDK's uploads read back
    M("push-heap-not-split", "a pushed heap profile is stored whole as heap (alloc_* deltas averaged with inuse_*)",
      [("src/collector/web_push.c", "    if (inuse) out[(*ret_n)++] = (push_part){\"heap\", inuse};\n    if (alloc) out[(*ret_n)++] = (push_part){\"allocs\", alloc};",
        "    out[(*ret_n)++] = (push_part){\"heap\", ~0ull};")],
      ["collector:push"], r"reads back equal"),
    M("push-reserved-labels-kept", "a pushed name's __ labels (the SDK's __session_id__, or a spoofed __k8s_namespace) are stored",
      [("src/collector/web_push.c", "    if (!strncmp(src->k[i], \"__\", 2) || !strcmp(src->k[i], \"service_name\")", "    if (!strcmp(src->k[i], \"service_name\")")],
      ["collector:push"], r"reads back equal"),
    M("push-future-accepted", "a push dated an hour ahead of the clock is stored",
      [("src/collector/web_push.c", "  if (end > now + (int64_t)WEB_PUSH_MAX_FUTURE_S * 1000000000) {", "  if (0) {")],
      ["collector:push"], r"refused with a clear 4xx"),
    M("push-times-unordered", "a push's window is taken as from..until even when a flush sent until < from",
      [("src/collector/web_push.c", "  int64_t end = from && until ? (from < until ? until : from) : start;", "  int64_t end = until ? until : start;")],
      ["collector:push"], r"reads back equal"),
    M("push-part-unnamed-crash", "a multipart part without a quoted name reaches strcmp with a NULL key (the collector crashes)",
      [("src/collector/web.c", "  if (!key) return MHD_YES;\n", "")],
      ["collector:push"], r"refused with a clear 4xx"),
    M("push-auth-after-body", "a push's credentials are checked only once its whole body is in memory",
      [("src/collector/web.c", "    if (w->auth) {\n      creds cr;\n      unsigned retry = 0;\n      web_auth_result ar = fast_auth(w, c, r, &cr, &retry); /* its answer serves the route too */",
        "    if (0) {\n      creds cr;\n      unsigned retry = 0;\n      web_auth_result ar = fast_auth(w, c, r, &cr, &retry); /* its answer serves the route too */")],
      ["collector:push"], r"refused with a clear 4xx"),
    M("push-inflight-unbounded", "push bodies in memory have no bound across requests",
      [("src/collector/web.c", "  if (now > WEB_PUSH_INFLIGHT) {", "  if (0) {")],
      ["collector:push"], r"refused with a clear 4xx"),
    M("push-config-unbounded", "a pushed sample_type_config part over 64 KiB is read as any other",
      [("src/collector/web_push.c", "  if (b->config_len > WEB_PUSH_MAX_CONFIG) {", "  if (0) {")],
      ["collector:push"], r"refused with a clear 4xx"),
    M("push-connect-any-encoding", "a Connect push with a Content-Encoding other than gzip is read as if identity",
      [("src/collector/web_connect.c", "    if (strcasecmp(cenc, \"gzip\")) return pp_err_set(err, PP_EINVAL, \"Content-Encoding: only gzip and identity are taken\");",
        "    if (0) return pp_err_set(err, PP_EINVAL, \"Content-Encoding: only gzip and identity are taken\");")],
      ["collector:push"], r"push.v1.PusherService"),
    M("push-connect-delta-ignored", "a Connect push's __delta__=\"false\" is ignored: a cumulative heap is split as if it were deltas",
      [("src/collector/web_push.c", "  if ((inuse_o >= 0 || inuse_s >= 0 || alloc_o >= 0 || alloc_s >= 0) && cumulative) {",
        "  if (0) {")],
      ["collector:push"], r"push.v1.PusherService"),
    M("connect-json-names-uncamelled", "protojson's JSON names are not read: a field is found by its proto name only (rawProfile, profileTypeID missed)",
      [("src/collector/web_connect.c", "    out[o++] = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;", "    out[o++] = *p;")],
      ["collector:push", "collector:querier"], r"push.v1.PusherService|querier: (ProfileTypes|SelectMergeStacktraces|SelectSeries|Diff)"),
    # ---- Grafana's data source API (issue 16 §1): tests/collector/querier.py
    M("querier-offsets-absolute", "a flame graph level's offsets are each node's x, not the gap after the node before it",
      [(QC, "      vals[nv++] = x[2 * i + k] - lv[d].end[k];", "      vals[nv++] = x[2 * i + k];")],
      ["collector:querier"], r"querier: (SelectMergeStacktraces|Diff)"),
    M("querier-service-name-unqualified", "service_name of a Kubernetes target is its service alone, without the namespace",
      [(QC, '    if (ns && *ns && svc && *svc) snprintf(svcname, sizeof svcname, "%s/%s", ns, svc);',
        '    if (ns && *ns && svc && *svc) snprintf(svcname, sizeof svcname, "%s", svc);')],
      ["collector:querier"], r"querier: ProfileTypes, LabelNames"),
    M("querier-ne-as-eq", "a selector's != matches like =",
      [(QC, "    case OP_NE: ok = strcmp(val, s->m[i].value) != 0; break;", "    case OP_NE: ok = strcmp(val, s->m[i].value) == 0; break;")],
      ["collector:querier"], r"querier: ProfileTypes, LabelNames"),
    M("querier-matchers-and", "a request's matchers must all match (AND) instead of any (OR)",
      [(QC, "    if (web_querier_sel_match(s[i], v->lk, v->lv, v->nl)) return true;\n  return false;",
        "    if (!web_querier_sel_match(s[i], v->lk, v->lv, v->nl)) return false;\n  return true;")],
      ["collector:querier"], r"querier: ProfileTypes, LabelNames"),
    M("querier-max-nodes-ignored", "max_nodes cuts nothing: every frame is kept",
      [(QC, "  for (size_t i = 0; i < n; i++) keep[i] = n <= max_nodes;", "  for (size_t i = 0; i < n; i++) keep[i] = true;\n  max_nodes = n;")],
      ["collector:querier"], r"querier: SelectMergeStacktraces"),
    M("querier-average-summed", "SelectSeries' AVERAGE aggregation sums like SUM",
      [(QC, "        pv[k].value = rq->aggregation == 1 && cnt ? sum / (double)cnt : sum;", "        pv[k].value = sum;")],
      ["collector:querier"], r"querier: SelectSeries"),
    M("querier-limit-ignored", "SelectSeries' limit keeps every series",
      [(QC, "  if (r == 0 && rq->limit > 0 && (size_t)rq->limit < ng) {", "  if (0) {")],
      ["collector:querier"], r"querier: SelectSeries"),
    M("querier-diff-ticks-swapped", "Diff's leftTicks and rightTicks are each other's",
      [(QC, "  fg->leftticks = ticks[0];\n  fg->rightticks = ticks[1];", "  fg->leftticks = ticks[1];\n  fg->rightticks = ticks[0];")],
      ["collector:querier"], r"querier: Diff"),
    M("querier-diff-empty-side-counted", "a Diff side that selects nothing shows the other side's values",
      [(QC, "  for (size_t i = 0; zeroed >= 0 && i < t.nnodes; i++)", "  for (size_t i = 0; 0 && zeroed >= 0 && i < t.nnodes; i++)")],
      ["collector:querier"], r"querier: Diff"),
    M("querier-pgo-ignored", "SelectMergeProfile's stack_trace_selector.go_pgo is not applied",
      [(QC, "    if (r == 0 && g) {", "    if (0) {")],
      ["collector:querier"], r"querier: SelectMergeProfile"),
    M("querier-all-sample-types", "SelectMergeProfile answers every sample type, not the one asked for",
      [(QC, "    else pprof_keep_types(pr, (uint64_t)1 << si);", "    else (void)0;")],
      ["collector:querier"], r"querier: SelectMergeProfile"),
    M("querier-regex-unanchored-end", "a regular expression need not match to the end of the value (a prefix matches)",
      [(QC, "PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL", "PCRE2_ANCHORED | PCRE2_DOTALL")],
      ["collector:querier"], r"querier: ProfileTypes, LabelNames"),
    M("querier-regex-total-unbounded", "a request's selectors together may hold regular expressions of any compiled size",
      [(QC, "    if (r == 0 && (nm > WEB_QUERIER_MAX_MATCHERS_TOTAL || bytes > WEB_QUERIER_MAX_REGEX_TOTAL)) {",
        "    if (r == 0 && (nm > WEB_QUERIER_MAX_MATCHERS_TOTAL || 0)) {")],
      ["collector:querier"], r"querier: refused"),
    M("querier-regex-backreferences", "a backreference is taken (RE2, Prometheus' engine, has none)",
      [(QC, "        if (*c == '\\\\' && c[1]) backref |= c[1] >= '1' && c[1] <= '9', c++;", "        if (*c == '\\\\' && c[1]) c++;")],
      ["collector:querier"], r"querier: refused"),
    M("connect-json-values-uncounted", "a Connect JSON body's values are not counted before jansson builds them all",
      [("src/collector/web_connect.c", "  if (*json && json_values(body, len) > WEB_CONNECT_MAX_JSON_VALUES) {",
        "  if (*json && 0 && json_values(body, len) > WEB_CONNECT_MAX_JSON_VALUES) {")],
      ["collector:querier"], r"querier: refused"),
    M("querier-body-uncapped", "a query API call may carry a body as large as a push's (16 MiB)",
      [(W, "    size_t cap = r->querier ? WEB_QUERIER_MAX_BODY : r->push ? WEB_MAX_PUSH_BODY : WEB_MAX_BODY;",
        "    size_t cap = r->push ? WEB_MAX_PUSH_BODY : WEB_MAX_BODY;")],
      ["collector:querier"], r"querier: refused"),
    # ---- the records a query merges (--web-max-records): an answer over more says so
    M("records-truncated-unsaid", "a merge over more records than it reads says nothing of the ones it left out",
      [(Q, "  bool truncated = n > limit;", "  bool truncated = false;")],
      ["collector:records_limit"], r"a render over more records"),
    M("records-series-limit-exact", "each series gives at most the limit, so a single series over it looks complete",
      [(Q, "      raw_range(&q, sel.ids[i], type, from, to, limit + 1);", "      raw_range(&q, sel.ids[i], type, from, to, limit);"),
       (Q, "      ok = series_with_rollups(&q, sel.ids[i], sel.labels[i], type, from, to, limit + 1, &v, &n, &cap);",
        "      ok = series_with_rollups(&q, sel.ids[i], sel.labels[i], type, from, to, limit, &v, &n, &cap);")],
      ["collector:records_limit"], r"a render over more records"),
    M("querier-series-limit-ignored", "Grafana's SelectSeries reads any number of profiles",
      [(QC, "  if (p.nrecords > (int64_t)q->x->max_records)", "  if (0)")],
      ["collector:records_limit"], r"SelectSeries over more profiles"),
    # ---- segment uploads to an object store (issue 15 §2): tests/collector/objstore.py
    M("upload-active-segment", "the segment still being written is taken for closed and uploaded (its bucket copy misses what follows)",
      [(Q, "    out[i].closed = id != opening && id != a0 && id != a1;", "    out[i].closed = id != opening;")],
      ["collector:objstore"], r"objstore: closed segments reach the bucket"),
    M("upload-state-not-kept", "what was uploaded is not written to the uploads file (a restart sends every segment again)",
      [(UP, "  if (!add_done(u, ent) || append_state(u, &ent) < 0) {", "  if (!add_done(u, ent)) {")],
      ["collector:objstore"], r"objstore: a restart uploads"),
    M("upload-retention-ignores-age", "the bucket's retention deletes every uploaded object, whatever its age",
      [(UP, "    if (e->expired || e->max_ns >= cutoff || e->max_ns < e->min_ns) continue;", "    if (e->expired) continue;")],
      ["collector:objstore"], r"objstore: bucket retention"),
    M("upload-lost-uncounted", "segments deleted by local retention before their upload are not counted",
      [(UP, "    if ((j == n || list[j].id != u->waiting[i]) && !done_id(u, u->waiting[i])) lost++;", "    (void)j;")],
      ["collector:objstore"], r"objstore: segments local retention deletes"),
    M("upload-status-unchecked", "a PUT the server refused counts as uploaded",
      [(UP, "  if (status != 200) {\n    if (!errbuf[0])", "  if (status < 0) {\n    if (!errbuf[0])")],
      ["collector:objstore"], r"objstore: wrong credentials"),
    M("upload-no-retry", "an upload that failed is not tried again (the queue never drains after an outage)",
      [(UP, "    if (upload_one(u, &list[i], why, sizeof why) < 0) {\n      note_failure(u, why);\n      return -1;",
        "    if (upload_one(u, &list[i], why, sizeof why) < 0) {\n      note_failure(u, why);\n      add_done(u, (up_entry){list[i].id, list[i].min_ns, list[i].max_ns, list[i].tier, false});\n      return -1;")],
      ["collector:objstore"], r"objstore: with the bucket down"),
    M("upload-destination-ignored", "the uploads file is read whatever destination it was written for (a new bucket or prefix never gets the old segments)",
      [(UP, "    if (fgets(line, sizeof line, f) && !strcmp(line, u->dest))", "    if (fgets(line, sizeof line, f))")],
      ["collector:objstore"], r"objstore: a new prefix gets every closed segment"),
    M("upload-key-without-time", "objects are named by segment id alone (a data directory started anew overwrites the old objects)",
      [(UP, "(uint64_t)min_ns, (uint64_t)id);", "(uint64_t)0 * (uint64_t)min_ns, (uint64_t)id);")],
      ["collector:objstore"], r"objstore: a new prefix gets every closed segment"),
    M("upload-state-failure-silent", "an uploads file that cannot be written is neither counted nor logged (every restart sends everything again, unsaid)",
      [(UP, "    snprintf(why, sizeof why, \"%s: %s\", u->state_path, strerror(errno));\n    note_failure(u, why);",
        "    snprintf(why, sizeof why, \"%s: %s\", u->state_path, strerror(errno));")],
      ["collector:objstore"], r"objstore: an uploads file that cannot be written"),
    M("upload-delete-failure-silent", "DELETEs of the bucket's retention that fail are not reported",
      [(UP, "  u->stats.deleting_failing = failed > 0;", "  u->stats.deleting_failing = false;")],
      ["collector:objstore"], r"objstore: DELETEs of the bucket's retention that fail"),
    M("segment-age-roll-only-on-write", "a segment is closed at its age only when the next record comes (a quiet collector's recent past never reaches the bucket)",
      [("src/collector/store_compact.c", "  store__roll_if_old(s);\n", "")],
      ["unit:test_store", "collector:objstore"], r"segment_closes_at_its_age|quiet collector's segment"),
    M("segment-age-opens-empty", "a segment closed at its age is replaced at once by an empty one (rolled again, empty, at the next write: empty objects in the bucket)",
      [("src/collector/store.c", "s->segment_max_age_ns) close_segment(s);\n}",
        "s->segment_max_age_ns) {\n    bool enospc;\n    pp_err e;\n    open_new_segment(s, &enospc, &e);\n  }\n}")],
      ["unit:test_store"], r"segment_closes_at_its_age"),
    M("upload-stop-not-sealed", "a stop does not close the active segments before its last uploads (they wait for a next start)",
      [("src/collector/main.c", "      store_seal(a.st);\n", "")],
      ["collector:objstore"], r"a stop closes the active segments and uploads them"),
    M("upload-stop-not-waited", "a stop does not wait for its last uploads",
      [("src/collector/upload.c", "  bool done = u->flush_done >= want;", "  bool done = true;"),
       ("src/collector/upload.c", "  while (u->flush_done < want)\n", "  while (false)\n")],
      ["collector:objstore"], r"objstore: wrong credentials: .* a stop tries the last uploads for 10 s"),
    M("shards-change-not-at-time", "the planned change of the shard count waits for the next reload instead of happening at change_at",
      [("src/collector/main.c", "    if (cfg_shards_at(a.cfg, now / 1000000000) != (int)a.shards_now) {",
        "    if (false) {")],
      ["collector:shards"], r"collector shards: 2 -> 3 planned at change_at"),
    M("shards-change-rereads-file", "the planned change of the shard count reads the file again (one made invalid since then keeps the old split)",
      [("src/collector/main.c", "      int r = do_reload(&a, false, true, &err);", "      int r = do_reload(&a, false, false, &err);")],
      ["collector:shards"], r"collector shards: the planned change happens at change_at even when the file"),
    M("fanout-peers-never-asked", "a merge answers from the local store only although peers are given",
      [("src/collector/web_api.c", "    if (!s->local && web_fanout_peers(x->fan) && (r == 0 || r == PP_EUSAGE))",
        "    if (false && !s->local && web_fanout_peers(x->fan) && (r == 0 || r == PP_EUSAGE))")],
      ["collector:fanout"], r"collector fanout: agg=sum from either shard equals go tool pprof"),
    M("fanout-failure-not-partial", "a peer that does not answer is left out silently (the answer not marked partial)",
      [("src/collector/web_fanout.c", "  info->failed++;\n", "")],
      ["collector:fanout"], r"collector fanout: a shard down makes the answer partial"),
    M("fanout-self-asked", "a collector named in its own peer list answers itself (its share counted twice)",
      [("src/collector/web.c", "  if (from && !strcmp(from, web_fanout_id(w->fan))) {", "  if (false) {")],
      ["collector:fanout"], r"collector fanout: a peer list naming the collector itself"),
    M("fanout-listings-not-asked", "timeline, series, profiles and targets answer from the local store only (the UI sees one shard)",
      [("src/collector/web_api.c", "  if ((local && !strcmp(local, \"1\")) || !web_fanout_peers(x->fan)) return 0;", "  if (true) return 0;")],
      ["collector:fanout"], r"collector fanout: timeline, series, profiles and targets list both shards"),
    M("fanout-peer-id-local", "id= with peer= reads the local record of that id (another shard's profile)",
      [("src/collector/web_api.c", "  if (s->id && s->peer) {", "  if (false) {")],
      ["collector:fanout"], r"collector fanout: a record of shard 1 asked of shard 0"),
    M("fanout-peer-unchecked", "peer= is not checked against the peer lists (a request picks what the collector fetches)",
      [("src/collector/web_fanout.c", "    bool seen = only && strcmp(only, p);", "    bool seen = false;")],
      ["collector:fanout"], r"collector fanout: a record of shard 1 asked of shard 0"),
    M("ui-peer-record-local", "the explorer asks for a picked record of another shard without its peer (this shard's record of that id)",
      [("src/collector/ui/app.js", "if (m[2]) params.peer = m[2]; ", "")],
      ["ui"], r"ui: shards: clicking a timeline point"),
    M("operator-peers-not-listed", "the operator leaves query.peers out with two shards running (shard 0 answers for itself only)",
      [("src/operator/op_monitor.c", "  if (npeers < 2 && !fronts) npeers = 0;", "  npeers = 0;")],
      ["operator:shards"], r"2 shards: the config lists both collector pods"),
    M("operator-peers-other-operators", "the peer list takes the collector pods of every operator in the namespace",
      [("src/operator/kbuild.c", "strcmp(pns, ns) || strcmp(inst, op) ||", "strcmp(pns, ns) ||")],
      ["unit:test_kbuild"], r"test_kbuild: peers"),
    M("operator-query-keeps-objstore", "the query front ends keep the object store's flags (a fresh one restores shard 0's segments and counts them twice)",
      [("src/operator/kbuild.c", 'if (strncmp(json_string_value(a), "--object-store-", 15)) json_array_append(kept, a);',
        "json_array_append(kept, a);")],
      ["unit:test_kbuild"], r"test_kbuild: query_fronts"),
    M("operator-retired-stops", "a retired shard is scaled to 0 at once whatever shardRetentionPolicy says (its history unreachable)",
      [("src/operator/kbuild.c", 'json_integer(run || (retired && retired->answering))', "json_integer(run)")],
      ["unit:test_kbuild"], r"test_kbuild: retired_shards"),
    M("operator-retired-scrapes", "a retired shard answering its history runs without --query-only (it scrapes `shard: all` monitors twice)",
      [("src/operator/kbuild.c", '    json_array_append_new(args, json_string("--query-only"));\n    json_object_set_new(json_object_get(set, "metadata")',
        '    json_object_set_new(json_object_get(set, "metadata")')],
      ["unit:test_kbuild"], r"test_kbuild: retired_shards"),
    M("operator-query-no-peers-one-shard", "with one shard and spec.query the config lists no peers (the query front end answers nothing)",
      [("src/operator/op_monitor.c", "kbuild_stack_query(json_object_get(qv, \"spec\"), &q, NULL) == 0 && q > 0) fronts = true;",
        "kbuild_stack_query(json_object_get(qv, \"spec\"), &q, NULL) == 0 && q > 0) fronts = false;")],
      ["operator:shards"], r"one shard with spec.query"),
    M("fanout-peer-not-a-listing", "a peer's answer that is not a listing counts as an empty one (the answer is not said to be partial)",
      [("src/collector/web_api.c", "  if (!json_is_array(data)) {\n    snprintf(why, nwhy, \"its answer is not a listing",
        "  if (false) {\n    snprintf(why, nwhy, \"its answer is not a listing")],
      ["collector:fanout"], r"collector fanout: a peer's record that does not decode"),
    M("restore-uploads-file-not-written", "a restore leaves no uploads file (the restored segments are sent back under their keys)",
      [("src/collector/restore.c", "    if (rc == 0 && keep) {\n      char path[4200]", "    if (rc == 0 && false) {\n      char path[4200]")],
      ["collector:objstore"], r"collector objstore: a new data directory starts from the bucket's copy"),
    M("restore-budget-ignored", "a restore takes every segment whatever the disk budget",
      [("src/collector/restore.c", "(!budget || total + r.v[keep].size <= budget)", "(true || total + r.v[keep].size <= budget)")],
      ["collector:objstore"], r"collector objstore: with --retention-size the restore takes the newest"),
    M("query-only-scrapes", "--query-only is taken but the monitors are scraped all the same",
      [("src/collector/main.c", "    if (a->query_only) dropped = listed, c->nmonitors = 0;", "    if (false) dropped = listed, c->nmonitors = 0;")],
      ["collector:fanout"], r"collector fanout: --query-only scrapes nothing"),
    M("shards-hash-whole-url", "the shard hash covers the whole endpoint (scheme and path move a target)",
      [("src/base/scrapeval.c", "  a = a ? a + 3 : endpoint;\n", "  a = endpoint;\n")],
      ["unit:test_config"], r"sharding"),
    M("shards-pin-ignored", "a monitor's shard: N is ignored (the hash decides)",
      [("src/collector/config.c", "  if (m->shard >= 0) return m->shard % shards == shard;\n", "")],
      ["collector:shards"], r"collector shards: 3 shards split the monitors"),
    M("operator-objstore-prefix-shared", "stacks sharing a bucket get one default prefix (the stack's name without its namespace)",
      [("src/operator/kbuild.c", "    snprintf(defprefix, sizeof defprefix, \"%s/%s\", ns, stack);",
        "    snprintf(defprefix, sizeof defprefix, \"%s\", stack);")],
      ["unit:test_kbuild"], r"stack_objstore"),
    M("operator-objstore-keys-ignored", "the Secret's key names of credentialsSecret are ignored (the defaults are always read)",
      [("src/operator/kbuild.c", "  if (!kid) kid = \"AWS_ACCESS_KEY_ID\";", "  kid = \"AWS_ACCESS_KEY_ID\";")],
      ["unit:test_kbuild"], r"stack_objstore"),
    # ---- shards run by the operator (issue 15 §1): unit test_kbuild `shards`, operator:shards
    M("operator-shards-change-replanned", "a new count asked for during a change replaces it (change_at moves, collectors that switched go back)",
      [("src/operator/kbuild.c", "  else if ((cur->previous && now < cur->change_at) || want == cur->shards) *ret = *cur;",
        "  else if (want == cur->shards) *ret = *cur;")],
      ["unit:test_kbuild"], r"shards"),
    M("operator-shards-at-once", "a new count takes effect at once (no delay for the ConfigMap to reach every pod)",
      [("src/operator/kbuild.c", "  else *ret = (kbuild_shards){want, cur->shards, now + delay};",
        "  else *ret = (kbuild_shards){want, cur->shards, now};")],
      ["unit:test_kbuild", "operator:shards"], r"shards|planned 40 s ahead"),
    M("operator-shards-stop-early", "a shard past the new, smaller count stops at once instead of at change_at",
      [("src/operator/kbuild.c", "  return p->previous > p->shards && now < p->change_at ? p->previous : p->shards;",
        "  return p->shards;")],
      ["unit:test_kbuild"], r"shards"),
    M("operator-shards-prefix-shared", "every shard uploads under the stack's one prefix (segment ids repeat between collectors)",
      [("src/operator/kbuild.c", "      json_array_set_new(args, i, json_sprintf(\"%s/shard-%d\", json_string_value(a), k));", "")],
      ["unit:test_kbuild"], r"shards"),
    M("operator-shards-no-requeue", "the stack is not reconciled again at change_at: a shard past the count keeps running",
      [("src/operator/op_stack.c", "      kq_add_after(o->q, j->key, (st->plan.change_at - st->now_s) * 1000 + 500, pp_clock_mono_ms());",
        "      (void)0;")],
      ["operator:shards"], r"2 -> 1: shard 1's StatefulSet"),
    M("operator-shard-delay-unchecked", "--shard-change-delay takes any duration (0, hours, fractions)",
      [("src/operator/main.c", "pp_parse_duration(optarg, &d, &e) < 0 || d < 1 || d > 3600 || d != (double)(int64_t)d)",
        "pp_parse_duration(optarg, &d, &e) < 0)")],
      ["operator:shards"], r"--shard-change-delay outside"),
    M("operator-monitor-pin-ignored", "a PprofMonitor's spec.shard is not written into the config",
      [("src/operator/op_monitor.c", "                                    .pin = km.pin};", "                                    .pin = 0};")],
      ["operator:shards"], r"spec.shard: all in a monitor"),
    # ---- OTLP profiles (issue 16 §3): read back under go tool pprof -raw, refusals
    M("otlp-stack-root-first", "an OTLP stack is read root first (OTLP and pprof both put the leaf first)",
      [(OT, "    for (uint32_t k = 0; k < s->nloc; k++) s->loc[k] = c.lmap[st->location_indices[k]] - 1;",
        "    for (uint32_t k = 0; k < s->nloc; k++) s->loc[k] = c.lmap[st->location_indices[s->nloc - 1 - k]] - 1;")],
      ["collector:otlp"], r"otlp: OTLP profiles made by"),
    M("otlp-types-not-grouped", "each OTLP profile (one sample type) is stored on its own, not joined with the other types of its pprof",
      [(OT, "  if (n >= 64 || q->time_unix_nano != p->time_unix_nano", "  if (n >= 1 || q->time_unix_nano != p->time_unix_nano")],
      ["collector:otlp"], r"otlp: OTLP profiles made by"),
    M("otlp-key-strindex-ignored", "a resource attribute's key from the dictionary's string table (key_strindex, as pdata writes it) is not read",
      [(OT, "static const char *kv_key(const dict_t *d, const Otlp__KeyValue *kv) { return *kv->key ? kv->key : dstr(d, kv->key_strindex); }",
        "static const char *kv_key(const dict_t *d, const Otlp__KeyValue *kv) { (void)d; return kv->key; }")],
      ["collector:otlp"], r"otlp: OTLP profiles made by"),
    M("otlp-label-names-kept", "resource attribute names keep their dots (k8s.namespace.name is no label name a selector can write)",
      [(OT, "      k[j] = !ch || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ? ch : '_';",
        "      k[j] = ch;")],
      ["collector:otlp"], r"otlp: OTLP profiles made by"),
    M("otlp-stack-index-unchecked", "a stack's location indexes are not checked against the location table",
      [(OT, "      if (l <= 0 || (size_t)l >= c->nloc)", "      if (l < 0)")],
      ["collector:otlp"], r"otlp: refused"),
    M("otlp-rejected-unreported", "a profile of an unknown type is dropped without partial_success saying so",
      [(OT, "  if (rejected) {\n    ps.rejected_profiles = rejected;", "  if (0) {\n    ps.rejected_profiles = rejected;")],
      ["collector:otlp"], r"otlp: refused"),
    M("otlp-pb-depth-unchecked", "a protobuf body's nesting is not checked before protobuf-c unpacks it (it recurses once per level)",
      [(WC, "  } else if (pb_depth(d, body, body + len, WEB_CONNECT_MAX_PB_DEPTH) > WEB_CONNECT_MAX_PB_DEPTH) {",
        "  } else if (0) {")],
      ["collector:otlp"], r"otlp: refused"),
    M("otlp-work-unbounded", "a request's conversion work is not bounded (one deep stack in a thousand profiles is walked a thousand times)",
      [(OT, "          if (c->work > WEB_OTLP_MAX_WORK)", "          if (0)")],
      ["collector:otlp"], r"otlp: refused"),
    M("otlp-kind-overwritten", "the pprof.profile.kind resource attribute is kept where the next label is written (a kind before other attributes is lost)",
      [(OT, "      snprintf(l->kindbuf, sizeof l->kindbuf, \"%s\", v);\n      l->kind = l->kindbuf;", "      l->kind = v;")],
      ["collector:otlp"], r"otlp: OTLP profiles made by"),
    M("otlp-zero-attribute-read", "a sample's attribute index 0 is read from the attribute table even when there is none",
      [(OT, "      if (ai <= 0 || !d || (size_t)ai >= d->n_attribute_table) continue;", "      if (ai < 0) continue;")],
      ["collector:otlp"], r"otlp: refused"),
    M("otlp-original-ignored", "a profile's original pprof (original_payload_format \"pprof\") is not used",
      [(OT, "        if (grp[0]->original_payload.len && !strcasecmp(grp[0]->original_payload_format, \"pprof\")) {",
        "        if (0) {")],
      ["collector:otlp"], r"otlp: a profile carrying its original"),
    # ---- render speed (issue 14): a one-segment merge without the merger, the call tree's walk
    M("idm-take-never", "a merge within one segment always goes through the merger (the shortcut is gone)",
      [("src/collector/store_idm.c", "  if (r == 0 && ret && merger_keeps(p)) {", "  if (r == 0 && ret && 0 && merger_keeps(p)) {")],
      ["unit:test_store"], r"one_segment_merge_is_the_mergers"),
    M("idm-take-mappings-unchecked", "a one-segment merge is handed over though the merger would fold two mappings of one binary",
      [("src/collector/store_idm.c", "      if (sa == sb && a->offset == b->offset &&", "      if (0 && sa == sb && a->offset == b->offset &&")],
      ["unit:test_store"], r"one_segment_merge_is_the_mergers"),
    M("idm-take-labels-unchecked", "a one-segment merge is handed over though its labels are out of the merger's order",
      [("src/collector/store_idm.c", "    for (uint32_t k = 1; k < s->nlabel; k++) {", "    for (uint32_t k = 1; k < 0 * s->nlabel; k++) {")],
      ["unit:test_store"], r"one_segment_merge_is_the_mergers"),
    M("idm-take-zero-sums-kept", "a one-segment merge is handed over though sums cancelled out to zero (the merger drops them)",
      [("src/collector/store_idm.c", "    if (zero) return false;", "    if (zero) (void)0;")],
      ["unit:test_store"], r"one_segment_merge_is_the_mergers"),
    M("mtb-path-not-cut", "the call tree's last-walk path keeps its deeper nodes after a step left it",
      [("src/codec/aggregate.c", "  b->path_len = d + 1;\n  *cur = child;", "  if (b->path_len < d + 1) b->path_len = d + 1;\n  *cur = child;")],
      ["unit:test_codec"], r"focus_agrees_with_top_on_shared_profiles"),
    # ---- UI: what the page shows
    M("raw-unescaped", "/raw writes '<' from label values unescaped",
      [("src/collector/web_json.c", "c == '<' ? \"&lt;\" :", "c == '<' ? \"<\" :")],
      ["ui"], r"hostile names"),
    M("ui-innerhtml", "the UI sets text with innerHTML",
      [(UI, "    else if (k === 'text') el.textContent = v;", "    else if (k === 'text') el.innerHTML = v;")],
      ["ui"], r"hostile names"),
    M("ui-flame-self-widths", "the flame graph sizes frames by self instead of total",
      [(UI, "      width[i] = Math.abs(c.total[i]) + (diff ? Math.abs(c.btotal[i] * scale) : 0);",
        "      width[i] = Math.abs(c.self[i]) + (diff ? Math.abs(c.bself[i] * scale) : 0);")],
      ["ui"], r"paints each depth"),
    M("ui-sample-ignored", "the explorer asks the API without the chosen sample type",
      [(UI, "const VIEW_ONLY = new Set(['search', 'focus', 'norm', 'range', 'base_range', ",
        "const VIEW_ONLY = new Set(['sample', 'search', 'focus', 'norm', 'range', 'base_range', ")],
      ["ui"], r"switching the sample type"),
    M("ui-focus-link-ignored", "a link's focus is not applied when the page opens",
      [(UI, "  if (st.focus) flame.focusName(st.focus);\n", "")],
      ["ui"], r"the link, opened in a new page"),
    M("ui-compare-delta-sign", "compare shows comparison plus base as the change",
      [(UI, "  const rows = d.top.map((r) => ({ ...r, delta: r.flat - (r.baseFlat || 0), flatp: r.flat, cump: r.cum }));",
        "  const rows = d.top.map((r) => ({ ...r, delta: r.flat + (r.baseFlat || 0), flatp: r.flat, cump: r.cum }));")],
      ["ui"], r"compare mode"),
    M("ui-dashboard-per-target", "the dashboard makes a card per target instead of per service",
      [(UI, "    const key = s.labels.__k8s_name ? `${s.labels.__k8s_namespace || ''}/${s.labels.__k8s_name}` : s.labels.monitor;",
        "    const key = s.labels.monitor;")],
      ["ui"], r"dashboard shows one card per service"),
    M("ui-timeline-axis-short", "the timeline's value axis stops below its largest point",
      [(UI, "const ystep = niceStep(vmax / 3), ymax = Math.ceil(vmax / ystep) * ystep;",
        "const ystep = niceStep(vmax / 3), ymax = Math.max(Math.floor(vmax / ystep), 1) * ystep;")],
      ["ui"], r"value axis is in the sample"),
    M("ui-timeline-hover-start-time", "the timeline's hover names a point by its scrape's start instead of its end",
      [(UI, "    tip(`${tstr(p.end)}\\n${fmt(p.v, unit)}`", "    tip(`${tstr(p.recs[0].start)}\\n${fmt(p.v, unit)}`")],
      ["ui"], r"hovering shows each point"),
    M("ui-timeline-pick-ignored", "a point clicked on the timeline does not narrow the view to its profile",
      [(UI, "  if (!compare && st.profile) {", "  if (false && st.profile) {")],
      ["ui"], r"clicking a point opens"),
    M("ui-timeline-drag-offset", "a drag on the timeline maps pixels to times without the axis margin",
      [(UI, "    const Tm = (px) => t0 + span * (px - L) / (W - L - R);", "    const Tm = (px) => t0 + span * px / W;")],
      ["ui"], r"dragging selects a range"),
    M("ui-flame-toggle-ignored", "the flame graph toggle leaves the root on top",
      [(UI, "  rowY(depth) { return (this.flip ? this.rows - 1 - depth : depth) * this.rowH; }", "  rowY(depth) { return depth * this.rowH; }")],
      ["ui"], r"flame graph toggle"),
    M("ui-tree-unsorted", "the call tree lists children in the order of the API's nodes, not by total",
      [(UI, "  for (const k of kids) k.sort((a, b) => Math.abs(c.total[b]) - Math.abs(c.total[a]));\n", "")],
      ["ui"], r"call tree"),
    M("ui-table-names-unbroken", "long function names do not wrap: the table is cut off at 1280 px",
      [("src/collector/ui/app.css", "td.fn { overflow-wrap: anywhere; word-break: break-word; }", "td.fn { white-space: nowrap; }")],
      ["ui"], r"at 1280 px wide"),
    M("ui-split-not-restored", "the split between flame graph and table is not read back from the URL",
      [(UI, "  let share = Math.min(80, Math.max(20, +st.split || 55));", "  let share = 55;")],
      ["ui"], r"at 1280 px wide|whole state"),
    M("ui-sort-not-restored", "the top table's sort is not read back from the URL",
      [(UI, "  let key = cols.some(([k]) => k === st.sort) ? st.sort : diff ? 'delta' : 'flat', desc = st.asc !== '1';",
        "  let key = diff ? 'delta' : 'flat', desc = true;")],
      ["ui"], r"whole state"),
    M("ui-explorer-opens-empty", "the explorer with nothing picked stays empty",
      [(UI, "    const pick = await busiest().catch(() => null);", "    const pick = null;")],
      ["ui"], r"busiest service"),
    M("ui-diff-colours-swapped", "the diff flame graph paints grown frames green and shrunk ones red",
      [(UI, "    return { hue: d > 0 ? 0 : 130,", "    return { hue: d > 0 ? 130 : 0,")],
      ["ui"], r"diff flame graph"),
    M("ui-diff-colours-by-value", "the diff flame graph colours by the change of value, not of the share of the total",
      [(UI, "        const ds = dshare[i] = (d.total ? c.total[i] / d.total : 0) - (d.baseTotal ? c.btotal[i] / d.baseTotal : 0);",
        "        const ds = dshare[i] = c.total[i] - c.btotal[i];")],
      ["ui"], r"diff flame graph"),
    M("ui-diff-colour-cache-by-sign", "the diff flame graph's colour cache keys frames by the sign of the change only (every grown frame painted as the first one)",
      [(UI, "      key = t ? (t.hue ? -1 : 1) * (1 + 1000 * t.sat + t.light) : 0;",
        "      key = t ? (t.hue ? -1 : 1) : 0;")],
      ["ui"], r"diff flame graph"),
    M("ui-sandwich-stale-answer", "the sandwich keeps showing the function the page opened on after another is picked",
      [(UI, "  (pre && pre.fn === fn ? Promise.resolve(pre.d) :", "  (pre ? Promise.resolve(pre.d) :")],
      ["ui"], r"sandwich"),
    M("ui-sandwich-callers-flat", "the sandwich lists its callers with their self values instead of their totals",
      [(UI, "h('td', { class: 'num', text: fmt(tc.total[i], unit) }), h('td', { class: 'num', text: pct(tc.total[i], f.cum) })",
        "h('td', { class: 'num', text: fmt(tc.self[i], unit) }), h('td', { class: 'num', text: pct(tc.self[i], f.cum) })")],
      ["ui"], r"sandwich"),
    M("render-cut-misplaced", "render's pruning cuts at the wrong node total (the selection returns its range's first element)",
      [(WA, "    else return pivot;\n  }\n  return v[k];", "    else return v[lo];\n  }\n  return v[k];")],
      ["collector:web_api"], r"pruned to max_nodes"),
    M("render-binary-base-columns", "render's binary encoding writes the comparison's values into the base's columns",
      [(WA, "      for (size_t j = 0; j < kept; j++) v[j] = (double)col[(size_t)kid[j] * nin + c / 2];",
        "      for (size_t j = 0; j < kept; j++) v[j] = (double)col[(size_t)kid[j] * nin];")],
      ["collector:web_api"], r"encoding=binary"),
    M("render-binary-parents-unmapped", "render's binary encoding writes parents as the call tree's ids, not the kept nodes' indexes",
      [(WA, "    for (size_t j = 0; j < kept; j++) kname[j] = kid[j] ? remap[t->parent[kid[j]]] : -1; /* parents */",
        "    for (size_t j = 0; j < kept; j++) kname[j] = kid[j] ? (int32_t)t->parent[kid[j]] : -1; /* parents */")],
      ["collector:web_api"], r"encoding=binary"),
    M("ui-binary-base-self-as-total", "the UI reads the base's self column as the base's total",
      [(UI, "      self: v(0), total: v(1), bself: o.values === 4 ? v(2) : null, btotal: o.values === 4 ? v(3) : null };",
        "      self: v(0), total: v(1), bself: o.values === 4 ? v(2) : null, btotal: o.values === 4 ? v(2) : null };")],
      ["ui"], r"diff flame graph"),
    M("ui-flame-children-overflow", "a frame whose children add up to more than it (a sandwich of a function that calls itself through others) lays them out at their shares of it, running past its edge",
      [(UI, "      const pw = this.span[p] || 1, f = w[p] / pw;", "      const pw = width[p] || 1, f = w[p] / pw;")],
      ["ui"], r"calls itself through others"),
    M("ui-sandwich-callers-upside-down", "the callers' graph of the sandwich has its root on top",
      [(UI, "    const up = tree(f.callers, 'callers', true, 'Callers')", "    const up = tree(f.callers, 'callers', false, 'Callers')")],
      ["ui"], r"sandwich"),
    M("ui-lines-cum-as-flat", "the line view shows cum in the flat column",
      [(UI, "            : [fmt(l.flat, unit), share(l.flat), fmt(l.cum, unit), share(l.cum)])",
        "            : [fmt(l.cum, unit), share(l.flat), fmt(l.cum, unit), share(l.cum)])")],
      ["ui"], r"line view"),
    M("ui-prevversion-swapped", "\"compare with the previous version\" puts the newer version in the base",
      [(UI, "    const [cur, prev] = [versions[Math.max(at, 1)], versions[Math.max(at, 1) - 1]];",
        "    const [prev, cur] = [versions[Math.max(at, 1)], versions[Math.max(at, 1) - 1]];")],
      ["ui"], r"deploy to deploy"),
    M("ui-pgo-without-selection", "\"Download default.pgo\" asks for every target's CPU profile, not the view's selection",
      [(UI, "  const pgoParams = { ...dlParams };", "  const pgoParams = { type: 'cpu' };")],
      ["ui"], r"default\.pgo"),
    M("ui-tag-negation-dropped", "a \u2260 label filter is sent as =",
      [(UI, "  add.onclick = () => key.value && onChange({ tag: [...tags, `${key.value}${op.value}${val.value}`] });",
        "  add.onclick = () => key.value && onChange({ tag: [...tags, `${key.value}=${val.value}`] });")],
      ["ui"], r"label filters"),
    M("ui-groupby-timeline-ignored", "group by a label leaves the timeline one summed line",
      [(UI, "    const tp = { ...tparams, sample: d.sampleType.type };", "    const tp = { ...tparams, sample: d.sampleType.type, group_by: undefined };")],
      ["ui"], r"group by a label"),
    M("ui-function-self-as-total", "function over time shows the total share as the self share",
      [(UI, "    tip(`${tstr(best.end)}\\nself ${(100 * share(best, 'flat')).toFixed(2)}%", "    tip(`${tstr(best.end)}\\nself ${(100 * share(best, 'cum')).toFixed(2)}%")],
      ["ui"], r"function over time"),
    M("ui-pick-wrong-record", "a click on a timeline point opens the next record's profile",
      [(UI, "        rerender(rec && rec.id != null ? { profile: 'id:' + rec.id + (rec.peer",
        "        rerender(rec && rec.id != null ? { profile: 'id:' + (rec.id + 1) + (rec.peer")],
      ["ui"], r"clicking a point opens"),
    # ---- function over time per pod and from the search box (issue 14 section 2)
    M("timeline-function-first-series", "function= on the timeline gives every entry (pod) the first series' flat and cum",
      [(WA, "      const web_point *w = &pts[order[k]];\n      long long v = g < 0 ? (f == 1",
        "      const web_point *w = &pts[order[k - k0]];\n      long long v = g < 0 ? (f == 1")],
      ["collector:labels"], r"per pod"),
    M("ui-function-pods-nearest-any", "per pod, the tooltip shows the point nearest the pointer of any pod on every pod's line",
      [(UI, "    const rows = lines.map((l) => [l.key, nearest(l.pts, e.offsetX)])", "    const rows = lines.map((l) => [l.key, nearest(l.pts, e.offsetX) && best])")],
      ["ui"], r"function over time per pod"),
    M("ui-search-enter-ignored", "Enter in the search box no longer picks the function over time",
      [(UI, "if (e.key === 'Enter') { e.preventDefault(); pickSearched(); }", "if (e.key === 'Enter') { e.preventDefault(); }")],
      ["ui"], r"search picks the function"),
    M("ui-pod-legend-markup", "the per-pod legend sets pod names as HTML",
      [(UI, "h('em', { class: 'pod', text: l.key })", "Object.assign(h('em', { class: 'pod' }), { innerHTML: l.key })")],
      ["ui"], r"hostile names"),
    # ---- /api/v1/pgo, pprof-tool pgo, /api/v1/regressions (issue 14, tests/collector/pgo_api.py)
    M("pgo-keeps-every-location", "pprof_pgo_trim ignores keep_locations (stacks stay whole)",
      [("src/codec/pgo.c", "  size_t keep = o->keep_locations;", "  size_t keep = 0;")],
      ["collector:pgo"], r"stacks cut to 5|--keep-locations=2"),
    M("pgo-leaf-line-kept", "aggregate_callees keeps the leaf function's own line",
      [("src/codec/pgo.c", "        if (v.nline) v.line[0].line = 0, v.line[0].column = 0;", "        (void)0;")],
      ["collector:pgo"], r"leaf lines dropped"),
    M("pgo-keep-unbounded", "/api/v1/pgo takes any keep_locations",
      [("src/collector/web_pgo.c", "web_api_num_param(p, \"keep_locations\", 5, 0, PGO_MAX_KEEP, &bad)",
        "web_api_num_param(p, \"keep_locations\", 5, -1000000, 1000000, &bad)")],
      ["collector:pgo"], r"refuses bad keep_locations"),
    M("regressions-base-share-of-after", "regressions divides the base's values by the after side's total",
      [("src/collector/web_pgo.c", ": share(rows[i].flat, ta.total) - share(rows[i].base_flat, tb.total);",
        ": share(rows[i].flat, ta.total) - share(rows[i].base_flat, ta.total);")],
      ["collector:regressions"], r"by=flat"),
    M("regressions-tags-ignored", "pgo and regressions merge the selection without its tag= filters (and id=)",
      [(WA, "  int r = select_profile(x, q, budget, ret_profile, &count, NULL, &err);",
        "  int r = store_merged_within(x->h->st, q->m, q->nm, q->type, q->from, q->to, q->agg, WEB_MAX_RECORDS, budget, ret_profile, &count, &err);")],
      ["collector:regressions"], r"tag= and base_tag="),
    M("each-profile-neighbour", "store_each_profile hands record i the profile of record i-1",
      [(Q, "      if (sym_read_with(s, &rd, &locs[i], &rec, &rerr) == 0) {", "      if (sym_read_with(s, &rd, &locs[i ? i - 1 : 0], &rec, &rerr) == 0) {")],
      ["unit:test_store"], r"each_profile_as_scraped"),
    M("each-profile-v1-dropped", "store_each_profile builds v2 records only (an old-format record reads as unreadable)",
      [(Q, "        else store__decode_v1(&rec, limits, &p, &rerr);", "        else pp_err_set(&rerr, PP_EIO, \"not v2\");")],
      ["unit:test_store"], r"each_profile_as_scraped"),
    M("tag-values-unlimited", "/api/v1/tags lists every value of a key (no WEB_MAX_TAG_VALUES cap)",
      [("src/collector/web_labels.h", "#define WEB_MAX_TAG_VALUES 1000", "#define WEB_MAX_TAG_VALUES 100000")],
      ["collector:label_limits"], r"biggest values"),
    M("group-by-unlimited", "group_by= splits into any number of values (no WEB_MAX_GROUPS cap)",
      [("src/collector/web_labels.h", "#define WEB_MAX_GROUPS 200", "#define WEB_MAX_GROUPS 20000")],
      ["collector:label_limits"], r"more than 200 values"),
    M("regressions-by-ignored", "regressions sorts by flat whatever by= says",
      [("src/collector/web_pgo.c", "  bool by_cum = by && !strcmp(by, \"cum\");", "  bool by_cum = false;")],
      ["collector:regressions"], r"by=cum"),
    M("operator-version-any-container", "the version label takes the first container's image, not the one exposing the port",
      [("src/operator/kbuild.c", "    json_array_foreach(json_object_get(c, \"ports\"), k, p) if (json_integer_value(json_object_get(p, \"containerPort\")) == port) return c;",
        "    (void)k, (void)p;")],
      ["unit:test_kbuild"], r"pod_versions"),
    M("operator-version-unwritten", "the config leaves out the targets' version label",
      [("src/operator/kbuild.c", "    if (x->version && *x->version) {\n      pp_buf_puts(&s, \"\\n    version: \");",
        "    if (0) {\n      pp_buf_puts(&s, \"\\n    version: \");")],
      ["unit:test_kbuild", "operator:version"], r"config_yaml_round_trips|carry version"),
    # ---- operator, on the real control plane (tests/operator)
    M("operator-unreadable-config-digested", "a gzipped config read back with a NUL inside, or past 64 MiB, is digested as if readable",
      [("src/operator/op_monitor.c", " && !memchr(text, 0, n)) {", ") {"),
       ("src/operator/op_int.h", "#define OP_CONFIG_MAX_TEXT ((size_t)64 << 20)", "#define OP_CONFIG_MAX_TEXT ((size_t)128 << 20)")],
      ["unit:test_opconfig"], r"unreadable_binary_config_is_never_current"),
    M("operator-gzip-form-unmarked", "the digest of a gzipped config read back lacks its gz: mark (a change of form goes unseen)",
      [("src/operator/op_monitor.c", "        d[0] = 'g', d[1] = 'z', d[2] = ':';\n        op_digest(t, d + 3, sizeof d - 3);",
        "        op_digest(t, d, sizeof d);")],
      ["unit:test_opconfig"], r"gzipped_config_digests_as_its_yaml"),
    M("operator-config-never-gzipped", "a config over --config-gzip-above is written plain (a ConfigMap holds 1 MiB)",
      [("src/operator/op_monitor.c", "  if (len <= o->o.config_gzip_above) {\n", "  if (1) {\n"),
       ("src/operator/op_monitor.c", "    bool gzipped = strlen(yaml) > o->o.config_gzip_above;", "    bool gzipped = false;")],
      ["operator:gzip"], r"gzipped to binaryData"),
    M("operator-config-without-stack", "the monitor pass writes the config with no stack owning its ConfigMap",
      [("src/operator/op_monitor.c", "    if (cur && (!have || strcmp(have, want))) {", "    if (!have || strcmp(have, want)) {")],
      ["operator:gc"], r"garbage collector removes"),
    M("operator-unready-endpoints-kept", "endpoints whose ready condition is false stay targets",
      [("src/operator/op_monitor.c", '          if (json_is_false(json_object_get(json_object_get(e, "conditions"), "ready"))) continue;',
        '          (void)0;')],
      ["operator:changes"], r"readiness probe"),
    M("operator-bad-event-rewatched", "a watch ending on an unreadable event is watched again at once, no error or relist",
      [("src/operator/informer.c", "    inf->stats.bad_events++;", "    inf->st = NEED_WATCH;\n    inf->due_ms = now;\n    return;")],
      ["operator:badevents"], r"watch event"),
]


def sh(cmd, log, cwd=ROOT, env=None, timeout=3600):
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        p = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    return p.returncode


def fresh_scratch(log):
    """A copy of the work tree (tracked and untracked files, as they are now) plus the build
    outputs with their times, so `make` in the copy rebuilds only what a mutant touches."""
    shutil.rmtree(SCRATCH, ignore_errors=True)
    os.makedirs(SCRATCH)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for f in files:
        if not f or f.startswith("build/") or not os.path.isfile(os.path.join(ROOT, f)):
            continue
        dst = os.path.join(SCRATCH, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), dst)
    for d in ("build/rel", "build/asan", "build/tsan", "build/clang", "build/gen", "bin"):
        if os.path.isdir(os.path.join(ROOT, d)):
            os.makedirs(os.path.dirname(os.path.join(SCRATCH, d)), exist_ok=True)
            subprocess.run(["cp", "-a", os.path.join(ROOT, d), os.path.join(SCRATCH, d)], check=True)
    for f in ("build/.deps-ok", "build/version.stamp"):
        if os.path.exists(os.path.join(ROOT, f)):
            shutil.copy2(os.path.join(ROOT, f), os.path.join(SCRATCH, f))
    nm = os.path.join(ROOT, "tests", "ui", "node_modules")
    if os.path.isdir(nm):
        os.symlink(nm, os.path.join(SCRATCH, "tests", "ui", "node_modules"))
    return sh(["make", "-j2", "test-bins"], log, cwd=SCRATCH)


def run_tests(selections, log):
    """(ran, failing case names) of tests/run.py in the scratch tree."""
    env = dict(os.environ, PPROF_TESTDATA=TESTDATA)
    with open(log, "a") as f:
        p = subprocess.run([sys.executable, os.path.join(SCRATCH, "tests", "run.py"), *selections], cwd=SCRATCH,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True, timeout=3600)
        f.write(p.stdout)
    failed = [l[len("not ok - "):] for l in p.stdout.splitlines() if l.startswith("not ok - ")]
    ran = bool(re.search(r"^\d+ passed, \d+ failed$", p.stdout, re.M))
    return ran, failed


def apply(m):
    """Patches the scratch tree; returns the originals to restore, or None if an edit's text is
    not found exactly once (the mutant went stale: the code it breaks changed)."""
    saved = {}
    for f, old, new in m["edits"]:
        path = os.path.join(SCRATCH, f)
        cur = open(path).read()
        if cur.count(old) != 1:
            restore(saved)
            return None
        saved.setdefault(f, cur)  # the text before this mutant's first edit of f
        with open(path, "w") as out:
            out.write(cur.replace(old, new))
    return saved


def restore(saved):
    for f, text in saved.items():
        with open(os.path.join(SCRATCH, f), "w") as out:
            out.write(text)


def main():
    args = sys.argv[1:]
    if "--list" in args:
        for m in MUTANTS:
            print(f"{m['name']:28} {' '.join(m['run']):36} {m['what']}")
        return 0
    if "--check" in args:
        # every edit still applies to the source as it is (no build, no run)
        stale = [m["name"] for m in MUTANTS for f, old, _ in m["edits"] if open(os.path.join(ROOT, f)).read().count(old) != 1]
        print("mutants: all edits apply" if not stale else f"mutants: stale {stale}")
        return 1 if stale else 0
    chosen = [m for m in MUTANTS if not args or m["name"] in args]
    unknown = set(args) - {m["name"] for m in MUTANTS}
    if unknown:
        print(f"mutants: unknown {sorted(unknown)}", file=sys.stderr)
        return 2
    shutil.rmtree(LOGS, ignore_errors=True)
    os.makedirs(LOGS)
    start = time.time()
    base_log = os.path.join(LOGS, "baseline.log")
    print(f"mutants: scratch copy in {os.path.relpath(SCRATCH, ROOT)}, building", flush=True)
    if fresh_scratch(base_log) != 0:
        print(f"mutants: the unmutated scratch tree does not build (see {base_log})", flush=True)
        return 1
    selections = sorted({s for m in chosen for s in m["run"]})
    # one run per suite, its parts merged: the unmutated tree must pass all of them
    merged = {}
    for s in selections:
        suite, _, parts = s.partition(":")
        merged.setdefault(suite, set())
        if parts and merged[suite] is not None:
            merged[suite] |= set(parts.split(","))
        else:
            merged[suite] = None
    base_sel = [k + (":" + ",".join(sorted(v)) if v else "") for k, v in sorted(merged.items())]
    print(f"mutants: baseline {' '.join(base_sel)}", flush=True)
    ran, failed = run_tests(base_sel, base_log)
    if not ran or failed:
        print(f"mutants: the unmutated tree fails {failed[:5]} (see {base_log}); nothing to compare against", flush=True)
        return 1
    results = []
    for m in chosen:
        log = os.path.join(LOGS, m["name"] + ".log")
        t0 = time.time()
        saved = apply(m)
        if saved is None:
            results.append((m, "STALE", "an edit's text is not in the source any more", 0))
        else:
            try:
                if sh(["make", "-j2", "test-bins"], log, cwd=SCRATCH) != 0:
                    results.append((m, "BUILD FAILED", "", time.time() - t0))
                else:
                    ran, failed = run_tests(m["run"], log)
                    hits = [f for f in failed if re.search(m["expect"], f)]
                    if hits:
                        results.append((m, "caught", "; ".join(hits[:2]) + (f" (+{len(hits) - 2})" if len(hits) > 2 else ""), time.time() - t0))
                    else:
                        results.append((m, "SURVIVED", ("other failures: " + "; ".join(failed[:2])) if failed else "", time.time() - t0))
            finally:
                restore(saved)
        r = results[-1]
        print(f"{r[1]:12} {m['name']:28} {r[3]:5.0f}s  {r[2][:150]}", flush=True)
    # leave the scratch tree built as the source is
    sh(["make", "-j2", "test-bins"], os.path.join(LOGS, "restore.log"), cwd=SCRATCH)
    caught = sum(1 for r in results if r[1] == "caught")
    table = ["| mutant | what it breaks | run | result | caught by (failing cases) |", "|---|---|---|---|---|"]
    for m, res, detail, secs in results:
        table.append(f"| `{m['name']}` | {m['what']} | `{' '.join(m['run'])}` | {res} ({secs:.0f} s) | {detail.replace('|', '/')} |")
    summary = f"{caught} of {len(results)} mutants caught ({time.time() - start:.0f} s, {time.strftime('%Y-%m-%d')})"
    report = "\n".join(table) + "\n\n" + summary + "\n"
    open(os.path.join(ROOT, "build", "mutants", "report.md"), "w").write(report)
    print(summary, flush=True)
    if not args:
        update_docs(report)
    return 0 if caught == len(results) else 1


def update_docs(report):
    """The last full result goes into docs/testing.md between the mutants markers."""
    path = os.path.join(ROOT, "docs", "testing.md")
    text = open(path).read()
    a, b = "<!-- mutants:begin -->", "<!-- mutants:end -->"
    if a in text and b in text:
        text = text[:text.index(a) + len(a)] + "\n" + report + text[text.index(b):]
        open(path, "w").write(text)


if __name__ == "__main__":
    sys.exit(main())
