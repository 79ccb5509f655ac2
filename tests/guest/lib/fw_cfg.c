/* QEMU's fw_cfg over I/O ports (docs/specs/fw_cfg.rst in QEMU): signature and vCPU count. */
#include "guest.h"

static void fw_cfg_select(uint16_t key)
{
    outw(FW_CFG_PORT_SEL, key);
}

void fw_cfg_read_signature(char sig[4])
{
    int i;

    fw_cfg_select(FW_CFG_SIGNATURE);
    for (i = 0; i < 4; i++) {
        sig[i] = (char)inb(FW_CFG_PORT_DATA);
    }
}

bool fw_cfg_present(void)
{
    char sig[4];

    fw_cfg_read_signature(sig);
    return sig[0] == 'Q' && sig[1] == 'E' && sig[2] == 'M' && sig[3] == 'U';
}

unsigned int fw_cfg_cpu_count(void)
{
    unsigned int lo, hi;

    if (!fw_cfg_present()) {
        return 0;
    }
    fw_cfg_select(FW_CFG_NB_CPUS);
    lo = inb(FW_CFG_PORT_DATA);
    hi = inb(FW_CFG_PORT_DATA);
    return lo | (hi << 8);
}
