/* Integer options ("name=N") from the Multiboot command line. */
#include "guest.h"

static bool cmdline_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int cmdline_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return 99;
}

/* Parses the number that runs from @s to the end of its word into *@out;
 * false if the word is not a whole number. */
static bool cmdline_parse_long(const char *s, long *out)
{
    bool neg = false;
    unsigned long v = 0;
    int base = 10;
    int d;

    if (*s == '-') {
        neg = true;
        s++;
    }
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (*s == '\0' || cmdline_is_space(*s)) {
        return false;
    }
    for (; *s != '\0' && !cmdline_is_space(*s); s++) {
        d = cmdline_digit(*s);
        if (d >= base) {
            return false;
        }
        v = v * (unsigned long)base + (unsigned long)d;
    }
    *out = neg ? -(long)v : (long)v;
    return true;
}

long cmdline_get_int(const char *cmdline, const char *name, long def)
{
    size_t len = strlen(name);
    const char *p = cmdline;
    long v;
    size_t i;

    while (*p != '\0') {
        while (cmdline_is_space(*p)) {
            p++;
        }
        for (i = 0; i < len && p[i] == name[i]; i++) {
        }
        if (i == len && p[len] == '=') {
            return cmdline_parse_long(p + len + 1, &v) ? v : def;
        }
        while (*p != '\0' && !cmdline_is_space(*p)) {
            p++;
        }
    }
    return def;
}
