/*
 * The record t/progs/libbpf_usdt.bpf.c writes into its ring buffer and
 * t/progs/libbpf_usdt.c reads (it refuses a record of any other size).
 */
#ifndef LIBBPF_USDT_H
#define LIBBPF_USDT_H

#define LIBBPF_USDT_TEXT_BYTES 4096
enum { LIBBPF_USDT_INT_STR = 1, LIBBPF_USDT_INT_INT = 2 };
struct libbpf_usdt_event {
        long kind;
        long arg0;
        long arg1;
        long text_bytes;        /* bpf_probe_read_user_str's result */
        char text[LIBBPF_USDT_TEXT_BYTES];
};

#endif
