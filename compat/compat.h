/*
 * compat.h - declarations for the replacement functions in compat/,
 * built only when configure finds the system lacks them (AC_REPLACE_FUNCS).
 * Included at the bottom of config.h, so every file sees it.
 */
#ifndef BEARMAIL_COMPAT_H
#define BEARMAIL_COMPAT_H

#include <stddef.h>

#ifndef HAVE_STRLCPY
size_t strlcpy(char *dst, const char *src, size_t size);
#endif
#ifndef HAVE_STRLCAT
size_t strlcat(char *dst, const char *src, size_t size);
#endif

#endif
