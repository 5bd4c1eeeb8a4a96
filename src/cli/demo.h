/* demo.h - the demo data set loaded by `segd serve --demo-data` (make run). */
#ifndef SEGD_CLI_DEMO_H
#define SEGD_CLI_DEMO_H

#include "../ingest/ingest.h"

/* Writes the demo people and events through ingest. Returns 0 or a negative code
 * with *err filled. Loading it twice applies nothing new only if the store was
 * empty the first time: callers load it into an empty store. */
int demo_load(ingest *ing, segd_error *err);

#endif
