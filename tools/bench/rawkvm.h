/* A bare KVM VM for the benchmark floors: RAM, irqchip, multiboot load, a minimal PC for boot. */
#ifndef KVMLOOP_BENCH_RAWKVM_H
#define KVMLOOP_BENCH_RAWKVM_H

/*
 * The floors of tools/bench/ measure what KVM itself costs, so they talk to
 * /dev/kvm directly instead of going through kvmloop's accel, cpus and
 * dispatch layers. This is deliberately the least a payload of tests/guest/
 * needs: one RAM slot from 0, the in-kernel irqchip (the APs start through
 * its LAPICs), CPUID as KVM offers it, and for the boot-time exits a UART
 * that is always ready, QEMU's fw_cfg signature and CPU count, and
 * isa-debug-exit. Nothing here takes a lock on the path a benchmark counts.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <gio/gio.h>

struct kvm_run;

typedef struct RawVm {
    int kvm_fd;
    int vm_fd;
    int run_size;
    uint8_t *ram;
    uint64_t ram_size;
    int ncpus;           /* what fw_cfg reports */
    bool quiet;          /* drop the guest's UART output */
    uint64_t uart_bytes; /* atomic: bytes the guest wrote to its UART */
    uint16_t fw_key;     /* fw_cfg selector and read offset; BSP only (boot) */
    uint32_t fw_off;
} RawVm;

typedef struct RawVcpu {
    RawVm *vm;
    int index;
    int fd;
    struct kvm_run *run;
} RawVcpu;

/* What rawvm_handle_exit() made of an exit. */
typedef enum {
    RAWVM_CONTINUE,    /* handled: enter the guest again */
    RAWVM_INTERRUPTED, /* KVM_RUN returned EINTR */
    RAWVM_DEBUG_EXIT,  /* the guest wrote isa-debug-exit; *code holds the value */
    RAWVM_ERROR,       /* the guest cannot go on; a line on stderr says why */
} RawVmVerdict;

/* Open @path (NULL: $KVMLOOP_KVM_DEVICE or /dev/kvm), create a VM with
 * @ram_size bytes of RAM at guest address 0 and the in-kernel irqchip, for
 * @ncpus vCPUs. Returns false with a one-line error naming the failed step. */
bool rawvm_create(RawVm *vm, const char *path, uint64_t ram_size, int ncpus, GError **errp);
void rawvm_destroy(RawVm *vm);

/* Load the 32-bit ELF multiboot image @file with command line @cmdline into
 * RAM: its PT_LOAD segments at their physical addresses, then a multiboot
 * information block (command line only) above the image. *@entry and *@mbi
 * receive the entry point and the block's address. */
bool rawvm_load_multiboot(RawVm *vm, const char *file, const char *cmdline, uint32_t *entry,
                          uint32_t *mbi, GError **errp);

/* Create vCPU @index (its APIC ID) with its kvm_run mapping and KVM's
 * supported CPUID. vCPU 0 is the BSP; the others wait for INIT/SIPI. */
bool rawvm_vcpu_create(RawVm *vm, int index, RawVcpu *v, GError **errp);
void rawvm_vcpu_destroy(RawVcpu *v);
/* The multiboot entry state: flat 32-bit protected mode, paging off,
 * EIP = @entry, EAX = the loader magic, EBX = @mbi. */
bool rawvm_vcpu_set_multiboot_entry(RawVcpu *v, uint32_t entry, uint32_t mbi, GError **errp);

/* KVM_RUN once. Returns 0, or -errno (-EINTR after a signal). */
int rawvm_vcpu_run(RawVcpu *v);
/* Handle the exit of the last KVM_RUN, whose result was @r, as the minimal
 * PC described above would. Port reads nobody answers give all-ones, MMIO
 * reads all-ones, writes go nowhere. @code receives the debug-exit value. */
RawVmVerdict rawvm_handle_exit(RawVcpu *v, int r, uint32_t *code);

/* Monotonic nanoseconds. */
int64_t rawvm_now_ns(void);

#endif
