/*
 * version.h — pgshard's version, as --version and the admin console say it.
 */
#ifndef PGSHARD_PROXY_VERSION_H
#define PGSHARD_PROXY_VERSION_H

#define PGSHARD_VERSION "0.1.0"

#endif
