/* Statistics reports: the -stats table, the -stats-file JSON document, snapshots and reset. */
#ifndef KVMLOOP_STATS_H
#define KVMLOOP_STATS_H

#include <stdbool.h>
#include <stdio.h>
#include <glib.h>
#include "kvmloop/types.h"

typedef struct _JsonNode JsonNode;

/* The "version" of the JSON document (docs/stats-schema.md). */
#define STATS_SCHEMA_VERSION 1

/* Print everything recorded since the last reset as readable tables: locks
 * by site with their holders, vCPUs, regions. BQL held. */
void stats_print(Machine *m, FILE *f);
/* The same as a JSON object (docs/stats-schema.md), for -stats-file and the
 * monitor. BQL held. The caller owns the node (json_node_unref()). */
JsonNode *stats_to_json(Machine *m);
/* Write stats_to_json() to @path through a temporary file and a rename, so
 * a reader never sees a partial document. BQL held. Returns false and sets
 * @errp if the file cannot be written. */
bool stats_write_json(Machine *m, const char *path, GError **errp);
/* Count everything from zero again: locks and sites, vCPUs, regions,
 * unassigned accesses. BQL held. */
void stats_reset(Machine *m);

#endif
