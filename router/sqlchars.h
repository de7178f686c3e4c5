/*
 * sqlchars.h — the character classes of SQL text as PostgreSQL's scanner
 * sees them (bytes >= 0x80 are identifier characters; ASCII as the C
 * locale's ctype), read from one table: the lexer, the plan cache's masking
 * and the classifier look at every byte of every statement, and ctype's
 * calls cost more than the rest of their work.
 */
#ifndef PGSHARD_ROUTER_SQLCHARS_H
#define PGSHARD_ROUTER_SQLCHARS_H

#include <stdbool.h>
#include <stdint.h>

enum {
	SQLCH_SPACE = 1 << 0, /* isspace: blank, \t \n \v \f \r */
	SQLCH_DIGIT = 1 << 1, /* 0-9 */
	SQLCH_START = 1 << 2, /* starts an identifier: letter, _, byte >= 0x80 */
	SQLCH_IDENT = 1 << 3, /* continues one: the above, digits and $ */
	SQLCH_OP = 1 << 4,    /* an operator character: + - * / < > = ~ ! @ # % ^ & | ` ? */
	SQLCH_ALNUM = 1 << 5, /* isalnum: ASCII letters and digits */
	SQLCH_SPECIAL =
	    1 << 6, /* an operator character that keeps a trailing + or -: ~ ! @ # ^ & | ` ? % */
	SQLCH_STMT = 1 << 7, /* may end a statement or start a quote or comment: ; ' " $ - / */
};

extern const uint8_t sql_char_class[256];

static inline bool sql_is(unsigned char c, int cls)
{
	return (sql_char_class[c] & cls) != 0;
}

/* ASCII lower case (other bytes as they are), as tolower in the C locale. */
static inline unsigned char sql_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

#endif
