/* A small AML byte-code emitter: integers, strings, names, and blocks with PkgLength. */
#include "kvmloop/acpi.h"

#include <string.h>

/* Opcodes and prefixes (ACPI 6.3, 20.2). */
#define AML_ZERO_OP            0x00
#define AML_ONE_OP             0x01
#define AML_NAME_OP            0x08
#define AML_BYTE_PREFIX        0x0a
#define AML_WORD_PREFIX        0x0b
#define AML_DWORD_PREFIX       0x0c
#define AML_STRING_PREFIX      0x0d
#define AML_QWORD_PREFIX       0x0e
#define AML_SCOPE_OP           0x10
#define AML_BUFFER_OP          0x11
#define AML_PACKAGE_OP         0x12
#define AML_METHOD_OP          0x14
#define AML_DUAL_NAME_PREFIX   0x2e
#define AML_MULTI_NAME_PREFIX  0x2f
#define AML_EXT_OP_PREFIX      0x5b
#define AML_ROOT_CHAR          0x5c
#define AML_PARENT_PREFIX_CHAR 0x5e
#define AML_RETURN_OP          0xa4
#define AML_ONES_OP            0xff
#define AML_EXT_DEVICE_OP      0x82

/* The largest PkgLength: 4 bits in the lead byte and 8 in each of three more. */
#define AML_PKG_LENGTH_MAX 0x0fffffffu
/* A MultiNamePrefix carries the segment count in one byte. */
#define AML_MAX_NAME_SEGS 255

struct Aml {
    GByteArray *bytes;
    GArray *open; /* AmlBlock marks of the blocks not closed yet, innermost last */
    char *error;  /* the first mistake */
};

Aml *aml_new(void)
{
    Aml *a = g_new0(Aml, 1);
    a->bytes = g_byte_array_new();
    a->open = g_array_new(false, false, sizeof(AmlBlock));
    return a;
}

void aml_free(Aml *a)
{
    if (!a) {
        return;
    }
    g_byte_array_unref(a->bytes);
    g_array_unref(a->open);
    g_free(a->error);
    g_free(a);
}

const uint8_t *aml_data(const Aml *a, size_t *len)
{
    *len = a->bytes->len;
    return a->bytes->data;
}

const char *aml_error(const Aml *a)
{
    return a->error;
}

unsigned aml_open_blocks(const Aml *a)
{
    return a->open->len;
}

static void G_GNUC_PRINTF(2, 3) aml_fail(Aml *a, const char *fmt, ...)
{
    if (a->error) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    a->error = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

void aml_append_bytes(Aml *a, const void *data, size_t len)
{
    g_byte_array_append(a->bytes, data, (guint)len);
}

static void aml_byte(Aml *a, uint8_t v)
{
    g_byte_array_append(a->bytes, &v, 1);
}

static void aml_le(Aml *a, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++) {
        aml_byte(a, (uint8_t)(v >> (8 * i)));
    }
}

/* 20.2.4: bits 7:6 of the lead byte count the bytes that follow. Alone, the
 * lead byte holds the length in bits 5:0; otherwise it holds the low nibble
 * in bits 3:0 and the following bytes the rest, least significant first. */
unsigned aml_pkg_length_encode(uint32_t len, uint8_t out[4])
{
    unsigned n;

    if (len <= 0x3f) {
        out[0] = (uint8_t)len;
        return 1;
    }
    if (len <= 0xfff) {
        n = 2;
    } else if (len <= 0xfffff) {
        n = 3;
    } else if (len <= AML_PKG_LENGTH_MAX) {
        n = 4;
    } else {
        return 0;
    }
    out[0] = (uint8_t)(((n - 1) << 6) | (len & 0x0f));
    for (unsigned i = 1; i < n; i++) {
        out[i] = (uint8_t)(len >> (4 + 8 * (i - 1)));
    }
    return n;
}

void aml_integer(Aml *a, uint64_t v)
{
    if (v == 0) {
        aml_byte(a, AML_ZERO_OP);
    } else if (v == 1) {
        aml_byte(a, AML_ONE_OP);
    } else if (v == UINT64_MAX) {
        aml_byte(a, AML_ONES_OP);
    } else if (v <= UINT8_MAX) {
        aml_byte(a, AML_BYTE_PREFIX);
        aml_le(a, v, 1);
    } else if (v <= UINT16_MAX) {
        aml_byte(a, AML_WORD_PREFIX);
        aml_le(a, v, 2);
    } else if (v <= UINT32_MAX) {
        aml_byte(a, AML_DWORD_PREFIX);
        aml_le(a, v, 4);
    } else {
        aml_byte(a, AML_QWORD_PREFIX);
        aml_le(a, v, 8);
    }
}

void aml_string(Aml *a, const char *s)
{
    aml_byte(a, AML_STRING_PREFIX);
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p > 0x7f) {
            aml_fail(a, "AML string \"%s\" is not ASCII", s);
        }
    }
    aml_append_bytes(a, s, strlen(s) + 1);
}

static bool aml_lead_char(char c)
{
    return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool aml_name_char(char c)
{
    return aml_lead_char(c) || (c >= '0' && c <= '9');
}

/* Check one NameSeg of @len characters at @s and append it padded to four. */
static bool aml_name_seg(Aml *a, const char *s, size_t len)
{
    if (len < 1 || len > 4 || !aml_lead_char(s[0])) {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        if (!aml_name_char(s[i])) {
            return false;
        }
    }
    aml_append_bytes(a, s, len);
    for (size_t i = len; i < 4; i++) {
        aml_byte(a, '_');
    }
    return true;
}

void aml_name_string(Aml *a, const char *path)
{
    const char *p = path;

    if (*p == '\\') {
        aml_byte(a, AML_ROOT_CHAR);
        p++;
    } else {
        while (*p == '^') {
            aml_byte(a, AML_PARENT_PREFIX_CHAR);
            p++;
        }
    }
    if (*p == '\0') {
        if (p == path) {
            aml_fail(a, "empty AML name");
        }
        aml_byte(a, AML_ZERO_OP); /* NullName */
        return;
    }
    g_auto(GStrv) segs = g_strsplit(p, ".", -1);
    guint n = g_strv_length(segs);
    if (n > AML_MAX_NAME_SEGS) {
        aml_fail(a, "AML name \"%s\" has more than %d segments", path, AML_MAX_NAME_SEGS);
        return;
    }
    if (n == 2) {
        aml_byte(a, AML_DUAL_NAME_PREFIX);
    } else if (n > 2) {
        aml_byte(a, AML_MULTI_NAME_PREFIX);
        aml_byte(a, (uint8_t)n);
    }
    for (guint i = 0; i < n; i++) {
        if (!aml_name_seg(a, segs[i], strlen(segs[i]))) {
            aml_fail(a, "invalid AML name \"%s\"", path);
            return;
        }
    }
}

static int aml_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The EISA ID packs three letters in 5 bits each ('A' = 1) and the product
 * number in 16 bits, and is stored big-endian, so the little-endian integer
 * is byte-swapped (ACPI 6.3, 19.6.35 EISAID). */
void aml_eisaid(Aml *a, const char *id)
{
    uint32_t v = 0;

    if (strlen(id) != 7) {
        aml_fail(a, "invalid EISA ID \"%s\"", id);
        aml_integer(a, 0);
        return;
    }
    for (int i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z') {
            aml_fail(a, "invalid EISA ID \"%s\"", id);
        }
        v = (v << 5) | (uint32_t)((id[i] - '@') & 0x1f);
    }
    for (int i = 3; i < 7; i++) {
        int d = aml_hex_digit(id[i]);
        if (d < 0) {
            aml_fail(a, "invalid EISA ID \"%s\"", id);
            d = 0;
        }
        v = (v << 4) | (uint32_t)d;
    }
    /* 3 * 5 + 16 = 31 bits: bit 31 stays clear. */
    aml_byte(a, AML_DWORD_PREFIX);
    aml_le(a, GUINT32_SWAP_LE_BE(v), 4);
}

/* Open a block: the opcode was appended; the PkgLength goes here. */
static AmlBlock aml_open(Aml *a)
{
    AmlBlock b = a->bytes->len;
    g_array_append_val(a->open, b);
    return b;
}

void aml_end(Aml *a, AmlBlock b)
{
    if (a->open->len == 0 || g_array_index(a->open, AmlBlock, a->open->len - 1) != b) {
        aml_fail(a, "AML block closed out of order");
        return;
    }
    g_array_set_size(a->open, a->open->len - 1);

    /* The PkgLength counts its own bytes, so grow it until body + size fits. */
    size_t body = a->bytes->len - b;
    uint8_t enc[4];
    unsigned n = 0;
    for (unsigned size = 1; size <= 4 && n == 0; size++) {
        if (body + size <= AML_PKG_LENGTH_MAX &&
            aml_pkg_length_encode((uint32_t)(body + size), enc) == size) {
            n = size;
        }
    }
    if (n == 0) {
        aml_fail(a, "AML block of %zu bytes is too long", body);
        return;
    }
    g_byte_array_set_size(a->bytes, a->bytes->len + n);
    memmove(a->bytes->data + b + n, a->bytes->data + b, body);
    memcpy(a->bytes->data + b, enc, n);
}

void aml_buffer(Aml *a, const void *data, size_t len)
{
    aml_byte(a, AML_BUFFER_OP);
    AmlBlock b = aml_open(a);
    aml_integer(a, len);
    aml_append_bytes(a, data, len);
    aml_end(a, b);
}

void aml_name(Aml *a, const char *name)
{
    aml_byte(a, AML_NAME_OP);
    aml_name_string(a, name);
}

void aml_return(Aml *a)
{
    aml_byte(a, AML_RETURN_OP);
}

AmlBlock aml_scope_begin(Aml *a, const char *path)
{
    aml_byte(a, AML_SCOPE_OP);
    AmlBlock b = aml_open(a);
    aml_name_string(a, path);
    return b;
}

AmlBlock aml_device_begin(Aml *a, const char *path)
{
    aml_byte(a, AML_EXT_OP_PREFIX);
    aml_byte(a, AML_EXT_DEVICE_OP);
    AmlBlock b = aml_open(a);
    aml_name_string(a, path);
    return b;
}

/* MethodFlags: bits 2:0 ArgCount, bit 3 SerializeFlag, bits 7:4 SyncLevel (0). */
AmlBlock aml_method_begin(Aml *a, const char *path, unsigned nargs, bool serialized)
{
    aml_byte(a, AML_METHOD_OP);
    AmlBlock b = aml_open(a);
    aml_name_string(a, path);
    if (nargs > 7) {
        aml_fail(a, "AML method %s takes %u arguments; at most 7 are possible", path, nargs);
        nargs = 7;
    }
    aml_byte(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
    return b;
}

AmlBlock aml_package_begin(Aml *a, unsigned nelements)
{
    aml_byte(a, AML_PACKAGE_OP);
    AmlBlock b = aml_open(a);
    if (nelements > UINT8_MAX) {
        aml_fail(a, "AML package of %u elements; at most 255 are possible", nelements);
        nelements = UINT8_MAX;
    }
    aml_byte(a, (uint8_t)nelements);
    return b;
}
