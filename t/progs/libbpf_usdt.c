/*
 * The user-space side of t/57_libbpf.t: loads t/progs/libbpf_usdt.bpf.c's
 * object with plain libbpf calls, attaches one of its programs to a USDT
 * probe with bpf_program__attach_usdt, and prints what the probe carried.
 *
 *   libbpf_usdt BPF_OBJECT PROGRAM PID BINARY PROVIDER NAME
 *
 * PROGRAM is int_str or int_int; PID -1 attaches by path alone (every
 * process that maps BINARY). Output, one line each:
 *   attached                 once bpf_program__attach_usdt returned: the
 *                            uprobe is registered and the program attached
 *   event ARG0 TEXT          int_str: arg0 as a signed decimal, then arg1's
 *                            string as read (up to the end of the line)
 *   event ARG0 ARG1          int_int
 *   event ARG0 fault ERR     int_str when reading the string failed
 *   detached                 after SIGINT or SIGTERM, once every event
 *                            left in the ring buffer was printed
 * Errors go to stderr, with libbpf's own messages; exit status 1.
 */
#include <bpf/libbpf.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libbpf_usdt.h"

static volatile sig_atomic_t stop_requested;

static void
on_stop_signal(int signo)
{
        (void)signo;
        stop_requested = 1;
}

/* ring_buffer__new's callback: one event line; a record of the wrong size
 * stops the loop (the two declarations of the record disagree). */
static int
event_print(void *ctx, void *data, size_t data_bytes)
{
        const struct libbpf_usdt_event *event = data;

        (void)ctx;
        if (data_bytes != sizeof(*event)) {
                fprintf(stderr, "libbpf_usdt: a record of %zu bytes, expected %zu\n",
                        data_bytes, sizeof(*event));
                return -EINVAL;
        }
        if (event->kind == LIBBPF_USDT_INT_INT)
                printf("event %ld %ld\n", event->arg0, event->arg1);
        else if (event->text_bytes < 0)
                printf("event %ld fault %ld\n", event->arg0, event->text_bytes);
        else
                printf("event %ld %s\n", event->arg0, event->text);
        return 0;
}

int
main(int argc, char **argv)
{
        const char *object_path, *program_name, *binary_path, *provider, *name;
        struct bpf_object *object;
        struct bpf_program *program;
        struct bpf_link *link;
        struct ring_buffer *events;
        struct sigaction stop = { .sa_handler = on_stop_signal };
        pid_t pid;
        int err;

        if (argc != 7) {
                fprintf(stderr, "usage: libbpf_usdt BPF_OBJECT int_str|int_int PID BINARY "
                                "PROVIDER NAME\n");
                return 2;
        }
        object_path = argv[1];
        program_name = argv[2];
        pid = (pid_t)atoi(argv[3]);
        binary_path = argv[4];
        provider = argv[5];
        name = argv[6];
        setvbuf(stdout, NULL, _IOLBF, 0);
        libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
        sigaction(SIGINT, &stop, NULL);
        sigaction(SIGTERM, &stop, NULL);

        object = bpf_object__open_file(object_path, NULL);
        if (object == NULL) {
                fprintf(stderr, "libbpf_usdt: cannot open %s: %s\n", object_path,
                        strerror(errno));
                return 1;
        }
        err = bpf_object__load(object);
        if (err != 0) {
                fprintf(stderr, "libbpf_usdt: cannot load %s: %s\n", object_path,
                        strerror(-err));
                return 1;
        }
        program = bpf_object__find_program_by_name(object, program_name);
        if (program == NULL) {
                fprintf(stderr, "libbpf_usdt: no program %s in %s\n", program_name,
                        object_path);
                return 1;
        }
        link = bpf_program__attach_usdt(program, pid, binary_path, provider, name, NULL);
        if (link == NULL) {
                fprintf(stderr, "libbpf_usdt: cannot attach %s to %s:%s in %s (pid %d): %s\n",
                        program_name, provider, name, binary_path, (int)pid,
                        strerror(errno));
                return 1;
        }
        events = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(object, "events")),
                                  event_print, NULL, NULL);
        if (events == NULL) {
                fprintf(stderr, "libbpf_usdt: cannot open the ring buffer: %s\n",
                        strerror(errno));
                return 1;
        }
        printf("attached\n");

        while (!stop_requested) {
                err = ring_buffer__poll(events, 100);
                if (err < 0 && err != -EINTR) {
                        fprintf(stderr, "libbpf_usdt: reading the ring buffer: %s\n",
                                strerror(-err));
                        return 1;
                }
        }
        err = ring_buffer__consume(events);
        if (err < 0) {
                fprintf(stderr, "libbpf_usdt: reading the ring buffer: %s\n", strerror(-err));
                return 1;
        }
        ring_buffer__free(events);
        bpf_link__destroy(link);
        bpf_object__close(object);
        printf("detached\n");
        return 0;
}
