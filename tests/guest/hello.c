/* hello: prints one line over the UART and exits with the code from "exit=N".
 *
 * Output: "hello from kvmloop\n".
 * Exit (debug-exit value): N from the command line option exit=N, 0 without
 * it; this payload has no failure codes.
 */
#include "guest.h"

int main(const char *cmdline)
{
    serial_puts("hello from kvmloop\n");
    return (int)cmdline_get_int(cmdline, "exit", 0);
}
