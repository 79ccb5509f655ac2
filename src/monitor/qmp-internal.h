/* What the QMP protocol core (qmp.c) and the command table (qmp-commands.c) share. */
#ifndef KVMLOOP_QMP_INTERNAL_H
#define KVMLOOP_QMP_INTERNAL_H

#include <stdbool.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "kvmloop/qmp.h"

/* QMP error classes (the "class" member of an error reply). */
#define QMP_ERROR qmp_error_quark()
GQuark qmp_error_quark(void);

typedef enum QmpErrorClass {
    QMP_ERROR_GENERIC,           /* GenericError */
    QMP_ERROR_COMMAND_NOT_FOUND, /* CommandNotFound */
    QMP_ERROR_DEVICE_NOT_FOUND,  /* DeviceNotFound */
} QmpErrorClass;

const char *qmp_error_class_name(QmpErrorClass c);

typedef struct QmpClient QmpClient;

/* Argument types a command declares; the dispatcher checks them before the
 * handler runs, so handlers read their arguments without checking types. */
typedef enum QmpArgType {
    QMP_ARG_STR,
    QMP_ARG_BOOL,
    QMP_ARG_INT,
    QMP_ARG_STR_LIST,
} QmpArgType;

typedef struct QmpArg {
    const char *name;
    QmpArgType type;
    bool optional;
} QmpArg;

#define QMP_MAX_ARGS 4

/* A command's handler. @args is the request's "arguments" object (empty if
 * absent), already checked against the declaration. Returns the "return"
 * value, or NULL with @errp set (domain QMP_ERROR, code a QmpErrorClass).
 * Main loop, BQL held. */
typedef JsonNode *(*qmp_command_fn)(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                    GError **errp);

typedef struct QmpCommand {
    const char *name;
    qmp_command_fn fn;
    QmpArg args[QMP_MAX_ARGS]; /* ends at the first with a NULL name */
} QmpCommand;

/* The statistics and lock-policy commands (qmp-stats.c). */
JsonNode *qmp_cmd_query_lock_stats(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                   GError **errp);
JsonNode *qmp_cmd_reset_lock_stats(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                   GError **errp);
JsonNode *qmp_cmd_query_exit_stats(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                   GError **errp);
JsonNode *qmp_cmd_set_lock_policy(QmpMonitor *mon, QmpClient *client, JsonObject *args,
                                  GError **errp);

/* The command table (qmp-commands.c), and a command by name or NULL. */
const QmpCommand *qmp_commands(size_t *n);
const QmpCommand *qmp_command_find(const char *name);

/* ---- Services of qmp.c for the commands ---------------------------------- */

/* A node holding @o or @a, which it takes over. */
JsonNode *qmp_node_take_object(JsonObject *o);
JsonNode *qmp_node_take_array(JsonArray *a);
/* query-version's reply, also in the greeting (qmp-commands.c). */
JsonNode *qmp_version_info(void);

Machine *qmp_monitor_machine(QmpMonitor *mon);
const VmConfig *qmp_monitor_config(QmpMonitor *mon);
/* Leave capabilities negotiation mode; false if @client already had. */
bool qmp_client_negotiate(QmpClient *client);
/* stop: pause every vCPU and the virtual clock, send STOP. No-op unless
 * running (a VM started with -S stays in prelaunch, as in QEMU). */
void qmp_monitor_vm_stop(QmpMonitor *mon);
/* cont: the reverse, send RESUME; also starts a VM in prelaunch. No-op when
 * running; false with @errp once the VM is shutting down. */
bool qmp_monitor_vm_start(QmpMonitor *mon, GError **errp);
/* Press the ACPI power button and send POWERDOWN, after the reply (as in
 * QEMU, where the request is served by the main loop). */
void qmp_monitor_request_powerdown(QmpMonitor *mon);

#endif
