/* Command-line parsing with QEMU's option spelling. */
#include "kvmloop/config.h"
#include "kvmloop/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmloop/device.h"
#include "kvmloop/lockstat.h"
#include "kvmloop/net.h"
#include "kvmloop/qmp.h"

bool parse_size(const char *s, uint64_t unit, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') {
        return false;
    }
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) {
        return false;
    }
    uint64_t mul = unit;
    switch (*end) {
    case '\0':
        break;
    case 'b':
    case 'B':
        mul = 1;
        end++;
        break;
    case 'k':
    case 'K':
        mul = 1ULL << 10;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1ULL << 20;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1ULL << 30;
        end++;
        break;
    case 't':
    case 'T':
        mul = 1ULL << 40;
        end++;
        break;
    default:
        return false;
    }
    if (*end || v * (double)mul >= 18446744073709551615.0) {
        return false;
    }
    *out = (uint64_t)(v * (double)mul);
    return true;
}

typedef enum {
    OPT_FLAG,
    OPT_ARG,
} OptKind;

typedef struct OptDef {
    const char *name;
    OptKind kind;
    const char *arg_help;
    const char *help;
} OptDef;

static const OptDef options[] = {
    {"machine", OPT_ARG, "pc", "machine type (only 'pc')"},
    {"accel", OPT_ARG, "kvm[,emulation-assists=auto|on|off]",
     "accelerator (only 'kvm'); assists finish instructions an emulating host cannot"},
    {"smp", OPT_ARG, "N[,sockets=S,cores=C,threads=T]", "vCPUs and their topology (default 1)"},
    {"cpu", OPT_ARG, "host|base[,+FEAT,-FEAT,...]",
     "CPU model: all KVM supports (default) or a conservative x86-64, with feature edits"},
    {"m", OPT_ARG, "SIZE",
     "guest RAM, with an optional k/M/G suffix; default unit MiB (default 128M)"},
    {"kernel", OPT_ARG, "FILE", "kernel: bzImage, vmlinux ELF with a PVH note, or multiboot"},
    {"initrd", OPT_ARG, "FILE[,FILE...]",
     "initramfs (Linux) or multiboot modules (each 'PATH[ ARGS]')"},
    {"append", OPT_ARG, "CMDLINE", "kernel command line"},
    {"serial", OPT_ARG, "stdio|file:PATH|null|none",
     "backend of the next serial port (default stdio)"},
    {"device", OPT_ARG, "NAME[,PROP=VALUE...]", "add a device (see the list below)"},
    {"drive", OPT_ARG,
     "file=IMG[,if=virtio,format=raw,readonly=on,locking=off,cache=none|writeback,"
     "iothread=NAME,id=NAME,aio=auto|io_uring|threads,num-queues=N,serial=STR]",
     "a virtio disk on a raw image (',,' is a comma in a value)"},
    {"netdev", OPT_ARG, "tap,id=ID[,ifname=NAME]",
     "a tap interface for -device virtio-net-pci,netdev=ID (needs CAP_NET_ADMIN)"},
    {"object", OPT_ARG, "iothread,id=NAME[,loop=L]",
     "start an iothread running its own event loop (L: glib or libevent)"},
    {"qmp", OPT_ARG, "unix:PATH,server=on[,wait=off]|stdio",
     "QMP monitor on a unix socket or on stdin/stdout (may be repeated)"},
    {"nographic", OPT_FLAG, NULL, "no display (kvmloop never has one; accepted for QEMU habits)"},
    {"no-reboot", OPT_FLAG, NULL, "exit instead of rebooting when the guest resets"},
    {"S", OPT_FLAG, NULL, "start with the vCPUs paused until the QMP command cont"},
    {"stats", OPT_FLAG, NULL, "print lock, vCPU and region statistics when the VM ends"},
    {"stats-file", OPT_ARG, "FILE.json",
     "write the statistics as JSON to FILE.json at the end and on SIGUSR1"},
    {"stats-collect", OPT_ARG, "on|full|off",
     "collect lock, exit and region statistics: on (default) times 1 hold and exit in 8, "
     "full times all, off leaves exit counts only"},
    {"help", OPT_FLAG, NULL, "print this help and exit"},
    {"version", OPT_FLAG, NULL, "print the version and exit"},
};

void vm_config_print_help(FILE *f, const char *argv0)
{
    fprintf(f, "usage: %s [options]\n\nA KVM virtual machine monitor.\n\nOptions:\n", argv0);
    for (unsigned i = 0; i < G_N_ELEMENTS(options); i++) {
        g_autofree char *lhs =
            g_strdup_printf("-%s%s%s", options[i].name, options[i].arg_help ? " " : "",
                            options[i].arg_help ? options[i].arg_help : "");
        fprintf(f, "  %-34s %s\n", lhs, options[i].help);
    }
    fprintf(f, "\nDevices (-device NAME,...):\n");
    for (const DeviceClass *const *c = device_class_all(); *c; c++) {
        if ((*c)->user_creatable) {
            fprintf(f, "  %-16s %s\n", (*c)->name, (*c)->desc);
            if ((*c)->props_help) {
                fprintf(f, "  %-16s   %s\n", "", (*c)->props_help);
            }
        }
    }
    fprintf(f, "\nExit status: 0 when the guest powers off, (V << 1) | 1 when it writes V to\n"
               "isa-debug-exit, 1 on a start-up error, 2 when the guest fails (triple fault,\n"
               "emulation failure).\n");
}

static const OptDef *find_option(const char *arg)
{
    /* QEMU accepts both -opt and --opt. */
    const char *name = arg + 1;
    if (*name == '-') {
        name++;
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(options); i++) {
        if (strcmp(options[i].name, name) == 0) {
            return &options[i];
        }
    }
    return NULL;
}

static void iothread_config_free(gpointer p)
{
    IOThreadConfig *io = p;
    g_free(io->id);
    g_free(io);
}

/* -object iothread,id=NAME[,loop=glib|libevent]: the only object type. The
 * id's syntax is checked when the iothread is created. */
static bool parse_object(VmConfig *cfg, const char *val, GError **errp)
{
    g_auto(GStrv) parts = g_strsplit(val, ",", -1);
    const char *type = g_str_has_prefix(parts[0], "qom-type=") ? parts[0] + 9 : parts[0];
    const char *id = NULL, *loop = NULL;
    EventLoopBackend backend = EVENT_LOOP_GLIB;

    if (strcmp(type, "iothread") != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-object: unknown object type '%s' (kvmloop has 'iothread')", type);
        return false;
    }
    for (int i = 1; parts[i]; i++) {
        char *eq = strchr(parts[i], '=');
        if (!eq) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-object %s: expected key=value, got '%s'", val, parts[i]);
            return false;
        }
        *eq = '\0';
        const char **slot = !strcmp(parts[i], "id")     ? &id
                            : !strcmp(parts[i], "loop") ? &loop
                                                        : NULL;
        if (!slot) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-object %s: an iothread has no property '%s' (it takes id, loop)", val,
                        parts[i]);
            return false;
        }
        if (*slot) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-object %s: property '%s' given twice", val, parts[i]);
            return false;
        }
        *slot = eq + 1;
    }
    if (!id || !*id) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-object %s: an iothread needs id=NAME", val);
        return false;
    }
    if (loop && !event_loop_backend_parse(loop, &backend)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-object %s: unknown loop '%s' (expected glib or libevent)", val, loop);
        return false;
    }
    for (guint i = 0; i < cfg->iothreads->len; i++) {
        IOThreadConfig *other = cfg->iothreads->pdata[i];
        if (!strcmp(other->id, id)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-object %s: id '%s' is already in use", val, id);
            return false;
        }
    }
    IOThreadConfig *io = g_new0(IOThreadConfig, 1);
    io->id = g_strdup(id);
    io->backend = backend;
    g_ptr_array_add(cfg->iothreads, io);
    return true;
}

/* -qmp: QEMU's spelling; each socket path once, stdio once. */
static bool parse_qmp(VmConfig *cfg, const char *val, GError **errp)
{
    QmpEndpoint *ep = qmp_endpoint_parse(val, errp);
    if (!ep) {
        return false;
    }
    for (guint i = 0; i < cfg->qmp->len; i++) {
        const QmpEndpoint *other = cfg->qmp->pdata[i];
        if (other->kind != ep->kind ||
            (ep->kind == QMP_ENDPOINT_UNIX && strcmp(other->path, ep->path) != 0)) {
            continue;
        }
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    ep->kind == QMP_ENDPOINT_STDIO
                        ? "-qmp %s: cannot use stdio by multiple character devices"
                        : "-qmp %s: the socket path is already used by another -qmp",
                    val);
        qmp_endpoint_free(ep);
        return false;
    }
    g_ptr_array_add(cfg->qmp, ep);
    return true;
}

static bool qmp_uses_stdio(const VmConfig *cfg)
{
    for (guint i = 0; i < cfg->qmp->len; i++) {
        if (((const QmpEndpoint *)cfg->qmp->pdata[i])->kind == QMP_ENDPOINT_STDIO) {
            return true;
        }
    }
    return false;
}

/* Split "a=b,c=d" at single commas; ",," stands for a comma in a value, as
 * in QEMU's option syntax. */
static GPtrArray *split_opts(const char *val)
{
    GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
    GString *cur = g_string_new(NULL);
    for (const char *p = val; *p; p++) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(cur, ',');
            p++;
        } else if (*p == ',') {
            g_ptr_array_add(parts, g_string_free(cur, false));
            cur = g_string_new(NULL);
        } else {
            g_string_append_c(cur, *p);
        }
    }
    g_ptr_array_add(parts, g_string_free(cur, false));
    return parts;
}

/* Check one -drive option and turn it into a virtio-blk-pci property. */
static bool parse_drive_opt(GHashTable *props, const char *key, const char *v, GError **errp)
{
    static const char *const passed[] = {"file",   "id",       "iothread", "aio",  "num-queues",
                                         "serial", "readonly", "locking",  "cache"};
    if (!strcmp(key, "if")) {
        if (strcmp(v, "virtio") != 0) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "-drive: if=%s is not supported (kvmloop has if=virtio)", v);
            return false;
        }
        return true;
    }
    if (!strcmp(key, "format")) {
        if (strcmp(v, "raw") != 0) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "-drive: format=%s is not supported (kvmloop reads raw images only)", v);
            return false;
        }
        return true;
    }
    if (((!strcmp(key, "readonly") || !strcmp(key, "locking")) && strcmp(v, "on") &&
         strcmp(v, "off")) ||
        (!strcmp(key, "cache") && strcmp(v, "none") && strcmp(v, "writeback"))) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "-drive: %s=%s is not one of %s",
                    key, v, !strcmp(key, "cache") ? "none, writeback" : "on, off");
        return false;
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(passed); i++) {
        if (!strcmp(key, passed[i])) {
            if (g_hash_table_contains(props, key)) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "-drive: '%s' given twice", key);
                return false;
            }
            g_hash_table_insert(props, g_strdup(key), g_strdup(v));
            return true;
        }
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "-drive: unknown option '%s' (see --help)", key);
    return false;
}

/* -drive file=IMG,if=virtio,format=raw,...: the properties of a
 * virtio-blk-pci device. The image itself is opened when the device is
 * realized, which reports a missing or unwritable file. */
static bool parse_drive(VmConfig *cfg, const char *val, GError **errp)
{
    g_autoptr(GPtrArray) parts = split_opts(val);
    g_autoptr(GHashTable) props = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (guint i = 0; i < parts->len; i++) {
        char *kv = parts->pdata[i];
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-drive: expected key=value, got '%s'", kv);
            return false;
        }
        *eq = '\0';
        if (!parse_drive_opt(props, kv, eq + 1, errp)) {
            return false;
        }
    }
    const char *file = g_hash_table_lookup(props, "file");
    if (!file || !*file) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-drive: no image given (file=PATH)");
        return false;
    }
    if (!g_hash_table_contains(props, "id")) {
        g_hash_table_insert(props, g_strdup("id"), g_strdup_printf("drive%u", cfg->drives->len));
    }
    g_ptr_array_add(cfg->drives, g_steal_pointer(&props));
    return true;
}

static void netdev_config_free(gpointer p)
{
    NetdevConfig *nd = p;
    g_free(nd->id);
    g_free(nd->ifname);
    g_free(nd);
}

/* -netdev tap,id=ID[,ifname=NAME]: QEMU's spelling, tap only. The interface
 * is opened when the VM is built. */
static bool parse_netdev(VmConfig *cfg, const char *val, GError **errp)
{
    g_autoptr(GPtrArray) parts = split_opts(val);
    const char *type = parts->pdata[0];
    const char *id = NULL, *ifname = NULL;

    if (strcmp(type, "tap") != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-netdev: type '%s' is not supported (kvmloop has tap)", type);
        return false;
    }
    for (guint i = 1; i < parts->len; i++) {
        char *kv = parts->pdata[i];
        char *eq = strchr(kv, '=');
        if (!eq) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-netdev: expected key=value, got '%s'", kv);
            return false;
        }
        *eq = '\0';
        if (!strcmp(kv, "script") || !strcmp(kv, "downscript")) {
            if (strcmp(eq + 1, "no") != 0) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "-netdev: %s= is not supported (kvmloop runs no scripts; configure "
                            "the interface yourself, or give ifname= of a prepared tap)",
                            kv);
                return false;
            }
            continue;
        }
        const char **slot = !strcmp(kv, "id") ? &id : !strcmp(kv, "ifname") ? &ifname : NULL;
        if (!slot) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-netdev: unknown option '%s' (tap takes id, ifname)", kv);
            return false;
        }
        if (*slot) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "-netdev: '%s' given twice",
                        kv);
            return false;
        }
        *slot = eq + 1;
    }
    if (!id || !*id) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "-netdev %s: needs id=ID", val);
        return false;
    }
    if (ifname && (!*ifname || strlen(ifname) > 15 || strchr(ifname, '/'))) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-netdev %s: ifname must be 1 to 15 characters without '/'", val);
        return false;
    }
    for (guint i = 0; i < cfg->netdevs->len; i++) {
        if (!strcmp(((NetdevConfig *)cfg->netdevs->pdata[i])->id, id)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-netdev %s: id '%s' is already in use", val, id);
            return false;
        }
    }
    NetdevConfig *nd = g_new0(NetdevConfig, 1);
    nd->id = g_strdup(id);
    nd->ifname = g_strdup(ifname);
    g_ptr_array_add(cfg->netdevs, nd);
    return true;
}

/* Every virtio-net-pci names a -netdev, and every -netdev has a device. */
static bool check_netdevs(const VmConfig *cfg, GError **errp)
{
    g_autofree bool *used = g_new0(bool, cfg->netdevs->len + 1);
    for (guint d = 0; d < cfg->devices->len; d++) {
        g_autoptr(GPtrArray) parts = split_opts(cfg->devices->pdata[d]);
        if (strcmp(parts->pdata[0], "virtio-net-pci") != 0) {
            continue;
        }
        const char *want = NULL;
        for (guint i = 1; i < parts->len; i++) {
            if (g_str_has_prefix(parts->pdata[i], "netdev=")) {
                want = (const char *)parts->pdata[i] + 7;
            }
        }
        if (!want) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-device %s: needs netdev=ID of a -netdev",
                        (const char *)cfg->devices->pdata[d]);
            return false;
        }
        guint n = 0;
        while (n < cfg->netdevs->len &&
               strcmp(((NetdevConfig *)cfg->netdevs->pdata[n])->id, want)) {
            n++;
        }
        if (n == cfg->netdevs->len) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-device %s: there is no -netdev with id '%s'",
                        (const char *)cfg->devices->pdata[d], want);
            return false;
        }
        used[n] = true;
    }
    for (guint n = 0; n < cfg->netdevs->len; n++) {
        if (!used[n]) {
            const char *id = ((NetdevConfig *)cfg->netdevs->pdata[n])->id;
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-netdev id=%s: no device uses it (add -device virtio-net-pci,netdev=%s)",
                        id, id);
            return false;
        }
    }
    return true;
}

static bool apply_option(VmConfig *cfg, const char *name, const char *val, GError **errp)
{
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, __VA_ARGS__);                   \
        return false;                                                                              \
    } while (0)
#define SET_STR(field)                                                                             \
    do {                                                                                           \
        g_free(cfg->field);                                                                        \
        cfg->field = g_strdup(val);                                                                \
    } while (0)

    if (!strcmp(name, "machine")) {
        g_auto(GStrv) parts = g_strsplit(val, ",", 2);
        const char *type = g_str_has_prefix(parts[0], "type=") ? parts[0] + 5 : parts[0];
        if (strcmp(type, "pc") != 0) {
            FAIL("-machine: unknown machine type '%s' (kvmloop has 'pc')", type);
        }
        g_free(cfg->machine);
        cfg->machine = g_strdup(type);
    } else if (!strcmp(name, "accel")) {
        g_auto(GStrv) parts = g_strsplit(val, ",", -1);
        if (strcmp(parts[0], "kvm") != 0) {
            FAIL("-accel: unknown accelerator '%s' (kvmloop has 'kvm')", parts[0]);
        }
        for (int i = 1; parts[i]; i++) {
            if (!strcmp(parts[i], "emulation-assists=auto")) {
                cfg->emulation_assists = -1;
            } else if (!strcmp(parts[i], "emulation-assists=on")) {
                cfg->emulation_assists = 1;
            } else if (!strcmp(parts[i], "emulation-assists=off")) {
                cfg->emulation_assists = 0;
            } else {
                FAIL("-accel: unknown option '%s' (emulation-assists=auto|on|off)", parts[i]);
            }
        }
        g_free(cfg->accel);
        cfg->accel = g_strdup(parts[0]);
    } else if (!strcmp(name, "smp")) {
        if (!cpu_topology_parse(val, KVMLOOP_MAX_CPUS, &cfg->topology, errp)) {
            return false;
        }
        cfg->smp = cfg->topology.cpus;
    } else if (!strcmp(name, "cpu")) {
        if (!cpu_model_parse(val, &cfg->cpu, errp)) {
            return false;
        }
    } else if (!strcmp(name, "m")) {
        const char *sz = g_str_has_prefix(val, "size=") ? val + 5 : val;
        uint64_t v;
        if (!parse_size(sz, 1ULL << 20, &v)) {
            FAIL("-m: '%s' is not a size (examples: 512, 512M, 2G)", val);
        }
        if (v < KVMLOOP_MIN_RAM || v > KVMLOOP_MAX_RAM) {
            FAIL("-m: %s is outside the supported range 2M to 1T", val);
        }
        cfg->ram_size = v & ~0xfffULL;
    } else if (!strcmp(name, "kernel")) {
        SET_STR(kernel);
    } else if (!strcmp(name, "initrd")) {
        SET_STR(initrd);
    } else if (!strcmp(name, "append")) {
        SET_STR(append);
    } else if (!strcmp(name, "serial")) {
        if (cfg->nserial >= KVMLOOP_MAX_SERIAL) {
            FAIL("-serial: at most %d serial ports", KVMLOOP_MAX_SERIAL);
        }
        cfg->serial[cfg->nserial++] = g_strdup(val);
    } else if (!strcmp(name, "device")) {
        g_ptr_array_add(cfg->devices, g_strdup(val));
    } else if (!strcmp(name, "drive")) {
        return parse_drive(cfg, val, errp);
    } else if (!strcmp(name, "netdev")) {
        return parse_netdev(cfg, val, errp);
    } else if (!strcmp(name, "object")) {
        return parse_object(cfg, val, errp);
    } else if (!strcmp(name, "qmp")) {
        return parse_qmp(cfg, val, errp);
    } else if (!strcmp(name, "nographic")) {
        cfg->nographic = true;
    } else if (!strcmp(name, "no-reboot")) {
        cfg->no_reboot = true;
    } else if (!strcmp(name, "S")) {
        cfg->start_paused = true;
    } else if (!strcmp(name, "stats")) {
        cfg->stats = true;
    } else if (!strcmp(name, "stats-file")) {
        if (!*val) {
            FAIL("-stats-file: the file name is empty");
        }
        SET_STR(stats_file);
    } else if (!strcmp(name, "stats-collect")) {
        if (!strcmp(val, "on")) {
            cfg->stats_collect = LOCKSTAT_SAMPLED;
        } else if (!strcmp(val, "full")) {
            cfg->stats_collect = LOCKSTAT_FULL;
        } else if (!strcmp(val, "off")) {
            cfg->stats_collect = LOCKSTAT_OFF;
        } else {
            FAIL("-stats-collect: '%s' is not on, full or off", val);
        }
    } else if (!strcmp(name, "help")) {
        cfg->help = true;
    } else if (!strcmp(name, "version")) {
        cfg->version = true;
    }
    return true;
#undef FAIL
#undef SET_STR
}

bool vm_config_parse(VmConfig *cfg, int argc, char **argv, GError **errp)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->machine = g_strdup("pc");
    cfg->accel = g_strdup("kvm");
    cfg->kvm_device =
        g_strdup(g_getenv("KVMLOOP_KVM_DEVICE") ? g_getenv("KVMLOOP_KVM_DEVICE") : "/dev/kvm");
    cfg->smp = 1;
    cfg->topology = (CpuTopology){.cpus = 1, .sockets = 1, .cores = 1, .threads = 1};
    cfg->emulation_assists = -1;
    cfg->ram_size = 128ULL << 20;
    cfg->stats_collect = LOCKSTAT_SAMPLED;
    cfg->devices = g_ptr_array_new_with_free_func(g_free);
    cfg->iothreads = g_ptr_array_new_with_free_func(iothread_config_free);
    cfg->qmp = g_ptr_array_new_with_free_func((GDestroyNotify)qmp_endpoint_free);
    cfg->drives = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);
    cfg->netdevs = g_ptr_array_new_with_free_func(netdev_config_free);

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h")) {
            cfg->help = true;
            continue;
        }
        const OptDef *o = arg[0] == '-' ? find_option(arg) : NULL;
        if (!o) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "unknown option '%s' (see --help)", arg);
            return false;
        }
        const char *val = NULL;
        if (o->kind == OPT_ARG) {
            if (i + 1 >= argc) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "option '%s' needs an argument (%s)", arg, o->arg_help);
                return false;
            }
            val = argv[++i];
        }
        if (!apply_option(cfg, o->name, val, errp)) {
            return false;
        }
    }
    if (!cfg->help && !cfg->version && !cfg->kernel) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "no kernel given: use -kernel FILE (see --help)");
        return false;
    }
    if (!check_netdevs(cfg, errp)) {
        return false;
    }
    if (cfg->start_paused && cfg->qmp->len == 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-S: the VM would never start: add a -qmp monitor to send cont");
        return false;
    }
    /* stdin and stdout carry QMP then: the serial port may not read or write
     * them, and its default becomes null. */
    bool qmp_stdio = qmp_uses_stdio(cfg);
    for (int i = 0; qmp_stdio && i < cfg->nserial; i++) {
        if (!strcmp(cfg->serial[i], "stdio")) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-serial stdio: cannot use stdio by multiple character devices "
                        "(-qmp stdio has it)");
            return false;
        }
    }
    if (cfg->nserial == 0) {
        cfg->serial[cfg->nserial++] = g_strdup(qmp_stdio ? "null" : "stdio");
    }
    return true;
}

void vm_config_clear(VmConfig *cfg)
{
    g_free(cfg->machine);
    g_free(cfg->accel);
    g_free(cfg->kvm_device);
    g_free(cfg->kernel);
    g_free(cfg->initrd);
    g_free(cfg->append);
    g_free(cfg->stats_file);
    for (int i = 0; i < cfg->nserial; i++) {
        g_free(cfg->serial[i]);
    }
    if (cfg->devices) {
        g_ptr_array_free(cfg->devices, true);
    }
    if (cfg->iothreads) {
        g_ptr_array_free(cfg->iothreads, true);
    }
    if (cfg->qmp) {
        g_ptr_array_free(cfg->qmp, true);
    }
    if (cfg->drives) {
        g_ptr_array_free(cfg->drives, true);
    }
    if (cfg->netdevs) {
        g_ptr_array_free(cfg->netdevs, true);
    }
    memset(cfg, 0, sizeof(*cfg));
}
