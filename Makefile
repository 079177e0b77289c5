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

# The names bindings pass (node-gyp says x64 and ia32), to the .s file's.
USDT_ARCH = $(strip $(if $(filter i386 i486 i586 i686 ia32 x86,$(ARCH)),i386,\
            $(if $(filter x86_64 amd64 x64,$(ARCH)),x86_64,$(ARCH))))

ifeq ($(USDT_ARCH),i386)
MFLAG   = -m32
else
MFLAG   = -m64
endif

USDT_CFLAGS = $(MFLAG) -fPIC -fvisibility=hidden $(WARN)
OBJS    = usdt.o usdt_dof.o usdt_dof_file.o usdt_dof_sections.o \
          usdt_probe.o usdt_elf.o usdt_tracepoints.o
HEADERS = usdt.h usdt_internal.h

EXAMPLES = examples/hello examples/guarded examples/many

.PHONY: all clean test demo deps examples bench

all: libusdt.a

%.o: %.c $(HEADERS)
	$(CC) $(CFLAGS) $(USDT_CFLAGS) -c -o $@ $<

usdt_tracepoints.o: usdt_tracepoints_$(USDT_ARCH).s
	$(CC) $(MFLAG) -c -o $@ $<

libusdt.a: $(OBJS)
	rm -f $@
	$(AR) rcs $@ $(OBJS)

test_usdt: test_usdt.c libusdt.a usdt.h
	$(CC) $(CFLAGS) $(MFLAG) $(WARN) -o $@ test_usdt.c libusdt.a -lpthread

examples/%: examples/%.c libusdt.a usdt.h
	$(CC) $(CFLAGS) $(MFLAG) $(WARN) -I. -o $@ $< libusdt.a

examples: $(EXAMPLES)

clean:
	rm -f *.o libusdt.a test_usdt $(EXAMPLES)

# Installs what the suite needs (as root, from Debian packages) and mounts
# tracefs if it is empty; otherwise says what is missing.
deps:
	@sh .ci/setup.sh

test: deps all test_usdt examples
	prove -I t/lib t/

demo: deps examples/hello
	@sh examples/demo.sh

bench: all
	$(MAKE) -C bench run
