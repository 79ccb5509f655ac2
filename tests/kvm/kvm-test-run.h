/* Running a VM in the test's own process, for test programs linked with kvmloop's core. */
#ifndef KVMLOOP_TESTS_KVM_TEST_RUN_H
#define KVMLOOP_TESTS_KVM_TEST_RUN_H

#include <glib.h>

#include "kvmloop/config.h"

#include "kvm-test.h"

/* Run kvmloop in this process on "-serial capture", the debug-exit port the
 * payloads report through, then @args and @more (each NULL-terminated, without
 * argv[0]; @more may be NULL), with @hooks. A command line that does not parse
 * ends the test. Returns vm_run_hooked()'s exit status. Main thread. */
static inline int kvm_test_run(const char *const *args, const char *const *more,
                               const VmHooks *hooks)
{
    const char *fixed[] = {"kvmloop", "-serial", "capture", "-device",
                           "isa-debug-exit,iobase=0xf4,iosize=0x4"};
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++) {
        g_ptr_array_add(argv, (char *)fixed[i]);
    }
    for (; args && *args; args++) {
        g_ptr_array_add(argv, (char *)*args);
    }
    for (; more && *more; more++) {
        g_ptr_array_add(argv, (char *)*more);
    }
    VmConfig cfg;
    g_autoptr(GError) err = NULL;
    if (!vm_config_parse(&cfg, (int)argv->len, (char **)argv->pdata, &err)) {
        g_error("bad test command line: %s", err->message);
    }
    int status = vm_run_hooked(&cfg, hooks);
    vm_config_clear(&cfg);
    return status;
}

#endif
