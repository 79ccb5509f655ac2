/* A bare KVM VM for the benchmark floors: RAM, irqchip, multiboot load, a minimal PC for boot. */
#include "rawkvm.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CPUID_MAX_ENTRIES      256
#define MULTIBOOT_MAGIC_EAX    0x2BADB002u
#define MULTIBOOT_INFO_CMDLINE 0x4u
#define UART_BASE              0x3f8
#define UART_LSR               5
#define UART_LSR_TEMT_THRE     0x60
#define FW_CFG_SEL             0x510
#define FW_CFG_DATA            0x511
#define DEBUG_EXIT_PORT        0xf4

static int raw_ioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do {
        r = ioctl(fd, req, arg);
    } while (r < 0 && errno == EINTR && req != KVM_RUN);
    return r < 0 ? -errno : r;
}

static bool raw_fail(GError **errp, const char *what, int err)
{
    g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-err), "%s failed: %s", what,
                g_strerror(-err));
    return false;
}

int64_t rawvm_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool rawvm_create(RawVm *vm, const char *path, uint64_t ram_size, int ncpus, GError **errp)
{
    int r;

    memset(vm, 0, sizeof(*vm));
    vm->kvm_fd = vm->vm_fd = -1;
    vm->ncpus = ncpus;
    if (!path) {
        path = g_getenv("KVMLOOP_KVM_DEVICE") ? g_getenv("KVMLOOP_KVM_DEVICE") : "/dev/kvm";
    }
    vm->kvm_fd = open(path, O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "cannot open %s: %s", path,
                    g_strerror(errno));
        return false;
    }
    r = raw_ioctl(vm->kvm_fd, KVM_GET_API_VERSION, NULL);
    if (r != KVM_API_VERSION) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "%s: KVM API version %d, want %d",
                    path, r, KVM_API_VERSION);
        goto fail;
    }
    vm->run_size = raw_ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
    if (vm->run_size < (int)sizeof(struct kvm_run)) {
        raw_fail(errp, "KVM_GET_VCPU_MMAP_SIZE", vm->run_size < 0 ? vm->run_size : -EINVAL);
        goto fail;
    }
    vm->vm_fd = raw_ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        raw_fail(errp, "KVM_CREATE_VM", vm->vm_fd);
        goto fail;
    }
    /* Real mode on Intel hosts (the APs' trampoline) needs these three pages. */
    r = raw_ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (void *)0xfffbd000UL);
    if (r < 0) {
        raw_fail(errp, "KVM_SET_TSS_ADDR", r);
        goto fail;
    }
    r = raw_ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, NULL);
    if (r < 0) {
        raw_fail(errp, "KVM_CREATE_IRQCHIP", r);
        goto fail;
    }
    vm->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (vm->ram == MAP_FAILED) {
        vm->ram = NULL;
        raw_fail(errp, "mmap of guest RAM", -errno);
        goto fail;
    }
    vm->ram_size = ram_size;
    struct kvm_userspace_memory_region mr = {
        .slot = 0,
        .guest_phys_addr = 0,
        .memory_size = ram_size,
        .userspace_addr = (uint64_t)(uintptr_t)vm->ram,
    };
    r = raw_ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr);
    if (r < 0) {
        raw_fail(errp, "KVM_SET_USER_MEMORY_REGION", r);
        goto fail;
    }
    return true;

fail:
    rawvm_destroy(vm);
    return false;
}

void rawvm_destroy(RawVm *vm)
{
    if (vm->ram) {
        munmap(vm->ram, vm->ram_size);
    }
    if (vm->vm_fd >= 0) {
        close(vm->vm_fd);
    }
    if (vm->kvm_fd >= 0) {
        close(vm->kvm_fd);
    }
    vm->ram = NULL;
    vm->vm_fd = vm->kvm_fd = -1;
}

static bool load_fail(GError **errp, const char *file, const char *why)
{
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: %s", file, why);
    return false;
}

bool rawvm_load_multiboot(RawVm *vm, const char *file, const char *cmdline, uint32_t *entry,
                          uint32_t *mbi, GError **errp)
{
    g_autofree char *img = NULL;
    gsize len;
    uint64_t top = 0;

    if (!g_file_get_contents(file, &img, &len, errp)) {
        return false;
    }
    const Elf32_Ehdr *eh = (const Elf32_Ehdr *)img;
    if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
        eh->e_ident[EI_CLASS] != ELFCLASS32 || eh->e_machine != EM_386) {
        return load_fail(errp, file, "not a 32-bit x86 ELF image");
    }
    if (eh->e_phentsize != sizeof(Elf32_Phdr) ||
        (uint64_t)eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf32_Phdr) > len) {
        return load_fail(errp, file, "bad program header table");
    }
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        const Elf32_Phdr *ph = (const Elf32_Phdr *)(img + eh->e_phoff) + i;
        if (ph->p_type != PT_LOAD) {
            continue;
        }
        if (ph->p_filesz > ph->p_memsz || (uint64_t)ph->p_offset + ph->p_filesz > len ||
            (uint64_t)ph->p_paddr + ph->p_memsz > vm->ram_size) {
            return load_fail(errp, file, "a segment lies outside the file or the RAM");
        }
        memcpy(vm->ram + ph->p_paddr, img + ph->p_offset, ph->p_filesz);
        memset(vm->ram + ph->p_paddr + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
        top = MAX(top, (uint64_t)ph->p_paddr + ph->p_memsz);
    }
    if (top == 0) {
        return load_fail(errp, file, "no loadable segment");
    }
    /* Multiboot information (spec 3.3): flags, then the command line's
     * address at offset 16; the string follows the block. */
    uint64_t at = (top + 0xfff) & ~0xfffULL;
    size_t clen = strlen(cmdline) + 1;
    if (at + 32 + clen > vm->ram_size) {
        return load_fail(errp, file, "no room for the command line above the image");
    }
    uint32_t info[8] = {MULTIBOOT_INFO_CMDLINE, 0, 0, 0, (uint32_t)(at + 32)};
    memcpy(vm->ram + at, info, sizeof(info));
    memcpy(vm->ram + at + 32, cmdline, clen);
    *entry = eh->e_entry;
    *mbi = (uint32_t)at;
    return true;
}

static bool set_supported_cpuid(RawVcpu *v, GError **errp)
{
    g_autofree struct kvm_cpuid2 *c =
        g_malloc0(sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
    c->nent = CPUID_MAX_ENTRIES;
    int r = raw_ioctl(v->vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
    if (r < 0) {
        return raw_fail(errp, "KVM_GET_SUPPORTED_CPUID", r);
    }
    /* Leaf 1 EBX[31:24] and leaf 0xB EDX: this vCPU's initial APIC ID. */
    for (uint32_t i = 0; i < c->nent; i++) {
        if (c->entries[i].function == 1) {
            c->entries[i].ebx = (c->entries[i].ebx & 0x00ffffff) | ((uint32_t)v->index << 24);
        } else if (c->entries[i].function == 0xb) {
            c->entries[i].edx = (uint32_t)v->index;
        }
    }
    r = raw_ioctl(v->fd, KVM_SET_CPUID2, c);
    return r < 0 ? raw_fail(errp, "KVM_SET_CPUID2", r) : true;
}

bool rawvm_vcpu_create(RawVm *vm, int index, RawVcpu *v, GError **errp)
{
    memset(v, 0, sizeof(*v));
    v->vm = vm;
    v->index = index;
    v->fd = raw_ioctl(vm->vm_fd, KVM_CREATE_VCPU, (void *)(long)index);
    if (v->fd < 0) {
        return raw_fail(errp, "KVM_CREATE_VCPU", v->fd);
    }
    v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        v->run = NULL;
        raw_fail(errp, "mmap of kvm_run", -errno);
        goto close_fd;
    }
    if (!set_supported_cpuid(v, errp)) {
        goto unmap;
    }
    return true;

unmap:
    munmap(v->run, vm->run_size);
    v->run = NULL;
close_fd:
    close(v->fd);
    v->fd = -1;
    return false;
}

void rawvm_vcpu_destroy(RawVcpu *v)
{
    if (v->run) {
        munmap(v->run, v->vm->run_size);
    }
    if (v->fd >= 0) {
        close(v->fd);
    }
    v->run = NULL;
    v->fd = -1;
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
    *s = (struct kvm_segment){
        .limit = 0xffffffff, .selector = sel, .type = type, .present = 1, .db = 1, .s = 1, .g = 1};
}

bool rawvm_vcpu_set_multiboot_entry(RawVcpu *v, uint32_t entry, uint32_t mbi, GError **errp)
{
    struct kvm_sregs sregs;
    int r = raw_ioctl(v->fd, KVM_GET_SREGS, &sregs);
    if (r < 0) {
        return raw_fail(errp, "KVM_GET_SREGS", r);
    }
    /* Multiboot's machine state: flat segments, CR0.PE, paging off; the
     * payload loads its own GDT before touching a selector. */
    flat_segment(&sregs.cs, 0x10, 0xb);
    flat_segment(&sregs.ds, 0x18, 0x3);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.tr = (struct kvm_segment){.limit = 0x67, .selector = 0x20, .type = 0xb, .present = 1};
    sregs.cr0 = 0x11; /* PE | ET */
    sregs.cr4 = 0;
    sregs.efer = 0;
    r = raw_ioctl(v->fd, KVM_SET_SREGS, &sregs);
    if (r < 0) {
        return raw_fail(errp, "KVM_SET_SREGS", r);
    }
    struct kvm_regs regs = {.rip = entry, .rax = MULTIBOOT_MAGIC_EAX, .rbx = mbi, .rflags = 0x2};
    r = raw_ioctl(v->fd, KVM_SET_REGS, &regs);
    return r < 0 ? raw_fail(errp, "KVM_SET_REGS", r) : true;
}

int rawvm_vcpu_run(RawVcpu *v)
{
    return raw_ioctl(v->fd, KVM_RUN, NULL);
}

/* One byte of fw_cfg data: the "QEMU" signature (key 0) or the 16-bit CPU
 * count (key 5), as QEMU's docs/specs/fw_cfg.rst describe them. */
static uint8_t fw_cfg_read(RawVm *vm)
{
    static const char sig[4] = {'Q', 'E', 'M', 'U'};
    uint32_t off = vm->fw_off++;

    if (vm->fw_key == 0 && off < 4) {
        return (uint8_t)sig[off];
    }
    if (vm->fw_key == 5 && off < 2) {
        return (uint8_t)(vm->ncpus >> (8 * off));
    }
    return 0;
}

static RawVmVerdict handle_io(RawVcpu *v, uint32_t *code)
{
    struct kvm_run *run = v->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    uint16_t port = run->io.port;
    uint32_t value = 0;

    if (run->io.direction == KVM_EXIT_IO_IN) {
        for (uint32_t i = 0; i < run->io.count; i++) {
            uint8_t *p = data + (size_t)i * run->io.size;
            memset(p, 0xff, run->io.size);
            if (port == UART_BASE + UART_LSR) {
                *p = UART_LSR_TEMT_THRE;
            } else if (port == FW_CFG_DATA) {
                *p = fw_cfg_read(v->vm);
            }
        }
        return RAWVM_CONTINUE;
    }
    memcpy(&value, data, MIN(run->io.size, sizeof(value)));
    if (port == DEBUG_EXIT_PORT) {
        *code = value;
        return RAWVM_DEBUG_EXIT;
    }
    if (port == FW_CFG_SEL) {
        v->vm->fw_key = (uint16_t)value;
        v->vm->fw_off = 0;
    } else if (port == UART_BASE) {
        __atomic_add_fetch(&v->vm->uart_bytes, run->io.count, __ATOMIC_RELAXED);
        for (uint32_t i = 0; i < run->io.count && !v->vm->quiet; i++) {
            if (write(STDOUT_FILENO, data + (size_t)i * run->io.size, 1) < 0) {
                break; /* nobody reads: the output goes nowhere */
            }
        }
    }
    return RAWVM_CONTINUE;
}

RawVmVerdict rawvm_handle_exit(RawVcpu *v, int r, uint32_t *code)
{
    struct kvm_run *run = v->run;

    if (r == -EINTR || r == -EAGAIN) {
        return RAWVM_INTERRUPTED;
    }
    if (r < 0) {
        fprintf(stderr, "vCPU %d: KVM_RUN failed: %s\n", v->index, g_strerror(-r));
        return RAWVM_ERROR;
    }
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        return handle_io(v, code);
    case KVM_EXIT_MMIO:
        if (!run->mmio.is_write) {
            memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
        }
        return RAWVM_CONTINUE;
    case KVM_EXIT_HLT:
        return RAWVM_CONTINUE;
    case KVM_EXIT_INTR:
        return RAWVM_INTERRUPTED;
    default:
        fprintf(stderr, "vCPU %d: exit reason %u, which the floor does not handle\n", v->index,
                run->exit_reason);
        return RAWVM_ERROR;
    }
}
