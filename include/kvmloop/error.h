/* Error reporting for set-up layers: GError in GIO's G_IO_ERROR domain, codes from errno. */
#ifndef KVMLOOP_ERROR_H
#define KVMLOOP_ERROR_H

#include <gio/gio.h>

#endif
