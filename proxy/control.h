/*
 * control.h — the control thread: everything about the nodes that is not
 * client traffic. Today: health checks and name resolution, published to
 * the workers as views of the nodes (nodes.h), two-phase-commit recovery
 * (recovery.h) and distributed deadlock detection (deadlock.h) on the same
 * loop.
 */
#ifndef PGSHARD_CONTROL_H
#define PGSHARD_CONTROL_H

#include "proxy/proxy.h"

/*
 * Before the workers start, on the main thread: the first view of cfg's
 * nodes, with their host names resolved (so that the workers never resolve
 * one on their loops), every node's health unknown. 0, or -1.
 */
int control_init(cfg_ref_t *cfg);
/* A reference to the latest view (never NULL after control_init). */
nodes_view_t *control_view(void);
/* Start the thread, once the workers have started (it posts views to them). 0, or -1. */
int control_start(void);
/* A reload: check the nodes of cfg from now on (states of nodes it keeps carry over). */
void control_set_config(cfg_ref_t *cfg);
/* Stop the thread and free its state; before the workers stop. */
void control_stop(void);

#endif
