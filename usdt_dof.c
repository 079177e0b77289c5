/*
 * Growable byte buffers, the DOF string table built on one, and the error
 * buffer the layers below the API write their messages into.
 *
 * A buffer that failed to grow remembers it (failed = 1) and ignores
 * further appends, so a builder appends freely and checks once at the end.
 */
#include "usdt_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for at least bytes more, so that a builder that knows about how
 * much it will append grows the buffer once. */
void
usdt_buf_reserve(struct usdt_buf *buf, size_t bytes)
{
        size_t capacity = buf->capacity ? buf->capacity : 256;
        unsigned char *grown;

        if (buf->failed || buf->size + bytes <= buf->capacity)
                return;
        while (capacity < buf->size + bytes)
                capacity *= 2;
        grown = realloc(buf->data, capacity);
        if (grown == NULL) {
                buf->failed = 1;
                return;
        }
        buf->data = grown;
        buf->capacity = capacity;
}

void
usdt_buf_append(struct usdt_buf *buf, const void *data, size_t bytes)
{
        if (buf->size + bytes > buf->capacity)
                usdt_buf_reserve(buf, bytes);
        if (buf->failed)
                return;
        memcpy(buf->data + buf->size, data, bytes);
        buf->size += bytes;
}

/*
 * Append a NUL-terminated string; returns its index (the offset where it
 * starts). Strings are not shared: the original lays the table out that
 * way, and the kernel walks a probe's type strings as consecutive entries.
 */
uint32_t
usdt_buf_add_string(struct usdt_buf *strtab, const char *string)
{
        uint32_t index = (uint32_t)strtab->size;

        usdt_buf_append(strtab, string, strlen(string) + 1);
        return index;
}

void
usdt_buf_free(struct usdt_buf *buf)
{
        free(buf->data);
        memset(buf, 0, sizeof(*buf));
}

void
usdt_err_set(struct usdt_err *err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err->text, sizeof(err->text), fmt, ap);
        va_end(ap);
}
