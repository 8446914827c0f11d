# jplprof build.  `make` builds ./jplprof, `make test` runs every test.
#
# Options (make VAR=value):
#   CUDA=auto|1|0   auto: build the CUDA backend when nvcc and cudnn.h are found
#                   under CUDA_HOME; 1: require it (error without); 0: CPU only.
#                   The backend is a module, jplprof-cuda.so beside the binary,
#                   that jplprof loads only for --device cuda: the binary itself
#                   links no CUDA library, whatever CUDA says.
#   CUDA_HOME       default /usr/local/cuda
#   CUDA_ARCH       nvcc -gencode list; default covers sm_75..sm_90 of this nvcc.
#                   Jetson: CUDA_ARCH="-gencode arch=compute_87,code=sm_87" (Orin),
#                   72 (Xavier), 62 (TX2, needs CUDA <= 10.2 / JetPack 4).
#   DEBUG=1         -O0 -g
#   SANITIZE=1      address + undefined behaviour sanitizers (CPU code), float-cast
#                   overflow included, stopping at the first report; with
#                   CC=clang this is CI's sanitizer build (tests/sanitize.sh)
#   FUZZ_SECONDS=N  `make fuzz`: seconds per libFuzzer harness (default 30);
#                   FUZZ_CC (default clang), FUZZ_BUILD (default build-fuzz)
#   NATIVE=1        -march=native (default 1; 0 for a binary that runs on any x86-64)
#   STATIC_DEPS=1   link OpenBLAS, stb and libjpeg statically and copy libcjson next to
#                   the binary (build/lib): a build that travels to a machine
#                   without those packages (../shared/GPU.md).
#   CROSS=PREFIX    cross-compile with the toolchain PREFIXgcc / PREFIXar, e.g.
#                   CROSS=aarch64-linux-gnu- (Debian's gcc-aarch64-linux-gnu) for a
#                   Jetson.  Then NATIVE defaults to 0 and CUDA to 0 (no cross CUDA:
#                   CUDA=1 is an error), pkg-config reads the target's multiarch
#                   directory /usr/lib/<triplet>/pkgconfig (the :arm64 -dev packages),
#                   and everything goes to BUILD=build-<triplet>, the binary to
#                   $(BUILD)/jplprof.  tests/cross/aarch64.sh builds and tests it
#                   under qemu-aarch64.

CROSS ?=
ifneq ($(CROSS),)
  CROSS_TRIPLET := $(patsubst %-,%,$(CROSS))
  CC     := $(CROSS)gcc
  AR     := $(CROSS)ar
  NATIVE ?= 0
  CUDA   ?= 0
  BUILD  ?= build-$(CROSS_TRIPLET)
  BIN    ?= $(BUILD)/jplprof
  CROSS_PKG_CONFIG_LIBDIR ?= /usr/lib/$(CROSS_TRIPLET)/pkgconfig:/usr/share/pkgconfig
  PKG_CONFIG ?= env PKG_CONFIG_LIBDIR=$(CROSS_PKG_CONFIG_LIBDIR) pkg-config
  ifeq ($(CUDA),1)
    $(error CUDA=1 with CROSS=$(CROSS): no cross CUDA toolkit is used; build the CUDA backend on the Jetson with JetPack's nvcc)
  endif
endif

CUDA        ?= auto
CUDA_HOME   ?= /usr/local/cuda
NVCC_STD    ?= c++17
DEBUG       ?= 0
SANITIZE    ?= 0
NATIVE      ?= 1
STATIC_DEPS ?= 0
PKG_CONFIG  ?= pkg-config

# Parallel by default (make >= 4.3 honours -j set here): the CUDA objects
# alone take minutes on one core.
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)

BUILD ?= build
BIN   ?= jplprof
CC    ?= cc

DEPS := openblas libcjson stb libjpeg libcrypto
ifneq ($(MAKECMDGOALS),clean)
  ifneq ($(shell $(PKG_CONFIG) --exists $(DEPS) && echo ok),ok)
    $(error pkg-config cannot find all of: $(DEPS). On Debian/Ubuntu: sudo apt-get install libopenblas-dev libcjson-dev libstb-dev libjpeg-dev libssl-dev pkg-config$(if $(CROSS), (for CROSS=$(CROSS): their :arm64 or other foreign-architecture packages; see tests/cross/aarch64.sh),))
  endif
endif

CFLAGS_OPT := -O3
ifeq ($(DEBUG),1)
  CFLAGS_OPT := -O0 -g
endif
ifeq ($(NATIVE),1)
  CFLAGS_OPT += -march=native
endif
# float-cast-overflow is not part of 'undefined' in gcc nor clang (issue 14:
# an unchecked double -> int64 cast went unseen).
SANITIZERS := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all \
              -fno-omit-frame-pointer
SAN_FLAGS :=
ifeq ($(SANITIZE),1)
  SAN_FLAGS := $(SANITIZERS)
endif

CPPFLAGS += -Iengine -Ikernels -Iprofiler -MMD -MP \
            $(shell $(PKG_CONFIG) --cflags $(DEPS))
CFLAGS   += -std=c11 -D_GNU_SOURCE $(CFLAGS_OPT) -g -Wall -Wextra -Wno-unused-parameter \
            -fopenmp -pthread $(SAN_FLAGS)
LDFLAGS  += -fopenmp -pthread $(SAN_FLAGS)

ifeq ($(STATIC_DEPS),1)
  OPENBLAS_LIBDIR := $(shell $(PKG_CONFIG) --variable=libdir openblas)
  LDLIBS += $(OPENBLAS_LIBDIR)/libopenblas.a -lgfortran \
            $(shell $(PKG_CONFIG) --variable=libdir stb)/libstb.a \
            $(shell $(PKG_CONFIG) --variable=libdir libjpeg)/libjpeg.a \
            $(shell $(PKG_CONFIG) --variable=libdir libcrypto)/libcrypto.a -lpthread \
            -L$(BUILD)/lib -lcjson -Wl,-rpath,'$$ORIGIN/$(BUILD)/lib:$$ORIGIN/../lib/jplprof'
else
  LDLIBS += $(shell $(PKG_CONFIG) --libs $(DEPS))
endif
LDLIBS += -ldl -lm
HOST_LDLIBS := $(shell $(PKG_CONFIG) --libs $(DEPS)) -ldl -lm

# ---- CUDA detection: one place -------------------------------------------
NVCC := $(CUDA_HOME)/bin/nvcc
HAVE_NVCC := $(shell test -x $(NVCC) && test -f $(CUDA_HOME)/include/cudnn.h && echo 1)
ifeq ($(CUDA),auto)
  ifeq ($(HAVE_NVCC),1)
    USE_CUDA := 1
  else
    USE_CUDA := 0
  endif
else ifeq ($(CUDA),1)
  ifneq ($(HAVE_NVCC),1)
    $(error CUDA=1 but $(NVCC) or $(CUDA_HOME)/include/cudnn.h is missing; set CUDA_HOME or build with CUDA=0)
  endif
  USE_CUDA := 1
else
  USE_CUDA := 0
endif

CUDA_ARCH ?= -gencode arch=compute_75,code=sm_75 -gencode arch=compute_80,code=sm_80 \
             -gencode arch=compute_86,code=sm_86 -gencode arch=compute_87,code=sm_87 \
             -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90

# Objects depend on the configuration: changing NATIVE, DEBUG, SANITIZE or
# STATIC_DEPS rebuilds everything ($(BUILD)/config-objects).  CUDA does not
# change the C objects; it is recorded with the rest in $(BUILD)/config, the
# options a test passes to make to rebuild nothing (tests/test_install.py).
CONFIG_OBJECTS := NATIVE=$(NATIVE) DEBUG=$(DEBUG) SANITIZE=$(SANITIZE) STATIC_DEPS=$(STATIC_DEPS)$(if $(CROSS), CROSS=$(CROSS))
CONFIG := CUDA=$(USE_CUDA) $(CONFIG_OBJECTS)
ifneq ($(MAKECMDGOALS),clean)
  $(shell mkdir -p $(BUILD) && (echo '$(CONFIG_OBJECTS)' | cmp -s - $(BUILD)/config-objects || echo '$(CONFIG_OBJECTS)' > $(BUILD)/config-objects))
  $(shell echo '$(CONFIG)' | cmp -s - $(BUILD)/config || echo '$(CONFIG)' > $(BUILD)/config)
endif

SRCS := $(wildcard engine/*.c kernels/*.c kernels/cpu/*.c profiler/*.c)
MAIN_SRC := engine/main.c
LIB_SRCS := $(filter-out $(MAIN_SRC),$(SRCS))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
# The CUDA backend: kernels/cuda/*.cu linked with cuDNN, cuBLAS and the CUDA
# runtime into one module beside the binary, dlopen'ed by kernels/registry.c.
# Its references to the engine resolve against the executable that loads it,
# so every executable exports its symbols (-rdynamic).
CUDA_MODULE := $(patsubst ./%,%,$(dir $(BIN)))jplprof-cuda.so
CU_SRCS  := $(wildcard kernels/cuda/*.cu)
CU_OBJS  := $(CU_SRCS:%.cu=$(BUILD)/obj/%.o)
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudnn -lcublas -lcudart_static \
             -lrt -ldl -lpthread -lstdc++
LDFLAGS  += -rdynamic
CUDA_TARGETS := $(if $(filter 1,$(USE_CUDA)),$(CUDA_MODULE))

TEST_SRCS  := $(wildcard tests/test_*.c)
TEST_BINS  := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
TOOL_SRCS  := $(filter-out $(TEST_SRCS) tests/fake_nvml.c tests/iofault.c,$(wildcard tests/*.c))
TOOL_BINS  := $(TOOL_SRCS:tests/%.c=$(BUILD)/tests/%)

.PHONY: all test clean tests-build bench fuzz fuzz-build
all: $(BIN) $(CUDA_TARGETS)

$(info jplprof: CUDA backend $(if $(filter 1,$(USE_CUDA)),ON ($(NVCC)),OFF)$(if $(filter 1,$(STATIC_DEPS)), with static OpenBLAS/stb,)$(if $(CROSS), cross-compiled with $(CC) into $(BUILD),))

$(BIN): $(BUILD)/obj/$(MAIN_SRC:.c=.o) $(BUILD)/libjp.a $(if $(filter 1,$(STATIC_DEPS)),$(BUILD)/lib/libcjson.so)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

$(BUILD)/libjp.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/obj/%.o: %.c $(BUILD)/config-objects
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(CUDA_MODULE): $(CU_OBJS)
	$(CC) -shared -o $@ $^ $(CUDA_LIBS)

$(BUILD)/obj/%.o: %.cu $(BUILD)/config-objects
	@mkdir -p $(dir $@)
	$(NVCC) -O3 -std=$(NVCC_STD) $(CUDA_ARCH) -Iengine -Ikernels -Xcompiler -fPIC,-Wall -MMD -MP -c $< -o $@

# STATIC_DEPS: the shared libraries that must travel with the binary.
$(BUILD)/lib/libcjson.so:
	@mkdir -p $(dir $@)
	cp -L $(shell $(PKG_CONFIG) --variable=libdir libcjson)/libcjson.so.1 $(BUILD)/lib/libcjson.so.1
	cp -L $(shell $(CC) -print-file-name=libgomp.so.1) $(BUILD)/lib/libgomp.so.1
	ln -sf libcjson.so.1 $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/libjp.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libjp.a $(LDLIBS)

tests-build: $(BIN) $(CUDA_TARGETS) $(TEST_BINS) $(TOOL_BINS)

# Every test: C unit tests, the converter, every model against torchvision.
test: tests-build
	JP_BUILD_DIR=$(BUILD) JPLPROF=$(abspath $(BIN)) bash tests/run_tests.sh

bench: $(BIN) $(BUILD)/tests/bench_cpu_kernels
	@echo "end-to-end benchmark: make bench-deps && /usr/bin/python3 tests/bench/bench_e2e.py (see docs/benchmarks.md)"

# ONNX Runtime (npm onnxruntime-node, its bundled CPU library) for tests/bench/bench_e2e.py.
.PHONY: bench-deps
bench-deps:
	ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix tests/bench --ignore-scripts --no-audit --no-fund

# ---- fuzzing: tests/fuzz/, clang's libFuzzer, ASan + UBSan -----------------
# The library is compiled again with clang and the sanitizers (CPU code only)
# into $(FUZZ_BUILD); each tests/fuzz/fuzz_<name>.c becomes $(FUZZ_BUILD)/fuzz_<name>,
# run by tests/fuzz/run.sh on its seeds (tests/fuzz/corpus/<name>/).
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 30
# JP_IMAGE_MAX_PIXELS: the decoders' own size limit, 256 Kpixels (512 x 512)
# instead of PIL's 179 M (engine/jp_image.h): a fuzzed header may claim any
# size within the limit, and the time of an execution grows with it
# (docs/robustness.md: 4 M, 1 M and 256 K measured, same coverage).
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wno-unused-parameter -Wno-unused-function \
                -fopenmp -pthread $(SANITIZERS) -DJP_IMAGE_MAX_PIXELS=262144LL
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_OBJS    := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/libjp.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

# the CLI harness compiles each subcommand's source in (tests/fuzz/cli/)
$(FUZZ_BUILD)/fuzz_cli: $(wildcard tests/fuzz/cli/*.c) $(wildcard engine/cmd_*.c)

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_BUILD)/libjp.a
	$(FUZZ_CC) $(CPPFLAGS) -Itests/fuzz $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ \
	    $(filter tests/fuzz/%.c,$^) $(FUZZ_BUILD)/libjp.a $(HOST_LDLIBS)

fuzz-build: $(FUZZ_BINS)

# Each harness for FUZZ_SECONDS on its seeds; fails on any finding.
fuzz: fuzz-build
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(BIN) $(CUDA_MODULE) $(FUZZ_BUILD)

# make install [PREFIX=/usr/local] [DESTDIR=/tmp/stage]: jplprof, its data
# (AvailableModel.txt, weights/*.json and any converted *.safetensors,
# data/imagenet/) under $(PREFIX)/share/jplprof, where an installed jplprof
# looks (or JPLPROF_DATA), the CUDA module (when built) as
# $(PREFIX)/lib/jplprof/jplprof-cuda.so, where it looks for that, the man page
# and bash completion.
PREFIX  ?= /usr/local
DATADIR  = $(PREFIX)/share/jplprof
.PHONY: install uninstall
install: $(BIN) $(CUDA_TARGETS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(DATADIR)/weights $(DESTDIR)$(DATADIR)/data/imagenet \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/jplprof
	$(if $(CUDA_TARGETS),install -d $(DESTDIR)$(PREFIX)/lib/jplprof && install -m 755 $(CUDA_MODULE) $(DESTDIR)$(PREFIX)/lib/jplprof/jplprof-cuda.so)
	install -m 644 AvailableModel.txt $(DESTDIR)$(DATADIR)/AvailableModel.txt
	install -m 644 weights/*.json $(wildcard weights/*.safetensors) $(DESTDIR)$(DATADIR)/weights/
	install -m 644 data/imagenet/* $(DESTDIR)$(DATADIR)/data/imagenet/
	install -m 644 docs/jplprof.1 $(DESTDIR)$(PREFIX)/share/man/man1/jplprof.1
	install -m 644 tools/completion/jplprof.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/jplprof
ifeq ($(STATIC_DEPS),1)
	# the shared libraries a STATIC_DEPS binary carries, where its rpath looks ($$ORIGIN/../lib/jplprof)
	install -d $(DESTDIR)$(PREFIX)/lib/jplprof
	install -m 644 $(BUILD)/lib/libcjson.so.1 $(BUILD)/lib/libgomp.so.1 $(DESTDIR)$(PREFIX)/lib/jplprof/
endif

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/jplprof $(DESTDIR)$(PREFIX)/share/man/man1/jplprof.1 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/jplprof
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(PREFIX)/lib/jplprof

-include $(shell find $(BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
