/*
 * The BPF side of t/57_libbpf.t: two USDT programs, written the way a
 * libbpf user writes them (BPF_USDT from <bpf/usdt.bpf.h>), that copy a
 * probe's arguments into a ring buffer for the loader
 * (t/progs/libbpf_usdt.c) to print.
 *
 *   int_str   arg0 a signed integer, arg1 a string (a test_usdt probe
 *             declared "int" "char *")
 *   int_int   arg0 and arg1 signed integers (the toy JIT's site,
 *             "-8@%rdi -8@%rsi")
 *
 * libbpf turns each argument's SDT operand into a spec the BPF side reads
 * at the probe; reading them back exactly is what the test checks. Built
 * without vmlinux.h: the user-space kernel headers give struct pt_regs,
 * and bpf_tracing.h picks its user-space register names.
 */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "libbpf_usdt.h"

char LICENSE[] SEC("license") = "GPL";

struct {
        __uint(type, BPF_MAP_TYPE_RINGBUF);
        __uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("usdt")
int BPF_USDT(int_str, long number, const char *text)
{
        struct libbpf_usdt_event *event;
        long text_bytes;

        (void)ctx;      /* BPF_USDT's: the arguments were read from it */
        event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
        if (event == NULL)
                return 0;
        event->kind = LIBBPF_USDT_INT_STR;
        event->arg0 = number;
        event->arg1 = 0;
        /* the terminating NUL counted; negative when the read faulted */
        text_bytes = bpf_probe_read_user_str(event->text, sizeof(event->text), text);
        event->text_bytes = text_bytes;
        bpf_ringbuf_submit(event, 0);
        return 0;
}

SEC("usdt")
int BPF_USDT(int_int, long first, long second)
{
        struct libbpf_usdt_event *event;

        (void)ctx;
        event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
        if (event == NULL)
                return 0;
        event->kind = LIBBPF_USDT_INT_INT;
        event->arg0 = first;
        event->arg1 = second;
        event->text_bytes = 0;
        event->text[0] = '\0';
        bpf_ringbuf_submit(event, 0);
        return 0;
}
