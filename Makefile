# pprof-controller build. Plain GNU make: the project is a handful of C modules with
# pkg-config dependencies, and a Makefile keeps the whole build readable in one page.
#
#   make build   codec library + bin/pprof-tool (installs missing Debian packages first)
#   make test    unit tests, sanitizer run, fuzz corpus replay, conformance with go tool pprof
#   make bench   benchmarks against go tool pprof (writes build/bench/results.md)
#   make mutants deliberate breakages that the tests must catch (tests/mutants.py; slow)
#   make fuzz    a short libFuzzer run of every fuzz target (FUZZ_SECONDS each)
#   make local   demo Go service + collector scraping it, UI/API on http://localhost:8989
#   make cluster the operator on a real Kubernetes control plane with demo workloads (root);
#                UI on http://localhost:8989, Ctrl-C removes everything
#   make deps    install the Debian packages the build and tests need
#   make image   OCI images of collector, operator and demo-target, no container engine needed
#                (REGISTRY=docker.io REPO=pprof-controller TAG=dev name them)
#   make push    pushes them with skopeo (SKOPEO_FLAGS=--dest-tls-verify=false for a plain registry)
#   make manifests  deploy/ and examples/manifests/ rendered for REGISTRY/REPO/TAG in build/manifests
#   make k8s     etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl from
#                tools/k8s into build/k8s/bin (rebuilt only when tools/k8s's go.mod/go.sum change)
#   make clean

CC      ?= cc
WERROR  ?= $(if $(CI),-Werror,)
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
# frame pointers everywhere, leaf functions included: the collector's CPU sampler walks them
# from a signal handler (selfprof.c), where an unwinder is not safe to call
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer $(WERROR)
PKGS    := libprotobuf-c zlib libdeflate yaml-0.1 libcurl libmicrohttpd sqlite3 jansson libcrypt libpcre2-8 expat
DEPS_OK := build/.deps-ok

B       := build
GEN     := $(B)/gen
BASE_SRC  := $(wildcard src/base/*.c)
CODEC_SRC := $(wildcard src/codec/*.c)
LIB_SRC   := $(BASE_SRC) $(CODEC_SRC)
COLL_SRC  := $(filter-out src/collector/main.c,$(wildcard src/collector/*.c))
OP_SRC    := $(filter-out src/operator/main.c,$(wildcard src/operator/*.c))

# Objects of one build flavour live under $(B)/<flavour>/ so the sanitizer build never mixes
# with the optimised one.
# Three libraries: libpprofcodec.a (src/base + src/codec, shared by every binary),
# libcollector.a (src/collector and its embedded UI) and liboperator.a (src/operator and its
# embedded CRDs); a binary links only what it uses.
objs = $(patsubst %.c,$(B)/$(1)/%.o,$(LIB_SRC)) $(B)/$(1)/gen/profile.pb-c.o
cobjs = $(patsubst %.c,$(B)/$(1)/%.o,$(COLL_SRC)) $(B)/$(1)/gen/ui_assets.o $(B)/$(1)/gen/push.pb-c.o $(B)/$(1)/gen/querier.pb-c.o $(B)/$(1)/gen/otlp.pb-c.o
oobjs = $(patsubst %.c,$(B)/$(1)/%.o,$(OP_SRC)) $(B)/$(1)/gen/crd_assets.o
UI_FILES := $(wildcard src/collector/ui/*)
CRD_FILES := $(sort $(wildcard deploy/crds/*.yaml))

.PHONY: local cluster
local: bin/collector bin/demo-target
	scripts/local.sh

# the seed's Kubernetes section on this machine (root; no Docker): a real control plane, one
# node whose pods are processes in network namespaces, the operator, examples and demo workloads
cluster: bin/operator image $(B)/k8s/stamp
	python3 scripts/cluster.py

.PHONY: all build test unit-test test-asan conformance fuzz-replay fuzz bench deps clean fmt
all: build
build: bin/pprof-tool bin/collector bin/operator bin/demo-target

deps:
	scripts/deps.sh
$(DEPS_OK): scripts/deps.sh
	@scripts/deps.sh
	@mkdir -p $(B) && touch $@

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# one run makes both files (a grouped target, GNU make 4.3): as two targets, a fresh build ran
# protoc-c twice, and the second run's newer header had the next make recompile every object
$(GEN)/profile.pb-c.c $(GEN)/profile.pb-c.h &: proto/profile.proto | $(DEPS_OK)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto proto/profile.proto
# Pyroscope's push request (the collector's /push.v1.PusherService/Push)
$(GEN)/push.pb-c.c $(GEN)/push.pb-c.h &: proto/push.proto | $(DEPS_OK)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto proto/push.proto
# Pyroscope's query API (the collector's /querier.v1.QuerierService/*, web_querier.c)
$(GEN)/querier.pb-c.c $(GEN)/querier.pb-c.h &: proto/querier.proto | $(DEPS_OK)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto proto/querier.proto

# OpenTelemetry's OTLP profiles (the collector's /v1development/profiles, web_otlp.c)
$(GEN)/otlp.pb-c.c $(GEN)/otlp.pb-c.h &: proto/otlp.proto | $(DEPS_OK)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto proto/otlp.proto

$(GEN)/ui_assets.c: tools/embed.py $(UI_FILES) | $(DEPS_OK)
	@mkdir -p $(GEN)
	python3 tools/embed.py $@ --table ui_assets $(UI_FILES)

$(GEN)/crd_assets.c: tools/embed.py $(CRD_FILES) | $(DEPS_OK)
	@mkdir -p $(GEN)
	python3 tools/embed.py $@ --table crd_assets $(CRD_FILES)

# --- flavours: rel (optimised), asan (ASan+UBSan), tsan (ThreadSanitizer), clang (clang's
# ASan+UBSan: the fuzzers' checks, for the corpus replay) ---
# Every sanitizer report is fatal (-fno-sanitize-recover=all): a finding that only prints and
# lets the run go on is a finding nobody sees.
FLAVOURS := rel asan tsan clang
rel_CFLAGS  :=
asan_CFLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
tsan_CFLAGS := -O1 -fsanitize=thread -fno-omit-frame-pointer
clang_CC     := clang
# (clang's -Wextra also warns of designated initialisers that leave fields out, which the code
# does on purpose; gcc's builds hold the warnings)
clang_CFLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
                -Wno-missing-field-initializers
flavour_cc = $(or $($(1)_CC),$(CC))
# what the objects of a flavour are made with (-Werror changes no object: CI=true rebuilds nothing)
flavour_stamp = $(call flavour_cc,$(1)) $(filter-out -Werror,$(CFLAGS) $($(1)_CFLAGS))

# (each flavour's objects depend on a stamp of its compiler and flags, rewritten only when they
# change, so a changed flag rebuilds everything it applies to)
define flavour
$(B)/$(1)/flags.stamp: FORCE
	@mkdir -p $$(dir $$@); echo '$$(call flavour_stamp,$(1))' | cmp -s - $$@ || echo '$$(call flavour_stamp,$(1))' > $$@
$(B)/$(1)/%.o: %.c $(GEN)/profile.pb-c.h $(GEN)/push.pb-c.h $(GEN)/querier.pb-c.h $(GEN)/otlp.pb-c.h $(B)/$(1)/flags.stamp | $(DEPS_OK)
	@mkdir -p $$(dir $$@)
	$$(call flavour_cc,$(1)) $$(CFLAGS) $$($(1)_CFLAGS) $$(VERSION_DEFS) -I$(GEN) $$(PKG_CFLAGS) -MMD -MP -c $$< -o $$@
$(B)/$(1)/gen/%.pb-c.o: $(GEN)/%.pb-c.c $(B)/$(1)/flags.stamp | $(DEPS_OK)
	@mkdir -p $$(dir $$@)
	$$(call flavour_cc,$(1)) $$(filter-out -Wmissing-prototypes -Wstrict-prototypes,$$(CFLAGS)) $$($(1)_CFLAGS) $$(PKG_CFLAGS) -c $$< -o $$@
$(B)/$(1)/gen/%_assets.o: $(GEN)/%_assets.c src/base/blob.h $(B)/$(1)/flags.stamp
	@mkdir -p $$(dir $$@)
	$$(call flavour_cc,$(1)) $$(CFLAGS) $$($(1)_CFLAGS) -Isrc -c $$< -o $$@
$(B)/$(1)/libpprofcodec.a: $(call objs,$(1))
	$$(AR) rcs $$@ $$^
$(B)/$(1)/libcollector.a: $(call cobjs,$(1))
	$$(AR) rcs $$@ $$^
$(B)/$(1)/liboperator.a: $(call oobjs,$(1))
	$$(AR) rcs $$@ $$^
endef
$(foreach f,$(FLAVOURS),$(eval $(call flavour,$(f))))

bin/pprof-tool: $(B)/rel/src/tools/pprof-tool.o $(B)/rel/libpprofcodec.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# the version and revision baked into every binary; the stamp changes when either does, so a
# new commit rebuilds what prints them
VERSION_STAMP := $(B)/version.stamp
$(VERSION_STAMP): FORCE
	@mkdir -p $(B); echo '$(VERSION) $(REVISION)' | cmp -s - $@ || echo '$(VERSION) $(REVISION)' > $@
.PHONY: FORCE
FORCE:
VERSIONED_OBJS := $(B)/rel/src/collector/main.o $(B)/rel/src/operator/main.o $(B)/rel/src/tools/pprof-tool.o
$(VERSIONED_OBJS): VERSION_DEFS = -DPP_VERSION='"$(VERSION)"' -DPP_REVISION='"$(REVISION)"'
$(VERSIONED_OBJS): $(VERSION_STAMP)
bin/operator: $(B)/rel/src/operator/main.o $(B)/rel/liboperator.a $(B)/rel/libpprofcodec.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread -ldl
bin/collector: $(B)/rel/src/collector/main.o $(B)/rel/libcollector.a $(B)/rel/libpprofcodec.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread -ldl

# --- unit tests: one binary per tests/unit/test_*.c, built in both flavours ---
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_REL  := $(patsubst tests/unit/%.c,$(B)/rel/tests/%,$(UNIT_SRC))
UNIT_ASAN := $(patsubst tests/unit/%.c,$(B)/asan/tests/%,$(UNIT_SRC))
# (a test links every library: the operator's builders are checked against the collector's parser)
$(B)/rel/tests/%: $(B)/rel/tests/unit/%.o $(B)/rel/liboperator.a $(B)/rel/libcollector.a $(B)/rel/libpprofcodec.a
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread
$(B)/asan/tests/%: $(B)/asan/tests/unit/%.o $(B)/asan/liboperator.a $(B)/asan/libcollector.a $(B)/asan/libpprofcodec.a
	$(CC) $(CFLAGS) $(asan_CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread

# --- fuzz targets: libFuzzer with clang; the replay binary is a plain main() over a corpus,
# built with the same compiler and sanitizers (clang's UBSan has checks gcc's lacks, such as a
# zero offset applied to a null pointer), so what fails a fuzzer fails the replay ---
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
REPLAY_BIN := $(patsubst fuzz/%.c,$(B)/clang/fuzz/%-replay,$(FUZZ_SRC))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
$(B)/fuzz/%: fuzz/%.c $(wildcard fuzz/*.h) $(LIB_SRC) $(COLL_SRC) $(OP_SRC) $(GEN)/profile.pb-c.c $(GEN)/push.pb-c.c $(GEN)/querier.pb-c.c $(GEN)/otlp.pb-c.c $(GEN)/ui_assets.c $(GEN)/crd_assets.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer $(FUZZ_SAN) -I$(GEN) -Isrc $(PKG_CFLAGS) \
	  -o $@ $< $(LIB_SRC) $(COLL_SRC) $(OP_SRC) $(GEN)/profile.pb-c.c $(GEN)/push.pb-c.c $(GEN)/querier.pb-c.c $(GEN)/otlp.pb-c.c $(GEN)/ui_assets.c $(GEN)/crd_assets.c $(PKG_LIBS) -lm -pthread -ldl
$(B)/clang/fuzz/%-replay: $(B)/clang/fuzz/%.o $(B)/clang/fuzz/replay_main.o $(B)/clang/liboperator.a $(B)/clang/libcollector.a $(B)/clang/libpprofcodec.a
	clang $(CFLAGS) $(clang_CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread -ldl

# the operator and the collector also run their end-to-end tests under ASan+UBSan
$(B)/asan/bin/operator: $(B)/asan/src/operator/main.o $(B)/asan/liboperator.a $(B)/asan/libpprofcodec.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(asan_CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread -ldl
$(B)/asan/bin/collector: $(B)/asan/src/collector/main.o $(B)/asan/libcollector.a $(B)/asan/libpprofcodec.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(asan_CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread -ldl
# and under ThreadSanitizer: the scrape loop, the decode workers, the compactor and the HTTP
# threads share the engine and the store
$(B)/tsan/bin/collector: $(B)/tsan/src/collector/main.o $(B)/tsan/libcollector.a $(B)/tsan/libpprofcodec.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(tsan_CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread -ldl
TEST_BINS := bin/pprof-tool bin/collector bin/operator bin/demo-target $(UNIT_REL) $(UNIT_ASAN) $(REPLAY_BIN) \
             $(B)/asan/bin/operator $(B)/asan/bin/collector $(B)/tsan/bin/collector $(B)/k8s/stamp image \
             $(B)/rel/bench/store-bench $(B)/rel/tests/libfaultinj.so bin/push-client bin/otlp-client bin/otelcol \
             bin/versitygw
# the fault-injecting LD_PRELOAD shim of the collector suite (fdatasync EIO, EDQUOT): test code
$(B)/rel/tests/libfaultinj.so: tests/lib/faultinj.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -fPIC -o $@ $< -ldl
test-bins: $(TEST_BINS)
test: test-bins
	python3 tests/run.py

# Deliberate breakages, each built in a scratch copy and run against the tests that should
# catch it (tests/mutants.py); slow (about an hour), so not part of `make test`. Writes its
# table into docs/testing.md.
.PHONY: mutants test-bins
mutants: test-bins
	python3 tests/mutants.py

# The smoke run is deterministic (fixed seed and run count, fresh work dir), so what CI runs
# can be run here first: `make fuzz`. For exploration: `make fuzz FUZZ_RUNS=-1 FUZZ_SECONDS=600`.
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= 300000
FUZZ_SEED ?= 1
# one make target per fuzz target, so `make -j2 -Otarget fuzz` runs two at a time, each one's
# output kept together
FUZZ_RUN := $(patsubst $(B)/fuzz/%,fuzz-run-%,$(FUZZ_BIN))
.PHONY: fuzz fuzz-bins $(FUZZ_RUN)
fuzz-bins: $(FUZZ_BIN)
fuzz: $(FUZZ_RUN)
$(FUZZ_RUN): fuzz-run-%: $(B)/fuzz/%
	@rm -rf $(B)/fuzz/work-$*; mkdir -p $(B)/fuzz/work-$*
	@echo "fuzz: $*, $(FUZZ_RUNS) runs, seed $(FUZZ_SEED)"
	@$< -seed=$(FUZZ_SEED) -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
	  -artifact_prefix=$(B)/fuzz/ $(B)/fuzz/work-$* fuzz/corpus/$(patsubst fuzz_%,%,$*)

bench: bin/pprof-tool bin/collector bin/operator bin/load-target bin/otlp-client bin/versitygw $(B)/rel/bench/codec-bench $(B)/rel/bench/store-bench
	python3 bench/run.py
	python3 bench/collector_bench.py
	python3 bench/operator_bench.py
	python3 bench/ui_bench.py
	python3 bench/reliability_bench.py
	python3 bench/store_bench.py
	python3 bench/push_bench.py
	python3 bench/querier_bench.py
	python3 bench/fanout_bench.py
	python3 bench/bucket_bench.py
$(B)/rel/bench/store-bench: $(B)/rel/bench/store-bench.o $(B)/rel/libcollector.a $(B)/rel/libpprofcodec.a
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread -ldl
$(B)/rel/bench/codec-bench: $(B)/rel/bench/codec-bench.o $(B)/rel/libpprofcodec.a
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread

fmt:
	clang-format -i $(LIB_SRC) src/*/*.h src/tools/*.c tests/unit/*.[ch] fuzz/*.c bench/*.c

clean:
	rm -rf $(B) bin

# Keep intermediate objects: make would otherwise delete them after the test run and print that
# after the test runner's closing `N passed, N failed` line.
.SECONDARY:

-include $(shell find $(B) -path $(B)/gopath -prune -o -path $(B)/gocache -prune -o -type f -name '*.d' -print 2>/dev/null)

# --- the Go demo target (stdlib only; the machine's Go, /usr/local/go; no network) ---
GOENV := GOCACHE=$(CURDIR)/$(B)/gocache GOPATH=$(CURDIR)/$(B)/gopath GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local
bin/demo-target: tools/demo-target/main.go tools/demo-target/go.mod | $(DEPS_OK)
	@mkdir -p bin
	cd tools/demo-target && $(GOENV) go build -o ../../bin/demo-target .
# the project's stand-ins for MPL-2.0 modules the OpenTelemetry tools and versitygw link
# (tools/third_party/README.md, tools/versitygw/README.md)
THIRD_PARTY_GO := $(wildcard tools/third_party/*/go.mod tools/third_party/*/*.go tools/third_party/*/*/*.go)
# the pyroscope-go SDK's client for the push tests (issue 16): modules from the Go module proxy,
# pinned by the committed go.sum (-mod=readonly), cached under build/gopath
bin/push-client: $(wildcard tools/push-client/*.go) tools/push-client/go.mod tools/push-client/go.sum | $(DEPS_OK)
	@mkdir -p bin
	cd tools/push-client && GOCACHE=$(CURDIR)/$(B)/gocache GOPATH=$(CURDIR)/$(B)/gopath GOFLAGS=-mod=readonly GOTOOLCHAIN=local \
	  go build -o ../../bin/push-client .
bin/otlp-client: $(wildcard tools/otlp-client/*.go) tools/otlp-client/go.mod tools/otlp-client/go.sum $(THIRD_PARTY_GO) | $(DEPS_OK)
	@mkdir -p bin
	cd tools/otlp-client && GOCACHE=$(CURDIR)/$(B)/gocache GOPATH=$(CURDIR)/$(B)/gopath GOFLAGS=-mod=readonly GOTOOLCHAIN=local \
	  go build -o ../../bin/otlp-client .
# an OpenTelemetry Collector (ocb v0.165.0: OTLP receiver, OTLP/HTTP and debug exporters) that
# relays OTLP profiles to the collector in tests; sources generated from tools/otelcol/builder.yaml,
# modules from the Go module proxy pinned by the committed go.sum, cached under build/gopath
bin/otelcol: $(wildcard tools/otelcol/*.go) tools/otelcol/go.mod tools/otelcol/go.sum $(THIRD_PARTY_GO) | $(DEPS_OK)
	@mkdir -p bin
	cd tools/otelcol && GOCACHE=$(CURDIR)/$(B)/gocache GOPATH=$(CURDIR)/$(B)/gopath GOFLAGS=-mod=readonly GOTOOLCHAIN=local \
	  go build -o ../../bin/otelcol .
# versitygw v1.8.0 (Apache-2.0), an S3-compatible server for the tests (its posix backend on
# loopback); pinned by tools/versitygw/go.mod and the committed go.sum, modules from the Go module
# proxy cached under build/gopath, its Vault IAM client replaced by a stand-in (tools/versitygw/README.md)
bin/versitygw: tools/versitygw/tools.go tools/versitygw/go.mod tools/versitygw/go.sum $(THIRD_PARTY_GO) | $(DEPS_OK)
	@mkdir -p bin
	cd tools/versitygw && export GOCACHE=$(CURDIR)/$(B)/gocache GOPATH=$(CURDIR)/$(B)/gopath GOFLAGS=-mod=readonly GOTOOLCHAIN=local && \
	  v=$$(go list -m -f '{{.Version}}' github.com/versity/versitygw) && \
	  go build -ldflags "-X main.Version=$$v" -o ../../bin/versitygw github.com/versity/versitygw/cmd/versitygw
bin/load-target: tools/load-target/main.go tools/load-target/go.mod | $(DEPS_OK)
	@mkdir -p bin
	cd tools/load-target && $(GOENV) go build -o ../../bin/load-target .

# --- the real Kubernetes control plane for the tests (issue 10) ---
# scripts/k8s-build.sh decides by a hash of its inputs whether to build (minutes) or not (well
# under a second), so the rule always runs it instead of trusting file times.
K8S_STAMP := $(B)/k8s/stamp
.PHONY: k8s
k8s: $(K8S_STAMP)
$(K8S_STAMP): FORCE
	@scripts/k8s-build.sh

# --- images and manifests (issue 6) ---
REGISTRY ?= docker.io
REPO     ?= pprof-controller
TAG      ?= dev
LICENSE  ?= NOASSERTION
SOURCE_URL ?= $(shell git config --get remote.origin.url 2>/dev/null || echo unknown)
SKOPEO_FLAGS ?=
IMAGES   := collector operator demo-target
IMG_collector   := --expose 8989 --volume /var/lib/pprof-collector --owned-by-user /var/lib/pprof-collector
IMG_operator    := --expose 8080 --expose 8081
IMG_demo-target := --expose 6060

# the seed's interface: `REGISTRY=... REPO=... TAG=... make build` also builds the images
ifneq ($(filter environment command line,$(origin REGISTRY) $(origin REPO) $(origin TAG)),)
build: image
endif

.PHONY: image push manifests $(addprefix image-,$(IMAGES))
image: $(addprefix image-,$(IMAGES))
$(addprefix image-,$(IMAGES)): image-%: bin/% scripts/rootfs.sh scripts/oci_image.py
	@rm -rf $(B)/images/$* $(B)/rootfs/$*
	scripts/rootfs.sh bin/$* $(B)/rootfs/$*
	python3 scripts/oci_image.py $(B)/rootfs/$* $(B)/images/$* --ref $(REGISTRY)/$(REPO)/$*:$(TAG) \
	  --entrypoint /usr/local/bin/$* $(IMG_$*) \
	  --label org.opencontainers.image.title=pprof-controller-$* --label org.opencontainers.image.version=$(VERSION) \
	  --label org.opencontainers.image.revision=$(REVISION) --label org.opencontainers.image.source=$(SOURCE_URL) \
	  --label org.opencontainers.image.licenses=$(LICENSE)

push: image
	@for i in $(IMAGES); do echo "push $(REGISTRY)/$(REPO)/$$i:$(TAG)"; \
	  skopeo copy --quiet $(SKOPEO_FLAGS) oci:$(B)/images/$$i:$(TAG) docker://$(REGISTRY)/$(REPO)/$$i:$(TAG) || exit 1; done

manifests:
	python3 scripts/manifests.py --registry $(REGISTRY) --repo $(REPO) --tag $(TAG) --out $(B)/manifests
