/*
 * Names: what the library accepts as provider, module, function and probe
 * names and argument types, and how a name is shown in an error message.
 * The limits are DTrace's (the kernel refuses longer names in a DOF
 * document) and the characters are what every tracer can parse and what
 * cannot escape into a path or a format string.
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
 * Check one name. Returns NULL when it is acceptable, else writes why into
 * reason (naming the limit) and returns reason.
 */
static const char *
name_check(char *reason, size_t reason_size, const char *what,
           const char *name, size_t max_bytes,
           const char *allowed_punct, int allow_empty)
{
        char quoted[200];
        size_t len, i;

        if (name == NULL) {
                snprintf(reason, reason_size, "%s is NULL", what);
                return reason;
        }
        len = strnlen(name, max_bytes + 1);
        if (len == 0 && !allow_empty) {
                snprintf(reason, reason_size, "%s is empty", what);
                return reason;
        }
        if (len > max_bytes) {
                snprintf(reason, reason_size,
                         "%s \"%s\" is too long: the limit is %zu bytes",
                         what, usdt_name_quote(quoted, sizeof(quoted), name),
                         max_bytes);
                return reason;
        }
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)name[i];
                int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         c == '_' || (c >= '0' && c <= '9') ||
                         (c != '\0' && strchr(allowed_punct, c) != NULL);
                if (!ok) {
                        snprintf(reason, reason_size,
                                 "%s \"%s\" is refused: use letters, digits, '_' and \"%s\"",
                                 what, usdt_name_quote(quoted, sizeof(quoted), name),
                                 allowed_punct);
                        return reason;
                }
        }
        return NULL;
}

/*
 * How a name is published to Linux tracers, one character at a time: the
 * form of c goes into out (at most 4 bytes), and its length is returned.
 * DTrace shows "__" in a probe name as "-", so an SDT note carries '-' as
 * "__" (route-start is route__start to bpftrace); everything else as it is.
 * The only place that says so: the ELF writer, the duplicate check and the
 * JIT all publish through it.
 */
size_t
usdt_name_publish_char(unsigned char c, char out[4])
{
        if (c == '-') {
                out[0] = out[1] = '_';
                return 2;
        }
        out[0] = (char)c;
        return 1;
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
                       USDT_FUNCTION_NAME_MAX, "-.$", 1) != NULL ||
            name_check(reason, size, "probe name", pd->name,
                       USDT_PROBE_NAME_MAX, "-", 0) != NULL)
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
                          USDT_PROBE_NAME_MAX, "-", 0);
}

/* The reasons create_provider refuses a name or module, or NULL. */
const char *
usdt_provider_check(char *reason, size_t size, const char *name, const char *module)
{
        if (name_check(reason, size, "provider name", name,
                       USDT_PROVIDER_NAME_MAX, "-", 0) != NULL ||
            name_check(reason, size, "module name", module,
                       USDT_MODULE_NAME_MAX, "-.", 0) != NULL)
                return reason;
        if (module[0] == '.' || module[0] == '-') {
                snprintf(reason, size, "module name \"%.40s\" is refused: "
                         "it must not start with '.' or '-'", module);
                return reason;
        }
        return NULL;
}
