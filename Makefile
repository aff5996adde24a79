# SPDX-License-Identifier: GPL-2.0
# imapguard: build the BPF object, its skeleton and the one userspace binary.
OUTPUT := .output
BUILD := build
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= gcc
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/;s/ppc64le/powerpc/;s/mips.*/mips/')
VERSION := 0.1.0

CFLAGS ?= -O2 -g
USER_CFLAGS := $(CFLAGS) -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE \
	-I$(OUTPUT) -Ibpf -Iuserspace -DIG_VERSION='"$(VERSION)"'
LIBS := -lbpf -lelf -lz -linih -lssl -lcrypto -lsystemd
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror -I$(OUTPUT) -Ibpf

# Sources of the imapguard binary; everything except main.c is also linked
# into the unit tests that need it.
USER_SRCS := $(wildcard userspace/*.c)
USER_OBJS := $(patsubst userspace/%.c,$(OUTPUT)/%.o,$(USER_SRCS))
LIB_OBJS := $(filter-out $(OUTPUT)/main.o,$(USER_OBJS))
TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all clean deps test unit-test demo install uninstall bench
all: $(BUILD)/imapguard

deps:
	$(Q)bash scripts/deps.sh

$(OUTPUT) $(BUILD):
	$(Q)mkdir -p $@

# Written to a temp file first: a failed dump must never leave a truncated header.
$(OUTPUT)/vmlinux.h: | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(OUTPUT)/imapguard.tmp.bpf.o: bpf/imapguard.bpf.c bpf/parse.bpf.h bpf/common.h bpf/lpmsum.h $(OUTPUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/imapguard.bpf.o: $(OUTPUT)/imapguard.tmp.bpf.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(OUTPUT)/imapguard.skel.h: $(OUTPUT)/imapguard.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name imapguard_bpf > $@.tmp && mv $@.tmp $@

$(OUTPUT)/%.o: userspace/%.c $(wildcard userspace/*.h) bpf/common.h bpf/lpmsum.h $(OUTPUT)/imapguard.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -c $< -o $@

$(BUILD)/imapguard: $(USER_OBJS) | $(BUILD)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(USER_CFLAGS) $^ $(LIBS) -o $@

# An archive: each test pulls in only the objects it uses.
$(OUTPUT)/libig.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/test_%: tests/unit/test_%.c tests/unit/test.h $(OUTPUT)/libig.a | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -Wno-missing-field-initializers -Itests/unit $< $(OUTPUT)/libig.a $(LIBS) -o $@

unit-test: $(BUILD)/imapguard $(addprefix $(BUILD)/,$(TESTS))

# Unit tests, then the netns suite; the runner prints "N passed, N failed, N skipped".
test: deps
	$(Q)$(MAKE) --no-print-directory unit-test
	$(Q)bash tests/run_all.sh

# Benchmark tools (tests/bench); bench.sh compiles the baseline BPF programs itself.
BENCH_TOOLS := pktcost livegen authbench timetoban mapfill

$(BUILD)/bench_%: tests/bench/%.c tests/bench/bench.h tests/bench/fill.h $(OUTPUT)/libig.a | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(USER_CFLAGS) -Itests/unit $< $(OUTPUT)/libig.a $(LIBS) -o $@

# Figures, never pass/fail: prints one table, saves tests/bench/results/.
bench: deps
	$(Q)$(MAKE) --no-print-directory all $(addprefix $(BUILD)/bench_,$(BENCH_TOOLS))
	$(Q)bash tests/bench/bench.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bash scripts/demo.sh

PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system

# Config files an admin edited are kept; the new one lands beside as .dpkg-dist.
install: all
	$(Q)DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' SYSCONFDIR='$(SYSCONFDIR)' UNITDIR='$(UNITDIR)' BIN='$(BUILD)/imapguard' bash scripts/install.sh install

uninstall:
	$(Q)DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' SYSCONFDIR='$(SYSCONFDIR)' UNITDIR='$(UNITDIR)' bash scripts/install.sh uninstall

clean:
	$(call msg,CLEAN,)
	$(Q)rm -rf $(OUTPUT) $(BUILD)

.DELETE_ON_ERROR:
.SECONDARY:
