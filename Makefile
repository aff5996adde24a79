# SPDX-License-Identifier: GPL-2.0
# imapguard: build the BPF object, its skeleton and the one userspace binary.
OUTPUT := .output
BUILD := build
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= gcc
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/;s/ppc64le/powerpc/;s/mips.*/mips/')
# The version is the package's: the first line of debian/changelog.
VERSION := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog 2>/dev/null)
ifeq ($(VERSION),)
$(error cannot read the version from debian/changelog)
endif

CFLAGS ?= -O2 -g
# CPPFLAGS and LDFLAGS (e.g. dpkg-buildflags' hardening, debian/rules) apply
# to userspace only: the BPF object is built with BPF_CFLAGS alone.
USER_CFLAGS := $(CPPFLAGS) $(CFLAGS) -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE \
	-I$(OUTPUT) -Ibpf -Iuserspace -DIG_VERSION='"$(VERSION)"'
LIBS := -lbpf -lelf -lz -linih -lssl -lcrypto -lsystemd -ljansson -lmicrohttpd -loath -lqrencode -lhiredis
LIBS += -lcurl
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror -I$(OUTPUT) -Ibpf

# Userspace is built by layer (README "Source layout"). A layer may include
# only the headers of the layers listed after it here; `check-layers` fails
# the build otherwise, and each layer is linked alone against just those
# (layer-ok) so a hidden upward call fails too.
LAYERS := base policy authlog fastpath audit daemon cli
# Highest first: this is also the link order.
USES_base :=
USES_policy := base
USES_authlog := policy base
USES_fastpath := policy base
USES_audit := base
USES_daemon := fastpath authlog policy base
USES_cli := daemon audit fastpath authlog policy base

layer_srcs = $(wildcard userspace/$(1)/*.c)
layer_objs = $(patsubst userspace/%.c,$(OUTPUT)/%.o,$(call layer_srcs,$(1)))
# Archives of a layer and what it uses, highest first (link order).
layer_libs = $(OUTPUT)/libig_$(1).a $(foreach u,$(USES_$(1)),$(OUTPUT)/libig_$(u).a)

USER_OBJS := $(foreach l,$(LAYERS),$(call layer_objs,$(l)))
USER_HDRS := $(wildcard userspace/*/*.h)
TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
# The layer each unit test exercises: it links that layer's archives only.
TEST_LAYER_test_base := base
TEST_LAYER_test_state := base
TEST_LAYER_test_policy := policy
TEST_LAYER_test_sign := policy
TEST_LAYER_test_mfa := policy
TEST_LAYER_test_authlog := authlog
TEST_LAYER_test_detector := authlog
TEST_LAYER_test_follow := authlog
TEST_LAYER_test_authwatch := authlog
TEST_LAYER_test_verdict := authlog
TEST_LAYER_test_bpf := fastpath
TEST_LAYER_test_starttls := fastpath
TEST_LAYER_test_coexist := fastpath
TEST_LAYER_test_fleet := daemon
# cli.a holds main.o, never pulled in: the test defines main() and nothing
# it uses refers to main.o.
TEST_LAYER_test_opts := cli
TEST_LAYER_test_crowdsec := daemon

# libFuzzer harnesses tests/fuzz/fuzz_<name>.c (seeds in tests/fuzz/corpus/<name>/):
# the layer whose sources, with those of the layers it uses, each links.
FUZZ_LAYER_fuzz_ctl := daemon
FUZZ_LAYER_fuzz_http := daemon
FUZZ_LAYER_fuzz_knock := policy
FUZZ_LAYER_fuzz_crowdsec := daemon
FUZZ_LAYER_fuzz_fleet := daemon

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.SECONDEXPANSION:
.PHONY: all clean deps test unit-test demo install uninstall bench lint fuzz fuzz-build
all: $(BUILD)/imapguard

deps:
	$(Q)bash scripts/deps.sh

$(OUTPUT) $(BUILD):
	$(Q)mkdir -p $@

# Written to a temp file first: a failed dump must never leave a truncated header.
$(OUTPUT)/vmlinux.h: | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(OUTPUT)/imapguard.tmp.bpf.o: bpf/imapguard.bpf.c bpf/parse.bpf.h bpf/starttls.bpf.h bpf/common.h bpf/lpmsum.h $(OUTPUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/imapguard.bpf.o: $(OUTPUT)/imapguard.tmp.bpf.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(OUTPUT)/imapguard.skel.h: $(OUTPUT)/imapguard.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name imapguard_bpf > $@.tmp && mv $@.tmp $@

# The rule is checked before anything compiles (scripts/check-layers.sh).
$(OUTPUT)/layers.ok: scripts/check-layers.sh Makefile $(USER_HDRS) $(wildcard userspace/*/*.c) | $(OUTPUT)
	$(call msg,LAYERS,userspace)
	$(Q)bash scripts/check-layers.sh $(foreach l,$(LAYERS),'$(l):$(USES_$(l))') && touch $@

# policies/default.conf is compiled into cli/common.o with .incbin.
$(OUTPUT)/cli/common.o: policies/default.conf

$(OUTPUT)/%.o: userspace/%.c $(USER_HDRS) bpf/common.h bpf/lpmsum.h $(OUTPUT)/imapguard.skel.h $(OUTPUT)/layers.ok
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(USER_CFLAGS) -c $< -o $@

$(OUTPUT)/libig_%.a: $$(call layer_objs,%)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# Every layer but cli links alone against only the layers it may use: an
# undefined symbol here is a call into a layer above.
$(OUTPUT)/layer-%.ok: $$(call layer_libs,%) tests/unit/layer_main.c
	$(call msg,LINK,layer $*)
	$(Q)$(CC) $(USER_CFLAGS) tests/unit/layer_main.c -Wl,--whole-archive $(OUTPUT)/libig_$*.a \
		-Wl,--no-whole-archive $(call layer_libs,$*) $(LIBS) -o $(OUTPUT)/layer-$*.bin
	$(Q)rm -f $(OUTPUT)/layer-$*.bin && touch $@

$(BUILD)/imapguard: $(USER_OBJS) $(patsubst %,$(OUTPUT)/layer-%.ok,$(filter-out cli,$(LAYERS))) | $(BUILD)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(USER_CFLAGS) $(LDFLAGS) $(USER_OBJS) $(LIBS) -o $@

$(BUILD)/test_%: tests/unit/test_%.c tests/unit/test.h $$(call layer_libs,$$(TEST_LAYER_test_%)) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -Wno-missing-field-initializers -Itests/unit $< \
		$(call layer_libs,$(TEST_LAYER_test_$*)) $(LIBS) -o $@

unit-test: $(BUILD)/imapguard $(addprefix $(BUILD)/,$(TESTS))

# Unit tests, short fuzz runs, then the netns suites; the runner prints
# "N passed, N failed, N skipped".
test: deps
	$(Q)$(MAKE) --no-print-directory unit-test fuzz-build
	$(Q)bash tests/run_all.sh

# ---- Fuzzing (tests/fuzz, README "Fuzzing") ----
# Every tests/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput and names the
# layer it exercises in FUZZ_LAYER_fuzz_<name>; it links that layer's
# archives and those of the layers it uses (USES_*), rebuilt with clang,
# ASan, UBSan and libFuzzer's coverage in $(FUZZ_OUT), apart from the normal
# build. FUZZ_LDFLAGS_fuzz_<name> adds link flags for one harness,
# FUZZ_EXTRA_CFLAGS compile flags for the harnesses (remove build/fuzz_* first).
FUZZ_CC ?= clang
FUZZ_OUT := $(OUTPUT)/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) -Wall -Wextra -Werror -std=gnu11 \
	-D_GNU_SOURCE -I$(OUTPUT) -Ibpf -Iuserspace -DIG_VERSION='"$(VERSION)"'
FUZZERS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LAYER_fuzz_authlog := authlog
FUZZ_LAYER_fuzz_policy := policy
FUZZ_LAYER_fuzz_state := base
FUZZ_LAYER_fuzz_verdict := authlog
# The policy harness serves deny_file paths from its input, never the disk.
FUZZ_LDFLAGS_fuzz_policy := $(foreach f,fopen fopen64 open open64 openat openat64,-Wl,--wrap=$(f))
# FUZZ_SECONDS per harness; FUZZ_JOBS harnesses at a time; FUZZ_TARGETS to pick some.
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
FUZZ_TARGETS ?= $(FUZZERS)

fuzz_objs = $(patsubst userspace/%.c,$(FUZZ_OUT)/%.o,$(call layer_srcs,$(1)))
fuzz_libs = $(if $(1),$(FUZZ_OUT)/libig_$(1).a $(foreach u,$(USES_$(1)),$(FUZZ_OUT)/libig_$(u).a))

# Only fastpath/ includes the BPF skeleton; base, policy and authlog build without bpftool.
$(call fuzz_objs,fastpath): $(OUTPUT)/imapguard.skel.h
$(FUZZ_OUT)/cli/common.o: policies/default.conf

$(FUZZ_OUT)/%.o: userspace/%.c $(USER_HDRS) bpf/common.h bpf/lpmsum.h $(OUTPUT)/layers.ok
	$(call msg,FUZZ-CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_OUT)/libig_%.a: $$(call fuzz_objs,%)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# A harness without its layer variable fails here, not with a confusing link error.
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $$(call fuzz_libs,$$(FUZZ_LAYER_fuzz_%)) | $(BUILD)
	$(if $(FUZZ_LAYER_fuzz_$*),,$(error $@: set FUZZ_LAYER_fuzz_$* in the Makefile))
	$(call msg,FUZZ-LD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_EXTRA_CFLAGS) -fsanitize=fuzzer -Itests/fuzz $< \
		$(call fuzz_libs,$(FUZZ_LAYER_fuzz_$*)) $(FUZZ_LDFLAGS_fuzz_$*) $(LIBS) -o $@

fuzz-build: $(addprefix $(BUILD)/,$(FUZZERS))

# Each harness for FUZZ_SECONDS over its committed corpus and regression
# seeds; what it learns is kept in $(FUZZ_OUT)/corpus/, not in git.
fuzz: deps
	$(Q)$(MAKE) --no-print-directory $(addprefix $(BUILD)/,$(FUZZ_TARGETS))
	$(Q)bash tests/fuzz/run.sh -s $(FUZZ_SECONDS) -j $(FUZZ_JOBS) -k $(FUZZ_OUT)/corpus $(FUZZ_TARGETS)

# Benchmark tools (tests/bench); bench.sh compiles the baseline BPF programs itself.
BENCH_TOOLS := pktcost livegen authbench timetoban mapfill loadtime policyload stcost knocklat

BENCH_LIBS := $(call layer_libs,daemon)
$(BUILD)/bench_%: tests/bench/%.c tests/bench/bench.h tests/bench/fill.h $(BENCH_LIBS) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -Itests/unit $< $(BENCH_LIBS) $(LIBS) -o $@

# Figures, never pass/fail: prints one table, saves tests/bench/results/.
bench: deps
	$(Q)$(MAKE) --no-print-directory all $(addprefix $(BUILD)/bench_,$(BENCH_TOOLS))
	$(Q)bash tests/bench/bench.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bash scripts/demo.sh

# Static checks, clean on the whole tree; CI runs them (.ci/run).
# cppcheck: variableScope is off because the house style (the kernel's)
# declares locals at the top of a block.
LINT_C := $(filter-out %.bpf.c,$(wildcard userspace/*/*.c tests/unit/*.c tests/bench/*.c tests/fuzz/*.c))
LINT_SH := $(wildcard scripts/*.sh tests/*.sh tests/bench/*.sh) .ci/run scripts/completion/imapguard
lint:
	$(call msg,CPPCHECK,userspace tests)
	$(Q)cppcheck -q --error-exitcode=1 --std=c11 --inline-suppr \
		--enable=warning,style,performance,portability --suppress=variableScope \
		--suppress=missingIncludeSystem -D__x86_64__ --include=scripts/lint/cppcheck.h \
		-Iuserspace -Ibpf -Itests/unit $(LINT_C)
	$(call msg,SHCHECK,scripts tests)
	$(Q)shellcheck -x $(LINT_SH)

PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system

# Config files an admin edited are kept; the new one lands beside as .dpkg-dist.
install: all
	$(Q)DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' SYSCONFDIR='$(SYSCONFDIR)' UNITDIR='$(UNITDIR)' BIN='$(BUILD)/imapguard' bash scripts/install.sh install

uninstall:
	$(Q)DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' SYSCONFDIR='$(SYSCONFDIR)' UNITDIR='$(UNITDIR)' bash scripts/install.sh uninstall

# The Debian package (debian/), built from a copy of the tree into build/deb/.
.PHONY: deb
deb:
	$(Q)bash scripts/build-deb.sh

clean:
	$(call msg,CLEAN,)
	$(Q)rm -rf $(OUTPUT) $(BUILD)

.DELETE_ON_ERROR:
.SECONDARY:
