# libusdt: make (libusdt.a), make test, make demo. See README.md.
#
# Bindings run `make clean all` here with CC, ARCH and sometimes CFLAGS
# set on the command line, so nothing the build needs lives in CFLAGS:
# required defines are in the sources, required flags in USDT_CFLAGS.

CC      ?= cc
AR      ?= ar
ARCH    ?= $(shell uname -m)
CFLAGS  ?= -O2 -g
WARN    = -Wall -Wextra

# The names bindings pass (node-gyp says x64, ia32 and arm64), to the .s
# file's.
USDT_ARCH = $(strip $(if $(filter i386 i486 i586 i686 ia32 x86,$(ARCH)),i386,\
            $(if $(filter x86_64 amd64 x64,$(ARCH)),x86_64,\
            $(if $(filter aarch64 arm64,$(ARCH)),aarch64,$(ARCH)))))

# -m32/-m64 pick the x86 variant; other compilers get no such flag (an
# aarch64 compiler refuses -m64: it is chosen by CC, e.g. CC="clang
# --target=aarch64-linux-gnu").
ifeq ($(USDT_ARCH),i386)
MFLAG   = -m32
else ifeq ($(USDT_ARCH),x86_64)
MFLAG   = -m64
else
MFLAG   =
endif

USDT_CFLAGS = $(MFLAG) -fPIC -fvisibility=hidden -fno-omit-frame-pointer $(WARN)
OBJS    = usdt.o usdt_lock.o usdt_enable.o usdt_names.o usdt_object.o usdt_fire.o usdt_dof.o usdt_dof_file.o \
          usdt_dof_sections.o usdt_probe.o usdt_elf.o usdt_sdt_load.o usdt_sdt_dir.o usdt_jit.o usdt_jit_write.o \
          usdt_tracepoints.o
HEADERS = usdt.h usdt_internal.h

EXAMPLES = examples/hello examples/guarded examples/many examples/jit

# Installation. The shared library is built in its own directory, never
# beside libusdt.a: bindings link with -lusdt -L. and must get the archive.
PREFIX  ?= /usr/local
DESTDIR ?=
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
MANDIR  ?= $(PREFIX)/share/man
SHARED  = build/shared
VERSION = 1.0.0

# Sanitizer builds of the test driver, run by the driver-based tests.
DRIVER_TESTS = t/10_api.t t/15_marshal.t t/20_dof.t t/30_sdt_object.t t/40_bpftrace.t \
               t/50_gdb.t t/60_perf.t t/70_lifecycle.t t/75_threads_fork.t
SAN_SRCS = $(OBJS:.o=.c) test_usdt.c
SAN_asan = -fsanitize=address -fno-omit-frame-pointer
SAN_ubsan = -fsanitize=undefined -fno-sanitize-recover=all

# Failure injection: library objects whose allocation and mapping calls
# go through t/failalloc.c, linked with AddressSanitizer (LeakSanitizer).
FAIL_FUNCS = malloc calloc realloc strdup posix_memalign vasprintf asprintf \
             mmap mprotect memfd_create write dlopen realpath

FUZZ_SECONDS ?= 120

.PHONY: all clean test demo demo-jit deps examples bench shared pkgconfig install uninstall asan ubsan fuzz aarch64

all: libusdt.a

%.o: %.c $(HEADERS)
	$(CC) $(CFLAGS) $(USDT_CFLAGS) -c -o $@ $<

usdt_tracepoints.o: usdt_tracepoints_$(USDT_ARCH).s
	$(CC) $(MFLAG) -c -o $@ $<

libusdt.a: $(OBJS)
	rm -f $@
	$(AR) rcs $@ $(OBJS)

test_usdt: test_usdt.c libusdt.a usdt.h
	$(CC) $(CFLAGS) $(MFLAG) $(WARN) -o $@ $< libusdt.a -lpthread

$(SHARED)/libusdt.so.1: $(OBJS)
	mkdir -p $(SHARED)
	$(CC) $(MFLAG) -shared -Wl,-soname,libusdt.so.1 -Wl,-z,noexecstack -o $@ $(OBJS)
	ln -sf libusdt.so.1 $(SHARED)/libusdt.so

shared: $(SHARED)/libusdt.so.1

# written anew each time: PREFIX may differ between runs
pkgconfig:
	mkdir -p $(SHARED)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCDIR)' '' \
	  'Name: libusdt' 'Description: USDT probes created at run time (DTrace and Linux tracers)' \
	  'Version: $(VERSION)' 'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lusdt' > $(SHARED)/libusdt.pc

install: all shared pkgconfig
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(MANDIR)/man3
	install -m 644 usdt.h $(DESTDIR)$(INCDIR)/usdt.h
	install -m 644 libusdt.a $(DESTDIR)$(LIBDIR)/libusdt.a
	install -m 755 $(SHARED)/libusdt.so.1 $(DESTDIR)$(LIBDIR)/libusdt.so.1
	ln -sf libusdt.so.1 $(DESTDIR)$(LIBDIR)/libusdt.so
	install -m 644 $(SHARED)/libusdt.pc $(DESTDIR)$(LIBDIR)/pkgconfig/libusdt.pc
	pages=$$(cat man/PAGES) && for page in $$pages; do install -m 644 man/$$page $(DESTDIR)$(MANDIR)/man3/$$page; done
	while read link page; do ln -sf $$page $(DESTDIR)$(MANDIR)/man3/$$link; done < man/LINKS

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/usdt.h $(DESTDIR)$(LIBDIR)/libusdt.a \
	  $(DESTDIR)$(LIBDIR)/libusdt.so.1 $(DESTDIR)$(LIBDIR)/libusdt.so \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/libusdt.pc
	pages=$$(cat man/PAGES) && for page in $$pages; do rm -f $(DESTDIR)$(MANDIR)/man3/$$page; done
	while read link page; do rm -f $(DESTDIR)$(MANDIR)/man3/$$link; done < man/LINKS

build/asan/test_usdt build/ubsan/test_usdt: $(filter-out usdt_tracepoints.c,$(SAN_SRCS)) usdt_tracepoints_$(USDT_ARCH).s $(HEADERS)
	mkdir -p $(@D)
	$(CC) -O1 -g $(SAN_$(notdir $(@D))) $(MFLAG) $(WARN) -o $@ \
	  $(filter-out usdt_tracepoints.c,$(SAN_SRCS)) usdt_tracepoints_$(USDT_ARCH).s -lpthread

build/failalloc/test_usdt: $(OBJS) test_usdt.c t/failalloc.c
	mkdir -p $(@D)
	for o in $(OBJS); do objcopy $(foreach f,$(FAIL_FUNCS),--redefine-sym $(f)=fail_$(f)) $$o $(@D)/$$o; done
	$(CC) -O1 -g $(SAN_asan) $(MFLAG) $(WARN) -o $@ test_usdt.c t/failalloc.c \
	  $(addprefix $(@D)/,$(OBJS)) -lpthread

build/fuzz/fuzz_api: fuzz/fuzz_api.c $(filter-out usdt_tracepoints.c,$(SAN_SRCS)) usdt_tracepoints_$(USDT_ARCH).s $(HEADERS)
	mkdir -p $(@D)
	clang -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(MFLAG) $(WARN) \
	  -I. -o $@ fuzz/fuzz_api.c $(filter-out test_usdt.c usdt_tracepoints.c,$(SAN_SRCS)) \
	  usdt_tracepoints_$(USDT_ARCH).s -lpthread

# Fuzz for FUZZ_SECONDS, then check every DOF document it made.
fuzz: build/fuzz/fuzz_api
	rm -rf build/fuzz/dof && mkdir -p build/fuzz/dof build/fuzz/corpus
	USDT_FUZZ_DOF_DIR=$(CURDIR)/build/fuzz/dof build/fuzz/fuzz_api -max_total_time=$(FUZZ_SECONDS) \
	  -max_len=4096 -print_final_stats=1 build/fuzz/corpus
	perl -I t/lib -MDOFReader=parse_file -e 'my $$n = 0; for (glob "build/fuzz/dof/*.dof") { my (undef, $$e) = parse_file($$_, encoding => "host"); die "$$_: $$e\n" if $$e; $$n++ } print "fuzz: $$n DOF documents pass the kernel checks\n"'

asan ubsan: deps
	$(MAKE) build/$@/test_usdt
	USDT_TEST_EXE=$(CURDIR)/build/$@/test_usdt USDT_TEST_SANITIZER=$@ prove -I t/lib $(DRIVER_TESTS)

examples/%: examples/%.c libusdt.a usdt.h
	$(CC) $(CFLAGS) $(MFLAG) $(WARN) -I. -o $@ $< libusdt.a

examples: $(EXAMPLES)

# aarch64, cross-built here: build/aarch64/libusdt.a and test_usdt, made
# from these sources by a make run in that directory (SRCDIR: where the
# sources are). t/81_aarch64.t runs the driver under qemu-aarch64.
# clang's cross target coexists with gcc-multilib; Debian's
# gcc-aarch64-linux-gnu does not (.ci/setup.sh installs the rest).
AARCH64_CC ?= clang --target=aarch64-linux-gnu

aarch64:
	mkdir -p build/aarch64
	$(MAKE) -C build/aarch64 -f $(CURDIR)/Makefile SRCDIR=$(CURDIR) ARCH=aarch64 \
	  CC="$(AARCH64_CC)" libusdt.a test_usdt

ifdef SRCDIR
vpath %.c $(SRCDIR)
vpath %.h $(SRCDIR)
vpath %.s $(SRCDIR)
endif

clean:
	rm -f *.o libusdt.a test_usdt $(EXAMPLES)
	rm -rf build

# Installs what the suite needs (as root, from Debian packages) and mounts
# tracefs if it is empty; otherwise says what is missing.
deps:
	@sh .ci/setup.sh

test: deps all test_usdt examples
	perl test_usdt.pl

demo: deps examples/hello
	@sh examples/demo.sh hello 'usdt::hello:tick { printf("traced: %d %s\n", arg0, str(arg1)); }'

demo-jit: deps examples/jit
	@sh examples/demo.sh jit 'usdt::jitdemo:tick { printf("traced: tick(%d, %d)\n", arg0, arg1); }'

bench: all
	$(MAKE) -C bench run
