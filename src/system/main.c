/* kvmloop's entry point: parse the command line, run the VM, return its status. */
#include <stdio.h>

#include "kvmloop/config.h"

int main(int argc, char **argv)
{
    VmConfig cfg;
    GError *err = NULL;

    if (!vm_config_parse(&cfg, argc, argv, &err)) {
        fprintf(stderr, "kvmloop: %s\n", err->message);
        g_error_free(err);
        vm_config_clear(&cfg);
        return 1;
    }
    if (cfg.help) {
        vm_config_print_help(stdout, "kvmloop");
        vm_config_clear(&cfg);
        return 0;
    }
    if (cfg.version) {
        printf("kvmloop %s\n", KVMLOOP_VERSION);
        vm_config_clear(&cfg);
        return 0;
    }
    int status = vm_run(&cfg);
    vm_config_clear(&cfg);
    return status;
}
