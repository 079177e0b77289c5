/*
 * Names: what the library accepts as provider, module, function and probe
 * names and argument types, how a name is published to Linux tracers, and
 * how a name is shown in an error message. Every name DTrace loads is
 * accepted: its kernel checks lengths only, and so does this file. Linux
 * tracers parse far fewer characters (the README has a table per tracer),
 * so an SDT note carries a name's published form, which only ever holds
 * [A-Za-z0-9_] and is what tracers are given to match.
 */
#include "usdt_internal.h"

#include <stdio.h>
#include <string.h>

#define USDT_PROVIDER_NAME_MAX  53      /* DTrace: name + pid < 64 */
#define USDT_MODULE_NAME_MAX    63      /* DTRACE_MODNAMELEN - 1 */
#define USDT_FUNCTION_NAME_MAX  127     /* DTRACE_FUNCNAMELEN - 1 */
#define USDT_PROBE_NAME_MAX     63      /* DTRACE_NAMELEN - 1 */
#define USDT_TYPE_MAX           127     /* DTRACE_ARGTYPELEN - 1 */

/*
 * Render a name for an error message: at most 40 characters, anything
 * outside printable ASCII (and the quote and backslash) as \xNN, so a
 * hostile name can neither flood nor forge the message.
 */
const char *
usdt_name_quote(char *buf, size_t bufsize, const char *name)
{
        size_t out = 0, i;

        for (i = 0; name[i] != '\0' && out + 8 < bufsize; i++) {
                unsigned char c = (unsigned char)name[i];
                if (i == 40) {
                        memcpy(buf + out, "...", 3);
                        out += 3;
                        break;
                }
                if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
                        out += (size_t)snprintf(buf + out, bufsize - out,
                                                "\\x%02x", c);
                else
                        buf[out++] = (char)c;
        }
        buf[out] = '\0';
        return buf;
}

/*
 * Check one name: NULL, empty (unless allowed) and too long are refused; any
 * other byte is fine, because the DOF document carries the name as it is and
 * an SDT note its published form. Returns NULL when it is acceptable, else
 * writes why into reason (naming the limit) and returns reason.
 */
static const char *
name_check(char *reason, size_t reason_size, const char *what,
           const char *name, size_t max_bytes, int allow_empty)
{
        char quoted[200];
        size_t len;

        if (name == NULL) {
                snprintf(reason, reason_size, "%s is NULL", what);
                return reason;
        }
        len = strnlen(name, max_bytes + 1);
        if (len == 0 && !allow_empty) {
                snprintf(reason, reason_size, "%s is empty: a tracer needs at least one character",
                         what);
                return reason;
        }
        if (len > max_bytes) {
                snprintf(reason, reason_size,
                         "%s \"%s\" is too long: the limit is %zu bytes",
                         what, usdt_name_quote(quoted, sizeof(quoted), name),
                         max_bytes);
                return reason;
        }
        return NULL;
}

/*
 * How a name is published to Linux tracers, one byte at a time: the form of
 * c goes into out (at most 4 bytes), and its length is returned. Letters,
 * digits and '_' stay as they are. DTrace shows "__" in a probe name as "-",
 * so '-' is published as "__" (route-start is route__start to bpftrace).
 * Every other byte becomes '_' (my.app is my_app; the two bytes of a UTF-8
 * 'é' are "__"): perf takes nothing else, bpftrace takes most other
 * characters only quoted, and no tracer knows an escape. The one place that
 * says so: the ELF writer, the duplicate check, file and memory-file names
 * and the JIT all publish through it.
 */
size_t
usdt_name_publish_char(unsigned char c, char out[4])
{
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_') {
                out[0] = (char)c;
                return 1;
        }
        out[0] = out[1] = '_';
        return c == '-' ? 2 : 1;
}

/* The published form of name in out (cut short to fit); out. */
char *
usdt_name_publish(char *out, size_t size, const char *name)
{
        char form[4];
        size_t used = 0, n;

        for (; *name != '\0'; name++) {
                n = usdt_name_publish_char((unsigned char)*name, form);
                if (used + n >= size)
                        break;
                memcpy(out + used, form, n);
                used += n;
        }
        if (size > 0)
                out[used] = '\0';
        return out;
}

/* Whether two names publish alike (then they are one probe to a tracer). */
int
usdt_names_publish_alike(const char *a, const char *b)
{
        char fa[4], fb[4];
        size_t na = 0, nb = 0, ia = 0, ib = 0;

        for (;;) {
                if (ia == na) {
                        if (*a == '\0')
                                break;
                        na = usdt_name_publish_char((unsigned char)*a++, fa);
                        ia = 0;
                }
                if (ib == nb) {
                        if (*b == '\0')
                                return 0;
                        nb = usdt_name_publish_char((unsigned char)*b++, fb);
                        ib = 0;
                }
                if (fa[ia++] != fb[ib++])
                        return 0;
        }
        return ib == nb && *b == '\0';
}

/* FNV-1a over the published form of name, continuing from hash. */
uint32_t
usdt_name_publish_hash(uint32_t hash, const char *name)
{
        char form[4];
        size_t n, i;

        for (; *name != '\0'; name++) {
                n = usdt_name_publish_char((unsigned char)*name, form);
                for (i = 0; i < n; i++)
                        hash = (hash ^ (unsigned char)form[i]) * 16777619u;
        }
        return hash;
}

int
usdt_type_is_string(const char *type)
{
        return type != NULL && strncmp(type, "char *", 6) == 0;
}

/* The reasons add_probe refuses a probedef, or NULL. */
const char *
usdt_probedef_check(char *reason, size_t size, const usdt_probedef_t *pd)
{
        size_t i;

        if (name_check(reason, size, "function name", pd->function,
                       USDT_FUNCTION_NAME_MAX, 1) != NULL ||
            name_check(reason, size, "probe name", pd->name,
                       USDT_PROBE_NAME_MAX, 0) != NULL)
                return reason;
        for (i = 0; i < pd->argc; i++) {
                if (pd->types[i] != NULL &&
                    strnlen(pd->types[i], USDT_TYPE_MAX + 1) > USDT_TYPE_MAX) {
                        snprintf(reason, size,
                                 "argument %zu type is too long: the limit is %d bytes",
                                 i, USDT_TYPE_MAX);
                        return reason;
                }
        }
        return NULL;
}

/* The reasons a probe name is refused (JIT sites), or NULL. */
const char *
usdt_probe_name_check(char *reason, size_t size, const char *name)
{
        return name_check(reason, size, "probe name", name,
                          USDT_PROBE_NAME_MAX, 0);
}

/*
 * The reasons create_provider refuses a name or module, or NULL. The module
 * is DTrace's alone (the helper's dofhp_mod): an SDT note has no place for
 * it, so it may even be empty.
 */
const char *
usdt_provider_check(char *reason, size_t size, const char *name, const char *module)
{
        if (name_check(reason, size, "provider name", name,
                       USDT_PROVIDER_NAME_MAX, 0) != NULL ||
            name_check(reason, size, "module name", module,
                       USDT_MODULE_NAME_MAX, 1) != NULL)
                return reason;
        return NULL;
}
